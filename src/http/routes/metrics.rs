//! `GET /metrics`: asks every part for its own statistics at scrape time and writes them
//! as Prometheus families (names: docs/operations.md#metrics). Nothing here counts: a number shown
//! here is the same one `/api/v2/events/stats`, `/api/v2/status`, `/api/v2/ws/stats` and
//! `/api/v2/auth/stats` report. Access: a viewer, or anyone with `auth.metrics_open`.

use actix_web::{get, web, HttpResponse};
use futures_util::future::join_all;
use gns3_central_actors::cache::{CacheStats, GetCacheStats, RedisState};
use gns3_central_actors::connector::{CircuitState, GetCallStats, GetServerStatus};
use gns3_central_actors::dispatcher::{Counters, DispatcherStats, GetStats};

use crate::observe::metrics::text::{Exposition, Kind, CONTENT_TYPE};
use crate::state::AppState;

/// Prometheus text format of the service's metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition (0.0.4)", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut e = Exposition::new();
    service(&mut e, &state);
    http(&mut e, &state);
    let dispatcher = match &state.dispatcher {
        Some(d) => d.send(GetStats).await.ok(),
        None => None,
    };
    if let Some(stats) = &dispatcher {
        events(&mut e, stats);
    }
    servers(&mut e, &state).await;
    if let Ok(c) = state.cache.send(GetCacheStats).await {
        cache(&mut e, &c);
    }
    sessions(&mut e, &state);
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(e.finish())
}

fn service(e: &mut Exposition, state: &AppState) {
    e.family("gns3central_build_info", Kind::Gauge, "Always 1; the version in a label.").sample(
        "gns3central_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    e.family("gns3central_uptime_seconds", Kind::Gauge, "Seconds since the service started.").sample(
        "gns3central_uptime_seconds",
        &[],
        state.uptime_secs(),
    );
    e.family("gns3central_events_enabled", Kind::Gauge, "1 when live events are on (not --no-events).").sample(
        "gns3central_events_enabled",
        &[],
        f64::from(u8::from(state.events_enabled)),
    );
    e.family("gns3central_modules_connected", Kind::Gauge, "Modules connected now (0 until modules exist).").sample(
        "gns3central_modules_connected",
        &[],
        state.modules.registry.connected_count() as f64,
    );
    if let Some(bytes) = crate::observe::memory::heap_in_use() {
        let name = "gns3central_heap_bytes";
        e.family(name, Kind::Gauge, "Bytes the allocator has handed out and not had back (glibc mallinfo2).").sample(
            name,
            &[],
            bytes as f64,
        );
    }
    if let Some(bytes) = crate::observe::memory::resident() {
        let name = "gns3central_resident_bytes";
        e.family(name, Kind::Gauge, "Resident set size of the process.").sample(name, &[], bytes as f64);
    }
    let name = "gns3central_config_reloads_total";
    let ok = state.live.reloads_ok.load(std::sync::atomic::Ordering::Relaxed);
    let failed = state.live.reloads_failed.load(std::sync::atomic::Ordering::Relaxed);
    e.family(name, Kind::Counter, "Configuration reloads (SIGHUP) by result.")
        .sample(name, &[("result", "ok")], ok as f64)
        .sample(name, &[("result", "failed")], failed as f64);
    let name = "gns3central_audit_write_failures_total";
    let failed = state.audit.failures.load(std::sync::atomic::Ordering::Relaxed);
    e.family(name, Kind::Counter, "Audit records that could not be stored (each logged as an error with the record).")
        .sample(name, &[("backend", state.audit.backend())], failed as f64);
    let name = "gns3central_audit_spooled";
    let spooled = state.audit.spooled.load(std::sync::atomic::Ordering::Relaxed);
    e.family(name, Kind::Gauge, "Audit records waiting in the spool for Redis to return.").sample(
        name,
        &[],
        spooled as f64,
    );
    let refused = state.auth.refused.snapshot();
    let name = "gns3central_auth_refused_total";
    e.family(name, Kind::Counter, "Requests and upgrades refused by access control, by reason.")
        .sample(name, &[("reason", "unauthenticated")], refused.unauthenticated as f64)
        .sample(name, &[("reason", "forbidden")], refused.forbidden as f64)
        .sample(name, &[("reason", "origin_not_allowed")], refused.origin_not_allowed as f64);
}

fn http(e: &mut Exposition, state: &AppState) {
    let name = "gns3central_http_request_duration_seconds";
    e.family(name, Kind::Histogram, "HTTP requests served, by method, matched route pattern and status.");
    for ((method, route, status), h) in state.metrics.http_snapshot() {
        let status = status.to_string();
        e.histogram(name, &[("method", method), ("route", &route), ("status", &status)], &h);
    }
}

/// A labelled reading of some statistics: (label, how to read it).
type Reading<T, V> = (&'static str, fn(&T) -> V);
/// A metric family read from some statistics: (name, kind, help, how to read it).
type Family<T> = (&'static str, Kind, &'static str, fn(&T) -> f64);

/// The counters of one event type or priority, by outcome.
const OUTCOMES: &[Reading<Counters, u64>] = &[
    ("published", |c| c.published),
    ("dispatched", |c| c.dispatched),
    ("delivered", |c| c.delivered),
    ("shed", |c| c.shed),
    ("refused", |c| c.refused),
    ("retried", |c| c.retried),
    ("dead_lettered", |c| c.dead_lettered),
];

fn events(e: &mut Exposition, s: &DispatcherStats) {
    let name = "gns3central_events_total";
    e.family(
        name,
        Kind::Counter,
        "Events by type and outcome (published, dispatched, delivered, shed, refused, retried, dead_lettered).",
    );
    for (kind, c) in &s.by_type {
        for (outcome, get) in OUTCOMES {
            e.sample(name, &[("type", kind), ("outcome", outcome)], get(c) as f64);
        }
    }
    let name = "gns3central_events_by_priority_total";
    e.family(name, Kind::Counter, "Events by priority and outcome.");
    for (p, c) in &s.by_priority {
        for (outcome, get) in OUTCOMES {
            e.sample(name, &[("priority", p), ("outcome", outcome)], get(c) as f64);
        }
    }
    let name = "gns3central_event_queue_depth";
    let q = &s.queues;
    e.family(name, Kind::Gauge, "Events waiting in each priority queue (express: the urgent lane).")
        .sample(name, &[("priority", "CRITICAL")], q.critical as f64)
        .sample(name, &[("priority", "HIGH")], q.high as f64)
        .sample(name, &[("priority", "NORMAL")], q.normal as f64)
        .sample(name, &[("priority", "LOW")], q.low as f64)
        .sample(name, &[("priority", "express")], q.express as f64);
    e.family("gns3central_event_queue_capacity", Kind::Gauge, "Events the four queues hold together.").sample(
        "gns3central_event_queue_capacity",
        &[],
        q.capacity as f64,
    );
    let name = "gns3central_event_dispatch_seconds";
    e.family(name, Kind::Histogram, "Publish to handed to every subscriber, by priority.");
    for (p, h) in &s.latency_histogram {
        e.histogram(name, &[("priority", p)], h);
    }
    e.family("gns3central_event_subscribers", Kind::Gauge, "Subscribers of the dispatcher.").sample(
        "gns3central_event_subscribers",
        &[],
        s.subscribers as f64,
    );
    e.family("gns3central_event_last_seq", Kind::Gauge, "Seq of the last event dispatched in this epoch.").sample(
        "gns3central_event_last_seq",
        &[],
        s.last_seq as f64,
    );
    e.family("gns3central_event_dead_letters", Kind::Gauge, "Dead letters kept now.").sample(
        "gns3central_event_dead_letters",
        &[],
        s.dead_letters as f64,
    );
}

async fn servers(e: &mut Exposition, state: &AppState) {
    let asks = state.servers.iter().map(|(name, addr)| async move {
        (name.as_str(), addr.send(GetServerStatus).await.ok(), addr.send(GetCallStats).await.ok())
    });
    let all = join_all(asks).await;
    let name = "gns3central_gns3_up";
    e.family(name, Kind::Gauge, "1 while the GNS3 server is connected.");
    for (server, status, _) in &all {
        let up = status.as_ref().is_some_and(|s| s.connected);
        e.sample(name, &[("server", server)], f64::from(u8::from(up)));
    }
    let name = "gns3central_circuit_state";
    e.family(name, Kind::Gauge, "1 for the circuit breaker's current state of each server.");
    for (server, status, _) in &all {
        let Some(s) = status else { continue };
        for (label, st) in
            [("closed", CircuitState::Closed), ("open", CircuitState::Open), ("half_open", CircuitState::HalfOpen)]
        {
            e.sample(name, &[("server", server), ("state", label)], f64::from(u8::from(s.circuit.state == st)));
        }
    }
    let counters: [(&str, Reading<gns3_central_actors::connector::ServerStatus, u64>); 2] = [
        ("gns3central_circuit_opened_total", ("Times the circuit opened.", |s| s.circuit.times_opened)),
        ("gns3central_gns3_disconnects_total", ("Times the connection to GNS3 was lost.", |s| s.disconnects)),
    ];
    for (name, (help, get)) in counters {
        e.family(name, Kind::Counter, help);
        for (server, status, _) in &all {
            let Some(s) = status else { continue };
            e.sample(name, &[("server", server)], get(s) as f64);
        }
    }
    let actors = state.supervision.report();
    let families: [Family<gns3_central_actors::supervise::ActorHealth>; 3] = [
        (
            "gns3central_actor_restarts_total",
            Kind::Counter,
            "Restarts of a supervised actor (stops and panics).",
            |a| a.restarts as f64,
        ),
        ("gns3central_actor_panics_total", Kind::Counter, "Restarts of a supervised actor caused by a panic.", |a| {
            a.panics as f64
        }),
        (
            "gns3central_actor_restart_storm",
            Kind::Gauge,
            "1 while the actor is in a restart storm (/readyz is then 503).",
            |a| f64::from(u8::from(a.storming)),
        ),
    ];
    for (name, kind, help, get) in families {
        e.family(name, kind, help);
        for a in &actors {
            e.sample(name, &[("actor", &a.actor), ("name", &a.name)], get(a));
        }
    }
    let name = "gns3central_gns3_call_duration_seconds";
    e.family(name, Kind::Histogram, "Calls to GNS3 (every attempt), by server and operation.");
    for (server, _, calls) in &all {
        for (op, c) in calls.iter().flatten() {
            e.histogram(name, &[("server", server), ("operation", op)], &c.duration);
        }
    }
    let name = "gns3central_gns3_call_errors_total";
    e.family(
        name,
        Kind::Counter,
        "Calls to GNS3 that failed (transport or GNS3 error answer), by server and operation.",
    );
    for (server, _, calls) in &all {
        for (op, c) in calls.iter().flatten() {
            e.sample(name, &[("server", server), ("operation", op)], c.errors as f64);
        }
    }
}

fn cache(e: &mut Exposition, c: &CacheStats) {
    let name = "gns3central_cache_requests_total";
    let (mem_hits, mem_misses) = (c.hits.saturating_sub(c.redis_hits), c.misses.saturating_sub(c.redis_misses));
    e.family(name, Kind::Counter, "Cache reads by the backend that answered and result (hit, miss).")
        .sample(name, &[("backend", "memory"), ("result", "hit")], mem_hits as f64)
        .sample(name, &[("backend", "memory"), ("result", "miss")], mem_misses as f64)
        .sample(name, &[("backend", "redis"), ("result", "hit")], c.redis_hits as f64)
        .sample(name, &[("backend", "redis"), ("result", "miss")], c.redis_misses as f64);
    e.family("gns3central_cache_entries", Kind::Gauge, "Live entries of the memory backend.").sample(
        "gns3central_cache_entries",
        &[],
        c.entries as f64,
    );
    e.family("gns3central_cache_evictions_total", Kind::Counter, "Memory entries evicted because it was full.").sample(
        "gns3central_cache_evictions_total",
        &[],
        c.evictions as f64,
    );
    e.family(
        "gns3central_cache_redis_fallbacks_total",
        Kind::Counter,
        "Times Redis was found down and memory took over.",
    )
    .sample("gns3central_cache_redis_fallbacks_total", &[], c.fallbacks as f64);
    let enabled = c.redis != RedisState::Disabled;
    e.family("gns3central_redis_enabled", Kind::Gauge, "1 when Redis is configured.").sample(
        "gns3central_redis_enabled",
        &[],
        f64::from(u8::from(enabled)),
    );
    e.family(
        "gns3central_redis_up",
        Kind::Gauge,
        "1 while the configured Redis answers (0 when down or not configured).",
    )
    .sample("gns3central_redis_up", &[], f64::from(u8::from(c.redis == RedisState::Up)));
}

fn sessions(e: &mut Exposition, state: &AppState) {
    let s = state.sessions.stats();
    e.family("gns3central_websocket_sessions", Kind::Gauge, "WebSocket sessions open now.").sample(
        "gns3central_websocket_sessions",
        &[],
        s.active as f64,
    );
    e.family("gns3central_websocket_sessions_opened_total", Kind::Counter, "WebSocket sessions opened since start.")
        .sample("gns3central_websocket_sessions_opened_total", &[], s.opened as f64);
    let name = "gns3central_websocket_shed_total";
    e.family(name, Kind::Counter, "Events shed for slow WebSocket clients, by priority.")
        .sample(name, &[("priority", "LOW")], s.shed_low as f64)
        .sample(name, &[("priority", "NORMAL")], s.shed_normal as f64);
    let name = "gns3central_websocket_closed_total";
    e.family(name, Kind::Counter, "WebSocket sessions closed by the service, by reason.")
        .sample(name, &[("reason", "slow_consumer")], s.closed_slow as f64)
        .sample(name, &[("reason", "timeout")], s.closed_timeout as f64)
        .sample(name, &[("reason", "oversized")], s.closed_oversized as f64);
    e.family("gns3central_websocket_actions_total", Kind::Counter, "Node actions run through WebSocket sessions.")
        .sample("gns3central_websocket_actions_total", &[], s.actions as f64);
}

//! `Application::build` wires the service once: one supervised `Gns3Connector` per
//! enabled GNS3 server, the shared `AppState`, and the actix-web server on a listener it
//! binds itself, so tests can ask for port 0 and learn the real port. With `test_mode`
//! it first starts the in-process GNS3 stand-in and points the `default` server at it.

use actix::Actor;
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use gns3_central_actors::cache::CacheActor;
use gns3_central_actors::cluster::ClusterBridge;
use gns3_central_actors::connector::{ApiVersionSetting, ConnectorConfig, EventSink, EventsSetup, Gns3Connector};
use gns3_central_actors::dispatcher::{GetExpressLane, PriorityDispatcher, Subscribe, SubscriptionFilter};
use gns3_central_actors::events::sink::dispatcher_sink;
use gns3_central_actors::modules::{ModuleContext, ModuleRegistry};
use gns3_central_actors::supervise::{self, Supervision};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::{Auth, Role};
use crate::config::Settings;
use crate::error::{ApiError, Code};
use crate::http::{openapi, routes};
use crate::simulate::{Simulator, SimulatorOptions};
use crate::state::AppState;
use futures_util::future::Either;

/// What `serve` flags change beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--no-events`: no notification ingestion or dispatch (REST only).
    pub no_events: bool,
    /// `--test-mode`: run the GNS3 stand-in in-process and use it as the `default` server.
    pub test_mode: bool,
    /// Where SIGHUP reads the configuration again (`serve`); `None`: SIGHUP is not handled.
    pub reload: Option<crate::config::live::ReloadSource>,
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    simulator: Option<Simulator>,
    generated_token: Option<String>,
}

impl Application {
    pub async fn build(mut settings: Settings, opts: ServeOptions) -> std::io::Result<Self> {
        let simulator = if opts.test_mode {
            let sim = Simulator::start(SimulatorOptions {
                bind: "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
                projects: 2,
                nodes: 6,
                links: true,
                activity: 0.2,
                seed: None,
            })
            .await?;
            tracing::info!(url = %sim.url(), "Test mode: using the built-in GNS3 stand-in.");
            let server = ConnectorConfig {
                name: "default".into(),
                host: "127.0.0.1".into(),
                port: sim.port(),
                api_version: ApiVersionSetting::V2,
                ..ConnectorConfig::default()
            };
            settings.gns3.servers = BTreeMap::from([("default".to_owned(), server)]);
            Some(sim)
        } else {
            None
        };

        let addr = settings.bind_addr().map_err(std::io::Error::other)?;
        let (auth, generated_token) = build_auth(&settings, addr)?;
        let listener = TcpListener::bind(addr)?;
        let port = listener.local_addr()?.port();

        let cache =
            CacheActor::new(settings.cache.clone(), settings.redis_config()).map_err(std::io::Error::other)?.start();
        // The dispatcher runs on its own thread, so a flood of events never slows the
        // HTTP workers or the connectors down.
        let dispatcher =
            (!opts.no_events).then(|| PriorityDispatcher::new(settings.events.clone()).start_on_own_thread());
        if let Some(d) = &dispatcher {
            // The cache follows every event, so topology reads are fresh without a TTL wait.
            d.send(Subscribe {
                label: "cache".into(),
                filter: SubscriptionFilter::all(),
                sink: cache.clone().recipient().into(),
            })
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        }
        if let (Some(d), Some(file)) = (&dispatcher, settings.log.open_file(crate::observe::events_log::FILE_NAME)?) {
            // One line per dispatched event in <log.dir>/realtime_events.log.
            d.send(Subscribe {
                label: "events-log".into(),
                filter: SubscriptionFilter::all(),
                sink: crate::observe::events_log::EventLog::new(file).start().recipient().into(),
            })
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        }
        let lane = match &dispatcher {
            Some(d) => Some(d.send(GetExpressLane).await.map_err(std::io::Error::other)?),
            None => None,
        };
        let ingest_enabled = dispatcher.is_some() && settings.gns3.auto_monitor;
        // Several instances on one Redis: each server is ingested only while this instance
        // holds its lease (the gate); the bridge joins the dispatcher to the shared log.
        let clustered = dispatcher.is_some() && settings.cluster_enabled();
        let supervision = Supervision::new(settings.supervision.policy());
        let mut gates = Vec::new();
        let mut servers = BTreeMap::new();
        for cfg in settings.servers() {
            let cfg = cfg.clone();
            tracing::info!(server = %cfg.name, url = %cfg.base_url(), events = ingest_enabled,
                "Starting GNS3 connector.");
            let name = cfg.name.clone();
            let addr = match (&dispatcher, ingest_enabled) {
                (Some(d), true) => {
                    let (d, lane, ingest) = (d.clone(), lane.clone(), settings.ingest_config());
                    let gate = clustered.then(|| {
                        let (tx, rx) = tokio::sync::watch::channel(false);
                        gates.push((name.clone(), tx));
                        rx
                    });
                    let addr = supervise::start(&supervision, "gns3_connector", &name, move |_| {
                        let sink = dispatcher_sink(d, lane);
                        let setup = match &gate {
                            // Only the ingesting instance speaks for the server (its
                            // connection events included): no event is published twice.
                            Some(g) => EventsSetup::new(&cfg.name, ingest, gated(sink, g.clone())).with_gate(g.clone()),
                            None => EventsSetup::new(&cfg.name, ingest, sink),
                        };
                        Gns3Connector::with_events(cfg, setup)
                    });
                    if clustered {
                        if let Some(d) = &dispatcher {
                            d.send(Subscribe {
                                label: format!("connector:{name}"),
                                filter: SubscriptionFilter::all(),
                                sink: addr.clone().recipient().into(),
                            })
                            .await
                            .map_err(std::io::Error::other)?
                            .map_err(std::io::Error::other)?;
                        }
                    }
                    addr
                }
                _ => supervise::start(&supervision, "gns3_connector", &name, move |_| Gns3Connector::new(cfg)),
            };
            servers.insert(name, addr);
        }
        let cluster = match (&dispatcher, clustered, settings.redis_config()) {
            (Some(d), true, Some(redis)) => {
                let info = redis.connection_info().map_err(std::io::Error::other)?;
                let bridge = ClusterBridge::new(
                    settings.cluster.clone(),
                    info,
                    &settings.cache.prefix,
                    settings.events.history_size,
                    d.clone(),
                    gates,
                )
                .map_err(std::io::Error::other)?;
                tracing::info!(instance = %bridge.instance_id(), "Cluster mode: sharing events and leases through Redis.");
                Some(bridge.start())
            }
            _ => None,
        };
        let default_server = if servers.contains_key("default") {
            "default".to_owned()
        } else {
            servers.keys().next().cloned().unwrap_or_else(|| "default".to_owned())
        };

        let audit = Arc::new(crate::observe::audit::Audit::start(audit_store(&settings)?));
        let modules = ModuleContext {
            registry: ModuleRegistry::new(settings.modules.clone(), dispatcher.clone()),
            servers: Arc::new(servers.clone()),
            default_server: default_server.clone(),
            cache: cache.clone(),
            on_action: Some(audit_module_actions(audit.clone())),
        };
        crate::state::module_store::load(&settings.modules.state_file, &modules.registry)?;
        let sinks = gns3_central_actors::sinks::start_sinks(&settings.sinks, dispatcher.as_ref(), &modules.registry)
            .await
            .map_err(std::io::Error::other)?;

        let live = Arc::new(crate::config::live::Live::new(settings.clone(), opts.reload.clone()));
        let settings = Arc::new(settings);
        let state = web::Data::new(AppState {
            servers,
            default_server,
            settings: settings.clone(),
            started_at: chrono::Utc::now(),
            started: Instant::now(),
            events_enabled: !opts.no_events,
            ingest_enabled,
            dispatcher,
            cache,
            cluster,
            auth: auth.clone(),
            sessions: Arc::default(),
            modules,
            sinks,
            metrics: Arc::default(),
            live,
            supervision,
            audit,
        });

        let max_body = settings.http.max_body_bytes;
        let app_state = state.clone();
        let metrics = state.metrics.clone();
        let test_mode = opts.test_mode;
        let mut http =
            HttpServer::new(move || {
                App::new()
                    .app_data(app_state.clone())
                    .app_data(routes::json_config(max_body))
                    .app_data(web::PayloadConfig::new(max_body))
                    .app_data(web::QueryConfig::default().error_handler(|e, _| {
                        ApiError::bad_request(Code::InvalidQuery, format!("bad query string: {e}")).into()
                    }))
                    .app_data(web::PathConfig::default().error_handler(|e, _| {
                        ApiError::bad_request(Code::InvalidPath, format!("bad path: {e}")).into()
                    }))
                    .wrap_fn({
                        let auth = auth.clone();
                        move |req, srv| match crate::auth::middleware::gate(req, &auth) {
                            Ok(req) => Either::Left(srv.call(req)),
                            Err(res) => Either::Right(std::future::ready(Ok(*res))),
                        }
                    })
                    .wrap_fn({
                        let metrics = metrics.clone();
                        move |req, srv| {
                            let method = req.method().clone();
                            let path = req.path().to_owned();
                            // The pattern (`/api/v2/servers/{server}`), never the raw path: bounded series.
                            let route = req.match_pattern();
                            let begin = Instant::now();
                            let fut = srv.call(req);
                            let metrics = metrics.clone();
                            async move {
                                let res = fut.await?;
                                let took = begin.elapsed();
                                let status = res.status().as_u16();
                                metrics.record_http(method.as_str(), route.as_deref(), status, took);
                                tracing::debug!(
                                    %method, %path, status, ms = took.as_secs_f64() * 1000.0,
                                    "Request served."
                                );
                                Ok(res)
                            }
                        }
                    })
                    .configure(routes::configure)
                    // Test hooks (README "Supervision"), only with --test-mode.
                    .configure(|cfg| {
                        if test_mode {
                            routes::debug::configure(cfg)
                        }
                    })
                    .configure(crate::ws::configure)
                    .configure(openapi::configure)
                    .configure(crate::dashboard::configure)
                    .default_service(web::to(unknown_route))
            })
            .shutdown_timeout(settings.http.shutdown_timeout_secs)
            // Signals are handled in `run_until_stopped`: WebSocket sessions get 1001 first.
            .disable_signals()
            .listen(listener)?;
        if settings.http.workers > 0 {
            http = http.workers(settings.http.workers);
        }
        let server = http.run();
        tracing::info!(%addr, port, "Listening.");
        Ok(Self { port, server, state, simulator, generated_token })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Stops the service as a signal does: sessions first (1001), then the HTTP server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { server: self.server.handle(), state: self.state.clone() }
    }

    /// URL of the GNS3 stand-in in test mode.
    pub fn simulator_url(&self) -> Option<String> {
        self.simulator.as_ref().map(|s| s.url())
    }

    /// The admin token made at start when none is configured (loopback binds only).
    pub fn generated_token(&self) -> Option<&str> {
        self.generated_token.as_deref()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the server is stopped (signal or handle), then stops the stand-in.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.shutdown_handle();
        if self.state.live.reload.is_some() {
            actix_rt::spawn(reload_on_sighup(self.state.clone()));
        }
        let mut server = self.server;
        let result = tokio::select! {
            r = &mut server => r,
            () = stop_signal() => {
                tracing::info!("Stop signal received; shutting down.");
                // The server future must keep being polled: it is what carries out the stop.
                let ((), r) = tokio::join!(stopper.shutdown(), server);
                r
            }
        };
        if let Some(sim) = self.simulator {
            sim.stop().await;
        }
        result
    }
}

/// Redis when configured, else the file in `audit.dir`, else memory (with a warning).
fn audit_store(settings: &Settings) -> std::io::Result<crate::observe::audit::store::Store> {
    use crate::observe::audit::store::{Ring, Store};
    let cap = settings.audit.max_records;
    if let Some(redis) = settings.redis_config() {
        let info = redis.connection_info().map_err(std::io::Error::other)?;
        return Store::redis(info, &settings.cache.prefix, cap, settings.cluster.redis_timeout())
            .map_err(std::io::Error::other);
    }
    if !settings.audit.dir.trim().is_empty() {
        return Store::open_file(&settings.audit.dir, cap);
    }
    tracing::warn!("No Redis and no audit.dir: the audit trail is kept in memory only and lost at exit.");
    Ok(Store::Memory(Ring::new(cap)))
}

/// A sink that drops events while `gate` is closed (another instance ingests the server).
fn gated(sink: EventSink, gate: tokio::sync::watch::Receiver<bool>) -> EventSink {
    std::rc::Rc::new(move |event| if *gate.borrow() { sink(event) } else { Box::pin(async {}) })
}

/// The credentials; with none configured, an admin token for this run on a loopback bind,
/// and a refusal to start on any other address (an open API on a network is never a default).
fn build_auth(settings: &Settings, addr: std::net::SocketAddr) -> std::io::Result<(Arc<Auth>, Option<String>)> {
    let mut auth = Auth::from_settings(&settings.auth, &addr.ip().to_string()).map_err(std::io::Error::other)?;
    if auth.has_credentials() {
        return Ok((Arc::new(auth), None));
    }
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "no API token or JWT is configured and http.bind ({addr}) is not a loopback address; \
             create a token with `gns3-central token create --name NAME --role admin` and add the \
             printed [[auth.tokens]] lines to the configuration (or bind to 127.0.0.1)"
        )));
    }
    let token = crate::auth::token::generate();
    auth.add_token("generated-admin", Role::Admin, &token);
    tracing::info!("No API token configured: an admin token for this run was printed on stdout.");
    Ok((Arc::new(auth), Some(token)))
}

/// Stops the service in order (README "Graceful shutdown"): ingestion off (GNS3 streams
/// closed), queued CRITICAL/HIGH events delivered (`shutdown.flush_ms`), WebSocket
/// sessions closed with 1001 after their buffered frames (`websocket.shutdown_grace_ms`),
/// Redis leases released, then the HTTP server stopped gracefully; all within
/// `shutdown.timeout_secs`, past which the HTTP server is stopped at once.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    state: web::Data<AppState>,
}

impl ShutdownHandle {
    pub async fn shutdown(&self) {
        let bound = std::time::Duration::from_secs_f64(self.state.settings.shutdown.timeout_secs);
        let began = Instant::now();
        if tokio::time::timeout(bound, self.steps()).await.is_err() {
            tracing::warn!(bound_secs = bound.as_secs_f64(), "Shutdown took too long; stopping now.");
            self.server.stop(false).await;
        }
        tracing::info!(ms = began.elapsed().as_millis() as u64, "Stopped.");
    }

    async fn steps(&self) {
        let st = &self.state;
        for addr in st.servers.values() {
            let _ = addr.send(gns3_central_actors::connector::StopIngest).await;
        }
        if let Some(d) = &st.dispatcher {
            let flush = std::time::Duration::from_millis(st.settings.shutdown.flush_ms);
            if let Ok((sent, pending)) = d.send(gns3_central_actors::dispatcher::FlushUrgent(flush)).await {
                tracing::info!(dispatched = sent, undelivered = pending, "Urgent events flushed.");
            }
        }
        let grace = std::time::Duration::from_millis(st.settings.websocket.shutdown_grace_ms);
        st.sessions.shutdown(grace).await;
        if let Some(c) = &st.cluster {
            let _ = c.send(gns3_central_actors::cluster::ReleaseLeases).await;
        }
        self.server.stop(true).await;
    }
}

/// Reads the configuration file again at every SIGHUP (runtime configuration).
async fn reload_on_sighup(state: web::Data<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("SIGHUP cannot be handled here; reload with PATCH /api/v2/config.");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again.");
            state.live.reload(state.get_ref()).await;
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Unknown paths and methods get the JSON error body too.
async fn unknown_route(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::not_found(Code::UnknownRoute, format!("no route for {} {} (see /api/docs/)", req.method(), req.path()))
        .error_response()
}

/// In-process modules' actions go to the audit trail as remote modules' do (`via: "module"`).
fn audit_module_actions(audit: Arc<crate::observe::audit::Audit>) -> gns3_central_actors::modules::handle::ActionHook {
    Arc::new(move |a: gns3_central_actors::modules::handle::ModuleAction| {
        let record = crate::observe::audit::AuditRecord::new(&a.module, "module", "module", a.action).target(
            &a.server,
            Some(a.project_id),
            a.node_id,
        );
        let record = match a.result {
            Ok(cid) => record.correlation((!cid.is_empty()).then_some(cid.as_str())),
            Err(e) => record.failed(&crate::error::ApiError::from(e)),
        };
        audit.record(record);
    })
}

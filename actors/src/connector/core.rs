//! `ConnectorCore`: what one `Gns3Connector` owns, as plain async code the actor wraps.
//!
//! Every call to GNS3 passes through `read` or `act`: the circuit breaker is asked first
//! (open: refused at once with `CircuitOpen`), the outcome is recorded (breaker, latency,
//! connection state), and failures are retried with backoff and jitter — reads when the
//! connection failed, actions only when the request certainly never left (a refused
//! connection), never once GNS3 may have received it. Timeouts are not retried, so a call
//! answers within the configured timeout plus at most one short backoff.
//!
//! `run_monitor` is the connection's life: (re)connect with capped backoff while GNS3 is
//! away (detect the API, log in on v3), then check `/version` every
//! `reconnect.health_interval_secs`, or at once when a call saw the connection fail.
//!
//! Shared as `Rc` between the actor and the futures it spawns (all on one arbiter), so
//! the mutable parts sit in `RefCell`s that are never borrowed across an `.await`.

use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use serde_json::json;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

use super::backoff::Backoff;
use super::breaker::{CircuitBreaker, Transition};
use super::config::{ApiVersionSetting, ConnectorConfig};
use super::correlate::Correlator;
use super::error::ConnectorError;
use super::status::{CallStats, LatencyStats, ServerStatus};
use crate::events::{EventKind, NewEvent, Source};
use crate::gns3::{ApiVersion, Gns3Client, Gns3ClientConfig, Gns3Error, Gns3Version};
use crate::metrics::{Histogram, CALL_BUCKETS};

/// Where a connector's events go. Called in order; the enqueueing happens in the call
/// itself, and the returned future completes when the event was accepted (publishers
/// feel the dispatcher's backpressure by awaiting it).
pub type EventSink = Rc<dyn Fn(NewEvent) -> LocalBoxFuture<'static, ()>>;

/// Called at every connect to GNS3, before the `server.connected` event is published
/// (start-up uses it to tell the cache, see `cache::ServerConnected`).
pub type OnConnected = Rc<dyn Fn()>;

/// How long an action's expectations wait for their events.
pub const CORRELATION_WINDOW: Duration = Duration::from_secs(15);

/// Latency samples kept for the status (the most recent calls).
const LATENCY_SAMPLES: usize = 100;

#[derive(Default)]
struct Health {
    connected: bool,
    connected_since: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    disconnects: u64,
    latencies: VecDeque<f64>,
}

pub struct ConnectorCore {
    cfg: ConnectorConfig,
    client: Gns3Client,
    breaker: RefCell<CircuitBreaker>,
    health: RefCell<Health>,
    /// Wakes the monitor when a call saw the connection fail, or succeed while down.
    wake: Notify,
    /// The connection state, for those who wait for it (ingestion).
    connected_tx: watch::Sender<bool>,
    correlator: RefCell<Correlator>,
    events: RefCell<Option<EventSink>>,
    on_connected: RefCell<Option<OnConnected>>,
    /// Calls to GNS3 by operation (`list_nodes`, `node_action`...): durations and errors.
    calls: RefCell<BTreeMap<&'static str, OpStats>>,
}

/// One operation's calls: every attempt's duration, and the attempts that failed.
#[derive(Debug, Clone)]
pub struct OpStats {
    duration: Histogram,
    errors: u64,
}

/// Counters that outlive a restart of the actor.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    pub disconnects: u64,
    pub calls: BTreeMap<&'static str, OpStats>,
}

impl ConnectorCore {
    pub fn new(cfg: ConnectorConfig, carried: Carried) -> Self {
        let client = Gns3Client::new(Gns3ClientConfig {
            base_url: cfg.base_url(),
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            api_version: match cfg.api_version {
                ApiVersionSetting::Auto => None,
                ApiVersionSetting::V2 => Some(ApiVersion::V2),
                ApiVersionSetting::V3 => Some(ApiVersion::V3),
            },
            timeout: cfg.timeout(),
        });
        let health = Health { disconnects: carried.disconnects, ..Health::default() };
        let calls = RefCell::new(carried.calls);
        Self {
            breaker: RefCell::new(CircuitBreaker::new(cfg.breaker.clone())),
            cfg,
            client,
            health: RefCell::new(health),
            wake: Notify::new(),
            connected_tx: watch::channel(false).0,
            correlator: RefCell::new(Correlator::new(CORRELATION_WINDOW)),
            events: RefCell::new(None),
            on_connected: RefCell::new(None),
            calls,
        }
    }

    /// Sends the connector's own events (server and circuit state) to `sink`.
    pub fn set_event_sink(&self, sink: EventSink) {
        *self.events.borrow_mut() = Some(sink);
    }

    /// Calls `hook` at every connect from now on.
    pub fn set_on_connected(&self, hook: OnConnected) {
        *self.on_connected.borrow_mut() = Some(hook);
    }

    /// Publishes an event in the background (enqueued now, in call order).
    pub fn emit(&self, event: NewEvent) {
        let sink = self.events.borrow().clone();
        if let Some(sink) = sink {
            actix_rt::spawn(sink(event));
        }
    }

    fn emit_kind(&self, kind: EventKind, data: serde_json::Value) {
        if self.events.borrow().is_some() {
            self.emit(NewEvent::new(kind, &self.cfg.name, Source::Central, data));
        }
    }

    /// Waits until the connector is connected.
    pub async fn wait_connected(&self) {
        let mut rx = self.connected_tx.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Registers what an action is expected to cause (before it is sent).
    pub fn expect_events(
        &self,
        project_id: uuid::Uuid,
        node_id: Option<uuid::Uuid>,
        kinds: &[EventKind],
        correlation_id: &str,
    ) {
        self.correlator.borrow_mut().expect(project_id, node_id, kinds, correlation_id, Instant::now());
    }

    /// Tags an event with the correlation id of the action that caused it, if any.
    pub fn correlate(&self, event: &mut NewEvent) {
        self.correlator.borrow_mut().tag(event, Instant::now());
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn client(&self) -> &Gns3Client {
        &self.client
    }

    pub fn carried(&self) -> Carried {
        Carried { disconnects: self.health.borrow().disconnects, calls: self.calls.borrow().clone() }
    }

    pub fn is_connected(&self) -> bool {
        self.health.borrow().connected
    }

    /// Calls to GNS3 by operation, since the connector started (restarts included).
    pub fn call_stats(&self) -> BTreeMap<String, CallStats> {
        self.calls
            .borrow()
            .iter()
            .map(|(op, s)| ((*op).to_owned(), CallStats { duration: s.duration.snapshot(), errors: s.errors }))
            .collect()
    }

    fn count_call(&self, op: &'static str, failed: bool, took: Duration) {
        let mut calls = self.calls.borrow_mut();
        let s = calls.entry(op).or_insert_with(|| OpStats { duration: Histogram::new(CALL_BUCKETS), errors: 0 });
        s.duration.observe(took);
        s.errors += u64::from(failed);
    }

    /// An idempotent read (`op` names it in the call statistics): retried on connection failures.
    pub async fn read<T, F, Fut>(&self, op: &'static str, call: F) -> Result<T, ConnectorError>
    where
        F: Fn(Gns3Client) -> Fut,
        Fut: Future<Output = Result<T, Gns3Error>>,
    {
        self.with_retries(op, call, |e| e.is_transport() && !matches!(e, Gns3Error::Timeout(_))).await
    }

    /// An action: retried only when the request certainly never reached GNS3.
    pub async fn act<T, F, Fut>(&self, op: &'static str, call: F) -> Result<T, ConnectorError>
    where
        F: Fn(Gns3Client) -> Fut,
        Fut: Future<Output = Result<T, Gns3Error>>,
    {
        self.with_retries(op, call, Gns3Error::never_sent).await
    }

    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        op: &'static str,
        call: F,
        retryable: impl Fn(&Gns3Error) -> bool,
    ) -> Result<T, ConnectorError>
    where
        F: Fn(Gns3Client) -> Fut,
        Fut: Future<Output = Result<T, Gns3Error>>,
    {
        let r = &self.cfg.retry;
        let mut backoff = Backoff::new(
            Duration::from_millis(r.initial_backoff_ms),
            Duration::from_millis(r.max_backoff_ms),
            r.jitter,
        );
        let deadline = Instant::now() + self.client.timeout();
        let mut attempt = 1;
        loop {
            self.admit()?;
            let begin = Instant::now();
            let result = call(self.client.clone()).await;
            self.record(&result, begin);
            self.count_call(op, result.is_err(), begin.elapsed());
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let delay = backoff.next_delay();
                    if attempt < r.max_attempts && retryable(&e) && Instant::now() + delay < deadline {
                        tracing::debug!(server = %self.cfg.name, attempt, error = %e, "Retrying a GNS3 call.");
                        actix_rt::time::sleep(delay).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(ConnectorError::from_gns3(&self.cfg.name, e, self.retry_after()));
                }
            }
        }
    }

    /// Asks the breaker; `CircuitOpen` when it refuses.
    fn admit(&self) -> Result<(), ConnectorError> {
        let checked = self.breaker.borrow_mut().check(Instant::now());
        match checked {
            Ok(transition) => {
                self.log_transition(transition);
                Ok(())
            }
            Err(wait) => Err(ConnectorError::CircuitOpen {
                server: self.cfg.name.clone(),
                retry_after: wait.max(Duration::from_secs(1)),
            }),
        }
    }

    /// How long callers should wait after a transport failure.
    fn retry_after(&self) -> Duration {
        Duration::from_millis(self.cfg.reconnect.max_backoff_ms).max(Duration::from_secs(1))
    }

    fn record<T>(&self, result: &Result<T, Gns3Error>, begin: Instant) {
        let now = Instant::now();
        match result {
            Err(e) if e.is_transport() => {
                let t = self.breaker.borrow_mut().on_failure(now);
                self.log_transition(t);
                self.lost(&e.to_string());
            }
            other => {
                let t = self.breaker.borrow_mut().on_success(now);
                self.log_transition(t);
                let ms = begin.elapsed().as_secs_f64() * 1000.0;
                let mut h = self.health.borrow_mut();
                if h.latencies.len() == LATENCY_SAMPLES {
                    h.latencies.pop_front();
                }
                h.latencies.push_back(ms);
                if let Err(e @ (Gns3Error::Auth(_) | Gns3Error::Protocol(_))) = other {
                    h.last_error = Some(e.to_string());
                    h.last_error_at = Some(Utc::now());
                }
                if !h.connected && other.is_ok() && self.client.api_version().is_some() {
                    // GNS3 answered a call on the API it had: the connection is back. The
                    // monitor is woken to re-check the version and login at once.
                    drop(h);
                    tracing::info!(server = %self.cfg.name, "GNS3 answers again.");
                    self.set_connected();
                    self.wake.notify_one();
                }
            }
        }
    }

    /// The connection failed: remember why, count the loss once, wake the monitor.
    fn lost(&self, reason: &str) {
        let mut h = self.health.borrow_mut();
        h.last_error = Some(reason.to_owned());
        h.last_error_at = Some(Utc::now());
        if h.connected {
            h.connected = false;
            h.connected_since = None;
            h.disconnects += 1;
            drop(h);
            tracing::warn!(server = %self.cfg.name, error = %reason, "Lost the connection to GNS3.");
            self.connected_tx.send_replace(false);
            self.emit_kind(EventKind::ServerDisconnected, json!({"url": self.cfg.base_url(), "error": reason}));
            self.wake.notify_one();
        }
    }

    fn log_transition(&self, t: Option<Transition>) {
        let name = &self.cfg.name;
        let status = || serde_json::to_value(self.breaker.borrow().status(Instant::now())).unwrap_or_default();
        match t {
            Some(Transition::Opened) => self.emit_kind(EventKind::CircuitOpened, status()),
            Some(Transition::Closed) => self.emit_kind(EventKind::CircuitClosed, status()),
            _ => {}
        }
        match t {
            Some(Transition::Opened) => tracing::warn!(server = %name,
                open_secs = self.cfg.breaker.open_secs, "Circuit opened: GNS3 calls are refused for now."),
            Some(Transition::HalfOpened) => {
                tracing::info!(server = %name, "Circuit half-open: letting probes through.")
            }
            Some(Transition::Closed) => tracing::info!(server = %name, "Circuit closed."),
            None => {}
        }
    }

    fn mark_connected(&self, version: &Gns3Version) {
        let t = self.breaker.borrow_mut().probe_succeeded(Instant::now());
        self.log_transition(t);
        if !self.is_connected() {
            tracing::info!(server = %self.cfg.name, url = %self.cfg.base_url(),
                version = %version.version,
                api = self.client.api_version().map(|a| a.prefix()).unwrap_or("?"), "Connected to GNS3.");
            self.set_connected();
        }
    }

    fn set_connected(&self) {
        {
            let mut h = self.health.borrow_mut();
            if h.connected {
                return;
            }
            h.connected = true;
            h.connected_since = Some(Utc::now());
        }
        self.connected_tx.send_replace(true);
        let hook = self.on_connected.borrow().clone();
        if let Some(hook) = hook {
            hook();
        }
        self.emit_kind(
            EventKind::ServerConnected,
            json!({
                "url": self.cfg.base_url(),
                "gns3_version": self.client.gns3_version().map(|v| v.version),
                "api_version": self.client.api_version(),
            }),
        );
    }

    /// Keeps the connection: reconnects with capped backoff while GNS3 is away, checks
    /// it periodically while connected. Runs until the actor stops.
    pub async fn run_monitor(self: Rc<Self>) {
        let rc = &self.cfg.reconnect;
        let mut backoff =
            Backoff::new(Duration::from_millis(rc.initial_backoff_ms), Duration::from_millis(rc.max_backoff_ms), 0.1);
        let health_interval = Duration::from_secs_f64(rc.health_interval_secs);
        loop {
            if !self.is_connected() {
                match self.client.connect().await {
                    Ok(version) => {
                        self.mark_connected(&version);
                        backoff.reset();
                    }
                    Err(e) => {
                        self.lost(&e.to_string());
                        if backoff.attempts() == 0 {
                            tracing::warn!(server = %self.cfg.name, url = %self.cfg.base_url(), error = %e,
                                "Cannot connect to GNS3; retrying with backoff.");
                        }
                        let delay = backoff.next_delay();
                        tokio::select! {
                            _ = actix_rt::time::sleep(delay) => {}
                            _ = self.wake.notified() => {}
                        }
                    }
                }
                continue;
            }
            tokio::select! {
                _ = actix_rt::time::sleep(health_interval) => {}
                _ = self.wake.notified() => {}
            }
            if !self.is_connected() {
                continue;
            }
            let Some(api) = self.client.api_version() else { continue };
            match self.client.fetch_version(api).await {
                Ok(v) if Some(&v.version) != self.client.gns3_version().as_ref().map(|g| &g.version) => {
                    // Another GNS3 answers on this address: connect anew (detect, log in).
                    self.lost(&format!("GNS3 version changed to {}", v.version));
                    self.client.forget_session();
                }
                Ok(_) => {
                    let t = self.breaker.borrow_mut().probe_succeeded(Instant::now());
                    self.log_transition(t);
                }
                Err(e) if e.is_transport() => self.lost(&e.to_string()),
                Err(e) => {
                    let mut h = self.health.borrow_mut();
                    h.last_error = Some(e.to_string());
                    h.last_error_at = Some(Utc::now());
                }
            }
        }
    }

    pub fn status(&self, actor_restarts: u64) -> ServerStatus {
        let h = self.health.borrow();
        let latency = if h.latencies.is_empty() {
            LatencyStats::default()
        } else {
            let n = h.latencies.len();
            LatencyStats {
                last_ms: h.latencies.back().copied(),
                mean_ms: Some(h.latencies.iter().sum::<f64>() / n as f64),
                max_ms: h.latencies.iter().copied().reduce(f64::max),
                samples: n,
            }
        };
        let api = self.client.api_version();
        ServerStatus {
            name: self.cfg.name.clone(),
            url: self.cfg.base_url(),
            connected: h.connected,
            gns3_version: self.client.gns3_version().map(|v| v.version),
            api_version: api,
            authenticated: api == Some(ApiVersion::V3) && self.client.has_token(),
            circuit: self.breaker.borrow().status(Instant::now()),
            last_error: h.last_error.clone(),
            last_error_at: h.last_error_at,
            connected_since: h.connected_since,
            disconnects: h.disconnects,
            actor_restarts,
            latency,
        }
    }
}

//! `Gns3Connector`: one supervised actor per configured GNS3 server. It owns the
//! `ConnectorCore` (HTTP client, login, circuit breaker, retries, connection monitor) and
//! answers the messages in `messages.rs`; every GNS3 call of the service goes through it.
//!
//! Handlers return `ResponseActFuture`s: calls run concurrently on the actor's context,
//! and are dropped with it, so when the actor stops their callers get a mailbox error
//! instead of hanging. Under the `Supervisor`, a stop (a `Reconnect` message) restarts
//! the same value: `restarting()` counts it, drops all connection state, and `started()`
//! waits a growing backoff before connecting when restarts come in quick succession
//! (actix's Supervisor itself has no limit and no delay).

pub mod backoff;
pub mod breaker;
pub mod config;
mod core;
pub mod correlate;
pub mod error;
pub mod forward;
pub mod ingest;
pub mod messages;
mod ops;
pub mod publish;
pub mod status;

pub use self::core::{ConnectorCore, EventSink, OnConnected};
pub use config::{ApiVersionSetting, BreakerConfig, ConnectorConfig, ReconnectConfig, RetryConfig};
pub use error::ConnectorError;
pub use forward::{Forward, ForwardError};
pub use ingest::{IngestConfig, IngestMode};
pub use messages::*;
pub use status::{CallStats, CircuitState, CircuitStatus, LatencyStats, ServerStatus};

use actix::prelude::*;
use std::rc::Rc;
use std::time::{Duration, Instant};

use self::core::Carried;
use crate::gns3::{Compute, Link, Node, Project, ServerTopology};

/// Restarts closer together than this count as one run of failures (growing delay).
const RESTART_WINDOW: Duration = Duration::from_secs(60);
const RESTART_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the connector needs to produce events: how to ingest, and where events go.
#[derive(Clone)]
pub struct EventsSetup {
    pub ingest: IngestConfig,
    pub sink: EventSink,
    state: ingest::DeriverState,
    /// With several instances: open while this instance holds the server's lease.
    gate: Option<tokio::sync::watch::Receiver<bool>>,
}

impl EventsSetup {
    pub fn new(server: &str, ingest: IngestConfig, sink: EventSink) -> Self {
        let state = ingest::DeriverState::new(server, &ingest);
        Self { ingest, sink, state, gate: None }
    }

    /// Ingest only while `gate` is open (see `cluster::lease`); meanwhile the connector
    /// follows the shared events it is sent (`Deliver`).
    pub fn with_gate(mut self, gate: tokio::sync::watch::Receiver<bool>) -> Self {
        self.gate = Some(gate);
        self
    }
}

pub struct Gns3Connector {
    cfg: ConnectorConfig,
    core: Rc<ConnectorCore>,
    events: Option<EventsSetup>,
    on_connected: Option<OnConnected>,
    ingest: Option<Rc<ingest::Ingest>>,
    /// The ingestion loop on the actor's context (cancelled by `StopIngest`).
    ingest_task: Option<SpawnHandle>,
    restarts: u64,
    /// Restarts within `RESTART_WINDOW` of each other, for the start-up delay.
    restart_run: u32,
    last_restart: Option<Instant>,
}

impl Gns3Connector {
    pub fn new(cfg: ConnectorConfig) -> Self {
        let core = Rc::new(ConnectorCore::new(cfg.clone(), Carried::default()));
        Self {
            cfg,
            core,
            events: None,
            on_connected: None,
            ingest: None,
            ingest_task: None,
            restarts: 0,
            restart_run: 0,
            last_restart: None,
        }
    }

    /// A connector that also follows GNS3's notifications and publishes events.
    pub fn with_events(cfg: ConnectorConfig, events: EventsSetup) -> Self {
        let mut me = Self::new(cfg);
        me.core.set_event_sink(events.sink.clone());
        me.events = Some(events);
        me
    }

    /// Calls `hook` at every connect to GNS3 (restarts of the actor included).
    pub fn with_on_connected(mut self, hook: OnConnected) -> Self {
        self.core.set_on_connected(hook.clone());
        self.on_connected = Some(hook);
        self
    }

    fn restart_delay(&self) -> Duration {
        if self.restart_run == 0 {
            return Duration::ZERO;
        }
        backoff::Backoff::new(RESTART_BACKOFF_INITIAL, RESTART_BACKOFF_MAX, 0.0).base(self.restart_run - 1)
    }
}

impl Actor for Gns3Connector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // With several instances it receives every shared event (`Deliver`): room for bursts.
        ctx.set_mailbox_capacity(4096);
        let delay = self.restart_delay();
        if !delay.is_zero() {
            tracing::warn!(server = %self.cfg.name, restarts = self.restarts,
                delay_ms = delay.as_millis() as u64, "Connector restarted; waiting before connecting.");
        }
        let core = self.core.clone();
        ctx.spawn(
            async move {
                actix_rt::time::sleep(delay).await;
                core.run_monitor().await;
            }
            .into_actor(self),
        );
        if let Some(ev) = &self.events {
            let ingest = ingest::Ingest::new(
                self.core.clone(),
                ev.ingest.clone(),
                ev.state.clone(),
                ev.sink.clone(),
                ev.gate.clone(),
            );
            self.ingest = Some(ingest.clone());
            self.ingest_task = Some(ctx.spawn(ingest.run().into_actor(self)));
        }
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        if let Some(i) = self.ingest.take() {
            i.shutdown();
        }
        Running::Stop
    }
}

impl Supervised for Gns3Connector {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        let now = Instant::now();
        self.restarts += 1;
        self.restart_run = match self.last_restart {
            Some(t) if now.duration_since(t) < RESTART_WINDOW => self.restart_run.saturating_add(1),
            _ => 1,
        };
        self.last_restart = Some(now);
        // A new core: new HTTP pool, no token, closed breaker; the history is kept, and so
        // is the deriver's known state (the restart then resyncs instead of seeding).
        if let Some(i) = self.ingest.take() {
            i.shutdown();
        }
        self.core = Rc::new(ConnectorCore::new(self.cfg.clone(), self.core.carried()));
        if let Some(ev) = &self.events {
            self.core.set_event_sink(ev.sink.clone());
        }
        if let Some(hook) = &self.on_connected {
            self.core.set_on_connected(hook.clone());
        }
        tracing::info!(server = %self.cfg.name, restarts = self.restarts, "Restarting the GNS3 connector.");
    }
}

impl Handler<GetServerStatus> for Gns3Connector {
    type Result = MessageResult<GetServerStatus>;
    fn handle(&mut self, _: GetServerStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.status(self.restarts))
    }
}

impl Handler<StopIngest> for Gns3Connector {
    type Result = ();
    fn handle(&mut self, _: StopIngest, ctx: &mut Self::Context) {
        if let Some(t) = self.ingest_task.take() {
            ctx.cancel_future(t);
        }
        if let Some(i) = self.ingest.take() {
            i.shutdown();
            tracing::info!(server = %self.cfg.name, "Stopped following GNS3's notifications.");
        }
        // A restart after this point must not follow GNS3 again.
        self.events = None;
    }
}

impl Handler<DebugPanic> for Gns3Connector {
    type Result = ();
    fn handle(&mut self, _: DebugPanic, _: &mut Self::Context) {
        panic!("DebugPanic: the connector of '{}' was told to panic (test hook)", self.cfg.name);
    }
}

impl Handler<SetTimeout> for Gns3Connector {
    type Result = ();
    fn handle(&mut self, msg: SetTimeout, _: &mut Self::Context) {
        // Kept in `cfg` too, so a restarted connector keeps it.
        self.cfg.timeout = msg.0.as_secs_f64();
        self.core.client().set_timeout(msg.0);
        tracing::info!(server = %self.cfg.name, timeout_secs = self.cfg.timeout, "GNS3 call timeout changed.");
    }
}

impl Handler<SetPollInterval> for Gns3Connector {
    type Result = ();
    fn handle(&mut self, msg: SetPollInterval, _: &mut Self::Context) {
        if let Some(ev) = &mut self.events {
            ev.ingest.poll_interval = msg.0;
            ev.state.set_poll_interval(msg.0);
        }
    }
}

impl Handler<GetCallStats> for Gns3Connector {
    type Result = MessageResult<GetCallStats>;
    fn handle(&mut self, _: GetCallStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.call_stats())
    }
}

/// Shared events (several instances): while another instance ingests this server, its
/// events keep this connector's deriver current (see `ingest.rs`).
impl Handler<crate::dispatcher::Deliver> for Gns3Connector {
    type Result = ();
    fn handle(&mut self, msg: crate::dispatcher::Deliver, _: &mut Self::Context) {
        let Some(ev) = &self.events else { return };
        if msg.event.server != self.cfg.name || ev.gate.as_ref().is_none_or(|g| *g.borrow()) {
            return;
        }
        ev.state.observe(&msg.event);
    }
}

impl Handler<Reconnect> for Gns3Connector {
    type Result = ();
    fn handle(&mut self, _: Reconnect, ctx: &mut Self::Context) {
        tracing::info!(server = %self.cfg.name, "Reconnect requested.");
        ctx.stop();
    }
}

/// A handler that runs one core operation as a future on the actor's context.
macro_rules! core_handler {
    ($msg:ty => $out:ty, |$core:ident, $m:ident| $body:expr) => {
        impl Handler<$msg> for Gns3Connector {
            type Result = ResponseActFuture<Self, Result<$out, ConnectorError>>;
            fn handle(&mut self, $m: $msg, _: &mut Self::Context) -> Self::Result {
                let $core = self.core.clone();
                Box::pin(async move { $body.await }.into_actor(self))
            }
        }
    };
}

core_handler!(ListComputes => Vec<Compute>, |core, _m| core.list_computes());
core_handler!(ListProjects => Vec<Project>, |core, _m| core.list_projects());
core_handler!(GetProject => Project, |core, m| core.get_project(m.project_id));
core_handler!(ListNodes => Vec<Node>, |core, m| core.list_nodes(m.project_id));
core_handler!(GetNode => Node, |core, m| core.get_node(m.project_id, m.node_id));
core_handler!(ListLinks => Vec<Link>, |core, m| core.list_links(m.project_id));
core_handler!(RunNodeAction => NodeActionOutcome, |core, m| core.node_action(m.project_id, m.node_id, m.action));
core_handler!(RunProjectAction => ProjectActionOutcome, |core, m| core.project_action(m.project_id, m.action));
core_handler!(FetchTopology => ServerTopology, |core, m| core.topology(m.project_id));

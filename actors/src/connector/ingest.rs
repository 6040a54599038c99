//! Ingestion: turns one GNS3 server's notifications into typed events.
//!
//! While the connector is connected, `Ingest` reads the topology (the first time to seed
//! the `Deriver`, afterwards to *resync*: every change missed during a gap becomes an
//! event), then follows GNS3's controller stream and the stream of every open project,
//! feeding each message to the `Deriver` and publishing what it derives, tagged with
//! correlation ids. A stream that ends, or stays silent longer than GNS3's 5 s ping
//! interval plus a margin (`silence`), is reconnected with backoff and followed by a
//! resync. Projects opened later are followed; closed or deleted ones released. In
//! `poll` mode no stream is used: the topology is read every `poll_interval` and the
//! events come from the differences.
//!
//! Following a project's stream keeps GNS3 from auto-closing that project (GNS3 closes a
//! project with `auto_close` when its last stream client leaves), which is why
//! `follow_projects` is a setting: off, node and link events come from polling.
//!
//! With several instances on one Redis, a gate (`cluster::lease`) says whether this
//! instance ingests the server. Closed, nothing is followed: the connector reads the
//! topology once as a baseline and then keeps the deriver current from the events the
//! holder publishes (`Gns3Connector`'s `Deliver` handler), so that when the gate opens
//! (the holder died) the first sync is a resync reporting exactly what subscribers missed.
//!
//! Sub-tasks (project streams, the topology flusher, resyncs) are spawned on the
//! arbiter and aborted by `shutdown`, which the actor calls when it stops.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::backoff::Backoff;
use super::core::{ConnectorCore, EventSink};
use crate::events::derive::{Deriver, StreamId};
use crate::events::NewEvent;
use crate::gns3::{Gns3Error, NotificationStream, StreamEnd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    /// Follow the notification streams (resync by reading the topology after gaps).
    Streams,
    /// Read the topology every `poll_interval` and derive events from differences.
    Poll,
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub mode: IngestMode,
    pub poll_interval: Duration,
    /// A stream silent this long is dead (GNS3 pings every 5 s when idle).
    pub silence: Duration,
    /// Follow every open project's stream (keeps GNS3 from auto-closing it).
    pub follow_projects: bool,
    /// `topology.changed` is emitted once per burst of structural changes this long.
    pub topology_burst: Duration,
}

/// The deriver's state outlives restarts of the actor, so that a restart resyncs
/// (reporting what changed meanwhile) instead of seeding anew.
#[derive(Clone)]
pub struct DeriverState {
    deriver: Rc<RefCell<Deriver>>,
    seeded: Rc<Cell<bool>>,
    /// The poll interval (`poll` mode), changeable at runtime (`SetPollInterval`).
    poll_interval: Rc<Cell<Duration>>,
}

impl DeriverState {
    pub fn new(server: &str, cfg: &IngestConfig) -> Self {
        Self {
            deriver: Rc::new(RefCell::new(Deriver::new(server, cfg.topology_burst))),
            seeded: Rc::new(Cell::new(false)),
            poll_interval: Rc::new(Cell::new(cfg.poll_interval)),
        }
    }

    /// Takes effect at the next poll.
    pub fn set_poll_interval(&self, d: Duration) {
        self.poll_interval.set(d);
    }
}

impl DeriverState {
    /// Applies an event derived by another instance (`Deriver::observe`).
    pub fn observe(&self, event: &crate::events::Event) {
        self.deriver.borrow_mut().observe(event);
    }
}

pub struct Ingest {
    core: Rc<ConnectorCore>,
    cfg: IngestConfig,
    state: DeriverState,
    sink: EventSink,
    projects: RefCell<HashMap<Uuid, JoinHandle<()>>>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    resync: Notify,
    /// Held for a whole sync (read, diff, publish): two syncs interleaved could diff an
    /// older read after a newer one and report changes backwards.
    syncing: tokio::sync::Mutex<()>,
    gate: Option<watch::Receiver<bool>>,
}

/// Why a stream could not be opened.
#[derive(Debug)]
enum OpenError {
    Gns3(Gns3Error),
    Ended(StreamEnd),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Gns3(e) => e.fmt(f),
            OpenError::Ended(e) => write!(f, "ended before its first message: {e}"),
        }
    }
}

const STREAM_BACKOFF_INITIAL: Duration = Duration::from_millis(200);
const STREAM_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Resync requests closer together than this are served by one read.
const RESYNC_DEBOUNCE: Duration = Duration::from_millis(200);

impl Ingest {
    pub fn new(
        core: Rc<ConnectorCore>,
        cfg: IngestConfig,
        state: DeriverState,
        sink: EventSink,
        gate: Option<watch::Receiver<bool>>,
    ) -> Rc<Self> {
        Rc::new(Self {
            core,
            cfg,
            state,
            sink,
            projects: RefCell::new(HashMap::new()),
            tasks: RefCell::new(Vec::new()),
            resync: Notify::new(),
            syncing: tokio::sync::Mutex::new(()),
            gate,
        })
    }

    /// Whether this instance ingests the server now (always, without a gate).
    pub fn ingesting(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| *g.borrow())
    }

    /// Runs until the actor stops (the future is dropped then, and `shutdown` called).
    pub async fn run(self: Rc<Self>) {
        let me = self.clone();
        self.tasks.borrow_mut().push(actix_rt::spawn(async move { me.flush_loop().await }));
        let me = self.clone();
        self.tasks.borrow_mut().push(actix_rt::spawn(async move { me.resync_loop().await }));
        let Some(mut gate) = self.gate.clone() else { return self.follow().await };
        loop {
            self.standby(&mut gate).await;
            tracing::info!(server = %self.core.name(), "Ingesting this server's notifications.");
            tokio::select! {
                _ = self.clone().follow() => return,
                closed = gate.wait_for(|open| !*open) => {
                    if closed.is_err() {
                        // No lease keeper any more: keep ingesting.
                        std::future::pending::<()>().await;
                    }
                }
            }
            for (_, t) in self.projects.borrow_mut().drain() {
                t.abort();
            }
            tracing::info!(server = %self.core.name(), "Another instance ingests this server; following its events.");
        }
    }

    /// While the gate is closed: seed the deriver once from a topology read (the baseline
    /// the holder's events then update), and wait.
    async fn standby(&self, gate: &mut watch::Receiver<bool>) {
        let mut backoff = Backoff::new(STREAM_BACKOFF_INITIAL, STREAM_BACKOFF_MAX, 0.2);
        loop {
            if *gate.borrow_and_update() {
                return;
            }
            if self.state.seeded.get() {
                if gate.changed().await.is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                r = gate.changed() => {
                    if r.is_err() {
                        return;
                    }
                    continue;
                }
                _ = self.core.wait_connected() => {}
            }
            match self.core.topology(None).await {
                Ok(t) => {
                    self.state.deriver.borrow_mut().seed(&t);
                    self.state.seeded.set(true);
                }
                Err(e) => {
                    tracing::debug!(server = %self.core.name(), error = %e, "Baseline read failed; retrying.");
                    actix_rt::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Follows the streams (or polls) for as long as it runs.
    async fn follow(self: Rc<Self>) {
        let mut backoff = Backoff::new(STREAM_BACKOFF_INITIAL, STREAM_BACKOFF_MAX, 0.2);
        loop {
            self.core.wait_connected().await;
            // Streams: the controller stream is opened *before* the topology is read, so
            // nothing GNS3 sends between the read and the stream is lost (it waits in the
            // socket until the read is done).
            let stream = match self.cfg.mode {
                IngestMode::Poll => None,
                IngestMode::Streams => match self.open_listening(StreamId::Controller).await {
                    Ok(s) => Some(s),
                    Err(why) => {
                        tracing::debug!(server = %self.core.name(), error = %why, "Cannot open the controller stream.");
                        self.relogin_if_refused(&why).await;
                        // GNS3 answers but its stream does not come up (a server still
                        // starting can take a while to send its first message): report
                        // what changed meanwhile from a topology read now instead of
                        // after the stream; the deriver's diff makes a repeat harmless.
                        if self.core.is_connected() {
                            self.resync.notify_one();
                        }
                        actix_rt::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            if let Err(e) = self.sync().await {
                tracing::warn!(server = %self.core.name(), error = %e, "Could not read the topology for events.");
                actix_rt::time::sleep(backoff.next_delay()).await;
                continue;
            }
            match stream {
                None => {
                    actix_rt::time::sleep(self.state.poll_interval.get()).await;
                }
                Some(stream) => {
                    self.follow_open_projects();
                    let began = Instant::now();
                    let end = self.controller_stream(stream).await;
                    if began.elapsed() > STREAM_BACKOFF_MAX {
                        backoff.reset();
                    }
                    if self.core.is_connected() {
                        tracing::info!(server = %self.core.name(), why = %end, "Controller stream ended; reconnecting.");
                    }
                    if let StreamEnd::AuthRejected(_) = end {
                        let _ = self.core.client().login().await;
                    }
                    actix_rt::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Stops every sub-task (the actor is stopping or restarting).
    pub fn shutdown(&self) {
        for (_, t) in self.projects.borrow_mut().drain() {
            t.abort();
        }
        for t in self.tasks.borrow_mut().drain(..) {
            t.abort();
        }
    }

    /// Reads the topology: seeds the deriver the first time, then publishes the
    /// differences (changes missed while no stream was followed).
    async fn sync(self: &Rc<Self>) -> Result<(), crate::connector::ConnectorError> {
        let _one_at_a_time = self.syncing.lock().await;
        let topology = self.core.topology(None).await?;
        let events = if self.state.seeded.get() {
            self.state.deriver.borrow_mut().resync(&topology, Instant::now())
        } else {
            self.state.deriver.borrow_mut().seed(&topology);
            self.state.seeded.set(true);
            Vec::new()
        };
        if !events.is_empty() {
            tracing::info!(server = %self.core.name(), events = events.len(), "Resync found changes missed meanwhile.");
        }
        self.publish(events).await;
        if self.cfg.mode == IngestMode::Streams {
            self.follow_open_projects();
        }
        Ok(())
    }

    async fn publish(&self, events: Vec<NewEvent>) {
        for mut e in events {
            self.core.correlate(&mut e);
            (self.sink)(e).await;
        }
    }

    async fn handle(&self, stream: StreamId, frame: &serde_json::Value) {
        let (events, resync) = {
            let mut d = self.state.deriver.borrow_mut();
            let events = d.on_frame(stream, frame, Instant::now());
            (events, d.take_resync_hint())
        };
        self.publish(events).await;
        if resync {
            // A snapshot restore rewrote the project (v3 even gives nodes new ids).
            self.resync.notify_one();
        }
    }

    async fn controller_stream(self: &Rc<Self>, mut stream: NotificationStream) -> StreamEnd {
        tracing::info!(server = %self.core.name(), "Following GNS3's controller notifications.");
        loop {
            match stream.next(self.cfg.silence).await {
                Ok(frame) => {
                    self.handle(StreamId::Controller, &frame).await;
                    if frame["action"].as_str().is_some_and(|a| a.starts_with("project.")) {
                        self.follow_open_projects();
                    }
                }
                Err(end) => return end,
            }
        }
    }

    /// Starts a stream task for every open project not followed yet; stops those of
    /// projects no longer open.
    fn follow_open_projects(self: &Rc<Self>) {
        if !self.cfg.follow_projects || self.cfg.mode != IngestMode::Streams {
            return;
        }
        let open = self.state.deriver.borrow().open_projects();
        let mut projects = self.projects.borrow_mut();
        projects.retain(|id, task| {
            let keep = open.contains(id) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for id in open {
            projects.entry(id).or_insert_with(|| {
                let me = self.clone();
                actix_rt::spawn(async move { me.project_stream(id).await })
            });
        }
    }

    async fn project_stream(self: Rc<Self>, project_id: Uuid) {
        let mut backoff = Backoff::new(STREAM_BACKOFF_INITIAL, STREAM_BACKOFF_MAX, 0.2);
        // Also the first opening follows a gap: what GNS3 sent between the project's
        // creation (or opening) and this stream is caught by a resync. Each costs one read
        // of the server's topology (following many projects at start-up: one each).
        let mut gap = true;
        loop {
            self.core.wait_connected().await;
            if !self.state.deriver.borrow().open_projects().contains(&project_id) {
                return;
            }
            match self.open_listening(StreamId::Project(project_id)).await {
                Ok(mut stream) => {
                    if gap {
                        // Messages may have been lost before this stream was complete: the
                        // resync reports them *before* this stream's next messages are read
                        // (they wait in the socket), so a project's events keep their order.
                        if let Err(e) = self.sync().await {
                            tracing::debug!(server = %self.core.name(), %project_id, error = %e,
                                "Resync after opening a project stream failed.");
                            self.resync.notify_one();
                        }
                    }
                    tracing::debug!(server = %self.core.name(), %project_id, "Following a project's notifications.");
                    let began = Instant::now();
                    let end = loop {
                        match stream.next(self.cfg.silence).await {
                            Ok(frame) => self.handle(StreamId::Project(project_id), &frame).await,
                            Err(end) => break end,
                        }
                    };
                    if began.elapsed() > STREAM_BACKOFF_MAX {
                        backoff.reset();
                    }
                    tracing::debug!(server = %self.core.name(), %project_id, why = %end, "Project stream ended.");
                    if let StreamEnd::AuthRejected(_) = end {
                        let _ = self.core.client().login().await;
                    }
                    gap = true;
                }
                Err(OpenError::Gns3(Gns3Error::Status { status: 404, .. })) => return,
                Err(e) => {
                    tracing::debug!(server = %self.core.name(), %project_id, error = %e, "Cannot open a project stream.");
                    self.relogin_if_refused(&e).await;
                    gap = true;
                }
            }
            actix_rt::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Opens a stream and waits for its first message. GNS3 accepts the WebSocket before
    /// it registers the listener (a message sent in between is lost) and sends a `ping`
    /// first once it has: only from then on is the stream complete, so a resync meant to
    /// cover what came before must start after this returns.
    async fn open_listening(&self, id: StreamId) -> Result<NotificationStream, OpenError> {
        let project = match id {
            StreamId::Controller => None,
            StreamId::Project(p) => Some(p),
        };
        let mut stream = self.core.client().open_stream(project).await.map_err(OpenError::Gns3)?;
        let first = stream.next(self.cfg.silence).await.map_err(OpenError::Ended)?;
        self.handle(id, &first).await;
        Ok(stream)
    }

    /// v3 refused the token on a stream: log in again before the next attempt.
    async fn relogin_if_refused(&self, e: &OpenError) {
        if let OpenError::Ended(StreamEnd::AuthRejected(_)) = e {
            let _ = self.core.client().login().await;
        }
    }

    async fn resync_loop(self: Rc<Self>) {
        loop {
            self.resync.notified().await;
            actix_rt::time::sleep(RESYNC_DEBOUNCE).await;
            if self.core.is_connected() && self.ingesting() {
                if let Err(e) = self.sync().await {
                    tracing::debug!(server = %self.core.name(), error = %e, "Resync failed; the next gap retries.");
                }
            }
        }
    }

    async fn flush_loop(self: Rc<Self>) {
        let tick = (self.cfg.topology_burst / 2).max(Duration::from_millis(50));
        loop {
            actix_rt::time::sleep(tick).await;
            if !self.ingesting() {
                continue;
            }
            let event = self.state.deriver.borrow_mut().flush_topology(Instant::now());
            if let Some(e) = event {
                (self.sink)(e).await;
            }
        }
    }
}

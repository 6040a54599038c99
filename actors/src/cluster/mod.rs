//! Several instances on one Redis: the `ClusterBridge` actor joins this instance's
//! `PriorityDispatcher` to the shared event log (`log.rs`) and keeps the ingestion lease of
//! every GNS3 server (`lease.rs`).
//!
//! Event path. Local events are queued and prioritised by the dispatcher as always; instead
//! of numbering them it hands them, in priority order, to the bridge's uplink. The bridge
//! numbers them in Redis (one script: seq, Stream, Pub/Sub). Every instance, this one
//! included, receives every event once from the Pub/Sub channel, in the log's order, and
//! injects it into its dispatcher, which fans it out and keeps it in its history. So each
//! subscriber of each instance gets each event exactly once, with the same id everywhere,
//! and no event can loop: the bridge never publishes what it received. The origin instance
//! id travels with each message (counted in the status as own / others' events).
//!
//! Gaps and restarts. The bridge subscribes, then reconciles the shared log with the
//! dispatcher's history (`reconcile.rs`: the log's history is loaded into the dispatcher,
//! or the dispatcher's written into the log): history and epoch survive a restart of an
//! instance, and of Redis. A message whose seq skips numbers (Pub/Sub dropped some) is
//! preceded by the missing events read from the Stream.
//!
//! Redis unreachable. The uplink is withdrawn (`Withdraw`): the dispatcher numbers locally
//! in the same epoch, after its last seq; the events on their way to Redis (`in_flight`:
//! handed to the log, not yet back from the channel, and what waits in the uplink) are
//! numbered first, in order. The bridge retries with backoff; when Redis is back it
//! reconciles (`reconcile.rs`) and the dispatcher follows the shared log again: a
//! subscriber of this instance sees no seam (docs/events.md#redis-outages).

pub mod config;
pub mod lease;
pub mod log;
mod reconcile;

pub use config::ClusterConfig;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use utoipa::ToSchema;

use crate::connector::backoff::Backoff;
use crate::dispatcher::{Inject, Origin, PriorityDispatcher, Rejoin, UplinkReady, Withdraw};
use crate::events::Event;
use log::{Keys, LogError, SharedLog};

/// Where the bridge stands, for `/api/v2/cluster` and the stats.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ClusterStatus {
    pub instance_id: String,
    /// Events go through the shared log now (false: Redis unreachable, numbering locally).
    pub shared: bool,
    /// The shared log's epoch, once known.
    pub epoch: Option<String>,
    /// GNS3 servers and whether this instance ingests each (holds its lease, or Redis has
    /// been unreachable for a lease time).
    pub ingesting: std::collections::BTreeMap<String, bool>,
    /// Events this instance numbered in the shared log.
    pub appended: u64,
    /// Events received from the log that this instance had appended / others had.
    pub received_own: u64,
    pub received_others: u64,
    /// Events read from the Stream to fill gaps in what Pub/Sub delivered.
    pub gap_filled: u64,
    /// Times the connection to the shared log was lost.
    pub disconnects: u64,
    pub last_error: Option<String>,
}

#[derive(Message)]
#[rtype(result = "ClusterStatus")]
pub struct GetClusterStatus;

pub struct ClusterBridge {
    shared: Rc<Shared>,
    /// The lease keepers, cancelled when the leases are released at shutdown.
    lease_tasks: Vec<SpawnHandle>,
}

/// Shutdown: stop ingesting, and give up this instance's ingestion leases at once so
/// another instance takes over without waiting for them to expire. Answers how many
/// leases were released.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ReleaseLeases;

/// Waits (at most the given time) until the bridge follows the shared log: its history
/// and epoch are loaded into the dispatcher. Start-up waits for it before serving, so a
/// client that resumes right after a restart finds the shared history, not a fresh local
/// epoch. `true` when joined; `false` after the wait (Redis unreachable: local numbering).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct WaitJoined(pub std::time::Duration);

struct Shared {
    link: crate::redis_link::RedisLink,
    cfg: ClusterConfig,
    instance: String,
    prefix: String,
    history: usize,
    log: SharedLog,
    dispatcher: Addr<PriorityDispatcher>,
    gates: Vec<(String, watch::Sender<bool>)>,
    /// Set once the bridge follows the shared log (leases wait for it).
    joined: watch::Sender<bool>,
    /// The last position known to be in the shared log (epoch, seq): what this instance
    /// numbered on its own after it is reconciled with the log when Redis returns.
    synced: RefCell<Option<(String, u64)>>,
    /// Events handed to Redis whose numbered copy has not come back yet, oldest first.
    in_flight: RefCell<std::collections::VecDeque<Event>>,
    status: RefCell<ClusterStatus>,
}

impl ClusterBridge {
    /// `prefix`: the key prefix (the cache's); `history`: events to load into the
    /// dispatcher's history; `gates`: each GNS3 server's ingestion gate.
    pub fn new(
        cfg: ClusterConfig,
        redis: crate::redis_link::RedisLink,
        prefix: &str,
        history: usize,
        dispatcher: Addr<PriorityDispatcher>,
        gates: Vec<(String, watch::Sender<bool>)>,
    ) -> Result<Self, String> {
        let instance = cfg.resolved_instance_id();
        let log = SharedLog::new(Keys::new(prefix), &instance, cfg.stream_max_len, cfg.redis_timeout());
        let status = ClusterStatus {
            instance_id: instance.clone(),
            ingesting: gates.iter().map(|(s, g)| (s.clone(), *g.borrow())).collect(),
            ..Default::default()
        };
        Ok(Self {
            lease_tasks: Vec::new(),
            shared: Rc::new(Shared {
                link: redis,
                instance,
                prefix: prefix.to_owned(),
                history,
                log,
                dispatcher,
                gates,
                joined: watch::channel(false).0,
                synced: RefCell::new(None),
                in_flight: RefCell::new(std::collections::VecDeque::new()),
                status: RefCell::new(status),
                cfg,
            }),
        })
    }

    pub fn instance_id(&self) -> &str {
        &self.shared.instance
    }
}

impl Actor for ClusterBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(instance = %self.shared.instance, "Joining the shared event log.");
        for (server, gate) in &self.shared.gates {
            let lease = lease::Lease {
                key: Keys::lease(&self.shared.prefix, server),
                me: self.shared.instance.clone(),
                ttl: self.shared.cfg.lease(),
                timeout: self.shared.cfg.redis_timeout(),
            };
            let ready = self.shared.joined.subscribe();
            let fut = lease::keep(self.shared.link.clone(), lease, server.clone(), gate.clone(), ready);
            let handle = ctx.spawn(fut.into_actor(self));
            self.lease_tasks.push(handle);
        }
        let shared = self.shared.clone();
        ctx.spawn(run(shared).into_actor(self));
    }
}

impl Handler<WaitJoined> for ClusterBridge {
    type Result = ResponseFuture<bool>;
    fn handle(&mut self, msg: WaitJoined, _: &mut Self::Context) -> Self::Result {
        let mut joined = self.shared.joined.subscribe();
        Box::pin(async move { tokio::time::timeout(msg.0, joined.wait_for(|j| *j)).await.is_ok_and(|r| r.is_ok()) })
    }
}

impl Handler<ReleaseLeases> for ClusterBridge {
    type Result = ResponseFuture<usize>;
    fn handle(&mut self, _: ReleaseLeases, ctx: &mut Self::Context) -> Self::Result {
        for h in self.lease_tasks.drain(..) {
            ctx.cancel_future(h);
        }
        let sh = self.shared.clone();
        Box::pin(async move {
            let mut released = 0;
            let timeout = sh.cfg.redis_timeout();
            let conn = tokio::time::timeout(timeout, sh.link.multiplexed()).await;
            let Ok(Ok(mut conn)) = conn else {
                tracing::warn!("Shutdown: Redis unreachable; the ingestion leases will expire by themselves.");
                return 0;
            };
            for (server, gate) in &sh.gates {
                gate.send_if_modified(|open| std::mem::replace(open, false));
                let lease = lease::Lease {
                    key: Keys::lease(&sh.prefix, server),
                    me: sh.instance.clone(),
                    ttl: sh.cfg.lease(),
                    timeout,
                };
                match lease.release(&mut conn).await {
                    Ok(true) => {
                        released += 1;
                        tracing::info!(%server, instance = %sh.instance, "Released the ingestion lease.");
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(%server, error = %e, "Could not release the ingestion lease."),
                }
            }
            released
        })
    }
}

impl Handler<GetClusterStatus> for ClusterBridge {
    type Result = MessageResult<GetClusterStatus>;
    fn handle(&mut self, _: GetClusterStatus, _: &mut Self::Context) -> Self::Result {
        let mut s = self.shared.status.borrow().clone();
        s.ingesting = self.shared.gates.iter().map(|(n, g)| (n.clone(), *g.borrow())).collect();
        MessageResult(s)
    }
}

async fn run(sh: Rc<Shared>) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5), 0.2);
    loop {
        let (tx, mut rx) = mpsc::channel::<Event>(sh.cfg.batch.max(1) * 4);
        let err = session(&sh, tx, &mut rx).await;
        // Number locally, same epoch: first what was on its way to the log, in order.
        let in_flight: Vec<Event> = sh.in_flight.borrow_mut().drain(..).collect();
        let n = sh.dispatcher.send(Withdraw { in_flight, rx: Some(rx) }).await.unwrap_or(0);
        if n > 0 {
            tracing::warn!(events = n, "Events on their way to the shared log numbered locally.");
        }
        {
            let mut st = sh.status.borrow_mut();
            if st.shared {
                st.disconnects += 1;
            }
            st.shared = false;
            st.last_error = Some(err.to_string());
        }
        tracing::warn!(error = %err, "Shared event log unreachable; numbering events locally until it returns.");
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// One connected stretch; returns why it ended.
async fn session(sh: &Rc<Shared>, tx: mpsc::Sender<Event>, rx: &mut mpsc::Receiver<Event>) -> LogError {
    let timeout = sh.cfg.redis_timeout();
    let connect = async {
        let conn =
            tokio::time::timeout(timeout, sh.link.multiplexed()).await.map_err(|_| LogError::Timeout(timeout))??;
        let mut pubsub =
            tokio::time::timeout(timeout, sh.link.pubsub()).await.map_err(|_| LogError::Timeout(timeout))??;
        tokio::time::timeout(timeout, pubsub.subscribe(&sh.log.keys().channel))
            .await
            .map_err(|_| LogError::Timeout(timeout))??;
        Ok::<_, LogError>((conn, pubsub))
    };
    let (mut conn, pubsub) = match connect.await {
        Ok(c) => c,
        Err(e) => return e,
    };
    // Subscribed first, then reconciled: nothing published meanwhile is missed (what the
    // reconciliation already covers is skipped by seq). From `Rejoin` on, local events
    // wait in the uplink, so the snapshot stays true while the log is reconciled with it.
    let Ok(snapshot) = sh.dispatcher.send(Rejoin(tx)).await else {
        return LogError::Protocol("dispatcher stopped".into());
    };
    let position = match reconcile::reconcile(sh, &mut conn, snapshot).await {
        Ok(p) => p,
        Err(e) => return e,
    };
    *sh.synced.borrow_mut() = Some(position.clone());
    {
        let mut st = sh.status.borrow_mut();
        st.shared = true;
        st.epoch = Some(position.0.clone());
        st.last_error = None;
    }
    sh.joined.send_replace(true);
    tracing::info!(instance = %sh.instance, epoch = %position.0, last_seq = position.1, "Following the shared event log.");
    let pump_conn = conn.clone();
    tokio::select! {
        e = pump(sh, rx, pump_conn) => e,
        e = listen(sh, pubsub, conn, Some(position)) => e,
    }
}

/// Numbers what the dispatcher hands over, in batches, in its order. Each batch stays in
/// `in_flight` until its numbered copy comes back from the channel (`listen`).
async fn pump(
    sh: &Rc<Shared>,
    rx: &mut mpsc::Receiver<Event>,
    mut conn: redis::aio::MultiplexedConnection,
) -> LogError {
    let max = sh.cfg.batch.max(1);
    loop {
        let Some(first) = rx.recv().await else {
            return LogError::Protocol("dispatcher stopped".into());
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        // The dispatcher may refill the uplink now.
        sh.dispatcher.do_send(UplinkReady);
        sh.in_flight.borrow_mut().extend(batch.iter().cloned());
        let fallback = sh.synced.borrow().clone().unwrap_or_else(|| (Origin::fresh().epoch().to_owned(), 0));
        match sh.log.append(&mut conn, &batch, &fallback.0, fallback.1).await {
            Ok((_, seqs)) => sh.status.borrow_mut().appended += seqs.len() as u64,
            Err(e) => return e,
        }
    }
}

/// Injects every event of the channel, in order, filling gaps from the Stream.
async fn listen(
    sh: &Rc<Shared>,
    pubsub: redis::aio::PubSub,
    mut conn: redis::aio::MultiplexedConnection,
    mut position: Option<(String, u64)>,
) -> LogError {
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        let Some((origin, event, json)) = log::parse_message(msg.get_payload_bytes()) else {
            tracing::warn!("Unreadable message on the shared event channel; ignored.");
            continue;
        };
        let mut batch: Vec<(Arc<Event>, Bytes)> = Vec::new();
        match &position {
            Some((epoch, last)) if *epoch == event.epoch => {
                if event.seq <= *last {
                    continue;
                }
                if event.seq > last + 1 {
                    let missing = (event.seq - last - 1) as usize;
                    match sh.log.after(&mut conn, epoch, *last, missing.min(sh.history.max(1))).await {
                        Ok(found) => {
                            sh.status.borrow_mut().gap_filled += found.len() as u64;
                            batch.extend(
                                found.into_iter().filter(|(e, _)| e.seq < event.seq).map(|(e, j)| (Arc::new(e), j)),
                            );
                        }
                        Err(e) => return e,
                    }
                }
            }
            _ => {
                // A new epoch (the log was reset): follow it from here.
                sh.status.borrow_mut().epoch = Some(event.epoch.clone());
            }
        }
        {
            let mut st = sh.status.borrow_mut();
            if origin == sh.instance {
                st.received_own += 1;
                // Our own events come back in the order they were appended. (One that
                // only a gap fill brought back stays counted in flight: rare, Pub/Sub
                // drops nothing on a live connection.)
                sh.in_flight.borrow_mut().pop_front();
            } else {
                st.received_others += 1;
            }
        }
        position = Some((event.epoch.clone(), event.seq));
        *sh.synced.borrow_mut() = position.clone();
        batch.push((Arc::new(event), json));
        if sh.dispatcher.send(Inject(batch)).await.is_err() {
            return LogError::Protocol("dispatcher stopped".into());
        }
    }
    LogError::Protocol("the Pub/Sub connection closed".into())
}

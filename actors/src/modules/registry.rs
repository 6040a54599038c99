//! `ModuleRegistry`: the registered modules by name (each a supervised `ModuleProxy` on
//! the bus's arbiter, its counters, and the SHA-256 of its token), the router of the bus,
//! and the table of requests waiting for their reply.
//!
//! Shared by the HTTP workers, the sessions and in-process handles as an `Arc` (a std
//! `RwLock` held only to look up or change the map, never across an await). Routing is a
//! lookup and a `try_send`, so senders never wait for a module. A reply (a message whose
//! `correlation_id` is a pending request's id, sent to that request's sender) completes
//! the request directly, without going through the requester's inbox.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::config::{ModulesConfig, OfflinePolicy};
use super::envelope::{validate_module_name, BusMessage};
use super::error::BusError;
use super::messages::{Inbound, Retire};
use super::shared::{SharedBus, SharedConfig};
use super::stats::{BusDeadLetters, ModuleKind, ModuleStats, ModuleStatus};
use super::ModuleProxy;
use crate::dispatcher::PriorityDispatcher;

pub struct ModuleSlot {
    pub id: Uuid,
    pub name: String,
    pub kind: ModuleKind,
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the module's token (remote modules only).
    pub(super) digest: Option<[u8; 32]>,
    pub addr: Addr<ModuleProxy>,
    pub stats: Arc<ModuleStats>,
    /// A remote module of the shared bus (its registration, queue and account in Redis).
    pub shared: bool,
    /// The mirror's generation when it was added (`shared/mirror.rs`).
    pub(super) gen: u64,
}

impl std::fmt::Debug for ModuleSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleSlot").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl ModuleSlot {
    pub fn status(&self) -> ModuleStatus {
        ModuleStatus {
            id: self.id.to_string(),
            name: self.name.clone(),
            kind: self.kind,
            created_at: self.created_at,
            stats: self.stats.snapshot(),
        }
    }
}

/// What `route` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// Proxies that took the message (for a reply: 1 when it completed a request).
    pub accepted: usize,
    /// Broadcast targets that refused it (full inbox, offline with `refuse`), by name.
    pub refused: Vec<String>,
}

/// Why a module token was not accepted for a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    UnknownModule,
    /// The token is another module's.
    OtherModule(String),
    /// Not a module token at all.
    NotAModuleToken,
    /// Shared bus: the name is not known here and Redis could not be asked.
    BusUnavailable(String),
}

/// Bus-wide counters (`GET /api/v2/bus/stats`).
#[derive(Debug, Default)]
pub struct BusCounters {
    pub routed: AtomicU64,
    pub broadcasts: AtomicU64,
    pub refused: AtomicU64,
    pub requests: AtomicU64,
    pub replies: AtomicU64,
    pub timeouts: AtomicU64,
    pub late_replies: AtomicU64,
}

pub(super) struct Pending {
    pub(super) requester: String,
    pub(super) tx: oneshot::Sender<BusMessage>,
    /// A socket module's request (`request_held`): its reply counts in the requester's
    /// account when its proxy takes it (`HandReply`), not here.
    pub(super) held: bool,
}

/// The receiving end of a held request: a reply that reached it and was never taken
/// (the session's future was dropped, its session having stopped) goes to the
/// requester's proxy, which queues it (`HandReply`).
struct HeldReply {
    rx: Option<oneshot::Receiver<BusMessage>>,
    proxy: Option<Addr<ModuleProxy>>,
}

impl Drop for HeldReply {
    fn drop(&mut self) {
        if let (Some(mut rx), Some(proxy)) = (self.rx.take(), self.proxy.take()) {
            if let Ok(msg) = rx.try_recv() {
                proxy.do_send(super::messages::HandReply { session: None, msg, request_id: None });
            }
        }
    }
}

pub struct ModuleRegistry {
    pub(super) cfg: ModulesConfig,
    slots: RwLock<HashMap<String, Arc<ModuleSlot>>>,
    pub(super) pending: Mutex<HashMap<String, Pending>>,
    dead: Arc<BusDeadLetters>,
    dispatcher: Option<Addr<PriorityDispatcher>>,
    pub(super) arbiter: ArbiterHandle,
    pub counters: BusCounters,
    /// Shared mode (`shared/`): the bus in Redis; `None`: this instance's bus only.
    pub(super) shared: Option<Arc<SharedBus>>,
    /// Changes of the mirror of shared registrations (`shared/mirror.rs`).
    pub(super) gen: AtomicU64,
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        d |= x ^ y;
    }
    std::hint::black_box(d) == 0
}

impl ModuleRegistry {
    /// A registry whose proxies run on a new arbiter (call within a running actix system).
    pub fn new(cfg: ModulesConfig, dispatcher: Option<Addr<PriorityDispatcher>>) -> Arc<Self> {
        let arbiter = Arbiter::new().handle();
        Arc::new(Self {
            dead: BusDeadLetters::new(cfg.dead_letter_capacity),
            cfg,
            slots: RwLock::default(),
            pending: Mutex::default(),
            dispatcher,
            arbiter,
            counters: BusCounters::default(),
            shared: None,
            gen: AtomicU64::new(0),
        })
    }

    /// A registry on the shared bus (docs/modules.md#several-instances): remote modules'
    /// registrations, queues and accounts in Redis, reached through `link`. Call within a
    /// running actix system; the uplink and the mirror run on the bus's arbiter.
    pub fn new_shared(
        cfg: ModulesConfig,
        dispatcher: Option<Addr<PriorityDispatcher>>,
        shared: SharedConfig,
        link: crate::redis_link::RedisLink,
    ) -> Arc<Self> {
        let arbiter = Arbiter::new().handle();
        let bus = SharedBus::new(shared, link);
        let me = Arc::new(Self {
            dead: BusDeadLetters::new(cfg.dead_letter_capacity),
            cfg,
            slots: RwLock::default(),
            pending: Mutex::default(),
            dispatcher,
            arbiter,
            counters: BusCounters::default(),
            shared: Some(bus),
            gen: AtomicU64::new(0),
        });
        super::shared::mirror::start(&me);
        me
    }

    /// The shared bus, in shared mode.
    pub fn shared(&self) -> Option<&Arc<SharedBus>> {
        self.shared.as_ref()
    }

    /// Stops this registry's proxies and its bus tasks at once, releasing nothing (what a
    /// crash does: leases expire, held messages are given back by the next holder). For
    /// tests; a stopping service calls `release_shared` instead.
    pub fn halt(&self) {
        self.arbiter.stop();
    }

    pub fn config(&self) -> &ModulesConfig {
        &self.cfg
    }

    pub fn dispatcher(&self) -> Option<&Addr<PriorityDispatcher>> {
        self.dispatcher.as_ref()
    }

    pub fn dead_letters(&self) -> &Arc<BusDeadLetters> {
        &self.dead
    }

    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ModuleSlot>>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<ModuleSlot>>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a module and starts its proxy. `digest`: SHA-256 of its token (remote).
    pub fn register(
        &self,
        name: &str,
        kind: ModuleKind,
        digest: Option<[u8; 32]>,
    ) -> Result<Arc<ModuleSlot>, BusError> {
        self.register_as(name, kind, digest, Uuid::new_v4(), Utc::now())
    }

    /// `register` keeping the id and creation time a module had before a restart.
    pub fn register_as(
        &self,
        name: &str,
        kind: ModuleKind,
        digest: Option<[u8; 32]>,
        id: Uuid,
        created_at: DateTime<Utc>,
    ) -> Result<Arc<ModuleSlot>, BusError> {
        validate_module_name(name)?;
        let mut slots = self.write();
        if slots.contains_key(name) {
            return Err(BusError::AlreadyRegistered(name.to_owned()));
        }
        if slots.len() >= self.cfg.max_modules {
            return Err(BusError::TooManyModules(self.cfg.max_modules));
        }
        let shared = if kind == ModuleKind::Remote { self.shared.clone() } else { None };
        let slot = self.new_slot(name, kind, digest, id, created_at, shared);
        slots.insert(name.to_owned(), slot.clone());
        tracing::info!(module = %name, ?kind, "Module registered.");
        Ok(slot)
    }

    /// A slot and its proxy (on the shared bus when `shared`).
    pub(super) fn new_slot(
        &self,
        name: &str,
        kind: ModuleKind,
        digest: Option<[u8; 32]>,
        id: Uuid,
        created_at: DateTime<Utc>,
        shared: Option<Arc<SharedBus>>,
    ) -> Arc<ModuleSlot> {
        let stats = Arc::new(ModuleStats::default());
        let (n, c, s, d, disp) =
            (name.to_owned(), self.cfg.clone(), stats.clone(), self.dead.clone(), self.dispatcher.clone());
        let on_bus = shared.is_some();
        let addr = Supervisor::start_in_arbiter(&self.arbiter, move |_| {
            ModuleProxy::new(&n, c, s, d, disp).on_shared_bus(shared.clone())
        });
        let gen = self.gen.fetch_add(1, Relaxed) + 1;
        Arc::new(ModuleSlot { id, name: name.to_owned(), kind, created_at, digest, addr, stats, shared: on_bus, gen })
    }

    /// Unregisters a module: its waiting messages are dead-lettered, its connection closed.
    pub fn remove(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        let slot = self.write().remove(name)?;
        slot.addr.do_send(Retire);
        tracing::info!(module = %name, "Module deleted.");
        Some(slot)
    }

    /// The stored form of a remote module's token (for the edge's registration file).
    pub fn digest_of(&self, name: &str) -> Option<[u8; 32]> {
        self.read().get(name).and_then(|s| s.digest)
    }

    pub fn get(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        self.read().get(name).cloned()
    }

    pub fn list(&self) -> Vec<ModuleStatus> {
        let mut all: Vec<ModuleStatus> = self.read().values().map(|s| s.status()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Modules connected now (a hook for metrics).
    pub fn connected_count(&self) -> usize {
        self.read().values().filter(|s| s.stats.connected.load(Relaxed)).count()
    }

    /// Whether a token (its SHA-256) is `name`'s. Every stored hash is compared, in
    /// constant time, so the answer's timing says nothing about which one matched.
    pub fn authenticate(&self, name: &str, digest: &[u8; 32]) -> Result<Arc<ModuleSlot>, AuthFailure> {
        let slots = self.read();
        let mut owner: Option<&Arc<ModuleSlot>> = None;
        for slot in slots.values() {
            if slot.digest.as_ref().is_some_and(|d| ct_eq(d, digest)) && owner.is_none() {
                owner = Some(slot);
            }
        }
        match (owner, slots.get(name)) {
            (Some(o), Some(_)) if o.name == name => Ok(o.clone()),
            (Some(o), _) => Err(AuthFailure::OtherModule(o.name.clone())),
            (None, Some(_)) => Err(AuthFailure::NotAModuleToken),
            (None, None) => Err(AuthFailure::UnknownModule),
        }
    }

    /// Whether any module has this token (to refuse module tokens where they do not belong).
    pub fn is_module_token(&self, digest: &[u8; 32]) -> bool {
        self.read().values().any(|s| s.digest.as_ref().is_some_and(|d| ct_eq(d, digest)))
    }

    /// Sends a message: to one module, to every other one (`*`), or, when it answers a
    /// pending request of its target, to that request. Never waits for a module.
    ///
    /// Shared mode: a message for a module of the shared bus is handed to the uplink and
    /// counted accepted; its outcome (a refusal) is in the target's account only. Use
    /// `send` for the outcome.
    pub fn route(&self, msg: BusMessage) -> Result<Routed, BusError> {
        msg.validate()?;
        if self.shared.is_some() && self.needs_bus(&msg) {
            drop(self.send(msg));
            return Ok(Routed { accepted: 1, refused: vec![] });
        }
        if let Some(done) = self.complete_request(&msg) {
            return done;
        }
        let from = msg.from.clone();
        let out = self.route_new(msg)?;
        if let Some(f) = self.get(&from) {
            f.stats.sent.fetch_add(1, Relaxed);
        }
        Ok(out)
    }

    pub(super) fn route_new(&self, msg: BusMessage) -> Result<Routed, BusError> {
        if msg.is_broadcast() {
            if msg.reply_to.is_some() {
                return Err(BusError::Invalid("a request needs one target module, not '*'".into()));
            }
            self.counters.broadcasts.fetch_add(1, Relaxed);
            // Built-in modules (the sinks) take events, not bus messages.
            let targets: Vec<Arc<ModuleSlot>> =
                self.read().values().filter(|s| s.name != msg.from && s.kind != ModuleKind::Builtin).cloned().collect();
            let msg = Arc::new(msg);
            let mut out = Routed::default();
            for t in targets {
                match self.deliver(&t, msg.clone()) {
                    Ok(()) => out.accepted += 1,
                    Err(_) => out.refused.push(t.name.clone()),
                }
            }
            self.counters.routed.fetch_add(1, Relaxed);
            return Ok(out);
        }
        let Some(target) = self.get(&msg.to) else {
            self.counters.refused.fetch_add(1, Relaxed);
            return Err(BusError::UnknownModule(msg.to));
        };
        if target.kind == ModuleKind::Builtin {
            target.stats.msg_sent.fetch_add(1, Relaxed);
            target.stats.msg_refused.fetch_add(1, Relaxed);
            self.counters.refused.fetch_add(1, Relaxed);
            return Err(BusError::Invalid(format!("module '{}' is built in and takes no bus messages", target.name)));
        }
        self.deliver(&target, Arc::new(msg)).inspect_err(|_| {
            self.counters.refused.fetch_add(1, Relaxed);
        })?;
        self.counters.routed.fetch_add(1, Relaxed);
        Ok(Routed { accepted: 1, refused: vec![] })
    }

    /// Hands a message to its target's proxy; every outcome is in the target's account
    /// (`MessageAccount`): sent, and either waiting in the proxy's mailbox or refused.
    pub(super) fn deliver(&self, target: &ModuleSlot, msg: Arc<BusMessage>) -> Result<(), BusError> {
        let stats = &target.stats;
        stats.msg_sent.fetch_add(1, Relaxed);
        let online = stats.connected.load(Relaxed);
        let refused = if !online && (self.cfg.offline_policy == OfflinePolicy::Refuse || msg.ttl == 0) {
            BusError::Offline(target.name.clone())
        } else {
            stats.in_mailbox.fetch_add(1, Relaxed);
            let e = match target.addr.try_send(Inbound(msg)) {
                Ok(()) => return Ok(()),
                Err(SendError::Full(_)) => {
                    stats.failed.fetch_add(1, Relaxed);
                    BusError::InboxFull(target.name.clone())
                }
                Err(SendError::Closed(_)) => BusError::Unavailable,
            };
            stats.in_mailbox.fetch_sub(1, Relaxed);
            e
        };
        stats.msg_refused.fetch_add(1, Relaxed);
        Err(refused)
    }

    /// A reply to a pending request of its target: completes it (`Some`), else `None`.
    pub(super) fn complete_request(&self, msg: &BusMessage) -> Option<Result<Routed, BusError>> {
        let c = msg.correlation_id.as_deref()?;
        let pending = {
            let mut table = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match table.get(c) {
                Some(p) if p.requester == msg.to => table.remove(c),
                _ => None,
            }
        }?;
        self.counters.replies.fetch_add(1, Relaxed);
        if pending.tx.send(msg.clone()).is_err() {
            // The requester stopped waiting (timed out) just now: a plain message, as a
            // reply that comes after the timeout.
            self.counters.late_replies.fetch_add(1, Relaxed);
            return None;
        }
        if let Some(f) = self.get(&msg.from) {
            f.stats.sent.fetch_add(1, Relaxed);
        }
        if let Some(r) = self.get(&msg.to).filter(|_| !pending.held) {
            // Handed to the waiting request (HTTP, in-process): received.
            r.stats.msg_sent.fetch_add(1, Relaxed);
            r.stats.delivered.fetch_add(1, Relaxed);
        }
        Some(Ok(Routed { accepted: 1, refused: vec![] }))
    }

    /// Sends a request and waits for its reply, at most `timeout` (`ReplyTimeout`).
    pub async fn request(&self, msg: BusMessage, timeout: Duration) -> Result<BusMessage, BusError> {
        self.request_as(msg, timeout, None).await
    }

    /// `request` for a module connected by a socket (local bus): the reply is not counted
    /// received when it comes, but when its frame is written; the caller hands it to the
    /// requester's proxy (`HandReply`), and if the caller stops first it is handed there
    /// as a plain message (docs/modules.md#status). On the shared bus, as `request`.
    pub async fn request_held(&self, msg: BusMessage, timeout: Duration) -> Result<BusMessage, BusError> {
        let proxy = self.get(&msg.from).filter(|s| s.kind == ModuleKind::Remote && !s.shared).map(|s| s.addr.clone());
        self.request_as(msg, timeout, proxy).await
    }

    async fn request_as(
        &self,
        mut msg: BusMessage,
        timeout: Duration,
        proxy: Option<Addr<ModuleProxy>>,
    ) -> Result<BusMessage, BusError> {
        if msg.is_broadcast() {
            return Err(BusError::Invalid("a request needs one target module, not '*'".into()));
        }
        msg.reply_to = Some(msg.from.clone());
        let (tx, rx) = oneshot::channel();
        let id = msg.id.clone();
        let to = msg.to.clone();
        {
            let mut table = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if table.len() >= self.cfg.max_pending_requests {
                return Err(BusError::TooManyPending(self.cfg.max_pending_requests));
            }
            table.insert(id.clone(), Pending { requester: msg.from.clone(), tx, held: proxy.is_some() });
        }
        self.count("requests", &self.counters.requests);
        let forget = || {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        };
        let sent = match &self.shared {
            Some(_) => self.send_request(msg, timeout).await,
            None => self.route(msg),
        };
        if let Err(e) = sent {
            forget();
            return Err(e);
        }
        let mut held = HeldReply { rx: Some(rx), proxy };
        let Some(rx) = held.rx.as_mut() else { return Err(BusError::Unavailable) };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => {
                held.proxy = None;
                Ok(reply)
            }
            Ok(Err(_)) | Err(_) => {
                forget();
                self.count("timeouts", &self.counters.timeouts);
                Err(BusError::ReplyTimeout { to, after: timeout })
            }
        }
    }

    /// Requests waiting for their reply. A reply that comes after its request timed out
    /// is routed as a plain message to the requester.
    pub fn pending_requests(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

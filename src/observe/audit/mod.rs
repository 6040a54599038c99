//! The audit trail: every action taken through the service — REST node and project
//! actions (versioned and original paths), WebSocket `node_action`, reconnects, runtime
//! configuration changes, and later the modules' — recorded with who (the token's name
//! or `jwt:<sub>`), what, the target, the outcome and the correlation id. Kept in Redis
//! or an append-only file (`store.rs`) so it survives a restart; read with
//! `GET /api/v2/audit` (admin, newest first, paged with `before`, filterable).
//!
//! `Audit::record` is fire-and-forget (a handler never waits for the store); the
//! `AuditActor` writes one record at a time, in arrival order. Module code records its
//! actions with the same call (`via: "module"`). While Redis is unreachable records go to
//! the spool (`spool.rs`) and are written to Redis, in order, when it returns (the actor
//! tries every second while the spool holds records).

pub mod spool;
pub mod store;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::store::{QueryError, Store};

/// One action taken through the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Set by the store: a number (file, memory) or a Redis stream id; the paging cursor.
    #[serde(default)]
    pub id: String,
    pub time: DateTime<Utc>,
    /// The credential's name: an API token's `name`, or `jwt:<sub>`.
    pub who: String,
    pub role: String,
    /// `rest`, `websocket` or `module`.
    pub via: String,
    /// `node.start`, `project.open`, `server.reconnect`, `config.patch`...
    pub action: String,
    pub server: Option<String>,
    pub project_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    /// `ok` or `error`.
    pub outcome: String,
    /// The error's code and HTTP status when `outcome` is `error`.
    pub error_code: Option<String>,
    pub status: Option<u16>,
    pub correlation_id: Option<String>,
    /// Anything else worth keeping (e.g. the keys a configuration change touched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl AuditRecord {
    /// A record of `action` by `who`; the rest is filled with the builder methods.
    pub fn new(who: &str, role: &str, via: &str, action: impl Into<String>) -> Self {
        Self {
            id: String::new(),
            time: Utc::now(),
            who: who.to_owned(),
            role: role.to_owned(),
            via: via.to_owned(),
            action: action.into(),
            server: None,
            project_id: None,
            node_id: None,
            outcome: "ok".into(),
            error_code: None,
            status: None,
            correlation_id: None,
            details: None,
        }
    }

    pub fn target(mut self, server: &str, project: Option<Uuid>, node: Option<Uuid>) -> Self {
        self.server = Some(server.to_owned());
        self.project_id = project;
        self.node_id = node;
        self
    }

    /// The outcome of an `ApiError` result; the correlation id from the error's details.
    pub fn failed(mut self, e: &crate::error::ApiError) -> Self {
        self.outcome = "error".into();
        self.error_code = Some(e.code.as_str().to_owned());
        self.status = Some(e.status.as_u16());
        if self.correlation_id.is_none() {
            self.correlation_id =
                e.details.as_ref().and_then(|d| d.get("correlation_id")).and_then(|c| c.as_str()).map(str::to_owned);
        }
        self
    }

    pub fn correlation(mut self, id: Option<&str>) -> Self {
        self.correlation_id = id.map(str::to_owned);
        self
    }

    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = Some(d);
        self
    }

    /// The outcome of `res`: its correlation id when it succeeded, the error otherwise.
    pub fn result<T>(self, res: &Result<T, crate::error::ApiError>, corr: impl Fn(&T) -> &str) -> Self {
        match res {
            Ok(v) => {
                let id = corr(v).to_owned();
                self.correlation((!id.is_empty()).then_some(id.as_str()))
            }
            Err(e) => self.failed(e),
        }
    }
}

/// Filters and paging of `GET /api/v2/audit`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Records older than this id (the previous page's `next_before`).
    #[param(pattern = r"^[0-9]{1,19}(-[0-9]{1,19})?$", example = "42")]
    pub before: Option<String>,
    /// Records per page, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    pub who: Option<String>,
    /// Exact action (`node.stop`) or a prefix ending in `.` (`node.`).
    pub action: Option<String>,
    /// `ok` or `error`.
    pub outcome: Option<String>,
    pub server: Option<String>,
    pub project_id: Option<Uuid>,
    /// `rest`, `websocket` or `module`.
    pub via: Option<String>,
}

impl AuditQuery {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 500)
    }

    pub fn matches(&self, r: &AuditRecord) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let action =
            self.action.as_deref().is_none_or(
                |a| {
                    if a.ends_with('.') {
                        r.action.starts_with(a)
                    } else {
                        r.action == a
                    }
                },
            );
        eq(&self.who, &r.who)
            && action
            && eq(&self.outcome, &r.outcome)
            && eq(&self.via, &r.via)
            && self.server.as_deref().is_none_or(|s| r.server.as_deref() == Some(s))
            && self.project_id.is_none_or(|p| r.project_id == Some(p))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// `redis`, `file` or `memory`.
    pub backend: &'static str,
    /// Newest first.
    pub records: Vec<AuditRecord>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<String>,
    /// Records waiting in the spool for Redis to return (shown first, ids `s<n>`).
    pub spooled: usize,
    /// Redis could not be read: the page holds only the spooled records.
    pub partial: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Record(AuditRecord);

#[derive(Message)]
#[rtype(result = "Result<AuditPage, QueryError>")]
struct Query(AuditQuery);

/// Writes the spool to Redis (sent every `FLUSH_EVERY` while it holds records).
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

/// Shutdown: one last try to write the spool to Redis, then the writer stops (what is
/// left stays in the spool file for the next start).
#[derive(Message)]
#[rtype(result = "()")]
struct Close;

impl Handler<Close> for AuditActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, _: Close, _: &mut Self::Context) -> Self::Result {
        let mut store = self.store.take();
        AtomicResponse::new(Box::pin(
            async move {
                if let Some(s) = store.as_mut().filter(|s| s.spooled() > 0) {
                    if let Err(e) = s.flush().await {
                        tracing::warn!(error = %e, left = s.spooled(), "Audit records stay spooled until the next start.");
                    }
                }
                store
            }
            .into_actor(self)
            .map(|store, act, ctx| {
                act.store = store;
                ctx.stop();
            }),
        ))
    }
}

const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

type Counter = std::sync::Arc<std::sync::atomic::AtomicU64>;

pub struct AuditActor {
    store: Option<Store>,
    failures: Counter,
    spooled: Counter,
}

impl Actor for AuditActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(FLUSH_EVERY, |act, ctx| {
            if act.spooled.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                ctx.notify(Flush);
            }
        });
    }
}

impl Handler<Flush> for AuditActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        let mut store = self.store.take();
        let spooled = self.spooled.clone();
        AtomicResponse::new(Box::pin(
            async move {
                if let Some(s) = store.as_mut() {
                    if let Err(e) = s.flush().await {
                        tracing::debug!(error = %e, left = s.spooled(), "Redis still cannot take the spooled audit records.");
                    }
                    spooled.store(s.spooled() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                store
            }
            .into_actor(self)
            .map(|store, act, _| act.store = store),
        ))
    }
}

impl Handler<Record> for AuditActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: Record, _: &mut Self::Context) -> Self::Result {
        // An atomic response: the actor handles nothing else meanwhile, so records are
        // written one at a time in arrival order and a query sees every earlier write.
        // The store is taken for the call and put back.
        let mut store = self.store.take();
        let failures = self.failures.clone();
        let spooled = self.spooled.clone();
        AtomicResponse::new(Box::pin(
            async move {
                if let Some(s) = store.as_mut() {
                    let record = msg.0;
                    if let Err(e) = s.append(record.clone()).await {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let line = serde_json::to_string(&record).unwrap_or_default();
                        tracing::error!(error = %e, record = %line, "Audit record could not be stored.");
                    }
                    spooled.store(s.spooled() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                store
            }
            .into_actor(self)
            .map(|store, act, _| act.store = store),
        ))
    }
}

impl Handler<Query> for AuditActor {
    type Result = AtomicResponse<Self, Result<AuditPage, QueryError>>;
    fn handle(&mut self, msg: Query, _: &mut Self::Context) -> Self::Result {
        let mut store = self.store.take();
        AtomicResponse::new(Box::pin(
            async move {
                let res = match store.as_mut() {
                    Some(s) => s.query(&msg.0).await.map(|f| AuditPage {
                        backend: s.backend(),
                        records: f.records,
                        next_before: f.next_before,
                        spooled: s.spooled(),
                        partial: f.partial,
                    }),
                    None => Err(QueryError::Unavailable("the audit store is busy".into())),
                };
                (res, store)
            }
            .into_actor(self)
            .map(|(res, store), act, _| {
                act.store = store;
                res
            }),
        ))
    }
}

/// The handle in `AppState`.
pub struct Audit {
    addr: Addr<AuditActor>,
    backend: &'static str,
    pub failures: Counter,
    /// Records waiting in the spool for Redis.
    pub spooled: Counter,
}

impl Audit {
    pub fn start(store: Store) -> Self {
        let backend = store.backend();
        let failures = Counter::default();
        let spooled = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(store.spooled() as u64));
        let addr = AuditActor::create(|_| AuditActor {
            store: Some(store),
            failures: failures.clone(),
            spooled: spooled.clone(),
        });
        Self { addr, backend, failures, spooled }
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Records an action (never waits for the store).
    pub fn record(&self, r: AuditRecord) {
        if let Err(e) = self.addr.try_send(Record(r)) {
            self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(error = %e, "Audit record dropped: the audit writer is overloaded.");
        }
    }

    /// Shutdown, once nothing records any more: see `Close`.
    pub async fn close(&self) {
        let _ = self.addr.send(Close).await;
    }

    pub async fn query(&self, q: AuditQuery) -> Result<AuditPage, QueryError> {
        self.addr.send(Query(q)).await.map_err(|e| QueryError::Unavailable(e.to_string()))?
    }
}

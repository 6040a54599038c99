//! Where audit records are kept. Redis (when configured): a capped Stream
//! `<cache.prefix>:audit` (`XADD … MAXLEN ~ audit.max_records`), ids are the stream ids,
//! shared by every instance on that Redis. Otherwise an append-only JSON-lines file
//! `<audit.dir>/audit.jsonl` (ids are numbers continuing across restarts; the newest
//! `audit.max_records` are held in memory for queries, the file keeps everything), or,
//! with no `audit.dir` either, memory only (lost at exit; a warning says so at start).
//!
//! Every Redis call is bounded by `redis_timeout_ms`; a failed write is logged with the
//! whole record (which holds no secret), so it is never lost silently.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::{AuditQuery, AuditRecord};

pub const FILE_NAME: &str = "audit.jsonl";
/// Stream entries read per Redis call while filtering.
const SCAN_BATCH: usize = 200;
/// At most this many records are examined for one page (filters that match rarely).
const SCAN_MAX: usize = 20_000;

/// Why a query failed: a bad cursor (400) or the store is unreachable (503).
#[derive(Debug)]
pub enum QueryError {
    Bad(String),
    Unavailable(String),
}

pub enum Store {
    Memory(Ring),
    File { path: PathBuf, ring: Ring },
    Redis(RedisAudit),
}

/// The newest records, oldest first, ids numbered locally.
pub struct Ring {
    records: VecDeque<AuditRecord>,
    cap: usize,
    next_id: u64,
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Self { records: VecDeque::new(), cap: cap.max(1), next_id: 1 }
    }

    fn push(&mut self, r: AuditRecord) {
        if self.records.len() == self.cap {
            self.records.pop_front();
        }
        self.records.push_back(r);
    }

    fn query(&self, q: &AuditQuery) -> (Vec<AuditRecord>, Option<String>) {
        let before: Option<u64> = q.before.as_deref().and_then(|b| b.parse().ok());
        let mut out = Vec::new();
        let mut iter =
            self.records.iter().rev().filter(|r| before.is_none_or(|b| r.id.parse::<u64>().is_ok_and(|id| id < b)));
        for r in iter.by_ref() {
            if q.matches(r) {
                out.push(r.clone());
                if out.len() == q.limit() {
                    break;
                }
            }
        }
        let more = out.len() == q.limit() && iter.any(|r| q.matches(r));
        let next = if more { out.last().map(|r| r.id.clone()) } else { None };
        (out, next)
    }
}

pub struct RedisAudit {
    client: redis::Client,
    key: String,
    max_len: usize,
    timeout: Duration,
    conn: Option<redis::aio::MultiplexedConnection>,
}

impl Store {
    /// Opens the file (creating the directory) and loads its newest records.
    pub fn open_file(dir: &str, cap: usize) -> std::io::Result<Store> {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("audit.dir {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let mut ring = Ring::new(cap);
        if let Ok(f) = std::fs::File::open(&path) {
            for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line?;
                match serde_json::from_str::<AuditRecord>(&line) {
                    Ok(r) => {
                        ring.next_id = ring.next_id.max(r.id.parse::<u64>().unwrap_or(0) + 1);
                        ring.push(r);
                    }
                    // A line cut short by a crash: skipped, the rest is still read.
                    Err(e) => {
                        tracing::warn!(file = %path.display(), line = n + 1, error = %e, "Unreadable audit record skipped.")
                    }
                }
            }
        }
        Ok(Store::File { path, ring })
    }

    pub fn redis(
        info: redis::ConnectionInfo,
        prefix: &str,
        max_len: usize,
        timeout: Duration,
    ) -> Result<Store, String> {
        let client = redis::Client::open(info).map_err(|e| format!("redis: {e}"))?;
        Ok(Store::Redis(RedisAudit { client, key: format!("{prefix}:audit"), max_len, timeout, conn: None }))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::File { .. } => "file",
            Store::Redis(_) => "redis",
        }
    }

    /// Stores `r` (its `id` is set here); `Err` says why it could not be.
    pub async fn append(&mut self, mut r: AuditRecord) -> Result<(), String> {
        match self {
            Store::Memory(ring) => {
                r.id = ring.next_id.to_string();
                ring.next_id += 1;
                ring.push(r);
                Ok(())
            }
            Store::File { path, ring } => {
                r.id = ring.next_id.to_string();
                let mut line = serde_json::to_vec(&r).map_err(|e| e.to_string())?;
                line.push(b'\n');
                let mut f =
                    std::fs::OpenOptions::new().create(true).append(true).open(&*path).map_err(|e| e.to_string())?;
                f.write_all(&line).and_then(|()| f.flush()).map_err(|e| e.to_string())?;
                ring.next_id += 1;
                ring.push(r);
                Ok(())
            }
            Store::Redis(redis) => redis.append(r).await,
        }
    }

    /// A page, newest first, and the cursor of the next one (older) when there is more.
    pub async fn query(&mut self, q: &AuditQuery) -> Result<(Vec<AuditRecord>, Option<String>), QueryError> {
        match self {
            Store::Memory(ring) | Store::File { ring, .. } => {
                if let Some(b) = q.before.as_deref().filter(|b| b.parse::<u64>().is_err()) {
                    return Err(QueryError::Bad(format!("before: '{b}' is not an audit record id")));
                }
                Ok(ring.query(q))
            }
            Store::Redis(redis) => redis.query(q).await,
        }
    }
}

impl RedisAudit {
    async fn conn(&mut self) -> Result<redis::aio::MultiplexedConnection, String> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "redis: connection timed out".to_owned())?
            .map_err(|e| format!("redis: {e}"))?;
        self.conn = Some(c.clone());
        Ok(c)
    }

    async fn bounded<T>(&mut self, cmd: redis::Cmd) -> Result<T, String>
    where
        T: redis::FromRedisValue,
    {
        let mut conn = self.conn().await?;
        let res = tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await;
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.conn = None;
                Err(format!("redis: {e}"))
            }
            Err(_) => {
                self.conn = None;
                Err("redis: call timed out".into())
            }
        }
    }

    async fn append(&mut self, r: AuditRecord) -> Result<(), String> {
        let json = serde_json::to_string(&r).map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key).arg("MAXLEN").arg("~").arg(self.max_len).arg("*").arg("r").arg(json);
        let _: String = self.bounded(cmd).await?;
        Ok(())
    }

    async fn query(&mut self, q: &AuditQuery) -> Result<(Vec<AuditRecord>, Option<String>), QueryError> {
        let mut end = match &q.before {
            Some(b) if valid_stream_id(b) => format!("({b}"),
            Some(b) => return Err(QueryError::Bad(format!("before: '{b}' is not an audit record id"))),
            None => "+".to_owned(),
        };
        let (mut out, mut scanned) = (Vec::new(), 0);
        loop {
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(&self.key).arg(&end).arg("-").arg("COUNT").arg(SCAN_BATCH);
            let batch: Vec<(String, Vec<(String, String)>)> =
                self.bounded(cmd).await.map_err(QueryError::Unavailable)?;
            let exhausted = batch.len() < SCAN_BATCH;
            for (id, fields) in batch {
                scanned += 1;
                end = format!("({id}");
                let Some((_, json)) = fields.iter().find(|(k, _)| k == "r") else { continue };
                let Ok(mut r) = serde_json::from_str::<AuditRecord>(json) else { continue };
                r.id = id;
                if q.matches(&r) {
                    out.push(r);
                    if out.len() == q.limit() {
                        // More may follow: the cursor is the last one returned.
                        let next = out.last().map(|r| r.id.clone());
                        return Ok((out, next));
                    }
                }
            }
            if exhausted || scanned >= SCAN_MAX {
                let next = (!exhausted).then(|| end.trim_start_matches('(').to_owned());
                return Ok((out, next));
            }
        }
    }
}

/// `<ms>-<seq>`, as Redis stream ids are.
fn valid_stream_id(s: &str) -> bool {
    let mut parts = s.split('-');
    let ok = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

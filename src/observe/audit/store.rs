//! Where audit records are kept. Redis (when configured): a capped Stream
//! `<cache.prefix>:audit` (`XADD … MAXLEN ~ audit.max_records`), ids are the stream ids,
//! shared by every instance on that Redis. Otherwise an append-only JSON-lines file
//! `<audit.dir>/audit.jsonl` (ids are numbers continuing across restarts; the newest
//! `audit.max_records` are held in memory for queries, the file keeps everything), or,
//! with no `audit.dir` either, memory only (lost at exit; a warning says so at start).
//!
//! Every Redis call is bounded by `redis_timeout_ms`. A record Redis cannot take goes to
//! the spool (`spool.rs`), and so does every later one until the spool has been written
//! to Redis, in order (`flush`, every second while it holds records): an outage loses
//! nothing. Queries show the spooled records first (they are the newest), then Redis's.
//! Only a record the full spool refuses is lost: logged with the whole record (which holds
//! no secret) and counted.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::spool::Spool;
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
    Redis(Box<RedisAudit>),
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
    link: gns3_central_actors::redis_link::RedisLink,
    key: String,
    max_len: usize,
    timeout: Duration,
    conn: Option<redis::aio::MultiplexedConnection>,
    spool: Spool,
}

/// A page of records, newest first, with the next page's cursor.
pub struct Found {
    pub records: Vec<AuditRecord>,
    pub next_before: Option<String>,
    /// Redis could not be read: only spooled records are shown.
    pub partial: bool,
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

    /// Records in Redis, spooled in `spool` while Redis cannot take them.
    pub fn redis(
        link: gns3_central_actors::redis_link::RedisLink,
        prefix: &str,
        max_len: usize,
        timeout: Duration,
        spool: Spool,
    ) -> Result<Store, String> {
        Ok(Store::Redis(Box::new(RedisAudit {
            link,
            key: format!("{prefix}:audit"),
            max_len,
            timeout,
            conn: None,
            spool,
        })))
    }

    /// Records waiting in the spool (Redis only).
    pub fn spooled(&self) -> usize {
        match self {
            Store::Redis(r) => r.spool.len(),
            _ => 0,
        }
    }

    /// Writes what the spool holds to Redis, in order (Redis only); how many were written.
    pub async fn flush(&mut self) -> Result<usize, String> {
        match self {
            Store::Redis(r) => r.flush().await,
            _ => Ok(0),
        }
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
    pub async fn query(&mut self, q: &AuditQuery) -> Result<Found, QueryError> {
        match self {
            Store::Memory(ring) | Store::File { ring, .. } => {
                if let Some(b) = q.before.as_deref().filter(|b| b.parse::<u64>().is_err()) {
                    return Err(QueryError::Bad(format!("before: '{b}' is not an audit record id")));
                }
                let (records, next_before) = ring.query(q);
                Ok(Found { records, next_before, partial: false })
            }
            Store::Redis(redis) => redis.query_merged(q).await,
        }
    }
}

impl RedisAudit {
    async fn conn(&mut self) -> Result<redis::aio::MultiplexedConnection, String> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.timeout, self.link.multiplexed())
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

    /// Writes `r` to Redis, or spools it: when Redis fails, and whenever records already
    /// wait in the spool (they go first). `Err` only when the spool refuses it too.
    async fn append(&mut self, r: AuditRecord) -> Result<(), String> {
        if !self.spool.is_empty() {
            return self.spool.push(r);
        }
        match self.write(&r).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "Redis cannot take audit records; spooling them until it returns.");
                self.spool.push(r).map_err(|s| format!("{e}; {s}"))
            }
        }
    }

    async fn flush(&mut self) -> Result<usize, String> {
        let mut written = 0;
        let mut since_rewrite = 0;
        let res = loop {
            let Some(r) = self.spool.get(since_rewrite).cloned() else { break Ok(()) };
            if let Err(e) = self.write(&r).await {
                break Err(e);
            }
            written += 1;
            since_rewrite += 1;
            if since_rewrite == 200 {
                self.spool.pop_written(since_rewrite);
                since_rewrite = 0;
            }
        };
        self.spool.pop_written(since_rewrite);
        if written > 0 {
            tracing::info!(records = written, left = self.spool.len(), "Spooled audit records written to Redis.");
        }
        res.map(|()| written)
    }

    async fn write(&mut self, r: &AuditRecord) -> Result<(), String> {
        let mut r = r.clone();
        r.id = String::new();
        let json = serde_json::to_string(&r).map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key).arg("MAXLEN").arg("~").arg(self.max_len).arg("*").arg("r").arg(json);
        let _: String = self.bounded(cmd).await?;
        Ok(())
    }

    /// The spooled records (the newest) ahead of Redis's. A spool cursor (`s<n>`) pages
    /// through the spool, then on into Redis; a stream id pages through Redis only.
    async fn query_merged(&mut self, q: &AuditQuery) -> Result<Found, QueryError> {
        let limit = q.limit();
        let spool_before = match q.before.as_deref() {
            None => None,
            Some(b) => match Spool::cursor(b) {
                Some(n) => Some(n),
                None => {
                    let (records, next_before) = self.query(q).await?;
                    return Ok(Found { records, next_before, partial: false });
                }
            },
        };
        let (mut records, _) = self.spool.query(q, spool_before, limit);
        if records.len() == limit {
            let next_before = records.last().map(|r| r.id.clone());
            return Ok(Found { records, next_before, partial: false });
        }
        let rest = AuditQuery { before: None, limit: Some(limit - records.len()), ..q.clone() };
        match self.query(&rest).await {
            Ok((found, next_before)) => {
                records.extend(found);
                Ok(Found { records, next_before, partial: false })
            }
            // Unreachable, but records wait in the spool: show those.
            Err(QueryError::Unavailable(_)) if !self.spool.is_empty() => {
                Ok(Found { records, next_before: None, partial: true })
            }
            Err(e) => Err(e),
        }
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

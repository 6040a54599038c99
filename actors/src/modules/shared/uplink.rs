//! The uplink: this instance's one ordered pipe to Redis for the shared bus. Every
//! operation (a send, a take, a confirmation...) is pushed synchronously, in call order,
//! into a bounded channel; one task takes what waits (up to `BATCH`) and runs it as one
//! pipeline of `EVALSHA` (one round trip), so Redis applies the operations in the order
//! they were pushed, and answers each caller. The scripts are loaded on every new
//! connection (and again on `NOSCRIPT`, those operations retried: they did nothing).
//!
//! Replicas. Redis replicates asynchronously, so a write the master acknowledged can be
//! lost in a failover. While the master has replicas connected (`INFO replication`, looked
//! at on connecting, every `REPLICAS_EVERY` and after a `WAIT` no replica answered), each
//! pipeline is followed by `WAIT 1 <half the Redis timeout>` before the callers are
//! answered: an acknowledged send is on a replica too. With no replica answering in that
//! time the answer is given anyway (logged); with none connected there is no wait.
//!
//! Redis unreachable: every operation fails at once with `bus_unavailable` (the task
//! tries to connect again with a capped backoff, not at every operation). A connection
//! that breaks during a pipeline fails its operations too: their outcome is unknown (a
//! send may have been queued; a take is given back by its proxy, see `proxy.rs`).

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::scripts::Scripts;
use crate::connector::backoff::Backoff;
use crate::modules::error::BusError;
use crate::redis_link::RedisLink;

/// Operations in one pipeline at most.
pub const BATCH: usize = 512;

/// How often the master's replicas are counted again.
const REPLICAS_EVERY: Duration = Duration::from_secs(2);

pub struct Op {
    pub cmd: redis::Cmd,
    pub reply: Option<oneshot::Sender<Result<Value, BusError>>>,
}

/// Whether Redis answers, for the status and the errors.
#[derive(Default)]
pub struct Health {
    pub up: AtomicBool,
    pub last_error: Mutex<Option<String>>,
}

impl Health {
    fn down(&self, e: &str) {
        self.up.store(false, Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_owned());
    }

    pub fn error(&self) -> String {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_else(|| "not connected yet".into())
    }
}

fn fail(batch: Vec<Op>, why: &str) {
    for op in batch {
        if let Some(tx) = op.reply {
            let _ = tx.send(Err(BusError::BusUnavailable(why.to_owned())));
        }
    }
}

fn is_noscript(r: &RedisResult<Value>) -> bool {
    matches!(r, Err(e) if e.to_string().contains("NOSCRIPT"))
}

/// A connection with the scripts loaded, and whether the master has replicas.
async fn connect(
    link: &RedisLink,
    scripts: &Scripts,
    timeout: Duration,
) -> Result<(MultiplexedConnection, bool), String> {
    let mut c = tokio::time::timeout(timeout, link.multiplexed())
        .await
        .map_err(|_| format!("Redis did not answer within {timeout:?}"))?
        .map_err(|e| format!("redis: {e}"))?;
    load(&mut c, scripts, timeout).await?;
    let replicas = replicas(&mut c, timeout).await?;
    Ok((c, replicas))
}

/// Whether the master has replicas connected now.
async fn replicas(c: &mut MultiplexedConnection, timeout: Duration) -> Result<bool, String> {
    let info: String = tokio::time::timeout(timeout, redis::cmd("INFO").arg("replication").query_async(c))
        .await
        .map_err(|_| format!("Redis did not answer within {timeout:?}"))?
        .map_err(|e| format!("redis: {e}"))?;
    let n = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("connected_slaves:"))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    Ok(n > 0)
}

/// `WAIT 1`: the writes so far are on a replica (`false`: the time passed first).
async fn wait_replica(c: &mut MultiplexedConnection, timeout: Duration) -> Result<bool, String> {
    let ms = (timeout.as_millis() as u64 / 2).max(10);
    let n: i64 = tokio::time::timeout(timeout, redis::cmd("WAIT").arg(1).arg(ms).query_async(c))
        .await
        .map_err(|_| format!("Redis did not answer within {timeout:?}"))?
        .map_err(|e| format!("redis: {e}"))?;
    if n == 0 {
        tracing::warn!("Module bus: no replica acknowledged within {ms} ms; answered anyway.");
    }
    Ok(n > 0)
}

async fn load(c: &mut MultiplexedConnection, scripts: &Scripts, timeout: Duration) -> Result<(), String> {
    let mut pipe = redis::pipe();
    for cmd in scripts.load_all() {
        pipe.add_command(cmd);
    }
    tokio::time::timeout(timeout, pipe.query_async::<Vec<String>>(c))
        .await
        .map_err(|_| format!("Redis did not answer within {timeout:?}"))?
        .map_err(|e| format!("redis: loading the bus scripts: {e}"))?;
    Ok(())
}

async fn run(
    c: &mut MultiplexedConnection,
    scripts: &Scripts,
    cmds: &[&redis::Cmd],
    timeout: Duration,
) -> Result<Vec<RedisResult<Value>>, String> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for cmd in cmds {
        pipe.add_command((*cmd).clone());
    }
    let mut out: Vec<RedisResult<Value>> = tokio::time::timeout(timeout, pipe.query_async(c))
        .await
        .map_err(|_| format!("Redis did not answer within {timeout:?}"))?
        .map_err(|e| format!("redis: {e}"))?;
    let again: Vec<usize> = (0..out.len()).filter(|&i| is_noscript(&out[i])).collect();
    if !again.is_empty() {
        // Scripts flushed (SCRIPT FLUSH, a failover to a replica that lacks them).
        load(c, scripts, timeout).await?;
        let retry: Vec<&redis::Cmd> = again.iter().map(|&i| cmds[i]).collect();
        let redo = Box::pin(run(c, scripts, &retry, timeout)).await?;
        for (i, r) in again.into_iter().zip(redo) {
            out[i] = r;
        }
    }
    Ok(out)
}

/// The uplink task, until every sender is gone.
pub async fn uplink(
    link: RedisLink,
    scripts: Arc<Scripts>,
    mut rx: mpsc::Receiver<Op>,
    timeout: Duration,
    health: Arc<Health>,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut replicated = false;
    let mut counted = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 0.2);
    let mut next_try = Instant::now();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if conn.is_none() && Instant::now() >= next_try {
            match connect(&link, &scripts, timeout).await {
                Ok((c, replicas)) => {
                    conn = Some(c);
                    replicated = replicas;
                    counted = Instant::now();
                    backoff.reset();
                    health.up.store(true, Relaxed);
                    tracing::info!(redis = %link.describe(), "Module bus: connected to Redis.");
                }
                Err(e) => {
                    next_try = Instant::now() + backoff.next_delay();
                    tracing::warn!(error = %e, "Module bus: Redis unreachable.");
                    health.down(&e);
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            fail(batch, &health.error());
            continue;
        };
        let cmds: Vec<&redis::Cmd> = batch.iter().map(|o| &o.cmd).collect();
        if counted.elapsed() >= REPLICAS_EVERY {
            counted = Instant::now();
            replicated = replicas(c, timeout).await.unwrap_or(replicated);
        }
        let done = match run(c, &scripts, &cmds, timeout).await {
            Ok(results) if replicated => match wait_replica(c, timeout).await {
                Ok(acked) => {
                    if !acked {
                        // Count them again before the next batch.
                        counted = Instant::now() - REPLICAS_EVERY;
                    }
                    Ok(results)
                }
                Err(e) => Err(e),
            },
            other => other,
        };
        match done {
            Ok(results) => {
                for (op, r) in batch.into_iter().zip(results) {
                    if let Some(tx) = op.reply {
                        let _ = tx.send(r.map_err(|e| BusError::BusUnavailable(format!("redis: {e}"))));
                    }
                }
            }
            Err(e) => {
                conn = None;
                next_try = Instant::now();
                tracing::warn!(error = %e, "Module bus: Redis call failed.");
                health.down(&e);
                fail(batch, &e);
            }
        }
    }
}

//! Ingestion leases: one Redis key per GNS3 server, `{prefix}:lease:{server}`, holding the
//! id of the instance that ingests it. Taken with `SET NX PX`, renewed every third of the
//! lease time by a script that extends it only for its holder, released the same way.
//!
//! The outcome is a gate (`watch::Sender<bool>`) the server's connector follows: open, it
//! ingests; closed, it only observes the shared events (`Gns3Connector` keeps its deriver's
//! state current from them, so a takeover resyncs from what subscribers last saw).
//!
//! When Redis cannot be reached: a holder keeps ingesting (nobody else can take the lease
//! meanwhile); an instance that has not reached Redis for a whole lease time opens its
//! gates and ingests on its own (its events are numbered locally then, see `bridge`), so
//! a Redis outage never stops events. Once Redis answers again, a lease held by another
//! instance closes the gate.

use redis::aio::MultiplexedConnection;
use redis::Script;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use super::log::LogError;

const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

pub struct Lease {
    pub key: String,
    pub me: String,
    pub ttl: Duration,
    pub timeout: Duration,
}

impl Lease {
    async fn timed<T>(&self, f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, LogError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(LogError::Timeout(self.timeout)),
        }
    }

    /// Takes the lease if free, renews it if ours; `true` when we hold it afterwards.
    pub async fn take_or_renew(&self, conn: &mut MultiplexedConnection, holding: bool) -> Result<bool, LogError> {
        let ms = self.ttl.as_millis() as u64;
        if holding {
            let renewed: i64 =
                self.timed(Script::new(RENEW).key(&self.key).arg(&self.me).arg(ms).invoke_async(conn)).await?;
            if renewed == 1 {
                return Ok(true);
            }
        }
        let set: Option<String> = self
            .timed(redis::cmd("SET").arg(&self.key).arg(&self.me).arg("NX").arg("PX").arg(ms).query_async(conn))
            .await?;
        Ok(set.is_some())
    }

    /// Gives the lease up if it is ours.
    pub async fn release(&self, conn: &mut MultiplexedConnection) -> Result<bool, LogError> {
        let n: i64 = self.timed(Script::new(RELEASE).key(&self.key).arg(&self.me).invoke_async(conn)).await?;
        Ok(n == 1)
    }

    /// Who holds the lease now (`None`: nobody).
    pub async fn holder(&self, conn: &mut MultiplexedConnection) -> Result<Option<String>, LogError> {
        self.timed(redis::cmd("GET").arg(&self.key).query_async(conn)).await
    }
}

/// Keeps one server's lease and its gate, until the task is dropped. The lease is not
/// taken before `ready` (the bridge follows the shared log): events derived earlier would
/// be numbered locally and not shared.
pub async fn keep(
    link: crate::redis_link::RedisLink,
    lease: Lease,
    server: String,
    gate: watch::Sender<bool>,
    mut ready: watch::Receiver<bool>,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut holding = false;
    let mut unreachable_since: Option<Instant> = None;
    let every = lease.ttl / 3;
    loop {
        let step = async {
            if conn.is_none() {
                let c = tokio::time::timeout(lease.timeout, link.multiplexed())
                    .await
                    .map_err(|_| LogError::Timeout(lease.timeout))??;
                conn = Some(c);
            }
            match conn.as_mut() {
                Some(c) if !holding && !*ready.borrow() => lease.holder(c).await.map(|_| false),
                Some(c) => lease.take_or_renew(c, holding).await,
                None => Err(LogError::Protocol("no connection".into())),
            }
        };
        match step.await {
            Ok(now_holding) => {
                if now_holding != holding {
                    if now_holding {
                        tracing::info!(%server, instance = %lease.me, "Took the ingestion lease.");
                    } else {
                        tracing::info!(%server, instance = %lease.me, "Ingestion lease held by another instance.");
                    }
                }
                holding = now_holding;
                unreachable_since = None;
                gate.send_if_modified(|open| std::mem::replace(open, holding) != holding);
            }
            Err(e) => {
                conn = None;
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                let alone = since.elapsed() >= lease.ttl;
                if alone && !*gate.borrow() {
                    tracing::warn!(%server, error = %e, "Redis unreachable for a lease time: ingesting on our own.");
                }
                let open = holding || alone;
                gate.send_if_modified(|o| std::mem::replace(o, open) != open);
            }
        }
        // Not joined yet: try again as soon as the bridge follows the log, not a third of
        // a lease later (with a long lease, nobody would ingest for that long at start).
        let waiting = !holding && !*ready.borrow();
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            changed = ready.changed(), if waiting => {
                // The bridge is gone: no change will come; back to the plain pace.
                if changed.is_err() {
                    tokio::time::sleep(every).await;
                }
            }
        }
    }
}

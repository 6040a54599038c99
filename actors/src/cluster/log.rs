//! `SharedLog`: the event log several instances share in Redis.
//!
//! - `{prefix}:ev:pos`, a hash: the `epoch` and the last `seq` given. Both live in Redis,
//!   so numbering continues across restarts of every instance. When the hash is gone (a
//!   new or flushed Redis) an append continues the epoch and seq the appending instance
//!   last followed (a new epoch when it followed none) and empties the stream; when Redis
//!   comes back after an outage, `reconcile.rs` writes the instance's history back first.
//! - `{prefix}:ev:log`, a Stream capped with `MAXLEN ~`: the envelopes, entry id `0-<seq>`,
//!   for history after a restart and to fill gaps in what Pub/Sub delivered.
//! - `{prefix}:ev:live`, a Pub/Sub channel: `<origin instance> <envelope>` per event.
//!
//! `append` numbers a batch of events in one Lua script: the seq is taken, the envelope
//! written into the stream and published, atomically and in one order for every instance
//! (Redis runs scripts one at a time and delivers a channel's messages in publish order).
//! The envelope is completed in the script: Rust serializes the event with an empty epoch
//! and seq 0 and sends what follows the `id`, `seq` and `epoch` fields; the script puts
//! the real ones in front. Epochs are letters, digits and `_` only, so nothing needs
//! escaping.

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::Script;
use std::time::Duration;
use thiserror::Error;

use crate::events::Event;

const APPEND: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', ARGV[5])
end
local out = {epoch}
for i = 6, #ARGV do
  local seq = string.format('%d', redis.call('HINCRBY', KEYS[1], 'seq', 1))
  local json = '{"id":"' .. epoch .. '-' .. seq .. '","seq":' .. seq .. ',"epoch":"' .. epoch .. '",' .. ARGV[i]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. seq, 'e', json)
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. json)
  out[#out + 1] = seq
end
return out
"#;

/// `XRANGE` / `XREVRANGE` replies: entry id and field-value pairs.
type StreamEntries = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// What an unnumbered event serializes to before its body (see the module doc).
const BLANK_HEAD: &[u8] = br#"{"id":"-0","seq":0,"epoch":"","#;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("event could not be encoded: {0}")]
    Encode(String),
    #[error("unexpected answer from redis: {0}")]
    Protocol(String),
}

#[derive(Debug, Clone)]
pub struct Keys {
    pub pos: String,
    pub log: String,
    pub channel: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self { pos: format!("{prefix}:ev:pos"), log: format!("{prefix}:ev:log"), channel: format!("{prefix}:ev:live") }
    }

    pub fn lease(prefix: &str, server: &str) -> String {
        format!("{prefix}:lease:{server}")
    }
}

/// The history found in Redis: the epoch, its last seq, and the newest envelopes kept.
#[derive(Debug, Default)]
pub struct Loaded {
    pub epoch: Option<String>,
    pub last_seq: u64,
    /// Oldest first.
    pub events: Vec<(Event, Bytes)>,
}

pub struct SharedLog {
    keys: Keys,
    origin: String,
    max_len: u64,
    timeout: Duration,
    append: Script,
}

impl SharedLog {
    pub fn new(keys: Keys, origin: &str, max_len: u64, timeout: Duration) -> Self {
        Self { keys, origin: origin.to_owned(), max_len, timeout, append: Script::new(APPEND) }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    async fn timed<T>(&self, f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, LogError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(LogError::Timeout(self.timeout)),
        }
    }

    /// Numbers, stores and publishes `events` (stamped with their priority; epoch and seq
    /// are ignored). With no log in Redis, numbering starts after `(epoch, seq)`. Returns
    /// the epoch and the seqs given, in order.
    pub async fn append(
        &self,
        conn: &mut MultiplexedConnection,
        events: &[Event],
        epoch: &str,
        seq: u64,
    ) -> Result<(String, Vec<u64>), LogError> {
        let mut inv = self.append.key(&self.keys.pos);
        inv.key(&self.keys.log).arg(epoch).arg(self.max_len).arg(&self.keys.channel).arg(&self.origin).arg(seq);
        for e in events {
            inv.arg(body(e)?);
        }
        let out: Vec<String> = self.timed(inv.invoke_async(conn)).await?;
        let mut it = out.into_iter();
        let epoch = it.next().ok_or_else(|| LogError::Protocol("empty reply".into()))?;
        let seqs = it
            .map(|s| s.parse::<u64>().map_err(|_| LogError::Protocol(format!("seq '{s}'"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((epoch, seqs))
    }

    /// The epoch and its last seq, when Redis holds a log.
    pub async fn position(&self, conn: &mut MultiplexedConnection) -> Result<Option<(String, u64)>, LogError> {
        let (epoch, seq): (Option<String>, Option<u64>) =
            self.timed(redis::cmd("HMGET").arg(&self.keys.pos).arg("epoch").arg("seq").query_async(conn)).await?;
        Ok(epoch.map(|e| (e, seq.unwrap_or(0))))
    }

    pub fn max_len(&self) -> u64 {
        self.max_len
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Bounds a call by the Redis timeout.
    pub async fn bounded<T>(&self, f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, LogError> {
        self.timed(f).await
    }

    /// The epoch, its last seq and the newest `count` events of the stream.
    pub async fn load(&self, conn: &mut MultiplexedConnection, count: usize) -> Result<Loaded, LogError> {
        let (epoch, seq): (Option<String>, Option<u64>) =
            self.timed(redis::cmd("HMGET").arg(&self.keys.pos).arg("epoch").arg("seq").query_async(conn)).await?;
        let Some(epoch) = epoch else { return Ok(Loaded::default()) };
        let raw: StreamEntries = self
            .timed(
                redis::cmd("XREVRANGE").arg(&self.keys.log).arg("+").arg("-").arg("COUNT").arg(count).query_async(conn),
            )
            .await?;
        let mut events = parse_entries(raw, &epoch);
        events.reverse();
        Ok(Loaded { epoch: Some(epoch), last_seq: seq.unwrap_or(0), events })
    }

    /// Up to `count` events after `seq` (to fill a gap in what Pub/Sub delivered).
    pub async fn after(
        &self,
        conn: &mut MultiplexedConnection,
        epoch: &str,
        seq: u64,
        count: usize,
    ) -> Result<Vec<(Event, Bytes)>, LogError> {
        let raw: StreamEntries = self
            .timed(
                redis::cmd("XRANGE")
                    .arg(&self.keys.log)
                    .arg(format!("(0-{seq}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(conn),
            )
            .await?;
        Ok(parse_entries(raw, epoch))
    }
}

/// What follows `id`, `seq` and `epoch` in the event's envelope.
fn body(e: &Event) -> Result<Vec<u8>, LogError> {
    let blank = Event { id: "-0".into(), seq: 0, epoch: String::new(), ..e.clone() };
    let json = serde_json::to_vec(&blank).map_err(|e| LogError::Encode(e.to_string()))?;
    match json.strip_prefix(BLANK_HEAD) {
        Some(rest) => Ok(rest.to_vec()),
        None => Err(LogError::Encode("the envelope does not start with id, seq, epoch".into())),
    }
}

/// A Pub/Sub message: `(origin, event, envelope bytes)`, `None` when it is not one.
pub fn parse_message(payload: &[u8]) -> Option<(String, Event, Bytes)> {
    let space = payload.iter().position(|&b| b == b' ')?;
    let origin = std::str::from_utf8(&payload[..space]).ok()?.to_owned();
    let json = Bytes::copy_from_slice(&payload[space + 1..]);
    let event: Event = serde_json::from_slice(&json).ok()?;
    Some((origin, event, json))
}

fn parse_entries(raw: StreamEntries, epoch: &str) -> Vec<(Event, Bytes)> {
    let mut out = Vec::with_capacity(raw.len());
    for (_, fields) in raw {
        for (name, value) in fields {
            if name != "e" {
                continue;
            }
            match serde_json::from_slice::<Event>(&value) {
                Ok(ev) if ev.epoch == epoch => out.push((ev, Bytes::from(value))),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Unreadable event in the shared log; skipped."),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, NewEvent, Priority, Source};

    #[test]
    fn the_body_completed_like_the_script_does_is_the_envelope() {
        let new = NewEvent::new(EventKind::NodeStarted, "default", Source::Gns3, serde_json::json!({"a": "x\"y"}))
            .project(Some(uuid::Uuid::new_v4()));
        let blank = Event::stamp(new.clone(), "", 0, Priority::High);
        let rest = String::from_utf8(body(&blank).unwrap()).unwrap();
        let json = format!(r#"{{"id":"ab12-7","seq":7,"epoch":"ab12",{rest}"#);
        let parsed: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, Event::stamp(new, "ab12", 7, Priority::High));
        let (origin, ev, bytes) = parse_message(format!("i1 {json}").as_bytes()).unwrap();
        assert_eq!((origin.as_str(), ev.seq, bytes.len()), ("i1", 7, json.len()));
        assert!(parse_message(b"no-space").is_none());
        assert!(parse_message(b"i1 {not json").is_none());
    }
}

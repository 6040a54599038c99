//! One bus across instances (docs/modules.md#several-instances): with Redis and the
//! cluster on (and `modules.shared`), remote modules' registrations, queues, messages
//! taken and not yet confirmed, consumer leases and accounts live in Redis, so a module
//! may connect to any instance and its messages reach it from every other one.
//!
//! - `scripts.rs`: every transition as one Lua script (atomic, counted in the same step).
//! - `uplink.rs`: this instance's ordered, batched pipe to Redis (`SharedBus::call`).
//! - `mirror.rs`: the local mirror of the registrations (`{p}:bus:reg`), kept by the
//!   notices of `{p}:bus:ctl` and a periodic resync; notices also wake the holder of a
//!   module's lease, complete requests waiting here, and tell a replaced holder.
//! - `proxy.rs`: what a module's `ModuleProxy` does in shared mode: takes from the queue
//!   in windows paced by confirmations, confirms, gives back.
//! - `status.rs`: the account, the dead letters and the counters read from Redis.
//!
//! In-process and built-in modules stay local to their instance.

pub(crate) mod mirror;
pub(crate) mod proxy;
pub mod scripts;
mod send;
pub(crate) mod status;
pub mod uplink;

use futures_util::future::BoxFuture;
use redis::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::error::BusError;
use crate::redis_link::RedisLink;
use scripts::{Lua, Scripts};
use uplink::{Health, Op};

/// How this instance joins the shared bus.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    /// Key prefix (the cache's and the event log's); bus keys are `{prefix}:bus:...`.
    pub prefix: String,
    /// This instance's id (the cluster's), the holder of the leases it takes.
    pub instance: String,
    /// The consumer lease of a module (renewed every third of it, and at most every
    /// second the queue is looked at again).
    pub lease: Duration,
    /// One Redis call at most.
    pub timeout: Duration,
    /// How often the mirror is compared with Redis (notices can be lost).
    pub resync: Duration,
}

/// Operations waiting for the uplink at most (past it: `bus_unavailable`).
const UPLINK_QUEUE: usize = 65_536;

pub struct SharedBus {
    pub cfg: SharedConfig,
    pub(crate) link: RedisLink,
    scripts: Arc<Scripts>,
    tx: mpsc::Sender<Op>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<Op>>>,
    pub(crate) health: Arc<Health>,
}

impl SharedBus {
    pub fn new(cfg: SharedConfig, link: RedisLink) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(UPLINK_QUEUE);
        Arc::new(Self {
            cfg,
            link,
            scripts: Arc::new(Scripts::new()),
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            health: Arc::default(),
        })
    }

    pub fn instance(&self) -> &str {
        &self.cfg.instance
    }

    pub fn key(&self, what: &str) -> String {
        format!("{}:bus:{what}", self.cfg.prefix)
    }

    /// Whether the last Redis call succeeded.
    pub fn is_up(&self) -> bool {
        self.health.up.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The uplink task (once).
    pub(crate) fn uplink_task(&self) -> Option<impl std::future::Future<Output = ()>> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        Some(uplink::uplink(self.link.clone(), self.scripts.clone(), rx, self.cfg.timeout, self.health.clone()))
    }

    /// `EVALSHA` of a script with the prefix as `ARGV[1]`; add the other arguments.
    pub(crate) fn script(&self, l: Lua) -> redis::Cmd {
        let mut c = redis::cmd("EVALSHA");
        c.arg(self.scripts.sha(l)).arg(0).arg(&self.cfg.prefix);
        c
    }

    /// Pushes `cmd` into the uplink now (in call order) and returns its answer.
    pub(crate) fn call(&self, cmd: redis::Cmd) -> BoxFuture<'static, Result<Value, BusError>> {
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Op { cmd, reply: Some(tx) }) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the uplink to Redis is full".to_owned(),
                mpsc::error::TrySendError::Closed(_) => "the uplink to Redis is stopped".to_owned(),
            };
            return Box::pin(std::future::ready(Err(BusError::BusUnavailable(why))));
        }
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(BusError::BusUnavailable("the uplink stopped".into()))) })
    }

    /// Pushes `cmd` without waiting for its answer.
    pub(crate) fn fire(&self, cmd: redis::Cmd) {
        if self.tx.try_send(Op { cmd, reply: None }).is_err() {
            tracing::warn!("Module bus: the uplink to Redis is full; an operation was dropped.");
        }
    }
}

/// The strings of a script's array answer (numbers as text).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".into(),
        _ => String::new(),
    }
}

pub(crate) fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => text(other).parse().unwrap_or(0),
    }
}

/// A notice of `{p}:bus:ctl`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Notice<'a> {
    Registered(&'a str),
    Deleted(&'a str),
    /// `name` is now held by `by` (a previous holder must give back).
    Attached {
        name: &'a str,
        by: &'a str,
    },
    /// Messages wait for `name`, held by `holder`.
    Wake {
        name: &'a str,
        holder: &'a str,
    },
    /// A reply for a request waiting on `instance`.
    Reply {
        instance: &'a str,
        json: &'a str,
    },
}

pub(crate) fn parse_notice(s: &str) -> Option<Notice<'_>> {
    let (op, rest) = s.split_once(' ')?;
    let two = || rest.split_once(' ');
    Some(match op {
        "registered" => Notice::Registered(rest),
        "deleted" => Notice::Deleted(rest),
        "attached" => {
            let (name, by) = two()?;
            Notice::Attached { name, by }
        }
        "wake" => {
            let (name, holder) = two()?;
            Notice::Wake { name, holder }
        }
        "reply" => {
            let (instance, json) = two()?;
            Notice::Reply { instance, json }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_and_junk_does_not() {
        assert_eq!(parse_notice("registered m"), Some(Notice::Registered("m")));
        assert_eq!(parse_notice("wake m i1"), Some(Notice::Wake { name: "m", holder: "i1" }));
        assert_eq!(parse_notice(r#"reply i2 {"a b":1}"#), Some(Notice::Reply { instance: "i2", json: r#"{"a b":1}"# }));
        assert_eq!(parse_notice("attached m"), None);
        assert_eq!(parse_notice("nonsense"), None);
        assert_eq!(parse_notice("other x y"), None);
    }
}

//! What the shared-bus tests share (`bus_shared.rs`, `bus_shared_edges.rs`): two
//! registries on one real redis-server as two instances, and `Probe`, a connected module
//! that records what it gets and confirms what it is told to.

#![allow(dead_code)]

use actix::prelude::*;
use gns3_central_actors::cache::RedisConfig;
use gns3_central_actors::modules::shared::SharedConfig;
use gns3_central_actors::modules::{
    Attach, BusMessage, Delivered, Detach, MessageAccount, ModuleRegistry, ModulesConfig, ToModule,
};
use gns3_central_actors::redis_link::RedisLink;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::redis_server::RedisServer;
pub const WAIT: Duration = Duration::from_secs(20);
pub const LEASE: Duration = Duration::from_millis(1000);

pub fn instance(redis: &RedisServer, id: &str, cfg: ModulesConfig) -> Arc<ModuleRegistry> {
    instance_with_lease(redis, id, cfg, LEASE)
}

pub fn instance_with_lease(redis: &RedisServer, id: &str, cfg: ModulesConfig, lease: Duration) -> Arc<ModuleRegistry> {
    let link = RedisLink::new(&RedisConfig::from_url(redis.url())).unwrap();
    let shared = SharedConfig {
        prefix: "t".into(),
        instance: id.into(),
        lease,
        timeout: Duration::from_secs(2),
        resync: Duration::from_millis(300),
    };
    ModuleRegistry::new_shared(cfg, None, shared, link)
}

pub fn digest(n: u8) -> [u8; 32] {
    [n; 32]
}

/// A connected module: records what it gets, confirms what `confirm` accepts, answers
/// requests when given a registry to answer through, and, told it is replaced, ends as a
/// session does (`Detach`: what it did not confirm goes back).
pub struct Probe {
    got: Arc<Mutex<Vec<Arc<BusMessage>>>>,
    closed: Arc<Mutex<bool>>,
    proxy: Addr<gns3_central_actors::modules::ModuleProxy>,
    session: Uuid,
    confirm: fn(&BusMessage) -> bool,
    answer: Option<Arc<ModuleRegistry>>,
}

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<ToModule> for Probe {
    type Result = ();
    fn handle(&mut self, m: ToModule, _: &mut Self::Context) {
        match m {
            ToModule::Message(m, seq) | ToModule::Reply(m, seq, _) => {
                if (self.confirm)(&m) {
                    self.proxy.do_send(Delivered { session: self.session, upto: seq, failed: false });
                }
                if let (Some(reg), Some(_)) = (&self.answer, &m.reply_to) {
                    let reply = m.reply(&m.to, None, json!({"answer": m.payload}));
                    drop(reg.send(reply));
                }
                self.got.lock().unwrap().push(m);
            }
            ToModule::Replaced { .. } => {
                *self.closed.lock().unwrap() = true;
                self.proxy.do_send(Detach { session: self.session, delivered_upto: None });
            }
            ToModule::Event(_) => {}
        }
    }
}

pub struct Connected {
    pub got: Arc<Mutex<Vec<Arc<BusMessage>>>>,
    pub closed: Arc<Mutex<bool>>,
    pub session: Uuid,
    pub proxy: Addr<gns3_central_actors::modules::ModuleProxy>,
}

impl Connected {
    pub fn payloads(&self) -> Vec<Value> {
        self.got.lock().unwrap().iter().map(|m| m.payload.clone()).collect()
    }
    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

pub fn all(_: &BusMessage) -> bool {
    true
}

pub async fn connect(
    reg: &Arc<ModuleRegistry>,
    name: &str,
    confirm: fn(&BusMessage) -> bool,
    answer: bool,
) -> Connected {
    let slot = reg.ensure(name).await.expect("registered");
    let (got, closed) = (Arc::default(), Arc::default());
    let session = Uuid::new_v4();
    let probe = Probe {
        got: Arc::clone(&got),
        closed: Arc::clone(&closed),
        proxy: slot.addr.clone(),
        session,
        confirm,
        answer: answer.then(|| reg.clone()),
    }
    .start();
    slot.addr.send(Attach { session, link: probe.recipient() }).await.unwrap().unwrap();
    Connected { got, closed, session, proxy: slot.addr.clone() }
}

pub fn msg(from: &str, to: &str, n: u64) -> BusMessage {
    let mut m = BusMessage::new(from, to, "test.msg", json!(n));
    m.ttl = 60_000;
    m
}

pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn account(reg: &ModuleRegistry, name: &str) -> MessageAccount {
    reg.status_of(name).await.unwrap().expect("known").stats.messages
}

/// Waits until the module's account is settled to `want` (sent, received) and checks
/// the identity on it.
pub async fn settled(reg: &ModuleRegistry, name: &str, sent: u64, received: u64) -> MessageAccount {
    let deadline = Instant::now() + WAIT;
    loop {
        let a = account(reg, name).await;
        if a.sent == sent && a.received == received {
            assert_eq!(a.sent, a.received + a.refused + a.dead_lettered + a.waiting, "{name}: {a:?}");
            return a;
        }
        assert!(Instant::now() < deadline, "{name}: account {a:?}, wanted sent {sent} received {received}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn identity(a: &MessageAccount) {
    assert_eq!(a.sent, a.received + a.refused + a.dead_lettered + a.waiting, "{a:?}");
}

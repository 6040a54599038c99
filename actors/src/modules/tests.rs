//! The bus with real actors (a dispatcher, proxies on the bus arbiter, probe modules):
//! targeted, broadcast, request/reply and its timeout, the offline queue (TTL, delivery
//! on reconnect, refusal), isolation from a module that stops reading, and in-process
//! handlers that fail or panic.

use actix::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::*;
use crate::cache::{CacheActor, CacheConfig};
use crate::dispatcher::{DispatcherConfig, Publish};
use crate::events::{NewEvent, Source};

/// A connected module that records what it gets and confirms each message to its proxy
/// as a session does; `stall` makes it stop reading.
struct Probe {
    got: Arc<Mutex<Vec<ToModule>>>,
    stall: bool,
    proxy: Addr<ModuleProxy>,
    session: Uuid,
}

impl Actor for Probe {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        // A module that reads keeps up; one that does not fills a small mailbox at once.
        ctx.set_mailbox_capacity(if self.stall { 4 } else { 4096 });
    }
}

impl Handler<ToModule> for Probe {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, m: ToModule, _: &mut Self::Context) -> Self::Result {
        if let (ToModule::Message(_, seq) | ToModule::Reply(_, seq, _), false) = (&m, self.stall) {
            self.proxy.do_send(Delivered { session: self.session, upto: *seq, failed: false });
        }
        self.got.lock().unwrap().push(m);
        let wait = if self.stall { Duration::from_secs(3600) } else { Duration::ZERO };
        AtomicResponse::new(Box::pin(actix_rt::time::sleep(wait).into_actor(self)))
    }
}

type Got = Arc<Mutex<Vec<ToModule>>>;

async fn attach(reg: &ModuleRegistry, name: &str, stall: bool) -> (Got, Uuid) {
    let got: Got = Arc::default();
    let session = Uuid::new_v4();
    let slot = reg.get(name).expect("registered");
    let probe = Probe { got: got.clone(), stall, proxy: slot.addr.clone(), session }.start();
    slot.addr.send(Attach { session, link: probe.recipient() }).await.unwrap().unwrap();
    (got, session)
}

fn payloads(got: &Got) -> Vec<serde_json::Value> {
    got.lock()
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            ToModule::Message(m, _) => Some(m.payload.clone()),
            _ => None,
        })
        .collect()
}

async fn until(limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "condition not met within {limit:?}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

fn msg(from: &str, to: &str, n: u64, ttl: u64) -> BusMessage {
    let mut m = BusMessage::new(from, to, "test.msg", json!(n));
    m.ttl = ttl;
    m
}

fn context(cfg: ModulesConfig) -> ModuleContext {
    let d = crate::dispatcher::PriorityDispatcher::new(DispatcherConfig::default()).start();
    let registry = ModuleRegistry::new(cfg, Some(d));
    let cache = CacheActor::new(CacheConfig::default(), None).expect("memory cache").start();
    ModuleContext {
        registry,
        servers: Arc::new(BTreeMap::new()),
        default_server: "default".into(),
        cache,
        on_action: None,
    }
}

#[actix_rt::test]
async fn targeted_broadcast_and_unknown_targets() {
    let ctx = context(ModulesConfig::default());
    let reg = &ctx.registry;
    for n in ["a", "b", "c"] {
        reg.register(n, ModuleKind::Remote, None).unwrap();
    }
    let (b, _) = attach(reg, "b", false).await;
    let (c, _) = attach(reg, "c", false).await;
    assert_eq!(reg.connected_count(), 2);
    reg.route(msg("a", "b", 1, 1000)).unwrap();
    let out = reg.route(msg("a", "*", 2, 1000)).unwrap();
    assert_eq!(out.accepted, 2, "b and c, not the sender");
    until(Duration::from_secs(5), || payloads(&b).len() == 2 && payloads(&c).len() == 1).await;
    assert_eq!(payloads(&b), [json!(1), json!(2)]);
    assert_eq!(reg.route(msg("a", "nobody", 3, 1000)).unwrap_err().code(), "unknown_module");
    // A built-in module (the sinks) takes events only: not counted in broadcasts, refused.
    reg.register("notifications", ModuleKind::Builtin, None).unwrap();
    assert_eq!(reg.route(msg("a", "*", 4, 1000)).unwrap().accepted, 2);
    assert_eq!(reg.route(msg("a", "notifications", 5, 1000)).unwrap_err().code(), "invalid_message");
    until(Duration::from_secs(5), || payloads(&b).len() == 3).await;
    assert_eq!(reg.get("b").unwrap().stats.snapshot().delivered, 3);
    assert_eq!(reg.get("a").unwrap().stats.snapshot().sent, 3, "refused messages are not counted as sent");
}

#[actix_rt::test]
async fn requests_get_replies_or_time_out() {
    let ctx = context(ModulesConfig::default());
    let a = ctx.module("asker").unwrap();
    let b = ctx.module("answerer").unwrap();
    b.on_message(|m| async move { Ok(Some(json!({"echo": m.payload.clone()}))) }).await.unwrap();
    let reply = a.request("answerer", "echo", json!(7), Duration::from_secs(5)).await.unwrap();
    assert_eq!(reply.payload, json!({"echo": 7}));
    assert_eq!((reply.from.as_str(), reply.kind.as_str()), ("answerer", "reply"));
    assert!(reply.correlation_id.is_some());
    // A module that never answers: the typed timeout, and nothing left pending.
    let silent = ctx.module("silent").unwrap();
    silent.on_message(|_| async { Ok(None) }).await.unwrap();
    let t0 = Instant::now();
    let err = a.request("silent", "echo", json!(1), Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, BusError::ReplyTimeout { ref to, .. } if to == "silent"), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(ctx.registry.pending_requests(), 0);
    assert_eq!(a.broadcast("x.y", json!(1)).unwrap().accepted, 2);
}

/// A socket module's request (`request_held`): its reply counts received only once its
/// connection confirms it; one its session never took goes to its offline queue.
#[actix_rt::test]
async fn a_held_reply_counts_when_confirmed_or_waits_offline() {
    use futures_util::FutureExt;
    let ctx = context(ModulesConfig::default());
    let reg = &ctx.registry;
    reg.register("a", ModuleKind::Remote, None).unwrap();
    reg.register("b", ModuleKind::Remote, None).unwrap();
    let (to_b, _) = attach(reg, "b", false).await;
    let account = |n: &str| reg.get(n).unwrap().stats.snapshot().messages;
    let reply_to = |req: &BusMessage, n: u64| {
        let mut r = BusMessage::new("b", "a", "reply", json!(n));
        r.correlation_id = Some(req.id.clone());
        r.ttl = 60_000;
        r
    };

    // Its session stopped while the reply waited for it: the future is dropped untaken.
    let req = BusMessage::new("a", "b", "q.ask", json!(1));
    let mut fut = Box::pin(reg.request_held(req.clone(), Duration::from_secs(30)));
    assert!((&mut fut).now_or_never().is_none(), "waiting for the reply");
    until(Duration::from_secs(5), || payloads(&to_b).len() == 1).await;
    assert_eq!(reg.route(reply_to(&req, 2)).unwrap().accepted, 1);
    assert_eq!((account("a").sent, account("a").received), (0, 0), "not received when handed");
    drop(fut);
    until(Duration::from_secs(5), || account("a").waiting == 1).await;
    assert_eq!(account("a").sent, 1);
    let (to_a, session) = attach(reg, "a", false).await;
    until(Duration::from_secs(5), || account("a").received == 1).await;
    let m = match &to_a.lock().unwrap()[0] {
        ToModule::Message(m, _) => m.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!((m.payload.clone(), m.correlation_id.as_deref()), (json!(2), Some(req.id.as_str())));

    // Taken by its session: handed as a `Reply` and received once confirmed.
    let req = BusMessage::new("a", "b", "q.ask", json!(3));
    let asking = reg.request_held(req.clone(), Duration::from_secs(30));
    let answer = async {
        until(Duration::from_secs(5), || payloads(&to_b).len() == 2).await;
        reg.route(reply_to(&req, 4)).unwrap()
    };
    let (got, _) = futures_util::future::join(asking, answer).await;
    let got = got.unwrap();
    let slot = reg.get("a").unwrap();
    slot.addr.do_send(HandReply { session: Some(session), msg: got, request_id: Some(json!("r")) });
    until(Duration::from_secs(5), || account("a").received == 2).await;
    assert!(
        matches!(&to_a.lock().unwrap()[1], ToModule::Reply(m, _, Some(r)) if m.payload == json!(4) && *r == json!("r"))
    );
    let a = account("a");
    assert_eq!((a.sent, a.received, a.refused, a.dead_lettered, a.waiting), (2, 2, 0, 0, 0));
}

#[actix_rt::test]
async fn offline_messages_wait_until_their_ttl_then_arrive_on_reconnect() {
    let ctx = context(ModulesConfig { offline_queue: 3, ..ModulesConfig::default() });
    let reg = &ctx.registry;
    reg.register("a", ModuleKind::Remote, None).unwrap();
    reg.register("b", ModuleKind::Remote, None).unwrap();
    reg.route(msg("a", "b", 1, 60_000)).unwrap();
    reg.route(msg("a", "b", 2, 50)).unwrap();
    assert_eq!(reg.route(msg("a", "b", 3, 0)).unwrap_err().code(), "module_offline", "ttl 0: only if connected");
    let stats = reg.get("b").unwrap().stats.clone();
    until(Duration::from_secs(5), || stats.snapshot().expired == 1).await;
    for n in 4..=6 {
        reg.route(msg("a", "b", n, 60_000)).unwrap();
    }
    until(Duration::from_secs(5), || stats.snapshot().dead_lettered == 1).await;
    assert_eq!(stats.snapshot().mailbox_depth, 3);
    let (got, session) = attach(reg, "b", false).await;
    until(Duration::from_secs(5), || payloads(&got).len() == 3).await;
    assert_eq!(payloads(&got), [json!(4), json!(5), json!(6)], "1 made room for 6; 2 expired");
    let letters = reg.dead_letters().recent(10);
    let reasons: Vec<_> = letters.iter().map(|l| (l.reason, l.message.as_ref().map(|m| m.payload.clone()))).collect();
    assert_eq!(reasons, [(BusDeadReason::Expired, Some(json!(2))), (BusDeadReason::OfflineQueueFull, Some(json!(1)))]);
    until(Duration::from_secs(5), || stats.snapshot().messages.received == 3).await;
    assert_eq!(
        stats.snapshot().messages,
        MessageAccount { sent: 6, received: 3, refused: 1, dead_lettered: 2, waiting: 0 }
    );
    // Disconnected again: queued again; with the refuse policy, refused.
    reg.get("b").unwrap().addr.send(Detach { session, delivered_upto: None }).await.unwrap();
    reg.route(msg("a", "b", 7, 60_000)).unwrap();
    let strict = context(ModulesConfig { offline_policy: OfflinePolicy::Refuse, ..ModulesConfig::default() });
    strict.registry.register("b", ModuleKind::Remote, None).unwrap();
    assert_eq!(strict.registry.route(msg("a", "b", 1, 60_000)).unwrap_err().code(), "module_offline");
}

#[actix_rt::test]
async fn a_module_that_stops_reading_does_not_hold_up_the_others() {
    let ctx = context(ModulesConfig { inbox_capacity: 64, ..ModulesConfig::default() });
    let reg = &ctx.registry;
    for n in ["src", "slow", "fast"] {
        reg.register(n, ModuleKind::Remote, None).unwrap();
    }
    let (_slow, _) = attach(reg, "slow", true).await;
    let (fast, _) = attach(reg, "fast", false).await;
    for n in 0..200 {
        // Broadcasts never wait: a full proxy refuses at once.
        let out = reg.route(msg("src", "*", n, 1000)).unwrap();
        assert!(!out.refused.contains(&"fast".to_owned()), "{out:?}");
        if n % 32 == 31 {
            // Paced by fast's progress (it has every message so far), not by a time: the
            // bus thread keeps up with fast however loaded the machine is, and it could
            // not if slow held it up.
            until(Duration::from_secs(10), || payloads(&fast).len() as u64 > n).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while payloads(&fast).len() < 200 {
        let f = reg.get("fast").unwrap().stats.snapshot();
        assert!(Instant::now() < deadline, "fast got {} of 200: {f:?}", payloads(&fast).len());
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    let slow = reg.get("slow").unwrap().stats.snapshot();
    assert!(slow.dead_lettered > 150 && slow.failed >= slow.dead_lettered, "{slow:?}");
    assert_eq!(reg.get("fast").unwrap().stats.snapshot().dead_lettered, 0);
}

#[actix_rt::test]
async fn failing_and_panicking_handlers_are_retried_counted_and_dead_lettered() {
    let ctx = context(ModulesConfig { handler_max_retries: 2, handler_backoff_ms: 1, ..ModulesConfig::default() });
    let bad = ctx.module("bad").unwrap();
    let good = ctx.module("good").unwrap();
    bad.on_message(|m| async move {
        if m.payload == json!("panic") {
            panic!("boom");
        }
        Err::<Option<serde_json::Value>, _>("no".to_owned())
    })
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    good.on_message(move |m| {
        s.lock().unwrap().push(m.payload.clone());
        async { Ok(None) }
    })
    .await
    .unwrap();
    let count = Arc::new(Mutex::new(0u32));
    let c = count.clone();
    bad.subscribe(["bad.*"], move |_| {
        *c.lock().unwrap() += 1;
        async { panic!("handler bug") }
    })
    .await
    .unwrap();
    good.send("bad", "x", json!("panic")).unwrap();
    good.send("bad", "x", json!("err")).unwrap();
    bad.send("good", "x", json!(1)).unwrap();
    bad.publish("bad.alert", json!({})).await.unwrap();
    let stats = bad.slot().stats.clone();
    until(Duration::from_secs(5), || stats.snapshot().dead_lettered == 3).await;
    let s = stats.snapshot();
    assert_eq!(s.panics, 3 + 3, "3 tries of the panicking message, 3 of the event");
    assert_eq!(s.failed, 9);
    assert_eq!(*count.lock().unwrap(), 3);
    until(Duration::from_secs(5), || seen.lock().unwrap().len() == 1).await;
    assert_eq!(bad.publish("good.alert", json!({})).await.unwrap_err().code(), "forbidden_namespace");
    assert_eq!(bad.publish("node.started", json!({})).await.unwrap_err().code(), "forbidden_namespace");
    let d = ctx.registry.dispatcher().unwrap().clone();
    let e = NewEvent {
        kind: "x.y".into(),
        ..NewEvent::new(crate::events::EventKind::NodeCreated, "d", Source::Module, json!(1))
    };
    d.send(Publish(e)).await.unwrap().unwrap();
}

#[actix_rt::test]
async fn tokens_authenticate_only_their_module() {
    let ctx = context(ModulesConfig::default());
    let reg = &ctx.registry;
    reg.register("a", ModuleKind::Remote, Some([1; 32])).unwrap();
    reg.register("b", ModuleKind::Remote, Some([2; 32])).unwrap();
    assert_eq!(reg.authenticate("a", &[1; 32]).unwrap().name, "a");
    assert_eq!(reg.authenticate("a", &[2; 32]).unwrap_err(), AuthFailure::OtherModule("b".into()));
    assert_eq!(reg.authenticate("a", &[3; 32]).unwrap_err(), AuthFailure::NotAModuleToken);
    assert_eq!(reg.authenticate("zz", &[3; 32]).unwrap_err(), AuthFailure::UnknownModule);
    assert!(reg.is_module_token(&[2; 32]) && !reg.is_module_token(&[3; 32]));
    assert_eq!(reg.register("a", ModuleKind::Remote, None).unwrap_err().code(), "module_exists");
    assert!(reg.remove("a").is_some() && reg.get("a").is_none());
}

/// A connection that takes every message and confirms none (a socket nobody reads).
struct Mute(Got);

impl Actor for Mute {
    type Context = Context<Self>;
}

impl Handler<ToModule> for Mute {
    type Result = ();
    fn handle(&mut self, m: ToModule, _: &mut Self::Context) {
        self.0.lock().unwrap().push(m);
    }
}

#[actix_rt::test]
async fn what_a_replaced_connection_did_not_write_comes_back_first_and_in_order() {
    let ctx = context(ModulesConfig::default());
    let reg = &ctx.registry;
    reg.register("b", ModuleKind::Remote, None).unwrap();
    let slot = reg.get("b").unwrap();
    let old: Got = Arc::default();
    let old_session = Uuid::new_v4();
    slot.addr
        .send(Attach { session: old_session, link: Mute(old.clone()).start().recipient() })
        .await
        .unwrap()
        .unwrap();
    for n in 1..=5 {
        reg.route(msg("a", "b", n, 60_000)).unwrap();
    }
    until(Duration::from_secs(5), || payloads(&old).len() == 5).await;
    let seq_of_2 = match &old.lock().unwrap()[1] {
        ToModule::Message(_, seq) => *seq,
        other => panic!("{other:?}"),
    };
    // A new connection takes over before the old one has said what it wrote: what comes
    // for the module meanwhile waits behind what the old one held.
    let (new, _) = attach(reg, "b", false).await;
    reg.route(msg("a", "b", 6, 60_000)).unwrap();
    until(Duration::from_secs(5), || slot.stats.snapshot().messages.sent == 6).await;
    assert!(payloads(&new).is_empty(), "nothing overtakes what the old connection held");
    assert_eq!(slot.stats.snapshot().messages.waiting, 6);
    slot.addr.send(Detach { session: old_session, delivered_upto: Some(seq_of_2) }).await.unwrap();
    until(Duration::from_secs(5), || payloads(&new).len() == 4).await;
    assert_eq!(payloads(&new), [json!(3), json!(4), json!(5), json!(6)]);
    until(Duration::from_secs(5), || slot.stats.snapshot().messages.received == 6).await;
    assert_eq!(
        slot.stats.snapshot().messages,
        MessageAccount { sent: 6, received: 6, refused: 0, dead_lettered: 0, waiting: 0 }
    );
}

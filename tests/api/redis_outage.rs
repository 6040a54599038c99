//! Redis outages seen from a client (docs/events.md#redis-outages): one service instance
//! (cache, cluster and audit on one real redis-server), the GNS3 stand-in changing its
//! topology steadily, a WebSocket dashboard connected throughout. Redis is SIGKILLed and
//! started again twice: first with its data (append-only file), then empty (files
//! removed). The dashboard gets every event once, in one epoch with no gap; it then
//! reconnects with its last event id and is `recovered: true`, with no gap or duplicate
//! at the seam; `GET /api/v2/events` still holds the history; the action taken during each
//! outage is in the audit trail once Redis is back. And the same through Redis Sentinel:
//! the master SIGKILLed, the replica promoted, the cache, the event log and the audit
//! trail follow it.

use crate::helpers::redis_server::RedisServer;
use crate::helpers::sentinel::{self, Sentinel};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{spawn_app, test_settings, Target, TestApp, ADMIN_TOKEN};
use gns3_central::simulate::{Simulator, SimulatorOptions};

const WAIT: Duration = Duration::from_secs(30);

type Ws = actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec>;

/// The GNS3 stand-in both tests run against (one project of four linked nodes, changing
/// 25 times a second, seeded) and the service's target for it.
async fn stand_in(seed: u64) -> (Simulator, Target) {
    let sim = Simulator::start(SimulatorOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        projects: 1,
        nodes: 4,
        links: true,
        activity: 25.0,
        seed: Some(seed),
    })
    .await
    .expect("the stand-in starts");
    let target = Target::stand_in(sim.port());
    (sim, target)
}

async fn connect(app: &TestApp, since: Option<&str>) -> Ws {
    let (_res, mut ws) = awc::Client::new()
        .ws(app.url("/ws/gns3/events/"))
        .bearer_auth(ADMIN_TOKEN)
        .max_frame_size(64 * 1024 * 1024)
        .connect()
        .await
        .expect("the upgrade succeeds");
    let mut sub = json!({"type": "subscribe", "subscriptions": ["all"]});
    if let Some(id) = since {
        sub["since"] = json!(id);
    }
    ws.send(actix_http::ws::Message::Text(sub.to_string().into())).await.expect("sent");
    ws
}

/// The dashboard's side: every frame it got, the events among them.
struct Dashboard {
    ws: Ws,
    events: Vec<Value>,
    frames: Vec<Value>,
}

impl Dashboard {
    /// Reads frames until `n` events (in total) have arrived.
    async fn until_events(&mut self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.events.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "only {} of {n} events", self.events.len());
            let next = actix_rt::time::timeout(left, self.ws.next()).await.expect("a frame in time");
            match next {
                Some(Ok(actix_http::ws::Frame::Text(t))) => {
                    let v: Value = serde_json::from_slice(&t).expect("JSON");
                    if v["type"] == "replay" {
                        self.events.extend(v["events"].as_array().cloned().unwrap_or_default());
                    } else if v["seq"].is_u64() && v["epoch"].is_string() {
                        self.events.push(v.clone());
                    }
                    self.frames.push(v);
                }
                Some(Ok(actix_http::ws::Frame::Ping(p))) => {
                    let _ = self.ws.send(actix_http::ws::Message::Pong(p)).await;
                }
                Some(Ok(_)) => {}
                other => panic!("the WebSocket ended: {other:?}"),
            }
        }
    }

    fn last_id(&self) -> String {
        self.events.last().and_then(|e| e["id"].as_str()).expect("an event").to_owned()
    }
}

/// One epoch, seqs strictly consecutive: every event once, no gap.
fn every_event_once(events: &[Value]) -> String {
    let epoch = events[0]["epoch"].as_str().expect("epoch").to_owned();
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert!(events.iter().all(|e| e["epoch"] == epoch.as_str()), "one epoch throughout: {ids:?}");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>(), "a gap or a duplicate: {ids:?}");
    epoch
}

async fn wait_shared(app: &TestApp, shared: bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = app.get("/api/v2/cluster").await;
        if r.body["shared"] == shared {
            return;
        }
        assert!(Instant::now() < deadline, "cluster never shared={shared}: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node action through the REST API (audited); its correlation id.
async fn stop_a_node(app: &TestApp) -> String {
    let projects = app.get("/api/v2/servers/default/projects").await.body;
    let project = projects[0]["project_id"].as_str().expect("a project").to_owned();
    let nodes = app.get(&format!("/api/v2/servers/default/projects/{project}/nodes")).await.body;
    let node = nodes[0]["node_id"].as_str().expect("a node").to_owned();
    let r = app
        .post_json(&format!("/api/v2/servers/default/projects/{project}/nodes/{node}/actions/stop"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["correlation_id"].as_str().expect("a correlation id").to_owned()
}

/// Waits until the audit trail in Redis holds the action with correlation id `corr`.
async fn audited(app: &TestApp, corr: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = app.get("/api/v2/audit?action=node.stop").await.body;
        let mut ids = page["records"].as_array().into_iter().flatten().filter_map(|r| r["correlation_id"].as_str());
        if page["spooled"] == 0 && ids.any(|c| c == corr) {
            return;
        }
        assert!(Instant::now() < deadline, "not in the audit trail: {page}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn a_redis_outage_costs_a_dashboard_nothing_with_or_without_redis_data() {
    let (sim, target) = stand_in(14).await;
    let mut redis = RedisServer::start_persistent();
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app(test_settings(&target, |s| {
        s.redis.enabled = true;
        s.redis.url = gns3_central_actors::secret::Secret::new(redis.url());
        s.cluster.redis_timeout_ms = 300;
        s.audit.dir = dir.path().to_string_lossy().into_owned();
    }))
    .await;
    app.wait_server(WAIT, |s| s["connected"] == true).await;
    wait_shared(&app, true).await;
    let mut dash = Dashboard { ws: connect(&app, None).await, events: Vec::new(), frames: Vec::new() };
    dash.until_events(10).await;

    let mut actions = Vec::new();
    for flush in [false, true] {
        redis.kill();
        if flush {
            redis.flush_files();
        }
        wait_shared(&app, false).await;
        actions.push(stop_a_node(&app).await);
        let n = dash.events.len();
        dash.until_events(n + 15).await;
        redis.restart();
        wait_shared(&app, true).await;
        let n = dash.events.len();
        dash.until_events(n + 15).await;
        // The action taken during the outage is in the audit trail (it was spooled).
        audited(&app, actions.last().expect("an action")).await;
    }
    let epoch = every_event_once(&dash.events);
    let unrecovered = dash.frames.iter().filter(|f| f["type"] == "replay" && f["recovered"] == false).count();
    assert_eq!(unrecovered, 0, "no re-sync was asked of the dashboard");

    // Away for a moment, back with its last id: recovered, no gap, no duplicate at the seam.
    let last = dash.last_id();
    let mut seen = std::mem::take(&mut dash.events);
    drop(dash);
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let mut back = Dashboard { ws: connect(&app, Some(&last)).await, events: Vec::new(), frames: Vec::new() };
    back.until_events(10).await;
    let replay = back.frames.iter().find(|f| f["type"] == "replay").expect("a replay frame");
    assert_eq!(replay["recovered"], true, "{replay}");
    seen.extend(back.events.iter().cloned());
    assert_eq!(every_event_once(&seen), epoch);

    // The history kept in Redis serves the HTTP reader too.
    let history = app.get("/api/v2/events?limit=500").await;
    assert_eq!(history.body["epoch"], epoch.as_str(), "{}", history.text);
    assert!(history.body["events"].as_array().is_some_and(|e| e.len() >= 50), "{}", history.text);

    app.stop().await;
    sim.stop().await;
}

/// Waits until the sentinel names the server on `port` as the master.
async fn promoted(sentinel: &Sentinel, port: u16) {
    let deadline = Instant::now() + WAIT;
    while sentinel.master_port().await != Some(port) {
        assert!(Instant::now() < deadline, "the sentinel never promoted {port}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn a_sentinel_failover_costs_a_dashboard_nothing_and_cache_and_audit_follow() {
    let (sim, target) = stand_in(15).await;
    let mut master = RedisServer::start();
    let replica = RedisServer::start_replica_of(master.port());
    let sentinel = Sentinel::start(master.port());
    promoted(&sentinel, master.port()).await;
    let app = spawn_app(test_settings(&target, |s| {
        s.redis.enabled = true;
        s.redis.sentinels = vec![sentinel.address()];
        s.redis.master_name = sentinel::MASTER_NAME.into();
        s.cluster.redis_timeout_ms = 300;
    }))
    .await;
    app.wait_server(WAIT, |s| s["connected"] == true).await;
    wait_shared(&app, true).await;
    let mut dash = Dashboard { ws: connect(&app, None).await, events: Vec::new(), frames: Vec::new() };
    dash.until_events(10).await;

    master.kill();
    let corr = stop_a_node(&app).await;
    promoted(&sentinel, replica.port()).await;
    let n = dash.events.len();
    dash.until_events(n + 30).await;
    wait_shared(&app, true).await;
    let epoch = every_event_once(&dash.events);
    audited(&app, &corr).await;

    // What the service reads is on the promoted master: the audit stream there holds the
    // action, the shared log its epoch.
    let mut c =
        redis::Client::open(replica.url()).expect("client").get_multiplexed_async_connection().await.expect("conn");
    let prefix = &app.state.settings.cache.prefix;
    let audit: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("{prefix}:audit"))
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .expect("XRANGE");
    assert!(
        audit.iter().any(|(_, f)| f.iter().any(|(_, v)| v.contains(&corr))),
        "the audit record is on the new master"
    );
    let pos: Option<String> =
        redis::cmd("HGET").arg(format!("{prefix}:ev:pos")).arg("epoch").query_async(&mut c).await.expect("HGET");
    assert_eq!(pos.as_deref(), Some(epoch.as_str()));
    // The cache is back on Redis (the new master) and serves reads.
    let deadline = Instant::now() + WAIT;
    loop {
        let m = crate::helpers::prom::parse(&app.get("/metrics").await.text);
        if m.value("gns3central_redis_up", &[]) == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the cache did not reach the new master");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let projects = app.get("/api/v2/servers/default/projects").await;
    assert_eq!(projects.status, 200, "{}", projects.text);
    app.stop().await;
    sim.stop().await;
}

//! The `CacheActor` against a real redis-server started by the test (see
//! `support/redis.rs`): hits, misses and TTL expiry in Redis, key namespacing, events
//! applied in place, and outages (Redis killed, Redis hung) with the return to Redis.
//! Each test starts its own server on its own port, so they run in parallel.

#[path = "support/redis.rs"]
mod redis_server;

use actix::prelude::*;
use gns3_central_actors::cache::*;
use gns3_central_actors::events::{Event, EventKind, NewEvent, Source};
use gns3_central_actors::gns3::ProjectTopology;
use redis::AsyncCommands;
use redis_server::RedisServer;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PROJECT: &str = "68dca439-6f3a-4a4e-a7a2-0c7cf3b8d8a1";
const NODE_A: &str = "e19f73a6-2b8e-4f6c-9a53-1f5a7f0c3b11";
const NODE_B: &str = "4c6f0e41-8d2a-4b57-b1d4-7e2a96c0a222";
const LINK_AB: &str = "32955ad8-1c4e-4d9a-8f55-3a8e4f7b9c33";

fn project_id() -> Uuid {
    Uuid::parse_str(PROJECT).unwrap()
}

/// GNS3's controller node object (API-NOTES.md §4, trimmed).
fn gns3_node(id: &str, name: &str, status: &str) -> Value {
    json!({
        "node_id": id, "project_id": PROJECT, "compute_id": "local", "name": name,
        "node_type": "qemu", "status": status, "console": 5000, "console_type": "telnet",
        "console_host": "127.0.0.1", "x": -130, "y": 10, "z": 1, "locked": false,
        "symbol": ":/symbols/computer.svg", "port_name_format": "Ethernet{0}",
        "ports": [{"adapter_number": 0, "port_number": 0, "name": "Ethernet0", "short_name": "e0",
                   "link_type": "ethernet", "adapter_type": "e1000"}],
        "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 64, "adapters": 1}
    })
}

fn topology() -> ProjectTopology {
    serde_json::from_value(json!({
        "project": {"project_id": PROJECT, "name": "lab", "status": "opened",
                    "filename": "lab.gns3", "auto_close": true},
        "nodes": [gns3_node(NODE_A, "A", "stopped"), gns3_node(NODE_B, "B", "stopped")],
        "links": [{"link_id": LINK_AB, "project_id": PROJECT, "link_type": "ethernet", "suspend": false,
                   "filters": {}, "capturing": false,
                   "nodes": [{"node_id": NODE_A, "adapter_number": 0, "port_number": 0},
                             {"node_id": NODE_B, "adapter_number": 0, "port_number": 0}]}]
    }))
    .unwrap()
}

fn event(kind: EventKind, node: &str, data: Value) -> ApplyEvent {
    let new = NewEvent::new(kind, "default", Source::Gns3, data)
        .project(Some(project_id()))
        .node(Some(Uuid::parse_str(node).unwrap()));
    ApplyEvent(Arc::new(Event::stamp(new, "e", 1, kind.default_priority())))
}

fn status_of(t: &ProjectTopology, node: &str) -> Option<String> {
    let id = Uuid::parse_str(node).unwrap();
    t.nodes.iter().find(|n| n.node_id == id).and_then(|n| n.status.clone())
}

/// Short timeouts and backoff so outages and recoveries take well under a second.
fn config(prefix: &str) -> CacheConfig {
    CacheConfig {
        prefix: prefix.into(),
        redis_timeout_ms: 200,
        redis_retry_initial_ms: 50,
        redis_retry_max_ms: 250,
        ..CacheConfig::default()
    }
}

fn start_cache(redis: RedisConfig, cfg: CacheConfig) -> Addr<CacheActor> {
    CacheActor::new(cfg, Some(redis)).expect("cache settings").start()
}

async fn client(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("direct connection to the test Redis")
}

fn get(server: &str) -> GetProjectTopology {
    GetProjectTopology { server: server.into(), project_id: project_id() }
}

async fn stats(cache: &Addr<CacheActor>) -> CacheStats {
    cache.send(GetCacheStats).await.unwrap()
}

/// Polls `check` until it holds, failing the test after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn redis_cache_serves_hits_and_counts_misses() {
    let server = RedisServer::start();
    let cache = start_cache(RedisConfig::from_url(server.url()), config("t"));

    assert_eq!(cache.send(get("default")).await.unwrap(), None);
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    assert_eq!(cache.send(get("default")).await.unwrap(), Some(topology()));

    let s = stats(&cache).await;
    assert_eq!((s.hits, s.misses), (1, 1));
    assert_eq!((s.backend, s.redis), (Backend::Redis, RedisState::Up));
    assert_eq!(s.entries, 0, "nothing went to memory");
    assert_eq!(s.redis_address.as_deref(), Some(format!("127.0.0.1:{}/0", server.port()).as_str()));

    // The value in Redis is the topology's JSON.
    let raw: String = client(&server).await.get(format!("t:topo:default:{PROJECT}")).await.unwrap();
    let stored: ProjectTopology = serde_json::from_str(&raw).unwrap();
    assert_eq!(stored, topology());
}

#[actix_rt::test]
async fn redis_cache_entries_expire_after_the_ttl() {
    let server = RedisServer::start();
    let cache = start_cache(RedisConfig::from_url(server.url()), CacheConfig { ttl: 1.0, ..config("t") });
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();

    let mut direct = client(&server).await;
    let pttl: i64 = direct.pttl(format!("t:topo:default:{PROJECT}")).await.unwrap();
    assert!((1..=1000).contains(&pttl), "Redis holds the key with the configured TTL, got {pttl} ms");
    assert!(cache.send(get("default")).await.unwrap().is_some());

    wait_for("the entry to expire in Redis", Duration::from_secs(5), || {
        let cache = cache.clone();
        async move { cache.send(get("default")).await.unwrap().is_none() }
    })
    .await;
    let exists: bool = direct.exists(format!("t:topo:default:{PROJECT}")).await.unwrap();
    assert!(!exists);
}

#[actix_rt::test]
async fn redis_cache_keys_are_namespaced_by_prefix_and_server() {
    let server = RedisServer::start();
    // host/port/db form, on db 2.
    let parts = RedisConfig::from_parts("127.0.0.1", server.port(), 2, "");
    let cache = start_cache(parts.clone(), config("gns3central"));
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    let list = ProjectList { fetched_at: chrono::Utc::now(), projects: vec![topology().project] };
    cache.send(PutProjects::new("default", list.clone())).await.unwrap();

    let mut direct = client(&server).await;
    let () = redis::cmd("SELECT").arg(2).query_async(&mut direct).await.unwrap();
    let mut keys: Vec<String> = direct.keys("*").await.unwrap();
    keys.sort();
    assert_eq!(keys, [format!("gns3central:topo:default:{PROJECT}"), "gns3central:topo:default:projects".into()]);

    // Another server name, or another prefix on the same Redis, sees none of it.
    assert!(cache.send(get("lab")).await.unwrap().is_none());
    let other = start_cache(parts, config("elsewhere"));
    assert!(other.send(get("default")).await.unwrap().is_none());
    assert_eq!(
        cache.send(GetProjects { server: "default".into() }).await.unwrap().map(|l| l.projects),
        Some(list.projects)
    );

    // Invalidating a server removes its keys only.
    other.send(PutProjectTopology::new("default", topology())).await.unwrap();
    cache.send(Invalidate { server: "default".into(), project_id: None }).await.unwrap();
    let keys: Vec<String> = direct.keys("*").await.unwrap();
    assert_eq!(keys, [format!("elsewhere:topo:default:{PROJECT}")]);
}

#[actix_rt::test]
async fn redis_cache_events_update_the_stored_copy_in_place() {
    let server = RedisServer::start();
    let cache = start_cache(RedisConfig::from_url(server.url()), CacheConfig { ttl: 60.0, ..config("t") });
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    let key = format!("t:topo:default:{PROJECT}");
    let mut direct = client(&server).await;

    // Fire-and-forget, as the dispatcher sends it: the next read already sees it.
    cache.do_send(event(EventKind::NodeStarted, NODE_A, gns3_node(NODE_A, "A", "started")));
    let t = cache.send(get("default")).await.unwrap().unwrap();
    assert_eq!(status_of(&t, NODE_A).as_deref(), Some("started"));
    let raw: String = direct.get(&key).await.unwrap();
    let stored: ProjectTopology = serde_json::from_str(&raw).unwrap();
    assert_eq!(status_of(&stored, NODE_A).as_deref(), Some("started"), "Redis holds the change");
    let pttl: i64 = direct.pttl(&key).await.unwrap();
    assert!((1..=60_000).contains(&pttl), "the key keeps its TTL, got {pttl} ms");

    cache.do_send(event(EventKind::NodeDeleted, NODE_B, json!({"node_id": NODE_B, "name": "B"})));
    let t = cache.send(get("default")).await.unwrap().unwrap();
    assert_eq!(t.nodes.len(), 1);
    assert!(t.links.is_empty(), "the deleted node's link is gone");
    assert_eq!(stats(&cache).await.events_applied, 2);
}

#[actix_rt::test]
async fn redis_cache_parts_are_rendered_from_the_stored_topology() {
    let server = RedisServer::start();
    let cache = start_cache(RedisConfig::from_url(server.url()), CacheConfig { ttl: 60.0, ..config("t") });
    let part = |part| GetTopologyPart { server: "default".into(), project_id: project_id(), part };
    assert_eq!(cache.send(part(TopologyPart::Nodes)).await.unwrap(), PartLookup::Miss);
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    let nodes = cache.send(part(TopologyPart::Nodes)).await.unwrap().hit().expect("from Redis");
    assert_eq!(nodes.json, serde_json::to_vec(&topology().nodes).unwrap());
    assert_eq!(nodes.tag, fingerprint(&nodes.json));
    let whole = cache.send(part(TopologyPart::Whole)).await.unwrap().hit().unwrap();
    assert_eq!(serde_json::from_slice::<ProjectTopology>(&whole.json).unwrap(), topology());

    cache.do_send(event(EventKind::NodeStarted, NODE_A, gns3_node(NODE_A, "A", "started")));
    let node_a = uuid::Uuid::parse_str(NODE_A).unwrap();
    let a = cache.send(part(TopologyPart::Node(node_a))).await.unwrap().hit().unwrap();
    let parsed: gns3_central_actors::gns3::Node = serde_json::from_slice(&a.json).unwrap();
    assert_eq!(parsed.status.as_deref(), Some("started"));
    assert_ne!(cache.send(part(TopologyPart::Nodes)).await.unwrap().hit().unwrap().tag, nodes.tag);
    let s = stats(&cache).await;
    assert_eq!((s.redis_hits, s.redis_misses), (4, 1));
}

#[actix_rt::test]
async fn redis_cache_keeps_working_while_redis_is_killed_and_returns_to_it() {
    let mut server = RedisServer::start();
    let cache = start_cache(RedisConfig::from_url(server.url()), config("t"));
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    assert!(cache.send(get("default")).await.unwrap().is_some());

    server.kill();
    // Reads do not fail and do not hang: the value was in Redis only, so it is a miss.
    let t0 = Instant::now();
    assert!(cache.send(get("default")).await.unwrap().is_none());
    assert!(t0.elapsed() < Duration::from_secs(2), "read took {:?}", t0.elapsed());
    let s = stats(&cache).await;
    assert_eq!((s.backend, s.redis, s.fallbacks), (Backend::Memory, RedisState::Down, 1));
    assert!(s.redis_down_since.is_some() && s.redis_errors >= 1);

    // Writes go to memory, and events apply there.
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    cache.send(event(EventKind::NodeStarted, NODE_A, Value::Null)).await.unwrap();
    let t = cache.send(get("default")).await.unwrap().expect("served from memory");
    assert_eq!(status_of(&t, NODE_A).as_deref(), Some("started"));
    let s = stats(&cache).await;
    assert_eq!((s.entries, s.fallbacks), (1, 1), "one outage, however many calls");
    assert!(s.fallback_ops >= 3);

    server.restart();
    wait_for("the cache to use Redis again", Duration::from_secs(10), || {
        let cache = cache.clone();
        async move { cache.send(GetCacheStats).await.unwrap().redis == RedisState::Up }
    })
    .await;
    let s = stats(&cache).await;
    assert_eq!((s.backend, s.recoveries, s.entries), (Backend::Redis, 1, 0));

    // A value written after the recovery lands in Redis.
    let mut renamed = topology();
    renamed.project.name = "after-recovery".into();
    cache.send(PutProjectTopology::new("default", renamed.clone())).await.unwrap();
    let raw: String = client(&server).await.get(format!("t:topo:default:{PROJECT}")).await.unwrap();
    assert_eq!(serde_json::from_str::<ProjectTopology>(&raw).unwrap(), renamed);
    assert_eq!(cache.send(get("default")).await.unwrap(), Some(renamed));
}

#[actix_rt::test]
async fn redis_cache_does_not_stall_on_a_hung_redis_and_drops_what_went_stale() {
    let server = RedisServer::start();
    let cache = start_cache(RedisConfig::from_url(server.url()), config("t"));
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    let key = format!("t:topo:default:{PROJECT}");

    // Redis stops answering every client for 1.5 s but keeps its data.
    assert_eq!(server.command(&["CLIENT", "PAUSE", "1500", "ALL"]).unwrap(), "+OK");
    let t0 = Instant::now();
    assert!(cache.send(get("default")).await.unwrap().is_none());
    assert!(t0.elapsed() < Duration::from_millis(1000), "a hung Redis stalled a read for {:?}", t0.elapsed());
    // Meanwhile node A starts: Redis's copy (A stopped) is now stale.
    cache.send(event(EventKind::NodeStarted, NODE_A, Value::Null)).await.unwrap();
    assert_eq!(stats(&cache).await.redis, RedisState::Down);

    wait_for("the cache to use Redis again", Duration::from_secs(10), || {
        let cache = cache.clone();
        async move { cache.send(GetCacheStats).await.unwrap().redis == RedisState::Up }
    })
    .await;
    // The stale copy was deleted on the way back: a miss, not a node shown stopped.
    let exists: bool = client(&server).await.exists(&key).await.unwrap();
    assert!(!exists, "the key changed during the outage must be dropped from Redis");
    assert!(cache.send(get("default")).await.unwrap().is_none());
}

#[actix_rt::test]
async fn redis_cache_unreachable_at_start_serves_from_memory() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cache = start_cache(RedisConfig::from_parts("127.0.0.1", port, 0, ""), config("t"));
    assert!(cache.send(get("default")).await.unwrap().is_none());
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    assert_eq!(cache.send(get("default")).await.unwrap(), Some(topology()));
    let s = stats(&cache).await;
    assert_eq!((s.backend, s.redis, s.fallbacks), (Backend::Memory, RedisState::Down, 1));
}

/// After a restart (a new `CacheActor` on the same Redis), a held server's entries are not
/// served until its connector's first `ServerConnected`, which drops them; entries written
/// from then on, by any instance sharing the Redis, are served; a later connect drops
/// nothing; a server not held is served at once.
#[actix_rt::test]
async fn redis_cache_serves_nothing_from_before_a_restart_until_the_server_connected() {
    let server = RedisServer::start();
    let redis = RedisConfig::from_url(server.url());
    let before = start_cache(redis.clone(), config("r"));
    for s in ["default", "lab2"] {
        before.send(PutProjectTopology::new(s, topology())).await.unwrap();
    }

    let restarted = CacheActor::new(config("r"), Some(redis.clone()))
        .expect("cache settings")
        .holding(["default".to_owned()])
        .start();
    assert_eq!(restarted.send(get("default")).await.unwrap(), None, "held: a miss");
    let part = GetTopologyPart { server: "default".into(), project_id: project_id(), part: TopologyPart::Nodes };
    assert!(matches!(restarted.send(part.clone()).await.unwrap(), PartLookup::Miss), "held: a miss");
    assert_eq!(restarted.send(get("lab2")).await.unwrap(), Some(topology()), "not held: served");
    let key = format!("r:topo:default:{PROJECT}");
    let exists: bool = client(&server).await.exists(&key).await.unwrap();
    assert!(exists, "the entry from before is still in Redis until the connect");

    restarted.send(ServerConnected { server: "default".into() }).await.unwrap();
    let exists: bool = client(&server).await.exists(&key).await.unwrap();
    assert!(!exists, "the first connect dropped it");
    assert_eq!(restarted.send(get("default")).await.unwrap(), None);

    // Another instance's entry written now is shared; a reconnect keeps it.
    before.send(PutProjectTopology::new("default", topology())).await.unwrap();
    assert!(matches!(restarted.send(part).await.unwrap(), PartLookup::Hit(_)));
    restarted.send(ServerConnected { server: "default".into() }).await.unwrap();
    assert_eq!(restarted.send(get("default")).await.unwrap(), Some(topology()));
}

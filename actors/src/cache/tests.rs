//! The actor on its memory backend, time driven by a `ManualClock`. The Redis backend is
//! tested against a real redis-server in `actors/tests/cache_redis.rs`.

use super::apply::tests::{event, gns3_node, topology, NODE_A, NODE_B, PROJECT};
use super::*;
use crate::events::EventKind;
use crate::gns3::Project;
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn start(cfg: CacheConfig) -> (Addr<CacheActor>, ManualClock) {
    let clock = ManualClock::new();
    let actor = CacheActor::with_clock(cfg, None, Arc::new(clock.clone())).unwrap();
    (actor.start(), clock)
}

fn project_id() -> Uuid {
    Uuid::parse_str(PROJECT).unwrap()
}

fn get(server: &str) -> GetProjectTopology {
    GetProjectTopology { server: server.into(), project_id: project_id() }
}

fn status_of(t: &ProjectTopology, node: &str) -> Option<String> {
    let id = Uuid::parse_str(node).unwrap();
    t.nodes.iter().find(|n| n.node_id == id).and_then(|n| n.status.clone())
}

fn list() -> ProjectList {
    let project: Project = topology().project;
    ProjectList { fetched_at: chrono::Utc::now(), projects: vec![project] }
}

#[actix_rt::test]
async fn cache_memory_backend_counts_hits_and_misses() {
    let (cache, _) = start(CacheConfig::default());
    assert_eq!(cache.send(get("default")).await.unwrap(), None);
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    assert_eq!(cache.send(get("default")).await.unwrap(), Some(topology()));
    assert_eq!(cache.send(get("other")).await.unwrap(), None, "servers do not share entries");

    let stats = cache.send(GetCacheStats).await.unwrap();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 1));
    assert_eq!(stats.backend, Backend::Memory);
    assert_eq!(stats.redis, RedisState::Disabled);
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["backend"], "memory");
    assert_eq!(json["redis"], "disabled");
}

#[actix_rt::test]
async fn cache_memory_entries_expire_after_the_ttl() {
    let (cache, clock) = start(CacheConfig { ttl: 30.0, ..CacheConfig::default() });
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    cache.send(PutProjects::new("default", list())).await.unwrap();
    clock.advance(Duration::from_secs(29));
    assert!(cache.send(get("default")).await.unwrap().is_some());
    assert!(cache.send(GetProjects { server: "default".into() }).await.unwrap().is_some());
    clock.advance(Duration::from_secs(1));
    assert!(cache.send(get("default")).await.unwrap().is_none());
    assert!(cache.send(GetProjects { server: "default".into() }).await.unwrap().is_none());
    assert_eq!(cache.send(GetCacheStats).await.unwrap().entries, 0);
}

#[actix_rt::test]
async fn cache_ttl_zero_never_caches() {
    let (cache, _) = start(CacheConfig { ttl: 0.0, ..CacheConfig::default() });
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    assert!(cache.send(get("default")).await.unwrap().is_none());
    let stats = cache.send(GetCacheStats).await.unwrap();
    assert_eq!((stats.entries, stats.misses, stats.ttl_secs), (0, 1, 0.0));
}

#[actix_rt::test]
async fn cache_events_update_entries_in_place() {
    let (cache, clock) = start(CacheConfig::default());
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    clock.advance(Duration::from_secs(20));

    // Fire-and-forget like the dispatcher; the read sent after it sees the change.
    cache.do_send(ApplyEvent(Arc::new(event(EventKind::NodeStarted, Some(NODE_A), gns3_node(NODE_A, "A", "started")))));
    let t = cache.send(get("default")).await.unwrap().unwrap();
    assert_eq!(status_of(&t, NODE_A).as_deref(), Some("started"));

    cache.do_send(ApplyEvent(Arc::new(event(EventKind::NodeDeleted, Some(NODE_B), Value::Null))));
    let t = cache.send(get("default")).await.unwrap().unwrap();
    assert_eq!(t.nodes.len(), 1);
    assert!(t.links.is_empty(), "the deleted node's link is gone too");

    // An in-place update does not extend the entry's life.
    clock.advance(Duration::from_secs(10));
    assert!(cache.send(get("default")).await.unwrap().is_none());
    assert_eq!(cache.send(GetCacheStats).await.unwrap().events_applied, 2);
}

#[actix_rt::test]
async fn cache_json_bytes_are_the_topology_and_follow_events() {
    let (cache, _) = start(CacheConfig::default());
    let json = || GetProjectTopologyJson { server: "default".into(), project_id: project_id() };
    assert_eq!(cache.send(json()).await.unwrap(), None);
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    let bytes = cache.send(json()).await.unwrap().expect("cached");
    let parsed: ProjectTopology = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(parsed, topology());
    // Served as shared bytes: two reads give the same buffer, not two renderings.
    let again = cache.send(json()).await.unwrap().unwrap();
    assert_eq!(again.as_ptr(), bytes.as_ptr());

    cache.do_send(ApplyEvent(Arc::new(event(EventKind::NodeStarted, Some(NODE_A), gns3_node(NODE_A, "A", "started")))));
    let bytes = cache.send(json()).await.unwrap().unwrap();
    let parsed: ProjectTopology = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status_of(&parsed, NODE_A).as_deref(), Some("started"), "re-rendered after the event");
    assert_eq!(parsed, cache.send(get("default")).await.unwrap().unwrap());
    let stats = cache.send(GetCacheStats).await.unwrap();
    assert_eq!((stats.hits, stats.misses), (4, 1));
}

#[actix_rt::test]
async fn cache_parts_are_slices_of_the_topology_and_follow_events() {
    let (cache, _) = start(CacheConfig::default());
    let part = |part| GetTopologyPart { server: "default".into(), project_id: project_id(), part };
    let node_a = Uuid::parse_str(NODE_A).unwrap();
    assert_eq!(cache.send(part(TopologyPart::Nodes)).await.unwrap(), PartLookup::Miss);
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    let nodes = cache.send(part(TopologyPart::Nodes)).await.unwrap().hit().expect("cached");
    assert_eq!(nodes.json, serde_json::to_vec(&topology().nodes).unwrap());
    assert_eq!(nodes.tag, fingerprint(&nodes.json));
    let again = cache.send(part(TopologyPart::Nodes)).await.unwrap().hit().unwrap();
    assert_eq!(again.json.as_ptr(), nodes.json.as_ptr(), "shared bytes, rendered once");
    let project = cache.send(part(TopologyPart::Project)).await.unwrap().hit().unwrap();
    assert_eq!(project.json, serde_json::to_vec(&topology().project).unwrap());
    let links = cache.send(part(TopologyPart::Links)).await.unwrap().hit().unwrap();
    assert_eq!(links.json, serde_json::to_vec(&topology().links).unwrap());
    let a = cache.send(part(TopologyPart::Node(node_a))).await.unwrap().hit().unwrap();
    assert_eq!(a.json, serde_json::to_vec(&topology().nodes[0]).unwrap());
    assert_eq!(
        cache.send(part(TopologyPart::Node(Uuid::new_v4()))).await.unwrap(),
        PartLookup::Miss,
        "unknown node: a miss"
    );

    cache.do_send(ApplyEvent(Arc::new(event(EventKind::NodeStarted, Some(NODE_A), gns3_node(NODE_A, "A", "started")))));
    let after = cache.send(part(TopologyPart::Node(node_a))).await.unwrap().hit().unwrap();
    let parsed: crate::gns3::Node = serde_json::from_slice(&after.json).unwrap();
    assert_eq!(parsed.status.as_deref(), Some("started"));
    assert_ne!(after.tag, a.tag, "a new fingerprint after the change");
    let nodes_after = cache.send(part(TopologyPart::Nodes)).await.unwrap().hit().unwrap();
    assert_ne!(nodes_after.tag, nodes.tag, "the list was rendered again");
    assert_eq!(
        cache.send(part(TopologyPart::Links)).await.unwrap().hit().unwrap().tag,
        links.tag,
        "same bytes, same tag"
    );
    let stats = cache.send(GetCacheStats).await.unwrap();
    assert_eq!((stats.hits, stats.misses), (8, 2));
}

#[actix_rt::test]
async fn cache_project_events_reach_the_project_list() {
    let (cache, _) = start(CacheConfig::default());
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    cache.send(PutProjects::new("default", list())).await.unwrap();

    let closed = super::apply::tests::gns3_project("closed");
    cache.send(ApplyEvent(Arc::new(event(EventKind::ProjectClosed, None, closed.clone())))).await.unwrap();
    let l = cache.send(GetProjects { server: "default".into() }).await.unwrap().unwrap();
    assert_eq!(l.projects[0].status.as_deref(), Some("closed"));
    let t = cache.send(get("default")).await.unwrap().unwrap();
    assert_eq!(t.project.status.as_deref(), Some("closed"));

    cache.send(ApplyEvent(Arc::new(event(EventKind::ProjectDeleted, None, closed)))).await.unwrap();
    assert!(cache.send(get("default")).await.unwrap().is_none(), "a deleted project's topology is dropped");
    let l = cache.send(GetProjects { server: "default".into() }).await.unwrap().unwrap();
    assert!(l.projects.is_empty());
}

#[actix_rt::test]
async fn cache_event_that_cannot_be_applied_drops_the_entry() {
    let (cache, _) = start(CacheConfig::default());
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    // node.updated without the node object: what changed is unknown.
    cache.send(ApplyEvent(Arc::new(event(EventKind::NodeUpdated, Some(NODE_A), Value::Null)))).await.unwrap();
    assert!(cache.send(get("default")).await.unwrap().is_none());
    assert_eq!(cache.send(GetCacheStats).await.unwrap().events_invalidated, 1);
}

#[actix_rt::test]
async fn cache_events_of_other_kinds_are_ignored() {
    let (cache, _) = start(CacheConfig::default());
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    let mut e = event(EventKind::CircuitOpened, None, Value::Null);
    cache.send(ApplyEvent(Arc::new(e.clone()))).await.unwrap();
    e.kind = "alert.raised".into();
    cache.send(ApplyEvent(Arc::new(e))).await.unwrap();
    assert_eq!(cache.send(get("default")).await.unwrap(), Some(topology()));
}

#[actix_rt::test]
async fn cache_server_disconnected_drops_the_servers_entries() {
    let (cache, _) = start(CacheConfig::default());
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    cache.send(PutProjectTopology::new("lab", topology())).await.unwrap();
    let mut e = event(EventKind::ServerDisconnected, None, Value::Null);
    e.server = "default".into();
    cache.send(ApplyEvent(Arc::new(e))).await.unwrap();
    assert_eq!(cache.send(get("default")).await.unwrap(), None, "no events while away: not fresh");
    assert_eq!(cache.send(get("lab")).await.unwrap(), Some(topology()), "other servers keep theirs");
}

#[actix_rt::test]
async fn cache_invalidate_drops_one_project_or_a_whole_server() {
    let (cache, _) = start(CacheConfig::default());
    cache.send(PutProjectTopology::new("default", topology())).await.unwrap();
    cache.send(PutProjectTopology::new("lab", topology())).await.unwrap();
    cache.send(PutProjects::new("default", list())).await.unwrap();

    cache.send(Invalidate { server: "default".into(), project_id: Some(project_id()) }).await.unwrap();
    assert!(cache.send(get("default")).await.unwrap().is_none());
    assert!(cache.send(GetProjects { server: "default".into() }).await.unwrap().is_some());

    cache.send(Invalidate { server: "default".into(), project_id: None }).await.unwrap();
    assert!(cache.send(GetProjects { server: "default".into() }).await.unwrap().is_none());
    assert!(cache.send(get("lab")).await.unwrap().is_some(), "other servers keep their entries");
}

#[actix_rt::test]
async fn cache_put_read_before_an_event_is_not_stored() {
    let (cache, _) = start(CacheConfig::default());
    let started = Instant::now();
    // While the caller reads GNS3, node A starts.
    cache.send(ApplyEvent(Arc::new(event(EventKind::NodeStarted, Some(NODE_A), Value::Null)))).await.unwrap();
    // What the caller read predates the event (A still stopped): it must not be cached.
    cache.send(PutProjectTopology::new("default", topology()).fetched_since(started)).await.unwrap();
    assert!(cache.send(get("default")).await.unwrap().is_none());
    assert_eq!(cache.send(GetCacheStats).await.unwrap().stale_puts, 1);
    // A read started after the event is fine.
    cache.send(PutProjectTopology::new("default", topology()).fetched_since(Instant::now())).await.unwrap();
    assert!(cache.send(get("default")).await.unwrap().is_some());
}

#[actix_rt::test]
async fn cache_memory_backend_stays_bounded() {
    let (cache, _) = start(CacheConfig { max_memory_entries: 2, ..CacheConfig::default() });
    for server in ["a", "b", "c"] {
        cache.send(PutProjectTopology::new(server, topology())).await.unwrap();
    }
    let stats = cache.send(GetCacheStats).await.unwrap();
    assert_eq!((stats.entries, stats.evictions), (2, 1));
}

#[test]
fn cache_rejects_settings_that_cannot_work() {
    let e = CacheActor::new(CacheConfig { prefix: "a b".into(), ..CacheConfig::default() }, None).err();
    assert!(matches!(e, Some(CacheError::Config(m)) if m.starts_with("cache.prefix")));
    let e = CacheActor::new(CacheConfig::default(), Some(RedisConfig::from_url("http://x"))).err();
    assert!(matches!(e, Some(CacheError::Config(m)) if m.starts_with("redis.url")));
}

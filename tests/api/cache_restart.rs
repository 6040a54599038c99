//! The Redis cache across a restart of the service (docs/api.md#caching-and-conditional-reads):
//! the real binary on a real redis-server, the GNS3 stand-in started again with other ids
//! while the service was down. What Redis holds from before the restart is never served:
//! the first read after the restart shows none of the old ids, whether GNS3 is not back
//! yet (the read goes to GNS3 and fails) or back already with its new ids.

use serde_json::Value;
use std::time::{Duration, Instant};

use crate::helpers::process::Service;
use crate::helpers::redis_server::RedisServer;
use gns3_central::simulate::{Simulator, SimulatorOptions};

const TOKEN: &str = "cache-restart-admin-token";
const WAIT: Duration = Duration::from_secs(30);
const LIST: &str = "/api/v2/servers/default/projects";

fn config(redis_url: &str, gns3_port: u16) -> String {
    format!(
        r#"
[http]
bind = "127.0.0.1:{{PORT}}"
workers = 1
[gns3.servers.default]
port = {gns3_port}
api_version = "v2"
timeout = 2.0
[gns3.servers.default.reconnect]
initial_backoff_ms = 100
max_backoff_ms = 300
health_interval_secs = 1.0
[cache]
ttl = 3600
[redis]
enabled = true
url = "{redis_url}"
[[auth.tokens]]
name = "cache-restart-admin"
role = "admin"
hash = "{admin}"
"#,
        admin = gns3_central::auth::token::hash(TOKEN),
    )
}

/// A stand-in with two projects whose ids follow from `seed`, on `port` (0: any).
async fn stand_in(seed: u64, port: u16) -> Simulator {
    Simulator::start(SimulatorOptions {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        projects: 2,
        nodes: 1,
        links: false,
        activity: 0.0,
        seed: Some(seed),
    })
    .await
    .expect("the stand-in starts")
}

/// GET `path` of the service: status, `X-Cache`, body as text.
async fn get(svc: &Service, path: &str) -> (u16, String, String) {
    let client = awc::Client::builder().timeout(WAIT).bearer_auth(TOKEN).finish();
    let mut res = client.get(format!("{}{path}", svc.base)).send().await.expect("the service answers");
    let x_cache = res.headers().get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = res.body().limit(8 << 20).await.expect("a body");
    (res.status().as_u16(), x_cache, String::from_utf8_lossy(&body).into_owned())
}

/// The project ids GNS3 (the stand-in) lists, sorted.
async fn gns3_ids(sim: &Simulator) -> Vec<String> {
    let mut res = awc::Client::new()
        .get(format!("http://127.0.0.1:{}/v2/projects", sim.port()))
        .send()
        .await
        .expect("the stand-in answers");
    let body = res.body().await.expect("a body");
    let ids = ids_in(&String::from_utf8_lossy(&body));
    assert_eq!(ids.len(), 2, "{ids:?}");
    ids
}

/// The project ids of a project list, sorted.
fn ids_in(text: &str) -> Vec<String> {
    let list: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let mut ids: Vec<String> =
        list.as_array().into_iter().flatten().filter_map(|p| p["project_id"].as_str()).map(str::to_owned).collect();
    ids.sort();
    ids
}

async fn wait_connected(svc: &Service) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _, text) = get(svc, "/api/v2/servers/default").await;
        if status == 200 && serde_json::from_str::<Value>(&text).is_ok_and(|s| s["connected"] == true) {
            return;
        }
        assert!(Instant::now() < deadline, "never connected to GNS3: {text}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the project list until it is a cache hit (a `server.connected` arriving after the
/// first miss's write may drop it once); its ids.
async fn cached_ids(svc: &Service) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, x_cache, text) = get(svc, LIST).await;
        assert_eq!(status, 200, "{text}");
        if x_cache == "hit" {
            return ids_in(&text);
        }
        assert!(Instant::now() < deadline, "the project list is never a cache hit");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop(mut svc: Service) {
    svc.signal("TERM");
    let (status, _) = svc.wait_exit(WAIT).await;
    assert!(status.success(), "the service stopped cleanly: {status}\n{}", svc.stderr());
}

/// What Redis holds as the cached project list (the entry the service would serve).
async fn stored_list(redis: &RedisServer) -> String {
    let mut c =
        redis::Client::open(redis.url()).expect("client").get_multiplexed_async_connection().await.expect("conn");
    let stored: Option<String> =
        redis::cmd("GET").arg("gns3central:topo:default:projects").query_async(&mut c).await.expect("GET");
    stored.unwrap_or_default()
}

fn assert_none_of(old: &[String], status: u16, text: &str, when: &str) {
    for id in old {
        assert!(!text.contains(id.as_str()), "{when}: an id from before the restart ({status}): {text}");
    }
}

#[actix_rt::test]
async fn after_a_restart_the_redis_cache_never_serves_what_was_cached_before_it() {
    let redis = RedisServer::start();
    let first = stand_in(1, 0).await;
    let svc = Service::start(&config(&redis.url(), first.port()), &[], &[]).await;
    wait_connected(&svc).await;
    let old = gns3_ids(&first).await;
    assert_eq!(cached_ids(&svc).await, old);
    stop(svc).await;
    first.stop().await;
    let stored = stored_list(&redis).await;
    assert!(old.iter().all(|id| stored.contains(id.as_str())), "Redis still holds the old list: {stored}");

    // GNS3 is not back yet: the read must not be answered from the old entry.
    let port = crate::helpers::free_port();
    let svc = Service::start(&config(&redis.url(), port), &[], &[]).await;
    let (status, x_cache, text) = get(&svc, LIST).await;
    assert_none_of(&old, status, &text, "GNS3 away");
    assert_ne!((status, x_cache.as_str()), (200, "hit"), "{text}");
    // GNS3 comes back with other ids: they are what the service lists, then from the cache.
    let second = stand_in(2, port).await;
    let new = gns3_ids(&second).await;
    assert_ne!(new, old, "the stand-in's ids changed");
    wait_connected(&svc).await;
    let (status, _, text) = get(&svc, LIST).await;
    assert_eq!((status, ids_in(&text)), (200, new.clone()), "{text}");
    assert_eq!(cached_ids(&svc).await, new);
    stop(svc).await;
    second.stop().await;

    // GNS3 is back with other ids before the service is: its very first read shows them.
    let third = stand_in(3, 0).await;
    let svc = Service::start(&config(&redis.url(), third.port()), &[], &[]).await;
    let (status, _, text) = get(&svc, LIST).await;
    assert_none_of(&new, status, &text, "GNS3 back first");
    assert_eq!((status, ids_in(&text)), (200, gns3_ids(&third).await), "{text}");
    stop(svc).await;
    third.stop().await;
}

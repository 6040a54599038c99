//! Cache-aware reads against real gns3-server v2 and v3: the per-resource reads (one
//! project, its nodes, its links, one node) are slices of the cached project topology,
//! every cacheable GET carries `ETag` and `X-Cache`, `If-None-Match` gives 304,
//! `Cache-Control: no-cache` reads GNS3, and a change made straight in GNS3 reaches the
//! cached reads through its event (the TTL is an hour here, so only the event can do it).

use awc::http::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{spawn_app, test_settings, TestApp};
use crate::helpers::testbed::{self, Flavor};

/// A GET answer with the headers these tests look at.
struct Got {
    status: u16,
    etag: String,
    x_cache: String,
    cache_control: String,
    text: String,
    body: Value,
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = app.client.get(app.url(path));
    for h in headers {
        req = req.insert_header(*h);
    }
    let mut res = req.send().await.expect("the service answers");
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (etag, x_cache, cache_control) = (header("etag"), header("x-cache"), header("cache-control"));
    let bytes = res.body().limit(16 << 20).await.expect("body is read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Got {
        status: res.status().as_u16(),
        etag,
        x_cache,
        cache_control,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    }
}

/// Reads `path` with `If-None-Match: etag` until it changes (the event was applied), for
/// at most 10 s; the changed answer.
async fn until_changed(app: &TestApp, path: &str, etag: &str) -> Got {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(app, path, &[("If-None-Match", etag)]).await;
        if r.status != 304 {
            return r;
        }
        assert!(Instant::now() < deadline, "{path} still answers 304 for {etag} after 10 s");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn strong(etag: &str) -> bool {
    etag.len() == 34 && etag.starts_with('"') && etag.ends_with('"')
}

async fn per_resource_reads_are_cached_conditional_and_follow_events(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    // Made before the service starts: the events of their creation cannot overtake its
    // first read (a read that an event overtook is not cached, so it would miss again).
    let project = env.create_project("cache-reads").await;
    let pid = project.id;
    let a = env.create_qemu_node(pid, "A").await;
    let b = env.create_qemu_node(pid, "B").await;
    let link = env.create_link(pid, a, b).await;
    let app = spawn_app(test_settings(&env.target(), |s| s.cache.ttl = 3600.0)).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    let base = format!("/api/v2/servers/default/projects/{pid}");
    let (nodes, node_a) = (format!("{base}/nodes"), format!("{base}/nodes/{a}"));

    // The first read is a miss: it reads the whole project from GNS3 and caches it...
    let first = get(&app, &nodes, &[]).await;
    assert_eq!((first.status, first.x_cache.as_str()), (200, "miss"), "{}", first.text);
    assert!(strong(&first.etag), "a strong ETag: {:?}", first.etag);
    assert_eq!(first.cache_control, "private, no-cache");
    assert_eq!(first.body.as_array().map(Vec::len), Some(2), "{}", first.text);
    // ...so every slice of it is a hit now, with the same bytes and tag for the same data.
    let again = get(&app, &nodes, &[]).await;
    assert_eq!((again.x_cache.as_str(), &again.etag, &again.text), ("hit", &first.etag, &first.text));
    let one = get(&app, &node_a, &[]).await;
    assert_eq!((one.status, one.x_cache.as_str(), one.body["name"].as_str()), (200, "hit", Some("A")), "{}", one.text);
    assert!(strong(&one.etag) && one.etag != first.etag);
    let links = get(&app, &format!("{base}/links"), &[]).await;
    assert_eq!((links.x_cache.as_str(), links.body[0]["link_id"].as_str()), ("hit", Some(&*link.to_string())));
    let p = get(&app, &base, &[]).await;
    assert_eq!((p.x_cache.as_str(), p.body["project_id"].as_str()), ("hit", Some(&*pid.to_string())), "{}", p.text);

    // If-None-Match: 304 with the ETag and no body; another tag gets the body.
    let not_modified = get(&app, &nodes, &[("If-None-Match", &first.etag)]).await;
    assert_eq!((not_modified.status, not_modified.text.as_str()), (304, ""));
    assert_eq!((not_modified.etag.as_str(), not_modified.x_cache.as_str()), (first.etag.as_str(), "hit"));
    let list = format!("\"0123\", W/{}", first.etag);
    assert_eq!(get(&app, &nodes, &[("If-None-Match", &list)]).await.status, 304, "a list, weakly compared");
    let other = get(&app, &nodes, &[("If-None-Match", "\"0123\"")]).await;
    assert_eq!((other.status, &other.text), (200, &first.text));

    // Cache-Control: no-cache reads GNS3 (a miss), and the data did not change: same tag.
    let forced = get(&app, &nodes, &[("Cache-Control", "no-cache")]).await;
    assert_eq!((forced.status, forced.x_cache.as_str(), &forced.etag), (200, "miss", &first.etag), "{}", forced.text);
    let forced = get(&app, &node_a, &[("Cache-Control", "no-cache"), ("If-None-Match", &one.etag)]).await;
    assert_eq!((forced.status, forced.x_cache.as_str()), (304, "miss"), "conditional and forced at once");

    // A rename straight in GNS3: its node.updated event changes the cached node and list
    // (the list read first, so its rendering is cached and must be dropped by the event).
    let before = get(&app, &nodes, &[("If-None-Match", &first.etag)]).await;
    assert_eq!((before.status, before.x_cache.as_str()), (304, "hit"));
    let (status, body) =
        env.call(Method::PUT, &format!("/projects/{pid}/nodes/{a}"), Some(&json!({"name": "A2"}))).await;
    assert_eq!(status, 200, "renaming in GNS3: {body}");
    let renamed = until_changed(&app, &node_a, &one.etag).await;
    assert_eq!((renamed.status, renamed.x_cache.as_str()), (200, "hit"), "from the cache: {}", renamed.text);
    assert_eq!(renamed.body["name"], "A2", "{}", renamed.text);
    assert!(strong(&renamed.etag) && renamed.etag != one.etag, "a new ETag");
    let list = get(&app, &nodes, &[("If-None-Match", &first.etag)]).await;
    assert_eq!((list.status, list.x_cache.as_str()), (200, "hit"), "the list changed too: {}", list.text);
    assert!(list.text.contains("\"A2\""), "{}", list.text);

    // A start straight in GNS3 (409 without ubridge, but the node starts): node.started.
    let (status, _) = env.call(Method::POST, &format!("/projects/{pid}/nodes/{a}/start"), Some(&json!({}))).await;
    assert!(status == 200 || status == 409, "starting in GNS3: {status}");
    assert_eq!(env.node_status(pid, a).await, "started");
    let started = until_changed(&app, &node_a, &renamed.etag).await;
    assert_eq!(
        (started.x_cache.as_str(), started.body["status"].as_str()),
        ("hit", Some("started")),
        "{}",
        started.text
    );
    let (status, body) = env.call(Method::POST, &format!("/projects/{pid}/nodes/{a}/stop"), Some(&json!({}))).await;
    assert!(status == 200 || status == 204, "stopping in GNS3: {status} {body}");
    let stopped = until_changed(&app, &node_a, &started.etag).await;
    assert_eq!(
        (stopped.x_cache.as_str(), stopped.body["status"].as_str()),
        ("hit", Some("stopped")),
        "{}",
        stopped.text
    );

    // A project closed straight in GNS3: its reads still answer (from the cache, then from
    // GNS3, which lists a closed project's nodes and links too).
    let (status, body) = env.call(Method::POST, &format!("/projects/{pid}/close"), Some(&json!({}))).await;
    assert!(status == 200 || status == 204, "closing in GNS3: {status} {body}");
    let closed = until_changed(&app, &base, &p.etag).await;
    assert_eq!((closed.status, closed.body["status"].as_str()), (200, Some("closed")), "{}", closed.text);
    for path in [base.clone(), nodes.clone(), format!("{base}/links"), node_a.clone()] {
        let r = get(&app, &path, &[("Cache-Control", "no-cache")]).await;
        assert_eq!((r.status, r.x_cache.as_str()), (200, "miss"), "{path}: {}", r.text);
    }

    project.delete().await;
    app.stop().await;
}

#[actix_rt::test]
async fn per_resource_reads_are_cached_conditional_and_follow_events_v2() {
    per_resource_reads_are_cached_conditional_and_follow_events(Flavor::V2).await;
}

#[actix_rt::test]
async fn per_resource_reads_are_cached_conditional_and_follow_events_v3() {
    per_resource_reads_are_cached_conditional_and_follow_events(Flavor::V3).await;
}

/// The topology reads (v2 and the original API's paths) and the project list: weak ETags
/// that survive a changing `fetched_at`, 304s, `no-cache`. A GNS3 of its own: the
/// server-wide answers must not change under the test's feet.
#[actix_rt::test]
async fn topology_reads_and_the_project_list_are_conditional() {
    let gns3 = testbed::dedicated(Flavor::V2, "cache-topology").await;
    let env = gns3.env();
    let project = env.create_project("cache-topology").await;
    let pid = project.id;
    env.create_qemu_node(pid, "A").await;
    let app = spawn_app(test_settings(&env.target(), |s| s.cache.ttl = 3600.0)).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;

    for path in [
        format!("/api/v2/servers/default/projects/{pid}/topology"),
        format!("/api/common/api/gns3-central/topology/?project_id={pid}"),
        format!("/api/gns3/topology/?project_id={pid}"),
        "/api/v2/servers/default/topology".to_owned(),
        "/api/v2/topology".to_owned(),
    ] {
        let first = get(&app, &path, &[("Cache-Control", "no-cache")]).await;
        assert_eq!((first.status, first.x_cache.as_str()), (200, "miss"), "{path}: {}", first.text);
        assert!(first.etag.starts_with("W/\"") && first.etag.len() == 36, "{path}: weak ETag {:?}", first.etag);
        let hit = get(&app, &path, &[]).await;
        assert_eq!((hit.x_cache.as_str(), &hit.etag), ("hit", &first.etag), "{path}: {}", hit.text);
        let not_modified = get(&app, &path, &[("If-None-Match", &first.etag)]).await;
        assert_eq!((not_modified.status, not_modified.text.as_str()), (304, ""), "{path}");
        assert_eq!(not_modified.etag, first.etag, "{path}");
    }

    let list = get(&app, "/api/v2/servers/default/projects", &[("Cache-Control", "no-cache")]).await;
    assert_eq!((list.status, list.x_cache.as_str()), (200, "miss"), "{}", list.text);
    assert!(list.text.contains(&pid.to_string()));
    let hit = get(&app, "/api/v2/servers/default/projects", &[("If-None-Match", &list.etag)]).await;
    assert_eq!((hit.status, hit.x_cache.as_str()), (304, "hit"));
    // A project created straight in GNS3 joins the cached list through its event.
    let second = env.create_project("cache-topology-2").await;
    let changed = until_changed(&app, "/api/v2/servers/default/projects", &list.etag).await;
    assert_eq!((changed.status, changed.x_cache.as_str()), (200, "hit"), "{}", changed.text);
    assert!(changed.text.contains(&second.id.to_string()), "{}", changed.text);
    second.delete().await;
    project.delete().await;
    app.stop().await;
}

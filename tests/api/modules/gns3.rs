//! A module against real GNS3 v2: it subscribes to its project's node status, runs node
//! actions over its socket (the events they cause carry the action's correlation id),
//! reads a node's status, the topology and the network summary; an in-process module
//! does the same through `ModuleHandle`. Every action of both is in the audit trail.

use gns3_central_actors::gns3::NodeAction;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{connect, register, status_until};
use crate::app::{spawn_app, test_settings};
use crate::helpers::testbed::{self, Flavor};

#[actix_rt::test]
async fn a_module_runs_node_actions_on_real_gns3_and_their_events_carry_its_correlation_id() {
    let env = testbed::gns3(Flavor::V2).await;
    let app = spawn_app(test_settings(&env.target(), |_| {})).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    let project = env.create_project("module-actions").await;
    let pid = project.id;
    let node = env.create_qemu_node(pid, "M").await;
    let token = register(&app, "operator-bot").await;
    let mut m = connect(&app, "operator-bot", &token).await;
    m.send(json!({"type":"subscribe","request_id":"s","subscriptions":["node_status"],"projects":[pid]})).await;
    assert_eq!(m.until(Duration::from_secs(10), |v| v["type"] == "subscribed").await["projects"], json!([pid]));

    // GNS3 starts the node but answers 409 without ubridge: the result carries the
    // correlation id either way, and so does the node.started event.
    m.send(json!({"type":"node_action","action":"start","project_id":pid,"node_id":node,"request_id":"a1"})).await;
    let r = m.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!(
        (r["request_id"].as_str(), r["ok"].as_bool(), r["error"]["status"].as_u64()),
        (Some("a1"), Some(false), Some(409)),
        "{r}"
    );
    let cid = r["correlation_id"].as_str().expect("correlation id").to_owned();
    let started = m.until(Duration::from_secs(30), |v| v["type"] == "node.started").await;
    assert_eq!(
        (started["node_id"].clone(), started["correlation_id"].as_str()),
        (json!(node), Some(cid.as_str())),
        "{started}"
    );

    m.send(json!({"type":"node_status","project_id":pid,"node_id":node,"request_id":"ns"})).await;
    let st = m.until(Duration::from_secs(30), |v| v["type"] == "node_status").await;
    assert_eq!(st["status"], "started", "{st}");

    m.send(json!({"type":"node_action","action":"stop","project_id":pid,"node_id":node,"request_id":"a2"})).await;
    let r = m.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!(r["ok"], true, "{r}");
    let cid = r["correlation_id"].as_str().expect("correlation id").to_owned();
    let stopped = m.until(Duration::from_secs(30), |v| v["type"] == "node.stopped").await;
    assert_eq!(stopped["correlation_id"].as_str(), Some(cid.as_str()), "{stopped}");
    assert_eq!(env.node_status(pid, node).await, "stopped");

    m.send(json!({"type":"request_topology","project_id":pid,"request_id":"t"})).await;
    let t = m.until(Duration::from_secs(30), |v| v["type"] == "topology").await;
    assert!(t.to_string().contains(&node.to_string()), "{t}");
    m.send(json!({"type":"network_summary","request_id":"sum"})).await;
    let s = m.until(Duration::from_secs(30), |v| v["type"] == "summary").await;
    assert!(s["summary"]["nodes"].as_u64() >= Some(1) && s["summary"]["projects"].as_u64() >= Some(1), "{s}");
    assert!(s["summary"]["nodes_by_type"]["qemu"].as_u64() >= Some(1), "{s}");
    let st = status_until(&app, "operator-bot", Duration::from_secs(5), |s| s["actions"] == 2).await;
    assert!(st["events_delivered"].as_u64() >= Some(2), "{st}");
    // Both actions are in the audit trail as the module's, the refused start included.
    let audit = app.get("/api/v2/audit?via=module").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let records = audit.body["records"].as_array().cloned().unwrap_or_default();
    let mine: Vec<_> = records.iter().filter(|r| r["who"] == "operator-bot").collect();
    assert_eq!(mine.len(), 2, "{}", audit.text);
    // Newest first: the stop (ok, its correlation id), then the start (GNS3's 409).
    assert_eq!(
        (mine[0]["action"].as_str(), mine[0]["outcome"].as_str()),
        (Some("node.stop"), Some("ok")),
        "{}",
        audit.text
    );
    assert_eq!(mine[0]["correlation_id"].as_str(), Some(cid.as_str()));
    assert_eq!(mine[0]["node_id"], json!(node));
    assert_eq!(
        (mine[1]["action"].as_str(), mine[1]["status"].as_u64()),
        (Some("node.start"), Some(409)),
        "{}",
        audit.text
    );

    // In process: the same through ModuleHandle; its handler sees the correlated event.
    let bot = app.state.modules.module("rust-bot").expect("in-process module");
    // (type, correlation id) of each event the handler saw.
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let s = seen.clone();
    bot.subscribe(["node_status"], move |e| {
        s.lock().unwrap().push((e.kind.clone(), e.correlation_id.clone()));
        async { Ok(()) }
    })
    .await
    .expect("subscribed");
    let err = bot.node_action(None, pid, node, NodeAction::Start).await.expect_err("GNS3's 409");
    assert!(err.to_string().to_lowercase().contains("ubridge") || !err.to_string().is_empty(), "{err}");
    let out = bot.node_action(None, pid, node, NodeAction::Stop).await.expect("stopped");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|(k, c)| k == "node.stopped" && c.as_deref() == Some(out.correlation_id.as_str()))
    {
        assert!(Instant::now() < deadline, "no correlated node.stopped: {:?}", seen.lock().unwrap());
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bot.node_status(None, pid, node).await.expect("status"), "stopped");
    // The in-process module's two actions are in the audit trail too, as its own.
    let audit = app.get("/api/v2/audit?who=rust-bot").await;
    let records = audit.body["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 2, "{}", audit.text);
    assert_eq!((records[0]["action"].as_str(), records[0]["via"].as_str()), (Some("node.stop"), Some("module")));
    assert_eq!(records[0]["correlation_id"].as_str(), Some(out.correlation_id.as_str()), "{}", audit.text);
    assert_eq!((records[1]["action"].as_str(), records[1]["outcome"].as_str()), (Some("node.start"), Some("error")));
    let topo = bot.topology(None, Some(pid)).await.expect("topology");
    assert_eq!(topo.projects[0].nodes.len(), 1);
    let summary = bot.network_summary().await;
    assert!(summary.nodes >= 1 && summary.unavailable.is_empty(), "{summary:?}");
    project.delete().await;
}

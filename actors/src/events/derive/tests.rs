//! Derivation tests on frames and snapshots recorded from real gns3-server 2.2.61 (v2) and
//! 3.0.6 (v3); `../fixtures/README.md` says how they were recorded.

use super::*;
use serde_json::json;

const BURST: Duration = Duration::from_millis(2000);

const V2_SCENARIO: &str = include_str!("../fixtures/v2-scenario.jsonl");
const V3_SCENARIO: &str = include_str!("../fixtures/v3-scenario.jsonl");
const V2_DELETES: &str = include_str!("../fixtures/v2-deletes.jsonl");
const V3_DELETES: &str = include_str!("../fixtures/v3-deletes.jsonl");

/// One recorded line: the stream it came from, when, and the frame.
struct Line {
    stream: StreamId,
    at: Duration,
    frame: Value,
}

fn load(jsonl: &str) -> Vec<Line> {
    let raw: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).expect("fixture line")).collect();
    // A project-stream line does not name its stream: it is the project of its frames.
    let project = raw
        .iter()
        .filter(|l| l["stream"] == "project")
        .find_map(|l| l["frame"]["event"]["project_id"].as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .expect("a project frame");
    raw.into_iter()
        .map(|l| Line {
            stream: if l["stream"] == "controller" { StreamId::Controller } else { StreamId::Project(project) },
            at: Duration::from_millis(l["t_ms"].as_u64().expect("t_ms")),
            frame: l["frame"].clone(),
        })
        .collect()
}

/// Feeds the lines at their recorded times, flushing topology bursts when due.
fn run(lines: &[Line]) -> Vec<NewEvent> {
    let t0 = Instant::now();
    let mut d = Deriver::new("default", BURST);
    let mut out = Vec::new();
    for l in lines {
        let now = t0 + l.at;
        if d.next_flush().is_some_and(|due| due <= now) {
            out.extend(d.flush_topology(now));
        }
        out.extend(d.on_frame(l.stream, &l.frame, now));
    }
    out.extend(d.flush_topology(t0 + Duration::from_secs(3600)));
    out
}

/// `kind` plus the node's name for node events: what a reader of the sequence needs.
fn describe(e: &NewEvent) -> String {
    match e.data.get("name").and_then(Value::as_str) {
        Some(name) if e.kind.starts_with("node.") => format!("{} {name}", e.kind),
        _ => e.kind.clone(),
    }
}

fn described(events: &[NewEvent]) -> Vec<String> {
    events.iter().map(describe).collect()
}

/// The recorded frames of one action, e.g. every `node.deleted`.
fn frames<'a>(lines: &'a [Line], action: &str) -> Vec<&'a Line> {
    lines.iter().filter(|l| l.frame["action"] == action).collect()
}

fn snapshot(json: &str) -> ServerTopology {
    serde_json::from_str(json).expect("snapshot fixture")
}

fn scenario_expectation(bulk_start: [&str; 2], bulk_stop: [&str; 2]) -> Vec<String> {
    let mut v = vec![
        "project.created",
        "topology.changed",
        "node.created A",
        "node.created B",
        "link.created",
        "topology.changed",
        "node.started A",   // single start: 409 from GNS3, but the node runs
        "node.suspended A", // the stray `started` before it gives nothing
        "node.stopped A",
    ];
    v.extend(bulk_start);
    v.extend(bulk_stop); // each `stopped` came twice
    v.extend([
        "node.updated B-renamed",
        "link.updated", // suspend: true
        "link.deleted",
        "node.deleted B-renamed", // two frames, one event
        "topology.changed",
        "project.closed",
        "topology.changed",
        "project.opened", // the node.created A that comes with it gives nothing
        "topology.changed",
        "project.closed", // DELETE of an open project: closed, then deleted
        "project.deleted",
        "topology.changed",
    ]);
    v.into_iter().map(String::from).collect()
}

fn check_scenario(fixture: &str, expected: Vec<String>) {
    let lines = load(fixture);
    let events = run(&lines);
    assert_eq!(described(&events), expected);
    for once in [
        "project.created",
        "node.created A",
        "node.created B",
        "link.created",
        "node.suspended A",
        "node.updated B-renamed",
        "link.updated",
        "link.deleted",
        "node.deleted B-renamed",
        "project.opened",
        "project.deleted",
    ] {
        assert_eq!(expected.iter().filter(|k| *k == once).count(), 1, "{once}");
    }
    let project = match lines.iter().find(|l| l.stream != StreamId::Controller).map(|l| l.stream) {
        Some(StreamId::Project(id)) => id,
        _ => panic!("no project stream"),
    };
    for e in &events {
        assert_eq!(e.server, "default");
        assert_eq!(e.source, Source::Gns3);
        assert_eq!(e.project_id, Some(project), "{}", e.kind);
        assert!(e.data.is_object());
        if e.kind.starts_with("node.") {
            assert_eq!(e.node_id.map(|id| id.to_string()).as_deref(), e.data["node_id"].as_str());
            assert_eq!(e.data["project_id"], project.to_string());
        } else {
            assert_eq!(e.node_id, None);
        }
        if let Some(status) = e.kind.strip_prefix("node.").filter(|s| ["started", "stopped", "suspended"].contains(s)) {
            assert_eq!(e.data["status"], status);
        }
    }
}

#[test]
fn v2_recorded_scenario_gives_each_event_once() {
    check_scenario(
        V2_SCENARIO,
        scenario_expectation(["node.started B", "node.started A"], ["node.stopped A", "node.stopped B"]),
    );
}

#[test]
fn v3_recorded_scenario_gives_each_event_once() {
    check_scenario(
        V3_SCENARIO,
        scenario_expectation(["node.started A", "node.started B"], ["node.stopped B", "node.stopped A"]),
    );
}

#[test]
fn recorded_double_deletes_in_both_orders_give_one_event_per_node() {
    for fixture in [V2_DELETES, V3_DELETES] {
        let lines = load(fixture);
        // The recording holds both orders, so both are exercised on real frames.
        let firsts: Vec<bool> = frames(&lines, "node.deleted")
            .chunks(2)
            .map(|pair| pair[0].frame["event"].get("compute_id").is_some())
            .collect();
        assert!(firsts.contains(&true) && firsts.contains(&false), "{firsts:?}");

        let events = run(&lines);
        let deleted: Vec<_> = events.iter().filter(|e| e.kind == "node.deleted").collect();
        assert_eq!(deleted.len(), 6);
        let ids: BTreeSet<_> = deleted.iter().map(|e| e.node_id).collect();
        assert_eq!(ids.len(), 6);
        for e in deleted {
            // The controller form either way: the known object when the compute form came first.
            assert!(e.data.get("properties").is_some() && e.data.get("compute_id").is_some());
        }
        // Deleting a running node sends no `stopped` first.
        assert_eq!(events.iter().filter(|e| e.kind == "node.stopped").count(), 0);
        assert_eq!(events.iter().filter(|e| e.kind == "node.started").count(), 3);
    }
}

/// A deriver that knows nodes A and B of the v2 scenario, and the frames of the scenario.
fn with_two_nodes() -> (Deriver, Vec<Line>, Instant) {
    let lines = load(V2_SCENARIO);
    let mut d = Deriver::new("default", BURST);
    let t0 = Instant::now();
    for l in lines.iter().take_while(|l| l.frame["action"] != "link.created") {
        d.on_frame(l.stream, &l.frame, t0 + l.at);
    }
    (d, lines, t0)
}

#[test]
fn node_deleted_twice_gives_one_event_in_either_order() {
    for reversed in [false, true] {
        let (mut d, lines, t0) = with_two_nodes();
        let mut pair = frames(&lines, "node.deleted");
        if reversed {
            pair.reverse();
        }
        let first = d.on_frame(pair[0].stream, &pair[0].frame, t0 + pair[0].at);
        assert_eq!(first.len(), 1, "reversed: {reversed}");
        assert_eq!(first[0].kind, "node.deleted");
        assert_eq!(first[0].node_id.map(|id| id.to_string()).as_deref(), pair[0].frame["event"]["node_id"].as_str());
        // Controller form either way: the frame itself, or the known node when the compute form led.
        assert!(first[0].data.get("properties").is_some());
        let expected_name = if reversed { "B-renamed" } else { "B" };
        assert_eq!(first[0].data["name"], expected_name);
        assert!(d.on_frame(pair[1].stream, &pair[1].frame, t0 + pair[1].at).is_empty());
        // A repeat of either form, or a late update, does not bring the node back.
        for l in &pair {
            assert!(d.on_frame(l.stream, &l.frame, t0 + l.at).is_empty());
        }
        let update = frames(&lines, "node.updated").into_iter().find(|l| l.frame["event"]["name"] == "B").unwrap();
        assert!(d.on_frame(update.stream, &update.frame, t0 + update.at).is_empty());
    }
}

#[test]
fn a_recreated_node_can_be_deleted_again() {
    // v2 snapshot restore keeps node ids: delete (one form), create, other form, then a real delete.
    let (mut d, lines, t0) = with_two_nodes();
    let pair = frames(&lines, "node.deleted");
    let created = frames(&lines, "node.created").into_iter().find(|l| l.frame["event"]["name"] == "B").unwrap();
    let (s, now) = (created.stream, t0 + Duration::from_secs(40));
    assert_eq!(d.on_frame(s, &pair[0].frame, now).len(), 1);
    assert_eq!(described(&d.on_frame(s, &created.frame, now)), ["node.created B"]);
    assert!(d.on_frame(s, &pair[1].frame, now).is_empty());
    assert_eq!(described(&d.on_frame(s, &pair[1].frame, now)), ["node.deleted B-renamed"]);
}

#[test]
fn stray_started_and_doubled_stopped_give_nothing() {
    let lines = load(V3_SCENARIO);
    let a = |l: &&Line| l.frame["event"]["name"] == "A";
    let updates: Vec<_> = frames(&lines, "node.updated").into_iter().filter(a).collect();
    let statuses: Vec<_> = updates.iter().map(|l| l.frame["event"]["status"].as_str().unwrap()).collect();
    // As recorded: start, stray started + suspended, stop, bulk start, doubled bulk stop, close, delete.
    assert_eq!(
        statuses,
        ["started", "started", "suspended", "stopped", "started", "stopped", "stopped", "stopped", "stopped"]
    );
    let mut d = Deriver::new("default", BURST);
    let t0 = Instant::now();
    let created = frames(&lines, "node.created")[0];
    d.on_frame(created.stream, &created.frame, t0);
    let kinds: Vec<Vec<String>> =
        updates.iter().map(|l| described(&d.on_frame(l.stream, &l.frame, t0 + l.at))).collect();
    let empty: Vec<String> = Vec::new();
    assert_eq!(kinds[0], ["node.started A"]);
    assert_eq!(kinds[1], empty, "stray started");
    assert_eq!(kinds[2], ["node.suspended A"]);
    assert_eq!(kinds[3], ["node.stopped A"]);
    assert_eq!(kinds[4], ["node.started A"]); // command_line changed too: no extra node.updated
    assert_eq!(kinds[5], ["node.stopped A"]);
    assert!(kinds[6..].iter().all(Vec::is_empty), "doubled stopped: {kinds:?}");
    assert_eq!(d.next_flush(), Some(t0 + BURST), "status changes are not structural");
}

#[test]
fn topology_changes_in_a_burst_give_one_event() {
    let (mut d, lines, t0) = with_two_nodes();
    d.flush_topology(t0 + Duration::from_secs(3600));
    let burst: Vec<&Line> =
        ["link.created", "link.deleted", "node.deleted"].iter().map(|a| frames(&lines, a)[0]).collect();
    let start = t0 + Duration::from_secs(100);
    for (i, l) in burst.iter().enumerate() {
        d.on_frame(l.stream, &l.frame, start + Duration::from_millis(500 * i as u64));
    }
    let due = start + Duration::from_millis(1000) + BURST;
    assert_eq!(d.next_flush(), Some(due));
    assert!(d.flush_topology(due - Duration::from_millis(1)).is_none());
    let e = d.flush_topology(due).expect("topology.changed");
    assert_eq!(e.kind, "topology.changed");
    assert_eq!(e.data["changes"], 3);
    let project = frames(&lines, "node.created")[0].frame["event"]["project_id"].as_str();
    assert_eq!(e.project_id.map(|p| p.to_string()).as_deref(), project);
    assert!(d.flush_topology(due + BURST).is_none());
    assert_eq!(d.next_flush(), None);
}

#[test]
fn a_steady_trickle_of_changes_still_flushes() {
    let mut d = Deriver::new("default", BURST);
    let t0 = Instant::now();
    let project = Uuid::new_v4();
    let mut flushed = Vec::new();
    for i in 0..30u64 {
        let now = t0 + Duration::from_secs(i);
        if d.next_flush().is_some_and(|due| due <= now) {
            flushed.extend(d.flush_topology(now).map(|_| i));
        }
        let node = json!({"node_id": Uuid::new_v4(), "project_id": project, "name": "n", "status": "stopped"});
        assert_eq!(
            d.on_frame(StreamId::Project(project), &json!({"action": "node.created", "event": node}), now).len(),
            1
        );
    }
    // One change a second never leaves the 2 s window quiet: the cap flushes every 5 windows.
    assert_eq!(flushed, [10, 20]);
}

#[test]
fn resync_after_a_restart_reports_projects_closed_and_nodes_stopped() {
    for (before, after) in [
        (include_str!("../fixtures/v2-resync-before.json"), include_str!("../fixtures/v2-resync-after.json")),
        (include_str!("../fixtures/v3-resync-before.json"), include_str!("../fixtures/v3-resync-after.json")),
    ] {
        let (before, after) = (snapshot(before), snapshot(after));
        let open = before.projects.iter().find(|p| p.project.is_opened()).unwrap();
        let ra = open.nodes.iter().find(|n| n.name == "RA").unwrap();
        let mut d = Deriver::new("default", BURST);
        d.seed(&before);
        assert_eq!(d.open_projects(), [open.project.project_id]);

        let events = d.resync(&after, Instant::now());
        assert_eq!(described(&events), ["project.closed", "node.stopped RA", "topology.changed"]);
        assert!(events.iter().all(|e| e.source == Source::Resync));
        assert!(events.iter().all(|e| e.project_id == Some(open.project.project_id)));
        assert_eq!(events[1].node_id, Some(ra.node_id));
        assert_eq!(events[1].data["status"], "stopped");
        assert!(events[1].data.get("ports").is_some(), "the full form known before is kept");
        assert!(d.open_projects().is_empty());
        // The reduced forms are now the known state: the same snapshot again is no change.
        assert!(d.resync(&after, Instant::now()).is_empty());
        // And GNS3 coming back with the project open and RA running is one open and one start.
        let events = d.resync(&before, Instant::now());
        assert_eq!(described(&events), ["project.opened", "node.started RA", "topology.changed"]);
    }
}

#[test]
fn resync_of_an_unchanged_server_is_silent_and_seed_emits_nothing() {
    for s in [include_str!("../fixtures/v2-resync-before.json"), include_str!("../fixtures/v3-resync-after.json")] {
        let s = snapshot(s);
        let mut d = Deriver::new("default", BURST);
        d.seed(&s);
        assert_eq!(d.next_flush(), None);
        assert!(d.resync(&s, Instant::now()).is_empty());
    }
}

#[test]
fn resync_reports_every_difference_in_a_fixed_order() {
    let before = snapshot(include_str!("../fixtures/v3-resync-before.json"));
    let mut after = before.clone();
    let open = after.projects.iter().position(|p| p.project.is_opened()).unwrap();
    let closed = 1 - open;
    // Changes made during a gap: in the open project RB renamed, the link removed, a node
    // added; the closed project deleted; a new (open) project with one node.
    let gone_project = after.projects.remove(closed);
    let p = &mut after.projects[0];
    p.links.clear();
    let rb = p.nodes.iter_mut().find(|n| n.name == "RB").unwrap();
    rb.name = "RB-renamed".into();
    rb.extra.insert("label".into(), json!({"text": "RB-renamed"}));
    let mut added = p.nodes[0].clone();
    added.node_id = Uuid::parse_str("ffffffff-0000-4000-8000-000000000001").unwrap();
    added.name = "RN".into();
    p.nodes.push(added.clone());
    let mut new_project = p.clone();
    new_project.project.project_id = Uuid::parse_str("ffffffff-0000-4000-8000-00000000000f").unwrap();
    new_project.project.name = "new".into();
    new_project.nodes = vec![added.clone()];
    new_project.nodes[0].node_id = Uuid::parse_str("ffffffff-0000-4000-8000-000000000002").unwrap();
    new_project.links.clear();
    after.projects.push(new_project);

    let mut d = Deriver::new("default", BURST);
    d.seed(&before);
    let events = d.resync(&after, Instant::now());
    let mut projects = [
        (gone_project.project.project_id, "project.deleted"),
        (Uuid::parse_str("ffffffff-0000-4000-8000-00000000000f").unwrap(), "project.created"),
    ];
    projects.sort();
    let mut expected: Vec<String> = projects.iter().map(|(_, k)| k.to_string()).collect();
    expected.extend(
        // RN is a copy of a running node: created and started meanwhile, in both projects.
        [
            "node.updated RB-renamed",
            "node.created RN",
            "node.started RN",
            "node.created RN",
            "node.started RN",
            "link.deleted",
            "topology.changed",
        ]
        .map(String::from),
    );
    assert_eq!(described(&events), expected);
    let topo = events.last().unwrap();
    assert_eq!(topo.data["changes"], 5);
    assert_eq!(topo.project_id, None, "three projects touched");
}

#[test]
fn project_repeats_give_nothing_and_close_stops_running_nodes() {
    let lines = load(V2_SCENARIO);
    let (mut d, t0) = (Deriver::new("default", BURST), Instant::now());
    let c = StreamId::Controller;
    let created = frames(&lines, "project.created")[0];
    assert_eq!(described(&d.on_frame(c, &created.frame, t0)), ["project.created"]);
    assert!(d.on_frame(c, &created.frame, t0).is_empty());
    let opened = frames(&lines, "project.opened")[0];
    assert!(d.on_frame(c, &opened.frame, t0).is_empty(), "open of an open project");
    let project = *d.open_projects().first().unwrap();
    // A node known as running when the project closes (its own stop frame was missed).
    let started = frames(&lines, "node.updated")[0];
    // First seen running: created, and its start (GNS3 creates nodes stopped) reported too.
    assert_eq!(described(&d.on_frame(started.stream, &started.frame, t0)), ["node.created A", "node.started A"]);
    let closed = frames(&lines, "project.closed")[0];
    let events = d.on_frame(c, &closed.frame, t0);
    assert_eq!(described(&events), ["project.closed", "node.stopped A"]);
    assert_eq!(events[1].data["status"], "stopped");
    assert!(d.on_frame(c, &closed.frame, t0).is_empty(), "close of a closed project");
    assert!(d.open_projects().is_empty());
    let mut renamed = closed.frame.clone();
    renamed["action"] = json!("project.updated");
    renamed["event"]["name"] = json!("other");
    assert_eq!(described(&d.on_frame(c, &renamed, t0)), ["project.updated"]);
    // After the delete, frames of the project (its stream keeps running) are dropped.
    let deleted = frames(&lines, "project.deleted")[0];
    assert_eq!(described(&d.on_frame(c, &deleted.frame, t0)), ["project.deleted"]);
    assert!(d.on_frame(c, &deleted.frame, t0).is_empty());
    assert!(d.on_frame(StreamId::Project(project), &started.frame, t0).is_empty());
    assert!(d.on_frame(c, &closed.frame, t0).is_empty());
}

#[test]
fn noise_gives_no_events_and_a_restore_asks_for_a_resync() {
    let (mut d, lines, t0) = with_two_nodes();
    let noise: Vec<&Line> = lines
        .iter()
        .filter(|l| {
            ["ping", "compute.updated", "drawing.created", "drawing.deleted"]
                .contains(&l.frame["action"].as_str().unwrap())
        })
        .collect();
    assert_eq!(noise.len(), 6, "ping x2, compute.updated x2, drawing x2");
    for l in noise {
        assert!(d.on_frame(l.stream, &l.frame, t0).is_empty());
    }
    let s = frames(&lines, "node.created")[0].stream;
    for f in [
        json!({"action": "log.warning", "event": {"message": "RAM"}}),
        json!({"action": "log.error", "event": {"message": "QEMU process has stopped, return code: -9"}}),
        json!({"action": "template.created", "event": {"template_id": "x"}}),
        json!({"action": "something.new", "event": {}}),
    ] {
        assert!(d.on_frame(s, &f, t0).is_empty());
    }
    assert!(!d.take_resync_hint());
    let restored = json!({"action": "snapshot.restored", "event": {"snapshot_id": Uuid::new_v4(), "name": "snap1"}});
    assert!(d.on_frame(s, &restored, t0).is_empty());
    assert!(d.take_resync_hint());
    assert!(!d.take_resync_hint());
}

#[test]
fn malformed_frames_give_nothing_and_do_not_panic() {
    let (mut d, lines, t0) = with_two_nodes();
    let id = Uuid::new_v4().to_string();
    for f in [
        json!(null),
        json!("node.updated"),
        json!([1, 2]),
        json!({}),
        json!({"action": 7, "event": {}}),
        json!({"action": "node.updated"}),
        json!({"action": "node.updated", "event": []}),
        json!({"action": "node.updated", "event": "x"}),
        json!({"action": "node.updated", "event": {"name": "no id"}}),
        json!({"action": "node.updated", "event": {"node_id": "not-a-uuid", "project_id": id}}),
        json!({"action": "node.updated", "event": {"node_id": 12, "project_id": id}}),
        json!({"action": "node.deleted", "event": {"node_id": null}}),
        json!({"action": "link.created", "event": {"link_id": {"a": 1}, "project_id": id}}),
        json!({"action": "link.deleted", "event": {"project_id": id}}),
        json!({"action": "project.opened", "event": {"project_id": null}}),
        json!({"action": "project.deleted", "event": {"name": "x"}}),
    ] {
        // On the controller stream there is no stream project to fall back on.
        assert!(d.on_frame(StreamId::Controller, &f, t0).is_empty(), "{f}");
    }
    // A node frame without a project id on the controller stream has no project.
    let mut orphan = frames(&lines, "node.created")[0].frame.clone();
    orphan["event"].as_object_mut().unwrap().remove("project_id");
    orphan["event"]["node_id"] = json!(id);
    assert!(d.on_frame(StreamId::Controller, &orphan, t0).is_empty());
    // Wrong types inside an otherwise good update: a non-string status is no status change.
    let mut odd = frames(&lines, "node.updated")[0].frame.clone();
    odd["event"]["status"] = json!(42);
    odd["event"]["command_line"] = json!({"weird": true});
    assert!(d.on_frame(frames(&lines, "node.created")[0].stream, &odd, t0).is_empty());
    // The state is intact: the real start is still seen.
    let start = frames(&lines, "node.updated")[0];
    assert_eq!(described(&d.on_frame(start.stream, &start.frame, t0)), ["node.started A"]);
}

/// A node whose creation frame came before the stream was complete is first seen through
/// an update: a running one is reported created *and* started, so the transition is not
/// lost (seen against real v3 when a project stream opened right after a node creation).
#[test]
fn a_node_first_seen_running_is_reported_created_and_started() {
    let lines = load(V3_SCENARIO);
    let started = frames(&lines, "node.updated")
        .into_iter()
        .find(|l| l.frame["event"]["name"] == "A" && l.frame["event"]["status"] == "started")
        .expect("a started update of A in the recording");
    let mut d = Deriver::new("default", BURST);
    let t0 = Instant::now();
    // Only the project is known (its stream opened after A was created).
    let created = frames(&lines, "node.created")[0];
    let project_only = serde_json::json!({"action": "project.opened", "event": {"project_id": created.frame["event"]["project_id"], "name": "p", "status": "opened"}});
    d.on_frame(StreamId::Controller, &project_only, t0);
    let got = described(&d.on_frame(started.stream, &started.frame, t0));
    assert_eq!(got, ["node.created A", "node.started A"]);
    // A first-seen stopped node is only created.
    let mut d = Deriver::new("default", BURST);
    d.on_frame(StreamId::Controller, &project_only, t0);
    let mut stopped = started.frame.clone();
    stopped["event"]["status"] = "stopped".into();
    assert_eq!(described(&d.on_frame(started.stream, &stopped, t0)), ["node.created A"]);
}

#[test]
fn resync_reports_a_node_created_and_started_meanwhile() {
    let before = snapshot(include_str!("../fixtures/v3-resync-before.json"));
    let mut after = before.clone();
    let p = after.projects.iter_mut().find(|p| p.project.is_opened()).expect("an open project");
    let mut added = p.nodes[0].clone();
    added.node_id = Uuid::parse_str("ffffffff-0000-4000-8000-000000000003").unwrap();
    added.name = "RUN".into();
    added.status = Some("started".into());
    p.nodes.push(added);
    let mut d = Deriver::new("default", BURST);
    d.seed(&before);
    let kinds: Vec<String> = described(&d.resync(&after, Instant::now()))
        .into_iter()
        .filter(|k| !k.starts_with("topology.changed"))
        .collect();
    assert_eq!(kinds, ["node.created RUN", "node.started RUN"]);
}

#[test]
fn an_observer_of_the_events_resyncs_to_exactly_what_was_missed() {
    for (before, after) in [
        (include_str!("../fixtures/v2-resync-before.json"), include_str!("../fixtures/v2-resync-after.json")),
        (include_str!("../fixtures/v3-resync-before.json"), include_str!("../fixtures/v3-resync-after.json")),
    ] {
        let (before, after) = (snapshot(before), snapshot(after));
        // The holder derives the restart; the observer (another instance) only sees its events.
        let mut holder = Deriver::new("default", BURST);
        holder.seed(&before);
        let mut observer = Deriver::new("default", BURST);
        observer.seed(&before);
        for (seq, e) in holder.resync(&after, Instant::now()).into_iter().enumerate() {
            observer.observe(&crate::events::Event::stamp(e, "ep", seq as u64 + 1, crate::events::Priority::High));
        }
        assert!(observer.resync(&after, Instant::now()).is_empty(), "nothing seen is reported again");
        // What happens after the holder is gone is reported by the observer, once.
        let events = observer.resync(&before, Instant::now());
        assert_eq!(described(&events), ["project.opened", "node.started RA", "topology.changed"]);
    }
}

#[test]
fn observing_node_and_link_events_tracks_creation_and_deletion() {
    let s = snapshot(include_str!("../fixtures/v2-resync-before.json"));
    let open = s.projects.iter().find(|p| p.project.is_opened()).unwrap();
    let pid = open.project.project_id;
    let mut d = Deriver::new("default", BURST);
    d.seed(&s);
    let node = open.nodes[0].clone();
    let mut delete = crate::events::NewEvent::new(
        crate::events::EventKind::NodeDeleted,
        "default",
        Source::Gns3,
        serde_json::json!({"node_id": node.node_id.to_string(), "project_id": pid.to_string()}),
    )
    .project(Some(pid));
    delete.node_id = Some(node.node_id);
    d.observe(&crate::events::Event::stamp(delete, "ep", 1, crate::events::Priority::Normal));
    // Resyncing against the snapshot that still has the node: it was "created" meanwhile.
    let events = d.resync(&s, Instant::now());
    assert!(described(&events).iter().any(|e| e.starts_with("node.created")), "{:?}", described(&events));
    // Malformed data is ignored.
    let junk = crate::events::NewEvent::new(
        crate::events::EventKind::NodeStarted,
        "default",
        Source::Gns3,
        serde_json::json!(3),
    );
    d.observe(&crate::events::Event::stamp(junk, "ep", 2, crate::events::Priority::High));
    assert!(d.resync(&s, Instant::now()).is_empty());
}

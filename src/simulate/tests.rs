//! Model tests: the notification sequences real gns3-server 2.2 sends (recorded with the
//! test bed), checked on the plain model with no server.

use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

use super::activity::{self, MAX_ACTIVITY_LINKS, MAX_ACTIVITY_NODES};
use super::nodes::{allocate_name, Action};
use super::state::{Event, Model, Scope, SimError};
use super::SimulatorOptions;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn qemu(name: &str) -> Map<String, Value> {
    obj(json!({"name": name, "node_type": "qemu", "compute_id": "local",
        "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 64, "adapters": 1}}))
}

/// A model with project `p` holding nodes A and B linked on their port 0; events cleared.
fn lab() -> (Model, String, String, String) {
    let mut m = Model::new(Some(7));
    let p = m.create_project(&obj(json!({"name": "p"}))).unwrap()["project_id"].as_str().unwrap().to_owned();
    let a = m.create_node(&p, &qemu("A"), false).unwrap()["node_id"].as_str().unwrap().to_owned();
    let b = m.create_node(&p, &qemu("B"), false).unwrap()["node_id"].as_str().unwrap().to_owned();
    let ends = json!({"nodes": [{"node_id": a, "adapter_number": 0, "port_number": 0},
                                {"node_id": b, "adapter_number": 0, "port_number": 0}]});
    m.create_link(&p, &obj(ends), false).unwrap();
    m.take_events();
    (m, p, a, b)
}

/// `action status-or-dash` per event, with the stream it goes to.
fn summary(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let stream = if e.scope == Scope::Controller { "ctl" } else { "prj" };
            format!("{stream} {} {}", e.action, e.event["status"].as_str().unwrap_or("-"))
        })
        .collect()
}

#[test]
fn delete_sends_the_link_then_two_node_deleted_shapes() {
    let (mut m, p, a, _) = lab();
    m.node_action(&p, &a, Action::Start).unwrap();
    m.take_events();
    m.delete_node(&p, &a).unwrap();
    let events = m.take_events();
    assert_eq!(summary(&events), ["prj link.deleted -", "prj node.deleted started", "prj node.deleted stopped"]);
    let (controller, compute) = (&events[1].event, &events[2].event);
    assert_eq!(controller.as_object().unwrap().len(), 27);
    assert!(controller.get("properties").is_some() && controller.get("compute_id").is_some());
    assert_eq!(compute.as_object().unwrap().len(), 47);
    assert!(compute.get("properties").is_none() && compute.get("ports").is_none());
    assert_eq!(compute["console"], Value::Null);
    assert_eq!(compute["ram"], 64);
    assert_eq!(m.list_nodes(&p).unwrap().as_array().unwrap().len(), 1);
    assert_eq!(m.list_links(&p).unwrap(), json!([]));
}

#[test]
fn suspend_sends_a_stray_started_then_suspended() {
    let (mut m, p, a, _) = lab();
    m.node_action(&p, &a, Action::Start).unwrap();
    m.take_events();
    let reply = m.node_action(&p, &a, Action::Suspend).unwrap();
    assert_eq!(reply["status"], "suspended");
    assert_eq!(summary(&m.take_events()), ["prj node.updated started", "prj node.updated suspended"]);
}

#[test]
fn start_always_succeeds_and_fills_the_command_line() {
    let (mut m, p, a, _) = lab();
    let reply = m.node_action(&p, &a, Action::Start).unwrap();
    assert_eq!(reply["status"], "started");
    assert!(reply["command_line"].as_str().unwrap().contains("-name A "));
    assert_eq!(summary(&m.take_events()), ["prj node.updated started"]);
}

#[test]
fn stopping_a_running_node_repeats_stopped_and_bulk_stop_covers_every_node() {
    let (mut m, p, a, _) = lab();
    m.node_action(&p, &a, Action::Start).unwrap();
    m.take_events();
    m.bulk_action(&p, Action::Stop).unwrap();
    assert_eq!(summary(&m.take_events()), ["prj node.updated stopped"; 3]);
    m.bulk_action(&p, Action::Reload).unwrap();
    assert_eq!(summary(&m.take_events()), ["prj node.updated started"; 2]);
}

#[test]
fn closed_project_refuses_node_changes_with_403_but_lists_in_file_form() {
    let (mut m, p, a, _) = lab();
    m.close_project(&p).unwrap();
    assert_eq!(
        summary(&m.take_events()),
        ["prj node.updated stopped", "prj node.updated stopped", "ctl project.closed closed"]
    );
    let refused = m.create_node(&p, &qemu("C"), false).unwrap_err();
    assert_eq!((refused.status(), refused.to_string()), (403, "The project is not opened".to_owned()));
    assert_eq!(m.node_action(&p, &a, Action::Start).unwrap_err(), SimError::NotOpened);
    assert_eq!(m.get_node(&p, &a).unwrap_err(), SimError::NotOpened);
    let nodes = m.list_nodes(&p).unwrap();
    let first = nodes[0].as_object().unwrap();
    assert_eq!(first.len(), 21);
    assert!(first.get("status").is_none() && first.get("ports").is_none());
    assert_eq!(m.list_links(&p).unwrap()[0].as_object().unwrap().len(), 5);
    assert!(m.take_events().is_empty(), "refusals send nothing");
}

#[test]
fn reopening_announces_nodes_and_links_again() {
    let (mut m, p, ..) = lab();
    m.close_project(&p).unwrap();
    m.take_events();
    let project = m.open_project(&p).unwrap();
    assert_eq!(project["status"], "opened");
    let got = summary(&m.take_events());
    assert_eq!(
        got,
        ["prj node.created stopped", "prj node.created stopped", "prj link.created -", "ctl project.opened opened"]
    );
    m.open_project(&p).unwrap();
    assert!(m.take_events().is_empty(), "opening an open project sends nothing");
}

#[test]
fn deleting_an_open_project_stops_nodes_then_closes_then_deletes() {
    let (mut m, p, a, _) = lab();
    m.node_action(&p, &a, Action::Start).unwrap();
    m.take_events();
    m.delete_project(&p).unwrap();
    let got = summary(&m.take_events());
    let want = [
        "prj node.updated stopped",
        "prj node.updated stopped",
        "prj node.updated stopped",
        "ctl project.closed closed",
        "ctl project.deleted closed",
    ];
    assert_eq!(got, want);
    assert_eq!(m.get_project(&p).unwrap_err().to_string(), format!("Project ID {p} doesn't exist"));
}

#[test]
fn deleting_a_closed_project_opens_it_first_like_gns3() {
    let (mut m, p, ..) = lab();
    m.close_project(&p).unwrap();
    m.take_events();
    m.delete_project(&p).unwrap();
    let controller: Vec<String> = summary(&m.take_events()).into_iter().filter(|s| s.starts_with("ctl")).collect();
    assert_eq!(controller, ["ctl project.opened opened", "ctl project.closed closed", "ctl project.deleted closed"]);
}

#[test]
fn refused_link_ends_send_link_deleted_without_nodes() {
    let (mut m, p, a, b) = lab();
    let bad_port = json!({"nodes": [{"node_id": a, "adapter_number": 7, "port_number": 0},
                                    {"node_id": b, "adapter_number": 0, "port_number": 0}]});
    let e = m.create_link(&p, &obj(bad_port), false).unwrap_err();
    assert_eq!((e.status(), e.to_string()), (404, "Port 7/0 for A not found".to_owned()));
    let events = m.take_events();
    assert_eq!(summary(&events), ["prj link.deleted -"]);
    assert_eq!(events[0].event["nodes"], json!([]));
    let used = json!({"nodes": [{"node_id": a, "adapter_number": 0, "port_number": 0},
                                {"node_id": b, "adapter_number": 0, "port_number": 0}]});
    assert_eq!(m.create_link(&p, &obj(used), false).unwrap_err(), SimError::Conflict("Port is already used".into()));
    let looped = json!({"nodes": [{"node_id": a, "adapter_number": 0, "port_number": 0},
                                  {"node_id": a, "adapter_number": 0, "port_number": 0}]});
    let lid = m.projects[0].links[0].id.clone();
    m.delete_link(&p, &lid).unwrap();
    assert_eq!(
        m.create_link(&p, &obj(looped), false).unwrap_err(),
        SimError::Conflict("Cannot connect to itself".into())
    );
}

#[test]
fn names_and_projects_are_unique_like_gns3() {
    let (mut m, p, ..) = lab();
    assert_eq!(m.create_node(&p, &qemu("A"), false).unwrap()["name"], "A1");
    assert_eq!(allocate_name(|n| n == "R2", "R2"), "R1");
    assert_eq!(allocate_name(|n| ["R1", "R2"].contains(&n), "R2"), "R3");
    assert_eq!(allocate_name(|_| false, "PC {0}"), "PC1");
    let dup = m.create_project(&obj(json!({"name": "p"}))).unwrap_err();
    assert_eq!((dup.status(), dup.to_string()), (409, "Project \"p\" already exists".to_owned()));
}

#[test]
fn initial_topology_is_a_valid_chain() {
    let mut m = Model::new(Some(1));
    activity::build_topology(&mut m, &SimulatorOptions { projects: 2, nodes: 6, ..SimulatorOptions::default() });
    assert_eq!(m.projects.len(), 2);
    for p in &m.projects {
        assert_eq!((p.nodes.len(), p.links.len()), (6, 5));
        for end in p.links.iter().flat_map(|l| &l.ends) {
            let node = p.node(&end.node_id).unwrap();
            assert!((end.adapter as usize) < node.adapters() && end.port == 0);
        }
        assert!(!p.auto_close());
    }
}

#[test]
fn seeded_activity_repeats_and_stays_bounded() {
    let run = || {
        let mut m = Model::new(Some(42));
        activity::build_topology(&mut m, &SimulatorOptions { nodes: 3, ..SimulatorOptions::default() });
        m.take_events();
        let now = Instant::now() + Duration::from_secs(60);
        let changes: Vec<_> = (0..2000).map(|_| activity::step(&mut m, now)).collect();
        (changes, summary(&m.take_events()), m)
    };
    let (changes, events, m) = run();
    let (changes2, events2, _) = run();
    assert_eq!((changes.clone(), events.clone()), (changes2, events2), "same seed, same changes");
    assert!(changes.iter().all(Option::is_some));
    for kind in ["node.created", "node.deleted", "link.created", "link.deleted", "node.updated"] {
        assert!(events.iter().any(|e| e.contains(kind)), "activity never sent {kind}");
    }
    let p = &m.projects[0];
    assert!(p.nodes.len() <= 3 + MAX_ACTIVITY_NODES && p.nodes.iter().filter(|n| !n.from_activity).count() == 3);
    assert!(p.links.iter().filter(|l| l.from_activity).count() <= MAX_ACTIVITY_LINKS);
}

#[test]
fn activity_leaves_nodes_a_client_just_touched_alone() {
    let (mut m, p, a, b) = lab();
    m.node_action(&p, &a, Action::Start).unwrap();
    m.node_action(&p, &b, Action::Start).unwrap();
    m.take_events();
    for _ in 0..200 {
        activity::step(&mut m, Instant::now());
    }
    let ours = |e: &Event| e.event["node_id"] == json!(a) || e.event["node_id"] == json!(b);
    let untouched = m.take_events().iter().filter(|e| ours(e)).all(|e| !e.action.starts_with("node."));
    assert!(untouched, "a node changed by a client was changed by the activity within the quiet time");
}

#[test]
fn bulk_suspend_resends_the_status_of_stopped_nodes() {
    let (mut m, p, a, _) = lab();
    m.node_action(&p, &a, Action::Suspend).unwrap();
    assert!(m.take_events().is_empty(), "a single suspend of a stopped node sends nothing");
    m.bulk_action(&p, Action::Suspend).unwrap();
    assert_eq!(summary(&m.take_events()), ["prj node.updated stopped"; 2]);
}

//! Applying events with the objects GNS3 really sends (shapes from API-NOTES.md §4).

use super::*;
use crate::events::{NewEvent, Source};
use serde_json::json;

pub(crate) const PROJECT: &str = "68dca439-6f3a-4a4e-a7a2-0c7cf3b8d8a1";
pub(crate) const NODE_A: &str = "e19f73a6-2b8e-4f6c-9a53-1f5a7f0c3b11";
pub(crate) const NODE_B: &str = "4c6f0e41-8d2a-4b57-b1d4-7e2a96c0a222";
pub(crate) const LINK_AB: &str = "32955ad8-1c4e-4d9a-8f55-3a8e4f7b9c33";

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// The controller's node object as `node.updated` carries it.
pub(crate) fn gns3_node(id: &str, name: &str, status: &str) -> Value {
    json!({
        "node_id": id, "project_id": PROJECT, "compute_id": "local",
        "name": name, "node_type": "qemu", "status": status, "console": 5000,
        "console_type": "telnet", "console_host": "127.0.0.1", "console_auto_start": false,
        "command_line": "/usr/bin/qemu-system-x86_64 -name A ...",
        "node_directory": "<projects>/qemu/e19f73a6", "x": -130, "y": 10, "z": 1,
        "width": 65, "height": 59,
        "label": {"text": name, "x": null, "y": -40, "rotation": 0, "style": null},
        "locked": false, "symbol": ":/symbols/computer.svg", "template_id": null,
        "first_port_name": null, "port_name_format": "Ethernet{0}", "port_segment_size": 0,
        "custom_adapters": [],
        "ports": [{"adapter_number": 0, "port_number": 0, "name": "Ethernet0", "short_name": "e0",
                   "link_type": "ethernet", "adapter_type": "e1000",
                   "mac_address": "0c:9f:73:a6:00:00", "data_link_types": {"Ethernet": "DLT_EN10MB"}}],
        "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 64, "adapters": 1, "cpus": 1}
    })
}

pub(crate) fn gns3_link(id: &str, a: &str, b: &str, suspend: bool) -> Value {
    json!({
        "link_id": id, "project_id": PROJECT, "link_type": "ethernet", "suspend": suspend,
        "filters": {}, "link_style": {}, "capturing": false, "capture_file_name": null,
        "capture_file_path": null, "capture_compute_id": null,
        "nodes": [
            {"node_id": a, "adapter_number": 0, "port_number": 0, "label": {"text": "0/0", "style": "font-size: 10"}},
            {"node_id": b, "adapter_number": 0, "port_number": 0, "label": {"text": "0/0", "style": "font-size: 10"}}
        ]
    })
}

pub(crate) fn gns3_project(status: &str) -> Value {
    json!({
        "project_id": PROJECT, "name": "lab-actions-v2", "status": status,
        "filename": "lab-actions-v2.gns3", "path": "<projects>/68dca439", "auto_close": true,
        "auto_open": false, "auto_start": false, "scene_width": 2000, "scene_height": 1000,
        "zoom": 100, "grid_size": 75, "drawing_grid_size": 25, "show_grid": false,
        "show_interface_labels": false, "show_layers": false, "snap_to_grid": false,
        "supplier": null, "variables": null
    })
}

/// Project with two stopped qemu nodes A and B and one link between them.
pub(crate) fn topology() -> ProjectTopology {
    ProjectTopology {
        project: serde_json::from_value(gns3_project("opened")).unwrap(),
        nodes: vec![
            serde_json::from_value(gns3_node(NODE_A, "A", "stopped")).unwrap(),
            serde_json::from_value(gns3_node(NODE_B, "B", "stopped")).unwrap(),
        ],
        links: vec![serde_json::from_value(gns3_link(LINK_AB, NODE_A, NODE_B, false)).unwrap()],
    }
}

pub(crate) fn event(kind: EventKind, node: Option<&str>, data: Value) -> Event {
    let new = NewEvent::new(kind, "default", Source::Gns3, data).project(Some(uuid(PROJECT))).node(node.map(uuid));
    Event::stamp(new, "e", 1, kind.default_priority())
}

fn node<'a>(t: &'a ProjectTopology, id: &str) -> Option<&'a Node> {
    t.nodes.iter().find(|n| n.node_id == uuid(id))
}

#[test]
fn node_started_updates_the_node_in_place() {
    let mut t = topology();
    let e = event(EventKind::NodeStarted, Some(NODE_A), gns3_node(NODE_A, "A", "started"));
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    assert_eq!(node(&t, NODE_A).unwrap().status.as_deref(), Some("started"));
    assert_eq!(node(&t, NODE_B).unwrap().status.as_deref(), Some("stopped"));
    // Applying the same event again (GNS3 repeats itself) changes nothing.
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Unchanged);
}

#[test]
fn status_comes_from_the_event_type_even_without_an_object() {
    let mut t = topology();
    let e = event(EventKind::NodeSuspended, Some(NODE_B), Value::Null);
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    let b = node(&t, NODE_B).unwrap();
    assert_eq!(b.status.as_deref(), Some("suspended"));
    assert_eq!(b.name, "B", "the rest of the node is kept");
    assert!(b.extra.contains_key("ports"));
}

#[test]
fn node_updated_replaces_fields_and_keeps_extras() {
    let mut t = topology();
    let mut renamed = gns3_node(NODE_A, "A-renamed", "stopped");
    renamed["x"] = json!(42);
    let e = event(EventKind::NodeUpdated, Some(NODE_A), renamed);
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    let a = node(&t, NODE_A).unwrap();
    assert_eq!(a.name, "A-renamed");
    assert_eq!(a.extra["x"], json!(42));
    assert_eq!(a.extra["properties"]["ram"], json!(64));
}

#[test]
fn node_created_is_inserted() {
    let mut t = topology();
    let c = "9b1c2d3e-0000-4000-8000-0000000000c3";
    let e = event(EventKind::NodeCreated, Some(c), gns3_node(c, "C", "stopped"));
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    assert_eq!(t.nodes.len(), 3);
    assert_eq!(node(&t, c).unwrap().project_id, uuid(PROJECT));
}

#[test]
fn node_deleted_removes_the_node_and_its_links() {
    let mut t = topology();
    // The compute form of node.deleted: flat settings, no ports, no compute_id.
    let compute_form = json!({"node_id": NODE_B, "project_id": PROJECT, "name": "B",
        "status": "stopped", "console": null, "qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 64});
    let e = event(EventKind::NodeDeleted, Some(NODE_B), compute_form);
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    assert!(node(&t, NODE_B).is_none());
    assert!(t.links.is_empty(), "the link to B went with it");
    assert_eq!(t.nodes.len(), 1);
    // GNS3 sends every delete twice: the second one is a no-op.
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Unchanged);
}

#[test]
fn links_are_created_updated_and_deleted() {
    let mut t = topology();
    let e = event(EventKind::LinkUpdated, None, gns3_link(LINK_AB, NODE_A, NODE_B, true));
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    assert_eq!(t.links[0].suspend, Some(true));

    let l2 = "77777777-0000-4000-8000-000000000077";
    let e = event(EventKind::LinkCreated, None, gns3_link(l2, NODE_B, NODE_A, false));
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    assert_eq!(t.links.len(), 2);

    let e = event(EventKind::LinkDeleted, None, gns3_link(LINK_AB, NODE_A, NODE_B, true));
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    assert_eq!(t.links.len(), 1);
    assert_eq!(t.links[0].link_id, uuid(l2));
}

#[test]
fn project_closed_updates_the_project_object() {
    let mut t = topology();
    let e = event(EventKind::ProjectClosed, None, gns3_project("closed"));
    assert_eq!(apply_to_topology(&mut t, &e), Outcome::Changed);
    assert_eq!(t.project.status.as_deref(), Some("closed"));
    assert_eq!(t.project.extra["filename"], json!("lab-actions-v2.gns3"));
}

#[test]
fn what_cannot_be_applied_safely_invalidates() {
    let mut t = topology();
    let unknown = "99999999-0000-4000-8000-000000000099";
    // A partial object for a node the cache does not have.
    let e = event(EventKind::NodeUpdated, Some(unknown), json!({"node_id": unknown, "x": 1}));
    assert!(matches!(apply_to_topology(&mut t, &e), Outcome::Invalidate(_)));
    // node.updated with no object at all.
    let e = event(EventKind::NodeUpdated, Some(NODE_A), Value::Null);
    assert!(matches!(apply_to_topology(&mut t, &e), Outcome::Invalidate(_)));
    // Envelope and object disagree on the node.
    let e = event(EventKind::NodeStarted, Some(NODE_B), gns3_node(NODE_A, "A", "started"));
    assert!(matches!(apply_to_topology(&mut t, &e), Outcome::Invalidate(_)));
    // A node object that does not parse (status must be a string).
    let mut bad = gns3_node(NODE_A, "A", "started");
    bad["status"] = json!(7);
    let e = event(EventKind::NodeUpdated, Some(NODE_A), bad);
    assert!(matches!(apply_to_topology(&mut t, &e), Outcome::Invalidate(_)));
    // Nothing was half-applied.
    assert_eq!(t, topology());
}

#[test]
fn classification_routes_events_to_entries() {
    let p = uuid(PROJECT);
    let e = event(EventKind::NodeStarted, Some(NODE_A), Value::Null);
    assert_eq!(classify(&e), Change::Project { project_id: p, topology: true, list: false });
    let e = event(EventKind::ProjectOpened, None, gns3_project("opened"));
    assert_eq!(classify(&e), Change::Project { project_id: p, topology: true, list: true });
    let e = event(EventKind::ProjectDeleted, None, gns3_project("closed"));
    assert_eq!(classify(&e), Change::DropProject(p));
    let e = event(EventKind::ServerDisconnected, None, Value::Null);
    assert_eq!(classify(&e), Change::InvalidateServer, "nothing is kept fresh while the server is away");
    let e = event(EventKind::CircuitOpened, None, Value::Null);
    assert_eq!(classify(&e), Change::Ignore);
    let mut module = event(EventKind::NodeStarted, None, Value::Null);
    module.kind = "alert.raised".into();
    assert_eq!(classify(&module), Change::Ignore);
    // No project in the envelope: taken from the object; in neither: the whole server.
    let mut e = event(EventKind::LinkCreated, None, gns3_link(LINK_AB, NODE_A, NODE_B, false));
    e.project_id = None;
    assert_eq!(classify(&e), Change::Project { project_id: p, topology: true, list: false });
    e.data = json!({});
    assert_eq!(classify(&e), Change::InvalidateServer);
}

#[test]
fn project_list_follows_project_events() {
    let mut list: Vec<Project> = vec![serde_json::from_value(gns3_project("opened")).unwrap()];
    let e = event(EventKind::ProjectClosed, None, gns3_project("closed"));
    assert_eq!(apply_to_projects(&mut list, &e), Outcome::Changed);
    assert_eq!(list[0].status.as_deref(), Some("closed"));

    let other = "11111111-0000-4000-8000-000000000011";
    let mut created = gns3_project("opened");
    created["project_id"] = json!(other);
    created["name"] = json!("new-lab");
    let mut e = event(EventKind::ProjectCreated, None, created);
    e.project_id = Some(uuid(other));
    assert_eq!(apply_to_projects(&mut list, &e), Outcome::Changed);
    assert_eq!(list.len(), 2);

    let e = event(EventKind::ProjectDeleted, None, gns3_project("closed"));
    assert_eq!(apply_to_projects(&mut list, &e), Outcome::Changed);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "new-lab");

    // Node events do not touch the list.
    let e = event(EventKind::NodeStarted, Some(NODE_A), Value::Null);
    assert_eq!(apply_to_projects(&mut list, &e), Outcome::Unchanged);
}

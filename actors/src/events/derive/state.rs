//! The deriver's known state: every project of one server with its nodes and links, kept
//! as the raw GNS3 objects (they become the events' `data`), plus the helpers that compare
//! them the way GNS3's repeats and reduced forms require.
//!
//! Content is compared on the keys both objects carry. GNS3 lists the nodes of a closed
//! project in a reduced form (no `status`, `ports`, `command_line`, `node_directory`,
//! `console_host`, `project_id`; links without `project_id`, `link_type`, `capture_*`), and
//! those keys are missing, not changed: comparing the common keys makes a reduced form of an
//! unchanged node equal to its full form (checked on the recorded v2 and v3 listings, where
//! every common key was equal). `command_line` is ignored for nodes: GNS3 rebuilds it on
//! every start (a new monitor port) and empties it on close/reopen without any meaning
//! for a consumer; `status` is compared on its own.

use crate::events::EventKind;
use crate::gns3::types::{Link, Node, Project, ServerTopology};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

pub(super) type Obj = Map<String, Value>;

/// Node keys left out of the content comparison (see the module doc).
pub(super) const NODE_IGNORED: &[&str] = &["status", "command_line"];
/// Project keys left out of the content comparison: `status` gives opened/closed events.
pub(super) const PROJECT_IGNORED: &[&str] = &["status"];
pub(super) const LINK_IGNORED: &[&str] = &[];

#[derive(Debug, Clone, Default)]
pub(super) struct KnownProject {
    pub obj: Obj,
    pub opened: bool,
    pub nodes: BTreeMap<Uuid, Obj>,
    pub links: BTreeMap<Uuid, Obj>,
}

impl KnownProject {
    /// A project learnt of through its node or link frames only (its controller event was
    /// missed): a project stream that sends node events belongs to an open project.
    pub fn placeholder(id: Uuid) -> Self {
        let mut obj = Obj::new();
        obj.insert("project_id".into(), Value::String(id.to_string()));
        KnownProject { obj, opened: true, ..Default::default() }
    }

    /// A node's status as the service reports it: every node of a closed project is stopped
    /// (GNS3 lists them without a status), and a missing status counts as stopped.
    pub fn node_status<'a>(&self, node: &'a Obj) -> &'a str {
        if !self.opened {
            return "stopped";
        }
        node.get("status").and_then(Value::as_str).unwrap_or("stopped")
    }

    /// Closing a project stops its nodes: their stored status follows, so that the full
    /// forms sent on reopen compare equal.
    pub fn mark_nodes_stopped(&mut self) {
        for node in self.nodes.values_mut() {
            node.insert("status".into(), Value::String("stopped".into()));
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Known {
    pub projects: BTreeMap<Uuid, KnownProject>,
}

impl Known {
    pub fn from_topology(topology: &ServerTopology) -> Self {
        let mut projects = BTreeMap::new();
        for pt in &topology.projects {
            let id = pt.project.project_id;
            let mut kp =
                KnownProject { obj: project_obj(&pt.project), opened: pt.project.is_opened(), ..Default::default() };
            for node in &pt.nodes {
                let mut obj = node_obj(node, id);
                if !kp.opened || !obj.contains_key("status") {
                    obj.insert("status".into(), Value::String("stopped".into()));
                }
                kp.nodes.insert(node.node_id, obj);
            }
            for link in &pt.links {
                kp.links.insert(link.link_id, link_obj(link, id));
            }
            projects.insert(id, kp);
        }
        Known { projects }
    }

    /// The project holding `node_id`: `hint` first (the frame's project), then any.
    pub fn project_of_node(&self, node_id: Uuid, hint: Uuid) -> Option<Uuid> {
        if self.projects.get(&hint).is_some_and(|p| p.nodes.contains_key(&node_id)) {
            return Some(hint);
        }
        self.projects.iter().find(|(_, p)| p.nodes.contains_key(&node_id)).map(|(id, _)| *id)
    }

    pub fn project_of_link(&self, link_id: Uuid, hint: Uuid) -> Option<Uuid> {
        if self.projects.get(&hint).is_some_and(|p| p.links.contains_key(&link_id)) {
            return Some(hint);
        }
        self.projects.iter().find(|(_, p)| p.links.contains_key(&link_id)).map(|(id, _)| *id)
    }
}

/// Equal on every key both carry, except `ignored` (see the module doc for why).
pub(super) fn same_content(a: &Obj, b: &Obj, ignored: &[&str]) -> bool {
    a.iter().filter(|(k, _)| !ignored.contains(&k.as_str())).all(|(k, v)| b.get(k).is_none_or(|w| w == v))
}

/// `known` overlaid with `fresh`: keeps what a reduced form leaves out.
pub(super) fn merged(known: &Obj, fresh: &Obj) -> Obj {
    let mut out = known.clone();
    out.extend(fresh.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

pub(super) fn uuid_field(obj: &Obj, key: &str) -> Option<Uuid> {
    obj.get(key).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())
}

/// The controller form of a node (its `compute_id` and `properties`), as opposed to the
/// compute form of GNS3's second `node.deleted` (flat emulator settings).
pub(super) fn is_controller_form(obj: &Obj) -> bool {
    obj.contains_key("compute_id") || obj.contains_key("properties")
}

/// Fills the project id in when GNS3 left it out (reduced forms) or sent null.
pub(super) fn with_project_id(mut obj: Obj, project_id: Uuid) -> Obj {
    if uuid_field(&obj, "project_id").is_none_or(|id| id.is_nil()) {
        obj.insert("project_id".into(), Value::String(project_id.to_string()));
    }
    obj
}

/// The typed structs serialize absent optional fields as `null`; a reduced form must keep
/// them absent, or `null` would compare as a change.
fn to_obj<T: serde::Serialize>(value: &T, absent: &[(&str, bool)]) -> Obj {
    let mut obj = match serde_json::to_value(value) {
        Ok(Value::Object(obj)) => obj,
        _ => Obj::new(),
    };
    for (key, is_absent) in absent {
        if *is_absent {
            obj.remove(*key);
        }
    }
    obj
}

pub(super) fn project_obj(p: &Project) -> Obj {
    to_obj(p, &[("status", p.status.is_none())])
}

pub(super) fn node_obj(n: &Node, project_id: Uuid) -> Obj {
    let obj = to_obj(
        n,
        &[("node_type", n.node_type.is_none()), ("status", n.status.is_none()), ("compute_id", n.compute_id.is_none())],
    );
    with_project_id(obj, project_id)
}

pub(super) fn link_obj(l: &Link, project_id: Uuid) -> Obj {
    let mut obj = to_obj(l, &[("link_type", l.link_type.is_none()), ("suspend", l.suspend.is_none())]);
    if let Some(Value::Array(ends)) = obj.get_mut("nodes") {
        for (end, typed) in ends.iter_mut().zip(&l.nodes) {
            if let Value::Object(end) = end {
                if typed.adapter_number.is_none() {
                    end.remove("adapter_number");
                }
                if typed.port_number.is_none() {
                    end.remove("port_number");
                }
            }
        }
    }
    with_project_id(obj, project_id)
}

/// `node.started|stopped|suspended` for a status; another status string is a plain update.
pub(super) fn status_kind(status: &str) -> EventKind {
    match status {
        "started" => EventKind::NodeStarted,
        "stopped" => EventKind::NodeStopped,
        "suspended" => EventKind::NodeSuspended,
        _ => EventKind::NodeUpdated,
    }
}

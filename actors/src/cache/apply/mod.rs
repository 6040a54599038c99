//! Applying an event to a cached topology or project list, so a read right after the
//! event is fresh without waiting for the TTL. Plain functions, no actix.
//!
//! GNS3 sends whole objects in `node.*`, `link.*` and `project.*` events (API-NOTES.md §4),
//! which the dispatcher passes on as `event.data`. They are merged into the cached object
//! field by field (a whole object replaces every field it carries; extras GNS3 adds are
//! kept), and the status implied by the type wins (`node.started` means `started`).
//! Anything that cannot be applied with certainty (no object, no id, a partial object for
//! something not cached) gives `Outcome::Invalidate`: the entry is dropped and the next
//! read goes to GNS3. A stale entry is worse than a miss.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::events::{Event, EventKind};
use crate::gns3::{Link, Node, Project, ProjectTopology};

/// Which cache entries an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not about cached data (server, circuit, `topology.changed`, module events).
    Ignore,
    /// Update the project's topology and/or the server's project list.
    Project { project_id: Uuid, topology: bool, list: bool },
    /// `project.deleted`: drop the topology and the project from the list.
    DropProject(Uuid),
    /// A topology event that names no project: every cached project of the server may be
    /// affected. Also `server.disconnected` / `server.connected`: events do not reach the
    /// cache while the server is away, so nothing cached of it can be called fresh.
    InvalidateServer,
}

/// The result of applying an event to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    Unchanged,
    /// Drop the entry (why, for the debug log).
    Invalidate(&'static str),
}

pub fn classify(event: &Event) -> Change {
    use EventKind::*;
    let Some(kind) = EventKind::parse(&event.kind) else { return Change::Ignore };
    let project = project_of(event);
    match kind {
        NodeStarted | NodeStopped | NodeSuspended | NodeCreated | NodeDeleted | NodeUpdated | LinkCreated
        | LinkUpdated | LinkDeleted => match project {
            Some(project_id) => Change::Project { project_id, topology: true, list: false },
            None => Change::InvalidateServer,
        },
        ProjectCreated => match project {
            Some(project_id) => Change::Project { project_id, topology: false, list: true },
            None => Change::InvalidateServer,
        },
        ProjectOpened | ProjectClosed | ProjectUpdated => match project {
            Some(project_id) => Change::Project { project_id, topology: true, list: true },
            None => Change::InvalidateServer,
        },
        ProjectDeleted => match project {
            Some(project_id) => Change::DropProject(project_id),
            None => Change::InvalidateServer,
        },
        ServerConnected | ServerDisconnected => Change::InvalidateServer,
        TopologyChanged | CircuitOpened | CircuitClosed => Change::Ignore,
    }
}

/// The project an event is about: the envelope's, else the object's.
pub fn project_of(event: &Event) -> Option<Uuid> {
    event.project_id.or_else(|| uuid_field(&event.data, "project_id"))
}

/// Applies `event` to one project's cached topology.
pub fn apply_to_topology(topo: &mut ProjectTopology, event: &Event) -> Outcome {
    use EventKind::*;
    let Some(kind) = EventKind::parse(&event.kind) else { return Outcome::Unchanged };
    let project_id = topo.project.project_id;
    if project_of(event).is_some_and(|p| p != project_id) {
        return Outcome::Invalidate("event for another project");
    }
    match kind {
        NodeStarted | NodeStopped | NodeSuspended | NodeCreated | NodeUpdated => upsert_node(topo, event, kind),
        NodeDeleted => {
            let Some(node_id) = event.node_id.or_else(|| uuid_field(&event.data, "node_id")) else {
                return Outcome::Invalidate("node.deleted without a node id");
            };
            let before = (topo.nodes.len(), topo.links.len());
            topo.nodes.retain(|n| n.node_id != node_id);
            topo.links.retain(|l| l.nodes.iter().all(|end| end.node_id != node_id));
            changed_if(before != (topo.nodes.len(), topo.links.len()))
        }
        LinkCreated | LinkUpdated => upsert_link(topo, event),
        LinkDeleted => {
            let Some(link_id) = uuid_field(&event.data, "link_id") else {
                return Outcome::Invalidate("link.deleted without a link id");
            };
            let before = topo.links.len();
            topo.links.retain(|l| l.link_id != link_id);
            changed_if(before != topo.links.len())
        }
        // GNS3 lists the nodes and links of a closed project in a reduced form (no status,
        // no ports), and on opening re-sends objects the deriver finds unchanged: a
        // topology cached before the opening must be read again in full.
        ProjectOpened => Outcome::Invalidate("project opened: GNS3's full objects are read again"),
        ProjectClosed | ProjectUpdated => {
            let Some(obj) = event.data.as_object().filter(|o| !o.is_empty()) else {
                return match project_status(kind) {
                    Some(status) => set_project_status(&mut topo.project, status),
                    None => Outcome::Invalidate("project.updated without a project object"),
                };
            };
            match merged(&topo.project, obj) {
                Some(mut p) => {
                    p.project_id = project_id;
                    if let Some(status) = project_status(kind) {
                        p.status = Some(status.to_owned());
                    }
                    replace(&mut topo.project, p)
                }
                None => Outcome::Invalidate("project object does not parse"),
            }
        }
        ProjectDeleted => Outcome::Invalidate("project deleted"),
        ProjectCreated | TopologyChanged | ServerConnected | ServerDisconnected | CircuitOpened | CircuitClosed => {
            Outcome::Unchanged
        }
    }
}

/// Applies `event` to a server's cached project list.
pub fn apply_to_projects(projects: &mut Vec<Project>, event: &Event) -> Outcome {
    use EventKind::*;
    let Some(kind) = EventKind::parse(&event.kind) else { return Outcome::Unchanged };
    let Some(project_id) = project_of(event) else {
        return match kind {
            ProjectCreated | ProjectOpened | ProjectClosed | ProjectUpdated | ProjectDeleted => {
                Outcome::Invalidate("project event without a project id")
            }
            _ => Outcome::Unchanged,
        };
    };
    match kind {
        ProjectCreated | ProjectOpened | ProjectClosed | ProjectUpdated => {
            let obj = event.data.as_object().filter(|o| !o.is_empty());
            match projects.iter().position(|p| p.project_id == project_id) {
                Some(i) => {
                    let next = match obj {
                        Some(obj) => merged(&projects[i], obj),
                        None => Some(projects[i].clone()),
                    };
                    let Some(mut p) = next else {
                        return Outcome::Invalidate("project object does not parse");
                    };
                    p.project_id = project_id;
                    if let Some(status) = project_status(kind) {
                        p.status = Some(status.to_owned());
                    }
                    replace(&mut projects[i], p)
                }
                None => {
                    // A new entry needs the whole object (at least its name).
                    let Some(obj) = obj.filter(|o| o.get("name").is_some_and(Value::is_string)) else {
                        return Outcome::Invalidate("unknown project and no project object");
                    };
                    let Ok(mut p) = serde_json::from_value::<Project>(Value::Object(obj.clone())) else {
                        return Outcome::Invalidate("project object does not parse");
                    };
                    p.project_id = project_id;
                    if let Some(status) = project_status(kind) {
                        p.status = Some(status.to_owned());
                    }
                    projects.push(p);
                    Outcome::Changed
                }
            }
        }
        ProjectDeleted => {
            let before = projects.len();
            projects.retain(|p| p.project_id != project_id);
            changed_if(before != projects.len())
        }
        _ => Outcome::Unchanged,
    }
}

fn upsert_node(topo: &mut ProjectTopology, event: &Event, kind: EventKind) -> Outcome {
    let status = node_status(kind);
    let obj = event.data.as_object().filter(|o| !o.is_empty());
    // A status event may come without the object: the type says it all.
    if obj.is_none() && status.is_none() {
        return Outcome::Invalidate("node event without a node object");
    }
    let data_id = obj.and_then(|o| o.get("node_id")).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok());
    let node_id = match (event.node_id, data_id) {
        (Some(a), Some(b)) if a != b => return Outcome::Invalidate("node ids disagree"),
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Outcome::Invalidate("node event without a node id"),
    };
    let project_id = topo.project.project_id;
    let empty = Map::new();
    let obj = obj.unwrap_or(&empty);
    match topo.nodes.iter().position(|n| n.node_id == node_id) {
        Some(i) => {
            let Some(mut node) = merged(&topo.nodes[i], obj) else {
                return Outcome::Invalidate("node object does not parse");
            };
            node.node_id = node_id;
            node.project_id = project_id;
            if let Some(s) = status {
                node.status = Some(s.to_owned());
            }
            replace(&mut topo.nodes[i], node)
        }
        None => {
            if !obj.get("name").is_some_and(Value::is_string) {
                return Outcome::Invalidate("unknown node and no node object");
            }
            let Ok(mut node) = serde_json::from_value::<Node>(Value::Object(obj.clone())) else {
                return Outcome::Invalidate("node object does not parse");
            };
            node.node_id = node_id;
            node.project_id = project_id;
            if let Some(s) = status {
                node.status = Some(s.to_owned());
            }
            topo.nodes.push(node);
            Outcome::Changed
        }
    }
}

fn upsert_link(topo: &mut ProjectTopology, event: &Event) -> Outcome {
    let Some(obj) = event.data.as_object().filter(|o| !o.is_empty()) else {
        return Outcome::Invalidate("link event without a link object");
    };
    let Some(link_id) = uuid_field(&event.data, "link_id") else {
        return Outcome::Invalidate("link event without a link id");
    };
    let project_id = topo.project.project_id;
    match topo.links.iter().position(|l| l.link_id == link_id) {
        Some(i) => {
            let Some(mut link) = merged(&topo.links[i], obj) else {
                return Outcome::Invalidate("link object does not parse");
            };
            link.project_id = project_id;
            replace(&mut topo.links[i], link)
        }
        None => {
            if !obj.get("nodes").is_some_and(Value::is_array) {
                return Outcome::Invalidate("unknown link and no link object");
            }
            let Ok(mut link) = serde_json::from_value::<Link>(Value::Object(obj.clone())) else {
                return Outcome::Invalidate("link object does not parse");
            };
            link.project_id = project_id;
            topo.links.push(link);
            Outcome::Changed
        }
    }
}

fn node_status(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::NodeStarted => Some("started"),
        EventKind::NodeStopped => Some("stopped"),
        EventKind::NodeSuspended => Some("suspended"),
        _ => None,
    }
}

fn project_status(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::ProjectOpened => Some("opened"),
        EventKind::ProjectClosed => Some("closed"),
        _ => None,
    }
}

fn set_project_status(project: &mut Project, status: &str) -> Outcome {
    if project.status.as_deref() == Some(status) {
        return Outcome::Unchanged;
    }
    project.status = Some(status.to_owned());
    Outcome::Changed
}

/// `current` with every top-level field of `patch` laid over it; `None` if the result is
/// not a valid `T`.
fn merged<T: Serialize + DeserializeOwned>(current: &T, patch: &Map<String, Value>) -> Option<T> {
    let Ok(Value::Object(mut base)) = serde_json::to_value(current) else { return None };
    for (k, v) in patch {
        base.insert(k.clone(), v.clone());
    }
    serde_json::from_value(Value::Object(base)).ok()
}

fn replace<T: PartialEq>(slot: &mut T, next: T) -> Outcome {
    if *slot == next {
        return Outcome::Unchanged;
    }
    *slot = next;
    Outcome::Changed
}

fn changed_if(changed: bool) -> Outcome {
    if changed {
        Outcome::Changed
    } else {
        Outcome::Unchanged
    }
}

fn uuid_field(data: &Value, field: &str) -> Option<Uuid> {
    data.get(field).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())
}

#[cfg(test)]
pub(crate) mod tests;

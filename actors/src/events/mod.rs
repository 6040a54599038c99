//! The event model every consumer sees (docs/architecture.md#event-envelope): typed, prioritised
//! events derived from GNS3's notifications, from the connector (server and circuit
//! state) and from modules. A producer builds a `NewEvent`; the dispatcher stamps it
//! with `epoch`, `seq`, `id` and its priority and turns it into an `Event`.
//!
//! Known types are `EventKind` values; modules publish their own types as plain strings
//! (`alert.raised`), which is why the envelope's `type` is a string.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use utoipa::ToSchema;
use uuid::Uuid;

mod priority;
pub use priority::Priority;

pub mod derive;
pub use derive::{Deriver, StreamId};

/// The event types gns3-central derives itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    NodeStarted,
    NodeStopped,
    NodeSuspended,
    NodeCreated,
    NodeDeleted,
    NodeUpdated,
    LinkCreated,
    LinkUpdated,
    LinkDeleted,
    ProjectCreated,
    ProjectOpened,
    ProjectClosed,
    ProjectUpdated,
    ProjectDeleted,
    TopologyChanged,
    ServerConnected,
    ServerDisconnected,
    CircuitOpened,
    CircuitClosed,
}

impl EventKind {
    pub const ALL: [EventKind; 19] = [
        EventKind::NodeStarted,
        EventKind::NodeStopped,
        EventKind::NodeSuspended,
        EventKind::NodeCreated,
        EventKind::NodeDeleted,
        EventKind::NodeUpdated,
        EventKind::LinkCreated,
        EventKind::LinkUpdated,
        EventKind::LinkDeleted,
        EventKind::ProjectCreated,
        EventKind::ProjectOpened,
        EventKind::ProjectClosed,
        EventKind::ProjectUpdated,
        EventKind::ProjectDeleted,
        EventKind::TopologyChanged,
        EventKind::ServerConnected,
        EventKind::ServerDisconnected,
        EventKind::CircuitOpened,
        EventKind::CircuitClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::NodeStarted => "node.started",
            EventKind::NodeStopped => "node.stopped",
            EventKind::NodeSuspended => "node.suspended",
            EventKind::NodeCreated => "node.created",
            EventKind::NodeDeleted => "node.deleted",
            EventKind::NodeUpdated => "node.updated",
            EventKind::LinkCreated => "link.created",
            EventKind::LinkUpdated => "link.updated",
            EventKind::LinkDeleted => "link.deleted",
            EventKind::ProjectCreated => "project.created",
            EventKind::ProjectOpened => "project.opened",
            EventKind::ProjectClosed => "project.closed",
            EventKind::ProjectUpdated => "project.updated",
            EventKind::ProjectDeleted => "project.deleted",
            EventKind::TopologyChanged => "topology.changed",
            EventKind::ServerConnected => "server.connected",
            EventKind::ServerDisconnected => "server.disconnected",
            EventKind::CircuitOpened => "circuit.opened",
            EventKind::CircuitClosed => "circuit.closed",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Defaults (docs/architecture.md): server/circuit CRITICAL; node status and project open/close
    /// HIGH; created/deleted/topology NORMAL; cosmetic updates LOW.
    pub fn default_priority(self) -> Priority {
        use EventKind::*;
        match self {
            ServerConnected | ServerDisconnected | CircuitOpened | CircuitClosed => Priority::Critical,
            NodeStarted | NodeStopped | NodeSuspended | ProjectOpened | ProjectClosed => Priority::High,
            NodeCreated | NodeDeleted | LinkCreated | LinkDeleted | ProjectCreated | ProjectDeleted
            | TopologyChanged => Priority::Normal,
            NodeUpdated | LinkUpdated | ProjectUpdated => Priority::Low,
        }
    }

    /// The subscription groups this type belongs to (besides `all`).
    pub fn group(self) -> Group {
        use EventKind::*;
        match self {
            NodeStarted | NodeStopped | NodeSuspended => Group::NodeStatus,
            NodeCreated | NodeDeleted | NodeUpdated | LinkCreated | LinkUpdated | LinkDeleted | TopologyChanged => {
                Group::TopologyChanges
            }
            ProjectCreated | ProjectOpened | ProjectClosed | ProjectUpdated | ProjectDeleted => Group::ProjectStatus,
            ServerConnected | ServerDisconnected | CircuitOpened | CircuitClosed => Group::ServerStatus,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Subscription groups (`all` is handled by the filter, not a group of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    NodeStatus,
    TopologyChanges,
    ProjectStatus,
    ServerStatus,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::NodeStatus => "node_status",
            Group::TopologyChanges => "topology_changes",
            Group::ProjectStatus => "project_status",
            Group::ServerStatus => "server_status",
        }
    }

    pub fn parse(s: &str) -> Option<Group> {
        [Group::NodeStatus, Group::TopologyChanges, Group::ProjectStatus, Group::ServerStatus]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// Where an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A GNS3 notification stream.
    Gns3,
    /// A difference found when re-reading GNS3 after a gap (reconnect, restart) or by polling.
    Resync,
    /// gns3-central itself (server and circuit state).
    Central,
    /// A module.
    Module,
}

/// An event before the dispatcher has numbered it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `node.started`..., or a module's own type.
    pub kind: String,
    pub server: String,
    pub project_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    pub timestamp: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub source: Source,
    pub data: Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, server: &str, source: Source, data: Value) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            server: server.to_owned(),
            project_id: None,
            node_id: None,
            timestamp: Utc::now(),
            correlation_id: None,
            source,
            data,
        }
    }

    pub fn project(mut self, id: Option<Uuid>) -> Self {
        self.project_id = id;
        self
    }

    pub fn node(mut self, id: Option<Uuid>) -> Self {
        self.node_id = id;
        self
    }

    pub fn known_kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }
}

/// The envelope every consumer receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// `epoch-seq`.
    pub id: String,
    /// Strictly increasing within an epoch.
    pub seq: u64,
    /// Changes when history is lost (a fresh start without a persistent store).
    pub epoch: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = String, example = "HIGH")]
    pub priority: Priority,
    pub server: String,
    pub project_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    pub timestamp: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub source: Source,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl Event {
    pub fn stamp(new: NewEvent, epoch: &str, seq: u64, priority: Priority) -> Event {
        Event {
            id: format!("{epoch}-{seq}"),
            seq,
            epoch: epoch.to_owned(),
            kind: new.kind,
            priority,
            server: new.server,
            project_id: new.project_id,
            node_id: new.node_id,
            timestamp: new.timestamp,
            correlation_id: new.correlation_id,
            source: new.source,
            data: new.data,
        }
    }

    /// The event without its numbering (to number it again elsewhere).
    pub fn into_new(self) -> NewEvent {
        NewEvent {
            kind: self.kind,
            server: self.server,
            project_id: self.project_id,
            node_id: self.node_id,
            timestamp: self.timestamp,
            correlation_id: self.correlation_id,
            source: self.source,
            data: self.data,
        }
    }

    /// Splits an event id into (epoch, seq); `None` when it is not one.
    pub fn parse_id(id: &str) -> Option<(&str, u64)> {
        let (epoch, seq) = id.rsplit_once('-')?;
        if epoch.is_empty() {
            return None;
        }
        Some((epoch, seq.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_have_groups_and_priorities() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert!(Group::parse(k.group().as_str()).is_some());
        }
        assert_eq!(EventKind::ServerDisconnected.default_priority(), Priority::Critical);
        assert_eq!(EventKind::NodeStarted.default_priority(), Priority::High);
        assert_eq!(EventKind::LinkCreated.default_priority(), Priority::Normal);
        assert_eq!(EventKind::NodeUpdated.default_priority(), Priority::Low);
        assert_eq!(EventKind::parse("alert.raised"), None);
    }

    #[test]
    fn envelope_serializes_as_designed() {
        let p = Uuid::new_v4();
        let new = NewEvent::new(EventKind::NodeStarted, "default", Source::Gns3, serde_json::json!({"a": 1}))
            .project(Some(p));
        let e = Event::stamp(new, "7f3a9c", 1042, Priority::High);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["id"], "7f3a9c-1042");
        assert_eq!(v["type"], "node.started");
        assert_eq!(v["priority"], "HIGH");
        assert_eq!(v["source"], "gns3");
        assert_eq!(v["project_id"], p.to_string());
        assert!(v["node_id"].is_null() && v["correlation_id"].is_null());
        assert_eq!(Event::parse_id("7f3a9c-1042"), Some(("7f3a9c", 1042)));
        assert_eq!(Event::parse_id("a-b-7"), Some(("a-b", 7)));
        assert_eq!(Event::parse_id("nope"), None);
        assert_eq!(Event::parse_id("-5"), None);
    }
}

//! Messages the `Gns3Connector` answers. Every GNS3 call of the service goes through one
//! of these; the reply types are what the HTTP edge renders.

use actix::Message;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ConnectorError;
use super::status::ServerStatus;
use crate::gns3::{Compute, Link, Node, NodeAction, Project, ProjectAction, ServerTopology};

/// The connector's live state: connection, versions, circuit, last error, latencies.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "ServerStatus")]
pub struct GetServerStatus;

/// Runtime configuration: the bound on each call to GNS3 (`gns3.servers.<s>.timeout`),
/// for the calls started from now on; kept across restarts of the actor.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct SetTimeout(pub std::time::Duration);

/// Runtime configuration: the topology poll interval (`gns3.monitor_interval`, `poll`
/// ingest mode), from the next poll on.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct SetPollInterval(pub std::time::Duration);

/// Shutdown: stop following GNS3 (the notification streams are closed) and publish no
/// more events. The connector still answers REST calls until the process exits.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StopIngest;

/// Test hook (docs/operations.md#supervision): makes the connector panic in its handler, so the
/// supervision of a panicking actor can be seen. Only the `--test-mode` debug route sends it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct DebugPanic;

/// Calls to GNS3 by operation since start (durations and errors), for `/metrics`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "std::collections::BTreeMap<String, super::status::CallStats>")]
pub struct GetCallStats;

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Vec<Project>, ConnectorError>")]
pub struct ListProjects;

/// The computes GNS3 lists (v3 hides its local compute: the list may be empty there).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Vec<Compute>, ConnectorError>")]
pub struct ListComputes;

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Project, ConnectorError>")]
pub struct GetProject {
    pub project_id: Uuid,
}

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Vec<Node>, ConnectorError>")]
pub struct ListNodes {
    pub project_id: Uuid,
}

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Node, ConnectorError>")]
pub struct GetNode {
    pub project_id: Uuid,
    pub node_id: Uuid,
}

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Vec<Link>, ConnectorError>")]
pub struct ListLinks {
    pub project_id: Uuid,
}

/// Start, stop, suspend, reload or restart (stop then start) one node. Never retried
/// blindly once GNS3 may have received it. On failure, `ConnectorError::Gns3::details`
/// holds `{"node": <node as GNS3 reports it afterwards>, "steps": [...]}`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<NodeActionOutcome, ConnectorError>")]
pub struct RunNodeAction {
    pub project_id: Uuid,
    pub node_id: Uuid,
    pub action: NodeAction,
}

/// Open or close a project, or start/stop all its nodes (GNS3 bulk calls).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<ProjectActionOutcome, ConnectorError>")]
pub struct RunProjectAction {
    pub project_id: Uuid,
    pub action: ProjectAction,
}

/// Reads the topology from GNS3: every project (or the one given) with nodes and links.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<ServerTopology, ConnectorError>")]
pub struct FetchTopology {
    pub project_id: Option<Uuid>,
}

/// One GNS3 call made for an action (restart has two: stop, then start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionStep {
    /// `start`, `stop`, `suspend`, `reload`, `open`, `close`.
    pub action: String,
    pub ok: bool,
    /// GNS3's HTTP status for this call (absent when GNS3 was not reached).
    pub gns3_status: Option<u16>,
    /// GNS3's message when it refused.
    pub message: Option<String>,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeActionOutcome {
    pub action: NodeAction,
    pub project_id: Uuid,
    pub node_id: Uuid,
    pub steps: Vec<ActionStep>,
    /// The node as GNS3 reports it after the action.
    pub node: Option<Node>,
    /// Carried by the events this action causes (same node, expected status, within the
    /// correlation window).
    pub correlation_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectActionOutcome {
    pub action: ProjectAction,
    pub project_id: Uuid,
    pub steps: Vec<ActionStep>,
    /// The project as GNS3 reports it after the action.
    pub project: Option<Project>,
    /// Carried by the events this action causes.
    pub correlation_id: String,
}

/// Drops every connection state (HTTP pool, login, breaker) and connects anew: the actor
/// stops and its supervisor restarts it, which is counted in `actor_restarts`. Callers
/// waiting on the old connection get a mailbox error (503 `connector_unavailable`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Reconnect;

//! GNS3 objects as gns3-central sees them. The fields the service reasons about are typed;
//! everything else GNS3 sends is kept in `extra` and passed through untouched, so clients
//! see the same objects they would get from GNS3 itself (v2 and v3 differ in extras).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

/// Which GNS3 controller API a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    V2,
    V3,
}

impl ApiVersion {
    /// The path prefix of this API (`v2` / `v3`).
    pub fn prefix(self) -> &'static str {
        match self {
            ApiVersion::V2 => "v2",
            ApiVersion::V3 => "v3",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// `GET /{v}/version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Gns3Version {
    pub version: String,
    #[serde(default)]
    pub local: Option<bool>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// A compute as listed by `GET /{v}/computes` (v3 hides the local one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Compute {
    pub compute_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub connected: Option<bool>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// A GNS3 project (`status` is `opened` or `closed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub project_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

impl Project {
    pub fn is_opened(&self) -> bool {
        self.status.as_deref() == Some("opened")
    }
}

/// A node of a project. `status` is `started`, `stopped` or `suspended`.
/// GNS3 v3 leaves `project_id` out of the nodes of a closed project: the client fills it
/// in from the request, so it is always set in what the service hands out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    pub node_id: Uuid,
    #[serde(default)]
    pub project_id: Uuid,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub node_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub compute_id: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkEnd {
    pub node_id: Uuid,
    #[serde(default)]
    pub adapter_number: Option<u32>,
    #[serde(default)]
    pub port_number: Option<u32>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// A link between node ports (`project_id` filled in by the client when GNS3 omits it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    pub link_id: Uuid,
    #[serde(default)]
    pub project_id: Uuid,
    #[serde(default)]
    pub nodes: Vec<LinkEnd>,
    #[serde(default)]
    pub link_type: Option<String>,
    #[serde(default)]
    pub suspend: Option<bool>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// Actions on one node. `Restart` is gns3-central's own: stop then start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    Start,
    Stop,
    Suspend,
    Reload,
    Restart,
}

impl NodeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeAction::Start => "start",
            NodeAction::Stop => "stop",
            NodeAction::Suspend => "suspend",
            NodeAction::Reload => "reload",
            NodeAction::Restart => "restart",
        }
    }
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NodeAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "start" => Ok(NodeAction::Start),
            "stop" => Ok(NodeAction::Stop),
            "suspend" => Ok(NodeAction::Suspend),
            "reload" => Ok(NodeAction::Reload),
            "restart" => Ok(NodeAction::Restart),
            other => Err(format!("unknown node action '{other}' (expected start, stop, restart, suspend or reload)")),
        }
    }
}

/// Actions on a project: open/close it, or start/stop all its nodes (GNS3 bulk calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectAction {
    Open,
    Close,
    Start,
    Stop,
}

impl ProjectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectAction::Open => "open",
            ProjectAction::Close => "close",
            ProjectAction::Start => "start",
            ProjectAction::Stop => "stop",
        }
    }
}

impl fmt::Display for ProjectAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProjectAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(ProjectAction::Open),
            "close" => Ok(ProjectAction::Close),
            "start" => Ok(ProjectAction::Start),
            "stop" => Ok(ProjectAction::Stop),
            other => Err(format!("unknown project action '{other}' (expected open, close, start or stop)")),
        }
    }
}

/// One project with its nodes and links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectTopology {
    pub project: Project,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
}

/// Everything gns3-central knows of one GNS3 server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerTopology {
    /// The configured server name (`default` for the one set by `GNS3_*` variables).
    pub server: String,
    pub gns3_version: Option<String>,
    pub api_version: Option<ApiVersion>,
    /// When this topology was read from GNS3 (RFC 3339).
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    pub projects: Vec<ProjectTopology>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_keeps_unknown_fields() {
        let raw = serde_json::json!({
            "node_id": "e19f73a6-0000-4000-8000-000000000001",
            "project_id": "68dca439-0000-4000-8000-000000000002",
            "name": "A", "node_type": "qemu", "status": "stopped",
            "compute_id": "local", "console": 5000, "aux": null
        });
        let node: Node = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(node.status.as_deref(), Some("stopped"));
        assert_eq!(serde_json::to_value(&node).unwrap(), raw);
    }

    #[test]
    fn node_without_project_id_parses() {
        // GNS3 v3 lists the nodes of a closed project without their project_id.
        let node: Node = serde_json::from_value(serde_json::json!({
            "node_id": "e19f73a6-0000-4000-8000-000000000001", "name": "A", "status": "stopped"
        }))
        .unwrap();
        assert!(node.project_id.is_nil());
    }

    #[test]
    fn actions_parse_and_reject() {
        assert_eq!("restart".parse::<NodeAction>().unwrap(), NodeAction::Restart);
        assert!("explode".parse::<NodeAction>().unwrap_err().contains("explode"));
        assert_eq!("close".parse::<ProjectAction>().unwrap(), ProjectAction::Close);
        assert!("reload".parse::<ProjectAction>().is_err());
    }
}

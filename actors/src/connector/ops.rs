//! The connector's operations, built from client calls through `read` / `act`: reads,
//! node and project actions reported step by step (restart = stop then start, one
//! outcome with both steps), and whole-topology reads.
//!
//! After every node action the node is read back: GNS3's own reply can carry a stale
//! status (v2) or none (v3), and a refused start (409 without ubridge) may still have
//! started the node, so the caller is told the node's true state either way.

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use std::time::Instant;
use uuid::Uuid;

use super::core::ConnectorCore;
use super::error::ConnectorError;
use super::messages::{ActionStep, NodeActionOutcome, ProjectActionOutcome};
use crate::events::EventKind;
use crate::gns3::{Compute, Link, Node, NodeAction, Project, ProjectAction, ProjectTopology, ServerTopology};

/// Projects read at the same time by a topology read (GNS3 is one Python process: more
/// concurrency only queues there).
const TOPOLOGY_CONCURRENCY: usize = 4;

impl ConnectorCore {
    pub async fn list_projects(&self) -> Result<Vec<Project>, ConnectorError> {
        self.read("list_projects", |c| async move { c.projects().await }).await
    }

    pub async fn list_computes(&self) -> Result<Vec<Compute>, ConnectorError> {
        self.read("list_computes", |c| async move { c.computes().await }).await
    }

    pub async fn get_project(&self, project_id: Uuid) -> Result<Project, ConnectorError> {
        self.read("get_project", |c| async move { c.project(project_id).await }).await
    }

    pub async fn list_nodes(&self, project_id: Uuid) -> Result<Vec<Node>, ConnectorError> {
        self.read("list_nodes", |c| async move { c.nodes(project_id).await }).await
    }

    pub async fn get_node(&self, project_id: Uuid, node_id: Uuid) -> Result<Node, ConnectorError> {
        self.read("get_node", |c| async move { c.node(project_id, node_id).await }).await
    }

    pub async fn list_links(&self, project_id: Uuid) -> Result<Vec<Link>, ConnectorError> {
        self.read("list_links", |c| async move { c.links(project_id).await }).await
    }

    /// One project with its nodes and links (read concurrently).
    async fn project_topology(&self, project: Project) -> Result<ProjectTopology, ConnectorError> {
        let id = project.project_id;
        let (nodes, links) = futures_util::future::join(self.list_nodes(id), self.list_links(id)).await;
        Ok(ProjectTopology { project, nodes: nodes?, links: links? })
    }

    /// Every project (or the one given) with nodes and links. A project deleted while
    /// the read runs is left out rather than failing the whole read.
    pub async fn topology(&self, project_id: Option<Uuid>) -> Result<ServerTopology, ConnectorError> {
        let projects = match project_id {
            Some(id) => vec![self.get_project(id).await?],
            None => self.list_projects().await?,
        };
        let results: Vec<_> =
            stream::iter(projects).map(|p| self.project_topology(p)).buffered(TOPOLOGY_CONCURRENCY).collect().await;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(t) => out.push(t),
                Err(ConnectorError::Gns3 { status: 404, .. }) if project_id.is_none() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ServerTopology {
            server: self.name().to_owned(),
            gns3_version: self.client().gns3_version().map(|v| v.version),
            api_version: self.client().api_version(),
            fetched_at: chrono::Utc::now(),
            projects: out,
        })
    }

    /// Runs a node action; restart is stop then start. On a refusal by GNS3 the error's
    /// `details` hold `{"node": <node afterwards>, "steps": [...]}`.
    pub async fn node_action(
        &self,
        project_id: Uuid,
        node_id: Uuid,
        action: NodeAction,
    ) -> Result<NodeActionOutcome, ConnectorError> {
        let plan: &[NodeAction] = match action {
            NodeAction::Restart => &[NodeAction::Stop, NodeAction::Start],
            NodeAction::Start => &[NodeAction::Start],
            NodeAction::Stop => &[NodeAction::Stop],
            NodeAction::Suspend => &[NodeAction::Suspend],
            NodeAction::Reload => &[NodeAction::Reload],
        };
        let correlation_id = Uuid::new_v4().to_string();
        let expected: Vec<EventKind> = plan.iter().filter_map(|a| status_event(*a)).flatten().collect();
        self.expect_events(project_id, Some(node_id), &expected, &correlation_id);
        let mut steps = Vec::with_capacity(plan.len());
        let mut refusal = None;
        for &step in plan {
            let begin = Instant::now();
            let result =
                self.act("node_action", |c| async move { c.node_action(project_id, node_id, step).await }).await;
            match record_step(&mut steps, step.as_str(), begin, result) {
                Ok(_) => {}
                Err(e @ ConnectorError::Gns3 { .. }) => {
                    refusal = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let node = self.get_node(project_id, node_id).await;
        tracing::info!(server = %self.name(), %project_id, %node_id, action = %action,
            ok = refusal.is_none(),
            status = node.as_ref().ok().and_then(|n| n.status.as_deref()).unwrap_or("?"),
            "Node action done.");
        match refusal {
            Some(ConnectorError::Gns3 { status, message, .. }) => Err(ConnectorError::Gns3 {
                status,
                message,
                details: Some(json!({ "node": node.ok(), "steps": steps, "correlation_id": correlation_id })),
            }),
            _ => Ok(NodeActionOutcome { action, project_id, node_id, steps, node: node.ok(), correlation_id }),
        }
    }

    /// Opens or closes a project, or bulk-starts/stops its nodes; then reads it back.
    pub async fn project_action(
        &self,
        project_id: Uuid,
        action: ProjectAction,
    ) -> Result<ProjectActionOutcome, ConnectorError> {
        let correlation_id = Uuid::new_v4().to_string();
        let expected: &[EventKind] = match action {
            ProjectAction::Open => &[EventKind::ProjectOpened],
            ProjectAction::Close => &[EventKind::ProjectClosed, EventKind::NodeStopped],
            ProjectAction::Start => &[EventKind::NodeStarted],
            ProjectAction::Stop => &[EventKind::NodeStopped],
        };
        self.expect_events(project_id, None, expected, &correlation_id);
        let begin = Instant::now();
        let result = match action {
            ProjectAction::Open => {
                self.act("project_open", |c| async move { c.open_project(project_id).await.map(|_| 201) }).await
            }
            ProjectAction::Close => {
                self.act("project_close", |c| async move { c.close_project(project_id).await }).await
            }
            ProjectAction::Start => {
                self.act("project_start", |c| async move { c.bulk_node_action(project_id, NodeAction::Start).await })
                    .await
            }
            ProjectAction::Stop => {
                self.act("project_stop", |c| async move { c.bulk_node_action(project_id, NodeAction::Stop).await })
                    .await
            }
        };
        let mut steps = Vec::with_capacity(1);
        let outcome = record_step(&mut steps, action.as_str(), begin, result);
        let project = self.get_project(project_id).await;
        tracing::info!(server = %self.name(), %project_id, action = %action, ok = outcome.is_ok(),
            "Project action done.");
        match outcome {
            Ok(_) => Ok(ProjectActionOutcome { action, project_id, steps, project: project.ok(), correlation_id }),
            Err(ConnectorError::Gns3 { status, message, .. }) => Err(ConnectorError::Gns3 {
                status,
                message,
                details: Some(json!({ "project": project.ok(), "steps": steps, "correlation_id": correlation_id })),
            }),
            Err(e) => Err(e),
        }
    }
}

/// The status events one GNS3 node call is expected to cause (reload: stop then start).
fn status_event(action: NodeAction) -> Option<Vec<EventKind>> {
    match action {
        NodeAction::Start => Some(vec![EventKind::NodeStarted]),
        NodeAction::Stop => Some(vec![EventKind::NodeStopped]),
        NodeAction::Suspend => Some(vec![EventKind::NodeSuspended]),
        NodeAction::Reload => Some(vec![EventKind::NodeStopped, EventKind::NodeStarted]),
        NodeAction::Restart => None,
    }
}

/// Appends the step an action call made and passes its result on.
fn record_step(
    steps: &mut Vec<ActionStep>,
    action: &str,
    begin: Instant,
    result: Result<u16, ConnectorError>,
) -> Result<u16, ConnectorError> {
    let duration_ms = begin.elapsed().as_secs_f64() * 1000.0;
    let (ok, gns3_status, message) = match &result {
        Ok(status) => (true, Some(*status), None),
        Err(ConnectorError::Gns3 { status, message, .. }) => (false, Some(*status), Some(message.clone())),
        Err(e) => (false, None, Some(e.to_string())),
    };
    steps.push(ActionStep { action: action.to_owned(), ok, gns3_status, message, duration_ms });
    result
}

//! The GNS3 side of a module session: node and project actions (their correlation ids
//! flow into the events they cause; every one is recorded in the audit trail with
//! `via: "module"` and the module's name as who), a node's status,
//! and topologies, as the module's frames ask for them.

use actix::prelude::*;
use actix_web_actors::ws;
use gns3_central_actors::connector::{RunNodeAction, RunProjectAction};
use gns3_central_actors::gns3::{NodeAction, ProjectAction};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use uuid::Uuid;

use super::session::ModuleSession;
use crate::error::{parse_uuid, ApiError, Code};
use crate::ws::frames::{self, with_request_id, ActionTarget};
use crate::ws::session::Session;
use crate::ws::topology::send_topology;
use crate::ws::{Role, SessionPrincipal};

impl ModuleSession {
    pub(super) fn target(&self, server: Option<String>, project: &str) -> Result<(String, Uuid), ApiError> {
        let server = server.unwrap_or_else(|| self.core.state.default_server.clone());
        self.core.state.connector(&server)?;
        Ok((server, parse_uuid("project_id", project)?))
    }

    pub(super) fn on_node_action(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        action: &str,
        project: &str,
        node: &str,
        server: Option<String>,
        rid: Option<Value>,
    ) {
        let checked = (|| {
            let action: NodeAction =
                action.parse().map_err(|m: String| ApiError::bad_request(Code::InvalidAction, m))?;
            let node_id = parse_uuid("node_id", node)?;
            let (server, project_id) = self.target(server, project)?;
            Ok::<_, ApiError>((action, project_id, node_id, server))
        })();
        let (action, project_id, node_id, server) = match checked {
            Ok(c) => c,
            Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
        };
        if !self.take_action_token(ctx, "actions", rid.as_ref()) {
            return;
        }
        self.slot.stats.actions.fetch_add(1, Ordering::Relaxed);
        let (state, srv, module) = (self.core.state.clone(), server.clone(), self.slot.name.clone());
        let fut = async move {
            let outcome = state.ask(&srv, RunNodeAction { project_id, node_id, action }).await;
            state.audit.record(
                crate::observe::audit::AuditRecord::new(
                    &module,
                    "module",
                    "module",
                    format!("node.{}", action.as_str()),
                )
                .target(&srv, Some(project_id), Some(node_id))
                .result(&outcome, |o| &o.correlation_id),
            );
            outcome
        };
        let target = ActionTarget { action, project_id, node_id: Some(node_id) };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.reply(ctx, frames::action_result(rid.as_ref(), &server, &target, &res, |o| &o.correlation_id));
        }));
    }

    pub(super) fn on_project_action(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        action: &str,
        project: &str,
        server: Option<String>,
        rid: Option<Value>,
    ) {
        let checked = (|| {
            let action: ProjectAction =
                action.parse().map_err(|m: String| ApiError::bad_request(Code::InvalidAction, m))?;
            let (server, project_id) = self.target(server, project)?;
            Ok::<_, ApiError>((action, project_id, server))
        })();
        let (action, project_id, server) = match checked {
            Ok(c) => c,
            Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
        };
        if !self.take_action_token(ctx, "actions", rid.as_ref()) {
            return;
        }
        self.slot.stats.actions.fetch_add(1, Ordering::Relaxed);
        let (state, srv, module) = (self.core.state.clone(), server.clone(), self.slot.name.clone());
        let fut = async move {
            let outcome = state.ask(&srv, RunProjectAction { project_id, action }).await;
            state.audit.record(
                crate::observe::audit::AuditRecord::new(
                    &module,
                    "module",
                    "module",
                    format!("project.{}", action.as_str()),
                )
                .target(&srv, Some(project_id), None)
                .result(&outcome, |o| &o.correlation_id),
            );
            outcome
        };
        let target = ActionTarget { action, project_id, node_id: None };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.reply(ctx, frames::action_result(rid.as_ref(), &server, &target, &res, |o| &o.correlation_id));
        }));
    }

    pub(super) fn on_node_status(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        project: &str,
        node: &str,
        server: Option<String>,
        rid: Option<Value>,
    ) {
        let checked = parse_uuid("node_id", node).and_then(|n| self.target(server, project).map(|(s, p)| (s, p, n)));
        let (server, project_id, node_id) = match checked {
            Ok(c) => c,
            Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
        };
        let modules = self.core.state.modules.clone();
        let fut = async move { modules.node(Some(&server), project_id, node_id).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(node) => {
                let frame = json!({"type": "node_status", "status": node.status, "node": node});
                act.reply(ctx, with_request_id(frame, rid.as_ref()));
            }
            Err(e) => act.error(ctx, Code::NodeStatusFailed, &e.to_string(), rid.as_ref()),
        }));
    }

    pub(super) fn on_topology(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        project: Option<String>,
        server: Option<String>,
        rid: Option<Value>,
    ) {
        let project_id = match project.as_deref().map(|p| parse_uuid("project_id", p)).transpose() {
            Ok(p) => p,
            Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
        };
        let principal =
            SessionPrincipal { name: format!("module:{}", self.name()), role: Role::Operator, projects: None };
        send_topology(self, ctx, principal, server, project_id, rid);
    }
}

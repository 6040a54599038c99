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

use super::protocol as proto;
use super::session::ModuleSession;
use crate::error::{parse_uuid, ApiError, Code};
use crate::ws::dashboard::protocol;
use crate::ws::dashboard::topology::read_topology;
use crate::ws::{Role, SessionPrincipal};

impl ModuleSession {
    /// The action rate limit; false (and a `rate_limited` error frame) when spent.
    pub(super) fn take_action_token(&mut self, ctx: &mut ws::WebsocketContext<Self>, rid: Option<&Value>) -> bool {
        if self.actions.take(std::time::Instant::now()).is_ok() {
            return true;
        }
        self.state.sessions.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        let msg = format!(
            "too many actions (at most {} per second, bursts of {})",
            self.cfg.actions_per_second, self.cfg.action_burst
        );
        self.error(ctx, "rate_limited", &msg, rid);
        false
    }

    pub(super) fn target(&self, server: Option<String>, project: &str) -> Result<(String, Uuid), ApiError> {
        let server = server.unwrap_or_else(|| self.state.default_server.clone());
        self.state.connector(&server)?;
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
        if !self.take_action_token(ctx, rid.as_ref()) {
            return;
        }
        self.slot.stats.actions.fetch_add(1, Ordering::Relaxed);
        let (state, srv, module) = (self.state.clone(), server.clone(), self.slot.name.clone());
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
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let frame = match res {
                Ok(outcome) => json!({"type": "action_result", "request_id": rid, "ok": true, "server": server,
                    "correlation_id": outcome.correlation_id, "outcome": outcome}),
                Err(e) => json!({"type": "action_result", "request_id": rid, "ok": false, "server": server,
                    "action": action, "project_id": project_id, "node_id": node_id,
                    "correlation_id": e.details.as_ref().and_then(|d| d.get("correlation_id")).cloned(),
                    "error": {"code": e.code, "message": e.message, "status": e.status.as_u16(), "details": e.details}}),
            };
            act.reply(ctx, frame.to_string());
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
        if !self.take_action_token(ctx, rid.as_ref()) {
            return;
        }
        self.slot.stats.actions.fetch_add(1, Ordering::Relaxed);
        let (state, srv, module) = (self.state.clone(), server.clone(), self.slot.name.clone());
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
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let frame = match res {
                Ok(outcome) => json!({"type": "action_result", "request_id": rid, "ok": true, "server": server,
                    "correlation_id": outcome.correlation_id, "outcome": outcome}),
                Err(e) => json!({"type": "action_result", "request_id": rid, "ok": false, "server": server,
                    "action": action, "project_id": project_id,
                    "error": {"code": e.code, "message": e.message, "status": e.status.as_u16(), "details": e.details}}),
            };
            act.reply(ctx, frame.to_string());
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
        let modules = self.state.modules.clone();
        let fut = async move { modules.node(Some(&server), project_id, node_id).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(node) => {
                let frame = json!({"type": "node_status", "status": node.status, "node": node});
                act.reply(ctx, proto::with_request_id(frame, rid.as_ref()));
            }
            Err(e) => act.error(ctx, "node_status_failed", &e.to_string(), rid.as_ref()),
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
        let state = self.state.clone();
        let principal =
            SessionPrincipal { name: format!("module:{}", self.name()), role: Role::Operator, projects: None };
        let srv = server.clone();
        let fut = async move { read_topology(&state, &principal, srv.as_deref(), project_id).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(body) => {
                let head = json!({"type": "topology", "request_id": rid, "server": server, "project_id": project_id});
                act.reply(ctx, protocol::splice(head, "topology", &body));
            }
            Err(e) => act.api_error(ctx, &e, rid.as_ref()),
        }));
    }
}

//! What a session's principal sees of the topology: the answer the REST routes give
//! (from the cache when it holds it, else from GNS3), narrowed to the principal's
//! projects when it is limited to some; and the `topology` frame both sockets answer a
//! `request_topology` with (a module reads as an operator of every project).

use actix::prelude::*;
use actix_web_actors::ws;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

use super::frames;
use super::session::Session;
use crate::error::{ApiError, Code};
use crate::http::routes::cached::ReadOptions;
use crate::http::routes::topology;
use crate::state::AppState;
use crate::ws::SessionPrincipal;

/// Reads the topology `principal` sees (one server's, one project's, or every server's)
/// and answers with a `topology` frame, or the error frame of the REST answer.
pub(crate) fn send_topology<A: Session>(
    act: &A,
    ctx: &mut ws::WebsocketContext<A>,
    principal: SessionPrincipal,
    server: Option<String>,
    project_id: Option<Uuid>,
    rid: Option<Value>,
) {
    let state = act.core().state.clone();
    let srv = server.clone();
    let fut = async move { read_topology(&state, &principal, srv.as_deref(), project_id).await };
    ctx.spawn(fut.into_actor(act).map(move |res, act, ctx| match res {
        Ok(body) => {
            let head = json!({"type": "topology", "request_id": rid, "server": server, "project_id": project_id});
            act.reply(ctx, frames::splice(head, "topology", &body));
        }
        Err(e) => act.api_error(ctx, &e, rid.as_ref()),
    }));
}

/// The topology the REST routes serve (from the cache when it holds it), narrowed to the
/// principal's projects.
pub async fn read_topology(
    state: &AppState,
    principal: &SessionPrincipal,
    server: Option<&str>,
    project: Option<Uuid>,
) -> Result<Bytes, ApiError> {
    let opts = ReadOptions::default();
    let body = match (server, project) {
        (s, Some(p)) => topology::read_one(state, s.unwrap_or(&state.default_server), Some(p), &opts).await?.body(),
        (Some(s), None) => topology::read_one(state, s, None, &opts).await?.body(),
        (None, None) => topology::read_all(state, &opts).await?.body(),
    };
    let Some(visible) = &principal.projects else { return Ok(body) };
    narrow_topology(&body, visible)
        .map_err(|e| ApiError::new(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e.to_string()))
}

/// Keeps only the visible projects of a topology answer (every server's, or one server's).
fn narrow_topology(body: &[u8], visible: &BTreeSet<Uuid>) -> Result<Bytes, serde_json::Error> {
    let mut v: Value = serde_json::from_slice(body)?;
    let keep = |p: &Value| {
        p.pointer("/project/project_id")
            .and_then(Value::as_str)
            .and_then(|id| Uuid::parse_str(id).ok())
            .is_some_and(|id| visible.contains(&id))
    };
    let mut narrow = |server: &mut Value| {
        if let Some(list) = server.get_mut("projects").and_then(Value::as_array_mut) {
            list.retain(keep);
        }
    };
    match v.get_mut("servers").and_then(Value::as_array_mut) {
        Some(servers) => servers.iter_mut().for_each(&mut narrow),
        None => narrow(&mut v),
    }
    Ok(v.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topology_is_narrowed_to_visible_projects() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let project = |id: Uuid| json!({"project": {"project_id": id, "name": "p"}, "nodes": [], "links": []});
        let one = json!({"server": "default", "projects": [project(a), project(b)]});
        let all = json!({"servers": [one.clone()], "unavailable": []});
        let visible = BTreeSet::from([b]);
        let ids = |v: &Value| -> Vec<String> {
            v["projects"].as_array().unwrap().iter().map(|p| p["project"]["project_id"].to_string()).collect()
        };
        let narrowed = |v: &Value| -> Value {
            serde_json::from_slice(&narrow_topology(v.to_string().as_bytes(), &visible).unwrap()).unwrap()
        };
        assert_eq!(ids(&narrowed(&one)), [format!("\"{b}\"")]);
        let narrowed = narrowed(&all);
        assert_eq!(ids(&narrowed["servers"][0]), [format!("\"{b}\"")]);
        assert!(narrow_topology(b"not json", &visible).is_err());
    }
}

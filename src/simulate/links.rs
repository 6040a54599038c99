//! Link operations of the model, with gns3-server 2.2's checks and their order: the
//! link exists before its ends are checked, so a refused end (unknown node, unknown port,
//! port in use, self-link) answers the error *and* sends a `link.deleted` with no nodes.
//! A link update answers 201 in v2 (see `routes.rs`).

use serde_json::{json, Map, Value};

use super::objects::{self, link_closed_json, link_json};
use super::state::{emit, Link, LinkEnd, Model, Project, Scope, SimError, SimResult};

impl Model {
    /// `GET /projects/{id}/links`: works on a closed project too (then in the file form).
    pub fn list_links(&self, project_id: &str) -> SimResult<Value> {
        let p = self.project(project_id)?;
        Ok(Value::Array(
            p.links.iter().map(|l| if p.opened { link_json(&p.id, l) } else { link_closed_json(l) }).collect(),
        ))
    }

    pub fn get_link(&self, project_id: &str, link_id: &str) -> SimResult<Value> {
        let p = &self.projects[self.opened_index(project_id)?];
        let l = p.links.iter().find(|l| l.id == link_id).ok_or_else(|| SimError::UnknownLink(link_id.to_owned()))?;
        Ok(link_json(&p.id, l))
    }

    /// `POST /projects/{id}/links`. Like gns3, the link exists before its ends are checked:
    /// a refused end gives the error *and* a `link.deleted` (with no nodes).
    pub fn create_link(&mut self, project_id: &str, req: &Map<String, Value>, from_activity: bool) -> SimResult<Value> {
        let i = self.opened_index(project_id)?;
        let Some(ends) = req.get("nodes").and_then(Value::as_array) else {
            return Err(SimError::Internal("Traceback (most recent call last):\nKeyError: 'nodes'\n".into()));
        };
        let link_id = self.new_id();
        let p = &mut self.projects[i];
        let scope = Scope::Project(p.id.clone());
        let mut link = Link {
            id: link_id,
            ends: Vec::new(),
            suspend: req.get("suspend").and_then(Value::as_bool).unwrap_or(false),
            filters: req.get("filters").cloned().unwrap_or_else(|| json!({})),
            link_style: req.get("link_style").cloned().unwrap_or_else(|| json!({})),
            from_activity,
        };
        for end in ends {
            if let Err(e) = check_end(p, &link, end) {
                emit(&mut self.events, &scope, "link.deleted", link_json(&p.id, &link));
                return Err(e);
            }
            let adapter = end.get("adapter_number").and_then(Value::as_u64).unwrap_or(0);
            let port = end.get("port_number").and_then(Value::as_u64).unwrap_or(0);
            let label = end.get("label").cloned().unwrap_or_else(|| objects::link_label(adapter, port));
            let node_id = end.get("node_id").and_then(Value::as_str).unwrap_or_default().to_owned();
            link.ends.push(LinkEnd { node_id, adapter, port, label });
        }
        let json = link_json(&p.id, &link);
        emit(&mut self.events, &scope, "link.created", json.clone());
        p.links.push(link);
        Ok(json)
    }

    /// `PUT /projects/{id}/links/{lid}`: suspend, filters, style, end labels; `link.updated`.
    pub fn update_link(&mut self, project_id: &str, link_id: &str, req: &Map<String, Value>) -> SimResult<Value> {
        let i = self.opened_index(project_id)?;
        let p = &mut self.projects[i];
        let l =
            p.links.iter_mut().find(|l| l.id == link_id).ok_or_else(|| SimError::UnknownLink(link_id.to_owned()))?;
        if let Some(s) = req.get("suspend").and_then(Value::as_bool) {
            l.suspend = s;
        }
        if let Some(f) = req.get("filters") {
            l.filters = f.clone();
        }
        if let Some(s) = req.get("link_style") {
            l.link_style = s.clone();
        }
        for end in req.get("nodes").and_then(Value::as_array).into_iter().flatten() {
            let same = |e: &&mut LinkEnd| {
                end.get("node_id").and_then(Value::as_str) == Some(e.node_id.as_str())
                    && end.get("adapter_number").and_then(Value::as_u64) == Some(e.adapter)
                    && end.get("port_number").and_then(Value::as_u64) == Some(e.port)
            };
            if let (Some(e), Some(label)) = (l.ends.iter_mut().find(same), end.get("label")) {
                e.label = label.clone();
            }
        }
        let json = link_json(&p.id, l);
        emit(&mut self.events, &Scope::Project(p.id.clone()), "link.updated", json.clone());
        Ok(json)
    }

    /// `DELETE /projects/{id}/links/{lid}`: `link.deleted` with the whole link.
    pub fn delete_link(&mut self, project_id: &str, link_id: &str) -> SimResult<()> {
        let i = self.opened_index(project_id)?;
        let p = &mut self.projects[i];
        let at =
            p.links.iter().position(|l| l.id == link_id).ok_or_else(|| SimError::UnknownLink(link_id.to_owned()))?;
        let l = p.links.remove(at);
        emit(&mut self.events, &Scope::Project(p.id.clone()), "link.deleted", link_json(&p.id, &l));
        Ok(())
    }
}

/// gns3's checks for one link end, in its order: node, port, port free, not a self-link.
fn check_end(p: &Project, link: &Link, end: &Value) -> SimResult<()> {
    let node_id = end.get("node_id").and_then(Value::as_str).unwrap_or_default();
    let node = p.node(node_id)?;
    let adapter = end.get("adapter_number").and_then(Value::as_u64);
    let port = end.get("port_number").and_then(Value::as_u64);
    let (adapter, port) = match (adapter, port) {
        (Some(a), Some(0)) if (a as usize) < node.adapters() => (a, 0),
        (a, p) => {
            return Err(SimError::UnknownPort {
                node: node.name.clone(),
                adapter: a.unwrap_or(0),
                port: p.unwrap_or(0),
            })
        }
    };
    if p.port_in_use(node_id, adapter, port) {
        return Err(SimError::Conflict("Port is already used".into()));
    }
    if link.ends.iter().any(|e| e.node_id == node_id) {
        return Err(SimError::Conflict("Cannot connect to itself".into()));
    }
    Ok(())
}

//! Node operations of the model: create, update, delete, and the lifecycle actions with
//! the notification quirks of gns3-server 2.2 qemu nodes (recorded on a real server):
//! suspend sends a stray `started` update before `suspended` (a bulk suspend re-sends the
//! status of the nodes it cannot suspend); stopping a running node sends
//! `stopped` twice; a bulk reload goes `stopped` then `started`; a delete sends `node.deleted`
//! twice, in the controller form and in the flat compute form. The one deliberate
//! difference: start always succeeds (real v2 without ubridge answers 409 while the node runs).

use serde_json::{json, Map, Value};
use std::time::Instant;

use super::objects::{self, node_closed_json, node_compute_json, node_json};
use super::state::{emit, Model, Node, NodeStatus, Scope, SimError, SimResult};

/// Lowest console port for telnet consoles (gns3 hands them out two apart).
const TELNET_CONSOLE_BASE: u16 = 5000;
/// Lowest console port for VNC / SPICE consoles.
const VNC_CONSOLE_BASE: u16 = 5900;
/// The qemu properties a client may set, with the JSON type each must have.
const INTEGER_PROPERTIES: &[&str] = &["adapters", "cpus", "ram", "cpu_throttling"];

/// A node lifecycle action (`POST .../nodes/{id}/{action}` or the bulk form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Suspend,
    Reload,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "start" => Some(Action::Start),
            "stop" => Some(Action::Stop),
            "suspend" => Some(Action::Suspend),
            "reload" => Some(Action::Reload),
            _ => None,
        }
    }
}

impl Model {
    /// `GET /projects/{id}/nodes`: works on a closed project too, in the `.gns3` file form.
    pub fn list_nodes(&self, project_id: &str) -> SimResult<Value> {
        let p = self.project(project_id)?;
        Ok(Value::Array(
            p.nodes.iter().map(|n| if p.opened { node_json(&p.id, n) } else { node_closed_json(n) }).collect(),
        ))
    }

    pub fn get_node(&self, project_id: &str, node_id: &str) -> SimResult<Value> {
        let p = &self.projects[self.opened_index(project_id)?];
        Ok(node_json(&p.id, p.node(node_id)?))
    }

    /// `GET /projects/{id}/nodes/{nid}/links`.
    pub fn node_links(&self, project_id: &str, node_id: &str) -> SimResult<Value> {
        let p = &self.projects[self.opened_index(project_id)?];
        p.node(node_id)?;
        let links = p.links.iter().filter(|l| l.ends.iter().any(|e| e.node_id == node_id));
        Ok(Value::Array(links.map(|l| objects::link_json(&p.id, l)).collect()))
    }

    /// `POST /projects/{id}/nodes` with a schema-checked body: a stopped qemu node.
    pub fn create_node(&mut self, project_id: &str, req: &Map<String, Value>, from_activity: bool) -> SimResult<Value> {
        let i = self.opened_index(project_id)?;
        let compute = req.get("compute_id").and_then(Value::as_str).unwrap_or_default();
        if compute != "local" {
            return Err(SimError::UnknownCompute(compute.to_owned()));
        }
        let node_type = req.get("node_type").and_then(Value::as_str).unwrap_or_default();
        if node_type != "qemu" {
            return Err(SimError::Conflict(format!(
                "Node type {node_type} is not supported by the GNS3 stand-in (qemu only)"
            )));
        }
        let props = req.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        if props.get("qemu_path").is_none() && props.get("platform").is_none() {
            return Err(SimError::Conflict("QEMU binary path qemu-system-None is not found in the path".into()));
        }
        let id = match req.get("node_id").and_then(Value::as_str) {
            Some(id) if self.projects[i].nodes.iter().any(|n| n.id == id) => {
                return Err(SimError::Conflict(format!("Node ID {id} already exists")))
            }
            Some(id) => id.to_owned(),
            None => self.new_id(),
        };
        let mut properties = objects::default_qemu_properties(&objects::base_mac(&id));
        merge_properties(&mut properties, &props)?;
        if props.get("qemu_path").is_none() {
            let platform = props.get("platform").and_then(Value::as_str).unwrap_or("x86_64");
            properties.insert("qemu_path".into(), json!(format!("/usr/bin/qemu-system-{platform}")));
        }
        let nodes = &self.projects[i].nodes;
        let name = allocate_name(
            |n| nodes.iter().any(|o| o.name == n),
            req.get("name").and_then(Value::as_str).unwrap_or("node"),
        );
        let console_type = req.get("console_type").cloned().unwrap_or_else(|| json!("telnet"));
        let console = self.allocate_console(&console_type, req.get("console").and_then(Value::as_u64))?;
        let mut node = Node {
            id,
            label: json!({"rotation": 0, "style": null, "text": name, "x": null, "y": -40}),
            name,
            node_type: "qemu".into(),
            compute_id: "local".into(),
            status: NodeStatus::Stopped,
            console,
            console_type,
            console_auto_start: false,
            command_line: String::new(),
            x: 0,
            y: 0,
            z: 1,
            width: 65,
            height: 59,
            symbol: json!(":/symbols/computer.svg"),
            locked: false,
            first_port_name: Value::Null,
            port_name_format: "Ethernet{0}".into(),
            port_segment_size: 0,
            custom_adapters: json!([]),
            template_id: req.get("template_id").cloned().unwrap_or(Value::Null),
            properties,
            touched: (!from_activity).then(Instant::now),
            from_activity,
        };
        apply_settings(&mut node, req);
        let p = &mut self.projects[i];
        let json = node_json(&p.id, &node);
        emit(&mut self.events, &Scope::Project(p.id.clone()), "node.created", json.clone());
        p.nodes.push(node);
        Ok(json)
    }

    /// `PUT /projects/{id}/nodes/{nid}` with a schema-checked body; `node.updated`.
    pub fn update_node(&mut self, project_id: &str, node_id: &str, req: &Map<String, Value>) -> SimResult<Value> {
        let i = self.opened_index(project_id)?;
        let j = node_index(&self.projects[i].nodes, node_id)?;
        let old = self.projects[i].nodes[j].clone();
        let mut node = old.clone();
        if let Some(props) = req.get("properties").and_then(Value::as_object) {
            merge_properties(&mut node.properties, props)?;
        }
        if let Some(name) = req.get("name").and_then(Value::as_str).filter(|n| *n != old.name) {
            let nodes = &self.projects[i].nodes;
            node.name = allocate_name(|n| nodes.iter().any(|o| o.id != node_id && o.name == n), name);
            if let Some(label) = node.label.as_object_mut() {
                label.insert("text".into(), json!(node.name));
            }
        }
        let console_type = req.get("console_type").cloned().unwrap_or_else(|| old.console_type.clone());
        let wanted = req.get("console").and_then(Value::as_u64);
        if console_type != old.console_type || wanted.is_some_and(|c| Some(c) != old.console.map(u64::from)) {
            if let Some(c) = old.console {
                self.consoles.remove(&c);
            }
            match self.allocate_console(&console_type, wanted) {
                Ok(c) => node.console = c,
                Err(e) => {
                    if let Some(c) = old.console {
                        self.consoles.insert(c);
                    }
                    return Err(e);
                }
            }
        }
        node.console_type = console_type;
        apply_settings(&mut node, req);
        node.touched = Some(Instant::now());
        let p = &mut self.projects[i];
        let json = node_json(&p.id, &node);
        p.nodes[j] = node;
        emit(&mut self.events, &Scope::Project(p.id.clone()), "node.updated", json.clone());
        Ok(json)
    }

    /// `DELETE /projects/{id}/nodes/{nid}`: its links go first (`link.deleted`), then the
    /// two `node.deleted` (controller form with the last status, compute form `stopped`).
    pub fn delete_node(&mut self, project_id: &str, node_id: &str) -> SimResult<()> {
        let i = self.opened_index(project_id)?;
        let j = node_index(&self.projects[i].nodes, node_id)?;
        let p = &mut self.projects[i];
        let scope = Scope::Project(p.id.clone());
        let (gone, kept): (Vec<_>, Vec<_>) =
            p.links.drain(..).partition(|l| l.ends.iter().any(|e| e.node_id == node_id));
        p.links = kept;
        for l in &gone {
            emit(&mut self.events, &scope, "link.deleted", objects::link_json(&p.id, l));
        }
        let node = p.nodes.remove(j);
        emit(&mut self.events, &scope, "node.deleted", node_json(&p.id, &node));
        emit(&mut self.events, &scope, "node.deleted", node_compute_json(&p.id, &node));
        if let Some(c) = node.console {
            self.consoles.remove(&c);
        }
        Ok(())
    }

    /// `POST /projects/{id}/nodes/{nid}/{action}`: the node after the action.
    pub fn node_action(&mut self, project_id: &str, node_id: &str, action: Action) -> SimResult<Value> {
        let i = self.opened_index(project_id)?;
        let j = node_index(&self.projects[i].nodes, node_id)?;
        self.apply_action(i, j, action, false);
        let p = &mut self.projects[i];
        p.nodes[j].touched = Some(Instant::now());
        Ok(node_json(&p.id, &p.nodes[j]))
    }

    /// `POST /projects/{id}/nodes/{action}`: the action on every node (bulk form).
    pub fn bulk_action(&mut self, project_id: &str, action: Action) -> SimResult<()> {
        let i = self.opened_index(project_id)?;
        for j in 0..self.projects[i].nodes.len() {
            self.apply_action(i, j, action, true);
            self.projects[i].nodes[j].touched = Some(Instant::now());
        }
        Ok(())
    }

    /// Stops every node of project `i` (closing and deleting a project do this).
    pub(super) fn stop_all(&mut self, i: usize) {
        for j in 0..self.projects[i].nodes.len() {
            self.apply_action(i, j, Action::Stop, true);
        }
    }

    /// Changes one node's status and records the updates gns3 sends for it.
    pub(super) fn apply_action(&mut self, i: usize, j: usize, action: Action, bulk: bool) {
        use NodeStatus::*;
        let p = &mut self.projects[i];
        let scope = Scope::Project(p.id.clone());
        let n = &mut p.nodes[j];
        let before = n.status;
        let steps: &[NodeStatus] = match (action, before) {
            (Action::Start, _) => &[Started],
            (Action::Stop, Started) => &[Stopped, Stopped],
            (Action::Stop, _) => &[Stopped],
            (Action::Suspend, Started) => &[Started, Suspended],
            // A bulk suspend re-sends the status of nodes it cannot suspend.
            (Action::Suspend, Stopped) if bulk => &[Stopped],
            (Action::Suspend, Suspended) if bulk => &[Suspended],
            (Action::Suspend, _) => &[],
            (Action::Reload, Stopped) if bulk => &[Started],
            (Action::Reload, _) if bulk => &[Stopped, Started],
            (Action::Reload, _) => &[],
        };
        for &status in steps {
            n.status = status;
            if status == Started && n.command_line.is_empty() {
                n.command_line = objects::command_line(n);
            }
            emit(&mut self.events, &scope, "node.updated", node_json(&p.id, n));
        }
    }

    /// A console port for a new console of `console_type` (`wanted` if free).
    fn allocate_console(&mut self, console_type: &Value, wanted: Option<u64>) -> SimResult<Option<u16>> {
        let kind = console_type.as_str().unwrap_or("none");
        if kind == "none" {
            return Ok(None);
        }
        if let Some(w) = wanted {
            let port = u16::try_from(w).map_err(|_| SimError::Conflict(format!("Console port {w} is not valid")))?;
            if !self.consoles.insert(port) {
                return Err(SimError::Conflict(format!("Console port {port} is already used")));
            }
            return Ok(Some(port));
        }
        let (base, step) = if matches!(kind, "vnc" | "spice" | "spice+agent") {
            (VNC_CONSOLE_BASE, 1)
        } else {
            (TELNET_CONSOLE_BASE, 2)
        };
        let port = (base..=u16::MAX - 1).step_by(step).find(|p| !self.consoles.contains(p));
        let port = port.ok_or_else(|| SimError::Conflict("No console port left".into()))?;
        self.consoles.insert(port);
        Ok(Some(port))
    }
}

fn node_index(nodes: &[Node], node_id: &str) -> SimResult<usize> {
    nodes.iter().position(|n| n.id == node_id).ok_or_else(|| SimError::UnknownNode(node_id.to_owned()))
}

/// Copies the known qemu properties of `req`; the integer ones must be integers in range.
fn merge_properties(props: &mut Map<String, Value>, req: &Map<String, Value>) -> SimResult<()> {
    for (k, v) in req {
        if !props.contains_key(k) {
            continue;
        }
        if INTEGER_PROPERTIES.contains(&k.as_str()) {
            let max = if k == "adapters" { 275 } else { i64::from(u32::MAX) };
            if !v.as_i64().is_some_and(|x| (0..=max).contains(&x)) {
                return Err(SimError::Conflict(format!("Invalid value for qemu property {k}: {v}")));
            }
        }
        props.insert(k.clone(), v.clone());
    }
    Ok(())
}

/// The node settings a client may change (schema-checked before).
fn apply_settings(n: &mut Node, req: &Map<String, Value>) {
    let int = |k: &str| req.get(k).and_then(Value::as_i64);
    n.x = int("x").unwrap_or(n.x);
    n.y = int("y").unwrap_or(n.y);
    n.z = int("z").unwrap_or(n.z);
    n.port_segment_size = int("port_segment_size").unwrap_or(n.port_segment_size);
    if let Some(b) = req.get("locked").and_then(Value::as_bool) {
        n.locked = b;
    }
    if let Some(b) = req.get("console_auto_start").and_then(Value::as_bool) {
        n.console_auto_start = b;
    }
    if let Some(s) = req.get("symbol").filter(|s| s.is_string()) {
        n.symbol = s.clone();
    }
    if let Some(f) = req.get("port_name_format").and_then(Value::as_str) {
        n.port_name_format = f.to_owned();
    }
    if let Some(f) = req.get("first_port_name") {
        n.first_port_name = f.clone();
    }
    if let Some(c) = req.get("custom_adapters") {
        n.custom_adapters = c.clone();
    }
    if let (Some(label), Some(new)) = (n.label.as_object_mut(), req.get("label").and_then(Value::as_object)) {
        for (k, v) in new {
            label.insert(k.clone(), v.clone());
        }
    }
}

/// gns3's node naming: spaces dropped; a taken name gets a number (`A` -> `A1`, `R2` -> `R3`);
/// `{0}` / `{id}` in the name are replaced by the first free number.
pub(super) fn allocate_name(taken: impl Fn(&str) -> bool, wanted: &str) -> String {
    let mut base: String = wanted.chars().filter(|c| *c != ' ').collect();
    if taken(&base) {
        let trimmed = base.trim_end_matches(|c: char| c.is_ascii_digit());
        if trimmed.len() != base.len() {
            base = format!("{trimmed}{{0}}");
        }
    }
    if base.contains("{0}") || base.contains("{id}") {
        for i in 1..1_000_000u32 {
            let name = base.replace("{0}", &i.to_string()).replace("{id}", &i.to_string());
            if !taken(&name) {
                return name;
            }
        }
    } else if !taken(&base) {
        return base;
    }
    (1..1_000_000u32).map(|i| format!("{base}{i}")).find(|n| !taken(n)).unwrap_or(base)
}

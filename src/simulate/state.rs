//! The stand-in's model: projects with their nodes and links, as plain data with no I/O, so
//! it is unit-tested without a server. Every change records the notifications real
//! gns3-server 2.2 would send for it (controller stream: `project.*`; project stream:
//! `node.*`, `link.*`) in an outbox that the caller drains with `take_events` and publishes.
//! Ids come from the model's own RNG, so a seeded stand-in builds the same world every time.
//! Node operations live in `nodes.rs`, link operations in `links.rs`, the JSON shapes in
//! `objects.rs`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Instant;

use super::objects::{self, default_project_settings, link_json, project_json};

/// What a request can fail with; `status()` is the HTTP code real gns3-server 2.2 uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("Project ID {0} doesn't exist")]
    UnknownProject(String),
    #[error("Node ID {0} doesn't exist")]
    UnknownNode(String),
    #[error("Link ID {0} doesn't exist")]
    UnknownLink(String),
    #[error("Compute ID {0} doesn't exist")]
    UnknownCompute(String),
    #[error("Port {adapter}/{port} for {node} not found")]
    UnknownPort { node: String, adapter: u64, port: u64 },
    #[error("The project is not opened")]
    NotOpened,
    #[error("Project \"{0}\" already exists")]
    DuplicateProject(String),
    /// Any other controller refusal (409), with gns3's message.
    #[error("{0}")]
    Conflict(String),
    /// What real gns3 answers with a 500 and a traceback.
    #[error("{0}")]
    Internal(String),
}

impl SimError {
    pub fn status(&self) -> u16 {
        match self {
            SimError::UnknownProject(_)
            | SimError::UnknownNode(_)
            | SimError::UnknownLink(_)
            | SimError::UnknownCompute(_)
            | SimError::UnknownPort { .. } => 404,
            SimError::NotOpened => 403,
            SimError::DuplicateProject(_) | SimError::Conflict(_) => 409,
            SimError::Internal(_) => 500,
        }
    }
}

pub type SimResult<T> = Result<T, SimError>;

/// Which notification stream an event goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Controller,
    Project(String),
}

/// One notification: `{"action": action, "event": event}` on the streams of `scope`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub scope: Scope,
    pub action: &'static str,
    pub event: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Stopped,
    Started,
    Suspended,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Stopped => "stopped",
            NodeStatus::Started => "started",
            NodeStatus::Suspended => "suspended",
        }
    }
}

/// A qemu node (the only node type the stand-in runs).
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub node_type: String,
    pub compute_id: String,
    pub status: NodeStatus,
    pub console: Option<u16>,
    pub console_type: Value,
    pub console_auto_start: bool,
    pub command_line: String,
    pub x: i64,
    pub y: i64,
    pub z: i64,
    pub width: i64,
    pub height: i64,
    pub symbol: Value,
    pub label: Value,
    pub locked: bool,
    pub first_port_name: Value,
    pub port_name_format: String,
    pub port_segment_size: i64,
    pub custom_adapters: Value,
    pub template_id: Value,
    pub properties: Map<String, Value>,
    /// Set by REST changes; the activity generator leaves recently touched nodes alone.
    pub touched: Option<Instant>,
    /// Created by the activity generator (only those are deleted by it).
    pub from_activity: bool,
}

impl Node {
    /// Number of adapters (= ports: one port per qemu adapter).
    pub fn adapters(&self) -> usize {
        self.properties.get("adapters").and_then(Value::as_u64).map_or(1, |a| a.min(275) as usize)
    }
}

#[derive(Debug, Clone)]
pub struct LinkEnd {
    pub node_id: String,
    pub adapter: u64,
    pub port: u64,
    pub label: Value,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub id: String,
    pub ends: Vec<LinkEnd>,
    pub suspend: bool,
    pub filters: Value,
    pub link_style: Value,
    pub from_activity: bool,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub filename: String,
    pub opened: bool,
    /// The 14 client-settable keys (auto_close, zoom, supplier...).
    pub settings: Map<String, Value>,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
}

impl Project {
    pub fn auto_close(&self) -> bool {
        self.settings.get("auto_close").and_then(Value::as_bool).unwrap_or(true)
    }
    pub fn node(&self, node_id: &str) -> SimResult<&Node> {
        self.nodes.iter().find(|n| n.id == node_id).ok_or_else(|| SimError::UnknownNode(node_id.to_owned()))
    }
    /// Whether a complete link holds the port (like gns3, a link with fewer than two ends,
    /// which the v2 API allows, holds no port).
    pub fn port_in_use(&self, node_id: &str, adapter: u64, port: u64) -> bool {
        self.links
            .iter()
            .filter(|l| l.ends.len() >= 2)
            .flat_map(|l| &l.ends)
            .any(|e| e.node_id == node_id && e.adapter == adapter && e.port == port)
    }
}

pub(super) fn emit(events: &mut Vec<Event>, scope: &Scope, action: &'static str, event: Value) {
    events.push(Event { scope: scope.clone(), action, event });
}

pub struct Model {
    pub projects: Vec<Project>,
    pub(super) events: Vec<Event>,
    pub(super) rng: StdRng,
    pub(super) consoles: BTreeSet<u16>,
}

impl Model {
    /// An empty model; with a seed, ids and random choices repeat from run to run.
    pub fn new(seed: Option<u64>) -> Model {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Model { projects: Vec::new(), events: Vec::new(), rng, consoles: BTreeSet::new() }
    }

    /// The notifications recorded since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// A v4 UUID drawn from the model's RNG.
    pub fn new_id(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid().to_string()
    }

    pub(super) fn index(&self, project_id: &str) -> SimResult<usize> {
        self.projects
            .iter()
            .position(|p| p.id == project_id)
            .ok_or_else(|| SimError::UnknownProject(project_id.to_owned()))
    }

    pub(super) fn opened_index(&self, project_id: &str) -> SimResult<usize> {
        let i = self.index(project_id)?;
        if self.projects[i].opened {
            Ok(i)
        } else {
            Err(SimError::NotOpened)
        }
    }

    pub fn project(&self, project_id: &str) -> SimResult<&Project> {
        self.index(project_id).map(|i| &self.projects[i])
    }

    pub fn list_projects(&self) -> Value {
        Value::Array(self.projects.iter().map(project_json).collect())
    }

    pub fn get_project(&self, project_id: &str) -> SimResult<Value> {
        self.project(project_id).map(project_json)
    }

    /// `POST /projects` with a schema-checked body.
    pub fn create_project(&mut self, req: &Map<String, Value>) -> SimResult<Value> {
        let name = req.get("name").and_then(Value::as_str).unwrap_or("untitled").to_owned();
        let wanted_id = req.get("project_id").and_then(Value::as_str).map(str::to_owned);
        if let Some(existing) = wanted_id.as_deref().and_then(|id| self.project(id).ok()) {
            return Ok(project_json(existing));
        }
        if self.projects.iter().any(|p| p.name == name) {
            return Err(SimError::DuplicateProject(name));
        }
        let id = wanted_id.unwrap_or_else(|| self.new_id());
        let mut settings = default_project_settings();
        merge_settings(&mut settings, req);
        let filename = format!("{name}.gns3");
        let project = Project { id, name, filename, opened: true, settings, nodes: Vec::new(), links: Vec::new() };
        let json = project_json(&project);
        emit(&mut self.events, &Scope::Controller, "project.created", json.clone());
        self.projects.push(project);
        Ok(json)
    }

    /// `PUT /projects/{id}`: the settable keys and the name; `project.updated`.
    pub fn update_project(&mut self, project_id: &str, req: &Map<String, Value>) -> SimResult<Value> {
        let i = self.index(project_id)?;
        let p = &mut self.projects[i];
        if let Some(name) = req.get("name").and_then(Value::as_str) {
            p.name = name.to_owned();
        }
        merge_settings(&mut p.settings, req);
        let json = project_json(p);
        emit(&mut self.events, &Scope::Controller, "project.updated", json.clone());
        Ok(json)
    }

    /// `POST /projects/{id}/open`: reloading a closed project announces every node and link
    /// again (`node.created`, `link.created`), then `project.opened`. Already open: no events.
    pub fn open_project(&mut self, project_id: &str) -> SimResult<Value> {
        let i = self.index(project_id)?;
        let p = &mut self.projects[i];
        if !p.opened {
            p.opened = true;
            let scope = Scope::Project(p.id.clone());
            for n in &p.nodes {
                emit(&mut self.events, &scope, "node.created", objects::node_json(&p.id, n));
            }
            for l in &p.links {
                emit(&mut self.events, &scope, "link.created", link_json(&p.id, l));
            }
            emit(&mut self.events, &Scope::Controller, "project.opened", project_json(p));
        }
        Ok(project_json(&self.projects[i]))
    }

    /// `POST /projects/{id}/close`: every node is stopped (with its `stopped` updates), then
    /// `project.closed`. Closing a closed project does nothing.
    pub fn close_project(&mut self, project_id: &str) -> SimResult<()> {
        let i = self.index(project_id)?;
        if !self.projects[i].opened {
            return Ok(());
        }
        self.stop_all(i);
        let p = &mut self.projects[i];
        for n in &mut p.nodes {
            n.command_line.clear();
        }
        p.opened = false;
        emit(&mut self.events, &Scope::Controller, "project.closed", project_json(p));
        Ok(())
    }

    /// `DELETE /projects/{id}`: like gns3, a closed project is opened first; then closed
    /// (`project.closed`) and `project.deleted`. Its consoles are released.
    pub fn delete_project(&mut self, project_id: &str) -> SimResult<()> {
        self.open_project(project_id)?;
        self.close_project(project_id)?;
        let i = self.index(project_id)?;
        let p = self.projects.remove(i);
        for n in &p.nodes {
            if let Some(c) = n.console {
                self.consoles.remove(&c);
            }
        }
        emit(&mut self.events, &Scope::Controller, "project.deleted", project_json(&p));
        Ok(())
    }
}

/// Copies the client-settable project keys present in `req` (already schema-checked).
fn merge_settings(settings: &mut Map<String, Value>, req: &Map<String, Value>) {
    for (k, v) in req {
        if settings.contains_key(k) {
            settings.insert(k.clone(), v.clone());
        }
    }
}

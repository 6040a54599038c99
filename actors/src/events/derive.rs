//! Event derivation: GNS3 notification frames and topology snapshots in, typed events out.
//! A plain struct (no actix) owned by one server's connector, which feeds it every frame of
//! the controller stream and of each open project's stream (`on_frame`), every snapshot read
//! after a gap (`resync`), and calls `flush_topology` at `next_flush()`.
//!
//! GNS3 never says "node.started": it sends the whole node again, often more than once.
//! The deriver keeps the last known object of every project, node and link of the server and
//! reports differences only (rules below; API-NOTES.md sections 4 and 6 for the quirks):
//!
//! - `node.created|updated` of a known node: a new status gives one `node.started|stopped|
//!   suspended` (a content change in the same frame rides in its data); otherwise a content
//!   change gives `node.updated`; an identical object (the stray `started` during suspend,
//!   the doubled `stopped`, bulk repeats, the `node.created` GNS3 sends for every node when a
//!   project is reopened) gives nothing. Content = the keys both objects carry, without
//!   `status` and `command_line` (`state.rs`). An unknown node gives `node.created`, except
//!   that an update of a node deleted less than `TOMBSTONE_TTL` ago gives nothing.
//! - `node.deleted` comes twice, in a controller form and a compute form, in either order:
//!   the first gives `node.deleted` (data: the controller form when that came first, else the
//!   last known object), the other is swallowed by node id for `TOMBSTONE_TTL`. Deleting a
//!   running node gives no `stopped` first: only `node.deleted`.
//! - `link.created|updated|deleted` alike, identical repeats swallowed.
//! - `project.created|updated|opened|closed|deleted` (controller stream): open of an open
//!   project, close of a closed one, identical repeats give nothing. Closing a project
//!   stops its nodes: any node still known as running gets a `node.stopped` after the
//!   `project.closed` (GNS3 normally sends those stops itself first, then nothing extra
//!   comes out). A deleted project takes its nodes and links along without their own
//!   `*.deleted` events (GNS3 sends none either).
//! - Node or link frames of a project the deriver does not know create a placeholder (open)
//!   project so they are not lost; frames of a project deleted less than `TOMBSTONE_TTL` ago
//!   are dropped (its project stream keeps running after the delete).
//! - `ping`, `compute.*`, `drawing.*`, `log.*`, `template.*`: nothing. `snapshot.restored`:
//!   nothing either (the restore's own node and project events describe it), but it sets a
//!   resync hint (`take_resync_hint`) for the connector, because a v3 restore renumbers every
//!   node and a snapshot read is the cheap way to be sure.
//! - Structural changes (node/link created/deleted, project created/deleted/opened/closed)
//!   mark a burst; `flush_topology` gives ONE `topology.changed` once `topology_burst` has
//!   passed since the last change of the burst, at the latest `MAX_BURST_FACTOR` windows
//!   after its first (so a steady trickle cannot postpone it forever). Its data lists the projects
//!   touched and the number of changes; `project_id` is set when there was one project.
//! - `resync` (rules in `derive/resync.rs`) appends its own `topology.changed` when it found
//!   a structural difference; that one also covers a burst still pending.
//! - Malformed frames (not an object, no action, no event object, missing or bad ids) give
//!   nothing and a debug log; nothing here panics on input.

mod frames;
mod resync;
mod state;
#[cfg(test)]
mod tests;

use super::{Event, EventKind, NewEvent, Source};
use crate::gns3::types::ServerTopology;
use serde_json::Value;
use state::{uuid_field, Known, KnownProject, Obj};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tracing::debug;
use uuid::Uuid;

/// How long a deleted node, link or project id is remembered (to swallow GNS3's second
/// `node.deleted` and late frames of a deleted project). The two deletes arrive within
/// milliseconds of each other in every recording.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(60);

/// A burst of structural changes is flushed at the latest this many `topology_burst`
/// windows after its first change.
pub const MAX_BURST_FACTOR: u32 = 5;

/// Which notification stream a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamId {
    Controller,
    Project(Uuid),
}

#[derive(Debug, Clone, Copy)]
struct Tombstone {
    expires: Instant,
    /// For nodes: whether the delete already reported came in the controller form.
    controller_form: bool,
    /// Both forms of a node delete seen: further deletes of an unknown node are repeats.
    complete: bool,
}

#[derive(Debug, Clone)]
struct Burst {
    first: Instant,
    last: Instant,
    projects: BTreeSet<Uuid>,
    changes: usize,
}

/// Turns one GNS3 server's frames and snapshots into typed events (see the module doc).
#[derive(Debug)]
pub struct Deriver {
    server: String,
    topology_burst: Duration,
    known: Known,
    dead_nodes: HashMap<Uuid, Tombstone>,
    dead_links: HashMap<Uuid, Tombstone>,
    dead_projects: HashMap<Uuid, Tombstone>,
    burst: Option<Burst>,
    resync_hint: bool,
}

impl Deriver {
    pub fn new(server: &str, topology_burst: Duration) -> Self {
        Deriver {
            server: server.to_owned(),
            topology_burst,
            known: Known::default(),
            dead_nodes: HashMap::new(),
            dead_links: HashMap::new(),
            dead_projects: HashMap::new(),
            burst: None,
            resync_hint: false,
        }
    }

    /// Sets the known state from a snapshot without emitting anything (start-up).
    pub fn seed(&mut self, topology: &ServerTopology) {
        self.known = Known::from_topology(topology);
    }

    /// One notification frame `{"action","event"}` from a stream -> typed events (Source::Gns3).
    pub fn on_frame(&mut self, stream: StreamId, frame: &Value, now: Instant) -> Vec<NewEvent> {
        self.prune(now);
        let Some(action) = frame.get("action").and_then(Value::as_str) else {
            debug!(server = %self.server, "Ignored a GNS3 frame without an action.");
            return Vec::new();
        };
        let event = match frame.get("event") {
            Some(Value::Object(event)) => event,
            _ => {
                debug!(server = %self.server, action, "Ignored a GNS3 frame without an event object.");
                return Vec::new();
            }
        };
        let stream_project = match stream {
            StreamId::Project(id) => Some(id),
            StreamId::Controller => None,
        };
        let mut out = Vec::new();
        let handled = match action {
            "node.created" | "node.updated" => {
                self.node_upsert(action == "node.created", event, stream_project, now, &mut out)
            }
            "node.deleted" => self.node_deleted(event, stream_project, now, &mut out),
            "link.created" | "link.updated" => {
                self.link_upsert(action == "link.created", event, stream_project, now, &mut out)
            }
            "link.deleted" => self.link_deleted(event, stream_project, now, &mut out),
            "project.created" | "project.updated" | "project.opened" | "project.closed" => {
                self.project_upsert(action, event, now, &mut out)
            }
            "project.deleted" => self.project_deleted(event, now, &mut out),
            "snapshot.restored" => {
                self.resync_hint = true;
                Some(())
            }
            a if a == "ping" || ["compute.", "drawing.", "log.", "template."].iter().any(|p| a.starts_with(p)) => {
                Some(())
            }
            other => {
                debug!(server = %self.server, action = other, "Ignored an unknown GNS3 action.");
                Some(())
            }
        };
        if handled.is_none() {
            debug!(server = %self.server, action, "Ignored a GNS3 frame with missing or malformed ids.");
        }
        out
    }

    /// A fresh snapshot read after a gap (stream reconnect, GNS3 restart) or by polling:
    /// one event for every difference from the known state (Source::Resync), then the
    /// snapshot becomes the known state. Rules and order in `derive/resync.rs`.
    pub fn resync(&mut self, topology: &ServerTopology, now: Instant) -> Vec<NewEvent> {
        self.prune(now);
        let fresh = Known::from_topology(topology);
        let (mut events, known, touched) = resync::diff(&self.server, &self.known, fresh);
        self.known = known;
        if !touched.is_empty() {
            // One topology.changed at the end; it also covers a burst still pending, whose
            // changes all happened before this snapshot was read.
            let mut projects = touched.projects;
            let mut changes = touched.changes;
            if let Some(b) = self.burst.take() {
                projects.extend(b.projects);
                changes += b.changes;
            }
            events.push(self.topology_event(Source::Resync, projects, changes));
        }
        events
    }

    /// `topology.changed` once per burst of structural changes, when `topology_burst` has passed since the last one.
    pub fn flush_topology(&mut self, now: Instant) -> Option<NewEvent> {
        let due = self.next_flush()?;
        if now < due {
            return None;
        }
        let b = self.burst.take()?;
        Some(self.topology_event(Source::Gns3, b.projects, b.changes))
    }

    pub fn next_flush(&self) -> Option<Instant> {
        self.burst
            .as_ref()
            .map(|b| (b.last + self.topology_burst).min(b.first + self.topology_burst * MAX_BURST_FACTOR))
    }

    /// Projects known to be open (the connector follows their project streams).
    pub fn open_projects(&self) -> Vec<Uuid> {
        self.known.projects.iter().filter(|(_, p)| p.opened).map(|(id, _)| *id).collect()
    }

    /// True once after a frame suggested that the known state may be off (a
    /// `snapshot.restored`): the connector should read a snapshot and `resync`.
    pub fn take_resync_hint(&mut self) -> bool {
        std::mem::take(&mut self.resync_hint)
    }

    // ------------------------------------------------------------------ helpers

    fn event(
        &self,
        kind: EventKind,
        source: Source,
        project: Option<Uuid>,
        node: Option<Uuid>,
        data: &Obj,
    ) -> NewEvent {
        NewEvent::new(kind, &self.server, source, Value::Object(data.clone())).project(project).node(node)
    }

    fn topology_event(&self, source: Source, projects: BTreeSet<Uuid>, changes: usize) -> NewEvent {
        let single = if projects.len() == 1 { projects.first().copied() } else { None };
        let data = serde_json::json!({
            "projects": projects.iter().map(Uuid::to_string).collect::<Vec<_>>(),
            "changes": changes,
        });
        NewEvent::new(EventKind::TopologyChanged, &self.server, source, data).project(single)
    }

    fn structural(&mut self, project: Uuid, now: Instant) {
        let b =
            self.burst.get_or_insert_with(|| Burst { first: now, last: now, projects: BTreeSet::new(), changes: 0 });
        b.last = now;
        b.projects.insert(project);
        b.changes += 1;
    }

    fn prune(&mut self, now: Instant) {
        for map in [&mut self.dead_nodes, &mut self.dead_links, &mut self.dead_projects] {
            map.retain(|_, t| t.expires > now);
        }
    }

    fn tombstone(&self, now: Instant, controller_form: bool) -> Tombstone {
        Tombstone { expires: now + TOMBSTONE_TTL, controller_form, complete: false }
    }

    /// The project a node or link frame belongs to: `None` when the frame has no usable
    /// project id (malformed), `Some(None)` when its project was just deleted.
    fn frame_project(&self, event: &Obj, stream_project: Option<Uuid>) -> Option<Option<Uuid>> {
        let id = uuid_field(event, "project_id").or(stream_project)?;
        if self.dead_projects.contains_key(&id) && !self.known.projects.contains_key(&id) {
            debug!(server = %self.server, project_id = %id, "Ignored a frame of a deleted project.");
            return Some(None);
        }
        Some(Some(id))
    }

    /// Updates the known state from an event another instance derived (this one does not
    /// ingest the server; see `cluster/`), so that taking over later resyncs from what
    /// subscribers last saw: only the changes they missed become events. Emits nothing.
    pub fn observe(&mut self, e: &Event) {
        use EventKind::*;
        let (Some(kind), Some(obj)) = (EventKind::parse(&e.kind), e.data.as_object()) else { return };
        let Some(project) = e.project_id.or_else(|| uuid_field(obj, "project_id")) else { return };
        match kind {
            NodeCreated | NodeUpdated | NodeStarted | NodeStopped | NodeSuspended => {
                let Some(id) = e.node_id.or_else(|| uuid_field(obj, "node_id")) else { return };
                let kp = self.project_mut(project);
                let next = match kp.nodes.get(&id) {
                    Some(old) => state::merged(old, obj),
                    None => obj.clone(),
                };
                kp.nodes.insert(id, next);
            }
            NodeDeleted => {
                if let (Some(id), Some(kp)) =
                    (e.node_id.or_else(|| uuid_field(obj, "node_id")), self.known.projects.get_mut(&project))
                {
                    kp.nodes.remove(&id);
                }
            }
            LinkCreated | LinkUpdated => {
                let Some(id) = uuid_field(obj, "link_id") else { return };
                let kp = self.project_mut(project);
                let next = match kp.links.get(&id) {
                    Some(old) => state::merged(old, obj),
                    None => obj.clone(),
                };
                kp.links.insert(id, next);
            }
            LinkDeleted => {
                if let (Some(id), Some(kp)) = (uuid_field(obj, "link_id"), self.known.projects.get_mut(&project)) {
                    kp.links.remove(&id);
                }
            }
            ProjectCreated | ProjectUpdated | ProjectOpened | ProjectClosed => {
                let kp = self.project_mut(project);
                kp.obj = state::merged(&kp.obj, obj);
                let opened = match kind {
                    ProjectOpened => Some(true),
                    ProjectClosed => Some(false),
                    _ => obj.get("status").and_then(Value::as_str).map(|s| s == "opened"),
                };
                if let Some(opened) = opened {
                    if kp.opened && !opened {
                        kp.mark_nodes_stopped();
                    }
                    kp.opened = opened;
                }
            }
            ProjectDeleted => {
                self.known.projects.remove(&project);
            }
            _ => {}
        }
    }

    fn project_mut(&mut self, id: Uuid) -> &mut KnownProject {
        self.known.projects.entry(id).or_insert_with(|| KnownProject::placeholder(id))
    }
}

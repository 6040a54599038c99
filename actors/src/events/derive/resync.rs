//! Resync: the differences between the known state and a fresh snapshot, as events with
//! `Source::Resync`. Used after every gap in the streams (reconnect, GNS3 restart) and by
//! polling, so it has to describe what a restart does: every project closed and, through
//! the rule "a closed project's nodes are stopped", every running node stopped.
//!
//! Rules:
//! - Order: all project events (by project id), then all node events (by project id, node
//!   id), then all link events (by project id, link id); `Deriver::resync` appends one
//!   `topology.changed` when anything structural changed.
//! - Projects: new -> `project.created`; gone -> `project.deleted` (its nodes and links go
//!   with it, without events of their own, as on the stream); open state changed ->
//!   `project.opened|closed`; other content changed -> `project.updated` (both can come).
//! - Nodes of a known or new project: new -> `node.created`; gone -> `node.deleted`;
//!   status changed -> `node.started|stopped|suspended`; content changed -> `node.updated`
//!   (after the status event when both changed). A closed project's nodes are stopped
//!   whatever GNS3 lists, and their other changes ARE reported: content is compared on the
//!   keys both forms carry (`state.rs`), so the reduced form of a closed project's node is
//!   no change, while a real edit (renamed, moved) still is one.
//! - Links: new / gone / content changed -> `link.created|deleted|updated`.
//! - The snapshot becomes the known state, each object overlaid on what was known of it,
//!   so the full form learnt while the project was open (ports...) survives a reduced
//!   listing; nodes of closed projects are stored with `status: "stopped"`. Event data is
//!   that stored object.

use super::state::{merged, same_content, status_kind, Known, Obj, LINK_IGNORED, NODE_IGNORED, PROJECT_IGNORED};
use crate::events::{EventKind, NewEvent, Source};
use serde_json::Value;
use std::collections::BTreeSet;
use uuid::Uuid;

/// What a resync changed structurally (feeds its `topology.changed`).
#[derive(Debug, Default)]
pub(super) struct Touched {
    pub projects: BTreeSet<Uuid>,
    pub changes: usize,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        self.changes == 0
    }

    fn add(&mut self, project: Uuid) {
        self.projects.insert(project);
        self.changes += 1;
    }
}

struct Out<'a> {
    server: &'a str,
    events: Vec<NewEvent>,
    touched: Touched,
}

impl Out<'_> {
    fn push(&mut self, kind: EventKind, project: Uuid, node: Option<Uuid>, data: &Obj) {
        self.events.push(
            NewEvent::new(kind, self.server, Source::Resync, Value::Object(data.clone()))
                .project(Some(project))
                .node(node),
        );
        if matches!(
            kind,
            EventKind::ProjectCreated
                | EventKind::ProjectDeleted
                | EventKind::ProjectOpened
                | EventKind::ProjectClosed
                | EventKind::NodeCreated
                | EventKind::NodeDeleted
                | EventKind::LinkCreated
                | EventKind::LinkDeleted
        ) {
            self.touched.add(project);
        }
    }
}

/// Events for every difference from `old` to `fresh`, and the state to keep.
pub(super) fn diff(server: &str, old: &Known, mut fresh: Known) -> (Vec<NewEvent>, Known, Touched) {
    let mut out = Out { server, events: Vec::new(), touched: Touched::default() };

    // Projects.
    for (pid, gone) in old.projects.iter().filter(|(id, _)| !fresh.projects.contains_key(id)) {
        out.push(EventKind::ProjectDeleted, *pid, None, &gone.obj);
    }
    for (pid, new) in fresh.projects.iter_mut() {
        let Some(was) = old.projects.get(pid) else {
            out.push(EventKind::ProjectCreated, *pid, None, &new.obj);
            continue;
        };
        let changed = !same_content(&was.obj, &new.obj, PROJECT_IGNORED);
        new.obj = merged(&was.obj, &new.obj);
        match (was.opened, new.opened) {
            (false, true) => out.push(EventKind::ProjectOpened, *pid, None, &new.obj),
            (true, false) => out.push(EventKind::ProjectClosed, *pid, None, &new.obj),
            _ => {}
        }
        if changed {
            out.push(EventKind::ProjectUpdated, *pid, None, &new.obj);
        }
    }
    // Deleted and remaining projects in one id order (stable: opened/closed before updated).
    out.events.sort_by_key(|e| e.project_id);

    // Nodes, then links, of every project still there.
    let mut node_events = Vec::new();
    let mut link_events = Vec::new();
    for (pid, new) in fresh.projects.iter_mut() {
        let empty = Default::default();
        let was = old.projects.get(pid).unwrap_or(&empty);
        let mut nodes = Out { server, events: Vec::new(), touched: Touched::default() };
        for (nid, gone) in was.nodes.iter().filter(|(id, _)| !new.nodes.contains_key(id)) {
            nodes.push(EventKind::NodeDeleted, *pid, Some(*nid), gone);
        }
        let opened = new.opened;
        for (nid, node) in new.nodes.iter_mut() {
            let Some(before) = was.nodes.get(nid) else {
                nodes.push(EventKind::NodeCreated, *pid, Some(*nid), node);
                // Created and started (or suspended) while nobody looked: both happened.
                if let Some(kind) = super::frames::first_seen_status(false, node).filter(|_| opened) {
                    nodes.push(kind, *pid, Some(*nid), node);
                }
                continue;
            };
            let old_status = was.node_status(before).to_owned();
            let changed = !same_content(before, node, NODE_IGNORED);
            *node = merged(before, node);
            if !opened {
                node.insert("status".into(), Value::String("stopped".into()));
            }
            let new_status = node.get("status").and_then(Value::as_str).unwrap_or("stopped");
            if new_status != old_status {
                let kind = status_kind(new_status);
                nodes.push(kind, *pid, Some(*nid), node);
            }
            if changed {
                nodes.push(EventKind::NodeUpdated, *pid, Some(*nid), node);
            }
        }
        // Deleted and remaining nodes in one id order (stable: status before updated).
        nodes.events.sort_by_key(|e| e.node_id);
        node_events.append(&mut nodes.events);
        merge_touched(&mut out.touched, nodes.touched);

        let mut links = Out { server, events: Vec::new(), touched: Touched::default() };
        let link_ids: BTreeSet<Uuid> = was.links.keys().chain(new.links.keys()).copied().collect();
        for lid in &link_ids {
            match (was.links.get(lid), new.links.get_mut(lid)) {
                (Some(gone), None) => links.push(EventKind::LinkDeleted, *pid, None, gone),
                (None, Some(link)) => links.push(EventKind::LinkCreated, *pid, None, link),
                (Some(before), Some(link)) => {
                    let changed = !same_content(before, link, LINK_IGNORED);
                    *link = merged(before, link);
                    if changed {
                        links.push(EventKind::LinkUpdated, *pid, None, link);
                    }
                }
                (None, None) => {}
            }
        }
        link_events.append(&mut links.events);
        merge_touched(&mut out.touched, links.touched);
    }
    out.events.append(&mut node_events);
    out.events.append(&mut link_events);
    (out.events, fresh, out.touched)
}

fn merge_touched(into: &mut Touched, from: Touched) {
    into.projects.extend(from.projects);
    into.changes += from.changes;
}

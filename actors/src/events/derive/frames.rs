//! The rules per GNS3 action (the list is in `derive.rs`'s module doc): how one frame of a
//! node, link or project changes the known state and which events that gives. Handlers
//! return `None` when the frame lacks a usable id (the caller logs it), `Some(())` otherwise.

use super::state::{
    is_controller_form, merged, same_content, status_kind, uuid_field, with_project_id, KnownProject, Obj,
    LINK_IGNORED, NODE_IGNORED, PROJECT_IGNORED,
};
use super::Deriver;
use crate::events::{EventKind, NewEvent, Source};
use serde_json::Value;
use std::time::Instant;
use uuid::Uuid;

impl Deriver {
    // ------------------------------------------------------------------ nodes

    pub(super) fn node_upsert(
        &mut self,
        creation: bool,
        event: &Obj,
        sp: Option<Uuid>,
        now: Instant,
        out: &mut Vec<NewEvent>,
    ) -> Option<()> {
        let node_id = uuid_field(event, "node_id")?;
        let Some(hint) = self.frame_project(event, sp)? else { return Some(()) };
        let known = self.known.project_of_node(node_id, hint);
        if known.is_none() && !creation && self.dead_nodes.contains_key(&node_id) {
            // A late update of a node just deleted must not bring it back.
            return Some(());
        }
        let pid = known.unwrap_or(hint);
        let obj = with_project_id(event.clone(), pid);
        let project = self.project_mut(pid);
        let Some(old) = project.nodes.get(&node_id) else {
            project.nodes.insert(node_id, obj.clone());
            out.push(self.event(EventKind::NodeCreated, Source::Gns3, Some(pid), Some(node_id), &obj));
            // First seen through an update (its creation frame came before this stream
            // was complete): GNS3 creates nodes stopped, so a running or suspended one
            // changed status meanwhile, and that transition is reported too.
            if let Some(kind) = first_seen_status(creation, &obj) {
                out.push(self.event(kind, Source::Gns3, Some(pid), Some(node_id), &obj));
            }
            self.structural(pid, now);
            return Some(());
        };
        let old_status = project.node_status(old).to_owned();
        let new_status = obj.get("status").and_then(Value::as_str).unwrap_or(&old_status).to_owned();
        let content_changed = !same_content(old, &obj, NODE_IGNORED);
        let stored = merged(old, &obj);
        project.nodes.insert(node_id, stored.clone());
        let kind = if new_status != old_status {
            Some(status_kind(&new_status))
        } else if content_changed {
            Some(EventKind::NodeUpdated)
        } else {
            None
        };
        if let Some(kind) = kind {
            out.push(self.event(kind, Source::Gns3, Some(pid), Some(node_id), &stored));
        }
        Some(())
    }

    pub(super) fn node_deleted(
        &mut self,
        event: &Obj,
        sp: Option<Uuid>,
        now: Instant,
        out: &mut Vec<NewEvent>,
    ) -> Option<()> {
        let node_id = uuid_field(event, "node_id")?;
        let Some(hint) = self.frame_project(event, sp)? else { return Some(()) };
        let controller_form = is_controller_form(event);
        let pid = self.known.project_of_node(node_id, hint);
        if let Some(t) = self.dead_nodes.get_mut(&node_id) {
            if !t.complete && t.controller_form != controller_form {
                // The other half of a delete already reported.
                t.complete = true;
                return Some(());
            }
            if pid.is_none() {
                return Some(());
            }
            // Known again (v2 snapshot restore keeps node ids): a new delete.
        }
        let pid = pid.unwrap_or(hint);
        let known = self.known.projects.get_mut(&pid).and_then(|p| p.nodes.remove(&node_id));
        let data = match known {
            Some(known) if !controller_form => known,
            _ => with_project_id(event.clone(), pid),
        };
        out.push(self.event(EventKind::NodeDeleted, Source::Gns3, Some(pid), Some(node_id), &data));
        let t = self.tombstone(now, controller_form);
        self.dead_nodes.insert(node_id, t);
        self.structural(pid, now);
        Some(())
    }

    // ------------------------------------------------------------------ links

    pub(super) fn link_upsert(
        &mut self,
        creation: bool,
        event: &Obj,
        sp: Option<Uuid>,
        now: Instant,
        out: &mut Vec<NewEvent>,
    ) -> Option<()> {
        let link_id = uuid_field(event, "link_id")?;
        let Some(hint) = self.frame_project(event, sp)? else { return Some(()) };
        let known = self.known.project_of_link(link_id, hint);
        if known.is_none() && !creation && self.dead_links.contains_key(&link_id) {
            return Some(());
        }
        let pid = known.unwrap_or(hint);
        let obj = with_project_id(event.clone(), pid);
        let project = self.project_mut(pid);
        match project.links.get(&link_id) {
            None => {
                project.links.insert(link_id, obj.clone());
                out.push(self.event(EventKind::LinkCreated, Source::Gns3, Some(pid), None, &obj));
                self.structural(pid, now);
            }
            Some(old) => {
                let changed = !same_content(old, &obj, LINK_IGNORED);
                let stored = merged(old, &obj);
                project.links.insert(link_id, stored.clone());
                if changed {
                    out.push(self.event(EventKind::LinkUpdated, Source::Gns3, Some(pid), None, &stored));
                }
            }
        }
        Some(())
    }

    pub(super) fn link_deleted(
        &mut self,
        event: &Obj,
        sp: Option<Uuid>,
        now: Instant,
        out: &mut Vec<NewEvent>,
    ) -> Option<()> {
        let link_id = uuid_field(event, "link_id")?;
        let Some(hint) = self.frame_project(event, sp)? else { return Some(()) };
        let pid = self.known.project_of_link(link_id, hint);
        if pid.is_none() && self.dead_links.contains_key(&link_id) {
            return Some(());
        }
        let pid = pid.unwrap_or(hint);
        if let Some(p) = self.known.projects.get_mut(&pid) {
            p.links.remove(&link_id);
        }
        let data = with_project_id(event.clone(), pid);
        out.push(self.event(EventKind::LinkDeleted, Source::Gns3, Some(pid), None, &data));
        let t = self.tombstone(now, true);
        self.dead_links.insert(link_id, t);
        self.structural(pid, now);
        Some(())
    }

    // ------------------------------------------------------------------ projects

    pub(super) fn project_upsert(
        &mut self,
        action: &str,
        event: &Obj,
        now: Instant,
        out: &mut Vec<NewEvent>,
    ) -> Option<()> {
        let pid = uuid_field(event, "project_id")?;
        let status_open = event.get("status").and_then(Value::as_str).map(|s| s == "opened");
        let opened = match action {
            "project.opened" => Some(true),
            "project.closed" => Some(false),
            _ => status_open,
        };
        if action == "project.created" {
            self.dead_projects.remove(&pid);
        } else if self.dead_projects.contains_key(&pid) && !self.known.projects.contains_key(&pid) {
            return Some(());
        }
        let Some(project) = self.known.projects.get_mut(&pid) else {
            let kind = match action {
                "project.opened" => EventKind::ProjectOpened,
                "project.closed" => EventKind::ProjectClosed,
                _ => EventKind::ProjectCreated,
            };
            let kp = KnownProject { obj: event.clone(), opened: opened.unwrap_or(false), ..Default::default() };
            self.known.projects.insert(pid, kp);
            out.push(self.event(kind, Source::Gns3, Some(pid), None, event));
            self.structural(pid, now);
            return Some(());
        };
        let changed = !same_content(&project.obj, event, PROJECT_IGNORED);
        project.obj = merged(&project.obj, event);
        let was_open = project.opened;
        let opened = opened.unwrap_or(was_open);
        project.opened = opened;
        let data = project.obj.clone();
        let mut running = Vec::new();
        if was_open && !opened {
            running = project
                .nodes
                .iter()
                .filter(|(_, n)| n.get("status").and_then(Value::as_str).is_some_and(|s| s != "stopped"))
                .map(|(id, _)| *id)
                .collect();
            project.mark_nodes_stopped();
        }
        let kind = match (was_open, opened) {
            (false, true) => Some(EventKind::ProjectOpened),
            (true, false) => Some(EventKind::ProjectClosed),
            _ if changed => Some(EventKind::ProjectUpdated),
            _ => None,
        };
        if let Some(kind) = kind {
            out.push(self.event(kind, Source::Gns3, Some(pid), None, &data));
            if kind != EventKind::ProjectUpdated {
                self.structural(pid, now);
            }
        }
        for node_id in running {
            if let Some(node) = self.known.projects.get(&pid).and_then(|p| p.nodes.get(&node_id)) {
                out.push(self.event(EventKind::NodeStopped, Source::Gns3, Some(pid), Some(node_id), node));
            }
        }
        Some(())
    }

    pub(super) fn project_deleted(&mut self, event: &Obj, now: Instant, out: &mut Vec<NewEvent>) -> Option<()> {
        let pid = uuid_field(event, "project_id")?;
        let known = self.known.projects.remove(&pid);
        if known.is_none() && self.dead_projects.contains_key(&pid) {
            return Some(());
        }
        let data = match known {
            Some(kp) => merged(&kp.obj, event),
            None => event.clone(),
        };
        out.push(self.event(EventKind::ProjectDeleted, Source::Gns3, Some(pid), None, &data));
        let t = self.tombstone(now, true);
        self.dead_projects.insert(pid, t);
        self.structural(pid, now);
        Some(())
    }
}

/// The status event owed for a node first seen outside its own creation frame: none for
/// a `stopped` node (how GNS3 creates them) or one without a status.
pub(super) fn first_seen_status(creation: bool, node: &Obj) -> Option<EventKind> {
    match node.get("status").and_then(Value::as_str) {
        Some(s @ ("started" | "suspended")) if !creation => Some(status_kind(s)),
        _ => None,
    }
}

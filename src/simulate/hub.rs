//! Who listens to which notification stream. Each open stream (WebSocket or HTTP) holds a
//! bounded channel; an event is serialized once and the bytes are shared by every listener
//! of its scope. A listener whose channel is full (it stopped reading) is dropped: its stream
//! drains what is queued and ends, rather than the stand-in buffering without bound.
//! The hub also remembers when a project lost its last project-stream listener, which is
//! what gns3's auto-close keys on.

use bytes::Bytes;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::state::{Event, Scope};

/// Frames queued per listener before it counts as stuck and is dropped.
pub const LISTENER_QUEUE: usize = 4096;

struct Listener {
    id: u64,
    scope: Scope,
    tx: mpsc::Sender<Bytes>,
}

#[derive(Default)]
pub struct Hub {
    listeners: Vec<Listener>,
    next_id: u64,
    /// Projects whose last project-stream listener left, and when.
    orphaned: Vec<(String, Instant)>,
    stopped: bool,
}

/// One notification as it goes on the wire (no trailing newline), spaced like Python's
/// `json.dumps` (`{"action": "ping", "event": {...}}`), which is what gns3 v2 sends.
pub fn frame(action: &str, event: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonSpacing);
    match serde::Serialize::serialize(&json!({"action": action, "event": event}), &mut ser) {
        Ok(()) => Bytes::from(out),
        Err(_) => Bytes::from(json!({"action": action, "event": event}).to_string()),
    }
}

/// `", "` between items and `": "` after keys.
struct PythonSpacing;

impl serde_json::ser::Formatter for PythonSpacing {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

impl Hub {
    /// A new listener of `scope`; `None` once the stand-in is stopping.
    pub fn subscribe(&mut self, scope: Scope) -> Option<(u64, mpsc::Receiver<Bytes>)> {
        if self.stopped {
            return None;
        }
        if let Scope::Project(pid) = &scope {
            self.orphaned.retain(|(p, _)| p != pid);
        }
        let (tx, rx) = mpsc::channel(LISTENER_QUEUE);
        self.next_id += 1;
        self.listeners.push(Listener { id: self.next_id, scope, tx });
        Some((self.next_id, rx))
    }

    /// A stream ended (client gone, or dropped by `publish`).
    pub fn unsubscribe(&mut self, id: u64) {
        if let Some(at) = self.listeners.iter().position(|l| l.id == id) {
            let gone = self.listeners.remove(at);
            self.note_orphan(&gone.scope);
        }
    }

    fn note_orphan(&mut self, scope: &Scope) {
        if let Scope::Project(pid) = scope {
            if !self.stopped && !self.listeners.iter().any(|l| &l.scope == scope) {
                self.orphaned.retain(|(p, _)| p != pid);
                self.orphaned.push((pid.clone(), Instant::now()));
            }
        }
    }

    /// Notification-stream clients connected now, every scope.
    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    #[cfg(test)]
    pub fn listeners(&self, scope: &Scope) -> usize {
        self.listeners.iter().filter(|l| &l.scope == scope).count()
    }

    /// Sends `event` to every listener of its scope.
    pub fn publish(&mut self, event: &Event) {
        self.send(&event.scope, frame(event.action, &event.event));
    }

    /// Sends a ready frame to every listener of `scope`.
    pub fn send(&mut self, scope: &Scope, bytes: Bytes) {
        let mut dropped = Vec::new();
        for l in self.listeners.iter().filter(|l| &l.scope == scope) {
            match l.tx.try_send(bytes.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(listener = l.id, "Stand-in: dropping a notification listener that stopped reading.");
                    dropped.push(l.id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => dropped.push(l.id),
            }
        }
        for id in dropped {
            self.unsubscribe(id);
        }
    }

    /// Projects that have had no project-stream listener for `delay`; forgotten once returned.
    pub fn due_auto_close(&mut self, now: Instant, delay: Duration) -> Vec<String> {
        let (due, wait): (Vec<_>, Vec<_>) =
            self.orphaned.drain(..).partition(|(_, since)| now.duration_since(*since) >= delay);
        self.orphaned = wait;
        due.into_iter().map(|(p, _)| p).collect()
    }

    /// Ends every stream (their senders are dropped) and refuses new ones.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.listeners.clear();
        self.orphaned.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_only_their_scope() {
        let mut hub = Hub::default();
        let (_, mut ctl) = hub.subscribe(Scope::Controller).unwrap();
        let (_, mut prj) = hub.subscribe(Scope::Project("p".into())).unwrap();
        hub.publish(&Event {
            scope: Scope::Project("p".into()),
            action: "node.created",
            event: json!({"a": [1, 2], "b": null}),
        });
        assert_eq!(
            prj.try_recv().unwrap(),
            Bytes::from(r#"{"action": "node.created", "event": {"a": [1, 2], "b": null}}"#)
        );
        assert!(ctl.try_recv().is_err());
    }

    #[test]
    fn a_project_is_orphaned_when_its_last_listener_leaves() {
        let mut hub = Hub::default();
        let (a, _ra) = hub.subscribe(Scope::Project("p".into())).unwrap();
        let (b, _rb) = hub.subscribe(Scope::Project("p".into())).unwrap();
        hub.unsubscribe(a);
        assert!(hub.due_auto_close(Instant::now() + Duration::from_secs(60), Duration::ZERO).is_empty());
        hub.unsubscribe(b);
        assert!(hub.due_auto_close(Instant::now(), Duration::from_secs(60)).is_empty(), "not yet due");
        assert_eq!(
            hub.due_auto_close(Instant::now() + Duration::from_secs(60), Duration::from_secs(5)),
            vec!["p".to_owned()]
        );
        assert!(
            hub.due_auto_close(Instant::now() + Duration::from_secs(60), Duration::ZERO).is_empty(),
            "reported once"
        );
    }

    #[test]
    fn a_stuck_listener_is_dropped() {
        let mut hub = Hub::default();
        let (_, _rx) = hub.subscribe(Scope::Controller).unwrap();
        for _ in 0..=LISTENER_QUEUE {
            hub.send(&Scope::Controller, Bytes::from_static(b"{}"));
        }
        assert_eq!(hub.listeners(&Scope::Controller), 0);
    }
}

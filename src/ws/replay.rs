//! The `replay` frame both sockets answer a `subscribe` with `since` with
//! (docs/websocket.md#resume-without-gaps, docs/modules.md#resuming-events): the stored
//! events after `since`, concatenated without parsing them again; or, when they cannot be
//! replayed, `recovered: false` with the reason and a fresh topology to start again from.
//! Shared so that a dashboard and a module get the same frame.

use actix::prelude::*;
use actix_web_actors::ws;
use gns3_central_actors::dispatcher::{json_array, HistoryEntry, Unrecoverable};
use serde_json::{json, Value};

use super::frames;
use super::session::Session;
use super::topology::read_topology;
use super::SessionPrincipal;

/// A `replay` frame with the events as stored.
pub fn replay_recovered(epoch: &str, latest_seq: u64, events_array: &[u8], count: usize) -> Vec<u8> {
    let head = json!({"type": "replay", "recovered": true, "epoch": epoch, "latest_seq": latest_seq, "count": count});
    frames::splice(head, "events", events_array)
}

/// Sends the `replay` frame: the events, or `recovered: false` with the topology
/// `principal` sees (read while the session's mailbox is held, so that live events come
/// after it).
pub(crate) fn send_replay<A: Session>(
    act: &mut A,
    ctx: &mut ws::WebsocketContext<A>,
    principal: SessionPrincipal,
    (epoch, latest_seq): (&str, u64),
    replay: Result<Vec<HistoryEntry>, Unrecoverable>,
    rid: Option<Value>,
) {
    match replay {
        Ok(entries) => {
            let frame = replay_recovered(epoch, latest_seq, &json_array(&entries), entries.len());
            act.reply(ctx, frame);
        }
        Err(why) => {
            let details = serde_json::to_value(&why).unwrap_or(Value::Null);
            let head = json!({
                "type": "replay", "recovered": false,
                "reason": details.get("reason").cloned().unwrap_or(Value::Null),
                "message": why.to_string(), "details": details,
                "epoch": epoch, "latest_seq": latest_seq, "request_id": rid,
            });
            let state = act.core().state.clone();
            let fut = async move { read_topology(&state, &principal, None, None).await }.into_actor(act).map(
                move |res, act, ctx| {
                    let frame = match res {
                        Ok(topology) => frames::splice(head, "topology", &topology),
                        Err(e) => {
                            let err = json!({"code": e.code, "message": e.message});
                            frames::splice(head, "topology_error", err.to_string().as_bytes())
                        }
                    };
                    act.reply(ctx, frame);
                },
            );
            ctx.wait(fut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_builds_valid_json() {
        let v: Value = serde_json::from_slice(&replay_recovered("e", 3, b"[{\"a\":1}]", 1)).unwrap();
        assert_eq!(v["events"][0]["a"], 1);
        assert_eq!(v["recovered"], true);
    }
}

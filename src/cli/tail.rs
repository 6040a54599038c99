//! `gns3-central events tail`: the live event stream of a running instance in a terminal,
//! one readable line per event or (`--json`) each envelope as one JSON line.
//!
//! It is a client of the WebSocket protocol (docs/websocket.md): it subscribes with
//! `since` every time, so nothing is lost or printed twice across a reconnect. The first
//! `since` is `--since`, else the position the `welcome` frame gives (the last event
//! before this tail started); after that it is the last event printed. A lost connection
//! (the instance restarted, the network dropped, no frame for the client timeout) is
//! retried with a capped backoff; a `missed` frame (the session shed events for a slow
//! reader) reconnects at once, to read them back from the history. Events at or before
//! the last printed one (same epoch) are dropped, so a replay that overlaps is harmless.
//! When the history cannot fill a gap (`replay` with `recovered: false`), it says so on
//! stderr and goes on live.
//!
//! Exit codes as `status` has: 0 when `--count` events were printed (or the reader of
//! stdout went away), 1 when live events are off, or a gap could not be filled, 2 when no
//! instance answers at the first connection, the credential is refused, or the filter is
//! refused.

use awc::error::WsClientError;
use awc::ws::{Frame, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

use super::args::TailArgs;
use super::status::base_url_of;

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Without `limits.client_timeout_ms` in `welcome`: how long a silent socket is trusted.
const DEFAULT_SILENCE: Duration = Duration::from_secs(15);
const MAX_FRAME: usize = 64 << 20;

/// How one connection ended.
enum End {
    /// `--count` reached, or stdout closed.
    Done,
    /// Stop with this exit code (a message was printed).
    Fatal(u8),
    /// Reconnect after the backoff.
    Lost(String),
    /// Reconnect at once (events were shed: read them back).
    Resume(String),
}

struct Tail {
    args: TailArgs,
    /// (epoch, seq) of the last event printed, or of the position to resume from.
    last: Option<(String, u64)>,
    printed: u64,
    /// A gap the history could not fill was reported.
    gap: bool,
    connected_once: bool,
    /// The last session got as far as `subscribed` (the backoff starts again).
    subscribed_now: bool,
}

pub async fn tail(args: TailArgs) -> ExitCode {
    let base = match base_url_of(args.url.as_deref(), args.config.config.as_deref()) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut t = Tail { args, last: None, printed: 0, gap: false, connected_once: false, subscribed_now: false };
    if let Some(since) = t.args.since.clone() {
        match gns3_central_actors::events::Event::parse_id(&since) {
            Some((epoch, seq)) => t.last = Some((epoch.to_owned(), seq)),
            None => {
                errln!("gns3-central: --since {since:?} is not an event id (<epoch>-<seq>, e.g. 7f3a9c01-1042)");
                return ExitCode::from(2);
            }
        }
    }
    let mut delay = BACKOFF_FIRST;
    loop {
        let end = t.session(&base).await;
        if std::mem::take(&mut t.subscribed_now) {
            delay = BACKOFF_FIRST;
        }
        let (why, wait) = match end {
            End::Done => return ExitCode::from(if t.gap { 1 } else { 0 }),
            End::Fatal(code) => return ExitCode::from(code),
            End::Resume(why) => (why, Duration::ZERO),
            End::Lost(why) if !t.connected_once => {
                errln!("gns3-central: no instance answers at {base}: {why}");
                return ExitCode::from(2);
            }
            End::Lost(why) => {
                let wait = delay;
                delay = (delay * 2).min(BACKOFF_MAX);
                (why, wait)
            }
        };
        errln!(
            "gns3-central: {why}; reconnecting in {:.1} s (resuming after {})",
            wait.as_secs_f64(),
            t.position().unwrap_or_else(|| "the start".into())
        );
        actix_rt::time::sleep(wait).await;
    }
}

impl Tail {
    fn position(&self) -> Option<String> {
        self.last.as_ref().map(|(epoch, seq)| format!("{epoch}-{seq}"))
    }

    async fn session(&mut self, base: &str) -> End {
        let timeout = Duration::from_secs_f64(self.args.timeout.clamp(0.1, 300.0));
        let client = awc::Client::builder().timeout(timeout).finish();
        let mut req = client.ws(format!("{base}/ws/gns3/events/")).max_frame_size(MAX_FRAME);
        if let Some(token) = &self.args.token {
            req = req.bearer_auth(token);
        }
        let mut ws = match actix_rt::time::timeout(timeout, req.connect()).await {
            Err(_) => return End::Lost(format!("no answer within {timeout:?}")),
            Ok(Err(WsClientError::InvalidResponseStatus(s))) if s == 401 || s == 403 => {
                errln!(
                    "gns3-central: {base} refused the connection ({s}): \
                     pass a viewer token with --token or GNS3_CENTRAL_TOKEN"
                );
                return End::Fatal(2);
            }
            Ok(Err(e)) => return End::Lost(e.to_string()),
            Ok(Ok((_, ws))) => ws,
        };
        let mut silence = timeout;
        let mut subscribed = false;
        loop {
            let frame = match actix_rt::time::timeout(silence, ws.next()).await {
                Err(_) => return End::Lost(format!("no frame for {silence:?}")),
                Ok(None) => return End::Lost("the connection closed".into()),
                Ok(Some(Err(e))) => return End::Lost(e.to_string()),
                Ok(Some(Ok(f))) => f,
            };
            let text = match frame {
                Frame::Text(t) => t,
                Frame::Ping(p) => {
                    if ws.send(Message::Pong(p)).await.is_err() {
                        return End::Lost("the connection closed".into());
                    }
                    continue;
                }
                Frame::Close(reason) => {
                    let why = reason.map(|r| format!("{:?}", r.code)).unwrap_or_else(|| "no reason".into());
                    return End::Lost(format!("the instance closed the connection ({why})"));
                }
                Frame::Binary(_) | Frame::Pong(_) | Frame::Continuation(_) => continue,
            };
            let Ok(v) = serde_json::from_slice::<Value>(&text) else { continue };
            let kind = v["type"].as_str().unwrap_or("");
            if kind.contains('.') {
                if let Some(end) = self.event(&v, Some(&text)) {
                    return end;
                }
                continue;
            }
            match kind {
                "welcome" => {
                    if v["events_enabled"] == false {
                        errln!("gns3-central: live events are off at {base} (serve --no-events)");
                        return End::Fatal(1);
                    }
                    if let Some(ms) = v["limits"]["client_timeout_ms"].as_u64() {
                        silence = Duration::from_millis(ms.max(1000));
                    } else {
                        silence = DEFAULT_SILENCE;
                    }
                    if self.last.is_none() {
                        if let (Some(epoch), Some(seq)) = (v["epoch"].as_str(), v["last_seq"].as_u64()) {
                            self.last = Some((epoch.to_owned(), seq));
                        }
                    }
                    if ws.send(Message::Text(self.subscribe().to_string().into())).await.is_err() {
                        return End::Lost("the connection closed".into());
                    }
                }
                "subscribed" => {
                    subscribed = true;
                    self.connected_once = true;
                    self.subscribed_now = true;
                }
                "replay" => {
                    if let Some(end) = self.replay(&v) {
                        return end;
                    }
                }
                "missed" if subscribed => {
                    return End::Resume(format!("{} events were shed for this slow reader", v["count"]));
                }
                "error" => {
                    let code = v["code"].as_str().unwrap_or("?");
                    let msg = v["message"].as_str().unwrap_or("");
                    errln!("gns3-central: {base} refused: {code}: {msg}");
                    return match code {
                        "events_disabled" => End::Fatal(1),
                        "events_unavailable" | "subscribe_failed" => End::Lost(format!("{code}: {msg}")),
                        _ => End::Fatal(2),
                    };
                }
                _ => {}
            }
        }
    }

    fn subscribe(&self) -> Value {
        let types = if self.args.types.is_empty() { vec!["all".to_owned()] } else { self.args.types.clone() };
        let mut frame = json!({"type": "subscribe", "subscriptions": types, "request_id": "tail"});
        if !self.args.projects.is_empty() {
            frame["projects"] = json!(self.args.projects);
        }
        if let Some(since) = self.position() {
            frame["since"] = json!(since);
        }
        frame
    }

    /// A `replay` frame: its events, or the gap it reports.
    fn replay(&mut self, v: &Value) -> Option<End> {
        if v["recovered"] == true {
            for e in v["events"].as_array().into_iter().flatten() {
                if let Some(end) = self.event(e, None) {
                    return Some(end);
                }
            }
            return None;
        }
        let reason = v["reason"].as_str().unwrap_or("?");
        errln!(
            "gns3-central: events after {} cannot be replayed ({reason}: {}); some may be missing, going on live",
            self.position().unwrap_or_default(),
            v["message"].as_str().unwrap_or("")
        );
        self.gap = true;
        if let (Some(epoch), Some(seq)) = (v["epoch"].as_str(), v["latest_seq"].as_u64()) {
            self.last = Some((epoch.to_owned(), seq));
        }
        None
    }

    /// Prints an event unless it was printed already; `Some` when the tail is done.
    fn event(&mut self, e: &Value, raw: Option<&Bytes>) -> Option<End> {
        let (Some(epoch), Some(seq)) = (e["epoch"].as_str(), e["seq"].as_u64()) else { return None };
        if let Some((last_epoch, last_seq)) = &self.last {
            if last_epoch == epoch && seq <= *last_seq {
                return None;
            }
        }
        self.last = Some((epoch.to_owned(), seq));
        let text = match (self.args.json, raw) {
            (true, Some(raw)) => String::from_utf8_lossy(raw).into_owned(),
            (true, None) => e.to_string(),
            (false, _) => line(e),
        };
        if !super::out::stdout_ok(format_args!("{text}\n")) {
            return Some(End::Done);
        }
        self.printed += 1;
        self.args.count.filter(|&n| self.printed >= n).map(|_| End::Done)
    }
}

/// The readable form of an envelope: time, priority, type, server, ids, and what the
/// event says (a node's name and status, else its data, cut short).
pub fn line(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("-");
    let mut out = format!("{} {:<8} {:<20} {}", s("timestamp"), s("priority"), s("type"), s("server"));
    let short = |v: &Value| v.as_str().map(|id| id.chars().take(8).collect::<String>());
    if let Some(p) = short(&e["project_id"]) {
        out.push_str(&format!(" project={p}"));
    }
    if let Some(n) = short(&e["node_id"]) {
        out.push_str(&format!(" node={n}"));
    }
    let d = &e["data"];
    let (name, status) = (d["name"].as_str(), d["status"].as_str());
    if let Some(name) = name {
        out.push_str(&format!(" name={name}"));
    }
    if let Some(status) = status {
        out.push_str(&format!(" status={status}"));
    }
    if name.is_none() && status.is_none() && !d.is_null() && d.as_object().is_none_or(|o| !o.is_empty()) {
        let data = d.to_string();
        let cut: String = data.chars().take(160).collect();
        out.push_str(&format!(" {cut}{}", if cut.len() < data.len() { "…" } else { "" }));
    }
    out.push_str(&format!("  [{}]", s("id")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_event_its_ids_and_what_it_says() {
        let e = json!({"id": "ep-7", "seq": 7, "epoch": "ep", "type": "node.started", "priority": "HIGH",
            "server": "default", "project_id": "68dca439-6f3a-4a4e-a7a2-0c7cf3b8d8a1",
            "node_id": "e19f73a6-2b8e-4f6c-9a53-1f5a7f0c3b11", "timestamp": "2026-12-07T15:40:01.123Z",
            "data": {"name": "R1", "status": "started", "ports": []}});
        assert_eq!(
            line(&e),
            "2026-12-07T15:40:01.123Z HIGH     node.started         default project=68dca439 node=e19f73a6 \
             name=R1 status=started  [ep-7]"
        );
        let e = json!({"id": "ep-8", "type": "probe.tick", "priority": "LOW", "server": "default",
            "timestamp": "t", "data": {"n": 1}});
        assert_eq!(line(&e), "t LOW      probe.tick           default {\"n\":1}  [ep-8]");
    }

    fn tail(count: Option<u64>) -> Tail {
        let args = TailArgs {
            config: super::super::args::ConfigArg { config: None },
            url: None,
            token: None,
            json: true,
            types: vec![],
            projects: vec![],
            since: None,
            count,
            timeout: 1.0,
        };
        Tail { args, last: Some(("ep".into(), 2)), printed: 0, gap: false, connected_once: true, subscribed_now: false }
    }

    #[test]
    fn events_at_or_before_the_last_one_are_not_printed_again() {
        let mut t = tail(Some(2));
        let ev = |seq: u64| json!({"epoch": "ep", "seq": seq, "type": "probe.tick"});
        assert!(t.event(&ev(1), None).is_none() && t.event(&ev(2), None).is_none());
        assert_eq!(t.printed, 0, "already seen");
        assert!(t.event(&ev(3), None).is_none());
        assert!(t.event(&ev(3), None).is_none());
        assert_eq!((t.printed, t.position().as_deref()), (1, Some("ep-3")));
        assert!(matches!(t.event(&ev(4), None), Some(End::Done)), "--count reached");
        assert_eq!(t.subscribe()["since"], "ep-4");
        // A gap the history cannot fill: reported, then live from the new position.
        assert!(t
            .replay(&json!({"recovered": false, "reason": "other_epoch", "epoch": "new", "latest_seq": 9}))
            .is_none());
        assert!(t.gap);
        assert_eq!(t.position().as_deref(), Some("new-9"));
    }
}

//! Fuzzes the WebSocket client-frame parser (`gns3_central::ws::dashboard::protocol::parse`) with
//! any text a client could send, and checks what the session does with the result, not
//! only that nothing panics: an error's `error` frame is a JSON object with
//! `type: "error"`, a non-empty code and the same request id; a request id that comes
//! back is a string or an integer, and the frame holds it exactly; the names of a parsed
//! `subscribe`/`unsubscribe` go through the subscription filter (as
//! `WsSession::on_subscribe` does) without panicking, and a filter that builds holds at
//! most `MAX_NAMES` names.
#![no_main]

use gns3_central::actors::dispatcher::filter::MAX_NAMES;
use gns3_central::actors::dispatcher::SubscriptionFilter;
use gns3_central::ws::dashboard::protocol::{parse, ClientFrame};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn id_ok(v: &Value) -> bool {
    match v {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 (actix-http refuses others before the session sees them).
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (rid, result) = parse(text);
    if let Some(id) = &rid {
        assert!(id_ok(id), "request_id came back as {id}");
    }
    match result {
        Err(e) => {
            assert!(!e.code.as_str().is_empty(), "empty error code");
            assert_eq!(e.request_id, rid, "the error's request_id differs from the one returned");
            let frame = e.to_frame();
            let v: Value = serde_json::from_str(&frame).expect("the error frame is valid JSON");
            assert_eq!(v["type"], "error", "{frame}");
            assert_eq!(v["code"].as_str(), Some(e.code.as_str()), "{frame}");
            assert!(v["message"].is_string(), "{frame}");
            match (v.get("request_id"), &rid) {
                (None, None) => {}
                (Some(got), Some(want)) => assert_eq!(got, want, "{frame}"),
                (got, want) => panic!("request_id {got:?} in the frame, {want:?} returned: {frame}"),
            }
        }
        Ok(ClientFrame::Subscribe { subscriptions, .. }) | Ok(ClientFrame::Unsubscribe { subscriptions }) => {
            if let Ok(f) = SubscriptionFilter::new(subscriptions.iter(), []) {
                assert!(f.names().len() <= MAX_NAMES);
            }
        }
        Ok(_) => {}
    }
});

//! Isolation: one module stops reading its socket and an in-process one panics in its
//! handlers; another module still gets every message and event promptly, and the
//! failing ones are reported in the module status.

use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{connect, is_message, register, status_until};
use crate::app::{spawn_app, test_settings, Target};

#[actix_rt::test]
async fn a_module_that_stops_reading_or_panics_delays_no_other() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        s.websocket.unflushed_bytes = 64 * 1024;
        // Room for `live` to lag on a busy machine: its buffer is bounded by queue_bytes
        // (4 MiB, ~950 messages with their events) rather than by 1,024 frames, so a
        // pause of ~250 ms does not shed its events; `stuck` still overflows (12 MB).
        s.websocket.queue_frames = 8192;
        s.modules.handler_backoff_ms = 1;
        s.modules.handler_max_retries = 1;
    }))
    .await;
    let src_t = register(&app, "src").await;
    let stuck_t = register(&app, "stuck").await;
    let live_t = register(&app, "live").await;
    let panicky = app.state.modules.module("panicky").expect("in-process");
    let tries = Arc::new(AtomicU64::new(0));
    let t = tries.clone();
    // Every 50th message and event makes the handler panic (each tried twice).
    panicky
        .on_message(move |m| {
            t.fetch_add(1, Ordering::Relaxed);
            let bad = m.payload["n"].as_u64().is_some_and(|n| n % 50 == 0);
            async move {
                assert!(!bad, "a bug in the module");
                Ok(None)
            }
        })
        .await
        .expect("attached");
    let t = tries.clone();
    panicky
        .subscribe(["src.*"], move |e| {
            t.fetch_add(1, Ordering::Relaxed);
            let bad = e.data["n"].as_u64().is_some_and(|n| n % 50 == 0);
            async move {
                assert!(!bad, "a bug in the module");
                Ok(())
            }
        })
        .await
        .expect("subscribed");

    let mut stuck = connect(&app, "stuck", &stuck_t).await;
    let mut live = connect(&app, "live", &live_t).await;
    for c in [&mut stuck, &mut live] {
        c.send(json!({"type":"subscribe","request_id":"s","subscriptions":["src.*"]})).await;
        c.until(Duration::from_secs(10), |v| v["type"] == "subscribed").await;
    }
    // From here on `stuck` never reads its socket again.

    const N: u64 = 3000;
    // 12 MB for the module that does not read: more than the socket buffers hold.
    let pad = "p".repeat(4 * 1024);
    let t0 = Instant::now();
    // The sender runs on a thread of its own, beside this test's reader of `live`.
    let base = app.base.clone();
    let sending = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut src = super::connect_at(&base, "src", &src_t).await;
            for n in 0..N {
                src.send(json!({"type":"broadcast","message":{"type":"tick","payload":{"n":n,"pad":pad}}})).await;
                src.send(json!({"type":"publish","event":{"type":"src.tick","data":{"n":n}}})).await;
                if n % 4 == 3 {
                    // A steady flow (about 4,000 messages and 4,000 events a second), not
                    // a burst that would make `live` a slow consumer too.
                    actix_rt::time::sleep(Duration::from_millis(1)).await;
                }
            }
            // Still connected when the test goes on: the test's last message comes from it.
            src.send(json!({"type":"send","request_id":"after","message":{"to":"stuck","type":"later"}})).await;
            src.until(Duration::from_secs(10), |v| v["type"] == "sent").await
        })
    });
    let (mut messages, mut events) = (0u64, 0u64);
    while messages < N || events < N {
        let v = live.until(Duration::from_secs(20), |v| is_message(v, "tick") || v["type"] == "src.tick").await;
        if v["type"] == "message" {
            assert_eq!(v["message"]["payload"]["n"].as_u64(), Some(messages), "in order, none lost");
            messages += 1;
        } else {
            assert_eq!(v["data"]["n"].as_u64(), Some(events), "in order, none lost");
            events += 1;
        }
    }
    let took = t0.elapsed();
    let ack = sending.join().expect("the sender finished");
    assert!(took < Duration::from_secs(30), "{N} messages and events took {took:?}");

    // The stuck module: closed as a slow consumer, reported; later messages wait for it.
    let s = status_until(&app, "stuck", Duration::from_secs(20), |s| s["connected"] == false).await;
    assert!(s["dead_lettered"].as_u64() >= Some(1), "{s}");
    assert!(s["last_error"].as_str().is_some_and(|e| e.contains("4008")), "{s}");
    let p = status_until(&app, "panicky", Duration::from_secs(20), |s| s["panics"] == 2 * 2 * (N / 50)).await;
    assert_eq!(p["dead_lettered"], 2 * (N / 50), "{p}");
    assert_eq!(tries.load(Ordering::Relaxed), 2 * N + 2 * (N / 50), "every message and event, the bad ones twice");
    let letters = app.get("/api/v2/bus/dead-letters?limit=1000").await.body;
    let handler_failed = letters.as_array().map_or(0, |l| l.iter().filter(|d| d["reason"] == "handler_failed").count());
    assert_eq!(handler_failed as u64, 2 * (N / 50), "{letters}");
    let l = app.get("/api/v2/modules/live").await.body;
    assert_eq!(
        (l["dead_lettered"].as_u64(), l["failed"].as_u64(), l["connected"].as_bool()),
        (Some(0), Some(0), Some(true)),
        "{l}"
    );
    assert!(l["delivered"].as_u64() >= Some(N) && l["events_delivered"].as_u64() >= Some(N), "{l}");
    assert_eq!(ack["accepted"], 1, "taken for the stuck module (queued once it is disconnected): {ack}");
    status_until(&app, "stuck", Duration::from_secs(5), |s| s["mailbox_depth"].as_u64() >= Some(1)).await;
    drop(stuck);
}

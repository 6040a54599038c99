//! Module bus benchmark: two remote modules connected to the real service over
//! WebSockets on 127.0.0.1 (each client on a thread and actix system of its own; the
//! service on the main one). Bounded: `BUS_BENCH_MESSAGES` messages (default 200,000,
//! max 2,000,000) within `BUS_BENCH_SECONDS` (default 20), and `BUS_BENCH_REQUESTS`
//! request/reply round trips (default 5,000, max 100,000).
//!
//! 1. Throughput: module A sends `send` frames to module B as fast as it can, keeping at
//!    most `BUS_BENCH_WINDOW` (default 2,000) unreceived (a module that let its peer
//!    fall behind without bound would be closed as a slow consumer); the rate is what B
//!    receives, first send to last receipt.
//! 2. Latency: A sends one `request` at a time; B answers each with a `reply` frame; the
//!    time from A's send to A's receipt of the reply (p50 / p99 / max).
//!
//! cargo bench --bench modules_bus

use actix_http::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use gns3_central::auth::token;
use gns3_central::config::Settings;
use gns3_central::startup::{Application, ServeOptions};
use gns3_central_actors::modules::ModuleKind;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_count(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).clamp(1, max)
}

type Framed = actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec>;

async fn connect(base: &str, name: &str, tok: &str) -> Framed {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let (_, mut framed) = client
        .ws(format!("{base}/ws/modules/{name}"))
        .bearer_auth(tok)
        .max_frame_size(16 << 20)
        .connect()
        .await
        .expect("the module connects");
    match framed.next().await {
        Some(Ok(Frame::Text(_))) => framed,
        other => panic!("no welcome: {other:?}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// B: counts `message` frames; answers requests (frames whose message has `reply_to`).
fn run_b(base: String, tok: String, received: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut b = connect(&base, "bench-b", &tok).await;
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(Ok(frame))) = actix_rt::time::timeout(Duration::from_millis(200), b.next()).await else {
                    continue;
                };
                match frame {
                    Frame::Text(t) => {
                        // Plain messages are only counted; requests are answered.
                        if memchr(&t, b"\"reply_to\":\"bench-a\"") {
                            let v: Value = serde_json::from_slice(&t).expect("json");
                            let reply = json!({"type": "reply", "message": {"to": "bench-a",
                                "correlation_id": v["message"]["id"], "payload": v["message"]["payload"]}});
                            b.send(Message::Text(reply.to_string().into())).await.expect("reply sent");
                        }
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Frame::Ping(p) => {
                        let _ = b.send(Message::Pong(p)).await;
                    }
                    Frame::Close(r) => panic!("B closed: {r:?}"),
                    _ => {}
                }
            }
        })
    })
}

fn memchr(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn main() {
    let messages = env_count("BUS_BENCH_MESSAGES", 200_000, 2_000_000);
    let seconds = env_count("BUS_BENCH_SECONDS", 20, 300);
    let requests = env_count("BUS_BENCH_REQUESTS", 5_000, 100_000);
    let window = env_count("BUS_BENCH_WINDOW", 2_000, 100_000);
    actix_rt::System::new().block_on(async move {
        let mut settings = Settings::load_with(None, &|_| None, vec![]).expect("defaults");
        settings.http.bind = "127.0.0.1:0".into();
        settings.http.workers = 2;
        settings.log.level = "warn".into();
        // No GNS3 is needed: the connector points at a port nobody listens on.
        for s in settings.gns3.servers.values_mut() {
            s.port = 9;
        }
        settings.auth.tokens = vec![gns3_central::auth::TokenSetting {
            name: "bench".into(),
            role: "admin".into(),
            hash: token::hash("g3c_bench"),
            projects: vec![],
        }];
        let app = Application::build(settings, ServeOptions { no_events: true, ..Default::default() }).await.expect("starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        let stopper = app.shutdown_handle();
        actix_rt::spawn(async move {
            let _ = app.run_until_stopped().await;
        });
        let (ta, tb) = ("g3m_bench_a".to_owned(), "g3m_bench_b".to_owned());
        state.modules.registry.register("bench-a", ModuleKind::Remote, Some(token::digest(&ta))).expect("a");
        state.modules.registry.register("bench-b", ModuleKind::Remote, Some(token::digest(&tb))).expect("b");

        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let b = run_b(base.clone(), tb, received.clone(), stop.clone());
        let (r, s) = (received.clone(), stop.clone());
        let a = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let mut a = connect(&base, "bench-a", &ta).await;
                // Wait for B to be attached.
                actix_rt::time::sleep(Duration::from_millis(300)).await;
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let t0 = Instant::now();
                let mut sent = 0u64;
                let frame = json!({"type":"send","message":{"to":"bench-b","type":"bench.tick","payload":{"n":0}}}).to_string();
                while sent < messages && Instant::now() < deadline {
                    while sent - r.load(Ordering::Relaxed) >= window {
                        actix_rt::task::yield_now().await;
                    }
                    a.feed(Message::Text(frame.clone().into())).await.expect("sent");
                    sent += 1;
                    if sent % 64 == 0 {
                        a.flush().await.expect("flushed");
                    }
                }
                a.flush().await.expect("flushed");
                while r.load(Ordering::Relaxed) < sent {
                    assert!(Instant::now() < deadline + Duration::from_secs(10), "B got {} of {sent}", r.load(Ordering::Relaxed));
                    actix_rt::time::sleep(Duration::from_micros(200)).await;
                }
                let elapsed = t0.elapsed();
                println!("throughput: {sent} messages A -> B in {:.2} s: {:.0} messages/s",
                    elapsed.as_secs_f64(), sent as f64 / elapsed.as_secs_f64());

                // Request/reply round trips, one at a time.
                let mut rtts = Vec::with_capacity(requests as usize);
                let deadline = Instant::now() + Duration::from_secs(seconds);
                for i in 0..requests {
                    if Instant::now() > deadline {
                        break;
                    }
                    let req = json!({"type":"request","request_id":i,"message":{"to":"bench-b","type":"bench.ask","payload":i}});
                    let t = Instant::now();
                    a.send(Message::Text(req.to_string().into())).await.expect("sent");
                    loop {
                        match a.next().await {
                            Some(Ok(Frame::Text(t))) if memchr(&t, b"\"type\":\"reply\"") => break,
                            Some(Ok(Frame::Text(t))) => panic!("unexpected frame: {}", String::from_utf8_lossy(&t)),
                            Some(Ok(Frame::Ping(p))) => {
                                let _ = a.send(Message::Pong(p)).await;
                            }
                            Some(Ok(_)) => {}
                            other => panic!("A lost its connection: {other:?}"),
                        }
                    }
                    rtts.push(t.elapsed());
                }
                rtts.sort();
                println!("request/reply: {} round trips: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                    rtts.len(), percentile(&rtts, 0.5).as_secs_f64() * 1e3,
                    percentile(&rtts, 0.99).as_secs_f64() * 1e3, rtts[rtts.len() - 1].as_secs_f64() * 1e3);
                s.store(true, Ordering::Relaxed);
            })
        });
        actix_rt::task::spawn_blocking(move || {
            a.join().expect("A finished");
            b.join().expect("B finished");
        })
        .await
        .expect("joined");
        stopper.shutdown().await;
    });
}

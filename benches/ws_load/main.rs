//! WebSocket load tool for `scripts/bench-ws`, against a gns3-central process already
//! running on loopback. Two scenarios:
//!
//! - `fanout`: N clients connect to `/ws/gns3/events/` with a token, subscribe to `all`,
//!   and for a bounded time count the `event` frames they receive; the latency of each
//!   delivery is its receipt time minus the envelope's `timestamp` (set by the service
//!   when it built the event from a GNS3 notification; same machine, same clock).
//!   With `--priority P` only events of that priority (the envelope's `priority`) are
//!   counted and timed; the others are still received. With `--pid` the service's CPU
//!   time (`/proc/PID/stat`) and the TCP segments sent on this host (`/proc/net/snmp`
//!   `OutSegs`: every process of the network namespace, mostly the service's while the load
//!   runs) are reported per delivery: throughput that does not depend on a busy clock.
//! - `idle`: N sessions connect, subscribe, then stay idle (they only answer the server's
//!   pings, as any client does); the service's RSS (`/proc/PID/status` VmRSS) is read
//!   before and after, and the sessions are checked to be alive after a hold longer than
//!   the heartbeat's client timeout.
//! - `churn`: N clients connect, subscribe, hold each session a short random time (50–300
//!   ms, answering pings, reading events), close it and connect again, until
//!   `--connections` sessions have been opened (after a warm-up of as many as there are
//!   clients, twice); the service's RSS and heap (`gns3central_heap_bytes` of `/metrics`)
//!   are read after the warm-up and once every client has gone, and reported per
//!   connection opened.
//!
//! cargo bench --bench ws_load -- fanout|idle|churn --url ws://127.0.0.1:PORT/ws/gns3/events/
//!     --token T [--clients 1000] [--threads 2] [--seconds 10] [--batch 100]
//!     [--pid SERVICE_PID] [--subscribe all] [--priority CRITICAL] [--connections 10000]
//!
//! Only loopback URLs; every loop is bounded in count and time; the tool stops by itself.

use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Phases shared by every client task: connect, measure, stop.
const CONNECTING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// Latency samples kept per thread at most (bounded memory).
const MAX_SAMPLES_PER_THREAD: usize = 20_000_000;

struct Opts {
    mode: String,
    url: String,
    token: String,
    clients: usize,
    threads: usize,
    seconds: f64,
    batch: usize,
    pid: Option<u32>,
    subscribe: String,
    priority: Option<String>,
    connections: usize,
}

fn parse() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut o = Opts {
        mode: String::new(),
        url: String::new(),
        token: String::new(),
        clients: 1000,
        threads: 2,
        seconds: 10.0,
        batch: 100,
        pid: None,
        subscribe: "all".into(),
        priority: None,
        connections: 10_000,
    };
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--url" => o.url = val("--url")?,
            "--token" => o.token = val("--token")?,
            "--clients" => o.clients = val("--clients")?.parse().map_err(|_| "bad --clients")?,
            "--threads" => o.threads = val("--threads")?.parse().map_err(|_| "bad --threads")?,
            "--seconds" => o.seconds = val("--seconds")?.parse().map_err(|_| "bad --seconds")?,
            "--batch" => o.batch = val("--batch")?.parse().map_err(|_| "bad --batch")?,
            "--pid" => o.pid = Some(val("--pid")?.parse().map_err(|_| "bad --pid")?),
            "--subscribe" => o.subscribe = val("--subscribe")?,
            "--priority" => o.priority = Some(val("--priority")?.to_uppercase()),
            "--connections" => o.connections = val("--connections")?.parse().map_err(|_| "bad --connections")?,
            m @ ("fanout" | "idle" | "churn") if o.mode.is_empty() => o.mode = m.to_owned(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.mode.is_empty() || o.url.is_empty() || o.token.is_empty() {
        return Err("usage: ws_load fanout|idle|churn --url ws://127.0.0.1:P/ws/gns3/events/ --token T [--clients N] \
                    [--threads N] [--seconds S] [--batch N] [--pid PID] [--subscribe NAME] [--priority P] \
                    [--connections N]"
            .into());
    }
    let host = o.url.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        return Err(format!("refusing non-loopback target {host}"));
    }
    if !(o.seconds > 0.0 && o.seconds <= 300.0) {
        return Err("--seconds must be in (0, 300]".into());
    }
    o.clients = o.clients.clamp(1, 15_000);
    o.threads = o.threads.clamp(1, o.clients.min(16));
    o.batch = o.batch.clamp(1, 1000);
    o.connections = o.connections.clamp(1, 200_000);
    Ok(o)
}

/// What every client thread reports.
#[derive(Default)]
struct Shared {
    phase: AtomicU8,
    ready: AtomicUsize,
    failed: AtomicUsize,
    closed_early: AtomicUsize,
    events: AtomicU64,
    missed: AtomicU64,
    pings: AtomicU64,
    first_error: Mutex<Option<String>>,
    latencies_us: Mutex<Vec<u32>>,
    /// `"priority":"P"` when only events of priority P count (`--priority`), else empty.
    only: Vec<u8>,
    per_client: Mutex<Vec<u64>>,
}

impl Shared {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut e = self.first_error.lock().unwrap();
        if e.is_none() {
            *e = Some(why);
        }
    }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The envelope's `timestamp` (RFC 3339, chrono's full precision) in µs since the epoch,
/// found without parsing the whole event (the client must not be the bottleneck).
fn timestamp_us(frame: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"timestamp\":\"";
    let at = frame.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = frame[at..].iter().position(|b| *b == b'"')?;
    let s = std::str::from_utf8(&frame[at..at + len]).ok()?;
    Some(chrono::DateTime::parse_from_rfc3339(s).ok()?.timestamp_micros())
}

/// Server frames other than events are built with `json!` (keys sorted): `type` is
/// anywhere in them. Events are the envelope struct, which starts with `{"id":`.
fn has(frame: &[u8], needle: &[u8]) -> bool {
    frame.windows(needle.len()).any(|w| w == needle)
}

type Conn = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

/// Connects, reads `welcome`, subscribes and waits for `subscribed`.
async fn open(client: &awc::Client, o: &Opts) -> Result<Conn, String> {
    let (_, mut conn) = client
        .ws(o.url.as_str())
        .bearer_auth(&o.token)
        .max_frame_size(1 << 20)
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let sub = format!(r#"{{"type":"subscribe","subscriptions":["{}"]}}"#, o.subscribe);
    conn.send(Message::Text(sub.into())).await.map_err(|e| format!("send: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.next()).await {
            Err(_) => return Err("no `subscribed` within 30 s".into()),
            Ok(None) => return Err("closed before `subscribed`".into()),
            Ok(Some(Err(e))) => return Err(format!("read: {e}")),
            Ok(Some(Ok(Frame::Text(t)))) if has(&t, b"\"type\":\"subscribed\"") => return Ok(conn),
            Ok(Some(Ok(Frame::Text(t)))) if has(&t, b"\"type\":\"error\"") => {
                return Err(String::from_utf8_lossy(&t).into_owned())
            }
            Ok(Some(Ok(Frame::Ping(p)))) => {
                conn.send(Message::Pong(p)).await.map_err(|e| format!("pong: {e}"))?;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Reads until the phase is STOPPING (checked at least every 200 ms): answers pings,
/// counts events while MEASURING, and records their latency.
async fn run_session(mut conn: Conn, sh: Arc<Shared>, lat: Rc<RefCell<Vec<u32>>>, counted: Rc<RefCell<Vec<u64>>>) {
    let mut mine = 0u64;
    loop {
        if sh.phase.load(Ordering::Relaxed) == STOPPING {
            break;
        }
        let frame = match tokio::time::timeout(Duration::from_millis(200), conn.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(Frame::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                if sh.phase.load(Ordering::Relaxed) != STOPPING {
                    sh.closed_early.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            Ok(Some(Ok(f))) => f,
        };
        match frame {
            Frame::Text(t)
                if t.starts_with(b"{\"id\":")
                    && sh.phase.load(Ordering::Relaxed) == MEASURING
                    && (sh.only.is_empty() || has(&t, &sh.only)) =>
            {
                mine += 1;
                if let Some(ts) = timestamp_us(&t) {
                    let mut l = lat.borrow_mut();
                    if l.len() < MAX_SAMPLES_PER_THREAD {
                        l.push((now_us() - ts).clamp(0, u32::MAX as i64) as u32);
                    }
                }
            }
            Frame::Text(t) if has(&t, b"\"type\":\"missed\"") => {
                let v: serde_json::Value = serde_json::from_slice(&t).unwrap_or_default();
                sh.missed.fetch_add(v["count"].as_u64().unwrap_or(0), Ordering::Relaxed);
            }
            Frame::Ping(p) => {
                sh.pings.fetch_add(1, Ordering::Relaxed);
                if conn.send(Message::Pong(p)).await.is_err() {
                    sh.closed_early.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            _ => {}
        }
    }
    sh.events.fetch_add(mine, Ordering::Relaxed);
    counted.borrow_mut().push(mine);
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
}

/// One client thread: opens `n` sessions `batch` at a time, then runs them until STOPPING.
fn client_thread(o: Arc<Opts>, sh: Arc<Shared>, n: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            // No pool limit (awc's default is 100 connections per client).
            let connector = awc::Connector::new().limit(0).timeout(Duration::from_secs(30));
            let client = awc::Client::builder().connector(connector).timeout(Duration::from_secs(30)).finish();
            let lat = Rc::new(RefCell::new(Vec::new()));
            let counted = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::with_capacity(n);
            let mut opened = 0;
            while opened < n && sh.phase.load(Ordering::Relaxed) == CONNECTING {
                let k = o.batch.min(n - opened);
                let batch = futures_util::future::join_all((0..k).map(|_| open(&client, &o))).await;
                for r in batch {
                    match r {
                        Ok(conn) => {
                            sh.ready.fetch_add(1, Ordering::Relaxed);
                            let (sh, lat, counted) = (sh.clone(), lat.clone(), counted.clone());
                            tasks.push(actix_rt::spawn(run_session(conn, sh, lat, counted)));
                        }
                        Err(e) => sh.fail(e),
                    }
                }
                opened += k;
            }
            for t in tasks {
                let _ = t.await;
            }
            sh.latencies_us.lock().unwrap().extend(lat.borrow().iter());
            sh.per_client.lock().unwrap().extend(counted.borrow().iter());
        })
    })
}

/// The CPU time of process `pid` (user + system), in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, and ends with ')').
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// `Tcp: OutSegs` of `/proc/net/snmp` (segments sent in this network namespace).
fn out_segs() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut tcp = s.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let i = names.split_whitespace().position(|n| n == "OutSegs")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `GET /api/v2/ws/stats` of the service (same host and port as the WebSocket URL).
fn ws_stats(o: &Opts) -> Option<serde_json::Value> {
    let base = o.url.replacen("ws://", "http://", 1);
    let url = format!("{}/api/v2/ws/stats", base.split("/ws/").next()?);
    actix_rt::System::new().block_on(async move {
        let client = awc::Client::default();
        let mut res = client.get(url).bearer_auth(&o.token).send().await.ok()?;
        res.json::<serde_json::Value>().await.ok()
    })
}

/// Waits until every session is open or failed (at most `limit`).
fn wait_ready(o: &Opts, sh: &Shared, limit: Duration) -> Duration {
    let begin = Instant::now();
    while sh.ready.load(Ordering::Relaxed) + sh.failed.load(Ordering::Relaxed) < o.clients && begin.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    begin.elapsed()
}

fn start(o: &Arc<Opts>, sh: &Arc<Shared>) -> Vec<std::thread::JoinHandle<()>> {
    (0..o.threads)
        .map(|t| client_thread(o.clone(), sh.clone(), o.clients / o.threads + usize::from(t < o.clients % o.threads)))
        .collect()
}

fn stop(sh: &Shared, threads: Vec<std::thread::JoinHandle<()>>) {
    sh.phase.store(STOPPING, Ordering::Relaxed);
    for h in threads {
        let _ = h.join();
    }
}

fn report_failures(sh: &Shared) {
    let failed = sh.failed.load(Ordering::Relaxed);
    if failed > 0 {
        println!("  failed to open: {failed} (first: {})", sh.first_error.lock().unwrap().clone().unwrap_or_default());
    }
}

fn fanout(o: Arc<Opts>) {
    let only = o.priority.as_ref().map(|p| format!("\"priority\":\"{p}\"").into_bytes()).unwrap_or_default();
    let sh = Arc::new(Shared { only, ..Shared::default() });
    let threads = start(&o, &sh);
    let took = wait_ready(&o, &sh, Duration::from_secs(120));
    let ready = sh.ready.load(Ordering::Relaxed);
    println!("fanout: {ready}/{} sessions subscribed to '{}' in {:.1} s", o.clients, o.subscribe, took.as_secs_f64());
    report_failures(&sh);
    // Let the first burst (e.g. welcome-time events) pass, then measure.
    std::thread::sleep(Duration::from_secs(1));
    let before = ws_stats(&o);
    let cpu0 = o.pid.and_then(cpu_secs);
    let segs0 = out_segs();
    sh.phase.store(MEASURING, Ordering::Relaxed);
    let begin = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let elapsed = begin.elapsed().as_secs_f64();
    sh.phase.store(STOPPING, Ordering::Relaxed);
    let cpu1 = o.pid.and_then(cpu_secs);
    let segs1 = out_segs();
    let after = ws_stats(&o);
    stop(&sh, threads);
    let events = sh.events.load(Ordering::Relaxed);
    let mut per = sh.per_client.lock().unwrap().clone();
    per.sort_unstable();
    let mut l = sh.latencies_us.lock().unwrap().clone();
    l.sort_unstable();
    let pct =
        |p: f64| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0 };
    let which = o.priority.as_ref().map(|p| format!(" of {p} events")).unwrap_or_default();
    println!("  measured {elapsed:.1} s: {events} deliveries{which}, {:.0} deliveries/s", events as f64 / elapsed);
    if let (Some(lo), Some(hi)) = (per.first(), per.last()) {
        println!(
            "  per client: min {lo}, median {}, max {hi} events ({:.1} events/s at the median)",
            per[per.len() / 2],
            per[per.len() / 2] as f64 / elapsed
        );
    }
    println!(
        "  latency (receipt - envelope timestamp), {} samples: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        let cpu = c1 - c0;
        println!(
            "  service CPU while measuring: {cpu:.2} s ({:.0}% of a core), {:.2} µs per delivery",
            cpu / elapsed * 100.0,
            cpu * 1e6 / events.max(1) as f64
        );
    }
    if let (Some(a), Some(b)) = (segs0, segs1) {
        println!(
            "  TCP segments sent on the host: {} ({:.2} per delivery)",
            b - a,
            (b - a) as f64 / events.max(1) as f64
        );
    }
    let shed = |v: &Option<serde_json::Value>| {
        v.as_ref().map(|v| {
            (
                v["shed_low"].as_u64().unwrap_or(0),
                v["shed_normal"].as_u64().unwrap_or(0),
                v["closed_slow"].as_u64().unwrap_or(0),
            )
        })
    };
    if let (Some(b), Some(a)) = (shed(&before), shed(&after)) {
        println!(
            "  service while measuring: shed_low +{}, shed_normal +{}, closed_slow +{}",
            a.0 - b.0,
            a.1 - b.1,
            a.2 - b.2
        );
    }
    println!(
        "  missed frames reported {}, sessions closed early {}",
        sh.missed.load(Ordering::Relaxed),
        sh.closed_early.load(Ordering::Relaxed)
    );
}

fn idle(o: Arc<Opts>) {
    let Some(pid) = o.pid else {
        eprintln!("idle needs --pid SERVICE_PID");
        std::process::exit(2);
    };
    let sh = Arc::new(Shared::default());
    let rss0 = rss_kib(pid).unwrap_or(0);
    let threads = start(&o, &sh);
    let took = wait_ready(&o, &sh, Duration::from_secs(240));
    let ready = sh.ready.load(Ordering::Relaxed);
    println!("idle: {ready}/{} sessions subscribed to '{}' in {:.1} s", o.clients, o.subscribe, took.as_secs_f64());
    report_failures(&sh);
    sh.phase.store(MEASURING, Ordering::Relaxed);
    // Let the service settle (deferred frees, the last handshakes' buffers).
    std::thread::sleep(Duration::from_secs(3));
    let rss1 = rss_kib(pid).unwrap_or(0);
    let per = (rss1 as f64 - rss0 as f64) / ready.max(1) as f64;
    println!("  service RSS: before {rss0} KiB, with {ready} sessions {rss1} KiB: {per:.2} KiB per session");
    // Hold past the client timeout: the heartbeat must not close a session that answers pings.
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let rss2 = rss_kib(pid).unwrap_or(0);
    let stats = ws_stats(&o).unwrap_or_default();
    println!(
        "  after {:.0} s idle: RSS {rss2} KiB ({:.2} KiB per session); service says active {}, closed_timeout {}; \
         client saw {} closed, answered {} pings",
        o.seconds,
        (rss2 as f64 - rss0 as f64) / ready.max(1) as f64,
        stats["active"],
        stats["closed_timeout"],
        sh.closed_early.load(Ordering::Relaxed),
        sh.pings.load(Ordering::Relaxed)
    );
    stop(&sh, threads);
    std::thread::sleep(Duration::from_secs(2));
    let rss3 = rss_kib(pid).unwrap_or(0);
    let stats = ws_stats(&o).unwrap_or_default();
    println!("  after closing them: RSS {rss3} KiB, active {}", stats["active"]);
}

mod churn;

fn main() {
    let o = match parse() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match o.mode.as_str() {
        "fanout" => fanout(o),
        "churn" => churn::churn(o),
        _ => idle(o),
    }
}

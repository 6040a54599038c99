//! Load tool for the GNS3 passthrough (`scripts/bench-passthrough` runs it):
//!
//! `latency DIRECT_URL VIA_URL [--header 'K: V']... [--via-header 'K: V']... [--requests N]`
//!   One keep-alive client sends N small GETs to each URL, alternating (direct, via,
//!   direct...) so that both see the same machine load; prints p50/p90/p99 of each and the
//!   median added by the passthrough.
//!
//! `transfer UPLOAD_URL [--via-header 'K: V']... --mb N --pid PID`
//!   Streams N MB (generated on the fly, never held) to UPLOAD_URL with POST, then reads it
//!   back with GET from the same URL without keeping it, while a thread samples the service's
//!   RSS (`/proc/PID/status`) every 10 ms; prints throughput, the RSS before, its peak during
//!   each transfer and the growth, and checks the bytes that came back.
//!
//! Only loopback URLs are accepted; requests and bytes are bounded by the arguments.

use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHUNK: usize = 64 * 1024;

struct Opts {
    mode: String,
    urls: Vec<String>,
    headers: Vec<(String, String)>,
    via_headers: Vec<(String, String)>,
    requests: usize,
    mb: u64,
    pid: u32,
}

fn header(raw: &str) -> Result<(String, String), String> {
    let (k, v) = raw.split_once(':').ok_or("a header is 'Name: value'")?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

fn parse() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mode = args.next().ok_or("usage: passthrough latency|transfer ...")?;
    let mut o = Opts { mode, urls: vec![], headers: vec![], via_headers: vec![], requests: 2000, mb: 200, pid: 0 };
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--header" => o.headers.push(header(&val("--header")?)?),
            "--via-header" => o.via_headers.push(header(&val("--via-header")?)?),
            "--requests" => o.requests = val("--requests")?.parse().map_err(|_| "bad --requests")?,
            "--mb" => o.mb = val("--mb")?.parse().map_err(|_| "bad --mb")?,
            "--pid" => o.pid = val("--pid")?.parse().map_err(|_| "bad --pid")?,
            u if !u.starts_with("--") => o.urls.push(u.to_owned()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    for u in &o.urls {
        let host = u.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
        if !(host.starts_with("127.") || host.starts_with("localhost")) {
            return Err(format!("refusing non-loopback target {host}"));
        }
    }
    if !(1..=100_000).contains(&o.requests) || !(1..=4096).contains(&o.mb) {
        return Err("--requests must be 1-100000 and --mb 1-4096".into());
    }
    Ok(o)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn client() -> awc::Client {
    awc::Client::builder().timeout(Duration::from_secs(600)).finish()
}

async fn one_get(c: &awc::Client, url: &str, headers: &[(String, String)]) -> Result<f64, String> {
    let begin = Instant::now();
    let mut req = c.get(url);
    for (k, v) in headers {
        req = req.insert_header((k.as_str(), v.as_str()));
    }
    let mut res = req.send().await.map_err(|e| e.to_string())?;
    let body = res.body().await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("{url}: {} {}", res.status(), String::from_utf8_lossy(&body)));
    }
    Ok(begin.elapsed().as_secs_f64() * 1000.0)
}

async fn latency(o: &Opts) -> Result<(), String> {
    let [direct, via] = &o.urls[..] else { return Err("latency needs DIRECT_URL VIA_URL".into()) };
    let c = client();
    // Warm both paths (connections, login, caches of GNS3's own).
    for _ in 0..50 {
        one_get(&c, direct, &o.headers).await?;
        one_get(&c, via, &o.via_headers).await?;
    }
    let (mut d, mut v) = (Vec::with_capacity(o.requests), Vec::with_capacity(o.requests));
    let begin = Instant::now();
    for _ in 0..o.requests {
        d.push(one_get(&c, direct, &o.headers).await?);
        v.push(one_get(&c, via, &o.via_headers).await?);
        if begin.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    d.sort_by(f64::total_cmp);
    v.sort_by(f64::total_cmp);
    for (label, s) in [("direct GNS3", &d), ("via passthrough", &v)] {
        println!(
            "{label:16} n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms",
            s.len(),
            percentile(s, 0.5),
            percentile(s, 0.9),
            percentile(s, 0.99)
        );
    }
    println!("added median latency: {:.3} ms", percentile(&v, 0.5) - percentile(&d, 0.5));
    Ok(())
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Samples VmRSS every 10 ms; `peak` holds the largest since the last reset.
struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler { peak, stop }
    }

    fn take_peak(&self, pid: u32) -> u64 {
        self.peak.swap(rss_kib(pid, "VmRSS:"), Ordering::Relaxed)
    }
}

/// Byte `i` of the generated body.
fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 24) as u8
}

async fn transfer(o: &Opts) -> Result<(), String> {
    let [url] = &o.urls[..] else { return Err("transfer needs UPLOAD_URL".into()) };
    if o.pid == 0 {
        return Err("transfer needs --pid of the service".into());
    }
    let total = o.mb * 1024 * 1024;
    let c = client();
    let sampler = Sampler::start(o.pid);
    let before = rss_kib(o.pid, "VmRSS:");
    println!("service RSS before: {} KiB (VmHWM {} KiB)", before, rss_kib(o.pid, "VmHWM:"));
    sampler.take_peak(o.pid);

    let chunks = (0..total.div_ceil(CHUNK as u64)).map(move |n| {
        let start = n * CHUNK as u64;
        let end = (start + CHUNK as u64).min(total);
        Ok::<Bytes, std::io::Error>((start..end).map(byte_at).collect::<Vec<u8>>().into())
    });
    let mut req = c.post(url).insert_header(("Content-Type", "application/octet-stream"));
    for (k, v) in &o.via_headers {
        req = req.insert_header((k.as_str(), v.as_str()));
    }
    let begin = Instant::now();
    let body = actix_http::body::SizedStream::new(total, futures_util::stream::iter(chunks));
    let mut res = req.send_body(body).await.map_err(|e| format!("upload: {e}"))?;
    let status = res.status();
    let _ = res.body().await;
    let took = begin.elapsed().as_secs_f64();
    if !status.is_success() {
        return Err(format!("upload answered {status}"));
    }
    let up_peak = sampler.take_peak(o.pid);
    println!(
        "upload   {} MB in {took:.2} s ({:.0} MB/s), status {status}; RSS peak {up_peak} KiB, growth {} KiB",
        o.mb,
        o.mb as f64 / took,
        up_peak.saturating_sub(before)
    );

    let mut req = c.get(url);
    for (k, v) in &o.via_headers {
        req = req.insert_header((k.as_str(), v.as_str()));
    }
    let begin = Instant::now();
    let mut res = req.send().await.map_err(|e| format!("download: {e}"))?;
    let (mut got, mut wrong) = (0u64, 0u64);
    while let Some(chunk) = res.next().await {
        let chunk = chunk.map_err(|e| format!("download body: {e}"))?;
        wrong += chunk.iter().enumerate().filter(|(i, b)| **b != byte_at(got + *i as u64)).count() as u64;
        got += chunk.len() as u64;
    }
    let took = begin.elapsed().as_secs_f64();
    let down_peak = sampler.take_peak(o.pid);
    sampler.stop.store(true, Ordering::Relaxed);
    println!(
        "download {} MB in {took:.2} s ({:.0} MB/s), status {}; RSS peak {down_peak} KiB, growth {} KiB",
        got / (1024 * 1024),
        got as f64 / (1024.0 * 1024.0) / took,
        res.status(),
        down_peak.saturating_sub(before)
    );
    println!("service RSS after: {} KiB (VmHWM {} KiB)", rss_kib(o.pid, "VmRSS:"), rss_kib(o.pid, "VmHWM:"));
    if got != total || wrong != 0 {
        return Err(format!("the body came back wrong: {got} of {total} bytes, {wrong} bytes differ"));
    }
    println!("bytes back: all {total} equal");
    Ok(())
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = actix_rt::System::new().block_on(async {
        match o.mode.as_str() {
            "latency" => latency(&o).await,
            "transfer" => transfer(&o).await,
            other => Err(format!("unknown mode {other}: latency or transfer")),
        }
    });
    if let Err(e) = result {
        eprintln!("passthrough bench: {e}");
        std::process::exit(1);
    }
}

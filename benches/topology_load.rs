//! Load tool: reads one URL with N concurrent keep-alive clients for a bounded time and
//! request count, and prints requests/s and latency percentiles. Used by
//! `scripts/bench-topology` to compare a topology read through gns3-central with the
//! same read straight from GNS3, with the same client in the same run.
//!
//! cargo bench --bench topology_load -- URL [--header 'Name: value'] [--clients 10]
//!     [--threads 2] [--seconds 10] [--max-requests 200000] [--label NAME] [--expect 304]
//!
//! A request counts when its status is 2xx, or the `--expect`ed status (a 304 poll sends
//! `--header 'If-None-Match: "<etag>"' --expect 304`); anything else is an error.
//!
//! Only loopback URLs are accepted: this is a load generator.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Opts {
    url: String,
    headers: Vec<(String, String)>,
    clients: usize,
    threads: usize,
    seconds: f64,
    max_requests: u64,
    label: String,
    /// A status that counts as success besides 2xx.
    expect: Option<u16>,
}

fn parse() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut o = Opts {
        url: String::new(),
        headers: vec![],
        clients: 10,
        threads: 2,
        seconds: 10.0,
        max_requests: 200_000,
        label: String::new(),
        expect: None,
    };
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--header" => {
                let h = val("--header")?;
                let (k, v) = h.split_once(':').ok_or("--header takes 'Name: value'")?;
                o.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "--clients" => o.clients = val("--clients")?.parse().map_err(|_| "bad --clients")?,
            "--threads" => o.threads = val("--threads")?.parse().map_err(|_| "bad --threads")?,
            "--seconds" => o.seconds = val("--seconds")?.parse().map_err(|_| "bad --seconds")?,
            "--max-requests" => o.max_requests = val("--max-requests")?.parse().map_err(|_| "bad --max-requests")?,
            "--label" => o.label = val("--label")?,
            "--expect" => o.expect = Some(val("--expect")?.parse().map_err(|_| "bad --expect")?),
            u if !u.starts_with("--") && o.url.is_empty() => o.url = u.to_owned(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.url.is_empty() {
        return Err("usage: topology_load URL [--header 'K: V'] [--clients N] [--threads N] [--seconds S] [--max-requests N] [--label L] [--expect STATUS]".into());
    }
    let host = o.url.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        return Err(format!("refusing non-loopback target {host}"));
    }
    if !(o.seconds > 0.0 && o.seconds <= 120.0) {
        return Err("--seconds must be in (0, 120]".into());
    }
    o.clients = o.clients.clamp(1, 1000);
    o.threads = o.threads.clamp(1, o.clients);
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let lat: Arc<Mutex<Vec<f64>>> = Arc::default();
    let errors = Arc::new(Mutex::new(0u64));
    let bytes = Arc::new(Mutex::new(0u64));
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs_f64(o.seconds);
    let per_thread_max = o.max_requests / o.threads as u64 + 1;
    let handles: Vec<_> = (0..o.threads)
        .map(|t| {
            let (o, lat, errors, bytes) = (o.clone(), lat.clone(), errors.clone(), bytes.clone());
            let clients = o.clients / o.threads + usize::from(t < o.clients % o.threads);
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
                    let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
                    let tasks: Vec<_> = (0..clients)
                        .map(|_| {
                            let (client, o, lat, errors, bytes, count) =
                                (client.clone(), o.clone(), lat.clone(), errors.clone(), bytes.clone(), count.clone());
                            actix_rt::spawn(async move {
                                let mut mine = Vec::new();
                                while Instant::now() < deadline && count.get() < per_thread_max {
                                    count.set(count.get() + 1);
                                    let mut req = client.get(&o.url);
                                    for (k, v) in &o.headers {
                                        req = req.insert_header((k.as_str(), v.as_str()));
                                    }
                                    let t0 = Instant::now();
                                    let ok = match req.send().await {
                                        Ok(mut res) => match res.body().limit(64 << 20).await {
                                            Ok(b)
                                                if res.status().is_success()
                                                    || Some(res.status().as_u16()) == o.expect =>
                                            {
                                                *bytes.lock().unwrap() += b.len() as u64;
                                                true
                                            }
                                            _ => false,
                                        },
                                        Err(_) => false,
                                    };
                                    if ok {
                                        mine.push(t0.elapsed().as_secs_f64() * 1000.0);
                                    } else {
                                        *errors.lock().unwrap() += 1;
                                    }
                                }
                                lat.lock().unwrap().extend(mine);
                            })
                        })
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                })
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let elapsed = begin.elapsed().as_secs_f64();
    let mut l = lat.lock().unwrap().clone();
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) as f64 * p).round() as usize] };
    let n = l.len();
    let avg_size = if n > 0 { *bytes.lock().unwrap() / n as u64 } else { 0 };
    println!(
        "{:<28} {:>8.0} req/s  {:>7} ok  {:>5} errors  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  body {} B  ({} clients, {:.1} s)",
        if o.label.is_empty() { &o.url } else { &o.label },
        n as f64 / elapsed, n, *errors.lock().unwrap(), pct(0.5), pct(0.9), pct(0.99), avg_size, o.clients, elapsed
    );
}

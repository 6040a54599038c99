//! The `churn` scenario: clients reconnecting over and over (see the tool's doc in
//! `main.rs`); reports the service's RSS and heap per connection opened.

use super::*;

/// One session of the churn: open, hold `hold` reading (pings answered), close and wait
/// for the service's close frame (at most 2 s).
async fn churn_one(client: &awc::Client, o: &Opts, hold: Duration) -> Result<(), String> {
    let mut conn = open(client, o).await?;
    let until = Instant::now() + hold;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, conn.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Frame::Ping(p)))) => {
                let _ = conn.send(Message::Pong(p)).await;
            }
            Ok(Some(Ok(Frame::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return Err("closed by the service".into()),
            Ok(Some(Ok(_))) => {}
        }
    }
    let _ = conn.send(Message::Close(None)).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Ok(Some(Ok(f))) =
        tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), conn.next()).await
    {
        if matches!(f, Frame::Close(_)) {
            break;
        }
    }
    Ok(())
}

/// Opens and closes `total` sessions with `o.clients` concurrent loops over `o.threads`
/// threads, within `o.seconds` (a cap); how many were opened and how long it took.
fn churn_round(o: &Arc<Opts>, sh: &Arc<Shared>, total: usize) -> (usize, Duration) {
    let budget = Arc::new(AtomicUsize::new(total));
    let began = Instant::now();
    let cap = Duration::from_secs_f64(o.seconds);
    let threads: Vec<_> = (0..o.threads)
        .map(|t| {
            let (o, sh, budget) = (o.clone(), sh.clone(), budget.clone());
            let loops = o.clients / o.threads + usize::from(t < o.clients % o.threads);
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let connector = awc::Connector::new().limit(0).timeout(Duration::from_secs(30));
                    let client = awc::Client::builder().connector(connector).timeout(Duration::from_secs(30)).finish();
                    let loops = (0..loops).map(|i| {
                        let (o, sh, budget, client) = (o.clone(), sh.clone(), budget.clone(), client.clone());
                        async move {
                            let mut k = i as u64 * 7919 + t as u64;
                            while began.elapsed() < cap
                                && budget
                                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                                    .is_ok()
                            {
                                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                                let hold = Duration::from_millis(50 + (k >> 33) % 250);
                                match churn_one(&client, &o, hold).await {
                                    Ok(()) => sh.ready.fetch_add(1, Ordering::Relaxed),
                                    Err(e) => {
                                        sh.fail(e);
                                        0
                                    }
                                };
                            }
                        }
                    });
                    futures_util::future::join_all(loops).await;
                })
            })
        })
        .collect();
    for h in threads {
        let _ = h.join();
    }
    (total - budget.load(Ordering::Relaxed), began.elapsed())
}

/// `gns3central_heap_bytes` of the service's `/metrics` (needs a viewer token).
fn heap_bytes(o: &Opts) -> Option<f64> {
    let base = o.url.replacen("ws://", "http://", 1);
    let url = format!("{}/metrics", base.split("/ws/").next()?);
    let text = actix_rt::System::new().block_on(async move {
        let mut res = awc::Client::default().get(url).bearer_auth(&o.token).send().await.ok()?;
        String::from_utf8(res.body().limit(16 << 20).await.ok()?.to_vec()).ok()
    })?;
    text.lines().find_map(|l| l.strip_prefix("gns3central_heap_bytes ")).and_then(|v| v.trim().parse().ok())
}

/// Waits (at most 30 s) until the service reports no open session.
fn wait_all_gone(o: &Opts) -> bool {
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(30) {
        if ws_stats(o).is_some_and(|v| v["active"] == 0) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub(super) fn churn(o: Arc<Opts>) {
    let Some(pid) = o.pid else {
        eprintln!("churn needs --pid SERVICE_PID");
        std::process::exit(2);
    };
    let sh = Arc::new(Shared::default());
    let rss_start = rss_kib(pid).unwrap_or(0);
    let (warm, took) = churn_round(&o, &sh, o.clients * 2);
    wait_all_gone(&o);
    let (rss0, heap0) = (rss_kib(pid).unwrap_or(0), heap_bytes(&o));
    println!(
        "churn: {} clients; warm-up {warm} sessions in {:.1} s: RSS {rss_start} → {rss0} KiB",
        o.clients,
        took.as_secs_f64()
    );
    let (opened, took) = churn_round(&o, &sh, o.connections);
    let gone = wait_all_gone(&o);
    let (rss1, heap1) = (rss_kib(pid).unwrap_or(0), heap_bytes(&o));
    let per = |a: f64, b: f64| (b - a) / opened.max(1) as f64;
    println!(
        "  {opened} sessions opened and closed in {:.1} s ({:.0}/s); all gone: {gone}",
        took.as_secs_f64(),
        opened as f64 / took.as_secs_f64()
    );
    println!(
        "  RSS after warm-up {rss0} KiB, after the churn {rss1} KiB: {:+.0} KiB, {:.1} bytes per connection",
        rss1 as f64 - rss0 as f64,
        per(rss0 as f64 * 1024.0, rss1 as f64 * 1024.0)
    );
    if let (Some(h0), Some(h1)) = (heap0, heap1) {
        println!("  heap (mallinfo2) {h0:.0} → {h1:.0} bytes: {:.1} bytes per connection", per(h0, h1));
    }
    report_failures(&sh);
}

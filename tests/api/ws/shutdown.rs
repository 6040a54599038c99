//! Shutdown: sessions closed with 1001, in-process and on SIGTERM to the binary.

use super::*;

#[actix_rt::test]
async fn shutdown_closes_sessions_with_1001() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut a, _) = WsClient::connect(&app).await;
    let (mut b, _) = WsClient::connect(&app).await;
    let began = Instant::now();
    let stopping = actix_rt::spawn({
        let s = app.shutdown.clone();
        async move { s.shutdown().await }
    });
    assert_eq!(a.close_code(Duration::from_secs(10)).await.0, Some(u16::from(CloseCode::Away)));
    assert_eq!(b.close_code(Duration::from_secs(10)).await.0, Some(u16::from(CloseCode::Away)));
    stopping.await.expect("shutdown ran");
    assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
    assert!(app.client.get(app.url("/healthz")).send().await.is_err(), "the server still answers");
}

/// SIGTERM to the real binary: the session gets 1001, then the process exits.
#[actix_rt::test]
async fn sigterm_closes_sessions_with_1001_then_the_process_exits() {
    let port = crate::helpers::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gns3-central"))
        .args(["serve", "--test-mode"])
        .env("GNS3_CENTRAL__HTTP__BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    // Without configured tokens, on loopback, the admin token for this run is printed once.
    let stdout = child.stdout.take().expect("stdout");
    let token = actix_rt::task::spawn_blocking(move || {
        use std::io::BufRead;
        let lines = std::io::BufReader::new(stdout).lines().map_while(Result::ok);
        // `export TOKEN=g3c_…` (docs/access-control.md); bounded: the line comes first or never.
        lines.take(20).find_map(|l| l.strip_prefix("export TOKEN=").map(str::to_owned))
    })
    .await
    .expect("reader")
    .expect("the generated admin token on stdout");
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "the service did not come up");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut ws, _) = WsClient::connect_to(&base, &token).await;
    let began = Instant::now();
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -TERM failed");
    assert_eq!(ws.close_code(Duration::from_secs(10)).await.0, Some(u16::from(CloseCode::Away)));
    let exited = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if began.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the process did not exit within 15 s of SIGTERM");
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited:?}");
}

//! A throwaway `redis-sentinel` for tests, watching a master started by `redis.rs`: on a
//! free 127.0.0.1 port, quorum 1, a master counted down after 500 ms, its config file in
//! its own temporary directory, killed on drop. Include it next to `redis.rs` (it uses
//! that file's `RedisServer` for the port helpers):
//! `#[path = "support/sentinel.rs"] mod sentinel;`
//!
//! A missing redis-sentinel is a test failure, never a skip (`apt-get install
//! redis-sentinel`; `scripts/gns3-testbed install` does). `REDIS_SENTINEL_BIN` may name
//! another binary.

#![allow(dead_code)]

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const MASTER_NAME: &str = "g3c-test";

pub struct Sentinel {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Sentinel {
    /// Watches the master on `master_port`; returns once it answers PING.
    pub fn start(master_port: u16) -> Sentinel {
        let port = loop {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
            let p = l.local_addr().expect("local addr").port();
            if p != 26379 && p != 6379 {
                break p;
            }
        };
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("gns3central-sentinel-{}-{port}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("sentinel dir");
        let conf = dir.join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {log}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {MASTER_NAME} 500\n\
             sentinel failover-timeout {MASTER_NAME} 3000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir = dir.display(),
            log = dir.join("sentinel.log").display(),
        );
        std::fs::write(&conf, text).expect("sentinel.conf");
        let bin = std::env::var("REDIS_SENTINEL_BIN").unwrap_or_else(|_| "redis-sentinel".into());
        let child = match Command::new(&bin)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                panic!("{bin} not found: the Sentinel tests need it; install it: apt-get install redis-sentinel")
            }
            Err(e) => panic!("cannot run {bin}: {e}"),
        };
        let me = Sentinel { port, dir, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "redis-sentinel did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// `host:port`, as `[redis] sentinels` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The master's port as the sentinel names it now.
    pub async fn master_port(&self) -> Option<u16> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).ok()?;
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        let addr: Option<(String, String)> =
            redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(MASTER_NAME).query_async(&mut c).await.ok()?;
        addr.and_then(|(_, p)| p.parse().ok())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

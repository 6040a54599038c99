//! A throwaway `redis-server` for tests: started on a free 127.0.0.1 port (never 6379,
//! where a real Redis may run) with no persistence (`--save "" --appendonly no`) in its
//! own temporary directory, ready once it answers PING, killed on drop. It can be killed
//! and started again on the same port to test outages. `start_persistent` keeps its data
//! across a kill (an append-only file synced on every write), `flush_files` forgets it.
//!
//! Self-contained (std only) so any test crate can include it by path:
//! `#[path = "../../actors/tests/support/redis.rs"] mod redis_server;`
//!
//! A missing redis-server is a test failure, never a skip: the message says how to
//! install it. `REDIS_SERVER_BIN` may name another binary.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    persistent: bool,
    /// More arguments (a replica's `--replicaof`).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a fresh server; panics (test failure) if it cannot.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// A server that keeps its data across `kill` + `restart` (append-only file,
    /// `appendfsync always`: even a SIGKILL loses no acknowledged write).
    pub fn start_persistent() -> RedisServer {
        Self::start_with(true)
    }

    /// Removes what a persistent server wrote to disk (call it between `kill` and
    /// `restart`: the server comes back empty, like a flushed one).
    pub fn flush_files(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A replica of the server on `master_port` (for Sentinel tests).
    pub fn start_replica_of(master_port: u16) -> RedisServer {
        Self::start_full(false, vec!["--replicaof".into(), "127.0.0.1".into(), master_port.to_string()])
    }

    fn start_with(persistent: bool) -> RedisServer {
        Self::start_full(persistent, Vec::new())
    }

    fn start_full(persistent: bool, extra: Vec<String>) -> RedisServer {
        let mut last = String::new();
        // The free port found may be taken before redis binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer { port, dir: temp_dir(port), child: None, persistent, extra: extra.clone() };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL, like a crash; returns once the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: nothing was persisted).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The port may linger for a moment after the kill.
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("could not restart redis-server on port {}: {e}", self.port),
            }
        }
    }

    /// Sends one command and returns the first line of the reply (`+OK`, `:1`, `$5`...).
    pub fn command(&self, args: &[&str]) -> Result<String, String> {
        let mut stream = connect(self.port).map_err(|e| e.to_string())?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        read_line(&mut stream)
    }

    /// Whether the server answers PING now.
    pub fn answers_ping(&self) -> bool {
        self.command(&["PING"]).is_ok_and(|r| r == "+PONG")
    }

    fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let log = self.dir.join("redis.log");
        let spawned = Command::new(&bin)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                panic!("{bin} not found: the cache tests need a real Redis; install it: apt-get install redis-server")
            }
            Err(e) => panic!("cannot run {bin}: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.answers_ping() {
                return Ok(());
            }
            if !self.is_running() || Instant::now() > deadline {
                self.kill();
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                return Err(format!(
                    "redis-server on port {} did not answer PING: {}",
                    self.port,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if port != 6379 {
            return port;
        }
    }
}

fn temp_dir(port: u16) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!("gns3central-redis-{}-{port}-{nanos}", std::process::id()))
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(stream)
}

fn read_line(stream: &mut TcpStream) -> Result<String, String> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return Err("connection closed".into()),
            Ok(_) => out.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
    out.truncate(out.len() - 2);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

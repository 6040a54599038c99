//! The real binary as a process (`serve` with a config file written for the test), for
//! what only a process shows: signals, exit codes, stderr and log files. Its stdout and
//! stderr go to files in its own temporary directory; `Drop` kills it if still running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Service {
    /// Writes `config` (TOML; `{PORT}` and `{DIR}` are replaced by the chosen port and
    /// the temporary directory), starts `serve --config` with `args` and `env`, and waits
    /// until `/healthz` answers.
    pub async fn start(config: &str, args: &[&str], env: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = crate::helpers::free_port();
        let config = config.replace("{PORT}", &port.to_string()).replace("{DIR}", &dir.path().display().to_string());
        let file = dir.path().join("config.toml");
        std::fs::write(&file, config).expect("the config file is written");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gns3-central"));
        for (k, _) in std::env::vars() {
            if k.starts_with("GNS3_") || k.starts_with("REDIS_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve").arg("--config").arg(&file).args(args).envs(env.iter().copied());
        cmd.stdout(Stdio::from(std::fs::File::create(dir.path().join("stdout")).expect("stdout file")));
        cmd.stderr(Stdio::from(std::fs::File::create(dir.path().join("stderr")).expect("stderr file")));
        let child = cmd.spawn().expect("the binary starts");
        let mut service = Service { child, base: format!("http://127.0.0.1:{port}"), dir };
        service.wait_healthy().await;
        service
    }

    async fn wait_healthy(&mut self) {
        let client = awc::Client::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.get(format!("{}/healthz", self.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the service exited ({status}) before answering:\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "the service did not come up:\n{}", self.stderr());
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn stderr(&self) -> String {
        read(&self.path("stderr"))
    }

    pub fn stdout(&self) -> String {
        read(&self.path("stdout"))
    }

    /// Sends a signal by name (`TERM`, `HUP`, `INT`).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `limit`; its status and how long it took.
    pub async fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, began.elapsed());
            }
            if began.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the process did not exit within {limit:?}:\n{}", self.stderr());
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

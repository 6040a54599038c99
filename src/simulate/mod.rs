//! GNS3 v2 stand-in (stub: being written).

use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    pub bind: SocketAddr,
    pub projects: usize,
    pub nodes: usize,
    pub links: bool,
    pub activity: f64,
    pub seed: Option<u64>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self { bind: SocketAddr::from(([127, 0, 0, 1], 3080)), projects: 1, nodes: 5, links: true, activity: 0.0, seed: None }
    }
}

pub struct Simulator {
    port: u16,
}

impl Simulator {
    pub async fn start(opts: SimulatorOptions) -> std::io::Result<Simulator> {
        Ok(Simulator { port: opts.bind.port() })
    }
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub async fn stop(self) {}
}

//! A GNS3 v2 stand-in: the subset of the gns3-server 2.2 controller API that gns3-central
//! uses (version, computes, projects, nodes, links, the controller and project notification
//! streams), with the same key sets, status codes, error bodies and notification quirks as
//! a real 2.2.61 (recorded with the test bed; `tests/api/contract.rs` compares the two).
//! One deliberate difference: node start succeeds (real v2 without ubridge answers 409).
//!
//! `Simulator::start` binds, then serves on the current actix system with its own small
//! `HttpServer`, plus a 1 s ticker (`compute.updated` on the controller stream, auto-close)
//! and the optional `--activity` generator. All of them share one `World` behind a std
//! `Mutex`: the HTTP workers run on their own threads, every critical section is a short,
//! synchronous model change plus non-blocking `try_send`s to the listeners, and nothing is
//! awaited while it is held, so an async mutex would only add cost. Holding one lock for a
//! change and its notifications also keeps every stream in the order the changes happened.
//!
//! Timings: `ping` after `PING_IDLE` (5 s) of silence on a stream, `compute.updated` every
//! second; a project with `auto_close` is closed `AUTO_CLOSE_DELAY` (5 s, checked by the
//! 1 s ticker) after its last project-stream client left. Real v2 waits 5 s too, but notices
//! a client leaving only at its next send, so it closes ~9 s after.

mod activity;
mod hub;
mod links;
mod nodes;
mod objects;
mod routes;
mod schema;
mod state;
mod ws;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hub::Hub;
use state::{Model, Scope};

/// Silence on a stream after which a `ping` is sent.
pub const PING_IDLE: Duration = Duration::from_secs(5);
/// How long a project with `auto_close` stays open after its last project-stream client left.
pub const AUTO_CLOSE_DELAY: Duration = Duration::from_secs(5);
/// Period of `compute.updated` on the controller stream (and of the auto-close check).
const TICK: Duration = Duration::from_secs(1);
/// HTTP workers: the stand-in is light; two keep a slow client from blocking others.
const WORKERS: usize = 2;

#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// Where to listen (port 0: any free port, see `Simulator::port`).
    pub bind: SocketAddr,
    /// Projects created at start (`lab-1`...).
    pub projects: usize,
    /// qemu nodes per initial project.
    pub nodes: usize,
    /// Chain each project's nodes with links.
    pub links: bool,
    /// Random changes per second (0: none).
    pub activity: f64,
    /// Seed for ids and activity; `None`: different every run.
    pub seed: Option<u64>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 3080)),
            projects: 1,
            nodes: 5,
            links: true,
            activity: 0.0,
            seed: None,
        }
    }
}

/// Everything the routes, streams and timers share.
pub(crate) struct World {
    model: Model,
    hub: Hub,
    /// The listening port (the local compute reports it).
    port: u16,
    /// For the cpu/memory figures of pings and computes; apart from the model's RNG so
    /// that the number of open streams does not change what a seeded activity does.
    load_rng: StdRng,
}

pub(crate) type Shared = Arc<Mutex<World>>;

/// The world, even if a thread panicked while holding it (its data is still consistent
/// enough for a stand-in: every change is applied before its events are flushed).
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, World> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl World {
    /// Publishes the model's pending notifications.
    fn flush(&mut self) {
        for event in self.model.take_events() {
            self.hub.publish(&event);
        }
    }

    /// Plausible cpu and memory usage percentages (one decimal, like gns3).
    fn load(&mut self) -> (f64, f64) {
        let cpu: f64 = self.load_rng.random_range(1.0..12.0);
        let mem: f64 = self.load_rng.random_range(20.0..22.0);
        ((cpu * 10.0).round() / 10.0, (mem * 10.0).round() / 10.0)
    }

    fn ping(&mut self) -> Bytes {
        let (cpu, mem) = self.load();
        hub::frame("ping", &objects::ping_json(cpu, mem))
    }

    /// Once per `TICK`: `compute.updated` to controller listeners, due auto-closes.
    fn tick(&mut self, now: Instant) {
        let (cpu, mem) = self.load();
        let compute = objects::compute_json(self.port, cpu, mem);
        self.hub.send(&Scope::Controller, hub::frame("compute.updated", &compute));
        for pid in self.hub.due_auto_close(now, AUTO_CLOSE_DELAY) {
            let closable = self.model.project(&pid).is_ok_and(|p| p.opened && p.auto_close());
            if closable && self.model.close_project(&pid).is_ok() {
                tracing::info!(project = %pid, "Stand-in: auto-closed a project nobody listens to.");
            }
        }
        self.flush();
    }
}

/// A running stand-in; `stop` ends it.
pub struct Simulator {
    port: u16,
    server: ServerHandle,
    shared: Shared,
    tasks: Vec<actix_rt::task::JoinHandle<()>>,
}

impl Simulator {
    /// Builds the initial topology, binds `opts.bind` and serves on the current actix
    /// system; returns once the socket listens.
    pub async fn start(opts: SimulatorOptions) -> std::io::Result<Simulator> {
        let listener = std::net::TcpListener::bind(opts.bind)?;
        let port = listener.local_addr()?.port();
        let mut model = Model::new(opts.seed);
        activity::build_topology(&mut model, &opts);
        model.take_events(); // nobody listens yet
        let load_rng = StdRng::seed_from_u64(opts.seed.unwrap_or_else(rand::random).wrapping_add(1));
        let shared: Shared = Arc::new(Mutex::new(World { model, hub: Hub::default(), port, load_rng }));

        let data = web::Data::new(shared.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(routes::dispatch)))
                .workers(WORKERS)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)?
                .run();
        let handle = server.handle();
        let mut tasks = vec![actix_rt::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "Stand-in HTTP server failed.");
            }
        })];
        let ticker = shared.clone();
        tasks.push(actix_rt::spawn(async move {
            let mut every = actix_rt::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                lock(&ticker).tick(Instant::now());
            }
        }));
        if opts.activity > 0.0 && opts.activity.is_finite() {
            tasks.push(actix_rt::spawn(activity::run(shared.clone(), opts.activity)));
        }
        tracing::info!(
            port,
            projects = opts.projects,
            nodes = opts.nodes,
            activity = opts.activity,
            "GNS3 stand-in listening."
        );
        Ok(Simulator { port, server: handle, shared, tasks })
    }

    /// `http://127.0.0.1:PORT` (the API is under `/v2`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Notification-stream clients (controller and project streams) connected now.
    pub fn stream_clients(&self) -> usize {
        lock(&self.shared).hub.listener_count()
    }

    /// Ends the notification streams (WebSockets get close code 1001), the timers and the
    /// HTTP server (in-flight requests get up to a second).
    pub async fn stop(self) {
        lock(&self.shared).hub.stop();
        for task in &self.tasks[1..] {
            task.abort();
        }
        self.server.stop(true).await;
        if let Some(server) = self.tasks.first() {
            server.abort();
        }
    }
}

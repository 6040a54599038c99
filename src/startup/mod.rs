//! `Application::build` wires the service once, in steps, each a function of its own
//! file: the GNS3 stand-in in test mode (`test_mode.rs`), the credentials and the listener
//! (`http.rs`), the cache and the event dispatcher (`events.rs`), one supervised
//! `Gns3Connector` per enabled GNS3 server and the cluster bridge (`connectors.rs`), the
//! audit trail, modules and sinks (`modules.rs`), the shared `AppState`, then the
//! actix-web server (`http.rs`) on a listener it binds itself, so tests can ask for port 0
//! and learn the real port. Stopping in order is `shutdown.rs`.

mod connectors;
mod events;
mod http;
mod modules;
mod shutdown;
mod test_mode;

use actix::Actor;
use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use gns3_central_actors::cache::CacheActor;
use gns3_central_actors::supervise::Supervision;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use crate::config::live::{Live, ReloadSource};
use crate::config::Settings;
use crate::simulate::Simulator;
use crate::state::AppState;
pub use shutdown::ShutdownHandle;

/// What `serve` flags change beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--no-events`: no notification ingestion or dispatch (REST only).
    pub no_events: bool,
    /// `--test-mode`: run the GNS3 stand-in in-process and use it as the `default` server.
    pub test_mode: bool,
    /// Where SIGHUP reads the configuration again (`serve`); `None`: SIGHUP is not handled.
    pub reload: Option<ReloadSource>,
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    simulator: Option<Simulator>,
    generated_token: Option<String>,
}

impl Application {
    pub async fn build(mut settings: Settings, opts: ServeOptions) -> std::io::Result<Self> {
        let simulator = match opts.test_mode {
            true => Some(test_mode::start_stand_in(&mut settings).await?),
            false => None,
        };
        let addr = settings.bind_addr().map_err(std::io::Error::other)?;
        let (auth, generated_token) = http::build_auth(&settings, addr)?;
        let listener = TcpListener::bind(addr)?;
        let port = listener.local_addr()?.port();

        // With Redis, what it holds of each server may be from before this start: not
        // served until the server's connector has connected (and dropped it).
        let cache = CacheActor::new(settings.cache.clone(), settings.redis_config())
            .map_err(std::io::Error::other)?
            .holding(settings.servers().map(|s| s.name.clone()))
            .start();
        let events = events::start(&settings, opts.no_events, &cache).await?;
        let supervision = Supervision::new(settings.supervision.policy());
        let connectors = connectors::start(&settings, &events, &supervision, &cache).await?;
        let parts = modules::start(&settings, &events, &connectors, &cache).await?;

        let live = Arc::new(Live::new(settings.clone(), opts.reload.clone()));
        let state = web::Data::new(AppState {
            servers: connectors.servers,
            default_server: connectors.default_server,
            settings: Arc::new(settings),
            started_at: chrono::Utc::now(),
            started: Instant::now(),
            events_enabled: !opts.no_events,
            ingest_enabled: connectors.ingest_enabled,
            dispatcher: events.dispatcher,
            cache,
            cluster: connectors.cluster,
            auth: auth.clone(),
            sessions: Arc::default(),
            modules: parts.modules,
            sinks: parts.sinks,
            metrics: Arc::default(),
            live,
            supervision,
            audit: parts.audit,
        });
        let server = http::serve(state.clone(), auth, opts.test_mode, listener)?;
        tracing::info!(%addr, port, "Listening.");
        Ok(Self { port, server, state, simulator, generated_token })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Stops the service as a signal does: sessions first (1001), then the HTTP server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(self.server.handle(), self.state.clone())
    }

    /// URL of the GNS3 stand-in in test mode.
    pub fn simulator_url(&self) -> Option<String> {
        self.simulator.as_ref().map(|s| s.url())
    }

    /// The admin token made at start when none is configured (loopback binds only).
    pub fn generated_token(&self) -> Option<&str> {
        self.generated_token.as_deref()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the server is stopped (signal or handle), then stops the stand-in.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.shutdown_handle();
        if self.state.live.reload.is_some() {
            actix_rt::spawn(shutdown::reload_on_sighup(self.state.clone()));
        }
        let mut server = self.server;
        let result = tokio::select! {
            r = &mut server => r,
            () = shutdown::stop_signal() => {
                tracing::info!("Stop signal received; shutting down.");
                // The server future must keep being polled: it is what carries out the stop.
                let ((), r) = tokio::join!(stopper.shutdown(), server);
                r
            }
        };
        if let Some(sim) = self.simulator {
            sim.stop().await;
        }
        result
    }
}

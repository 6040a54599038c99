//! Command line: `serve`, `status`, `events stats`, `check-config`, `simulate`, `token`. Each subcommand returns
//! the process exit code; `main` only calls `run`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::configuration::Settings;
use crate::simulate::{Simulator, SimulatorOptions};
use crate::startup::{Application, ServeOptions};
use crate::telemetry;

#[derive(Parser, Debug)]
#[command(
    name = "gns3-central",
    version,
    about = "Central hub between GNS3 servers and network-management tools.",
    long_about = "Central hub between GNS3 servers and network-management tools: one resilient \
connection per GNS3 server, its topology, node and project actions, served over REST.\n\n\
Start with `gns3-central serve --test-mode` to try it with a built-in GNS3 stand-in, then open \
http://127.0.0.1:8000/api/docs/."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Ask a running instance for its status; exit 1 when not ready, 2 when unreachable.
    Status(StatusArgs),
    /// Event statistics of a running instance: `events stats`.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Print the effective configuration (secrets masked); exit 1 when it is invalid.
    CheckConfig(ConfigArg),
    /// Run a GNS3 v2 stand-in (for demos and benchmarks).
    Simulate(SimulateArgs),
    /// API tokens: `token create` makes one and prints the lines for the configuration.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Counts per priority and type, queue depths, latency; exit 1 when live events are
    /// off or the queues are nearly full, 2 when unreachable.
    Stats(StatusArgs),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a new API token: prints it once, and the [[auth.tokens]] lines (its hash) to
    /// add to the configuration.
    Create(TokenCreateArgs),
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    /// A name for the token (shown in logs and errors), e.g. `grafana`.
    #[arg(long)]
    pub name: String,
    /// viewer (reads), operator (+ node and project actions) or admin (+ refresh, reconnect...).
    #[arg(long)]
    pub role: String,
    /// Limit the token to this project (UUID); repeat for several. Default: every project.
    #[arg(long = "project", value_name = "UUID")]
    pub projects: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// Configuration file overriding config/default.toml (only the keys you change).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Address to listen on, overriding http.bind (default 127.0.0.1:8000).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Log at debug level.
    #[arg(long)]
    pub debug: bool,
    /// Log JSON lines (overrides log.format).
    #[arg(long)]
    pub log_json: bool,
    /// Turn notification ingestion and event dispatch off (REST only).
    #[arg(long)]
    pub no_events: bool,
    /// Run a built-in GNS3 stand-in and use it as the `default` server: needs nothing else.
    #[arg(long)]
    pub test_mode: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Base URL of the instance (default: from http.bind of the configuration).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Print the raw JSON status.
    #[arg(long)]
    pub json: bool,
    /// API token (viewer or more) sent as `Authorization: Bearer`.
    #[arg(long, env = "GNS3_CENTRAL_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 3080)]
    pub port: u16,
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Projects to create at start.
    #[arg(long, default_value_t = 1)]
    pub projects: usize,
    /// Nodes per project.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Random changes per second (node start/stop, creation/deletion); 0 = none.
    #[arg(long, default_value_t = 0.0)]
    pub activity: f64,
    /// Seed of the random changes, for repeatable runs.
    #[arg(long)]
    pub seed: Option<u64>,
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Status(args) => crate::status_cmd::run(args).await,
        Command::Events(EventsCommand::Stats(args)) => crate::events_cmd::stats(args).await,
        Command::CheckConfig(args) => check_config(args),
        Command::Simulate(args) => simulate(args).await,
        Command::Token(TokenCommand::Create(args)) => token_create(args),
    }
}

fn load(config: &ConfigArg) -> Result<Settings, ExitCode> {
    Settings::load(config.config.as_deref()).map_err(|e| {
        eprintln!("gns3-central: {e}");
        ExitCode::from(1)
    })
}

async fn serve(args: ServeArgs) -> ExitCode {
    let mut settings = match load(&args.config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(bind) = args.bind.clone() {
        settings.http.bind = bind;
        if let Err(e) = settings.validate() {
            eprintln!("gns3-central: --bind: {e}");
            return ExitCode::from(1);
        }
    }
    if args.debug {
        settings.log.level = "debug".into();
    }
    if args.log_json {
        settings.log.format = "json".into();
    }
    let service_log = match settings.log.open_file(crate::telemetry::SERVICE_LOG) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gns3-central: cannot open the service log: {e}");
            return ExitCode::from(1);
        }
    };
    telemetry::init_with(&settings.log.level, settings.log.format == "json", service_log);
    let reload = crate::runtime_config::ReloadSource {
        file: args.config.config.clone(),
        bind: args.bind.clone(),
        debug: args.debug,
        log_json: args.log_json,
        test_mode: args.test_mode,
    };
    let opts = ServeOptions { no_events: args.no_events, test_mode: args.test_mode, reload: Some(reload) };
    let app = match Application::build(settings, opts).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("gns3-central: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(token) = app.generated_token() {
        // stdout, once, and never through the log: logs are often shipped elsewhere.
        println!("No API token is configured; admin token for this run (shown once):\n{token}");
    }
    eprintln!("gns3-central listening on http://127.0.0.1:{}/ (API docs: /api/docs/)", app.port());
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gns3-central: {e}");
            ExitCode::from(1)
        }
    }
}

fn token_create(args: TokenCreateArgs) -> ExitCode {
    use crate::auth::{token, Role};
    let name = args.name.trim();
    if name.is_empty() || name.contains(['"', '\\', '\n']) {
        eprintln!("gns3-central: --name must be a non-empty name without quotes, backslashes or newlines");
        return ExitCode::from(2);
    }
    let role = match Role::parse(&args.role) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gns3-central: --role {e}");
            return ExitCode::from(2);
        }
    };
    let mut projects = Vec::new();
    for p in &args.projects {
        match uuid::Uuid::parse_str(p.trim()) {
            Ok(id) => projects.push(format!("\"{id}\"")),
            Err(_) => {
                eprintln!("gns3-central: --project '{p}' is not a project UUID");
                return ExitCode::from(2);
            }
        }
    }
    let value = token::generate();
    println!("Token (shown only now; keep it secret):\n{value}\n");
    println!("Add to the configuration:\n[[auth.tokens]]");
    println!("name = \"{name}\"\nrole = \"{}\"\nhash = \"{}\"", role.as_str(), token::hash(&value));
    if !projects.is_empty() {
        println!("projects = [{}]", projects.join(", "));
    }
    ExitCode::SUCCESS
}

fn check_config(args: ConfigArg) -> ExitCode {
    match load(&args) {
        Ok(settings) => {
            println!("# effective configuration (secrets masked)");
            print!("{}", settings.to_masked_toml());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

async fn simulate(args: SimulateArgs) -> ExitCode {
    telemetry::init("info", false);
    if !(args.activity.is_finite() && args.activity >= 0.0) {
        eprintln!("gns3-central: --activity must be a non-negative number");
        return ExitCode::from(2);
    }
    let opts = SimulatorOptions {
        bind: std::net::SocketAddr::new(args.host, args.port),
        projects: args.projects,
        nodes: args.nodes,
        links: true,
        activity: args.activity,
        seed: args.seed,
    };
    let sim = match Simulator::start(opts).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("gns3-central: cannot start the stand-in: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("GNS3 stand-in (API v2) on {} — Ctrl-C to stop", sim.url());
    let _ = tokio::signal::ctrl_c().await;
    tokio::time::timeout(Duration::from_secs(5), sim.stop()).await.ok();
    ExitCode::SUCCESS
}

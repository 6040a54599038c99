//! The command line's shape (clap derive): subcommands and their arguments, each with the
//! help text `--help` prints.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    #[command(
        after_help = "Examples:\n  gns3-central serve --test-mode                  # built-in GNS3 stand-in, nothing else needed\n  gns3-central serve --config /etc/gns3-central/config.toml --log-json"
    )]
    Serve(ServeArgs),
    /// Ask a running instance for its status; exit 1 when not ready, 2 when unreachable.
    #[command(
        after_help = "Examples:\n  gns3-central status --url http://127.0.0.1:8000 --token \"$TOKEN\"\n  GNS3_CENTRAL_TOKEN=\"$TOKEN\" gns3-central status --json | head -1"
    )]
    Status(StatusArgs),
    /// Events of a running instance: `events stats`, `events tail`.
    #[command(
        subcommand,
        after_help = "Examples:\n  gns3-central events stats --url http://127.0.0.1:8000 --token \"$TOKEN\"\n  gns3-central events tail --types node_status --json"
    )]
    Events(EventsCommand),
    /// Print the effective configuration (secrets masked); exit 1 when it is invalid.
    #[command(after_help = "Example:\n  gns3-central check-config --config /etc/gns3-central/config.toml")]
    CheckConfig(ConfigArg),
    /// Run a GNS3 v2 stand-in (for demos and benchmarks).
    #[command(
        after_help = "Example:\n  gns3-central simulate --port 3080 --projects 2 --nodes 6 --activity 5 --seed 1"
    )]
    Simulate(SimulateArgs),
    /// API tokens: `token create` makes one and prints the lines for the configuration.
    #[command(subcommand, after_help = "Example:\n  gns3-central token create --name grafana --role viewer")]
    Token(TokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Counts per priority and type, queue depths, latency; exit 1 when live events are
    /// off or the queues are nearly full, 2 when unreachable.
    #[command(
        after_help = "Examples:\n  gns3-central events stats --url http://127.0.0.1:8000 --token \"$TOKEN\"\n  gns3-central events stats --json | head -5"
    )]
    Stats(StatusArgs),
    /// The live event stream, one line per event (or JSON lines with --json); resumes
    /// after a reconnect without a gap or a duplicate. Exit 0 after --count events, 1 when
    /// live events are off or a gap could not be filled, 2 when unreachable or refused.
    #[command(
        after_help = "Examples:\n  gns3-central events tail --url http://127.0.0.1:8000 --token \"$TOKEN\"\n  gns3-central events tail --types node_status,alert.* --projects 5f1c9a5e-0d1b-4c6e-9a55-6f7f0f5b2c11 --json\n  gns3-central events tail --since 7f3a9c01-1042 --count 10"
    )]
    Tail(TailArgs),
}

#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Base URL of the instance (default: from http.bind of the configuration).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// API token (viewer or more) sent as `Authorization: Bearer`.
    #[arg(long, env = "GNS3_CENTRAL_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Print each event's envelope as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Groups (node_status, topology_changes, project_status, server_status, all), types or
    /// globs, comma-separated or repeated. Default: all.
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub types: Vec<String>,
    /// Only these projects (UUIDs, comma-separated or repeated); events without a project
    /// (server, circuit) always pass.
    #[arg(long, value_delimiter = ',', value_name = "UUID")]
    pub projects: Vec<String>,
    /// Start after this event id (the history after it is printed first).
    #[arg(long, value_name = "ID")]
    pub since: Option<String>,
    /// Stop after this many events (default: run until interrupted).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a new API token: prints it once, and the [[auth.tokens]] lines (its hash) to
    /// add to the configuration.
    #[command(
        after_help = "Examples:\n  gns3-central token create --name grafana --role viewer\n  gns3-central token create --name lab-bot --role operator --project 5f1c9a5e-0d1b-4c6e-9a55-6f7f0f5b2c11"
    )]
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

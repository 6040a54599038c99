//! Command line: `serve`, `status`, `events stats`, `check-config`, `simulate`, `token`.
//! The arguments are in `args.rs`; each subcommand returns the process exit code; `main`
//! only calls `run`.

pub mod args;
mod commands;
pub mod events;
pub mod status;

use std::process::ExitCode;

pub use args::*;

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => commands::serve(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Events(EventsCommand::Stats(args)) => events::stats(args).await,
        Command::CheckConfig(args) => commands::check_config(args),
        Command::Simulate(args) => commands::simulate(args).await,
        Command::Token(TokenCommand::Create(args)) => commands::token_create(args),
    }
}

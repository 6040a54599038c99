//! Command line: `serve`, `status`, `events stats`, `events tail`, `check-config`, `simulate`,
//! `token`.
//! The arguments are in `args.rs`; each subcommand returns the process exit code; `main`
//! only calls `run`.

/// `print!` that ignores a closed stdout (`out.rs`).
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::out::stdout(format_args!($($t)*)) };
}
/// `println!` that ignores a closed stdout (`out.rs`).
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::out::stdout(format_args!("{}\n", format_args!($($t)*))) };
}
/// `eprintln!` that ignores a closed stderr (`out.rs`).
macro_rules! errln {
    ($($t:tt)*) => { $crate::cli::out::stderr(format_args!("{}\n", format_args!($($t)*))) };
}

pub mod args;
mod commands;
pub mod events;
mod out;
pub mod status;
pub mod tail;

use std::process::ExitCode;

pub use args::*;

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => commands::serve(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Events(EventsCommand::Stats(args)) => events::stats(args).await,
        Command::Events(EventsCommand::Tail(args)) => tail::tail(args).await,
        Command::CheckConfig(args) => commands::check_config(args),
        Command::Simulate(args) => commands::simulate(args).await,
        Command::Token(TokenCommand::Create(args)) => commands::token_create(args),
    }
}

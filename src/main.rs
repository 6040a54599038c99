//! Entry point: parse the command line and hand over to `cli::run`.

use clap::Parser;
use gns3_central::cli::{run, Cli};
use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}

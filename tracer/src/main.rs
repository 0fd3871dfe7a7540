//! The `ctrace` binary: parse arguments, run a subcommand, report errors on one line.

use std::process::ExitCode;

use clap::Parser as _;
use tracer::cli::{Cli, Command};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("CTRACE_LOG", "warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Watch(args) => tracer::cli::watch::run(args),
        Command::Agent(args) => tracer::cli::agent::run(args),
        Command::Ps(args) => tracer::cli::ps::run(args),
        Command::Postmortem(args) => return tracer::cli::postmortem::main(args),
        Command::History(args) => return tracer::cli::history::main(args),
        Command::Inspect(args) => return tracer::cli::inspect::main(args),
        Command::Top(args) => tracer::cli::top::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctrace: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

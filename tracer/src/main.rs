//! The `ctrace` binary: parse arguments, run a subcommand, report errors on one line.

use std::process::ExitCode;

mod cli;

use cli::Command;

fn main() -> ExitCode {
    // Before any thread: one malloc arena for all of them (see `host::heap`).
    tracer::host::heap::one_arena();
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("CTRACE_LOG", "warn"))
        .format_timestamp(None)
        .init();
    // The command line, with the config file's keys for the options it leaves alone.
    let cli = cli::config::parse_cli();
    let result = match &cli.command {
        Command::Watch(args) => cli::watch::run(args),
        Command::Agent(args) => cli::agent::run(args),
        Command::Ps(args) => cli::ps::run(args),
        Command::Postmortem(args) => return cli::postmortem::main(args),
        Command::History(args) => return cli::history::main(args),
        Command::Caps(args) => return cli::caps::main(args),
        Command::Inspect(args) => return cli::inspect::main(args),
        Command::Top(args) => cli::top::run(args),
        Command::Record(args) => cli::replay::record(args),
        Command::Replay(args) => cli::replay::replay(args),
        Command::Doctor(args) => return cli::doctor::main(args),
        Command::Completions(args) => cli::shell::completions(args),
        Command::Man(args) => cli::shell::man(args),
        Command::BenchFloor(args) => cli::floor::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctrace: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! The subcommands. Each returns an [`Outcome`]; an `Err` from `lint` or
//! `compile` means the input was refused and is printed here (`exec` prints
//! its own refusals, masked and, with `--json`, as JSON).

mod compile;
mod exec;
mod lint;
pub mod stage;

use crate::cli::{Cli, Command};
use crate::output::exit::{self, Outcome};

/// Runs the command line and gives the process's exit code.
pub async fn run(cli: Cli) -> std::process::ExitCode {
    let outcome = match cli.command {
        Command::Exec(args) => Ok(exec::run(&args).await),
        Command::Compile(args) => compile::run(&args, &mut std::io::stdout().lock()),
        Command::Lint(args) => lint::run(&args, &mut std::io::stdout().lock()),
    };
    let outcome = outcome.unwrap_or_else(|e| {
        eprintln!("error: {}", crate::output::error_chain(&e));
        Outcome::Refused
    });
    exit::exit_code(outcome)
}

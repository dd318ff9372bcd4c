//! The subcommands. Each returns an [`Outcome`]; an `Err` from `lint` or
//! `compile` means the input was refused and is printed here (`exec` prints
//! its own refusals, masked and, with `--json`, as JSON; `daemon`, `ping`
//! and `prune` print their own errors and fail with 1, as do `completions`
//! and `man` when stdout cannot be written).

mod build;
mod compile;
mod completions;
mod exec;
mod lint;
mod list;
mod prune;
pub mod stage;

use crate::cli::{Cli, Command};
use crate::daemon;
use crate::logging::{self, Verbosity};
use crate::output::exit::{self, Outcome};
use crate::runner::Runner;

/// Runs the command line and gives the process's exit code.
pub async fn run(cli: Cli, runner: &Runner) -> std::process::ExitCode {
    if !matches!(cli.command, Command::Daemon(_) | Command::Ping(_)) {
        // The daemon picks its level from its settings.
        logging::install(Verbosity::Warn);
    }
    let outcome = match cli.command {
        Command::Exec(args) => Ok(exec::run(&args, runner).await),
        Command::Compile(args) => {
            compile::run(&args, runner.registry(), &mut std::io::stdout().lock()).await
        }
        Command::Lint(args) => lint::run(&args, runner.registry(), &mut std::io::stdout().lock()),
        Command::Daemon(args) => Ok(daemon::run(&args, runner).await),
        Command::Ping(args) => Ok(daemon::ping(&args).await),
        Command::Prune => Ok(prune::run(runner.types(), &mut std::io::stdout().lock()).await),
        Command::Completions(args) => {
            let script =
                completions::script(crate::cli::command(runner), args.shell, runner.name());
            Ok(completions::write(&script, &mut std::io::stdout().lock()))
        }
        Command::Man => completions::man_page(crate::cli::command(runner))
            .map(|page| completions::write(&page, &mut std::io::stdout().lock()))
            .map_err(anyhow::Error::from),
    };
    let outcome = outcome.unwrap_or_else(|e| {
        eprintln!("error: {}", crate::output::error_chain(&e));
        Outcome::Refused
    });
    exit::exit_code(outcome)
}

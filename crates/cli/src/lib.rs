//! The `runnerkit` command as a library: run Drone pipelines on this
//! machine (`exec`), print a pipeline's compiled Spec (`compile`), check a
//! pipeline file (`lint`), run a runner for a Drone server (`daemon`,
//! `ping`), remove what crashed runs left (`prune`).
//!
//! The command line is in `cli`, the commands in `commands` and
//! `daemon`, every byte shown in `output`, log messages in `logging`.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod commands;
mod context;
mod daemon;
mod engines;
mod interrupt;
mod logging;
mod output;
mod pipeline;

/// Parses the process's command line, runs it and gives the exit code.
pub async fn main() -> std::process::ExitCode {
    use clap::Parser;
    commands::run(cli::Cli::parse()).await
}

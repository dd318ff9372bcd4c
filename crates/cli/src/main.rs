//! `runnerkit`: run Drone pipelines on this machine (`exec`), print a
//! pipeline's compiled Spec (`compile`), check a pipeline file (`lint`),
//! run a runner for a Drone server (`daemon`, `ping`), remove what crashed
//! Docker runs left (`prune`).
//!
//! The command line is in [`cli`], the commands in [`commands`] and
//! [`daemon`], every byte shown in [`output`], log messages in [`logging`].

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

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    commands::run(cli::Cli::parse()).await
}

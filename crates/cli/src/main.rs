//! `runnerkit`: run Drone pipelines on this machine (`exec`), print a
//! pipeline's compiled Spec (`compile`), check a pipeline file (`lint`).
//!
//! The command line is in [`cli`], the commands in [`commands`], and every
//! byte shown in [`output`].

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod commands;
mod context;
mod engines;
mod interrupt;
mod output;
mod pipeline;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    commands::run(cli::Cli::parse()).await
}

//! A runner binary as a library: [`Runner`] takes the pipeline types a
//! runner serves ([`RunnerType`]: a pipeline type and how to get its
//! engine) and gives the whole command line over them: run pipelines on
//! this machine (`exec`), print a pipeline's compiled Spec (`compile`),
//! check a pipeline file (`lint`), run a runner for a Drone server
//! (`daemon`, `ping`), remove what crashed runs left (`prune`).
//!
//! The `runnerkit` binary is this builder with `docker` and `exec`
//! registered (see `src/main.rs`); a third party's runner is the same few
//! lines with its own type.
//!
//! Inside: the command line is in `cli`, the commands in `commands` and
//! `daemon`, every byte shown in `output`, log messages in `logging`.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod commands;
mod context;
mod daemon;
mod interrupt;
mod logging;
mod output;
mod pipeline;
mod platform;
mod runner;

pub use runner::{BoxError, EngineSettings, Runner, RunnerType};

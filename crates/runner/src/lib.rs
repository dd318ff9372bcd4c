//! The runner: what turns an engine into a runner a CI server hands work to.
//!
//! - [`Poller`]: N workers requesting stages from a [`Manager`](runnerkit_core::Manager),
//!   backing off (exponentially, with jitter, capped) when the server fails,
//!   draining on shutdown.
//! - [`StageRunner`]: one stage, start to end — accept, watch for
//!   cancellation, details, extension plugins (secret, registry, environ:
//!   [`SecretPluginClient`](runnerkit_core::SecretPluginClient),
//!   [`RegistryPluginClient`](runnerkit_core::RegistryPluginClient),
//!   [`EnvironPluginClient`](runnerkit_core::EnvironPluginClient)), environment, envsubst, parse, lint, secrets,
//!   compile, register the steps, run them on the engine while a reporting
//!   hook sends every step update and streams logs in batches, upload each
//!   step's full log, report the end. Every failure before the run is
//!   reported as the stage's `error` with its message.
//! - [`daemon`]: a runner daemon's settings from the environment and an
//!   env file, as Drone's runners read them ([`DaemonSettings`]).
//! - [`Journal`]: the stages a runner process holds, on disk, so that the
//!   next process ends on the server what a crashed one left `running`
//!   ([`StageRunner::recover`]).
//! - [`MemoryManager`]: an in-process queue implementing `Manager`, to embed a
//!   runner with no server or to test the whole flow without HTTP.
//!
//! ```
//! use std::sync::Arc;
//! use runnerkit_core::drone::{Build, Repo};
//! use runnerkit_core::{CancellationToken, Manager, Status};
//! use runnerkit_mock::MockEngine;
//! use runnerkit_runner::{MemoryManager, RunnerConfig, StageOutcome, StageRunner};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let manager = Arc::new(MemoryManager::new());
//! let yaml = "kind: pipeline\ntype: exec\nname: ci\nsteps:\n- name: test\n  commands: [make test]\n";
//! manager.enqueue(yaml, "ci", "exec", Repo::default(), Build::default());
//!
//! let runner = StageRunner::new(manager.clone(), Arc::new(MockEngine::new()), RunnerConfig::default());
//! let filter = runnerkit_core::drone::Filter { kind: "pipeline".into(), kind_type: "exec".into(), ..Default::default() };
//! let stage = manager.request(&filter).await.unwrap().unwrap();
//! let outcome = runner.run(stage.clone(), CancellationToken::new()).await.unwrap();
//! assert_eq!(outcome, StageOutcome::Ran(Status::Success));
//! assert_eq!(manager.stage(stage.id).unwrap().steps[0].status, Status::Success);
//! # }
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backoff;
mod compile;
pub mod daemon;
mod envfile;
mod error;
mod journal;
mod limits;
mod memory;
mod poller;
mod report;
mod stage;

pub use backoff::Backoff;
pub use daemon::DaemonSettings;
pub use error::{Error, StageError};
pub use journal::{Journal, JournalError, OrphanStage};
pub use limits::Limits;
pub use memory::{MemoryManager, Report};
pub use poller::{Poller, PollerStats};
pub use report::LogConfig;
pub use stage::{RunnerConfig, StageOutcome, StageRunner};

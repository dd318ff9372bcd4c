//! The runtime of runnerkit: runs one compiled stage ([`Spec`](runnerkit_core::Spec))
//! on one [`Engine`](runnerkit_core::Engine), telling every
//! [`Hook`](runnerkit_core::Hook) what happens.
//!
//! - Serial when no step declares `depends_on`, else a DAG; duplicate names,
//!   unknown dependencies and cycles are refused before anything runs.
//! - Run policies (`on-success`, `on-failure`, `always`), error
//!   policies (`fail`, `ignore`, `fail-fast`), exit code 78 (the step
//!   succeeds, everything not started yet is skipped, the stage passes).
//! - Cancellation through a token, a stage timeout and per-step timeouts:
//!   running steps are killed, pending ones skipped, the stage `killed`.
//! - Detached steps and services: started, not waited for, torn down at the end;
//!   `success` unless their log stream ends with an engine error (then `error`).
//! - Engine errors and panics fail the step with exit code 255 and a message;
//!   nothing hangs, and `destroy` always runs exactly once with its own deadline.
//! - The log path: bytes become numbered batches of lines
//!   ([`Lines`](runnerkit_core::Lines), borrowed from the engine's chunks),
//!   secrets are masked however the output was chunked, and a per-step limit
//!   truncates with a visible marker ([`logs`]). A step's whole log is kept
//!   ([`StepLog`](runnerkit_core::StepLog), spilled to a file past
//!   [`RuntimeConfig::log_memory`]) only for hooks that ask for it.
//! - Masking in one place: log lines, the runtime's own notes in a log, and
//!   every step and stage error text are masked with the stage's masked
//!   values before any hook, snapshot or caller sees them.
//!
//! ```
//! use std::sync::Arc;
//! use runnerkit_core::{CancellationToken, Spec, Status, Step};
//! use runnerkit_mock::{MockEngine, StepScript};
//! use runnerkit_runtime::Runtime;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let engine = MockEngine::new().with_step("test", StepScript::exit(1));
//! let spec = Spec {
//!     id: "demo".into(),
//!     steps: vec![Step::named("build"), Step::named("test"), Step::named("deploy")],
//!     ..Spec::default()
//! };
//! let runtime = Runtime::new(Arc::new(engine));
//! let done = runtime.run(Arc::new(spec), CancellationToken::new()).await.unwrap();
//! assert_eq!(done.stage.status, Status::Failure);
//! assert_eq!(done.steps[2].status, Status::Skipped); // on-success, after a failure
//! # }
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod hooks;
pub mod logs;
mod plan;
mod runtime;
mod step;

pub use config::RuntimeConfig;
pub use error::Error;
pub use runtime::Runtime;

//! The host-process engine: runs the steps of `type: exec` pipelines as
//! processes on this machine, the way Drone's exec runner does.
//!
//! [`LocalEngine`] implements [`runnerkit_core::Engine`]; its docs say what a
//! step sees (environment, working directory, `HOME`) and how steps are
//! stopped. It depends on `runnerkit-core` alone and passes the engine
//! conformance suite of `runnerkit-mock`. `docs/writing-an-engine.md` walks
//! through the `Engine` contract with this engine as its worked example.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod engine;
mod error;
mod launch;
pub mod orphans;
mod process;
mod stage;

pub use engine::{DEFAULT_KILL_GRACE, HomePolicy, LocalEngine};
pub use error::Error;

/// The name the engine reports and prefixes its errors with.
const ENGINE_NAME: &str = "local";

//! Test doubles for runnerkit: a scripted [`MockEngine`] that polices its
//! caller, and (feature `conformance`, on by default) the engine
//! [`conformance`] suite every engine runs from its own tests.
//!
//! ```
//! use std::time::Duration;
//! use runnerkit_mock::{CallKind, MockEngine, StepScript};
//!
//! let engine = MockEngine::new()
//!     .with_step("build", StepScript::exit(0).with_lines(["compiling", "done"]))
//!     .with_step("test", StepScript::exit(1).running_for(Duration::from_secs(3)))
//!     .with_step("deploy", StepScript::exit(0).error_at(CallKind::Create));
//! # let _ = engine;
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "conformance")]
pub mod conformance;
mod engine;
mod recording;

pub use engine::{Call, CallKind, MockEngine, StepScript};
pub use recording::Recorded;

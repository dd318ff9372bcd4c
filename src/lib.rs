//! runnerkit: build CI runners in Rust.
#![doc = "placeholder"]
pub use runnerkit_core as core;
pub use runnerkit_runtime as runtime;

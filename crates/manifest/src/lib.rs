//! The pipeline language: from the text of a `.drone.yml` to a compiled
//! [`runnerkit_core::Spec`].
//!
//! Work in progress: the public API lands here step by step.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

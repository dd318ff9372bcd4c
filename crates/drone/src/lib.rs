//! A [`runnerkit_core::Manager`] over Drone's HTTP runner RPC (v2).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

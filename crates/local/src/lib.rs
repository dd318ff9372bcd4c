//! The host-process engine: runs the steps of `type: exec` pipelines as
//! processes on this machine.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

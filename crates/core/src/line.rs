//! What a step produces: log lines and an exit state.

use serde::{Deserialize, Serialize};

/// One line of a step's log, after splitting and masking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// 0-based position of the line in the step's log.
    pub number: u64,
    /// The text, without its line terminator; secrets already masked.
    pub message: String,
    /// Whole seconds since the step started when the line arrived.
    pub timestamp: u64,
}

/// How a step's process ended, as reported by [`Engine::wait`](crate::Engine::wait).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitState {
    /// The exit code; 128 + signal for a process killed by a signal.
    pub exit_code: i32,
    /// The kernel's OOM killer ended it. The runtime then reports exit code 137.
    pub oom_killed: bool,
}

impl ExitState {
    /// An exit with `exit_code`, not OOM-killed.
    pub fn code(exit_code: i32) -> Self {
        Self {
            exit_code,
            oom_killed: false,
        }
    }
}

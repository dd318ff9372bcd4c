//! The exit status of `runnerkit`, picked in one place.
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | the stage passed, or no pipeline's `trigger` matched (`lint`: no problem found) |
//! | 1 | the stage failed, errored or was killed (Ctrl-C included); `daemon`, `ping`, `prune` could not do their job; `completions`, `man` could not write stdout |
//! | 2 | the input was refused: unreadable file, YAML error, lint error, unknown pipeline, engine not available |
//! | 130 | a second Ctrl-C: left at once, without tearing down |

use std::process::ExitCode;

use runnerkit_core::Status;

/// The stage passed, or `lint` found nothing.
pub const PASSED: u8 = 0;
/// The stage failed, errored or was killed.
pub const FAILED: u8 = 1;
/// The input was refused before anything ran.
pub const REFUSED: u8 = 2;
/// Interrupted twice: exited at once (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A stage ran and ended with this status.
    Ran(Status),
    /// Nothing to complain about (`lint`, `compile`).
    Clean,
    /// The input was refused.
    Refused,
    /// `daemon`, `ping` or `prune` could not do its job (a bad setting, an
    /// unreachable server or Docker daemon); `completions` or `man` could
    /// not write stdout.
    Failed,
    /// A second Ctrl-C.
    Interrupted,
}

/// The exit status for `outcome`.
pub fn code(outcome: Outcome) -> u8 {
    match outcome {
        // A build none of whose pipelines matched ran nothing: nothing failed.
        Outcome::Ran(Status::Success | Status::Skipped) | Outcome::Clean => PASSED,
        Outcome::Ran(_) | Outcome::Failed => FAILED,
        Outcome::Refused => REFUSED,
        Outcome::Interrupted => INTERRUPTED,
    }
}

/// [`code`] as the process's exit code.
pub fn exit_code(outcome: Outcome) -> ExitCode {
    ExitCode::from(code(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_success_or_nothing_to_run_passes() {
        assert_eq!(code(Outcome::Ran(Status::Success)), 0);
        assert_eq!(code(Outcome::Ran(Status::Skipped)), 0);
        for s in [Status::Failure, Status::Error, Status::Killed] {
            assert_eq!(code(Outcome::Ran(s)), 1, "{s}");
        }
        assert_eq!(code(Outcome::Clean), 0);
        assert_eq!(code(Outcome::Failed), 1);
        assert_eq!(code(Outcome::Refused), 2);
        assert_eq!(code(Outcome::Interrupted), 130);
    }
}

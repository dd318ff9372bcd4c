//! Step and stage statuses.

use serde::{Deserialize, Serialize};

/// The status of a step or a stage, spelled as Drone spells it on the wire.
///
/// The runtime only produces `Pending`, `Running`, `Success`, `Failure`,
/// `Skipped`, `Killed` and `Error`; the server-side values `Blocked`,
/// `Declined` and `WaitingOnDependencies` exist so that a stage received from
/// a Drone server round-trips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started yet.
    #[default]
    Pending,
    /// Started and not finished.
    Running,
    /// Finished with exit code 0 (or 78).
    Success,
    /// Finished with a non-zero exit code.
    Failure,
    /// Not run: its run policy, a hook, exit code 78 or a cancellation said so.
    Skipped,
    /// Stopped by a cancellation or a timeout.
    Killed,
    /// The engine could not run it (or the stage could not be prepared).
    Error,
    /// Server side: waiting for approval.
    Blocked,
    /// Server side: approval was declined.
    Declined,
    /// Server side: waiting for the stages it depends on.
    WaitingOnDependencies,
}

impl Status {
    /// True once the status can no longer change.
    pub fn is_done(self) -> bool {
        !matches!(
            self,
            Self::Pending | Self::Running | Self::Blocked | Self::WaitingOnDependencies
        )
    }

    /// True for `Failure`, `Error` and `Killed`: the outcomes that fail a stage.
    pub fn is_failed(self) -> bool {
        matches!(self, Self::Failure | Self::Error | Self::Killed)
    }

    /// The wire spelling, e.g. `"waiting_on_dependencies"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Skipped => "skipped",
            Self::Killed => "killed",
            Self::Error => "error",
            Self::Blocked => "blocked",
            Self::Declined => "declined",
            Self::WaitingOnDependencies => "waiting_on_dependencies",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spelling_matches_display() {
        for s in [
            Status::Pending,
            Status::Running,
            Status::Success,
            Status::Failure,
            Status::Skipped,
            Status::Killed,
            Status::Error,
            Status::Blocked,
            Status::Declined,
            Status::WaitingOnDependencies,
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }
}

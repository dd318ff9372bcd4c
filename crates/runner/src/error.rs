//! Errors of the runner.

use runnerkit_core::ManagerError;

/// Why a stage could not even be reported, or a runner could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Accepting the stage failed for another reason than another runner
    /// winning it.
    #[error("cannot accept stage {stage}")]
    Accept {
        /// The stage id.
        stage: i64,
        /// The server's answer.
        #[source]
        source: ManagerError,
    },
    /// A stage report the server must have (the start or the end) failed.
    #[error("cannot report stage {stage} to the server")]
    Report {
        /// The stage id.
        stage: i64,
        /// The server's answer.
        #[source]
        source: ManagerError,
    },
}

//! The local engine's failures, and how they reach the runtime as
//! [`EngineError`]s.

use std::io;
use std::path::PathBuf;

use runnerkit_core::{EngineError, EngineErrorKind};

/// Why a call on [`LocalEngine`](crate::LocalEngine) failed.
///
/// The runtime sees these as [`EngineError`]s named `local`: the variant's
/// text is the message and the I/O error, if any, the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A directory of the stage (its temporary root, home, workspace or
    /// script directory) could not be created.
    #[error("create stage directory {}", path.display())]
    StageDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The spec's workspace `path` climbs (`..`) out of the stage's
    /// directory; nothing is created.
    #[error("workspace path {path:?} leaves the stage's directory")]
    WorkspaceEscape {
        /// The workspace path as the spec gives it.
        path: String,
    },
    /// The step's script could not be written to its file.
    #[error("write the script of step {step:?} to {}", path.display())]
    Script {
        /// The step's name.
        step: String,
        /// The script file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The step's working directory could not be created, or does not exist.
    #[error("working directory {} of step {step:?}", path.display())]
    WorkingDir {
        /// The step's name.
        step: String,
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The step has no script and no entrypoint or command: nothing to run.
    #[error("step {step:?} has neither a script nor an entrypoint or command to run")]
    NothingToRun {
        /// The step's name.
        step: String,
    },
    /// The step's process could not be started (its program or working
    /// directory is missing, or the output pipe could not be made).
    #[error("start step {step:?} ({program})")]
    Spawn {
        /// The step's name.
        step: String,
        /// The program that was to run.
        program: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the step's output failed.
    #[error("read the output of step {step:?}")]
    Output {
        /// The step's name.
        step: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The step's process could not be waited for; its exit code is unknown.
    #[error("wait for step {step:?}: {reason}")]
    Lost {
        /// The step's name.
        step: String,
        /// What the operating system said.
        reason: String,
    },
    /// A call came out of the order the `Engine` contract documents (e.g.
    /// `start` before `create`, `tail` twice, a step of a stage never set up).
    #[error("{call} out of order for {what}: {reason}")]
    OutOfOrder {
        /// The call, e.g. `"start"`.
        call: &'static str,
        /// The stage or step it was about.
        what: String,
        /// What was expected first.
        reason: &'static str,
    },
    /// The call's token was cancelled before it could finish.
    #[error("{call} cancelled for {what}")]
    Cancelled {
        /// The call, e.g. `"setup"`.
        call: &'static str,
        /// The stage or step it was about.
        what: String,
    },
    /// The stage's temporary root could not be removed.
    #[error("remove stage directory {}", path.display())]
    Remove {
        /// The directory left behind.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `destroy`'s deadline passed before the teardown was complete.
    #[error("teardown of stage {stage:?} stopped by its deadline; left behind: {left}")]
    TeardownDeadline {
        /// The stage's id.
        stage: String,
        /// What may still exist: process groups and directories.
        left: String,
    },
}

impl Error {
    fn kind(&self) -> EngineErrorKind {
        match self {
            Self::Spawn { source, .. } | Self::WorkingDir { source, .. }
                if source.kind() == io::ErrorKind::NotFound =>
            {
                EngineErrorKind::NotFound
            }
            Self::NothingToRun { .. } | Self::OutOfOrder { .. } | Self::WorkspaceEscape { .. } => {
                EngineErrorKind::Misuse
            }
            Self::Cancelled { .. } => EngineErrorKind::Cancelled,
            Self::StageDir { .. }
            | Self::Script { .. }
            | Self::WorkingDir { .. }
            | Self::Spawn { .. }
            | Self::Output { .. }
            | Self::Lost { .. }
            | Self::Remove { .. }
            | Self::TeardownDeadline { .. } => EngineErrorKind::Other,
        }
    }

    fn into_source(self) -> Option<io::Error> {
        match self {
            Self::StageDir { source, .. }
            | Self::Script { source, .. }
            | Self::WorkingDir { source, .. }
            | Self::Spawn { source, .. }
            | Self::Output { source, .. }
            | Self::Remove { source, .. } => Some(source),
            Self::NothingToRun { .. }
            | Self::WorkspaceEscape { .. }
            | Self::Lost { .. }
            | Self::OutOfOrder { .. }
            | Self::Cancelled { .. }
            | Self::TeardownDeadline { .. } => None,
        }
    }
}

impl From<Error> for EngineError {
    fn from(e: Error) -> Self {
        // The message is our text alone and the I/O error the source, so a
        // chain printed by the caller reads each part once.
        let kind = e.kind();
        let message = e.to_string();
        let err = EngineError::new(crate::ENGINE_NAME, kind, message);
        match e.into_source() {
            Some(source) => err.with_source(source),
            None => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_not_found_and_reads_once() {
        let e = Error::Spawn {
            step: "build".into(),
            program: "/no/such/sh".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let e = EngineError::from(e);
        assert_eq!(e.kind(), EngineErrorKind::NotFound);
        assert_eq!(e.to_string(), "local: start step \"build\" (/no/such/sh)");
        assert_eq!(e.to_chain_string().matches("/no/such/sh").count(), 1);
        assert!(e.to_chain_string().ends_with(": entity not found"));
    }

    #[test]
    fn out_of_order_calls_are_misuse() {
        let e = EngineError::from(Error::OutOfOrder {
            call: "start",
            what: "step \"a\"".into(),
            reason: "create it first",
        });
        assert_eq!(e.kind(), EngineErrorKind::Misuse);
    }
}

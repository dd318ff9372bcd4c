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

/// Why a stage was not run (or stopped before its steps ended): the
/// stage's `error` on the server says the same, and a caller can tell the
/// cases apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The pipeline file was refused: not UTF-8, a YAML or substitution
    /// error, a lint problem, an unknown pipeline or a type this runner does
    /// not serve. The user's to fix.
    #[error("{0}")]
    Input(String),
    /// The runner does not take this repository or event
    /// (`DRONE_LIMIT_REPOS`, `DRONE_LIMIT_EVENTS`, `DRONE_LIMIT_TRUSTED`).
    #[error("{0}")]
    Limits(String),
    /// An extension plugin or a secret or registry source failed: the
    /// operator's to fix, the build may pass when retried.
    #[error("{message}")]
    Source {
        /// What failed, with its cause.
        message: String,
    },
    /// The server did not answer a call the stage needs.
    // The answer is in the message (the stage's `error` on the server must
    // say it) and so not also a `source`, which would print it twice.
    #[error("{call}: {answer}")]
    Server {
        /// What was asked, e.g. "cannot get the stage's details from the server".
        call: &'static str,
        /// The server's answer.
        answer: ManagerError,
    },
    /// The stage could not be accepted or its end not reported: the server
    /// holds it, and will reschedule it.
    #[error(transparent)]
    Lost(Error),
    /// The runtime refused the compiled stage, or the engine could not be
    /// had.
    #[error("{0}")]
    Engine(String),
    /// The server's answer to the stage's start was lost, or the server
    /// refused the start: the stage was not run.
    #[error("{0}")]
    Start(String),
    /// The runner itself failed (a panic in the stage's flow).
    #[error("the runner failed: {0}")]
    Panic(String),
}

impl StageError {
    /// One word for the kind, for logs and metrics: `input`, `limits`,
    /// `source`, `server`, `engine`, `start` or `panic`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Input(_) => "input",
            Self::Limits(_) => "limits",
            Self::Source { .. } => "source",
            Self::Server { .. } | Self::Lost(_) => "server",
            Self::Engine(_) => "engine",
            Self::Start(_) => "start",
            Self::Panic(_) => "panic",
        }
    }

    /// This error with `masker` applied to its text, so that a secret it
    /// quotes (a substituted image name, an engine's command line) reaches
    /// neither the server nor the log. The server's own answers are kept.
    pub(crate) fn masked(self, masker: &runnerkit_runtime::logs::Masker) -> Self {
        let mask = |text: String| masker.mask_str(&text);
        match self {
            Self::Input(t) => Self::Input(mask(t)),
            Self::Limits(t) => Self::Limits(mask(t)),
            Self::Source { message } => Self::Source {
                message: mask(message),
            },
            Self::Engine(t) => Self::Engine(mask(t)),
            Self::Start(t) => Self::Start(mask(t)),
            Self::Panic(t) => Self::Panic(mask(t)),
            kept @ (Self::Server { .. } | Self::Lost(_)) => kept,
        }
    }

    /// The error of an assembly: a source's failure, or the input's.
    pub(crate) fn from_assembly(error: runnerkit_manifest::Error) -> Self {
        use runnerkit_manifest::{CompileError, Error};
        match error {
            Error::Compile(CompileError::Secret { .. } | CompileError::Registry { .. }) => {
                Self::Source {
                    message: error.to_string(),
                }
            }
            Error::Compile(CompileError::RunnerVolume { .. }) => Self::Source {
                message: error.to_string(),
            },
            other => Self::Input(other.to_string()),
        }
    }
}

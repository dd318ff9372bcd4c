//! The crate's [`Error`] (connecting, pruning) and the mapping of Docker API
//! failures to the [`EngineError`]s the `Engine` calls return.
//!
//! "Already gone" and "does not exist" are recognised here, in one place, so
//! teardown stays idempotent and a missing image is reported as `NotFound`.

use bollard::errors::Error as ApiError;
use runnerkit_core::{EngineError, EngineErrorKind};

/// The name this engine reports in every [`EngineError`].
pub(crate) const ENGINE_NAME: &str = "docker";

/// Why connecting to the daemon or pruning failed.
///
/// Failures of the six `Engine` calls are [`EngineError`]s instead, as the
/// trait requires; this type covers what happens outside a stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `DOCKER_HOST` (or the address given) is not something we can connect
    /// to: an unknown scheme, or TLS files that cannot be read.
    #[error("invalid Docker host {address:?}")]
    InvalidHost {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The daemon at `address` did not answer: it is down, the socket is
    /// missing, or the ping timed out.
    #[error("cannot reach the Docker daemon at {address}")]
    Unreachable {
        /// The address tried (a socket path or a URL).
        address: String,
        /// The transport's error, or the timeout.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Docker API call failed; `operation` names the call and its object.
    #[error("{operation}")]
    Api {
        /// What was attempted, e.g. `remove network "rk-1"`.
        operation: String,
        /// The daemon's answer (the API client's error).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A local file could not be read (e.g. a test fixture's input).
    #[error("{operation}")]
    Io {
        /// What was attempted, naming the file.
        operation: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A setting (see [`DockerSettings`](crate::DockerSettings)) does not
    /// read.
    #[error("setting {name}: {why}")]
    Setting {
        /// The variable.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The operation stopped because its token was cancelled.
    #[error("{operation}: cancelled")]
    Cancelled {
        /// What was interrupted.
        operation: String,
    },
}

impl Error {
    /// An [`Error::Api`] for `operation`, caused by the client's `source`.
    pub(crate) fn api(operation: impl Into<String>, source: ApiError) -> Self {
        Self::Api {
            operation: operation.into(),
            source: Box::new(source),
        }
    }
}

/// A ping or version request that got no answer in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
pub(crate) struct NoAnswer(pub(crate) std::time::Duration);

/// The daemon answered "no such object".
pub(crate) fn is_not_found(err: &ApiError) -> bool {
    matches!(
        err,
        ApiError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The daemon answered "conflict": the name is taken (a container's, or a
/// network's from API 1.44 on). Podman 4.3 answers 500 instead, saying so
/// in its message.
pub(crate) fn is_conflict(err: &ApiError) -> bool {
    match err {
        ApiError::DockerResponseServerError {
            status_code: 409, ..
        } => true,
        ApiError::DockerResponseServerError {
            status_code: 500,
            message,
        } => message.contains("is already in use") || message.contains("network already exists"),
        _ => false,
    }
}

/// The request never got an answer from the daemon (the transport failed).
fn is_transport(err: &ApiError) -> bool {
    matches!(
        err,
        ApiError::HyperResponseError { .. }
            | ApiError::HttpClientError { .. }
            | ApiError::IOError { .. }
            | ApiError::RequestTimeoutError
            | ApiError::SocketNotFoundError(_)
    )
}

/// An [`EngineError`] for a failed API call: `operation` says what was
/// attempted on which object; the kind follows the daemon's answer.
pub(crate) fn api_error(operation: impl Into<String>, err: ApiError) -> EngineError {
    let kind = if is_not_found(&err) {
        EngineErrorKind::NotFound
    } else if is_transport(&err) {
        EngineErrorKind::Unavailable
    } else {
        EngineErrorKind::Other
    };
    EngineError::new(ENGINE_NAME, kind, operation).with_source(err)
}

/// An [`EngineError`] of `kind` with no underlying cause.
pub(crate) fn engine_error(kind: EngineErrorKind, message: impl Into<String>) -> EngineError {
    EngineError::new(ENGINE_NAME, kind, message)
}

/// `setup` or `create` found a `kind` object (`"volume"`) named `name` that
/// `owner` (`"this stage"`) did not create: it is not used, nor removed.
pub(crate) fn not_ours(kind: &str, name: &str, owner: &str) -> EngineError {
    engine_error(
        EngineErrorKind::Other,
        format!(
            "{kind} {name:?} already exists and was not created by {owner}: refusing to use it"
        ),
    )
}

/// The step's container `container` disappeared (or is being removed)
/// though runnerkit removes containers only in `destroy`.
pub(crate) fn removed_outside(step: &runnerkit_core::Step, container: &str) -> EngineError {
    engine_error(
        EngineErrorKind::NotFound,
        format!(
            "step {:?}: the container was removed outside runnerkit (container {container:?})",
            step.name
        ),
    )
}

/// The call was cancelled through its token.
pub(crate) fn cancelled(operation: impl std::fmt::Display) -> EngineError {
    engine_error(
        EngineErrorKind::Cancelled,
        format!("{operation}: cancelled"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_taken_name_is_a_conflict_on_docker_and_on_podman() {
        let answer = |status_code: u16, message: &str| ApiError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        };
        assert!(is_conflict(&answer(
            409,
            "Conflict. The container name is in use"
        )));
        assert!(is_conflict(&answer(
            500,
            "container create: creating container storage: the container name \"x\" is already in use by 57: that name is already in use"
        )));
        assert!(is_conflict(&answer(
            500,
            "network name x already used: network already exists"
        )));
        assert!(!is_conflict(&answer(
            500,
            "no command or entrypoint provided"
        )));
        assert!(!is_conflict(&answer(404, "no such container")));
    }

    use super::*;

    fn server(status_code: u16) -> ApiError {
        ApiError::DockerResponseServerError {
            status_code,
            message: "x".into(),
        }
    }

    #[test]
    fn daemon_answers_map_to_kinds() {
        assert_eq!(
            api_error("inspect image \"a\"", server(404)).kind(),
            EngineErrorKind::NotFound
        );
        assert_eq!(
            api_error("start", server(500)).kind(),
            EngineErrorKind::Other
        );
        assert_eq!(
            api_error("start", ApiError::RequestTimeoutError).kind(),
            EngineErrorKind::Unavailable
        );
        assert!(!is_not_found(&server(409)));
        assert!(is_conflict(&server(409)));
        assert!(!is_conflict(&server(404)));
    }

    #[test]
    fn message_names_the_object_once() {
        let e = api_error("create container \"rk-1-build\"", server(500));
        assert_eq!(e.to_string(), "docker: create container \"rk-1-build\"");
        assert!(
            e.to_chain_string()
                .ends_with(": Docker responded with status code 500: x")
        );
    }
}

//! The crate's error type.

use runnerkit_core::{EngineError, EngineErrorKind};

/// Why the Kubernetes engine could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A runner setting that does not read.
    #[error("setting {name}: {why}")]
    Setting {
        /// The variable.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// No cluster configuration: no kubeconfig and not in a pod.
    #[error(
        "no Kubernetes configuration (KUBECONFIG, ~/.kube/config or an in-cluster service account)"
    )]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A call to the API server failed.
    #[error("{what}")]
    Api {
        /// The call, and on which object.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    pub(crate) fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Error::Api { what, source }
    }

    /// The engine error a step or stage reports for this error.
    pub(crate) fn into_engine(self) -> EngineError {
        let kind = match &self {
            Error::Api { source, .. } if is_unavailable(source) => EngineErrorKind::Unavailable,
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } if status.code == 404 => EngineErrorKind::NotFound,
            Error::Config(_) => EngineErrorKind::Unavailable,
            _ => EngineErrorKind::Other,
        };
        let message = self.to_string();
        match self {
            Error::Api { source, .. } => {
                EngineError::new(crate::ENGINE, kind, message).with_source(source)
            }
            Error::Config(source) => {
                EngineError::new(crate::ENGINE, kind, message).with_source(source)
            }
            other => EngineError::new(crate::ENGINE, kind, other.to_string()),
        }
    }
}

/// The API server cannot be reached (as opposed to refusing a call).
fn is_unavailable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// True for the API's "not found".
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

//! Errors of building a [`DroneManager`](crate::DroneManager) from its settings,
//! and of the [`SecretPlugin`](crate::SecretPlugin) client.
//!
//! Errors of the RPC calls themselves are [`runnerkit_core::ManagerError`]s,
//! the shape every `Manager` shares.

/// Why a [`DroneConfig`](crate::DroneConfig) could not be read or turned into a
/// client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required setting is absent or empty.
    #[error("{name} is not set")]
    MissingSetting {
        /// The environment variable (or field) name, e.g. `DRONE_RPC_HOST`.
        name: &'static str,
    },
    /// A setting has a value the client cannot use. Secret values are never
    /// repeated here.
    #[error("{name} is invalid: {reason}")]
    InvalidSetting {
        /// The environment variable (or field) name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// TLS could not be set up (e.g. the platform's certificate store).
    #[error("cannot set up TLS for the Drone client")]
    Tls(#[source] rustls::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the Drone HTTP client")]
    Client(#[source] reqwest::Error),
    /// The secret plugin could not be reached, or did not answer within the
    /// request's deadline (one minute).
    #[error("cannot reach the secret plugin at {endpoint}")]
    PluginTransport {
        /// The plugin's endpoint, without any password it contains.
        endpoint: String,
        /// What failed (connection, TLS, timeout, reading the answer).
        #[source]
        source: reqwest::Error,
    },
    /// The secret plugin refused the request: an HTTP status above 299.
    #[error("the secret plugin answered {status}: {message}")]
    PluginRefused {
        /// The HTTP status code.
        status: u16,
        /// The answer's body (cut), or the status's reason phrase when the
        /// body is empty.
        message: String,
    },
    /// The secret plugin's answer could not be used: not a secret in JSON,
    /// too large, or an `aesgcm` body that does not decrypt with the token.
    #[error("the secret plugin's answer is invalid: {reason}")]
    PluginAnswer {
        /// What is wrong with it. Never contains the secret's value.
        reason: String,
    },
}

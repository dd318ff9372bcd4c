//! Errors of building a [`DroneManager`](crate::DroneManager) from its settings,
//! and of the extension plugin clients ([`SecretPlugin`](crate::SecretPlugin),
//! [`RegistryPlugin`](crate::RegistryPlugin),
//! [`EnvironPlugin`](crate::EnvironPlugin)).
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
    /// An extension plugin could not be reached, or did not answer within
    /// the request's deadline (one minute).
    #[error("cannot reach the {plugin} plugin at {endpoint}")]
    PluginTransport {
        /// Which plugin: `secret`, `registry` or `environ`.
        plugin: &'static str,
        /// The plugin's endpoint, without any password it contains.
        endpoint: String,
        /// What failed (connection, TLS, timeout, reading the answer).
        #[source]
        source: reqwest::Error,
    },
    /// An extension plugin refused the request: an HTTP status above 299.
    #[error("the {plugin} plugin answered {status}: {message}")]
    PluginRefused {
        /// Which plugin: `secret`, `registry` or `environ`.
        plugin: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The answer's body (cut), or the status's reason phrase when the
        /// body is empty.
        message: String,
    },
    /// An extension plugin's answer could not be used: not the JSON the
    /// plugin answers (a secret, a list of registries or of variables), too
    /// large, or an `aesgcm` body that does not decrypt with the token.
    #[error("the {plugin} plugin's answer is invalid: {reason}")]
    PluginAnswer {
        /// Which plugin: `secret`, `registry` or `environ`.
        plugin: &'static str,
        /// What is wrong with it. Never contains a value the plugin sent.
        reason: String,
    },
}

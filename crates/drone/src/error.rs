//! Errors of building a [`DroneManager`](crate::DroneManager) from its settings.
//!
//! Errors of the calls themselves are [`runnerkit_core::ManagerError`]s, the
//! shape every `Manager` shares.

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
}

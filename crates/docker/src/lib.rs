//! runnerkit's reference [`Engine`](runnerkit_core::Engine): each step runs in
//! a Docker container, driven through the Docker Engine API.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

/// Errors of the Docker engine outside the `Engine` calls (connecting, pruning).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Docker daemon at `address` could not be reached.
    #[error("cannot reach the Docker daemon at {address}")]
    Unreachable {
        /// The address tried (a socket path or a URL).
        address: String,
    },
}

/// The Docker engine: runs every step of a stage in its own container.
#[derive(Debug)]
pub struct DockerEngine {
    _private: (),
}

impl DockerEngine {
    /// Connects to the Docker daemon named by the environment (`DOCKER_HOST`,
    /// `DOCKER_CERT_PATH`, `DOCKER_TLS_VERIFY`) or the local socket.
    pub async fn connect() -> Result<DockerEngine, Error> {
        Err(Error::Unreachable {
            address: "unix:///var/run/docker.sock".into(),
        })
    }
}

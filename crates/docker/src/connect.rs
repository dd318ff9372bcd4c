//! Finding and reaching the Docker daemon: `DOCKER_HOST`, TLS, API version
//! negotiation and a bounded ping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};

use crate::error::{Error, NoAnswer};

/// The local socket used when `DOCKER_HOST` is not set.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Seconds bollard allows each request before giving up on its answer's
/// headers. Long operations (wait, attach, pull, build) answer their headers
/// at once and stream afterwards, so this bounds only a daemon that hangs.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Where the daemon is and how to reach it.
///
/// [`ConnectOptions::from_env`] reads the variables the `docker` CLI reads;
/// [`ConnectOptions::new`] names an address explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    address: String,
    tls: Option<PathBuf>,
    ping_timeout: Duration,
}

impl ConnectOptions {
    /// The daemon at `address`: `unix:///path`, `tcp://host:port`,
    /// `http://host:port` or `https://host:port`. Without TLS (see
    /// [`with_tls`](Self::with_tls)) unless the scheme is `https`.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            tls: None,
            ping_timeout: Duration::from_secs(5),
        }
    }

    /// What the `docker` CLI would use, or Podman's: `DOCKER_HOST`, else
    /// `CONTAINER_HOST` (Podman's variable), else the first local socket
    /// that exists of Docker's ([`DEFAULT_SOCKET`]), rootless Podman's
    /// (`$XDG_RUNTIME_DIR/podman/podman.sock`) and rootful Podman's
    /// (`/run/podman/podman.sock`); Docker's when none does. TLS when
    /// `DOCKER_TLS_VERIFY` is set to a non-empty value, reading `key.pem`,
    /// `cert.pem` and `ca.pem` from `DOCKER_CERT_PATH` (default `~/.docker`).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let address = default_address(var, |path| Path::new(path).exists());
        let mut options = Self::new(address);
        let verify = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
        if verify || options.address.starts_with("https://") {
            options.tls = Some(cert_dir_from_env());
        }
        options
    }

    /// Use TLS, with `key.pem`, `cert.pem` and `ca.pem` from `cert_dir`.
    pub fn with_tls(mut self, cert_dir: impl Into<PathBuf>) -> Self {
        self.tls = Some(cert_dir.into());
        self
    }

    /// How long to wait for the daemon's first answer before reporting it
    /// unreachable (default 5 seconds).
    pub fn with_ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// The address connected to, as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Builds the client, negotiates the API version down to the daemon's
    /// (never asking for a newer one than it speaks) and pings it.
    pub(crate) async fn connect(&self) -> Result<Docker, Error> {
        let docker = self.client()?;
        let unreachable = |source: Box<dyn std::error::Error + Send + Sync>| Error::Unreachable {
            address: self.address.clone(),
            source,
        };
        let docker = tokio::time::timeout(self.ping_timeout, docker.negotiate_version())
            .await
            .map_err(|_| unreachable(Box::new(NoAnswer(self.ping_timeout))))?
            .map_err(|e| unreachable(Box::new(e)))?;
        tokio::time::timeout(self.ping_timeout, docker.ping())
            .await
            .map_err(|_| unreachable(Box::new(NoAnswer(self.ping_timeout))))?
            .map_err(|e| unreachable(Box::new(e)))?;
        tracing::debug!(address = %self.address, version = ?docker.client_version(), "connected to Docker");
        Ok(docker)
    }

    fn client(&self) -> Result<Docker, Error> {
        let address = self.address.as_str();
        let result = if let Some(path) = address.strip_prefix("unix://") {
            if !Path::new(path).exists() {
                return Err(Error::Unreachable {
                    address: self.address.clone(),
                    source: format!("no socket at {path}").into(),
                });
            }
            Docker::connect_with_unix(address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if ["tcp://", "http://", "https://"]
            .iter()
            .any(|s| address.starts_with(s))
        {
            match &self.tls {
                Some(dir) => Docker::connect_with_ssl(
                    address,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    REQUEST_TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                ),
                None => {
                    Docker::connect_with_http(address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
                }
            }
        } else {
            return Err(Error::InvalidHost {
                address: self.address.clone(),
                source: "expected unix://, tcp://, http:// or https://".into(),
            });
        };
        result.map_err(|e| Error::InvalidHost {
            address: self.address.clone(),
            source: Box::new(e),
        })
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self::from_env()
    }
}

/// The daemon's address from the environment (`var`) and the sockets that
/// exist (`exists`): see [`ConnectOptions::from_env`].
fn default_address(var: impl Fn(&str) -> Option<String>, exists: impl Fn(&str) -> bool) -> String {
    if let Some(host) = var("DOCKER_HOST").or_else(|| var("CONTAINER_HOST")) {
        return host;
    }
    let docker = DEFAULT_SOCKET.trim_start_matches("unix://").to_owned();
    let rootless = var("XDG_RUNTIME_DIR").map(|dir| format!("{dir}/podman/podman.sock"));
    let rootful = Some("/run/podman/podman.sock".to_owned());
    [Some(docker), rootless, rootful]
        .into_iter()
        .flatten()
        .find(|path| exists(path))
        .map_or_else(
            || DEFAULT_SOCKET.to_owned(),
            |path| format!("unix://{path}"),
        )
}

fn cert_dir_from_env() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CERT_PATH").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".docker")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_comes_from_docker_host_then_container_host_then_a_socket() {
        fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            }
        }
        let none = |_: &str| false;
        let both = [
            ("DOCKER_HOST", "tcp://127.0.0.1:2375"),
            ("CONTAINER_HOST", "unix:///tmp/p.sock"),
        ];
        assert_eq!(default_address(env(&both), none), "tcp://127.0.0.1:2375");
        let podman = [("CONTAINER_HOST", "unix:///tmp/p.sock")];
        assert_eq!(default_address(env(&podman), none), "unix:///tmp/p.sock");
        // No variable: the first socket that exists.
        let runtime = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        assert_eq!(
            default_address(env(&runtime), |p| p == "/run/user/1000/podman/podman.sock"),
            "unix:///run/user/1000/podman/podman.sock"
        );
        assert_eq!(
            default_address(env(&runtime), |p| p.starts_with("/run/")),
            "unix:///run/user/1000/podman/podman.sock"
        );
        assert_eq!(
            default_address(env(&runtime), |_| true),
            DEFAULT_SOCKET,
            "Docker's socket comes first"
        );
        assert_eq!(
            default_address(env(&[]), |p| p == "/run/podman/podman.sock"),
            "unix:///run/podman/podman.sock"
        );
        // None exists: Docker's, so that the error names it.
        assert_eq!(default_address(env(&[]), none), DEFAULT_SOCKET);
    }

    #[test]
    fn unknown_scheme_is_an_invalid_host() {
        let err = ConnectOptions::new("ftp://x").client().unwrap_err();
        assert!(matches!(err, Error::InvalidHost { .. }), "{err:?}");
        assert_eq!(err.to_string(), "invalid Docker host \"ftp://x\"");
    }

    #[test]
    fn missing_socket_is_unreachable_and_named() {
        let err = ConnectOptions::new("unix:///nonexistent/docker.sock")
            .client()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot reach the Docker daemon at unix:///nonexistent/docker.sock"
        );
    }

    #[test]
    fn tls_files_that_cannot_be_read_are_reported_on_connect() {
        let options = ConnectOptions::new("tcp://127.0.0.1:2376").with_tls("/nonexistent");
        // The CA is read when the client is built.
        let err = options.client().unwrap_err();
        assert!(matches!(err, Error::InvalidHost { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_closed_port_fails_fast_naming_the_address() {
        // Port 1 on loopback: nothing listens there, the connection is refused.
        let options =
            ConnectOptions::new("tcp://127.0.0.1:1").with_ping_timeout(Duration::from_secs(2));
        let err = options.connect().await.unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("tcp://127.0.0.1:1"));
    }
}

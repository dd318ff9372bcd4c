//! [`DroneConfig`]: where the Drone server is and how to talk to it.

use std::time::Duration;

use runnerkit_core::settings::{
    RPC_HOST, RPC_PROTO, RPC_SECRET, RPC_SKIP_VERIFY, Setting, parse_bool,
};

use crate::{Error, RetryPolicy};

/// The Drone server's long polls (Request, Watch) are held for 30 s.
const SERVER_LONG_POLL: Duration = Duration::from_secs(30);

/// Settings of a [`DroneManager`](crate::DroneManager).
///
/// Read them the way Drone's runners do with [`DroneConfig::from_env`], or
/// build them with [`DroneConfig::new`] and the `with_*` methods. `Debug`
/// hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct DroneConfig {
    /// `http` or `https` (`DRONE_RPC_PROTO`, default `http`).
    pub proto: String,
    /// Host and optional port of the server, e.g. `drone.example.com`
    /// (`DRONE_RPC_HOST`).
    pub host: String,
    /// The shared secret sent as `X-Drone-Token` (`DRONE_RPC_SECRET`).
    pub secret: String,
    /// Accept any TLS certificate (`DRONE_RPC_SKIP_VERIFY`). The handshake
    /// signature is still checked; the certificate chain and name are not.
    pub skip_verify: bool,
    /// Deadline of one attempt of an ordinary call (everything but the long
    /// polls), answer body included. Default 60 s.
    pub request_timeout: Duration,
    /// Deadline of one attempt of a long poll (Request, Watch): the server's
    /// 30 s plus a margin for a slow network. Default 45 s.
    pub long_poll_timeout: Duration,
    /// Deadline of opening a connection (TCP and TLS). Default 10 s.
    pub connect_timeout: Duration,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for DroneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DroneConfig")
            .field("proto", &self.proto)
            .field("host", &self.host)
            .field("secret", &"******")
            .field("skip_verify", &self.skip_verify)
            .field("request_timeout", &self.request_timeout)
            .field("long_poll_timeout", &self.long_poll_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl DroneConfig {
    /// Settings for the server at `proto://host` with the shared `secret`, and
    /// default timeouts and retries.
    pub fn new(
        proto: impl Into<String>,
        host: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            proto: proto.into(),
            host: host.into(),
            secret: secret.into(),
            skip_verify: false,
            request_timeout: Duration::from_secs(60),
            long_poll_timeout: SERVER_LONG_POLL + Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }

    /// Reads `DRONE_RPC_PROTO` (default `http`), `DRONE_RPC_HOST`,
    /// `DRONE_RPC_SECRET` (both required) and `DRONE_RPC_SKIP_VERIFY` (a Go
    /// boolean: `1`, `t`, `true`, `0`, `f`, `false`, any case) from the
    /// process environment.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] or [`Error::InvalidSetting`], naming the
    /// variable.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading each variable through
    /// `lookup` (an env file merged with the environment, a test's map).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |setting: &Setting| setting.value_in(&lookup);
        // The protocol has a default: unset it reads as that.
        let proto = get(&RPC_PROTO).unwrap_or_default();
        let host = get(&RPC_HOST).ok_or(Error::MissingSetting {
            name: RPC_HOST.name,
        })?;
        let secret = get(&RPC_SECRET).ok_or(Error::MissingSetting {
            name: RPC_SECRET.name,
        })?;
        let skip_verify = match get(&RPC_SKIP_VERIFY) {
            None => false,
            Some(value) => parse_bool(&value).ok_or_else(|| Error::InvalidSetting {
                name: RPC_SKIP_VERIFY.name,
                reason: format!("{value:?} is not a boolean"),
            })?,
        };
        let config = Self::new(proto, host, secret).with_skip_verify(skip_verify);
        config.validate()?;
        Ok(config)
    }

    /// Sets [`skip_verify`](Self::skip_verify).
    pub fn with_skip_verify(mut self, skip_verify: bool) -> Self {
        self.skip_verify = skip_verify;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`long_poll_timeout`](Self::long_poll_timeout).
    pub fn with_long_poll_timeout(mut self, timeout: Duration) -> Self {
        self.long_poll_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`retry`](Self::retry).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// `proto://host`, the base every endpoint path is appended to.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.proto, self.host.trim_end_matches('/'))
    }

    /// Checks what can be checked without a network.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a protocol other than `http`/`https`, a
    /// host that is empty or carries a scheme, or a secret that cannot be an
    /// HTTP header value; [`Error::MissingSetting`] for an empty secret.
    pub fn validate(&self) -> Result<(), Error> {
        if self.proto != "http" && self.proto != "https" {
            return Err(Error::InvalidSetting {
                name: RPC_PROTO.name,
                reason: format!("{:?} is neither http nor https", self.proto),
            });
        }
        if self.host.trim_end_matches('/').is_empty() {
            return Err(Error::MissingSetting {
                name: RPC_HOST.name,
            });
        }
        if self.host.contains("://") {
            return Err(Error::InvalidSetting {
                name: RPC_HOST.name,
                reason: format!(
                    "{:?} carries a scheme; put it in {} and only the host here",
                    self.host, RPC_PROTO.name
                ),
            });
        }
        if self.secret.is_empty() {
            return Err(Error::MissingSetting {
                name: RPC_SECRET.name,
            });
        }
        if self.secret.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(Error::InvalidSetting {
                name: RPC_SECRET.name,
                reason: "it holds control characters, which an HTTP header cannot carry".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn reads_drone_variables_with_defaults() {
        let config = DroneConfig::from_lookup(lookup(&[
            ("DRONE_RPC_HOST", "drone.example.com"),
            ("DRONE_RPC_SECRET", "s3cr3t"),
        ]))
        .unwrap();
        assert_eq!(config.proto, "http");
        assert_eq!(config.host, "drone.example.com");
        assert_eq!(config.secret, "s3cr3t");
        assert!(!config.skip_verify);
        assert_eq!(config.base_url(), "http://drone.example.com");
        assert!(config.long_poll_timeout > SERVER_LONG_POLL);
    }

    #[test]
    fn reads_proto_and_skip_verify() {
        let config = DroneConfig::from_lookup(lookup(&[
            ("DRONE_RPC_PROTO", "https"),
            ("DRONE_RPC_HOST", "drone.example.com:8443/"),
            ("DRONE_RPC_SECRET", "s"),
            ("DRONE_RPC_SKIP_VERIFY", "True"),
        ]))
        .unwrap();
        assert!(config.skip_verify);
        assert_eq!(config.base_url(), "https://drone.example.com:8443");
    }

    #[test]
    fn names_the_missing_variable() {
        let err = DroneConfig::from_lookup(lookup(&[("DRONE_RPC_HOST", "h")])).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingSetting {
                    name: "DRONE_RPC_SECRET"
                }
            ),
            "{err:?}"
        );
        let err = DroneConfig::from_lookup(lookup(&[("DRONE_RPC_SECRET", "s")])).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingSetting {
                    name: "DRONE_RPC_HOST"
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_bad_values() {
        let base = [("DRONE_RPC_HOST", "h"), ("DRONE_RPC_SECRET", "s")];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            DroneConfig::from_lookup(lookup(&pairs)).unwrap_err()
        };
        assert!(matches!(
            with(("DRONE_RPC_SKIP_VERIFY", "yes")),
            Error::InvalidSetting {
                name: "DRONE_RPC_SKIP_VERIFY",
                ..
            }
        ));
        assert!(matches!(
            with(("DRONE_RPC_PROTO", "ftp")),
            Error::InvalidSetting {
                name: "DRONE_RPC_PROTO",
                ..
            }
        ));
        let err = DroneConfig::new("http", "https://h", "s")
            .validate()
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidSetting {
                name: "DRONE_RPC_HOST",
                ..
            }
        ));
    }

    #[test]
    fn never_shows_the_secret() {
        let config = DroneConfig::new("http", "h", "topsecret-value");
        assert!(!format!("{config:?}").contains("topsecret-value"));
        let err = DroneConfig::new("http", "h", "bad\nsecret")
            .validate()
            .unwrap_err();
        assert!(!err.to_string().contains("bad"), "{err}");
    }
}

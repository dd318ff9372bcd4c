//! Registry credentials (reference §13): Docker `config.json` files, static
//! entries and a combinator, and matching an image to its registry host.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use runnerkit_core::RegistryAuth;
use serde::Deserialize;

/// A source of registry credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A Docker `config.json` is not valid.
    #[error("invalid docker config {source_name}: {message}")]
    InvalidConfig {
        /// Where it came from (a file path, a secret name).
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A source of credentials could not be asked (a registry plugin).
    #[error("{message}")]
    Source {
        /// Which source.
        source_name: String,
        /// What went wrong, with its cause.
        message: String,
    },
}

/// A source of registry credentials.
///
/// # Contract
/// Returns every credential it has; the engine picks the one whose
/// `address` matches an image's registry host ([`find_credentials`]).
/// Asked once per stage by the stage assembly ([`crate::assemble`]),
/// concurrently with the secret lookups; asynchronous, so a source on the
/// network (a registry plugin) is asked on the same path.
#[async_trait]
pub trait RegistryProvider: Send + Sync {
    /// All credentials.
    ///
    /// # Errors
    /// [`RegistryError`] when the source cannot be read.
    async fn registries(&self) -> Result<Vec<RegistryAuth>, RegistryError>;
}

#[async_trait]
impl<T: RegistryProvider + ?Sized> RegistryProvider for std::sync::Arc<T> {
    async fn registries(&self) -> Result<Vec<RegistryAuth>, RegistryError> {
        (**self).registries().await
    }
}

/// Fixed credentials.
#[derive(Debug, Clone, Default)]
pub struct StaticRegistries(pub Vec<RegistryAuth>);

#[async_trait]
impl RegistryProvider for StaticRegistries {
    async fn registries(&self) -> Result<Vec<RegistryAuth>, RegistryError> {
        Ok(self.0.clone())
    }
}

/// The credentials of a Docker `config.json` (`{"auths": {host: {auth} |
/// {username, password}}}`).
#[derive(Clone)]
pub struct DockerConfig {
    auths: Vec<RegistryAuth>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("auths", &self.auths)
            .finish()
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthEntry {
    auth: String,
    username: String,
    password: String,
}

impl DockerConfig {
    /// Parses the JSON text of a `config.json`; `source_name` names it in errors.
    ///
    /// # Errors
    /// [`RegistryError::InvalidConfig`] for invalid JSON or an `auth` that is
    /// not base64 of `user:password`.
    pub fn parse(json: &str, source_name: &str) -> Result<Self, RegistryError> {
        let invalid = |message: String| RegistryError::InvalidConfig {
            source_name: source_name.to_owned(),
            message,
        };
        let file: ConfigFile = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        let mut auths = Vec::new();
        for (address, entry) in file.auths {
            let (username, password) = if entry.auth.is_empty() {
                (entry.username, entry.password)
            } else {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(entry.auth.trim())
                    .map_err(|e| invalid(format!("auth of {address}: {e}")))?;
                let text = String::from_utf8(decoded)
                    .map_err(|_| invalid(format!("auth of {address} is not UTF-8")))?;
                let (u, p) = text
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("auth of {address} is not user:password")))?;
                (u.to_owned(), p.to_owned())
            };
            auths.push(RegistryAuth {
                address: normalize_host(&address),
                username,
                password,
            });
        }
        Ok(Self { auths })
    }

    /// The credentials it holds.
    pub fn into_auths(self) -> Vec<RegistryAuth> {
        self.auths
    }
}

#[async_trait]
impl RegistryProvider for DockerConfig {
    async fn registries(&self) -> Result<Vec<RegistryAuth>, RegistryError> {
        Ok(self.auths.clone())
    }
}

/// Asks every provider and concatenates what they give, in order.
#[derive(Default)]
pub struct CombinedRegistries {
    providers: Vec<std::sync::Arc<dyn RegistryProvider>>,
}

impl CombinedRegistries {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider after those already added.
    #[must_use]
    pub fn with(mut self, provider: impl RegistryProvider + 'static) -> Self {
        self.providers.push(std::sync::Arc::new(provider));
        self
    }

    /// Adds a shared provider after those already added.
    #[must_use]
    pub fn with_shared(mut self, provider: std::sync::Arc<dyn RegistryProvider>) -> Self {
        self.providers.push(provider);
        self
    }
}

impl fmt::Debug for CombinedRegistries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CombinedRegistries")
            .field("providers", &self.providers.len())
            .finish()
    }
}

#[async_trait]
impl RegistryProvider for CombinedRegistries {
    async fn registries(&self) -> Result<Vec<RegistryAuth>, RegistryError> {
        let mut out = Vec::new();
        for p in &self.providers {
            out.extend(p.registries().await?);
        }
        Ok(out)
    }
}

/// A registry address reduced to its host the way Docker compares them:
/// scheme and path dropped, `index.docker.io` (and `registry-1.docker.io`)
/// read as `docker.io`.
pub fn normalize_host(address: &str) -> String {
    let address = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address);
    let host = address.split('/').next().unwrap_or(address);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        h => h.to_ascii_lowercase(),
    }
}

/// The registry host of an image reference: its first path component when
/// that looks like a host (has a `.` or `:`, or is `localhost`), else `docker.io`.
pub fn image_registry(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            normalize_host(first)
        }
        _ => "docker.io".to_owned(),
    }
}

/// The first credential whose host is the image's registry.
pub fn find_credentials<'a>(auths: &'a [RegistryAuth], image: &str) -> Option<&'a RegistryAuth> {
    let host = image_registry(image);
    auths.iter().find(|a| normalize_host(&a.address) == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"auths": {
        "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
        "registry.example.com:5000": {"username": "bob", "password": "s3cret"},
        "ghcr.io": {"auth": "Z2g6dG9rOndpdGg6Y29sb25z"}
    }}"#;

    #[test]
    fn docker_config_reads_auth_and_user_password_forms() {
        let auths = DockerConfig::parse(CONFIG, "test").unwrap().into_auths();
        assert_eq!(auths.len(), 3);
        let hub = auths.iter().find(|a| a.address == "docker.io").unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("user", "pass")
        );
        let gh = auths.iter().find(|a| a.address == "ghcr.io").unwrap();
        assert_eq!(gh.password, "tok:with:colons");
        let own = auths
            .iter()
            .find(|a| a.address == "registry.example.com:5000")
            .unwrap();
        assert_eq!(own.username, "bob");
    }

    #[test]
    fn invalid_configs_are_errors_naming_the_source() {
        let err = DockerConfig::parse("{", "pull_secret").unwrap_err();
        assert!(err.to_string().contains("pull_secret"), "{err}");
        let err =
            DockerConfig::parse(r#"{"auths":{"x.io":{"auth":"bm9jb2xvbg=="}}}"#, "s").unwrap_err();
        assert!(err.to_string().contains("user:password"), "{err}");
    }

    #[test]
    fn images_match_credentials_by_host() {
        let auths = DockerConfig::parse(CONFIG, "t").unwrap().into_auths();
        assert_eq!(find_credentials(&auths, "alpine").unwrap().username, "user");
        assert_eq!(
            find_credentials(&auths, "docker.io/library/alpine:3")
                .unwrap()
                .username,
            "user"
        );
        assert_eq!(
            find_credentials(&auths, "octo/app:1").unwrap().username,
            "user"
        );
        assert_eq!(
            find_credentials(&auths, "registry.example.com:5000/team/app")
                .unwrap()
                .username,
            "bob"
        );
        assert_eq!(
            find_credentials(&auths, "ghcr.io/o/i").unwrap().username,
            "gh"
        );
        assert!(find_credentials(&auths, "quay.io/o/i").is_none());
        assert_eq!(image_registry("localhost/x"), "localhost");
    }

    #[tokio::test]
    async fn combined_concatenates() {
        let a = RegistryAuth {
            address: "a.io".into(),
            username: "u".into(),
            password: "p".into(),
        };
        let c = CombinedRegistries::new()
            .with(StaticRegistries(vec![a.clone()]))
            .with(DockerConfig::parse(CONFIG, "t").unwrap());
        let all = c.registries().await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], a);
    }
}

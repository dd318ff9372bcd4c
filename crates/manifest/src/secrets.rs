//! Where `from_secret` values come from (reference §12): the server's
//! secrets, the runner's static secrets, the process environment (opt-in),
//! and a combinator that asks each in turn.
//!
//! Lookups are asynchronous, so a source on the network (a secret plugin,
//! a vault) is asked on the same path as the others: the stage assembly
//! ([`crate::assemble`]) asks for every secret a pipeline refers to,
//! concurrently, before compiling.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use runnerkit_core::drone::{self, Build, Repo};

/// A failed lookup (not "not found", which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[error("secret {name:?} from {provider}: {message}")]
pub struct SecretError {
    /// The secret asked for.
    pub name: String,
    /// Which provider failed.
    pub provider: String,
    /// What went wrong.
    pub message: String,
}

/// What a lookup is for: the secret's name and the build asking.
#[derive(Debug, Clone, Copy)]
pub struct SecretRequest<'a> {
    /// The name given to `from_secret`.
    pub name: &'a str,
    /// The build (its event decides pull-request visibility).
    pub build: &'a Build,
    /// The repository.
    pub repo: &'a Repo,
    /// The pipeline file's `kind: secret` document of that name, if it has
    /// one (the first, when several share the name): its encrypted `data`,
    /// or the `get` a secret plugin answers.
    pub document: Option<&'a crate::SecretResource>,
}

impl SecretRequest<'_> {
    fn is_pull_request(&self) -> bool {
        self.build.event == "pull_request"
    }
}

/// A source of secret values.
///
/// # Contract
/// - `Ok(Some(value))`: found. `Ok(None)`: this provider does not know the
///   name (the next one is asked). `Err`: the lookup failed; the compile stops
///   with the error, as in Drone, instead of silently using another value.
/// - Must not log values.
/// - Called by the stage assembly once per secret name a pipeline refers
///   to; lookups of different names may be concurrent, so a provider is
///   `Send + Sync` and synchronises itself.
#[async_trait]
pub trait SecretProvider: Send + Sync {
    /// Looks `request.name` up.
    ///
    /// # Errors
    /// [`SecretError`] when the source could not be read.
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError>;
}

#[async_trait]
impl<T: SecretProvider + ?Sized> SecretProvider for std::sync::Arc<T> {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        (**self).find(request).await
    }
}

/// Fixed name → value pairs: `runnerkit exec --secret K=V`, or a runner's
/// static secrets (`DRONE_RUNNER_SECRETS`, hidden from pull requests).
#[derive(Clone, Default)]
pub struct StaticSecrets {
    values: BTreeMap<String, String>,
    pull_requests: bool,
}

impl StaticSecrets {
    /// Secrets visible to every build, pull requests included.
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self {
            values,
            pull_requests: true,
        }
    }

    /// Whether pull-request builds see them (Drone's runner static secrets: no).
    #[must_use]
    pub fn with_pull_requests(mut self, visible: bool) -> Self {
        self.pull_requests = visible;
        self
    }
}

impl fmt::Debug for StaticSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSecrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .field("pull_requests", &self.pull_requests)
            .finish()
    }
}

#[async_trait]
impl SecretProvider for StaticSecrets {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        if request.is_pull_request() && !self.pull_requests {
            return Ok(None);
        }
        Ok(self.values.get(request.name).cloned())
    }
}

/// Secrets from the process environment, only under a prefix the user
/// chose: with prefix `RUNNERKIT_SECRET_`, `from_secret: token` reads
/// `RUNNERKIT_SECRET_token`, then `RUNNERKIT_SECRET_TOKEN`.
#[derive(Debug, Clone)]
pub struct EnvSecrets {
    prefix: String,
}

impl EnvSecrets {
    /// Reads variables named `prefix` + the secret's name. An empty prefix
    /// is refused (it would expose the whole environment): `None`.
    pub fn new(prefix: impl Into<String>) -> Option<Self> {
        let prefix = prefix.into();
        (!prefix.is_empty()).then_some(Self { prefix })
    }
}

#[async_trait]
impl SecretProvider for EnvSecrets {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        let exact = format!("{}{}", self.prefix, request.name);
        let upper = format!("{}{}", self.prefix, request.name.to_uppercase());
        Ok(std::env::var(&exact)
            .ok()
            .or_else(|| std::env::var(&upper).ok()))
    }
}

/// The repository and organisation secrets a Drone server sends with the
/// stage: names match case-insensitively, and a secret without
/// `pull_request: true` is hidden from pull-request builds.
#[derive(Clone, Default)]
pub struct ServerSecrets {
    secrets: Vec<drone::Secret>,
}

impl ServerSecrets {
    /// Wraps the `secrets` of the stage details.
    pub fn new(secrets: Vec<drone::Secret>) -> Self {
        Self { secrets }
    }
}

impl fmt::Debug for ServerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.secrets.iter().map(|s| s.name.as_str()).collect();
        f.debug_struct("ServerSecrets")
            .field("names", &names)
            .finish()
    }
}

#[async_trait]
impl SecretProvider for ServerSecrets {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        let found = self
            .secrets
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(request.name));
        Ok(match found {
            Some(s) if request.is_pull_request() && !s.pull_request => None,
            Some(s) => Some(s.data.clone()),
            None => None,
        })
    }
}

/// Asks providers in order; the first non-empty value wins, an error stops
/// the lookup.
#[derive(Default)]
pub struct CombinedSecrets {
    providers: Vec<std::sync::Arc<dyn SecretProvider>>,
}

impl CombinedSecrets {
    /// No providers: every lookup finds nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider, asked after those already added.
    #[must_use]
    pub fn with(mut self, provider: impl SecretProvider + 'static) -> Self {
        self.providers.push(std::sync::Arc::new(provider));
        self
    }

    /// Adds a shared provider, asked after those already added.
    #[must_use]
    pub fn with_shared(mut self, provider: std::sync::Arc<dyn SecretProvider>) -> Self {
        self.providers.push(provider);
        self
    }
}

impl fmt::Debug for CombinedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CombinedSecrets")
            .field("providers", &self.providers.len())
            .finish()
    }
}

#[async_trait]
impl SecretProvider for CombinedSecrets {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        for provider in &self.providers {
            if let Some(value) = provider.find(request).await?
                && !value.is_empty()
            {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }
}

/// `kind: secret` documents whose `data` is encrypted with the repository's
/// key (reference §12): base64 of a 12-byte nonce followed by the AES-256-GCM
/// ciphertext, the key being the repository's `secret` (32 bytes). Reads the
/// document the request carries; nothing without a key (a repository that
/// has none). Hidden from pull requests of forks of public repositories.
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentSecrets;

impl DocumentSecrets {
    fn decrypt(name: &str, data: &str, key: &str) -> Result<String, SecretError> {
        use aes_gcm::aead::{Aead, KeyInit};
        use base64::Engine as _;
        let fail = |message: &str| SecretError {
            name: name.to_owned(),
            provider: "kind: secret document".into(),
            message: message.to_owned(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| fail("data is not base64"))?;
        if raw.len() < 12 {
            return Err(fail("data is shorter than its nonce"));
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(key.as_bytes())
            .map_err(|_| fail("the repository key is not 32 bytes"))?;
        let nonce = aes_gcm::Nonce::try_from(nonce).map_err(|_| fail("bad nonce"))?;
        let plain = cipher
            .decrypt(&nonce, ciphertext)
            .map_err(|_| fail("cannot decrypt (wrong key or corrupt data)"))?;
        String::from_utf8(plain).map_err(|_| fail("decrypted value is not UTF-8"))
    }
}

#[async_trait]
impl SecretProvider for DocumentSecrets {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        let Some(document) = request.document.filter(|d| !d.data.is_empty()) else {
            return Ok(None);
        };
        let key = &request.repo.secret;
        if key.is_empty() {
            return Ok(None);
        }
        let fork =
            !request.build.source_repo.is_empty() && request.build.source_repo != request.repo.slug;
        if request.is_pull_request() && !request.repo.private && fork {
            return Ok(None);
        }
        Self::decrypt(&document.name, &document.data, key).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lookup(
        p: &dyn SecretProvider,
        name: &str,
        build: &Build,
        repo: &Repo,
        document: Option<&crate::SecretResource>,
    ) -> Result<Option<String>, SecretError> {
        p.find(&SecretRequest {
            name,
            build,
            repo,
            document,
        })
        .await
    }

    async fn ask(p: &dyn SecretProvider, name: &str, build: &Build) -> Option<String> {
        lookup(p, name, build, &Repo::default(), None)
            .await
            .unwrap()
    }

    fn push() -> Build {
        Build {
            event: "push".into(),
            ..Build::default()
        }
    }

    fn pr() -> Build {
        Build {
            event: "pull_request".into(),
            ..Build::default()
        }
    }

    #[tokio::test]
    async fn static_secrets_and_their_pull_request_rule() {
        let s = StaticSecrets::new([("token".to_owned(), "t0k".to_owned())].into());
        assert_eq!(ask(&s, "token", &push()).await.as_deref(), Some("t0k"));
        assert_eq!(ask(&s, "other", &push()).await, None);
        assert_eq!(ask(&s, "token", &pr()).await.as_deref(), Some("t0k"));
        let runner = s.with_pull_requests(false);
        assert_eq!(ask(&runner, "token", &pr()).await, None);
        assert!(!format!("{runner:?}").contains("t0k"));
    }

    #[tokio::test]
    async fn server_secrets_match_names_case_insensitively_and_hide_from_prs() {
        let s = ServerSecrets::new(vec![
            drone::Secret {
                name: "Docker_Password".into(),
                data: "pw".into(),
                ..drone::Secret::default()
            },
            drone::Secret {
                name: "public".into(),
                data: "pub".into(),
                pull_request: true,
                ..drone::Secret::default()
            },
        ]);
        assert_eq!(
            ask(&s, "docker_password", &push()).await.as_deref(),
            Some("pw")
        );
        assert_eq!(ask(&s, "docker_password", &pr()).await, None);
        assert_eq!(ask(&s, "public", &pr()).await.as_deref(), Some("pub"));
    }

    #[tokio::test]
    async fn env_secrets_need_a_prefix() {
        assert!(EnvSecrets::new("").is_none());
        let p = EnvSecrets::new("RUNNERKIT_TEST_SECRET_UNLIKELY_").unwrap();
        // The path variable exists in any test environment; without the prefix it is not read.
        assert_eq!(ask(&p, "PATH", &push()).await, None);
    }

    struct Failing;
    #[async_trait]
    impl SecretProvider for Failing {
        async fn find(&self, r: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
            Err(SecretError {
                name: r.name.to_owned(),
                provider: "failing".into(),
                message: "down".into(),
            })
        }
    }

    fn encrypt(key: &str, nonce: [u8; 12], plain: &str) -> String {
        use aes_gcm::aead::{Aead, KeyInit};
        use base64::Engine as _;
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(key.as_bytes()).unwrap();
        let nonce_arr = aes_gcm::Nonce::try_from(&nonce[..]).unwrap();
        let mut out = nonce.to_vec();
        out.extend(cipher.encrypt(&nonce_arr, plain.as_bytes()).unwrap());
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn document(name: &str, data: String) -> crate::SecretResource {
        crate::SecretResource {
            name: name.into(),
            data,
            get: None,
        }
    }

    fn keyed(key: &str) -> Repo {
        Repo {
            secret: key.into(),
            ..Repo::default()
        }
    }

    #[tokio::test]
    async fn document_secrets_decrypt_with_the_repository_key() {
        let token = document("token", encrypt(KEY, [7; 12], "s3cret"));
        let broken = document("broken", "bm90IGVub3VnaA==".into());
        let p = DocumentSecrets;
        let found = lookup(&p, "token", &push(), &keyed(KEY), Some(&token)).await;
        assert_eq!(found.unwrap().as_deref(), Some("s3cret"));
        let none = lookup(&p, "other", &push(), &keyed(KEY), None).await;
        assert_eq!(none.unwrap(), None);
        // Without a key, the documents are not read.
        let keyless = lookup(&p, "token", &push(), &Repo::default(), Some(&token)).await;
        assert_eq!(keyless.unwrap(), None);
        let wrong = lookup(&p, "token", &push(), &keyed(&"f".repeat(32)), Some(&token)).await;
        assert!(wrong.unwrap_err().to_string().contains("cannot decrypt"));
        let bad = lookup(&p, "broken", &push(), &keyed(KEY), Some(&broken)).await;
        assert!(bad.is_err());
    }

    #[tokio::test]
    async fn document_secrets_are_hidden_from_fork_pull_requests_of_public_repos() {
        let token = document("token", encrypt(KEY, [1; 12], "v"));
        let mut build = pr();
        build.source_repo = "fork/hello".into();
        let mut repo = Repo {
            slug: "octo/hello".into(),
            ..keyed(KEY)
        };
        let p = DocumentSecrets;
        let found = |b: Build, r: Repo| {
            let token = token.clone();
            async move { lookup(&p, "token", &b, &r, Some(&token)).await.unwrap() }
        };
        assert_eq!(found(build.clone(), repo.clone()).await, None);
        repo.private = true;
        assert_eq!(
            found(build.clone(), repo.clone()).await.as_deref(),
            Some("v")
        );
        repo.private = false;
        build.source_repo = "octo/hello".into();
        assert_eq!(found(build, repo).await.as_deref(), Some("v"));
    }

    #[tokio::test]
    async fn combined_first_non_empty_wins_and_errors_stop() {
        let c = CombinedSecrets::new()
            .with(StaticSecrets::new([("a".to_owned(), String::new())].into()))
            .with(StaticSecrets::new(
                [("a".to_owned(), "second".to_owned())].into(),
            ));
        assert_eq!(ask(&c, "a", &push()).await.as_deref(), Some("second"));
        assert_eq!(ask(&c, "b", &push()).await, None);
        let c = CombinedSecrets::new().with(Failing);
        let err = lookup(&c, "x", &push(), &Repo::default(), None)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "secret \"x\" from failing: down");
    }
}

//! Where `from_secret` values come from (reference §12): the server's
//! secrets, the runner's static secrets, the process environment (opt-in),
//! and a combinator that asks each in turn.
//!
//! Lookups are synchronous: a source that needs the network should fetch
//! before compiling and hand over a [`StaticSecrets`].

use std::collections::BTreeMap;
use std::fmt;

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
pub trait SecretProvider: Send + Sync {
    /// Looks `request.name` up.
    ///
    /// # Errors
    /// [`SecretError`] when the source could not be read.
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError>;
}

impl<T: SecretProvider + ?Sized> SecretProvider for std::sync::Arc<T> {
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        (**self).find(request)
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

impl SecretProvider for StaticSecrets {
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
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

impl SecretProvider for EnvSecrets {
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
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

impl SecretProvider for ServerSecrets {
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
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
    providers: Vec<Box<dyn SecretProvider>>,
}

impl CombinedSecrets {
    /// No providers: every lookup finds nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider, asked after those already added.
    #[must_use]
    pub fn with(mut self, provider: impl SecretProvider + 'static) -> Self {
        self.providers.push(Box::new(provider));
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

impl SecretProvider for CombinedSecrets {
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        for provider in &self.providers {
            if let Some(value) = provider.find(request)?
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
/// ciphertext, the key being the repository's `secret` (32 bytes). Hidden
/// from pull requests of forks of public repositories.
#[derive(Clone, Default)]
pub struct DocumentSecrets {
    /// Name → encrypted data.
    encrypted: Vec<(String, String)>,
    key: String,
}

impl DocumentSecrets {
    /// The `kind: secret` documents of a file that carry `data`, decrypted
    /// with `key` (the repository's `secret`) on lookup.
    pub fn new<'a>(
        documents: impl IntoIterator<Item = &'a crate::SecretResource>,
        key: impl Into<String>,
    ) -> Self {
        Self {
            encrypted: documents
                .into_iter()
                .filter(|d| !d.data.is_empty())
                .map(|d| (d.name.clone(), d.data.clone()))
                .collect(),
            key: key.into(),
        }
    }

    /// The encrypted documents of `manifest`, to decrypt with `key`; `None`
    /// when it has none or there is no key (a repository without one).
    pub fn of(manifest: &crate::Manifest, key: &str) -> Option<Self> {
        let encrypted = manifest.secrets().any(|s| !s.data.is_empty());
        (encrypted && !key.is_empty()).then(|| Self::new(manifest.secrets(), key))
    }

    fn decrypt(&self, name: &str, data: &str) -> Result<String, SecretError> {
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
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(self.key.as_bytes())
            .map_err(|_| fail("the repository key is not 32 bytes"))?;
        let nonce = aes_gcm::Nonce::try_from(nonce).map_err(|_| fail("bad nonce"))?;
        let plain = cipher
            .decrypt(&nonce, ciphertext)
            .map_err(|_| fail("cannot decrypt (wrong key or corrupt data)"))?;
        String::from_utf8(plain).map_err(|_| fail("decrypted value is not UTF-8"))
    }
}

impl fmt::Debug for DocumentSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.encrypted.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("DocumentSecrets")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl SecretProvider for DocumentSecrets {
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        let Some((name, data)) = self.encrypted.iter().find(|(n, _)| n == request.name) else {
            return Ok(None);
        };
        let fork =
            !request.build.source_repo.is_empty() && request.build.source_repo != request.repo.slug;
        if request.is_pull_request() && !request.repo.private && fork {
            return Ok(None);
        }
        self.decrypt(name, data).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(p: &dyn SecretProvider, name: &'a str, build: &'a Build) -> Option<String> {
        let repo = Repo::default();
        p.find(&SecretRequest {
            name,
            build,
            repo: &repo,
        })
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

    #[test]
    fn static_secrets_and_their_pull_request_rule() {
        let s = StaticSecrets::new([("token".to_owned(), "t0k".to_owned())].into());
        assert_eq!(ask(&s, "token", &push()).as_deref(), Some("t0k"));
        assert_eq!(ask(&s, "other", &push()), None);
        assert_eq!(ask(&s, "token", &pr()).as_deref(), Some("t0k"));
        let runner = s.with_pull_requests(false);
        assert_eq!(ask(&runner, "token", &pr()), None);
        assert!(!format!("{runner:?}").contains("t0k"));
    }

    #[test]
    fn server_secrets_match_names_case_insensitively_and_hide_from_prs() {
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
        assert_eq!(ask(&s, "docker_password", &push()).as_deref(), Some("pw"));
        assert_eq!(ask(&s, "docker_password", &pr()), None);
        assert_eq!(ask(&s, "public", &pr()).as_deref(), Some("pub"));
    }

    #[test]
    fn env_secrets_need_a_prefix() {
        assert!(EnvSecrets::new("").is_none());
        let p = EnvSecrets::new("RUNNERKIT_TEST_SECRET_UNLIKELY_").unwrap();
        // The path variable exists in any test environment; without the prefix it is not read.
        assert_eq!(ask(&p, "PATH", &push()), None);
    }

    struct Failing;
    impl SecretProvider for Failing {
        fn find(&self, r: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
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

    #[test]
    fn document_secrets_decrypt_with_the_repository_key() {
        let key = "0123456789abcdef0123456789abcdef";
        let docs = [
            crate::SecretResource {
                name: "token".into(),
                data: encrypt(key, [7; 12], "s3cret"),
                get: None,
            },
            crate::SecretResource {
                name: "broken".into(),
                data: "bm90IGVub3VnaA==".into(),
                get: None,
            },
        ];
        let p = DocumentSecrets::new(&docs, key);
        assert_eq!(ask(&p, "token", &push()).as_deref(), Some("s3cret"));
        assert_eq!(ask(&p, "other", &push()), None);
        let wrong = DocumentSecrets::new(&docs, "ffffffffffffffffffffffffffffffff");
        let repo = Repo::default();
        let build = push();
        let req = SecretRequest {
            name: "token",
            build: &build,
            repo: &repo,
        };
        assert!(
            wrong
                .find(&req)
                .unwrap_err()
                .to_string()
                .contains("cannot decrypt")
        );
        let req = SecretRequest {
            name: "broken",
            build: &build,
            repo: &repo,
        };
        assert!(p.find(&req).is_err());
        assert!(!format!("{p:?}").contains("s3cret"));
    }

    #[test]
    fn document_secrets_are_hidden_from_fork_pull_requests_of_public_repos() {
        let key = "0123456789abcdef0123456789abcdef";
        let docs = [crate::SecretResource {
            name: "token".into(),
            data: encrypt(key, [1; 12], "v"),
            get: None,
        }];
        let p = DocumentSecrets::new(&docs, key);
        let mut build = pr();
        build.source_repo = "fork/hello".into();
        let mut repo = Repo {
            slug: "octo/hello".into(),
            ..Repo::default()
        };
        let req = |b: &Build, r: &Repo| {
            p.find(&SecretRequest {
                name: "token",
                build: b,
                repo: r,
            })
            .unwrap()
        };
        assert_eq!(req(&build, &repo), None);
        repo.private = true;
        assert_eq!(req(&build, &repo).as_deref(), Some("v"));
        repo.private = false;
        build.source_repo = "octo/hello".into();
        assert_eq!(req(&build, &repo).as_deref(), Some("v"));
    }

    #[test]
    fn combined_first_non_empty_wins_and_errors_stop() {
        let c = CombinedSecrets::new()
            .with(StaticSecrets::new([("a".to_owned(), String::new())].into()))
            .with(StaticSecrets::new(
                [("a".to_owned(), "second".to_owned())].into(),
            ));
        assert_eq!(ask(&c, "a", &push()).as_deref(), Some("second"));
        assert_eq!(ask(&c, "b", &push()), None);
        let c = CombinedSecrets::new().with(Failing);
        let repo = Repo::default();
        let build = push();
        let err = c
            .find(&SecretRequest {
                name: "x",
                build: &build,
                repo: &repo,
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "secret \"x\" from failing: down");
    }
}

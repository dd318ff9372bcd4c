//! [`SecretPlugin`]: the secret extension plugin client.

use async_trait::async_trait;
use runnerkit_core::SecretPluginClient;
use runnerkit_core::drone::{Build, Repo, Secret};
use serde::Serialize;

use super::{Client, SECRET, without_secret};
use crate::Error;

/// A client of a Drone secret plugin (e.g. drone-vault): it looks up the
/// values of `kind: secret` documents with `get: {path, name}`.
///
/// # The contract (reference §10)
///
/// [`find`](Self::find) sends `POST <endpoint>` (the URL exactly as
/// configured) with the JSON body `{"path","name","repo","build"}` and the
/// headers
///
/// | header | value |
/// | --- | --- |
/// | `Accept` | `application/vnd.drone.secret.v1+json` |
/// | `Accept-Encoding` | `identity` |
/// | `Content-Type` | `application/json` |
/// | `Date` | now, as an HTTP date |
/// | `Digest` | `SHA-256=<base64 of the SHA-256 of the body>` |
/// | `Signature` | `keyId="hmac-key",algorithm="hmac-sha256",headers="accept accept-encoding content-type date digest",signature="<base64>"` |
///
/// The signature is the HMAC-SHA256, keyed with the token, of the signing
/// string: one `name: value` line per signed header (name lowercased), in
/// the order of `headers`, joined by `\n`.
///
/// | answer | result |
/// | --- | --- |
/// | 204 | `Ok(None)`: not found |
/// | 2xx with a secret `{"name","data",...}` | `Ok(Some(data))`, or `Ok(None)` when `data` is empty |
/// | 2xx with `Content-Encoding: aesgcm` | the body is a 12-byte nonce followed by AES-256-GCM ciphertext, keyed with the first 32 bytes of the token; decrypted, then read as above |
/// | above 299 (redirects included: they are not followed) | [`Error::PluginRefused`] with the body, or the reason phrase |
/// | no answer within one minute, transport errors | [`Error::PluginTransport`] |
/// | anything else | [`Error::PluginAnswer`] |
///
/// Each call is one attempt: nothing is retried.
///
/// # Secrets
///
/// The token and the values found are never logged, and `Debug` hides the
/// token. The repository's `secret` (its key for encrypted documents) is
/// blanked in the body: a plugin has no use for it.
#[derive(Clone)]
pub struct SecretPlugin {
    client: Client,
}

impl std::fmt::Debug for SecretPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.client.debug("SecretPlugin", f)
    }
}

/// The body of a secret request.
#[derive(Serialize)]
struct FindRequest<'a> {
    path: &'a str,
    name: &'a str,
    repo: &'a Repo,
    build: &'a Build,
}

impl SecretPlugin {
    /// A client of the plugin at `endpoint` (`DRONE_SECRET_PLUGIN_ENDPOINT`,
    /// an `http` or `https` URL), signing with `token`
    /// (`DRONE_SECRET_PLUGIN_TOKEN`). With `skip_verify`
    /// (`DRONE_SECRET_PLUGIN_SKIP_VERIFY`) any TLS certificate is accepted,
    /// as `DRONE_RPC_SKIP_VERIFY` does for the server. Nothing is sent yet.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] for an empty endpoint or token,
    /// [`Error::InvalidSetting`] for an endpoint that is not an `http(s)`
    /// URL, [`Error::Tls`] or [`Error::Client`] when the HTTP client cannot
    /// be built.
    pub fn new(endpoint: &str, token: &str, skip_verify: bool) -> Result<Self, Error> {
        Ok(Self {
            client: Client::new(SECRET, endpoint, token, skip_verify)?,
        })
    }

    /// The plugin's endpoint, without any password it contains.
    pub fn endpoint(&self) -> String {
        self.client.endpoint()
    }

    /// Asks the plugin for the secret at `path` named `name`, for a stage of
    /// `build` in `repo`. `Ok(None)` when the plugin has none (204, or an
    /// empty `data`).
    ///
    /// # Errors
    /// [`Error::PluginTransport`], [`Error::PluginRefused`] or
    /// [`Error::PluginAnswer`], as the table on [`SecretPlugin`] says.
    pub async fn find(
        &self,
        path: &str,
        name: &str,
        repo: &Repo,
        build: &Build,
    ) -> Result<Option<String>, Error> {
        let request = FindRequest {
            path,
            name,
            repo: &without_secret(repo),
            build,
        };
        let secret: Option<Secret> = self.client.post(&request, "a secret").await?;
        Ok(secret
            .map(|secret| secret.data)
            .filter(|data| !data.is_empty()))
    }
}

#[async_trait]
impl SecretPluginClient for SecretPlugin {
    async fn find(
        &self,
        path: &str,
        name: &str,
        repo: &Repo,
        build: &Build,
    ) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(SecretPlugin::find(self, path, name, repo, build).await?)
    }
}

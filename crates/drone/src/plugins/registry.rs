//! [`RegistryPlugin`]: the registry extension plugin client.

use async_trait::async_trait;
use runnerkit_core::drone::{Build, Repo};
use runnerkit_core::{RegistryAuth, RegistryPluginClient};
use serde::Deserialize;

use super::{Client, REGISTRY, StageRequest, without_secret};
use crate::Error;

/// A client of a Drone registry plugin (e.g. drone-registry-plugin,
/// drone-amazon-ecr): it lists the registry credentials a stage may pull
/// its images with.
///
/// # The contract (reference §10)
///
/// [`list`](Self::list) sends `POST <endpoint>` (the URL exactly as
/// configured) with the JSON body `{"repo","build"}`, signed as the
/// [`SecretPlugin`](crate::SecretPlugin) request is (same headers, same
/// signature) but with `Accept: application/vnd.drone.registry.v1+json`.
///
/// | answer | result |
/// | --- | --- |
/// | 204 | `Ok(vec![])`: no credentials |
/// | 2xx with a JSON array (or `null`) of `{"address","username","password","email","token","policy"}` | one [`RegistryAuth`] per element, in order: `address`, `username`, `password` |
/// | 2xx with `Content-Encoding: aesgcm` | decrypted with the token, then read as above |
/// | above 299 (redirects included: they are not followed) | [`Error::PluginRefused`] with the body, or the reason phrase |
/// | no answer within one minute, transport errors | [`Error::PluginTransport`] |
/// | anything else | [`Error::PluginAnswer`] |
///
/// `email`, `token` and `policy` are accepted and not used: a credential is
/// sent to a registry as user name and password, whatever the policy.
/// Each call is one attempt: nothing is retried.
///
/// # Secrets
///
/// The token and the passwords are never logged; `Debug` hides the token
/// (and [`RegistryAuth`]'s the password). The repository's `secret` is
/// blanked in the body.
#[derive(Clone)]
pub struct RegistryPlugin {
    client: Client,
}

impl std::fmt::Debug for RegistryPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.client.debug("RegistryPlugin", f)
    }
}

/// One element of a registry plugin's answer; `email`, `token` and
/// `policy` are skipped.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Registry {
    address: String,
    username: String,
    password: String,
}

impl RegistryPlugin {
    /// A client of the plugin at `endpoint`
    /// (`DRONE_REGISTRY_PLUGIN_ENDPOINT`, an `http` or `https` URL),
    /// signing with `token` (`DRONE_REGISTRY_PLUGIN_TOKEN`). With
    /// `skip_verify` (`DRONE_REGISTRY_PLUGIN_SKIP_VERIFY`) any TLS
    /// certificate is accepted. Nothing is sent yet.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] for an empty endpoint or token,
    /// [`Error::InvalidSetting`] for an endpoint that is not an `http(s)`
    /// URL, [`Error::Tls`] or [`Error::Client`] when the HTTP client cannot
    /// be built.
    pub fn new(endpoint: &str, token: &str, skip_verify: bool) -> Result<Self, Error> {
        Ok(Self {
            client: Client::new(REGISTRY, endpoint, token, skip_verify)?,
        })
    }

    /// The plugin's endpoint, without any password it contains.
    pub fn endpoint(&self) -> String {
        self.client.endpoint()
    }

    /// Asks the plugin for the registry credentials of a stage of `build` in
    /// `repo`; empty when it has none (204, `null`, `[]`).
    ///
    /// # Errors
    /// [`Error::PluginTransport`], [`Error::PluginRefused`] or
    /// [`Error::PluginAnswer`], as the table on [`RegistryPlugin`] says.
    pub async fn list(&self, repo: &Repo, build: &Build) -> Result<Vec<RegistryAuth>, Error> {
        let request = StageRequest {
            repo: &without_secret(repo),
            build,
        };
        let answer: Option<Option<Vec<Registry>>> = self
            .client
            .post(&request, "a list of registry credentials")
            .await?;
        Ok(answer
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .map(|r| RegistryAuth {
                address: r.address,
                username: r.username,
                password: r.password,
            })
            .collect())
    }
}

#[async_trait]
impl RegistryPluginClient for RegistryPlugin {
    async fn registries(
        &self,
        repo: &Repo,
        build: &Build,
    ) -> Result<Vec<RegistryAuth>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.list(repo, build).await?)
    }
}

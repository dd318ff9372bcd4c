//! [`EnvironPlugin`]: the environ extension plugin client.

use async_trait::async_trait;
use runnerkit_core::drone::{Build, Repo};
use runnerkit_core::{EnvironPluginClient, PluginVariable};
use serde::Deserialize;

use super::{Client, ENVIRON, StageRequest, without_secret};
use crate::Error;

/// A client of a Drone environ plugin (`DRONE_ENV_PLUGIN_ENDPOINT`): it
/// lists variables to add to every step of a stage, some of them to be
/// masked in logs.
///
/// # The contract (reference §10)
///
/// [`list`](Self::list) sends `POST <endpoint>` (the URL exactly as
/// configured) with the JSON body `{"repo","build"}`, signed as the
/// [`SecretPlugin`](crate::SecretPlugin) request is (same headers, same
/// signature) but with `Accept: application/vnd.drone.env.v2+json`.
///
/// | answer | result |
/// | --- | --- |
/// | 204 | `Ok(vec![])`: no variables |
/// | 2xx with a JSON array (or `null`) of `{"name","data","mask"}` | one [`PluginVariable`] per element, in order |
/// | 2xx with `Content-Encoding: aesgcm` | decrypted with the token, then read as above |
/// | above 299 (redirects included: they are not followed) | [`Error::PluginRefused`] with the body, or the reason phrase |
/// | no answer within one minute, transport errors | [`Error::PluginTransport`] |
/// | anything else | [`Error::PluginAnswer`] |
///
/// Each call is one attempt: nothing is retried.
///
/// # Secrets
///
/// The token and the values are never logged; `Debug` hides the token and
/// the values of masked variables. The repository's `secret` is blanked in
/// the body.
#[derive(Clone)]
pub struct EnvironPlugin {
    client: Client,
}

impl std::fmt::Debug for EnvironPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.client.debug("EnvironPlugin", f)
    }
}

/// A variable as an environ plugin answers it (`{"name","data","mask"}`).
#[derive(Default, Deserialize)]
#[serde(default)]
struct WireVariable {
    name: String,
    data: String,
    mask: bool,
}

impl EnvironPlugin {
    /// A client of the plugin at `endpoint` (`DRONE_ENV_PLUGIN_ENDPOINT`,
    /// an `http` or `https` URL), signing with `token`
    /// (`DRONE_ENV_PLUGIN_TOKEN`). With `skip_verify`
    /// (`DRONE_ENV_PLUGIN_SKIP_VERIFY`) any TLS certificate is accepted.
    /// Nothing is sent yet.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] for an empty endpoint or token,
    /// [`Error::InvalidSetting`] for an endpoint that is not an `http(s)`
    /// URL, [`Error::Tls`] or [`Error::Client`] when the HTTP client cannot
    /// be built.
    pub fn new(endpoint: &str, token: &str, skip_verify: bool) -> Result<Self, Error> {
        Ok(Self {
            client: Client::new(ENVIRON, endpoint, token, skip_verify)?,
        })
    }

    /// The plugin's endpoint, without any password it contains.
    pub fn endpoint(&self) -> String {
        self.client.endpoint()
    }

    /// Asks the plugin for the variables of a stage of `build` in `repo`;
    /// empty when it has none (204, `null`, `[]`).
    ///
    /// # Errors
    /// [`Error::PluginTransport`], [`Error::PluginRefused`] or
    /// [`Error::PluginAnswer`], as the table on [`EnvironPlugin`] says.
    pub async fn list(&self, repo: &Repo, build: &Build) -> Result<Vec<PluginVariable>, Error> {
        let request = StageRequest {
            repo: &without_secret(repo),
            build,
        };
        let answer: Option<Option<Vec<WireVariable>>> =
            self.client.post(&request, "a list of variables").await?;
        let variables = answer.flatten().unwrap_or_default().into_iter();
        Ok(variables
            .map(|v| PluginVariable::new(v.name, v.data, v.mask))
            .collect())
    }
}

#[async_trait]
impl EnvironPluginClient for EnvironPlugin {
    async fn environ(
        &self,
        repo: &Repo,
        build: &Build,
    ) -> Result<Vec<PluginVariable>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.list(repo, build).await?)
    }
}

//! The extension plugins a runner calls (reference §10: secret, registry,
//! environ), as contracts: `runnerkit_drone` implements them over HTTP, and
//! `runnerkit_runner` calls them for each stage (`RunnerConfig`'s
//! `secret_plugin`, `registry_plugin` and `environ_plugin`). Implement one to
//! serve secrets, credentials or variables from anywhere else.
//!
//! Each is called concurrently for different stages, so it is
//! `Send + Sync`; a call never retries on its own.

use async_trait::async_trait;

use crate::RegistryAuth;
use crate::drone;

/// A registry extension plugin (reference §10, `DRONE_REGISTRY_PLUGIN_*`)
/// as the runner sees it: `runnerkit_drone::RegistryPlugin`, the HTTP
/// client, implements it.
///
/// # How the runner uses it
///
/// Once per stage, after the details and before compiling, the runner asks
/// for the credentials of the stage's repository and build. They are
/// offered to the engine after the pipeline's `image_pull_secrets` and the
/// runner's own (`RunnerConfig::registries`) (reference §13 order); the
/// first whose host matches an image's registry is used. An error fails the
/// stage (`error`) with a message naming the registry plugin.
#[async_trait]
pub trait RegistryPluginClient: Send + Sync {
    /// The registry credentials for a stage of `build` in `repo`; empty
    /// when the plugin has none.
    ///
    /// # Errors
    /// The plugin could not be asked or refused; the message must not hold
    /// a password or the plugin's token.
    async fn registries(
        &self,
        repo: &drone::Repo,
        build: &drone::Build,
    ) -> Result<Vec<RegistryAuth>, Box<dyn std::error::Error + Send + Sync>>;
}

/// An environ extension plugin (reference §10, `DRONE_ENV_PLUGIN_*`) as
/// the runner sees it: `runnerkit_drone::EnvironPlugin`, the HTTP client,
/// implements it.
///
/// # How the runner uses it
///
/// Once per stage, after the details and before anything reads the
/// pipeline file, the runner asks for the variables of the stage's
/// repository and build (a later variable of the same name wins). They are
/// runner globals (pipeline reference §10 and §12):
///
/// - **unmasked** ones join the runner's globals (`RunnerConfig::environ`, `DRONE_RUNNER_ENVIRON`),
///   overriding it, under the build's parameters and everything else:
///   steps and envsubst see them;
/// - **masked** ones are set in every step as secrets are (they win over
///   the pipeline's and the step's `environment`, a step's own `from_secret`
///   of the same name wins over them), are masked in every step's log, and
///   are not offered to envsubst.
///
/// An error fails the stage (`error`) with a message naming the environ
/// plugin.
#[async_trait]
pub trait EnvironPluginClient: Send + Sync {
    /// The variables for a stage of `build` in `repo`; empty when the
    /// plugin has none.
    ///
    /// # Errors
    /// The plugin could not be asked or refused; the message must not hold
    /// a value or the plugin's token.
    async fn environ(
        &self,
        repo: &drone::Repo,
        build: &drone::Build,
    ) -> Result<Vec<PluginVariable>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A variable an environ plugin gives. `Debug` hides the value of a masked
/// one.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginVariable {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Mask the value in every step's log (and keep it out of envsubst).
    pub mask: bool,
}

impl PluginVariable {
    /// The variable `name` with `value`, masked or not.
    pub fn new(name: impl Into<String>, value: impl Into<String>, mask: bool) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            mask,
        }
    }
}

impl std::fmt::Debug for PluginVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &dyn std::fmt::Debug = if self.mask { &"******" } else { &self.value };
        f.debug_struct("PluginVariable")
            .field("name", &self.name)
            .field("value", value)
            .field("mask", &self.mask)
            .finish()
    }
}

/// A secret extension plugin (reference §10, `DRONE_SECRET_PLUGIN_*`) as the
/// runner sees it: `runnerkit_drone::SecretPlugin`, the HTTP client,
/// implements it.
///
/// # How the runner uses it
///
/// Before compiling a stage, the runner substitutes and parses the pipeline
/// file and collects its `kind: secret` documents with `get: {path, name}`
/// that the stage's pipeline refers to (`from_secret`, `image_pull_secrets`;
/// the first document of each name; `get.key` is not sent, as in Drone's
/// request). A name that the server's secrets, the file's encrypted
/// documents or the runner's static secrets already give is not asked for.
/// The others are asked for at once, concurrently; the values found become
/// the last source of `from_secret`, under the documents' names (reference
/// §12 order: server, encrypted documents, runner static secrets, plugin),
/// and are masked in logs like every secret. An error fails the stage with a
/// message naming the secret. A file that does not substitute or parse
/// fails the stage before any lookup.
#[async_trait]
pub trait SecretPluginClient: Send + Sync {
    /// Looks up the secret `name` at `path` for a stage of `build` in
    /// `repo`. `Ok(None)`: the plugin has none.
    ///
    /// # Errors
    /// The plugin could not be asked or refused; the message must not hold
    /// the secret's value or the plugin's token.
    async fn find(
        &self,
        path: &str,
        name: &str,
        repo: &drone::Repo,
        build: &drone::Build,
    ) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>;
}

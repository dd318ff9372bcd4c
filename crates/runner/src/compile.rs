//! [`compile_stage`]: from a stage's details to the Spec it runs, through
//! the manifest's one assembly path, with the extension plugins as sources.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use runnerkit_core::drone::{Build, Details, Repo, Stage};
use runnerkit_core::{
    EnvironPluginClient, RegistryAuth, RegistryPluginClient, SecretPluginClient, error_chain,
};
use runnerkit_manifest::{
    CombinedRegistries, CombinedSecrets, CompileContext, Compiled, DocumentSecrets, RegistryError,
    RegistryProvider, SecretError, SecretProvider, SecretRequest, ServerSecrets, StageInput,
};

use crate::report::unix;
use crate::{RunnerConfig, StageError};

/// The pipeline a stage runs: the one named like it (`default` for an
/// unnamed stage), as Drone's runners look it up.
fn pipeline_name(stage: &Stage) -> &str {
    if stage.name.is_empty() {
        "default"
    } else {
        stage.name.as_str()
    }
}

/// Compiles `stage`, described by `details`, with the runner's `config`:
/// asks the environ plugin for the runner globals, then assembles the
/// stage with every `from_secret` source in the order of reference §12
/// (the server's secrets, the file's encrypted documents, the runner's own
/// secrets, the secret plugin) and every registry source in the order of
/// §13 (the runner's own credentials, the registry plugin's).
pub(crate) async fn compile_stage(
    config: &RunnerConfig,
    stage: &Stage,
    details: &Details,
) -> Result<Compiled, StageError> {
    let text = std::str::from_utf8(&details.config.data)
        .map_err(|_| StageError::Input("the pipeline file is not valid UTF-8".to_owned()))?;
    let (repo, build) = (&details.repository, &details.build);
    let (environ, secret_environ) = match &config.environ_plugin {
        Some(plugin) => runner_globals(plugin.as_ref(), repo, build).await?,
        None => (BTreeMap::new(), BTreeMap::new()),
    };
    let mut globals = config.environ.clone();
    globals.extend(environ);
    globals.extend(build.params.clone());

    let mut secrets = CombinedSecrets::new()
        .with(ServerSecrets::new(details.secrets.clone()))
        .with(DocumentSecrets);
    for provider in &config.secrets {
        secrets = secrets.with_shared(provider.clone());
    }
    if let Some(plugin) = &config.secret_plugin {
        secrets = secrets.with(PluginSecrets(plugin.clone()));
    }
    let mut registries = CombinedRegistries::new();
    if let Some(own) = &config.registries {
        registries = registries.with_shared(own.clone());
    }
    if let Some(plugin) = &config.registry_plugin {
        registries = registries.with(PluginRegistries {
            plugin: plugin.clone(),
            repo: repo.clone(),
            build: build.clone(),
        });
    }
    // The environ plugin's masked values are known only here: an input
    // error quoting one (a substituted line) is masked before it leaves.
    let masker = runnerkit_runtime::logs::Masker::new(secret_environ.values().map(String::as_str));
    let context = CompileContext {
        spec_id: format!("rk{}-{}", stage.id, unix(Some(SystemTime::now()))),
        build: build.clone(),
        repo: repo.clone(),
        stage: stage.clone(),
        system: details.system.clone(),
        netrc: details.netrc.clone(),
        secrets: Arc::new(secrets),
        registries: Arc::new(registries),
        environ: globals,
        secret_environ,
        ..CompileContext::default()
    };
    runnerkit_manifest::assemble(StageInput {
        text,
        pipeline: Some(pipeline_name(stage)),
        trusted: repo.trusted,
        types: &config.types,
        compiler: &config.compiler,
        context: &context,
        parsed: None,
    })
    .await
    .map_err(|e| StageError::from_assembly(e).masked(&masker))
}

/// What the environ plugin gives for a stage: its unmasked variables (runner
/// globals) and its masked ones, by name; a later variable of the same name
/// wins, masked or not. The error names the plugin.
async fn runner_globals(
    plugin: &dyn EnvironPluginClient,
    repo: &Repo,
    build: &Build,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>), StageError> {
    let variables = plugin
        .environ(repo, build)
        .await
        .map_err(|e| StageError::Source {
            message: format!(
                "cannot get the environment variables from the environ plugin: {}",
                error_chain(&*e)
            ),
        })?;
    let mut by_name = BTreeMap::new();
    for variable in variables {
        if !variable.name.is_empty() {
            by_name.insert(variable.name, (variable.value, variable.mask));
        }
    }
    let (mut plain, mut masked) = (BTreeMap::new(), BTreeMap::new());
    for (name, (value, mask)) in by_name {
        if mask {
            masked.insert(name, value);
        } else {
            plain.insert(name, value);
        }
    }
    tracing::debug!(
        variables = plain.len(),
        masked = masked.len(),
        "environ plugin asked"
    );
    Ok((plain, masked))
}

/// The secret plugin as the last `from_secret` source: asked only for a
/// name whose `kind: secret` document has a `get`, and only when no
/// earlier source gave it (the chain stops at the first value), so a `get`
/// document nobody uses costs no request and cannot fail the stage.
struct PluginSecrets(Arc<dyn SecretPluginClient>);

#[async_trait]
impl SecretProvider for PluginSecrets {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        let Some(get) = request.document.and_then(|d| d.get.as_ref()) else {
            return Ok(None);
        };
        self.0
            .find(&get.path, &get.name, request.repo, request.build)
            .await
            .map_err(|e| SecretError {
                name: request.name.to_owned(),
                provider: "the secret plugin".into(),
                message: format!(
                    "cannot get it (path {:?}, name {:?}): {}",
                    get.path,
                    get.name,
                    error_chain(&*e)
                ),
            })
    }
}

/// The registry plugin as the last registry source.
struct PluginRegistries {
    plugin: Arc<dyn RegistryPluginClient>,
    repo: Repo,
    build: Build,
}

#[async_trait]
impl RegistryProvider for PluginRegistries {
    async fn registries(&self) -> Result<Vec<RegistryAuth>, RegistryError> {
        self.plugin
            .registries(&self.repo, &self.build)
            .await
            .map_err(|e| RegistryError::Source {
                source_name: "the registry plugin".into(),
                message: format!(
                    "cannot get the registry credentials from the registry plugin: {}",
                    error_chain(&*e)
                ),
            })
    }
}

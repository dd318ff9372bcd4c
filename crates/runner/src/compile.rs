//! [`StageCompiler`]: from a stage's details to the Spec it runs, with the
//! extension plugins asked on the way.

use std::sync::Arc;
use std::time::SystemTime;

use runnerkit_core::drone::{Details, Stage};
use runnerkit_core::{RegistryAuth, Secret, SecretVar, Spec, error_chain};
use runnerkit_manifest::{
    CombinedRegistries, CombinedSecrets, CompileContext, Compiled, DocumentSecrets, Manifest,
    RegistryError, RegistryProvider, SecretError, SecretProvider, SecretRequest, ServerSecrets,
    StaticRegistries, StaticSecrets,
};

use crate::RunnerConfig;
use crate::report::unix;

/// Compiles one stage: asks the registry and environ plugins, gathers the
/// pipeline file's secrets (its encrypted documents, the secret plugin's
/// values), builds the compile context and runs the manifest's `prepare_manifest`.
/// Every error is a message for the stage's `error`.
pub(crate) struct StageCompiler<'a> {
    config: &'a RunnerConfig,
    stage: &'a Stage,
    details: &'a Details,
}

impl<'a> StageCompiler<'a> {
    /// For `stage`, described by `details`, with the runner's `config`.
    pub(crate) fn new(config: &'a RunnerConfig, stage: &'a Stage, details: &'a Details) -> Self {
        Self {
            config,
            stage,
            details,
        }
    }

    /// The pipeline the stage runs: the one named like it (`default` for
    /// an unnamed stage), as Drone's runners look it up.
    fn pipeline_name(&self) -> &'a str {
        if self.stage.name.is_empty() {
            "default"
        } else {
            self.stage.name.as_str()
        }
    }

    /// The compiled stage, or why it cannot run.
    pub(crate) async fn compile(&self) -> Result<Compiled, String> {
        let extensions = self.extensions().await?;
        let ctx = self.context(&extensions);
        let manifest = self.parse(&ctx)?;
        let file = self.file_secrets(&manifest).await?;
        self.compile_with(&manifest, ctx, file, &extensions)
    }

    /// The pipeline file, substituted (with `ctx`'s variables) and parsed:
    /// read once, for the secret lookups and the compile.
    fn parse(&self, ctx: &CompileContext) -> Result<Manifest, String> {
        let text = std::str::from_utf8(&self.details.config.data)
            .map_err(|_| "the pipeline file is not valid UTF-8".to_owned())?;
        let vars = ctx.substitution_environ();
        let text = runnerkit_manifest::envsubst(text, |k| vars.get(k).cloned())
            .map_err(|e| e.to_string())?;
        Manifest::parse(&text).map_err(|e| e.to_string())
    }

    /// The secrets the pipeline file brings: its encrypted `kind: secret`
    /// documents (with the repository's key) and, with a secret plugin
    /// configured, the values of its `get` documents that no earlier source
    /// gives (see `runnerkit_core::SecretPluginClient`).
    async fn file_secrets(&self, manifest: &Manifest) -> Result<FileSecrets, String> {
        let (stage, details) = (self.stage, self.details);
        let mut found = FileSecrets {
            documents: DocumentSecrets::of(manifest, &details.repository.secret),
            ..FileSecrets::default()
        };
        let Some(plugin) = &self.config.secret_plugin else {
            return Ok(found);
        };
        // Only what the stage's pipeline refers to is asked for, as Drone
        // looks secrets up while compiling: a `get` document nobody uses
        // costs no request and cannot fail the stage.
        let name = self.pipeline_name();
        let Ok(pipeline) = runnerkit_manifest::select(manifest, Some(name), &stage.kind_type)
        else {
            return Ok(found);
        };
        let used = pipeline.secret_names();
        let mut wanted = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        {
            let earlier = self.secrets_before_plugin(found.documents.clone());
            for doc in manifest.secrets() {
                if !seen.insert(doc.name.as_str()) {
                    continue;
                }
                let Some(get) = &doc.get else { continue };
                if !used.contains(&doc.name.as_str()) {
                    continue;
                }
                let given = earlier.find(&SecretRequest {
                    name: &doc.name,
                    build: &details.build,
                    repo: &details.repository,
                });
                // An error of another source is the compile's to report.
                if matches!(given, Ok(Some(ref v)) if !v.is_empty()) || given.is_err() {
                    continue;
                }
                wanted.push((doc.name.clone(), get.clone()));
            }
        }
        let lookups = wanted.iter().map(|(name, get)| async move {
            let found = plugin
                .find(&get.path, &get.name, &details.repository, &details.build)
                .await;
            (name, get, found)
        });
        let mut values = std::collections::BTreeMap::new();
        for (name, get, found) in futures_util::future::join_all(lookups).await {
            match found {
                Ok(Some(value)) if !value.is_empty() => {
                    values.insert(name.clone(), value);
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "cannot get secret {name:?} (path {:?}, name {:?}) from the secret plugin: {}",
                        get.path,
                        get.name,
                        error_chain(&*e)
                    ));
                }
            }
        }
        tracing::debug!(
            stage = stage.id,
            asked = wanted.len(),
            found = values.len(),
            "secret plugin lookups done"
        );
        found.plugin = values;
        Ok(found)
    }

    /// The sources of `from_secret` before the secret plugin, in the order
    /// of reference §12: the server's secrets, the file's encrypted
    /// `documents`, the runner's static secrets.
    fn secrets_before_plugin(&self, documents: Option<DocumentSecrets>) -> CombinedSecrets {
        let mut secrets =
            CombinedSecrets::new().with(ServerSecrets::new(self.details.secrets.clone()));
        if let Some(documents) = documents {
            secrets = secrets.with(documents);
        }
        for provider in &self.config.secrets {
            secrets = secrets.with(Shared(provider.clone()));
        }
        secrets
    }

    /// What the registry and environ plugins give for the stage, asked
    /// concurrently (nothing without plugins). The error names the plugin.
    async fn extensions(&self) -> Result<Extensions, String> {
        let (repo, build) = (&self.details.repository, &self.details.build);
        let registries = async {
            match &self.config.registry_plugin {
                Some(plugin) => plugin.registries(repo, build).await.map_err(|e| {
                    format!(
                        "cannot get the registry credentials from the registry plugin: {}",
                        error_chain(&*e)
                    )
                }),
                None => Ok(Vec::new()),
            }
        };
        let environ = async {
            match &self.config.environ_plugin {
                Some(plugin) => plugin.environ(repo, build).await.map_err(|e| {
                    format!(
                        "cannot get the environment variables from the environ plugin: {}",
                        error_chain(&*e)
                    )
                }),
                None => Ok(Vec::new()),
            }
        };
        let (registries, variables) = futures_util::future::join(registries, environ).await;
        let (registries, variables) = (registries?, variables?);
        // A later variable of the same name wins, masked or not.
        let mut by_name = std::collections::BTreeMap::new();
        for variable in variables {
            if !variable.name.is_empty() {
                by_name.insert(variable.name, (variable.value, variable.mask));
            }
        }
        let mut found = Extensions {
            registries,
            ..Extensions::default()
        };
        for (name, (value, mask)) in by_name {
            if mask {
                found.masked.push((name, value));
            } else {
                found.environ.insert(name, value);
            }
        }
        if self.config.registry_plugin.is_some() || self.config.environ_plugin.is_some() {
            tracing::debug!(
                stage = self.stage.id,
                registries = found.registries.len(),
                variables = found.environ.len(),
                masked = found.masked.len(),
                "registry and environ plugins asked"
            );
        }
        Ok(found)
    }

    /// The compile context of `stage`, without secrets. Its environment is
    /// the runner's globals (`DRONE_RUNNER_ENVIRON`, then the environ
    /// plugin's unmasked variables), then the build's parameters.
    fn context(&self, extensions: &Extensions) -> CompileContext {
        let (stage, details) = (self.stage, self.details);
        let mut environ = self.config.environ.clone();
        environ.extend(extensions.environ.clone());
        environ.extend(details.build.params.clone());
        CompileContext {
            spec_id: format!("rk{}-{}", stage.id, unix(Some(SystemTime::now()))),
            build: details.build.clone(),
            repo: details.repository.clone(),
            stage: stage.clone(),
            system: details.system.clone(),
            netrc: details.netrc.clone(),
            environ,
            ..CompileContext::default()
        }
    }

    /// Selects, lints and compiles the stage's pipeline of `manifest`, with
    /// every secret and registry source in its order.
    fn compile_with(
        &self,
        manifest: &Manifest,
        ctx: CompileContext,
        file: FileSecrets,
        extensions: &Extensions,
    ) -> Result<Compiled, String> {
        // Reference §12 order, the secret plugin last. (`prepare_manifest`
        // asks the documents again at the end, which finds nothing new.)
        let mut secrets = self.secrets_before_plugin(file.documents);
        if !file.plugin.is_empty() {
            secrets = secrets.with(StaticSecrets::new(file.plugin));
        }
        // Reference §13 order: `image_pull_secrets` (the compiler puts them
        // first), the runner's own credentials, the registry plugin's.
        let mut registries = CombinedRegistries::new();
        if let Some(own) = &self.config.registries {
            registries = registries.with(SharedRegistries(own.clone()));
        }
        if !extensions.registries.is_empty() {
            registries = registries.with(StaticRegistries(extensions.registries.clone()));
        }
        let ctx = CompileContext {
            secrets: Arc::new(secrets),
            registries: Arc::new(registries),
            ..ctx
        };
        let mut compiled = runnerkit_manifest::prepare_manifest(
            manifest,
            Some(self.pipeline_name()),
            self.details.repository.trusted,
            &self.config.compiler,
            &ctx,
        )
        .map_err(|e| e.to_string())?;
        add_masked_globals(&mut compiled.spec, &extensions.masked);
        Ok(compiled)
    }
}

/// A provider shared behind an `Arc`, as the combinator wants an owned one.
struct Shared(Arc<dyn SecretProvider>);

impl SecretProvider for Shared {
    fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        self.0.find(request)
    }
}

/// A registry provider shared behind an `Arc`, for the combinator.
struct SharedRegistries(Arc<dyn RegistryProvider>);

impl RegistryProvider for SharedRegistries {
    fn registries(&self) -> Result<Vec<RegistryAuth>, RegistryError> {
        self.0.registries()
    }
}

/// What the registry and environ plugins gave for a stage (see
/// `StageCompiler::extensions`).
#[derive(Default)]
struct Extensions {
    /// The registry plugin's credentials.
    registries: Vec<RegistryAuth>,
    /// The environ plugin's unmasked variables: runner globals.
    environ: std::collections::BTreeMap<String, String>,
    /// Its masked variables, by name.
    masked: Vec<(String, String)>,
}

/// Sets the masked runner globals in every step of `spec` as secrets are
/// set (before the step's own secrets, so that its `from_secret` of the same
/// name wins) and lists their values among the spec's masked secrets, so
/// that every step's log masks them (reference §12). Empty values are
/// skipped, as empty variables are dropped anyway.
fn add_masked_globals(spec: &mut Spec, masked: &[(String, String)]) {
    let masked: Vec<&(String, String)> = masked.iter().filter(|(_, v)| !v.is_empty()).collect();
    if masked.is_empty() {
        return;
    }
    for step in &mut spec.steps {
        let globals = masked.iter().map(|(name, value)| SecretVar {
            env: name.clone(),
            value: value.clone(),
            mask: true,
        });
        step.secrets.splice(0..0, globals);
    }
    for (name, value) in masked {
        if !spec.secrets.iter().any(|s| s.mask && s.value == *value) {
            spec.secrets.push(Secret {
                name: name.clone(),
                value: value.clone(),
                mask: true,
            });
        }
    }
}

/// The secret sources a pipeline file brings (see `StageCompiler::file_secrets`).
#[derive(Default)]
struct FileSecrets {
    /// Its encrypted documents, when the repository has a key.
    documents: Option<DocumentSecrets>,
    /// What the secret plugin gave for its `get` documents, by name.
    plugin: std::collections::BTreeMap<String, String>,
}

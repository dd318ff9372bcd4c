//! The pipeline language: from the text of a `.drone.yml` to a compiled
//! [`runnerkit_core::Spec`].
//!
//! The flow for one stage (reference §1), each step also callable alone:
//!
//! 1. [`envsubst`] over the text, with [`CompileContext::substitution_environ`];
//! 2. [`Manifest::parse`]: every document as a typed [`Resource`];
//! 3. pick the pipeline: [`Manifest::pipeline`] or [`Manifest::pipeline_of_type`];
//! 4. [`lint`] it (all problems at once) against the repository's trust;
//! 5. [`Compiler::compile`] it into a [`Compiled`]: the `Spec` plus warnings
//!    (a `from_secret` nobody knows leaves its variable unset and warns on
//!    that step, as Drone does).
//!
//! [`prepare`] does all five.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use runnerkit_manifest::{prepare, CompileContext, Compiler, StaticSecrets};
//!
//! let yaml = "\
//! kind: pipeline
//! type: exec
//! name: hello
//! steps:
//! - name: greet
//!   environment:
//!     TOKEN: {from_secret: demo_token}
//!   commands:
//!   - echo hello from ${DRONE_BRANCH}
//! ";
//! let mut ctx = CompileContext {
//!     spec_id: "run-1".into(),
//!     clone: false,
//!     host_workspace: Some("/tmp/src".into()),
//!     secrets: Arc::new(StaticSecrets::new(BTreeMap::from([
//!         ("demo_token".to_owned(), "s3cret".to_owned()),
//!     ]))),
//!     ..CompileContext::default()
//! };
//! ctx.build.target = "main".into();
//!
//! let compiled = prepare(yaml, Some("hello"), false, &Compiler::default(), &ctx)?;
//! let step = &compiled.spec.steps[0];
//! assert_eq!(step.id, "run-1-1");
//! assert!(step.script.as_ref().unwrap().body.contains("echo hello from main"));
//! assert_eq!(step.secrets[0].env, "TOKEN");
//! assert!(compiled.warnings.is_empty());
//! # Ok::<(), runnerkit_manifest::Error>(())
//! ```
//!
//! The YAML crate (serde-saphyr) is used in one private module only; see
//! `docs/yaml.md`. What is supported and where runnerkit differs from Drone:
//! `docs/pipeline-reference.md`.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod compile;
mod conditions;
pub mod environ;
mod envsubst;
mod glob;
mod lint;
mod live;
mod model;
mod registry;
mod secrets;
mod values;
mod yaml;

pub use compile::{CompileContext, CompileError, CompileWarning, Compiled, Compiler};
pub use conditions::MatchInput;
pub use envsubst::{EnvsubstError, envsubst};
pub use lint::{LintError, LintRule, lint, lint_manifest};
pub use live::LiveStatus;
pub use model::raw_documents;
pub use model::{
    CloneSettings, Concurrency, Conditions, HostVolume, Manifest, MountSpec, OtherResource,
    ParseError, ParseWarning, Pipeline, PlatformSpec, RawDocument, Resource, SecretGet,
    SecretResource, Signature, StepSpec, TempVolume, VolumeSpec, WorkspaceSpec,
};
pub use registry::{
    CombinedRegistries, DockerConfig, RegistryError, RegistryProvider, StaticRegistries,
    find_credentials, image_registry, normalize_host,
};
pub use secrets::{
    CombinedSecrets, DocumentSecrets, EnvSecrets, SecretError, SecretProvider, SecretRequest,
    ServerSecrets, StaticSecrets,
};
pub use values::{ByteSize, Condition, EnvValue, SettingValue};
pub use yaml::{Located, YamlError};

/// Why a pipeline file could not be turned into a `Spec`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `${…}` expression could not be substituted.
    #[error(transparent)]
    Envsubst(#[from] EnvsubstError),
    /// The YAML is invalid or not the shape Drone expects.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// No pipeline has the name asked for (or the file has none).
    #[error("pipeline {name:?} not found{}", if available.is_empty() { String::new() } else { format!(" (the file has: {})", available.join(", ")) })]
    PipelineNotFound {
        /// The name asked for; empty when the first pipeline was asked for.
        name: String,
        /// Names of the pipelines the file has.
        available: Vec<String>,
    },
    /// The linter found problems; every one is listed.
    #[error("{} lint error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Lint(Vec<LintError>),
    /// The pipeline could not be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// The whole flow for one stage: envsubst (with the context's variables),
/// parse, select, lint (file-wide rules and the pipeline's, against
/// `trusted`), compile. `kind: secret` documents with encrypted `data` are
/// looked up after `ctx.secrets`, with `ctx.repo.secret` as the key.
///
/// `name` selects the pipeline (`None`: the first one). When
/// `ctx.stage.kind_type` is set, only pipelines of that type match, as a
/// runner's lookup does.
///
/// # Errors
/// [`Error`]: the first failing phase; lint reports all its problems.
pub fn prepare(
    text: &str,
    name: Option<&str>,
    trusted: bool,
    compiler: &Compiler,
    ctx: &CompileContext,
) -> Result<Compiled, Error> {
    let vars = ctx.substitution_environ();
    let text = envsubst(text, |k| vars.get(k).cloned())?;
    let manifest = Manifest::parse(&text)?;
    prepare_manifest(&manifest, name, trusted, compiler, ctx)
}

/// [`prepare`] from an already substituted and parsed file: select, lint,
/// compile. For a caller that reads the file itself first (a runner that
/// looks at its `kind: secret` documents before compiling).
///
/// # Errors
/// [`Error`]: the first failing phase; lint reports all its problems.
pub fn prepare_manifest(
    manifest: &Manifest,
    name: Option<&str>,
    trusted: bool,
    compiler: &Compiler,
    ctx: &CompileContext,
) -> Result<Compiled, Error> {
    let pipeline = select(manifest, name, &ctx.stage.kind_type)?;
    let mut problems = lint_manifest(manifest);
    problems.extend(lint(pipeline, trusted));
    if !problems.is_empty() {
        return Err(Error::Lint(problems));
    }
    if let Some(documents) = DocumentSecrets::of(manifest, &ctx.repo.secret) {
        // `kind: secret` documents of this file, after the caller's providers.
        let mut ctx = ctx.clone();
        let combined = CombinedSecrets::new()
            .with(ctx.secrets.clone())
            .with(documents);
        ctx.secrets = std::sync::Arc::new(combined);
        return Ok(compiler.compile(pipeline, &ctx)?);
    }
    Ok(compiler.compile(pipeline, ctx)?)
}

/// Picks a pipeline by name (and type, when `kind_type` is not empty).
///
/// # Errors
/// [`Error::PipelineNotFound`] listing the names the file has.
pub fn select<'m>(
    manifest: &'m Manifest,
    name: Option<&str>,
    kind_type: &str,
) -> Result<&'m Pipeline, Error> {
    let found = match (name, kind_type) {
        (name, "") => manifest.pipeline(name),
        (Some(name), kind_type) => manifest.pipeline_of_type(name, kind_type),
        (None, kind_type) => manifest
            .pipelines()
            .find(|p| p.pipeline_type() == kind_type),
    };
    found.ok_or_else(|| Error::PipelineNotFound {
        name: name.unwrap_or_default().to_owned(),
        available: manifest
            .pipelines()
            .map(|p| p.display_name().to_owned())
            .collect(),
    })
}

//! The pipeline language: from the text of a `.drone.yml` to a compiled
//! [`runnerkit_core::Spec`].
//!
//! [`assemble`] is the one path for one stage (reference §1), which
//! `runnerkit exec`, the runner daemon and third parties all take:
//!
//! 1. [`envsubst`] over the text, with [`CompileContext::substitution_environ`];
//! 2. [`Manifest::parse`]: every document as a typed [`Resource`];
//! 3. pick the pipeline ([`select`]) and check that its type is one the
//!    runner serves ([`TypeRegistry`]);
//! 4. lint it (all problems at once): Drone's rules and the engine's own
//!    keys ([`EngineKeys`]);
//! 5. look up every secret it refers to and the registry credentials,
//!    through async sources ([`SecretProvider`], [`RegistryProvider`]);
//! 6. compile it into a [`Compiled`]: the `Spec`, the warnings (a
//!    `from_secret` nobody knows leaves its variable unset and warns on
//!    that step, as Drone does), and every step with its spec index or why
//!    it will not run.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use runnerkit_manifest::{
//!     assemble, CompileContext, Compiler, PipelineType, StageInput, StaticSecrets, TypeRegistry,
//! };
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
//! - name: deploy
//!   when: {branch: production}
//!   commands: [./deploy]
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
//! let types = TypeRegistry::new().with(PipelineType::exec());
//!
//! # tokio_test_block_on(async {
//! let compiled = assemble(StageInput {
//!     text: yaml,
//!     pipeline: Some("hello"),
//!     trusted: false,
//!     types: &types,
//!     compiler: &Compiler::default(),
//!     context: &ctx,
//!     parsed: None,
//! })
//! .await?;
//! let step = &compiled.spec.steps[0];
//! assert_eq!(step.id, "run-1-1");
//! assert!(step.script.as_ref().unwrap().body.contains("echo hello from main"));
//! assert_eq!(step.secrets[0].env, "TOKEN");
//! assert_eq!(compiled.spec.steps.len(), 1);
//! assert_eq!(compiled.steps[1].not_run.as_ref().unwrap().to_string(), "when: branch");
//! assert!(compiled.warnings.is_empty());
//! # Ok::<(), runnerkit_manifest::Error>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! The YAML crate (serde-saphyr) is used in one private module only; see
//! `docs/yaml.md`. What is supported and where runnerkit differs from Drone:
//! `docs/pipeline-reference.md`.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod assemble;
mod compile;
mod conditions;
pub mod environ;
mod envsubst;
mod glob;
mod limits;
mod lint;
mod live;
mod model;
mod registry;
mod secrets;
pub mod stages;
mod types;
mod unknown;
mod values;
mod yaml;

pub use assemble::{Parsed, StageInput, assemble};
pub use compile::{
    CompileContext, CompileError, CompileWarning, Compiled, Compiler, NotRun, StageStep,
    StepSelection,
};
pub use conditions::MatchInput;
pub use envsubst::{ENVSUBST_MAX_NESTING, EnvsubstError, envsubst};
pub use limits::{Limit, LimitError, ParseLimits};
pub use lint::{
    LintError, LintRule, lint, lint_file, lint_file_warnings, lint_manifest, lint_warnings,
};
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
pub use types::{EngineDocument, EngineKeys, EngineStep, PipelineType, StepKind, TypeRegistry};
pub use unknown::{KeyLevel, UnknownKey};
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
    /// The pipeline's type is not one this runner serves.
    #[error("pipeline {pipeline:?}: type {kind_type:?} is not served here (this runner serves: {})", served.join(", "))]
    UnknownType {
        /// The pipeline.
        pipeline: String,
        /// Its type.
        kind_type: String,
        /// The types the runner serves.
        served: Vec<String>,
    },
    /// No pipeline has the name asked for (or the file has none).
    #[error("{}", not_found(name, available))]
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

/// The message of [`Error::PipelineNotFound`]: an empty file or one
/// without a pipeline says so, rather than `pipeline "" not found`.
fn not_found(name: &str, available: &[String]) -> String {
    match (name, available) {
        (_, []) => "the file has no pipeline (no `kind: pipeline` document)".to_owned(),
        (name, _) => format!(
            "pipeline {name:?} not found (the file has: {})",
            available.join(", ")
        ),
    }
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

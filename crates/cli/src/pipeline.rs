//! From a pipeline file on disk to a compiled stage for a local run: the
//! input side `exec` and `compile` share, over `runnerkit-manifest`'s one
//! assembly path. Every error here refuses the input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use runnerkit_core::Secret;
use runnerkit_manifest::{
    CombinedSecrets, CompileContext, Compiled, Compiler, DocumentSecrets, Error, LintError,
    LiveStatus, StageInput, StaticSecrets, StepSelection, TypeRegistry,
};

use crate::cli::BuildArgs;
use crate::context::local_build;

/// A pipeline file, read.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as given.
    pub path: PathBuf,
    /// The absolute directory holding it: the workspace.
    pub dir: PathBuf,
    /// Its text.
    pub text: String,
}

/// Reads `path`.
pub fn read(path: &Path) -> anyhow::Result<SourceFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the pipeline file {}", path.display()))?;
    let absolute = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve the path of {}", path.display()))?;
    let dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    Ok(SourceFile {
        path: path.to_path_buf(),
        dir,
        text,
    })
}

/// What a local run needs besides the file.
#[derive(Debug, Default)]
pub struct RunInputs<'a> {
    /// The pipeline's name; `None` for the first.
    pub pipeline: Option<&'a str>,
    /// Whether the trusted-only settings are allowed.
    pub trusted: bool,
    /// The build, as conditions and `DRONE_*` see it.
    pub build: BuildArgs,
    /// `--env` values: every step's environment, and `${VAR}` substitution.
    pub env: &'a [(String, String)],
    /// `--secret` values for `from_secret`, each masked in every log.
    pub secrets: &'a [(String, String)],
    /// `--include`/`--exclude`: the steps to run.
    pub selection: StepSelection,
}

/// The variables of the dotenv file at `file`, if any, then `flags`: a
/// flag comes later, so it wins when the map is built.
///
/// # Errors
/// The file cannot be read, or a line of it is not `KEY=VALUE`.
pub fn with_env_file(
    file: Option<&Path>,
    flags: &[(String, String)],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = match file {
        Some(path) => runnerkit_runner::daemon::read_env_file(path)?
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    pairs.extend(flags.iter().cloned());
    Ok(pairs)
}

/// A compiled pipeline, ready to run.
#[derive(Debug)]
pub struct Prepared {
    /// The Spec, the compile warnings and every step of the pipeline.
    pub compiled: Compiled,
    /// Keeps `DRONE_BUILD_STATUS` and its kin current as steps start.
    pub live: LiveStatus,
}

/// Assembles one pipeline of `source` for a local run: its directory is
/// the workspace, nothing is cloned, `--secret` values come first and the
/// file's encrypted documents after them, and every `--secret` value is
/// masked whether or not the pipeline uses it.
pub async fn prepare(
    source: &SourceFile,
    inputs: &RunInputs<'_>,
    types: &TypeRegistry,
) -> anyhow::Result<Prepared> {
    let requested = inputs.pipeline.unwrap_or_default();
    let local = local_build(&inputs.build, &source.dir, inputs.trusted, requested, "");
    let secrets = CombinedSecrets::new()
        .with(StaticSecrets::new(to_map(inputs.secrets)))
        .with(DocumentSecrets);
    let ctx = CompileContext {
        spec_id: run_id(),
        build: local.build,
        repo: local.repo,
        stage: local.stage,
        system: local.system,
        secrets: Arc::new(secrets),
        environ: to_map(inputs.env),
        masked: inputs
            .secrets
            .iter()
            .map(|(name, value)| Secret {
                name: name.clone(),
                value: value.clone(),
                mask: true,
            })
            .collect(),
        host_workspace: Some(source.dir.display().to_string()),
        clone: false,
        selection: inputs.selection.clone(),
        ..CompileContext::default()
    };
    let compiled = runnerkit_manifest::assemble(StageInput {
        text: &source.text,
        pipeline: inputs.pipeline,
        trusted: inputs.trusted,
        types,
        compiler: &Compiler::default(),
        context: &ctx,
    })
    .await
    .map_err(|e| refused(e, source))?;
    let mut stage = ctx.stage;
    stage.name.clone_from(&compiled.pipeline);
    stage.kind_type.clone_from(&compiled.pipeline_type);
    Ok(Prepared {
        live: LiveStatus::new(&ctx.build, &stage),
        compiled,
    })
}

/// Why the file was refused, said the way `exec` and `compile` print it:
/// the file first, then the phase that failed.
fn refused(error: Error, source: &SourceFile) -> anyhow::Error {
    let path = source.path.display();
    let phase = match &error {
        Error::Lint(problems) => {
            return anyhow::anyhow!(
                "{path}: the pipeline has problems:\n{}",
                describe(problems, source)
            );
        }
        Error::Envsubst(_) => "variable substitution failed",
        Error::Parse(_) => "invalid pipeline file",
        Error::PipelineNotFound { .. } | Error::UnknownType { .. } => {
            "cannot pick the pipeline to run"
        }
        Error::Compile(runnerkit_manifest::CompileError::UnknownSelectedStep { .. }) => {
            "cannot select the steps to run"
        }
        _ => "cannot compile the pipeline",
    };
    anyhow::Error::new(error).context(format!("{path}: {phase}"))
}

/// Parses `source` for linting, where no variable has a value: linting
/// needs the shape, not the values.
///
/// Each `${NAME…}` reads as a word derived from its name (`x_NAME`): a word
/// keeps every scalar a scalar (`${A}-${B}` is `x_A-x_B`, where empty would
/// leave `-`, a list entry) and a required key (`image: ${IMAGE}`) set, and
/// two variables stay two names. A word cannot stand for a size
/// (`mem_limit: ${MEM}`), so when the file only parses with the variables
/// empty, as unset ones read at run time, that reading is linted.
pub fn parse_for_lint(source: &SourceFile) -> anyhow::Result<runnerkit_manifest::Manifest> {
    let path = source.path.display();
    let substitute = |lookup: &dyn Fn(&str) -> Option<String>| {
        runnerkit_manifest::envsubst(&source.text, lookup)
            .with_context(|| format!("{path}: variable substitution failed"))
    };
    let worded = substitute(&|name| Some(lint_placeholder(name)))?;
    match runnerkit_manifest::Manifest::parse(&worded) {
        Ok(manifest) => Ok(manifest),
        Err(error) => {
            let empty = substitute(&|_| None)?;
            // The first error is the one to show: the words keep the shape.
            runnerkit_manifest::Manifest::parse(&empty).map_err(|_| {
                anyhow::Error::new(error).context(format!("{path}: invalid pipeline file"))
            })
        }
    }
}

/// What `${NAME}` reads as when linting: a plain YAML word, never a
/// boolean, number or null (`x_ON`, not `ON`).
fn lint_placeholder(name: &str) -> String {
    format!("x_{name}")
}

/// One line per problem, each starting with the file.
pub fn describe(problems: &[LintError], source: &SourceFile) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {p}", source.path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn to_map(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

/// A unique id for this run: engines name what they create after it.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("exec-{}-{nanos:x}", std::process::id())
}

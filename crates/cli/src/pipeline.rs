//! From a pipeline file on disk to a compiled `Spec`: the input side every
//! command shares, over `runnerkit-manifest`'s phases (envsubst, parse,
//! select, lint, compile). Every error here refuses the input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use runnerkit_manifest::{
    CompileContext, Compiled, Compiler, LintError, LiveStatus, Manifest, Pipeline, StaticSecrets,
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
    /// `--secret` values for `from_secret`.
    pub secrets: &'a [(String, String)],
}

/// A compiled pipeline and what kind of engine runs it.
#[derive(Debug)]
pub struct Prepared {
    /// The Spec and the compile warnings.
    pub compiled: Compiled,
    /// The pipeline's `type`: `exec` or `docker`.
    pub pipeline_type: String,
    /// Keeps `DRONE_BUILD_STATUS` and its kin current as steps start.
    pub live: LiveStatus,
}

/// Substitutes, parses, selects, lints and compiles one pipeline of
/// `source` for a local run: its directory is the workspace, nothing is
/// cloned.
pub fn prepare(source: &SourceFile, inputs: &RunInputs<'_>) -> anyhow::Result<Prepared> {
    let path = source.path.display();
    let requested = inputs.pipeline.unwrap_or_default();
    let local = local_build(&inputs.build, &source.dir, inputs.trusted, requested, "");
    let mut ctx = CompileContext {
        spec_id: run_id(),
        build: local.build,
        repo: local.repo,
        stage: local.stage,
        system: local.system,
        secrets: Arc::new(StaticSecrets::new(to_map(inputs.secrets))),
        environ: to_map(inputs.env),
        host_workspace: Some(source.dir.display().to_string()),
        clone: false,
        ..CompileContext::default()
    };
    let vars = ctx.substitution_environ();
    let text = runnerkit_manifest::envsubst(&source.text, |k| vars.get(k).cloned())
        .with_context(|| format!("{path}: variable substitution failed"))?;
    let manifest =
        Manifest::parse(&text).with_context(|| format!("{path}: invalid pipeline file"))?;
    let pipeline = runnerkit_manifest::select(&manifest, inputs.pipeline, "")
        .with_context(|| format!("{path}: cannot pick the pipeline to run"))?;
    let problems = lint(&manifest, [pipeline], inputs.trusted);
    if !problems.is_empty() {
        bail!(
            "{path}: the pipeline has problems:\n{}",
            describe(&problems, source)
        );
    }
    ctx.stage.name = pipeline.display_name().to_owned();
    ctx.stage.kind_type = pipeline.pipeline_type().to_owned();
    let compiled = Compiler::default()
        .compile(pipeline, &ctx)
        .with_context(|| format!("{path}: cannot compile the pipeline"))?;
    Ok(Prepared {
        compiled,
        live: LiveStatus::new(&ctx.build, &ctx.stage),
        pipeline_type: ctx.stage.kind_type,
    })
}

/// Parses `source` for linting: `${VAR}` expressions substitute as empty,
/// since linting needs the shape, not the values.
pub fn parse_for_lint(source: &SourceFile) -> anyhow::Result<Manifest> {
    let path = source.path.display();
    let text = runnerkit_manifest::envsubst(&source.text, |_| None)
        .with_context(|| format!("{path}: variable substitution failed"))?;
    Manifest::parse(&text).with_context(|| format!("{path}: invalid pipeline file"))
}

/// Every lint problem of the file (pipelines sharing a name) and of
/// `pipelines`.
pub fn lint<'a>(
    manifest: &Manifest,
    pipelines: impl IntoIterator<Item = &'a Pipeline>,
    trusted: bool,
) -> Vec<LintError> {
    let mut problems = runnerkit_manifest::lint_manifest(manifest);
    for pipeline in pipelines {
        problems.extend(runnerkit_manifest::lint(pipeline, trusted));
    }
    problems
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

//! From a pipeline file on disk to a compiled stage for a local run: the
//! input side `exec` and `compile` share, over `runnerkit-manifest`'s one
//! assembly path. Every error here refuses the input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use runnerkit_core::Secret;
use runnerkit_core::drone::{Build, Stage};
use runnerkit_manifest::stages::StagePlan;
use runnerkit_manifest::{
    CombinedSecrets, CompileContext, Compiled, Compiler, DocumentSecrets, Error, LintError,
    LiveStatus, Parsed, StageInput, StaticSecrets, StepSelection, TypeRegistry,
};

use crate::cli::BuildArgs;
use crate::context::{LocalBuild, local_build};

/// A pipeline file, read.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as given.
    pub path: PathBuf,
    /// The workspace, absolute: the directory holding the file, unless
    /// `exec --workspace` replaced it.
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

/// `--workspace DIR`, resolved: an absolute path to a directory.
///
/// # Errors
/// `dir` does not exist or is not a directory.
pub fn workspace(dir: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::fs::canonicalize(dir)
        .with_context(|| format!("--workspace {}: cannot resolve the path", dir.display()))?;
    if !absolute.is_dir() {
        anyhow::bail!("--workspace {}: not a directory", dir.display());
    }
    Ok(absolute)
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
    /// The stage's number in the build (`DRONE_STAGE_NUMBER`); 0 for 1.
    pub stage_number: i32,
    /// The pipelines the stage waits for (`DRONE_STAGE_DEPENDS_ON`).
    pub stage_depends_on: Vec<String>,
    /// The build as `git` and the flags give it, resolved on first use and
    /// shared by every stage made [`for_stage`](Self::for_stage): one build
    /// asks `git` once. Left empty by whoever makes the inputs.
    pub(crate) resolved: OnceLock<LocalBuild>,
}

impl RunInputs<'_> {
    /// The same inputs for the stage of pipeline `name`, numbered `number`
    /// in the build and waiting for the pipelines `depends_on`.
    pub fn for_stage<'b>(
        &'b self,
        name: &'b str,
        number: i32,
        depends_on: Vec<String>,
    ) -> RunInputs<'b> {
        RunInputs {
            pipeline: Some(name),
            trusted: self.trusted,
            build: self.build.clone(),
            env: self.env,
            secrets: self.secrets,
            selection: self.selection.clone(),
            stage_number: number,
            stage_depends_on: depends_on,
            resolved: self.resolved.clone(),
        }
    }
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
    /// The build it is a stage of, as compiled.
    build: Build,
    /// The stage it is.
    stage: Stage,
}

impl Prepared {
    /// Keeps `DRONE_BUILD_STATUS` and its kin current as steps start, for
    /// a stage starting after the build's stages `failed` failed.
    pub fn live_status(&self, failed: &[String]) -> LiveStatus {
        let build = Build {
            stages: failed
                .iter()
                .map(|name| Stage {
                    name: name.clone(),
                    status: runnerkit_core::Status::Failure,
                    ..Stage::default()
                })
                .collect(),
            ..self.build.clone()
        };
        LiveStatus::new(&build, &self.stage)
    }
}

/// The compile context of a local run of `source`, for the pipeline named
/// `pipeline` ("" before one is picked).
fn context(source: &SourceFile, inputs: &RunInputs<'_>, pipeline: &str) -> CompileContext {
    let mut local = inputs
        .resolved
        .get_or_init(|| local_build(&inputs.build, &source.dir, inputs.trusted, "", ""))
        .clone();
    pipeline.clone_into(&mut local.stage.name);
    if inputs.stage_number > 0 {
        local.stage.number = inputs.stage_number;
    }
    local.stage.depends_on.clone_from(&inputs.stage_depends_on);
    let secrets = CombinedSecrets::new()
        .with(StaticSecrets::new(to_map(inputs.secrets)))
        .with(DocumentSecrets);
    CompileContext {
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
    }
}

/// The build of a local run, as a server would plan it.
#[derive(Debug)]
pub struct LocalPlan {
    /// Which pipelines get a stage, in what order.
    pub stages: StagePlan,
    /// The marker in the commit message that would make a server skip the
    /// build (`[skip ci]`...); a local run, asked for, runs anyway.
    pub skip_marker: Option<&'static str>,
    /// The file as the plan substituted and parsed it, for [`prepare`]:
    /// a stage whose variables give the same text does not parse it again.
    pub parsed: Parsed,
}

/// The build's stages, as a server would plan them for this run: `trigger`
/// against the build data, `depends_on` for the order; `selected` (the
/// `--pipeline` names) overrides the trigger. The file is substituted as
/// for any stage of it, before one is picked.
pub fn plan(
    source: &SourceFile,
    inputs: &RunInputs<'_>,
    selected: &[String],
) -> anyhow::Result<LocalPlan> {
    let ctx = context(source, inputs, "");
    let vars = ctx.substitution_environ();
    let refuse = |e: Error| refused(e, source);
    let text = runnerkit_manifest::envsubst(&source.text, |k| vars.get(k).cloned())
        .map_err(|e| refuse(e.into()))?;
    let parsed = Parsed::new(text).map_err(|e| refuse(e.into()))?;
    let stages = runnerkit_manifest::stages::plan(parsed.manifest(), selected, ctx_match(&ctx))
        .map_err(refuse)?;
    Ok(LocalPlan {
        stages,
        skip_marker: runnerkit_manifest::stages::skip_marker(&ctx.build),
        parsed,
    })
}

fn ctx_match(ctx: &CompileContext) -> runnerkit_manifest::MatchInput<'_> {
    runnerkit_manifest::MatchInput {
        build: &ctx.build,
        repo: &ctx.repo,
        system: &ctx.system,
    }
}

/// Assembles one pipeline of `source` for a local run: its directory is
/// the workspace, nothing is cloned, `--secret` values come first and the
/// file's encrypted documents after them, and every `--secret` value is
/// masked whether or not the pipeline uses it. `parsed`: the file as
/// [`plan`] parsed it, reused when this stage's variables give the same text.
pub async fn prepare(
    source: &SourceFile,
    inputs: &RunInputs<'_>,
    types: &TypeRegistry,
    parsed: Option<&Parsed>,
) -> anyhow::Result<Prepared> {
    let ctx = context(source, inputs, inputs.pipeline.unwrap_or_default());
    let compiled = runnerkit_manifest::assemble(StageInput {
        text: &source.text,
        pipeline: inputs.pipeline,
        trusted: inputs.trusted,
        types,
        compiler: &Compiler::default(),
        context: &ctx,
        parsed,
    })
    .await
    .map_err(|e| refused(e, source))?;
    let mut stage = ctx.stage;
    stage.name.clone_from(&compiled.pipeline);
    stage.kind_type.clone_from(&compiled.pipeline_type);
    Ok(Prepared {
        build: ctx.build,
        stage,
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

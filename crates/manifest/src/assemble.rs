//! [`assemble`]: the one path from a pipeline file to a compiled stage,
//! shared by `runnerkit exec`, the runner daemon and third parties.

use std::borrow::Cow;
use std::collections::BTreeMap;

use futures_util::future::{join, join_all};

use crate::compile::{CompileContext, CompileError, CompileWarning, Compiled, Compiler, Resolved};
use crate::lint::{LintError, lint_manifest, lint_shared, lint_warnings, parse_warnings};
use crate::model::{Manifest, ParseError, Pipeline};
use crate::secrets::SecretRequest;
use crate::types::TypeRegistry;
use crate::{Error, envsubst, select};

/// What a stage is assembled from.
#[derive(Debug, Clone, Copy)]
pub struct StageInput<'a> {
    /// The pipeline file, as written (`${VAR}` not yet substituted).
    pub text: &'a str,
    /// The pipeline to compile, by name; `None` for the first one. When
    /// `context.stage.kind_type` is set, only pipelines of that type match,
    /// as a runner's lookup does.
    pub pipeline: Option<&'a str>,
    /// The repository is trusted (privileged steps, host volumes, ...).
    pub trusted: bool,
    /// The pipeline types this runner serves.
    pub types: &'a TypeRegistry,
    /// The runner-wide compile settings.
    pub compiler: &'a Compiler,
    /// The run: build, repository, stage, system, secret and registry
    /// sources, runner globals, workspace.
    pub context: &'a CompileContext,
    /// The file as an earlier stage of the same build substituted and
    /// parsed it: reused when this stage's substitution gives the same
    /// text, so a build's stages parse their file once. `None`: parse.
    pub parsed: Option<&'a Parsed>,
}

/// A pipeline file substituted and parsed, to be shared by the stages of
/// one build ([`StageInput::parsed`]).
#[derive(Debug, Clone)]
pub struct Parsed {
    text: String,
    manifest: Manifest,
}

impl Parsed {
    /// Parses `text`, a pipeline file with its variables substituted.
    ///
    /// # Errors
    /// The text is not a valid pipeline file.
    pub fn new(text: String) -> Result<Self, ParseError> {
        let manifest = Manifest::parse(&text)?;
        Ok(Self { text, manifest })
    }

    /// The substituted text it was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed file.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

/// Assembles one stage: envsubst (with the context's variables), parse,
/// select the pipeline, check its type is served, lint (the file-wide
/// rules, Drone's rules for its kind of steps, the engine's keys and
/// rules), look up every secret it refers to and the registry credentials
/// (concurrently, through the context's async sources, in their order),
/// compile.
///
/// The returned [`Compiled`] is final: its `Spec` is what the engine runs
/// (masked values included), its `steps` list every step of the pipeline
/// with its spec index or why it will not run, its `warnings` are the
/// pipeline's duplicate keys, then its unknown keys
/// ([`crate::lint_warnings`]), then the compiler's.
///
/// # Errors
/// [`Error`]: the first failing phase; lint reports all its problems; an
/// unknown type names the types served.
pub async fn assemble(input: StageInput<'_>) -> Result<Compiled, Error> {
    let ctx = input.context;
    let vars = ctx.substitution_environ();
    let text = envsubst(input.text, |k| vars.get(k).cloned())?;
    let parsed_here;
    let manifest = match input.parsed.filter(|p| p.text == text) {
        Some(parsed) => &parsed.manifest,
        None => {
            parsed_here = Manifest::parse(&text)?;
            &parsed_here
        }
    };
    let pipeline = select(manifest, input.pipeline, &ctx.stage.kind_type)?;
    let pipeline_type = input.types.type_of(pipeline)?;

    let mut problems = lint_manifest(manifest);
    problems.extend(lint_shared(pipeline, pipeline_type, input.trusted));
    let keys = match pipeline_type.read_keys(pipeline, input.trusted) {
        Ok(keys) => Some(keys),
        Err(engine) => {
            problems.extend(engine);
            None
        }
    };
    let (Some(keys), true) = (keys, problems.is_empty()) else {
        return Err(Error::Lint(problems));
    };

    let resolved = resolve(manifest, pipeline, ctx).await?;
    let ctx = if ctx.stage.name.is_empty() || ctx.stage.kind_type.is_empty() {
        // The stage is the pipeline's: its labels and `DRONE_STAGE_*` say so.
        let mut own = ctx.clone();
        if own.stage.name.is_empty() {
            own.stage.name = pipeline.display_name().to_owned();
        }
        if own.stage.kind_type.is_empty() {
            own.stage.kind_type = pipeline_type.name().to_owned();
        }
        Cow::Owned(own)
    } else {
        Cow::Borrowed(ctx)
    };
    let mut compiled = input
        .compiler
        .compile(pipeline, pipeline_type, keys, &ctx, &resolved)?;
    let mut warnings: Vec<CompileWarning> = parse_warnings(manifest, pipeline)
        .chain(lint_warnings(pipeline, pipeline_type))
        .map(compile_warning)
        .collect();
    warnings.append(&mut compiled.warnings);
    compiled.warnings = warnings;
    Ok(compiled)
}

/// A lint warning as the stage shows it: at the top of its step's log (or
/// the stage's), where the pipeline goes without saying.
fn compile_warning(warning: LintError) -> CompileWarning {
    let message = if warning.line > 0 {
        format!("line {}: {}", warning.line, warning.message)
    } else {
        warning.message
    };
    CompileWarning {
        step: warning.step,
        message,
    }
}

/// Every secret `pipeline` refers to, each asked once through the
/// context's chain (names concurrently), with the file's `kind: secret`
/// document of that name; and the context's registry credentials.
async fn resolve(
    manifest: &Manifest,
    pipeline: &Pipeline,
    ctx: &CompileContext,
) -> Result<Resolved, CompileError> {
    let mut documents = BTreeMap::new();
    for document in manifest.secrets() {
        documents.entry(document.name.as_str()).or_insert(document);
    }
    let names = pipeline.secret_names();
    let lookups = names.iter().map(|name| {
        let request = SecretRequest {
            name,
            build: &ctx.build,
            repo: &ctx.repo,
            document: documents.get(name).copied(),
        };
        async move { (*name, ctx.secrets.find(&request).await) }
    });
    let (found, registries) = join(join_all(lookups), ctx.registries.registries()).await;
    let pipeline_name = || pipeline.display_name().to_owned();
    let mut secrets = BTreeMap::new();
    for (name, value) in found {
        let value = value.map_err(|source| CompileError::Secret {
            pipeline: pipeline_name(),
            source,
        })?;
        secrets.insert(name.to_owned(), value.filter(|v| !v.is_empty()));
    }
    let registries = registries.map_err(|source| CompileError::Registry {
        pipeline: pipeline_name(),
        source,
    })?;
    tracing::debug!(
        pipeline = pipeline.display_name(),
        asked = secrets.len(),
        found = secrets.values().filter(|v| v.is_some()).count(),
        "secrets looked up"
    );
    Ok(Resolved {
        secrets,
        registries,
    })
}

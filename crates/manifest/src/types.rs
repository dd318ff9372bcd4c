//! Pipeline types: what a runner serves, one [`PipelineType`] per `type`
//! name, kept in a [`TypeRegistry`].
//!
//! A pipeline type says how its steps compile: the shared compiler does
//! what every engine of a [`StepKind`] needs (image, commands to a script,
//! settings to `PLUGIN_*`, environment, secrets, volumes, services,
//! policies, workspace), and an engine with pipeline keys of its own
//! declares them with [`EngineKeys`]: they are read from each pipeline of
//! its type with the same YAML rules and line numbers as Drone's keys,
//! checked by the engine's lint rules, and handed to the engine as typed
//! [`EngineOptions`] on `Spec::options` and `Step::options`.
//!
//! Docker and exec are registered through this same API
//! ([`PipelineType::docker`], [`PipelineType::exec`]); so is any third
//! party's type.

use std::fmt;
use std::sync::Arc;

use runnerkit_core::{EngineOptions, OptionsValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::lint::{LintError, LintRule};
use crate::model::Pipeline;
use crate::yaml::{Located, YamlError};

/// How the shared compiler treats the steps of a pipeline type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepKind {
    /// Each step is a container: `image` is required, the workspace is a
    /// path inside the container (`/drone/src`), container keys (volumes,
    /// devices, resources, networking, privileges) are compiled, a clone
    /// step uses the clone image.
    Container,
    /// Each step is a process on the host: no image, the workspace is a
    /// host directory, a clone step is a `git` script.
    Host,
}

/// The pipeline keys an engine reads beyond Drone's shared ones.
///
/// Registered with [`PipelineType::with_keys`]. For every pipeline of that
/// type, the stage assembly (and `runnerkit lint`) reads the whole pipeline
/// document into [`Pipeline`](Self::Pipeline) and each service's and step's
/// map into [`Step`](Self::Step), with serde: declare the keys as fields
/// with `#[serde(default)]` and leave unknown keys allowed (the document
/// holds Drone's keys too). A value of the wrong shape is a lint problem
/// naming its line. Use [`Located`] for a field whose line a lint message
/// should name.
///
/// A level with no keys of its own can be `()`. Called once per stage,
/// from the assembling task, never concurrently for one pipeline; must not
/// do I/O.
pub trait EngineKeys: Send + Sync + 'static {
    /// The pipeline-level keys (e.g. `node_selector`).
    type Pipeline: DeserializeOwned + OptionsValue + Default;
    /// The keys of one step or service (e.g. `resources`).
    type Step: DeserializeOwned + OptionsValue + Default;

    /// The pipeline-level keys it reads, for documentation and for telling
    /// a typo from a key of this engine.
    fn pipeline_keys(&self) -> &[&'static str] {
        &[]
    }

    /// The step- and service-level keys it reads.
    fn step_keys(&self) -> &[&'static str] {
        &[]
    }

    /// The keys of a pipeline `volumes:` entry it reads beyond `name`,
    /// `temp` and `host` (e.g. the volume kinds `claim`, `config_map`). Read
    /// them in [`Pipeline`](Self::Pipeline) from its `volumes` list: the
    /// shared compiler compiles an entry with neither `temp` nor `host` as a
    /// `temp` volume, which the engine replaces with its own kind.
    fn volume_keys(&self) -> &[&'static str] {
        &[]
    }

    /// The keys of a step's `volumes:` entry it reads beyond `name` and
    /// `path` (e.g. `sub_path`), read in [`Step`](Self::Step).
    fn mount_keys(&self) -> &[&'static str] {
        &[]
    }

    /// The engine's own lint rules over what was read: every problem, each
    /// made with [`EngineDocument::problem`] so it names the pipeline, the
    /// step and the line. `trusted` is the repository's trusted flag.
    fn lint(
        &self,
        _document: &EngineDocument<Self::Pipeline, Self::Step>,
        _trusted: bool,
    ) -> Vec<LintError> {
        Vec::new()
    }
}

/// What an engine's keys read from one pipeline, given to
/// [`EngineKeys::lint`].
#[derive(Debug, Clone, PartialEq)]
pub struct EngineDocument<P, S> {
    /// The pipeline's name (`default` when it has none).
    pub name: String,
    /// 1-based line of the pipeline document.
    pub line: u64,
    /// The pipeline-level keys.
    pub pipeline: P,
    /// Every service, then every step, in file order (null steps left out).
    pub steps: Vec<EngineStep<S>>,
}

/// One step's (or service's) keys, read.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStep<S> {
    /// The step's name.
    pub name: String,
    /// True for a service.
    pub service: bool,
    /// 1-based line of the step.
    pub line: u64,
    /// Its keys.
    pub options: S,
}

impl<P, S> EngineDocument<P, S> {
    /// A lint problem of this pipeline (and `step`, when it is about one),
    /// at `line` (0 for the step's or the pipeline's own line).
    pub fn problem(
        &self,
        step: Option<&EngineStep<S>>,
        line: u64,
        message: impl Into<String>,
    ) -> LintError {
        let fallback = step.map_or(self.line, |s| s.line);
        LintError {
            pipeline: self.name.clone(),
            step: step.map(|s| s.name.clone()),
            line: if line > 0 { line } else { fallback },
            rule: LintRule::EngineKey,
            message: message.into(),
        }
    }
}

/// The engine's keys of one pipeline, erased: the options of the spec and of
/// each step, by position among `Pipeline::all_steps` (null steps `None`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadKeys {
    pub(crate) pipeline: EngineOptions,
    pub(crate) steps: Vec<EngineOptions>,
}

trait KeysReader: Send + Sync {
    fn read(&self, pipeline: &Pipeline, trusted: bool) -> Result<ReadKeys, Vec<LintError>>;
    fn pipeline_keys(&self) -> &[&'static str];
    fn step_keys(&self) -> &[&'static str];
    fn volume_keys(&self) -> &[&'static str];
    fn mount_keys(&self) -> &[&'static str];
}

struct Reader<K>(K);

/// The steps and services of a document, as an engine's step type.
#[derive(Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned"))]
struct StepsOf<S> {
    #[serde(default, deserialize_with = "crate::values::nullable_steps")]
    services: Vec<Located<Option<S>>>,
    #[serde(default, deserialize_with = "crate::values::nullable_steps")]
    steps: Vec<Located<Option<S>>>,
}

/// `value` as options; none for a type without keys, so that a Spec of an
/// engine that declared none prints none.
fn options<T: OptionsValue>(value: T) -> EngineOptions {
    if std::mem::size_of::<T>() == 0 {
        EngineOptions::default()
    } else {
        EngineOptions::new(value)
    }
}

/// The default options of a step that holds no keys, where the step is.
fn unit<S: Default, T>(entry: &Located<Option<T>>) -> Located<Option<S>> {
    Located {
        value: entry.value.as_ref().map(|_| S::default()),
        line: entry.line,
        column: entry.column,
    }
}

impl<K: EngineKeys> KeysReader for Reader<K> {
    fn read(&self, pipeline: &Pipeline, trusted: bool) -> Result<ReadKeys, Vec<LintError>> {
        let Some(source) = &pipeline.source else {
            // A pipeline built in code: nothing was written, defaults apply.
            return Ok(ReadKeys::default());
        };
        let shape = |e: YamlError| {
            vec![LintError {
                pipeline: pipeline.display_name().to_owned(),
                step: None,
                line: if e.line > 0 { e.line } else { pipeline.line },
                rule: LintRule::EngineKey,
                message: e.to_string(),
            }]
        };
        // A level without keys (`()`, an empty struct) reads nothing: the
        // document is a map, which a unit type would refuse.
        let own: K::Pipeline = if std::mem::size_of::<K::Pipeline>() == 0 {
            K::Pipeline::default()
        } else {
            source.parse_lenient().map_err(shape)?.0
        };
        let steps: StepsOf<K::Step> = if std::mem::size_of::<K::Step>() == 0 {
            StepsOf {
                services: pipeline.services.iter().map(unit).collect(),
                steps: pipeline.steps.iter().map(unit).collect(),
            }
        } else {
            source.parse_lenient().map_err(shape)?.0
        };
        let names = pipeline.all_steps();
        let mut document = EngineDocument {
            name: pipeline.display_name().to_owned(),
            line: pipeline.line,
            pipeline: own,
            steps: Vec::new(),
        };
        let mut present = Vec::new();
        let read = steps
            .services
            .into_iter()
            .map(|s| (s, true))
            .chain(steps.steps.into_iter().map(|s| (s, false)));
        for ((read, service), (entry, _)) in read.zip(names) {
            match (read.value, &entry.value) {
                (Some(options), Some(step)) => {
                    present.push(true);
                    document.steps.push(EngineStep {
                        name: step.name.clone(),
                        service,
                        line: entry.line,
                        options,
                    });
                }
                _ => present.push(false),
            }
        }
        let problems = self.0.lint(&document, trusted);
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut read = document.steps.into_iter();
        let steps = present
            .into_iter()
            .map(|here| match here {
                true => read
                    .next()
                    .map_or_else(EngineOptions::default, |s| options(s.options)),
                false => EngineOptions::default(),
            })
            .collect();
        Ok(ReadKeys {
            pipeline: options(document.pipeline),
            steps,
        })
    }

    fn pipeline_keys(&self) -> &[&'static str] {
        self.0.pipeline_keys()
    }

    fn step_keys(&self) -> &[&'static str] {
        self.0.step_keys()
    }

    fn volume_keys(&self) -> &[&'static str] {
        self.0.volume_keys()
    }

    fn mount_keys(&self) -> &[&'static str] {
        self.0.mount_keys()
    }
}

/// One pipeline type a runner serves: its `type` name, how its steps
/// compile, and the engine's own keys.
#[derive(Clone)]
pub struct PipelineType {
    name: String,
    steps: StepKind,
    keys: Option<Arc<dyn KeysReader>>,
}

impl fmt::Debug for PipelineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineType")
            .field("name", &self.name)
            .field("steps", &self.steps)
            .field(
                "keys",
                &self
                    .keys
                    .as_ref()
                    .map(|k| (k.pipeline_keys(), k.step_keys())),
            )
            .finish()
    }
}

impl PipelineType {
    /// A type whose steps are containers (see [`StepKind::Container`]).
    pub fn container(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            steps: StepKind::Container,
            keys: None,
        }
    }

    /// A type whose steps are host processes (see [`StepKind::Host`]).
    pub fn host(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            steps: StepKind::Host,
            keys: None,
        }
    }

    /// `type: docker` (also a pipeline without `type`): containers.
    pub fn docker() -> Self {
        Self::container("docker")
    }

    /// `type: exec`: host processes.
    pub fn exec() -> Self {
        Self::host("exec")
    }

    /// Declares the engine's own pipeline keys (see [`EngineKeys`]).
    #[must_use]
    pub fn with_keys<K: EngineKeys>(mut self, keys: K) -> Self {
        self.keys = Some(Arc::new(Reader(keys)));
        self
    }

    /// The `type` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How its steps compile.
    pub fn step_kind(&self) -> StepKind {
        self.steps
    }

    /// The pipeline-level keys the engine declared.
    pub fn pipeline_keys(&self) -> &[&'static str] {
        self.keys.as_ref().map_or(&[], |k| k.pipeline_keys())
    }

    /// The step-level keys the engine declared.
    pub fn step_keys(&self) -> &[&'static str] {
        self.keys.as_ref().map_or(&[], |k| k.step_keys())
    }

    /// The keys the engine declared at `level` of a pipeline (pipeline,
    /// step and service, volume, mount); none elsewhere.
    pub fn engine_keys_at(&self, level: crate::KeyLevel) -> &[&'static str] {
        use crate::KeyLevel;
        let Some(keys) = &self.keys else { return &[] };
        match level {
            KeyLevel::Pipeline => keys.pipeline_keys(),
            KeyLevel::Step | KeyLevel::Service => keys.step_keys(),
            KeyLevel::Volume => keys.volume_keys(),
            KeyLevel::Mount => keys.mount_keys(),
            _ => &[],
        }
    }

    /// Reads (and lints) the engine's keys of `pipeline`.
    pub(crate) fn read_keys(
        &self,
        pipeline: &Pipeline,
        trusted: bool,
    ) -> Result<ReadKeys, Vec<LintError>> {
        match &self.keys {
            Some(keys) => keys.read(pipeline, trusted),
            None => Ok(ReadKeys::default()),
        }
    }
}

/// The pipeline types a runner serves, by name, in registration order.
#[derive(Debug, Clone, Default)]
pub struct TypeRegistry {
    types: Vec<PipelineType>,
}

impl TypeRegistry {
    /// No types: every pipeline is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `pipeline_type`, replacing one of the same name.
    #[must_use]
    pub fn with(mut self, pipeline_type: PipelineType) -> Self {
        self.types.retain(|t| t.name != pipeline_type.name);
        self.types.push(pipeline_type);
        self
    }

    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&PipelineType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// The names served, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|t| t.name.as_str())
    }

    /// Every type, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &PipelineType> {
        self.types.iter()
    }

    /// The type of `pipeline`.
    ///
    /// # Errors
    /// [`crate::Error::UnknownType`] naming the types served.
    pub fn type_of(&self, pipeline: &Pipeline) -> Result<&PipelineType, crate::Error> {
        self.get(pipeline.pipeline_type())
            .ok_or_else(|| crate::Error::UnknownType {
                pipeline: pipeline.display_name().to_owned(),
                kind_type: pipeline.pipeline_type().to_owned(),
                served: self.names().map(str::to_owned).collect(),
            })
    }
}

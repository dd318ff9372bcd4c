//! The public types of compiling: the run's context, the runner-wide
//! settings, the result and its warnings, the error.

use std::collections::BTreeMap;
use std::sync::Arc;

use runnerkit_core::Resources;
use runnerkit_core::drone::{Build, Netrc, Repo, Stage, System};
use runnerkit_core::{Secret, Spec};

use crate::conditions::MatchInput;
use crate::environ::{self, Environ};
use crate::registry::{CombinedRegistries, RegistryError, RegistryProvider};
use crate::secrets::{CombinedSecrets, SecretError, SecretProvider};

/// Why a pipeline could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A secret provider failed (not "not found", which is a warning).
    #[error("pipeline {pipeline:?}: {source}")]
    Secret {
        /// The pipeline.
        pipeline: String,
        /// The provider's error.
        #[source]
        source: SecretError,
    },
    /// [`CompileContext::selection`] names a step the pipeline does not have.
    #[error("pipeline {pipeline:?} has no step {unknown}; its steps: {known}", unknown = unknown.join(", "), known = known.join(", "))]
    UnknownSelectedStep {
        /// The pipeline.
        pipeline: String,
        /// The names selected that no step or service has.
        unknown: Vec<String>,
        /// The names of its steps and services, in order.
        known: Vec<String>,
    },
    /// A `Compiler::runner_volumes` entry is not `/host:/container[:ro]`.
    #[error("runner volume {volume:?}: expected /host/path:/container/path[:ro]")]
    RunnerVolume {
        /// The entry as given.
        volume: String,
    },
    /// A registry credential source failed, or an `image_pull_secrets`
    /// value is not a Docker `config.json`.
    #[error("pipeline {pipeline:?}: {source}")]
    Registry {
        /// The pipeline.
        pipeline: String,
        /// What failed.
        #[source]
        source: RegistryError,
    },
}

/// Something the user should see but that does not stop the stage: a
/// `from_secret` nobody knows, a mount of an undeclared volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompileWarning {
    /// The step it concerns; `None` for the whole stage. Runners print it
    /// at the top of that step's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What happened.
    pub message: String,
}

/// A compiled stage: what [`crate::assemble`] returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Compiled {
    /// What the engine runs: the steps that may run, in order.
    pub spec: Spec,
    /// Problems that did not stop the compile, in step order.
    pub warnings: Vec<CompileWarning>,
    /// Every step of the pipeline (the clone step first when there is one,
    /// then services, then steps), with where it is in the spec or why it
    /// will not run. The one listing every consumer shows.
    pub steps: Vec<StageStep>,
    /// The pipeline's name (`default` when it has none).
    pub pipeline: String,
    /// Its type, as the runner registered it.
    pub pipeline_type: String,
}

/// One step of a compiled pipeline, run or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageStep {
    /// Its name.
    pub name: String,
    /// True for a service.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub service: bool,
    /// 1-based line of the step in the file; 0 for the clone step.
    pub line: u64,
    /// Its index in `Spec::steps` (and in the runtime's `Snapshot::steps`),
    /// `None` when it will not run.
    pub spec_index: Option<usize>,
    /// Why it will not run, when it will not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<NotRun>,
}

/// Why a step of a pipeline is not in its spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum NotRun {
    /// A key of its `when` does not match the build.
    When {
        /// The key, e.g. `branch`.
        key: String,
    },
    /// The caller's [`StepSelection`] leaves it out (`runnerkit exec
    /// --include`/`--exclude`).
    Excluded {
        /// True when a selection of steps to run did not name it; false
        /// when it was named to be left out.
        not_included: bool,
    },
}

impl std::fmt::Display for NotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRun::When { key } => write!(f, "when: {key}"),
            NotRun::Excluded { not_included: true } => f.write_str("not included"),
            NotRun::Excluded {
                not_included: false,
            } => f.write_str("excluded"),
        }
    }
}

/// Which steps of the pipeline the caller wants run, by name, as `drone
/// exec --include`/`--exclude`: the others are left out of the spec like a
/// step whose `when` does not match, so their dependents wait through them.
/// The clone step is never left out: the others need the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSelection {
    /// When not empty, only these steps and services run.
    pub include: Vec<String>,
    /// These steps and services do not run (even when included).
    pub exclude: Vec<String>,
}

impl StepSelection {
    /// True when it leaves nothing out.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Why the step `name` is left out, if it is.
    pub(crate) fn leaves_out(&self, name: &str) -> Option<NotRun> {
        if self.exclude.iter().any(|n| n == name) {
            Some(NotRun::Excluded {
                not_included: false,
            })
        } else if !self.include.is_empty() && !self.include.iter().any(|n| n == name) {
            Some(NotRun::Excluded { not_included: true })
        } else {
            None
        }
    }

    /// The names selected that are not in `known`, each once, in the order given.
    pub(crate) fn unknown(&self, known: &[String]) -> Vec<String> {
        let mut unknown: Vec<String> = Vec::new();
        for name in self.include.iter().chain(&self.exclude) {
            if !known.contains(name) && !unknown.contains(name) {
                unknown.push(name.clone());
            }
        }
        unknown
    }
}

impl Compiled {
    /// The warnings of one step, to print at the top of its log.
    pub fn warnings_for<'a>(&'a self, step: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.warnings
            .iter()
            .filter(move |w| w.step.as_deref() == Some(step))
            .map(|w| w.message.as_str())
    }
}

/// Everything about one run of a stage that is not in the YAML.
#[derive(Clone)]
pub struct CompileContext {
    /// Unique id of this run; becomes `Spec.id`, and step ids are `{spec_id}-{n}`.
    pub spec_id: String,
    /// The build.
    pub build: Build,
    /// The repository.
    pub repo: Repo,
    /// The stage.
    pub stage: Stage,
    /// The server.
    pub system: System,
    /// Clone credentials.
    pub netrc: Option<Netrc>,
    /// Where `from_secret` and `image_pull_secrets` values come from, in
    /// order (a [`CombinedSecrets`] chain): asked once per name the
    /// pipeline refers to, by [`crate::assemble`].
    pub secrets: Arc<dyn SecretProvider>,
    /// Registry credentials beyond `image_pull_secrets`.
    pub registries: Arc<dyn RegistryProvider>,
    /// The runner's global environment (lowest precedence; envsubst sees it too).
    pub environ: Environ,
    /// Runner globals that are secret (an environ plugin's masked
    /// variables): in every step's environment like a `from_secret`, before
    /// the step's own, and masked in every log.
    pub secret_environ: Environ,
    /// Values masked in every step's log whether or not a step uses them
    /// (`runnerkit exec --secret`: a step may print one some other way).
    pub masked: Vec<Secret>,
    /// A host directory to use as the workspace (`runnerkit exec` passes the
    /// pipeline file's directory): container engines bind-mount it, the host
    /// engine runs steps in it.
    pub host_workspace: Option<String>,
    /// Add a clone step (unless the pipeline disables it). `false` when the
    /// source is already in place, as with `runnerkit exec`.
    pub clone: bool,
    /// Unix seconds used for the `io.drone.created`/`expires` labels; 0 = now.
    pub now: i64,
    /// The steps to run; by default all of them. A name no step or service
    /// has refuses the compile ([`CompileError::UnknownSelectedStep`]).
    pub selection: StepSelection,
}

impl Default for CompileContext {
    fn default() -> Self {
        Self {
            spec_id: String::new(),
            build: Build::default(),
            repo: Repo::default(),
            stage: Stage::default(),
            system: System::default(),
            netrc: None,
            secrets: Arc::new(CombinedSecrets::new()),
            registries: Arc::new(CombinedRegistries::new()),
            environ: Environ::new(),
            secret_environ: Environ::new(),
            masked: Vec::new(),
            host_workspace: None,
            clone: true,
            now: 0,
            selection: StepSelection::default(),
        }
    }
}

impl std::fmt::Debug for CompileContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileContext")
            .field("spec_id", &self.spec_id)
            .field("repo", &self.repo)
            .field("stage", &self.stage.name)
            .field("netrc", &self.netrc)
            .field("host_workspace", &self.host_workspace)
            .field("clone", &self.clone)
            .field("selection", &self.selection)
            .finish_non_exhaustive()
    }
}

impl CompileContext {
    /// The variables envsubst substitutes for this run (reference §11).
    pub fn substitution_environ(&self) -> Environ {
        environ::substitution_environ(
            &self.environ,
            &self.system,
            &self.repo,
            &self.build,
            &self.stage,
        )
    }

    pub(crate) fn match_input(&self) -> MatchInput<'_> {
        MatchInput {
            build: &self.build,
            repo: &self.repo,
            system: &self.system,
        }
    }
}

/// Runner-wide compile settings (Drone's `DRONE_RUNNER_*` knobs).
#[derive(Debug, Clone)]
pub struct Compiler {
    /// Image of the Docker clone step (`DRONE_RUNNER_CLONE_IMAGE`).
    pub clone_image: String,
    /// Images made privileged automatically when used as plain plugins (§9.4).
    pub privileged_images: Vec<String>,
    /// Give the netrc variables to the clone step only (`DRONE_NETRC_CLONE_ONLY`).
    pub netrc_clone_only: bool,
    /// Limits applied where a step sets none (`DRONE_MEMORY_LIMIT`, `DRONE_CPU_*`...).
    pub default_resources: Resources,
    /// Extra labels put on everything the engine creates.
    pub labels: BTreeMap<String, String>,
    /// Host paths mounted into every container step (`DRONE_RUNNER_VOLUMES`):
    /// `/host:/container`, or `/host:/container:ro` for read-only (which Drone
    /// ignores; runnerkit honours it).
    pub runner_volumes: Vec<String>,
    /// Driver options of the stage network (`DRONE_RUNNER_NETWORK_OPTS`).
    pub network_options: BTreeMap<String, String>,
}

impl Default for Compiler {
    fn default() -> Self {
        Self {
            clone_image: "drone/git:latest".into(),
            privileged_images: [
                "plugins/docker",
                "plugins/acr",
                "plugins/ecr",
                "plugins/gcr",
                "plugins/heroku",
                "plugins/gar",
            ]
            .map(String::from)
            .to_vec(),
            netrc_clone_only: false,
            default_resources: Resources::default(),
            labels: BTreeMap::new(),
            runner_volumes: Vec::new(),
            network_options: BTreeMap::new(),
        }
    }
}

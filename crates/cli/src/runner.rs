//! [`Runner`]: a whole runner binary from the pipeline types it serves,
//! each a [`RunnerType`] (a pipeline type and how to get its engine).
//!
//! `runnerkit` itself is this builder with `docker` and `exec` registered;
//! a third party's `main` registers its own type the same way and gets
//! `exec`, `compile`, `lint`, `daemon`, `ping` and `prune` for it.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use runnerkit_core::Engine;
use runnerkit_manifest::{PipelineType, TypeRegistry};

/// An error of an engine factory or a prune, shown to the user with its
/// causes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type EngineFactory =
    Arc<dyn Fn(EngineSettings) -> BoxFuture<Result<Arc<dyn Engine>, BoxError>> + Send + Sync>;
type PruneFn =
    Arc<dyn Fn(EngineSettings) -> BoxFuture<Result<Vec<String>, BoxError>> + Send + Sync>;

/// The runner's settings as an engine factory or a prune reads them, by
/// variable name (`DRONE_NAMESPACE_DEFAULT`): for the daemon its flags over
/// the process environment over its ENVFILE; for `exec`, `compile` and
/// `prune` the process environment. Declare an engine's settings in
/// [`runnerkit_core::settings`] so `--help` and the docs list them.
#[derive(Clone)]
pub struct EngineSettings(Arc<Lookup>);

/// A setting's value by variable name.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl EngineSettings {
    /// The settings `lookup` gives.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(lookup))
    }

    /// The process environment's.
    pub fn from_env() -> Self {
        Self::from_fn(|name| std::env::var(name).ok())
    }

    /// The value of the variable `name`, untrimmed; `None` when unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl fmt::Debug for EngineSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EngineSettings(..)")
    }
}

/// `engine` as a factory of shared engines.
fn factory<F, Fut, E>(engine: F) -> EngineFactory
where
    F: Fn(EngineSettings) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<E, BoxError>> + Send + 'static,
    E: Engine + 'static,
{
    Arc::new(move |settings| {
        let made = engine(settings);
        Box::pin(async move { made.await.map(|e| Arc::new(e) as Arc<dyn Engine>) })
    })
}

/// One pipeline type a runner serves: how its pipelines compile
/// ([`PipelineType`]) and how to get the engine that runs them.
#[derive(Clone)]
pub struct RunnerType {
    pipeline_type: PipelineType,
    about: String,
    engine: EngineFactory,
    local_engine: Option<EngineFactory>,
    prune: Option<PruneFn>,
}

impl fmt::Debug for RunnerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnerType")
            .field("pipeline_type", &self.pipeline_type)
            .field("about", &self.about)
            .field("local_engine", &self.local_engine.is_some())
            .field("prune", &self.prune.is_some())
            .finish_non_exhaustive()
    }
}

impl RunnerType {
    /// Pipelines of `pipeline_type` run on the engine `engine` makes.
    ///
    /// `engine` is called once per `exec` run and once when the daemon
    /// starts (whose every stage then shares the engine, so the engine must
    /// keep the stages it runs at once apart, as the `Engine` contract
    /// says). An error refuses the run or stops the daemon from starting,
    /// with the message: say what to check ("is the daemon running?").
    pub fn new<F, Fut, E>(pipeline_type: PipelineType, engine: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<E, BoxError>> + Send + 'static,
        E: Engine + 'static,
    {
        Self::configured(pipeline_type, move |_| engine())
    }

    /// As [`new`](Self::new), for an engine made from the runner's settings
    /// ([`EngineSettings`]): the daemon's flags and ENVFILE reach it.
    pub fn configured<F, Fut, E>(pipeline_type: PipelineType, engine: F) -> Self
    where
        F: Fn(EngineSettings) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<E, BoxError>> + Send + 'static,
        E: Engine + 'static,
    {
        Self {
            about: String::new(),
            pipeline_type,
            engine: factory(engine),
            local_engine: None,
            prune: None,
        }
    }

    /// A different engine for a local run (`exec`), when the user's machine
    /// wants other settings than a daemon serving a server: the host engine
    /// keeps the user's `HOME` locally and a home per stage in the daemon.
    /// Without it, `exec` uses the engine of [`new`](Self::new).
    #[must_use]
    pub fn with_local_engine<F, Fut, E>(mut self, engine: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<E, BoxError>> + Send + 'static,
        E: Engine + 'static,
    {
        self.local_engine = Some(factory(move |_| engine()));
        self
    }

    /// One line saying what its steps run as ("each step in a Docker
    /// container"), for `--help`.
    #[must_use]
    pub fn about(mut self, about: impl Into<String>) -> Self {
        self.about = about.into();
        self
    }

    /// How to remove what runs of this engine left behind when their process
    /// died (`runnerkit prune`, and the daemon at start): `prune` returns
    /// one line per object removed (`container rk-…-build`). It must never
    /// touch objects of a run still in progress. It gets the runner's
    /// settings, as the engine does.
    #[must_use]
    pub fn with_prune<F, Fut>(mut self, prune: F) -> Self
    where
        F: Fn(EngineSettings) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<String>, BoxError>> + Send + 'static,
    {
        self.prune = Some(Arc::new(move |settings| Box::pin(prune(settings))));
        self
    }

    /// The `type` name.
    pub fn name(&self) -> &str {
        self.pipeline_type.name()
    }

    /// What its steps run as, for `--help`.
    pub fn about_text(&self) -> &str {
        &self.about
    }

    /// The pipeline type.
    pub fn pipeline_type(&self) -> &PipelineType {
        &self.pipeline_type
    }

    /// Makes the engine.
    pub(crate) async fn engine(
        &self,
        settings: EngineSettings,
    ) -> Result<Arc<dyn Engine>, BoxError> {
        (self.engine)(settings).await
    }

    /// Makes the engine of a local run.
    pub(crate) async fn local_engine(&self) -> Result<Arc<dyn Engine>, BoxError> {
        (self.local_engine.as_ref().unwrap_or(&self.engine))(EngineSettings::from_env()).await
    }

    /// Prunes, when the engine can; `None` when it has nothing to prune.
    pub(crate) async fn prune(
        &self,
        settings: EngineSettings,
    ) -> Option<Result<Vec<String>, BoxError>> {
        match &self.prune {
            Some(prune) => Some(prune(settings).await),
            None => None,
        }
    }
}

/// The types a runner serves, in registration order (the first is the
/// daemon's default).
#[derive(Debug, Clone, Default)]
pub(crate) struct RunnerTypes {
    types: Vec<RunnerType>,
    registry: TypeRegistry,
}

impl RunnerTypes {
    fn push(&mut self, runner_type: RunnerType) {
        self.types.retain(|t| t.name() != runner_type.name());
        self.registry = self
            .registry
            .clone()
            .with(runner_type.pipeline_type.clone());
        self.types.push(runner_type);
    }

    /// Container types named `names` run by the mock engine: for the tests
    /// of what only reads the names.
    #[cfg(test)]
    pub(crate) fn for_tests(names: &[&str]) -> Self {
        let mut types = Self::default();
        for name in names {
            types.push(RunnerType::new(PipelineType::container(*name), || async {
                Ok(runnerkit_mock::MockEngine::new())
            }));
        }
        types
    }

    /// How the types' pipelines compile.
    pub(crate) fn registry(&self) -> &TypeRegistry {
        &self.registry
    }

    /// The type named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&RunnerType> {
        self.types.iter().find(|t| t.name() == name)
    }

    /// Every type, in registration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &RunnerType> {
        self.types.iter()
    }

    /// The names, joined for a message: `docker, exec`.
    pub(crate) fn names(&self) -> String {
        self.types
            .iter()
            .map(RunnerType::name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The engine of a local run of the type named `name`; an unknown type
    /// names those served.
    pub(crate) async fn local_engine_for(&self, name: &str) -> anyhow::Result<Arc<dyn Engine>> {
        let Some(runner_type) = self.get(name) else {
            anyhow::bail!(
                "pipelines of type {name:?} cannot run here: this runner serves {}",
                self.names()
            );
        };
        runner_type
            .local_engine()
            .await
            .map_err(|e| anyhow::anyhow!(runnerkit_core::error_chain(&*e)))
    }
}

/// A runner binary: its name, the pipeline types it serves, and the
/// commands (`exec`, `compile`, `lint`, `daemon`, `ping`, `prune`) over them.
///
/// ```no_run
/// use runnerkit_cli::{Runner, RunnerType};
/// use runnerkit_manifest::PipelineType;
///
/// # async fn main_() -> std::process::ExitCode {
/// Runner::new("my-runner")
///     .with_type(RunnerType::new(PipelineType::exec(), || async {
///         Ok(runnerkit_local::LocalEngine::new())
///     }))
///     .run()
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct Runner {
    name: String,
    version: Option<String>,
    types: RunnerTypes,
    shutdown: Option<runnerkit_core::CancellationToken>,
    hooks: Vec<Arc<dyn runnerkit_core::Hook>>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("types", &self.types)
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner called `name` (its binary name, in `--help`) serving no
    /// type yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: None,
            types: RunnerTypes::default(),
            shutdown: None,
            hooks: Vec::new(),
        }
    }

    /// Its version, for `--version`.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Serves `runner_type` too (replacing a type of the same name). The
    /// first type registered is the daemon's default `--type`.
    #[must_use]
    pub fn with_type(mut self, runner_type: RunnerType) -> Self {
        self.types.push(runner_type);
        self
    }

    /// Stops `daemon` when `shutdown` is cancelled, as a first SIGTERM does
    /// (no new stages; running ones drain): for a runner embedded in
    /// another program, or a test.
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: runnerkit_core::CancellationToken) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    pub(crate) fn shutdown(&self) -> Option<&runnerkit_core::CancellationToken> {
        self.shutdown.as_ref()
    }

    /// Adds a hook of yours (metrics, a notifier) to every stage this
    /// runner runs, `exec`'s and the daemon's alike, after the runner's own
    /// hooks; it receives masked events like them. One hook object serves
    /// every stage, concurrently in the daemon (see the `Hook` contract).
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn runnerkit_core::Hook>) -> Self {
        self.hooks.push(hook);
        self
    }

    pub(crate) fn hooks(&self) -> &[Arc<dyn runnerkit_core::Hook>] {
        &self.hooks
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the pipelines of the types served compile.
    pub fn registry(&self) -> &TypeRegistry {
        self.types.registry()
    }

    pub(crate) fn types(&self) -> &RunnerTypes {
        &self.types
    }

    pub(crate) fn version_text(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Parses the process's command line, runs it and gives the exit code.
    pub async fn run(self) -> std::process::ExitCode {
        self.run_from(std::env::args_os()).await
    }

    /// A binary's whole `main`: parses the process's command line, then runs
    /// it on a tokio runtime of its own, chosen for the command. `daemon`
    /// gets a multi-thread runtime (its stages run side by side and mask
    /// their logs on every core); every other command one thread: a local
    /// run spends its time waiting on processes and containers, and one
    /// thread wakes for them without a hop between cores (the host engine's
    /// steps cost about a quarter less). Behaves as [`run`](Self::run)
    /// otherwise; call this from a plain `fn main`, not inside a runtime.
    pub fn main(self) -> std::process::ExitCode {
        let cli = match crate::cli::parse(&self, std::env::args_os()) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
        };
        let mut builder = if matches!(cli.command, crate::cli::Command::Daemon(_)) {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        match builder.enable_all().build() {
            Ok(runtime) => runtime.block_on(crate::commands::run(cli, &self)),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }

    /// Runs the command line `args` (the first is the program's name).
    ///
    /// It never ends the process: a bad flag, `--help` and `--version` are
    /// printed (to stderr and stdout, as clap does) and give their exit
    /// code, so a runner can be embedded or driven from a test. The daemon
    /// does handle SIGTERM and SIGINT while it runs, and the first command
    /// installs the process's `tracing` subscriber.
    pub async fn run_from<I, T>(self, args: I) -> std::process::ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        match crate::cli::parse(&self, args) {
            Ok(cli) => crate::commands::run(cli, &self).await,
            Err(e) => {
                // A closed stdout or stderr leaves nothing to tell.
                let _ = e.print();
                let code = u8::try_from(e.exit_code()).unwrap_or(2);
                std::process::ExitCode::from(code)
            }
        }
    }
}

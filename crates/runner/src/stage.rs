//! [`StageRunner`]: the server-side flow of one stage, start to end.

use std::any::Any;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;

use runnerkit_core::drone::{self, Stage};
use runnerkit_core::{CancellationToken, Engine, Hook, Manager, ManagerError, Snapshot, Status};
use runnerkit_manifest::{
    Compiled, Compiler, LiveStatus, PipelineType, RegistryProvider, SecretProvider, TypeRegistry,
};
use runnerkit_runtime::logs::Masker;
use runnerkit_runtime::{Runtime, RuntimeConfig};

use crate::compile::compile_stage;
use crate::journal::{HeldStage, Journal, OrphanStage};
use crate::report::{LogConfig, Reporter, truncate_error, unix};
use crate::{Backoff, Error, Limits, StageError};
use runnerkit_core::{EnvironPluginClient, RegistryPluginClient, SecretPluginClient};

/// What a [`StageRunner`] needs beyond the manager and the engine.
#[derive(Clone)]
pub struct RunnerConfig {
    /// The runner's name: `machine` on accept, `DRONE_STAGE_MACHINE`.
    pub machine: String,
    /// Variables every stage sees (`DRONE_RUNNER_ENVIRON`), lowest precedence.
    pub environ: std::collections::BTreeMap<String, String>,
    /// The runner's own secret providers, asked after the server's secrets.
    pub secrets: Vec<Arc<dyn SecretProvider>>,
    /// Registry credentials beyond a pipeline's `image_pull_secrets`
    /// (before the registry plugin's).
    pub registries: Option<Arc<dyn RegistryProvider>>,
    /// Which repositories and events this runner accepts.
    pub limits: Limits,
    /// How pipelines are compiled (clone image and the like).
    pub compiler: Compiler,
    /// The pipeline types this runner compiles (how each type's steps
    /// compile, the engine's own keys). The default serves `docker` and
    /// `exec`; a runner of another engine registers its own type.
    pub types: TypeRegistry,
    /// The user's hooks (metrics, a notifier): each stage's runtime calls
    /// them after the runner's own (the live `DRONE_*` status and the
    /// server reporter), with the same masked events.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// Runtime settings; `stage_timeout` is replaced by the repository's.
    pub runtime: RuntimeConfig,
    /// Live log batching.
    pub logs: LogConfig,
    /// Stage deadline when the repository gives none (its timeout is 0).
    pub default_timeout: Duration,
    /// The secret extension plugin (`DRONE_SECRET_PLUGIN_ENDPOINT`), asked
    /// for `kind: secret` documents with `get`, after every other source.
    pub secret_plugin: Option<Arc<dyn SecretPluginClient>>,
    /// The registry extension plugin (`DRONE_REGISTRY_PLUGIN_ENDPOINT`),
    /// asked for a stage's registry credentials before compiling; they come
    /// after the pipeline's `image_pull_secrets` and [`registries`](Self::registries).
    pub registry_plugin: Option<Arc<dyn RegistryPluginClient>>,
    /// The environ extension plugin (`DRONE_ENV_PLUGIN_ENDPOINT`), asked for
    /// a stage's runner globals before compiling (see
    /// [`EnvironPluginClient`]).
    pub environ_plugin: Option<Arc<dyn EnvironPluginClient>>,
    /// Where the stages this runner holds are journalled, for
    /// [`StageRunner::recover`] after a crash; `None` keeps no journal.
    pub journal: Option<Journal>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            machine: "runnerkit".into(),
            environ: Default::default(),
            secrets: Vec::new(),
            registries: None,
            limits: Limits::default(),
            compiler: Compiler::default(),
            types: TypeRegistry::new()
                .with(PipelineType::docker())
                .with(PipelineType::exec()),
            hooks: Vec::new(),
            runtime: RuntimeConfig::default(),
            logs: LogConfig::default(),
            default_timeout: Duration::from_secs(60 * 60),
            secret_plugin: None,
            registry_plugin: None,
            environ_plugin: None,
            journal: None,
        }
    }
}

impl std::fmt::Debug for RunnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerConfig")
            .field("machine", &self.machine)
            .field("environ", &self.environ.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.len())
            .field("limits", &self.limits)
            .field("runtime", &self.runtime)
            .field("types", &self.types.names().collect::<Vec<_>>())
            .field("hooks", &self.hooks.len())
            .field("secret_plugin", &self.secret_plugin.is_some())
            .field("registry_plugin", &self.registry_plugin.is_some())
            .field("environ_plugin", &self.environ_plugin.is_some())
            .field("journal", &self.journal.as_ref().map(Journal::dir))
            .finish_non_exhaustive()
    }
}

/// How one stage ended, from the runner's side.
#[derive(Debug, Clone)]
pub enum StageOutcome {
    /// Another runner accepted it first; nothing was reported.
    Taken,
    /// The build was already killed or skipped on the server; nothing ran.
    AlreadyDone,
    /// It could not be run (refused repository, bad YAML, lint, a plugin
    /// down, ...) and was reported `error` with this error's message.
    Refused(Arc<StageError>),
    /// It ran; the final stage status as reported.
    Ran(Status),
}

impl PartialEq for StageOutcome {
    /// Refusals are equal when their messages are.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Taken, Self::Taken) | (Self::AlreadyDone, Self::AlreadyDone) => true,
            (Self::Refused(a), Self::Refused(b)) => a.to_string() == b.to_string(),
            (Self::Ran(a), Self::Ran(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for StageOutcome {}

/// Runs one stage the way Drone's runner does, and better: accept, watch for
/// cancellation, details, environment, envsubst, parse, lint, secrets,
/// compile, register the steps, run them on the engine while reporting every
/// change and streaming logs, report the end.
///
/// Every failure before the run is reported as the stage's `error`, with the
/// message, so the user sees why in the UI; nothing is left claimed and
/// silent.
pub struct StageRunner {
    manager: Arc<dyn Manager>,
    engine: Arc<dyn Engine>,
    config: RunnerConfig,
    /// Stages this runner is accepting or running. The server offers a
    /// stage to every poller that asks, and this runner's pollers share
    /// one machine name: the first to claim it here accepts it, the others
    /// leave it. So after a conflict on accept, a stage the server holds
    /// for this machine is this claim's, its answer lost on the way.
    claims: Mutex<HashSet<i64>>,
}

/// A stage claimed in [`StageRunner::claims`], released when dropped.
struct Claim<'a> {
    claims: &'a Mutex<HashSet<i64>>,
    stage: i64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.stage);
    }
}

impl std::fmt::Debug for StageRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageRunner")
            .field("engine", &self.engine.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StageRunner {
    /// A runner taking stages from `manager` and running them on `engine`.
    pub fn new(manager: Arc<dyn Manager>, engine: Arc<dyn Engine>, config: RunnerConfig) -> Self {
        Self {
            manager,
            engine,
            config,
            claims: Mutex::new(HashSet::new()),
        }
    }

    /// Claims `stage` for this runner; `None` when one of its pollers
    /// already has.
    fn claim(&self, stage: i64) -> Option<Claim<'_>> {
        let fresh = self
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stage);
        // The lock is released before a `Claim` exists: its drop takes it.
        fresh.then(|| Claim {
            claims: &self.claims,
            stage,
        })
    }

    /// The runner's settings.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// Runs `stage` (as `request` returned it) to its end. `cancel` kills
    /// it (a runner shutting down); a cancel on the server does too.
    ///
    /// A panic in the stage's flow after it was accepted (a secret
    /// provider, say) is caught here: the stage is reported `error` with the
    /// panic's message and the outcome is [`StageOutcome::Refused`].
    ///
    /// # Errors
    /// Only when the server cannot be told about the stage at all (the
    /// accept or the first report failed for another reason than a
    /// conflict): the stage is then the server's to reschedule.
    pub async fn run(
        &self,
        stage: Stage,
        cancel: CancellationToken,
    ) -> Result<StageOutcome, Error> {
        let Some(_claim) = self.claim(stage.id) else {
            tracing::debug!(
                stage = stage.id,
                "another poller of this runner took the stage"
            );
            return Ok(StageOutcome::Taken);
        };
        let stage = match self.manager.accept(stage.id, &self.config.machine).await {
            Ok(stage) => stage,
            Err(ManagerError::Conflict) => match self.accepted_though_lost(stage.id).await {
                Some(stage) => stage,
                None => {
                    tracing::debug!(stage = stage.id, "another runner accepted the stage");
                    return Ok(StageOutcome::Taken);
                }
            },
            Err(e) => {
                return Err(Error::Accept {
                    stage: stage.id,
                    source: e,
                });
            }
        };
        // Journalled before anything else happens to the stage: from here a
        // crash leaves it `running` on the server, and the next runner on
        // this journal must find it.
        let held = self.config.journal.as_ref().and_then(|journal| {
            journal
                .hold(&stage)
                .map_err(|e| {
                    tracing::warn!(stage = stage.id, "{}", runnerkit_core::error_chain(&e))
                })
                .ok()
                .map(Arc::new)
        });
        let stage_cancel = cancel.child_token();
        let watching = stage_cancel.child_token();
        let watcher = tokio::spawn(watch(
            self.manager.clone(),
            stage.build_id,
            stage_cancel.clone(),
            watching.clone(),
        ));
        let progress = Progress {
            held: held.clone(),
            ..Progress::default()
        };
        progress.record(&stage);
        let outcome = AssertUnwindSafe(self.run_accepted(stage, stage_cancel.clone(), &progress))
            .catch_unwind()
            .await;
        watching.cancel();
        watcher.abort();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(panic) => {
                // Whatever the engine still runs for this stage must stop.
                stage_cancel.cancel();
                self.report_panic(&progress, &panic_message(&*panic)).await
            }
        };
        if let (Some(held), Err(Error::Report { .. })) = (&held, &outcome) {
            // The server did not hear the end: the next runner ends it.
            held.keep();
        }
        outcome
    }

    /// Ends on the server the stages a dead runner process left in this
    /// runner's [journal](RunnerConfig::journal): each one the server still
    /// holds `pending` or `running` on this runner's machine is reported
    /// `error` ("the runner restarted"), its running steps `error` and its
    /// pending ones `skipped`. Call it once at start, before polling, after
    /// the engine has cleaned what the dead process left.
    ///
    /// Returns the ids of the stages ended. An entry whose stage the server
    /// could not be asked about is kept for the next start; one the server
    /// holds otherwise (done, or another runner's) is dropped.
    pub async fn recover(&self) -> Vec<i64> {
        let Some(journal) = &self.config.journal else {
            return Vec::new();
        };
        let mut ended = Vec::new();
        for orphan in journal.orphans() {
            let id = orphan.stage.id;
            match self.end_orphan(&orphan).await {
                Ok(true) => {
                    tracing::info!(
                        stage = id,
                        "a stage held when the runner died was reported error"
                    );
                    ended.push(id);
                    orphan.forget();
                }
                Ok(false) => orphan.forget(),
                Err(e) => tracing::warn!(
                    stage = id,
                    "cannot end a stage held when the runner died; trying again at the next start: {e}"
                ),
            }
        }
        ended
    }

    /// Reports `orphan` ended, if the server still has it live here.
    async fn end_orphan(&self, orphan: &OrphanStage) -> Result<bool, ManagerError> {
        let server = self.manager.details(orphan.stage.id).await?.stage;
        if !matches!(server.status, Status::Pending | Status::Running)
            || server.machine != self.config.machine
        {
            return Ok(false);
        }
        const MSG: &str = "the runner restarted: the stage was cut short";
        let mut stage = orphan.stage.clone();
        stage.version = server.version;
        end_as_error(&mut stage, MSG);
        match self.manager.after_all(&mut stage).await {
            Ok(()) => Ok(true),
            // A step's version moved past the journal's (its update was
            // applied, its answer lost in the crash): the stage still ends,
            // without the steps.
            Err(ManagerError::Conflict) => {
                stage.steps.clear();
                stage.version = self.manager.details(stage.id).await?.stage.version;
                self.manager.after_all(&mut stage).await.map(|()| true)
            }
            Err(e) => Err(e),
        }
    }

    /// After a conflict on accept: the stage as the server holds it, when
    /// it is this runner's. The accept's first attempt may have been
    /// applied while its answer was lost, and its retry then met the
    /// `machine` it had set: dropping the stage would leave it claimed by
    /// this runner and never run. No other poller of this runner accepted
    /// it (the claim says so); two runner processes must not share a
    /// machine name (`DRONE_RUNNER_NAME`), as in Drone.
    async fn accepted_though_lost(&self, stage_id: i64) -> Option<Stage> {
        let server = match self.manager.details(stage_id).await {
            Ok(details) => details.stage,
            Err(e) => {
                tracing::debug!(stage = stage_id, error = %e, "cannot read the stage back after a conflict on accept");
                return None;
            }
        };
        let ours = server.machine == self.config.machine && server.status == Status::Pending;
        if ours {
            tracing::info!(
                stage = stage_id,
                "the stage was accepted though the answer was lost; running it"
            );
        }
        ours.then_some(server)
    }

    /// Reports a stage whose flow panicked as `error`, from what the server
    /// was last told: steps still running end `error`, pending ones
    /// `skipped`.
    async fn report_panic(&self, progress: &Progress, panic: &str) -> Result<StageOutcome, Error> {
        let msg = StageError::Panic(panic.to_owned());
        tracing::error!("{msg}");
        let mut stage = progress.stage();
        if let Some(steps) = progress.steps() {
            stage.steps = steps;
        }
        self.refuse(stage, msg).await
    }

    /// The server answered the stage's start with a conflict: the build was
    /// cancelled, or the start was applied and its answer lost (a proxy's
    /// 502/504 after forwarding it), then retried. In the second case the
    /// server holds the stage running here, one version on; its steps' ids
    /// are unknown, so the stage cannot be run, but it must not stay
    /// `running` forever either: it is reported `error`.
    async fn start_conflicted(&self, mut stage: Stage) -> Result<StageOutcome, Error> {
        let applied = match self.manager.details(stage.id).await {
            Ok(details) => {
                let server = details.stage;
                (server.status == Status::Running
                    && server.machine == self.config.machine
                    && server.version == stage.version + 1)
                    .then_some(server.version)
            }
            Err(_) => None,
        };
        let Some(version) = applied else {
            tracing::info!(
                stage = stage.id,
                "the server refused the stage start: cancelled or taken over"
            );
            return Ok(StageOutcome::Taken);
        };
        stage.version = version;
        stage.steps.clear();
        let msg = StageError::Start(
            concat!(
                "the server's answer to the stage's start was lost on the way; ",
                "the stage was not run (restart the build)"
            )
            .to_owned(),
        );
        self.refuse(stage, msg).await
    }

    /// The server failed the stage's start (not a conflict): tell it the
    /// stage errored, so that it does not stay claimed and silent. Drone
    /// may have bumped the stage before failing, so the version is read
    /// back first; steps it may have inserted are not known here and are
    /// left as they are.
    async fn start_refused(
        &self,
        mut stage: Stage,
        e: ManagerError,
        masker: &Masker,
    ) -> Result<StageOutcome, Error> {
        let msg = StageError::Start(format!("the server refused the stage's start: {e}"));
        match self.manager.details(stage.id).await {
            Ok(details) => stage.version = details.stage.version,
            Err(again) => {
                tracing::warn!(stage = stage.id, error = %again, "cannot read the stage back to report its failure");
                return Err(Error::Report {
                    stage: stage.id,
                    source: e,
                });
            }
        }
        stage.steps.clear();
        self.refuse_masked(stage, msg, masker).await
    }

    async fn run_accepted(
        &self,
        mut stage: Stage,
        cancel: CancellationToken,
        progress: &Progress,
    ) -> Result<StageOutcome, Error> {
        let mut details = match self.manager.details(stage.id).await {
            Ok(d) => d,
            Err(e) => {
                let msg = StageError::Server {
                    call: "cannot get the stage's details from the server",
                    answer: e,
                };
                return self.refuse(stage, msg).await;
            }
        };
        // Drone's v2 protocol puts the netrc in the details; other servers
        // hand it out apart.
        if details.netrc.is_none() {
            match self.manager.netrc(details.repository.id).await {
                Ok(netrc) => details.netrc = netrc,
                Err(e) => {
                    let msg = StageError::Server {
                        call: "cannot get the clone credentials from the server",
                        answer: e,
                    };
                    return self.refuse(stage, msg).await;
                }
            }
        }
        if matches!(details.build.status, Status::Killed | Status::Skipped) {
            tracing::info!(
                stage = stage.id,
                "the build is already {}; not running",
                details.build.status
            );
            return Ok(StageOutcome::AlreadyDone);
        }
        if let Err(msg) = self.config.limits.check(&details) {
            return self.refuse(stage, StageError::Limits(msg)).await;
        }
        stage.machine = self.config.machine.clone();
        // What the server sends and what the spec marks secret is masked
        // wherever the stage's text leaves the runtime: the step fields, the
        // errors, the page and the daemon's own log.
        let server_secrets = || details.secrets.iter().map(|s| s.data.as_str());
        let compiled = match compile_stage(&self.config, &stage, &details).await {
            Ok(c) => c,
            Err(error) => {
                let masker = Masker::new(server_secrets());
                return self.refuse_masked(stage, error, &masker).await;
            }
        };
        let spec = Arc::new(compiled.spec.clone());
        let masker = Masker::new(server_secrets().chain(spec.masked_values()));

        // Register every step of the spec (those that may run), number 1..n,
        // pending: the same positions as the runtime's snapshot.
        let registered: Vec<drone::Step> = spec
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| drone::Step {
                step_id: stage.id,
                number: i as i32 + 1,
                name: s.name.clone(),
                status: Status::Pending,
                errignore: s.error_policy == runnerkit_core::ErrorPolicy::Ignore,
                image: masker.mask_str(&s.image),
                detached: s.detach,
                depends_on: s.depends_on.to_vec(),
                ..drone::Step::default()
            })
            .collect();
        stage.status = Status::Running;
        stage.started = unix(Some(SystemTime::now()));
        stage.steps = registered;
        match self.manager.before_all(&mut stage).await {
            Ok(()) => {}
            Err(ManagerError::Conflict) => return self.start_conflicted(stage).await,
            Err(e) => return self.start_refused(stage, e, &masker).await,
        }

        progress.record(&stage);
        let reporter = Reporter::new(
            self.manager.clone(),
            &stage,
            log_preambles(&compiled, &stage.steps),
            self.config.logs.clone(),
            cancel.clone(),
            progress.held.clone(),
        );
        progress.follow(reporter.clone());
        let flushing = CancellationToken::new();
        let flusher = tokio::spawn(reporter.clone().flush_loop(flushing.clone()));

        let timeout = match details.repository.timeout {
            t if t > 0 => Duration::from_secs(t as u64 * 60),
            _ => self.config.default_timeout,
        };
        let runtime = Runtime::new(self.engine.clone())
            .with_hook(Arc::new(LiveStatus::new(&details.build, &stage)))
            .with_hook(reporter.clone());
        let runtime = self
            .config
            .hooks
            .iter()
            .cloned()
            .fold(runtime, Runtime::with_hook)
            .with_config(RuntimeConfig {
                stage_timeout: Some(timeout),
                ..self.config.runtime.clone()
            });
        let result = runtime.run(spec, cancel).await;
        flushing.cancel();
        let _ = flusher.await;

        let snapshot = match result {
            Ok(snapshot) => snapshot,
            // The compiler checked dependencies already; this is a bug, but
            // the user must still see it.
            Err(e) => {
                let error = StageError::Engine(e.to_string());
                return self.refuse_masked(stage, error, &masker).await;
            }
        };
        stage.steps = reporter.steps();
        self.report_end(stage, &snapshot).await
    }

    /// Reports the final stage and every step from the runtime's snapshot.
    async fn report_end(
        &self,
        mut stage: Stage,
        snapshot: &Snapshot,
    ) -> Result<StageOutcome, Error> {
        for (step, st) in stage.steps.iter_mut().zip(&snapshot.steps) {
            step.status = st.status;
            step.exit_code = st.exit_code;
            step.stopped = unix(st.stopped);
            step.started = match unix(st.started) {
                0 => step.stopped,
                t => t,
            };
            step.error = st.error.as_deref().map(truncate_error).unwrap_or_default();
        }
        stage.status = snapshot.stage.status;
        stage.exit_code = snapshot.stage.exit_code;
        stage.error = snapshot
            .stage
            .error
            .as_deref()
            .map(truncate_error)
            .unwrap_or_default();
        stage.stopped = unix(snapshot.stage.stopped);
        let status = stage.status;
        match self.manager.after_all(&mut stage).await {
            Ok(()) | Err(ManagerError::Conflict) => Ok(StageOutcome::Ran(status)),
            Err(e) => Err(Error::Report {
                stage: stage.id,
                source: e,
            }),
        }
    }

    /// Reports a stage that cannot run as `error`, with `msg`.
    /// Steps not done yet end too: running ones `error`, pending ones
    /// `skipped`, so that no step of a finished stage looks alive.
    async fn refuse(&self, stage: Stage, error: StageError) -> Result<StageOutcome, Error> {
        self.refuse_masked(stage, error, &Masker::new(None::<&str>))
            .await
    }

    /// [`refuse`](Self::refuse), with `masker` applied to the message the
    /// server, the page and the log get.
    async fn refuse_masked(
        &self,
        mut stage: Stage,
        error: StageError,
        masker: &Masker,
    ) -> Result<StageOutcome, Error> {
        let error = error.masked(masker);
        let msg = error.to_string();
        tracing::warn!(
            stage = stage.id,
            kind = error.kind(),
            "stage not run: {msg}"
        );
        end_as_error(&mut stage, &truncate_error(&msg));
        match self.manager.after_all(&mut stage).await {
            Ok(()) | Err(ManagerError::Conflict) => Ok(StageOutcome::Refused(Arc::new(error))),
            Err(e) => Err(Error::Report {
                stage: stage.id,
                source: e,
            }),
        }
    }
}

/// Ends `stage` as `error` with `msg`, now: steps still running end
/// `error` with the same text, pending ones `skipped`, so that no step of
/// a finished stage looks alive.
fn end_as_error(stage: &mut Stage, msg: &str) {
    let now = unix(Some(SystemTime::now()));
    for step in &mut stage.steps {
        match step.status {
            Status::Running => {
                step.status = Status::Error;
                step.exit_code = 255;
                step.error = msg.to_owned();
                step.stopped = now;
            }
            Status::Pending => {
                step.status = Status::Skipped;
                step.started = now;
                step.stopped = now;
            }
            _ => {}
        }
    }
    stage.status = Status::Error;
    stage.error = msg.to_owned();
    stage.exit_code = 255;
    if stage.started == 0 {
        stage.started = now;
    }
    stage.stopped = now;
}

/// The lines that open each registered step's log: the compile warnings
/// about that step, and those about the whole stage (an unknown
/// `image_pull_secrets`) at the top of the first step's, so that the user
/// sees them in the UI and not only in the runner's own log.
fn log_preambles(compiled: &Compiled, steps: &[drone::Step]) -> Vec<Vec<String>> {
    let warning = |message: &str| format!("[runnerkit] warning: {message}");
    let mut preambles: Vec<Vec<String>> = steps
        .iter()
        .map(|s| compiled.warnings_for(&s.name).map(warning).collect())
        .collect();
    if let Some(first) = preambles.first_mut() {
        let stage_wide = compiled
            .warnings
            .iter()
            .filter(|w| w.step.is_none())
            .map(|w| warning(&w.message));
        first.splice(0..0, stage_wide);
    }
    preambles
}

/// What the server was last told about a stage, kept outside the stage's
/// flow so that a panic in it can still be reported with the right versions.
#[derive(Default)]
struct Progress {
    stage: Mutex<Stage>,
    reporter: Mutex<Option<Arc<Reporter>>>,
    /// The stage's journal entry, rewritten with every recorded stage.
    held: Option<Arc<HeldStage>>,
}

impl Progress {
    fn record(&self, stage: &Stage) {
        *lock(&self.stage) = stage.clone();
        if let Some(held) = &self.held {
            held.record_or_warn(stage);
        }
    }

    fn follow(&self, reporter: Arc<Reporter>) {
        *lock(&self.reporter) = Some(reporter);
    }

    fn stage(&self) -> Stage {
        lock(&self.stage).clone()
    }

    /// The steps with the versions of their last report, once registered.
    fn steps(&self) -> Option<Vec<drone::Step>> {
        lock(&self.reporter).as_ref().map(|r| r.steps())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Watches the build until it is cancelled (then cancels the stage) or
/// `done` fires. Errors back off and retry: a cancel must not be missed
/// because the server hiccuped once.
async fn watch(
    manager: Arc<dyn Manager>,
    build_id: i64,
    cancel: CancellationToken,
    done: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let answer = tokio::select! {
            () = done.cancelled() => return,
            answer = manager.watch(build_id) => answer,
        };
        match answer {
            Ok(true) => {
                tracing::info!(build = build_id, "the build was cancelled on the server");
                cancel.cancel();
                return;
            }
            Ok(false) => backoff.reset(),
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.attempts() == 1 {
                    tracing::warn!(build = build_id, error = %e, "watching the build failed; retrying");
                }
                tokio::select! {
                    () = done.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

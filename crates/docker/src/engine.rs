//! [`DockerEngine`]: the [`Engine`] calls mapped onto the Docker Engine API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::exec::StartExecOptions;
use bollard::models::{
    ContainerState, ContainerStateStatusEnum, ExecConfig, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::future::join_all;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, EngineErrorKind, ExitState, LogStream, Spec, Step,
    VolumeSource,
};

use crate::ahead::{self, DEFAULT_LOOKAHEAD};
use crate::connect::ConnectOptions;
use crate::error::{
    ENGINE_NAME, Error, api_error, cancelled, engine_error, is_conflict, is_not_found, not_ours,
    removed_outside,
};
use crate::labels::{self, Creator, StageNames};
use crate::make::{self, StepMaker};
use crate::stage::{StageEntry, StepEntry, Target, step_key};
use crate::{logs, teardown};

/// The default grace between SIGTERM and SIGKILL when a step is cancelled.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// The reference [`Engine`]: each step runs in its own Docker container.
///
/// One value serves any number of stages at once. Per stage, `setup` draws
/// the run's random token and creates a bridge network and the declared
/// volumes; `create` pulls the image as the step's pull policy says and
/// creates the container; `start` attaches to its output, then starts it;
/// the next steps' containers are made while a step runs (see
/// [`with_lookahead`](Self::with_lookahead)); `wait` reads the exit code and
/// the OOM flag; `destroy` removes every object labelled with the stage's id
/// and the run's token. `setup` and
/// `create` refuse an object that has the chosen name but was not created by
/// this run. See the crate documentation for the objects and labels.
pub struct DockerEngine {
    maker: StepMaker,
    address: String,
    stop_grace: Duration,
    health_timeout: Duration,
    lookahead: usize,
    /// The daemon is Podman: it runs no health checks without systemd, so
    /// the engine runs them (see `probe`).
    podman: bool,
    stages: Mutex<HashMap<String, Arc<StageEntry>>>,
}

impl std::fmt::Debug for DockerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerEngine")
            .field("address", &self.address)
            .field("stop_grace", &self.stop_grace)
            .field("pull_progress", &self.maker.pull_progress)
            .field("lookahead", &self.lookahead)
            .finish_non_exhaustive()
    }
}

impl DockerEngine {
    /// Connects to the daemon the environment names (see
    /// [`ConnectOptions::from_env`]), negotiating the API version down to
    /// the daemon's. A daemon that does not answer within a few seconds is an
    /// [`Error::Unreachable`] naming its address.
    pub async fn connect() -> Result<DockerEngine, Error> {
        Self::connect_with(&ConnectOptions::from_env()).await
    }

    /// Connects to the daemon `options` name.
    pub async fn connect_with(options: &ConnectOptions) -> Result<DockerEngine, Error> {
        let docker = options.connect().await?;
        let podman = crate::compat::is_podman(&docker).await;
        Ok(Self {
            maker: StepMaker {
                docker,
                creator: Creator::current(),
                pull_progress: true,
            },
            address: options.address().to_owned(),
            stop_grace: DEFAULT_STOP_GRACE,
            health_timeout: crate::health::DEFAULT_HEALTH_TIMEOUT,
            lookahead: DEFAULT_LOOKAHEAD,
            podman,
            stages: Mutex::new(HashMap::new()),
        })
    }

    /// How long a cancelled step gets between SIGTERM and SIGKILL (default
    /// [`DEFAULT_STOP_GRACE`]; whole seconds, rounded up).
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Whether pull progress opens the step's log (default `true`; Drone's
    /// `DRONE_DOCKER_STREAM_PULL=false` is `false` here).
    pub fn with_pull_progress(mut self, shown: bool) -> Self {
        self.maker.pull_progress = shown;
        self
    }

    /// How many steps after the one being created have their containers
    /// made in the background, so that a serial stage's next step is ready
    /// when it is reached (default [`DEFAULT_LOOKAHEAD`]; `0` makes every
    /// container only when its step's `create` is called).
    ///
    /// What is made ahead: the image made present, the container created
    /// and, for a script step, started with its script held back until the
    /// step's `start`: the slow part of a start (joining the stage's
    /// network) then overlaps the step before. Steps with a `network_mode`
    /// and `on-failure` steps are not made ahead. A step the runtime skips
    /// keeps the container made for it until `destroy`, so up to this many
    /// containers may exist unused.
    pub fn with_lookahead(mut self, steps: usize) -> Self {
        self.lookahead = steps;
        self
    }

    /// How long a service whose image declares a `HEALTHCHECK` may take to
    /// become healthy before its start fails (default
    /// [`DEFAULT_HEALTH_TIMEOUT`](crate::DEFAULT_HEALTH_TIMEOUT)). The steps
    /// after such a service start only once it is healthy.
    pub fn with_health_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    /// Whether the daemon answering is Podman (its Docker-compatible API;
    /// see docs/docker.md for what differs).
    pub fn is_podman(&self) -> bool {
        self.podman
    }

    /// The daemon's address, as connected to.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn docker(&self) -> &Docker {
        &self.maker.docker
    }

    pub(crate) fn creator(&self) -> &Creator {
        &self.maker.creator
    }

    /// The same daemon, with objects labelled as created by `creator`.
    #[cfg(test)]
    pub(crate) fn impersonating(&self, creator: Creator) -> Self {
        Self {
            maker: StepMaker {
                creator,
                ..self.maker.clone()
            },
            address: self.address.clone(),
            stop_grace: self.stop_grace,
            health_timeout: self.health_timeout,
            lookahead: self.lookahead,
            podman: self.podman,
            stages: Mutex::new(HashMap::new()),
        }
    }

    /// The stage's entry, if `setup` made one and no `destroy` removed it.
    fn stage(&self, spec: &Spec) -> Option<Arc<StageEntry>> {
        self.stages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&spec.id)
            .cloned()
    }

    /// The stage's entry for a step call: set up and not torn down.
    fn live_stage(
        &self,
        spec: &Spec,
        step: &Step,
        call: &str,
    ) -> Result<Arc<StageEntry>, EngineError> {
        self.stage(spec)
            .filter(|s| !s.torn_down.is_cancelled())
            .ok_or_else(|| {
                engine_error(
                    EngineErrorKind::Misuse,
                    format!(
                        "{call} of step {:?} before the stage's setup, or after destroy",
                        step.name
                    ),
                )
            })
    }

    /// Makes `setup`'s entry for a new run of the stage, with fresh names.
    /// It replaces any earlier run's entry: a rerun under the same spec id
    /// must not adopt what an earlier run left behind.
    fn new_stage(&self, spec: &Spec) -> Result<Arc<StageEntry>, EngineError> {
        let names = StageNames::generate(&spec.id).map_err(|e| {
            engine_error(
                EngineErrorKind::Other,
                format!("setup of stage {:?}", spec.id),
            )
            .with_source(e)
        })?;
        Ok(self.insert_stage(spec, names))
    }

    fn insert_stage(&self, spec: &Spec, names: StageNames) -> Arc<StageEntry> {
        let stage = Arc::new(StageEntry::new(names, Arc::new(spec.clone())));
        self.stages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.id.clone(), Arc::clone(&stage));
        stage
    }

    /// Names the entry of `spec` uses, when it has one (tests plant foreign
    /// objects under them).
    #[cfg(test)]
    pub(crate) fn stage_names(&self, spec: &Spec) -> Option<StageNames> {
        self.stage(spec).map(|s| s.names.clone())
    }

    /// Runs `setup` with `names` instead of freshly drawn ones, so that a
    /// test can plant objects under the names it will choose.
    #[cfg(test)]
    pub(crate) async fn setup_named(
        &self,
        spec: &Spec,
        names: StageNames,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let stage = self.insert_stage(spec, names);
        self.set_up(spec, &stage, cancel).await
    }

    /// Creates the stage's network and volumes, each checked to be this
    /// run's own: Docker hands back an existing volume of the name asked
    /// for, and (before API 1.44) creates a second network of a taken name.
    async fn set_up(
        &self,
        spec: &Spec,
        stage: &Arc<StageEntry>,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let names = &stage.names;
        let labels = labels::stage_labels(spec, &self.maker.creator, names);
        let network = names.network();
        let volumes = stage_volumes(spec, names)?;
        let network_work = async {
            let request = NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                options: (!spec.network.options.is_empty())
                    .then(|| spec.network.options.clone().into_iter().collect()),
                labels: Some(labels.clone()),
                ..NetworkCreateRequest::default()
            };
            let created = match self.maker.docker.create_network(request).await {
                Ok(created) => created,
                // API 1.44 and later refuse a taken name.
                Err(e) if is_conflict(&e) => {
                    return Err(not_ours("network", &network, "this stage").with_source(e));
                }
                Err(e) => return Err(api_error(format!("create network {network:?}"), e)),
            };
            // Recorded before the check below: the network is ours either way.
            let _ = stage.network.set(created.id.clone());
            self.refuse_namesakes(&network, &created.id).await
        };
        let labels = &labels;
        let volume_work = volumes.iter().map(|name| async move {
            let request = VolumeCreateRequest {
                name: Some(name.clone()),
                driver: Some("local".into()),
                labels: Some(labels.clone()),
                ..VolumeCreateRequest::default()
            };
            let volume = self
                .maker
                .docker
                .create_volume(request)
                .await
                .map_err(|e| api_error(format!("create volume {name:?}"), e))?;
            // An existing volume comes back as if created: only our labels
            // with this run's token say it is new.
            if !labels::is_of_run(&volume.labels, &spec.id, names) {
                return Err(not_ours("volume", name, "this stage"));
            }
            Ok(())
        });
        // The network and the volumes are independent: made side by side.
        let work = async {
            let (network, volumes) = tokio::join!(network_work, join_all(volume_work));
            network?;
            volumes.into_iter().collect::<Result<(), _>>()
        };
        tokio::select! {
            result = work => result?,
            () = cancel.cancelled() => return Err(cancelled(format!("setup of stage {:?}", spec.id))),
            () = stage.torn_down.cancelled() => return Err(cancelled(format!("setup of stage {:?}", spec.id))),
        }
        ahead::make_ahead(&self.maker, stage, 0, self.lookahead);
        Ok(())
    }

    /// Fails when a network other than `ours` is also named `name`: before
    /// API 1.44 Docker creates a second network of a taken name instead of
    /// refusing.
    async fn refuse_namesakes(&self, name: &str, ours: &str) -> Result<(), EngineError> {
        // The `name` filter matches substrings; exact names are compared below.
        let filters = HashMap::from([("name".to_owned(), vec![name.to_owned()])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let listed = self
            .maker
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| api_error(format!("list networks named {name:?}"), e))?;
        let namesake = listed
            .iter()
            .any(|n| n.name.as_deref() == Some(name) && n.id.as_deref() != Some(ours));
        if namesake {
            return Err(not_ours("network", name, "this stage"));
        }
        Ok(())
    }

    fn with_step<T>(
        &self,
        spec: &Spec,
        step: &Step,
        call: &str,
        f: impl FnOnce(&mut StepEntry) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let stage = self
            .stages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&spec.id)
            .cloned();
        let mut steps = stage
            .as_ref()
            .map(|s| s.steps.lock().unwrap_or_else(PoisonError::into_inner));
        match steps.as_mut().and_then(|s| s.get_mut(step_key(step))) {
            Some(entry) => f(entry),
            None => Err(engine_error(
                EngineErrorKind::Misuse,
                format!(
                    "{call} of step {:?} before its create, or after destroy",
                    step.name
                ),
            )),
        }
    }

    /// `start`'s work: the container launched (unless it was, ahead), a
    /// script step's script released, and a service with a health check
    /// waited for.
    async fn launch(
        &self,
        stage: &StageEntry,
        step: &Step,
        entry: &mut StepEntry,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        if cancel.is_cancelled() {
            return Err(cancelled(format!("start of step {:?}", step.name)));
        }
        if !entry.launched() {
            self.maker.launch(stage, step, entry).await?;
        }
        make::release(step, entry).await?;
        if step.detach {
            let said = crate::health::await_healthy(
                &self.maker.docker,
                step,
                &entry.container,
                &entry.name,
                self.health_timeout,
                self.podman,
                cancel,
            )
            .await?;
            entry.preamble.extend(said);
        }
        entry.started = true;
        Ok(())
    }

    /// Removes an ended step's container while the stage goes on, once its
    /// output is all read, so that `destroy` has less to do; `destroy` waits
    /// for it before listing what is left (and removes it if this failed).
    fn remove_in_background(
        &self,
        stage: &StageEntry,
        target: Target,
        output_ended: CancellationToken,
    ) {
        // Under the lock `destroy` takes after firing the token, as for
        // the steps made ahead.
        let _ahead = stage.ahead();
        if stage.torn_down.is_cancelled() {
            return;
        }
        let maker = self.maker.clone();
        let torn_down = stage.torn_down.clone();
        stage.background.spawn(async move {
            tokio::select! {
                () = output_ended.cancelled() => {}
                // `destroy` removes it.
                () = torn_down.cancelled() => return,
            }
            if let Err(e) = ahead::remove(&maker, &target).await {
                tracing::debug!(container = %target.name, error = %e.to_chain_string(), "could not remove an ended step's container");
            }
        });
    }

    /// Stops `target`: SIGTERM, then SIGKILL once the grace has passed.
    async fn stop(&self, target: &Target) -> Result<(), EngineError> {
        let grace = self.stop_grace.as_secs() + u64::from(self.stop_grace.subsec_nanos() > 0);
        let options = StopContainerOptionsBuilder::new()
            .t(i32::try_from(grace).unwrap_or(i32::MAX))
            .build();
        match self
            .maker
            .docker
            .stop_container(&target.id, Some(options))
            .await
        {
            Ok(()) => Ok(()),
            // 304: it had already stopped. 404: it is gone, which the
            // inspect after the stop reports.
            Err(ApiError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error(format!("stop container {:?}", target.name), e)),
        }
    }

    /// Sends SIGTERM to every process of a script step but its PID 1.
    ///
    /// `docker stop` signals only PID 1, here the `/bin/sh -c` that pipes the
    /// script into a shell: as PID 1 without a handler it ignores SIGTERM, so
    /// the script's `trap`s would never run and the step would always wait
    /// out the grace. `kill -TERM -1`, run by the same shell inside the
    /// container, reaches the script's shell and its children instead; the
    /// pipeline then ends and PID 1 with it. Best effort: `stop` follows.
    async fn terminate_script(&self, container: &str) {
        let exec = ExecConfig {
            cmd: Some(
                ["/bin/sh", "-c", "kill -TERM -1"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            ..ExecConfig::default()
        };
        let result = async {
            let created = self.maker.docker.create_exec(container, exec).await?;
            let detached = StartExecOptions {
                detach: true,
                ..StartExecOptions::default()
            };
            self.maker
                .docker
                .start_exec(&created.id, Some(detached))
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(%container, error = %e, "could not signal the script's processes");
        }
    }

    /// How the step's container ended, read from an inspect; an error when
    /// it is gone or being removed, which runnerkit does only in `destroy`.
    async fn exit_state(&self, step: &Step, entry: &Target) -> Result<ExitState, EngineError> {
        let state = container_state(&self.maker.docker, &entry.id)
            .await
            .map_err(|e| api_error(format!("inspect container {:?}", entry.name), e))?;
        let Some(state) = state.filter(|s| !is_being_removed(s)) else {
            return Err(removed_outside(step, &entry.name));
        };
        let exit_code = state
            .exit_code
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(0);
        Ok(ExitState {
            exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }
}

#[async_trait]
impl Engine for DockerEngine {
    fn name(&self) -> &str {
        ENGINE_NAME
    }

    async fn setup(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        let stage = self.new_stage(spec)?;
        self.set_up(spec, &stage, cancel).await
    }

    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        if cancel.is_cancelled() {
            return Err(cancelled(format!("create of step {:?}", step.name)));
        }
        if step.image.is_empty() {
            return Err(engine_error(
                EngineErrorKind::NotFound,
                format!("step {:?} names no image", step.name),
            ));
        }
        let stage = self.live_stage(spec, step, "create")?;
        let made_ahead = match ahead::claim(&stage, step) {
            Some(task) => tokio::select! {
                made = task => made.ok().flatten(),
                () = cancel.cancelled() => return Err(cancelled(format!("create of step {:?}", step.name))),
            },
            None => None,
        };
        let entry = match made_ahead {
            Some(entry) if ahead::made_as(&stage, step) => entry,
            made_ahead => {
                if let Some(stale) = made_ahead {
                    // A hook amended the step since: its container is not this step's.
                    ahead::remove(&self.maker, &Target::of(&stale)).await?;
                }
                self.maker.create(spec, step, &stage, cancel, None).await?
            }
        };
        stage.steps().insert(step_key(step).to_owned(), entry);
        if let Some(index) = stage.position(step) {
            ahead::make_ahead(&self.maker, &stage, index + 1, self.lookahead);
        }
        Ok(())
    }

    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let stage = self.live_stage(spec, step, "start")?;
        // Out of the map while the calls below run: no lock is held across them.
        let mut entry = stage.steps().remove(step_key(step)).ok_or_else(|| {
            engine_error(
                EngineErrorKind::Misuse,
                format!(
                    "start of step {:?} before its create, or after destroy",
                    step.name
                ),
            )
        })?;
        let result = self.launch(&stage, step, &mut entry, cancel).await;
        stage.steps().insert(step_key(step).to_owned(), entry);
        result
    }

    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        // A cancel does not end the stream: `wait` stops the container, and
        // what it prints while stopping is part of its log.
        _cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        let (preamble, output) = self.with_step(spec, step, "tail", |e| {
            let output = e.started.then(|| e.output.take()).flatten();
            let output = output.ok_or_else(|| {
                engine_error(
                    EngineErrorKind::Misuse,
                    format!(
                        "tail of step {:?} before its start, or a second time",
                        step.name
                    ),
                )
            })?;
            Ok((std::mem::take(&mut e.preamble), output))
        })?;
        Ok(logs::tail_stream(preamble, output))
    }

    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        let (target, output_ended) = self.with_step(spec, step, "wait", |e| {
            Ok((Target::of(e), e.output_ended.clone()))
        })?;
        let container = &target.id;
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut exited = self.maker.docker.wait_container(container, Some(options));
        let waited = tokio::select! {
            waited = exited.next() => Some(waited),
            () = cancel.cancelled() => None,
        };
        match waited {
            None => {
                tracing::debug!(container = %target.name, grace = ?self.stop_grace, "cancelled: stopping");
                if step.script.is_some() {
                    self.terminate_script(container).await;
                }
                self.stop(&target).await?;
            }
            // A non-zero exit arrives as an error; the inspect below reads it.
            // It is needed whatever the code: Docker flags an OOM kill of any
            // process of the container (a child too), not only of the main one.
            Some(None | Some(Ok(_)) | Some(Err(ApiError::DockerContainerWaitError { .. }))) => {}
            // Gone before the wait began: the inspect below says so.
            Some(Some(Err(e))) if is_not_found(&e) => {}
            Some(Some(Err(e))) => {
                return Err(api_error(
                    format!("wait for container {:?}", target.name),
                    e,
                ));
            }
        }
        let exit = self.exit_state(step, &target).await?;
        if !cancel.is_cancelled()
            && let (Some(stage), Some(output_ended)) = (self.stage(spec), output_ended)
        {
            self.remove_in_background(&stage, target, output_ended);
        }
        Ok(exit)
    }

    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        // No entry: never set up, or a destroy already removed everything.
        let Some(stage) = self.stage(spec) else {
            return Ok(());
        };
        stage.torn_down.cancel();
        // Later step calls are misuse; the entry itself stays until
        // everything is gone, so a retried destroy still has the token.
        stage.steps().clear();
        // Taken after the token fired, so that no task making a step ahead
        // is spawned after this; their results (unused containers) go.
        stage.ahead().slots.clear();
        stage.background.close();
        // Only this run's objects: an object merely labelled with the stage
        // (a guess of its id) is not removed.
        let filters = labels::run_filter(&spec.id, &stage.names);
        let work = async {
            // Containers being made ahead exist once their task ends: wait
            // for them, or the listing below could miss one.
            stage.background.wait().await;
            let (removed, failed) =
                teardown::remove_all(&self.maker.docker, &filters, |_| true).await;
            tracing::debug!(stage = %spec.id, removed = removed.len(), "destroyed");
            let left: Vec<String> = failed.iter().map(|f| f.operation.clone()).collect();
            match failed.into_iter().next() {
                None => {
                    let mut stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
                    // Unless a new run of the stage replaced it meanwhile.
                    if stages.get(&spec.id).is_some_and(|s| Arc::ptr_eq(s, &stage)) {
                        stages.remove(&spec.id);
                    }
                    Ok(())
                }
                Some(first) => Err(api_error(
                    format!(
                        "destroy of stage {:?} failed to {}",
                        spec.id,
                        left.join(", ")
                    ),
                    first.source,
                )),
            }
        };
        tokio::select! {
            result = work => result,
            () = cancel.cancelled() => Err(cancelled(format!(
                "destroy of stage {:?} (objects labelled {}={} may remain)",
                spec.id,
                labels::LABEL_TOKEN,
                stage.names.token()
            ))),
        }
    }
}

/// The Docker volumes `setup` creates for `spec`: the workspace's (unless it
/// is a host directory) and each disk-backed temp volume's.
///
/// Two spec volumes whose names sanitize to one Docker name (`a/b`, `a_b`)
/// are refused, naming both, rather than silently sharing one volume.
fn stage_volumes(spec: &Spec, names: &StageNames) -> Result<Vec<String>, EngineError> {
    let mut volumes = Vec::new();
    if spec.workspace.host_path.is_none() && !spec.workspace.base.is_empty() {
        volumes.push(names.workspace_volume());
    }
    let mut by_docker_name: HashMap<String, &str> = HashMap::new();
    for volume in &spec.volumes {
        if let VolumeSource::Temp { memory: false, .. } = volume.source {
            let name = names.volume(&volume.name);
            if let Some(first) = by_docker_name.insert(name.clone(), &volume.name) {
                return Err(engine_error(
                    EngineErrorKind::Other,
                    format!(
                        "volumes {first:?} and {:?} of stage {:?} would share the Docker volume {name:?}: rename one",
                        volume.name, spec.id
                    ),
                ));
            }
            volumes.push(name);
        }
    }
    Ok(volumes)
}

/// The container's state, `None` when it no longer exists.
async fn container_state(docker: &Docker, id: &str) -> Result<Option<ContainerState>, ApiError> {
    match crate::compat::known_states(|| docker.inspect_container(id, None)).await {
        Ok(inspect) => Ok(Some(inspect.state.unwrap_or_default())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Docker is removing the container (`docker rm -f` kills it first, so its
/// wait ends before it is gone), or a removal left it dead.
fn is_being_removed(state: &ContainerState) -> bool {
    state.status == Some(ContainerStateStatusEnum::REMOVING) || state.dead == Some(true)
}

/// For a detached step whose output ended before the teardown: the error
/// saying its container was removed from outside, if it was. Best effort:
/// an inspect that fails says nothing.
pub(crate) async fn removal(docker: &Docker, step: &Step, target: &Target) -> Option<EngineError> {
    match container_state(docker, &target.id).await {
        Ok(Some(state)) if !is_being_removed(&state) => None,
        Ok(_) => Some(removed_outside(step, &target.name)),
        Err(e) => {
            tracing::debug!(container = %target.name, error = %e, "could not inspect an ended service");
            None
        }
    }
}

/// A pull failure: `NotFound` when the registry says the image does not
/// exist (or may not be read), else by the transport's answer.
pub(crate) fn pull_error(operation: String, err: ApiError) -> EngineError {
    let message = match &err {
        ApiError::DockerStreamError { error } => Some(error),
        ApiError::DockerResponseServerError { message, .. } => Some(message),
        _ => None,
    };
    if let Some(message) = message {
        let lower = message.to_ascii_lowercase();
        if ["not found", "manifest unknown", "pull access denied"]
            .iter()
            .any(|s| lower.contains(s))
        {
            return EngineError::new(ENGINE_NAME, EngineErrorKind::NotFound, operation)
                .with_source(err);
        }
    }
    api_error(operation, err)
}

#[cfg(test)]
mod tests {
    use runnerkit_core::{Volume, Workspace};

    use super::*;

    fn temp(name: &str) -> Volume {
        Volume {
            name: name.into(),
            source: VolumeSource::Temp {
                memory: false,
                size_limit: 0,
            },
        }
    }

    #[test]
    fn volumes_sharing_a_docker_name_are_refused_naming_both() {
        let spec = Spec {
            id: "s1".into(),
            workspace: Workspace {
                base: "/drone/src".into(),
                ..Workspace::default()
            },
            volumes: vec![temp("cache"), temp("a/b"), temp("a_b")],
            ..Spec::default()
        };
        let names = StageNames::with_token("s1", "t0".into());
        let err = stage_volumes(&spec, &names).unwrap_err();
        assert_eq!(
            err.message(),
            "volumes \"a/b\" and \"a_b\" of stage \"s1\" would share the Docker volume \"rk-s1-t0-vol-a_b\": rename one"
        );
        let fine = Spec {
            volumes: vec![temp("cache"), temp("a_b")],
            ..spec
        };
        assert_eq!(
            stage_volumes(&fine, &names).unwrap(),
            [
                "rk-s1-t0-workspace",
                "rk-s1-t0-vol-cache",
                "rk-s1-t0-vol-a_b"
            ]
        );
    }
}

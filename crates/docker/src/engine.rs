//! [`DockerEngine`]: the [`Engine`] calls mapped onto the Docker Engine API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::exec::StartExecOptions;
use bollard::models::{
    ContainerState, ContainerStateStatusEnum, ExecConfig, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListNetworksOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use runnerkit_core::{
    CancellationToken, Engine, EngineError, EngineErrorKind, ExitState, LogStream, Spec, Step,
    VolumeSource,
};
use tokio::sync::mpsc;

use crate::config::container_config;
use crate::connect::ConnectOptions;
use crate::error::{
    ENGINE_NAME, Error, api_error, cancelled, engine_error, is_conflict, is_not_found, not_ours,
    removed_outside,
};
use crate::image::{ImageRef, credentials_for, progress_line, pull_first, pull_when_missing};
use crate::labels::{self, Creator, StageNames};
use crate::logs::{self, Chunk};
use crate::teardown;

/// The default grace between SIGTERM and SIGKILL when a step is cancelled.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// The reference [`Engine`]: each step runs in its own Docker container.
///
/// One value serves any number of stages at once. Per stage, `setup` draws
/// the run's random token and creates a bridge network and the declared
/// volumes; `create` pulls the image as the step's pull policy says and
/// creates the container; `start` attaches to its output, then starts it;
/// `wait` reads the exit code and the OOM flag; `destroy` removes every
/// object labelled with the stage's id and the run's token. `setup` and
/// `create` refuse an object that has the chosen name but was not created by
/// this run. See the crate documentation for the objects and labels.
pub struct DockerEngine {
    docker: Docker,
    address: String,
    stop_grace: Duration,
    pull_progress: bool,
    health_timeout: Duration,
    creator: Creator,
    stages: Mutex<HashMap<String, Arc<StageEntry>>>,
}

impl std::fmt::Debug for DockerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerEngine")
            .field("address", &self.address)
            .field("stop_grace", &self.stop_grace)
            .field("pull_progress", &self.pull_progress)
            .finish_non_exhaustive()
    }
}

/// What the engine remembers of a stage between calls: from `setup` until a
/// `destroy` that removed everything (kept after a failed one, so that a
/// later `destroy` still knows the run's token).
struct StageEntry {
    /// The run's object names and token, drawn by `setup`.
    names: StageNames,
    /// The id of the stage's network, once `setup` created it. Steps join
    /// the network by id, which nothing else can share.
    network: OnceLock<String>,
    /// Fired by `destroy`: ends every output copy of the stage.
    torn_down: CancellationToken,
    /// Per step id.
    steps: Mutex<HashMap<String, StepEntry>>,
}

impl StageEntry {
    fn new(names: StageNames) -> Self {
        Self {
            names,
            network: OnceLock::new(),
            torn_down: CancellationToken::new(),
            steps: Mutex::new(HashMap::new()),
        }
    }
}

/// What the engine remembers of a step between calls.
struct StepEntry {
    /// The container's id: what every call after `create` addresses, so
    /// that a container put in its place under its name is never touched.
    container: String,
    /// The container's name, for messages.
    name: String,
    /// Pull progress, yielded before the container's output.
    preamble: Vec<Bytes>,
    /// The buffered output, from `start` until `tail` takes it.
    output: Option<mpsc::UnboundedReceiver<Chunk>>,
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
        Ok(Self {
            docker,
            address: options.address().to_owned(),
            stop_grace: DEFAULT_STOP_GRACE,
            pull_progress: true,
            health_timeout: crate::health::DEFAULT_HEALTH_TIMEOUT,
            creator: Creator::current(),
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
        self.pull_progress = shown;
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

    /// The daemon's address, as connected to.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    pub(crate) fn creator(&self) -> &Creator {
        &self.creator
    }

    /// The same daemon, with objects labelled as created by `creator`.
    #[cfg(test)]
    pub(crate) fn impersonating(&self, creator: Creator) -> Self {
        Self {
            docker: self.docker.clone(),
            address: self.address.clone(),
            stop_grace: self.stop_grace,
            pull_progress: self.pull_progress,
            health_timeout: self.health_timeout,
            creator,
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
        let stage = Arc::new(StageEntry::new(names));
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
        stage: &StageEntry,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let names = &stage.names;
        let labels = labels::stage_labels(spec, &self.creator, names);
        let network = names.network();
        let volumes = stage_volumes(spec, names)?;
        let work = async {
            let request = NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                options: (!spec.network.options.is_empty())
                    .then(|| spec.network.options.clone().into_iter().collect()),
                labels: Some(labels.clone()),
                ..NetworkCreateRequest::default()
            };
            let created = match self.docker.create_network(request).await {
                Ok(created) => created,
                // API 1.44 and later refuse a taken name.
                Err(e) if is_conflict(&e) => {
                    return Err(not_ours("network", &network, "this stage").with_source(e));
                }
                Err(e) => return Err(api_error(format!("create network {network:?}"), e)),
            };
            // Recorded before the check below: the network is ours either way.
            let _ = stage.network.set(created.id.clone());
            self.refuse_namesakes(&network, &created.id).await?;
            for name in &volumes {
                let request = VolumeCreateRequest {
                    name: Some(name.clone()),
                    driver: Some("local".into()),
                    labels: Some(labels.clone()),
                    ..VolumeCreateRequest::default()
                };
                let volume = self
                    .docker
                    .create_volume(request)
                    .await
                    .map_err(|e| api_error(format!("create volume {name:?}"), e))?;
                // An existing volume comes back as if created: only our
                // labels with this run's token say it is new.
                if !labels::is_of_run(&volume.labels, &spec.id, names) {
                    return Err(not_ours("volume", name, "this stage"));
                }
            }
            Ok(())
        };
        tokio::select! {
            result = work => result,
            () = cancel.cancelled() => Err(cancelled(format!("setup of stage {:?}", spec.id))),
            () = stage.torn_down.cancelled() => Err(cancelled(format!("setup of stage {:?}", spec.id))),
        }
    }

    /// Fails when a network other than `ours` is also named `name`: before
    /// API 1.44 Docker creates a second network of a taken name instead of
    /// refusing.
    async fn refuse_namesakes(&self, name: &str, ours: &str) -> Result<(), EngineError> {
        // The `name` filter matches substrings; exact names are compared below.
        let filters = HashMap::from([("name".to_owned(), vec![name.to_owned()])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let listed = self
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

    /// Pulls `image`, adding progress lines to `log`.
    async fn pull(
        &self,
        image: &ImageRef,
        spec: &Spec,
        cancel: &CancellationToken,
        log: &mut Vec<Bytes>,
    ) -> Result<(), EngineError> {
        let operation = format!("pull image {:?}", image.pullable);
        tracing::debug!(image = %image.pullable, "pulling");
        let options = CreateImageOptionsBuilder::new()
            .from_image(&image.pullable)
            .build();
        let credentials = credentials_for(image, &spec.registries);
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        loop {
            let next = tokio::select! {
                next = progress.next() => next,
                () = cancel.cancelled() => return Err(cancelled(&operation)),
            };
            match next {
                None => return Ok(()),
                Some(Ok(info)) => {
                    if let Some(line) = progress_line(&info).filter(|_| self.pull_progress) {
                        log.push(Bytes::from(line));
                    }
                }
                Some(Err(e)) => return Err(pull_error(operation, e)),
            }
        }
    }

    /// Makes sure `image` is present, pulling as the step's policy allows.
    async fn ensure_image(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
        log: &mut Vec<Bytes>,
    ) -> Result<(), EngineError> {
        let image = ImageRef::parse(&step.image);
        if pull_first(step.pull, &image) {
            return self.pull(&image, spec, cancel, log).await;
        }
        match self.docker.inspect_image(&step.image).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) && pull_when_missing(step.pull) => {
                self.pull(&image, spec, cancel, log).await
            }
            Err(e) if is_not_found(&e) => Err(engine_error(
                EngineErrorKind::NotFound,
                format!(
                    "image {:?} of step {:?} is not present and its pull policy is never",
                    step.image, step.name
                ),
            )),
            Err(e) => Err(api_error(format!("inspect image {:?}", step.image), e)),
        }
    }

    /// Stops `target`: SIGTERM, then SIGKILL once the grace has passed.
    async fn stop(&self, target: &Target) -> Result<(), EngineError> {
        let grace = self.stop_grace.as_secs() + u64::from(self.stop_grace.subsec_nanos() > 0);
        let options = StopContainerOptionsBuilder::new()
            .t(i32::try_from(grace).unwrap_or(i32::MAX))
            .build();
        match self.docker.stop_container(&target.id, Some(options)).await {
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
            let created = self.docker.create_exec(container, exec).await?;
            let detached = StartExecOptions {
                detach: true,
                ..StartExecOptions::default()
            };
            self.docker.start_exec(&created.id, Some(detached)).await?;
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
        let state = container_state(&self.docker, &entry.id)
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
        let network = stage.network.get().ok_or_else(|| {
            engine_error(
                EngineErrorKind::Misuse,
                format!(
                    "create of step {:?} before the stage's setup succeeded",
                    step.name
                ),
            )
        })?;
        let config = container_config(spec, step, &self.creator, &stage.names, network)?;
        let container = stage.names.container(step);
        let mut preamble = Vec::new();
        self.ensure_image(spec, step, cancel, &mut preamble).await?;
        let options = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        let created = tokio::select! {
            created = self.docker.create_container(Some(options), config) => created,
            () = cancel.cancelled() => return Err(cancelled(format!("create of step {:?}", step.name))),
        };
        let created = match created {
            Ok(created) => created,
            // Only a container of this run has its name's token; whoever made
            // this one, it is not this step's to run.
            Err(e) if is_conflict(&e) => {
                return Err(not_ours("container", &container, "this step").with_source(e));
            }
            Err(e) => {
                return Err(api_error(
                    format!("create container {container:?} for step {:?}", step.name),
                    e,
                ));
            }
        };
        tracing::debug!(%container, id = %created.id, step = %step.name, "created");
        stage
            .steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                step_key(step).to_owned(),
                StepEntry {
                    container: created.id,
                    name: container,
                    preamble,
                    output: None,
                },
            );
        Ok(())
    }

    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let target = self.with_step(spec, step, "start", |e| Ok(Target::of(e)))?;
        let Target {
            id: container,
            name,
        } = &target;
        if cancel.is_cancelled() {
            return Err(cancelled(format!("start of step {:?}", step.name)));
        }
        // Attach first: output written before the attach would be lost.
        let options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = self
            .docker
            .attach_container(container, Some(options))
            .await
            .map_err(|e| api_error(format!("attach to container {name:?}"), e))?;
        let stage = self.live_stage(spec, step, "start")?;
        // Nobody waits for a detached step: when its output ends before the
        // teardown, its stream says whether the container was removed.
        let end_check = step.detach.then(|| {
            let docker = self.docker.clone();
            let (step, target) = (step.clone(), target.clone());
            let check: logs::EndCheck =
                Box::new(move || async move { removal(&docker, &step, &target).await }.boxed());
            check
        });
        let output = logs::forward(
            attached.output,
            name.clone(),
            stage.torn_down.child_token(),
            end_check,
        );
        self.with_step(spec, step, "start", |e| {
            e.output = Some(output);
            Ok(())
        })?;
        self.docker
            .start_container(container, None)
            .await
            .map_err(|e| api_error(format!("start container {name:?}"), e))?;
        tracing::debug!(container = %name, step = %step.name, "started");
        if step.detach {
            let said = crate::health::await_healthy(
                &self.docker,
                step,
                container,
                name,
                self.health_timeout,
                cancel,
            )
            .await?;
            if !said.is_empty() {
                self.with_step(spec, step, "start", |e| {
                    e.preamble.extend(said);
                    Ok(())
                })?;
            }
        }
        Ok(())
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
            let output = e.output.take().ok_or_else(|| {
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
        let target = self.with_step(spec, step, "wait", |e| Ok(Target::of(e)))?;
        let container = &target.id;
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut exited = self.docker.wait_container(container, Some(options));
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
        self.exit_state(step, &target).await
    }

    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        // No entry: never set up, or a destroy already removed everything.
        let Some(stage) = self.stage(spec) else {
            return Ok(());
        };
        stage.torn_down.cancel();
        // Later step calls are misuse; the entry itself stays until
        // everything is gone, so a retried destroy still has the token.
        stage
            .steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        // Only this run's objects: an object merely labelled with the stage
        // (a guess of its id) is not removed.
        let filters = labels::run_filter(&spec.id, &stage.names);
        let work = async {
            let found = teardown::list(&self.docker, &filters)
                .await
                .map_err(|f| api_error(f.operation, f.source))?;
            let (removed, failed) = teardown::remove(&self.docker, &found).await;
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

/// A step's container: the id every call uses, the name messages show.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    name: String,
}

impl Target {
    fn of(entry: &StepEntry) -> Self {
        Self {
            id: entry.container.clone(),
            name: entry.name.clone(),
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
    match docker.inspect_container(id, None).await {
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
async fn removal(docker: &Docker, step: &Step, target: &Target) -> Option<EngineError> {
    match container_state(docker, &target.id).await {
        Ok(Some(state)) if !is_being_removed(&state) => None,
        Ok(_) => Some(removed_outside(step, &target.name)),
        Err(e) => {
            tracing::debug!(container = %target.name, error = %e, "could not inspect an ended service");
            None
        }
    }
}

fn step_key(step: &Step) -> &str {
    if step.id.is_empty() {
        &step.name
    } else {
        &step.id
    }
}

/// A pull failure: `NotFound` when the registry says the image does not
/// exist (or may not be read), else by the transport's answer.
fn pull_error(operation: String, err: ApiError) -> EngineError {
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

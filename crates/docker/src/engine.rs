//! [`DockerEngine`]: the [`Engine`] calls mapped onto the Docker Engine API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::exec::StartExecOptions;
use bollard::models::{ExecConfig, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::StreamExt;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, EngineErrorKind, ExitState, LogStream, Spec, Step,
    VolumeSource,
};
use tokio::sync::mpsc;

use crate::config::container_config;
use crate::connect::ConnectOptions;
use crate::error::{ENGINE_NAME, Error, api_error, cancelled, engine_error, is_not_found};
use crate::image::{ImageRef, credentials_for, progress_line, pull_first, pull_when_missing};
use crate::labels::{self, Creator};
use crate::logs::{self, Chunk};
use crate::teardown;

/// The default grace between SIGTERM and SIGKILL when a step is cancelled.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// The reference [`Engine`]: each step runs in its own Docker container.
///
/// One value serves any number of stages at once. Per stage, `setup` creates
/// a bridge network and the declared volumes; `create` pulls the image as
/// the step's pull policy says and creates the container; `start` attaches
/// to its output, then starts it; `wait` reads the exit code and the OOM
/// flag; `destroy` removes every object labelled with the stage's id.
/// See the crate documentation for the objects and labels.
pub struct DockerEngine {
    docker: Docker,
    address: String,
    stop_grace: Duration,
    pull_progress: bool,
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

/// What the engine remembers of a stage between calls.
#[derive(Default)]
struct StageEntry {
    /// Fired by `destroy`: ends every output copy of the stage.
    torn_down: CancellationToken,
    /// Per step id.
    steps: Mutex<HashMap<String, StepEntry>>,
}

/// What the engine remembers of a step between calls.
struct StepEntry {
    container: String,
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
            creator,
            stages: Mutex::new(HashMap::new()),
        }
    }

    fn stage(&self, spec: &Spec) -> Arc<StageEntry> {
        let mut stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(stages.entry(spec.id.clone()).or_default())
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

    /// Stops `container`: SIGTERM, then SIGKILL once the grace has passed.
    async fn stop(&self, container: &str) -> Result<(), EngineError> {
        let grace = self.stop_grace.as_secs() + u64::from(self.stop_grace.subsec_nanos() > 0);
        let options = StopContainerOptionsBuilder::new()
            .t(i32::try_from(grace).unwrap_or(i32::MAX))
            .build();
        match self.docker.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: it had already stopped.
            Err(ApiError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(api_error(format!("stop container {container:?}"), e)),
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

    async fn exit_state(&self, container: &str) -> Result<ExitState, EngineError> {
        let inspect = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(|e| api_error(format!("inspect container {container:?}"), e))?;
        let state = inspect.state.unwrap_or_default();
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
        let stage = self.stage(spec);
        let labels = labels::stage_labels(spec, &self.creator);
        let network = labels::network_name(spec);
        let mut volumes = Vec::new();
        if spec.workspace.host_path.is_none() && !spec.workspace.base.is_empty() {
            volumes.push(labels::workspace_volume_name(spec));
        }
        for volume in &spec.volumes {
            if let VolumeSource::Temp { memory: false, .. } = volume.source {
                volumes.push(labels::volume_name(spec, &volume.name));
            }
        }
        let work = async {
            let request = NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                options: (!spec.network.options.is_empty())
                    .then(|| spec.network.options.clone().into_iter().collect()),
                labels: Some(labels.clone()),
                ..NetworkCreateRequest::default()
            };
            self.docker
                .create_network(request)
                .await
                .map_err(|e| api_error(format!("create network {network:?}"), e))?;
            for name in &volumes {
                let request = VolumeCreateRequest {
                    name: Some(name.clone()),
                    driver: Some("local".into()),
                    labels: Some(labels.clone()),
                    ..VolumeCreateRequest::default()
                };
                self.docker
                    .create_volume(request)
                    .await
                    .map_err(|e| api_error(format!("create volume {name:?}"), e))?;
            }
            Ok(())
        };
        tokio::select! {
            result = work => result,
            () = cancel.cancelled() => Err(cancelled(format!("setup of stage {:?}", spec.id))),
            () = stage.torn_down.cancelled() => Err(cancelled(format!("setup of stage {:?}", spec.id))),
        }
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
        let config = container_config(spec, step, &self.creator)?;
        let container = labels::container_name(spec, step);
        let mut preamble = Vec::new();
        self.ensure_image(spec, step, cancel, &mut preamble).await?;
        let options = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        let created = tokio::select! {
            created = self.docker.create_container(Some(options), config) => created,
            () = cancel.cancelled() => return Err(cancelled(format!("create of step {:?}", step.name))),
        };
        created.map_err(|e| {
            api_error(
                format!("create container {container:?} for step {:?}", step.name),
                e,
            )
        })?;
        tracing::debug!(%container, step = %step.name, "created");
        let stage = self.stage(spec);
        stage
            .steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                step_key(step).to_owned(),
                StepEntry {
                    container,
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
        let container = self.with_step(spec, step, "start", |e| Ok(e.container.clone()))?;
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
            .attach_container(&container, Some(options))
            .await
            .map_err(|e| api_error(format!("attach to container {container:?}"), e))?;
        let stage = self.stage(spec);
        let output = logs::forward(
            attached.output,
            container.clone(),
            stage.torn_down.child_token(),
        );
        self.with_step(spec, step, "start", |e| {
            e.output = Some(output);
            Ok(())
        })?;
        self.docker
            .start_container(&container, None)
            .await
            .map_err(|e| api_error(format!("start container {container:?}"), e))?;
        tracing::debug!(%container, step = %step.name, "started");
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
        let container = self.with_step(spec, step, "wait", |e| Ok(e.container.clone()))?;
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut exited = self.docker.wait_container(&container, Some(options));
        let waited = tokio::select! {
            waited = exited.next() => Some(waited),
            () = cancel.cancelled() => None,
        };
        match waited {
            None => {
                tracing::debug!(%container, grace = ?self.stop_grace, "cancelled: stopping");
                if step.script.is_some() {
                    self.terminate_script(&container).await;
                }
                self.stop(&container).await?;
            }
            // A non-zero exit arrives as an error; the inspect below reads it.
            // It is needed whatever the code: Docker flags an OOM kill of any
            // process of the container (a child too), not only of the main one.
            Some(None | Some(Ok(_)) | Some(Err(ApiError::DockerContainerWaitError { .. }))) => {}
            Some(Some(Err(e))) => {
                return Err(api_error(format!("wait for container {container:?}"), e));
            }
        }
        self.exit_state(&container).await
    }

    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        let entry = self
            .stages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&spec.id);
        if let Some(entry) = entry {
            entry.torn_down.cancel();
        }
        let filters = labels::stage_filter(&spec.id);
        let work = async {
            let found = teardown::list(&self.docker, &filters)
                .await
                .map_err(|f| api_error(f.operation, f.source))?;
            let (removed, failed) = teardown::remove(&self.docker, &found).await;
            tracing::debug!(stage = %spec.id, removed = removed.len(), "destroyed");
            let left: Vec<String> = failed.iter().map(|f| f.operation.clone()).collect();
            match failed.into_iter().next() {
                None => Ok(()),
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
                labels::LABEL_STAGE,
                spec.id
            ))),
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

//! Making a step's container: its image made present, the container
//! created, then attached to and started. `create` and `start` do it for the
//! step they are called for; [`crate::ahead`] does it before they are called.
//!
//! A script step's container is started *held*: its PID 1 reads one line
//! from the container's stdin before it pipes the script into the shell, and
//! `start` writes that line. Joining the stage's network, the slow part of a
//! start, can so happen while the step before is still running, and the
//! script still begins only when the runtime says.

use bollard::Docker;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
};
use bytes::Bytes;
use futures_util::future::Shared;
use futures_util::{FutureExt, StreamExt};
use runnerkit_core::{CancellationToken, EngineError, EngineErrorKind, Spec, Step};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use crate::config::container_config;
use crate::engine::{pull_error, removal};
use crate::error::{api_error, cancelled, engine_error, is_conflict, is_not_found, not_ours};
use crate::image::{ImageRef, credentials_for, progress_line, pull_first, pull_when_missing};
use crate::labels::Creator;
use crate::logs;
use crate::stage::{StageEntry, StepEntry, Target};

/// A step's turn at making its image present, among the steps made ahead
/// with that image: `previous` ends when the step before is done with it;
/// dropping this ends the turn for the step after.
pub(crate) struct ImageTurn {
    pub(crate) previous: Option<Shared<oneshot::Receiver<()>>>,
    pub(crate) done: oneshot::Sender<()>,
}

/// What making a container needs of the engine: cheap to clone into the
/// tasks that make steps ahead.
#[derive(Clone)]
pub(crate) struct StepMaker {
    pub(crate) docker: Docker,
    pub(crate) creator: Creator,
    pub(crate) pull_progress: bool,
}

impl StepMaker {
    /// Creates `step`'s container in `stage`, pulling its image first as its
    /// policy says (progress goes to the entry's preamble).
    ///
    /// The create call itself is not abandoned when `cancel` fires: a
    /// container the daemon made after nobody listened could appear after
    /// `destroy` listed the stage's objects. A cancel that came meanwhile is
    /// reported once the call returned; the container is the stage's then.
    ///
    /// `turn`, for a step made ahead, is its place among the steps made
    /// ahead with the same image: it waits for the one before to have made
    /// the image present, so that one pull serves them all and its progress
    /// shows in the first one's log.
    pub(crate) async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        stage: &StageEntry,
        cancel: &CancellationToken,
        turn: Option<ImageTurn>,
    ) -> Result<StepEntry, EngineError> {
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
        if let Some(previous) = turn.as_ref().and_then(|t| t.previous.clone()) {
            // Ended either way once the one before is done with the image.
            let _ = previous.await;
        }
        self.ensure_image(spec, step, cancel, &mut preamble).await?;
        if let Some(turn) = turn {
            let _ = turn.done.send(());
        }
        if cancel.is_cancelled() {
            return Err(cancelled(format!("create of step {:?}", step.name)));
        }
        let options = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        let created = match self.docker.create_container(Some(options), config).await {
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
        if cancel.is_cancelled() {
            return Err(cancelled(format!("create of step {:?}", step.name)));
        }
        Ok(StepEntry::created(created.id, container, preamble))
    }

    /// Attaches to the container's output (and a script step's input: the
    /// attach comes first, so no output is lost) and starts it. A script
    /// step's script then waits for [`release`]. The entry changes only when
    /// both calls succeeded.
    pub(crate) async fn launch(
        &self,
        stage: &StageEntry,
        step: &Step,
        entry: &mut StepEntry,
    ) -> Result<(), EngineError> {
        let target = Target::of(entry);
        let held = step.script.is_some();
        let options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdin(held)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = self
            .docker
            .attach_container(&target.id, Some(options))
            .await
            .map_err(|e| api_error(format!("attach to container {:?}", target.name), e))?;
        // Nobody waits for a detached step: when its output ends before the
        // teardown, its stream says whether the container was removed.
        let end_check = step.detach.then(|| {
            let docker = self.docker.clone();
            let (step, target) = (step.clone(), target.clone());
            let check: logs::EndCheck =
                Box::new(move || async move { removal(&docker, &step, &target).await }.boxed());
            check
        });
        let (output, output_ended) = logs::forward(
            attached.output,
            target.name.clone(),
            stage.torn_down.child_token(),
            end_check,
        );
        self.docker
            .start_container(&target.id, None)
            .await
            .map_err(|e| api_error(format!("start container {:?}", target.name), e))?;
        tracing::debug!(container = %target.name, step = %step.name, held, "started");
        entry.output = Some(output);
        entry.output_ended = Some(output_ended);
        entry.release = held.then_some(attached.input);
        Ok(())
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
}

/// Lets a launched script step's script begin: writes the line its held
/// PID 1 waits for. Nothing to do for other steps.
pub(crate) async fn release(step: &Step, entry: &mut StepEntry) -> Result<(), EngineError> {
    let Some(mut input) = entry.release.take() else {
        return Ok(());
    };
    let written = async {
        input.write_all(b"\n").await?;
        input.flush().await
    }
    .await;
    written.map_err(|e| {
        engine_error(
            EngineErrorKind::Other,
            format!(
                "release the script of step {:?} in container {:?}",
                step.name, entry.name
            ),
        )
        .with_source(e)
    })
}

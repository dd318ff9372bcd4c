//! Pipelining: the next steps' containers are made while the current step
//! runs. A step's image, environment and mounts are known once the stage is
//! compiled, so after `setup`, and after each step's `create`, the engine
//! makes the following steps (its lookahead,
//! [`DockerEngine::with_lookahead`](crate::DockerEngine::with_lookahead)) in
//! the background: the image made
//! present, the container created, and a script step's container started
//! held (see [`crate::make`]). Their own `create` and `start` then find the
//! work done.
//!
//! It never changes what a step does: a step made ahead runs only when its
//! `start` releases it; when its `create` is called with a step that is not
//! the one made (a hook amended its environment), the container made ahead
//! is removed and the step made afresh; any failure while making ahead is
//! forgotten, and the step's own `create` makes it again and reports what
//! fails. A step the runtime never runs (skipped) keeps its container until
//! `destroy`. Only steps that run on the stage's network and are not
//! `on-failure` ones are made ahead.

use std::sync::Arc;

use futures_util::FutureExt;
use runnerkit_core::{RunPolicy, Step};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{api_error, is_not_found};
use crate::make::{ImageTurn, StepMaker};
use crate::stage::{Slot, StageEntry, StepEntry, Target, step_key};
use crate::teardown;

/// How many steps ahead the engine makes unless told otherwise.
pub const DEFAULT_LOOKAHEAD: usize = 3;

/// Starts making ahead the steps at `from..from + lookahead` of the stage's
/// spec that were not considered before, are worth it, and whose `create`
/// has not claimed them. Does nothing once the stage is torn down.
pub(crate) fn make_ahead(
    maker: &StepMaker,
    stage: &Arc<StageEntry>,
    from: usize,
    lookahead: usize,
) {
    let steps = &stage.spec.steps;
    let end = from.saturating_add(lookahead).min(steps.len());
    let mut ahead = stage.ahead();
    // Checked under the lock `destroy` takes after it fired the token: a
    // task spawned here is one `destroy` waits for.
    if stage.torn_down.is_cancelled() {
        return;
    }
    for step in steps.iter().take(end).skip(ahead.considered.max(from)) {
        if !worth_making_ahead(step) {
            continue;
        }
        if !ahead.slots.contains_key(step_key(step)) {
            let (done, turn) = oneshot::channel();
            let previous = ahead.image_turns.insert(step.image.clone(), turn.shared());
            let turn = ImageTurn { previous, done };
            let task = make_one(maker.clone(), Arc::clone(stage), step.clone(), turn);
            let task = Slot::Making(stage.background.spawn(task));
            ahead.slots.insert(step_key(step).to_owned(), task);
        }
    }
    ahead.considered = ahead.considered.max(end);
}

/// For `create`: the step as made ahead, if it was. Claims the step either
/// way, so that it is not made ahead once its `create` has begun.
pub(crate) fn claim(stage: &StageEntry, step: &Step) -> Option<JoinHandle<Option<StepEntry>>> {
    let mut ahead = stage.ahead();
    match ahead.slots.insert(step_key(step).to_owned(), Slot::Claimed) {
        Some(Slot::Making(task)) => Some(task),
        _ => None,
    }
}

/// Whether the step made ahead from the stage's spec is `step`, the one
/// `create` was called with.
pub(crate) fn made_as(stage: &StageEntry, step: &Step) -> bool {
    stage
        .position(step)
        .is_some_and(|index| stage.spec.steps[index] == *step)
}

/// Removes `target`'s container (killed if running, with its anonymous
/// volumes); gone already is success.
pub(crate) async fn remove(
    maker: &StepMaker,
    target: &Target,
) -> Result<(), runnerkit_core::EngineError> {
    match teardown::remove_container(&maker.docker, &target.id).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api_error(format!("remove container {:?}", target.name), e)),
    }
}

/// Steps whose container can be made before the runtime asks: on the
/// stage's network (a `container:` network mode needs its peer running),
/// with an image, and likely to run.
fn worth_making_ahead(step: &Step) -> bool {
    step.network_mode.is_empty()
        && !step.image.is_empty()
        && step.run_policy != RunPolicy::OnFailure
}

/// Makes one step ahead: creates its container and, for a script step,
/// starts it held. `None` when the create failed (the step's own `create`
/// tries again); a failed start leaves the container created for `start`
/// to try again.
async fn make_one(
    maker: StepMaker,
    stage: Arc<StageEntry>,
    step: Step,
    turn: ImageTurn,
) -> Option<StepEntry> {
    let cancel = stage.torn_down.clone();
    let made = maker
        .create(&stage.spec, &step, &stage, &cancel, Some(turn))
        .await;
    let mut entry = match made {
        Ok(entry) => entry,
        Err(e) => {
            tracing::debug!(step = %step.name, error = %e.to_chain_string(), "could not make the step ahead");
            return None;
        }
    };
    if step.script.is_some()
        && !cancel.is_cancelled()
        && let Err(e) = maker.launch(&stage, &step, &mut entry).await
    {
        tracing::debug!(step = %step.name, error = %e.to_chain_string(), "could not start the step ahead");
    }
    Some(entry)
}

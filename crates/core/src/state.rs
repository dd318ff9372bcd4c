//! The live state of a stage and the snapshots hooks read.
//!
//! The runtime owns a [`StateWriter`]; hooks get a [`State`], a cheap,
//! read-only handle onto the same data. Reading never blocks the runtime for
//! long: each accessor takes one short lock and returns an owned copy, so what
//! a hook holds is consistent (taken at one instant) and never changes under it.
//! A full [`Snapshot`] costs one copy of every step, so it is only built when a
//! hook asks for one; the per-step events hand over just that step's state.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::Status;

/// The state of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepState {
    /// Position of the step in the spec (and in [`Snapshot::steps`]).
    pub index: usize,
    /// The step's name.
    pub name: String,
    /// Where it is in its life.
    pub status: Status,
    /// Exit code once finished: 137 when OOM-killed or killed by a
    /// cancellation, 255 for an engine error.
    pub exit_code: i32,
    /// The kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// A non-zero exit does not fail the stage (`failure: ignore`).
    pub errignore: bool,
    /// Started and not waited for (a service or detached step).
    pub detached: bool,
    /// When it started.
    pub started: Option<SystemTime>,
    /// When it finished (or was skipped).
    pub stopped: Option<SystemTime>,
    /// Why it errored, was killed or skipped, when there is something to say.
    ///
    /// Written by the runtime already masked with the stage's masked values
    /// ([`Spec::masked_values`](crate::Spec::masked_values)), whether the text
    /// came from the engine, a hook or the runtime itself: show or send it as
    /// it is.
    pub error: Option<String>,
    /// Why a step that did not run was skipped (`an earlier failure`,
    /// `exit 78`, `cancelled`, ...); `None` for a step that ran.
    ///
    /// For people and local tools only: unlike [`error`](Self::error) it is
    /// not reported to a CI server, so a skip does not read as a problem
    /// there. Written once, by the runtime, masked like `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StepState {
    /// A pending step.
    pub fn pending(index: usize, name: impl Into<String>) -> Self {
        Self {
            index,
            name: name.into(),
            status: Status::Pending,
            exit_code: 0,
            oom_killed: false,
            errignore: false,
            detached: false,
            started: None,
            stopped: None,
            error: None,
            reason: None,
        }
    }

    /// True when this step makes the stage count as failed: an error (even
    /// ignored), or a failure or kill without `errignore`. A detached step
    /// that exited non-zero (`failure`) does not: a service's exit is
    /// reported, not judged, as in Drone.
    pub fn fails_stage(&self) -> bool {
        match self.status {
            Status::Error => true,
            Status::Failure if self.detached => false,
            Status::Failure | Status::Killed => !self.errignore,
            _ => false,
        }
    }

    /// How long it ran, once it has finished.
    pub fn duration(&self) -> Option<std::time::Duration> {
        let (start, stop) = (self.started?, self.stopped?);
        Some(stop.duration_since(start).unwrap_or_default())
    }
}

/// The state of the stage as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageState {
    /// Pending until the runtime starts, running, then one of success,
    /// failure, error or killed.
    pub status: Status,
    /// Exit code: 0, 1 for a failure, 137 killed, 255 error.
    pub exit_code: i32,
    /// When it started.
    pub started: Option<SystemTime>,
    /// When it finished.
    pub stopped: Option<SystemTime>,
    /// Why it errored or was killed.
    ///
    /// Already masked with the stage's masked values, like
    /// [`StepState::error`].
    pub error: Option<String>,
}

/// An owned, consistent copy of a stage's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stage.
    pub stage: StageState,
    /// Every step, in spec order.
    pub steps: Vec<StepState>,
}

impl Snapshot {
    /// A pending stage with the given steps.
    pub fn new(steps: Vec<StepState>) -> Self {
        Self {
            stage: StageState::default(),
            steps,
        }
    }

    /// True once a step failed the stage or the stage itself failed.
    pub fn failed(&self) -> bool {
        self.stage.status.is_failed() || self.steps.iter().any(StepState::fails_stage)
    }

    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// A read-only handle onto a stage's live state, given to hooks.
///
/// Cloning is cheap (an `Arc`). Every accessor returns an owned copy taken
/// under one lock.
#[derive(Debug, Clone)]
pub struct State {
    inner: Arc<Mutex<Snapshot>>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic elsewhere while the lock was held leaves the data as it was
        // written so far, which is still the best account of the stage.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A full, consistent copy of the stage and every step.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// The stage's own state.
    pub fn stage(&self) -> StageState {
        self.lock().stage.clone()
    }

    /// The state of the step at `index`.
    pub fn step(&self, index: usize) -> Option<StepState> {
        self.lock().steps.get(index).cloned()
    }

    /// True once a step failed the stage or the stage itself failed.
    pub fn failed(&self) -> bool {
        self.lock().failed()
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.lock().steps.len()
    }

    /// True when the stage has no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The writing side of a [`State`], held by whoever runs the stage.
#[derive(Debug)]
pub struct StateWriter {
    state: State,
}

impl StateWriter {
    /// Starts tracking `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            state: State {
                inner: Arc::new(Mutex::new(snapshot)),
            },
        }
    }

    /// A read-only handle for hooks.
    pub fn reader(&self) -> State {
        self.state.clone()
    }

    /// Changes the state under the lock and returns what `f` returns. Keep
    /// `f` short: readers wait for it.
    pub fn update<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        f(&mut self.state.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_updates_but_own_their_copies() {
        let w = StateWriter::new(Snapshot::new(vec![StepState::pending(0, "a")]));
        let r = w.reader();
        let before = r.snapshot();
        w.update(|s| s.steps[0].status = Status::Running);
        assert_eq!(before.steps[0].status, Status::Pending);
        assert_eq!(r.step(0).unwrap().status, Status::Running);
    }

    #[test]
    fn ignored_failures_do_not_fail_the_stage_but_errors_do() {
        let mut s = StepState::pending(0, "a");
        s.status = Status::Failure;
        s.errignore = true;
        assert!(!s.fails_stage());
        s.status = Status::Error;
        assert!(s.fails_stage());
    }
}

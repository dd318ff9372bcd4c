//! What the engine remembers of a stage and its steps between calls.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use futures_util::future::Shared;
use runnerkit_core::{CancellationToken, Spec, Step};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::labels::StageNames;
use crate::logs::Chunk;

/// A stage run: from `setup` until a `destroy` that removed everything
/// (kept after a failed one, so that a later `destroy` still knows the run's
/// token).
pub(crate) struct StageEntry {
    /// The run's object names and token, drawn by `setup`.
    pub(crate) names: StageNames,
    /// The stage as `setup` saw it: what containers made ahead are made of.
    pub(crate) spec: Arc<Spec>,
    /// Per step key, the step's index in `spec.steps`.
    order: HashMap<String, usize>,
    /// The id of the stage's network, once `setup` created it. Steps join
    /// the network by id, which nothing else can share.
    pub(crate) network: OnceLock<String>,
    /// Fired by `destroy`: ends every output copy of the stage and stops
    /// making steps ahead.
    pub(crate) torn_down: CancellationToken,
    /// Per step key, the steps whose `create` has returned.
    pub(crate) steps: Mutex<HashMap<String, StepEntry>>,
    /// Per step key, the steps made ahead of their `create` or claimed by
    /// it (see [`crate::ahead`]).
    pub(crate) ahead: Mutex<Ahead>,
    /// Every task making a step ahead or removing an ended step's
    /// container: `destroy` waits for them before it lists the stage's
    /// objects, so that no container appears (or is being removed) after
    /// the listing.
    pub(crate) background: TaskTracker,
}

impl StageEntry {
    pub(crate) fn new(names: StageNames, spec: Arc<Spec>) -> Self {
        let order = spec
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| (step_key(step).to_owned(), index))
            .collect();
        Self {
            names,
            spec,
            order,
            network: OnceLock::new(),
            torn_down: CancellationToken::new(),
            steps: Mutex::new(HashMap::new()),
            ahead: Mutex::new(Ahead::default()),
            background: TaskTracker::new(),
        }
    }

    /// The index of `step` in the stage's spec.
    pub(crate) fn position(&self, step: &Step) -> Option<usize> {
        self.order.get(step_key(step)).copied()
    }

    /// The steps map, whoever panicked while holding it.
    pub(crate) fn steps(&self) -> std::sync::MutexGuard<'_, HashMap<String, StepEntry>> {
        self.steps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lookahead's bookkeeping, whoever panicked while holding it.
    pub(crate) fn ahead(&self) -> std::sync::MutexGuard<'_, Ahead> {
        self.ahead.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which steps are made ahead of their `create`, or were claimed by it.
#[derive(Default)]
pub(crate) struct Ahead {
    /// Per step key.
    pub(crate) slots: HashMap<String, Slot>,
    /// The index in the spec's steps before which every step has been
    /// considered for making ahead: each is considered once.
    pub(crate) considered: usize,
    /// Per image, the end of the last turn at making it present (see
    /// [`ImageTurn`](crate::make::ImageTurn)).
    pub(crate) image_turns: HashMap<String, Shared<oneshot::Receiver<()>>>,
}

/// A step's place in the lookahead.
pub(crate) enum Slot {
    /// Being made (or made) ahead; its `create` takes the result. `None`
    /// when making it failed: `create` then makes it as if never tried, and
    /// reports what fails.
    Making(JoinHandle<Option<StepEntry>>),
    /// Its `create` came first (or took the result): never made ahead.
    Claimed,
}

/// A step's container between calls.
pub(crate) struct StepEntry {
    /// The container's id: what every call after `create` addresses, so
    /// that a container put in its place under its name is never touched.
    pub(crate) container: String,
    /// The container's name, for messages.
    pub(crate) name: String,
    /// Pull progress (and the health wait's lines), yielded before the
    /// container's output.
    pub(crate) preamble: Vec<Bytes>,
    /// Whether the step's `start` succeeded: only then may `tail` take the
    /// output.
    pub(crate) started: bool,
    /// The buffered output, from the launch until `tail` takes it.
    pub(crate) output: Option<mpsc::UnboundedReceiver<Chunk>>,
    /// Fired once the output copy has ended: the container's output is all
    /// read, or nobody reads it any more.
    pub(crate) output_ended: Option<CancellationToken>,
    /// A launched script step's input: the line that releases its script.
    pub(crate) release: Option<Pin<Box<dyn AsyncWrite + Send>>>,
}

impl StepEntry {
    /// Whether the container was attached to and started (maybe ahead):
    /// the launch is what sets up the output copy.
    pub(crate) fn launched(&self) -> bool {
        self.output_ended.is_some()
    }

    pub(crate) fn created(container: String, name: String, preamble: Vec<Bytes>) -> Self {
        Self {
            container,
            name,
            preamble,
            started: false,
            output: None,
            output_ended: None,
            release: None,
        }
    }
}

/// A step's container: the id every call uses, the name messages show.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) id: String,
    pub(crate) name: String,
}

impl Target {
    pub(crate) fn of(entry: &StepEntry) -> Self {
        Self {
            id: entry.container.clone(),
            name: entry.name.clone(),
        }
    }
}

/// The key a step's bookkeeping is filed under: its id, else its name.
pub(crate) fn step_key(step: &Step) -> &str {
    if step.id.is_empty() {
        &step.name
    } else {
        &step.id
    }
}

//! The [`Hook`] contract: what observes a stage as it runs.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{LineRef, Lines, State, StepLog, StepState};

/// What [`Hook::before_each`] asks the runtime to do with a step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StepDecision {
    /// Run it.
    #[default]
    Run,
    /// Run it with these variables set in its environment, replacing those of
    /// the same name: values that are only known once the stage is under way
    /// (Drone's `DRONE_BUILD_STATUS` as an `on-failure` step starts). When
    /// several hooks answer so, their variables are merged, a later hook's
    /// winning.
    RunWith(BTreeMap<String, String>),
    /// Do not run it: it ends `skipped` and its dependents go on.
    Skip,
}

/// Observes one stage as the runtime runs it: reporting to a server, printing
/// to a terminal, collecting metrics. Every method has a no-op default, so a
/// hook implements only what it needs.
///
/// # Who calls what, when
///
/// The runtime calls, for one stage:
///
/// 1. [`before`](Hook::before) once, when the stage starts, before `setup`.
/// 2. For each step that is about to run: [`before_each`](Hook::before_each)
///    (the step is `running`; the hook may still skip it, or add variables
///    to its environment), then
///    [`got_lines`](Hook::got_lines) for each batch of log lines in order
///    (by default, [`got_line`](Hook::got_line) for each line), then,
///    for a hook that [wants the log](Hook::wants_log),
///    [`got_logs`](Hook::got_logs) once with the whole log, then
///    [`after_each`](Hook::after_each) with the final status.
///    A step skipped by its run policy gets only `after_each` (status
///    `skipped`). Steps skipped because of a cancellation or exit code 78,
///    and steps never reached, get no per-step call: they appear in the
///    final state given to `after`.
///    Detached steps get `got_logs` and `after_each` when their output ended
///    (at the latest in the teardown),
///    once their output has ended.
/// 3. [`after`](Hook::after) once, last, with every step final, after the
///    engine tore the stage down.
///
/// Calls for different steps may be concurrent (steps run in parallel), so
/// a hook is `Send + Sync` and synchronises itself. Calls for one step are
/// never concurrent and arrive in the order above. With several hooks, each
/// event goes to every hook in registration order.
///
/// The [`State`] handle reads the stage's live state; the [`StepState`] given
/// with a per-step event is an owned copy taken when the event happened.
///
/// # Masking
///
/// Every text a hook receives is already masked with the stage's masked
/// values ([`Spec::masked_values`](crate::Spec::masked_values)): log lines
/// (the runtime's own notes among them), each step's and the stage's error
/// (an engine's, a hook's or the runtime's message), in the per-step
/// [`StepState`] and in every snapshot of the [`State`]. A hook shows or
/// sends them as they are and masks nothing on its own; only text it gets
/// from elsewhere (not from the runtime) is its own business.
///
/// # Errors and panics
///
/// An error (or a panic) from `before`, `before_each`, `got_logs` or
/// `after_each` means the hook can no longer follow the stage (e.g. the
/// server answered "this stage was taken over", or a log could not be
/// stored): no new step starts, pending steps end `skipped`, and the stage
/// ends `error` with the hook's message (steps already running finish). An
/// error from `after` is logged and kept in the stage's error if it has none.
/// `got_lines` and `got_line` cannot fail; a panic in them is logged and the
/// batch goes on to the other hooks. Each event still reaches every hook
/// when one of them failed.
///
/// # Keeping the log
///
/// The runtime keeps a step's whole log only when a hook asks for it with
/// [`wants_log`](Hook::wants_log): then it keeps it compactly, moves it to a
/// temporary file past a memory bound, and gives it to that hook's
/// [`got_logs`](Hook::got_logs). Otherwise a log streams through the runtime
/// in constant memory, whatever its size.
#[async_trait]
pub trait Hook: Send + Sync {
    /// The stage is starting.
    async fn before(&self, _state: &State) -> Result<(), HookError> {
        Ok(())
    }

    /// `step` is about to run (its status is already `running` and `started`
    /// is set), before the engine creates it. Return [`StepDecision::Skip`]
    /// to skip it instead, or [`StepDecision::RunWith`] to add variables to
    /// its environment.
    async fn before_each(
        &self,
        _state: &State,
        _step: &StepState,
    ) -> Result<StepDecision, HookError> {
        Ok(StepDecision::Run)
    }

    /// `step` has reached its final status.
    async fn after_each(&self, _state: &State, _step: &StepState) -> Result<(), HookError> {
        Ok(())
    }

    /// The stage has ended and been torn down; `state` is final.
    async fn after(&self, _state: &State) -> Result<(), HookError> {
        Ok(())
    }

    /// Whether this hook wants each step's whole log given to
    /// [`got_logs`](Hook::got_logs). Asked once, when the hook is added to
    /// the runtime; the answer holds for every stage it runs.
    fn wants_log(&self) -> bool {
        false
    }

    /// A batch of `step`'s log lines, already masked, in order: the lines one
    /// chunk of the step's output completed. Batches of one step come one at
    /// a time and in order, numbered on from the last.
    ///
    /// Called on the log path, so it must be quick and must not block: a
    /// hook that reports to a server copies the lines it needs and sends
    /// them from a task of its own. This is why it is not `async`. The
    /// default calls [`got_line`](Hook::got_line) for each line, for a hook
    /// that takes one line at a time.
    fn got_lines(&self, state: &State, step: &StepState, lines: Lines<'_>) {
        for line in lines {
            self.got_line(state, step, line);
        }
    }

    /// One line of `step`'s log, already masked, in order (from the default
    /// [`got_lines`](Hook::got_lines)). Quick and non-blocking, as
    /// `got_lines`.
    fn got_line(&self, _state: &State, _step: &StepState, _line: LineRef<'_>) {}

    /// `step`'s whole log, once, after its output ended and before
    /// [`after_each`](Hook::after_each). Called only on a hook that
    /// [wants the log](Hook::wants_log).
    async fn got_logs(
        &self,
        _state: &State,
        _step: &StepState,
        _log: &StepLog,
    ) -> Result<(), HookError> {
        Ok(())
    }
}

/// A hook could not do its job; the message is shown as the stage's error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HookError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }
}

//! Fan-out of one event to every hook, with panics caught.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use runnerkit_core::{Hook, HookError, Lines, State, StepDecision, StepLog, StepState};

/// The hooks of a runtime, in registration order. Each event goes to every
/// hook even when an earlier one failed; the first failure (an error or a
/// panic, as text) is returned.
#[derive(Clone, Default)]
pub(crate) struct HookSet {
    hooks: Vec<Arc<dyn Hook>>,
    /// The hooks that want each step's whole log, by their answer to
    /// `wants_log` when they were added.
    keepers: Vec<Arc<dyn Hook>>,
}

impl std::fmt::Debug for HookSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HookSet({} hooks, {} keep logs)",
            self.hooks.len(),
            self.keepers.len()
        )
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Awaits a hook call, turning an error or a panic into text.
async fn guarded<T>(
    event: &str,
    fut: impl std::future::Future<Output = Result<T, HookError>>,
) -> Result<T, String> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(event, error = %e, "hook failed");
            Err(e.to_string())
        }
        Err(panic) => {
            let msg = format!("a hook panicked in {event}: {}", panic_message(&*panic));
            tracing::error!(event, "{msg}");
            Err(msg)
        }
    }
}

impl HookSet {
    pub(crate) fn push(&mut self, hook: Arc<dyn Hook>) {
        let wants_log = std::panic::catch_unwind(AssertUnwindSafe(|| hook.wants_log()))
            .unwrap_or_else(|panic| {
                tracing::error!("a hook panicked in wants_log: {}", panic_message(&*panic));
                false
            });
        if wants_log {
            self.keepers.push(hook.clone());
        }
        self.hooks.push(hook);
    }

    /// Whether any hook wants steps' whole logs kept.
    pub(crate) fn wants_log(&self) -> bool {
        !self.keepers.is_empty()
    }

    pub(crate) async fn before(&self, state: &State) -> Result<(), String> {
        let mut first = Ok(());
        for h in &self.hooks {
            let r = guarded("before", h.before(state)).await;
            first = first.and(r);
        }
        first
    }

    /// Skip wins over run; an error wins over both; the variables of every
    /// `RunWith` are merged, a later hook's winning.
    pub(crate) async fn before_each(
        &self,
        state: &State,
        step: &StepState,
    ) -> Result<StepDecision, String> {
        let mut decision = Ok(StepDecision::Run);
        for h in &self.hooks {
            let r = guarded("before_each", h.before_each(state, step)).await;
            decision = match (decision, r) {
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                (Ok(StepDecision::Skip), Ok(_)) | (Ok(_), Ok(StepDecision::Skip)) => {
                    Ok(StepDecision::Skip)
                }
                (Ok(StepDecision::RunWith(mut env)), Ok(StepDecision::RunWith(more))) => {
                    env.extend(more);
                    Ok(StepDecision::RunWith(env))
                }
                (Ok(StepDecision::RunWith(env)), Ok(StepDecision::Run))
                | (Ok(StepDecision::Run), Ok(StepDecision::RunWith(env))) => {
                    Ok(StepDecision::RunWith(env))
                }
                (Ok(StepDecision::Run), Ok(StepDecision::Run)) => Ok(StepDecision::Run),
            };
        }
        decision
    }

    pub(crate) async fn after_each(&self, state: &State, step: &StepState) -> Result<(), String> {
        let mut first = Ok(());
        for h in &self.hooks {
            let r = guarded("after_each", h.after_each(state, step)).await;
            first = first.and(r);
        }
        first
    }

    pub(crate) async fn after(&self, state: &State) -> Result<(), String> {
        let mut first = Ok(());
        for h in &self.hooks {
            let r = guarded("after", h.after(state)).await;
            first = first.and(r);
        }
        first
    }

    /// To the hooks that want the log only.
    pub(crate) async fn got_logs(
        &self,
        state: &State,
        step: &StepState,
        log: &StepLog,
    ) -> Result<(), String> {
        let mut first = Ok(());
        for h in &self.keepers {
            let r = guarded("got_logs", h.got_logs(state, step, log)).await;
            first = first.and(r);
        }
        first
    }

    /// A panic is logged and the batch goes on to the other hooks.
    pub(crate) fn got_lines(&self, state: &State, step: &StepState, lines: Lines<'_>) {
        for h in &self.hooks {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| h.got_lines(state, step, lines)));
            if let Err(panic) = r {
                tracing::error!(step = %step.name, "a hook panicked in got_lines: {}", panic_message(&*panic));
            }
        }
    }
}

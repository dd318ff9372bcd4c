//! [`Runtime`]: runs one spec on one engine, with hooks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use runnerkit_core::{
    CancellationToken, Engine, ErrorPolicy, Hook, RunPolicy, Snapshot, Spec, StateWriter, Status,
    StepState,
};
use tokio::task::JoinHandle;

use crate::hooks::{HookSet, panic_message};
use crate::logs::Masker;
use crate::plan::Plan;
use crate::step::{
    Action, DetachedEnd, StageContext, StepOutput, StepReport, finish_detached, human, run_step,
};
use crate::{Error, RuntimeConfig};

/// Runs stages: one [`Spec`] at a time per call, on one [`Engine`], telling
/// every [`Hook`] what happens.
///
/// A `Runtime` is cheap to share: `run` takes `&self`, and one runtime may
/// run many stages at once (each call has its own state).
///
/// # What `run` guarantees
///
/// - The spec is checked first (duplicate names, unknown dependencies,
///   cycles); a refused spec returns [`Error`] and nothing runs, no hook is
///   called, the engine is not touched.
/// - Otherwise: `setup` once, steps in declaration order (serial) or as a
///   DAG, and `destroy` exactly once at the end, whatever happened (step
///   failures, engine errors and panics, hook errors and panics, cancellation,
///   timeouts), with its own deadline and a fresh token.
/// - Every step ends in a final status; the returned [`Snapshot`] is the
///   final state, the same one the `after` hooks saw.
/// - Every text in the state and the logs (lines, step and stage errors,
///   whoever wrote them: the engine, a hook, the runtime) is masked with the
///   spec's [`masked_values`](Spec::masked_values), so no consumer has to
///   mask what the runtime hands it.
///
/// # Cancel safety
///
/// Cancel the token to stop a stage: running steps are killed, the rest
/// skipped, and the engine torn down. Dropping the future instead aborts the
/// step tasks without tearing down the engine's resources.
#[derive(Clone)]
pub struct Runtime {
    engine: Arc<dyn Engine>,
    hooks: HookSet,
    config: RuntimeConfig,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("engine", &self.engine.name())
            .field("hooks", &self.hooks)
            .field("config", &self.config)
            .finish()
    }
}

/// Why the stage stopped starting steps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// The caller cancelled.
    Cancelled,
    /// The stage timeout passed.
    TimedOut,
    /// A fail-fast step (named) failed: treated like a cancellation.
    FailFast(String),
    /// A step exited 78: the rest is skipped and the stage passes.
    Exit78,
    /// A hook could not follow the stage.
    Hook(String),
    /// `setup` failed.
    Setup(String),
}

impl Stop {
    /// Why a step that had not started when the stage stopped is skipped:
    /// the `reason` of its state.
    fn skip_reason(&self) -> String {
        match self {
            Stop::Cancelled => "cancelled".to_owned(),
            Stop::TimedOut => "the stage timed out".to_owned(),
            Stop::FailFast(step) => format!("fail-fast: {step} failed"),
            Stop::Exit78 => "exit 78".to_owned(),
            Stop::Hook(_) => "a hook failed".to_owned(),
            Stop::Setup(_) => "the engine's setup failed".to_owned(),
        }
    }
}

impl Runtime {
    /// A runtime for `engine`, with no hooks and default settings.
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Self {
            engine,
            hooks: HookSet::default(),
            config: RuntimeConfig::default(),
        }
    }

    /// Adds a hook; events reach hooks in the order they were added.
    pub fn with_hook(mut self, hook: Arc<dyn Hook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Replaces the settings.
    pub fn with_config(mut self, config: RuntimeConfig) -> Self {
        self.config = config;
        self
    }

    /// The settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Runs every step of `spec` and returns the final state.
    pub async fn run(&self, spec: Arc<Spec>, cancel: CancellationToken) -> Result<Snapshot, Error> {
        let plan = Plan::new(&spec)?;
        Ok(self.execute(spec, plan, 0, cancel).await)
    }

    /// Runs a serial spec from the step at index `start` of `spec.steps`;
    /// earlier steps are reported `skipped`.
    pub async fn resume(
        &self,
        spec: Arc<Spec>,
        start: usize,
        cancel: CancellationToken,
    ) -> Result<Snapshot, Error> {
        if !spec.is_serial() {
            return Err(Error::ResumeNotSerial);
        }
        let plan = Plan::new(&spec)?;
        if start >= plan.len() {
            return Err(Error::ResumeOutOfRange {
                start,
                len: plan.len(),
            });
        }
        Ok(self.execute(spec, plan, start, cancel).await)
    }

    async fn execute(
        &self,
        spec: Arc<Spec>,
        plan: Plan,
        start: usize,
        cancel: CancellationToken,
    ) -> Snapshot {
        let steps = spec
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let mut st = StepState::pending(i, step.name.clone());
                st.errignore = step.error_policy == ErrorPolicy::Ignore;
                st.detached = step.detach;
                st
            })
            .collect();
        let writer = StateWriter::new(Snapshot::new(steps));
        let state = writer.reader();
        let ctx = Arc::new(StageContext {
            masker: Arc::new(Masker::new(spec.masked_values())),
            spec,
            engine: self.engine.clone(),
            hooks: self.hooks.clone(),
            writer,
            state,
            config: self.config.clone(),
            token: cancel.child_token(),
            tearing_down: CancellationToken::new(),
            stop_reading: CancellationToken::new(),
        });
        let stage_started = SystemTime::now();
        ctx.writer.update(|s| {
            s.stage.status = Status::Running;
            s.stage.started = Some(stage_started);
        });

        let mut stop = None;
        if let Err(e) = ctx.hooks.before(&ctx.state).await {
            stop = Some(Stop::Hook(e));
        }
        if stop.is_none() {
            let setup = AssertUnwindSafe(ctx.engine.setup(&ctx.spec, &ctx.token))
                .catch_unwind()
                .await;
            match setup {
                Ok(Ok(())) => {}
                Ok(Err(e)) => stop = Some(Stop::Setup(e.to_chain_string())),
                Err(p) => {
                    stop = Some(Stop::Setup(format!(
                        "the engine panicked in setup: {}",
                        panic_message(&*p)
                    )))
                }
            }
        }
        let mut detached = Vec::new();
        if stop.is_none() {
            stop = Scheduler::new(&ctx, &plan, start)
                .run(&cancel, &mut detached)
                .await;
        }

        ctx.tearing_down.cancel();
        self.destroy(&ctx).await;
        for (index, handle) in detached {
            self.drain_detached(&ctx, index, handle).await;
        }
        finalize(&ctx, stop.as_ref());
        if let Err(e) = ctx.hooks.after(&ctx.state).await {
            ctx.writer.update(|s| {
                if s.stage.error.is_none() {
                    ctx.write_masked(&mut s.stage.error, &e);
                }
            });
        }
        ctx.state.snapshot()
    }

    /// Tears the stage down with a fresh token and its own deadline.
    async fn destroy(&self, ctx: &StageContext) {
        let token = CancellationToken::new();
        let deadline = self.config.destroy_timeout;
        let destroy = AssertUnwindSafe(ctx.engine.destroy(&ctx.spec, &token)).catch_unwind();
        let problem = match tokio::time::timeout(deadline, destroy).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(format!("teardown failed: {}", e.to_chain_string())),
            Ok(Err(p)) => Some(format!(
                "the engine panicked in destroy: {}",
                panic_message(&*p)
            )),
            Err(_) => {
                token.cancel();
                Some(format!(
                    "teardown did not finish within {}",
                    human(deadline)
                ))
            }
        };
        if let Some(problem) = problem {
            tracing::error!(spec = %ctx.spec.id, "{}", ctx.masker.mask_str(&problem));
            ctx.writer.update(|s| {
                if s.stage.error.is_none() {
                    ctx.write_masked(&mut s.stage.error, &problem);
                }
            });
        }
    }

    /// Waits for a detached step's output to end (the engine's teardown ends
    /// it); past the drain timeout, makes its pump stop reading and report
    /// the step with what it read. A pump that does not finish within a
    /// second drain timeout (a hook that hangs) is given up on, and the
    /// step reported without its log.
    async fn drain_detached(&self, ctx: &StageContext, index: usize, mut handle: JoinHandle<()>) {
        let drain = self.config.drain_timeout;
        if tokio::time::timeout(drain, &mut handle).await.is_ok() {
            return;
        }
        tracing::warn!(
            step = index,
            "a detached step's output did not end after teardown; stopped reading it"
        );
        ctx.stop_reading.cancel();
        if tokio::time::timeout(drain, &mut handle).await.is_err() {
            handle.abort();
            tracing::warn!(
                step = index,
                "a detached step's log was not handed on in time"
            );
            finish_detached(ctx, index, &StepOutput::new(ctx), DetachedEnd::TornDown).await;
        }
    }
}

/// The coordinator of one stage's steps: readiness, policies, limits, and
/// stop conditions.
///
/// Step futures are polled by the coordinator itself (a `FuturesUnordered`)
/// rather than spawned: a step then starts and ends without a cross-thread
/// wake-up, which on a multi-threaded runtime costs tens of microseconds per
/// step of a chain. Engines do their I/O in their own tasks; only log
/// splitting and masking share this task, and they run at hundreds of MB/s.
struct Scheduler<'a> {
    ctx: &'a Arc<StageContext>,
    plan: &'a Plan,
    /// Per dependency group, members not finished yet.
    remaining: Vec<u32>,
    /// Ready steps, lowest index first so ties start in declaration order.
    ready: BinaryHeap<Reverse<u32>>,
    tasks: FuturesUnordered<BoxFuture<'static, StepReport>>,
    failed: bool,
    stop: Option<Stop>,
}

impl<'a> Scheduler<'a> {
    fn new(ctx: &'a Arc<StageContext>, plan: &'a Plan, start: usize) -> Self {
        let remaining = (0..plan.groups() as u32)
            .map(|g| plan.group_size(g))
            .collect();
        let mut s = Self {
            ctx,
            plan,
            remaining,
            ready: BinaryHeap::new(),
            tasks: FuturesUnordered::new(),
            failed: false,
            stop: None,
        };
        for p in 0..plan.len() {
            if p < start {
                // Resumed past it: skipped, and done for its dependents.
                ctx.writer.update(|st| {
                    st.steps[p].status = Status::Skipped;
                    ctx.write_masked(&mut st.steps[p].reason, "before the resume point");
                });
                s.release(p);
            } else if plan.waits_for(p).is_none() {
                s.ready.push(Reverse(p as u32));
            }
        }
        s
    }

    async fn run(
        mut self,
        cancel: &CancellationToken,
        detached: &mut Vec<(usize, JoinHandle<()>)>,
    ) -> Option<Stop> {
        let deadline = self
            .ctx
            .config
            .stage_timeout
            .map(|t| tokio::time::Instant::now() + t);
        let limit = self
            .ctx
            .config
            .concurrency_limit
            .unwrap_or(usize::MAX)
            .max(1);
        loop {
            // A cancellation and a step ending can be ready together; the
            // cancellation must win, or a step could start after it.
            if self.stop.is_none() {
                if cancel.is_cancelled() {
                    self.halt(Stop::Cancelled);
                } else if deadline.is_some_and(|d| d <= tokio::time::Instant::now()) {
                    self.halt(Stop::TimedOut);
                }
            }
            while self.stop.is_none() && self.tasks.len() < limit {
                let Some(Reverse(p)) = self.ready.pop() else {
                    break;
                };
                self.launch(p as usize);
            }
            if self.tasks.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled(), if self.stop.is_none() => self.halt(Stop::Cancelled),
                () = sleep_until(deadline), if self.stop.is_none() => self.halt(Stop::TimedOut),
                Some(done) = self.tasks.next() => self.complete(done, detached),
            }
        }
        self.stop
    }

    fn launch(&mut self, p: usize) {
        let step = &self.ctx.spec.steps[p];
        // The reason is decided here, where the policy is weighed, so that
        // nobody downstream has to guess it back from the statuses.
        let action = match step.run_policy {
            RunPolicy::OnSuccess if self.failed => Action::Skip("an earlier failure"),
            RunPolicy::OnFailure if !self.failed => Action::Skip("on-failure: nothing had failed"),
            _ => Action::Run,
        };
        let ctx = self.ctx.clone();
        self.tasks.push(Box::pin(async move {
            let work = run_step(ctx.clone(), p, action);
            match AssertUnwindSafe(work).catch_unwind().await {
                Ok(report) => report,
                Err(panic) => errored(&ctx, p, &panic_message(&*panic)),
            }
        }));
    }

    fn complete(&mut self, report: StepReport, detached: &mut Vec<(usize, JoinHandle<()>)>) {
        let step = &self.ctx.spec.steps[report.index];
        if let Some(handle) = report.detached {
            detached.push((report.index, handle));
        }
        let fails = match report.status {
            Status::Error => true,
            Status::Failure | Status::Killed => step.error_policy != ErrorPolicy::Ignore,
            _ => false,
        };
        self.failed |= fails;
        if let Some(e) = report.hook_error {
            self.halt(Stop::Hook(e));
        }
        if report.status == Status::Failure && step.error_policy == ErrorPolicy::FailFast {
            self.halt(Stop::FailFast(step.name.clone()));
        }
        if report.status == Status::Success && report.exit_code == 78 {
            self.halt(Stop::Exit78);
        }
        self.release(report.index);
    }

    /// Marks step `p` finished for the steps waiting on it.
    fn release(&mut self, p: usize) {
        for &g in self.plan.member_of(p) {
            let left = &mut self.remaining[g as usize];
            *left -= 1;
            if *left == 0 {
                self.ready
                    .extend(self.plan.waiters(g).iter().map(|&w| Reverse(w)));
            }
        }
    }

    fn halt(&mut self, reason: Stop) {
        if self.stop.is_some() {
            return;
        }
        if matches!(reason, Stop::Cancelled | Stop::TimedOut | Stop::FailFast(_)) {
            self.ctx.token.cancel();
        }
        self.stop = Some(reason);
    }
}

/// Engine and hook panics are caught inside the step; this is the last line
/// of defence against a bug in the step's own code.
fn errored(ctx: &StageContext, index: usize, panic: &str) -> StepReport {
    let msg = format!("the step's task failed: {panic}");
    ctx.finish(index, Status::Error, 255, Some(msg));
    StepReport {
        index,
        status: Status::Error,
        exit_code: 255,
        hook_error: None,
        detached: None,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Gives every step a final status and the stage its outcome: the first step
/// in order that failed the stage decides; else the stop reason; else success.
fn finalize(ctx: &StageContext, stop: Option<&Stop>) {
    let now = SystemTime::now();
    let timeout = ctx.config.stage_timeout.unwrap_or_default();
    // Without a stop every step is launched; "not started" is for the
    // impossible case, rather than a skipped step without a reason.
    let skip_reason = stop.map_or_else(|| "not started".to_owned(), Stop::skip_reason);
    ctx.writer.update(|s| {
        for st in &mut s.steps {
            match st.status {
                Status::Pending => {
                    st.status = Status::Skipped;
                    st.stopped = Some(now);
                    ctx.write_masked(&mut st.reason, &skip_reason);
                }
                Status::Running => {
                    // A detached step whose pump was lost, or a step whose
                    // task could not report: it ended with the stage.
                    st.status = if st.detached {
                        Status::Success
                    } else {
                        Status::Killed
                    };
                    st.exit_code = if st.detached { 0 } else { 137 };
                    st.stopped = Some(now);
                }
                _ => {}
            }
        }
        let stop_message = match stop {
            Some(Stop::Cancelled) => Some("cancelled".to_owned()),
            Some(Stop::TimedOut) => Some(format!("stage timed out after {}", human(timeout))),
            Some(Stop::Hook(e) | Stop::Setup(e)) => Some(e.clone()),
            Some(Stop::FailFast(_) | Stop::Exit78) | None => None,
        };
        // After a fail-fast stop, the steps it killed do not decide the
        // stage: it failed, it was not cancelled. The first step in order
        // that failed on its own does (the fail-fast one, or one before it).
        let fail_fast = match &stop {
            Some(Stop::FailFast(_)) => s
                .steps
                .iter()
                .find(|st| st.fails_stage() && st.status != Status::Killed),
            _ => None,
        };
        let decisive = fail_fast.or_else(|| s.steps.iter().find(|st| st.fails_stage()));
        let (status, exit_code, error) = match (decisive, stop) {
            (Some(st), _) => match st.status {
                Status::Killed => (Status::Killed, 137, st.error.clone().or(stop_message)),
                Status::Error => (Status::Error, 255, st.error.clone()),
                _ => (Status::Failure, st.exit_code.max(1), None),
            },
            (None, Some(Stop::Cancelled | Stop::TimedOut)) => (Status::Killed, 137, stop_message),
            (None, Some(Stop::Hook(_) | Stop::Setup(_))) => (Status::Error, 255, stop_message),
            (None, Some(Stop::FailFast(_) | Stop::Exit78) | None) => (Status::Success, 0, None),
        };
        s.stage.status = status;
        s.stage.exit_code = exit_code;
        s.stage.stopped = Some(now);
        // A teardown problem recorded earlier stays unless there is a cause
        // that matters more.
        if let Some(error) = &error {
            ctx.write_masked(&mut s.stage.error, error);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use runnerkit_core::Step;
    use runnerkit_mock::{MockEngine, StepScript};

    use super::*;

    fn policy(name: &str, run_policy: RunPolicy, error_policy: ErrorPolicy) -> Step {
        Step {
            run_policy,
            error_policy,
            ..Step::named(name)
        }
    }

    async fn reasons(
        engine: MockEngine,
        steps: Vec<Step>,
        cancel: CancellationToken,
    ) -> Vec<(String, Status, Option<String>)> {
        let spec = Arc::new(Spec {
            id: "stage".into(),
            steps,
            ..Spec::default()
        });
        let snap = Runtime::new(Arc::new(engine))
            .run(spec, cancel)
            .await
            .expect("spec accepted");
        snap.steps
            .into_iter()
            .map(|s| (s.name, s.status, s.reason))
            .collect()
    }

    fn row(name: &str, status: Status, reason: Option<&str>) -> (String, Status, Option<String>) {
        (name.to_owned(), status, reason.map(str::to_owned))
    }

    #[tokio::test(start_paused = true)]
    async fn every_skipped_step_says_why_and_no_other_does() {
        let engine = MockEngine::new()
            .with_step("bad", StepScript::exit(2))
            .with_step("done", StepScript::exit(78));
        let fail = ErrorPolicy::Fail;
        let got = reasons(
            engine,
            vec![
                policy("notify", RunPolicy::OnFailure, fail),
                policy("bad", RunPolicy::OnSuccess, fail),
                policy("next", RunPolicy::OnSuccess, fail),
                policy("cleanup", RunPolicy::OnFailure, fail),
                policy("done", RunPolicy::Always, fail),
                policy("after", RunPolicy::Always, fail),
            ],
            CancellationToken::new(),
        )
        .await;
        assert_eq!(
            got,
            [
                row(
                    "notify",
                    Status::Skipped,
                    Some("on-failure: nothing had failed")
                ),
                row("bad", Status::Failure, None),
                row("next", Status::Skipped, Some("an earlier failure")),
                row("cleanup", Status::Success, None),
                row("done", Status::Success, None),
                row("after", Status::Skipped, Some("exit 78")),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn steps_left_by_a_fail_fast_or_a_cancel_say_so() {
        let engine = MockEngine::new().with_step("bad", StepScript::exit(1));
        let got = reasons(
            engine,
            vec![
                policy("bad", RunPolicy::OnSuccess, ErrorPolicy::FailFast),
                policy("rest", RunPolicy::Always, ErrorPolicy::Fail),
            ],
            CancellationToken::new(),
        )
        .await;
        assert_eq!(
            got[1],
            row("rest", Status::Skipped, Some("fail-fast: bad failed"))
        );

        let engine = MockEngine::new().with_step(
            "slow",
            StepScript::exit(0).running_for(Duration::from_secs(60)),
        );
        let cancel = CancellationToken::new();
        let later = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            later.cancel();
        });
        let got = reasons(
            engine,
            vec![Step::named("slow"), Step::named("rest")],
            cancel,
        )
        .await;
        assert_eq!(
            got,
            [
                row("slow", Status::Killed, None),
                row("rest", Status::Skipped, Some("cancelled")),
            ]
        );
    }
}

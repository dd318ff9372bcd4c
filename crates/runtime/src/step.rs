//! One step, from `before_each` to `after_each`, as a task of its own.

use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, ExitState, Lines, LogStream, Spec, State, StateWriter,
    Status, Step, StepDecision, StepLog, StepState,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::RuntimeConfig;
use crate::hooks::{HookSet, panic_message};
use crate::logs::{ChunkReader, LineWriter, Masker, Read};

/// What the stage shares with its step tasks.
pub(crate) struct StageContext {
    pub(crate) spec: Arc<Spec>,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) hooks: HookSet,
    pub(crate) writer: StateWriter,
    pub(crate) state: State,
    pub(crate) masker: Arc<Masker>,
    pub(crate) config: RuntimeConfig,
    /// Cancelled on a stage cancel, timeout or fail-fast.
    pub(crate) token: CancellationToken,
    /// Cancelled when the teardown starts: a detached step's output that
    /// ends before it ended by itself, after it by the teardown.
    pub(crate) tearing_down: CancellationToken,
    /// Cancelled when a detached step's output has not ended within the
    /// drain timeout after the teardown: its pump stops reading and hands
    /// on what it read.
    pub(crate) stop_reading: CancellationToken,
}

/// What the coordinator decided for a step that became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Run,
    /// Skipped by its run policy, for this reason: reported through
    /// `after_each` only.
    Skip(&'static str),
}

/// What a step task tells the coordinator.
pub(crate) struct StepReport {
    pub(crate) index: usize,
    pub(crate) status: Status,
    pub(crate) exit_code: i32,
    /// A hook failed: the stage must stop starting steps.
    pub(crate) hook_error: Option<String>,
    /// A detached step's log pump, still running.
    pub(crate) detached: Option<JoinHandle<()>>,
}

/// How running the step on the engine ended.
enum Ran {
    Exited(ExitState),
    Failed(EngineError),
    Panicked(String),
    /// The engine ignored cancellation past the kill grace.
    Abandoned,
}

/// A step either ran to its end, or is detached and goes on in the background.
enum Executed {
    Ran(Ran),
    Detached(JoinHandle<()>),
}

impl StageContext {
    /// Puts `text` in `slot` (a step's or the stage's error, or a step's
    /// skip reason), masked with the stage's secrets. Every such text enters
    /// the state here and nowhere else, so that hooks, snapshots and
    /// `Runtime::run`'s result only ever hold masked text: an engine's or a
    /// hook's message may quote a command line, a registry login or an
    /// environment, and consumers rely on not having to mask on their own.
    pub(crate) fn write_masked(&self, slot: &mut Option<String>, text: &str) {
        *slot = Some(self.masker.mask_str(text));
    }

    /// Ends step `index` with `status`, `exit_code` and, when there is one,
    /// `error`, and returns its final state.
    pub(crate) fn finish(
        &self,
        index: usize,
        status: Status,
        exit_code: i32,
        error: Option<String>,
    ) -> StepState {
        self.end(index, status, exit_code, error, None)
    }

    /// Ends step `index` as skipped, saying why (and with `error` when a hook
    /// failed), and returns its final state.
    pub(crate) fn skip(&self, index: usize, reason: &str, error: Option<String>) -> StepState {
        self.end(index, Status::Skipped, 0, error, Some(reason))
    }

    /// One update, so no hook ever sees a skipped step without its reason.
    fn end(
        &self,
        index: usize,
        status: Status,
        exit_code: i32,
        error: Option<String>,
        reason: Option<&str>,
    ) -> StepState {
        let now = SystemTime::now();
        self.writer.update(|s| {
            let st = &mut s.steps[index];
            st.status = status;
            st.exit_code = exit_code;
            st.stopped = Some(now);
            if st.started.is_none() {
                st.started = Some(now);
            }
            if let Some(error) = &error {
                self.write_masked(&mut st.error, error);
            }
            if let Some(reason) = reason {
                self.write_masked(&mut st.reason, reason);
            }
            st.clone()
        })
    }
}

/// Runs (or skips) the step at `index` (of the spec, the plan and the state
/// alike).
pub(crate) async fn run_step(ctx: Arc<StageContext>, index: usize, action: Action) -> StepReport {
    let report = |status, exit_code, hook_error| StepReport {
        index,
        status,
        exit_code,
        hook_error,
        detached: None,
    };
    if let Action::Skip(reason) = action {
        let st = ctx.skip(index, reason, None);
        let hook_error = ctx.hooks.after_each(&ctx.state, &st).await.err();
        return report(Status::Skipped, 0, hook_error);
    }
    let started = Instant::now();
    let now = SystemTime::now();
    let running = ctx.writer.update(|s| {
        let st = &mut s.steps[index];
        st.status = Status::Running;
        st.started = Some(now);
        st.clone()
    });
    let amended = match ctx.hooks.before_each(&ctx.state, &running).await {
        Ok(StepDecision::Run) => None,
        Ok(StepDecision::RunWith(environment)) => {
            let step = &ctx.spec.steps[index];
            // The live status variables usually say what the step holds
            // already (nothing failed yet): then the step runs as it is,
            // without a copy of it and its whole environment.
            if environment
                .iter()
                .all(|(name, value)| step.environment.get(name) == Some(value))
            {
                None
            } else {
                let mut step = step.clone();
                step.environment.extend(environment);
                Some(step)
            }
        }
        Ok(StepDecision::Skip) => {
            let st = ctx.skip(index, "skipped by a hook", None);
            let hook_error = ctx.hooks.after_each(&ctx.state, &st).await.err();
            return report(Status::Skipped, 0, hook_error);
        }
        Err(e) => {
            ctx.skip(index, "a hook failed", Some(e.clone()));
            return report(Status::Skipped, 0, Some(e));
        }
    };

    // The rest is boxed so that a launched, not yet polled step stays small:
    // with thousands of ready steps, the bulk of a step's state is allocated
    // only once it really runs (and recycled at once when it is quick).
    Box::pin(run_started(ctx, index, amended, running, started)).await
}

/// The step is running: execute it on the engine and report how it ended.
/// `amended` is the step with the hooks' variables, when they gave any.
async fn run_started(
    ctx: Arc<StageContext>,
    index: usize,
    amended: Option<Step>,
    running: StepState,
    started: Instant,
) -> StepReport {
    let step = amended.as_ref().unwrap_or(&ctx.spec.steps[index]);
    let report = |status, exit_code, hook_error| StepReport {
        index,
        status,
        exit_code,
        hook_error,
        detached: None,
    };
    let token = ctx.token.child_token();
    let limit = step.timeout.or(ctx.config.step_timeout);
    let mut log = StepOutput::new(&ctx);
    let (ran, timed_out) = {
        let work = execute(&ctx, step, &running, &token, started, &mut log);
        let mut work = pin!(AssertUnwindSafe(work).catch_unwind());
        let deadline = async {
            match limit {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut work => (r, false),
            () = deadline => {
                token.cancel();
                (work.await, true)
            }
        }
    };
    let ran = match ran {
        Ok(Executed::Ran(ran)) => ran,
        Ok(Executed::Detached(handle)) => {
            return StepReport {
                detached: Some(handle),
                ..report(Status::Running, 0, None)
            };
        }
        Err(panic) => Ran::Panicked(panic_message(&*panic)),
    };
    log.finish(&ctx, &running, started.elapsed().as_secs());

    let cancelled = token.is_cancelled();
    let oom = matches!(ran, Ran::Exited(exit) if exit.oom_killed);
    let (status, exit_code, error) = match ran {
        _ if timed_out => (
            Status::Killed,
            137,
            Some(format!(
                "step timed out after {}",
                human(limit.unwrap_or_default())
            )),
        ),
        Ran::Abandoned => (
            Status::Killed,
            137,
            Some(format!(
                "the {} engine did not stop the step within {} of its cancellation",
                ctx.engine.name(),
                human(ctx.config.kill_grace)
            )),
        ),
        // Stopped by the cancel yet exited in its own way (a trap, a clean
        // shutdown on SIGTERM): its own exit code tells how.
        Ran::Exited(exit) if cancelled => (Status::Killed, exit.exit_code, None),
        _ if cancelled => (Status::Killed, 137, None),
        Ran::Exited(_) if oom => (
            Status::Failure,
            137,
            Some("killed by the out-of-memory killer".to_owned()),
        ),
        Ran::Exited(exit) if exit.exit_code == 0 || exit.exit_code == 78 => {
            (Status::Success, exit.exit_code, None)
        }
        Ran::Exited(exit) => (Status::Failure, exit.exit_code, None),
        Ran::Failed(e) => (Status::Error, 255, Some(e.to_chain_string())),
        Ran::Panicked(msg) => (
            Status::Error,
            255,
            Some(format!("the {} engine panicked: {msg}", ctx.engine.name())),
        ),
    };
    let mut st = ctx.finish(index, status, exit_code, error);
    if oom {
        st = ctx.writer.update(|s| {
            s.steps[index].oom_killed = true;
            s.steps[index].clone()
        });
    }
    let logs_error = log.hand_over(&ctx, &st).await.err();
    let after_error = ctx.hooks.after_each(&ctx.state, &st).await.err();
    report(status, exit_code, after_error.or(logs_error))
}

/// Create, start, tail and wait; the log pump runs beside `wait`.
async fn execute(
    ctx: &Arc<StageContext>,
    step: &Step,
    running: &StepState,
    token: &CancellationToken,
    started: Instant,
    log: &mut StepOutput,
) -> Executed {
    let engine = &ctx.engine;
    let spec = &ctx.spec;
    let stream = match async {
        engine.create(spec, step, token).await?;
        engine.start(spec, step, token).await?;
        engine.tail(spec, step, token).await
    }
    .await
    {
        Ok(stream) => stream,
        Err(e) => return Executed::Ran(Ran::Failed(e)),
    };
    if step.detach {
        let pump = detached_pump(ctx.clone(), step.clone(), running.clone(), stream, started);
        return Executed::Detached(tokio::spawn(pump));
    }

    let grace = ctx.config.kill_grace;
    let wait = async {
        tokio::select! {
            r = engine.wait(spec, step, token) => Some(r),
            () = async { token.cancelled().await; tokio::time::sleep(grace).await } => None,
        }
    };
    let mut wait = pin!(wait);
    let exit = {
        let mut pump = pin!(pump(ctx, running, stream, started, log, None));
        let mut pumped = false;
        let exit = loop {
            tokio::select! {
                // A read error is in the log; `wait` says how the step ended.
                _ = &mut pump, if !pumped => pumped = true,
                exit = &mut wait => break exit,
            }
        };
        if !pumped
            && tokio::time::timeout(ctx.config.drain_timeout, &mut pump)
                .await
                .is_err()
        {
            tracing::warn!(
                step = %step.name,
                "the log stream did not end within {} after the step exited; the rest is not read",
                human(ctx.config.drain_timeout)
            );
        }
        exit
    };
    Executed::Ran(match exit {
        Some(Ok(exit)) => Ran::Exited(exit),
        Some(Err(e)) => Ran::Failed(e),
        None => Ran::Abandoned,
    })
}

/// A step's output on its way to the hooks: the line writer, and the whole
/// log when a hook wants it kept.
pub(crate) struct StepOutput {
    writer: LineWriter,
    kept: Option<StepLog>,
}

impl StepOutput {
    pub(crate) fn new(ctx: &StageContext) -> Self {
        Self {
            writer: LineWriter::new(ctx.masker.clone(), ctx.config.log_limit),
            kept: ctx
                .hooks
                .wants_log()
                .then(|| StepLog::new(ctx.config.log_memory)),
        }
    }

    fn emitter<'a>(
        ctx: &'a StageContext,
        running: &'a StepState,
        kept: &'a mut Option<StepLog>,
    ) -> impl FnMut(Lines<'_>) + 'a {
        move |lines| {
            ctx.hooks.got_lines(&ctx.state, running, lines);
            if let Some(kept) = kept {
                kept.push(lines);
            }
        }
    }

    fn write(&mut self, ctx: &StageContext, running: &StepState, chunk: &[u8], timestamp: u64) {
        let mut emit = Self::emitter(ctx, running, &mut self.kept);
        self.writer.write(chunk, timestamp, &mut emit);
    }

    /// A line of the runtime's own after what the step printed (masked).
    fn note(&mut self, ctx: &StageContext, running: &StepState, message: &str, timestamp: u64) {
        let mut emit = Self::emitter(ctx, running, &mut self.kept);
        self.writer.note_after(message, timestamp, &mut emit);
    }

    /// The output ended: a held partial line and the limit's note go out.
    pub(crate) fn finish(&mut self, ctx: &StageContext, running: &StepState, timestamp: u64) {
        let mut emit = Self::emitter(ctx, running, &mut self.kept);
        self.writer.finish(timestamp, &mut emit);
    }

    /// The whole log to the hooks that want it, with the step's final state.
    pub(crate) async fn hand_over(&self, ctx: &StageContext, st: &StepState) -> Result<(), String> {
        match &self.kept {
            Some(log) => ctx.hooks.got_logs(&ctx.state, st, log).await,
            None => Ok(()),
        }
    }
}

/// Reads of the stream in a row without it making the pump wait, after
/// which the clock is read again anyway.
const CLOCK_EVERY: u32 = 256;

/// Reads the stream into lines, handing each batch to the hooks as it comes,
/// until it ends or `stop` fires. Returns the error that ended the stream,
/// if one did (also written to the log as a line of its own).
async fn pump(
    ctx: &StageContext,
    running: &StepState,
    stream: LogStream,
    started: Instant,
    log: &mut StepOutput,
    stop: Option<&CancellationToken>,
) -> Option<EngineError> {
    let stopped = async {
        match stop {
            Some(stop) => stop.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let mut stopped = pin!(stopped);
    let mut reader = ChunkReader::new(stream);
    // Lines carry whole seconds since the step started. Text that was ready
    // together arrived together: the clock is read only after the stream
    // made the pump wait (or every `CLOCK_EVERY` reads), which takes a clock
    // call per chunk off a busy log.
    let mut since = 0;
    let mut ts = 0;
    loop {
        // Dropping a pending read loses nothing: the reader hands on what it
        // joined before it waits.
        let read = tokio::select! {
            biased;
            read = reader.next() => read,
            () = &mut stopped => return None,
        };
        let text = match read {
            Read::Text { text, fresh } => {
                if fresh || since >= CLOCK_EVERY {
                    ts = started.elapsed().as_secs();
                    since = 0;
                }
                since += 1;
                text
            }
            Read::End => return None,
            Read::Failed(e) => {
                let msg = format!(
                    "[runnerkit] reading the step's output failed: {}",
                    e.to_chain_string()
                );
                tracing::warn!(step = %running.name, "{}", ctx.masker.mask_str(&msg));
                ts = started.elapsed().as_secs();
                log.note(ctx, running, &msg, ts);
                return Some(e);
            }
        };
        log.write(ctx, running, &text, ts);
    }
}

/// A detached step's log pump: reads until the output ends (at the latest
/// when `destroy` removes the step), then reports the step done.
async fn detached_pump(
    ctx: Arc<StageContext>,
    step: Step,
    running: StepState,
    stream: LogStream,
    started: Instant,
) {
    let mut log = StepOutput::new(&ctx);
    let ended = pump(
        &ctx,
        &running,
        stream,
        started,
        &mut log,
        Some(&ctx.stop_reading),
    )
    .await;
    if ended.is_none() && ctx.stop_reading.is_cancelled() {
        let note = format!(
            "[runnerkit] the output did not end within {} of the teardown; the rest is not read",
            human(ctx.config.drain_timeout)
        );
        log.note(&ctx, &running, &note, started.elapsed().as_secs());
    }
    log.finish(&ctx, &running, started.elapsed().as_secs());
    let end = match ended {
        Some(e) => DetachedEnd::Lost(e.to_chain_string()),
        None if ctx.tearing_down.is_cancelled() => DetachedEnd::TornDown,
        None => exit_before_teardown(&ctx, &step).await,
    };
    finish_detached(&ctx, running.index, &log, end).await;
}

/// How a detached step ended.
pub(crate) enum DetachedEnd {
    /// Stopped by the stage's teardown (or never seen to end): `success`,
    /// 0, as in Drone.
    TornDown,
    /// Exited by itself before the teardown, with this exit.
    Exited(ExitState),
    /// Its output ended with an engine error: nobody waits for a detached
    /// step, so its stream is how the engine says it did not end as a
    /// service does (its container removed from outside, its output lost).
    Lost(String),
}

/// A detached step's output ended before the teardown: it exited (or is
/// about to), and `wait` says how. Bounded: an engine whose stream ends
/// early for another reason must not hold the stage.
async fn exit_before_teardown(ctx: &StageContext, step: &Step) -> DetachedEnd {
    let token = CancellationToken::new();
    let waited = tokio::select! {
        waited = tokio::time::timeout(DETACHED_EXIT_WAIT, ctx.engine.wait(&ctx.spec, step, &token)) => waited,
        () = ctx.tearing_down.cancelled() => return DetachedEnd::TornDown,
    };
    match waited {
        Ok(Ok(exit)) => DetachedEnd::Exited(exit),
        Ok(Err(e)) => DetachedEnd::Lost(e.to_chain_string()),
        Err(_) => DetachedEnd::TornDown,
    }
}

/// How long a detached step whose output ended may take to be seen exited.
const DETACHED_EXIT_WAIT: Duration = Duration::from_secs(10);

/// Reports a detached step's end. A step stopped by the teardown ends
/// `success`, 0 (as in Drone); one that exited by itself keeps its exit
/// (`failure` for a code other than 0, which does not fail the stage: a
/// service's exit is reported, not judged); a lost one ends `error`, 255,
/// with the engine's text.
pub(crate) async fn finish_detached(
    ctx: &StageContext,
    index: usize,
    log: &StepOutput,
    end: DetachedEnd,
) {
    let st = match end {
        DetachedEnd::Lost(error) => ctx.finish(index, Status::Error, 255, Some(error)),
        DetachedEnd::TornDown => ctx.finish(index, Status::Success, 0, None),
        DetachedEnd::Exited(exit) if exit.exit_code == 0 && !exit.oom_killed => {
            ctx.finish(index, Status::Success, 0, None)
        }
        DetachedEnd::Exited(exit) => {
            let why = if exit.oom_killed {
                format!(
                    "exited with {} before the stage ended (out of memory)",
                    exit.exit_code
                )
            } else {
                format!("exited with {} before the stage ended", exit.exit_code)
            };
            ctx.finish(index, Status::Failure, exit.exit_code.max(1), Some(why))
        }
    };
    if let Err(e) = log.hand_over(ctx, &st).await {
        tracing::warn!(step = %st.name, "got_logs failed for a detached step: {e}");
    }
    if let Err(e) = ctx.hooks.after_each(&ctx.state, &st).await {
        tracing::warn!(step = %st.name, "after_each failed for a detached step: {e}");
    }
}

/// `90s` → `1m30s`, for messages.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) if d.subsec_millis() > 0 && s < 10 => format!("{:.1}s", d.as_secs_f64()),
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

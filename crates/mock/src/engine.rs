//! [`MockEngine`]: an engine scripted per step name that records every call.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, EngineErrorKind, ExitState, LogStream, Spec, Step,
};
use tokio::time::Instant;

/// One of the six engine calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// [`Engine::setup`].
    Setup,
    /// [`Engine::create`].
    Create,
    /// [`Engine::start`].
    Start,
    /// [`Engine::tail`].
    Tail,
    /// [`Engine::wait`].
    Wait,
    /// [`Engine::destroy`].
    Destroy,
}

/// A recorded call: which one, for which step (none for setup and destroy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The call.
    pub kind: CallKind,
    /// The step's name, for the four step calls.
    pub step: Option<String>,
}

impl Call {
    fn new(kind: CallKind, step: Option<&Step>) -> Self {
        Self {
            kind,
            step: step.map(|s| s.name.clone()),
        }
    }
}

/// What a scripted step does. Build one with [`StepScript::exit`] and the
/// `with_*`/`*_at` methods; steps without a script exit 0 at once, silently.
#[derive(Debug, Clone, Default)]
pub struct StepScript {
    exit_code: i32,
    oom: bool,
    chunks: Vec<(Duration, Bytes)>,
    run_for: Duration,
    fail_at: Option<CallKind>,
    /// What the scripted failure says, instead of naming the call.
    fail_message: Option<String>,
    panic_at: Option<CallKind>,
    hang: bool,
    ignore_cancel: bool,
    echo_env: Vec<String>,
}

impl StepScript {
    /// A step that exits with `code`.
    pub fn exit(code: i32) -> Self {
        Self {
            exit_code: code,
            ..Self::default()
        }
    }

    /// Emits `chunk` after `delay` (counted from the previous chunk, or from
    /// `start` for the first).
    pub fn with_chunk(mut self, delay: Duration, chunk: impl Into<Bytes>) -> Self {
        self.chunks.push((delay, chunk.into()));
        self
    }

    /// Emits each of `lines` followed by a newline, one chunk each, at once.
    pub fn with_lines<S: AsRef<str>>(mut self, lines: impl IntoIterator<Item = S>) -> Self {
        for line in lines {
            let mut chunk = line.as_ref().as_bytes().to_vec();
            chunk.push(b'\n');
            self.chunks.push((Duration::ZERO, chunk.into()));
        }
        self
    }

    /// Prints `NAME=value` for each of `vars`, read from the step's
    /// environment and secrets, before the scripted chunks (the mock's way of
    /// showing the step saw its environment).
    pub fn echo_env(mut self, vars: Vec<String>) -> Self {
        self.echo_env = vars;
        self
    }

    /// Keeps running for `duration` after the last chunk before exiting.
    pub fn running_for(mut self, duration: Duration) -> Self {
        self.run_for = duration;
        self
    }

    /// Reports the step OOM-killed.
    pub fn oom(mut self) -> Self {
        self.oom = true;
        self
    }

    /// Fails the given call with an engine error.
    pub fn error_at(mut self, call: CallKind) -> Self {
        self.fail_at = Some(call);
        self
    }

    /// Fails the given call with an engine error saying `message`: an
    /// engine's message may quote anything (a command line, a path, a
    /// variable), which is what tests of masking need.
    pub fn error_at_saying(mut self, call: CallKind, message: impl Into<String>) -> Self {
        self.fail_at = Some(call);
        self.fail_message = Some(message.into());
        self
    }

    /// Panics in the given call.
    pub fn panic_at(mut self, call: CallKind) -> Self {
        self.panic_at = Some(call);
        self
    }

    /// Never exits on its own: `wait` returns only when cancelled.
    pub fn hang(mut self) -> Self {
        self.hang = true;
        self
    }

    /// Ignores cancellation: `wait` never returns once hung (an engine that
    /// breaks the contract, to test the runtime's kill grace).
    pub fn ignore_cancel(mut self) -> Self {
        self.ignore_cancel = true;
        self.hang = true;
        self
    }

    fn total_output_time(&self) -> Duration {
        self.chunks.iter().map(|(d, _)| *d).sum()
    }
}

#[derive(Debug, Default)]
struct Inner {
    scripts: HashMap<String, StepScript>,
    calls: Vec<Call>,
    violations: Vec<String>,
    /// Per spec id: setup done, destroyed, and each step's progress.
    stages: HashMap<String, StageRecord>,
    /// What a failing `setup` says; `None`: it succeeds.
    setup_error: Option<String>,
}

#[derive(Debug, Default)]
struct StageRecord {
    destroyed: bool,
    created: HashSet<String>,
    started: HashMap<String, Instant>,
    waited: HashSet<String>,
}

/// An [`Engine`] scripted per step name, for tests of runtimes, hooks and
/// runners.
///
/// Like a careful real backend it polices its caller: a call out of the
/// contract's order (a `start` before `create`, a second `create`, anything
/// after `destroy`) fails with [`EngineErrorKind::Misuse`] and is recorded as
/// a violation, so a test can assert both the exact call sequence
/// ([`calls`](MockEngine::calls)) and that the protocol held
/// ([`violations`](MockEngine::violations)).
///
/// Timing uses tokio's clock: under `#[tokio::test(start_paused = true)]`
/// scripted delays cost no real time.
#[derive(Debug, Clone, Default)]
pub struct MockEngine {
    inner: Arc<Mutex<Inner>>,
}

impl MockEngine {
    /// An engine where every step exits 0 at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts the step named `name`.
    pub fn with_step(self, name: impl Into<String>, script: StepScript) -> Self {
        self.script(name, script);
        self
    }

    /// Scripts the step named `name` (replacing an earlier script).
    pub fn script(&self, name: impl Into<String>, script: StepScript) {
        self.lock().scripts.insert(name.into(), script);
    }

    /// Makes `setup` fail.
    pub fn with_setup_error(self) -> Self {
        self.with_setup_error_saying("scripted setup failure")
    }

    /// Makes `setup` fail with an engine error saying `message`.
    pub fn with_setup_error_saying(self, message: impl Into<String>) -> Self {
        self.lock().setup_error = Some(message.into());
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls made for the step named `step`, in order.
    pub fn calls_for(&self, step: &str) -> Vec<CallKind> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.step.as_deref() == Some(step))
            .map(|c| c.kind)
            .collect()
    }

    /// How many times `kind` was called.
    pub fn count(&self, kind: CallKind) -> usize {
        self.lock().calls.iter().filter(|c| c.kind == kind).count()
    }

    /// Ids of the specs set up and not destroyed yet.
    pub fn live_stages(&self) -> Vec<String> {
        let inner = self.lock();
        let mut ids: Vec<String> = inner
            .stages
            .iter()
            .filter(|(_, s)| !s.destroyed)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Calls made out of the contract's order, described.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Panics unless the call log obeys the contract: no violations, `setup`
    /// first, `destroy` last and exactly once.
    pub fn assert_protocol(&self) {
        let inner = self.lock();
        assert!(
            inner.violations.is_empty(),
            "engine protocol violations: {:?}",
            inner.violations
        );
        let calls = &inner.calls;
        assert_eq!(
            calls.first().map(|c| c.kind),
            Some(CallKind::Setup),
            "setup must come first: {calls:?}"
        );
        assert_eq!(
            calls.last().map(|c| c.kind),
            Some(CallKind::Destroy),
            "destroy must come last: {calls:?}"
        );
        let destroys = calls.iter().filter(|c| c.kind == CallKind::Destroy).count();
        assert_eq!(
            destroys, 1,
            "destroy must be called exactly once: {calls:?}"
        );
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call, checks its order, and returns the step's script.
    fn enter(
        &self,
        kind: CallKind,
        spec: &Spec,
        step: Option<&Step>,
    ) -> Result<StepScript, EngineError> {
        let mut inner = self.lock();
        inner.calls.push(Call::new(kind, step));
        let script = step
            .and_then(|s| inner.scripts.get(&s.name).cloned())
            .unwrap_or_default();
        let problem = check_order(&mut inner, kind, spec, step);
        if let Some(problem) = problem {
            inner.violations.push(problem.clone());
            return Err(EngineError::new("mock", EngineErrorKind::Misuse, problem));
        }
        drop(inner);
        if script.panic_at == Some(kind) {
            panic!("mock engine: scripted panic in {kind:?}");
        }
        if script.fail_at == Some(kind) {
            let message = script
                .fail_message
                .clone()
                .unwrap_or_else(|| format!("scripted failure in {kind:?}"));
            return Err(EngineError::new("mock", EngineErrorKind::Other, message));
        }
        Ok(script)
    }
}

fn check_order(
    inner: &mut Inner,
    kind: CallKind,
    spec: &Spec,
    step: Option<&Step>,
) -> Option<String> {
    let name = step.map(|s| s.name.as_str()).unwrap_or_default();
    if kind == CallKind::Setup {
        if inner.stages.contains_key(&spec.id) {
            return Some(format!("setup called twice for spec {:?}", spec.id));
        }
        inner.stages.insert(spec.id.clone(), StageRecord::default());
        return None;
    }
    if kind == CallKind::Destroy {
        if let Some(stage) = inner.stages.get_mut(&spec.id) {
            stage.destroyed = true;
        }
        return None;
    }
    let Some(stage) = inner.stages.get_mut(&spec.id) else {
        return Some(format!("{kind:?} of step {name:?} before setup"));
    };
    if stage.destroyed {
        return Some(format!("{kind:?} of step {name:?} after destroy"));
    }
    match kind {
        CallKind::Create if !stage.created.insert(name.to_owned()) => {
            Some(format!("create called twice for step {name:?}"))
        }
        CallKind::Start if !stage.created.contains(name) => {
            Some(format!("start of step {name:?} before create"))
        }
        CallKind::Start if stage.started.contains_key(name) => {
            Some(format!("start called twice for step {name:?}"))
        }
        CallKind::Start => {
            stage.started.insert(name.to_owned(), Instant::now());
            None
        }
        CallKind::Tail | CallKind::Wait if !stage.started.contains_key(name) => {
            Some(format!("{kind:?} of step {name:?} before start"))
        }
        CallKind::Wait if !stage.waited.insert(name.to_owned()) => {
            Some(format!("wait called twice for step {name:?}"))
        }
        _ => None,
    }
}

#[async_trait]
impl Engine for MockEngine {
    fn name(&self) -> &str {
        "mock"
    }

    async fn setup(&self, spec: &Spec, _cancel: &CancellationToken) -> Result<(), EngineError> {
        self.enter(CallKind::Setup, spec, None)?;
        let failure = self.lock().setup_error.clone();
        if let Some(message) = failure {
            return Err(EngineError::new(
                "mock",
                EngineErrorKind::Unavailable,
                message,
            ));
        }
        Ok(())
    }

    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        _: &CancellationToken,
    ) -> Result<(), EngineError> {
        self.enter(CallKind::Create, spec, Some(step)).map(drop)
    }

    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        _: &CancellationToken,
    ) -> Result<(), EngineError> {
        self.enter(CallKind::Start, spec, Some(step)).map(drop)
    }

    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        let script = self.enter(CallKind::Tail, spec, Some(step))?;
        let start = self.started_at(spec, step);
        let cancel = cancel.clone();
        let mut chunks = echoed_env(step, &script.echo_env);
        chunks.extend(script.chunks);
        let chunks = chunks.into_iter().scan(start, |at, (delay, chunk)| {
            *at += delay;
            Some((*at, chunk))
        });
        let stream = stream::unfold((chunks, cancel), |(mut chunks, cancel)| async move {
            let (at, chunk) = chunks.next()?;
            tokio::select! {
                _ = tokio::time::sleep_until(at) => Some((Ok(chunk), (chunks, cancel))),
                _ = cancel.cancelled() => None,
            }
        });
        Ok(Box::pin(stream))
    }

    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        let script = self.enter(CallKind::Wait, spec, Some(step))?;
        if script.ignore_cancel {
            std::future::pending::<()>().await;
        }
        let exit_at = self.started_at(spec, step) + script.total_output_time() + script.run_for;
        let killed = ExitState::code(137);
        if script.hang {
            cancel.cancelled().await;
            return Ok(killed);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(exit_at) => Ok(ExitState {
                exit_code: if script.oom { 137 } else { script.exit_code },
                oom_killed: script.oom,
            }),
            _ = cancel.cancelled() => Ok(killed),
        }
    }

    async fn destroy(&self, spec: &Spec, _cancel: &CancellationToken) -> Result<(), EngineError> {
        self.enter(CallKind::Destroy, spec, None).map(drop)
    }
}

fn echoed_env(step: &Step, vars: &[String]) -> Vec<(Duration, Bytes)> {
    vars.iter()
        .map(|var| {
            let value = step
                .environment
                .get(var)
                .map(String::as_str)
                .or_else(|| {
                    step.secrets
                        .iter()
                        .find(|s| &s.env == var)
                        .map(|s| s.value.as_str())
                })
                .unwrap_or_default();
            (Duration::ZERO, Bytes::from(format!("{var}={value}\n")))
        })
        .collect()
}

impl MockEngine {
    fn started_at(&self, spec: &Spec, step: &Step) -> Instant {
        self.lock()
            .stages
            .get(&spec.id)
            .and_then(|s| s.started.get(&step.name).copied())
            .unwrap_or_else(Instant::now)
    }
}

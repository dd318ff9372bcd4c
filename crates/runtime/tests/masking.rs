//! DESIGN.md, "Masking in the runtime": every text the runtime writes into
//! the state or a log (step and stage errors, its own log notes) is masked
//! before any hook, snapshot or caller sees it, so that consumers never
//! mask on their own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, EngineErrorKind, ExitState, Hook, HookError, LineRef,
    LogStream, Secret, SecretVar, Snapshot, Spec, State, Status, Step, StepDecision, StepLog,
    StepState,
};
use runnerkit_mock::{CallKind, MockEngine, StepScript};
use runnerkit_runtime::{Runtime, RuntimeConfig};

/// A stage-wide masked secret.
const STAGE_SECRET: &str = "hunter2-stage";
/// A step's masked secret variable.
const STEP_SECRET: &str = "s3cr3t-step";
/// An engine message quoting both, as a real engine's may (a command line, a
/// registry login, an environment).
const QUOTING: &str = "login to registry with hunter2-stage failed (TOKEN=s3cr3t-step)";
const MASKED: &str = "login to registry with ****** failed (TOKEN=******)";

fn spec() -> Arc<Spec> {
    let mut bad = Step::named("bad");
    bad.secrets.push(SecretVar {
        env: "TOKEN".into(),
        value: STEP_SECRET.into(),
        mask: true,
    });
    Arc::new(Spec {
        id: "stage".into(),
        secrets: vec![Secret {
            name: "password".into(),
            value: STAGE_SECRET.into(),
            mask: true,
        }],
        steps: vec![bad, Step::named("next")],
        ..Spec::default()
    })
}

/// Every text a hook was given: step errors with each per-step event, the
/// whole snapshot (read through the live state) at each event, log lines,
/// and the final snapshot in `after`.
#[derive(Default)]
struct Seen {
    texts: Mutex<Vec<String>>,
    after_each: Mutex<Vec<StepState>>,
    after: Mutex<Option<Snapshot>>,
    fail_before_each: Option<String>,
    fail_after: Option<String>,
}

impl Seen {
    fn record(&self, state: &State, step: Option<&StepState>) {
        let mut texts = self.texts.lock().unwrap();
        texts.push(format!("{:?}", state.snapshot()));
        if let Some(step) = step {
            texts.push(format!("{step:?}"));
        }
    }

    fn texts(&self) -> Vec<String> {
        self.texts.lock().unwrap().clone()
    }

    fn after_each(&self, name: &str) -> StepState {
        self.after_each
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no after_each for {name}"))
    }

    fn after(&self) -> Snapshot {
        self.after
            .lock()
            .unwrap()
            .clone()
            .expect("after was called")
    }
}

#[async_trait]
impl Hook for Seen {
    async fn before(&self, state: &State) -> Result<(), HookError> {
        self.record(state, None);
        Ok(())
    }
    async fn before_each(
        &self,
        state: &State,
        step: &StepState,
    ) -> Result<StepDecision, HookError> {
        self.record(state, Some(step));
        match &self.fail_before_each {
            Some(message) => Err(HookError::new(message.clone())),
            None => Ok(StepDecision::Run),
        }
    }
    async fn after_each(&self, state: &State, step: &StepState) -> Result<(), HookError> {
        self.record(state, Some(step));
        self.after_each.lock().unwrap().push(step.clone());
        Ok(())
    }
    async fn after(&self, state: &State) -> Result<(), HookError> {
        self.record(state, None);
        *self.after.lock().unwrap() = Some(state.snapshot());
        match &self.fail_after {
            Some(message) => Err(HookError::new(message.clone())),
            None => Ok(()),
        }
    }
    fn wants_log(&self) -> bool {
        true
    }
    fn got_line(&self, state: &State, step: &StepState, line: LineRef<'_>) {
        self.record(state, Some(step));
        self.texts.lock().unwrap().push(line.message.to_owned());
    }
    async fn got_logs(
        &self,
        state: &State,
        step: &StepState,
        log: &StepLog,
    ) -> Result<(), HookError> {
        self.record(state, Some(step));
        let mut texts = self.texts.lock().unwrap();
        texts.extend(log.to_lines().unwrap().into_iter().map(|l| l.message));
        Ok(())
    }
}

async fn run(engine: Arc<dyn Engine>, hook: &Arc<Seen>) -> Snapshot {
    Runtime::new(engine)
        .with_hook(hook.clone())
        .with_config(RuntimeConfig::default())
        .run(spec(), CancellationToken::new())
        .await
        .expect("spec accepted")
}

/// No secret's value anywhere in what the hook saw or the caller got.
fn assert_no_secret(hook: &Seen, snap: &Snapshot) {
    let everything = hook
        .texts()
        .into_iter()
        .chain([format!("{snap:?}"), format!("{:?}", hook.after())]);
    for text in everything {
        for secret in [STAGE_SECRET, STEP_SECRET] {
            assert!(!text.contains(secret), "{secret} shows in {text}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_engine_error_quoting_a_secret_is_masked_in_the_state_hooks_and_result() {
    for call in [
        CallKind::Create,
        CallKind::Start,
        CallKind::Tail,
        CallKind::Wait,
    ] {
        let engine =
            MockEngine::new().with_step("bad", StepScript::exit(0).error_at_saying(call, QUOTING));
        let hook = Arc::new(Seen::default());
        let snap = run(Arc::new(engine.clone()), &hook).await;
        engine.assert_protocol();

        let expected = format!("mock: {MASKED}");
        let bad = snap.step("bad").unwrap();
        assert_eq!(bad.status, Status::Error, "{call:?}");
        assert_eq!(bad.error.as_deref(), Some(expected.as_str()), "{call:?}");
        assert_eq!(snap.stage.error.as_deref(), Some(expected.as_str()));
        assert_eq!(
            hook.after_each("bad").error.as_deref(),
            Some(expected.as_str())
        );
        let after = hook.after();
        assert_eq!(after.step("bad").unwrap().error, bad.error);
        assert_eq!(after.stage.error, snap.stage.error);
        assert_no_secret(&hook, &snap);
    }
}

#[tokio::test(start_paused = true)]
async fn a_setup_failure_quoting_a_secret_is_masked() {
    let engine = MockEngine::new().with_setup_error_saying(QUOTING);
    let hook = Arc::new(Seen::default());
    let snap = run(Arc::new(engine), &hook).await;
    let expected = format!("mock: {MASKED}");
    assert_eq!(snap.stage.status, Status::Error);
    assert_eq!(snap.stage.error.as_deref(), Some(expected.as_str()));
    assert_eq!(hook.after().stage.error, snap.stage.error);
    assert_no_secret(&hook, &snap);
}

#[tokio::test(start_paused = true)]
async fn a_hook_error_quoting_a_secret_is_masked() {
    // A hook's message may quote what a server answered, secrets included.
    let hook = Arc::new(Seen {
        fail_before_each: Some(QUOTING.into()),
        ..Seen::default()
    });
    let snap = run(Arc::new(MockEngine::new()), &hook).await;
    assert_eq!(snap.stage.status, Status::Error);
    assert_eq!(snap.stage.error.as_deref(), Some(MASKED));
    assert_eq!(snap.step("bad").unwrap().error.as_deref(), Some(MASKED));
    assert_no_secret(&hook, &snap);

    let hook = Arc::new(Seen {
        fail_after: Some(QUOTING.into()),
        ..Seen::default()
    });
    let snap = run(Arc::new(MockEngine::new()), &hook).await;
    assert_eq!(snap.stage.error.as_deref(), Some(MASKED));
    assert_no_secret(&hook, &snap);
}

/// The mock, except that the step's output fails half-way and `destroy`
/// fails, each quoting the secrets in its cause.
struct Quoting(MockEngine);

fn quoting_error() -> EngineError {
    EngineError::new("quoting", EngineErrorKind::Other, "it broke")
        .with_source(std::io::Error::other(QUOTING))
}

#[async_trait]
impl Engine for Quoting {
    fn name(&self) -> &str {
        "quoting"
    }
    async fn setup(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        self.0.setup(spec, cancel).await
    }
    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        self.0.create(spec, step, cancel).await
    }
    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        self.0.start(spec, step, cancel).await
    }
    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        // The mock records the call; its own output is replaced.
        drop(self.0.tail(spec, step, cancel).await?);
        let chunks = vec![Ok(Bytes::from_static(b"partial ")), Err(quoting_error())];
        Ok(Box::pin(stream::iter(chunks)))
    }
    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        self.0.wait(spec, step, cancel).await
    }
    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        self.0.destroy(spec, cancel).await?;
        Err(quoting_error())
    }
}

#[tokio::test(start_paused = true)]
async fn the_runtime_own_notes_and_a_teardown_failure_quoting_a_secret_are_masked() {
    let engine = Quoting(MockEngine::new().with_step(
        "bad",
        StepScript::exit(0).running_for(Duration::from_secs(1)),
    ));
    let hook = Arc::new(Seen::default());
    let snap = run(Arc::new(engine), &hook).await;
    assert!(
        hook.texts().iter().any(|t| t
            == &format!(
                "[runnerkit] reading the step's output failed: quoting: it broke: {MASKED}"
            )),
        "{:?}",
        hook.texts()
    );
    assert_eq!(
        snap.stage.error.as_deref(),
        Some(format!("teardown failed: quoting: it broke: {MASKED}").as_str())
    );
    assert_eq!(hook.after().stage.error, snap.stage.error);
    assert_no_secret(&hook, &snap);
}

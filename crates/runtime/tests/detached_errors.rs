//! How a detached step ends: a stream that ends with an engine error makes
//! the step `error`, with that error's text; a step that exits by itself
//! before the teardown keeps its exit without failing the stage; one the
//! teardown stops is `success`, 0; one whose output outlives the teardown
//! keeps the log it printed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, EngineErrorKind, ExitState, Hook, HookError, LogStream,
    Spec, State, Status, Step, StepLog, StepState,
};
use runnerkit_mock::{MockEngine, StepScript};
use runnerkit_runtime::{Runtime, RuntimeConfig};

const SEC: Duration = Duration::from_secs(1);
const GONE: &str = "step \"db\": the container was removed outside runnerkit";

/// The mock engine, except that the stream of the step `db` goes through
/// the function given.
struct DbStream(MockEngine, fn(LogStream) -> LogStream);

/// `db`'s output, then an engine error, as the Docker engine's stream ends
/// for a service whose container was removed from outside.
fn ends_in_error(stream: LogStream) -> LogStream {
    let gone = EngineError::new("mock", EngineErrorKind::NotFound, GONE);
    Box::pin(stream.chain(futures_util::stream::once(async move { Err(gone) })))
}

/// `db`'s output, never ending, not even when `destroy` removed the step:
/// an engine that cannot end a service's output.
fn never_ends(stream: LogStream) -> LogStream {
    Box::pin(stream.chain(futures_util::stream::pending()))
}

#[async_trait]
impl Engine for DbStream {
    fn name(&self) -> &str {
        self.0.name()
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
        let stream = self.0.tail(spec, step, cancel).await?;
        Ok(if step.name == "db" {
            (self.1)(stream)
        } else {
            stream
        })
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
        self.0.destroy(spec, cancel).await
    }
}

fn spec(steps: Vec<Step>) -> Arc<Spec> {
    Arc::new(Spec {
        id: "stage".into(),
        steps,
        ..Spec::default()
    })
}

#[tokio::test(start_paused = true)]
async fn a_detached_step_whose_stream_ends_in_an_error_is_not_success() {
    let mock = MockEngine::new()
        .with_step("db", StepScript::exit(0).with_chunk(SEC, "ready\n"))
        .with_step("test", StepScript::exit(0).running_for(3 * SEC));
    let db = Step {
        detach: true,
        ..Step::named("db")
    };
    let snap = Runtime::new(Arc::new(DbStream(mock.clone(), ends_in_error)))
        .run(
            spec(vec![db, Step::named("test")]),
            CancellationToken::new(),
        )
        .await
        .expect("spec accepted");
    mock.assert_protocol();
    let db = snap.step("db").unwrap();
    assert_eq!((db.status, db.exit_code), (Status::Error, 255), "{db:?}");
    let error = db.error.as_deref().unwrap_or_default();
    assert!(error.contains(GONE), "{error}");
    assert_eq!(snap.step("test").unwrap().status, Status::Success);
    assert_eq!(snap.stage.status, Status::Error);
}

/// A service that exited by itself before the teardown shows its real exit
/// (`failure`, its code, what happened), and does not fail the stage: its
/// exit is reported, not judged (Drone reports every service `success`, 0).
#[tokio::test(start_paused = true)]
async fn a_detached_step_that_exits_early_keeps_its_exit_and_the_stage_passes() {
    let mock = MockEngine::new()
        .with_step("db", StepScript::exit(1).with_chunk(SEC, "ready\n"))
        .with_step("test", StepScript::exit(0).running_for(3 * SEC));
    let db = Step {
        detach: true,
        ..Step::named("db")
    };
    let snap = Runtime::new(Arc::new(mock.clone()))
        .run(
            spec(vec![db, Step::named("test")]),
            CancellationToken::new(),
        )
        .await
        .expect("spec accepted");
    mock.assert_protocol();
    let db = snap.step("db").unwrap();
    assert_eq!((db.status, db.exit_code), (Status::Failure, 1), "{db:?}");
    assert!(
        db.error
            .as_deref()
            .unwrap_or_default()
            .contains("exited with 1"),
        "{db:?}"
    );
    assert_eq!(snap.stage.status, Status::Success);
}

/// A service still running when the stage ends is stopped by the teardown:
/// `success`, 0, as in Drone.
#[tokio::test(start_paused = true)]
async fn a_detached_step_stopped_by_the_teardown_is_success() {
    let mock = MockEngine::new()
        .with_step("db", StepScript::exit(0).running_for(60 * SEC))
        .with_step("test", StepScript::exit(0).running_for(SEC));
    let db = Step {
        detach: true,
        ..Step::named("db")
    };
    let snap = Runtime::new(Arc::new(mock.clone()))
        .run(
            spec(vec![db, Step::named("test")]),
            CancellationToken::new(),
        )
        .await
        .expect("spec accepted");
    let db = snap.step("db").unwrap();
    assert_eq!(
        (db.status, db.exit_code, db.error.as_deref()),
        (Status::Success, 0, None)
    );
    assert_eq!(snap.stage.status, Status::Success);
}

/// The whole logs handed on, by step name.
#[derive(Default)]
struct KeptLogs(std::sync::Mutex<Vec<(String, Vec<String>)>>);

#[async_trait]
impl Hook for KeptLogs {
    fn wants_log(&self) -> bool {
        true
    }
    async fn got_logs(&self, _: &State, step: &StepState, log: &StepLog) -> Result<(), HookError> {
        let lines = log
            .to_lines()
            .map_err(|e| HookError::new(e.to_string()))?
            .into_iter()
            .map(|l| l.message)
            .collect();
        self.0.lock().unwrap().push((step.name.clone(), lines));
        Ok(())
    }
}

/// A service whose output does not end after the teardown is no longer
/// read once the drain timeout passed, and what it printed reaches the
/// hooks that keep logs, with a line saying the rest was not read.
#[tokio::test(start_paused = true)]
async fn a_detached_step_whose_output_outlives_the_teardown_keeps_its_log() {
    let mock = MockEngine::new()
        .with_step(
            "db",
            StepScript::exit(0)
                .with_lines(["db ready", "db serving"])
                .running_for(60 * SEC),
        )
        .with_step("test", StepScript::exit(0).running_for(SEC));
    let db = Step {
        detach: true,
        ..Step::named("db")
    };
    let kept = Arc::new(KeptLogs::default());
    let config = RuntimeConfig {
        drain_timeout: 2 * SEC,
        ..RuntimeConfig::default()
    };
    let snap = Runtime::new(Arc::new(DbStream(mock, never_ends)))
        .with_hook(kept.clone())
        .with_config(config)
        .run(
            spec(vec![db, Step::named("test")]),
            CancellationToken::new(),
        )
        .await
        .expect("spec accepted");
    let db = snap.step("db").unwrap();
    assert_eq!((db.status, db.exit_code), (Status::Success, 0));
    let kept = kept.0.lock().unwrap();
    let (_, lines) = kept
        .iter()
        .find(|(name, _)| name == "db")
        .expect("db's log was handed on");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(&lines[..2], ["db ready", "db serving"]);
    assert!(
        lines[2].contains("did not end within 2s of the teardown"),
        "{lines:?}"
    );
}

//! Steps made ahead (the engine's lookahead) through the runtime on a real
//! daemon: the next step's container runs held while the current one runs,
//! yet no script starts early, no output or exit code is lost, a step a hook
//! amended runs as amended, and nothing made ahead outlives the stage.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{script, spec};
use runnerkit_core::{
    CancellationToken, ErrorPolicy, Hook, HookError, LineRef, RunPolicy, Snapshot, Spec, State,
    Status, StepDecision, StepState,
};
use runnerkit_docker::testing::{docker_or_skip, stage_leftovers};
use runnerkit_docker::{DockerEngine, LABEL_STAGE, LABEL_STEP};
use runnerkit_runtime::Runtime;

/// Every step's log lines by step name; optionally adds `env` to the steps
/// named in it, as the live status variables do.
#[derive(Default)]
struct Recorder {
    lines: Mutex<HashMap<String, Vec<String>>>,
    amend: HashMap<String, BTreeMap<String, String>>,
}

#[async_trait]
impl Hook for Recorder {
    async fn before_each(&self, _: &State, step: &StepState) -> Result<StepDecision, HookError> {
        Ok(match self.amend.get(&step.name) {
            Some(env) => StepDecision::RunWith(env.clone()),
            None => StepDecision::Run,
        })
    }

    fn got_line(&self, _: &State, step: &StepState, line: LineRef<'_>) {
        self.lines
            .lock()
            .unwrap()
            .entry(step.name.clone())
            .or_default()
            .push(line.message.to_owned());
    }
}

impl Recorder {
    fn of(&self, step: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .get(step)
            .cloned()
            .unwrap_or_default()
    }
}

/// Runs `spec` to its end and checks that nothing of it is left.
async fn run(
    engine: &Arc<DockerEngine>,
    spec: Spec,
    recorder: Recorder,
) -> (Snapshot, Arc<Recorder>) {
    let recorder = Arc::new(recorder);
    let runtime = Runtime::new(engine.clone()).with_hook(recorder.clone());
    let id = spec.id.clone();
    let done = runtime
        .run(Arc::new(spec), CancellationToken::new())
        .await
        .expect("run");
    let left = stage_leftovers(engine, &id).await.expect("list leftovers");
    assert!(left.is_empty(), "left behind by stage {id}: {left:?}");
    (done, recorder)
}

fn status(done: &Snapshot, step: &str) -> (Status, i32) {
    let s = done.step(step).unwrap_or_else(|| panic!("no step {step}"));
    (s.status, s.exit_code)
}

/// The state of step `step`'s container of stage `stage`, if it has one.
async fn container_state(stage: &str, step: &str) -> Option<String> {
    let filters = [
        format!("label={LABEL_STAGE}={stage}"),
        format!("label={LABEL_STEP}={step}"),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("docker")
            .args(["ps", "-a", "--format", "{{.State}}"])
            .args(filters.iter().flat_map(|f| ["--filter", f.as_str()]))
            .output()
            .expect("docker ps")
    })
    .await
    .expect("docker ps");
    let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!state.is_empty()).then_some(state)
}

/// Whether `check` holds at one of `tries` readings 50 ms apart.
async fn eventually<F, Fut>(tries: usize, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..tries {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn the_next_step_runs_held_while_the_current_one_runs() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = Arc::new(engine);
    // `second` would leave its mark at once if its script ran ahead.
    let spec = spec(
        "held",
        vec![
            script(
                "first",
                "echo first began\nsleep 3\ntest ! -e /drone/src/second-ran\necho first saw no mark",
            ),
            script(
                "second",
                "echo marked > /drone/src/second-ran\necho second ran",
            ),
        ],
    );
    let id = spec.id.clone();
    // While `first` sleeps, `second`'s container is up (held).
    let watcher = tokio::spawn(eventually(50, move || {
        let id = id.clone();
        async move { container_state(&id, "second").await.as_deref() == Some("running") }
    }));
    let (done, lines) = run(&engine, spec, Recorder::default()).await;
    assert!(
        watcher.await.unwrap(),
        "the second step's container was never running while the first ran"
    );
    assert_eq!(done.stage.status, Status::Success, "{done:?}");
    assert_eq!(lines.of("first"), ["first began", "first saw no mark"]);
    assert_eq!(lines.of("second"), ["second ran"]);
}

#[tokio::test]
async fn every_output_and_exit_code_of_a_pipelined_stage_arrives() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = Arc::new(engine);
    // Each step prints at once and ends with its own code; failures are
    // ignored so that every step runs.
    let steps = (0..8)
        .map(|i| {
            let mut step = script(
                &format!("s{i}"),
                &format!("set +e\necho s{i} first\necho s{i} err >&2\nexit {}", i * 3),
            );
            step.error_policy = ErrorPolicy::Ignore;
            step
        })
        .collect();
    let (done, lines) = run(&engine, spec("codes", steps), Recorder::default()).await;
    for i in 0..8 {
        let name = format!("s{i}");
        let code = i * 3;
        let want = if code == 0 || code == 78 {
            Status::Success
        } else {
            Status::Failure
        };
        assert_eq!(status(&done, &name), (want, code), "{name}");
        // Docker copies stdout and stderr apart: between the two, the
        // daemon's order is not always the write order.
        let mut got = lines.of(&name);
        got.sort();
        assert_eq!(got, [format!("s{i} err"), format!("s{i} first")], "{name}");
    }
}

#[tokio::test]
async fn a_step_a_hook_amended_runs_as_amended() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = Arc::new(engine);
    let mut later = script("later", "echo \"status is $BUILD_STATE\"");
    later
        .environment
        .insert("BUILD_STATE".into(), "compiled".into());
    let spec = spec(
        "amended",
        vec![
            script("first", "sleep 1"),
            later,
            script("last", "echo \"$BUILD_STATE\""),
        ],
    );
    // `later` was made ahead from the compiled spec; the hook changes it.
    let recorder = Recorder {
        amend: HashMap::from([(
            "later".to_owned(),
            BTreeMap::from([("BUILD_STATE".to_owned(), "amended".to_owned())]),
        )]),
        ..Recorder::default()
    };
    let (done, lines) = run(&engine, spec, recorder).await;
    assert_eq!(done.stage.status, Status::Success, "{done:?}");
    assert_eq!(lines.of("later"), ["status is amended"]);
    assert_eq!(lines.of("last"), [""]);
}

#[tokio::test]
async fn steps_made_ahead_that_never_run_are_removed() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = Arc::new(engine);
    // `first` fails: the steps made ahead for after it are skipped, and an
    // `on-failure` step (never made ahead) runs.
    let mut notify = script("notify", "echo notified");
    notify.run_policy = RunPolicy::OnFailure;
    let spec = spec(
        "skipped",
        vec![
            script("first", "exit 3"),
            script("second", "echo never"),
            script("third", "echo never"),
            notify,
            script("fourth", "echo never"),
        ],
    );
    let (done, lines) = run(&engine, spec, Recorder::default()).await;
    assert_eq!(done.stage.status, Status::Failure);
    assert_eq!(status(&done, "first"), (Status::Failure, 3));
    for skipped in ["second", "third", "fourth"] {
        assert_eq!(status(&done, skipped).0, Status::Skipped, "{skipped}");
        assert!(lines.of(skipped).is_empty(), "{skipped} ran");
    }
    assert_eq!(lines.of("notify"), ["notified"]);
}

#[tokio::test]
async fn a_cancelled_stage_removes_the_steps_made_ahead() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = Arc::new(engine);
    let spec = spec(
        "cancelled",
        vec![
            script("long", "echo started\nsleep 30"),
            script("next", "echo never"),
            script("after", "echo never"),
        ],
    );
    let id = spec.id.clone();
    let cancel = CancellationToken::new();
    let runtime = Runtime::new(engine.clone());
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { runtime.run(Arc::new(spec), cancel).await }
    });
    // Cancelled once the steps after `long` are up, held.
    eventually(100, || async {
        container_state(&id, "after").await.as_deref() == Some("running")
    })
    .await;
    cancel.cancel();
    let done = run.await.unwrap().expect("run");
    assert_eq!(done.stage.status, Status::Killed, "{done:?}");
    assert_eq!(status(&done, "next").0, Status::Skipped);
    let left = stage_leftovers(&engine, &id).await.expect("list leftovers");
    assert!(left.is_empty(), "left behind by stage {id}: {left:?}");
}

#[tokio::test]
async fn an_ended_steps_container_goes_while_the_stage_runs() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = Arc::new(engine);
    let spec = spec(
        "removed-early",
        vec![
            script("quick", "echo quick"),
            script("slow", "sleep 4\necho slow"),
        ],
    );
    let id = spec.id.clone();
    // While `slow` runs, `quick`'s container is removed: its output was all
    // read.
    let watcher = tokio::spawn(eventually(70, move || {
        let id = id.clone();
        async move {
            container_state(&id, "slow").await.as_deref() == Some("running")
                && container_state(&id, "quick").await.is_none()
        }
    }));
    let (done, lines) = run(&engine, spec, Recorder::default()).await;
    assert!(
        watcher.await.unwrap(),
        "the ended step's container stayed while the next step ran"
    );
    assert_eq!(done.stage.status, Status::Success, "{done:?}");
    assert_eq!(lines.of("quick"), ["quick"]);
    assert_eq!(lines.of("slow"), ["slow"]);
}

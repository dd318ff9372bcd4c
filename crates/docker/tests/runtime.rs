//! Whole stages through `runnerkit-runtime` on the Docker engine: the
//! semantics that need the runtime (exit 78, masking, services, parallel
//! steps, engine errors, cancellation) on real containers.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{script, spec};
use runnerkit_core::{
    CancellationToken, Hook, LineRef, PullPolicy, Resources, SecretVar, Snapshot, Spec, State,
    Status, Step, StepState,
};
use runnerkit_docker::DockerEngine;
use runnerkit_docker::testing::{
    PODMAN_LEAVES_OOM_UNREPORTED, docker_or_skip, docker_unless_podman, stage_leftovers,
};
use runnerkit_runtime::{Runtime, RuntimeConfig};

/// Collects every step's log lines, by step name; cancels `cancel_on.1`
/// when a line equal to `cancel_on.0` arrives.
#[derive(Default)]
struct Lines {
    lines: Mutex<HashMap<String, Vec<String>>>,
    cancel_on: Option<(String, CancellationToken)>,
}

#[async_trait]
impl Hook for Lines {
    fn got_line(&self, _state: &State, step: &StepState, line: LineRef<'_>) {
        self.lines
            .lock()
            .unwrap()
            .entry(step.name.clone())
            .or_default()
            .push(line.message.to_owned());
        if let Some((trigger, cancel)) = &self.cancel_on
            && line.message == trigger
        {
            cancel.cancel();
        }
    }
}

impl Lines {
    fn of(&self, step: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .get(step)
            .cloned()
            .unwrap_or_default()
    }
}

/// Runs `spec` to the end and checks nothing of it is left on the daemon.
async fn run(
    engine: DockerEngine,
    spec: Spec,
    cancel: CancellationToken,
) -> (Snapshot, Arc<Lines>) {
    run_with(engine, spec, cancel, Lines::default()).await
}

async fn run_with(
    engine: DockerEngine,
    spec: Spec,
    cancel: CancellationToken,
    lines: Lines,
) -> (Snapshot, Arc<Lines>) {
    let engine = Arc::new(engine);
    let lines = Arc::new(lines);
    let config = RuntimeConfig {
        kill_grace: Duration::from_secs(15),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(engine.clone())
        .with_hook(lines.clone())
        .with_config(config);
    let id = spec.id.clone();
    let done = runtime.run(Arc::new(spec), cancel).await.expect("run");
    let left = stage_leftovers(&engine, &id).await.expect("list leftovers");
    assert!(
        left.is_empty(),
        "left behind by stage {id}: {left:?} (stage error: {:?})",
        done.stage.error
    );
    (done, lines)
}

fn status(done: &Snapshot, step: &str) -> (Status, i32) {
    let s = done.step(step).unwrap_or_else(|| panic!("no step {step}"));
    (s.status, s.exit_code)
}

#[tokio::test]
async fn exit_78_passes_the_stage_and_skips_the_rest() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec(
        "rt78",
        vec![
            script("first", "echo done early\nexit 78"),
            script("second", "echo never"),
        ],
    );
    let (done, lines) = run(engine, spec, CancellationToken::new()).await;
    assert_eq!(done.stage.status, Status::Success);
    assert_eq!(status(&done, "first"), (Status::Success, 78));
    assert_eq!(status(&done, "second").0, Status::Skipped);
    assert_eq!(lines.of("first"), ["done early"]);
}

#[tokio::test]
async fn secrets_are_masked_in_the_log() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let mut step = script(
        "leak",
        "echo \"token is $TOKEN\"\nsleep 0.2\necho \"$TOKEN\" >&2",
    );
    step.secrets.push(SecretVar {
        env: "TOKEN".into(),
        value: "hunter2-secret".into(),
        mask: true,
    });
    let (done, lines) = run(engine, spec("rtmask", vec![step]), CancellationToken::new()).await;
    assert_eq!(done.stage.status, Status::Success);
    assert_eq!(lines.of("leak"), ["token is ******", "******"]);
}

#[tokio::test]
async fn a_service_serves_the_whole_stage_and_is_torn_down() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let mut service = script(
        "db",
        "mkdir -p /tmp\necho -e 'HTTP/1.0 200 OK\\r\\n\\r\\nrows' > /tmp/r\nwhile true; do nc -l -p 5432 < /tmp/r; done",
    );
    service.detach = true;
    let query =
        "for i in $(seq 1 50); do wget -q -O - http://db:5432/ && exit 0; sleep 0.1; done; exit 1";
    let spec = spec(
        "rtservice",
        vec![service, script("migrate", query), script("test", query)],
    );
    let (done, lines) = run(engine, spec, CancellationToken::new()).await;
    assert_eq!(done.stage.status, Status::Success, "{done:?}");
    assert_eq!(status(&done, "migrate"), (Status::Success, 0));
    assert_eq!(status(&done, "test"), (Status::Success, 0));
    assert!(lines.of("test").contains(&"rows".to_owned()));
}

#[tokio::test]
async fn independent_steps_of_a_dag_run_at_the_same_time() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let wait_for = |mine: &str, other: &str| {
        format!(
            "touch {mine}.ready\nfor i in $(seq 1 100); do [ -f {other}.ready ] && exit 0; sleep 0.1; done; exit 1"
        )
    };
    let mut a = script("a", &wait_for("a", "b"));
    a.depends_on = ["init".to_owned()].into();
    let mut b = script("b", &wait_for("b", "a"));
    b.depends_on = ["init".to_owned()].into();
    let spec = spec("rtdag", vec![script("init", "true"), a, b]);
    let (done, _) = run(engine, spec, CancellationToken::new()).await;
    assert_eq!(done.stage.status, Status::Success, "{done:?}");
    assert_eq!(status(&done, "a"), (Status::Success, 0));
    assert_eq!(status(&done, "b"), (Status::Success, 0));
}

#[tokio::test]
async fn a_missing_image_errors_the_step_and_the_stage() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let missing = Step {
        image: "runnerkit-test:no-such-image".into(),
        pull: PullPolicy::Never,
        ..Step::named("missing")
    };
    let spec = spec("rtmissing", vec![missing, script("after", "true")]);
    let (done, _) = run(engine, spec, CancellationToken::new()).await;
    assert_eq!(done.stage.status, Status::Error);
    let step = done.step("missing").unwrap();
    assert_eq!((step.status, step.exit_code), (Status::Error, 255));
    let message = step.error.clone().unwrap_or_default();
    assert!(
        message.contains("runnerkit-test:no-such-image"),
        "{message}"
    );
    assert_eq!(status(&done, "after").0, Status::Skipped);
}

#[tokio::test]
async fn oom_fails_the_step_with_137() {
    let Some(engine) = docker_unless_podman(PODMAN_LEAVES_OOM_UNREPORTED).await else {
        return;
    };
    // The daemon learns of an OOM kill through a cgroup notification it
    // registers just after the container starts: a kill in the very first
    // milliseconds goes unreported (Docker 20.10, cgroup v1; `docker run`
    // alike, about one run in ten). A real step allocates later than that.
    let mut hog = script(
        "hog",
        "sleep 1\ndd if=/dev/zero of=/dev/null bs=256M count=1",
    );
    hog.resources = Resources {
        mem_limit: 16 << 20,
        memswap_limit: 16 << 20,
        ..Resources::default()
    };
    let (done, _) = run(engine, spec("rtoom", vec![hog]), CancellationToken::new()).await;
    assert_eq!(done.stage.status, Status::Failure);
    let step = done.step("hog").unwrap();
    assert_eq!((step.status, step.exit_code), (Status::Failure, 137));
    assert!(step.oom_killed);
}

#[tokio::test]
async fn a_cancelled_step_runs_its_trap_and_keeps_its_exit_code() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = engine.with_stop_grace(Duration::from_secs(10));
    let spec = spec(
        "rttrap",
        vec![script(
            "graceful",
            "trap 'echo stopping cleanly; exit 42' TERM\necho started\nsleep 300 &\nwait",
        )],
    );
    let cancel = CancellationToken::new();
    let hook = Lines {
        cancel_on: Some(("started".into(), cancel.clone())),
        ..Lines::default()
    };
    let (done, lines) = tokio::time::timeout(
        Duration::from_secs(60),
        run_with(engine, spec, cancel, hook),
    )
    .await
    .expect("the stage ends soon after its cancellation");
    assert_eq!(status(&done, "graceful"), (Status::Killed, 42));
    assert_eq!(lines.of("graceful"), ["started", "stopping cleanly"]);
}

#[tokio::test]
async fn cancelling_the_stage_kills_the_running_step() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = engine.with_stop_grace(Duration::from_secs(1));
    let spec = spec(
        "rtcancel",
        vec![
            script("long", "echo started\nsleep 300"),
            script("next", "true"),
        ],
    );
    // Cancel once the step is demonstrably running: when its first line arrives.
    let cancel = CancellationToken::new();
    let hook = Lines {
        cancel_on: Some(("started".into(), cancel.clone())),
        ..Lines::default()
    };
    let (done, lines) = tokio::time::timeout(
        Duration::from_secs(60),
        run_with(engine, spec, cancel, hook),
    )
    .await
    .expect("the stage ends soon after its cancellation");
    assert_eq!(done.stage.status, Status::Killed);
    assert_eq!(status(&done, "long").0, Status::Killed);
    assert_eq!(status(&done, "next").0, Status::Skipped);
    // What the step printed while it stopped (the shell's word on its
    // SIGTERMed `sleep`) is part of its log, after what came before.
    let long = lines.of("long");
    assert_eq!(
        long.first().map(String::as_str),
        Some("started"),
        "{long:?}"
    );
}

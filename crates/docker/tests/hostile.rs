//! The Docker engine when someone else acts on the daemon: objects planted
//! under a stage's guessable names, containers removed mid-run (issue 16).
//!
//! Run: `RUNNERKIT_REQUIRE_DOCKER=1 cargo test -p runnerkit-docker --test hostile`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{destroy_and_check, run_all, script, spec};
use futures_util::StreamExt;
use runnerkit_core::{
    CancellationToken, Engine, Hook, LineRef, Snapshot, State, Status, StepState,
};
use runnerkit_docker::DockerEngine;
use runnerkit_docker::testing::{Planted, docker_or_skip, remove_from_outside, stage_leftovers};
use runnerkit_runtime::{Runtime, RuntimeConfig};
use tokio::task::JoinHandle;

const REMOVED: &str = "the container was removed outside runnerkit";

#[tokio::test]
async fn two_runs_of_one_spec_id_get_different_names() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec("rerun", vec![script("s", "true")]);
    let cancel = CancellationToken::new();
    let mut runs = Vec::new();
    for _ in 0..2 {
        engine.setup(&spec, &cancel).await.unwrap();
        engine.create(&spec, &spec.steps[0], &cancel).await.unwrap();
        let mut names = stage_leftovers(&engine, &spec.id).await.unwrap();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        destroy_and_check(&engine, &spec).await;
        runs.push(names);
    }
    for name in &runs[0] {
        assert!(
            name.contains(&format!("rk-{}-", spec.id)),
            "names stay readable: {name}"
        );
        assert!(!runs[1].contains(name), "{name} was used by both runs");
    }
}

#[tokio::test]
async fn objects_under_the_old_guessable_names_are_not_adopted() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    // What the names were before they had a random part.
    let spec = spec(
        "planted",
        vec![script(
            "look",
            "ls -A /drone/src\ntest ! -e /drone/src/planted",
        )],
    );
    let mut planted = Planted::new();
    let old_network = format!("rk-{}", spec.id);
    let old_workspace = format!("rk-{}-workspace", spec.id);
    planted.network(&engine, &old_network).await.unwrap();
    planted
        .volume(&engine, &old_workspace, "planted")
        .await
        .unwrap();

    // Neither errors the stage nor reaches the step.
    let ran = run_all(&engine, &spec).await;
    assert_eq!(ran[0].exit.exit_code, 0, "log: {}", ran[0].log);
    assert_eq!(ran[0].log, "", "the workspace starts empty");
    // Everything of the stage is gone; the planted objects are not ours.
    destroy_and_check(&engine, &spec).await;
    let mut present = planted.present(&engine).await.unwrap();
    present.sort();
    assert_eq!(
        present,
        [
            format!("network {old_network}"),
            format!("volume {old_workspace}")
        ]
    );
    planted.remove(&engine).await.unwrap();
}

#[tokio::test]
async fn a_step_whose_container_is_removed_mid_run_says_so() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec("rm-step", vec![script("victim", "echo ready\nsleep 300")]);
    let step = &spec.steps[0];
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    engine.create(&spec, step, &cancel).await.unwrap();
    engine.start(&spec, step, &cancel).await.unwrap();
    let mut logs = engine.tail(&spec, step, &cancel).await.unwrap();
    let reader = async {
        let first = logs.next().await.expect("a line").expect("output");
        assert_eq!(first, "ready\n");
        let removed = remove_from_outside(&engine, &spec.id, "victim")
            .await
            .unwrap();
        assert_eq!(removed.len(), 1);
        while logs.next().await.is_some() {}
    };
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(reader, engine.wait(&spec, step, &cancel)).1
    })
    .await
    .expect("wait returns once the container is gone");
    let err = waited.expect_err("a removed container is not an exit");
    assert!(err.message().contains(REMOVED), "{err}");
    assert!(err.message().contains("\"victim\""), "{err}");
    destroy_and_check(&engine, &spec).await;
}

/// On the line `trigger` of any step, removes the containers of `victim`
/// from outside runnerkit (in a task of its own: hooks do not block).
struct RemoveOn {
    stage: String,
    trigger: &'static str,
    victim: &'static str,
    engine: Arc<DockerEngine>,
    removals: Mutex<Vec<JoinHandle<Vec<String>>>>,
}

#[async_trait]
impl Hook for RemoveOn {
    fn got_line(&self, _state: &State, _step: &StepState, line: LineRef<'_>) {
        if line.message == self.trigger {
            let engine = Arc::clone(&self.engine);
            let stage = self.stage.clone();
            let victim = self.victim;
            let removal = tokio::spawn(async move {
                remove_from_outside(&engine, &stage, victim)
                    .await
                    .expect("remove from outside")
            });
            self.removals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(removal);
        }
    }
}

/// Runs `spec` through the runtime, removing `victim` on the line `trigger`;
/// checks one container was removed and nothing of the stage is left.
async fn run_removing(
    spec: runnerkit_core::Spec,
    trigger: &'static str,
    victim: &'static str,
) -> Option<Snapshot> {
    let engine = Arc::new(docker_or_skip().await?);
    let remover = Arc::new(RemoveOn {
        stage: spec.id.clone(),
        trigger,
        victim,
        engine: Arc::new(docker_or_skip().await?),
        removals: Mutex::new(Vec::new()),
    });
    let config = RuntimeConfig {
        step_timeout: Some(Duration::from_secs(120)),
        ..RuntimeConfig::default()
    };
    let id = spec.id.clone();
    let done = Runtime::new(engine.clone())
        .with_hook(remover.clone())
        .with_config(config)
        .run(Arc::new(spec), CancellationToken::new())
        .await
        .expect("run");
    let removals = std::mem::take(&mut *remover.removals.lock().unwrap());
    assert_eq!(removals.len(), 1, "the trigger line arrived once");
    for removal in removals {
        assert_eq!(removal.await.unwrap().len(), 1, "one container removed");
    }
    let left = stage_leftovers(&engine, &id).await.expect("list leftovers");
    assert!(left.is_empty(), "left behind by stage {id}: {left:?}");
    Some(done)
}

#[tokio::test]
async fn a_removed_step_ends_in_error_with_the_reason() {
    let spec = spec(
        "rm-rt-step",
        vec![script("victim", "echo ready\nsleep 300")],
    );
    let Some(done) = run_removing(spec, "ready", "victim").await else {
        return;
    };
    let victim = done.step("victim").unwrap();
    assert_eq!(
        (victim.status, victim.exit_code),
        (Status::Error, 255),
        "{victim:?}"
    );
    let error = victim.error.as_deref().unwrap_or_default();
    assert!(error.contains(REMOVED), "{error}");
    assert_eq!(done.stage.status, Status::Error);
}

#[tokio::test]
async fn a_removed_service_is_not_success_and_says_why() {
    let mut service = script(
        "svc",
        "mkdir -p /tmp\necho -e 'HTTP/1.0 200 OK\\r\\n\\r\\nup' > /tmp/r\nwhile true; do nc -l -p 8080 < /tmp/r; done",
    );
    service.detach = true;
    // Up, then the trigger, then on until the service is unreachable, and a
    // moment more: the service is gone well before the teardown.
    let client = script(
        "client",
        "for i in $(seq 1 100); do wget -q -O /dev/null http://svc:8080/ && break; sleep 0.1; done\n\
         echo remove-svc\n\
         for i in $(seq 1 300); do wget -q -T 1 -O /dev/null http://svc:8080/ 2>/dev/null || break; sleep 0.1; done\n\
         sleep 2\necho after",
    );
    let spec = spec("rm-rt-service", vec![service, client]);
    let Some(done) = run_removing(spec, "remove-svc", "svc").await else {
        return;
    };
    let client = done.step("client").unwrap();
    assert_eq!((client.status, client.exit_code), (Status::Success, 0));
    let svc = done.step("svc").unwrap();
    assert_ne!(svc.status, Status::Success, "{svc:?}");
    assert_eq!((svc.status, svc.exit_code), (Status::Error, 255), "{svc:?}");
    let error = svc.error.as_deref().unwrap_or_default();
    assert!(error.contains(REMOVED), "{error}");
    assert!(error.contains("\"svc\""), "{error}");
}

/// Step names that differ only where Docker refuses characters (`go build`
/// and `go_build`) get containers of their own: both run.
#[tokio::test]
async fn steps_named_alike_after_sanitizing_both_run() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec(
        "alike",
        vec![
            script("go build", "echo one"),
            script("go_build", "echo two"),
        ],
    );
    let ran = run_all(&engine, &spec).await;
    assert_eq!(ran.len(), 2);
    for (r, said) in ran.iter().zip(["one", "two"]) {
        assert_eq!(r.exit.exit_code, 0, "{:?}", r.log);
        assert!(r.log.contains(said), "{:?}", r.log);
    }
    destroy_and_check(&engine, &spec).await;
}

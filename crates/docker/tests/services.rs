//! Services on the real daemon (issue 15): a service whose image declares a
//! `HEALTHCHECK` holds the steps after it until it is healthy, one that
//! becomes unhealthy or exits first fails the stage naming it, and a
//! service's own exit is reported without failing a stage that passed.
//!
//! Run: `RUNNERKIT_REQUIRE_DOCKER=1 cargo test -p runnerkit-docker --test services`.

mod common;

use std::sync::Arc;

use common::{script, spec};
use runnerkit_core::{CancellationToken, Snapshot, Spec, Status, Step};
use runnerkit_docker::DockerEngine;
use runnerkit_docker::testing::{docker_or_skip, ensure_derived_image, stage_leftovers};
use runnerkit_runtime::Runtime;

/// Healthy once `/drone/src/ready` exists (the stage's workspace).
const READY_IMAGE: &str = "runnerkit-test:healthy-when-ready";
/// Never healthy.
const SICK_IMAGE: &str = "runnerkit-test:never-healthy";

async fn engine() -> Option<DockerEngine> {
    let engine = docker_or_skip().await?;
    ensure_derived_image(
        &engine,
        READY_IMAGE,
        "HEALTHCHECK --interval=200ms --timeout=2s --retries=100 CMD test -f /drone/src/ready",
    )
    .await
    .expect("build the ready image");
    ensure_derived_image(
        &engine,
        SICK_IMAGE,
        "HEALTHCHECK --interval=200ms --timeout=2s --retries=1 CMD echo not today; false",
    )
    .await
    .expect("build the sick image");
    Some(engine)
}

fn service(name: &str, image: &str, body: &str) -> Step {
    Step {
        image: image.into(),
        detach: true,
        ..script(name, body)
    }
}

async fn run(engine: DockerEngine, spec: Spec) -> Snapshot {
    let id = spec.id.clone();
    let engine = Arc::new(engine);
    let snap = Runtime::new(engine.clone())
        .run(Arc::new(spec), CancellationToken::new())
        .await
        .expect("spec accepted");
    assert_eq!(
        stage_leftovers(&engine, &id).await.unwrap(),
        Vec::<String>::new(),
        "nothing is left"
    );
    snap
}

#[tokio::test]
async fn a_healthy_gated_service_holds_the_next_step_until_it_is_healthy() {
    let Some(engine) = engine().await else {
        return;
    };
    let spec = spec(
        "healthy",
        vec![
            service(
                "db",
                READY_IMAGE,
                "echo warming up\nsleep 1\ntouch /drone/src/ready\nsleep 300",
            ),
            // Without the wait this runs at once and finds no file.
            script("test", "test -f /drone/src/ready\necho db was ready"),
        ],
    );
    let snap = run(engine, spec).await;
    let test = snap.step("test").unwrap();
    assert_eq!(test.status, Status::Success, "{snap:#?}");
    assert_eq!(snap.stage.status, Status::Success);
    let db = snap.step("db").unwrap();
    assert_eq!((db.status, db.exit_code), (Status::Success, 0));
}

#[tokio::test]
async fn an_unhealthy_service_fails_the_stage_naming_it_and_quoting_its_log() {
    let Some(engine) = engine().await else {
        return;
    };
    let spec = spec(
        "sick",
        vec![
            service("db", SICK_IMAGE, "echo db says hello\nsleep 300"),
            script("test", "echo never"),
        ],
    );
    let snap = run(engine, spec).await;
    let db = snap.step("db").unwrap();
    assert_eq!(db.status, Status::Error, "{db:?}");
    let error = db.error.as_deref().unwrap_or_default();
    assert!(error.contains("service \"db\" became unhealthy"), "{error}");
    assert!(error.contains("not today"), "the probe's output: {error}");
    assert!(error.contains("db says hello"), "its last lines: {error}");
    assert_eq!(snap.step("test").unwrap().status, Status::Skipped);
    assert_eq!(snap.stage.status, Status::Error);
}

#[tokio::test]
async fn a_service_that_exits_before_it_is_healthy_fails_the_stage() {
    let Some(engine) = engine().await else {
        return;
    };
    let spec = spec(
        "exits",
        vec![
            service("db", READY_IMAGE, "echo giving up\nexit 3"),
            script("test", "echo never"),
        ],
    );
    let snap = run(engine, spec).await;
    let db = snap.step("db").unwrap();
    assert_eq!(db.status, Status::Error, "{db:?}");
    let error = db.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("service \"db\" exited with 3 before it was healthy"),
        "{error}"
    );
    assert!(error.contains("giving up"), "{error}");
    assert_eq!(snap.stage.status, Status::Error);
}

#[tokio::test]
async fn a_crashed_service_shows_its_exit_and_the_stage_still_passes() {
    let Some(engine) = engine().await else {
        return;
    };
    let spec = spec(
        "crash",
        vec![
            service(
                "db",
                runnerkit_docker::testing::TEST_IMAGE,
                "echo crashing\nexit 5",
            ),
            script("test", "sleep 2\necho the tests passed"),
        ],
    );
    let snap = run(engine, spec).await;
    let db = snap.step("db").unwrap();
    assert_eq!((db.status, db.exit_code), (Status::Failure, 5), "{db:?}");
    assert!(
        db.error
            .as_deref()
            .unwrap_or_default()
            .contains("exited with 5"),
        "{db:?}"
    );
    assert_eq!(snap.step("test").unwrap().status, Status::Success);
    assert_eq!(snap.stage.status, Status::Success);
}

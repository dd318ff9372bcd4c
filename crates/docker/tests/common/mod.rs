//! Shared helpers of the engine's integration tests: a spec builder, a step
//! runner through the engine's calls, and the "nothing left" check.
#![allow(dead_code)] // each test file uses a subset

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::StreamExt;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, ExitState, PullPolicy, Script, Spec, Step, Workspace,
};
use runnerkit_docker::DockerEngine;
use runnerkit_docker::testing::{TEST_IMAGE, stage_leftovers};

/// A spec with a unique id, the default workspace and `steps`.
pub fn spec(test: &str, steps: Vec<Step>) -> Spec {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    Spec {
        id: format!("t-{test}-{}-{n}", std::process::id()),
        workspace: Workspace {
            base: "/drone/src".into(),
            path: String::new(),
            host_path: None,
        },
        labels: [("io.runnerkit.test".to_owned(), test.to_owned())].into(),
        steps,
        ..Spec::default()
    }
}

/// A step running `body` with busybox's sh, pulling never.
pub fn script(name: &str, body: &str) -> Step {
    Step {
        image: TEST_IMAGE.into(),
        pull: PullPolicy::Never,
        script: Some(Script {
            shell: "/bin/sh".into(),
            body: format!("set -e\n{body}\n"),
        }),
        ..Step::named(name)
    }
}

/// What one step did: its log and exit.
#[derive(Debug)]
pub struct Ran {
    pub log: String,
    pub exit: ExitState,
}

/// create → start → tail → wait for one step, reading the log while waiting.
pub async fn run_step(
    engine: &DockerEngine,
    spec: &Spec,
    step: &Step,
    cancel: &CancellationToken,
) -> Result<Ran, EngineError> {
    engine.create(spec, step, cancel).await?;
    engine.start(spec, step, cancel).await?;
    let mut logs = engine.tail(spec, step, cancel).await?;
    let reader = async {
        let mut out = Vec::new();
        while let Some(chunk) = logs.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok::<_, EngineError>(out)
    };
    let (log, exit) = tokio::join!(reader, engine.wait(spec, step, cancel));
    Ok(Ran {
        log: String::from_utf8_lossy(&log?).into_owned(),
        exit: exit?,
    })
}

/// Sets the stage up and runs each of its steps in turn (none detached),
/// failing the test on an engine error.
pub async fn run_all(engine: &DockerEngine, spec: &Spec) -> Vec<Ran> {
    let cancel = CancellationToken::new();
    engine.setup(spec, &cancel).await.expect("setup");
    let mut ran = Vec::new();
    for step in &spec.steps {
        ran.push(
            run_step(engine, spec, step, &cancel)
                .await
                .expect("the step runs"),
        );
    }
    ran
}

/// Destroys the stage and asserts nothing labelled with it remains.
pub async fn destroy_and_check(engine: &DockerEngine, spec: &Spec) {
    engine
        .destroy(spec, &CancellationToken::new())
        .await
        .expect("destroy");
    let left = stage_leftovers(engine, &spec.id)
        .await
        .expect("list leftovers");
    assert!(
        left.is_empty(),
        "left behind by stage {}: {left:?}",
        spec.id
    );
}

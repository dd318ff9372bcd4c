//! The engine conformance suite of `runnerkit-mock`, run on [`KubeEngine`]
//! against a real cluster: one test per check, so a failure names its clause.

use async_trait::async_trait;
use runnerkit_core::{Spec, Step, Workspace};
use runnerkit_kube::KubeEngine;
use runnerkit_kube::testing::{TEST_IMAGE, kube_or_skip, stage_leftovers};
use runnerkit_mock::conformance::{self, Behaviour, Fixture, ShellFixture};

/// [`ShellFixture`] on the busybox test image, with leftovers read from the
/// cluster by the stage's label.
struct KubeFixture {
    shell: ShellFixture,
    engine: KubeEngine,
}

#[async_trait]
impl Fixture for KubeFixture {
    fn spec(&self, steps: Vec<Step>) -> Spec {
        self.shell.spec(steps)
    }

    fn step(&self, name: &str, behaviour: &Behaviour) -> Step {
        self.shell.step(name, behaviour)
    }

    async fn leftovers(&self, spec: &Spec) -> Vec<String> {
        let namespace = self.engine.settings().namespace.clone();
        match stage_leftovers(&self.engine, &namespace, &spec.id).await {
            Ok(left) => left,
            Err(e) => vec![format!("cannot list the stage's objects: {e}")],
        }
    }
}

async fn engine_and_fixture() -> Option<(KubeEngine, KubeFixture)> {
    let engine = kube_or_skip().await?;
    let shell = ShellFixture::new()
        .with_image(TEST_IMAGE)
        .with_workspace(Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        });
    Some((engine.clone(), KubeFixture { shell, engine }))
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let Some((engine, fixture)) = engine_and_fixture().await else { return };
            conformance::$check(&engine, &fixture).await;
        }
    )*};
}

conformance_tests!(
    lifecycle,
    exit_codes,
    logs_whole_and_in_order,
    environment,
    wait_after_exit,
    destroy_is_idempotent,
    destroy_removes_unstarted,
    cancel_mid_step,
    errors_surface,
    concurrent_steps,
);

//! What a stage leaves on the cluster: its secrets are in a Secret, not in
//! the pod spec; a cancelled stage leaves no pod or Secret behind.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use runnerkit_core::{CancellationToken, Engine, Script, SecretVar, Spec, Step, Workspace};
use runnerkit_kube::testing::{TEST_IMAGE, kube_or_skip, stage_leftovers};
use runnerkit_mock::conformance::unique_id;

fn spec(steps: Vec<Step>) -> Spec {
    Spec {
        id: unique_id("rkstage"),
        workspace: Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        },
        steps,
        ..Spec::default()
    }
}

fn script(name: &str, body: &str) -> Step {
    Step {
        id: unique_id(name),
        image: TEST_IMAGE.into(),
        pull: runnerkit_core::PullPolicy::Never,
        script: Some(Script {
            shell: "/bin/sh".into(),
            body: body.into(),
        }),
        ..Step::named(name)
    }
}

#[tokio::test]
async fn secrets_stay_out_of_the_pod_spec_and_cancel_leaves_nothing() {
    let Some(engine) = kube_or_skip().await else {
        return;
    };
    let mut step = script("holder", "echo \"$TOKEN\" | wc -c\nsleep 300\n");
    step.secrets.push(SecretVar {
        env: "TOKEN".into(),
        value: "hunter2-in-a-secret".into(),
        mask: true,
    });
    let spec = spec(vec![step.clone()]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let namespace = engine.settings().namespace.clone();
    let pods: Api<Pod> = Api::namespaced(engine.client().clone(), &namespace);
    let listed = pods
        .list(
            &kube::api::ListParams::default()
                .labels(&format!("{}=true", runnerkit_kube::LABEL_MANAGED)),
        )
        .await
        .unwrap();
    let ours = listed
        .items
        .iter()
        .find(|p| {
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(runnerkit_kube::ANNOTATION_STAGE_ID))
                == Some(&spec.id)
        })
        .expect("the stage's pod, annotated with its spec id");
    let text = serde_json::to_string(ours).unwrap();
    assert!(
        !text.contains("hunter2"),
        "the secret is in the pod object: {text}"
    );

    engine.create(&spec, &step, &cancel).await.unwrap();
    engine.start(&spec, &step, &cancel).await.unwrap();
    let canceller = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
    };
    let (exit, ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(engine.wait(&spec, &step, &cancel), canceller)
    })
    .await
    .expect("a cancelled wait returns within the grace");
    let exit = exit.expect("the stopped step's exit");
    assert_ne!(exit.exit_code, 0, "a stopped step did not succeed");
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let left = stage_leftovers(&engine, &namespace, &spec.id)
        .await
        .unwrap();
    assert!(left.is_empty(), "left after destroy: {left:?}");
}

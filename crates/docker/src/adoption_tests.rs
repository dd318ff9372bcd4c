//! `setup` and `create` against objects planted under the very names they
//! choose: each is refused, naming it, and neither used nor removed; what
//! the run did create is removed by `destroy`.
//!
//! The names hold a random token nobody can guess, so these tests choose
//! the token themselves (`setup_named`) to plant objects before the stage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptions,
};
use runnerkit_core::{CancellationToken, Engine, PullPolicy, Spec, Step, Workspace};

use crate::engine::DockerEngine;
use crate::labels::{self, StageNames};
use crate::teardown;
use crate::testing::{TEST_IMAGE, docker_or_skip};

/// A spec with a workspace volume, and names for it with a chosen token.
fn planned(test: &str) -> (Spec, StageNames) {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let spec = Spec {
        id: format!("t-{test}-{}-{n}", std::process::id()),
        workspace: Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        },
        steps: vec![Step {
            image: TEST_IMAGE.into(),
            pull: PullPolicy::Never,
            command: vec!["true".into()],
            ..Step::named("s")
        }],
        ..Spec::default()
    };
    let names = StageNames::with_token(&spec.id, format!("chosen{n}"));
    (spec, names)
}

/// Every object still labelled with the stage, as `kind name`.
async fn leftovers(engine: &DockerEngine, spec: &Spec) -> Vec<String> {
    let found = teardown::list(engine.docker(), &labels::stage_filter(&spec.id))
        .await
        .unwrap();
    found
        .into_iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect()
}

/// Labels that look like the stage's, without its run's token: what someone
/// who guessed the spec id could forge.
fn forged(spec: &Spec) -> HashMap<String, String> {
    HashMap::from([
        (labels::LABEL_MANAGED.to_owned(), "true".to_owned()),
        (labels::LABEL_STAGE.to_owned(), spec.id.clone()),
    ])
}

#[tokio::test]
async fn a_volume_planted_under_the_chosen_name_is_refused_and_kept() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    for labelled in [false, true] {
        let (spec, names) = planned("foreign-volume");
        let planted = names.workspace_volume();
        engine
            .docker()
            .create_volume(VolumeCreateRequest {
                name: Some(planted.clone()),
                labels: labelled.then(|| forged(&spec)),
                ..VolumeCreateRequest::default()
            })
            .await
            .unwrap();
        let cancel = CancellationToken::new();
        let err = engine
            .setup_named(&spec, names.clone(), &cancel)
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            format!(
                "volume {planted:?} already exists and was not created by this stage: refusing to use it"
            )
        );
        // The network setup created before the refusal is removed; the
        // planted volume is not ours to remove.
        engine.destroy(&spec, &cancel).await.unwrap();
        let left = leftovers(&engine, &spec).await;
        if labelled {
            assert_eq!(left, [format!("volume {planted}")]);
        } else {
            assert!(left.is_empty(), "{left:?}");
        }
        engine
            .docker()
            .inspect_volume(&planted)
            .await
            .expect("the planted volume is kept");
        engine
            .docker()
            .remove_volume(&planted, None::<RemoveVolumeOptions>)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_network_planted_under_the_chosen_name_is_refused_and_ours_removed() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let (spec, names) = planned("foreign-network");
    let planted = names.network();
    let planted_id = engine
        .docker()
        .create_network(NetworkCreateRequest {
            name: planted.clone(),
            labels: Some(forged(&spec)),
            ..NetworkCreateRequest::default()
        })
        .await
        .unwrap()
        .id;
    let cancel = CancellationToken::new();
    let err = engine.setup_named(&spec, names, &cancel).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "network {planted:?} already exists and was not created by this stage: refusing to use it"
        )
    );
    // Ours has the planted one's name: removed by id, not by the name.
    engine.destroy(&spec, &cancel).await.unwrap();
    assert_eq!(
        leftovers(&engine, &spec).await,
        [format!("network {planted}")],
        "only the planted network is left"
    );
    engine.docker().remove_network(&planted_id).await.unwrap();
}

#[tokio::test]
async fn a_container_planted_under_the_chosen_name_is_refused_and_kept() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let (spec, names) = planned("foreign-container");
    let step = &spec.steps[0];
    let planted = names.container(step);
    let cancel = CancellationToken::new();
    // Planted before the setup: the setup already makes the step ahead.
    let options = CreateContainerOptionsBuilder::new().name(&planted).build();
    let planted_id = engine
        .docker()
        .create_container(
            Some(options),
            ContainerCreateBody {
                image: Some(TEST_IMAGE.into()),
                cmd: Some(vec!["true".into()]),
                labels: Some(forged(&spec)),
                ..ContainerCreateBody::default()
            },
        )
        .await
        .unwrap()
        .id;
    engine
        .setup_named(&spec, names, &cancel)
        .await
        .expect("setup");
    let err = engine.create(&spec, step, &cancel).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "container {planted:?} already exists and was not created by this step: refusing to use it"
        )
    );
    engine.destroy(&spec, &cancel).await.unwrap();
    assert_eq!(
        leftovers(&engine, &spec).await,
        [format!("container {planted}")],
        "only the planted container is left"
    );
    engine
        .docker()
        .remove_container(
            &planted_id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .unwrap();
}

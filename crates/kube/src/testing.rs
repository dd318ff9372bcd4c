//! Helpers for tests that need a cluster.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::ListParams;

use crate::{KubeEngine, KubeSettings, LABEL_STAGE};

/// The busybox image the test cluster's script builds (FROM scratch).
pub const TEST_IMAGE: &str = "runnerkit-kube/busybox:1";

/// Settings for the test cluster: no cluster DNS there (`dnsPolicy:
/// Default`), a short grace and schedule timeout.
pub fn test_settings() -> KubeSettings {
    KubeSettings {
        dns_policy: Some("Default".into()),
        stop_grace: Duration::from_secs(2),
        schedule_timeout: Duration::from_secs(5),
        ..KubeSettings::default()
    }
}

/// An engine on the current kubeconfig's cluster with [`test_settings`],
/// or `None` (with the reason printed) when none answers. With
/// `RUNNERKIT_REQUIRE_KUBE=1` (CI) a missing cluster panics instead.
pub async fn kube_or_skip() -> Option<KubeEngine> {
    let require = std::env::var("RUNNERKIT_REQUIRE_KUBE").is_ok_and(|v| v == "1");
    let fail = |why: String| {
        if require {
            panic!("RUNNERKIT_REQUIRE_KUBE=1 but {why}");
        }
        eprintln!("skipped: {why} (set KUBECONFIG to a cluster, e.g. from .ci/kube.sh)");
        None
    };
    let engine = match KubeEngine::connect(test_settings()).await {
        Ok(engine) => engine,
        Err(e) => {
            return fail(format!(
                "no Kubernetes cluster: {}",
                runnerkit_core::error_chain(&e)
            ));
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), engine.ping()).await {
        Ok(Ok(_)) => Some(engine),
        Ok(Err(e)) => fail(format!(
            "the cluster does not answer: {}",
            runnerkit_core::error_chain(&e)
        )),
        Err(_) => fail("the cluster does not answer within 10 s".into()),
    }
}

/// What is left of the stage `spec_id` in `namespace`: pods not being
/// deleted, and secrets.
pub async fn stage_leftovers(
    engine: &KubeEngine,
    namespace: &str,
    spec_id: &str,
) -> Result<Vec<String>, kube::Error> {
    let selector = format!("{LABEL_STAGE}={}", crate::names::pod_name(spec_id));
    let list = ListParams::default().labels(&selector);
    let pods: Api<Pod> = Api::namespaced(engine.client().clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(engine.client().clone(), namespace);
    let mut left = Vec::new();
    for pod in pods.list(&list).await? {
        if pod.metadata.deletion_timestamp.is_none() {
            left.push(format!("pod {}", pod.metadata.name.unwrap_or_default()));
        }
    }
    for secret in secrets.list(&list).await? {
        if secret.metadata.deletion_timestamp.is_none() {
            left.push(format!(
                "secret {}",
                secret.metadata.name.unwrap_or_default()
            ));
        }
    }
    Ok(left)
}

/// Creates (or replaces) the ConfigMap `name` in `namespace` holding `data`.
pub async fn put_config_map(
    engine: &KubeEngine,
    namespace: &str,
    name: &str,
    data: &[(&str, &str)],
) -> Result<(), kube::Error> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{DeleteParams, ObjectMeta, PostParams};
    let maps: Api<ConfigMap> = Api::namespaced(engine.client().clone(), namespace);
    match maps.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(e) if crate::error::is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    };
    maps.create(&PostParams::default(), &map).await.map(drop)
}

/// Deletes the ConfigMap `name` of `namespace`, if there is one.
pub async fn delete_config_map(
    engine: &KubeEngine,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let maps: Api<ConfigMap> = Api::namespaced(engine.client().clone(), namespace);
    match maps.delete(name, &kube::api::DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if crate::error::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

//! Deleting what runs that are gone left behind.

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta};
use runnerkit_core::creator::Creator;

use crate::engine::KubeEngine;
use crate::error::{Error, is_not_found};
use crate::names::LABEL_MANAGED;

/// What [`KubeEngine::prune`] deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// `namespace/name` of each pod deleted.
    pub pods: Vec<String>,
    /// `namespace/name` of each secret deleted.
    pub secrets: Vec<String>,
}

/// The creator of an object not already being deleted.
fn creator_of(meta: &ObjectMeta) -> Option<Creator> {
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let annotations = meta.annotations.as_ref()?;
    Creator::from_entries(|key| annotations.get(key).map(String::as_str))
}

fn full_name(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

impl KubeEngine {
    /// Deletes the pods and Secrets this engine's label marks whose creating
    /// process is gone (it ran on this host and has exited, or the host
    /// rebooted). Objects of live runners, of other hosts, or without our
    /// creator annotations are never touched. Looks in every namespace the
    /// client may list, else in the runner's default namespace.
    ///
    /// # Errors
    /// A list or delete that failed (not "not found").
    pub async fn prune(&self) -> Result<PruneReport, Error> {
        let here = self.creator().clone();
        let list = ListParams::default().labels(&format!("{LABEL_MANAGED}=true"));
        let mut report = PruneReport::default();
        let (pods, secrets): (Api<Pod>, Api<Secret>) = (
            Api::all(self.client().clone()),
            Api::all(self.client().clone()),
        );
        let (pods, secrets) = match pods.list(&list).await {
            Ok(_) => (pods, secrets),
            Err(e) if matches!(&e, kube::Error::Api(s) if s.code == 403) => {
                let ns = &self.settings().namespace;
                (
                    Api::namespaced(self.client().clone(), ns),
                    Api::namespaced(self.client().clone(), ns),
                )
            }
            Err(e) => return Err(Error::api("list pods")(e)),
        };
        for pod in pods.list(&list).await.map_err(Error::api("list pods"))? {
            if creator_of(&pod.metadata).is_some_and(|c| c.is_gone(&here)) {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(self.client().clone(), &ns);
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => report.pods.push(full_name(&pod.metadata)),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(Error::api(format!("delete pod {ns}/{name}"))(e)),
                }
            }
        }
        for secret in secrets
            .list(&list)
            .await
            .map_err(Error::api("list secrets"))?
        {
            if creator_of(&secret.metadata).is_some_and(|c| c.is_gone(&here)) {
                let ns = secret.metadata.namespace.clone().unwrap_or_default();
                let name = secret.metadata.name.clone().unwrap_or_default();
                let api: Api<Secret> = Api::namespaced(self.client().clone(), &ns);
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => report.secrets.push(full_name(&secret.metadata)),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(Error::api(format!("delete secret {ns}/{name}"))(e)),
                }
            }
        }
        Ok(report)
    }
}

//! The orphan reaper: removes what crashed runs left behind.

use runnerkit_core::CancellationToken;

use crate::engine::DockerEngine;
use crate::error::Error;
use crate::labels;
use crate::teardown::{self, Kind};

/// What [`DockerEngine::prune`] removed, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Containers removed (killed first when running), with their anonymous volumes.
    pub containers: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
    /// Volumes removed.
    pub volumes: Vec<String>,
}

impl PruneReport {
    /// True when nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

impl DockerEngine {
    /// Removes the containers, networks and volumes this engine's label
    /// scheme marks as runnerkit's whose creating process is gone: it ran on
    /// this host and has exited (a crash, a `kill -9`, a reboot since).
    ///
    /// Never touches an object without runnerkit's labels, one whose creator
    /// still runs (a stage in progress, in this process or another), nor
    /// one created on another host (its processes cannot be seen from here).
    /// Opt-in: nothing calls it implicitly.
    ///
    /// # Errors
    /// [`Error::Api`] naming the first object that could not be listed or
    /// removed (the others are still attempted), [`Error::Cancelled`] when
    /// `cancel` fires first.
    pub async fn prune(&self, cancel: &CancellationToken) -> Result<PruneReport, Error> {
        let work = async {
            let here = self.creator();
            let orphaned = |o: &teardown::Found| {
                labels::creator_of(&o.labels).is_some_and(|c| c.is_gone(here))
            };
            let (removed, failed) =
                teardown::remove_all(self.docker(), &labels::managed_filter(), orphaned).await;
            let mut report = PruneReport::default();
            for object in removed {
                tracing::info!(kind = %object.kind, name = %object.name, "pruned orphan");
                match object.kind {
                    Kind::Container => report.containers.push(object.name),
                    Kind::Network => report.networks.push(object.name),
                    Kind::Volume => report.volumes.push(object.name),
                }
            }
            match failed.into_iter().next() {
                None => Ok(report),
                Some(first) => Err(Error::api(first.operation, first.source)),
            }
        };
        tokio::select! {
            result = work => result,
            () = cancel.cancelled() => Err(Error::Cancelled { operation: "prune".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::VolumeCreateRequest;
    use runnerkit_core::creator::Creator;
    use runnerkit_core::{Engine, Spec, Workspace};

    use super::*;
    use crate::connect::ConnectOptions;

    /// The daemon, or `None` (printed) where there is none and none is required.
    async fn daemon() -> Option<DockerEngine> {
        match DockerEngine::connect_with(&ConnectOptions::from_env()).await {
            Ok(engine) => Some(engine),
            Err(e) => {
                let required = std::env::var("RUNNERKIT_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
                assert!(!required, "RUNNERKIT_REQUIRE_DOCKER=1 but no daemon: {e}");
                println!("skipped: no Docker daemon ({e})");
                None
            }
        }
    }

    fn spec(id: &str) -> Spec {
        Spec {
            id: format!("{id}-{}", std::process::id()),
            workspace: Workspace {
                base: "/drone/src".into(),
                ..Workspace::default()
            },
            ..Spec::default()
        }
    }

    fn names(found: &[teardown::Found]) -> Vec<String> {
        found.iter().map(|f| f.name.clone()).collect()
    }

    #[tokio::test]
    async fn prune_removes_orphans_only() {
        let Some(engine) = daemon().await else { return };
        let here = engine.creator().clone();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = Creator {
            pid: dead_pid,
            ..here.clone()
        };
        let elsewhere = Creator {
            host: "some-other-host".into(),
            pid: dead_pid,
            ..here.clone()
        };
        let cancel = CancellationToken::new();

        let live = spec("prune-live");
        engine.setup(&live, &cancel).await.unwrap();
        let orphan = spec("prune-orphan");
        let crashed = engine.impersonating(dead);
        crashed.setup(&orphan, &cancel).await.unwrap();
        let remote = spec("prune-remote");
        let other_host = engine.impersonating(elsewhere);
        other_host.setup(&remote, &cancel).await.unwrap();
        // Managed-looking but without creator labels: not ours to judge.
        let foreign = format!("rk-prune-foreign-{}", std::process::id());
        engine
            .docker()
            .create_volume(VolumeCreateRequest {
                name: Some(foreign.clone()),
                labels: Some(HashMap::from([(
                    labels::LABEL_MANAGED.to_owned(),
                    "true".to_owned(),
                )])),
                ..VolumeCreateRequest::default()
            })
            .await
            .unwrap();

        let orphan_names = crashed.stage_names(&orphan).unwrap();
        let report = engine.prune(&cancel).await.unwrap();
        let orphan_network = orphan_names.network();
        let orphan_volume = orphan_names.workspace_volume();
        assert!(report.networks.contains(&orphan_network), "{report:?}");
        assert!(report.volumes.contains(&orphan_volume), "{report:?}");

        let list = |id: String| {
            let docker = engine.docker().clone();
            async move {
                teardown::list(&docker, &labels::stage_filter(&id))
                    .await
                    .unwrap()
            }
        };
        assert!(list(orphan.id.clone()).await.is_empty());
        assert_eq!(
            list(live.id.clone()).await.len(),
            2,
            "the live stage is kept"
        );
        assert_eq!(
            list(remote.id.clone()).await.len(),
            2,
            "another host's stage is kept"
        );
        let kept = teardown::list(engine.docker(), &labels::managed_filter())
            .await
            .unwrap();
        assert!(
            names(&kept).contains(&foreign),
            "an object without creator labels is kept"
        );

        // Each by the engine that set it up: only it knows the run's token.
        engine.destroy(&live, &cancel).await.unwrap();
        other_host.destroy(&remote, &cancel).await.unwrap();
        assert!(list(live.id.clone()).await.is_empty());
        assert!(list(remote.id.clone()).await.is_empty());
        engine
            .docker()
            .remove_volume(
                &foreign,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
            .unwrap();
    }
}

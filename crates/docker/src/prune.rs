//! The orphan reaper: removes what crashed runs left behind.

use runnerkit_core::CancellationToken;

use crate::engine::DockerEngine;
use crate::error::Error;
use crate::labels::{self, Creator};
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
            let found = teardown::list(self.docker(), &labels::managed_filter())
                .await
                .map_err(|f| Error::Api {
                    operation: f.operation,
                    source: f.source,
                })?;
            let orphans: Vec<_> = found
                .into_iter()
                .filter(|o| Creator::from_labels(&o.labels).is_some_and(|c| c.is_gone(here)))
                .collect();
            let (removed, failed) = teardown::remove(self.docker(), &orphans).await;
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
                Some(first) => Err(Error::Api {
                    operation: first.operation,
                    source: first.source,
                }),
            }
        };
        tokio::select! {
            result = work => result,
            () = cancel.cancelled() => Err(Error::Cancelled { operation: "prune".into() }),
        }
    }
}

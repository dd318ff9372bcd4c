//! Removing Docker objects found by label: a stage's (for `destroy`) or an
//! orphan's (for `prune`). "Already gone" is success everywhere here.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use futures_util::future::join_all;

use crate::error::is_not_found;

/// The kinds of object a stage owns, in the order they must be removed
/// (containers hold the network and volumes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Container,
    Network,
    Volume,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Container => "container",
            Kind::Network => "network",
            Kind::Volume => "volume",
        })
    }
}

/// An object found by label: its kind, name and labels.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) labels: HashMap<String, String>,
}

/// A failed listing or removal.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What could not be done, e.g. `remove network "rk-1"`.
    pub(crate) operation: String,
    pub(crate) source: ApiError,
}

/// Every container (running or not), network and volume matching `filters`.
pub(crate) async fn list(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<Found>, Failure> {
    let failure = |what: &str| {
        let operation = format!("list {what}");
        move |source| Failure { operation, source }
    };
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(filters)
                .build(),
        ))
        .await
        .map_err(failure("containers"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(filters).build(),
        ))
        .await
        .map_err(failure("networks"))?;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(filters).build(),
        ))
        .await
        .map_err(failure("volumes"))?;

    let mut found = Vec::new();
    for c in containers {
        // Listed names carry a leading slash; the id serves when there is none.
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_owned())
            .or(c.id);
        if let Some(name) = name {
            found.push(Found {
                kind: Kind::Container,
                name,
                labels: c.labels.unwrap_or_default(),
            });
        }
    }
    for n in networks {
        if let Some(name) = n.name.or(n.id) {
            found.push(Found {
                kind: Kind::Network,
                name,
                labels: n.labels.unwrap_or_default(),
            });
        }
    }
    for v in volumes.volumes.unwrap_or_default() {
        found.push(Found {
            kind: Kind::Volume,
            name: v.name,
            labels: v.labels,
        });
    }
    Ok(found)
}

/// Removes `objects`: containers first (killed, with their anonymous
/// volumes), then networks, then volumes; each group concurrently. Returns
/// what was removed (or was already gone) and what failed.
pub(crate) async fn remove(docker: &Docker, objects: &[Found]) -> (Vec<Found>, Vec<Failure>) {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for kind in [Kind::Container, Kind::Network, Kind::Volume] {
        let group: Vec<&Found> = objects.iter().filter(|o| o.kind == kind).collect();
        let results = join_all(group.iter().map(|o| remove_one(docker, o))).await;
        for (object, result) in group.into_iter().zip(results) {
            match result {
                Ok(()) => removed.push(object.clone()),
                Err(e) if is_not_found(&e) => removed.push(object.clone()),
                Err(source) => failed.push(Failure {
                    operation: format!("remove {} {:?}", object.kind, object.name),
                    source,
                }),
            }
        }
    }
    (removed, failed)
}

async fn remove_one(docker: &Docker, object: &Found) -> Result<(), ApiError> {
    match object.kind {
        Kind::Container => {
            docker
                .remove_container(
                    &object.name,
                    Some(
                        RemoveContainerOptionsBuilder::new()
                            .force(true)
                            .v(true)
                            .build(),
                    ),
                )
                .await
        }
        Kind::Network => docker.remove_network(&object.name).await,
        Kind::Volume => {
            docker
                .remove_volume(
                    &object.name,
                    Some(RemoveVolumeOptionsBuilder::new().force(true).build()),
                )
                .await
        }
    }
}

//! Removing Docker objects found by label: a stage's (for `destroy`) or an
//! orphan's (for `prune`). "Already gone" is success everywhere here.
//!
//! Containers and networks are removed by the id the listing gave, never by
//! name: a name can be ambiguous (Docker lets networks share one) or be
//! taken by someone else's object between the listing and the removal.
//! Volumes have no id, only a name, and only the volumes the label filter
//! selected are removed.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use futures_util::future::join_all;

use crate::compat::known_states;
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

/// An object found by label: its kind, id, name and labels.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) kind: Kind,
    /// What removes it: the id of a container or network, a volume's name.
    pub(crate) id: String,
    /// What messages and reports show (the id when it has no name).
    pub(crate) name: String,
    pub(crate) labels: HashMap<String, String>,
}

impl Found {
    /// Whether `other` is the same object (its kind and id).
    fn same(&self, other: &Found) -> bool {
        self.kind == other.kind && self.id == other.id
    }
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
    let containers = list_containers(docker, filters)
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
    // An entry without an id cannot be removed safely; the daemon always
    // sends one.
    for c in containers {
        let Some(id) = c.id else { continue };
        // Listed names carry a leading slash; the id serves when there is none.
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned());
        found.push(Found {
            kind: Kind::Container,
            id,
            name,
            labels: c.labels.unwrap_or_default(),
        });
    }
    for n in networks {
        let Some(id) = n.id else { continue };
        found.push(Found {
            kind: Kind::Network,
            name: n.name.unwrap_or_else(|| id.clone()),
            id,
            labels: n.labels.unwrap_or_default(),
        });
    }
    for v in volumes.volumes.unwrap_or_default() {
        found.push(Found {
            kind: Kind::Volume,
            id: v.name.clone(),
            name: v.name,
            labels: v.labels,
        });
    }
    // Checked here too: a daemon that ignores a filter (Podman 4.3 lists
    // every volume whatever the label filter) must not make a teardown
    // remove another run's objects.
    found.retain(|object| matches_labels(&object.labels, filters));
    Ok(found)
}

/// Every container matching `filters` (see [`crate::compat::known_states`]).
async fn list_containers(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ContainerSummary>, ApiError> {
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(filters)
        .build();
    known_states(|| docker.list_containers(Some(options.clone()))).await
}

/// How many times [`remove_all`] lists and removes before it gives up on
/// objects that stay.
const REMOVAL_ROUNDS: u32 = 5;

/// The pause before a round that follows failed removals, times the round's
/// number: long enough for a container that is still stopping to stop.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Removes every object matching `filters` that `select` picks, listing
/// again after each removal until none is left: a daemon may report a
/// removal done while the object is still there (Podman, for a container
/// whose cleanup was running), or refuse one for a while (Podman, for a
/// container that is still stopping, and then for the network and volumes
/// that container holds). A failed removal is retried in the next round;
/// only what is still listed after the last round is a failure, with the
/// error its last removal gave. Returns what was removed and what failed.
pub(crate) async fn remove_all(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
    select: impl Fn(&Found) -> bool,
) -> (Vec<Found>, Vec<Failure>) {
    let mut removed: Vec<Found> = Vec::new();
    let mut failed: Vec<(Found, Failure)> = Vec::new();
    for round in 0..REMOVAL_ROUNDS {
        if !failed.is_empty() {
            tokio::time::sleep(RETRY_PAUSE * round).await;
        }
        let found: Vec<Found> = match list(docker, filters).await {
            Ok(found) => found.into_iter().filter(|o| select(o)).collect(),
            Err(failure) => return (removed, vec![failure]),
        };
        if found.is_empty() {
            return (removed, Vec::new());
        }
        let (gone, refused) = remove(docker, &found).await;
        for object in gone {
            if !removed.iter().any(|r| r.same(&object)) {
                removed.push(object);
            }
        }
        for (_, failure) in &refused {
            tracing::debug!(
                round,
                operation = %failure.operation,
                error = %failure.source,
                "removal refused; retrying"
            );
        }
        failed = refused;
    }
    let left: Vec<Found> = match list(docker, filters).await {
        Ok(found) => found.into_iter().filter(|o| select(o)).collect(),
        Err(failure) => return (removed, vec![failure]),
    };
    removed.retain(|r| !left.iter().any(|l| l.same(r)));
    (removed, remained(left, failed))
}

/// Failures for the objects still listed after the last round: the error
/// of an object's last removal, or "still present" when it was reported
/// removed.
fn remained(left: Vec<Found>, mut failed: Vec<(Found, Failure)>) -> Vec<Failure> {
    left.into_iter()
        .map(
            |object| match failed.iter().position(|(f, _)| f.same(&object)) {
                Some(i) => failed.swap_remove(i).1,
                None => Failure {
                    operation: format!("remove {} {:?}", object.kind, object.name),
                    source: ApiError::DockerResponseServerError {
                        status_code: 409,
                        message: format!("still present after {REMOVAL_ROUNDS} removals"),
                    },
                },
            },
        )
        .collect()
}

/// Whether `labels` hold every `key=value` (or bare `key`) of the `label`
/// filter in `filters`.
fn matches_labels(
    labels: &HashMap<String, String>,
    filters: &HashMap<String, Vec<String>>,
) -> bool {
    filters.get("label").is_none_or(|wanted| {
        wanted.iter().all(|entry| match entry.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
            None => labels.contains_key(entry.as_str()),
        })
    })
}

/// Removes `objects`: containers first (killed, with their anonymous
/// volumes), then networks, then volumes; each group concurrently. Returns
/// what was removed (or was already gone) and what failed, with why.
async fn remove(docker: &Docker, objects: &[Found]) -> (Vec<Found>, Vec<(Found, Failure)>) {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for kind in [Kind::Container, Kind::Network, Kind::Volume] {
        let group: Vec<&Found> = objects.iter().filter(|o| o.kind == kind).collect();
        let results = join_all(group.iter().map(|o| remove_one(docker, o))).await;
        for (object, result) in group.into_iter().zip(results) {
            match result {
                Ok(()) => removed.push(object.clone()),
                Err(e) if is_not_found(&e) => removed.push(object.clone()),
                Err(source) => failed.push((
                    object.clone(),
                    Failure {
                        operation: format!("remove {} {:?}", object.kind, object.name),
                        source,
                    },
                )),
            }
        }
    }
    (removed, failed)
}

/// Force-removes the container `id` (killed if running) with its anonymous
/// volumes.
pub(crate) async fn remove_container(docker: &Docker, id: &str) -> Result<(), ApiError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    docker.remove_container(id, Some(options)).await
}

async fn remove_one(docker: &Docker, object: &Found) -> Result<(), ApiError> {
    match object.kind {
        Kind::Container => remove_container(docker, &object.id).await,
        Kind::Network => docker.remove_network(&object.id).await,
        Kind::Volume => {
            docker
                .remove_volume(
                    &object.id,
                    Some(RemoveVolumeOptionsBuilder::new().force(true).build()),
                )
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_checked_against_the_label_filter() {
        let filters = HashMap::from([("label".to_owned(), vec!["a=1".to_owned(), "b".to_owned()])]);
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(matches_labels(&labels(&[("a", "1"), ("b", "")]), &filters));
        assert!(!matches_labels(&labels(&[("a", "2"), ("b", "")]), &filters));
        assert!(!matches_labels(&labels(&[("a", "1")]), &filters));
        assert!(matches_labels(&labels(&[]), &HashMap::new()));
    }
}

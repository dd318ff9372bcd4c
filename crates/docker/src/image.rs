//! Image references: the registry they live on, whether they name `latest`,
//! which credential goes with them, and how pull progress reads in a log.

use bollard::auth::DockerCredentials;
use bollard::models::CreateImageInfo;
use runnerkit_core::{PullPolicy, RegistryAuth};

/// The registry host of Docker Hub, however it is spelled.
const DOCKER_HUB: &str = "docker.io";

/// An image reference split into what the pull logic needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// Registry host, `docker.io` for Docker Hub.
    pub(crate) registry: String,
    /// True when neither a tag nor a digest is given, or the tag is `latest`.
    pub(crate) is_latest: bool,
    /// The reference with `:latest` added when it names neither a tag nor a
    /// digest: pulling a bare name would fetch every tag.
    pub(crate) pullable: String,
}

impl ImageRef {
    pub(crate) fn parse(image: &str) -> Self {
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (image, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let tag = name[last_slash..]
            .rsplit_once(':')
            .map(|(_, tag)| tag)
            .filter(|t| !t.is_empty());
        let registry = match name.split_once('/') {
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
                normalize_registry(first)
            }
            _ => DOCKER_HUB.to_owned(),
        };
        let is_latest = digest.is_none() && tag.is_none_or(|t| t == "latest");
        let pullable = if digest.is_none() && tag.is_none() {
            format!("{image}:latest")
        } else {
            image.to_owned()
        };
        Self {
            registry,
            is_latest,
            pullable,
        }
    }
}

/// A registry address as written in a credential (`https://index.docker.io/v1/`,
/// `ghcr.io`, `registry:5000`) reduced to its host, Docker Hub's aliases
/// folded into `docker.io`.
pub(crate) fn normalize_registry(address: &str) -> String {
    let without_scheme = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

/// The first credential whose registry host is the image's.
pub(crate) fn credentials_for(
    image: &ImageRef,
    registries: &[RegistryAuth],
) -> Option<DockerCredentials> {
    registries
        .iter()
        .find(|r| normalize_registry(&r.address) == image.registry)
        .map(|r| DockerCredentials {
            username: Some(r.username.clone()),
            password: Some(r.password.clone()),
            serveraddress: Some(r.address.clone()),
            ..DockerCredentials::default()
        })
}

/// Whether to pull before the first create attempt (reference §13): `always`
/// does, the default does for `latest`.
pub(crate) fn pull_first(policy: PullPolicy, image: &ImageRef) -> bool {
    match policy {
        PullPolicy::Always => true,
        PullPolicy::Default => image.is_latest,
        PullPolicy::IfNotExists | PullPolicy::Never => false,
    }
}

/// Whether a create that failed because the image is missing may pull and retry.
pub(crate) fn pull_when_missing(policy: PullPolicy) -> bool {
    !matches!(policy, PullPolicy::Never)
}

/// One pull progress message as a log line, or `None` for the byte-count
/// updates of a layer download (they would flood the log).
pub(crate) fn progress_line(info: &CreateImageInfo) -> Option<String> {
    let status = info.status.as_deref()?;
    let counting = info
        .progress_detail
        .as_ref()
        .is_some_and(|d| d.total.is_some() || d.current.is_some());
    if counting {
        return None;
    }
    Some(match info.id.as_deref() {
        Some(id) if !id.is_empty() => format!("{id}: {status}\n"),
        _ => format!("{status}\n"),
    })
}

#[cfg(test)]
mod tests {
    use bollard::models::ProgressDetail;

    use super::*;

    #[test]
    fn references_name_their_registry_and_tag() {
        let r = ImageRef::parse("alpine");
        assert_eq!(r.registry, "docker.io");
        assert!(r.is_latest);
        assert_eq!(r.pullable, "alpine:latest");

        let r = ImageRef::parse("ghcr.io/o/app:1.2");
        assert_eq!(r.registry, "ghcr.io");
        assert!(!r.is_latest);
        assert_eq!(r.pullable, "ghcr.io/o/app:1.2");

        let r = ImageRef::parse("localhost:5000/app");
        assert_eq!(r.registry, "localhost:5000");
        assert!(r.is_latest);
        assert_eq!(r.pullable, "localhost:5000/app:latest");

        let r = ImageRef::parse("library/busybox:latest");
        assert_eq!(r.registry, "docker.io");
        assert!(r.is_latest);

        let r = ImageRef::parse("busybox@sha256:abc");
        assert!(!r.is_latest);
        assert_eq!(r.pullable, "busybox@sha256:abc");
    }

    #[test]
    fn credentials_match_by_host_with_hub_aliases() {
        let regs = vec![
            RegistryAuth {
                address: "ghcr.io".into(),
                username: "g".into(),
                password: "gp".into(),
            },
            RegistryAuth {
                address: "https://index.docker.io/v1/".into(),
                username: "d".into(),
                password: "dp".into(),
            },
        ];
        let hub = credentials_for(&ImageRef::parse("alpine:3"), &regs).unwrap();
        assert_eq!(hub.username.as_deref(), Some("d"));
        let gh = credentials_for(&ImageRef::parse("ghcr.io/o/a"), &regs).unwrap();
        assert_eq!(gh.password.as_deref(), Some("gp"));
        assert!(credentials_for(&ImageRef::parse("quay.io/o/a"), &regs).is_none());
    }

    #[test]
    fn pull_policies_follow_the_reference() {
        let latest = ImageRef::parse("a");
        let pinned = ImageRef::parse("a:1");
        assert!(pull_first(PullPolicy::Always, &pinned));
        assert!(pull_first(PullPolicy::Default, &latest));
        assert!(!pull_first(PullPolicy::Default, &pinned));
        assert!(!pull_first(PullPolicy::IfNotExists, &latest));
        assert!(!pull_first(PullPolicy::Never, &latest));
        assert!(pull_when_missing(PullPolicy::Default));
        assert!(pull_when_missing(PullPolicy::IfNotExists));
        assert!(!pull_when_missing(PullPolicy::Never));
    }

    #[test]
    fn progress_keeps_status_changes_only() {
        let done = CreateImageInfo {
            id: Some("abc".into()),
            status: Some("Pull complete".into()),
            ..CreateImageInfo::default()
        };
        assert_eq!(
            progress_line(&done).as_deref(),
            Some("abc: Pull complete\n")
        );
        let counting = CreateImageInfo {
            id: Some("abc".into()),
            status: Some("Downloading".into()),
            progress_detail: Some(ProgressDetail {
                current: Some(10),
                total: Some(100),
            }),
            ..CreateImageInfo::default()
        };
        assert_eq!(progress_line(&counting), None);
        let summary = CreateImageInfo {
            status: Some("Status: Downloaded newer image for a:1".into()),
            ..CreateImageInfo::default()
        };
        assert_eq!(
            progress_line(&summary).as_deref(),
            Some("Status: Downloaded newer image for a:1\n")
        );
    }
}

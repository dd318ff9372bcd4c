//! The runner's settings for Kubernetes stages (Drone's names where Drone
//! has one).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Error;
use crate::quantity::{Amount, Resource};

/// The default placeholder image: what every container of a stage's pod
/// runs until its step starts (`crates/kube/placeholder/` builds it).
pub const DEFAULT_PLACEHOLDER: &str = "runnerkit/kube-placeholder:1";

/// How the engine places and sizes pods, and how long it waits for them.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeSettings {
    /// Namespace of a pipeline that names none (`DRONE_NAMESPACE_DEFAULT`).
    pub namespace: String,
    /// Service account of a pipeline that names none
    /// (`DRONE_SERVICE_ACCOUNT_DEFAULT`); without one the pod mounts no
    /// service-account token.
    pub service_account: Option<String>,
    /// Node selector of a pipeline without `node_selector`
    /// (`DRONE_NODE_SELECTOR_DEFAULT`, `k:v,k2:v2`).
    pub node_selector: BTreeMap<String, String>,
    /// Labels on every pod (`DRONE_LABELS_DEFAULT`).
    pub labels: BTreeMap<String, String>,
    /// Annotations on every pod (`DRONE_ANNOTATIONS_DEFAULT`).
    pub annotations: BTreeMap<String, String>,
    /// The stage's CPU request in millicores when the pipeline sets none
    /// (`DRONE_RESOURCE_REQUEST_CPU`, 100).
    pub request_cpu: u64,
    /// The stage's memory request in bytes (`DRONE_RESOURCE_REQUEST_MEMORY`, 100 MiB).
    pub request_memory: u64,
    /// Default and ceiling of each container's CPU limit, millicores; 0: none
    /// (`DRONE_RESOURCE_LIMIT_CPU`).
    pub limit_cpu: u64,
    /// Default and ceiling of each container's memory limit, bytes; 0: none
    /// (`DRONE_RESOURCE_LIMIT_MEMORY`).
    pub limit_memory: u64,
    /// Floor of each container's CPU request (`DRONE_RESOURCE_MIN_REQUEST_CPU`, 1).
    pub min_request_cpu: u64,
    /// Floor of each container's memory request (`DRONE_RESOURCE_MIN_REQUEST_MEMORY`, 4 MiB).
    pub min_request_memory: u64,
    /// The placeholder image (`DRONE_IMAGE_PLACEHOLDER`).
    pub placeholder: String,
    /// How long a step's container may take to start, pulls included
    /// (`DRONE_ENGINE_CONTAINER_START_TIMEOUT`, 480 s). Pull errors end it
    /// at once; this bounds a slow pull.
    pub start_timeout: Duration,
    /// How long a pod may stay unschedulable before the stage errors
    /// (`RUNNERKIT_KUBE_SCHEDULE_TIMEOUT`, 120 s): long enough for a
    /// cluster autoscaler, never forever.
    pub schedule_timeout: Duration,
    /// SIGTERM to SIGKILL when a step is stopped (the pod's termination
    /// grace; `RUNNERKIT_KUBE_STOP_GRACE`, 5 s).
    pub stop_grace: Duration,
    /// The pod's `dnsPolicy` (`RUNNERKIT_KUBE_DNS_POLICY`); unset: the
    /// cluster's default (`ClusterFirst`).
    pub dns_policy: Option<String>,
}

impl Default for KubeSettings {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            service_account: None,
            node_selector: BTreeMap::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            request_cpu: 100,
            request_memory: 100 << 20,
            limit_cpu: 0,
            limit_memory: 0,
            min_request_cpu: 1,
            min_request_memory: 4 << 20,
            placeholder: DEFAULT_PLACEHOLDER.into(),
            start_timeout: Duration::from_secs(480),
            schedule_timeout: Duration::from_secs(120),
            stop_grace: Duration::from_secs(5),
            dns_policy: None,
        }
    }
}

/// Every setting this crate reads, with its meaning: for help and docs.
pub const SETTINGS: [(&str, &str); 17] = [
    (
        "DRONE_NAMESPACE_DEFAULT",
        "namespace of a pipeline that names none (default)",
    ),
    (
        "DRONE_SERVICE_ACCOUNT_DEFAULT",
        "service account of a pipeline that names none",
    ),
    (
        "DRONE_NODE_SELECTOR_DEFAULT",
        "node selector of a pipeline without node_selector (k:v,k2:v2)",
    ),
    ("DRONE_LABELS_DEFAULT", "labels on every pod (k:v,...)"),
    (
        "DRONE_ANNOTATIONS_DEFAULT",
        "annotations on every pod (k:v,...)",
    ),
    (
        "DRONE_RESOURCE_REQUEST_CPU",
        "the stage's CPU request, millicores or a quantity (100)",
    ),
    (
        "DRONE_RESOURCE_REQUEST_MEMORY",
        "the stage's memory request (100MiB)",
    ),
    (
        "DRONE_RESOURCE_LIMIT_CPU",
        "default and ceiling of a container's CPU limit (none)",
    ),
    (
        "DRONE_RESOURCE_LIMIT_MEMORY",
        "default and ceiling of a container's memory limit (none)",
    ),
    (
        "DRONE_RESOURCE_MIN_REQUEST_CPU",
        "floor of a container's CPU request (1)",
    ),
    (
        "DRONE_RESOURCE_MIN_REQUEST_MEMORY",
        "floor of a container's memory request (4MiB)",
    ),
    (
        "DRONE_IMAGE_PLACEHOLDER",
        "the placeholder image (runnerkit/kube-placeholder:1)",
    ),
    (
        "DRONE_ENGINE_CONTAINER_START_TIMEOUT",
        "seconds a container may take to start (480)",
    ),
    (
        "RUNNERKIT_KUBE_SCHEDULE_TIMEOUT",
        "seconds a pod may stay unschedulable (120)",
    ),
    (
        "RUNNERKIT_KUBE_STOP_GRACE",
        "seconds from SIGTERM to SIGKILL of a stopped step (5)",
    ),
    (
        "RUNNERKIT_KUBE_DNS_POLICY",
        "the pods' dnsPolicy (the cluster's default)",
    ),
    (
        "DRONE_KUBERNETES_CONFIG",
        "kubeconfig path; unset: KUBECONFIG, ~/.kube/config, then in-cluster",
    ),
];

impl KubeSettings {
    /// The settings given in the process environment, defaults elsewhere.
    ///
    /// # Errors
    /// A setting that does not read, named.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings `get` gives (by variable name; blank is unset).
    ///
    /// # Errors
    /// A setting that does not read, named.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let bad = |name: &str, why: String| Error::Setting {
            name: name.to_owned(),
            why,
        };
        let amount = |name: &str, resource: Resource, default: u64| -> Result<u64, Error> {
            match get(name) {
                None => Ok(default),
                Some(text) => {
                    let amount = match text.parse::<u64>() {
                        Ok(n) => Amount::Integer(n),
                        Err(_) => Amount::Text(text),
                    };
                    amount.value(resource).map_err(|why| bad(name, why))
                }
            }
        };
        let seconds = |name: &str, default: Duration| -> Result<Duration, Error> {
            match get(name) {
                None => Ok(default),
                Some(text) => text
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| bad(name, format!("{text:?} is not a number of seconds"))),
            }
        };
        let map = |name: &str| -> Result<BTreeMap<String, String>, Error> {
            let Some(text) = get(name) else {
                return Ok(BTreeMap::new());
            };
            text.split(',')
                .filter(|pair| !pair.trim().is_empty())
                .map(|pair| {
                    pair.split_once(':')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .ok_or_else(|| bad(name, format!("{pair:?} is not key:value")))
                })
                .collect()
        };
        let d = Self::default();
        Ok(Self {
            namespace: get("DRONE_NAMESPACE_DEFAULT").unwrap_or(d.namespace),
            service_account: get("DRONE_SERVICE_ACCOUNT_DEFAULT"),
            node_selector: map("DRONE_NODE_SELECTOR_DEFAULT")?,
            labels: map("DRONE_LABELS_DEFAULT")?,
            annotations: map("DRONE_ANNOTATIONS_DEFAULT")?,
            request_cpu: amount("DRONE_RESOURCE_REQUEST_CPU", Resource::Cpu, d.request_cpu)?,
            request_memory: amount(
                "DRONE_RESOURCE_REQUEST_MEMORY",
                Resource::Memory,
                d.request_memory,
            )?,
            limit_cpu: amount("DRONE_RESOURCE_LIMIT_CPU", Resource::Cpu, d.limit_cpu)?,
            limit_memory: amount(
                "DRONE_RESOURCE_LIMIT_MEMORY",
                Resource::Memory,
                d.limit_memory,
            )?,
            min_request_cpu: amount(
                "DRONE_RESOURCE_MIN_REQUEST_CPU",
                Resource::Cpu,
                d.min_request_cpu,
            )?,
            min_request_memory: amount(
                "DRONE_RESOURCE_MIN_REQUEST_MEMORY",
                Resource::Memory,
                d.min_request_memory,
            )?,
            placeholder: get("DRONE_IMAGE_PLACEHOLDER").unwrap_or(d.placeholder),
            start_timeout: seconds("DRONE_ENGINE_CONTAINER_START_TIMEOUT", d.start_timeout)?,
            schedule_timeout: seconds("RUNNERKIT_KUBE_SCHEDULE_TIMEOUT", d.schedule_timeout)?,
            stop_grace: seconds("RUNNERKIT_KUBE_STOP_GRACE", d.stop_grace)?,
            dns_policy: get("RUNNERKIT_KUBE_DNS_POLICY"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_drones_names_and_units() {
        let env = BTreeMap::from([
            ("DRONE_NAMESPACE_DEFAULT", "ci"),
            ("DRONE_RESOURCE_REQUEST_CPU", "250"),
            ("DRONE_RESOURCE_REQUEST_MEMORY", "1GiB"),
            ("DRONE_RESOURCE_LIMIT_CPU", "1.5"),
            ("DRONE_NODE_SELECTOR_DEFAULT", "disk:ssd, zone:a"),
            ("RUNNERKIT_KUBE_STOP_GRACE", "9"),
        ]);
        let s = KubeSettings::from_lookup(|k| env.get(k).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(s.namespace, "ci");
        assert_eq!((s.request_cpu, s.request_memory), (250, 1 << 30));
        assert_eq!(
            s.limit_cpu, 1500,
            "a quantity: 1.5 cores (an integer is millicores)"
        );
        assert_eq!(s.node_selector["zone"], "a");
        assert_eq!(s.stop_grace, Duration::from_secs(9));
        let bad = KubeSettings::from_lookup(|k| {
            (k == "DRONE_RESOURCE_REQUEST_CPU").then(|| "lots".to_owned())
        })
        .unwrap_err();
        assert!(
            bad.to_string().contains("DRONE_RESOURCE_REQUEST_CPU"),
            "{bad}"
        );
    }
}

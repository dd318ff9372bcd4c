//! The runner's settings for Kubernetes stages (Drone's names where Drone
//! has one).

use std::collections::BTreeMap;
use std::time::Duration;

use runnerkit_core::settings::{self, Setting};

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
    /// The kubeconfig file (`DRONE_KUBERNETES_CONFIG`); unset: `KUBECONFIG`,
    /// `~/.kube/config`, then the pod's service account.
    pub kubeconfig: Option<String>,
}

/// The table's defaults (what [`KubeSettings::from_lookup`] gives when
/// nothing is set).
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
            kubeconfig: None,
        }
    }
}

impl KubeSettings {
    /// The settings given in the process environment, defaults elsewhere.
    ///
    /// # Errors
    /// A setting that does not read, named.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings `get` gives (by variable name; blank is unset), the
    /// table's defaults ([`runnerkit_core::settings`], group `Kubernetes`)
    /// elsewhere.
    ///
    /// # Errors
    /// A setting that does not read, named.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let value = |setting: &Setting| setting.value_in(&get);
        let bad = |setting: &Setting, why: String| Error::Setting {
            name: setting.name.to_owned(),
            why,
        };
        let amount = |setting: &Setting, resource: Resource| -> Result<u64, Error> {
            let Some(text) = value(setting) else {
                return Ok(0);
            };
            let amount = match text.parse::<u64>() {
                Ok(n) => Amount::Integer(n),
                Err(_) => Amount::Text(text),
            };
            amount.value(resource).map_err(|why| bad(setting, why))
        };
        let seconds = |setting: &Setting| -> Result<Duration, Error> {
            let Some(text) = value(setting) else {
                return Ok(Duration::ZERO);
            };
            text.parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| bad(setting, format!("{text:?} is not a number of seconds")))
        };
        let map = |setting: &Setting| -> Result<BTreeMap<String, String>, Error> {
            let Some(text) = value(setting) else {
                return Ok(BTreeMap::new());
            };
            text.split(',')
                .filter(|pair| !pair.trim().is_empty())
                .map(|pair| {
                    pair.split_once(':')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .ok_or_else(|| bad(setting, format!("{pair:?} is not key:value")))
                })
                .collect()
        };
        Ok(Self {
            namespace: value(&settings::NAMESPACE_DEFAULT).unwrap_or_default(),
            service_account: value(&settings::SERVICE_ACCOUNT_DEFAULT),
            node_selector: map(&settings::NODE_SELECTOR_DEFAULT)?,
            labels: map(&settings::LABELS_DEFAULT)?,
            annotations: map(&settings::ANNOTATIONS_DEFAULT)?,
            request_cpu: amount(&settings::RESOURCE_REQUEST_CPU, Resource::Cpu)?,
            request_memory: amount(&settings::RESOURCE_REQUEST_MEMORY, Resource::Memory)?,
            limit_cpu: amount(&settings::RESOURCE_LIMIT_CPU, Resource::Cpu)?,
            limit_memory: amount(&settings::RESOURCE_LIMIT_MEMORY, Resource::Memory)?,
            min_request_cpu: amount(&settings::RESOURCE_MIN_REQUEST_CPU, Resource::Cpu)?,
            min_request_memory: amount(&settings::RESOURCE_MIN_REQUEST_MEMORY, Resource::Memory)?,
            placeholder: value(&settings::IMAGE_PLACEHOLDER).unwrap_or_default(),
            start_timeout: seconds(&settings::CONTAINER_START_TIMEOUT)?,
            schedule_timeout: seconds(&settings::SCHEDULE_TIMEOUT)?,
            stop_grace: seconds(&settings::KUBE_STOP_GRACE)?,
            dns_policy: value(&settings::KUBE_DNS_POLICY),
            kubeconfig: value(&settings::KUBERNETES_CONFIG),
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

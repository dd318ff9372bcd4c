//! The keys of Drone's kube dialect beyond the shared ones, as
//! [`EngineKeys`]: read by the stage assembly, linted, and handed to the
//! engine typed on `Spec::options` and `Step::options`.

use std::collections::BTreeMap;

use runnerkit_manifest::{EngineDocument, EngineKeys, LintError, PipelineType};
use serde::{Deserialize, Serialize};

use crate::quantity::{Amount, Resource};

/// The `type` name of Kubernetes pipelines.
pub const TYPE_NAME: &str = "kubernetes";

/// `type: kubernetes`: container steps with the kube dialect's keys.
pub fn pipeline_type() -> PipelineType {
    PipelineType::container(TYPE_NAME).with_keys(KubeKeys)
}

/// The kube dialect's keys (see the crate docs for each).
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeKeys;

/// `metadata:` of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// The pod's namespace.
    pub namespace: String,
    /// Extra pod labels.
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    pub annotations: BTreeMap<String, String>,
}

/// One of `tolerations:`. Both `toleration_seconds` and Drone's
/// `tolerationseconds` spelling are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Toleration {
    /// Taint key.
    pub key: String,
    /// `Exists` or `Equal`.
    pub operator: String,
    /// Taint value.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
    /// How long a `NoExecute` taint is tolerated.
    #[serde(alias = "tolerationseconds")]
    pub toleration_seconds: Option<i64>,
}

/// `dns_config:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsConfig {
    /// Name servers.
    pub nameservers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// Resolver options.
    pub options: Vec<DnsOption>,
}

/// One of `dns_config.options`; a number as `value` is read as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsOption {
    /// Option name (`ndots`).
    pub name: String,
    /// Its value.
    #[serde(deserialize_with = "text_or_number")]
    pub value: Option<String>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::Text(t) => t,
        Raw::Int(i) => i.to_string(),
        Raw::Float(f) => f.to_string(),
    }))
}

/// One of `host_aliases:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostAlias {
    /// The address.
    pub ip: String,
    /// Names for it.
    pub hostnames: Vec<String>,
}

/// CPU and memory amounts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Amounts {
    /// CPU: integer millicores or a quantity string.
    pub cpu: Option<Amount>,
    /// Memory: integer bytes, a quantity or a size string.
    pub memory: Option<Amount>,
}

impl Amounts {
    /// `(millicores, bytes)`, `None` where unset; problems as messages.
    pub(crate) fn values(&self) -> (Result<Option<u64>, String>, Result<Option<u64>, String>) {
        (
            self.cpu
                .as_ref()
                .map(|a| a.value(Resource::Cpu))
                .transpose(),
            self.memory
                .as_ref()
                .map(|a| a.value(Resource::Memory))
                .transpose(),
        )
    }

    fn is_set(&self) -> bool {
        self.cpu.is_some() || self.memory.is_some()
    }
}

/// `resources:` of a pipeline or step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceKeys {
    /// Per container limits (steps only; a lint error at the stage level).
    pub limits: Amounts,
    /// Requests: the whole pod's at the stage level, one container's at a step.
    pub requests: Amounts,
}

/// A pipeline `volumes:` entry, for the kinds only this engine knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeVolume {
    /// The name steps mount it by.
    pub name: String,
    /// `temp:` (the shared compiler reads it too; here for its `medium`).
    pub temp: Option<TempKeys>,
    /// A PersistentVolumeClaim of the namespace.
    pub claim: Option<ClaimVolume>,
    /// A ConfigMap of the namespace.
    pub config_map: Option<ObjectVolume>,
    /// A Secret of the namespace.
    pub secret: Option<ObjectVolume>,
}

/// `temp:` of a volume, as this engine reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TempKeys {
    /// `memory` (any case) for a tmpfs.
    pub medium: String,
}

/// `claim:` of a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaimVolume {
    /// The claim's name.
    pub name: String,
    /// Mount it read-only.
    pub read_only: bool,
}

/// `config_map:` or `secret:` of a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectVolume {
    /// The object's name.
    pub name: String,
    /// File mode; unset leaves Kubernetes' default (0644), unlike Drone's 0.
    pub default_mode: Option<i32>,
    /// Start even when the object is missing.
    pub optional: Option<bool>,
}

/// A step's `volumes:` entry, for `sub_path`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeMount {
    /// The pipeline volume.
    pub name: String,
    /// Where it is mounted.
    pub path: String,
    /// The path inside the volume to mount instead of its root.
    pub sub_path: String,
}

/// The pipeline-level keys of the kube dialect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubePipeline {
    /// Namespace, labels and annotations of the pod.
    pub metadata: Metadata,
    /// The pod's service account.
    pub service_account_name: String,
    /// The pod's node selector; absent means the runner's default.
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Pins the pod to a node.
    pub node_name: String,
    /// The pod's tolerations.
    pub tolerations: Vec<Toleration>,
    /// The pod's DNS configuration.
    pub dns_config: Option<DnsConfig>,
    /// Extra `/etc/hosts` entries.
    pub host_aliases: Vec<HostAlias>,
    /// The stage's requests (`requests` only).
    pub resources: ResourceKeys,
    /// The pipeline's volumes, for the kube-only kinds.
    pub volumes: Vec<KubeVolume>,
}

/// A step's (or service's) keys of the kube dialect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeStep {
    /// Limits and requests of the step's container.
    pub resources: ResourceKeys,
    /// `user:` as a uid (the shared key; kube needs a number).
    pub user: Option<IdValue>,
    /// `group:` as a gid.
    pub group: Option<IdValue>,
    /// The step's mounts, for `sub_path`.
    pub volumes: Vec<KubeMount>,
}

/// A `user:` or `group:` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IdValue {
    /// A numeric id.
    Number(i64),
    /// Text, which must hold a number.
    Text(String),
}

impl IdValue {
    /// The id, if it is a number.
    pub fn id(&self) -> Option<i64> {
        match self {
            IdValue::Number(n) => Some(*n),
            IdValue::Text(t) => t.trim().parse().ok(),
        }
    }
}

/// Names that cannot be volume names: the pod's own volumes.
const RESERVED: [&str; 3] = ["workspace", "_workspace", "_status"];

impl EngineKeys for KubeKeys {
    type Pipeline = KubePipeline;
    type Step = KubeStep;

    fn pipeline_keys(&self) -> &[&'static str] {
        &[
            "metadata",
            "service_account_name",
            "node_selector",
            "node_name",
            "tolerations",
            "dns_config",
            "host_aliases",
            "resources",
        ]
    }

    fn step_keys(&self) -> &[&'static str] {
        &["resources", "group"]
    }

    fn volume_keys(&self) -> &[&'static str] {
        &["claim", "config_map", "secret"]
    }

    fn mount_keys(&self) -> &[&'static str] {
        &["sub_path"]
    }

    fn lint(&self, doc: &EngineDocument<KubePipeline, KubeStep>, trusted: bool) -> Vec<LintError> {
        let mut problems = Vec::new();
        let p = &doc.pipeline;
        let mut pipeline_problem = |message: String| problems.push(doc.problem(None, 0, message));
        if p.resources.limits.cpu.is_some() {
            pipeline_problem("cpu limit cannot be applied at stage level".into());
        }
        if p.resources.limits.memory.is_some() {
            pipeline_problem("memory limit cannot be applied at stage level".into());
        }
        let (cpu, memory) = p.resources.requests.values();
        for e in [cpu.err(), memory.err()].into_iter().flatten() {
            pipeline_problem(format!("resources.requests.{e}"));
        }
        for (key, value) in p.metadata.labels.iter() {
            if let Some(why) = label_problem(key, value) {
                pipeline_problem(format!("metadata.labels: {why}"));
            }
        }
        for v in &p.volumes {
            let kind =
                if v.claim.is_some() {
                    Some("PVC")
                } else if v.config_map.is_some() {
                    Some("configMap")
                } else if v.secret.is_some() {
                    Some("secret")
                } else if v.temp.as_ref().is_some_and(|t| {
                    t.medium.eq_ignore_ascii_case("memory") && t.medium != "memory"
                }) {
                    // `memory` itself is refused by the shared lint.
                    Some("in-memory")
                } else {
                    None
                };
            if let (false, Some(kind)) = (trusted, kind) {
                pipeline_problem(format!(
                    "untrusted repositories cannot mount {kind} volumes ({})",
                    v.name
                ));
            }
            if RESERVED.contains(&v.name.as_str()) {
                pipeline_problem(format!("invalid volume name: {}", v.name));
            }
        }
        if !trusted {
            // A pod in another namespace reaches that namespace's Secrets,
            // claims and accounts: the runner's operator chooses it.
            let gated = [
                ("metadata.namespace", !p.metadata.namespace.is_empty()),
                // Labels steer Services and NetworkPolicies; annotations,
                // admission webhooks and meshes.
                ("metadata.labels", !p.metadata.labels.is_empty()),
                ("metadata.annotations", !p.metadata.annotations.is_empty()),
                ("service_account_name", !p.service_account_name.is_empty()),
                ("node_name", !p.node_name.is_empty()),
                ("node_selector", p.node_selector.is_some()),
                ("tolerations", !p.tolerations.is_empty()),
                ("dns_config", p.dns_config.is_some()),
                ("host_aliases", !p.host_aliases.is_empty()),
            ];
            for (key, used) in gated {
                if used {
                    pipeline_problem(format!(
                        "untrusted repositories cannot set {key} (mark the repository trusted)"
                    ));
                }
            }
        }
        for step in &doc.steps {
            let o = &step.options;
            let mut step_problem =
                |message: String| problems.push(doc.problem(Some(step), 0, message));
            for (level, amounts) in [
                ("limits", &o.resources.limits),
                ("requests", &o.resources.requests),
            ] {
                let (cpu, memory) = amounts.values();
                for e in [cpu.err(), memory.err()].into_iter().flatten() {
                    step_problem(format!("resources.{level}.{e}"));
                }
            }
            for (key, id) in [("user", &o.user), ("group", &o.group)] {
                match id.as_ref().map(|v| (v, v.id())) {
                    Some((IdValue::Text(t), None)) => step_problem(format!(
                        "{key}: {t:?} is not a number; Kubernetes runs a container as a numeric id"
                    )),
                    Some((_, Some(0))) if !trusted && key == "user" => step_problem(
                        "untrusted repositories cannot run a step as user 0".to_owned(),
                    ),
                    _ => {}
                }
            }
            if o.resources.limits.is_set() || o.resources.requests.is_set() {
                // Requests above limits are refused by Kubernetes at pod creation:
                // say so here, with the step's line.
                let (lc, lm) = o.resources.limits.values();
                let (rc, rm) = o.resources.requests.values();
                for (what, limit, request) in [("cpu", lc, rc), ("memory", lm, rm)] {
                    if let (Ok(Some(l)), Ok(Some(r))) = (limit, request)
                        && r > l
                    {
                        step_problem(format!(
                            "resources.requests.{what} is above resources.limits.{what}"
                        ));
                    }
                }
            }
        }
        problems
    }
}

/// Why `key: value` cannot be a Kubernetes label, if it cannot.
pub(crate) fn label_problem(key: &str, value: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if !is_label_value(name) || name.is_empty() {
        return Some(format!("{key:?} is not a valid label key"));
    }
    if !is_label_value(value) {
        return Some(format!(
            "{key}: {value:?} is not a valid label value (63 characters at most: letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
        ));
    }
    None
}

/// A valid label value (empty is valid).
pub(crate) fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    value.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_none_or(u8::is_ascii_alphanumeric)
        && bytes.last().is_none_or(u8::is_ascii_alphanumeric)
}

//! The compiled pipeline of one stage, as an engine sees it.
//!
//! A [`Spec`] is what `runnerkit-manifest` produces from a `.drone.yml`
//! pipeline and what an [`Engine`](crate::Engine) executes. It is plain data:
//! every field serializes with serde (`runnerkit compile` prints it), empty
//! fields are left out of the JSON, and nothing here depends on the pipeline
//! language, so an engine can be driven by a Spec built any other way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::EngineOptions;

/// One stage, compiled: stage-wide settings plus its steps in declaration order.
///
/// Steps are identified by their index in [`Spec::steps`] everywhere in the
/// runtime and in hooks; names are unique within a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spec {
    /// Unique identifier of this run of the stage. Engines derive the names of
    /// the objects they create (networks, volumes, temp directories) from it,
    /// so two runs of the same pipeline never collide.
    pub id: String,
    /// The platform the stage asked for.
    #[serde(skip_serializing_if = "Platform::is_empty")]
    pub platform: Platform,
    /// The shared workspace every step sees.
    pub workspace: Workspace,
    /// Settings of the stage network (container engines create one per stage).
    #[serde(skip_serializing_if = "Network::is_empty")]
    pub network: Network,
    /// Volumes declared by the pipeline; steps mount them by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Stage-wide secret values. Every value with `mask` set is masked in
    /// every step's log, whether or not a step uses it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    /// Registry credentials, matched by registry host to each step's image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistryAuth>,
    /// Labels put on every object an engine creates for this stage; they
    /// identify the runner and the stage (and let an orphan reaper find them).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The steps, services included (as detached steps), in declaration order.
    /// Only steps that may run are here: a step whose `when` does not match
    /// is left out by the compiler, its dependents waiting for its own
    /// dependencies instead.
    pub steps: Vec<Step>,
    /// Run the steps as a DAG even when none declares `depends_on` (each
    /// then starts at once). The compiler sets it for a pipeline that is a
    /// graph whose every edge led to a step that does not run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub graph: bool,
    /// The engine's own stage-wide options (pipeline keys it declared when
    /// its type was registered); empty for engines that declare none.
    #[serde(skip_serializing_if = "EngineOptions::is_empty")]
    pub options: EngineOptions,
}

impl Spec {
    /// The index of the step named `name`, if any.
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// True when no step declares `depends_on` (and [`graph`](Self::graph)
    /// is not set): the steps then run one after another in declaration
    /// order instead of as a DAG.
    pub fn is_serial(&self) -> bool {
        !self.graph && self.steps.iter().all(|s| s.depends_on.is_empty())
    }

    /// Every secret value that must be masked in logs: the stage's and every
    /// step's, with `mask` set, in a stable order, duplicates included.
    pub fn masked_values(&self) -> impl Iterator<Item = &str> {
        let stage = self
            .secrets
            .iter()
            .filter(|s| s.mask)
            .map(|s| s.value.as_str());
        let steps = self
            .steps
            .iter()
            .flat_map(|step| step.secrets.iter())
            .filter(|s| s.mask)
            .map(|s| s.value.as_str());
        stage.chain(steps)
    }
}

/// The platform a stage targets (`platform:` in the pipeline).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Platform {
    /// Operating system, e.g. `linux`, `windows`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os: String,
    /// CPU architecture, e.g. `amd64`, `arm64`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// Architecture variant, e.g. `v7`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// OS or kernel version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl Platform {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Where the source lives while the stage runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workspace {
    /// Mount point of the shared workspace in every step (`/drone/src` by default).
    pub base: String,
    /// Path of the source below `base`; the default working directory is
    /// `base` joined with `path`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// A host directory to use as the workspace instead of a fresh one
    /// (`runnerkit exec` uses the directory holding the pipeline file).
    /// Container engines bind-mount it at `base`; the host engine runs steps in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
}

impl Workspace {
    /// `base` joined with `path`: the default working directory of every step.
    pub fn full_path(&self) -> String {
        if self.path.is_empty() {
            self.base.clone()
        } else {
            format!(
                "{}/{}",
                self.base.trim_end_matches('/'),
                self.path.trim_start_matches('/')
            )
        }
    }
}

/// Settings of the stage network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    /// Driver options passed when the network is created.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl Network {
    fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

/// A volume declared by the pipeline (`volumes:` at pipeline level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The name steps mount it by.
    pub name: String,
    /// What backs it.
    #[serde(flatten)]
    pub source: VolumeSource,
}

/// What backs a [`Volume`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeSource {
    /// A scratch volume that lives as long as the stage.
    Temp {
        /// Keep it in memory (tmpfs) instead of on disk.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        memory: bool,
        /// Size limit in bytes; 0 means none.
        #[serde(default, skip_serializing_if = "crate::serde_util::is_zero")]
        size_limit: u64,
    },
    /// A directory (or device) of the host, mounted read-write.
    Host {
        /// Absolute path on the host.
        path: String,
    },
}

/// A registry credential: sent when a step's image lives on `address`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    /// Registry host, e.g. `docker.io`, `ghcr.io`, `registry.example.com:5000`.
    pub address: String,
    /// User name.
    pub username: String,
    /// Password or token. Never printed by `Debug`.
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &"******")
            .finish()
    }
}

/// A stage-wide secret value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    /// The secret's name (as `from_secret` refers to it).
    pub name: String,
    /// The value. Never printed by `Debug`.
    pub value: String,
    /// Mask the value in every step's log.
    #[serde(default)]
    pub mask: bool,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("value", &"******")
            .field("mask", &self.mask)
            .finish()
    }
}

/// A secret given to one step as an environment variable.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVar {
    /// The environment variable the value is put in.
    pub env: String,
    /// The value. Never printed by `Debug`.
    pub value: String,
    /// Mask the value in every step's log.
    #[serde(default)]
    pub mask: bool,
}

impl std::fmt::Debug for SecretVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVar")
            .field("env", &self.env)
            .field("value", &"******")
            .field("mask", &self.mask)
            .finish()
    }
}

/// One step of a stage (a service is a step with `detach` set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// Unique identifier of this step within the run; engines may use it to
    /// name what they create (a container, a script file).
    pub id: String,
    /// The step's name, unique within the spec.
    pub name: String,
    /// Container image (empty for engines that do not use images).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// When to pull the image.
    #[serde(skip_serializing_if = "PullPolicy::is_default")]
    pub pull: PullPolicy,
    /// Overrides the image's entrypoint. Ignored when `script` is set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// Arguments to the entrypoint. Ignored when `script` is set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// A shell script to run instead of `entrypoint`/`command` (a pipeline's
    /// `commands`, compiled). How it reaches the shell is the engine's choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<Script>,
    /// Environment variables (secrets are in `secrets`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Secrets exposed as environment variables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretVar>,
    /// Volumes of the spec mounted into this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Mount>,
    /// Host devices exposed to this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// Working directory; empty means the workspace's full path, except for
    /// a detached step without a script (a service running its image's own
    /// entrypoint), which starts in its image's working directory.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// User to run as; empty means the image's or the engine's default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Names of steps that must finish before this one starts.
    ///
    /// Shared, because generated pipelines give whole layers of steps the same
    /// list: steps holding the same `Arc` cost one list, and the runtime
    /// checks it once (`vec![..].into()` or `collect()` builds one).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub depends_on: Arc<[String]>,
    /// When the step runs, given the stage's state.
    #[serde(skip_serializing_if = "RunPolicy::is_default")]
    pub run_policy: RunPolicy,
    /// What a non-zero exit does to the stage.
    #[serde(skip_serializing_if = "ErrorPolicy::is_default")]
    pub error_policy: ErrorPolicy,
    /// Start and do not wait: a service or a detached step.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub detach: bool,
    /// Run with extended privileges.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Memory, shared-memory and CPU limits.
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// Container network mode (e.g. `host`); empty means the stage network.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    /// DNS servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// DNS search domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Extra `/etc/hosts` entries, `host:ip`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Labels for what the engine creates for this step.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Longest the step may run before it is killed; `None` means no limit
    /// beyond the stage's. Serialized as whole seconds.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::opt_secs"
    )]
    pub timeout: Option<Duration>,
    /// The engine's own options for this step (step or service keys it
    /// declared when its type was registered).
    #[serde(skip_serializing_if = "EngineOptions::is_empty")]
    pub options: EngineOptions,
}

impl Step {
    /// A step with just a name; the rest at defaults. Handy in tests.
    pub fn named(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            id: name.clone(),
            name,
            ..Self::default()
        }
    }
}

/// A shell script a step runs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The shell that runs it, e.g. `/bin/sh`.
    pub shell: String,
    /// The script's text. It already echoes each command (`+ make`) and stops
    /// at the first failure (`set -e`).
    pub body: String,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("shell", &self.shell)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// A volume mounted into a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Name of a [`Volume`] of the spec.
    pub name: String,
    /// Mount point inside the step.
    pub path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A host device exposed to a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Name of a host [`Volume`] of the spec whose path is the device.
    pub name: String,
    /// Path of the device inside the step.
    pub path: String,
}

/// Resource limits of a step; zero means "no limit" / the engine's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Memory limit in bytes.
    #[serde(skip_serializing_if = "crate::serde_util::is_zero")]
    pub mem_limit: u64,
    /// Memory plus swap limit in bytes.
    #[serde(skip_serializing_if = "crate::serde_util::is_zero")]
    pub memswap_limit: u64,
    /// Size of `/dev/shm` in bytes.
    #[serde(skip_serializing_if = "crate::serde_util::is_zero")]
    pub shm_size: u64,
    /// CPU quota in microseconds per `cpu_period`.
    #[serde(skip_serializing_if = "crate::serde_util::is_zero")]
    pub cpu_quota: u64,
    /// CPU period in microseconds.
    #[serde(skip_serializing_if = "crate::serde_util::is_zero")]
    pub cpu_period: u64,
    /// Relative CPU weight.
    #[serde(skip_serializing_if = "crate::serde_util::is_zero")]
    pub cpu_shares: u64,
    /// CPUs the step may run on, e.g. `0-1`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cpu_set: String,
}

impl Resources {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// When an image is pulled before a step's container is created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Pull when the tag is `latest` (explicit or implied), else only when absent.
    #[default]
    Default,
    /// Pull before every create.
    Always,
    /// Pull only when the image is absent.
    IfNotExists,
    /// Never pull; a missing image is a step error.
    Never,
}

impl PullPolicy {
    fn is_default(&self) -> bool {
        *self == Self::Default
    }
}

/// When a step runs, given how the stage is going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunPolicy {
    /// Run unless the stage has failed (the default).
    #[default]
    OnSuccess,
    /// Run only if the stage has failed.
    OnFailure,
    /// Run whatever happened, except after a cancellation.
    Always,
}

impl RunPolicy {
    fn is_default(&self) -> bool {
        *self == Self::OnSuccess
    }
}

/// What a step's non-zero exit does to the stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorPolicy {
    /// The stage fails (the default).
    #[default]
    Fail,
    /// The step shows `failure` but the stage does not fail.
    Ignore,
    /// The stage fails and everything else is cancelled at once.
    FailFast,
}

impl ErrorPolicy {
    fn is_default(&self) -> bool {
        *self == Self::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_left_out_of_json() {
        let spec = Spec {
            id: "s1".into(),
            steps: vec![Step::named("build")],
            ..Spec::default()
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            json,
            r#"{"id":"s1","workspace":{"base":""},"steps":[{"id":"build","name":"build"}]}"#
        );
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn policies_and_volumes_serialize_as_drone_spells_them() {
        let step = Step {
            run_policy: RunPolicy::OnFailure,
            error_policy: ErrorPolicy::FailFast,
            pull: PullPolicy::IfNotExists,
            timeout: Some(Duration::from_secs(90)),
            ..Step::named("x")
        };
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["run_policy"], "on-failure");
        assert_eq!(json["error_policy"], "fail-fast");
        assert_eq!(json["pull"], "if-not-exists");
        assert_eq!(json["timeout"], 90);
        let vol = Volume {
            name: "ram".into(),
            source: VolumeSource::Temp {
                memory: true,
                size_limit: 1024,
            },
        };
        let json = serde_json::to_string(&vol).unwrap();
        assert_eq!(
            json,
            r#"{"name":"ram","temp":{"memory":true,"size_limit":1024}}"#
        );
        assert_eq!(serde_json::from_str::<Volume>(&json).unwrap(), vol);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = SecretVar {
            env: "TOKEN".into(),
            value: "hunter2".into(),
            mask: true,
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        let r = RegistryAuth {
            address: "docker.io".into(),
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn workspace_full_path_joins_base_and_path() {
        let mut ws = Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        };
        assert_eq!(ws.full_path(), "/drone/src");
        ws.path = "github.com/o/r".into();
        assert_eq!(ws.full_path(), "/drone/src/github.com/o/r");
    }

    #[test]
    fn masked_values_cover_stage_and_steps() {
        let spec = Spec {
            secrets: vec![
                Secret {
                    name: "a".into(),
                    value: "A".into(),
                    mask: true,
                },
                Secret {
                    name: "b".into(),
                    value: "B".into(),
                    mask: false,
                },
            ],
            steps: vec![Step {
                secrets: vec![SecretVar {
                    env: "C".into(),
                    value: "C".into(),
                    mask: true,
                }],
                ..Step::named("s")
            }],
            ..Spec::default()
        };
        assert_eq!(spec.masked_values().collect::<Vec<_>>(), ["A", "C"]);
    }
}

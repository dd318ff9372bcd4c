//! runnerkit's Kubernetes [`Engine`](runnerkit_core::Engine): every stage is
//! one pod, every step one of its containers, for `type: kubernetes`
//! pipelines in Drone's kube dialect.
//!
//! ```no_run
//! # async fn demo() -> Result<(), runnerkit_kube::Error> {
//! use runnerkit_kube::{KubeEngine, KubeSettings};
//!
//! // DRONE_KUBERNETES_CONFIG, KUBECONFIG, ~/.kube/config or the in-cluster account.
//! let engine = KubeEngine::connect(KubeSettings::from_env()?).await?;
//! println!("API server {}", engine.ping().await?);
//! # Ok(()) }
//! ```
//!
//! # What a stage becomes
//!
//! | spec | Kubernetes object |
//! | --- | --- |
//! | the stage | a pod `rk-<spec id>`, `restartPolicy: Never`, in the pipeline's namespace or the runner's |
//! | a step or service | a container of the pod, on the placeholder image until it starts |
//! | `workspace` | an `emptyDir` mounted at the workspace base in every container |
//! | the steps' secrets | a Secret named like the pod, owned by it; containers read it through `secretKeyRef` |
//! | registry credentials | a `kubernetes.io/dockerconfigjson` Secret, the pod's pull secret |
//! | `temp` / `host` / `claim` / `config_map` / `secret` volume | `emptyDir` (`Memory` medium) / `hostPath` / PVC / ConfigMap / Secret |
//!
//! A pod's containers are fixed when it is made; only their images change.
//! So every container starts on the placeholder (a static binary at
//! `/bin/sh` that sleeps until SIGTERM) and `start` sets the step's image:
//! the kubelet stops the placeholder and runs the step, with its image's own
//! entrypoint when the step names none. A stopped step (cancel, timeout) is
//! set back to the placeholder: the kubelet sends it SIGTERM and, after the
//! pod's grace, SIGKILL; the rest of the stage keeps running until
//! `destroy` deletes the pod and its Secrets, without waiting for the pod
//! object to vanish.
//!
//! Every outcome is read from one watch of the pod: exit codes and
//! `OOMKilled`, pull failures (`ErrImagePull`, `ImagePullBackOff`,
//! `ErrImageNeverPull`, `InvalidImageName`), containers that cannot run,
//! an unschedulable pod (after [`KubeSettings::schedule_timeout`]). Logs are
//! followed with timestamps from each container's first byte; a follow that
//! ends before its container does is resumed without duplicates.
//!
//! Every object carries `io.runnerkit.managed` and `io.runnerkit.stage`
//! labels and, in annotations, who created it ([`runnerkit_core::creator`]):
//! [`KubeEngine::prune`] deletes what processes that are gone left behind,
//! and nothing else. Design notes and measurements: `docs/kubernetes.md`.
//!
//! # Features
//!
//! | feature | brings |
//! | --- | --- |
//! | `testing` | the `testing` module: `kube_or_skip()`, `stage_leftovers()` |
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod engine;
mod error;
mod keys;
mod logs;
mod names;
mod pod;
mod prune;
mod quantity;
mod settings;
mod status;
#[cfg(feature = "testing")]
pub mod testing;
mod watch;

/// The engine's name in errors and logs.
pub const ENGINE: &str = "kubernetes";

pub use engine::KubeEngine;
pub use error::Error;
pub use keys::{
    Amounts, ClaimVolume, DnsConfig, DnsOption, HostAlias, IdValue, KubeKeys, KubeMount,
    KubePipeline, KubeStep, KubeVolume, Metadata, ObjectVolume, ResourceKeys, TYPE_NAME, TempKeys,
    Toleration, pipeline_type,
};
pub use names::{ANNOTATION_STAGE_ID, LABEL_MANAGED, LABEL_STAGE};
pub use prune::PruneReport;
pub use quantity::{Amount, Resource};
pub use settings::{DEFAULT_PLACEHOLDER, KubeSettings};

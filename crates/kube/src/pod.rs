//! A stage as Kubernetes objects: one pod (one container per step, every
//! one on the placeholder image), the Secret holding the steps' secrets and
//! the pull secret. Pure: no API call here.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HostAlias,
    HostPathVolumeSource, LocalObjectReference, PersistentVolumeClaimVolumeSource, Pod,
    PodDNSConfig, PodDNSConfigOption, PodSpec, ResourceRequirements, Secret, SecretKeySelector,
    SecretVolumeSource, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use runnerkit_core::creator::Creator;
use runnerkit_core::{PullPolicy, Spec, Step, VolumeSource};

use crate::keys::{KubePipeline, KubeStep};
use crate::names;
use crate::quantity::{cpu_quantity, memory_quantity};
use crate::settings::KubeSettings;

/// The pod's volume holding the workspace.
pub(crate) const WORKSPACE_VOLUME: &str = "workspace";
/// The environment variable holding a script step's script (Drone's).
pub(crate) const SCRIPT_ENV: &str = "DRONE_SCRIPT";

/// What `setup` creates for a stage.
#[derive(Debug, Clone)]
pub(crate) struct StagePlan {
    /// The namespace of every object.
    pub(crate) namespace: String,
    /// The pod.
    pub(crate) pod: Pod,
    /// The steps' secrets (always made, so every `secretKeyRef` resolves).
    pub(crate) secret: Secret,
    /// Registry credentials, when the stage has any.
    pub(crate) pull_secret: Option<Secret>,
    /// Container name of each step, in `spec.steps` order.
    pub(crate) containers: Vec<String>,
}

/// The namespace of `spec`'s objects: the pipeline's, else the runner's.
pub(crate) fn namespace_of(spec: &Spec, settings: &KubeSettings) -> String {
    let pipeline: KubePipeline = names::read(&spec.options);
    match pipeline.metadata.namespace.as_str() {
        "" => settings.namespace.clone(),
        ns => ns.to_owned(),
    }
}

/// The objects of `spec`.
pub(crate) fn plan(spec: &Spec, settings: &KubeSettings, creator: &Creator) -> StagePlan {
    let pipeline: &KubePipeline = &names::read(&spec.options);
    let namespace = namespace_of(spec, settings);
    let pod_name = names::pod_name(&spec.id);
    let labels = object_labels(&pod_name, pipeline, settings);
    let mut annotations: BTreeMap<String, String> = spec.labels.clone();
    annotations.extend(settings.annotations.clone());
    annotations.extend(pipeline.metadata.annotations.clone());
    annotations.extend(creator.entries().map(|(k, v)| (k.to_owned(), v)));
    annotations.insert(names::ANNOTATION_STAGE_ID.into(), spec.id.clone());

    let containers: Vec<String> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| names::container_name(i, step))
        .collect();
    let volumes = pod_volumes(spec, pipeline);
    let shares = request_shares(spec, pipeline, settings);

    let mut secret_data = BTreeMap::new();
    let mut pod_containers = Vec::with_capacity(spec.steps.len());
    for (i, step) in spec.steps.iter().enumerate() {
        let keys: &KubeStep = &names::read(&step.options);
        let mut env: Vec<EnvVar> = step
            .environment
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: Some(escape_dollars(value)),
                value_from: None,
            })
            .collect();
        for (j, secret) in step.secrets.iter().enumerate() {
            let key = format!("s{i}-{j}");
            secret_data.insert(key.clone(), secret.value.clone());
            env.retain(|e| e.name != secret.env);
            env.push(EnvVar {
                name: secret.env.clone(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: pod_name.clone(),
                        key,
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
            });
        }
        let (command, args) = command_of(step, &mut env);
        let working_dir = match step.working_dir.as_str() {
            "" if step.detach && step.script.is_none() => None,
            "" => Some(spec.workspace.full_path()),
            dir => Some(dir.to_owned()),
        };
        let mut mounts = vec![VolumeMount {
            name: WORKSPACE_VOLUME.into(),
            mount_path: spec.workspace.base.clone(),
            ..VolumeMount::default()
        }];
        for mount in &step.volumes {
            let Some(index) = spec.volumes.iter().position(|v| v.name == mount.name) else {
                continue;
            };
            let sub_path = keys
                .volumes
                .iter()
                .find(|m| m.name == mount.name && m.path == mount.path)
                .map(|m| m.sub_path.clone())
                .filter(|s| !s.is_empty());
            mounts.push(VolumeMount {
                name: names::volume_name(index),
                mount_path: mount.path.clone(),
                read_only: mount.read_only.then_some(true),
                sub_path,
                ..VolumeMount::default()
            });
        }
        let user = keys.user.as_ref().and_then(|u| u.id());
        let group = keys.group.as_ref().and_then(|g| g.id());
        pod_containers.push(Container {
            name: containers[i].clone(),
            image: Some(settings.placeholder.clone()),
            image_pull_policy: Some(pull_policy(step.pull).into()),
            command,
            args,
            env: Some(env),
            working_dir,
            volume_mounts: Some(mounts),
            resources: Some(shares[i].requirements()),
            security_context: Some(SecurityContext {
                privileged: step.privileged.then_some(true),
                run_as_user: user,
                run_as_group: group,
                ..SecurityContext::default()
            }),
            ..Container::default()
        });
    }

    // Secrets carry who made them too: prune may meet one without its pod.
    let ownership: BTreeMap<String, String> = creator
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain([(names::ANNOTATION_STAGE_ID.to_owned(), spec.id.clone())])
        .collect();
    let pull_secret = (!spec.registries.is_empty()).then(|| Secret {
        metadata: ObjectMeta {
            name: Some(names::pull_secret_name(&pod_name)),
            namespace: Some(namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(ownership.clone()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        string_data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            docker_config(spec),
        )])),
        ..Secret::default()
    });

    let service_account = match pipeline.service_account_name.as_str() {
        "" => settings.service_account.clone(),
        name => Some(name.to_owned()),
    };
    let mut node_selector = match &pipeline.node_selector {
        Some(selector) => selector.clone(),
        None => settings.node_selector.clone(),
    };
    // The stage's platform is where it must run: a selector, not Drone's
    // pod label that steers nothing (an arm64 stage on an amd64 node).
    for (key, value) in [
        ("kubernetes.io/os", &spec.platform.os),
        ("kubernetes.io/arch", &spec.platform.arch),
    ] {
        if !value.is_empty() {
            node_selector
                .entry(key.to_owned())
                .or_insert_with(|| value.clone());
        }
    }
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(pod_name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: pod_containers,
            restart_policy: Some("Never".into()),
            termination_grace_period_seconds: Some(
                i64::try_from(settings.stop_grace.as_secs()).unwrap_or(i64::MAX),
            ),
            // No token for a pod that asked for no account: a pull
            // request's steps get no API credentials by default.
            automount_service_account_token: Some(service_account.is_some()),
            service_account_name: service_account,
            enable_service_links: Some(false),
            node_selector: (!node_selector.is_empty()).then_some(node_selector),
            node_name: (!pipeline.node_name.is_empty()).then(|| pipeline.node_name.clone()),
            tolerations: (!pipeline.tolerations.is_empty()).then(|| {
                pipeline
                    .tolerations
                    .iter()
                    .map(|t| Toleration {
                        key: non_empty(&t.key),
                        operator: non_empty(&t.operator),
                        value: non_empty(&t.value),
                        effect: non_empty(&t.effect),
                        toleration_seconds: t.toleration_seconds,
                    })
                    .collect()
            }),
            dns_policy: settings.dns_policy.clone(),
            dns_config: pipeline.dns_config.as_ref().map(|d| PodDNSConfig {
                nameservers: Some(d.nameservers.clone()),
                searches: Some(d.searches.clone()),
                options: Some(
                    d.options
                        .iter()
                        .map(|o| PodDNSConfigOption {
                            name: non_empty(&o.name),
                            value: o.value.clone(),
                        })
                        .collect(),
                ),
            }),
            host_aliases: host_aliases(spec, pipeline),
            image_pull_secrets: pull_secret.as_ref().map(|s| {
                vec![LocalObjectReference {
                    name: s.metadata.name.clone().unwrap_or_default(),
                }]
            }),
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(pod_name),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: Some(ownership),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        string_data: Some(secret_data),
        ..Secret::default()
    };
    StagePlan {
        namespace,
        pod,
        secret,
        pull_secret,
        containers,
    }
}

/// Ours last, so a pipeline cannot disguise its pod as another stage's.
fn object_labels(
    pod_name: &str,
    pipeline: &KubePipeline,
    settings: &KubeSettings,
) -> BTreeMap<String, String> {
    let mut labels = settings.labels.clone();
    labels.extend(
        pipeline
            .metadata
            .labels
            .iter()
            .filter(|(k, _)| !k.starts_with("io.runnerkit."))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    labels.insert(names::LABEL_MANAGED.into(), "true".into());
    labels.insert(names::LABEL_STAGE.into(), pod_name.to_owned());
    labels
}

/// The script steps run Drone's way (`echo "$DRONE_SCRIPT" | <shell>`), under
/// a `/bin/sh` that, as the container's PID 1, passes a SIGTERM on to every
/// process of the step (PID 1 without a handler would ignore it, and the
/// step's own `trap`s would never run) and exits with the script's status.
const SCRIPT_RUNNER: &str = r#"trap 'kill -TERM -1 2>/dev/null' TERM
echo "$DRONE_SCRIPT" | SHELL &
pid=$!
while :; do wait "$pid"; status=$?; kill -0 "$pid" 2>/dev/null || break; done
exit "$status""#;

/// The container's `command` and `args`. Every container first runs the
/// placeholder, whose only binary is `/bin/sh`: a step that names its own
/// entrypoint goes through `/bin/sh -c exec ...` so that the placeholder can
/// stand in for it.
fn command_of(step: &Step, env: &mut Vec<EnvVar>) -> (Option<Vec<String>>, Option<Vec<String>>) {
    if let Some(script) = &step.script {
        env.push(EnvVar {
            name: SCRIPT_ENV.into(),
            value: Some(escape_dollars(&script.body)),
            value_from: None,
        });
        let runner = SCRIPT_RUNNER.replace("SHELL", &script.shell);
        return (
            Some(vec!["/bin/sh".into(), "-c".into(), escape_dollars(&runner)]),
            None,
        );
    }
    if !step.entrypoint.is_empty() {
        let words: Vec<String> = step
            .entrypoint
            .iter()
            .chain(&step.command)
            .map(|w| sh_quote(w))
            .collect();
        let line = format!("exec {}", words.join(" "));
        return (
            Some(vec!["/bin/sh".into(), "-c".into(), escape_dollars(&line)]),
            None,
        );
    }
    if !step.command.is_empty() {
        return (
            None,
            Some(step.command.iter().map(|c| escape_dollars(c)).collect()),
        );
    }
    (None, None)
}

/// Kubernetes expands `$(NAME)` and turns `$$` into `$` in env values,
/// commands and args; doubling every `$` delivers the text unchanged.
fn escape_dollars(text: &str) -> String {
    text.replace('$', "$$")
}

fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn pull_policy(pull: PullPolicy) -> &'static str {
    match pull {
        PullPolicy::Always => "Always",
        PullPolicy::Never => "Never",
        _ => "IfNotPresent",
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The workspace, then the spec's volumes (`v0`, `v1`, ...), each with the
/// kube-only kind its pipeline entry names, if any.
fn pod_volumes(spec: &Spec, pipeline: &KubePipeline) -> Vec<Volume> {
    let mut volumes = vec![Volume {
        name: WORKSPACE_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    for (i, volume) in spec.volumes.iter().enumerate() {
        let keys = pipeline.volumes.iter().find(|v| v.name == volume.name);
        let mut pod_volume = Volume {
            name: names::volume_name(i),
            ..Volume::default()
        };
        if let Some(claim) = keys.and_then(|k| k.claim.as_ref()) {
            pod_volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.name.clone(),
                read_only: claim.read_only.then_some(true),
            });
        } else if let Some(map) = keys.and_then(|k| k.config_map.as_ref()) {
            pod_volume.config_map = Some(ConfigMapVolumeSource {
                name: map.name.clone(),
                default_mode: map.default_mode,
                optional: map.optional,
                ..ConfigMapVolumeSource::default()
            });
        } else if let Some(secret) = keys.and_then(|k| k.secret.as_ref()) {
            pod_volume.secret = Some(SecretVolumeSource {
                secret_name: Some(secret.name.clone()),
                default_mode: secret.default_mode,
                optional: secret.optional,
                ..SecretVolumeSource::default()
            });
        } else {
            match &volume.source {
                VolumeSource::Host { path } => {
                    pod_volume.host_path = Some(HostPathVolumeSource {
                        path: path.clone(),
                        type_: Some("DirectoryOrCreate".into()),
                    });
                }
                VolumeSource::Temp { memory, size_limit } => {
                    // The shared compiler reads `medium` case-sensitively;
                    // Kubernetes users write `Memory`.
                    let memory = *memory
                        || keys
                            .and_then(|k| k.temp.as_ref())
                            .is_some_and(|t| t.medium.eq_ignore_ascii_case("memory"));
                    pod_volume.empty_dir = Some(EmptyDirVolumeSource {
                        medium: memory.then(|| "Memory".to_owned()),
                        size_limit: (memory && *size_limit > 0)
                            .then(|| Quantity(memory_quantity(*size_limit))),
                    });
                }
            }
        }
        volumes.push(pod_volume);
    }
    volumes
}

/// `127.0.0.1` under the names of the services and detached steps (every
/// container shares the pod's network), then the pipeline's own entries.
fn host_aliases(spec: &Spec, pipeline: &KubePipeline) -> Option<Vec<HostAlias>> {
    let names: Vec<String> = spec
        .steps
        .iter()
        .filter(|s| s.detach && names::is_dns_label(&s.name))
        .map(|s| s.name.clone())
        .collect();
    let mut aliases = Vec::new();
    if !names.is_empty() {
        aliases.push(HostAlias {
            ip: "127.0.0.1".into(),
            hostnames: Some(names),
        });
    }
    aliases.extend(
        pipeline
            .host_aliases
            .iter()
            .filter(|a| !a.hostnames.is_empty())
            .map(|a| HostAlias {
                ip: a.ip.clone(),
                hostnames: Some(a.hostnames.clone()),
            }),
    );
    (!aliases.is_empty()).then_some(aliases)
}

/// One container's limits and requests, in millicores and bytes (0: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Share {
    pub(crate) limit_cpu: u64,
    pub(crate) limit_memory: u64,
    pub(crate) request_cpu: u64,
    pub(crate) request_memory: u64,
}

impl Share {
    fn requirements(&self) -> ResourceRequirements {
        let mut limits = BTreeMap::new();
        let mut requests = BTreeMap::new();
        if self.limit_cpu > 0 {
            limits.insert("cpu".to_owned(), Quantity(cpu_quantity(self.limit_cpu)));
        }
        if self.limit_memory > 0 {
            limits.insert(
                "memory".to_owned(),
                Quantity(memory_quantity(self.limit_memory)),
            );
        }
        if self.request_cpu > 0 {
            requests.insert("cpu".to_owned(), Quantity(cpu_quantity(self.request_cpu)));
        }
        if self.request_memory > 0 {
            requests.insert(
                "memory".to_owned(),
                Quantity(memory_quantity(self.request_memory)),
            );
        }
        ResourceRequirements {
            limits: (!limits.is_empty()).then_some(limits),
            requests: (!requests.is_empty()).then_some(requests),
            ..ResourceRequirements::default()
        }
    }
}

/// Each container's resources.
///
/// A limit is the step's, lowered to the runner's cap (or the cap alone).
/// A step that states its own request gets it; the stage's request (the
/// pipeline's, else the runner's) is split evenly over the others in units
/// of 1 millicore and 4 MiB, so that the pod asks the scheduler for what the
/// stage asked. Each request is at least the runner's floor and at most the
/// container's limit.
pub(crate) fn request_shares(
    spec: &Spec,
    pipeline: &KubePipeline,
    settings: &KubeSettings,
) -> Vec<Share> {
    const MEMORY_UNIT: u64 = 4 << 20;
    let (stage_cpu, stage_memory) = pipeline.resources.requests.values();
    let stage_cpu = stage_cpu.ok().flatten().unwrap_or(settings.request_cpu);
    let stage_memory = stage_memory
        .ok()
        .flatten()
        .unwrap_or(settings.request_memory);
    let capped = |own: Option<u64>, cap: u64| match (own.filter(|v| *v > 0), cap) {
        (Some(own), 0) => own,
        (Some(own), cap) => own.min(cap),
        (None, cap) => cap,
    };
    let mut shares: Vec<(Share, Option<u64>, Option<u64>)> = spec
        .steps
        .iter()
        .map(|step| {
            let keys: KubeStep = names::read(&step.options);
            let (limit_cpu, limit_memory) = keys.resources.limits.values();
            let (own_cpu, own_memory) = keys.resources.requests.values();
            let share = Share {
                limit_cpu: capped(limit_cpu.ok().flatten(), settings.limit_cpu),
                limit_memory: capped(limit_memory.ok().flatten(), settings.limit_memory),
                ..Share::default()
            };
            (share, own_cpu.ok().flatten(), own_memory.ok().flatten())
        })
        .collect();
    let split = |total: u64, unit: u64, count: usize, index: usize| -> u64 {
        if count == 0 {
            return 0;
        }
        let units = total.div_ceil(unit);
        let count = count as u64;
        let index = index as u64;
        (units / count + u64::from(index < units % count)) * unit
    };
    let sharing_cpu: Vec<usize> = (0..shares.len())
        .filter(|i| shares[*i].1.is_none())
        .collect();
    let sharing_memory: Vec<usize> = (0..shares.len())
        .filter(|i| shares[*i].2.is_none())
        .collect();
    for (i, (share, own_cpu, own_memory)) in shares.iter_mut().enumerate() {
        let cpu = own_cpu.unwrap_or_else(|| {
            let position = sharing_cpu.iter().position(|j| *j == i).unwrap_or(0);
            split(stage_cpu, 1, sharing_cpu.len(), position)
        });
        let memory = own_memory.unwrap_or_else(|| {
            let position = sharing_memory.iter().position(|j| *j == i).unwrap_or(0);
            split(stage_memory, MEMORY_UNIT, sharing_memory.len(), position)
        });
        let at_most = |value: u64, limit: u64| if limit > 0 { value.min(limit) } else { value };
        share.request_cpu = at_most(cpu.max(settings.min_request_cpu), share.limit_cpu);
        share.request_memory = at_most(memory.max(settings.min_request_memory), share.limit_memory);
    }
    shares.into_iter().map(|(share, _, _)| share).collect()
}

/// A Docker `config.json` with the stage's registry credentials.
fn docker_config(spec: &Spec) -> String {
    let auths: serde_json::Map<String, serde_json::Value> = spec
        .registries
        .iter()
        .map(|r| {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", r.username, r.password));
            (r.address.clone(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    serde_json::json!({ "auths": auths }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnerkit_core::{
        EngineOptions, Mount, Script, SecretVar, Volume as SpecVolume, Workspace,
    };

    use crate::keys::{Amounts, KubeVolume, ObjectVolume, ResourceKeys};
    use crate::quantity::Amount;

    fn spec(steps: Vec<Step>) -> Spec {
        Spec {
            id: "rk12-1700000000".into(),
            workspace: Workspace {
                base: "/drone/src".into(),
                ..Workspace::default()
            },
            steps,
            ..Spec::default()
        }
    }

    fn step(name: &str) -> Step {
        Step {
            id: format!("id-{name}"),
            image: "busybox".into(),
            ..Step::named(name)
        }
    }

    #[test]
    fn every_container_starts_on_the_placeholder_with_its_own_command() {
        let script = Step {
            script: Some(Script {
                shell: "/bin/sh".into(),
                body: "echo $HOME $$ $(date)\n".into(),
            }),
            secrets: vec![SecretVar {
                env: "TOKEN".into(),
                value: "hunter2".into(),
                mask: true,
            }],
            ..step("build")
        };
        let plugin = Step {
            entrypoint: vec!["/usr/bin/tool".into(), "it's".into()],
            command: vec!["--flag".into()],
            ..step("plugin")
        };
        let plan = plan(
            &spec(vec![script, plugin]),
            &KubeSettings::default(),
            &Creator::current(),
        );
        let pod = plan.pod.spec.as_ref().unwrap();
        assert!(
            pod.containers
                .iter()
                .all(|c| c.image.as_deref() == Some(crate::settings::DEFAULT_PLACEHOLDER))
        );
        let build = &pod.containers[0];
        let env = build.env.as_ref().unwrap();
        let script_env = env.iter().find(|e| e.name == SCRIPT_ENV).unwrap();
        assert_eq!(
            script_env.value.as_deref(),
            Some("echo $$HOME $$$$ $$(date)\n"),
            "Kubernetes turns $$ back into $"
        );
        let token = env.iter().find(|e| e.name == "TOKEN").unwrap();
        assert!(
            token.value.is_none(),
            "a secret's value is not in the pod spec"
        );
        let reference = token
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(reference.name, plan.secret.metadata.name.clone().unwrap());
        assert_eq!(
            plan.secret.string_data.as_ref().unwrap()[&reference.key],
            "hunter2"
        );
        let plugin = &pod.containers[1];
        assert_eq!(
            plugin.command.as_ref().unwrap()[2],
            "exec /usr/bin/tool 'it'\\''s' --flag"
        );
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.node_selector, None, "no platform, no selector");
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn the_stage_request_is_split_and_limits_capped() {
        let limited = Step {
            options: EngineOptions::new(KubeStep {
                resources: ResourceKeys {
                    limits: Amounts {
                        cpu: None,
                        memory: Some(Amount::Text("256Mi".into())),
                    },
                    ..ResourceKeys::default()
                },
                ..KubeStep::default()
            }),
            ..step("a")
        };
        let mut s = spec(vec![step("clone"), limited, step("b")]);
        s.options = EngineOptions::new(KubePipeline {
            resources: ResourceKeys {
                requests: Amounts {
                    cpu: Some(Amount::Integer(1000)),
                    memory: Some(Amount::Text("1Gi".into())),
                },
                ..ResourceKeys::default()
            },
            ..KubePipeline::default()
        });
        let shares = request_shares(&s, s.options.get().unwrap(), &KubeSettings::default());
        let cpu: Vec<u64> = shares.iter().map(|s| s.request_cpu).collect();
        let mem: Vec<u64> = shares.iter().map(|s| s.request_memory >> 20).collect();
        assert_eq!(cpu, [334, 333, 333]);
        assert_eq!(mem, [344, 256, 340], "A's request is lowered to its limit");
        assert_eq!(shares[1].limit_memory, 256 << 20);
    }

    #[test]
    fn kube_volume_kinds_replace_the_shared_temp_volume() {
        let mut s = spec(vec![Step {
            volumes: vec![Mount {
                name: "conf".into(),
                path: "/etc/app".into(),
                read_only: false,
            }],
            ..step("a")
        }]);
        s.platform.arch = "arm64".into();
        s.volumes = vec![SpecVolume {
            name: "conf".into(),
            source: VolumeSource::Temp {
                memory: false,
                size_limit: 0,
            },
        }];
        s.options = EngineOptions::new(KubePipeline {
            volumes: vec![KubeVolume {
                name: "conf".into(),
                config_map: Some(ObjectVolume {
                    name: "app-config".into(),
                    ..ObjectVolume::default()
                }),
                ..KubeVolume::default()
            }],
            ..KubePipeline::default()
        });
        let plan = plan(&s, &KubeSettings::default(), &Creator::current());
        let pod = plan.pod.spec.unwrap();
        let selector = pod.node_selector.clone().unwrap();
        assert_eq!(
            selector["kubernetes.io/arch"], "arm64",
            "the stage's platform"
        );
        let volume = &pod.volumes.unwrap()[1];
        let map = volume.config_map.as_ref().unwrap();
        assert_eq!(map.name, "app-config");
        assert_eq!(map.default_mode, None, "Kubernetes' 0644, not Drone's 0");
        assert!(volume.empty_dir.is_none());
        let mounts = pod.containers[0].volume_mounts.as_ref().unwrap();
        assert_eq!(mounts[1].mount_path, "/etc/app");
    }
}

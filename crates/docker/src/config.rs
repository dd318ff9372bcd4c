//! A step's container configuration, built from the [`Spec`] and [`Step`]
//! alone: no I/O, so every field mapping is unit-tested.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HostConfig, Mount, MountTmpfsOptions,
    MountType, NetworkingConfig,
};
use runnerkit_core::{EngineError, EngineErrorKind, Spec, Step, VolumeSource};

use crate::error::engine_error;
use crate::labels::{self, Creator, StageNames};

/// Entrypoint of a script step (Drone's way: the script arrives in an
/// environment variable and is piped into the shell).
const SCRIPT_ENTRYPOINT: [&str; 2] = ["/bin/sh", "-c"];
/// What a script step's PID 1 does before it runs the script: wait for the
/// line `start` writes to its stdin (see `make`), so that the container can
/// be started ahead of its step. Without that line (stdin closed) the
/// script never runs.
const HOLD: &str = "read -r _ || exit 125;";
/// Environment variable holding a script step's script.
pub(crate) const SCRIPT_ENV: &str = "DRONE_SCRIPT";
/// Permissions of an in-memory volume (reference §14).
const TMPFS_MODE: i64 = 0o700;

/// The container `create` makes for `step`, in the stage run `names` whose
/// network `setup` created as `network` (its id: a name can be ambiguous,
/// Docker lets two networks share one).
pub(crate) fn container_config(
    spec: &Spec,
    step: &Step,
    creator: &Creator,
    names: &StageNames,
    network: &str,
) -> Result<ContainerCreateBody, EngineError> {
    let mut env: Vec<String> = step
        .environment
        .iter()
        .filter(|(k, _)| !step.secrets.iter().any(|s| &s.env == *k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.extend(
        step.secrets
            .iter()
            .map(|s| format!("{}={}", s.env, s.value)),
    );

    let (entrypoint, cmd) = match &step.script {
        Some(script) => {
            env.push(format!("{SCRIPT_ENV}={}", script.body));
            (
                Some(SCRIPT_ENTRYPOINT.iter().map(|s| (*s).to_owned()).collect()),
                Some(vec![format!(
                    "{HOLD} echo \"${SCRIPT_ENV}\" | {}",
                    script.shell
                )]),
            )
        }
        None => (
            non_empty(step.entrypoint.clone()),
            non_empty(step.command.clone()),
        ),
    };

    // A service (detached, running its image's own entrypoint) starts where
    // its image says, as in Drone; every other step in the workspace.
    let working_dir = match step.working_dir.as_str() {
        "" if step.detach && step.script.is_none() => String::new(),
        "" => spec.workspace.full_path(),
        dir => dir.to_owned(),
    };

    let (network_mode, networking_config) = if step.network_mode.is_empty() {
        let network = network.to_owned();
        let endpoint = EndpointSettings {
            aliases: Some(vec![step.name.clone()]),
            ..EndpointSettings::default()
        };
        (
            network.clone(),
            Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network, endpoint)])),
            }),
        )
    } else {
        (step.network_mode.clone(), None)
    };

    let r = &step.resources;
    let host_config = HostConfig {
        mounts: Some(mounts(spec, step, names)?),
        devices: non_empty(devices(spec, step)?),
        privileged: Some(step.privileged),
        network_mode: Some(network_mode),
        dns: non_empty(step.dns.clone()),
        dns_search: non_empty(step.dns_search.clone()),
        extra_hosts: non_empty(step.extra_hosts.clone()),
        shm_size: positive(r.shm_size),
        memory: positive(r.mem_limit),
        memory_swap: positive(r.memswap_limit),
        cpu_quota: positive(r.cpu_quota),
        cpu_period: positive(r.cpu_period),
        cpu_shares: positive(r.cpu_shares),
        cpuset_cpus: (!r.cpu_set.is_empty()).then(|| r.cpu_set.clone()),
        ..HostConfig::default()
    };

    Ok(ContainerCreateBody {
        image: Some(step.image.clone()),
        entrypoint,
        cmd,
        env: Some(env),
        working_dir: (!working_dir.is_empty()).then_some(working_dir),
        user: (!step.user.is_empty()).then(|| step.user.clone()),
        labels: Some(labels::step_labels(spec, step, creator, names)),
        tty: Some(false),
        // A script step's held PID 1 reads its release from stdin; it stays
        // open when the attach that wrote it goes.
        open_stdin: Some(step.script.is_some()),
        stdin_once: Some(false),
        attach_stdin: Some(step.script.is_some()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(host_config),
        networking_config,
        ..ContainerCreateBody::default()
    })
}

/// The workspace at `base`, then the step's mounts of spec volumes.
fn mounts(spec: &Spec, step: &Step, names: &StageNames) -> Result<Vec<Mount>, EngineError> {
    let mut mounts = Vec::new();
    if !spec.workspace.base.is_empty() {
        mounts.push(match &spec.workspace.host_path {
            Some(host) => Mount {
                typ: Some(MountType::BIND),
                source: Some(host.clone()),
                target: Some(spec.workspace.base.clone()),
                ..Mount::default()
            },
            None => Mount {
                typ: Some(MountType::VOLUME),
                source: Some(names.workspace_volume()),
                target: Some(spec.workspace.base.clone()),
                ..Mount::default()
            },
        });
    }
    for mount in &step.volumes {
        let volume = spec
            .volumes
            .iter()
            .find(|v| v.name == mount.name)
            .ok_or_else(|| {
                engine_error(
                    EngineErrorKind::NotFound,
                    format!(
                        "step {:?} mounts volume {:?}, which the stage does not declare",
                        step.name, mount.name
                    ),
                )
            })?;
        let base = Mount {
            target: Some(mount.path.clone()),
            read_only: Some(mount.read_only),
            ..Mount::default()
        };
        mounts.push(match &volume.source {
            VolumeSource::Temp {
                memory: false,
                size_limit: _,
            } => Mount {
                typ: Some(MountType::VOLUME),
                source: Some(names.volume(&volume.name)),
                ..base
            },
            VolumeSource::Temp {
                memory: true,
                size_limit,
            } => Mount {
                typ: Some(MountType::TMPFS),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: positive(*size_limit),
                    mode: Some(TMPFS_MODE),
                    options: None,
                }),
                ..base
            },
            VolumeSource::Host { path } => Mount {
                typ: Some(MountType::BIND),
                source: Some(path.clone()),
                ..base
            },
        });
    }
    Ok(mounts)
}

/// Host devices: each names a host volume whose path is the device.
fn devices(spec: &Spec, step: &Step) -> Result<Vec<DeviceMapping>, EngineError> {
    step.devices
        .iter()
        .map(|device| {
            let host_path = spec.volumes.iter().find_map(|v| match &v.source {
                VolumeSource::Host { path } if v.name == device.name => Some(path.clone()),
                _ => None,
            });
            let host_path = host_path.ok_or_else(|| {
                engine_error(
                    EngineErrorKind::NotFound,
                    format!(
                        "step {:?} uses device {:?}, which is not a host volume of the stage",
                        step.name, device.name
                    ),
                )
            })?;
            Ok(DeviceMapping {
                path_on_host: Some(host_path),
                path_in_container: Some(device.path.clone()),
                cgroup_permissions: Some("rwm".into()),
            })
        })
        .collect()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// A limit in the API's signed type; zero (no limit) and values beyond
/// `i64::MAX` (no meaningful limit either) are left unset.
fn positive(v: u64) -> Option<i64> {
    i64::try_from(v).ok().filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use runnerkit_core::{
        Device, Mount as StepMount, Resources, Script, SecretVar, Volume, Workspace,
    };

    use super::*;

    fn spec() -> Spec {
        Spec {
            id: "s1".into(),
            workspace: Workspace {
                base: "/drone/src".into(),
                path: "app".into(),
                host_path: None,
            },
            volumes: vec![
                Volume {
                    name: "cache".into(),
                    source: VolumeSource::Temp {
                        memory: false,
                        size_limit: 0,
                    },
                },
                Volume {
                    name: "ram".into(),
                    source: VolumeSource::Temp {
                        memory: true,
                        size_limit: 1 << 20,
                    },
                },
                Volume {
                    name: "dev".into(),
                    source: VolumeSource::Host {
                        path: "/dev/fuse".into(),
                    },
                },
            ],
            ..Spec::default()
        }
    }

    /// The container of `step` in a run of `spec` with the token `t0`, on
    /// the network whose id is `net-id`.
    fn config(spec: &Spec, step: &Step) -> Result<ContainerCreateBody, EngineError> {
        let names = StageNames::with_token(&spec.id, "t0".into());
        container_config(spec, step, &Creator::current(), &names, "net-id")
    }

    fn env_of(c: &ContainerCreateBody) -> Vec<String> {
        c.env.clone().unwrap()
    }

    #[test]
    fn a_script_runs_drones_way() {
        let step = Step {
            image: "busybox".into(),
            script: Some(Script {
                shell: "/bin/ash".into(),
                body: "set -e\necho hi\n".into(),
            }),
            entrypoint: vec!["ignored".into()],
            ..Step::named("build")
        };
        let c = config(&spec(), &step).unwrap();
        assert_eq!(c.entrypoint.clone().unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(
            c.cmd.clone().unwrap(),
            ["read -r _ || exit 125; echo \"$DRONE_SCRIPT\" | /bin/ash"]
        );
        assert!(env_of(&c).contains(&"DRONE_SCRIPT=set -e\necho hi\n".to_owned()));
        assert_eq!(c.working_dir.as_deref(), Some("/drone/src/app"));
        assert_eq!(c.tty, Some(false));
    }

    #[test]
    fn entrypoint_command_env_and_secrets() {
        let step = Step {
            entrypoint: vec!["/bin/echo".into()],
            command: vec!["a".into(), "b".into()],
            environment: [
                ("A".to_owned(), "1".to_owned()),
                ("T".to_owned(), "plain".to_owned()),
            ]
            .into(),
            secrets: vec![SecretVar {
                env: "T".into(),
                value: "s3cr3t".into(),
                mask: true,
            }],
            working_dir: "/tmp".into(),
            user: "1000".into(),
            ..Step::named("x")
        };
        let c = config(&spec(), &step).unwrap();
        assert_eq!(c.entrypoint.clone().unwrap(), ["/bin/echo"]);
        assert_eq!(c.cmd.clone().unwrap(), ["a", "b"]);
        assert_eq!(env_of(&c), ["A=1", "T=s3cr3t"]);
        assert_eq!(c.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(c.user.as_deref(), Some("1000"));
        let step = Step::named("plain");
        let c = config(&spec(), &step).unwrap();
        assert_eq!(c.entrypoint, None, "the image's entrypoint is kept");
        assert_eq!(c.cmd, None);
        assert_eq!(c.working_dir.as_deref(), Some("/drone/src/app"));
    }

    #[test]
    fn a_service_without_a_script_keeps_its_images_working_dir() {
        let service = Step {
            detach: true,
            ..Step::named("db")
        };
        let c = config(&spec(), &service).unwrap();
        assert_eq!(c.working_dir, None);
        let with_dir = Step {
            working_dir: "/srv".into(),
            ..service.clone()
        };
        let c = config(&spec(), &with_dir).unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        let scripted = Step {
            script: Some(Script {
                shell: "/bin/sh".into(),
                body: "serve\n".into(),
            }),
            ..service
        };
        let c = config(&spec(), &scripted).unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/drone/src/app"));
    }

    #[test]
    fn the_step_joins_the_stage_network_under_its_name() {
        let c = config(&spec(), &Step::named("db")).unwrap();
        let hc = c.host_config.unwrap();
        // By id: another network may have been given the stage's name.
        assert_eq!(hc.network_mode.as_deref(), Some("net-id"));
        let endpoints = c.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["net-id"].aliases.clone().unwrap(), ["db"]);
        assert_eq!(c.labels.unwrap()[labels::LABEL_TOKEN], "t0");

        let host = Step {
            network_mode: "host".into(),
            ..Step::named("h")
        };
        let c = config(&spec(), &host).unwrap();
        assert_eq!(c.host_config.unwrap().network_mode.as_deref(), Some("host"));
        assert!(c.networking_config.is_none());
    }

    #[test]
    fn volumes_become_docker_volumes_tmpfs_and_binds() {
        let step = Step {
            volumes: vec![
                StepMount {
                    name: "cache".into(),
                    path: "/cache".into(),
                    read_only: false,
                },
                StepMount {
                    name: "ram".into(),
                    path: "/ram".into(),
                    read_only: false,
                },
                StepMount {
                    name: "dev".into(),
                    path: "/host".into(),
                    read_only: true,
                },
            ],
            devices: vec![Device {
                name: "dev".into(),
                path: "/dev/fuse".into(),
            }],
            ..Step::named("x")
        };
        let c = config(&spec(), &step).unwrap();
        let hc = c.host_config.unwrap();
        let m = hc.mounts.unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].typ, Some(MountType::VOLUME));
        assert_eq!(m[0].source.as_deref(), Some("rk-s1-t0-workspace"));
        assert_eq!(m[0].target.as_deref(), Some("/drone/src"));
        assert_eq!(m[1].source.as_deref(), Some("rk-s1-t0-vol-cache"));
        assert_eq!(m[2].typ, Some(MountType::TMPFS));
        let tmpfs = m[2].tmpfs_options.clone().unwrap();
        assert_eq!(tmpfs.size_bytes, Some(1 << 20));
        assert_eq!(tmpfs.mode, Some(0o700));
        assert_eq!(m[3].typ, Some(MountType::BIND));
        assert_eq!(m[3].source.as_deref(), Some("/dev/fuse"));
        assert_eq!(m[3].read_only, Some(true));
        let d = hc.devices.unwrap();
        assert_eq!(d[0].path_on_host.as_deref(), Some("/dev/fuse"));
        assert_eq!(d[0].cgroup_permissions.as_deref(), Some("rwm"));
    }

    #[test]
    fn a_host_workspace_is_bind_mounted_at_base() {
        let mut spec = spec();
        spec.workspace.host_path = Some("/home/me/project".into());
        let c = config(&spec, &Step::named("x")).unwrap();
        let m = c.host_config.unwrap().mounts.unwrap();
        assert_eq!(m[0].typ, Some(MountType::BIND));
        assert_eq!(m[0].source.as_deref(), Some("/home/me/project"));
    }

    #[test]
    fn unknown_volumes_and_devices_are_errors_naming_them() {
        let step = Step {
            volumes: vec![StepMount {
                name: "nope".into(),
                path: "/x".into(),
                read_only: false,
            }],
            ..Step::named("x")
        };
        let err = config(&spec(), &step).unwrap_err();
        assert_eq!(err.kind(), EngineErrorKind::NotFound);
        assert!(err.message().contains("\"nope\""), "{err}");
        let step = Step {
            devices: vec![Device {
                name: "cache".into(),
                path: "/dev/x".into(),
            }],
            ..Step::named("x")
        };
        let err = config(&spec(), &step).unwrap_err();
        assert!(err.message().contains("\"cache\""), "{err}");
    }

    #[test]
    fn resources_and_host_settings() {
        let step = Step {
            privileged: true,
            dns: vec!["1.1.1.1".into()],
            dns_search: vec!["corp".into()],
            extra_hosts: vec!["db:10.0.0.2".into()],
            resources: Resources {
                mem_limit: 64 << 20,
                memswap_limit: 128 << 20,
                shm_size: 1 << 20,
                cpu_quota: 50_000,
                cpu_period: 100_000,
                cpu_shares: 512,
                cpu_set: "0".into(),
            },
            ..Step::named("x")
        };
        let c = config(&spec(), &step).unwrap();
        let hc = c.host_config.unwrap();
        assert_eq!(hc.privileged, Some(true));
        assert_eq!(hc.dns.unwrap(), ["1.1.1.1"]);
        assert_eq!(hc.dns_search.unwrap(), ["corp"]);
        assert_eq!(hc.extra_hosts.unwrap(), ["db:10.0.0.2"]);
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.memory_swap, Some(128 << 20));
        assert_eq!(hc.shm_size, Some(1 << 20));
        assert_eq!(hc.cpu_quota, Some(50_000));
        assert_eq!(hc.cpu_period, Some(100_000));
        assert_eq!(hc.cpu_shares, Some(512));
        assert_eq!(hc.cpuset_cpus.as_deref(), Some("0"));
        let plain = config(&spec(), &Step::named("p")).unwrap();
        assert_eq!(plain.host_config.unwrap().memory, None);
    }
}

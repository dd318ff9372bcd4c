//! Labels and names of the Docker objects a stage owns.
//!
//! Every container, network and volume carries the spec's labels plus ours
//! (`io.runnerkit.*`): which stage it belongs to, and which process created
//! it, on which host and boot, so the orphan reaper can tell "its creator is
//! gone" from "its run is still going".

use std::collections::HashMap;

use runnerkit_core::{Spec, Step};

/// Marks an object as created by runnerkit's Docker engine.
pub const LABEL_MANAGED: &str = "io.runnerkit.managed";
/// The [`Spec::id`] of the stage the object belongs to.
pub const LABEL_STAGE: &str = "io.runnerkit.stage";
/// The step name (containers only).
pub const LABEL_STEP: &str = "io.runnerkit.step";
/// Host name of the creating process.
pub const LABEL_CREATOR_HOST: &str = "io.runnerkit.creator.host";
/// Boot id of the creating host (a reboot ends every creator).
pub const LABEL_CREATOR_BOOT: &str = "io.runnerkit.creator.boot";
/// PID namespace of the creating process: its pid means something only there
/// (a runner in a container with the host's network shares the host name).
pub const LABEL_CREATOR_PIDNS: &str = "io.runnerkit.creator.pidns";
/// Process id of the creating process.
pub const LABEL_CREATOR_PID: &str = "io.runnerkit.creator.pid";
/// Start time of the creating process (clock ticks since boot), so a reused
/// pid is not mistaken for the creator.
pub const LABEL_CREATOR_STARTED: &str = "io.runnerkit.creator.started";

/// The process that creates objects: this one, or one read back from labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Creator {
    pub(crate) host: String,
    pub(crate) boot: String,
    pub(crate) pidns: String,
    pub(crate) pid: u32,
    pub(crate) started: String,
}

impl Creator {
    /// This process.
    pub(crate) fn current() -> Self {
        let pid = std::process::id();
        Self {
            host: read_trimmed("/proc/sys/kernel/hostname")
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_default(),
            boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            pidns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pid,
            started: process_start_ticks(pid).unwrap_or_default(),
        }
    }

    /// The creator recorded on an object, if it has our creator labels.
    pub(crate) fn from_labels(labels: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            host: labels.get(LABEL_CREATOR_HOST)?.clone(),
            boot: labels.get(LABEL_CREATOR_BOOT)?.clone(),
            pidns: labels.get(LABEL_CREATOR_PIDNS)?.clone(),
            pid: labels.get(LABEL_CREATOR_PID)?.parse().ok()?,
            started: labels.get(LABEL_CREATOR_STARTED)?.clone(),
        })
    }

    /// True only when we can tell for sure that `self` no longer runs: it was
    /// created on this host (`here`), and either the host rebooted since, or
    /// (seen from its PID namespace) its pid is gone or now belongs to a
    /// process started at another time. A creator on another host or in
    /// another PID namespace is never "gone": we cannot see its processes.
    pub(crate) fn is_gone(&self, here: &Creator) -> bool {
        if self.host != here.host || self.host.is_empty() {
            return false;
        }
        if !self.boot.is_empty() && !here.boot.is_empty() && self.boot != here.boot {
            return true;
        }
        if self.pidns != here.pidns || self.pidns.is_empty() {
            return false;
        }
        match process_start_ticks(self.pid) {
            None => true,
            Some(started) => started != self.started,
        }
    }

    fn insert_into(&self, labels: &mut HashMap<String, String>) {
        labels.insert(LABEL_CREATOR_HOST.into(), self.host.clone());
        labels.insert(LABEL_CREATOR_BOOT.into(), self.boot.clone());
        labels.insert(LABEL_CREATOR_PIDNS.into(), self.pidns.clone());
        labels.insert(LABEL_CREATOR_PID.into(), self.pid.to_string());
        labels.insert(LABEL_CREATOR_STARTED.into(), self.started.clone());
    }
}

/// Labels for the stage's network and volumes: the spec's, then ours (ours
/// win, so a pipeline cannot disguise its objects as another stage's).
pub(crate) fn stage_labels(spec: &Spec, creator: &Creator) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_MANAGED.into(), "true".into());
    labels.insert(LABEL_STAGE.into(), spec.id.clone());
    creator.insert_into(&mut labels);
    labels
}

/// Labels for a step's container: the stage's, the step's, then ours.
pub(crate) fn step_labels(spec: &Spec, step: &Step, creator: &Creator) -> HashMap<String, String> {
    let mut labels = stage_labels(spec, creator);
    for (k, v) in &step.labels {
        if !k.starts_with("io.runnerkit.") {
            labels.insert(k.clone(), v.clone());
        }
    }
    labels.insert(LABEL_STEP.into(), step.name.clone());
    labels
}

/// The label filter selecting every object of the stage `stage_id`.
pub(crate) fn stage_filter(stage_id: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_STAGE}={stage_id}"),
        ],
    )])
}

/// The label filter selecting every object runnerkit's Docker engine created.
pub(crate) fn managed_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGED}=true")])])
}

/// Names of a stage's objects, derived from the spec id so that two runs
/// never collide and a crashed run's leftovers are recognisable.
pub(crate) fn network_name(spec: &Spec) -> String {
    format!("rk-{}", sanitize(&spec.id))
}

/// Name of the workspace volume of `spec`.
pub(crate) fn workspace_volume_name(spec: &Spec) -> String {
    format!("rk-{}-workspace", sanitize(&spec.id))
}

/// Name of the Docker volume backing the spec volume `volume`.
pub(crate) fn volume_name(spec: &Spec, volume: &str) -> String {
    format!("rk-{}-vol-{}", sanitize(&spec.id), sanitize(volume))
}

/// Name of the container of `step`.
pub(crate) fn container_name(spec: &Spec, step: &Step) -> String {
    let id = if step.id.is_empty() {
        &step.name
    } else {
        &step.id
    };
    format!("rk-{}-{}", sanitize(&spec.id), sanitize(id))
}

/// Docker object names allow `[a-zA-Z0-9_.-]`; anything else becomes `_`.
fn sanitize(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks
/// since boot. `None` when there is no such process (or no procfs).
fn process_start_ticks(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may hold spaces; the
    // fields after its closing parenthesis start at field 3.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_docker_names() {
        let spec = Spec {
            id: "run/1 ä".into(),
            ..Spec::default()
        };
        assert_eq!(network_name(&spec), "rk-run_1__");
        assert_eq!(volume_name(&spec, "cache"), "rk-run_1__-vol-cache");
        assert_eq!(
            container_name(&spec, &Step::named("go build")),
            "rk-run_1__-go_build"
        );
    }

    #[test]
    fn our_labels_win_over_the_spec_and_step() {
        let spec = Spec {
            id: "s1".into(),
            labels: [(LABEL_STAGE.to_owned(), "other".to_owned())].into(),
            ..Spec::default()
        };
        let step = Step {
            labels: [
                (LABEL_STEP.to_owned(), "spoof".to_owned()),
                ("team".to_owned(), "ci".to_owned()),
            ]
            .into(),
            ..Step::named("build")
        };
        let creator = Creator::current();
        let labels = step_labels(&spec, &step, &creator);
        assert_eq!(labels[LABEL_STAGE], "s1");
        assert_eq!(labels[LABEL_STEP], "build");
        assert_eq!(labels["team"], "ci");
        assert_eq!(Creator::from_labels(&labels), Some(creator));
    }

    #[test]
    fn the_current_process_is_not_gone_and_a_dead_pid_is() {
        let here = Creator::current();
        assert!(!here.host.is_empty());
        assert!(!here.started.is_empty());
        assert!(here.pidns.starts_with("pid:["), "{}", here.pidns);
        assert!(!here.is_gone(&here));
        // A child that has exited and been reaped: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Creator {
            pid,
            ..here.clone()
        };
        assert!(dead.is_gone(&here));
        let restarted = Creator {
            started: "1".into(),
            ..here.clone()
        };
        assert!(restarted.is_gone(&here));
        let elsewhere = Creator {
            host: "another-host".into(),
            pid,
            ..here.clone()
        };
        assert!(!elsewhere.is_gone(&here));
        let other_namespace = Creator {
            pidns: "pid:[1]".into(),
            pid,
            ..here.clone()
        };
        assert!(!other_namespace.is_gone(&here));
        let rebooted = Creator {
            boot: "another-boot".into(),
            ..here.clone()
        };
        assert!(rebooted.is_gone(&here));
    }
}

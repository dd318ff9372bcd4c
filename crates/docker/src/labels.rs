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
pub(crate) use runnerkit_core::creator::Creator;
pub use runnerkit_core::creator::{
    LABEL_CREATOR_BOOT, LABEL_CREATOR_HOST, LABEL_CREATOR_PID, LABEL_CREATOR_PIDNS,
    LABEL_CREATOR_STARTED,
};

/// Reads the creator recorded in `labels`.
pub(crate) fn creator_of(labels: &HashMap<String, String>) -> Option<Creator> {
    Creator::from_entries(|key| labels.get(key).map(String::as_str))
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
    labels.extend(creator.entries().map(|(k, v)| (k.to_owned(), v)));
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
        assert_eq!(creator_of(&labels), Some(creator));
    }
}

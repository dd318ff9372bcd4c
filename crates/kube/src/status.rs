//! Reading a pod's status: where a step's container is, and how it ended.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};

/// Waiting reasons that will not resolve by waiting: the step (or, for the
/// placeholder, the stage) ends `error` with the reason and the kubelet's
/// message.
const FATAL_WAITING: [&str; 8] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
];

/// Terminated reasons meaning the container never ran its command.
const NEVER_RAN: [&str; 2] = ["ContainerCannotRun", "StartError"];

/// The status of container `name`.
pub(crate) fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// How the kubelet's message begins when `CreateContainerConfigError` is
/// only its secret or config map cache lagging behind a secret just made
/// (`failed to sync secret cache: timed out waiting for the condition`):
/// the kubelet tries again, and the container starts.
const CACHE_NOT_SYNCED: &str = "failed to sync ";

/// `reason: message` of a container waiting for something that will not come.
pub(crate) fn fatal_waiting(status: &ContainerStatus) -> Option<String> {
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    let message = waiting.message.as_deref().unwrap_or_default();
    if reason == "CreateContainerConfigError" && message.starts_with(CACHE_NOT_SYNCED) {
        return None;
    }
    FATAL_WAITING.contains(&reason).then(|| {
        match waiting.message.as_deref().filter(|m| !m.is_empty()) {
            Some(message) => format!("{reason}: {message}"),
            None => reason.to_owned(),
        }
    })
}

/// The step's run (the first instance after the placeholder) has begun:
/// it is running or already ended.
pub(crate) fn step_began(status: &ContainerStatus) -> bool {
    status.restart_count >= 2
        || (status.restart_count == 1
            && status
                .state
                .as_ref()
                .is_some_and(|s| s.running.is_some() || s.terminated.is_some()))
}

/// The placeholder was stopped and nothing replaced it: the kubelet could
/// not start the step's image (with `restartPolicy: Never` it does not try
/// again).
pub(crate) fn never_started(status: &ContainerStatus) -> bool {
    status.restart_count == 0
        && status
            .state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some())
}

/// How the step's run ended, once it has: the current state while it is the
/// first restart, the last state once the container was restarted again
/// (back to the placeholder, when the step was stopped).
pub(crate) fn step_ended(status: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    match status.restart_count {
        0 => None,
        1 => status.state.as_ref()?.terminated.as_ref(),
        _ => status.last_state.as_ref()?.terminated.as_ref(),
    }
}

/// The exit of a run that ended: `(exit code, OOM-killed)`, or why it never
/// ran. A child killed for memory leaves `OOMKilled` with exit code 0: that
/// is a failure, reported as 137.
pub(crate) fn exit_of(ended: &ContainerStateTerminated) -> Result<(i32, bool), String> {
    let reason = ended.reason.as_deref().unwrap_or_default();
    if NEVER_RAN.contains(&reason) {
        let message = ended.message.as_deref().unwrap_or_default();
        return Err(format!("{reason}: {message}")
            .trim_end_matches(": ")
            .to_owned());
    }
    let oom = reason == "OOMKilled";
    let code = if oom && ended.exit_code == 0 {
        137
    } else {
        ended.exit_code
    };
    Ok((code, oom))
}

/// Every container of the pod runs (the placeholders are up).
pub(crate) fn all_running(pod: &Pod, containers: &[String]) -> bool {
    containers.iter().all(|name| {
        container(pod, name)
            .and_then(|c| c.state.as_ref())
            .is_some_and(|s| s.running.is_some())
    })
}

/// The pod was bound to a node.
pub(crate) fn scheduled(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|s| s.node_name.is_some())
        || condition(pod, "PodScheduled").is_some_and(|(status, _)| status == "True")
}

/// Why the scheduler has not placed the pod, if it said.
pub(crate) fn unschedulable(pod: &Pod) -> Option<String> {
    let (status, message) = condition(pod, "PodScheduled")?;
    (status == "False").then(|| message.unwrap_or_else(|| "no node fits".into()))
}

fn condition(pod: &Pod, kind: &str) -> Option<(String, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.message.clone()))
}

/// A problem that ends the whole stage: a placeholder that cannot start or
/// ended, or a pod the kubelet failed.
pub(crate) fn stage_failure(pod: &Pod, containers: &[String]) -> Option<String> {
    if let Some(status) = pod.status.as_ref()
        && status.phase.as_deref() == Some("Failed")
    {
        let reason = status.reason.clone().unwrap_or_else(|| "Failed".into());
        let message = status.message.clone().unwrap_or_default();
        return Some(
            format!("the pod failed: {reason} {message}")
                .trim()
                .to_owned(),
        );
    }
    for name in containers {
        let Some(c) = container(pod, name) else {
            continue;
        };
        if c.restart_count > 0 {
            continue;
        }
        if let Some(why) = fatal_waiting(c) {
            return Some(format!(
                "container {name} cannot start the placeholder image ({why})"
            ));
        }
        if let Some(ended) = c.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let reason = ended.reason.as_deref().unwrap_or("terminated");
            return Some(format!(
                "the placeholder of container {name} ended ({reason}, exit code {}); it must sleep until the step starts",
                ended.exit_code
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting};

    use super::*;

    fn waiting(reason: &str, message: &str) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }

    #[test]
    fn a_config_error_is_fatal_unless_a_cache_is_only_behind() {
        assert_eq!(
            fatal_waiting(&waiting(
                "CreateContainerConfigError",
                "secret \"s\" not found"
            ))
            .as_deref(),
            Some("CreateContainerConfigError: secret \"s\" not found")
        );
        let lagging = "failed to sync secret cache: timed out waiting for the condition";
        assert_eq!(
            fatal_waiting(&waiting("CreateContainerConfigError", lagging)),
            None
        );
        assert_eq!(fatal_waiting(&waiting("ContainerCreating", "")), None);
        assert!(fatal_waiting(&waiting("ErrImagePull", lagging)).is_some());
    }
}

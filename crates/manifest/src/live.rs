//! The status variables of Drone's environment, kept current while the stage
//! runs (reference §7.6).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use runnerkit_core::drone::{Build, Stage};
use runnerkit_core::{Hook, HookError, State, StepDecision, StepState};

/// A [`Hook`] that recomputes the status variables as each step starts:
/// `DRONE_BUILD_STATUS`, `DRONE_STAGE_STATUS`, `DRONE_FAILED_STEPS` and
/// `DRONE_FAILED_STAGES`. The compiled environment holds them as they were
/// before the stage ran; this is how an `on-failure` step (a notifier) sees
/// `failure` and the names of the steps that failed, as in Drone.
///
/// One value per stage: it learns of failed steps from
/// [`after_each`](Hook::after_each), which the runtime calls before any
/// dependent step starts.
#[derive(Debug)]
pub struct LiveStatus {
    stage: String,
    /// The build's other stages that had failed before this one started.
    failed_stages: Vec<String>,
    /// This stage's steps that failed it, in the order they ended.
    failed_steps: Mutex<Vec<String>>,
}

impl LiveStatus {
    /// For `stage` of `build` (whose `stages` tell which others failed).
    pub fn new(build: &Build, stage: &Stage) -> Self {
        let name = |s: &Stage| {
            if s.name.is_empty() {
                "default".to_owned()
            } else {
                s.name.clone()
            }
        };
        let this = name(stage);
        let failed_stages = build
            .stages
            .iter()
            .filter(|s| s.status.is_failed())
            .map(name)
            .filter(|s| *s != this)
            .collect();
        Self {
            stage: this,
            failed_stages,
            failed_steps: Mutex::new(Vec::new()),
        }
    }

    /// The variables for a step starting now.
    fn environ(&self, state: &State) -> BTreeMap<String, String> {
        let failed_steps = self
            .failed_steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stage_failed = !failed_steps.is_empty() || state.stage().status.is_failed();
        let mut failed_stages = self.failed_stages.clone();
        if stage_failed {
            failed_stages.push(self.stage.clone());
        }
        let word = |failed: bool| if failed { "failure" } else { "success" };
        let mut env = BTreeMap::new();
        env.insert(
            "DRONE_STAGE_STATUS".to_owned(),
            word(stage_failed).to_owned(),
        );
        env.insert(
            "DRONE_BUILD_STATUS".to_owned(),
            word(!failed_stages.is_empty()).to_owned(),
        );
        if !failed_steps.is_empty() {
            env.insert("DRONE_FAILED_STEPS".to_owned(), failed_steps.join(","));
        }
        if !failed_stages.is_empty() {
            env.insert("DRONE_FAILED_STAGES".to_owned(), failed_stages.join(","));
        }
        env
    }
}

#[async_trait]
impl Hook for LiveStatus {
    async fn before_each(&self, state: &State, _: &StepState) -> Result<StepDecision, HookError> {
        Ok(StepDecision::RunWith(self.environ(state)))
    }

    async fn after_each(&self, _: &State, step: &StepState) -> Result<(), HookError> {
        if step.fails_stage() {
            self.failed_steps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(step.name.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use runnerkit_core::{Snapshot, StateWriter, Status};

    use super::*;

    fn stage(name: &str, status: Status) -> Stage {
        Stage {
            name: name.into(),
            status,
            ..Stage::default()
        }
    }

    fn ended(name: &str, status: Status, errignore: bool) -> StepState {
        StepState {
            status,
            errignore,
            ..StepState::pending(0, name)
        }
    }

    #[tokio::test]
    async fn failures_so_far_show_in_the_next_steps_environment() {
        let build = Build {
            stages: vec![
                stage("lint", Status::Failure),
                stage("test", Status::Running),
                stage("docs", Status::Success),
            ],
            ..Build::default()
        };
        let live = LiveStatus::new(&build, &stage("test", Status::Running));
        let state = StateWriter::new(Snapshot::new(Vec::new())).reader();
        let env = live.environ(&state);
        assert_eq!(env["DRONE_STAGE_STATUS"], "success");
        assert_eq!(env["DRONE_BUILD_STATUS"], "failure", "lint failed before");
        assert_eq!(env["DRONE_FAILED_STAGES"], "lint");
        assert!(!env.contains_key("DRONE_FAILED_STEPS"));

        // An ignored failure does not fail the stage; a real one does.
        for step in [
            ended("flaky", Status::Failure, true),
            ended("unit", Status::Failure, false),
            ended("fmt", Status::Success, false),
        ] {
            live.after_each(&state, &step).await.unwrap();
        }
        let StepDecision::RunWith(env) = live
            .before_each(&state, &StepState::pending(1, "notify"))
            .await
            .unwrap()
        else {
            panic!("the hook gives variables");
        };
        assert_eq!(env["DRONE_STAGE_STATUS"], "failure");
        assert_eq!(env["DRONE_FAILED_STEPS"], "unit");
        assert_eq!(env["DRONE_FAILED_STAGES"], "lint,test");
    }

    #[test]
    fn a_passing_build_says_success() {
        let live = LiveStatus::new(&Build::default(), &Stage::default());
        let env = live.environ(&StateWriter::new(Snapshot::new(Vec::new())).reader());
        assert_eq!(env["DRONE_BUILD_STATUS"], "success");
        assert_eq!(env["DRONE_STAGE_STATUS"], "success");
        assert!(!env.contains_key("DRONE_FAILED_STAGES"));
    }
}

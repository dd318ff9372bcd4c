//! A user's hook in `RunnerConfig::hooks`, run by a `StageRunner` against
//! the in-process Drone server: it sees the stage's `before` and `after`,
//! every step's `before_each` and `after_each`, and every log line, masked
//! as the server sees them.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use runnerkit_core::drone::Secret;
use runnerkit_core::{Hook, HookError, LineRef, State, Status, StepDecision, StepState};
use runnerkit_drone::testing::push_stage;
use runnerkit_mock::{MockEngine, StepScript};
use runnerkit_runner::{RunnerConfig, StageOutcome};

use common::Rig;

/// What the hook was told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Before,
    BeforeEach(String),
    Line(String, String),
    AfterEach(String, Status),
    After(Vec<(String, Status)>),
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait]
impl Hook for Recorder {
    async fn before(&self, _state: &State) -> Result<(), HookError> {
        self.push(Event::Before);
        Ok(())
    }

    async fn before_each(
        &self,
        _state: &State,
        step: &StepState,
    ) -> Result<StepDecision, HookError> {
        self.push(Event::BeforeEach(step.name.clone()));
        Ok(StepDecision::Run)
    }

    async fn after_each(&self, _state: &State, step: &StepState) -> Result<(), HookError> {
        self.push(Event::AfterEach(step.name.clone(), step.status));
        Ok(())
    }

    async fn after(&self, state: &State) -> Result<(), HookError> {
        let steps = state
            .snapshot()
            .steps
            .into_iter()
            .map(|s| (s.name, s.status))
            .collect();
        self.push(Event::After(steps));
        Ok(())
    }

    fn got_line(&self, _state: &State, step: &StepState, line: LineRef<'_>) {
        self.push(Event::Line(step.name.clone(), line.message.to_owned()));
    }
}

const SECRET_VALUE: &str = "hunter2-d3pl0y-t0k3n";

/// Three serial steps with output; `publish` reads a server secret.
const PIPELINE: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: build
  commands: [make]
- name: publish
  environment:
    TOKEN:
      from_secret: deploy_token
  commands: [publish]
- name: notify
  commands: [notify]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_hook_sees_every_event_of_the_stage_with_its_lines_masked() {
    let engine = MockEngine::new()
        .with_step(
            "build",
            StepScript::exit(0).with_lines(["compiling", "linked"]),
        )
        .with_step(
            "publish",
            StepScript::exit(0)
                .echo_env(vec!["TOKEN".into()])
                .with_lines([format!("pushing with {SECRET_VALUE} now")]),
        )
        .with_step("notify", StepScript::exit(0).with_lines(["sent"]));
    let recorder = Arc::new(Recorder::default());
    let config = RunnerConfig {
        hooks: vec![recorder.clone()],
        ..common::config()
    };
    let rig = Rig::start_on(config, Arc::new(engine.clone())).await;
    let mut details = push_stage(PIPELINE, "exec");
    details.secrets = vec![Secret {
        name: "deploy_token".into(),
        data: SECRET_VALUE.into(),
        ..Secret::default()
    }];
    let (id, outcome) = rig.run(details).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    engine.assert_protocol();

    let line = |step: &str, text: &str| Event::Line(step.into(), text.into());
    let success = |step: &str| Event::AfterEach(step.into(), Status::Success);
    let each = |step: &str| Event::BeforeEach(step.into());
    // The steps run one after another: the whole sequence is known. The run
    // returned after the stage's `after`, so nothing is still on its way.
    assert_eq!(
        recorder.events(),
        [
            Event::Before,
            each("build"),
            line("build", "compiling"),
            line("build", "linked"),
            success("build"),
            each("publish"),
            line("publish", "TOKEN=******"),
            line("publish", "pushing with ****** now"),
            success("publish"),
            each("notify"),
            line("notify", "sent"),
            success("notify"),
            Event::After(vec![
                ("build".into(), Status::Success),
                ("publish".into(), Status::Success),
                ("notify".into(), Status::Success),
            ]),
        ]
    );
    for event in recorder.events() {
        assert!(
            !format!("{event:?}").contains(SECRET_VALUE),
            "the hook saw the secret: {event:?}"
        );
    }

    // The hook saw what the server was sent.
    assert_eq!(
        rig.uploaded(id, "publish"),
        ["TOKEN=******", "pushing with ****** now"]
    );
    assert_eq!(rig.uploaded(id, "build"), ["compiling", "linked"]);
    assert_eq!(
        rig.server.stage(id).unwrap().status,
        Status::Success,
        "the runner's own reporter still ran alongside the user's hook"
    );
}

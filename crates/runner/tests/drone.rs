//! The whole runner flow over real HTTP against the in-process Drone server
//! (`runnerkit_drone::testing::DroneServer`), on the mock engine and on the
//! host engine (`type: exec` pipelines running real `sh` commands).
//!
//! Every scenario is one `async fn` taking the engine, declared as two tests
//! (`SCENARIO::on_mock`, `SCENARIO::on_host`) by `on_mock_and_host!`. The mock is scripted to print what the commands
//! print, so the assertions are the same; the host engine's `+ command`
//! echo lines are left out of the comparison ([`content`]).
//!
//! What the server received is checked from its side: the step and stage
//! updates it applied, the live log it appended, the log uploaded, and the
//! raw body of every request.

use std::sync::Arc;
use std::time::Duration;

use runnerkit_core::drone::{self, Details, Filter, Netrc, Secret, Stage};
use runnerkit_core::{CancellationToken, Engine, Manager, Status};
use runnerkit_drone::testing::{
    DroneServer, Endpoint, Fault, RecordedRequest, ServerConfig, push_stage,
};
use runnerkit_drone::{DroneManager, RetryPolicy};
use runnerkit_local::LocalEngine;
use runnerkit_manifest::{SecretError, SecretProvider, SecretRequest, StaticSecrets};
use runnerkit_mock::{MockEngine, StepScript};
use runnerkit_runner::{LogConfig, Poller, RunnerConfig, StageOutcome, StageRunner};

const MACHINE: &str = "runner-e2e";

/// A long poll long enough that a watch is always held when a test cancels.
const LONG_POLL: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- fixtures

struct Rig {
    server: DroneServer,
    manager: Arc<DroneManager>,
    runner: Arc<StageRunner>,
}

/// A `type: exec` pipeline named `default`, without a clone step, whose
/// `steps:` are the given YAML.
macro_rules! exec_pipeline {
    ($steps:literal) => {
        concat!(
            "kind: pipeline\ntype: exec\nname: default\nclone:\n  disable: true\nsteps:\n",
            $steps
        )
    };
}

/// One scenario as two tests, `NAME::on_mock` and `NAME::on_host`: on the
/// mock engine the expression scripts the steps, and the closure-like block
/// then inspects the calls the engine saw.
macro_rules! on_mock_and_host {
    ($name:ident: $scenario:ident($mock:expr) $(, |$engine:ident| $check:block)?) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_mock() {
                let engine: MockEngine = $mock;
                $scenario(Arc::new(engine.clone())).await;
                $(
                    let $engine = engine;
                    $check
                )?
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_host() {
                $scenario(host()).await;
            }
        }
    };
}

async fn rig(engine: Arc<dyn Engine>) -> Rig {
    rig_with(engine, |_| {}).await
}

async fn rig_with(engine: Arc<dyn Engine>, tweak: impl FnOnce(&mut RunnerConfig)) -> Rig {
    let retry = RetryPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        max_elapsed: Some(Duration::from_secs(60)),
    };
    rig_with_retry(engine, retry, tweak).await
}

async fn rig_with_retry(
    engine: Arc<dyn Engine>,
    retry: RetryPolicy,
    tweak: impl FnOnce(&mut RunnerConfig),
) -> Rig {
    let server = DroneServer::start(ServerConfig::default().with_long_poll(LONG_POLL))
        .await
        .unwrap();
    let manager = Arc::new(DroneManager::new(&server.client_config().with_retry(retry)).unwrap());
    let mut config = RunnerConfig {
        machine: MACHINE.into(),
        logs: LogConfig {
            batch_interval: Duration::from_millis(100),
            ..LogConfig::default()
        },
        ..RunnerConfig::default()
    };
    tweak(&mut config);
    let runner = Arc::new(StageRunner::new(manager.clone(), engine, config));
    Rig {
        server,
        manager,
        runner,
    }
}

fn host() -> Arc<dyn Engine> {
    Arc::new(LocalEngine::new().with_kill_grace(Duration::from_secs(1)))
}

fn filter() -> Filter {
    Filter {
        kind: "pipeline".into(),
        kind_type: "exec".into(),
        ..Filter::default()
    }
}

/// A stage of a push build of `octo/hello` running the `default` pipeline of
/// `yaml` (type `exec`).
fn details(yaml: &str) -> Details {
    push_stage(yaml, "exec")
}

impl Rig {
    fn enqueue(&self, yaml: &str) -> i64 {
        self.server.enqueue(details(yaml))
    }

    /// Requests the next stage and runs it with the stage runner.
    async fn run_next(&self) -> StageOutcome {
        let stage = self
            .manager
            .request(&filter())
            .await
            .unwrap()
            .expect("a queued stage");
        self.runner
            .run(stage, CancellationToken::new())
            .await
            .unwrap()
    }

    fn stage(&self, id: i64) -> Stage {
        self.server.stage(id).expect("the stage exists")
    }

    /// The server's step id of the step named `name`.
    fn step_id(&self, stage: i64, name: &str) -> i64 {
        self.stage(stage)
            .steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name:?}"))
            .id
    }

    /// The step updates the server applied for `stage`: (name, status).
    fn step_updates(&self, stage: i64) -> Vec<(String, Status)> {
        self.server
            .step_updates()
            .into_iter()
            .filter(|s| s.step_id == stage)
            .map(|s| (s.name, s.status))
            .collect()
    }

    fn stage_updates(&self, stage: i64) -> Vec<Stage> {
        self.server
            .stage_updates()
            .into_iter()
            .filter(|s| s.id == stage)
            .collect()
    }

    fn uploaded(&self, stage: i64, step: &str) -> Vec<drone::Line> {
        let body = self
            .server
            .uploaded_log(self.step_id(stage, step))
            .unwrap_or_else(|| panic!("no log uploaded for {step:?}"));
        serde_json::from_slice(&body).expect("the upload is a JSON array of lines")
    }

    fn live(&self, stage: i64, step: &str) -> Vec<drone::Line> {
        self.server.live_log(self.step_id(stage, step))
    }

    /// Requests the server received whose path is `path`.
    fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `check` holds on the server (the test's own deadline).
    async fn until(&self, what: &str, check: impl Fn(&DroneServer) -> bool) {
        tokio::time::timeout(Duration::from_secs(60), async {
            while !check(&self.server) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
    }
}

/// The text of the lines, without the host engine's `+ command` echoes.
fn content(lines: &[drone::Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.out.strip_suffix('\n').unwrap_or(&l.out).to_owned())
        .filter(|l| !l.starts_with("+ "))
        .collect()
}

/// Positions run 0, 1, 2... without gaps or repeats.
fn assert_numbered(lines: &[drone::Line], what: &str) {
    let positions: Vec<i64> = lines.iter().map(|l| l.pos).collect();
    let expected: Vec<i64> = (0..lines.len() as i64).collect();
    assert_eq!(positions, expected, "positions of {what}");
}

/// The wire rules of a started stage: one `running` update listing every
/// step `pending`, numbered 1..n, `step_id` = stage id; then one final
/// update carrying every step, none left pending or running.
fn assert_stage_reports(rig: &Rig, id: i64, names: &[&str], status: Status) {
    let updates = rig.stage_updates(id);
    assert_eq!(updates.len(), 2, "one start and one end: {updates:#?}");
    let (start, end) = (&updates[0], &updates[1]);
    assert_eq!(start.status, Status::Running);
    assert!(start.started > 0, "a running stage carries started");
    assert_eq!(start.machine, MACHINE);
    let listed: Vec<(&str, i32, i64, Status)> = start
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.number, s.step_id, s.status))
        .collect();
    let expected: Vec<(&str, i32, i64, Status)> = names
        .iter()
        .zip(1..)
        .map(|(name, number)| (*name, number, id, Status::Pending))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(end.status, status);
    assert!(end.stopped >= end.started && end.started > 0);
    let finals: Vec<&str> = end.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(finals, names, "the final update carries every step");
    for step in &end.steps {
        assert!(step.status.is_done(), "{} ended {}", step.name, step.status);
        assert!(step.id > 0 && step.step_id == id);
        assert!(
            step.started > 0 && step.stopped >= step.started,
            "{} {}..{}",
            step.name,
            step.started,
            step.stopped
        );
    }
    let server_side = rig.stage(id);
    assert_eq!(server_side.status, status);
    let statuses: Vec<_> = server_side.steps.iter().map(|s| s.status).collect();
    let reported: Vec<_> = end.steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, reported);
}

// ---------------------------------------------------------------- one stage passes

const PASSES: &str = exec_pipeline!(
    "\
- name: build
  commands:
  - echo compiling
  - echo done
- name: test
  commands:
  - echo ok
"
);

fn passes_mock() -> MockEngine {
    MockEngine::new()
        .with_step(
            "build",
            StepScript::exit(0).with_lines(["compiling", "done"]),
        )
        .with_step("test", StepScript::exit(0).with_lines(["ok"]))
}

async fn passes(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(PASSES);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));

    assert_eq!(
        rig.step_updates(id),
        [
            ("build".into(), Status::Running),
            ("build".into(), Status::Success),
            ("test".into(), Status::Running),
            ("test".into(), Status::Success),
        ],
        "every step reported running, then final, in order"
    );
    for update in rig.server.step_updates() {
        if update.status == Status::Running {
            assert!(update.started > 0, "a running step carries started");
            assert_eq!(update.stopped, 0);
        } else {
            assert_eq!(update.exit_code, 0);
            assert!(update.stopped >= update.started && update.started > 0);
        }
    }
    assert_stage_reports(&rig, id, &["build", "test"], Status::Success);
    assert_eq!(rig.stage(id).machine, MACHINE);

    for (step, expected) in [("build", vec!["compiling", "done"]), ("test", vec!["ok"])] {
        let uploaded = rig.uploaded(id, step);
        assert_eq!(content(&uploaded), expected, "uploaded log of {step}");
        assert_numbered(&uploaded, step);
        assert_eq!(rig.live(id, step), uploaded, "{step} was streamed live");
        assert!(!rig.server.is_stream_open(rig.step_id(id, step)));
    }
    let build = rig.server.build(rig.stage(id).build_id).unwrap();
    assert_eq!(build.status, Status::Success);
}

on_mock_and_host!(
    a_stage_passes: passes(passes_mock()),
    |engine| {
        engine.assert_protocol();
    }
);

// ---------------------------------------------------------------- failure: ignore, exit 78, policies

const POLICIES: &str = exec_pipeline!(
    "\
- name: flaky
  failure: ignore
  commands:
  - echo flaky
  - exit 3
- name: only-on-tags
  commands:
  - echo never listed
  when:
    event: [tag]
- name: on-failure
  commands:
  - echo not run
  when:
    status: [failure]
- name: early
  commands:
  - echo enough
  - exit 78
- name: after
  commands:
  - echo not reached
"
);

fn policies_mock() -> MockEngine {
    MockEngine::new()
        .with_step("flaky", StepScript::exit(3).with_lines(["flaky"]))
        .with_step("early", StepScript::exit(78).with_lines(["enough"]))
}

async fn policies(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(POLICIES);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));

    assert_eq!(
        rig.step_updates(id),
        [
            ("flaky".into(), Status::Running),
            ("flaky".into(), Status::Failure),
            ("on-failure".into(), Status::Skipped),
            ("early".into(), Status::Running),
            ("early".into(), Status::Success),
        ],
        "a step skipped by its policy is reported skipped with no running before it; \
         steps skipped by exit 78 only in the final update"
    );
    let skipped = rig
        .server
        .step_updates()
        .into_iter()
        .find(|s| s.name == "on-failure")
        .unwrap();
    assert!(skipped.started > 0 && skipped.started == skipped.stopped);
    assert_eq!(skipped.exit_code, 0);

    assert_stage_reports(
        &rig,
        id,
        &["flaky", "on-failure", "early", "after"],
        Status::Success,
    );
    let stage = rig.stage(id);
    let outcome: Vec<(&str, Status, i32, bool)> = stage
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status, s.exit_code, s.errignore))
        .collect();
    assert_eq!(
        outcome,
        [
            ("flaky", Status::Failure, 3, true),
            ("on-failure", Status::Skipped, 0, false),
            ("early", Status::Success, 78, false),
            ("after", Status::Skipped, 0, false),
        ]
    );
    assert_eq!(content(&rig.uploaded(id, "flaky")), ["flaky"]);
    assert_eq!(content(&rig.uploaded(id, "early")), ["enough"]);
}

on_mock_and_host!(
    ignored_failure_and_exit_78: policies(policies_mock()),
    |engine| {
        engine.assert_protocol();
        assert!(engine.calls_for("after").is_empty());
        assert!(engine.calls_for("on-failure").is_empty());
    }
);

// ---------------------------------------------------------------- live status variables

const NOTIFIES: &str = exec_pipeline!(
    "\
- name: unit
  commands:
  - exit 2
- name: notify
  commands:
  - echo DRONE_BUILD_STATUS=$DRONE_BUILD_STATUS
  - echo DRONE_STAGE_STATUS=$DRONE_STAGE_STATUS
  - echo DRONE_FAILED_STEPS=$DRONE_FAILED_STEPS
  - echo DRONE_FAILED_STAGES=$DRONE_FAILED_STAGES
  when:
    status: [failure]
"
);

const LIVE_VARS: [&str; 4] = [
    "DRONE_BUILD_STATUS",
    "DRONE_STAGE_STATUS",
    "DRONE_FAILED_STEPS",
    "DRONE_FAILED_STAGES",
];

fn notifies_mock() -> MockEngine {
    let vars = LIVE_VARS.map(String::from).to_vec();
    MockEngine::new()
        .with_step("unit", StepScript::exit(2))
        .with_step("notify", StepScript::exit(0).echo_env(vars))
}

/// Compiled before anything ran, the status variables said `success`; an
/// `on-failure` step must see them as they are when it starts.
async fn live_status(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(NOTIFIES);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Failure));
    assert_eq!(
        content(&rig.uploaded(id, "notify")),
        [
            "DRONE_BUILD_STATUS=failure",
            "DRONE_STAGE_STATUS=failure",
            "DRONE_FAILED_STEPS=unit",
            "DRONE_FAILED_STAGES=default",
        ]
    );
}

on_mock_and_host!(
    an_on_failure_step_sees_the_failure_in_its_environment: live_status(notifies_mock()),
    |engine| {
        engine.assert_protocol();
    }
);

// ---------------------------------------------------------------- 409 on accept

async fn taken(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(PASSES);

    // Another runner won the race.
    let stage = rig.manager.request(&filter()).await.unwrap().unwrap();
    rig.manager.accept(id, "someone-else").await.unwrap();
    let outcome = rig.runner.run(stage, CancellationToken::new()).await;
    assert_eq!(outcome.unwrap(), StageOutcome::Taken);
    assert_eq!(rig.stage(id).machine, "someone-else");

    // A 409 on accept with nobody else in sight: still not ours.
    let second = rig.enqueue(PASSES);
    rig.server.inject(Endpoint::Accept, Fault::Status(409));
    let stage = rig.manager.request(&filter()).await.unwrap().unwrap();
    assert_eq!(stage.id, second);
    let outcome = rig.runner.run(stage, CancellationToken::new()).await;
    assert_eq!(outcome.unwrap(), StageOutcome::Taken);
    assert_eq!(rig.stage(second).machine, "", "left for another runner");
    assert_eq!(rig.stage(second).status, Status::Pending);

    for stage in [id, second] {
        let path = format!("/rpc/v2/stage/{stage}");
        let touched: Vec<String> = rig
            .requests_to(&path)
            .iter()
            // After the conflict, the stage is read back (GET) to tell a
            // lost answer from another runner's win; nothing is written.
            .filter(|r| r.method != "POST" && r.method != "GET")
            .map(|r| r.method.clone())
            .collect();
        assert!(
            touched.is_empty(),
            "no update for a stage not ours: {touched:?}"
        );
    }
    assert!(rig.server.stage_updates().is_empty());
    assert!(rig.server.step_updates().is_empty());
}

on_mock_and_host!(
    a_stage_taken_by_another_runner_is_left_alone: taken(MockEngine::new()),
    |engine| {
        assert!(engine.calls().is_empty(), "nothing ran");
    }
);

// ---------------------------------------------------------------- cancel through watch

const LONG: &str = exec_pipeline!(
    "\
- name: build
  commands:
  - echo started
  - sleep 120
  - echo not printed
- name: test
  commands:
  - echo not reached
"
);

fn long_mock() -> MockEngine {
    MockEngine::new().with_step("build", StepScript::exit(0).with_lines(["started"]).hang())
}

async fn cancelled(engine: Arc<dyn Engine>) {
    let rig = Arc::new(rig(engine).await);
    let id = rig.enqueue(LONG);
    let build_id = rig.stage(id).build_id;
    let running = tokio::spawn({
        let rig = rig.clone();
        async move { rig.run_next().await }
    });
    let watch_path = format!("/rpc/v2/build/{build_id}/watch");
    rig.until(
        "the step runs, its first line is out and the build is watched",
        |server| {
            let stage = server.stage(id).unwrap();
            let step = stage.steps.first().map(|s| (s.id, s.status));
            let Some((step_id, Status::Running)) = step else {
                return false;
            };
            let live = content(&server.live_log(step_id));
            let watched = server
                .requests()
                .iter()
                .any(|r| r.path == watch_path && r.status.is_none());
            live == ["started"] && watched
        },
    )
    .await;
    assert!(rig.server.cancel_build(build_id));

    let outcome = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the cancel stops the stage")
        .unwrap();
    assert_eq!(outcome, StageOutcome::Ran(Status::Killed));

    // The runner still told the server how the stage ended (the server,
    // having rewritten the rows on cancel, refuses it with 409).
    let path = format!("/rpc/v2/stage/{id}");
    let last = rig
        .requests_to(&path)
        .into_iter()
        .filter(|r| r.method == "PUT")
        .last()
        .expect("a final stage update");
    let body: Stage = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body.status, Status::Killed);
    assert_eq!(body.exit_code, 137);
    let steps: Vec<(&str, Status)> = body
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        steps,
        [("build", Status::Killed), ("test", Status::Skipped)]
    );

    let stage = rig.stage(id);
    assert_eq!(stage.status, Status::Killed);
    assert_eq!(stage.steps[0].status, Status::Killed);
    assert_eq!(stage.steps[1].status, Status::Skipped);
    assert!(
        !rig.step_updates(id)
            .iter()
            .any(|(name, status)| name == "test" && *status == Status::Running),
        "no step starts after the cancel"
    );
    assert!(content(&rig.uploaded(id, "build")).starts_with(&["started".to_owned()]));
}

on_mock_and_host!(
    a_cancel_through_watch_kills_the_running_step: cancelled(long_mock()),
    |engine| {
        engine.assert_protocol();
        assert!(engine.calls_for("test").is_empty());
    }
);

// ---------------------------------------------------------------- YAML error

async fn yaml_error(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let yaml =
        "kind: pipeline\ntype: exec\nname: default\nsteps:\n- name: a\n  commands: {x: [1}\n";
    let id = rig.enqueue(yaml);
    let StageOutcome::Refused(message) = rig.run_next().await else {
        panic!("a YAML error refuses the stage");
    };
    let message = message.to_string();
    assert!(!message.is_empty());
    let updates = rig.stage_updates(id);
    assert_eq!(updates.len(), 1, "only the end is reported: {updates:#?}");
    let end = &updates[0];
    assert_eq!((end.status, end.exit_code), (Status::Error, 255));
    assert_eq!(end.error, message);
    assert!(end.steps.is_empty());
    let stage = rig.stage(id);
    assert_eq!(
        (stage.status, stage.error.as_str()),
        (Status::Error, message.as_str())
    );
    assert_eq!(
        rig.server.build(stage.build_id).unwrap().status,
        Status::Error
    );
    assert!(rig.server.step_updates().is_empty());
}

on_mock_and_host!(
    a_yaml_error_reports_the_stage_as_error: yaml_error(MockEngine::new()),
    |engine| {
        assert!(engine.calls().is_empty(), "nothing ran");
    }
);

// ---------------------------------------------------------------- the server goes away

const CHATTY: &str = exec_pipeline!(
    "\
- name: first
  commands:
  - echo first
- name: second
  commands:
  - for i in 1 2 3 4 5 6 7 8 9 10; do echo second $i; sleep 0.25; done
- name: third
  commands:
  - for i in 1 2 3 4 5 6 7 8 9 10; do echo third $i; sleep 0.25; done
"
);

fn chatty_mock() -> MockEngine {
    let lines = |name: &str| {
        (1..=10).fold(StepScript::exit(0), |script, i| {
            script.with_chunk(Duration::from_millis(250), format!("{name} {i}\n"))
        })
    };
    MockEngine::new()
        .with_step("first", StepScript::exit(0).with_lines(["first"]))
        .with_step("second", lines("second"))
        .with_step("third", lines("third"))
}

async fn outage(engine: Arc<dyn Engine>) {
    let rig = Arc::new(rig(engine).await);
    let id = rig.enqueue(CHATTY);
    let running = tokio::spawn({
        let rig = rig.clone();
        async move { rig.run_next().await }
    });
    rig.until("the second step streams", |server| {
        let Some(stage) = server.stage(id) else {
            return false;
        };
        stage
            .steps
            .get(1)
            .is_some_and(|s| s.status == Status::Running && !server.live_log(s.id).is_empty())
    })
    .await;

    // The server goes away: connections cut, then a proxy answering 502,
    // long enough for the second step to end and the third to start.
    rig.server
        .inject_always(Endpoint::Any, Fault::DropConnection);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.server.clear_faults();
    rig.server.inject_always(Endpoint::Any, Fault::Status(502));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.server.clear_faults();

    let outcome = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the stage ends once the server is back")
        .unwrap();
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));

    let failed_step_calls = rig
        .server
        .requests()
        .iter()
        .filter(|r| r.status.is_none_or(|s| s == 502) && r.path.starts_with("/rpc/v2/step/"))
        .count();
    assert!(
        failed_step_calls > 0,
        "the outage hit the runner's step reports and logs"
    );

    assert_eq!(
        rig.step_updates(id),
        [
            ("first".into(), Status::Running),
            ("first".into(), Status::Success),
            ("second".into(), Status::Running),
            ("second".into(), Status::Success),
            ("third".into(), Status::Running),
            ("third".into(), Status::Success),
        ],
        "no status lost"
    );
    assert_stage_reports(&rig, id, &["first", "second", "third"], Status::Success);
    for step in ["second", "third"] {
        let expected: Vec<String> = (1..=10).map(|i| format!("{step} {i}")).collect();
        let uploaded = rig.uploaded(id, step);
        assert_eq!(
            content(&uploaded),
            expected,
            "no line lost from {step}'s log"
        );
        assert_numbered(&uploaded, step);
        // A cut connection or a proxy's 502 may have delivered a batch
        // whose answer was lost: such a batch is not sent again, so the live
        // stream may miss its lines (the upload has them all), but it never
        // shows one twice and keeps their order.
        let live = rig.live(id, step);
        let mut rest = uploaded.iter();
        assert!(
            live.iter().all(|line| rest.any(|u| u == line)),
            "{step}'s live stream is the uploaded log's lines, in order, each at most once: {live:?}"
        );
    }
}

on_mock_and_host!(
    the_server_going_away_loses_no_status_and_no_line: outage(chatty_mock()),
    |engine| {
        engine.assert_protocol();
    }
);

// ---------------------------------------------------------------- secrets

const SECRET_VALUE: &str = "s3cr3t-d3pl0y-t0k3n";
const NETRC_PASSWORD: &str = "netrc-pa55w0rd-xyz";

const SECRETS: &str = exec_pipeline!(
    "\
- name: publish
  environment:
    TOKEN:
      from_secret: deploy_token
  commands:
  - echo \"TOKEN=$TOKEN\"
  - echo \"DRONE_NETRC_PASSWORD=$DRONE_NETRC_PASSWORD\"
"
);

fn secrets_mock() -> MockEngine {
    MockEngine::new().with_step(
        "publish",
        StepScript::exit(0).echo_env(vec!["TOKEN".into(), "DRONE_NETRC_PASSWORD".into()]),
    )
}

async fn secrets(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let mut details = details(SECRETS);
    details.secrets = vec![Secret {
        name: "deploy_token".into(),
        data: SECRET_VALUE.into(),
        ..Secret::default()
    }];
    details.netrc = Some(Netrc {
        machine: "git.example.com".into(),
        login: "octocat".into(),
        password: NETRC_PASSWORD.into(),
    });
    let id = rig.server.enqueue(details);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));

    let uploaded = rig.uploaded(id, "publish");
    assert_eq!(
        content(&uploaded),
        ["TOKEN=******", "DRONE_NETRC_PASSWORD=******"],
        "the step saw both values, and its log masks them"
    );
    let requests = rig.server.requests();
    assert!(requests.len() > 5);
    for request in &requests {
        let body = String::from_utf8_lossy(&request.body);
        let query = request.query.as_deref().unwrap_or_default();
        for secret in [SECRET_VALUE, NETRC_PASSWORD] {
            assert!(
                !body.contains(secret) && !query.contains(secret) && !request.path.contains(secret),
                "{} {} carried a secret: {body}",
                request.method,
                request.path
            );
        }
    }
}

on_mock_and_host!(
    secrets_never_reach_the_server: secrets(secrets_mock())
);

// ---------------------------------------------------------------- secret lookup order

/// `plain` sealed for a `kind: secret` document: base64 of nonce ‖
/// AES-256-GCM ciphertext, keyed with the repository's secret.
fn seal(key: &str, plain: &str) -> String {
    use aes_gcm::aead::{Aead, KeyInit};
    use base64::Engine as _;
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key.as_bytes()).unwrap();
    let nonce = [7u8; 12];
    let mut sealed = nonce.to_vec();
    sealed.extend(
        cipher
            .encrypt(&aes_gcm::Nonce::from(nonce), plain.as_bytes())
            .unwrap(),
    );
    base64::engine::general_purpose::STANDARD.encode(sealed)
}

/// Reference §12: the file's encrypted documents are asked before the
/// runner's static secrets (`DRONE_RUNNER_SECRETS`), the server's secrets
/// before both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_documents_come_before_the_runners_static_secrets() {
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    let rig = rig_with(host(), |config| {
        let runner_values = [("token", "from-runner"), ("other", "from-server-loses")];
        let values = runner_values.map(|(k, v)| (k.to_owned(), v.to_owned()));
        config.secrets = vec![Arc::new(StaticSecrets::new(values.into()))];
    })
    .await;
    let yaml = format!(
        "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: check
  environment:
    TOKEN: {{from_secret: token}}
    OTHER: {{from_secret: other}}
  commands:
  - test \"$TOKEN\" = from-document
  - test \"$OTHER\" = from-server
---
kind: secret
name: token
data: {}
",
        seal(KEY, "from-document")
    );
    let mut details = details(&yaml);
    details.repository.secret = KEY.into();
    details.secrets = vec![Secret {
        name: "other".into(),
        data: "from-server".into(),
        ..Secret::default()
    }];
    let id = rig.server.enqueue(details);
    assert_eq!(
        rig.run_next().await,
        StageOutcome::Ran(Status::Success),
        "{:?}",
        content(&rig.uploaded(id, "check"))
    );
}

// ---------------------------------------------------------------- compile warnings

const WARNED: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
image_pull_secrets:
- no_such_config
steps:
- name: quiet
  commands:
  - echo quiet
- name: loud
  environment:
    MISSING:
      from_secret: nobody_knows
  commands:
  - echo loud
";

async fn warnings(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(WARNED);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));

    let uploaded = rig.uploaded(id, "loud");
    let text = content(&uploaded);
    assert!(
        text[0].contains("nobody_knows") && text[0].contains("MISSING"),
        "the warning opens the step's log: {text:?}"
    );
    assert_eq!(text[1..], ["loud"]);
    assert_numbered(&uploaded, "loud");
    assert_eq!(
        rig.live(id, "loud"),
        uploaded,
        "the warning is streamed too"
    );
    let quiet = content(&rig.uploaded(id, "quiet"));
    assert!(
        quiet[0].contains("no_such_config"),
        "a warning about the whole stage opens the first step's log: {quiet:?}"
    );
    assert_eq!(quiet[1..], ["quiet"], "and not the step's own warning");
    assert!(
        !content(&uploaded)
            .iter()
            .any(|l| l.contains("no_such_config")),
        "a stage-wide warning is shown once"
    );
}

fn warnings_mock() -> MockEngine {
    MockEngine::new()
        .with_step("quiet", StepScript::exit(0).with_lines(["quiet"]))
        .with_step("loud", StepScript::exit(0).with_lines(["loud"]))
}

on_mock_and_host!(
    a_compile_warning_opens_the_steps_log: warnings(warnings_mock())
);

// ---------------------------------------------------------------- the poller

const WORK: &str = exec_pipeline!(
    "\
- name: work
  commands:
  - sleep 2
  - echo worked
"
);

fn work_mock() -> MockEngine {
    MockEngine::new().with_step(
        "work",
        StepScript::exit(0)
            .with_chunk(Duration::from_secs(2), "worked\n")
            .running_for(Duration::from_millis(100)),
    )
}

/// Two workers take two stages at once; shutdown stops polling and lets
/// both finish.
async fn poller_drains(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let first = rig.enqueue(WORK);
    let second = rig.enqueue(WORK);
    let poller = Poller::new(rig.manager.clone(), rig.runner.clone(), filter(), 2)
        .with_drain_timeout(Duration::from_secs(60))
        .with_backoff(Duration::from_millis(50), Duration::from_millis(500));
    let stats = poller.stats();
    let shutdown = CancellationToken::new();
    let polling = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { poller.run(shutdown).await }
    });
    rig.until("both stages run at once", |server| {
        [first, second]
            .iter()
            .all(|id| server.stage(*id).unwrap().status == Status::Running)
    })
    .await;
    shutdown.cancel();
    let third = rig.enqueue(WORK);
    tokio::time::timeout(Duration::from_secs(60), polling)
        .await
        .expect("the poller drains and returns")
        .unwrap();

    for id in [first, second] {
        let stage = rig.stage(id);
        assert_eq!(stage.status, Status::Success, "stage {id} finished");
        assert_eq!(content(&rig.uploaded(id, "work")), ["worked"]);
    }
    assert_eq!(
        rig.stage(third).machine,
        "",
        "no stage taken after shutdown"
    );
    assert_eq!(rig.stage(third).status, Status::Pending);
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.succeeded.load(Relaxed), 2);
    assert_eq!(stats.running.load(Relaxed), 0);
}

on_mock_and_host!(
    the_poller_runs_two_stages_and_drains_on_shutdown: poller_drains(work_mock())
);

/// Past the drain timeout, what still runs is cancelled and reported killed.
async fn poller_kills_after_drain(engine: Arc<dyn Engine>) {
    poller_kills(engine, false).await;
}

/// A second signal (the `cut` token) ends the drain at once: the drain
/// timeout here is an hour.
async fn poller_kills_on_cut(engine: Arc<dyn Engine>) {
    poller_kills(engine, true).await;
}

/// A stage still running when the drain ends (its timeout passed, or it was
/// `cut` short) is cancelled and reported killed.
async fn poller_kills(engine: Arc<dyn Engine>, cut_short: bool) {
    let rig = rig(engine).await;
    let id = rig.enqueue(LONG);
    let drain = if cut_short {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(300)
    };
    let poller =
        Poller::new(rig.manager.clone(), rig.runner.clone(), filter(), 2).with_drain_timeout(drain);
    let (shutdown, cut) = (CancellationToken::new(), CancellationToken::new());
    let polling = tokio::spawn({
        let (shutdown, cut) = (shutdown.clone(), cut.clone());
        async move { poller.run_with(shutdown, cut).await }
    });
    rig.until("the step runs", |server| {
        server
            .stage(id)
            .unwrap()
            .steps
            .first()
            .is_some_and(|s| s.status == Status::Running)
    })
    .await;
    shutdown.cancel();
    if cut_short {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cut.cancel();
    }
    tokio::time::timeout(Duration::from_secs(60), polling)
        .await
        .expect("the poller returns when the drain ends")
        .unwrap();
    assert_stage_reports(&rig, id, &["build", "test"], Status::Killed);
    let stage = rig.stage(id);
    assert_eq!(stage.exit_code, 137);
    let steps: Vec<Status> = stage.steps.iter().map(|s| s.status).collect();
    assert_eq!(steps, [Status::Killed, Status::Skipped]);
    assert_eq!(
        rig.step_updates(id),
        [
            ("build".into(), Status::Running),
            ("build".into(), Status::Killed)
        ]
    );
}

on_mock_and_host!(
    the_poller_kills_what_outlives_the_drain_timeout: poller_kills_after_drain(long_mock()),
    |engine| {
        engine.assert_protocol();
    }
);

on_mock_and_host!(
    a_second_signal_cuts_the_drain_short: poller_kills_on_cut(long_mock()),
    |engine| {
        engine.assert_protocol();
    }
);

// ---------------------------------------------------------------- a panic in one stage

/// A secret provider with a bug.
struct Panicking;

#[async_trait::async_trait]
impl SecretProvider for Panicking {
    async fn find(&self, request: &SecretRequest<'_>) -> Result<Option<String>, SecretError> {
        panic!("the provider broke looking up {}", request.name);
    }
}

const ASKS_A_SECRET: &str = exec_pipeline!(
    "\
- name: deploy
  environment:
    TOKEN:
      from_secret: vault_token
  commands:
  - echo deploying
"
);

/// A panic in one stage is reported as that stage's error (with versions
/// the server accepts), and the worker goes on to the next stage.
async fn a_panic_is_reported(engine: Arc<dyn Engine>) {
    let rig = rig_with(engine, |config| {
        config.secrets.push(Arc::new(Panicking));
    })
    .await;
    let broken = rig.enqueue(ASKS_A_SECRET);
    let fine = rig.enqueue(PASSES);
    let poller = Poller::new(rig.manager.clone(), rig.runner.clone(), filter(), 1);
    let stats = poller.stats();
    let shutdown = CancellationToken::new();
    let polling = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { poller.run(shutdown).await }
    });
    rig.until("both stages ended", |server| {
        [broken, fine]
            .iter()
            .all(|id| server.stage(*id).unwrap().status.is_done())
    })
    .await;
    shutdown.cancel();
    polling.await.unwrap();

    let stage = rig.stage(broken);
    assert_eq!((stage.status, stage.exit_code), (Status::Error, 255));
    assert!(
        stage
            .error
            .contains("the provider broke looking up vault_token"),
        "{}",
        stage.error
    );
    assert_eq!(
        rig.stage(fine).status,
        Status::Success,
        "the worker lived on"
    );
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.errored.load(Relaxed), 1);
    assert_eq!(stats.succeeded.load(Relaxed), 1);
}

on_mock_and_host!(
    a_panic_in_a_stage_is_reported_and_the_worker_lives_on: a_panic_is_reported(passes_mock())
);

// ---------------------------------------------------------------- detached steps

const DETACHED: &str = exec_pipeline!(
    "\
- name: server
  detach: true
  commands:
  - echo serving
  - sleep 60
- name: client
  commands:
  - sleep 0.5
  - echo asked
"
);

fn detached_mock() -> MockEngine {
    MockEngine::new()
        .with_step("server", StepScript::exit(1).with_lines(["serving"]).hang())
        .with_step(
            "client",
            StepScript::exit(0).with_chunk(Duration::from_millis(500), "asked\n"),
        )
}

/// A detached step is reported running when it starts and `success`, exit
/// 0, once its output ends (at the latest when the stage is torn down),
/// with its log, whatever its own exit.
async fn detached(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(DETACHED);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));
    let updates = rig.step_updates(id);
    let of = |name: &str| -> Vec<Status> {
        updates
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .collect()
    };
    assert_eq!(of("server"), [Status::Running, Status::Success]);
    assert_eq!(of("client"), [Status::Running, Status::Success]);
    assert_eq!(
        updates[0],
        ("server".into(), Status::Running),
        "started first, not waited for"
    );
    assert_stage_reports(&rig, id, &["server", "client"], Status::Success);
    let server = &rig.stage(id).steps[0];
    assert_eq!((server.status, server.exit_code), (Status::Success, 0));
    assert_eq!(content(&rig.uploaded(id, "server")), ["serving"]);
    assert_eq!(content(&rig.uploaded(id, "client")), ["asked"]);
}

on_mock_and_host!(
    a_detached_step_ends_success_with_the_stage: detached(detached_mock()),
    |engine| {
        engine.assert_protocol();
    }
);

// ---------------------------------------------------------------- 409 on a report

/// A 409 on a step report means the stage was cancelled or taken over on
/// the server: no further step starts, and the stage ends `error`.
async fn conflict_on_report(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(PASSES);
    rig.server.inject(Endpoint::UpdateStep, Fault::Status(409));
    let StageOutcome::Ran(status) = rig.run_next().await else {
        panic!("the stage was started");
    };
    assert_eq!(status, Status::Error);
    assert!(
        rig.step_updates(id).is_empty(),
        "the refused start was the only step report: {:?}",
        rig.step_updates(id)
    );
    let stage = rig.stage(id);
    assert_eq!((stage.status, stage.exit_code), (Status::Error, 255));
    assert!(stage.error.contains("refused"), "{}", stage.error);
    let steps: Vec<Status> = stage.steps.iter().map(|s| s.status).collect();
    assert_eq!(steps, [Status::Skipped, Status::Skipped]);
}

on_mock_and_host!(
    a_409_on_a_step_report_stops_the_stage: conflict_on_report(passes_mock()),
    |engine| {
        engine.assert_protocol();
        assert!(engine.calls_for("build").is_empty() && engine.calls_for("test").is_empty());
    }
);

// ---------------------------------------------------------------- refused live batches

const ONE_STEP: &str = exec_pipeline!(
    "\
- name: talk
  commands:
  - for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.1; done
"
);

fn one_step_mock() -> MockEngine {
    let script = (1..=8).fold(StepScript::exit(0), |script, i| {
        script.with_chunk(Duration::from_millis(100), format!("line {i}\n"))
    });
    MockEngine::new().with_step("talk", script)
}

/// Batches the server refuses (500) are sent again with the next ones: the
/// live stream still gets every line, in order.
async fn refused_batches(engine: Arc<dyn Engine>) {
    let rig = rig(engine).await;
    let id = rig.enqueue(ONE_STEP);
    rig.server
        .inject_times(Endpoint::Batch, Fault::Status(500), 3);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));
    let refused = rig
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/logs/batch") && r.status == Some(500))
        .count();
    assert_eq!(refused, 3);
    let expected: Vec<String> = (1..=8).map(|i| format!("line {i}")).collect();
    let uploaded = rig.uploaded(id, "talk");
    assert_eq!(content(&uploaded), expected);
    assert_eq!(
        rig.live(id, "talk"),
        uploaded,
        "every refused line was sent again"
    );
}

on_mock_and_host!(
    refused_live_batches_are_sent_again: refused_batches(one_step_mock())
);

/// Past the live buffer's bound, lines are counted, and the live stream is
/// told how many it missed; the uploaded log has them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_live_buffer_says_how_many_lines_it_cut() {
    let engine = MockEngine::new().with_step(
        "talk",
        StepScript::exit(0)
            .with_lines(["line 1", "line 2", "line 3", "line 4", "line 5", "line 6"])
            // Long enough after the rest that the refused batch is seen
            // and the faults cleared before it comes.
            .with_chunk(Duration::from_secs(3), "line 7\n"),
    );
    let rig = Arc::new(rig_with(Arc::new(engine), |config| config.logs.buffer_lines = 3).await);
    let id = rig.enqueue(ONE_STEP);
    rig.server
        .inject_always(Endpoint::Batch, Fault::Status(500));
    let running = tokio::spawn({
        let rig = rig.clone();
        async move { rig.run_next().await }
    });
    rig.until("a batch was refused", |server| {
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/logs/batch") && r.status == Some(500))
    })
    .await;
    rig.server.clear_faults();
    assert_eq!(running.await.unwrap(), StageOutcome::Ran(Status::Success));

    let live: Vec<String> = content(&rig.live(id, "talk"));
    assert_eq!(
        live,
        [
            "[runnerkit] 3 lines were not streamed live (the server did not keep up); \
             the full log is uploaded when the step ends",
            "line 1",
            "line 2",
            "line 3",
            "line 7"
        ]
    );
    let uploaded = rig.uploaded(id, "talk");
    let all: Vec<String> = (1..=7).map(|i| format!("line {i}")).collect();
    assert_eq!(content(&uploaded), all);
    assert_numbered(&uploaded, "talk");
}

// ---------------------------------------------------------------- server errors

/// One 500 on any call safe to repeat (the details, the `running` stage
/// update, a step update, the log upload) does not fail the stage: the call
/// is retried, the stage passes, and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_500_on_a_call_safe_to_repeat_costs_nothing() {
    for endpoint in [
        Endpoint::Details,
        Endpoint::UpdateStage,
        Endpoint::UpdateStep,
        Endpoint::Upload,
    ] {
        let engine = passes_mock();
        let rig = rig(Arc::new(engine.clone())).await;
        let id = rig.enqueue(PASSES);
        rig.server.inject(
            endpoint,
            Fault::StatusWithMessage(500, "database is locked".into()),
        );
        assert_eq!(
            rig.run_next().await,
            StageOutcome::Ran(Status::Success),
            "{endpoint:?}"
        );
        let refused = rig
            .server
            .requests()
            .iter()
            .filter(|r| r.status == Some(500))
            .count();
        assert_eq!(refused, 1, "{endpoint:?}: the fault was met");
        assert_eq!(
            rig.step_updates(id),
            [
                ("build".into(), Status::Running),
                ("build".into(), Status::Success),
                ("test".into(), Status::Running),
                ("test".into(), Status::Success),
            ],
            "{endpoint:?}"
        );
        assert_eq!(
            content(&rig.uploaded(id, "build")),
            ["compiling", "done"],
            "{endpoint:?}"
        );
        assert_eq!(content(&rig.uploaded(id, "test")), ["ok"], "{endpoint:?}");
        assert_eq!(rig.stage(id).status, Status::Success, "{endpoint:?}");
    }
}

/// A server that keeps failing the stage's start: once the retries' deadline
/// has passed, the stage is reported `error` with a message naming the call
/// and the server's answer, and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_the_server_keeps_failing_errors_the_stage_naming_the_call() {
    let engine = passes_mock();
    let retry = RetryPolicy {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_elapsed: Some(Duration::from_millis(1500)),
    };
    let rig = rig_with_retry(Arc::new(engine.clone()), retry, |_| {}).await;
    let id = rig.enqueue(PASSES);
    rig.server.inject_times(
        Endpoint::UpdateStage,
        Fault::StatusWithMessage(500, "database is locked".into()),
        1000,
    );
    let running = tokio::spawn({
        let manager = rig.manager.clone();
        let runner = rig.runner.clone();
        async move {
            let stage = manager.request(&filter()).await.unwrap().unwrap();
            runner.run(stage, CancellationToken::new()).await
        }
    });
    rig.until("the start was tried again and again", |server| {
        server
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.status == Some(500))
            .count()
            > 3
    })
    .await;
    // Past the start's deadline, the server recovers: the report of the
    // error (retried in turn) gets through.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    rig.server.clear_faults();
    let StageOutcome::Refused(message) = running.await.unwrap().unwrap() else {
        panic!("the stage cannot run");
    };
    let message = message.to_string();
    assert!(message.contains("database is locked"), "{message}");
    assert!(message.contains("start"), "names the call: {message}");
    let stage = rig.stage(id);
    assert_eq!((stage.status, stage.exit_code), (Status::Error, 255));
    assert_eq!(stage.error, message);
    assert!(engine.calls().is_empty(), "nothing ran");
}

// ---------------------------------------------------------------- an engine error

/// An engine error (an image that cannot be pulled, a daemon gone) is the
/// step's `error`, exit 255, with the message, and the stage's `error`;
/// the next step is skipped by its `on-success` policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_error_is_reported_as_the_steps_and_stages_error() {
    let engine = MockEngine::new().with_step(
        "build",
        StepScript::exit(0).error_at(runnerkit_mock::CallKind::Start),
    );
    let rig = rig(Arc::new(engine.clone())).await;
    let id = rig.enqueue(PASSES);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Error));
    engine.assert_protocol();

    let finals: Vec<drone::Step> = rig
        .server
        .step_updates()
        .into_iter()
        .filter(|s| s.status != Status::Running)
        .collect();
    assert_eq!(finals.len(), 2, "{finals:#?}");
    let (build, test) = (&finals[0], &finals[1]);
    assert_eq!(
        (test.name.as_str(), test.status),
        ("test", Status::Skipped),
        "skipped by its policy once the stage failed"
    );
    assert_eq!(
        (build.name.as_str(), build.status, build.exit_code),
        ("build", Status::Error, 255)
    );
    assert!(
        !build.error.is_empty(),
        "the step carries the engine's message"
    );
    assert_stage_reports(&rig, id, &["build", "test"], Status::Error);
    let stage = rig.stage(id);
    assert_eq!(stage.exit_code, 255);
    assert_eq!(stage.error, build.error, "the stage shows the step's error");
    assert_eq!(stage.steps[1].status, Status::Skipped);
}

/// An engine message may quote a secret (a registry login, a command line):
/// the runtime masks it, so what the server gets in the step's and the
/// stage's `error`, and in any request at all, shows `******`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_error_quoting_a_secret_reaches_the_server_masked() {
    let engine = MockEngine::new().with_step(
        "publish",
        StepScript::exit(0).error_at_saying(
            runnerkit_mock::CallKind::Start,
            format!("push with token {SECRET_VALUE} refused"),
        ),
    );
    let rig = rig(Arc::new(engine.clone())).await;
    let mut details = details(SECRETS);
    details.secrets = vec![Secret {
        name: "deploy_token".into(),
        data: SECRET_VALUE.into(),
        ..Secret::default()
    }];
    let id = rig.server.enqueue(details);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Error));
    engine.assert_protocol();

    let masked = "mock: push with token ****** refused";
    let publish = rig
        .server
        .step_updates()
        .into_iter()
        .find(|s| s.status == Status::Error)
        .expect("the step's final update");
    assert_eq!(publish.error, masked);
    let stage = rig.stage(id);
    assert_eq!(stage.error, masked);
    assert_eq!(stage.steps[0].error, masked);
    for request in rig.server.requests() {
        let body = String::from_utf8_lossy(&request.body);
        assert!(
            !body.contains(SECRET_VALUE),
            "{} {} carried the secret: {body}",
            request.method,
            request.path
        );
    }
}

// ---------------------------------------------------------------- the stage deadline

/// A repository without a timeout (0, which Drone's runner takes as an
/// immediate kill) gets the runner's default deadline; past it the stage is
/// killed and reported so.
async fn deadline(engine: Arc<dyn Engine>) {
    let rig = rig_with(engine, |config| {
        config.default_timeout = Duration::from_secs(2);
    })
    .await;
    let mut details = details(LONG);
    details.repository.timeout = 0;
    let id = rig.server.enqueue(details);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Killed));
    assert_stage_reports(&rig, id, &["build", "test"], Status::Killed);
    let stage = rig.stage(id);
    assert_eq!(stage.exit_code, 137);
    assert!(stage.error.contains("timed out"), "{}", stage.error);
    let steps: Vec<Status> = stage.steps.iter().map(|s| s.status).collect();
    assert_eq!(steps, [Status::Killed, Status::Skipped]);
    assert_eq!(content(&rig.uploaded(id, "build")), ["started"]);
}

on_mock_and_host!(
    a_repository_without_timeout_gets_the_runners_deadline: deadline(long_mock()),
    |engine| {
        engine.assert_protocol();
    }
);

/// A live stream that refuses every batch to the end of the step gets no
/// more batches once the step has ended: its lines are in the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_live_stream_gets_no_more_batches() {
    let engine = MockEngine::new()
        .with_step("build", StepScript::exit(0).with_lines(["compiling"]))
        .with_step(
            "test",
            StepScript::exit(0).with_chunk(Duration::from_secs(1), "ok\n"),
        );
    let rig = rig(Arc::new(engine)).await;
    let id = rig.enqueue(PASSES);
    rig.server
        .inject_always(Endpoint::Batch, Fault::Status(500));
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));
    let build = rig.step_id(id, "build");
    let to_build = rig
        .requests_to(&format!("/rpc/v2/step/{build}/logs/batch"))
        .len();
    assert!(
        to_build <= 2,
        "{to_build} batches for a step whose stream was refused and then closed"
    );
    assert_eq!(content(&rig.uploaded(id, "build")), ["compiling"]);
    assert!(rig.live(id, "build").is_empty());
}

// ---------------------------------------------------------------- many stages

/// Twenty stages through three workers over HTTP: the server offers a
/// pending stage to every worker that asks (no lease), so workers may meet
/// 409s on accept; still every stage runs exactly once, reported started and
/// ended once, with its logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_stages_through_three_workers_each_run_once() {
    let engine = passes_mock();
    let rig = rig(Arc::new(engine.clone())).await;
    let ids: Vec<i64> = (0..20).map(|_| rig.enqueue(PASSES)).collect();
    let poller = Poller::new(rig.manager.clone(), rig.runner.clone(), filter(), 3);
    let stats = poller.stats();
    let shutdown = CancellationToken::new();
    let polling = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { poller.run(shutdown).await }
    });
    rig.until("every stage ended", |server| {
        ids.iter()
            .all(|id| server.stage(*id).unwrap().status.is_done())
    })
    .await;
    shutdown.cancel();
    polling.await.unwrap();

    for id in &ids {
        assert_stage_reports(&rig, *id, &["build", "test"], Status::Success);
        assert_eq!(content(&rig.uploaded(*id, "build")), ["compiling", "done"]);
    }
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.succeeded.load(Relaxed), 20);
    assert_eq!(stats.errored.load(Relaxed), 0);
    assert_eq!(
        engine.count(runnerkit_mock::CallKind::Setup),
        20,
        "each stage ran once"
    );
    let accepted = rig
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.query.is_some() && r.status == Some(200))
        .count();
    assert_eq!(accepted, 20);
}

// ---------------------------------------------------------------- lost answers

/// A call the server applied whose answer never came back, on each
/// endpoint in turn: the stage still runs here to its end, the server ends
/// with every step and the stage final, and no log line is doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_loses_and_doubles_nothing() {
    for endpoint in [
        Endpoint::Accept,
        Endpoint::UpdateStage,
        Endpoint::UpdateStep,
        Endpoint::Batch,
        Endpoint::Upload,
    ] {
        let rig = Arc::new(rig(Arc::new(one_step_mock())).await);
        let id = rig.enqueue(ONE_STEP);
        let running = tokio::spawn({
            let rig = rig.clone();
            async move { rig.run_next().await }
        });
        if endpoint == Endpoint::UpdateStage {
            // The final update's answer: the start's is the next test's.
            rig.until("the stage runs", |server| {
                server
                    .stage(id)
                    .is_some_and(|s| s.status == Status::Running)
            })
            .await;
        }
        let times = if endpoint == Endpoint::Batch { 3 } else { 1 };
        rig.server.inject_times(endpoint, Fault::LoseAnswer, times);
        let outcome = running.await.unwrap();
        assert_eq!(outcome, StageOutcome::Ran(Status::Success), "{endpoint:?}");
        let stage = rig.stage(id);
        assert_eq!(
            stage.status,
            Status::Success,
            "{endpoint:?}: the stage ended"
        );
        assert_eq!(stage.machine, MACHINE, "{endpoint:?}");
        assert!(
            stage.steps.iter().all(|s| s.status == Status::Success),
            "{endpoint:?}: {:?}",
            stage.steps
        );
        let expected: Vec<String> = (1..=8).map(|i| format!("line {i}")).collect();
        assert_eq!(content(&rig.uploaded(id, "talk")), expected, "{endpoint:?}");
        let live = content(&rig.live(id, "talk"));
        let unique: std::collections::BTreeSet<&String> = live.iter().collect();
        assert_eq!(
            live.len(),
            unique.len(),
            "{endpoint:?}: no live line twice: {live:?}"
        );
    }
}

/// The start's answer lost: the server inserted the steps, and their ids
/// are known only from that answer (the protocol has no call to read them),
/// so the stage cannot be run. It must not stay `running` either: it ends
/// `error`, saying why, and nothing ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_the_start_ends_the_stage_with_why() {
    let engine = one_step_mock();
    let rig = rig(Arc::new(engine.clone())).await;
    let id = rig.enqueue(ONE_STEP);
    rig.server.inject(Endpoint::UpdateStage, Fault::LoseAnswer);
    let StageOutcome::Refused(message) = rig.run_next().await else {
        panic!("the stage cannot run");
    };
    assert!(message.to_string().contains("answer"), "{message}");
    let stage = rig.stage(id);
    assert_eq!(stage.status, Status::Error);
    assert!(engine.calls().is_empty(), "nothing ran");
}

// ---------------------------------------------------------------- a log larger than memory

/// Lines of the large log, and the memory bound the runtime keeps it in.
const LARGE_LINES: usize = 20_000;
const LOG_MEMORY: usize = 32 * 1024;

const LARGE_LOG: &str = exec_pipeline!(
    "\
- name: verbose
  environment:
    TOKEN:
      from_secret: deploy_token
  commands:
  - i=0; while [ $i -lt 20000 ]; do echo \"line $i token=$TOKEN\"; i=$((i+1)); done
"
);

fn large_log_mock() -> MockEngine {
    let text: String = (0..LARGE_LINES)
        .map(|i| format!("line {i} token={SECRET_VALUE}\n"))
        .collect();
    // In uneven chunks, cut anywhere (inside lines and secrets too).
    let mut script = StepScript::exit(0);
    let mut rest = text.as_bytes();
    let mut size = 1000;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        script = script.with_chunk(Duration::ZERO, chunk.to_vec());
        rest = tail;
        size = size * 7 % 65_521 + 13;
    }
    MockEngine::new().with_step("verbose", script)
}

/// A step's log many times the runtime's memory bound for a kept log: it is
/// spilled to a file and read back for the upload, which holds every line,
/// masked, in order.
async fn large_log(engine: Arc<dyn Engine>) {
    let rig = rig_with(engine, |config| {
        config.runtime.log_memory = LOG_MEMORY;
        config.runtime.log_limit = 16 * 1024 * 1024;
    })
    .await;
    let mut details = details(LARGE_LOG);
    details.secrets = vec![Secret {
        name: "deploy_token".into(),
        data: SECRET_VALUE.into(),
        ..Secret::default()
    }];
    let id = rig.server.enqueue(details);
    assert_eq!(rig.run_next().await, StageOutcome::Ran(Status::Success));

    let uploaded = rig.uploaded(id, "verbose");
    assert_numbered(&uploaded, "the uploaded log");
    let text_bytes: usize = uploaded.iter().map(|l| l.out.len()).sum();
    assert!(
        text_bytes > 10 * LOG_MEMORY,
        "the log ({text_bytes} bytes) is many times the memory bound"
    );
    let lines = content(&uploaded);
    assert_eq!(lines.len(), LARGE_LINES, "every line is uploaded");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line, &format!("line {i} token=******"), "line {i}");
    }
}

on_mock_and_host!(
    a_log_larger_than_memory_is_uploaded_whole: large_log(large_log_mock())
);

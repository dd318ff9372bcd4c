//! The whole runner flow on the in-memory manager and the mock engine.

use std::sync::Arc;
use std::time::Duration;

use runnerkit_core::drone::{Build, Filter, Repo};
use runnerkit_core::{CancellationToken, Engine, Manager, Status};
use runnerkit_mock::{MockEngine, StepScript};
use runnerkit_runner::{
    LogConfig, MemoryManager, Poller, Report, RunnerConfig, StageOutcome, StageRunner,
};

const PIPELINE: &str = "\
kind: pipeline
type: exec
name: ci
clone:
  disable: true
steps:
- name: build
  commands: [make]
- name: flaky
  failure: ignore
  commands: [make flaky]
- name: test
  commands: [make test]
";

fn filter() -> Filter {
    Filter {
        kind: "pipeline".into(),
        kind_type: "exec".into(),
        ..Filter::default()
    }
}

fn repo() -> Repo {
    Repo {
        id: 1,
        slug: "octocat/hello".into(),
        namespace: "octocat".into(),
        name: "hello".into(),
        timeout: 60,
        ..Repo::default()
    }
}

fn build() -> Build {
    Build {
        event: "push".into(),
        git_ref: "refs/heads/main".into(),
        target: "main".into(),
        ..Build::default()
    }
}

fn config() -> RunnerConfig {
    RunnerConfig {
        machine: "runner-1".into(),
        logs: LogConfig {
            batch_interval: Duration::from_millis(100),
            ..LogConfig::default()
        },
        ..RunnerConfig::default()
    }
}

async fn next_stage(manager: &MemoryManager) -> runnerkit_core::drone::Stage {
    manager
        .request(&filter())
        .await
        .unwrap()
        .expect("a queued stage")
}

/// Runs the next stage queued in `queue` on `engine`, reporting to `manager`
/// (the queue itself, or a manager wrapped around it).
async fn run_next(
    manager: Arc<dyn Manager>,
    queue: &MemoryManager,
    engine: Arc<dyn Engine>,
) -> StageOutcome {
    StageRunner::new(manager, engine, config())
        .run(next_stage(queue).await, CancellationToken::new())
        .await
        .unwrap()
}

fn step_reports(manager: &MemoryManager, stage: i64) -> Vec<(String, Status)> {
    manager
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            Report::Step(s, name, status) if s == stage => Some((name, status)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_stage_is_reported_step_by_step_with_its_logs() {
    let manager = Arc::new(MemoryManager::new());
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let engine = MockEngine::new()
        .with_step(
            "build",
            StepScript::exit(0).with_lines(["compiling", "done"]),
        )
        .with_step("flaky", StepScript::exit(3))
        .with_step("test", StepScript::exit(0).with_lines(["ok"]));
    let outcome = run_next(manager.clone(), &manager, Arc::new(engine.clone())).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    engine.assert_protocol();

    assert_eq!(
        step_reports(&manager, id),
        [
            ("build".into(), Status::Running),
            ("build".into(), Status::Success),
            ("flaky".into(), Status::Running),
            ("flaky".into(), Status::Failure),
            ("test".into(), Status::Running),
            ("test".into(), Status::Success),
        ]
    );
    let stage_reports: Vec<_> = manager
        .reports()
        .into_iter()
        .filter(|r| matches!(r, Report::Stage(..)))
        .collect();
    assert_eq!(
        stage_reports,
        [
            Report::Stage(id, Status::Running),
            Report::Stage(id, Status::Success)
        ]
    );

    let stage = manager.stage(id).unwrap();
    assert_eq!(stage.machine, "runner-1");
    let numbers: Vec<i32> = stage.steps.iter().map(|s| s.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let flaky = &stage.steps[1];
    assert!(flaky.errignore);
    assert_eq!((flaky.status, flaky.exit_code), (Status::Failure, 3));
    assert!(
        stage
            .steps
            .iter()
            .all(|s| s.step_id == id && s.started > 0 && s.stopped >= s.started)
    );

    let build_step = stage.steps[0].id;
    let uploaded: Vec<String> = manager
        .uploaded_log(build_step)
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(uploaded, ["compiling", "done"]);
    let live: Vec<String> = manager
        .live_log(build_step)
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(live, uploaded, "every line was also streamed live");
}

#[tokio::test]
async fn exit_78_ends_the_stage_early_and_passes() {
    let manager = Arc::new(MemoryManager::new());
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let engine = MockEngine::new().with_step("build", StepScript::exit(78));
    let outcome = run_next(manager.clone(), &manager, Arc::new(engine)).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    let stage = manager.stage(id).unwrap();
    let statuses: Vec<_> = stage
        .steps
        .iter()
        .map(|s| (s.status, s.exit_code))
        .collect();
    assert_eq!(
        statuses,
        [
            (Status::Success, 78),
            (Status::Skipped, 0),
            (Status::Skipped, 0)
        ]
    );
}

#[tokio::test]
async fn a_stage_accepted_elsewhere_is_left_alone() {
    let manager = Arc::new(MemoryManager::new());
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let stage = next_stage(&manager).await;
    manager.accept(id, "someone-else").await.unwrap();
    let runner = StageRunner::new(manager.clone(), Arc::new(MockEngine::new()), config());
    let outcome = runner.run(stage, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome, StageOutcome::Taken);
    assert!(
        manager.reports().is_empty(),
        "nothing is reported for a stage another runner took"
    );
    assert_eq!(manager.stage(id).unwrap().machine, "someone-else");
}

#[tokio::test]
async fn a_cancel_on_the_server_kills_the_running_step() {
    let manager = Arc::new(MemoryManager::with_long_poll(Duration::from_secs(5)));
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let engine = MockEngine::new().with_step("build", StepScript::exit(0).hang());
    let runner = StageRunner::new(manager.clone(), Arc::new(engine.clone()), config());
    let stage = next_stage(&manager).await;
    let canceller = {
        let manager = manager.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            manager.cancel_build(id);
        }
    };
    let (outcome, ()) = tokio::join!(runner.run(stage, CancellationToken::new()), canceller);
    assert_eq!(outcome.unwrap(), StageOutcome::Ran(Status::Killed));
    engine.assert_protocol();
    let stage = manager.stage(id).unwrap();
    assert_eq!(stage.status, Status::Killed);
    assert_eq!(stage.steps[0].status, Status::Killed);
    assert_eq!(stage.steps[2].status, Status::Skipped);
}

#[tokio::test]
async fn bad_yaml_reports_the_stage_as_error_with_the_message() {
    let manager = Arc::new(MemoryManager::new());
    let yaml = "kind: pipeline\ntype: exec\nname: ci\nsteps:\n- name: a\n  depends_on: {x: 1}\n";
    let id = manager.enqueue(yaml, "ci", "exec", repo(), build());
    let engine = MockEngine::new();
    let outcome = run_next(manager.clone(), &manager, Arc::new(engine.clone())).await;
    let StageOutcome::Refused(msg) = outcome else {
        panic!("expected a refusal, got {outcome:?}");
    };
    let msg = msg.to_string();
    assert!(msg.contains("line 6"), "{msg}");
    let stage = manager.stage(id).unwrap();
    assert_eq!((stage.status, stage.exit_code), (Status::Error, 255));
    assert_eq!(stage.error, msg);
    assert!(engine.calls().is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_refused_repository_is_reported_not_run() {
    let manager = Arc::new(MemoryManager::new());
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let mut config = config();
    config.limits.repos = vec!["someone/*".into()];
    let runner = StageRunner::new(manager.clone(), Arc::new(MockEngine::new()), config);
    let outcome = runner
        .run(next_stage(&manager).await, CancellationToken::new())
        .await
        .unwrap();
    let StageOutcome::Refused(error) = outcome else {
        panic!("expected a refusal, got {outcome:?}");
    };
    assert!(matches!(*error, runnerkit_runner::StageError::Limits(_)));
    assert_eq!(
        error.to_string(),
        "insufficient permission to run the pipeline"
    );
    assert_eq!(manager.stage(id).unwrap().status, Status::Error);
}

#[tokio::test]
async fn shutdown_stops_polling_and_drains_running_stages() {
    let manager = Arc::new(MemoryManager::with_long_poll(Duration::from_millis(200)));
    let first = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let engine = MockEngine::new().with_step(
        "build",
        StepScript::exit(0).running_for(Duration::from_millis(500)),
    );
    let runner = Arc::new(StageRunner::new(
        manager.clone(),
        Arc::new(engine),
        config(),
    ));
    let poller = Poller::new(manager.clone(), runner, filter(), 1)
        .with_drain_timeout(Duration::from_secs(30));
    let shutdown = CancellationToken::new();
    let stopper = {
        let (shutdown, manager) = (shutdown.clone(), manager.clone());
        async move {
            // Once the first stage runs, ask to stop, then queue another.
            while manager.stage(first).unwrap().status != Status::Running {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            shutdown.cancel();
            manager.enqueue(PIPELINE, "ci", "exec", repo(), build())
        }
    };
    let ((), second) = tokio::join!(poller.run(shutdown), stopper);
    assert_eq!(
        manager.stage(first).unwrap().status,
        Status::Success,
        "the running stage finished"
    );
    assert_eq!(
        manager.stage(second).unwrap().status,
        Status::Pending,
        "no new stage was taken"
    );
}

#[tokio::test]
async fn the_drain_timeout_cancels_what_still_runs() {
    let manager = Arc::new(MemoryManager::with_long_poll(Duration::from_millis(200)));
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let engine = MockEngine::new().with_step("build", StepScript::exit(0).hang());
    let runner = Arc::new(StageRunner::new(
        manager.clone(),
        Arc::new(engine),
        config(),
    ));
    let poller = Poller::new(manager.clone(), runner, filter(), 1)
        .with_drain_timeout(Duration::from_millis(200));
    let shutdown = CancellationToken::new();
    let stopper = {
        let (shutdown, manager) = (shutdown.clone(), manager.clone());
        async move {
            while manager.stage(id).unwrap().status != Status::Running {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            shutdown.cancel();
        }
    };
    tokio::join!(poller.run(shutdown), stopper);
    let stage = manager.stage(id).unwrap();
    assert_eq!(stage.status, Status::Killed);
    assert_eq!(stage.steps[0].status, Status::Killed);
}

/// 200 stages through capacity 4: each is reported started and ended exactly
/// once, and no task is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_two_hundred_stages() {
    let manager = Arc::new(MemoryManager::with_long_poll(Duration::from_millis(50)));
    let engine = MockEngine::new()
        .with_step("build", StepScript::exit(0).with_lines(["a", "b", "c"]))
        .with_step("flaky", StepScript::exit(1));
    let runner = Arc::new(StageRunner::new(
        manager.clone(),
        Arc::new(engine),
        config(),
    ));
    let poller = Arc::new(Poller::new(manager.clone(), runner, filter(), 4));
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let ids: Vec<i64> = (0..200)
        .map(|_| manager.enqueue(PIPELINE, "ci", "exec", repo(), build()))
        .collect();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (poller, shutdown) = (poller.clone(), shutdown.clone());
        async move { poller.run(shutdown).await }
    });
    tokio::time::timeout(Duration::from_secs(120), async {
        while ids
            .iter()
            .any(|id| manager.stage(*id).unwrap().status != Status::Success)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every stage ends");
    shutdown.cancel();
    running.await.unwrap();
    let reports = manager.reports();
    for id in &ids {
        let stage_reports: Vec<_> = reports
            .iter()
            .filter(|r| matches!(r, Report::Stage(s, _) if s == id))
            .collect();
        assert_eq!(
            stage_reports.len(),
            2,
            "stage {id} reported {stage_reports:?}"
        );
    }
    let stats = poller.stats();
    assert_eq!(
        stats.succeeded.load(std::sync::atomic::Ordering::Relaxed),
        200
    );
    assert_eq!(stats.running.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Watchers, flushers and workers are all gone.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        alive <= baseline,
        "{alive} tasks alive after the soak, {baseline} before"
    );
}

/// Where the netrc is not in the details, the runner asks for it: every
/// step gets it, masked in the logs.
#[tokio::test]
async fn clone_credentials_handed_out_apart_reach_the_steps() {
    let manager = Arc::new(MemoryManager::new());
    manager.set_netrc(
        repo().id,
        runnerkit_core::drone::Netrc {
            machine: "git.example.com".into(),
            login: "octocat".into(),
            password: "netrc-pa55".into(),
        },
    );
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let engine = MockEngine::new().with_step(
        "build",
        StepScript::exit(0).echo_env(vec![
            "DRONE_NETRC_MACHINE".into(),
            "DRONE_NETRC_PASSWORD".into(),
        ]),
    );
    let outcome = run_next(manager.clone(), &manager, Arc::new(engine)).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    let step = manager.stage(id).unwrap().steps[0].id;
    let log: Vec<String> = manager
        .uploaded_log(step)
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(
        log,
        [
            "DRONE_NETRC_MACHINE=git.example.com",
            "DRONE_NETRC_PASSWORD=******"
        ]
    );
}

/// A manager that applies some step updates and then loses their answer:
/// what a proxy answering 502/504 after forwarding the call looks like once
/// the client has retried it (the retry meets the bumped version: 409).
struct LosesAnswers {
    inner: Arc<MemoryManager>,
    lose: std::sync::Mutex<Vec<(String, Status)>>,
    lose_start: bool,
}

impl LosesAnswers {
    async fn step_update(
        &self,
        step: &mut runnerkit_core::drone::Step,
        before: bool,
    ) -> Result<(), runnerkit_core::ManagerError> {
        let planned = {
            let mut lose = self.lose.lock().unwrap();
            let found = lose
                .iter()
                .position(|(name, status)| *name == step.name && *status == step.status);
            found.map(|i| lose.remove(i)).is_some()
        };
        if planned {
            let mut applied = step.clone();
            if before {
                self.inner.before(&mut applied).await?;
            } else {
                self.inner.after(&mut applied).await?;
            }
            return Err(runnerkit_core::ManagerError::Conflict);
        }
        if before {
            self.inner.before(step).await
        } else {
            self.inner.after(step).await
        }
    }
}

#[async_trait::async_trait]
impl Manager for LosesAnswers {
    async fn request(
        &self,
        filter: &Filter,
    ) -> Result<Option<runnerkit_core::drone::Stage>, runnerkit_core::ManagerError> {
        self.inner.request(filter).await
    }
    async fn accept(
        &self,
        stage_id: i64,
        machine: &str,
    ) -> Result<runnerkit_core::drone::Stage, runnerkit_core::ManagerError> {
        self.inner.accept(stage_id, machine).await
    }
    async fn details(
        &self,
        stage_id: i64,
    ) -> Result<runnerkit_core::drone::Details, runnerkit_core::ManagerError> {
        self.inner.details(stage_id).await
    }
    async fn netrc(
        &self,
        repo_id: i64,
    ) -> Result<Option<runnerkit_core::drone::Netrc>, runnerkit_core::ManagerError> {
        self.inner.netrc(repo_id).await
    }
    async fn watch(&self, build_id: i64) -> Result<bool, runnerkit_core::ManagerError> {
        self.inner.watch(build_id).await
    }
    async fn before_all(
        &self,
        stage: &mut runnerkit_core::drone::Stage,
    ) -> Result<(), runnerkit_core::ManagerError> {
        if self.lose_start {
            self.inner.before_all(&mut stage.clone()).await?;
            return Err(runnerkit_core::ManagerError::Conflict);
        }
        self.inner.before_all(stage).await
    }
    async fn after_all(
        &self,
        stage: &mut runnerkit_core::drone::Stage,
    ) -> Result<(), runnerkit_core::ManagerError> {
        self.inner.after_all(stage).await
    }
    async fn before(
        &self,
        step: &mut runnerkit_core::drone::Step,
    ) -> Result<(), runnerkit_core::ManagerError> {
        self.step_update(step, true).await
    }
    async fn after(
        &self,
        step: &mut runnerkit_core::drone::Step,
    ) -> Result<(), runnerkit_core::ManagerError> {
        self.step_update(step, false).await
    }
    async fn write(
        &self,
        step_id: i64,
        lines: &[runnerkit_core::Line],
    ) -> Result<(), runnerkit_core::ManagerError> {
        self.inner.write(step_id, lines).await
    }
    async fn upload(
        &self,
        step_id: i64,
        log: runnerkit_core::LogUpload<'_>,
    ) -> Result<(), runnerkit_core::ManagerError> {
        self.inner.upload(step_id, log).await
    }
}

/// A step update applied by the server whose answer was lost is not taken
/// for a cancel: the stage goes on and every status arrives.
#[tokio::test]
async fn an_update_applied_with_its_answer_lost_does_not_stop_the_stage() {
    let memory = Arc::new(MemoryManager::new());
    let id = memory.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let manager = Arc::new(LosesAnswers {
        inner: memory.clone(),
        lose: std::sync::Mutex::new(vec![
            ("build".into(), Status::Success),
            ("test".into(), Status::Running),
        ]),
        lose_start: false,
    });
    let engine = MockEngine::new().with_step("test", StepScript::exit(0).with_lines(["ok"]));
    let outcome = run_next(manager, &memory, Arc::new(engine.clone())).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    engine.assert_protocol();
    assert_eq!(
        step_reports(&memory, id),
        [
            ("build".into(), Status::Running),
            ("build".into(), Status::Success),
            ("build".into(), Status::Success),
            ("flaky".into(), Status::Running),
            ("flaky".into(), Status::Success),
            ("test".into(), Status::Running),
            ("test".into(), Status::Running),
            ("test".into(), Status::Success),
        ],
        "each lost answer is followed by the same update once more, accepted"
    );
    let stage = memory.stage(id).unwrap();
    assert_eq!(stage.status, Status::Success);
    assert!(stage.steps.iter().all(|s| s.status == Status::Success));
    let test = &stage.steps[2];
    assert_eq!(
        memory.uploaded_log(test.id).unwrap()[0].message,
        "ok",
        "the step ran after its start's answer was lost"
    );
}

/// A stage start applied by the server whose answer was lost cannot be run
/// (the steps' ids never arrived) but is reported `error`, not left running.
#[tokio::test]
async fn a_start_applied_with_its_answer_lost_is_reported_not_left_running() {
    let memory = Arc::new(MemoryManager::new());
    let id = memory.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let manager = Arc::new(LosesAnswers {
        inner: memory.clone(),
        lose: std::sync::Mutex::new(Vec::new()),
        lose_start: true,
    });
    let engine = MockEngine::new();
    let outcome = run_next(manager, &memory, Arc::new(engine.clone())).await;
    let StageOutcome::Refused(msg) = outcome else {
        panic!("expected a refusal, got {outcome:?}");
    };
    let msg = msg.to_string();
    assert!(
        msg.contains("answer to the stage's start was lost"),
        "{msg}"
    );
    let stage = memory.stage(id).unwrap();
    assert_eq!((stage.status, stage.exit_code), (Status::Error, 255));
    assert!(engine.calls().is_empty(), "nothing ran");
}

/// A stage whose build was cancelled between the request and the run is
/// not run and not reported: the server already ended it.
#[tokio::test]
async fn a_stage_of_a_build_cancelled_before_it_ran_is_left_alone() {
    let manager = Arc::new(MemoryManager::new());
    let id = manager.enqueue(PIPELINE, "ci", "exec", repo(), build());
    let stage = next_stage(&manager).await;
    manager.cancel_build(id);
    let engine = MockEngine::new();
    let runner = StageRunner::new(manager.clone(), Arc::new(engine.clone()), config());
    let outcome = runner.run(stage, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome, StageOutcome::AlreadyDone);
    assert!(engine.calls().is_empty());
    assert!(manager.reports().is_empty());
    assert_eq!(manager.stage(id).unwrap().status, Status::Skipped);
}

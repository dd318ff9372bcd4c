//! One test (at least) per row of DESIGN.md's "Runtime semantics", on the
//! mock engine under tokio's paused clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Event, Recorder};
use runnerkit_core::{
    CancellationToken, ErrorPolicy, RunPolicy, Secret, SecretVar, Snapshot, Spec, Status, Step,
};
use runnerkit_mock::{CallKind, MockEngine, StepScript};
use runnerkit_runtime::{Error, Runtime, RuntimeConfig};

const SEC: Duration = Duration::from_secs(1);

fn step(name: &str) -> Step {
    Step::named(name)
}

fn after(name: &str, deps: &[&str]) -> Step {
    Step {
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        ..Step::named(name)
    }
}

fn spec(steps: Vec<Step>) -> Arc<Spec> {
    Arc::new(Spec {
        id: "stage".into(),
        steps,
        ..Spec::default()
    })
}

async fn run_with(
    engine: &MockEngine,
    hook: &Arc<Recorder>,
    config: RuntimeConfig,
    spec: Arc<Spec>,
) -> Snapshot {
    let snap = Runtime::new(Arc::new(engine.clone()))
        .with_hook(hook.clone())
        .with_config(config)
        .run(spec, CancellationToken::new())
        .await
        .expect("spec accepted");
    engine.assert_protocol();
    snap
}

async fn run(engine: &MockEngine, hook: &Arc<Recorder>, spec: Arc<Spec>) -> Snapshot {
    run_with(engine, hook, RuntimeConfig::default(), spec).await
}

fn status(snap: &Snapshot, name: &str) -> (Status, i32) {
    let st = snap.step(name).unwrap_or_else(|| panic!("no step {name}"));
    (st.status, st.exit_code)
}

#[tokio::test(start_paused = true)]
async fn serial_steps_run_one_after_another_in_declaration_order() {
    let engine = MockEngine::new()
        .with_step("a", StepScript::exit(0).running_for(SEC))
        .with_step("b", StepScript::exit(0).running_for(SEC));
    let hook = Recorder::new();
    let snap = run(&engine, &hook, spec(vec![step("a"), step("b"), step("c")])).await;
    assert_eq!(snap.stage.status, Status::Success);
    let order: Vec<_> = engine
        .calls()
        .into_iter()
        .filter(|c| c.kind == CallKind::Create)
        .map(|c| c.step.unwrap())
        .collect();
    assert_eq!(order, ["a", "b", "c"]);
    let a_done = hook
        .position(&Event::AfterEach("a".into(), Status::Success))
        .unwrap();
    let b_start = hook.position(&Event::BeforeEach("b".into())).unwrap();
    assert!(a_done < b_start, "b started before a ended");
    assert_eq!(hook.events().first(), Some(&Event::Before));
    assert_eq!(hook.events().last(), Some(&Event::After(Status::Success)));
}

#[tokio::test(start_paused = true)]
async fn a_dag_runs_independent_steps_together_and_waits_for_dependencies() {
    let engine = MockEngine::new()
        .with_step("a", StepScript::exit(0).running_for(5 * SEC))
        .with_step("b", StepScript::exit(0).running_for(5 * SEC));
    let hook = Recorder::new();
    let t0 = tokio::time::Instant::now();
    let snap = run(
        &engine,
        &hook,
        spec(vec![step("a"), step("b"), after("c", &["a", "b"])]),
    )
    .await;
    assert_eq!(snap.stage.status, Status::Success);
    // On the virtual clock: a and b overlapped.
    assert_eq!(t0.elapsed(), 5 * SEC);
    let c_start = hook.position(&Event::BeforeEach("c".into())).unwrap();
    for dep in ["a", "b"] {
        assert!(
            hook.position(&Event::AfterEach(dep.into(), Status::Success))
                .unwrap()
                < c_start
        );
    }
    assert_eq!(hook.max_running(), 2);
}

#[tokio::test(start_paused = true)]
async fn unknown_dependencies_and_cycles_are_refused_before_anything_runs() {
    let engine = MockEngine::new();
    let hook = Recorder::new();
    let runtime = Runtime::new(Arc::new(engine.clone())).with_hook(hook.clone());
    let err = runtime
        .run(
            spec(vec![step("a"), after("b", &["ghost"])]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownDependency {
            step: "b".into(),
            dependency: "ghost".into()
        }
    );
    let err = runtime
        .run(
            spec(vec![after("a", &["b"]), after("b", &["a"])]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, Error::Cycle(vec!["a".into(), "b".into()]));
    assert!(
        engine.calls().is_empty(),
        "the engine was touched: {:?}",
        engine.calls()
    );
    assert!(hook.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn run_policies_follow_the_stage_outcome() {
    let engine = MockEngine::new().with_step("fails", StepScript::exit(2));
    let hook = Recorder::new();
    let policy = |name: &str, p: RunPolicy| Step {
        run_policy: p,
        ..step(name)
    };
    let snap = run(
        &engine,
        &hook,
        spec(vec![
            policy("early-on-failure", RunPolicy::OnFailure),
            step("fails"),
            step("on-success"),
            policy("on-failure", RunPolicy::OnFailure),
            policy("always", RunPolicy::Always),
        ]),
    )
    .await;
    assert_eq!(snap.stage.status, Status::Failure);
    assert_eq!(snap.stage.exit_code, 2);
    assert_eq!(status(&snap, "early-on-failure"), (Status::Skipped, 0));
    assert_eq!(status(&snap, "fails"), (Status::Failure, 2));
    assert_eq!(status(&snap, "on-success"), (Status::Skipped, 0));
    assert_eq!(status(&snap, "on-failure"), (Status::Success, 0));
    assert_eq!(status(&snap, "always"), (Status::Success, 0));
    // Policy skips are reported through after_each, without before_each.
    assert!(
        hook.position(&Event::AfterEach("on-success".into(), Status::Skipped))
            .is_some()
    );
    assert!(!hook.started("on-success"));
}

#[tokio::test(start_paused = true)]
async fn an_ignored_failure_shows_but_does_not_fail_the_stage() {
    let engine = MockEngine::new().with_step("flaky", StepScript::exit(1));
    let hook = Recorder::new();
    let flaky = Step {
        error_policy: ErrorPolicy::Ignore,
        ..step("flaky")
    };
    let snap = run(&engine, &hook, spec(vec![flaky, step("next")])).await;
    assert_eq!(snap.stage.status, Status::Success);
    assert_eq!(status(&snap, "flaky"), (Status::Failure, 1));
    assert!(snap.step("flaky").unwrap().errignore);
    assert_eq!(status(&snap, "next"), (Status::Success, 0));
}

#[tokio::test(start_paused = true)]
async fn an_ignored_engine_error_still_fails_the_stage() {
    let engine =
        MockEngine::new().with_step("flaky", StepScript::exit(0).error_at(CallKind::Start));
    let hook = Recorder::new();
    let flaky = Step {
        error_policy: ErrorPolicy::Ignore,
        ..step("flaky")
    };
    let snap = run(&engine, &hook, spec(vec![flaky])).await;
    assert_eq!(snap.stage.status, Status::Error);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_cancels_the_rest_like_a_cancel() {
    let engine = MockEngine::new()
        .with_step("slow", StepScript::exit(0).hang())
        .with_step("fast", StepScript::exit(3).running_for(2 * SEC));
    let hook = Recorder::new();
    let fast = Step {
        error_policy: ErrorPolicy::FailFast,
        ..step("fast")
    };
    let notify = Step {
        run_policy: RunPolicy::OnFailure,
        ..after("notify", &["fast"])
    };
    let snap = run(
        &engine,
        &hook,
        spec(vec![step("slow"), fast, after("later", &["fast"]), notify]),
    )
    .await;
    assert_eq!(status(&snap, "fast"), (Status::Failure, 3));
    assert_eq!(status(&snap, "slow"), (Status::Killed, 137));
    assert_eq!(status(&snap, "later"), (Status::Skipped, 0));
    assert_eq!(
        status(&snap, "notify"),
        (Status::Skipped, 0),
        "on-failure steps do not run after fail-fast"
    );
    // The failure decides, not `slow`, listed first, which its stop killed.
    assert_eq!(snap.stage.status, Status::Failure);
    assert_eq!(snap.stage.exit_code, 3);
}

#[tokio::test(start_paused = true)]
async fn exit_78_succeeds_and_skips_everything_not_started() {
    let engine = MockEngine::new()
        .with_step("done", StepScript::exit(78).running_for(SEC))
        .with_step("busy", StepScript::exit(0).running_for(10 * SEC));
    let hook = Recorder::new();
    let always = Step {
        run_policy: RunPolicy::Always,
        ..after("always", &["done"])
    };
    let on_failure = Step {
        run_policy: RunPolicy::OnFailure,
        ..after("on-failure", &["done"])
    };
    let snap = run(
        &engine,
        &hook,
        spec(vec![
            step("done"),
            step("busy"),
            after("next", &["done"]),
            always,
            on_failure,
        ]),
    )
    .await;
    assert_eq!(snap.stage.status, Status::Success);
    assert_eq!(status(&snap, "done"), (Status::Success, 78));
    assert_eq!(
        status(&snap, "busy"),
        (Status::Success, 0),
        "running steps finish normally"
    );
    for name in ["next", "always", "on-failure"] {
        assert_eq!(status(&snap, name), (Status::Skipped, 0), "{name}");
        assert!(engine.calls_for(name).is_empty(), "{name} was executed");
    }
}

#[tokio::test(start_paused = true)]
async fn cancellation_kills_running_steps_skips_pending_and_tears_down() {
    let engine = MockEngine::new().with_step("long", StepScript::exit(0).hang());
    let hook = Recorder::new();
    let always = Step {
        run_policy: RunPolicy::Always,
        ..step("cleanup")
    };
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(10 * SEC).await;
            cancel.cancel();
        }
    };
    let runtime = Runtime::new(Arc::new(engine.clone())).with_hook(hook.clone());
    let (snap, ()) = tokio::join!(
        runtime.run(
            spec(vec![step("first"), step("long"), step("pending"), always]),
            cancel
        ),
        canceller
    );
    let snap = snap.unwrap();
    engine.assert_protocol();
    assert_eq!(snap.stage.status, Status::Killed);
    assert_eq!(snap.stage.exit_code, 137);
    assert_eq!(status(&snap, "first"), (Status::Success, 0));
    assert_eq!(status(&snap, "long"), (Status::Killed, 137));
    assert_eq!(status(&snap, "pending"), (Status::Skipped, 0));
    assert_eq!(
        status(&snap, "cleanup"),
        (Status::Skipped, 0),
        "always does not run after a cancel"
    );
}

#[tokio::test(start_paused = true)]
async fn the_stage_timeout_cancels_with_a_message() {
    let engine = MockEngine::new().with_step("long", StepScript::exit(0).hang());
    let hook = Recorder::new();
    let config = RuntimeConfig {
        stage_timeout: Some(60 * SEC),
        ..RuntimeConfig::default()
    };
    let t0 = tokio::time::Instant::now();
    let snap = run_with(&engine, &hook, config, spec(vec![step("long")])).await;
    assert_eq!(t0.elapsed(), 60 * SEC);
    assert_eq!(snap.stage.status, Status::Killed);
    assert_eq!(
        snap.stage.error.as_deref(),
        Some("stage timed out after 1m0s")
    );
    assert_eq!(status(&snap, "long"), (Status::Killed, 137));
}

#[tokio::test(start_paused = true)]
async fn a_step_timeout_kills_that_step_and_the_stage_goes_on_as_failed() {
    let engine = MockEngine::new().with_step("slow", StepScript::exit(0).hang());
    let hook = Recorder::new();
    let slow = Step {
        timeout: Some(30 * SEC),
        ..step("slow")
    };
    let report = Step {
        run_policy: RunPolicy::OnFailure,
        ..step("report")
    };
    let snap = run(&engine, &hook, spec(vec![slow, step("next"), report])).await;
    let slow = snap.step("slow").unwrap();
    assert_eq!((slow.status, slow.exit_code), (Status::Killed, 137));
    assert_eq!(slow.error.as_deref(), Some("step timed out after 30s"));
    assert_eq!(status(&snap, "next"), (Status::Skipped, 0));
    assert_eq!(status(&snap, "report"), (Status::Success, 0));
    assert_eq!(snap.stage.status, Status::Killed);
}

#[tokio::test(start_paused = true)]
async fn detached_steps_are_not_waited_for_and_end_with_the_stage() {
    let engine =
        MockEngine::new().with_step("db", StepScript::exit(1).with_chunk(SEC, "ready\n").hang());
    let hook = Recorder::new();
    let db = Step {
        detach: true,
        ..step("db")
    };
    let snap = run(&engine, &hook, spec(vec![db, after("test", &["db"])])).await;
    assert_eq!(snap.stage.status, Status::Success);
    assert_eq!(status(&snap, "db"), (Status::Success, 0));
    assert_eq!(status(&snap, "test"), (Status::Success, 0));
    assert!(
        !engine.calls_for("db").contains(&CallKind::Wait),
        "detached steps are not waited for"
    );
    // Its after_each comes after the test step, once teardown ended its output.
    let test_done = hook
        .position(&Event::AfterEach("test".into(), Status::Success))
        .unwrap();
    let db_done = hook
        .position(&Event::AfterEach("db".into(), Status::Success))
        .unwrap();
    assert!(test_done < db_done);
}

#[tokio::test(start_paused = true)]
async fn an_engine_error_at_any_step_call_errors_the_step_with_255() {
    for call in [
        CallKind::Create,
        CallKind::Start,
        CallKind::Tail,
        CallKind::Wait,
    ] {
        let engine = MockEngine::new().with_step("bad", StepScript::exit(0).error_at(call));
        let hook = Recorder::new();
        let snap = run(&engine, &hook, spec(vec![step("bad"), step("next")])).await;
        let bad = snap.step("bad").unwrap();
        assert_eq!(
            (bad.status, bad.exit_code),
            (Status::Error, 255),
            "{call:?}"
        );
        let msg = bad.error.clone().unwrap();
        assert!(
            msg.contains(&format!("scripted failure in {call:?}")),
            "{msg}"
        );
        assert_eq!(snap.stage.status, Status::Error);
        assert_eq!(snap.stage.error.as_deref(), Some(msg.as_str()));
        assert_eq!(status(&snap, "next"), (Status::Skipped, 0));
    }
}

#[tokio::test(start_paused = true)]
async fn an_engine_panic_errors_the_step_and_destroy_still_runs() {
    for call in [CallKind::Create, CallKind::Wait] {
        let engine = MockEngine::new().with_step("bad", StepScript::exit(0).panic_at(call));
        let hook = Recorder::new();
        let snap = run(&engine, &hook, spec(vec![step("bad")])).await;
        let bad = snap.step("bad").unwrap();
        assert_eq!((bad.status, bad.exit_code), (Status::Error, 255));
        assert!(
            bad.error.as_deref().unwrap().contains("panicked"),
            "{bad:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_setup_failure_errors_the_stage_and_runs_no_step() {
    let engine = MockEngine::new().with_setup_error();
    let hook = Recorder::new();
    let snap = run(&engine, &hook, spec(vec![step("a")])).await;
    assert_eq!(snap.stage.status, Status::Error);
    assert!(
        snap.stage
            .error
            .as_deref()
            .unwrap()
            .contains("scripted setup failure")
    );
    assert_eq!(status(&snap, "a"), (Status::Skipped, 0));
    assert_eq!(engine.count(CallKind::Create), 0);
}

#[tokio::test(start_paused = true)]
async fn oom_reports_137() {
    let engine = MockEngine::new().with_step("hog", StepScript::exit(0).oom());
    let hook = Recorder::new();
    let snap = run(&engine, &hook, spec(vec![step("hog")])).await;
    let hog = snap.step("hog").unwrap();
    assert_eq!(
        (hog.status, hog.exit_code, hog.oom_killed),
        (Status::Failure, 137, true)
    );
    assert_eq!(snap.stage.status, Status::Failure);
}

#[tokio::test(start_paused = true)]
async fn a_failing_or_panicking_hook_stops_the_stage_and_destroy_runs_once() {
    for panics in [false, true] {
        let engine = MockEngine::new();
        let mut rec = Recorder::default();
        if panics {
            rec.panic_before_each = Some("b".into());
        } else {
            rec.fail_before_each = Some("b".into());
        }
        let hook = Arc::new(rec);
        let snap = run(&engine, &hook, spec(vec![step("a"), step("b"), step("c")])).await;
        assert_eq!(snap.stage.status, Status::Error, "panics: {panics}");
        assert_eq!(status(&snap, "a"), (Status::Success, 0));
        assert_eq!(status(&snap, "b"), (Status::Skipped, 0));
        assert_eq!(status(&snap, "c"), (Status::Skipped, 0));
        assert!(engine.calls_for("b").is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn before_each_can_skip_a_step_and_its_dependents_go_on() {
    let engine = MockEngine::new();
    let hook = Arc::new(Recorder {
        skip: vec!["a".into()],
        ..Recorder::default()
    });
    let snap = run(&engine, &hook, spec(vec![step("a"), after("b", &["a"])])).await;
    assert_eq!(status(&snap, "a"), (Status::Skipped, 0));
    assert_eq!(status(&snap, "b"), (Status::Success, 0));
    assert!(engine.calls_for("a").is_empty());
}

#[tokio::test(start_paused = true)]
async fn lines_reach_hooks_in_order_masked_and_once_as_a_whole() {
    let engine = MockEngine::new().with_step(
        "print",
        StepScript::exit(0)
            .with_chunk(SEC, "token is hun")
            .with_chunk(SEC, "ter2\r\nsecond\nthird ")
            .with_chunk(SEC, "line")
            .with_chunk(SEC, " ends with no newline"),
    );
    let hook = Recorder::new();
    let mut s = Spec {
        secrets: vec![Secret {
            name: "t".into(),
            value: "hunter2".into(),
            mask: true,
        }],
        ..(*spec(vec![step("print")])).clone()
    };
    s.steps[0].secrets.push(SecretVar {
        env: "S".into(),
        value: "second".into(),
        mask: true,
    });
    let snap = run(&engine, &hook, Arc::new(s)).await;
    assert_eq!(snap.stage.status, Status::Success);
    assert_eq!(
        hook.lines("print"),
        [
            "token is ******",
            "******",
            "third line ends with no newline"
        ]
    );
    let logs: Vec<_> = hook
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Logs(..)))
        .collect();
    assert_eq!(logs, [Event::Logs("print".into(), 3)]);
}

#[tokio::test(start_paused = true)]
async fn the_log_limit_truncates_with_a_marker() {
    let lines: Vec<String> = (0..100).map(|i| format!("line {i:03}")).collect();
    let engine = MockEngine::new().with_step("chatty", StepScript::exit(0).with_lines(&lines));
    let hook = Recorder::new();
    let config = RuntimeConfig {
        log_limit: 90,
        ..RuntimeConfig::default()
    };
    run_with(&engine, &hook, config, spec(vec![step("chatty")])).await;
    let got = hook.lines("chatty");
    assert_eq!(&got[..10], &lines[..10]);
    assert!(got[10].contains("log limit of 90 bytes reached"), "{got:?}");
    assert!(got[11].contains("90 more lines"), "{got:?}");
    assert_eq!(got.len(), 12);
}

#[tokio::test(start_paused = true)]
async fn resume_starts_a_serial_pipeline_at_an_index() {
    let engine = MockEngine::new();
    let hook = Recorder::new();
    let runtime = Runtime::new(Arc::new(engine.clone())).with_hook(hook.clone());
    let snap = runtime
        .resume(
            spec(vec![step("a"), step("b"), step("c")]),
            1,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    engine.assert_protocol();
    assert_eq!(status(&snap, "a"), (Status::Skipped, 0));
    assert_eq!(status(&snap, "b"), (Status::Success, 0));
    assert_eq!(status(&snap, "c"), (Status::Success, 0));
    assert!(engine.calls_for("a").is_empty());
    let err = runtime
        .resume(
            spec(vec![step("a"), after("b", &["a"])]),
            1,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, Error::ResumeNotSerial);
    let err = runtime
        .resume(spec(vec![step("a")]), 3, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err, Error::ResumeOutOfRange { start: 3, len: 1 });
}

#[tokio::test(start_paused = true)]
async fn an_engine_that_ignores_cancellation_is_abandoned_after_the_kill_grace() {
    let engine = MockEngine::new().with_step("stuck", StepScript::exit(0).ignore_cancel());
    let hook = Recorder::new();
    let config = RuntimeConfig {
        stage_timeout: Some(10 * SEC),
        kill_grace: 5 * SEC,
        ..RuntimeConfig::default()
    };
    let t0 = tokio::time::Instant::now();
    let snap = run_with(&engine, &hook, config, spec(vec![step("stuck")])).await;
    assert_eq!(t0.elapsed(), 15 * SEC);
    let stuck = snap.step("stuck").unwrap();
    assert_eq!(stuck.status, Status::Killed);
    assert!(
        stuck
            .error
            .as_deref()
            .unwrap()
            .contains("did not stop the step within 5s")
    );
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_holds() {
    let mut engine = MockEngine::new();
    let mut steps = Vec::new();
    for i in 0..10 {
        let name = format!("s{i}");
        engine = engine.with_step(&name, StepScript::exit(0).running_for(SEC));
        steps.push(after(&name, &[]));
    }
    steps.push(after("last", &["s0"]));
    let hook = Recorder::new();
    let config = RuntimeConfig {
        concurrency_limit: Some(3),
        ..RuntimeConfig::default()
    };
    let t0 = tokio::time::Instant::now();
    let snap = run_with(&engine, &hook, config, spec(steps)).await;
    assert_eq!(snap.stage.status, Status::Success);
    assert_eq!(hook.max_running(), 3);
    assert_eq!(t0.elapsed(), 4 * SEC);
}

/// Gives every step the same variables as it starts.
struct Vars(&'static [(&'static str, &'static str)]);

#[async_trait::async_trait]
impl runnerkit_core::Hook for Vars {
    async fn before_each(
        &self,
        _: &runnerkit_core::State,
        _: &runnerkit_core::StepState,
    ) -> Result<runnerkit_core::StepDecision, runnerkit_core::HookError> {
        let vars = self.0.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Ok(runnerkit_core::StepDecision::RunWith(vars.collect()))
    }
}

#[tokio::test(start_paused = true)]
async fn hooks_add_variables_as_a_step_starts_the_later_hook_winning() {
    let vars = ["A", "B", "C"].map(String::from).to_vec();
    let engine = MockEngine::new().with_step("env", StepScript::exit(0).echo_env(vars));
    let hook = Recorder::new();
    let mut env = step("env");
    env.environment = [("A", "0"), ("C", "3")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    let snap = Runtime::new(Arc::new(engine.clone()))
        .with_hook(Arc::new(Vars(&[("A", "1"), ("B", "1")])))
        .with_hook(hook.clone())
        .with_hook(Arc::new(Vars(&[("B", "2")])))
        .run(spec(vec![env]), CancellationToken::new())
        .await
        .unwrap();
    engine.assert_protocol();
    assert_eq!(status(&snap, "env"), (Status::Success, 0));
    assert_eq!(hook.lines("env"), ["A=1", "B=2", "C=3"]);
}

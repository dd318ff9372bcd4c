//! Property tests over random DAGs and random outcomes.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Event, Recorder};
use proptest::prelude::*;
use runnerkit_core::{CancellationToken, ErrorPolicy, RunPolicy, Spec, Status, Step};
use runnerkit_mock::{CallKind, MockEngine, StepScript};
use runnerkit_runtime::{Runtime, RuntimeConfig};

#[derive(Debug, Clone)]
struct Case {
    steps: Vec<StepCase>,
    limit: Option<usize>,
}

#[derive(Debug, Clone)]
struct StepCase {
    deps: Vec<usize>,
    exit: i32,
    secs: u64,
    run_policy: RunPolicy,
    error_policy: ErrorPolicy,
    engine_error: bool,
}

fn step_case(index: usize) -> impl Strategy<Value = StepCase> {
    let deps = if index == 0 {
        Just(Vec::new()).boxed()
    } else {
        proptest::collection::vec(0..index, 0..=3.min(index)).boxed()
    };
    (
        deps,
        prop_oneof![6 => Just(0), 2 => Just(1), 1 => Just(78)],
        0u64..5,
        prop_oneof![6 => Just(RunPolicy::OnSuccess), 1 => Just(RunPolicy::OnFailure), 1 => Just(RunPolicy::Always)],
        prop_oneof![6 => Just(ErrorPolicy::Fail), 1 => Just(ErrorPolicy::Ignore), 1 => Just(ErrorPolicy::FailFast)],
        prop::bool::weighted(0.05),
    )
        .prop_map(|(deps, exit, secs, run_policy, error_policy, engine_error)| StepCase {
            deps,
            exit,
            secs,
            run_policy,
            error_policy,
            engine_error,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..25, prop::option::of(1usize..4)).prop_flat_map(|(n, limit)| {
        (0..n)
            .map(step_case)
            .collect::<Vec<_>>()
            .prop_map(move |steps| Case { steps, limit })
    })
}

fn name(i: usize) -> String {
    format!("s{i}")
}

fn build(case: &Case) -> (MockEngine, Arc<Spec>) {
    let engine = MockEngine::new();
    let mut steps = Vec::new();
    for (i, c) in case.steps.iter().enumerate() {
        let mut script = StepScript::exit(c.exit).running_for(Duration::from_secs(c.secs));
        if c.engine_error {
            script = script.error_at(CallKind::Start);
        }
        engine.script(name(i), script);
        let mut deps: Vec<String> = c.deps.iter().map(|&d| name(d)).collect();
        deps.dedup();
        steps.push(Step {
            depends_on: deps.into(),
            run_policy: c.run_policy,
            error_policy: c.error_policy,
            ..Step::named(name(i))
        });
    }
    let spec = Spec {
        id: "prop".into(),
        steps,
        ..Spec::default()
    };
    (engine, Arc::new(spec))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn random_stages_keep_every_promise(case in case()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (engine, spec) = build(&case);
        let hook = Recorder::new();
        let config = RuntimeConfig { concurrency_limit: case.limit, ..RuntimeConfig::default() };
        let snap = rt.block_on(
            Runtime::new(Arc::new(engine.clone()))
                .with_hook(hook.clone())
                .with_config(config)
                .run(spec.clone(), CancellationToken::new()),
        ).unwrap();

        // Setup first, destroy last and exactly once, no call out of order.
        engine.assert_protocol();

        // Every step ends terminal.
        for st in &snap.steps {
            prop_assert!(
                matches!(st.status, Status::Success | Status::Failure | Status::Skipped | Status::Killed | Status::Error),
                "{} ended {:?}", st.name, st.status
            );
        }
        prop_assert!(snap.stage.status.is_done());

        // No step starts before each of its dependencies has ended.
        let events = hook.events();
        let pos: HashMap<Event, usize> = events.iter().cloned().enumerate().map(|(i, e)| (e, i)).collect();
        let ended = |n: &str| events.iter().position(|e| matches!(e, Event::AfterEach(s, _) if s == n));
        for (i, c) in case.steps.iter().enumerate() {
            if let Some(&start) = pos.get(&Event::BeforeEach(name(i))) {
                for &d in &c.deps {
                    let end = ended(&name(d));
                    prop_assert!(end.is_some_and(|e| e < start), "s{i} started before its dependency s{d} ended");
                }
            }
        }

        // The concurrency limit is never exceeded.
        if let Some(limit) = case.limit {
            prop_assert!(hook.max_running() <= limit, "{} running at once, limit {limit}", hook.max_running());
        }

        // After a step exits 78 no step starts later on the clock (steps made
        // ready at that same instant may still have been launched first),
        // and every step that never started ends skipped.
        let first_78 = snap.steps.iter()
            .filter(|s| s.status == Status::Success && s.exit_code == 78)
            .filter_map(|s| hook.ended_at.lock().unwrap().get(&s.name).copied())
            .min();
        if let Some(at) = first_78 {
            for (step, started) in hook.started_at.lock().unwrap().iter() {
                prop_assert!(*started <= at, "{step} started after a step exited 78");
            }
            for st in &snap.steps {
                if !hook.started(&st.name) {
                    prop_assert!(
                        matches!(st.status, Status::Skipped),
                        "{} never started yet ended {:?}", st.name, st.status
                    );
                }
            }
        }

        // The stage outcome is the first decisive step's, in order; after a
        // fail-fast failure, the steps its stop killed do not decide.
        let fail_fast = case.steps.iter().zip(&snap.steps).any(|(c, st)| {
            c.error_policy == ErrorPolicy::FailFast && st.status == Status::Failure
        });
        let decisive = snap.steps.iter()
            .find(|s| s.fails_stage() && !(fail_fast && s.status == Status::Killed))
            .or_else(|| snap.steps.iter().find(|s| s.fails_stage()));
        if let Some(first) = decisive {
            prop_assert_eq!(snap.stage.status, first.status);
        } else {
            prop_assert_eq!(snap.stage.status, Status::Success);
        }
    }
}

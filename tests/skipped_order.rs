//! Drone's rule for steps whose `when` does not match, differentially: random
//! DAG pipelines are written as YAML, assembled the way a runner does and
//! run on the mock engine under a paused clock; what happened is checked
//! against the pipeline as written. A step whose `when` does not match is
//! left out of the spec, yet still holds its dependents back until its own
//! dependencies end (in Drone every step is a vertex; a `never` step
//! completes at once when its turn comes).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use runnerkit::core::{
    CancellationToken, Hook, HookError, Snapshot, State, Status, StepDecision, StepState,
};
use runnerkit::manifest::{
    CompileContext, Compiled, Compiler, PipelineType, StageInput, TypeRegistry, assemble,
};
use runnerkit::mock::{MockEngine, StepScript};
use runnerkit::runtime::Runtime;
use tokio::time::Instant;

/// What a step's `when` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// No `when`: runs.
    Always,
    /// `when: {branch: main}`: does not run on `dev`.
    Branch,
    /// `when: {status: [failure]}`: in the spec, skipped by the runtime in
    /// a passing pipeline.
    Failure,
}

#[derive(Debug, Clone)]
struct StepCase {
    deps: Vec<usize>,
    when: When,
    secs: u64,
}

fn step_case(index: usize) -> impl Strategy<Value = StepCase> {
    let deps = if index == 0 {
        Just(Vec::new()).boxed()
    } else {
        proptest::collection::btree_set(0..index, 0..=3.min(index))
            .prop_map(|deps| deps.into_iter().collect())
            .boxed()
    };
    (
        deps,
        prop_oneof![6 => Just(When::Always), 3 => Just(When::Branch), 1 => Just(When::Failure)],
        0u64..5,
    )
        .prop_map(|(deps, when, secs)| StepCase { deps, when, secs })
}

fn pipeline() -> impl Strategy<Value = Vec<StepCase>> {
    (1usize..=20).prop_flat_map(|n| (0..n).map(step_case).collect::<Vec<_>>())
}

fn name(i: usize) -> String {
    format!("s{i}")
}

fn yaml(steps: &[StepCase]) -> String {
    let mut text = String::from("kind: pipeline\ntype: exec\nname: random\n\nsteps:\n");
    for (i, step) in steps.iter().enumerate() {
        text.push_str(&format!("- name: {}\n  commands:\n  - \"true\"\n", name(i)));
        if !step.deps.is_empty() {
            let deps: Vec<String> = step.deps.iter().map(|&d| name(d)).collect();
            text.push_str(&format!("  depends_on: [{}]\n", deps.join(", ")));
        }
        match step.when {
            When::Always => {}
            When::Branch => text.push_str("  when:\n    branch: main\n"),
            When::Failure => text.push_str("  when:\n    status: [failure]\n"),
        }
    }
    text
}

/// Every step's transitive dependencies as written (through every step,
/// run or not). A pipeline without any `depends_on` is serial: each step
/// then comes after every earlier one.
fn ancestors(steps: &[StepCase]) -> Vec<BTreeSet<usize>> {
    let dag = steps.iter().any(|s| !s.deps.is_empty());
    let mut all: Vec<BTreeSet<usize>> = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let mut mine = BTreeSet::new();
        if dag {
            for &d in &step.deps {
                mine.insert(d);
                mine.extend(all[d].iter().copied());
            }
        } else {
            mine.extend(0..i);
        }
        all.push(mine);
    }
    all
}

/// What step `i` depends on once the steps that do not run are left out:
/// each dependency that runs, and through each one that does not, its own.
fn through_left_out(steps: &[StepCase], i: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for &d in &steps[i].deps {
        if steps[d].when == When::Branch {
            out.extend(through_left_out(steps, d));
        } else {
            out.insert(name(d));
        }
    }
    out
}

/// The virtual time of each step's `before_each` and `after_each`.
#[derive(Default)]
struct Clock {
    started: Mutex<HashMap<String, Instant>>,
    ended: Mutex<HashMap<String, Instant>>,
}

impl Clock {
    fn started(&self) -> HashMap<String, Instant> {
        self.started.lock().unwrap().clone()
    }
    fn ended(&self) -> HashMap<String, Instant> {
        self.ended.lock().unwrap().clone()
    }
}

#[async_trait]
impl Hook for Clock {
    async fn before_each(&self, _: &State, step: &StepState) -> Result<StepDecision, HookError> {
        let first = self
            .started
            .lock()
            .unwrap()
            .insert(step.name.clone(), Instant::now());
        assert!(first.is_none(), "{} started twice", step.name);
        Ok(StepDecision::Run)
    }
    async fn after_each(&self, _: &State, step: &StepState) -> Result<(), HookError> {
        let first = self
            .ended
            .lock()
            .unwrap()
            .insert(step.name.clone(), Instant::now());
        assert!(first.is_none(), "{} ended twice", step.name);
        Ok(())
    }
}

fn context() -> CompileContext {
    let mut ctx = CompileContext {
        spec_id: "skipped".into(),
        clone: false,
        ..CompileContext::default()
    };
    ctx.build.target = "dev".into();
    ctx.build.source = "dev".into();
    ctx
}

struct Outcome {
    compiled: Compiled,
    snapshot: Snapshot,
    clock: Arc<Clock>,
    t0: Instant,
}

/// Assembles `text` on `dev`, runs it on the mock engine (each step
/// `secs[name]` long) under a paused clock.
fn assemble_and_run(text: &str, secs: &HashMap<String, u64>) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let types = TypeRegistry::new().with(PipelineType::exec());
    let compiler = Compiler::default();
    let ctx = context();
    let compiled = rt
        .block_on(assemble(StageInput {
            text,
            pipeline: None,
            trusted: false,
            types: &types,
            compiler: &compiler,
            context: &ctx,
            parsed: None,
        }))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let engine = MockEngine::new();
    for (step, &s) in secs {
        engine.script(
            step.clone(),
            StepScript::exit(0).running_for(Duration::from_secs(s)),
        );
    }
    let clock = Arc::new(Clock::default());
    let spec = Arc::new(compiled.spec.clone());
    let (t0, snapshot) = rt.block_on(async {
        let t0 = Instant::now();
        let snapshot = Runtime::new(Arc::new(engine.clone()))
            .with_hook(clock.clone())
            .run(spec, CancellationToken::new())
            .await
            .unwrap();
        (t0, snapshot)
    });
    engine.assert_protocol();
    Outcome {
        compiled,
        snapshot,
        clock,
        t0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_step_that_does_not_run_still_holds_its_dependents_back(steps in pipeline()) {
        let text = yaml(&steps);
        let secs: HashMap<String, u64> =
            steps.iter().enumerate().map(|(i, s)| (name(i), s.secs)).collect();
        let Outcome { compiled, snapshot, clock, t0 } = assemble_and_run(&text, &secs);
        let spec = &compiled.spec;

        // Every step is listed, in order; a `when: branch: main` step is
        // left out of the spec with that reason, every other one is in it.
        prop_assert_eq!(compiled.steps.len(), steps.len(), "{}", text);
        let in_spec: HashSet<&str> = spec.steps.iter().map(|s| s.name.as_str()).collect();
        for (i, (step, listed)) in steps.iter().zip(&compiled.steps).enumerate() {
            prop_assert_eq!(&listed.name, &name(i));
            if step.when == When::Branch {
                prop_assert_eq!(listed.spec_index, None, "{}\n{}", listed.name, text);
                let reason = listed.not_run.as_ref().map(ToString::to_string);
                prop_assert_eq!(
                    reason.as_deref(),
                    Some("when: branch"),
                    "{}\n{}", listed.name, text
                );
                prop_assert!(!in_spec.contains(listed.name.as_str()), "{} in the spec\n{}", listed.name, text);
            } else {
                prop_assert!(listed.not_run.is_none(), "{}\n{}", listed.name, text);
                let index = listed.spec_index.expect("a step that runs has a spec index");
                prop_assert_eq!(&spec.steps[index].name, &listed.name);
                // Its dependencies, rewritten through the steps left out.
                let deps: BTreeSet<String> = spec.steps[index].depends_on.iter().cloned().collect();
                prop_assert_eq!(deps, through_left_out(&steps, i), "{}\n{}", listed.name, text);
            }
        }

        // All steps exit 0: the stage passes, every step without a `when`
        // ran, every `status: [failure]` step was skipped by the runtime.
        prop_assert_eq!(snapshot.stage.status, Status::Success, "{}", text);
        let started = clock.started();
        let ended = clock.ended();
        for (i, step) in steps.iter().enumerate() {
            let n = name(i);
            match step.when {
                When::Always => {
                    prop_assert!(started.contains_key(&n), "{} never started\n{}", n, text);
                    let state = snapshot.steps.iter().find(|s| s.name == n).unwrap();
                    prop_assert_eq!(state.status, Status::Success, "{}\n{}", n, text);
                }
                When::Failure => {
                    prop_assert!(!started.contains_key(&n), "{} started\n{}", n, text);
                    let state = snapshot.steps.iter().find(|s| s.name == n).unwrap();
                    prop_assert_eq!(state.status, Status::Skipped, "{}\n{}", n, text);
                }
                When::Branch => {
                    prop_assert!(!started.contains_key(&n) && !ended.contains_key(&n), "{} reached the runtime", n);
                }
            }
        }

        // Drone's rule, against the pipeline as written: a step starts
        // once every step it depends on, directly or through steps that
        // did not run, has ended. And no later: with no limit on
        // concurrency it starts at the instant the last of them ends (at
        // once when none ran), so steps with no path between them are not
        // put one after the other.
        let ancestors = ancestors(&steps);
        for (i, mine) in ancestors.iter().enumerate() {
            let n = name(i);
            let ran_before: Vec<Instant> = mine
                .iter()
                .map(|&d| name(d))
                .filter(|d| started.contains_key(d))
                .map(|d| ended[&d])
                .collect();
            if let Some(&start) = started.get(&n) {
                for &d in mine {
                    let d = name(d);
                    if started.contains_key(&d) {
                        prop_assert!(
                            ended[&d] <= start,
                            "{} started at {:?} before its dependency {} ended at {:?}\n{}",
                            n, start - t0, d, ended[&d] - t0, text
                        );
                    }
                }
                let due = ran_before.iter().copied().max().unwrap_or(t0);
                prop_assert_eq!(start, due, "{} started at {:?}, due at {:?}\n{}", n, start - t0, due - t0, text);
            } else if let Some(&end) = ended.get(&n) {
                // A step skipped by its status completes when its turn comes.
                for &due in &ran_before {
                    prop_assert!(due <= end, "{} was skipped at {:?}, before a dependency ended at {:?}\n{}", n, end - t0, due - t0, text);
                }
            }
        }
    }
}

/// `a` (2 s) and `c`, which depends only on a step that does not run and
/// has no dependency of its own, start together; `d` waits for `a` only.
#[test]
fn steps_with_no_path_between_them_overlap() {
    let text = "\
kind: pipeline
type: exec
name: overlap

steps:
- name: a
  commands: [\"true\"]
- name: b
  commands: [\"true\"]
  when:
    branch: main
- name: c
  commands: [\"true\"]
  depends_on: [b]
- name: d
  commands: [\"true\"]
  depends_on: [a]
";
    let secs: HashMap<String, u64> = [("a", 2), ("c", 2), ("d", 1)]
        .map(|(n, s)| (n.to_owned(), s))
        .into();
    let Outcome {
        compiled,
        snapshot,
        clock,
        t0,
    } = assemble_and_run(text, &secs);
    let names: Vec<&str> = compiled
        .spec
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["a", "c", "d"]);
    assert!(compiled.spec.steps[1].depends_on.is_empty());
    assert_eq!(snapshot.stage.status, Status::Success);
    let started = clock.started();
    let ended = clock.ended();
    assert_eq!(started["a"], t0);
    assert_eq!(
        started["c"], t0,
        "c waited for a, which it does not depend on"
    );
    assert!(started["c"] < ended["a"] && started["a"] < ended["c"]);
    assert_eq!(started["d"], ended["a"]);
    assert_eq!(started["d"] - t0, Duration::from_secs(2));
}

/// Once `b` is left out no edge is left, yet the pipeline is still a DAG:
/// `a` and `c` start together rather than one after the other.
#[test]
fn a_dag_without_edges_left_still_runs_its_steps_together() {
    let text = "\
kind: pipeline
type: exec
name: no-edge-left

steps:
- name: a
  commands: [\"true\"]
- name: b
  commands: [\"true\"]
  when:
    branch: main
- name: c
  commands: [\"true\"]
  depends_on: [b]
";
    let secs: HashMap<String, u64> = [("a", 2), ("c", 2)].map(|(n, s)| (n.to_owned(), s)).into();
    let Outcome {
        compiled,
        snapshot,
        clock,
        t0,
    } = assemble_and_run(text, &secs);
    assert!(compiled.spec.graph, "the spec lost the pipeline's DAG");
    assert!(compiled.spec.steps.iter().all(|s| s.depends_on.is_empty()));
    assert_eq!(snapshot.stage.status, Status::Success);
    let started = clock.started();
    assert_eq!(started["a"], t0);
    assert_eq!(
        started["c"], t0,
        "c waited for a, which it does not depend on"
    );
}

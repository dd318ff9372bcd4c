//! A third party's pipeline type, registered through the public API only
//! (`PipelineType::container("vm").with_keys(..)` in
//! `RunnerConfig::types`), run by a `StageRunner` against the in-process
//! Drone server: its keys reach the engine typed, its lint rule refuses a
//! stage naming the line, and a type it does not serve is refused naming
//! the types it does.

mod common;

use std::sync::Arc;

use runnerkit_core::drone::{Filter, Stage};
use runnerkit_core::{CancellationToken, Manager, Status};
use runnerkit_drone::testing::push_stage;
use runnerkit_manifest::{
    EngineDocument, EngineKeys, LintError, Located, PipelineType, TypeRegistry,
};
use runnerkit_mock::{CallKind, MockEngine, Recorded, StepScript};
use runnerkit_runner::{RunnerConfig, StageError, StageOutcome};
use serde::{Deserialize, Serialize};

use common::Rig;

// ---------------------------------------------------------------- the type

/// `vcpus` on the pipeline, `disk_gb` on each step (at most 100).
struct VmKeys;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct VmPipeline {
    vcpus: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct VmStep {
    disk_gb: Option<Located<u32>>,
}

const MAX_DISK_GB: u32 = 100;

impl EngineKeys for VmKeys {
    type Pipeline = VmPipeline;
    type Step = VmStep;

    fn pipeline_keys(&self) -> &[&'static str] {
        &["vcpus"]
    }

    fn step_keys(&self) -> &[&'static str] {
        &["disk_gb"]
    }

    fn lint(&self, doc: &EngineDocument<VmPipeline, VmStep>, _trusted: bool) -> Vec<LintError> {
        doc.steps
            .iter()
            .filter_map(|step| {
                let disk = step.options.disk_gb.as_ref()?;
                (disk.value > MAX_DISK_GB).then(|| {
                    doc.problem(
                        Some(step),
                        disk.line,
                        format!("disk_gb cannot exceed {MAX_DISK_GB}"),
                    )
                })
            })
            .collect()
    }
}

/// A runner serving `vm` only.
fn config() -> RunnerConfig {
    RunnerConfig {
        types: TypeRegistry::new().with(PipelineType::container("vm").with_keys(VmKeys)),
        ..common::config()
    }
}

// ---------------------------------------------------------------- the engine

/// The mock engine, keeping every Spec it was given (from `setup`).
type Recording = Recorded<MockEngine>;

// ---------------------------------------------------------------- the rig

/// Queues `yaml` as the `default` stage of type `kind_type`, lets the
/// runner take it and run it: the stage's id and the outcome.
async fn run(rig: &Rig, yaml: &str, kind_type: &str) -> (i64, StageOutcome) {
    let id = rig.server.enqueue(push_stage(yaml, kind_type));
    let filter = Filter {
        kind: "pipeline".into(),
        kind_type: kind_type.into(),
        ..Filter::default()
    };
    let stage = rig
        .manager
        .request(&filter)
        .await
        .unwrap()
        .expect("a queued stage");
    assert_eq!(stage.id, id);
    let outcome = rig
        .runner
        .run(stage, CancellationToken::new())
        .await
        .unwrap();
    (id, outcome)
}

fn stage(rig: &Rig, id: i64) -> Stage {
    rig.server.stage(id).expect("the stage exists")
}

/// The uploaded log of `step` of stage `id`, as text lines.
fn uploaded(rig: &Rig, id: i64, step: &str) -> Vec<String> {
    let step_id = stage(rig, id)
        .steps
        .iter()
        .find(|s| s.name == step)
        .unwrap_or_else(|| panic!("no step {step:?}"))
        .id;
    let body = rig
        .server
        .uploaded_log(step_id)
        .expect("a log was uploaded");
    let lines: Vec<runnerkit_core::drone::Line> = serde_json::from_slice(&body).unwrap();
    lines
        .into_iter()
        .map(|l| l.out.trim_end_matches('\n').to_owned())
        .collect()
}

/// Asserts that a refused stage ran nothing: no engine call, no step on the
/// server, the stage `error` with `message`.
fn assert_refused_before_running(rig: &Rig, engine: &Recording, id: i64, message: &str) {
    assert!(
        engine.inner().calls().is_empty(),
        "{:?}",
        engine.inner().calls()
    );
    assert!(engine.specs().is_empty());
    let server = stage(rig, id);
    assert_eq!(server.status, Status::Error);
    assert_eq!(server.error, message);
    assert!(server.steps.is_empty(), "{:?}", server.steps);
    assert!(
        rig.server.step_updates().is_empty(),
        "{:?}",
        rig.server.step_updates()
    );
}

// ---------------------------------------------------------------- the tests

const VM: &str = "\
kind: pipeline
type: vm
name: default
vcpus: 4
clone:
  disable: true
steps:
- name: build
  image: alpine
  disk_gb: 20
  commands: [make]
- name: plain
  image: alpine
  commands: [ls]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_stage_runs_with_the_engine_keys_typed_on_the_spec() {
    let engine = Recorded::new(
        MockEngine::new()
            .with_step("build", StepScript::exit(0).with_lines(["booted", "built"]))
            .with_step("plain", StepScript::exit(0).with_lines(["listed"])),
    );
    let rig = Rig::start_on(config(), Arc::new(engine.clone())).await;
    let (id, outcome) = run(&rig, VM, "vm").await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));

    let specs = engine.specs();
    assert_eq!(specs.len(), 1, "one stage set up");
    let spec = &specs[0];
    assert_eq!(
        spec.options.get::<VmPipeline>(),
        Some(&VmPipeline { vcpus: 4 })
    );
    let names: Vec<&str> = spec.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["build", "plain"]);
    let disk = |i: usize| {
        spec.steps[i]
            .options
            .get::<VmStep>()
            .expect("every step carries the engine's step keys")
            .disk_gb
            .as_ref()
            .map(|d| (d.value, d.line))
    };
    assert_eq!(disk(0), Some((20, 10)));
    assert_eq!(disk(1), None);
    // The shared compiler did the container part.
    assert_eq!(spec.steps[0].image, "alpine");
    assert!(spec.steps[0].script.is_some());
    engine.inner().assert_protocol();
    assert_eq!(engine.inner().count(CallKind::Wait), 2);

    let server = stage(&rig, id);
    assert_eq!(server.status, Status::Success);
    assert_eq!(server.error, "");
    let steps: Vec<(&str, Status)> = server
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        steps,
        [("build", Status::Success), ("plain", Status::Success)]
    );
    assert_eq!(uploaded(&rig, id, "build"), ["booted", "built"]);
    assert_eq!(uploaded(&rig, id, "plain"), ["listed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_breaking_the_engine_lint_rule_refuses_the_stage_naming_the_line() {
    let engine = Recorded::new(MockEngine::new());
    let rig = Rig::start_on(config(), Arc::new(engine.clone())).await;
    let too_big = VM.replace("disk_gb: 20", "disk_gb: 500");
    let (id, outcome) = run(&rig, &too_big, "vm").await;
    let StageOutcome::Refused(e) = outcome else {
        panic!("expected a refusal, got {outcome:?}");
    };
    assert!(matches!(*e, StageError::Input(_)), "{e:?}");
    let message = e.to_string();
    assert!(
        message
            .contains("pipeline \"default\", step \"build\" (line 10): disk_gb cannot exceed 100"),
        "{message}"
    );
    assert_refused_before_running(&rig, &engine, id, &message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_the_runner_does_not_serve_is_refused_naming_the_types_served() {
    let engine = Recorded::new(MockEngine::new());
    let rig = Rig::start_on(config(), Arc::new(engine.clone())).await;
    let docker = VM
        .replace("type: vm", "type: docker")
        .replace("vcpus: 4\n", "")
        .replace("  disk_gb: 20\n", "");
    let (id, outcome) = run(&rig, &docker, "docker").await;
    let StageOutcome::Refused(e) = outcome else {
        panic!("expected a refusal, got {outcome:?}");
    };
    assert!(matches!(*e, StageError::Input(_)), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("type \"docker\"") && message.contains("this runner serves: vm)"),
        "{message}"
    );
    assert_refused_before_running(&rig, &engine, id, &message);
}

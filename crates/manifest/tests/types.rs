//! A pipeline type of a third party's engine, registered through the public
//! API only: its own keys reach the spec typed, its lint rules and shape
//! errors name the line, steps that do not run are listed with the reason.

use runnerkit_core::Spec;
use runnerkit_manifest::{
    CompileContext, Compiler, EngineDocument, EngineKeys, Error, LintError, LintRule, Located,
    Manifest, PipelineType, StepKind, TypeRegistry, lint_file,
};
use serde::{Deserialize, Serialize};

mod support;

/// `vm: {vcpus}` on the pipeline, `memory_mb` on each step.
struct VmKeys;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct VmPipeline {
    vm: VmShape,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct VmShape {
    vcpus: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct VmStep {
    memory_mb: Option<Located<u64>>,
}

impl EngineKeys for VmKeys {
    type Pipeline = VmPipeline;
    type Step = VmStep;

    fn pipeline_keys(&self) -> &[&'static str] {
        &["vm"]
    }

    fn step_keys(&self) -> &[&'static str] {
        &["memory_mb"]
    }

    fn lint(&self, doc: &EngineDocument<VmPipeline, VmStep>, _trusted: bool) -> Vec<LintError> {
        doc.steps
            .iter()
            .filter_map(|step| {
                let memory = step.options.memory_mb.as_ref()?;
                (memory.value > 4096)
                    .then(|| doc.problem(Some(step), memory.line, "memory_mb cannot exceed 4096"))
            })
            .collect()
    }
}

fn types() -> TypeRegistry {
    support::types().with(PipelineType::container("firecracker").with_keys(VmKeys))
}

fn ctx() -> CompileContext {
    CompileContext {
        spec_id: "vm1".into(),
        clone: false,
        ..CompileContext::default()
    }
}

fn compile(text: &str) -> Result<runnerkit_manifest::Compiled, Error> {
    support::prepare_with(&types(), text, None, false, &Compiler::default(), &ctx())
}

const VM: &str = "\
kind: pipeline
type: firecracker
name: vm
vm:
  vcpus: 2
steps:
- name: build
  image: alpine
  memory_mb: 512
  commands: [make]
- name: plain
  image: alpine
";

#[test]
fn the_engine_keys_reach_spec_and_steps_typed() {
    let compiled = compile(VM).unwrap();
    assert_eq!(compiled.pipeline_type, "firecracker");
    let spec = &compiled.spec;
    assert_eq!(spec.options.get::<VmPipeline>().unwrap().vm.vcpus, 2);
    let memory = |i: usize| {
        spec.steps[i]
            .options
            .get::<VmStep>()
            .unwrap()
            .memory_mb
            .as_ref()
            .map(|m| m.value)
    };
    assert_eq!(memory(0), Some(512));
    assert_eq!(memory(1), None);
    // The shared compiler did the container part.
    assert_eq!(spec.steps[0].image, "alpine");
    assert!(spec.steps[0].script.is_some());
    // `runnerkit compile` prints them, and a Spec read back keeps them.
    let json = serde_json::to_string(spec).unwrap();
    assert!(json.contains(r#""options":{"vm":{"vcpus":2}}"#), "{json}");
    let back: Spec = serde_json::from_str(&json).unwrap();
    let vm: VmPipeline = back.options.decode().unwrap().unwrap();
    assert_eq!(vm.vm.vcpus, 2);
}

#[test]
fn the_engine_lint_rules_and_shape_errors_name_the_line() {
    let too_big = VM.replace("memory_mb: 512", "memory_mb: 8192");
    let Err(Error::Lint(problems)) = compile(&too_big) else {
        panic!("expected a lint error");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].rule, LintRule::EngineKey);
    assert_eq!(problems[0].line, 9);
    assert_eq!(problems[0].step.as_deref(), Some("build"));
    assert_eq!(
        problems[0].to_string(),
        "pipeline \"vm\", step \"build\" (line 9): memory_mb cannot exceed 4096"
    );

    let wrong_shape = VM.replace("vcpus: 2", "vcpus: [two]");
    let Err(Error::Lint(problems)) = compile(&wrong_shape) else {
        panic!("expected a lint error");
    };
    assert_eq!(problems[0].rule, LintRule::EngineKey);
    assert_eq!(problems[0].line, 5, "{}", problems[0]);

    // `runnerkit lint` runs the same rules.
    let manifest = Manifest::parse(&too_big).unwrap();
    let problems = lint_file(&manifest, &types(), false);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, 9);
}

#[test]
fn shared_rules_follow_the_kind_of_steps() {
    let types = types();
    assert_eq!(
        types.get("firecracker").unwrap().step_kind(),
        StepKind::Container
    );
    let no_image = "kind: pipeline\ntype: firecracker\nsteps:\n- name: a\n  commands: [ls]\n";
    let Err(Error::Lint(problems)) = compile(no_image) else {
        panic!("a container type needs images");
    };
    assert_eq!(problems[0].rule, LintRule::MissingImage);
    let names: Vec<&str> = types.names().collect();
    assert_eq!(names, ["docker", "exec", "firecracker"]);
}

#[test]
fn steps_that_do_not_run_leave_the_spec_and_their_dependents_wait_for_theirs() {
    let text = "\
kind: pipeline
type: exec
steps:
- name: build
  commands: [make]
- name: prep
  depends_on: [build]
  when: {branch: main}
  commands: [prep]
- name: deploy
  depends_on: [prep]
  commands: [deploy]
- name: lint
  commands: [lint]
";
    let mut ctx = ctx();
    ctx.build.target = "dev".into();
    let compiled =
        support::prepare_with(&types(), text, None, false, &Compiler::default(), &ctx).unwrap();
    let names: Vec<&str> = compiled
        .spec
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["build", "deploy", "lint"]);
    assert_eq!(&*compiled.spec.steps[1].depends_on, ["build".to_owned()]);
    let listed: Vec<(&str, Option<usize>, Option<String>)> = compiled
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.spec_index,
                s.not_run.as_ref().map(ToString::to_string),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("build", Some(0), None),
            ("prep", None, Some("when: branch".to_owned())),
            ("deploy", Some(1), None),
            ("lint", Some(2), None),
        ]
    );

    // A graph whose only edges led to the step left out still starts the
    // rest at once, not one after another.
    let only_edge = "\
kind: pipeline
type: exec
steps:
- name: a
  commands: [a]
- name: b
  commands: [b]
- name: c
  depends_on: [a]
  when: {branch: main}
  commands: [c]
";
    let compiled =
        support::prepare_with(&types(), only_edge, None, false, &Compiler::default(), &ctx)
            .unwrap();
    assert_eq!(compiled.spec.steps.len(), 2);
    assert!(!compiled.spec.is_serial());
}

/// Only step keys: the pipeline level is `()`.
struct StepOnly;

impl EngineKeys for StepOnly {
    type Pipeline = ();
    type Step = VmStep;
}

/// No keys at all, at either level.
struct NoKeys;

impl EngineKeys for NoKeys {
    type Pipeline = ();
    type Step = ();
}

#[test]
fn a_level_without_keys_can_be_unit() {
    let types = TypeRegistry::new()
        .with(PipelineType::container("firecracker").with_keys(StepOnly))
        .with(PipelineType::container("bare").with_keys(NoKeys));
    let compiled =
        support::prepare_with(&types, VM, None, false, &Compiler::default(), &ctx()).unwrap();
    let step = compiled.spec.steps[0].options.get::<VmStep>().unwrap();
    assert_eq!(step.memory_mb.as_ref().map(|m| m.value), Some(512));
    let bare = VM.replace("type: firecracker", "type: bare");
    let compiled =
        support::prepare_with(&types, &bare, None, false, &Compiler::default(), &ctx()).unwrap();
    assert_eq!(compiled.spec.steps.len(), 2);
    assert!(compiled.spec.steps[1].options.is_empty());
    assert!(compiled.spec.options.is_empty());
}

//! A third party's runner binary built in the test: `runnerkit_cli::Runner`
//! serving a `vm` type of its own (its own engine, one step key with a lint
//! rule), driven through `run_from` as its `main` would be: `exec` runs a
//! `type: vm` file and hands the key to the engine, `lint` refuses a file
//! breaking the rule, and a type it does not serve is refused.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runnerkit_cli::{Runner, RunnerType};
use runnerkit_manifest::{EngineDocument, EngineKeys, LintError, Located, PipelineType};
use runnerkit_mock::{CallKind, MockEngine, Recorded, StepScript};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

// ---------------------------------------------------------------- the type

/// `disk_gb` on each step, at most 100; no pipeline key.
struct VmKeys;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct VmStep {
    disk_gb: Option<Located<u32>>,
}

impl EngineKeys for VmKeys {
    type Pipeline = ();
    type Step = VmStep;

    fn step_keys(&self) -> &[&'static str] {
        &["disk_gb"]
    }

    fn lint(&self, doc: &EngineDocument<(), VmStep>, _trusted: bool) -> Vec<LintError> {
        doc.steps
            .iter()
            .filter_map(|step| {
                let disk = step.options.disk_gb.as_ref()?;
                (disk.value > 100)
                    .then(|| doc.problem(Some(step), disk.line, "disk_gb cannot exceed 100"))
            })
            .collect()
    }
}

// ---------------------------------------------------------------- the engine

/// The runner's engine: the mock, printing a fixed line per step, keeping
/// every Spec it was set up with.
type VmEngine = Recorded<MockEngine>;

fn vm_engine() -> VmEngine {
    Recorded::new(
        MockEngine::new()
            .with_step("build", StepScript::exit(0).with_lines(["vm build ok"]))
            .with_step("test", StepScript::exit(0).with_lines(["vm test ok"])),
    )
}

/// `my-runner`, serving `vm` on `engine` (the same engine every run).
fn runner(engine: &VmEngine) -> Runner {
    let engine = engine.clone();
    Runner::new("my-runner").with_type(
        RunnerType::new(PipelineType::container("vm").with_keys(VmKeys), move || {
            let engine = engine.clone();
            async move { Ok(engine) }
        })
        .about("each step in a micro VM"),
    )
}

// ---------------------------------------------------------------- fixtures

const VM: &str = "\
kind: pipeline
type: vm
name: default
steps:
- name: build
  image: alpine
  disk_gb: 20
  commands: [make]
- name: test
  image: alpine
  commands: [make test]
";

/// A fresh directory holding `text` as `.drone.yml`.
fn pipeline_file(text: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("rk-custom-runner-")
        .tempdir()
        .unwrap();
    let file = dir.path().join(".drone.yml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

async fn run(engine: &VmEngine, command: &str, file: &Path) -> ExitCode {
    runner(engine)
        .run_from([
            "my-runner".into(),
            command.into(),
            file.as_os_str().to_owned(),
        ])
        .await
}

/// `ExitCode` has no accessor: compare what it prints.
fn code(code: ExitCode) -> String {
    format!("{code:?}")
}

fn expected(status: u8) -> String {
    code(ExitCode::from(status))
}

// ---------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_a_vm_pipeline_and_the_engine_gets_its_key() {
    let engine = vm_engine();
    let (_dir, file) = pipeline_file(VM);
    assert_eq!(code(run(&engine, "exec", &file).await), expected(0));

    let specs = engine.specs();
    assert_eq!(specs.len(), 1, "one run set up");
    let disk = |i: usize| {
        specs[0].steps[i]
            .options
            .get::<VmStep>()
            .expect("every step carries the engine's step keys")
            .disk_gb
            .as_ref()
            .map(|d| d.value)
    };
    let names: Vec<&str> = specs[0].steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["build", "test"]);
    assert_eq!(disk(0), Some(20));
    assert_eq!(disk(1), None);
    assert_eq!(engine.inner().count(CallKind::Wait), 2, "both steps ran");
    engine.inner().assert_protocol();

    // And the same file lints clean.
    assert_eq!(code(run(&engine, "lint", &file).await), expected(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_and_exec_refuse_a_file_breaking_the_key_rule() {
    let engine = vm_engine();
    let (_dir, file) = pipeline_file(&VM.replace("disk_gb: 20", "disk_gb: 500"));
    assert_eq!(code(run(&engine, "lint", &file).await), expected(2));
    assert_eq!(code(run(&engine, "exec", &file).await), expected(2));
    assert!(engine.specs().is_empty(), "nothing ran");
    assert!(engine.inner().calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_refuses_a_type_the_runner_does_not_serve() {
    let engine = vm_engine();
    let docker = VM
        .replace("type: vm", "type: docker")
        .replace("  disk_gb: 20\n", "");
    let (_dir, file) = pipeline_file(&docker);
    // The file itself is fine (`lint` checks the file-wide rules of a type
    // it does not serve and finds nothing): the type is what is refused.
    assert_eq!(code(run(&engine, "lint", &file).await), expected(0));
    assert_eq!(code(run(&engine, "exec", &file).await), expected(2));
    assert!(engine.specs().is_empty(), "nothing ran");
    assert!(engine.inner().calls().is_empty());
}

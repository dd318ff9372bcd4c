//! End-to-end through the `runnerkit` binary: a step that does not run
//! (`when` does not match, or its status does not) still holds its
//! dependents back until its own dependencies end, as in Drone. The first
//! step sleeps, then writes a marker into the workspace; the last one fails
//! unless the marker is there, so it fails when it starts too early.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_runnerkit");

/// A fresh workspace holding `yaml` as `.drone.yml`.
fn workspace(yaml: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rk-cli-skipped-order-")
        .tempdir()
        .unwrap();
    std::fs::write(dir.path().join(".drone.yml"), yaml).unwrap();
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The summary's rows: (step, status).
    fn summary(&self) -> Vec<(String, String)> {
        self.stdout
            .lines()
            .skip_while(|l| !l.starts_with("STEP "))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                let mut cols = l.split_whitespace();
                let step = cols.next().unwrap_or_default().to_owned();
                let status = cols.next().unwrap_or_default().to_owned();
                (step, status)
            })
            .collect()
    }
}

fn exec(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("runnerkit exited by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn rows(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, st)| ((*s).to_owned(), (*st).to_owned()))
        .collect()
}

const BUILD: &str = "\
- name: build
  commands:
  - sleep 0.5
  - echo built > built.txt
";

const DEPLOY: &str = "
  commands:
  - test -f built.txt || { echo deploy started before build ended; exit 1; }
  - cat built.txt
";

#[test]
fn a_step_after_a_step_whose_branch_does_not_match_waits_for_the_step_before() {
    let yaml = format!(
        "\
kind: pipeline
type: exec
name: skipped

steps:
{BUILD}- name: prep
  commands:
  - echo prep > prep.txt
  depends_on: [build]
  when:
    branch: main
- name: deploy
  depends_on: [prep]{DEPLOY}"
    );
    let tmp = workspace(&yaml);
    let dir = tmp.path();
    let r = exec(dir, &["--branch", "dev"]);
    let printed = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{printed}");
    assert_eq!(
        r.summary(),
        rows(&[
            ("build", "success"),
            ("prep", "skipped"),
            ("deploy", "success")
        ]),
        "{printed}"
    );
    assert!(r.stdout.contains("deploy | built\n"), "{printed}");
    assert!(!dir.join("prep.txt").exists(), "prep ran on dev");
}

#[test]
fn a_chain_through_two_skipped_steps_still_waits_for_the_step_before_them() {
    let yaml = format!(
        "\
kind: pipeline
type: exec
name: skipped

steps:
{BUILD}- name: prep
  commands:
  - echo prep > prep.txt
  depends_on: [build]
  when:
    branch: main
- name: tag
  commands:
  - echo tag > tag.txt
  depends_on: [prep]
  when:
    branch: [main, release/*]
- name: deploy
  depends_on: [tag]{DEPLOY}"
    );
    let tmp = workspace(&yaml);
    let dir = tmp.path();
    let r = exec(dir, &["--branch", "dev"]);
    let printed = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{printed}");
    assert_eq!(
        r.summary(),
        rows(&[
            ("build", "success"),
            ("prep", "skipped"),
            ("tag", "skipped"),
            ("deploy", "success")
        ]),
        "{printed}"
    );
    assert!(r.stdout.contains("deploy | built\n"), "{printed}");
    assert!(!dir.join("prep.txt").exists(), "prep ran on dev");
    assert!(!dir.join("tag.txt").exists(), "tag ran on dev");
}

#[test]
fn a_step_after_an_on_failure_step_in_a_passing_pipeline_waits_for_the_step_before() {
    let yaml = format!(
        "\
kind: pipeline
type: exec
name: skipped

steps:
{BUILD}- name: notify
  commands:
  - echo notify > notify.txt
  depends_on: [build]
  when:
    status: [failure]
- name: deploy
  depends_on: [notify]{DEPLOY}"
    );
    let tmp = workspace(&yaml);
    let dir = tmp.path();
    let r = exec(dir, &["--branch", "dev"]);
    let printed = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{printed}");
    assert_eq!(
        r.summary(),
        rows(&[
            ("build", "success"),
            ("notify", "skipped"),
            ("deploy", "success")
        ]),
        "{printed}"
    );
    assert!(r.stdout.contains("deploy | built\n"), "{printed}");
    assert!(!dir.join("notify.txt").exists(), "notify ran on success");
}

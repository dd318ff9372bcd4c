//! End-to-end through the `runnerkit` binary: a step that does not run
//! (`when` does not match, or its status does not) still holds its
//! dependents back until its own dependencies end, as in Drone. The first
//! step sleeps, then writes a marker into the workspace; the last one fails
//! unless the marker is there, so it fails when it starts too early.

mod common;

use common::{Run, exec};
use tempfile::TempDir;

/// A fresh workspace holding `yaml` as `.drone.yml`.
fn workspace(yaml: &str) -> TempDir {
    common::workspace(yaml, &[])
}

/// The summary's rows of `run`: (step, status).
fn summary(run: &Run) -> Vec<(String, String)> {
    common::summary(&run.stdout)
        .into_iter()
        .map(|cols| {
            let col = |i: usize| cols.get(i).cloned().unwrap_or_default();
            (col(0), col(1))
        })
        .collect()
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
        summary(&r),
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
        summary(&r),
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
        summary(&r),
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

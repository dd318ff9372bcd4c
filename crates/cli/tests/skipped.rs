//! End-to-end through the `runnerkit` binary on `type: exec` pipelines:
//! every step of the pipeline is shown, in the summary and in `--json`, and
//! a step that did not run is `skipped` with the reason it did not: its
//! `when` (the compiler left it out of the Spec), an exit 78, an earlier
//! failure, an on-failure step in a stage that did not fail.

mod common;

use common::exec;

use serde_json::{Value, json};
use tempfile::TempDir;

/// A fresh workspace holding `steps` as the steps of a `type: exec`
/// pipeline in `.drone.yml`.
fn workspace(steps: &str) -> TempDir {
    let yaml = format!("kind: pipeline\ntype: exec\nname: skipped\n\nsteps:\n{steps}");
    common::workspace(&yaml, &[])
}

/// The summary's rows of `text`: (step, status, exit, reason), the reason
/// empty where there is none. The duration is left out: it varies.
fn summary(text: &str) -> Vec<[String; 4]> {
    common::summary(text)
        .into_iter()
        .map(|cols| {
            let col = |i: usize| cols.get(i).cloned().unwrap_or_default();
            [
                col(0),
                col(1),
                col(2),
                cols.get(4..).unwrap_or_default().join(" "),
            ]
        })
        .collect()
}

fn rows(expected: &[[&str; 4]]) -> Vec<[String; 4]> {
    expected.iter().map(|row| row.map(str::to_owned)).collect()
}

/// `--json` steps as (name, status, exit_code, reason).
fn json_steps(v: &Value) -> Vec<Value> {
    v["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {v}"))
        .iter()
        .map(|s| json!([s["name"], s["status"], s["exit_code"], s.get("reason")]))
        .collect()
}

/// Runs `steps` twice, for the summary and for `--json`, and checks both
/// show `expected` (name, status, exit, reason; exit `-` and a reason for
/// a step that did not run).
fn shows(steps: &str, args: &[&str], code: i32, expected: &[[&str; 4]]) {
    let tmp = workspace(steps);
    let dir = tmp.path();
    let r = exec(dir, args);
    assert_eq!(r.code, code, "{}", r.printed());
    assert_eq!(summary(&r.stdout), rows(expected), "{}", r.printed());

    let r = exec(dir, &[args, &["--json"]].concat());
    assert_eq!(r.code, code, "{}", r.printed());
    assert_eq!(
        summary(&r.stderr),
        rows(expected),
        "the summary goes to stderr: {}",
        r.printed()
    );
    let want: Vec<Value> = expected
        .iter()
        .map(|[name, status, exit, reason]| {
            let exit = exit.parse::<i64>().map_or(Value::Null, Value::from);
            let reason = (!reason.is_empty()).then_some(*reason);
            json!([name, status, exit, reason])
        })
        .collect();
    assert_eq!(json_steps(&r.json()), want, "{}", r.printed());
}

#[test]
fn a_step_whose_branch_does_not_match_is_listed_skipped_with_when_branch() {
    shows(
        "\
- name: build
  commands: [echo built]
- name: deploy
  commands: [echo deployed > deployed.txt]
  when:
    branch: main
- name: test
  commands: [echo tested]
",
        &["--branch", "dev"],
        0,
        &[
            ["build", "success", "0", ""],
            ["deploy", "skipped", "-", "when: branch"],
            ["test", "success", "0", ""],
        ],
    );
}

#[test]
fn an_exit_78_skips_the_rest_with_reason_exit_78() {
    shows(
        "\
- name: check
  commands: [exit 78]
- name: build
  commands: [echo built]
- name: notify
  commands: [echo notified]
  when:
    status: [success, failure]
",
        &[],
        0,
        &[
            ["check", "success", "78", ""],
            ["build", "skipped", "-", "exit 78"],
            ["notify", "skipped", "-", "exit 78"],
        ],
    );
}

#[test]
fn an_on_success_step_after_a_failure_is_skipped_for_an_earlier_failure() {
    shows(
        "\
- name: broken
  commands: [exit 3]
- name: build
  commands: [echo built]
",
        &[],
        1,
        &[
            ["broken", "failure", "3", ""],
            ["build", "skipped", "-", "an earlier failure"],
        ],
    );
}

#[test]
fn an_on_failure_step_in_a_passing_pipeline_is_skipped_saying_nothing_failed() {
    shows(
        "\
- name: build
  commands: [echo built]
- name: alert
  commands: [echo alerting]
  when:
    status: [failure]
",
        &[],
        0,
        &[
            ["build", "success", "0", ""],
            ["alert", "skipped", "-", "on-failure: nothing had failed"],
        ],
    );
}

/// `2026-12-02T06:32:22.123456Z`: the shape json.rs documents.
fn is_rfc3339_utc(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    b.len() == 27
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && b[26] == b'Z'
}

#[test]
fn json_steps_that_ran_have_their_times_and_those_that_did_not_have_none() {
    let tmp = workspace(
        "\
- name: nap
  commands: [sleep 0.3]
- name: broken
  commands: [exit 1]
- name: after
  commands: [echo after]
",
    );
    let r = exec(tmp.path(), &["--json"]);
    assert_eq!(r.code, 1, "{}", r.printed());
    let v = r.json();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{v}");
    for ran in &steps[..2] {
        let (started, finished) = (&ran["started"], &ran["finished"]);
        for t in [started, finished] {
            assert!(t.as_str().is_some_and(is_rfc3339_utc), "{v}");
        }
        // Same width, same zone: the text orders like the time.
        assert!(started.as_str() <= finished.as_str(), "{v}");
        assert!(ran["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{v}");
        assert!(ran.get("reason").is_none(), "{v}");
    }
    let nap = steps[0]["seconds"].as_f64().unwrap();
    assert!((0.25..30.0).contains(&nap), "the nap took {nap}s: {v}");
    assert_eq!(
        steps[2],
        json!({
            "name": "after",
            "status": "skipped",
            "exit_code": null,
            "started": null,
            "finished": null,
            "seconds": null,
            "reason": "an earlier failure",
        })
    );
    assert_eq!(v["status"], "failure");
    assert!(v.get("error").is_none(), "{v}");
}

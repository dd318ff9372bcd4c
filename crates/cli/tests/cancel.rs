//! How `runnerkit exec` stops steps: a cancel gives each running step
//! SIGTERM and a grace period, shows what it prints while stopping and
//! reports its own exit code; a fail-fast failure is the stage's failure.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, exec, workspace};

/// Waits up to `limit` for `done`, failing the test with `what`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_cancelled_step_stops_in_its_own_way_and_its_exit_code_is_kept() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    // The trap prints, then leaves with its own code; `sleep` in the
    // background and `wait` let the shell take the signal at once.
    let text = r#"kind: pipeline
type: exec
name: graceful
steps:
- name: server
  commands:
  - trap 'echo stopping cleanly; exit 42' TERM
  - touch started
  - sleep 300 &
  - wait
"#;
    let tmp = workspace(text, &[]);
    let dir = tmp.path();
    let child = Command::new(BIN)
        .args(["exec", "--json"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the step to start", Duration::from_secs(30), || {
        dir.join("started").exists()
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("server | stopping cleanly\n"),
        "what the step printed while stopping is shown:\n{stderr}"
    );
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], "killed", "{result}");
    assert_eq!(result["steps"][0]["status"], "killed", "{result}");
    assert_eq!(result["steps"][0]["exit_code"], 42, "{result}");
}

#[test]
fn a_fail_fast_failure_fails_the_stage_and_stops_the_rest() {
    let text = r#"kind: pipeline
type: exec
name: fast
steps:
- name: slow
  depends_on: []
  commands: [sleep 30]
- name: bad
  depends_on: []
  failure: fast
  commands: [sleep 0.3, exit 2]
- name: later
  depends_on: [bad]
  commands: [touch later-ran]
- name: notify
  depends_on: [bad]
  when: {status: [failure]}
  commands: [touch notified]
"#;
    let tmp = workspace(text, &[]);
    let started = Instant::now();
    let r = exec(tmp.path(), &["--json"]);
    assert_eq!(r.code, 1, "{}", r.printed());
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "slow was stopped"
    );
    let result = r.json();
    assert_eq!(result["status"], "failure", "{result}");
    let step = |name: &str| {
        result["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(step("bad")["status"], "failure", "{result}");
    assert_eq!(step("bad")["exit_code"], 2, "{result}");
    assert_eq!(step("slow")["status"], "killed", "{result}");
    // As a cancel: neither the dependents nor the on-failure step run.
    assert_eq!(step("later")["status"], "skipped", "{result}");
    assert_eq!(step("notify")["status"], "skipped", "{result}");
    assert!(!tmp.path().join("later-ran").exists());
    assert!(!tmp.path().join("notified").exists());
}

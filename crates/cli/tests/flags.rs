//! End-to-end: the `exec` flags people reach for after the basics
//! (`--include`, `--exclude`, `--env-file`, `--secret-file`, `--timeout`,
//! `--max-procs`, `--resume-at`) and `compile`'s build and secret flags,
//! through the built binary on `type: exec` pipelines written per test.

mod common;

use common::{Run, run};

use serde_json::Value;
use tempfile::TempDir;

/// Three serial steps; `a` sees `FOO` and the secret `token`.
const SERIAL: &str = "kind: pipeline
type: exec
name: serial
steps:
- name: a
  environment:
    TOKEN: {from_secret: token}
  commands:
  - echo \"foo=$FOO bar=$BAR\"
  - echo \"token=$TOKEN\"
  - echo \"token-length=$${#TOKEN}\"
- name: b
  commands: [echo b]
- name: c
  commands: [echo c]
";

/// `c` depends on `b`, which depends on `a`; `a` writes what `c` reads.
const DAG: &str = "kind: pipeline
type: exec
name: dag
steps:
- name: a
  commands: [sleep 0.3, echo from-a > a.txt]
- name: b
  depends_on: [a]
  commands: [echo b]
- name: c
  depends_on: [b]
  commands: [cat a.txt]
";

/// A fresh workspace holding `pipeline` as `.drone.yml` and each of `files`.
fn workspace(pipeline: &str, files: &[(&str, &str)]) -> TempDir {
    common::workspace(pipeline, files)
}

/// The JSON object of the step `name`.
fn step<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {result}"))
}

fn status(result: &Value, name: &str) -> String {
    step(result, name)["status"].as_str().unwrap().to_owned()
}

fn reason(result: &Value, name: &str) -> String {
    step(result, name)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn include_runs_only_the_named_steps() {
    let dir = workspace(SERIAL, &[]);
    let r = run(dir.path(), &["exec", "--json", "--include", "b"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let result = r.json();
    assert_eq!(status(&result, "b"), "success");
    for other in ["a", "c"] {
        assert_eq!(status(&result, other), "skipped");
        assert_eq!(reason(&result, other), "not included");
    }
    assert!(!r.stderr.contains("a | --> running"), "{}", r.stderr);
}

#[test]
fn exclude_drops_a_step_and_its_dependents_wait_through_it() {
    let dir = workspace(DAG, &[]);
    let r = run(dir.path(), &["exec", "--json", "--exclude", "b"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let result = r.json();
    assert_eq!(status(&result, "b"), "skipped");
    assert_eq!(reason(&result, "b"), "excluded");
    // `c` read what `a` wrote: it still waited for `a`, through `b`.
    assert_eq!(status(&result, "c"), "success");
    assert!(r.stderr.contains("from-a"), "{}", r.stderr);
}

#[test]
fn an_unknown_step_name_is_refused_naming_the_steps() {
    let dir = workspace(SERIAL, &[]);
    for flag in ["--include", "--exclude"] {
        let r = run(dir.path(), &["exec", flag, "nope"]);
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(r.stderr.contains("nope"), "{}", r.stderr);
        assert!(r.stderr.contains("a, b, c"), "{}", r.stderr);
    }
}

#[test]
fn env_and_secret_files_add_to_the_flags_which_win() {
    let dir = workspace(
        SERIAL,
        &[
            ("ci.env", "# the file's\nFOO=file-foo\nBAR=file-bar\n"),
            ("ci.secrets", "token=s3cr3t-from-file\n"),
        ],
    );
    let r = run(
        dir.path(),
        &[
            "exec",
            "--include",
            "a",
            "--env-file",
            "ci.env",
            "--env",
            "BAR=flag-bar",
            "--secret-file",
            "ci.secrets",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("foo=file-foo bar=flag-bar"), "{out}");
    assert!(out.contains("token=******"), "{out}");
    assert!(!out.contains("s3cr3t-from-file"), "{out}");

    let r = run(
        dir.path(),
        &[
            "exec",
            "--include",
            "a",
            "--secret-file",
            "ci.secrets",
            "--secret",
            "token=flag-token",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The value itself is masked: its length says which one won.
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("token-length=10"), "{out}");
    assert!(!out.contains("flag-token"), "{out}");
}

#[test]
fn an_unreadable_or_malformed_env_file_is_refused() {
    let dir = workspace(SERIAL, &[("bad.env", "this is not a variable\n")]);
    let r = run(dir.path(), &["exec", "--env-file", "missing.env"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("missing.env"), "{}", r.stderr);
    let r = run(dir.path(), &["exec", "--secret-file", "bad.env"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
}

#[test]
fn timeout_kills_the_stage() {
    let dir = workspace(
        "kind: pipeline\ntype: exec\nname: slow\nsteps:\n- name: sleep\n  commands: [sleep 30]\n",
        &[],
    );
    let started = std::time::Instant::now();
    let r = run(dir.path(), &["exec", "--json", "--timeout", "1s"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    let result = r.json();
    assert_eq!(result["status"], "killed", "{result}");
    assert_eq!(status(&result, "sleep"), "killed");
    let r = run(dir.path(), &["exec", "--timeout", "soon"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn max_procs_caps_the_steps_running_at_once() {
    let dir = workspace(
        "kind: pipeline\ntype: exec\nname: wide\nsteps:\n- name: x\n  depends_on: []\n  commands: [sleep 0.5]\n- name: y\n  depends_on: []\n  commands: [sleep 0.5]\n- name: z\n  depends_on: [x]\n  commands: [echo z]\n",
        &[],
    );
    let r = run(dir.path(), &["exec", "--json", "--max-procs", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let result = r.json();
    let time = |name: &str, key: &str| step(&result, name)[key].as_str().unwrap().to_owned();
    // RFC 3339 times of one width in UTC: text order is time order.
    let (x, y) = (
        (time("x", "started"), time("x", "finished")),
        (time("y", "started"), time("y", "finished")),
    );
    assert!(x.1 <= y.0 || y.1 <= x.0, "x {x:?} and y {y:?} overlapped");
    let r = run(dir.path(), &["exec", "--max-procs", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn resume_at_skips_the_earlier_steps_with_a_reason() {
    let dir = workspace(SERIAL, &[]);
    let r = run(dir.path(), &["exec", "--json", "--resume-at", "b"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let result = r.json();
    assert_eq!(status(&result, "a"), "skipped");
    assert_eq!(reason(&result, "a"), "before the resume point");
    assert_eq!(status(&result, "b"), "success");
    assert_eq!(status(&result, "c"), "success");
}

#[test]
fn resume_at_is_refused_for_a_dag_and_an_unknown_step() {
    let dir = workspace(DAG, &[]);
    let r = run(dir.path(), &["exec", "--resume-at", "b"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("depends_on"), "{}", r.stderr);
    assert!(!r.stderr.contains("--> running"), "{}", r.stderr);
    let dir = workspace(SERIAL, &[]);
    let r = run(dir.path(), &["exec", "--resume-at", "nope"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("a, b, c"), "{}", r.stderr);
}

#[test]
fn compile_takes_the_build_and_secret_flags() {
    let dir = workspace(
        "kind: pipeline\ntype: exec\nname: p\nsteps:\n- name: always\n  environment:\n    T: {from_secret: token}\n  commands: [echo]\n- name: on-dev\n  commands: [echo]\n  when:\n    branch: [dev]\n",
        &[("ci.secrets", "token=abc\n")],
    );
    let names = |r: &Run| -> Vec<String> {
        let spec: Value = serde_json::from_str(&r.stdout).unwrap();
        spec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = run(dir.path(), &["compile", "--branch", "main"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(names(&r), ["always"]);
    assert!(
        r.stderr.contains("token"),
        "no warning of the secret: {}",
        r.stderr
    );
    let r = run(
        dir.path(),
        &["compile", "--branch", "dev", "--secret-file", "ci.secrets"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(names(&r), ["always", "on-dev"]);
    assert!(!r.stderr.contains("not found"), "{}", r.stderr);
}

#[test]
fn compile_takes_the_env_flags_for_substitution() {
    let dir = workspace(
        "kind: pipeline\ntype: exec\nname: p\nsteps:\n- name: s\n  commands: [echo ${GREETING:-unset} ${TARGET:-unset}]\n",
        &[("ci.env", "GREETING=hello\nTARGET=file\n")],
    );
    let r = run(
        dir.path(),
        &["compile", "--env-file", "ci.env", "--env", "TARGET=flag"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("echo hello flag"), "{}", r.stdout);
}

/// A step printing 5.6 MB (past the daemon's 5 MiB cap), then one more line.
const LOUD: &str = "kind: pipeline
type: exec
name: loud
steps:
- name: loud
  commands:
  - yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678 | head -n 70000
  - echo the-last-line
";

#[test]
fn a_local_run_prints_every_line_unless_log_limit_caps_it() {
    let dir = workspace(LOUD, &[]);
    let r = run(dir.path(), &["exec"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("loud | the-last-line"), "the last line");
    assert!(!r.printed().contains("log limit"), "nothing was cut");

    let r = run(dir.path(), &["exec", "--log-limit", "10k"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.printed();
    assert!(
        out.contains("log limit of 10240 bytes reached"),
        "{}",
        &out[..out.len().min(2000)]
    );
    assert!(!out.contains("the-last-line"), "the rest was not kept");

    let r = run(dir.path(), &["exec", "--log-limit", "lots"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a size"), "{}", r.stderr);
}

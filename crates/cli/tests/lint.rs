//! Typos and empty files (issue 13), end to end: the built `runnerkit`
//! binary warns about keys no one reads (`lint`, `exec`), `lint --strict`
//! refuses them, a host step with nothing to run and a file without a
//! pipeline are refused before anything starts, and each warning is printed
//! once.

mod common;

use common::run;

/// A fresh directory holding `text` as `.drone.yml`.
fn workspace(text: &str) -> tempfile::TempDir {
    common::workspace(text, &[])
}

const TYPOS: &str = "\
kind: pipeline
type: exec
name: ci

steps:
- name: build
  commands: [echo built]
  enviroment:
    A: b
  when:
    brnach: main
";

#[test]
fn lint_prints_each_unknown_key_with_its_line_and_exits_0() {
    let dir = workspace(TYPOS);
    let r = run(dir.path(), &["lint"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        ".drone.yml: warning: pipeline \"ci\", step \"build\" (line 8): unknown key `enviroment`, ignored (did you mean `environment`?)\n\
         .drone.yml: warning: pipeline \"ci\", step \"build\" (line 11): unknown key `brnach` in `when`, ignored (did you mean `branch`?)\n\
         2 warnings\n"
    );
}

#[test]
fn lint_strict_turns_warnings_into_problems() {
    let dir = workspace(TYPOS);
    let r = run(dir.path(), &["lint", "--strict"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("warning:"), "{}", r.stdout);
    assert!(
        r.stdout.contains("(line 8): unknown key `enviroment`"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("2 problems\n"), "{}", r.stdout);
    // A clean file stays clean.
    let clean = workspace("kind: pipeline\ntype: exec\nsteps:\n- name: a\n  commands: [ls]\n");
    let r = run(clean.path(), &["lint", "--strict"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
}

const NOTHING_TO_RUN: &str = "\
kind: pipeline
type: exec
name: ci

steps:
- name: build
  comands:
  - touch ran.txt
";

#[test]
fn a_step_with_nothing_to_run_is_refused_before_anything_starts() {
    let dir = workspace(NOTHING_TO_RUN);
    let want =
        "step \"build\" has nothing to run (did you mean commands? found \"comands\" at line 7)";
    let r = run(dir.path(), &["lint"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(want), "{}", r.stdout);
    let r = run(dir.path(), &["exec"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(want), "{}", r.stderr);
    assert!(
        !r.stdout.contains("running"),
        "nothing started: {}",
        r.stdout
    );
    assert!(!dir.path().join("ran.txt").exists());
}

#[test]
fn a_file_without_a_pipeline_is_refused() {
    for (text, why) in [
        ("", "the file is empty"),
        ("# only a comment\n---\n", "the file is empty"),
        (
            "kind: secret\nname: a\nget: {path: p, name: n}\n",
            "no `kind: pipeline` document",
        ),
    ] {
        let dir = workspace(text);
        let r = run(dir.path(), &["lint"]);
        assert_eq!(r.code, 2, "{text:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.starts_with(".drone.yml: no pipeline: "),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains(why), "{}", r.stdout);
        let r = run(dir.path(), &["exec"]);
        assert_eq!(r.code, 2, "{text:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("the file has no pipeline"),
            "{text:?}: {}",
            r.stderr
        );
    }
}

const DUPLICATE: &str = "\
kind: pipeline
type: exec
name: ci
stpes: []
steps:
- name: build
  environment:
    T: {from_secret: nowhere}
  commands: [echo first]
  commands: [echo second]
";

#[test]
fn duplicate_and_unknown_keys_show_in_lint_and_exec_once_each() {
    let dir = workspace(DUPLICATE);
    let r = run(dir.path(), &["lint"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(".drone.yml: warning: pipeline \"ci\" (line 10): steps[0]: duplicate mapping key `commands`: the last one wins, as in Drone"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("(line 4): unknown key `stpes`"),
        "{}",
        r.stdout
    );
    let r = run(dir.path(), &["exec"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("echo second") && !all.contains("echo first"),
        "{all}"
    );
    for warning in [
        "duplicate mapping key `commands`",
        "unknown key `stpes`",
        // A compile warning: once in the step's log, no second tracing line.
        "secret \"nowhere\" not found",
    ] {
        assert_eq!(all.matches(warning).count(), 1, "{warning}: {all}");
    }
    assert!(
        all.contains("build | warning: secret \"nowhere\" not found"),
        "in the step's log: {all}"
    );
}

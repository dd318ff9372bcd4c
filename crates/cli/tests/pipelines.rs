//! `runnerkit exec` on a file of several pipelines: the build a server
//! would plan (`trigger`, `depends_on`, `trigger.status`), `--pipeline` to
//! pick, `--list` to show it, `--workspace` to run elsewhere, and the
//! `--json` form with `stages`.

mod common;

use common::{exec, workspace};
use serde_json::Value;

/// `build` fails; `docs` passes beside it; `deploy` waits for both and runs
/// on main only; `notify` waits for `build` and runs only on failure.
const BUILD: &str = r#"kind: pipeline
type: exec
name: build
steps:
- name: compile
  commands: [echo compiling]
- name: test
  commands: [echo testing, exit 3]
---
kind: pipeline
type: exec
name: docs
steps:
- name: render
  commands: [echo rendered > rendered.txt]
---
kind: pipeline
type: exec
name: deploy
depends_on: [build, docs]
trigger: {branch: main}
steps:
- name: ship
  commands: [echo shipping]
---
kind: pipeline
type: exec
name: notify
depends_on: [build]
trigger: {status: [failure]}
steps:
- name: tell
  commands:
  - 'echo "failed=$DRONE_FAILED_STAGES build=$DRONE_BUILD_STATUS stage=$DRONE_STAGE_NUMBER after=$DRONE_STAGE_DEPENDS_ON"'
"#;

fn stage<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {result}"))
}

#[test]
fn every_pipeline_runs_as_the_server_would_plan_the_build() {
    let tmp = workspace(BUILD, &[]);
    let r = exec(tmp.path(), &["--branch", "dev"]);
    assert_eq!(r.code, 1, "{}", r.printed());
    let out = &r.stdout;
    // The pipeline the trigger leaves out says why, before anything runs.
    assert!(
        out.starts_with("pipeline deploy: not run (trigger: branch)\n"),
        "{out}"
    );
    // Lines are named after their pipeline, padded to the widest label.
    assert!(out.contains("build/compile | compiling\n"), "{out}");
    assert!(out.contains("docs/render   | + echo rendered"), "{out}");
    // The on-failure stage ran after `build` failed, and saw it.
    assert!(
        out.contains("notify/tell   | failed=build build=failure stage=3 after=build\n"),
        "{out}"
    );
    let tail = out.rsplit("\nPIPELINE ").next().unwrap();
    let rows: Vec<Vec<&str>> = tail
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let statuses: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        statuses,
        [
            ("build", "failure"),
            ("docs", "success"),
            ("deploy", "skipped"),
            ("notify", "success")
        ],
        "{out}"
    );
    assert!(out.contains("\n\nbuild failure in "), "{out}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("rendered.txt")).unwrap(),
        "rendered\n"
    );
}

#[test]
fn a_stage_whose_dependency_failed_is_skipped_and_the_json_lists_stages() {
    let tmp = workspace(BUILD, &[]);
    let r = exec(tmp.path(), &["--branch", "main", "--json"]);
    assert_eq!(r.code, 1, "{}", r.printed());
    assert!(
        r.stderr
            .contains("pipeline deploy: skipped (an earlier stage failed)\n"),
        "{}",
        r.stderr
    );
    let result = r.json();
    assert_eq!(result["status"], "failure");
    assert!(result.get("steps").is_none(), "{result}");
    let build = stage(&result, "build");
    assert_eq!(build["status"], "failure");
    assert_eq!(build["steps"][1]["exit_code"], 3);
    assert!(build["seconds"].as_f64().unwrap() >= 0.0);
    let deploy = stage(&result, "deploy");
    assert_eq!(deploy["status"], "skipped");
    assert_eq!(deploy["reason"], "an earlier stage failed");
    assert_eq!(deploy["steps"], Value::Array(vec![]));
    assert_eq!(stage(&result, "notify")["status"], "success");
}

#[test]
fn when_nothing_fails_the_on_failure_stage_is_skipped() {
    let passing = BUILD.replace("exit 3", "true");
    let tmp = workspace(&passing, &[]);
    let r = exec(tmp.path(), &["--branch", "main", "--json"]);
    assert_eq!(r.code, 0, "{}", r.printed());
    let result = r.json();
    assert_eq!(result["status"], "success");
    assert_eq!(stage(&result, "deploy")["status"], "success");
    let notify = stage(&result, "notify");
    assert_eq!(notify["status"], "skipped");
    assert_eq!(notify["reason"], "trigger: status (runs on failure only)");
}

#[test]
fn one_pipeline_picked_keeps_the_one_stage_output() {
    let tmp = workspace(BUILD, &[]);
    // `deploy` runs on dev as asked, though its trigger says main; its
    // dependencies were not picked, so it does not wait for them.
    let r = exec(
        tmp.path(),
        &["--pipeline", "deploy", "--branch", "dev", "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(
        r.stderr
            .contains("note: pipeline deploy: runs as --pipeline asks"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ship | shipping\n"), "{}", r.stderr);
    let result = r.json();
    assert_eq!(result["status"], "success");
    assert_eq!(result["steps"][0]["name"], "ship");
    // Two picked: a build of two stages.
    let r = exec(
        tmp.path(),
        &["--pipeline", "docs", "--pipeline", "deploy", "--json"],
    );
    let result = r.json();
    let names: Vec<&str> = result["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs", "deploy"], "{result}");
    // A name the file does not have is refused, naming those it has.
    let r = exec(tmp.path(), &["--pipeline", "nope"]);
    assert_eq!(r.code, 2, "{}", r.printed());
    assert!(
        r.stderr
            .contains("pipeline \"nope\" not found (the file has: build, docs, deploy, notify)"),
        "{}",
        r.stderr
    );
}

#[test]
fn nothing_matching_runs_nothing_and_passes() {
    let text = "kind: pipeline\ntype: exec\nname: release\ntrigger: {event: [tag]}\nsteps:\n- name: publish\n  commands: [touch published]\n";
    let tmp = workspace(text, &[]);
    let r = exec(tmp.path(), &["--json"]);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(
        r.stderr
            .contains("pipeline release: not run (trigger: event)\nnothing to run"),
        "{}",
        r.stderr
    );
    let result = r.json();
    assert_eq!(result["status"], "skipped");
    assert_eq!(result["reason"], "trigger: event");
    assert!(!tmp.path().join("published").exists());
    let r = exec(tmp.path(), &["--event", "tag"]);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(tmp.path().join("published").exists());
}

#[test]
fn what_a_server_refuses_is_refused_before_anything_runs() {
    let cyclic = "kind: pipeline\ntype: exec\nname: a\ndepends_on: [b]\nsteps:\n- name: s\n  commands: [touch ran]\n---\nkind: pipeline\ntype: exec\nname: b\ndepends_on: [a]\nsteps:\n- name: s\n  commands: [touch ran]\n";
    let tmp = workspace(cyclic, &[]);
    let r = exec(tmp.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.printed());
    assert!(
        r.stderr
            .contains("cyclical pipeline dependency: a -> b -> a"),
        "{}",
        r.stderr
    );
    let unknown = "kind: pipeline\ntype: exec\nname: a\nsteps:\n- name: s\n  commands: [touch ran]\n---\nkind: pipeline\ntype: exec\nname: b\ndepends_on: [c]\nsteps:\n- name: s\n  commands: [touch ran]\n";
    std::fs::write(tmp.path().join(".drone.yml"), unknown).unwrap();
    let r = exec(tmp.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.printed());
    assert!(
        r.stderr
            .contains("unknown pipeline dependency: b references c"),
        "{}",
        r.stderr
    );
    // A lint problem in the last pipeline stops the first from starting.
    let late = "kind: pipeline\ntype: exec\nname: a\nsteps:\n- name: s\n  commands: [touch ran]\n---\nkind: pipeline\ntype: exec\nname: b\nsteps:\n- name: s\n  comands: [true]\n";
    std::fs::write(tmp.path().join(".drone.yml"), late).unwrap();
    let r = exec(tmp.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.printed());
    assert!(r.stderr.contains("nothing to run"), "{}", r.stderr);
    assert!(!tmp.path().join("ran").exists());
}

#[test]
fn list_shows_the_build_and_runs_nothing() {
    let text = BUILD.replace("echo compiling", "touch ran");
    let tmp = workspace(&text, &[]);
    let r = exec(tmp.path(), &["--list", "--branch", "dev"]);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert_eq!(
        r.stdout,
        "build (stage 1, type exec)\n  \
         compile\n  \
         test\n\
         docs (stage 2, type exec)\n  \
         render\n\
         deploy: not run (trigger: branch)\n\
         notify (stage 3, type exec; after build; runs only if a stage failed)\n  \
         tell\n"
    );
    assert!(!tmp.path().join("ran").exists());
    let r = exec(tmp.path(), &["--list", "--branch", "main", "--json"]);
    let listing = r.json();
    let deploy = &listing["pipelines"][2];
    assert_eq!(deploy["stage"], 3);
    assert_eq!(deploy["depends_on"], serde_json::json!(["build", "docs"]));
    assert_eq!(deploy["steps"][0]["name"], "ship");
    assert_eq!(deploy["steps"][0]["runs"], true);
}

#[test]
fn list_says_why_a_step_is_skipped_and_what_it_waits_for() {
    let text = "kind: pipeline\ntype: exec\nname: ci\nsteps:\n- name: build\n  commands: [make]\n- name: prep\n  when: {branch: main}\n  commands: [prep]\n  depends_on: [build]\n- name: deploy\n  commands: [ship]\n  depends_on: [prep]\n- name: alert\n  when: {status: [failure]}\n  commands: [page]\n  depends_on: [deploy]\n";
    let tmp = workspace(text, &[]);
    let r = exec(tmp.path(), &["--list", "--branch", "dev"]);
    assert_eq!(r.code, 0, "{}", r.printed());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "ci (stage 1, type exec)", "{}", r.stdout);
    assert_eq!(lines[1].trim_end(), "  build", "{}", r.stdout);
    assert_eq!(lines[2], "  prep    skipped: when: branch", "{}", r.stdout);
    // It waits through the skipped step for what that one waited for.
    assert_eq!(lines[3], "  deploy  after build", "{}", r.stdout);
    assert_eq!(
        lines[4], "  alert   on failure; after deploy",
        "{}",
        r.stdout
    );
}

#[test]
fn the_workspace_can_be_another_directory() {
    let tmp = workspace(
        "kind: pipeline\ntype: exec\nname: w\nsteps:\n- name: where\n  commands: [pwd, touch made-here]\n",
        &[],
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().canonicalize().unwrap();
    let r = exec(tmp.path(), &["--workspace", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(
        r.stdout.contains(&format!("where | {}\n", dir.display())),
        "{}",
        r.stdout
    );
    assert!(dir.join("made-here").exists());
    assert!(!tmp.path().join("made-here").exists());
    let r = exec(tmp.path(), &["--workspace", "/nonexistent/dir"]);
    assert_eq!(r.code, 2, "{}", r.printed());
    assert!(
        r.stderr
            .contains("--workspace /nonexistent/dir: cannot resolve the path"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_commit_a_server_would_skip_still_runs_locally_with_a_note() {
    let tmp = workspace(
        "kind: pipeline\ntype: exec\nname: p\nsteps:\n- name: s\n  commands: [touch ran]\n",
        &[],
    );
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(tmp.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", ".drone.yml"]);
    git(&["commit", "-q", "-m", "docs: typo [skip ci]"]);
    let r = exec(tmp.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(
        r.stdout.starts_with(
            "note: the commit message says [skip ci]: a server would not build this commit; running it as asked\n"
        ),
        "{}",
        r.stdout
    );
    assert!(tmp.path().join("ran").exists());
}

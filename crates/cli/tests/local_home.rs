//! End-to-end: what a local run of a `type: exec` pipeline takes from the
//! user's machine: its `HOME` (or `--env HOME`), its platform (a pipeline
//! for another one is refused unless `--platform-any`) and the git
//! checkout's commit, branch, message and author.

use std::path::Path;
use std::process::Command;

mod common;

use common::Run;

use tempfile::TempDir;

/// A fresh workspace holding `pipeline` as `.drone.yml`.
fn workspace(pipeline: &str) -> TempDir {
    common::workspace(pipeline, &[])
}

/// Runs `runnerkit exec ARGS` in `dir` with `HOME` set to `home`.
fn exec(dir: &Path, home: &Path, args: &[&str]) -> Run {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    common::run_with(dir, &all, &[("HOME", home.as_os_str())])
}

/// The value a step printed as `KEY=VALUE` (a line `step | KEY=VALUE`).
fn printed(run: &Run, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    run.stdout.lines().find_map(|line| {
        let (_, text) = line.split_once(" | ")?;
        text.strip_prefix(&prefix).map(str::to_owned)
    })
}

const PRINT_HOME: &str = "\
kind: pipeline
type: exec
name: default
steps:
- name: show
  commands:
  - echo \"home=$HOME\"
";

#[test]
fn a_step_sees_the_users_home() {
    let ws = workspace(PRINT_HOME);
    let home = TempDir::new().unwrap();
    let run = exec(ws.path(), home.path(), &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        printed(&run, "home").as_deref(),
        Some(home.path().to_str().unwrap()),
        "{}",
        run.stdout
    );
}

#[test]
fn env_home_wins_over_the_users() {
    let ws = workspace(PRINT_HOME);
    let home = TempDir::new().unwrap();
    let run = exec(ws.path(), home.path(), &["--env", "HOME=/x"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        printed(&run, "home").as_deref(),
        Some("/x"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_pipeline_for_another_platform_is_refused_unless_platform_any() {
    // `entrypoint` rather than `commands`: a Windows pipeline's commands
    // run in PowerShell, which this host need not have.
    let ws = workspace(
        "\
kind: pipeline
type: exec
name: win
platform:
  os: windows
steps:
- name: trivial
  entrypoint: [echo]
  command: [ran=yes]
",
    );
    let home = TempDir::new().unwrap();
    let refused = exec(ws.path(), home.path(), &[]);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("windows") && refused.stderr.contains("--platform-any"),
        "{}",
        refused.stderr
    );
    assert_eq!(printed(&refused, "ran"), None, "nothing ran");
    let run = exec(ws.path(), home.path(), &["--platform-any"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        printed(&run, "ran").as_deref(),
        Some("yes"),
        "{}",
        run.stdout
    );
}

/// Runs `git ARGS` in `dir` with no user or system configuration.
fn git(dir: &Path, home: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

#[test]
fn git_fills_the_commit_branch_message_and_author() {
    let ws = workspace(
        "\
kind: pipeline
type: exec
name: default
steps:
- name: show
  commands:
  - echo \"sha=$DRONE_COMMIT_SHA\"
  - echo \"branch=$DRONE_BRANCH\"
  - echo \"message=$DRONE_COMMIT_MESSAGE\"
  - echo \"author=$DRONE_COMMIT_AUTHOR\"
  - echo \"name=$DRONE_COMMIT_AUTHOR_NAME\"
  - echo \"email=$DRONE_COMMIT_AUTHOR_EMAIL\"
",
    );
    let home = TempDir::new().unwrap();
    let dir = ws.path();
    if git(dir, home.path(), &["--version"]).is_none() {
        eprintln!("skipped: git is not installed");
        return;
    }
    git(dir, home.path(), &["init", "-q", "-b", "topic"]).unwrap();
    git(dir, home.path(), &["add", ".drone.yml"]).unwrap();
    git(dir, home.path(), &["commit", "-q", "-m", "Fix the widget"]).unwrap();
    let sha = git(dir, home.path(), &["rev-parse", "HEAD"]).unwrap();
    let check = |run: &Run, branch: &str| {
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        for (key, want) in [
            ("sha", sha.as_str()),
            ("branch", branch),
            ("message", "Fix the widget"),
            ("author", "Ada Lovelace"),
            ("name", "Ada Lovelace"),
            ("email", "ada@example.com"),
        ] {
            assert_eq!(printed(run, key).as_deref(), Some(want), "{}", run.stdout);
        }
    };
    check(&exec(dir, home.path(), &[]), "topic");
    // A detached HEAD has no branch: the default one stands in.
    git(dir, home.path(), &["checkout", "-q", "--detach"]).unwrap();
    check(&exec(dir, home.path(), &[]), "main");
    git(dir, home.path(), &["checkout", "-q", "topic"]).unwrap();

    // A worktree's `.git` is a file, which only `git` itself reads.
    let tree = dir.join("tree");
    let tree_arg = tree.to_str().unwrap();
    git(
        dir,
        home.path(),
        &["worktree", "add", "-q", "-b", "other", tree_arg],
    )
    .unwrap();
    check(&exec(&tree, home.path(), &[]), "other");
}

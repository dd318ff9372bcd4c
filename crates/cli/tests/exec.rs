//! End-to-end: the built `runnerkit` binary on sample pipelines. Each test
//! copies its fixture into a fresh directory, since that directory becomes
//! the workspace the steps write into.

use std::path::Path;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_runnerkit");

/// A fresh workspace holding `fixture` as `.drone.yml`, removed when dropped
/// (even when the test panicked).
fn workspace(fixture: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("rk-cli-{}-", fixture.replace('.', "-")))
        .tempdir()
        .unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    std::fs::copy(src, dir.path().join(".drone.yml")).unwrap();
    dir
}

fn runnerkit(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let out: Output = runnerkit(dir, args).output().unwrap();
    Run {
        code: out.status.code().expect("runnerkit exited by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Durations vary from run to run: `0.01s`, `2m05s` and `1h02m` become `<dur>`.
fn redact(text: &str) -> String {
    fn is_duration(token: &str) -> bool {
        let t = token.trim_end_matches(':');
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(secs) = t.strip_suffix('s') {
            if let Some((whole, frac)) = secs.split_once('.') {
                return digits(whole) && digits(frac);
            }
            if let Some((m, s)) = secs.split_once('m') {
                return digits(m) && digits(s);
            }
        }
        if let Some((h, m)) = t.strip_suffix('m').and_then(|t| t.split_once('h')) {
            return digits(h) && digits(m);
        }
        false
    }
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|tok| {
                    if is_duration(tok) {
                        if tok.ends_with(':') {
                            "<dur>:"
                        } else {
                            "<dur>"
                        }
                    } else {
                        tok
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn json(text: &str) -> serde_json::Value {
    assert_eq!(text.lines().count(), 1, "stdout must be one line: {text:?}");
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_passing_pipeline_exits_0_with_prefixed_logs_and_a_summary() {
    let tmp = workspace("pass.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["exec"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        redact(&r.stdout),
        "\
write | --> running
write | + echo one > out.txt
write | + echo to-stderr >&2
write | to-stderr
write | <-- success (exit 0) in <dur>
read  | --> running
read  | + cat out.txt
read  | one
read  | + echo \"hello $WHO\"
read  | hello runnerkit
read  | <-- success (exit 0) in <dur>

STEP   STATUS   EXIT  DURATION
write  success     0  <dur>
read   success     0  <dur>

pipeline success in <dur>
"
    );
    // The workspace is the file's directory, and it is kept.
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "one\n"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failing_pipeline_exits_1_and_shows_every_step() {
    let tmp = workspace("fail.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["exec", ".drone.yml"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        redact(&r.stdout),
        "\
ok            | --> running
ok            | + echo fine, build $DRONE_BUILD_STATUS
ok            | fine, build success
ok            | <-- success (exit 0) in <dur>
broken        | --> running
broken        | + echo about to fail
broken        | about to fail
broken        | + exit 3
broken        | <-- failure (exit 3) in <dur>
never-reached | <-- skipped (an earlier failure)
cleanup       | --> running
cleanup       | + echo cleaning up after $DRONE_FAILED_STEPS, build $DRONE_BUILD_STATUS, stage $DRONE_STAGE_STATUS
cleanup       | cleaning up after broken, build failure, stage failure
cleanup       | <-- success (exit 0) in <dur>

STEP           STATUS   EXIT  DURATION  REASON
ok             success     0  <dur>
broken         failure     3  <dur>
never-reached  skipped     -  -         an earlier failure
cleanup        success     0  <dur>

pipeline failure in <dur>

--- broken (failure, exit 3): last 3 lines ---
+ echo about to fail
about to fail
+ exit 3
"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn json_puts_one_result_line_on_stdout_and_the_logs_on_stderr() {
    let tmp = workspace("fail.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["exec", "--json"]);
    assert_eq!(r.code, 1);
    let mut v = json(&r.stdout);
    // Times vary from run to run (tests/skipped.rs checks them).
    for step in v["steps"].as_array_mut().unwrap() {
        let step = step.as_object_mut().unwrap();
        for key in ["started", "finished", "seconds"] {
            assert!(step.remove(key).is_some(), "{key} missing");
        }
    }
    assert_eq!(
        v,
        serde_json::json!({
            "status": "failure",
            "steps": [
                {"name": "ok", "status": "success", "exit_code": 0},
                {"name": "broken", "status": "failure", "exit_code": 3},
                {"name": "never-reached", "status": "skipped", "exit_code": null, "reason": "an earlier failure"},
                {"name": "cleanup", "status": "success", "exit_code": 0},
            ]
        })
    );
    assert!(
        r.stderr.contains("broken        | about to fail\n"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("pipeline failure in "), "{}", r.stderr);

    let dir2_tmp = workspace("pass.drone.yml");

    let dir2 = dir2_tmp.path();
    let r = run(dir2, &["exec", "--json"]);
    assert_eq!(r.code, 0);
    let v = json(&r.stdout);
    assert_eq!(v["status"], "success");
    assert_eq!(v["steps"].as_array().unwrap().len(), 2);
    assert!(v.get("error").is_none());
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
}

#[test]
fn refused_input_exits_2() {
    // No file.
    let tmp = workspace("pass.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["exec", "missing.yml"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("cannot read the pipeline file missing.yml"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // Unknown pipeline, with --json: the refusal is the JSON result.
    let r = run(dir, &["exec", "--pipeline", "nope", "--json"]);
    assert_eq!(r.code, 2);
    let v = json(&r.stdout);
    assert_eq!(v["status"], "error");
    assert_eq!(v["steps"], serde_json::json!([]));
    assert!(
        v["error"].as_str().unwrap().contains("\"nope\" not found"),
        "{v}"
    );
    assert!(
        v["error"].as_str().unwrap().contains("pass"),
        "names the pipelines there are: {v}"
    );
    std::fs::remove_dir_all(dir).unwrap();
    // Invalid YAML: the message names the line.
    let tmp = workspace("invalid.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["exec"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid pipeline file"), "{}", r.stderr);
    assert!(r.stderr.contains("line 8, column 7"), "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("illegal").count(),
        1,
        "each cause once: {}",
        r.stderr
    );
    std::fs::remove_dir_all(dir).unwrap();
    // Lint errors: nothing runs.
    let tmp = workspace("lint.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["exec"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("step \"build\""), "{}", r.stderr);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
    assert!(!r.stdout.contains("echo one"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn secrets_are_masked_in_everything_printed() {
    let tmp = workspace("secrets.drone.yml");
    let dir = tmp.path();
    let secret = "s3cr3t-V4lue";
    let r = runnerkit(
        dir,
        &[
            "exec",
            "--secret",
            &format!("api_token={secret}"),
            "--env",
            "PLAIN=visible",
            "--json",
        ],
    )
    .env("RUNNERKIT_TEST_RUNNER_ONLY", "leaked")
    .output()
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(r.stdout).unwrap(),
        String::from_utf8(r.stderr).unwrap(),
    );
    assert_eq!(r.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{stdout}{stderr}"
    );
    assert!(stderr.contains("leak | token=******\n"), "{stderr}");
    assert!(stderr.contains("leak | from file=******\n"), "{stderr}");
    assert!(stderr.contains("leak | plain=visible\n"), "{stderr}");
    // The runner's own environment does not reach steps.
    assert!(stderr.contains("leak | runner var=[absent]\n"), "{stderr}");
    // A secret in an error message is masked too, in the JSON and on stderr.
    let r = run(
        dir,
        &[
            "exec",
            "--secret",
            &format!("x={secret}"),
            "--pipeline",
            secret,
            "--json",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        !r.stdout.contains(secret) && !r.stderr.contains(secret),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(
        json(&r.stdout)["error"]
            .as_str()
            .unwrap()
            .contains("******")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_engine_error_quoting_a_secret_is_masked_in_everything_printed() {
    let tmp = workspace("secret-error.drone.yml");
    let dir = tmp.path();
    let secret = "s3cr3t-D1r";
    let args = |json: bool| {
        let mut args = vec![
            "exec".to_owned(),
            "--secret".to_owned(),
            format!("target={secret}"),
            "--env".to_owned(),
            format!("TARGET={secret}"),
        ];
        if json {
            args.push("--json".to_owned());
        }
        args
    };
    for as_json in [false, true] {
        let args = args(as_json);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(dir, &args);
        let printed = format!("{}{}", r.stdout, r.stderr);
        assert_eq!(r.code, 1, "{printed}");
        assert!(!printed.contains(secret), "{printed}");
        let quoted = "working directory /nonexistent-runnerkit/******";
        // The step's end line and the summary's error both quote it.
        let human = if as_json { &r.stderr } else { &r.stdout };
        assert!(
            human.contains("deploy | <-- error (exit 255) in "),
            "{printed}"
        );
        assert_eq!(human.matches(quoted).count(), 2, "{printed}");
        if as_json {
            let error = json(&r.stdout)["error"].as_str().unwrap().to_owned();
            assert!(error.contains(quoted), "{error}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn build_flags_reach_conditions_and_variables() {
    let tmp = workspace("multi.drone.yml");
    let dir = tmp.path();
    let r = run(
        dir,
        &[
            "exec",
            "--pipeline",
            "second",
            "--branch",
            "release",
            "--event",
            "push",
            "--commit",
            "abc123",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // `only-on-tags` does not run on a push: listed only in the summary
    // (skipped, `when: event`), and not counted in the width of the prefixes.
    assert!(
        r.stdout.contains("b | second pipeline on release (push)\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("b | commit abc123\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("tagged"), "{}", r.stdout);
    let r = run(
        dir,
        &[
            "exec",
            "--pipeline",
            "second",
            "--event",
            "tag",
            "--ref",
            "refs/tags/v1.0.0",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("only-on-tags | tagged\n"), "{}", r.stdout);
    // Without --pipeline, every pipeline runs, each line named after its
    // pipeline.
    let r = run(dir, &["exec"]);
    assert!(
        r.stdout.contains("first/a  | first pipeline\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("second/b | second pipeline"),
        "{}",
        r.stdout
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn lint_exits_0_when_clean_and_2_with_one_line_per_problem() {
    let tmp = workspace("lint.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["lint"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let problems: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with(".drone.yml: "))
        .collect();
    assert_eq!(problems.len(), 2, "{}", r.stdout);
    assert!(
        problems.iter().all(|p| p.contains("pipeline \"bad\"")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("step \"build\"") && p.contains("(line ")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("step \"test\"") && p.contains("missing")),
        "{problems:?}"
    );
    assert!(r.stdout.ends_with("2 problems\n"));
    let dir2_tmp = workspace("pass.drone.yml");
    let dir2 = dir2_tmp.path();
    let r = run(dir2, &["lint", "--trusted"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
}

#[test]
fn compile_prints_the_spec_as_json() {
    let tmp = workspace("pass.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["compile"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spec: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = spec["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["write", "read"],
        "no clone step: the source is already here"
    );
    assert_eq!(
        spec["workspace"]["host_path"],
        dir.canonicalize().unwrap().display().to_string()
    );
    assert!(
        spec["steps"][0]["script"]["body"]
            .as_str()
            .unwrap()
            .contains("echo one > out.txt")
    );
    let r = run(dir, &["compile", "--pipeline", "other"]);
    assert_eq!(r.code, 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_docker_pipeline_without_a_daemon_is_refused() {
    let tmp = workspace("docker.drone.yml");
    let dir = tmp.path();
    let r = runnerkit(dir, &["exec"])
        .env("DOCKER_HOST", "unix:///nonexistent/runnerkit/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8(r.stderr).unwrap();
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Docker engine is not available"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_subcommand_help_explains_every_flag_with_an_example() {
    let dir = std::env::temp_dir();
    for (sub, flags) in [
        (
            "exec",
            &[
                "--pipeline",
                "--trusted",
                "--env",
                "--secret",
                "--json",
                "--branch",
                "--event",
                "--ref",
                "--commit",
            ][..],
        ),
        ("compile", &["--pipeline"][..]),
        ("lint", &["--trusted"][..]),
    ] {
        let r = run(&dir, &[sub, "--help"]);
        assert_eq!(r.code, 0);
        for flag in flags {
            assert!(
                r.stdout.contains(flag),
                "{sub} --help lacks {flag}: {}",
                r.stdout
            );
        }
        assert!(
            r.stdout.matches("Example").count() > flags.len(),
            "{sub}: {}",
            r.stdout
        );
    }
}

/// True while `pid` runs (a zombie nobody reaped runs nothing).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        !matches!(state, Some("Z" | "X"))
    })
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("runnerkit did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_stops_the_steps_and_leaves_no_process_behind() {
    stops_cleanly_on(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_stops_the_steps_like_ctrl_c() {
    stops_cleanly_on(nix::sys::signal::Signal::SIGTERM);
}

/// The stage root and the scripts' directory of the step that wrote its
/// script's path (`$0`) to `record`: the scripts are in `opt` below the root,
/// or in a directory of the root's name in a memory filesystem.
fn stage_dirs(record: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let script = std::fs::read_to_string(record).unwrap();
    let scripts = Path::new(script.trim()).parent().unwrap().to_path_buf();
    let name = scripts.file_name().unwrap();
    let root = if name == "opt" {
        scripts.parent().unwrap().to_path_buf()
    } else {
        std::env::temp_dir().join(name)
    };
    (root, scripts)
}

fn stops_cleanly_on(signal: nix::sys::signal::Signal) {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;

    let tmp = workspace("sigint.drone.yml");

    let dir = tmp.path();
    let mut child = runnerkit(dir, &["exec", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = dir.join("bg.pid");
    let mut bg = 0;
    wait_for(
        "the step's background sleep",
        Duration::from_secs(30),
        || {
            bg = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            bg != 0
        },
    );
    assert!(alive(bg));
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    let v = json(&stdout);
    assert_eq!(v["status"], "killed", "{v}");
    assert_eq!(v["steps"][0]["status"], "killed", "{v}");
    assert_eq!(v["steps"][1]["status"], "skipped", "{v}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    wait_for(
        "the background sleep to be gone",
        Duration::from_secs(10),
        || !alive(bg),
    );
    let (root, scripts) = stage_dirs(&dir.join("script.txt"));
    assert!(root.starts_with(std::env::temp_dir()), "{}", root.display());
    for left in [&root, &scripts] {
        assert!(!left.exists(), "{} outlived the run", left.display());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_second_sigint_quits_at_once_with_130() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let tmp = workspace("stubborn.drone.yml");

    let dir = tmp.path();
    let mut child = runnerkit(dir, &["exec"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = dir.join("main.pid");
    let mut step = 0;
    wait_for("the step to start", Duration::from_secs(30), || {
        step = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        step != 0
    });
    let runnerkit_pid = Pid::from_raw(child.id() as i32);
    kill(runnerkit_pid, Signal::SIGINT).unwrap();
    // The step ignores SIGTERM, so runnerkit is still stopping it when the
    // second Ctrl-C comes.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still stopping the step"
    );
    kill(runnerkit_pid, Signal::SIGINT).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted again"), "{stderr}");
    // Quitting at once skips the cleanup: what was left (the step's process
    // group, its stage root and its scripts' directory) is this test's to
    // remove.
    if alive(step) {
        let _ = kill(Pid::from_raw(-(step as i32)), Signal::SIGKILL);
    }
    let (root, scripts) = stage_dirs(&dir.join("script.txt"));
    assert!(
        root.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("runnerkit-exec-")
    );
    std::fs::remove_dir_all(&root).unwrap();
    if scripts.exists() {
        std::fs::remove_dir_all(&scripts).unwrap();
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_pipeline_runs_with_the_workspace_mounted() {
    let Some(_engine) = runnerkit_docker::testing::docker_or_skip().await else {
        return;
    };
    let tmp = workspace("docker-workspace.drone.yml");
    let dir = tmp.path();
    std::fs::write(dir.join("input.txt"), "from the host\n").unwrap();
    let r = tokio::task::spawn_blocking({
        let dir = dir.to_path_buf();
        move || run(&dir, &["exec", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(json(&r.stdout)["status"], "success");
    assert!(r.stderr.contains("write | from the host\n"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("output.txt")).unwrap(),
        "from the container\n"
    );
    // Files made by the container may belong to another user: remove what
    // we can, the directory is in the temp dir anyway.
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn trusted_only_settings_need_trusted() {
    let tmp = workspace("trusted.drone.yml");
    let dir = tmp.path();
    let r = run(dir, &["exec"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("pipeline \"needs-trust\", step \"privileged\" (line 7)"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing ran: {}", r.stdout);
    let r = run(dir, &["exec", "--trusted"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("privileged | trusted\n"), "{}", r.stdout);
}

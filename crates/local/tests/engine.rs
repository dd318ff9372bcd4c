//! `LocalEngine` through its public `Engine` calls, on real processes.

use std::path::Path;

use std::time::Duration;
use tempfile::TempDir;

use futures_util::StreamExt;
use runnerkit_core::{
    CancellationToken, Engine, EngineErrorKind, ExitState, Script, SecretVar, Spec, Step, Workspace,
};
use runnerkit_local::LocalEngine;

/// A fresh directory for one test's stage roots, so a test can check that
/// `destroy` left nothing in it; removed when dropped (even on a panic).
fn scratch(name: &str) -> TempDir {
    let prefix = format!("rk-local-{name}-");
    tempfile::Builder::new().prefix(&prefix).tempdir().unwrap()
}

fn engine(dir: &Path) -> LocalEngine {
    LocalEngine::new()
        .with_temp_dir(dir)
        .with_kill_grace(Duration::from_secs(1))
}

fn spec(id: &str, steps: Vec<Step>) -> Spec {
    Spec {
        id: id.into(),
        workspace: Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        },
        steps,
        ..Spec::default()
    }
}

fn script(name: &str, body: &str) -> Step {
    Step {
        script: Some(Script {
            shell: "/bin/sh".into(),
            body: body.into(),
        }),
        ..Step::named(name)
    }
}

/// Runs one step through create, start, tail and wait; returns its exit
/// and its whole output.
async fn run_step(engine: &LocalEngine, spec: &Spec, step: &Step) -> (ExitState, String) {
    let token = CancellationToken::new();
    engine.create(spec, step, &token).await.unwrap();
    engine.start(spec, step, &token).await.unwrap();
    let logs = engine.tail(spec, step, &token).await.unwrap();
    let (exit, out) = tokio::join!(engine.wait(spec, step, &token), collect(logs));
    (exit.unwrap(), out)
}

async fn collect(mut logs: runnerkit_core::LogStream) -> String {
    let mut out = Vec::new();
    while let Some(chunk) = logs.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

/// Runs `body` as the only step of a fresh stage, destroys the stage, and
/// checks nothing is left of it.
async fn run_script(name: &str, body: &str) -> (ExitState, String) {
    let tmp = scratch(name);
    let dir = tmp.path();
    let engine = engine(dir);
    let step = script("s", body);
    let spec = spec(name, vec![step.clone()]);
    engine
        .setup(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let result = run_step(&engine, &spec, &step).await;
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "stage root left behind"
    );
    std::fs::remove_dir_all(dir).unwrap();
    result
}

/// True while `pid` is a live process (a zombie waiting for a parent that
/// does not reap it counts as gone: it runs nothing).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

async fn read_pid(file: &Path) -> u32 {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pid in {}", file.display());
}

async fn gone(pid: u32) -> bool {
    for _ in 0..50 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn exit_codes_are_the_steps() {
    assert_eq!(run_script("exit0", "true\n").await.0.exit_code, 0);
    assert_eq!(run_script("exit3", "exit 3\n").await.0.exit_code, 3);
    // `-e`: the first failing command ends the script with its code.
    let (exit, out) = run_script("exit-e", "echo one\nsh -c 'exit 7'\necho never\n").await;
    assert_eq!(exit.exit_code, 7);
    assert_eq!(out, "one\n");
}

#[tokio::test]
async fn a_signal_exit_is_128_plus_the_signal() {
    assert_eq!(
        run_script("sigterm", "kill -TERM $$\n").await.0.exit_code,
        143
    );
    assert_eq!(
        run_script("sigkill", "kill -KILL $$\n").await.0.exit_code,
        137
    );
}

#[tokio::test]
async fn stdout_and_stderr_are_one_stream_in_write_order() {
    let (exit, out) = run_script(
        "streams",
        "echo out1\necho err1 >&2\necho out2\necho err2 >&2\nprintf 'no newline'\n",
    )
    .await;
    assert_eq!(exit.exit_code, 0);
    assert_eq!(out, "out1\nerr1\nout2\nerr2\nno newline");
}

#[tokio::test]
async fn output_written_before_tail_is_not_lost() {
    let tmp = scratch("early");
    let dir = tmp.path();
    let engine = engine(dir);
    let step = script("s", "seq 1 2000\n");
    let spec = spec("early", vec![step.clone()]);
    let token = CancellationToken::new();
    engine.setup(&spec, &token).await.unwrap();
    engine.create(&spec, &step, &token).await.unwrap();
    engine.start(&spec, &step, &token).await.unwrap();
    assert_eq!(
        engine.wait(&spec, &step, &token).await.unwrap().exit_code,
        0
    );
    let out = collect(engine.tail(&spec, &step, &token).await.unwrap()).await;
    let expected: String = (1..=2000).map(|n| format!("{n}\n")).collect();
    assert_eq!(out, expected);
    engine.destroy(&spec, &token).await.unwrap();
}

#[tokio::test]
async fn steps_see_only_their_own_environment() {
    // The runner's own variables (cargo sets these for this test process)
    // must not reach a step.
    assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
    let tmp = scratch("env");
    let dir = tmp.path();
    let engine = engine(dir);
    let mut step = script(
        "s",
        "echo \"cargo=[${CARGO_PKG_NAME:-}] dir=[${CARGO_MANIFEST_DIR:-}]\"\n\
         echo \"own=$OWN secret=$TOKEN\"\n\
         echo \"home=$HOME\"\necho \"ws=$DRONE_WORKSPACE pwd=$(pwd)\"\n\
         echo \"shell=$SHELL path_set=${PATH:+yes}\"\nenv | cut -d= -f1 | sort | tr '\\n' ' '\n",
    );
    step.environment.insert("OWN".into(), "mine".into());
    step.secrets.push(SecretVar {
        env: "TOKEN".into(),
        value: "s3cr3t".into(),
        mask: true,
    });
    let spec = spec("env", vec![step.clone()]);
    engine
        .setup(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let root = engine.stage_root(&spec).unwrap();
    let ws = engine.workspace_dir(&spec).unwrap();
    let (exit, out) = run_step(&engine, &spec, &step).await;
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(exit.exit_code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "cargo=[] dir=[]");
    assert_eq!(lines[1], "own=mine secret=s3cr3t");
    assert_eq!(
        lines[2],
        format!("home={}", root.join("home/drone").display())
    );
    assert_eq!(
        lines[3],
        format!("ws={} pwd={}", ws.display(), ws.display())
    );
    assert!(ws.starts_with(&root));
    assert_eq!(lines[4], "shell=/bin/sh path_set=yes");
    // Whatever the shell adds by itself (PWD, SHLVL, OLDPWD) aside, these
    // are every variable the step got.
    let names: Vec<&str> = lines[5]
        .split_whitespace()
        .filter(|n| !matches!(*n, "PWD" | "SHLVL" | "OLDPWD" | "_"))
        .collect();
    let mut expected = vec!["DRONE_WORKSPACE", "HOME", "OWN", "PATH", "SHELL", "TOKEN"];
    if std::env::var_os("USER").is_some() {
        expected.push("USER");
        expected.sort_unstable();
    }
    assert_eq!(names, expected);
}

#[tokio::test]
async fn working_dir_and_host_workspace() {
    let tmp = scratch("wd");
    let dir = tmp.path();
    let host_ws_tmp = scratch("wd-host");
    let host_ws = host_ws_tmp.path();
    std::fs::write(host_ws.join("input.txt"), "from the host\n").unwrap();
    let engine = engine(dir);
    let read = script("read", "cat input.txt\npwd\n");
    let sub = Step {
        working_dir: "/drone/src/sub/dir".into(),
        ..script("sub", "pwd\ntouch made-here\n")
    };
    let mut spec = spec("wd", vec![read.clone(), sub.clone()]);
    spec.workspace.host_path = Some(host_ws.display().to_string());
    engine
        .setup(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let (_, out) = run_step(&engine, &spec, &read).await;
    assert_eq!(out, format!("from the host\n{}\n", host_ws.display()));
    let (exit, out) = run_step(&engine, &spec, &sub).await;
    assert_eq!(exit.exit_code, 0, "{out}");
    assert_eq!(out, format!("{}\n", host_ws.join("sub/dir").display()));
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
    // The host's workspace is the user's: kept, with what steps made in it.
    assert!(host_ws.join("sub/dir/made-here").exists());
    assert!(host_ws.join("input.txt").exists());
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(host_ws).unwrap();
}

#[tokio::test]
async fn entrypoint_and_command_run_without_a_shell() {
    let tmp = scratch("argv");
    let dir = tmp.path();
    let engine = engine(dir);
    let step = Step {
        entrypoint: vec!["/bin/echo".into()],
        command: vec!["$HOME".into(), "two words".into()],
        ..Step::named("argv")
    };
    let spec = spec("argv", vec![step.clone()]);
    engine
        .setup(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let (exit, out) = run_step(&engine, &spec, &step).await;
    assert_eq!((exit.exit_code, out.as_str()), (0, "$HOME two words\n"));
    let missing = Step {
        entrypoint: vec!["/no/such/program".into()],
        ..Step::named("missing")
    };
    let token = CancellationToken::new();
    engine.create(&spec, &missing, &token).await.unwrap();
    let err = engine.start(&spec, &missing, &token).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::NotFound);
    assert!(err.to_string().contains("/no/such/program"), "{err}");
    // A working directory outside the workspace must exist: said at create.
    let elsewhere = Step {
        entrypoint: vec!["/bin/true".into()],
        working_dir: "/no/such/dir".into(),
        ..Step::named("elsewhere")
    };
    let err = engine.create(&spec, &elsewhere, &token).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::NotFound);
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
    engine.destroy(&spec, &token).await.unwrap();
}

#[tokio::test]
async fn cancelling_wait_kills_the_whole_process_group() {
    let tmp = scratch("cancel");
    let dir = tmp.path();
    let engine = engine(dir);
    let pidfile = dir.join("bg.pid");
    let step = script(
        "s",
        &format!(
            "sleep 300 &\necho $! > {}\necho started\nsleep 300\n",
            pidfile.display()
        ),
    );
    let spec = spec("cancel", vec![step.clone()]);
    let stage = CancellationToken::new();
    engine.setup(&spec, &stage).await.unwrap();
    let token = CancellationToken::new();
    engine.create(&spec, &step, &token).await.unwrap();
    engine.start(&spec, &step, &token).await.unwrap();
    let mut logs = engine.tail(&spec, &step, &token).await.unwrap();
    assert_eq!(&logs.next().await.unwrap().unwrap()[..], b"started\n");
    let bg = read_pid(&pidfile).await;
    assert!(alive(bg));
    token.cancel();
    // A cancelled tail ends its stream; wait stops the step.
    let (exit, rest) = tokio::join!(engine.wait(&spec, &step, &token), collect(logs));
    assert_eq!(exit.unwrap().exit_code, 143, "SIGTERM ends sh");
    assert_eq!(rest, "");
    assert!(gone(bg).await, "background sleep {bg} survived the cancel");
    std::fs::remove_file(&pidfile).unwrap();
    engine.destroy(&spec, &stage).await.unwrap();
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

#[tokio::test]
async fn a_step_that_ignores_sigterm_is_killed_after_the_grace() {
    let tmp = scratch("stubborn");
    let dir = tmp.path();
    let engine = engine(dir);
    let step = script("s", "trap '' TERM\necho ready\nwhile :; do sleep 1; done\n");
    let spec = spec("stubborn", vec![step.clone()]);
    engine
        .setup(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let token = CancellationToken::new();
    engine.create(&spec, &step, &token).await.unwrap();
    engine.start(&spec, &step, &token).await.unwrap();
    let mut logs = engine.tail(&spec, &step, &token).await.unwrap();
    // Wait until the trap is in place before cancelling.
    assert_eq!(&logs.next().await.unwrap().unwrap()[..], b"ready\n");
    token.cancel();
    let exit = engine.wait(&spec, &step, &token).await.unwrap();
    assert_eq!(exit.exit_code, 137);
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn background_processes_end_with_the_step_and_do_not_hold_its_log() {
    let tmp = scratch("bg");
    let dir = tmp.path();
    let pidfile = dir.join("bg.pid");
    let engine = engine(dir);
    // The background sleep inherits the output pipe: if the engine waited
    // for end-of-file, the log would stay open for 300 s.
    let step = script(
        "s",
        &format!("sleep 300 &\necho $! > {}\necho done\n", pidfile.display()),
    );
    let spec = spec("bg", vec![step.clone()]);
    engine
        .setup(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let (exit, out) = run_step(&engine, &spec, &step).await;
    assert_eq!((exit.exit_code, out.as_str()), (0, "done\n"));
    let bg = read_pid(&pidfile).await;
    assert!(gone(bg).await, "background sleep {bg} outlived its step");
    std::fs::remove_file(&pidfile).unwrap();
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn destroy_kills_detached_steps_and_removes_the_root() {
    let tmp = scratch("detached");
    let dir = tmp.path();
    let pidfile = dir.join("svc.pid");
    let engine = engine(dir);
    let svc = Step {
        detach: true,
        ..script(
            "svc",
            &format!("echo $$ > {}\nexec sleep 300\n", pidfile.display()),
        )
    };
    let spec = spec("detached", vec![svc.clone()]);
    let token = CancellationToken::new();
    engine.setup(&spec, &token).await.unwrap();
    let root = engine.stage_root(&spec).unwrap();
    engine.create(&spec, &svc, &token).await.unwrap();
    engine.start(&spec, &svc, &token).await.unwrap();
    let logs = engine.tail(&spec, &svc, &token).await.unwrap();
    let pid = read_pid(&pidfile).await;
    assert!(alive(pid));
    assert!(root.exists());
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
    // The log stream ends once the stage is destroyed.
    assert_eq!(collect(logs).await, "");
    assert!(gone(pid).await, "detached step {pid} survived destroy");
    assert!(!root.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn destroy_is_idempotent_and_safe_without_or_after_a_failed_setup() {
    let tmp = scratch("destroy");
    let dir = tmp.path();
    let engine = engine(dir);
    let token = CancellationToken::new();
    // Never set up.
    let never = spec("never", vec![]);
    engine.destroy(&never, &token).await.unwrap();
    // Set up twice over: the second destroy finds nothing and succeeds.
    let s = spec("twice", vec![]);
    engine.setup(&s, &token).await.unwrap();
    engine.destroy(&s, &token).await.unwrap();
    engine.destroy(&s, &token).await.unwrap();
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
    // Setup failing: the temp dir does not exist.
    let broken = LocalEngine::new().with_temp_dir(dir.join("missing"));
    let f = spec("failed", vec![]);
    let err = broken.setup(&f, &token).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    broken.destroy(&f, &token).await.unwrap();
    broken.destroy(&f, &token).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn calls_out_of_order_are_misuse() {
    let tmp = scratch("order");
    let dir = tmp.path();
    let engine = engine(dir);
    let token = CancellationToken::new();
    let step = script("s", "true\n");
    let spec = spec("order", vec![step.clone()]);
    let err = engine.create(&spec, &step, &token).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse, "create before setup");
    engine.setup(&spec, &token).await.unwrap();
    let err = engine.start(&spec, &step, &token).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse, "start before create");
    engine.create(&spec, &step, &token).await.unwrap();
    let err = engine.wait(&spec, &step, &token).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse, "wait before start");
    engine.start(&spec, &step, &token).await.unwrap();
    let err = engine.start(&spec, &step, &token).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse, "start twice");
    let _logs = engine.tail(&spec, &step, &token).await.unwrap();
    let err = engine
        .tail(&spec, &step, &token)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse, "tail twice");
    assert_eq!(
        engine.wait(&spec, &step, &token).await.unwrap().exit_code,
        0
    );
    // wait works again once the step has exited.
    assert_eq!(
        engine.wait(&spec, &step, &token).await.unwrap().exit_code,
        0
    );
    engine.destroy(&spec, &token).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn script_files_are_private_to_the_user() {
    let (exit, out) = run_script("mode", "stat -c %a \"$0\"\n").await;
    assert_eq!((exit.exit_code, out.trim()), (0, "700"));
}

#[tokio::test]
async fn a_cancelled_tail_still_hands_over_what_was_already_read() {
    let tmp = scratch("handover");
    let dir = tmp.path();
    let engine = engine(dir);
    let step = script("s", "echo one\necho two >&2\nexec sleep 300\n");
    let spec = spec("handover", vec![step.clone()]);
    engine
        .setup(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let token = CancellationToken::new();
    engine.create(&spec, &step, &token).await.unwrap();
    engine.start(&spec, &step, &token).await.unwrap();
    let logs = engine.tail(&spec, &step, &token).await.unwrap();
    // Nobody reads the stream until after the cancel; the pause only lets
    // the engine's reader take the two lines off the pipe first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel();
    let (exit, out) = tokio::join!(engine.wait(&spec, &step, &token), collect(logs));
    assert_eq!(exit.unwrap().exit_code, 143);
    assert_eq!(out, "one\ntwo\n");
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .unwrap();
}

/// A spec built in code with a workspace path that climbs out of the stage
/// directory is refused at setup, and nothing is created anywhere.
#[tokio::test]
async fn a_workspace_path_climbing_out_of_the_stage_is_refused() {
    let dir = scratch("escape");
    let stages = dir.path().join("stages");
    std::fs::create_dir(&stages).unwrap();
    let engine = engine(&stages);
    let mut spec = spec("escape", vec![script("a", "true")]);
    spec.workspace.path = "a/../../../../escaped".into();
    let token = CancellationToken::new();
    let err = engine.setup(&spec, &token).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse);
    assert!(err.to_string().contains("leaves the stage"), "{err}");
    assert!(!dir.path().join("escaped").exists());
    assert_eq!(std::fs::read_dir(&stages).unwrap().count(), 0);
    engine.destroy(&spec, &token).await.unwrap();

    // Below the root is fine, `..` or not.
    spec.workspace.path = "src/../app".into();
    engine.setup(&spec, &token).await.unwrap();
    engine.destroy(&spec, &token).await.unwrap();
}

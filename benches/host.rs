//! The host engine's per-step cost against the shell's, in one run.
//!
//! Run: `cargo bench --bench host` (5 pairs of 300 serial `true` steps;
//! `-- STEPS PAIRS` to change either).
//!
//! - floor: `sh` running the same 300 script files with `sh -e FILE` one
//!   after another, its output on a pipe this process reads;
//! - tokio spawns: the same scripts spawned with `tokio::process`, output
//!   read to the end and reaped, one after another (what any async runner
//!   pays at least);
//! - engine calls: the 300 steps through `LocalEngine`'s `create`, `start`,
//!   `tail` and `wait` alone, without the runtime;
//! - runtime: the 300 steps as a serial stage through `Runtime::run` on a
//!   `LocalEngine`, with a hook that counts the lines, on a current-thread
//!   runtime (as the binary's `exec`) and on a 2-worker one;
//! - binary (when `RUNNERKIT_BIN` names a `runnerkit` binary): `runnerkit
//!   exec` of the same pipeline as YAML, its output on a pipe; the floor
//!   again with the environment the binary gives a step (Drone's
//!   variables), which the shell must import too; and std's blocking
//!   `Command` spawning the scripts with that environment, the least a
//!   program in safe Rust pays (glibc's `posix_spawn` resets every signal
//!   in the child; dash's `fork` does not).
//!
//! Each round runs every path back to back; a ratio is the median of a
//! path's times over the median of the floor's.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runnerkit::core::{
    CancellationToken, Engine, Hook, Lines, Script, Spec, State, Status, Step, StepState, Workspace,
};
use runnerkit::local::LocalEngine;
use runnerkit::runtime::Runtime;

/// What the compiler writes for a step with the one command `true`.
const SCRIPT: &str = "\nset -e\n\necho + \"true\"\ntrue\n";

/// Counts the lines it is given.
#[derive(Default)]
struct CountingHook(AtomicU64);

#[async_trait]
impl Hook for CountingHook {
    fn got_lines(&self, _: &State, _: &StepState, lines: Lines<'_>) {
        self.0.fetch_add(lines.len() as u64, Ordering::Relaxed);
    }
}

fn spec(steps: usize) -> Spec {
    let steps = (0..steps)
        .map(|i| {
            let mut step = Step::named(format!("s{i}"));
            step.script = Some(Script {
                shell: "/bin/sh".into(),
                body: SCRIPT.into(),
            });
            if i > 0 {
                step.depends_on = vec![format!("s{}", i - 1)].into();
            }
            step
        })
        .collect();
    Spec {
        id: "host-bench".into(),
        workspace: Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        },
        steps,
        ..Spec::default()
    }
}

/// `sh` running every script of `dir` with `sh -e`, one after another;
/// with `env`, in that environment alone (a step's).
fn floor(dir: &Path, steps: usize, env: Option<&BTreeMap<String, String>>) -> Duration {
    let started = Instant::now();
    let mut command = Command::new("/bin/sh");
    if let Some(env) = env {
        command.env_clear().envs(env);
    }
    let mut child = command
        .arg("-c")
        .arg(format!(
            "i=0; while [ $i -lt {steps} ]; do sh -e {}/$i.sh; i=$((i+1)); done",
            dir.display()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh");
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("a pipe")
        .read_to_end(&mut out)
        .expect("read");
    assert!(child.wait().expect("wait").success());
    let elapsed = started.elapsed();
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), steps);
    elapsed
}

async fn through_runtime(spec: &Spec, temp: &Path) -> Duration {
    let engine = Arc::new(LocalEngine::new().with_temp_dir(temp));
    let hook = Arc::new(CountingHook::default());
    let runtime = Runtime::new(engine).with_hook(hook.clone());
    // Copied and dropped outside the timing: the binary parses its spec
    // (its cost is in that row), and a copy of 300 steps of 61 variables
    // is 36,600 pairs of strings, which no run makes.
    let copy = Arc::new(spec.clone());
    let started = Instant::now();
    let snapshot = runtime
        .run(Arc::clone(&copy), CancellationToken::new())
        .await
        .expect("run");
    let elapsed = started.elapsed();
    drop(copy);
    assert_eq!(snapshot.stage.status, Status::Success);
    assert_eq!(hook.0.load(Ordering::Relaxed), spec.steps.len() as u64);
    elapsed
}

/// The engine alone: `setup`, then each step's `create`, `start`, `tail`
/// read to its end and `wait`, one after another, then `destroy`: what
/// `Runtime::run` adds is the rest.
async fn engine_calls(spec: &Spec, temp: &Path) -> Duration {
    use futures_util::StreamExt;
    let engine = LocalEngine::new().with_temp_dir(temp);
    let token = CancellationToken::new();
    let started = Instant::now();
    engine.setup(spec, &token).await.expect("setup");
    let mut lines = 0;
    for step in &spec.steps {
        engine.create(spec, step, &token).await.expect("create");
        engine.start(spec, step, &token).await.expect("start");
        let mut out = engine.tail(spec, step, &token).await.expect("tail");
        while let Some(chunk) = out.next().await {
            lines += chunk
                .expect("output")
                .iter()
                .filter(|b| **b == b'\n')
                .count();
        }
        let exit = engine.wait(spec, step, &token).await.expect("wait");
        assert_eq!(exit.exit_code, 0);
    }
    engine.destroy(spec, &token).await.expect("destroy");
    let elapsed = started.elapsed();
    assert_eq!(lines, spec.steps.len());
    elapsed
}

/// `sh -e` running the `i`th script, stdin closed, its output on a pipe,
/// in a process group of its own (as the engine's steps run); from an empty
/// environment plus `env` when one is given (as the engine's), else
/// inheriting this process's.
fn script_command(dir: &Path, i: usize, env: Option<&BTreeMap<String, String>>) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-e")
        .arg(dir.join(format!("{i}.sh")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    if let Some(env) = env {
        command.env_clear().envs(env);
    }
    command
}

/// The least a tokio program does for the same steps: spawn `sh -e FILE`
/// with its output on a pipe, read it to the end, reap it; one at a time.
async fn tokio_spawns(dir: &Path, steps: usize) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    for i in 0..steps {
        let mut child = tokio::process::Command::from(script_command(dir, i, None))
            .spawn()
            .expect("sh");
        let mut out = Vec::new();
        let mut pipe = child.stdout.take().expect("a pipe");
        pipe.read_to_end(&mut out).await.expect("read");
        assert!(child.wait().await.expect("wait").success());
    }
    started.elapsed()
}

/// The least any safe-Rust program pays for the same steps: std's
/// `Command` (glibc's `posix_spawn`, which resets every signal in the
/// child) spawning them from an empty environment plus `env` (as the
/// engine does); blocking, one at a time.
fn std_spawns(dir: &Path, steps: usize, env: &BTreeMap<String, String>) -> Duration {
    let started = Instant::now();
    for i in 0..steps {
        let mut child = script_command(dir, i, Some(env)).spawn().expect("sh");
        let mut out = Vec::new();
        let mut pipe = child.stdout.take().expect("a pipe");
        pipe.read_to_end(&mut out).expect("read");
        assert!(child.wait().expect("wait").success());
    }
    started.elapsed()
}

/// The environment the binary gives the pipeline's first step: Drone's
/// variables (as `runnerkit compile` prints them), and `PATH`.
fn step_environment(bin: &Path, file: &Path) -> BTreeMap<String, String> {
    let out = Command::new(bin)
        .arg("compile")
        .arg(file)
        .output()
        .expect("runnerkit compile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a spec");
    let mut env: BTreeMap<String, String> = spec["steps"][0]["environment"]
        .as_object()
        .expect("an environment")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        env.insert("PATH".into(), path.to_string_lossy().into_owned());
    }
    env
}

fn through_binary(bin: &Path, file: &Path, steps: usize) -> Duration {
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("exec")
        .arg(file)
        .arg("--color")
        .arg("never")
        .stderr(Stdio::null())
        .output()
        .expect("runnerkit exec");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("| + true").count(), steps);
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let steps: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(300);
    let pairs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);

    let dir = std::env::temp_dir().join(format!("rk-host-bench-{}", std::process::id()));
    let scripts = dir.join("scripts");
    let stages = dir.join("stages");
    std::fs::create_dir_all(&scripts).expect("dir");
    std::fs::create_dir_all(&stages).expect("dir");
    for i in 0..steps {
        std::fs::write(scripts.join(format!("{i}.sh")), SCRIPT).expect("script");
    }
    let yaml = dir.join("pipeline.yml");
    let mut text = String::from("kind: pipeline\ntype: exec\nname: default\nsteps:\n");
    for i in 0..steps {
        text.push_str(&format!("- name: s{i}\n  commands:\n  - 'true'\n"));
    }
    std::fs::write(&yaml, text).expect("yaml");
    let bin = std::env::var_os("RUNNERKIT_BIN").map(std::path::PathBuf::from);

    // The binary runs `exec` on one thread (`Runner::main`); a runner
    // embedded in a program may run on several.
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let spec = spec(steps);
    let step_env = bin.as_deref().map(|bin| step_environment(bin, &yaml));
    // The same steps with the binary's environment: what a step's
    // variables cost the runtime and the engine, without the CLI.
    let env_spec = step_env.as_ref().map(|env| {
        let mut spec = spec.clone();
        for step in &mut spec.steps {
            step.environment = env.clone();
        }
        spec
    });
    // One warm-up of each: page cache, the dynamic loader's.
    floor(&scripts, steps, None);
    rt.block_on(through_runtime(&spec, &stages));

    let (mut floors, mut runs, mut bins) = (Vec::new(), Vec::new(), Vec::new());
    let (mut spawns, mut multis, mut engines) = (Vec::new(), Vec::new(), Vec::new());
    let (mut env_floors, mut env_runs) = (Vec::new(), Vec::new());
    let mut std_env_spawns = Vec::new();
    for _ in 0..pairs {
        floors.push(floor(&scripts, steps, None));
        if let Some(env) = &step_env {
            env_floors.push(floor(&scripts, steps, Some(env)));
            std_env_spawns.push(std_spawns(&scripts, steps, env));
        }
        spawns.push(rt.block_on(tokio_spawns(&scripts, steps)));
        engines.push(rt.block_on(engine_calls(&spec, &stages)));
        runs.push(rt.block_on(through_runtime(&spec, &stages)));
        multis.push(multi.block_on(through_runtime(&spec, &stages)));
        if let Some(env_spec) = &env_spec {
            env_runs.push(rt.block_on(through_runtime(env_spec, &stages)));
        }
        if let Some(bin) = &bin {
            bins.push(through_binary(bin, &yaml, steps));
        }
    }
    let floor_ms = ms(median(floors.clone()));
    let run_ms = ms(median(runs.clone()));
    println!("{steps} serial `true` steps, median of {pairs} pairs");
    println!("| path | ms | µs/step | ratio to sh -e |");
    println!("|---|---:|---:|---:|");
    println!(
        "| sh -e, one after another | {floor_ms:.1} | {:.0} | 1.00 |",
        floor_ms * 1e3 / steps as f64
    );
    let spawn_ms = ms(median(spawns));
    println!(
        "| tokio::process spawn, read, wait (one thread, no runnerkit) | {spawn_ms:.1} | {:.0} | {:.2} |",
        spawn_ms * 1e3 / steps as f64,
        spawn_ms / floor_ms
    );
    let engine_ms = ms(median(engines));
    println!(
        "| LocalEngine's calls alone, one thread (no runtime) | {engine_ms:.1} | {:.0} | {:.2} |",
        engine_ms * 1e3 / steps as f64,
        engine_ms / floor_ms
    );
    println!(
        "| Runtime::run on LocalEngine, one thread | {run_ms:.1} | {:.0} | {:.2} |",
        run_ms * 1e3 / steps as f64,
        run_ms / floor_ms
    );
    let multi_ms = ms(median(multis));
    println!(
        "| Runtime::run on LocalEngine, 2 worker threads | {multi_ms:.1} | {:.0} | {:.2} |",
        multi_ms * 1e3 / steps as f64,
        multi_ms / floor_ms
    );
    if !bins.is_empty() {
        let bin_ms = ms(median(bins));
        println!(
            "| runnerkit exec (binary) | {bin_ms:.1} | {:.0} | {:.2} |",
            bin_ms * 1e3 / steps as f64,
            bin_ms / floor_ms
        );
        // The binary's steps get Drone's variables; the shell pays for
        // importing them too.
        let env_floor_ms = ms(median(env_floors));
        println!(
            "| sh -e with the environment the binary's steps get ({} variables) | {env_floor_ms:.1} | {:.0} | {:.2} |",
            step_env.as_ref().map_or(0, BTreeMap::len),
            env_floor_ms * 1e3 / steps as f64,
            env_floor_ms / floor_ms
        );
        let env_run_ms = ms(median(env_runs));
        println!(
            "| Runtime::run on LocalEngine, one thread, with that environment | {env_run_ms:.1} | {:.0} | {:.2} |",
            env_run_ms * 1e3 / steps as f64,
            env_run_ms / env_floor_ms
        );
        let std_ms = ms(median(std_env_spawns));
        println!(
            "| std::process spawn, read, wait with that environment (blocking, no runnerkit) | {std_ms:.1} | {:.0} | {:.2} |",
            std_ms * 1e3 / steps as f64,
            std_ms / env_floor_ms
        );
        println!(
            "| runnerkit exec against that floor | | | {:.2} |",
            bin_ms / env_floor_ms
        );
        println!(
            "| runnerkit exec against std's spawn with that environment | | | {:.2} |",
            bin_ms / std_ms
        );
    }
    let ratios: Vec<String> = floors
        .iter()
        .zip(&runs)
        .map(|(f, r)| format!("{:.2}", r.as_secs_f64() / f.as_secs_f64()))
        .collect();
    println!("per-pair ratios (runtime / sh): {}", ratios.join(", "));
    let _ = std::fs::remove_dir_all(&dir);
}

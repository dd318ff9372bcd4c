//! What the Docker engine costs, against the `docker` CLI doing the same.
//!
//! Run: `cargo bench -p runnerkit-docker --bench docker` (needs a daemon;
//! builds `runnerkit-test:busybox` when missing; prints a Markdown table).
//!
//! 1. A 10-step serial pipeline of `true` through the runtime and the engine
//!    (network, workspace volume, ten containers, teardown) against ten
//!    `docker run --rm IMAGE true` commands, one after another; and against
//!    the same commands given what a stage's step has (a user-defined network
//!    with an alias and a workspace volume, created and removed in the timing).
//!    The engine runs twice: as configured by default (steps made ahead) and
//!    with `with_lookahead(0)` (each container made when its step is reached).
//! 2. A container printing 50 MB of lines, read through `tail`, line
//!    splitting and masking (the runtime's `LineWriter` with one secret),
//!    against `docker run -d` of the same command followed by
//!    `docker logs -f` to /dev/null. Both are timed from the start of the
//!    container to the last byte read.
//!
//! 3. With `RUNNERKIT_BIN` naming a `runnerkit` binary: the pipeline of 1.
//!    as YAML through `runnerkit exec`, against the same `docker run` loop.
//!
//! The CLI is used here for the baselines only; the engine never runs it.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use runnerkit_core::{CancellationToken, Engine, PullPolicy, Script, Spec, Step, Workspace};
use runnerkit_docker::DockerEngine;
use runnerkit_docker::testing::{TEST_IMAGE, docker_or_skip};
use runnerkit_runtime::Runtime;
use runnerkit_runtime::logs::{LineWriter, Masker};

/// Pairs of the pipeline measures (the method: median of 5 pairs).
const PIPELINE_ROUNDS: usize = 5;
/// Rounds of the log measure.
const ROUNDS: usize = 3;
const LOG_BYTES: usize = 50 * 1024 * 1024;
/// Prints LOG_BYTES of 64-byte lines.
const PRINT_50MB: &str =
    "yes 'runnerkit log throughput line 0123456789 abcdefghijklmnopqrstu' | head -c 52428800";

fn step(name: &str, body: &str) -> Step {
    Step {
        image: TEST_IMAGE.into(),
        pull: PullPolicy::Never,
        script: Some(Script {
            shell: "/bin/sh".into(),
            body: format!("{body}\n"),
        }),
        ..Step::named(name)
    }
}

fn spec(id: String, steps: Vec<Step>) -> Spec {
    Spec {
        id,
        workspace: Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        },
        steps,
        ..Spec::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn docker_cli(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

async fn pipeline_through_engine(engine: Arc<DockerEngine>, round: usize) -> Duration {
    let steps = (0..10).map(|i| step(&format!("s{i}"), "true")).collect();
    let spec = spec(format!("bench-pipe-{}-{round}", std::process::id()), steps);
    let runtime = Runtime::new(engine);
    let t0 = Instant::now();
    let done = runtime
        .run(Arc::new(spec), CancellationToken::new())
        .await
        .expect("pipeline");
    let took = t0.elapsed();
    assert!(done.steps.iter().all(|s| s.exit_code == 0), "{done:?}");
    took
}

fn pipeline_through_cli() -> Duration {
    let t0 = Instant::now();
    for _ in 0..10 {
        let out = docker_cli(&["run", "--rm", TEST_IMAGE, "true"]);
        assert!(out.status.success(), "{out:?}");
    }
    t0.elapsed()
}

/// A 10-step serial `type: docker` pipeline of `true`, as YAML.
fn pipeline_yaml() -> String {
    let mut yaml = String::from("kind: pipeline\ntype: docker\nname: bench\nsteps:\n");
    for i in 0..10 {
        yaml.push_str(&format!(
            "- name: s{i}\n  image: {TEST_IMAGE}\n  pull: never\n  commands:\n  - true\n"
        ));
    }
    yaml
}

/// `runnerkit exec` of [`pipeline_yaml`] in `dir`, its output on a pipe.
fn pipeline_through_binary(bin: &str, dir: &std::path::Path) -> Duration {
    let t0 = Instant::now();
    let out = Command::new(bin)
        .args(["exec", "bench.drone.yml"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{bin} exec: {e}"));
    let took = t0.elapsed();
    assert!(out.status.success(), "{out:?}");
    took
}

/// The same ten commands with what a stage's step gets: a user-defined
/// network with an alias and a workspace volume (created and removed here,
/// inside the timing, as `setup` and `destroy` do).
fn pipeline_through_cli_on_a_network(round: usize) -> Duration {
    let name = format!("bench-cli-{}-{round}", std::process::id());
    let volume = format!("{name}:/drone/src");
    let t0 = Instant::now();
    assert!(docker_cli(&["network", "create", &name]).status.success());
    assert!(docker_cli(&["volume", "create", &name]).status.success());
    for i in 0..10 {
        let alias = format!("s{i}");
        let out = docker_cli(&[
            "run",
            "--rm",
            "--network",
            &name,
            "--network-alias",
            &alias,
            "-v",
            &volume,
            "-w",
            "/drone/src",
            TEST_IMAGE,
            "true",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    assert!(docker_cli(&["network", "rm", &name]).status.success());
    assert!(docker_cli(&["volume", "rm", &name]).status.success());
    t0.elapsed()
}

/// (elapsed, bytes, lines) of the 50 MB step through tail + LineWriter.
async fn logs_through_engine(engine: &DockerEngine, round: usize) -> (Duration, usize, u64) {
    let spec = spec(
        format!("bench-logs-{}-{round}", std::process::id()),
        vec![step("print", PRINT_50MB)],
    );
    let step = &spec.steps[0];
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.expect("setup");
    engine.create(&spec, step, &cancel).await.expect("create");
    let masker = Arc::new(Masker::new(["abcdefghijklmnopqrstu-not-there"]));
    let mut writer = LineWriter::new(masker, usize::MAX);
    let mut lines = 0u64;
    let mut bytes = 0usize;
    let t0 = Instant::now();
    engine.start(&spec, step, &cancel).await.expect("start");
    let mut stream = engine.tail(&spec, step, &cancel).await.expect("tail");
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        bytes += chunk.len();
        writer.write(&chunk, 0, &mut |_line| lines += 1);
    }
    writer.finish(0, &mut |_line| lines += 1);
    let took = t0.elapsed();
    engine.wait(&spec, step, &cancel).await.expect("wait");
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .expect("destroy");
    (took, bytes, lines)
}

fn logs_through_cli(round: usize) -> Duration {
    let name = format!("bench-logs-cli-{}-{round}", std::process::id());
    let t0 = Instant::now();
    let out = docker_cli(&[
        "run", "-d", "--name", &name, TEST_IMAGE, "sh", "-c", PRINT_50MB,
    ]);
    assert!(out.status.success(), "{out:?}");
    let status = Command::new("docker")
        .args(["logs", "-f", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("docker logs");
    let took = t0.elapsed();
    assert!(status.success());
    docker_cli(&["rm", "-f", &name]);
    took
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// The median of `pairs`' ratios `a / b`, and the smallest and largest.
fn ratio_of_pairs(a: &[Duration], b: &[Duration]) -> (f64, f64, f64) {
    let mut ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    (
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = Arc::new(engine);
    let one_by_one = Arc::new(docker_or_skip().await.expect("daemon").with_lookahead(0));
    // Warm up every path once (page cache, image layers, network driver).
    pipeline_through_engine(engine.clone(), 0).await;
    pipeline_through_engine(one_by_one.clone(), 100).await;
    pipeline_through_cli();

    let mut engine_pipe = Vec::new();
    let mut one_by_one_pipe = Vec::new();
    let mut cli_pipe = Vec::new();
    let mut cli_net_pipe = Vec::new();
    for round in 1..=PIPELINE_ROUNDS {
        engine_pipe.push(pipeline_through_engine(engine.clone(), round).await);
        cli_pipe.push(pipeline_through_cli());
        one_by_one_pipe.push(pipeline_through_engine(one_by_one.clone(), 100 + round).await);
        cli_net_pipe.push(pipeline_through_cli_on_a_network(round));
    }
    // Through the binary, when RUNNERKIT_BIN names one.
    let binary = std::env::var("RUNNERKIT_BIN").ok().map(|bin| {
        let dir = std::env::temp_dir().join(format!("runnerkit-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bench dir");
        std::fs::write(dir.join("bench.drone.yml"), pipeline_yaml()).expect("bench yaml");
        pipeline_through_binary(&bin, &dir);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..PIPELINE_ROUNDS {
            ours.push(pipeline_through_binary(&bin, &dir));
            theirs.push(pipeline_through_cli());
        }
        let _ = std::fs::remove_dir_all(&dir);
        (ours, theirs)
    });
    let mut engine_logs = Vec::new();
    let mut cli_logs = Vec::new();
    let mut counted = (0, 0);
    for round in 1..=ROUNDS {
        let (took, bytes, lines) = logs_through_engine(&engine, round).await;
        counted = (bytes, lines);
        engine_logs.push(took);
        cli_logs.push(logs_through_cli(round));
    }
    assert_eq!(counted.0, LOG_BYTES, "every byte arrives");

    let secs = |v: &[Duration]| median(v.to_vec()).as_secs_f64();
    let row = |what: &str, ours: &[Duration], theirs: &[Duration], peer: &str| {
        let (ratio, low, high) = ratio_of_pairs(ours, theirs);
        println!(
            "| {what} | {:.2} s | {:.2} s ({peer}) | {ratio:.2} ({low:.2}–{high:.2}) |",
            secs(ours),
            secs(theirs),
        );
    };
    let (el, cl) = (median(engine_logs), median(cli_logs));
    println!(
        "Docker engine vs docker CLI (pipelines: median of {PIPELINE_ROUNDS} pairs; logs: median of {ROUNDS} rounds)\n"
    );
    println!("| measure | runnerkit-docker | docker CLI | ratio (range) |");
    println!("| --- | --- | --- | --- |");
    row(
        "10-step serial pipeline of `true` (steps made ahead, the default)",
        &engine_pipe,
        &cli_pipe,
        "10 × `docker run --rm`",
    );
    row(
        "the same, `with_lookahead(0)`",
        &one_by_one_pipe,
        &cli_pipe,
        "10 × `docker run --rm`",
    );
    row(
        "the default, against CLI steps on a stage network with a workspace volume",
        &engine_pipe,
        &cli_net_pipe,
        "network + volume + 10 × `docker run --rm --network … -v …`",
    );
    if let Some((ours, theirs)) = &binary {
        row(
            "10-step serial pipeline of `true` through `runnerkit exec`",
            ours,
            theirs,
            "10 × `docker run --rm`",
        );
    }
    println!(
        "| 50 MB of logs ({} lines), start to last byte | {:.2} s ({:.0} MB/s, tail + lines + masking) | {:.2} s ({:.0} MB/s, `docker logs -f` > /dev/null) | {:.2} |",
        counted.1,
        el.as_secs_f64(),
        mb_per_s(LOG_BYTES, el),
        cl.as_secs_f64(),
        mb_per_s(LOG_BYTES, cl),
        el.as_secs_f64() / cl.as_secs_f64()
    );
}

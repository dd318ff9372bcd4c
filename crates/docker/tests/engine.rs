//! The Docker engine against a real daemon, one call sequence at a time.
//!
//! Run: `cargo test -p runnerkit-docker` (skipped with a message when no
//! daemon answers; `RUNNERKIT_REQUIRE_DOCKER=1` makes that a failure).

mod common;

use std::time::Duration;

use common::{destroy_and_check, run_all, run_step, script, spec};
use futures_util::StreamExt;
use runnerkit_core::{
    CancellationToken, Engine, EngineErrorKind, Mount, PullPolicy, Resources, SecretVar, Step,
    Volume, VolumeSource,
};
use runnerkit_docker::testing::{
    PODMAN_LEAVES_OOM_UNREPORTED, TEST_IMAGE, docker_or_skip, docker_unless_podman,
};

#[tokio::test]
async fn exit_codes_are_reported() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let steps = vec![
        script("ok", "true"),
        script("fails", "exit 3"),
        script("neutral", "exit 78"),
    ];
    let spec = spec("exit", steps);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let mut codes = Vec::new();
    for step in &spec.steps {
        codes.push(
            run_step(&engine, &spec, step, &cancel)
                .await
                .unwrap()
                .exit
                .exit_code,
        );
    }
    assert_eq!(codes, [0, 3, 78]);
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn stdout_and_stderr_arrive_in_order_with_nothing_lost() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    // The step prints and exits at once: attaching after the start would lose lines.
    let body = "echo out1\nsleep 0.1\necho err1 >&2\nsleep 0.1\necho out2\nsleep 0.1\nprintf 'err2 no newline' >&2";
    let spec = spec("order", vec![script("print", body)]);
    let ran = run_all(&engine, &spec).await;
    assert_eq!(ran[0].exit.exit_code, 0);
    assert_eq!(ran[0].log, "out1\nerr1\nout2\nerr2 no newline");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn many_lines_printed_at_once_all_arrive() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec("burst", vec![script("burst", "seq 1 20000")]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let ran = run_step(&engine, &spec, &spec.steps[0], &cancel)
        .await
        .unwrap();
    let lines: Vec<&str> = ran.log.lines().collect();
    assert_eq!(lines.len(), 20000);
    assert_eq!(lines.last(), Some(&"20000"));
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn environment_and_secrets_reach_the_step() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let mut step = script("env", "echo \"$GREETING $TOKEN\"\npwd");
    step.environment.insert("GREETING".into(), "hello".into());
    step.environment.insert("TOKEN".into(), "overridden".into());
    step.secrets.push(SecretVar {
        env: "TOKEN".into(),
        value: "s3cr3t".into(),
        mask: true,
    });
    let spec = spec("env", vec![step]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let ran = run_step(&engine, &spec, &spec.steps[0], &cancel)
        .await
        .unwrap();
    // Masking is the runtime's job; the engine hands the value to the step.
    assert_eq!(ran.log, "hello s3cr3t\n/drone/src\n");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn entrypoint_and_command_without_a_script() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let step = Step {
        image: TEST_IMAGE.into(),
        pull: PullPolicy::IfNotExists,
        entrypoint: vec!["/bin/echo".into()],
        command: vec!["a".into(), "b c".into()],
        working_dir: "/tmp".into(),
        user: "65534".into(),
        ..Step::named("plain")
    };
    let who = Step {
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        command: vec!["id -u; pwd".into()],
        ..step.clone()
    };
    let spec = spec(
        "plain",
        vec![
            step,
            Step {
                id: "who".into(),
                name: "who".into(),
                ..who
            },
        ],
    );
    let ran = run_all(&engine, &spec).await;
    assert_eq!(ran[0].log, "a b c\n");
    assert_eq!(ran[1].log, "65534\n/tmp\n");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn a_service_is_reached_by_its_name() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let mut service = script(
        "cache",
        "mkdir -p /tmp\necho -e 'HTTP/1.0 200 OK\\r\\n\\r\\npong' > /tmp/r\nwhile true; do nc -l -p 8080 < /tmp/r; done",
    );
    service.detach = true;
    let client = script(
        "client",
        "for i in $(seq 1 50); do wget -q -O - http://cache:8080/ && exit 0; sleep 0.1; done; exit 1",
    );
    let spec = spec("service", vec![service, client]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let svc = &spec.steps[0];
    engine.create(&spec, svc, &cancel).await.unwrap();
    engine.start(&spec, svc, &cancel).await.unwrap();
    let service_log = engine.tail(&spec, svc, &cancel).await.unwrap();
    let ran = run_step(&engine, &spec, &spec.steps[1], &cancel)
        .await
        .unwrap();
    assert_eq!(ran.exit.exit_code, 0, "log: {}", ran.log);
    assert!(ran.log.contains("pong"), "log: {}", ran.log);
    // The service is still running: destroy must remove it and end its log.
    destroy_and_check(&engine, &spec).await;
    tokio::time::timeout(Duration::from_secs(10), service_log.collect::<Vec<_>>())
        .await
        .expect("a detached step's log ends with destroy");
}

#[tokio::test]
async fn the_workspace_is_shared_between_steps() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec(
        "workspace",
        vec![
            script("write", "echo built > artifact.txt"),
            script("read", "cat /drone/src/artifact.txt"),
        ],
    );
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    run_step(&engine, &spec, &spec.steps[0], &cancel)
        .await
        .unwrap();
    let ran = run_step(&engine, &spec, &spec.steps[1], &cancel)
        .await
        .unwrap();
    assert_eq!(ran.log, "built\n");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn temp_volumes_persist_across_steps_and_memory_volumes_are_tmpfs() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let mount = |name: &str, path: &str| Mount {
        name: name.into(),
        path: path.into(),
        read_only: false,
    };
    let mut write = script(
        "write",
        "echo cached > /cache/file\ngrep ' /ram ' /proc/mounts",
    );
    write.volumes = vec![mount("cache", "/cache"), mount("ram", "/ram")];
    let mut read = script("read", "cat /cache/file");
    read.volumes = vec![mount("cache", "/cache")];
    let mut spec = spec("volumes", vec![write, read]);
    spec.volumes = vec![
        Volume {
            name: "cache".into(),
            source: VolumeSource::Temp {
                memory: false,
                size_limit: 0,
            },
        },
        Volume {
            name: "ram".into(),
            source: VolumeSource::Temp {
                memory: true,
                size_limit: 8 << 20,
            },
        },
    ];
    let ran = run_all(&engine, &spec).await;
    assert_eq!(ran[0].exit.exit_code, 0, "log: {}", ran[0].log);
    assert!(
        ran[0].log.starts_with("tmpfs /ram tmpfs"),
        "log: {}",
        ran[0].log
    );
    assert!(ran[0].log.contains("size=8192k"), "log: {}", ran[0].log);
    assert!(ran[0].log.contains("mode=700"), "log: {}", ran[0].log);
    assert_eq!(ran[1].log, "cached\n");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn oom_is_reported_with_a_small_mem_limit() {
    let Some(engine) = docker_unless_podman(PODMAN_LEAVES_OOM_UNREPORTED).await else {
        return;
    };
    // The daemon learns of an OOM kill through a cgroup notification it
    // registers just after the container starts: a kill in the very first
    // milliseconds goes unreported (Docker 20.10, cgroup v1; `docker run`
    // alike, about one run in ten). A real step allocates later than that.
    let mut step = script(
        "hog",
        "sleep 1\ndd if=/dev/zero of=/dev/null bs=256M count=1",
    );
    step.resources = Resources {
        mem_limit: 16 << 20,
        memswap_limit: 16 << 20,
        ..Resources::default()
    };
    let spec = spec("oom", vec![step]);
    let ran = run_all(&engine, &spec).await;
    assert!(
        ran[0].exit.oom_killed,
        "exit: {:?}, log: {}",
        ran[0].exit, ran[0].log
    );
    assert_eq!(ran[0].exit.exit_code, 137);
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn cancelling_mid_step_stops_it_and_ends_the_log() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let engine = engine.with_stop_grace(Duration::from_secs(1));
    let spec = spec("cancel", vec![script("long", "echo started\nsleep 300")]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let step = &spec.steps[0];
    engine.create(&spec, step, &cancel).await.unwrap();
    engine.start(&spec, step, &cancel).await.unwrap();
    let mut logs = engine.tail(&spec, step, &cancel).await.unwrap();
    // Cancel once the step is demonstrably running.
    let first = logs.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"started\n");
    cancel.cancel();
    let exit = tokio::time::timeout(Duration::from_secs(60), engine.wait(&spec, step, &cancel))
        .await
        .expect("wait returns after cancellation")
        .unwrap();
    // SIGTERM reached the script's `sleep`; the script stopped there.
    assert_eq!(exit.exit_code, 128 + 15);
    let rest = tokio::time::timeout(Duration::from_secs(10), logs.collect::<Vec<_>>())
        .await
        .expect("the log stream ends after cancellation");
    // What the shell says about its killed child, if anything, and no error.
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn a_cancelled_script_gets_sigterm_and_its_trap_runs() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    // A grace long enough that only the trap can end the step before the
    // timeout below: SIGKILL would come after 60 s.
    let engine = engine.with_stop_grace(Duration::from_secs(60));
    let body = "trap 'echo cleaning up; exit 3' TERM\necho started\nsleep 300 &\nwait";
    let spec = spec("trap", vec![script("graceful", body)]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let step = &spec.steps[0];
    engine.create(&spec, step, &cancel).await.unwrap();
    engine.start(&spec, step, &cancel).await.unwrap();
    let mut logs = engine.tail(&spec, step, &cancel).await.unwrap();
    let first = logs.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"started\n");
    cancel.cancel();
    let exit = tokio::time::timeout(Duration::from_secs(30), engine.wait(&spec, step, &cancel))
        .await
        .expect("the trap ends the step well within the grace")
        .unwrap();
    assert_eq!(exit.exit_code, 3);
    let rest: Vec<u8> = logs
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(String::from_utf8_lossy(&rest), "cleaning up\n");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn a_missing_image_with_pull_never_is_an_error_naming_it() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let step = Step {
        image: "runnerkit-test:does-not-exist".into(),
        pull: PullPolicy::Never,
        ..Step::named("missing")
    };
    let spec = spec("missing", vec![step]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let err = engine
        .create(&spec, &spec.steps[0], &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("\"runnerkit-test:does-not-exist\""),
        "{err}"
    );
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn steps_in_parallel_run_at_the_same_time() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    // Each step waits (bounded) for the other's marker in the shared
    // workspace: both pass only if they run concurrently.
    let a = script(
        "a",
        "touch a.ready\nfor i in $(seq 1 100); do [ -f b.ready ] && exit 0; sleep 0.1; done; exit 1",
    );
    let b = script(
        "b",
        "touch b.ready\nfor i in $(seq 1 100); do [ -f a.ready ] && exit 0; sleep 0.1; done; exit 1",
    );
    let spec = spec("parallel", vec![a, b]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let (ra, rb) = tokio::join!(
        run_step(&engine, &spec, &spec.steps[0], &cancel),
        run_step(&engine, &spec, &spec.steps[1], &cancel)
    );
    assert_eq!(ra.unwrap().exit.exit_code, 0);
    assert_eq!(rb.unwrap().exit.exit_code, 0);
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn destroy_is_idempotent_and_works_after_a_failed_setup() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec("idem", vec![script("s", "true")]);
    // Nothing was ever set up.
    destroy_and_check(&engine, &spec).await;
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    engine.create(&spec, &spec.steps[0], &cancel).await.unwrap();
    destroy_and_check(&engine, &spec).await;
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn objects_carry_the_stage_labels() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec("labels", vec![script("s", "true")]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    engine.create(&spec, &spec.steps[0], &cancel).await.unwrap();
    let mut left = runnerkit_docker::testing::stage_leftovers(&engine, &spec.id)
        .await
        .unwrap();
    left.sort();
    // `rk-<spec id>-<token>`, the token 16 hex digits.
    let network = left[1].strip_prefix("network ").unwrap().to_owned();
    let token = network.strip_prefix(&format!("rk-{}-", spec.id)).unwrap();
    assert_eq!(token.len(), 16, "{network}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{network}");
    assert_eq!(
        left,
        [
            format!("container {network}-s"),
            format!("network {network}"),
            format!("volume {network}-workspace"),
        ]
    );
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn calls_out_of_order_are_misuse_not_hangs() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let spec = spec(
        "order-misuse",
        vec![script("s", "true"), Step::named("no-image")],
    );
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let step = &spec.steps[0];
    let err = engine.start(&spec, step, &cancel).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse, "{err}");
    let err = engine
        .create(&spec, &spec.steps[1], &cancel)
        .await
        .unwrap_err();
    assert!(err.message().contains("names no image"), "{err}");
    engine.create(&spec, step, &cancel).await.unwrap();
    let err = engine.tail(&spec, step, &cancel).await.err().unwrap();
    assert_eq!(
        err.kind(),
        EngineErrorKind::Misuse,
        "tail before start: {err}"
    );
    destroy_and_check(&engine, &spec).await;
    let err = engine.wait(&spec, step, &cancel).await.unwrap_err();
    assert_eq!(
        err.kind(),
        EngineErrorKind::Misuse,
        "wait after destroy: {err}"
    );
}

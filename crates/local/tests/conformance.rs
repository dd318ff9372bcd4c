//! `LocalEngine` against the engine conformance suite of `runnerkit-mock`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use runnerkit_core::{Engine, Spec, Step};
use runnerkit_local::LocalEngine;
use runnerkit_mock::conformance::{self, Behaviour, Fixture, ShellFixture};

/// POSIX sh steps, with stage roots in a directory of their own so what a
/// stage left behind can be found after `destroy`: its root directory, and
/// any process still running with the stage's `HOME`.
struct LocalFixture {
    shell: ShellFixture,
    temp_dir: PathBuf,
}

impl LocalFixture {
    /// Every root of `spec` starts with this (the engine names roots
    /// `runnerkit-<id>-<pid>-<n>`; conformance ids need no escaping).
    fn root_prefix(&self, spec: &Spec) -> String {
        format!("runnerkit-{}-", spec.id)
    }
}

#[async_trait]
impl Fixture for LocalFixture {
    fn spec(&self, steps: Vec<Step>) -> Spec {
        self.shell.spec(steps)
    }

    fn step(&self, name: &str, behaviour: &Behaviour) -> Step {
        self.shell.step(name, behaviour)
    }

    async fn leftovers(&self, spec: &Spec) -> Vec<String> {
        let prefix = self.root_prefix(spec);
        let mut left: Vec<String> = std::fs::read_dir(&self.temp_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| format!("directory {}", e.path().display()))
            .collect();
        let home = format!("HOME={}", self.temp_dir.join(&prefix).display());
        left.extend(
            processes_with_env_prefix(&home)
                .into_iter()
                .map(|pid| format!("process {pid}")),
        );
        left
    }
}

/// Live (not zombie) processes of this user whose environment has a
/// variable starting with `prefix`.
fn processes_with_env_prefix(prefix: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let dir = Path::new("/proc").join(pid.to_string());
            let zombie = std::fs::read_to_string(dir.join("stat"))
                .map(|stat| {
                    stat.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
            !zombie
                && environ
                    .split(|b| *b == 0)
                    .any(|var| var.starts_with(prefix.as_bytes()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_engine_conforms() {
    let temp_dir =
        std::env::temp_dir().join(format!("rk-local-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&temp_dir).unwrap();
    let engine = LocalEngine::new().with_temp_dir(&temp_dir);
    let fixture = LocalFixture {
        shell: ShellFixture::new(),
        temp_dir: temp_dir.clone(),
    };
    conformance::run_all(&engine, &fixture).await;
    assert_eq!(std::fs::read_dir(&temp_dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&temp_dir).unwrap();
}

#[tokio::test]
async fn the_leftover_probe_sees_a_live_stage() {
    // The fixture must be able to fail: before destroy, a running step and
    // its root are reported.
    let temp_dir = std::env::temp_dir().join(format!("rk-local-probe-{}", std::process::id()));
    std::fs::create_dir_all(&temp_dir).unwrap();
    let engine = LocalEngine::new().with_temp_dir(&temp_dir);
    let fixture = LocalFixture {
        shell: ShellFixture::new(),
        temp_dir: temp_dir.clone(),
    };
    let step = fixture.step(
        "sleeper",
        &Behaviour::Sleep(std::time::Duration::from_secs(300)),
    );
    let spec = fixture.spec(vec![step.clone()]);
    let token = runnerkit_core::CancellationToken::new();
    engine.setup(&spec, &token).await.unwrap();
    engine.create(&spec, &step, &token).await.unwrap();
    engine.start(&spec, &step, &token).await.unwrap();
    // Give the shell time to exec its sleep.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let left = fixture.leftovers(&spec).await;
    assert!(left.iter().any(|l| l.starts_with("directory ")), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("process ")), "{left:?}");
    engine.destroy(&spec, &token).await.unwrap();
    assert_eq!(fixture.leftovers(&spec).await, Vec::<String>::new());
    std::fs::remove_dir_all(&temp_dir).unwrap();
}

//! Shared fixtures for the client and server tests.
#![allow(dead_code)]

use std::time::Duration;

use runnerkit_core::drone::{
    Build, ConfigFile, Details, Filter, Netrc, Repo, Secret, Stage, Step, System,
};
use runnerkit_core::{Manager, Status};
use runnerkit_drone::testing::{DroneServer, RecordedRequest, ServerConfig};
use runnerkit_drone::{DroneConfig, DroneManager, RetryPolicy};

pub const YAML: &str = "kind: pipeline\ntype: docker\nname: default\nsteps:\n- name: build\n  image: alpine\n  commands: [echo hello]\n";

/// Short, deterministic-enough retries for tests (the clock is paused in
/// the ones that measure them).
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_elapsed: Some(Duration::from_secs(30)),
    }
}

pub async fn server() -> DroneServer {
    DroneServer::start(ServerConfig::default()).await.unwrap()
}

pub fn manager(server: &DroneServer) -> DroneManager {
    manager_with(server.client_config())
}

pub fn manager_with(config: DroneConfig) -> DroneManager {
    DroneManager::new(&config.with_retry(quick_retry())).unwrap()
}

/// A stage of a push build of `octo/hello`, with secrets and a netrc.
pub fn details() -> Details {
    Details {
        repository: Repo {
            id: 1,
            namespace: "octo".into(),
            name: "hello".into(),
            slug: "octo/hello".into(),
            timeout: 60,
            secret: "repo-key".into(),
            ..Repo::default()
        },
        build: Build {
            number: 5,
            event: "push".into(),
            git_ref: "refs/heads/main".into(),
            after: "0123abcd".into(),
            ..Build::default()
        },
        stage: Stage::default(),
        config: ConfigFile {
            data: YAML.as_bytes().to_vec(),
            hash: None,
        },
        secrets: vec![Secret {
            name: "password".into(),
            data: "hunter2".into(),
            ..Secret::default()
        }],
        system: System {
            proto: "https".into(),
            host: "drone.example.com".into(),
            ..System::default()
        },
        netrc: Some(Netrc {
            machine: "github.com".into(),
            login: "octocat".into(),
            password: "token-123".into(),
        }),
    }
}

pub fn filter() -> Filter {
    Filter {
        kind: "pipeline".into(),
        kind_type: "docker".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        ..Filter::default()
    }
}

/// Requests and accepts the next stage.
pub async fn claim(manager: &DroneManager) -> Stage {
    let offered = manager.request(&filter()).await.unwrap().expect("a stage");
    manager.accept(offered.id, "runner-1").await.unwrap()
}

/// The accepted stage turned `running` with `names` as pending steps.
pub fn running(stage: &Stage, names: &[&str]) -> Stage {
    let mut stage = stage.clone();
    stage.status = Status::Running;
    stage.started = 1_700_000_000;
    stage.steps = names
        .iter()
        .zip(1..)
        .map(|(name, number)| Step {
            step_id: stage.id,
            number,
            name: (*name).to_owned(),
            image: "alpine".into(),
            ..Step::default()
        })
        .collect();
    stage
}

/// Claims a stage and reports it running with `names`; ids merged back.
pub async fn started(manager: &DroneManager, names: &[&str]) -> Stage {
    let stage = claim(manager).await;
    let mut stage = running(&stage, names);
    manager.before_all(&mut stage).await.unwrap();
    stage
}

pub fn lines(texts: &[&str]) -> Vec<runnerkit_core::Line> {
    texts
        .iter()
        .zip(0..)
        .map(|(text, number)| runnerkit_core::Line {
            number,
            message: (*text).to_owned(),
            timestamp: number,
        })
        .collect()
}

/// The requests to `path` (exact), in order.
pub fn requests_to(server: &DroneServer, method: &str, path: &str) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

/// A plain reqwest client for reading the server's raw answers. reqwest is
/// built without a default crypto provider, so it gets a ring-based TLS
/// configuration like the one `DroneManager` uses (this test never does TLS).
pub fn raw_client() -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

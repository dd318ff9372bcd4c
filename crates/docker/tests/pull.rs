//! Pull policies and registry credentials against the real daemon, with a
//! fake registry on loopback (no real registry is reachable here).

mod common;

use std::sync::{Arc, Mutex};

use common::{destroy_and_check, run_step, script, spec};
use runnerkit_core::{CancellationToken, Engine, EngineErrorKind, PullPolicy, RegistryAuth, Step};
use runnerkit_docker::testing::{TEST_IMAGE, docker_or_skip};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A registry that asks for Basic credentials, records the `Authorization`
/// header of every request, and knows no image.
struct FakeRegistry {
    address: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl FakeRegistry {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let Ok(n) = conn.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        // The daemon tries TLS first: refuse, it falls back to HTTP.
                        if request.is_empty() && buf[0] == 0x16 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if request.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let auth = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Authorization: "))
                        .or_else(|| text.lines().find_map(|l| l.strip_prefix("authorization: ")))
                        .map(str::to_owned);
                    let response = if auth.is_none() {
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"runnerkit\"\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                    } else {
                        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
                        format!(
                            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    record.lock().unwrap().push(auth);
                    let _ = conn.write_all(response.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self { address, seen }
    }
}

#[tokio::test]
async fn credentials_matching_the_image_host_are_sent() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    let registry = FakeRegistry::start().await;
    let image = format!("{}/runnerkit/app:1", registry.address);
    let step = Step {
        image: image.clone(),
        pull: PullPolicy::Always,
        ..Step::named("private")
    };
    let mut spec = spec("creds", vec![step]);
    spec.registries = vec![
        RegistryAuth {
            address: "ghcr.io".into(),
            username: "wrong".into(),
            password: "wrong".into(),
        },
        RegistryAuth {
            address: registry.address.clone(),
            username: "robot".into(),
            password: "pa55".into(),
        },
    ];
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let err = engine
        .create(&spec, &spec.steps[0], &cancel)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&image),
        "{}",
        err.to_chain_string()
    );
    assert_eq!(
        err.kind(),
        EngineErrorKind::NotFound,
        "{}",
        err.to_chain_string()
    );
    let seen = registry.seen.lock().unwrap().clone();
    // base64("robot:pa55")
    assert!(
        seen.contains(&Some("Basic cm9ib3Q6cGE1NQ==".to_owned())),
        "requests seen by the registry: {seen:?}"
    );
    // base64("wrong:wrong"): the credential of another host is never sent.
    assert!(!seen.contains(&Some("Basic d3Jvbmc6d3Jvbmc=".to_owned())));
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn pull_always_fails_naming_the_image_when_the_registry_is_down() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    // Nothing listens on port 1.
    let step = Step {
        image: "127.0.0.1:1/runnerkit/app:1".into(),
        pull: PullPolicy::Always,
        ..Step::named("unreachable")
    };
    let spec = spec("pulldown", vec![step]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let err = engine
        .create(&spec, &spec.steps[0], &cancel)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "docker: pull image \"127.0.0.1:1/runnerkit/app:1\"",
        "{}",
        err.to_chain_string()
    );
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn the_default_policy_does_not_pull_a_present_pinned_image() {
    let Some(engine) = docker_or_skip().await else {
        return;
    };
    // A tag other than `latest`, present locally: no registry is contacted
    // (none is reachable, so a pull would fail the step).
    let mut step = script("local", "echo local");
    step.pull = PullPolicy::Default;
    assert_ne!(TEST_IMAGE.rsplit(':').next(), Some("latest"));
    let spec = spec("default", vec![step]);
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    let ran = run_step(&engine, &spec, &spec.steps[0], &cancel)
        .await
        .unwrap();
    assert_eq!(ran.log, "local\n");
    destroy_and_check(&engine, &spec).await;
}

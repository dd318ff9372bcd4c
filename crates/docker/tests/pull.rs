//! Pull policies and registry credentials against the real daemon, with a
//! fake registry on loopback (no real registry is reachable here).

mod common;

use std::sync::{Arc, Mutex};

use common::{destroy_and_check, run_all, run_step, script, spec};
use runnerkit_core::{CancellationToken, Engine, EngineErrorKind, PullPolicy, RegistryAuth, Step};
use runnerkit_docker::testing::{
    PODMAN_PULLS_LOOPBACK_OVER_HTTPS, TEST_IMAGE, docker_or_skip, docker_unless_podman,
    remove_image, tar,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the fake registry saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
}

/// An answer: status line, extra headers, body.
type Answer = (&'static str, Vec<(String, String)>, Vec<u8>);

/// A registry on loopback (the daemon treats 127.0.0.0/8 as an insecure
/// registry and falls back to plain HTTP), answering with `route` and
/// recording every request.
struct FakeRegistry {
    address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeRegistry {
    async fn start(route: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let route = Arc::new(route);
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                let route = route.clone();
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
                    let mut first = text.lines().next().unwrap_or("").split(' ');
                    let header = |name: &str| {
                        text.lines().find_map(|l| {
                            let (k, v) = l.split_once(": ")?;
                            k.eq_ignore_ascii_case(name).then(|| v.to_owned())
                        })
                    };
                    let seen = Seen {
                        method: first.next().unwrap_or("").to_owned(),
                        path: first.next().unwrap_or("").to_owned(),
                        auth: header("authorization"),
                    };
                    let (status, headers, body) = route(&seen);
                    record.lock().unwrap().push(seen.clone());
                    let mut response = format!(
                        "HTTP/1.1 {status}\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        response.push_str(&format!("{k}: {v}\r\n"));
                    }
                    response.push_str("\r\n");
                    let mut bytes = response.into_bytes();
                    if seen.method != "HEAD" {
                        bytes.extend_from_slice(&body);
                    }
                    let _ = conn.write_all(&bytes).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self { address, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn not_found() -> Answer {
    let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
    (
        "404 Not Found",
        vec![("Content-Type".into(), "application/json".into())],
        body.to_vec(),
    )
}

fn sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A one-layer image holding the host's static busybox at `/bin/busybox`,
/// served as `runnerkit/pulled:<any tag>`.
fn image_route() -> impl Fn(&Seen) -> Answer + Send + Sync + 'static {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .expect("a static busybox (package busybox-static)");
    let layer = tar(&[("bin/busybox", 0o755, &busybox)]);
    let layer_digest = sha256(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string()
    .into_bytes();
    let config_digest = sha256(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": layer.len(),
            "digest": layer_digest,
        }],
    })
    .to_string()
    .into_bytes();
    let manifest_digest = sha256(&manifest);
    move |seen: &Seen| {
        let path = seen.path.as_str();
        if path == "/v2/" {
            ("200 OK", Vec::new(), Vec::new())
        } else if path.starts_with("/v2/runnerkit/pulled/manifests/") {
            (
                "200 OK",
                vec![
                    (
                        "Content-Type".into(),
                        "application/vnd.docker.distribution.manifest.v2+json".into(),
                    ),
                    ("Docker-Content-Digest".into(), manifest_digest.clone()),
                ],
                manifest.clone(),
            )
        } else if path == format!("/v2/runnerkit/pulled/blobs/{config_digest}") {
            ("200 OK", Vec::new(), config.clone())
        } else if path == format!("/v2/runnerkit/pulled/blobs/{layer_digest}") {
            ("200 OK", Vec::new(), layer.clone())
        } else {
            not_found()
        }
    }
}

/// Asks for Basic credentials, then knows no image.
fn private_route(seen: &Seen) -> Answer {
    if seen.auth.is_none() {
        (
            "401 Unauthorized",
            vec![(
                "WWW-Authenticate".into(),
                "Basic realm=\"runnerkit\"".into(),
            )],
            Vec::new(),
        )
    } else {
        not_found()
    }
}

#[tokio::test]
async fn credentials_matching_the_image_host_are_sent() {
    let Some(engine) = docker_unless_podman(PODMAN_PULLS_LOOPBACK_OVER_HTTPS).await else {
        return;
    };
    let registry = FakeRegistry::start(private_route).await;
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
    let seen: Vec<Option<String>> = registry.seen().into_iter().map(|s| s.auth).collect();
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
    let ran = run_all(&engine, &spec).await;
    assert_eq!(ran[0].log, "local\n");
    destroy_and_check(&engine, &spec).await;
}

#[tokio::test]
async fn pull_progress_opens_the_log_and_policies_decide_when_to_pull() {
    let Some(engine) = docker_unless_podman(PODMAN_PULLS_LOOPBACK_OVER_HTTPS).await else {
        return;
    };
    // Each step pulls when its own `create` is called: the counts below are
    // read between steps (steps made ahead would pull earlier).
    let engine = engine.with_lookahead(0);
    let registry = FakeRegistry::start(image_route()).await;
    let image = format!("{}/runnerkit/pulled:1", registry.address);
    let manifests = |registry: &FakeRegistry| {
        registry
            .seen()
            .iter()
            // A repeated pull may only ask for the manifest's digest (HEAD).
            .filter(|s| s.path.contains("/manifests/"))
            .count()
    };
    let step = |name: &str, pull: PullPolicy| Step {
        image: image.clone(),
        pull,
        entrypoint: vec!["/bin/busybox".into(), "echo".into(), "pulled".into()],
        ..Step::named(name)
    };
    let spec = spec(
        "pulled",
        vec![
            step("missing", PullPolicy::IfNotExists),
            step("present", PullPolicy::IfNotExists),
            step("pinned", PullPolicy::Default),
            step("again", PullPolicy::Always),
        ],
    );
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.unwrap();
    remove_image(&engine, &image).await.unwrap();

    // Missing: pulled, and the progress comes first in the log.
    let ran = run_step(&engine, &spec, &spec.steps[0], &cancel)
        .await
        .unwrap();
    assert_eq!(ran.exit.exit_code, 0);
    assert!(ran.log.ends_with("\npulled\n"), "{}", ran.log);
    assert!(
        ran.log.starts_with("1: Pulling from runnerkit/pulled\n"),
        "{}",
        ran.log
    );
    assert!(
        ran.log
            .contains(&format!("Status: Downloaded newer image for {image}")),
        "{}",
        ran.log
    );
    let pulls = manifests(&registry);
    assert!(pulls >= 1);

    // Present now: `if-not-exists` and the default (tag not `latest`) do not pull.
    for step in &spec.steps[1..3] {
        let ran = run_step(&engine, &spec, step, &cancel).await.unwrap();
        assert_eq!(ran.log, "pulled\n", "step {}", step.name);
    }
    assert_eq!(manifests(&registry), pulls, "no pull for a present image");

    // `always` asks the registry again; with pull progress off, the step's
    // own output is all its log holds.
    // An engine knows only the stages it set up: `quiet` sets up its own.
    let quiet = docker_or_skip().await.unwrap().with_pull_progress(false);
    let again = common::spec("pulled-again", vec![spec.steps[3].clone()]);
    quiet.setup(&again, &cancel).await.unwrap();
    let ran = run_step(&quiet, &again, &again.steps[0], &cancel)
        .await
        .unwrap();
    assert_eq!(ran.log, "pulled\n");
    assert!(manifests(&registry) > pulls, "always pulls");

    destroy_and_check(&quiet, &again).await;
    destroy_and_check(&engine, &spec).await;
    remove_image(&engine, &image).await.unwrap();
}

#[tokio::test]
async fn steps_made_ahead_with_one_missing_image_share_one_pull() {
    let Some(engine) = docker_unless_podman(PODMAN_PULLS_LOOPBACK_OVER_HTTPS).await else {
        return;
    };
    let registry = FakeRegistry::start(image_route()).await;
    let image = format!("{}/runnerkit/pulled:shared", registry.address);
    remove_image(&engine, &image).await.unwrap();
    let step = |name: &str| Step {
        image: image.clone(),
        pull: PullPolicy::IfNotExists,
        entrypoint: vec!["/bin/busybox".into(), "echo".into(), name.to_owned()],
        ..Step::named(name)
    };
    // All three are made ahead at setup, side by side.
    let spec = spec("shared-pull", vec![step("one"), step("two"), step("three")]);
    let ran = run_all(&engine, &spec).await;
    assert!(
        ran[0]
            .log
            .starts_with("shared: Pulling from runnerkit/pulled\n"),
        "the first step's log shows the pull: {}",
        ran[0].log
    );
    assert_eq!(ran[1].log, "two\n", "no second pull");
    assert_eq!(ran[2].log, "three\n", "no third pull");
    // Each pull asks for the manifest (only its digest, HEAD, when the
    // layers are cached): one ask, one pull.
    let manifests = registry
        .seen()
        .iter()
        .filter(|s| s.path.contains("/manifests/"))
        .count();
    assert_eq!(manifests, 1, "one pull: {:?}", registry.seen());
    destroy_and_check(&engine, &spec).await;
}

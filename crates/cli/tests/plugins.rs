//! End-to-end: the built `runnerkit daemon` with the three extension
//! plugins (`DRONE_SECRET_PLUGIN_*`, `DRONE_ENV_PLUGIN_*`,
//! `DRONE_REGISTRY_PLUGIN_*`) against the in-process Drone server and
//! in-process plugins that verify each request's signature.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runnerkit_core::Status;
use runnerkit_core::drone::Line;
use runnerkit_drone::testing::{
    DroneServer, ListAnswer, ListPluginServer, PluginAnswer, SecretPluginServer, ServerConfig,
    push_stage,
};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_runnerkit");
const TOKEN: &str = "plugin-token-hunter2-0123456789ab";

const PIPELINE: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: publish
  environment:
    USERNAME:
      from_secret: docker_username
  commands:
  - test \"$USERNAME\" = octo-vault-user
  - echo \"USERNAME=$USERNAME\"
  - test \"$HTTP_PROXY\" = http://proxy.example:3128
  - test \"$NPM_TOKEN\" = npm-t0ken-from-env-plugin
  - echo \"NPM_TOKEN=$NPM_TOKEN\"
---
kind: secret
name: docker_username
get:
  path: secret/data/docker
  name: username
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_asks_its_plugins() {
    let server = DroneServer::start(ServerConfig::default().with_long_poll(Duration::from_secs(5)))
        .await
        .unwrap();
    let plugin = SecretPluginServer::start(TOKEN).await.unwrap();
    plugin.set(
        "secret/data/docker",
        "username",
        PluginAnswer::Value("octo-vault-user".into()),
    );
    let environ = ListPluginServer::environ(TOKEN).await.unwrap();
    environ.set(ListAnswer::Json(json!([
        {"name": "HTTP_PROXY", "data": "http://proxy.example:3128"},
        {"name": "NPM_TOKEN", "data": "npm-t0ken-from-env-plugin", "mask": true},
    ])));
    let registry = ListPluginServer::registry(TOKEN).await.unwrap();
    registry.set(ListAnswer::Json(json!([
        {"address": "registry.example.com", "username": "octo", "password": "registry-pa55"},
    ])));
    let id = server.enqueue(push_stage(PIPELINE, "exec"));

    let mut cmd = Command::new(BIN);
    cmd.args(["daemon", "--type", "exec"])
        .env_clear()
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DRONE_HTTP_BIND", "127.0.0.1:0")
        .env("DRONE_RPC_HOST", server.host())
        .env("DRONE_RPC_SECRET", server.secret())
        .env("DRONE_DEBUG", "true")
        .env("DRONE_SECRET_PLUGIN_ENDPOINT", plugin.url())
        .env("DRONE_SECRET_PLUGIN_TOKEN", TOKEN)
        .env("DRONE_ENV_PLUGIN_ENDPOINT", environ.url())
        .env("DRONE_ENV_PLUGIN_TOKEN", TOKEN)
        .env("DRONE_REGISTRY_PLUGIN_ENDPOINT", registry.url())
        .env("DRONE_REGISTRY_PLUGIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();

    let started = Instant::now();
    let stage = loop {
        let stage = server.stage(id).unwrap();
        if stage.status.is_done() || started.elapsed() > Duration::from_secs(60) {
            break stage;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stage.status, Status::Success, "{stage:?}\n{stderr}");
    for plugin in ["secret", "environ", "registry"] {
        let said = format!("{plugin} plugin configured");
        assert!(stderr.contains(&said), "{stderr}");
    }
    for hidden in [
        "hunter2",
        "octo-vault-user",
        "npm-t0ken-from-env-plugin",
        "registry-pa55",
    ] {
        assert!(!stderr.contains(hidden), "{hidden} was logged:\n{stderr}");
    }

    let step = stage.steps.iter().find(|s| s.name == "publish").unwrap();
    let body = server.uploaded_log(step.id).expect("a log was uploaded");
    let lines: Vec<Line> = serde_json::from_slice(&body).unwrap();
    assert!(
        lines.iter().any(|l| l.out == "USERNAME=******\n"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.out == "NPM_TOKEN=******\n"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.out.contains("octo-vault-user")));
    assert_eq!(plugin.requests().len(), 1);
    assert!(plugin.refused().is_empty(), "{:?}", plugin.refused());
    assert_eq!(environ.requests().len(), 1);
    assert_eq!(registry.requests().len(), 1);
}

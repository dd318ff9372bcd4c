//! The secret extension plugin end to end: a stage from the in-process Drone
//! server whose file has `kind: secret` documents with `get`, run on the
//! host engine, the values fetched from an in-process plugin that verifies
//! each request's signature (`runnerkit_drone::testing::SecretPluginServer`)
//! through the real HTTP client (`runnerkit_drone::SecretPlugin`).

mod common;

use std::sync::Arc;

use runnerkit_core::Status;
use runnerkit_core::drone::Secret;
use runnerkit_drone::SecretPlugin;
use runnerkit_drone::testing::{PluginAnswer, SecretPluginServer, push_stage};
use runnerkit_runner::{RunnerConfig, StageOutcome};

use common::Rig;

const TOKEN: &str = "plugin-token-0123456789abcdef0123";
const VALUE: &str = "vault-v4lue-of-the-day";

/// The rig with a secret plugin that verifies signatures.
struct PluginRig {
    rig: Rig,
    plugin: SecretPluginServer,
}

impl std::ops::Deref for PluginRig {
    type Target = Rig;

    fn deref(&self) -> &Rig {
        &self.rig
    }
}

async fn rig() -> PluginRig {
    let plugin = SecretPluginServer::start(TOKEN).await.unwrap();
    let client = SecretPlugin::new(&plugin.url(), TOKEN, false).unwrap();
    let rig = Rig::start(RunnerConfig {
        secret_plugin: Some(Arc::new(client)),
        ..common::config()
    })
    .await;
    PluginRig { rig, plugin }
}

const PIPELINE: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: publish
  environment:
    TOKEN:
      from_secret: docker_username
    OTHER:
      from_secret: missing_one
  commands:
  - test \"$TOKEN\" = \"vault-v4lue-of-the-day\"
  - test -z \"$OTHER\"
  - echo \"TOKEN=$TOKEN\"
---
kind: secret
name: docker_username
get:
  path: secret/data/docker
  name: username
---
kind: secret
name: missing_one
get:
  path: secret/data/docker
  name: nothing-here
---
kind: secret
name: unused_here
get:
  path: secret/data/broken
  name: anything
";

/// A secret the plugin does not have is unset, with a warning, as any
/// secret not found.
const MISSING_WARNING: &str =
    "[runnerkit] warning: secret \"missing_one\" not found: OTHER is not set";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_secret_reaches_the_step_and_is_masked() {
    let rig = rig().await;
    rig.plugin.set(
        "secret/data/docker",
        "username",
        PluginAnswer::Value(VALUE.into()),
    );
    // No step uses `unused_here`: it is not asked for, so its error
    // cannot fail the stage.
    rig.plugin.set(
        "secret/data/broken",
        "anything",
        PluginAnswer::Status(500, "would fail the stage".into()),
    );
    let (id, outcome) = rig.run(push_stage(PIPELINE, "exec")).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    assert_eq!(
        rig.uploaded(id, "publish"),
        [MISSING_WARNING, "TOKEN=******"],
        "the step saw the value (its `test` passed) and its log masks it"
    );
    assert!(
        rig.plugin.refused().is_empty(),
        "{:?}",
        rig.plugin.refused()
    );
    let mut asked: Vec<(String, String, String, i64)> = rig
        .plugin
        .requests()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
                r["repo"]["slug"].as_str().unwrap().to_owned(),
                r["build"]["number"].as_i64().unwrap(),
            )
        })
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            (
                "secret/data/docker".into(),
                "nothing-here".into(),
                "octo/hello".into(),
                7
            ),
            (
                "secret/data/docker".into(),
                "username".into(),
                "octo/hello".into(),
                7
            ),
        ]
    );
    for request in rig.server.requests() {
        assert!(!String::from_utf8_lossy(&request.body).contains(VALUE));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_secret_comes_first_and_the_plugin_is_not_asked() {
    let rig = rig().await;
    rig.plugin.set(
        "secret/data/docker",
        "username",
        PluginAnswer::Value("the-plugins-value".into()),
    );
    let mut details = push_stage(PIPELINE, "exec");
    details.secrets = vec![Secret {
        name: "docker_username".into(),
        data: VALUE.into(),
        ..Secret::default()
    }];
    let (id, outcome) = rig.run(details).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    assert_eq!(
        rig.uploaded(id, "publish"),
        [MISSING_WARNING, "TOKEN=******"]
    );
    let names: Vec<String> = rig
        .plugin
        .requests()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["nothing-here"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_error_fails_the_stage_naming_the_secret() {
    let rig = rig().await;
    rig.plugin.set(
        "secret/data/docker",
        "username",
        PluginAnswer::Status(500, "vault is sealed".into()),
    );
    let (id, outcome) = rig.run(push_stage(PIPELINE, "exec")).await;
    let StageOutcome::Refused(msg) = outcome else {
        panic!("unexpected {outcome:?}");
    };
    let msg = msg.to_string();
    assert!(msg.contains("\"docker_username\""), "{msg}");
    assert!(msg.contains("vault is sealed"), "{msg}");
    let stage = rig.server.stage(id).unwrap();
    assert_eq!(stage.status, Status::Error);
    assert!(stage.error.contains("docker_username"), "{}", stage.error);
}

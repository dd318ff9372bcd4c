//! The registry and environ extension plugins end to end: stages from the
//! in-process Drone server run on the host engine, with in-process plugins
//! that verify each request's signature
//! (`runnerkit_drone::testing::ListPluginServer`) asked through the real
//! HTTP clients (`runnerkit_drone::{RegistryPlugin, EnvironPlugin}`). An
//! engine wrapper records the compiled spec the runner hands over, so the
//! registry credentials (which an exec pipeline cannot pull with) and the
//! masked values can be checked where they are used.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use runnerkit_core::drone;
use runnerkit_core::{RegistryAuth, Spec, Status};
use runnerkit_drone::testing::{ListAnswer, ListPluginServer, push_stage};
use runnerkit_drone::{EnvironPlugin, RegistryPlugin};
use runnerkit_local::LocalEngine;
use runnerkit_manifest::StaticRegistries;
use runnerkit_mock::Recorded;
use runnerkit_runner::{RunnerConfig, StageOutcome};
use serde_json::json;

use common::Rig;

const TOKEN: &str = "plugin-token-0123456789abcdef0123";
const MASKED: &str = "m4sked-plugin-v4lue";

/// The host engine, keeping the spec of every stage it sets up.
type Recording = Recorded<LocalEngine>;

fn recording() -> Arc<Recording> {
    Arc::new(Recorded::new(
        LocalEngine::new().with_kill_grace(std::time::Duration::from_secs(1)),
    ))
}

/// The one spec `engine` set up.
fn one_spec(engine: &Recording) -> Spec {
    let specs = engine.specs();
    assert_eq!(specs.len(), 1, "one stage set up");
    specs[0].clone()
}

/// A runner with both plugins (and `config`'s other settings) on the
/// recording host engine.
struct PluginRig {
    rig: Rig,
    registry: ListPluginServer,
    environ: ListPluginServer,
    engine: Arc<Recording>,
}

async fn rig_with(config: RunnerConfig) -> PluginRig {
    let registry = ListPluginServer::registry(TOKEN).await.unwrap();
    let environ = ListPluginServer::environ(TOKEN).await.unwrap();
    let config = RunnerConfig {
        registry_plugin: Some(Arc::new(
            RegistryPlugin::new(&registry.url(), TOKEN, false).unwrap(),
        )),
        environ_plugin: Some(Arc::new(
            EnvironPlugin::new(&environ.url(), TOKEN, false).unwrap(),
        )),
        ..config
    };
    let engine = recording();
    let rig = Rig::start_on(config, engine.clone()).await;
    PluginRig {
        rig,
        registry,
        environ,
        engine,
    }
}

async fn rig() -> PluginRig {
    rig_with(common::config()).await
}

const PIPELINE: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: build
  commands:
  - test \"$FROM_PLUGIN\" = plugin-value
  - test \"$OVERRIDDEN\" = by-the-plugin
  - test \"$PARAM\" = from-the-build
  - test \"$NPM_TOKEN\" = m4sked-plugin-v4lue
  - echo \"plain=$FROM_PLUGIN\"
  - echo \"token=$NPM_TOKEN\"
  - echo \"subst=${FROM_PLUGIN}\"
";

fn variables() -> serde_json::Value {
    json!([
        {"name": "FROM_PLUGIN", "data": "plugin-value", "mask": false},
        {"name": "OVERRIDDEN", "data": "by-the-plugin", "mask": false},
        {"name": "PARAM", "data": "the-plugin-loses", "mask": false},
        {"name": "NPM_TOKEN", "data": MASKED, "mask": true}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environ_plugin_variables_reach_the_step_and_masked_ones_are_masked() {
    let rig = rig_with(RunnerConfig {
        environ: BTreeMap::from([
            ("OVERRIDDEN".to_owned(), "by-the-runner".to_owned()),
            ("RUNNER_ONLY".to_owned(), "kept".to_owned()),
        ]),
        ..common::config()
    })
    .await;
    rig.environ.set(ListAnswer::Json(variables()));
    let mut details = push_stage(PIPELINE, "exec");
    details.repository.secret = "repository-key-never-sent".into();
    details.build.params = BTreeMap::from([("PARAM".to_owned(), "from-the-build".to_owned())]);
    let (id, outcome) = rig.rig.run(details).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    assert_eq!(
        rig.rig.uploaded(id, "build"),
        ["plain=plugin-value", "token=******", "subst=plugin-value"],
        "the step saw every value (its `test`s passed); the masked one is masked"
    );
    // The compiled spec: unmasked values are runner globals, the masked one
    // a secret of every step, masked.
    let spec = one_spec(&rig.engine);
    let step = &spec.steps[0];
    assert_eq!(step.environment["FROM_PLUGIN"], "plugin-value");
    assert_eq!(step.environment["RUNNER_ONLY"], "kept");
    assert!(!step.environment.contains_key("NPM_TOKEN"));
    assert!(
        step.secrets
            .iter()
            .any(|s| s.env == "NPM_TOKEN" && s.value == MASKED && s.mask)
    );
    assert!(spec.masked_values().any(|v| v == MASKED));
    // One signed request per stage, with the repository and the build.
    assert!(
        rig.environ.refused().is_empty(),
        "{:?}",
        rig.environ.refused()
    );
    let requests = rig.environ.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["repo"]["slug"], "octo/hello");
    assert_eq!(requests[0]["build"]["number"], 7);
    assert!(
        !requests[0]
            .to_string()
            .contains("repository-key-never-sent")
    );
    // The masked value never reaches the server, in clear.
    for request in rig.rig.server.requests() {
        assert!(!String::from_utf8_lossy(&request.body).contains(MASKED));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steps_own_secret_wins_over_a_masked_global() {
    let rig = rig().await;
    rig.environ.set(ListAnswer::Json(json!([
        {"name": "NPM_TOKEN", "data": MASKED, "mask": true}
    ])));
    let yaml = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: build
  environment:
    NPM_TOKEN:
      from_secret: npm
  commands:
  - test \"$NPM_TOKEN\" = the-servers-npm-token
";
    let mut details = push_stage(yaml, "exec");
    details.secrets = vec![drone::Secret {
        name: "npm".into(),
        data: "the-servers-npm-token".into(),
        ..drone::Secret::default()
    }];
    let (_, outcome) = rig.rig.run(details).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    // Both values are masked still.
    let spec = one_spec(&rig.engine);
    let masked: Vec<&str> = spec.masked_values().collect();
    assert!(masked.contains(&MASKED), "{}", masked.len());
    assert!(masked.contains(&"the-servers-npm-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environ_plugin_error_fails_the_stage_naming_the_plugin() {
    let rig = rig().await;
    rig.environ
        .set(ListAnswer::Status(500, "env store unavailable".into()));
    refused_naming(&rig, PIPELINE, "environ plugin", "env store unavailable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_plugin_credentials_reach_the_spec_after_the_runners_own() {
    let own = RegistryAuth {
        address: "registry.example.com".into(),
        username: "runner".into(),
        password: "runner-pa55".into(),
    };
    let rig = rig_with(RunnerConfig {
        registries: Some(Arc::new(StaticRegistries(vec![own.clone()]))),
        ..common::config()
    })
    .await;
    rig.registry.set(ListAnswer::Json(json!([
        {
            "address": "registry.example.com",
            "username": "plugin",
            "password": "plugin-pa55",
            "email": "",
            "token": "",
            "policy": "pull"
        },
        {"address": "ghcr.io", "username": "bot", "password": "ghp_x"}
    ])));
    let (_, outcome) = rig.rig.run(push_stage(PIPELINE_PLAIN, "exec")).await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    assert_eq!(
        one_spec(&rig.engine).registries,
        [
            own,
            RegistryAuth {
                address: "registry.example.com".into(),
                username: "plugin".into(),
                password: "plugin-pa55".into(),
            },
            RegistryAuth {
                address: "ghcr.io".into(),
                username: "bot".into(),
                password: "ghp_x".into(),
            },
        ],
        "the runner's own credentials first: the first match wins"
    );
    assert!(rig.registry.refused().is_empty());
    let requests = rig.registry.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["repo"]["slug"], "octo/hello");
    assert_eq!(requests[0]["build"]["number"], 7);
    // Without variables from the environ plugin (204), nothing changes.
    assert_eq!(rig.environ.requests().len(), 1);
}

const PIPELINE_PLAIN: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: build
  commands:
  - echo ok
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_plugin_error_fails_the_stage_naming_the_plugin() {
    let rig = rig().await;
    rig.registry
        .set(ListAnswer::Status(403, "repository not allowed".into()));
    refused_naming(
        &rig,
        PIPELINE_PLAIN,
        "registry plugin",
        "repository not allowed",
    )
    .await;
}

/// Runs `pipeline`, which must be refused before anything runs: reported
/// `error`, with a message naming `plugin` and holding what it `said`.
async fn refused_naming(rig: &PluginRig, pipeline: &str, plugin: &str, said: &str) {
    let (id, outcome) = rig.rig.run(push_stage(pipeline, "exec")).await;
    let StageOutcome::Refused(msg) = outcome else {
        panic!("unexpected {outcome:?}");
    };
    let msg = msg.to_string();
    assert!(msg.contains(plugin), "{msg}");
    assert!(msg.contains(said), "{msg}");
    let stage = rig.rig.server.stage(id).unwrap();
    assert_eq!(stage.status, Status::Error);
    assert!(stage.error.contains(plugin), "{}", stage.error);
    assert!(rig.engine.specs().is_empty(), "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_with_another_token_fails_the_stage() {
    let registry = ListPluginServer::registry("the-plugins-own-token")
        .await
        .unwrap();
    let rig = Rig::start(RunnerConfig {
        registry_plugin: Some(Arc::new(
            RegistryPlugin::new(&registry.url(), TOKEN, false).unwrap(),
        )),
        ..common::config()
    })
    .await;
    let (_, outcome) = rig.run(push_stage(PIPELINE_PLAIN, "exec")).await;
    let StageOutcome::Refused(msg) = outcome else {
        panic!("unexpected {outcome:?}");
    };
    let msg = msg.to_string();
    assert!(msg.contains("registry plugin answered 401"), "{msg}");
    assert!(!msg.contains(TOKEN), "{msg}");
    assert_eq!(
        registry.refused(),
        vec![(401, "invalid signature".to_owned())]
    );
}

/// A secret's value that reached a step's image through substitution (here
/// a runner variable holding the same value) is masked in the step the
/// server registers (its `image` field), as in every other text sent: the
/// page and the server show `******`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_substituted_into_an_image_reaches_the_server_masked() {
    const VALUE: &str = "s3cret-in-the-image";
    let config = RunnerConfig {
        environ: BTreeMap::from([("REGISTRY_PATH".to_owned(), VALUE.to_owned())]),
        ..common::config()
    };
    let engine = Arc::new(Recorded::new(runnerkit_mock::MockEngine::new()));
    let rig = Rig::start_on(config, engine.clone()).await;
    let yaml = "\
kind: pipeline
type: docker
name: default
clone:
  disable: true
steps:
- name: build
  image: registry.example/${REGISTRY_PATH}:1
  environment:
    TOKEN:
      from_secret: token
  commands:
  - 'true'
";
    let mut details = push_stage(yaml, "docker");
    details.secrets = vec![drone::Secret {
        name: "token".into(),
        data: VALUE.into(),
        ..drone::Secret::default()
    }];
    let (id, outcome) = rig.run_typed(details, "docker").await;
    assert_eq!(outcome, StageOutcome::Ran(Status::Success));
    let specs = engine.specs();
    assert_eq!(
        specs[0].steps[0].image,
        format!("registry.example/{VALUE}:1"),
        "the engine gets the real image"
    );
    let stage = rig.server.stage(id).expect("the stage");
    assert_eq!(stage.steps[0].image, "registry.example/******:1");
    for request in rig.server.requests() {
        let body = String::from_utf8_lossy(&request.body);
        assert!(
            !body.contains(VALUE),
            "{} {} carried the secret: {body}",
            request.method,
            request.path
        );
    }
}

//! The extension plugin clients (secret, registry, environ) against
//! in-process plugins that verify the digest and the signature as real ones
//! do.

use runnerkit_core::PluginVariable;
use runnerkit_core::RegistryAuth;
use runnerkit_core::drone::{Build, Repo};
use runnerkit_drone::testing::{ListAnswer, ListPluginServer, PluginAnswer, SecretPluginServer};
use runnerkit_drone::{EnvironPlugin, Error, RegistryPlugin, SecretPlugin};
use serde_json::json;

/// 32 bytes and more: also the AES-256-GCM key of encrypted answers.
const TOKEN: &str = "0123456789abcdef0123456789abcdef-and-more";

fn repo() -> Repo {
    Repo {
        slug: "octocat/hello-world".into(),
        namespace: "octocat".into(),
        name: "hello-world".into(),
        secret: "repository-key-never-sent".into(),
        ..Repo::default()
    }
}

fn build() -> Build {
    Build {
        number: 42,
        ..Build::default()
    }
}

async fn setup() -> (SecretPluginServer, SecretPlugin) {
    let server = SecretPluginServer::start(TOKEN)
        .await
        .expect("plugin starts");
    server.set(
        "secret/data/docker",
        "username",
        PluginAnswer::Value("octocat".into()),
    );
    server.set("secret/data/docker", "empty", PluginAnswer::EmptyData);
    server.set("secret/data/docker", "gone", PluginAnswer::NoContent);
    server.set(
        "secret/data/docker",
        "missing",
        PluginAnswer::Status(404, "secret not found: secret/data/docker\n".into()),
    );
    server.set(
        "secret/data/docker",
        "broken",
        PluginAnswer::Status(500, String::new()),
    );
    let client = SecretPlugin::new(&server.url(), TOKEN, false).expect("client");
    (server, client)
}

#[tokio::test]
async fn finds_a_value_and_sends_the_request_fields() {
    let (server, client) = setup().await;
    let found = client
        .find("secret/data/docker", "username", &repo(), &build())
        .await
        .expect("found");
    assert_eq!(found.as_deref(), Some("octocat"));
    assert!(server.refused().is_empty(), "{:?}", server.refused());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0];
    assert_eq!(body["path"], "secret/data/docker");
    assert_eq!(body["name"], "username");
    assert_eq!(body["repo"]["slug"], "octocat/hello-world");
    assert_eq!(body["repo"]["namespace"], "octocat");
    assert_eq!(body["build"]["number"], 42);
    // The repository's encryption key is none of the plugin's business.
    assert!(!body.to_string().contains("repository-key-never-sent"));
}

#[tokio::test]
async fn no_content_empty_data_and_unknown_secrets_are_not_found() {
    let (server, client) = setup().await;
    for name in ["gone", "empty", "never-configured"] {
        let found = client
            .find("secret/data/docker", name, &repo(), &build())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(found, None, "{name}");
    }
    assert_eq!(server.requests().len(), 3);
    assert!(server.refused().is_empty());
}

#[tokio::test]
async fn refusals_carry_the_body_or_the_reason_phrase() {
    let (_server, client) = setup().await;
    let err = client
        .find("secret/data/docker", "missing", &repo(), &build())
        .await
        .expect_err("404");
    match &err {
        Error::PluginRefused {
            status, message, ..
        } => {
            assert_eq!(*status, 404);
            assert_eq!(message, "secret not found: secret/data/docker");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("secret not found"), "{err}");

    let err = client
        .find("secret/data/docker", "broken", &repo(), &build())
        .await
        .expect_err("500");
    match err {
        Error::PluginRefused {
            status, message, ..
        } => {
            assert_eq!(status, 500);
            assert_eq!(message, "Internal Server Error");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_fails_the_signature_check() {
    let (server, _) = setup().await;
    let client = SecretPlugin::new(&server.url(), "not-the-token", false).expect("client");
    let err = client
        .find("secret/data/docker", "username", &repo(), &build())
        .await
        .expect_err("refused");
    assert_bad_signature(&err, server.refused(), server.requests().len(), "");
}

/// What a client with the wrong token gets: 401 from the plugin's signature
/// check (the digest was right: it was the signature that failed), nothing
/// accepted, and the token in no message (`shown` adds the client's Debug).
fn assert_bad_signature(err: &Error, refused: Vec<(u16, String)>, accepted: usize, shown: &str) {
    assert!(
        matches!(err, Error::PluginRefused { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(refused, vec![(401, "invalid signature".to_owned())]);
    assert_eq!(accepted, 0);
    assert!(!format!("{err} {err:?} {shown}").contains("not-the-token"));
}

#[tokio::test]
async fn encrypted_answers_are_decrypted() {
    let (server, _) = setup().await;
    let client = SecretPlugin::new(&server.encrypted_url(), TOKEN, false).expect("client");
    let found = client
        .find("secret/data/docker", "username", &repo(), &build())
        .await
        .expect("found");
    assert_eq!(found.as_deref(), Some("octocat"));
    let found = client
        .find("secret/data/docker", "empty", &repo(), &build())
        .await
        .expect("empty");
    assert_eq!(found, None);
}

#[tokio::test]
async fn an_encrypted_answer_needs_a_32_byte_token() {
    // The plugin shares a short token: it cannot encrypt, so it refuses.
    let server = SecretPluginServer::start("short").await.expect("plugin");
    server.set("p", "n", PluginAnswer::Value("v".into()));
    let client = SecretPlugin::new(&server.encrypted_url(), "short", false).expect("client");
    let err = client
        .find("p", "n", &repo(), &build())
        .await
        .expect_err("500");
    assert!(
        matches!(err, Error::PluginRefused { status: 500, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_plugin_is_a_transport_error() {
    let server = SecretPluginServer::start(TOKEN).await.expect("plugin");
    let url = server.url();
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let client = SecretPlugin::new(&url, TOKEN, false).expect("client");
    let err = client
        .find("p", "n", &repo(), &build())
        .await
        .expect_err("unreachable");
    assert!(matches!(err, Error::PluginTransport { .. }), "{err:?}");
}

// --- The registry plugin ---

async fn registry_setup() -> (ListPluginServer, RegistryPlugin) {
    let server = ListPluginServer::registry(TOKEN).await.expect("plugin");
    let client = RegistryPlugin::new(&server.url(), TOKEN, false).expect("client");
    (server, client)
}

fn registries() -> serde_json::Value {
    json!([
        {
            "address": "registry.example.com:5000",
            "username": "octocat",
            "password": "registry-pa55",
            "email": "octocat@example.com",
            "token": "",
            "policy": "pull"
        },
        {"address": "ghcr.io", "username": "bot", "password": "ghp_x"}
    ])
}

#[tokio::test]
async fn registry_credentials_are_parsed_and_the_request_is_repo_and_build() {
    let (server, client) = registry_setup().await;
    server.set(ListAnswer::Json(registries()));
    let found = client.list(&repo(), &build()).await.expect("listed");
    assert_eq!(
        found,
        [
            RegistryAuth {
                address: "registry.example.com:5000".into(),
                username: "octocat".into(),
                password: "registry-pa55".into(),
            },
            RegistryAuth {
                address: "ghcr.io".into(),
                username: "bot".into(),
                password: "ghp_x".into(),
            },
        ]
    );
    assert!(server.refused().is_empty(), "{:?}", server.refused());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0];
    let mut keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["build", "repo"]);
    assert_eq!(body["repo"]["slug"], "octocat/hello-world");
    assert_eq!(body["build"]["number"], 42);
    assert!(!body.to_string().contains("repository-key-never-sent"));
}

#[tokio::test]
async fn registry_no_content_null_and_empty_lists_are_no_credentials() {
    let (server, client) = registry_setup().await;
    // Nothing set: 204.
    assert!(
        client
            .list(&repo(), &build())
            .await
            .expect("204")
            .is_empty()
    );
    for answer in [
        ListAnswer::NoContent,
        ListAnswer::Json(json!(null)),
        ListAnswer::Json(json!([])),
    ] {
        server.set(answer.clone());
        let found = client.list(&repo(), &build()).await;
        assert!(found.expect("empty").is_empty(), "{answer:?}");
    }
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn registry_refusals_and_invalid_answers_are_typed_errors() {
    let (server, client) = registry_setup().await;
    server.set(ListAnswer::Status(403, "repository not allowed\n".into()));
    let err = client.list(&repo(), &build()).await.expect_err("403");
    match &err {
        Error::PluginRefused {
            plugin,
            status,
            message,
        } => {
            assert_eq!((*plugin, *status), ("registry", 403));
            assert_eq!(message, "repository not allowed");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the registry plugin answered 403: repository not allowed"
    );
    server.set(ListAnswer::Status(502, String::new()));
    let err = client.list(&repo(), &build()).await.expect_err("502");
    assert!(err.to_string().ends_with("502: Bad Gateway"), "{err}");
    server.set(ListAnswer::Json(json!({"address": "not-a-list"})));
    let err = client.list(&repo(), &build()).await.expect_err("object");
    assert!(
        matches!(
            err,
            Error::PluginAnswer {
                plugin: "registry",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn registry_a_wrong_token_fails_the_signature_check() {
    let (server, _) = registry_setup().await;
    server.set(ListAnswer::Json(registries()));
    let client = RegistryPlugin::new(&server.url(), "not-the-token", false).expect("client");
    let err = client.list(&repo(), &build()).await.expect_err("refused");
    let shown = format!("{client:?}");
    assert_bad_signature(&err, server.refused(), server.requests().len(), &shown);
}

#[tokio::test]
async fn each_plugin_sends_its_own_accept() {
    // A registry plugin refuses the environ client's Accept, and so on:
    // the Accept is signed, and checked.
    let registry = ListPluginServer::registry(TOKEN).await.expect("plugin");
    let environ = ListPluginServer::environ(TOKEN).await.expect("plugin");
    let secret = SecretPluginServer::start(TOKEN).await.expect("plugin");
    let wrong_environ = EnvironPlugin::new(&registry.url(), TOKEN, false).expect("client");
    let wrong_registry = RegistryPlugin::new(&environ.url(), TOKEN, false).expect("client");
    let wrong_secret = RegistryPlugin::new(&secret.url(), TOKEN, false).expect("client");
    for err in [
        wrong_environ.list(&repo(), &build()).await.map(|_| ()),
        wrong_registry.list(&repo(), &build()).await.map(|_| ()),
        wrong_secret.list(&repo(), &build()).await.map(|_| ()),
    ] {
        let err = err.expect_err("refused");
        assert!(
            matches!(err, Error::PluginRefused { status: 400, .. }),
            "{err:?}"
        );
    }
    for refused in [registry.refused(), environ.refused(), secret.refused()] {
        assert_eq!(refused, vec![(400, "unexpected Accept".to_owned())]);
    }
}

#[tokio::test]
async fn registry_encrypted_answers_are_decrypted() {
    let server = ListPluginServer::registry(TOKEN).await.expect("plugin");
    server.set(ListAnswer::Json(registries()));
    let client = RegistryPlugin::new(&server.encrypted_url(), TOKEN, false).expect("client");
    let found = client.list(&repo(), &build()).await.expect("listed");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].password, "registry-pa55");
}

// --- The environ plugin ---

async fn environ_setup() -> (ListPluginServer, EnvironPlugin) {
    let server = ListPluginServer::environ(TOKEN).await.expect("plugin");
    let client = EnvironPlugin::new(&server.url(), TOKEN, false).expect("client");
    (server, client)
}

#[tokio::test]
async fn environ_variables_are_parsed_with_their_mask_flags() {
    let (server, client) = environ_setup().await;
    server.set(ListAnswer::Json(json!([
        {"name": "GOPROXY", "data": "https://proxy.example.com", "mask": false},
        {"name": "NPM_TOKEN", "data": "npm-s3cret", "mask": true},
        {"name": "PLAIN", "data": "no-mask-field"}
    ])));
    let found = client.list(&repo(), &build()).await.expect("listed");
    assert_eq!(
        found,
        [
            PluginVariable::new("GOPROXY", "https://proxy.example.com", false),
            PluginVariable::new("NPM_TOKEN", "npm-s3cret", true),
            PluginVariable::new("PLAIN", "no-mask-field", false),
        ]
    );
    // Debug hides masked values.
    let debug = format!("{found:?}");
    assert!(!debug.contains("npm-s3cret"), "{debug}");
    assert!(debug.contains("https://proxy.example.com"), "{debug}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["repo"]["namespace"], "octocat");
    assert_eq!(requests[0]["build"]["number"], 42);
    assert!(
        !requests[0]
            .to_string()
            .contains("repository-key-never-sent")
    );
    assert!(server.refused().is_empty());
}

#[tokio::test]
async fn environ_no_content_is_no_variables_and_errors_carry_the_plugins_text() {
    let (server, client) = environ_setup().await;
    assert!(
        client
            .list(&repo(), &build())
            .await
            .expect("204")
            .is_empty()
    );
    server.set(ListAnswer::Status(500, "env store unavailable".into()));
    let err = client.list(&repo(), &build()).await.expect_err("500");
    assert_eq!(
        err.to_string(),
        "the environ plugin answered 500: env store unavailable"
    );
    server.set(ListAnswer::Json(json!([{"name": "X", "data": 3}])));
    let err = client
        .list(&repo(), &build())
        .await
        .expect_err("not a string");
    assert!(
        matches!(
            err,
            Error::PluginAnswer {
                plugin: "environ",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn environ_a_wrong_token_fails_the_signature_check() {
    let (server, _) = environ_setup().await;
    let client = EnvironPlugin::new(&server.url(), "not-the-token", false).expect("client");
    let err = client.list(&repo(), &build()).await.expect_err("refused");
    let shown = format!("{client:?}");
    assert_bad_signature(&err, server.refused(), server.requests().len(), &shown);
}

#[tokio::test]
async fn environ_encrypted_answers_are_decrypted() {
    let server = ListPluginServer::environ(TOKEN).await.expect("plugin");
    server.set(ListAnswer::Json(
        json!([{"name": "A", "data": "b", "mask": true}]),
    ));
    let client = EnvironPlugin::new(&server.encrypted_url(), TOKEN, false).expect("client");
    let found = client.list(&repo(), &build()).await.expect("listed");
    assert_eq!(found, [PluginVariable::new("A", "b", true)]);
}

#[tokio::test]
async fn settings_are_named_per_plugin() {
    assert!(matches!(
        RegistryPlugin::new("", "t", false),
        Err(Error::MissingSetting {
            name: "DRONE_REGISTRY_PLUGIN_ENDPOINT"
        })
    ));
    assert!(matches!(
        EnvironPlugin::new("http://x", "", false),
        Err(Error::MissingSetting {
            name: "DRONE_ENV_PLUGIN_TOKEN"
        })
    ));
    assert!(matches!(
        EnvironPlugin::new("ftp://x", "t", false),
        Err(Error::InvalidSetting {
            name: "DRONE_ENV_PLUGIN_ENDPOINT",
            ..
        })
    ));
    let client =
        RegistryPlugin::new("https://u:pw@registry-plugin.example/", "tok", true).expect("client");
    assert_eq!(
        client.endpoint(),
        "https://u:******@registry-plugin.example/"
    );
    assert!(!format!("{client:?}").contains("pw@"));
}

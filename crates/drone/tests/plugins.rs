//! The secret plugin client against an in-process plugin that verifies the
//! digest and the signature as a real one does.

use runnerkit_core::drone::{Build, Repo};
use runnerkit_drone::testing::{PluginAnswer, SecretPluginServer};
use runnerkit_drone::{Error, SecretPlugin};

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
        Error::PluginRefused { status, message } => {
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
        Error::PluginRefused { status, message } => {
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
    assert!(
        matches!(err, Error::PluginRefused { status: 401, .. }),
        "{err:?}"
    );
    // The digest was right: it was the signature that failed.
    assert_eq!(
        server.refused(),
        vec![(401, "invalid signature".to_owned())]
    );
    assert!(server.requests().is_empty());
    // The token is never part of the error.
    assert!(!format!("{err} {err:?}").contains("not-the-token"));
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

//! [`SecretPluginServer`] and [`ListPluginServer`]: in-process secret,
//! registry and environ plugins that check requests the way real ones
//! (e.g. drone-vault) do, for testing runners.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use runnerkit_core::CancellationToken;
use serde_json::Value;
use tokio::net::TcpListener;

use super::{ENVIRON_ACCEPT, REGISTRY_ACCEPT, SECRET_ACCEPT};
use crate::testing::lock;

/// Requests whose `Date` is further than this from now are refused.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// What the fake plugin answers for one `(path, name)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginAnswer {
    /// 200 with `{"name": <name>, "data": <value>}`.
    Value(String),
    /// 200 with `{"name": <name>, "data": ""}`: a secret without a value.
    EmptyData,
    /// 204, no body: not found.
    NoContent,
    /// This status with this body as `text/plain`.
    Status(u16, String),
}

/// What a fake registry or environ plugin ([`ListPluginServer`]) answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ListAnswer {
    /// 200 with this JSON body: for a registry plugin an array of
    /// `{"address","username","password","email","token","policy"}`, for
    /// an environ plugin an array of `{"name","data","mask"}` (or anything
    /// else, to test clients with).
    Json(Value),
    /// 204, no body: nothing to give.
    NoContent,
    /// This status with this body as `text/plain`.
    Status(u16, String),
}

/// An in-process secret plugin on `127.0.0.1`, for testing clients of the
/// secret extension (reference §10). Stopped when dropped.
///
/// Like a real plugin it **verifies every request** before answering:
///
/// - `Accept` must be `application/vnd.drone.secret.v1+json`,
///   `Accept-Encoding` `identity`, `Content-Type` `application/json`, `Digest`
///   must be `SHA-256=<base64 sha256 of the body>`, the body must be JSON:
///   otherwise 400.
/// - `Signature` must name `keyId="hmac-key"`, `algorithm="hmac-sha256"`, a
///   `headers` list with at least `date` and `digest`, and a signature that
///   is the HMAC-SHA256, keyed with the server's token, of the signing string
///   rebuilt from the request's own headers; `Date` must be within five
///   minutes of now: otherwise 401.
///
/// Verified requests are answered from a table of `(path, name)` ⇒
/// [`PluginAnswer`] (204 when absent) and their bodies kept
/// ([`requests`](Self::requests)); refusals are counted
/// ([`refused`](Self::refused)). [`url`](Self::url) answers in clear,
/// [`encrypted_url`](Self::encrypted_url) answers 2xx bodies with
/// `Content-Encoding: aesgcm` (12-byte nonce ‖ AES-256-GCM ciphertext,
/// key = first 32 bytes of the token, which must then be that long).
#[derive(Debug)]
pub struct SecretPluginServer {
    server: Server,
}

/// An in-process registry or environ plugin on `127.0.0.1`, for testing
/// clients of those extensions (reference §10). Stopped when dropped.
///
/// It verifies every request exactly as [`SecretPluginServer`] does, with
/// the `Accept` of its kind: `application/vnd.drone.registry.v1+json`
/// ([`registry`](Self::registry)) or `application/vnd.drone.env.v2+json`
/// ([`environ`](Self::environ)). Verified requests (`{"repo","build"}`) are
/// all answered with the one [`ListAnswer`] [`set`](Self::set) (204 until
/// then), in clear at [`url`](Self::url) or `aesgcm`-encrypted at
/// [`encrypted_url`](Self::encrypted_url).
#[derive(Debug)]
pub struct ListPluginServer {
    server: Server,
}

/// The listening plugin, whichever its kind.
#[derive(Debug)]
struct Server {
    address: std::net::SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

#[derive(Debug)]
struct Shared {
    accept: &'static str,
    token: Vec<u8>,
    answers: Answers,
    requests: Mutex<Vec<Value>>,
    refused: Mutex<Vec<(u16, String)>>,
}

/// How a plugin picks its answer to a verified request.
#[derive(Debug)]
enum Answers {
    /// A secret plugin: by the request's `(path, name)`.
    Secrets(Mutex<HashMap<(String, String), PluginAnswer>>),
    /// A registry or environ plugin: the same for every request.
    List(Mutex<ListAnswer>),
}

/// The answer to a verified request, before any encryption.
enum Reply {
    NoContent,
    Status(u16, String),
    Json(String),
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Server {
    async fn start(token: &str, accept: &'static str, answers: Answers) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            accept,
            token: token.as_bytes().to_vec(),
            answers,
            requests: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
        });
        let shutdown = CancellationToken::new();
        let router = Router::new()
            .route("/", post(clear))
            .route("/aesgcm", post(encrypted))
            .with_state(shared.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Ok(Self {
            address,
            shared,
            shutdown,
        })
    }

    fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    fn encrypted_url(&self) -> String {
        format!("http://{}/aesgcm", self.address)
    }

    fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }

    fn refused(&self) -> Vec<(u16, String)> {
        lock(&self.shared.refused).clone()
    }
}

impl SecretPluginServer {
    /// Starts a plugin that verifies signatures with `token`.
    ///
    /// # Errors
    /// The listening socket could not be opened.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let answers = Answers::Secrets(Mutex::new(HashMap::new()));
        Ok(Self {
            server: Server::start(token, SECRET_ACCEPT, answers).await?,
        })
    }

    /// The endpoint that answers in clear: `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The endpoint that encrypts its 2xx answers (`Content-Encoding:
    /// aesgcm`): `http://127.0.0.1:<port>/aesgcm`.
    pub fn encrypted_url(&self) -> String {
        self.server.encrypted_url()
    }

    /// Sets the answer for the secret `name` at `path`.
    pub fn set(&self, path: &str, name: &str, answer: PluginAnswer) {
        if let Answers::Secrets(answers) = &self.server.shared.answers {
            lock(answers).insert((path.to_owned(), name.to_owned()), answer);
        }
    }

    /// The JSON bodies of the verified requests, in order of arrival.
    pub fn requests(&self) -> Vec<Value> {
        self.server.requests()
    }

    /// The refused requests, in order: status (400 or 401) and why.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.server.refused()
    }
}

impl ListPluginServer {
    /// Starts a registry plugin that verifies signatures with `token`.
    ///
    /// # Errors
    /// The listening socket could not be opened.
    pub async fn registry(token: &str) -> std::io::Result<Self> {
        Self::start(token, REGISTRY_ACCEPT).await
    }

    /// Starts an environ plugin that verifies signatures with `token`.
    ///
    /// # Errors
    /// The listening socket could not be opened.
    pub async fn environ(token: &str) -> std::io::Result<Self> {
        Self::start(token, ENVIRON_ACCEPT).await
    }

    async fn start(token: &str, accept: &'static str) -> std::io::Result<Self> {
        let answers = Answers::List(Mutex::new(ListAnswer::NoContent));
        Ok(Self {
            server: Server::start(token, accept, answers).await?,
        })
    }

    /// The endpoint that answers in clear: `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The endpoint that encrypts its 2xx answers (`Content-Encoding:
    /// aesgcm`): `http://127.0.0.1:<port>/aesgcm`.
    pub fn encrypted_url(&self) -> String {
        self.server.encrypted_url()
    }

    /// Sets the answer to every request from now on.
    pub fn set(&self, answer: ListAnswer) {
        if let Answers::List(current) = &self.server.shared.answers {
            *lock(current) = answer;
        }
    }

    /// The JSON bodies of the verified requests, in order of arrival.
    pub fn requests(&self) -> Vec<Value> {
        self.server.requests()
    }

    /// The refused requests, in order: status (400 or 401) and why.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.server.refused()
    }
}

async fn clear(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&shared, &headers, &body, false)
}

async fn encrypted(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&shared, &headers, &body, true)
}

fn answer(shared: &Shared, headers: &HeaderMap, body: &[u8], encrypt: bool) -> Response {
    let request = match verify(shared, headers, body) {
        Ok(request) => request,
        Err((status, why)) => {
            lock(&shared.refused).push((status.as_u16(), why.clone()));
            return (status, why).into_response();
        }
    };
    let reply = reply(&shared.answers, &request);
    lock(&shared.requests).push(request);
    let json = match reply {
        Reply::NoContent => return StatusCode::NO_CONTENT.into_response(),
        Reply::Status(status, text) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, text).into_response();
        }
        Reply::Json(json) => json,
    };
    if !encrypt {
        return ([(CONTENT_TYPE, "application/json")], json).into_response();
    }
    match seal(&shared.token, json.as_bytes()) {
        Some(sealed) => (
            [
                (CONTENT_TYPE, "application/octet-stream"),
                (CONTENT_ENCODING, "aesgcm"),
            ],
            sealed,
        )
            .into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the token is too short to encrypt with",
        )
            .into_response(),
    }
}

/// The answer to the verified `request`.
fn reply(answers: &Answers, request: &Value) -> Reply {
    match answers {
        Answers::List(answer) => match lock(answer).clone() {
            ListAnswer::NoContent => Reply::NoContent,
            ListAnswer::Status(status, text) => Reply::Status(status, text),
            ListAnswer::Json(json) => Reply::Json(json.to_string()),
        },
        Answers::Secrets(answers) => {
            let path = request["path"].as_str().unwrap_or_default().to_owned();
            let name = request["name"].as_str().unwrap_or_default().to_owned();
            let found = lock(answers).get(&(path, name.clone())).cloned();
            let data = match found {
                None | Some(PluginAnswer::NoContent) => return Reply::NoContent,
                Some(PluginAnswer::Status(status, text)) => return Reply::Status(status, text),
                Some(PluginAnswer::EmptyData) => String::new(),
                Some(PluginAnswer::Value(value)) => value,
            };
            Reply::Json(serde_json::json!({ "name": name, "data": data }).to_string())
        }
    }
}

/// Checks the request as a plugin does; the parsed body when it passes.
fn verify(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, (StatusCode, String)> {
    let bad = |why: &str| (StatusCode::BAD_REQUEST, why.to_owned());
    let unauthorized = |why: &str| (StatusCode::UNAUTHORIZED, why.to_owned());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("accept") != Some(shared.accept) {
        return Err(bad("unexpected Accept"));
    }
    if header("accept-encoding") != Some("identity")
        || header("content-type") != Some("application/json")
    {
        return Err(bad("unexpected Accept-Encoding or Content-Type"));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let expected = format!("SHA-256={}", BASE64.encode(digest.as_ref()));
    if header("digest") != Some(expected.as_str()) {
        return Err(bad("digest mismatch"));
    }
    let signature = header("signature").ok_or_else(|| unauthorized("no signature"))?;
    let params = parse_signature(signature);
    if params.get("keyId").map(String::as_str) != Some("hmac-key")
        || params.get("algorithm").map(String::as_str) != Some("hmac-sha256")
    {
        return Err(unauthorized("unexpected keyId or algorithm"));
    }
    let signed = params
        .get("headers")
        .ok_or_else(|| unauthorized("no signed headers"))?;
    let names: Vec<&str> = signed.split(' ').filter(|n| !n.is_empty()).collect();
    if !names.contains(&"date") || !names.contains(&"digest") {
        return Err(unauthorized("date and digest must be signed"));
    }
    let mut lines = Vec::new();
    for name in &names {
        let value = header(name).ok_or_else(|| unauthorized("a signed header is missing"))?;
        lines.push(format!("{}: {}", name.to_ascii_lowercase(), value.trim()));
    }
    let given = params
        .get("signature")
        .and_then(|s| BASE64.decode(s).ok())
        .ok_or_else(|| unauthorized("the signature is not base64"))?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &shared.token);
    ring::hmac::verify(&key, lines.join("\n").as_bytes(), &given)
        .map_err(|_| unauthorized("invalid signature"))?;
    let date = header("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .ok_or_else(|| unauthorized("invalid date"))?;
    let now = SystemTime::now();
    let skew = now
        .duration_since(date)
        .or_else(|_| date.duration_since(now))
        .unwrap_or_default();
    if skew > CLOCK_SKEW {
        return Err(unauthorized("date too far from now"));
    }
    serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))
}

/// `k="v",k2="v2"` ⇒ a map.
fn parse_signature(header: &str) -> HashMap<String, String> {
    header
        .split(',')
        .filter_map(|part| {
            let (key, value) = part.split_once('=')?;
            Some((
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// 12 random bytes of nonce, then the AES-256-GCM ciphertext and tag.
fn seal(token: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
    use ring::rand::{SecureRandom, SystemRandom};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, token.get(..32)?).ok()?);
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut sealed,
    )
    .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Some(out)
}

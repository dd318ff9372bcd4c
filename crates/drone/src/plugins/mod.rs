//! Extension plugins a runner calls, §10 of
//! `reference/drone-rpc-protocol.md`: the secret plugin
//! (`DRONE_SECRET_PLUGIN_ENDPOINT`, [`SecretPlugin`]), the registry plugin
//! (`DRONE_REGISTRY_PLUGIN_ENDPOINT`, [`RegistryPlugin`]) and the environ
//! plugin (`DRONE_ENV_PLUGIN_ENDPOINT`, [`EnvironPlugin`]).
//!
//! A plugin is an HTTP service. Every request is one signed `POST` of a JSON
//! body to the configured endpoint; the signature (HTTP Signatures,
//! HMAC-SHA256 keyed with the shared token) covers a digest of the body, so
//! the plugin knows the request comes from a runner that holds the token and
//! was not altered on the way. The three clients share that request and the
//! handling of its answer ([`Client::post`]); they differ in the `Accept`
//! header, the body and what the answer holds.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{CONTENT_ENCODING, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use runnerkit_core::drone::{Build, Repo};
use runnerkit_core::settings;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

mod environ;
mod registry;
mod secret;

#[cfg(feature = "test-server")]
pub(crate) mod fake;

pub use environ::EnvironPlugin;
pub use registry::RegistryPlugin;
pub use secret::SecretPlugin;

/// `Accept` of a secret plugin request.
pub(crate) const SECRET_ACCEPT: &str = "application/vnd.drone.secret.v1+json";

/// `Accept` of a registry plugin request.
pub(crate) const REGISTRY_ACCEPT: &str = "application/vnd.drone.registry.v1+json";

/// `Accept` of an environ plugin request.
pub(crate) const ENVIRON_ACCEPT: &str = "application/vnd.drone.env.v2+json";

/// The deadline of one plugin request, answer included.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Answers larger than this are refused: secrets, registry and variable
/// lists are small.
const MAX_ANSWER: usize = 4 << 20;

/// Error bodies longer than this are cut in messages.
const MAX_MESSAGE: usize = 1000;

/// The `keyId` of the signature, as Drone's runners send it.
const KEY_ID: &str = "hmac-key";

/// The signed headers, in signing order.
const SIGNED_HEADERS: [&str; 5] = [
    "accept",
    "accept-encoding",
    "content-type",
    "date",
    "digest",
];

/// `Signature` (HTTP Signatures, draft-cavage).
const SIGNATURE: HeaderName = HeaderName::from_static("signature");

/// What differs between the three plugins' requests.
#[derive(Debug, Clone, Copy)]
struct Kind {
    /// `secret`, `registry` or `environ`: names the plugin in errors.
    name: &'static str,
    /// The `Accept` header.
    accept: &'static str,
    /// The setting of the endpoint, for errors.
    endpoint_setting: &'static str,
    /// The setting of the token, for errors.
    token_setting: &'static str,
}

const SECRET: Kind = Kind {
    name: "secret",
    accept: SECRET_ACCEPT,
    endpoint_setting: settings::SECRET_PLUGIN_ENDPOINT.name,
    token_setting: settings::SECRET_PLUGIN_TOKEN.name,
};

const REGISTRY: Kind = Kind {
    name: "registry",
    accept: REGISTRY_ACCEPT,
    endpoint_setting: settings::REGISTRY_PLUGIN_ENDPOINT.name,
    token_setting: settings::REGISTRY_PLUGIN_TOKEN.name,
};

const ENVIRON: Kind = Kind {
    name: "environ",
    accept: ENVIRON_ACCEPT,
    endpoint_setting: settings::ENV_PLUGIN_ENDPOINT.name,
    token_setting: settings::ENV_PLUGIN_TOKEN.name,
};

/// The request every plugin client sends: a signed `POST` of a JSON body
/// to the endpoint, and what the answer's status and encoding mean.
#[derive(Clone)]
struct Client {
    kind: Kind,
    http: reqwest::Client,
    endpoint: Url,
    token: Vec<u8>,
}

impl Client {
    /// A client of the `kind` plugin at `endpoint`; see [`SecretPlugin::new`].
    fn new(kind: Kind, endpoint: &str, token: &str, skip_verify: bool) -> Result<Self, Error> {
        if endpoint.is_empty() {
            return Err(Error::MissingSetting {
                name: kind.endpoint_setting,
            });
        }
        if token.is_empty() {
            return Err(Error::MissingSetting {
                name: kind.token_setting,
            });
        }
        let url = Url::parse(endpoint).map_err(|e| Error::InvalidSetting {
            name: kind.endpoint_setting,
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidSetting {
                name: kind.endpoint_setting,
                reason: format!("scheme {:?} is neither http nor https", url.scheme()),
            });
        }
        let http = crate::tls::http_client(skip_verify)?
            .timeout(TIMEOUT)
            .build()
            .map_err(Error::Client)?;
        Ok(Self {
            kind,
            http,
            endpoint: url,
            token: token.as_bytes().to_vec(),
        })
    }

    /// The endpoint without any password it contains.
    fn endpoint(&self) -> String {
        redacted(&self.endpoint)
    }

    /// `Debug` of the client named `name`: the endpoint without its
    /// password, never the token.
    fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("endpoint", &self.endpoint())
            .field("token", &"******")
            .finish_non_exhaustive()
    }

    /// An [`Error::PluginAnswer`] of this plugin.
    fn invalid(&self, reason: String) -> Error {
        Error::PluginAnswer {
            plugin: self.kind.name,
            reason,
        }
    }

    /// Sends `body` and reads the answer: `Ok(None)` for 204, else the
    /// answer parsed as `T` (decrypted first when `aesgcm`).
    async fn post<T: DeserializeOwned>(
        &self,
        body: &impl Serialize,
        what: &str,
    ) -> Result<Option<T>, Error> {
        let body = serde_json::to_vec(body)
            .map_err(|e| self.invalid(format!("cannot encode the request: {e}")))?;
        let headers = signed_headers(
            &self.token,
            self.kind.accept,
            &body,
            &httpdate::fmt_http_date(SystemTime::now()),
        )?;
        let transport = |source| Error::PluginTransport {
            plugin: self.kind.name,
            endpoint: self.endpoint(),
            source,
        };
        let mut response = self
            .http
            .post(self.endpoint.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let encrypted = response
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("aesgcm"));
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if answer.len() + chunk.len() > MAX_ANSWER {
                if status.as_u16() > 299 {
                    break;
                }
                return Err(self.invalid(format!("larger than {MAX_ANSWER} bytes")));
            }
            answer.extend_from_slice(&chunk);
        }
        if status.as_u16() > 299 {
            return Err(Error::PluginRefused {
                plugin: self.kind.name,
                status: status.as_u16(),
                message: message(status, &answer),
            });
        }
        let plain = if encrypted {
            decrypt(&self.token, answer).map_err(|reason| self.invalid(reason.to_owned()))?
        } else {
            answer
        };
        // serde_json's message names the position and the expected type,
        // never the input.
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| self.invalid(format!("not {what} in JSON: {e}")))
    }
}

/// The body of a registry or environ request.
#[derive(Serialize)]
struct StageRequest<'a> {
    repo: &'a Repo,
    build: &'a Build,
}

/// The repository as plugins see it: its `secret` (the key of its
/// encrypted documents) blanked, as a plugin has no use for it.
fn without_secret(repo: &Repo) -> Repo {
    Repo {
        secret: String::new(),
        ..repo.clone()
    }
}

/// The five signed headers and the `Signature` over them, for a request
/// with `body` sent at `date`.
pub(crate) fn signed_headers(
    token: &[u8],
    accept: &str,
    body: &[u8],
    date: &str,
) -> Result<HeaderMap, Error> {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let digest = format!("SHA-256={}", BASE64.encode(digest.as_ref()));
    let values = [
        accept,
        "identity",
        "application/json",
        date,
        digest.as_str(),
    ];
    let mut headers = HeaderMap::new();
    let mut signing = String::new();
    for (name, value) in SIGNED_HEADERS.into_iter().zip(values) {
        if !signing.is_empty() {
            signing.push('\n');
        }
        signing.push_str(name);
        signing.push_str(": ");
        signing.push_str(value);
        let value = HeaderValue::from_str(value).map_err(|_| Error::InvalidSetting {
            name: "plugin request header",
            reason: format!("{name} cannot be sent as an HTTP header value"),
        })?;
        headers.insert(HeaderName::from_static(name), value);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token);
    let signature = BASE64.encode(ring::hmac::sign(&key, signing.as_bytes()).as_ref());
    let signature = format!(
        "keyId=\"{KEY_ID}\",algorithm=\"hmac-sha256\",headers=\"{}\",signature=\"{signature}\"",
        SIGNED_HEADERS.join(" ")
    );
    let mut signature = HeaderValue::from_str(&signature).map_err(|_| Error::InvalidSetting {
        name: "plugin request header",
        reason: "the signature cannot be sent as an HTTP header value".to_owned(),
    })?;
    signature.set_sensitive(true);
    headers.insert(SIGNATURE, signature);
    Ok(headers)
}

/// Opens an `aesgcm` answer: a 12-byte nonce, then AES-256-GCM ciphertext
/// and tag, keyed with the first 32 bytes of the token. The error says why
/// it cannot be opened.
pub(crate) fn decrypt(token: &[u8], mut answer: Vec<u8>) -> Result<Vec<u8>, &'static str> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
    let key = token
        .get(..32)
        .and_then(|key| UnboundKey::new(&AES_256_GCM, key).ok())
        .ok_or("the answer is encrypted (aesgcm) but the token is shorter than 32 bytes")?;
    if answer.len() < NONCE_LEN {
        return Err("the encrypted (aesgcm) answer is shorter than its nonce");
    }
    let mut sealed = answer.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&answer)
        .map_err(|_| "the encrypted (aesgcm) answer has no valid nonce")?;
    let plain = LessSafeKey::new(key)
        .open_in_place(nonce, Aad::empty(), &mut sealed)
        .map_err(|_| "the encrypted (aesgcm) answer does not decrypt with the token")?;
    Ok(plain.to_vec())
}

/// The message of a refusal: the body (cut, trimmed), or the reason phrase.
fn message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned();
    }
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `url` without its password, for messages.
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Only fails for URLs that cannot have one, which this has.
        let _ = url.set_password(Some("******"));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_string_and_signature_are_as_the_reference_says() {
        let headers = signed_headers(
            b"token",
            SECRET_ACCEPT,
            b"{}",
            "Thu, 26 Nov 2026 01:00:00 GMT",
        )
        .expect("headers");
        let digest = headers["digest"].to_str().expect("ascii");
        assert_eq!(
            digest,
            format!(
                "SHA-256={}",
                BASE64.encode(ring::digest::digest(&ring::digest::SHA256, b"{}"))
            )
        );
        let signing = format!(
            "accept: {SECRET_ACCEPT}\naccept-encoding: identity\ncontent-type: application/json\ndate: Thu, 26 Nov 2026 01:00:00 GMT\ndigest: {digest}"
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"token");
        let expected = BASE64.encode(ring::hmac::sign(&key, signing.as_bytes()));
        assert_eq!(
            headers[SIGNATURE].to_str().expect("ascii"),
            format!(
                "keyId=\"hmac-key\",algorithm=\"hmac-sha256\",headers=\"accept accept-encoding content-type date digest\",signature=\"{expected}\""
            )
        );
    }

    #[test]
    fn decrypt_refuses_short_tokens_short_bodies_and_tampering() {
        let token = [7u8; 32];
        assert!(decrypt(b"short", vec![0; 40]).is_err());
        assert!(decrypt(&token, vec![0; 5]).is_err());
        assert!(decrypt(&token, vec![0; 40]).is_err());
    }

    #[test]
    fn refusal_messages_fall_back_to_the_reason_phrase_and_are_cut() {
        assert_eq!(message(StatusCode::NOT_FOUND, b"  \n"), "Not Found");
        assert_eq!(
            message(StatusCode::NOT_FOUND, b"no such path\n"),
            "no such path"
        );
        let long = "x".repeat(5000);
        assert_eq!(
            message(StatusCode::BAD_REQUEST, long.as_bytes())
                .chars()
                .count(),
            MAX_MESSAGE + 1
        );
    }

    #[test]
    fn endpoints_are_checked_and_passwords_redacted() {
        assert!(matches!(
            SecretPlugin::new("", "t", false),
            Err(Error::MissingSetting { .. })
        ));
        assert!(matches!(
            SecretPlugin::new("http://x", "", false),
            Err(Error::MissingSetting { .. })
        ));
        assert!(matches!(
            SecretPlugin::new("ftp://x", "t", false),
            Err(Error::InvalidSetting { .. })
        ));
        let plugin = SecretPlugin::new("https://u:pw@vault.example/s", "tok", true).expect("ok");
        assert!(!format!("{plugin:?}").contains("pw@"));
        assert!(!format!("{plugin:?}").contains("tok\""));
        assert_eq!(plugin.endpoint(), "https://u:******@vault.example/s");
    }
}

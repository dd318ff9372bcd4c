//! One Drone RPC call: the request on the wire, the answer's classification,
//! and the retry loop around it.
//!
//! What goes out is what Drone's own client sends: `X-Drone-Token`, and for
//! calls with input one JSON value followed by `\n`, no `Content-Type`.
//! Answers are read whatever their `Content-Type` (Drone sets none).

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};
use runnerkit_core::{ManagerError, error_chain};
use serde::Serialize;
use tokio::time::Instant;

use crate::{DroneConfig, Error, RetryPolicy};

/// The authentication header of Drone's runner RPC.
const TOKEN_HEADER: &str = "X-Drone-Token";

/// Error bodies longer than this are cut in messages: a misconfigured proxy
/// may answer with a whole HTML page.
const MAX_MESSAGE: usize = 1000;

/// What a call expects back on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Nothing to decode (Ping, Batch, Upload): any 2xx is success.
    Nothing,
    /// A JSON value: a 204 (the server gave up on the request) is retried.
    Json,
    /// A long poll (Request, Watch): 204 is an answer, "nothing yet".
    LongPoll,
}

/// One call, described before it is sent (maybe several times).
pub(crate) struct Call {
    /// A short name for logs, e.g. `accept`.
    pub(crate) name: &'static str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<Bytes>,
    pub(crate) expect: Expect,
    /// Retry transient failures (transport, 502–504) with backoff.
    pub(crate) retry_transient: bool,
    /// Safe to repeat (a read, a log upload that replaces the stored log,
    /// an update by version): server errors (500 and its kin) are retried
    /// with backoff too, as transient failures are.
    pub(crate) idempotent: bool,
    /// Appends on the server (a log batch): a failure the server may have
    /// applied ([`ManagerError::maybe_applied`]) is not retried, or its
    /// lines would be shown twice.
    pub(crate) appends: bool,
}

impl Call {
    /// Marks the call safe to repeat: server errors are retried too.
    pub(crate) fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

/// Whether a failed attempt may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Transport error, 502–504, a 204 where a body was due.
    Transient,
    /// HTTP 500 (Drone's answer for every real server-side error) and the
    /// other 5xx but 501 and the proxies' 502–504.
    ServerError,
    /// Final: 4xx, 3xx, an undecodable answer.
    Never,
}

struct Failure {
    error: ManagerError,
    retry: Retry,
}

/// The HTTP side of [`DroneManager`](crate::DroneManager).
pub(crate) struct Rpc {
    http: reqwest::Client,
    base: String,
    token: HeaderValue,
    request_timeout: Duration,
    long_poll_timeout: Duration,
    retry: RetryPolicy,
}

impl Rpc {
    pub(crate) fn new(config: &DroneConfig) -> Result<Self, Error> {
        config.validate()?;
        let mut token =
            HeaderValue::from_str(&config.secret).map_err(|_| Error::InvalidSetting {
                name: runnerkit_core::settings::RPC_SECRET.name,
                reason: "it cannot be sent as an HTTP header value".to_owned(),
            })?;
        // Keeps the token out of `Debug` output of requests.
        token.set_sensitive(true);
        let http = crate::tls::http_client(config.skip_verify)?
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(Error::Client)?;
        Ok(Self {
            http,
            base: config.base_url(),
            token,
            request_timeout: config.request_timeout,
            long_poll_timeout: config.long_poll_timeout,
            retry: config.retry,
        })
    }

    /// The server's base URL, `proto://host`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `base` + `path`, as Drone's client builds its URLs.
    pub(crate) fn url(&self, path: &str) -> Result<Url, ManagerError> {
        let text = format!("{}{}", self.base, path);
        Url::parse(&text).map_err(|e| ManagerError::Transport {
            address: text,
            sent: false,
            source: Box::new(e),
        })
    }

    /// Sends `call`, retrying as its flags and the policy allow.
    pub(crate) async fn send(&self, call: &Call) -> Result<Answer, ManagerError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let failure = match self.attempt(call).await {
                Ok(answer) => {
                    if attempt > 0 {
                        tracing::info!(call = call.name, retries = attempt, "drone call recovered");
                    }
                    return Ok(answer);
                }
                Err(failure) => failure,
            };
            let retry = match failure.retry {
                Retry::Transient if call.appends && failure.error.maybe_applied() => false,
                Retry::Transient => call.retry_transient,
                Retry::ServerError => call.idempotent,
                Retry::Never => false,
            };
            if !retry {
                return Err(failure.error);
            }
            let delay = self.retry.delay(attempt);
            if let Some(max) = self.retry.max_elapsed
                && started.elapsed() + delay > max
            {
                tracing::warn!(
                    call = call.name,
                    retries = attempt,
                    error = %error_chain(&failure.error),
                    "drone call still failing; giving up"
                );
                return Err(failure.error);
            }
            // One warning per streak; the retries after it only at debug level.
            if attempt == 0 {
                tracing::warn!(
                    call = call.name,
                    error = %error_chain(&failure.error),
                    "drone call failed; retrying with backoff"
                );
            } else {
                tracing::debug!(
                    call = call.name,
                    attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %error_chain(&failure.error),
                    "drone call failed again"
                );
            }
            tokio::time::sleep(delay).await;
            attempt = attempt.saturating_add(1);
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Answer, Failure> {
        let timeout = match call.expect {
            Expect::LongPoll => self.long_poll_timeout,
            Expect::Nothing | Expect::Json => self.request_timeout,
        };
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .header(TOKEN_HEADER, self.token.clone())
            .timeout(timeout);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let transport = |e: reqwest::Error| Failure {
            error: ManagerError::Transport {
                address: address_of(&call.url),
                // Only a failed connect says for sure that nothing arrived.
                sent: !e.is_connect(),
                source: Box::new(e),
            },
            retry: Retry::Transient,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let location = response.headers().get(LOCATION).cloned();
        let body = response.bytes().await.map_err(transport)?;
        tracing::debug!(
            call = call.name,
            method = %call.method,
            path = call.url.path(),
            status = status.as_u16(),
            "drone rpc"
        );
        classify(status, body, location, call.expect)
    }
}

/// Turns an HTTP answer into success or a classified failure (§3 of the
/// protocol reference, with runnerkit's stricter retry rules).
fn classify(
    status: StatusCode,
    body: Bytes,
    location: Option<HeaderValue>,
    expect: Expect,
) -> Result<Answer, Failure> {
    let code = status.as_u16();
    let fail = |error, retry| Err(Failure { error, retry });
    match code {
        204 if expect == Expect::Json => fail(
            ManagerError::Invalid("HTTP 204 without a body where an answer was due".to_owned()),
            Retry::Transient,
        ),
        200..=299 => Ok(Answer { status, body }),
        300..=399 => {
            let target = location
                .as_ref()
                .and_then(|l| l.to_str().ok())
                .unwrap_or("an unnamed location");
            fail(
                ManagerError::Server {
                    status: code,
                    message: format!("redirects are not followed (to {target})"),
                },
                Retry::Never,
            )
        }
        401 | 403 => fail(ManagerError::Unauthorized { status: code }, Retry::Never),
        404 => fail(ManagerError::NotFound(message(status, &body)), Retry::Never),
        409 => fail(ManagerError::Conflict, Retry::Never),
        500 | 505..=599 => fail(
            ManagerError::Server {
                status: code,
                message: message(status, &body),
            },
            Retry::ServerError,
        ),
        502..=504 => fail(
            ManagerError::Server {
                status: code,
                message: message(status, &body),
            },
            Retry::Transient,
        ),
        _ => fail(
            ManagerError::Server {
                status: code,
                message: message(status, &body),
            },
            Retry::Never,
        ),
    }
}

/// The error text of an answer: its body, or the reason phrase when empty.
fn message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_owned();
    }
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The URL without its query, for messages.
fn address_of(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// Serialises `value` as Drone's client does: one JSON value and `\n`.
pub(crate) fn json_body<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, ManagerError> {
    let mut bytes = serde_json::to_vec(value)
        .map_err(|e| ManagerError::Invalid(format!("cannot encode the request: {e}")))?;
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

/// Decodes an answer's JSON body.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    call: &'static str,
    body: &[u8],
) -> Result<T, ManagerError> {
    serde_json::from_slice(body)
        .map_err(|e| ManagerError::Invalid(format!("cannot decode the answer to {call}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: u16, body: &str, expect: Expect) -> Result<Answer, (ManagerError, Retry)> {
        let status = StatusCode::from_u16(code).unwrap();
        classify(status, Bytes::from(body.to_owned()), None, expect).map_err(|f| (f.error, f.retry))
    }

    #[test]
    fn statuses_map_to_errors_and_retry_classes() {
        assert!(outcome(200, "{}", Expect::Json).is_ok());
        assert!(outcome(204, "", Expect::LongPoll).is_ok());
        assert!(outcome(204, "", Expect::Nothing).is_ok());
        let (err, retry) = outcome(204, "", Expect::Json).unwrap_err();
        assert!(matches!(err, ManagerError::Invalid(_)));
        assert_eq!(retry, Retry::Transient);
        let (err, retry) = outcome(409, "Optimistic Lock Error\n", Expect::Json).unwrap_err();
        assert!(matches!(err, ManagerError::Conflict));
        assert_eq!(retry, Retry::Never);
        for code in [401, 403] {
            let (err, retry) = outcome(code, "", Expect::Json).unwrap_err();
            assert!(matches!(err, ManagerError::Unauthorized { status } if status == code));
            assert_eq!(retry, Retry::Never);
        }
        let (err, retry) = outcome(500, "sql: no rows in result set\n", Expect::Json).unwrap_err();
        assert!(
            matches!(&err, ManagerError::Server { status: 500, message } if message == "sql: no rows in result set")
        );
        assert_eq!(retry, Retry::ServerError);
        for code in [502, 503, 504] {
            let (_, retry) = outcome(code, "", Expect::Nothing).unwrap_err();
            assert_eq!(retry, Retry::Transient);
        }
        for code in [400, 405, 501] {
            let (_, retry) = outcome(code, "", Expect::Nothing).unwrap_err();
            assert_eq!(retry, Retry::Never, "{code}");
        }
        for code in [505, 507, 599] {
            let (_, retry) = outcome(code, "", Expect::Nothing).unwrap_err();
            assert_eq!(retry, Retry::ServerError, "{code}");
        }
        let (err, _) = outcome(302, "", Expect::Json).unwrap_err();
        assert!(matches!(err, ManagerError::Server { status: 302, .. }));
        let (err, _) = outcome(404, "404 page not found\n", Expect::Json).unwrap_err();
        assert!(matches!(err, ManagerError::NotFound(m) if m == "404 page not found"));
    }

    #[test]
    fn empty_error_body_gives_the_reason_phrase_and_long_ones_are_cut() {
        assert_eq!(message(StatusCode::BAD_GATEWAY, b""), "Bad Gateway");
        let long = "x".repeat(5000);
        let cut = message(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn bodies_end_with_a_newline() {
        assert_eq!(&json_body(&[1, 2]).unwrap()[..], b"[1,2]\n");
    }
}

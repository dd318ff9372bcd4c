//! The daemon's HTTP endpoint: `/healthz` (200 `ok` while the daemon runs),
//! `/metrics` ([`super::metrics`]) and `/`, the stages page
//! ([`super::page`]), served only behind HTTP basic auth, when
//! `DRONE_UI_USERNAME`/`DRONE_UI_PASSWORD` are set: it names repositories,
//! branches and errors, which an operator who set no credentials did not
//! choose to publish. `/healthz` and `/metrics` stay open, for load
//! balancers and Prometheus.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use runnerkit_core::CancellationToken;
use runnerkit_runner::PollerStats;
use tokio::net::TcpListener;

use super::board::Board;
use super::metrics::{self, RunnerInfo};
use super::settings::{BasicAuth, HttpSettings};

/// What the handlers read.
pub struct Endpoint {
    /// Name, type, capacity.
    pub info: RunnerInfo,
    /// The poller's counters.
    pub stats: Arc<PollerStats>,
    /// The stages seen.
    pub board: Arc<Board>,
    /// Credentials and realm for the page.
    pub settings: HttpSettings,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("info", &self.info)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The routes.
pub fn router(endpoint: Arc<Endpoint>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .with_state(endpoint)
}

/// Serves `router` on `listener` until `stop` fires.
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!("the HTTP endpoint stopped: {e}");
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(endpoint): State<Arc<Endpoint>>) -> Response {
    let body = metrics::render(&endpoint.info, &endpoint.stats, &endpoint.board);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

async fn page(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap) -> Response {
    let Some(auth) = &endpoint.settings.auth else {
        return (
            StatusCode::NOT_FOUND,
            "the stages page is off: set DRONE_UI_USERNAME and DRONE_UI_PASSWORD to serve it\n",
        )
            .into_response();
    };
    if !authorized(auth, headers.get(header::AUTHORIZATION)) {
        let challenge = format!(
            "Basic realm=\"{}\", charset=\"UTF-8\"",
            endpoint.settings.realm.replace(['"', '\\'], "")
        );
        let challenge = HeaderValue::from_str(&challenge)
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"runnerkit\""));
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            "authentication required\n",
        )
            .into_response();
    }
    let running = endpoint.board.running();
    let done = endpoint.board.done();
    Html(super::page::render(&endpoint.info, &running, &done)).into_response()
}

/// Whether `Authorization` carries `auth`'s user and password.
fn authorized(auth: &BasicAuth, given: Option<&HeaderValue>) -> bool {
    let Some(encoded) = given
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return false;
    };
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    // Both compared, each in constant time, so timing tells neither.
    let user_ok = same(user, auth.username.as_bytes());
    let password_ok = same(password, auth.password.as_bytes());
    user_ok & password_ok
}

/// Compares in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn basic_auth_needs_both_user_and_password() {
        let auth = BasicAuth {
            username: "admin".into(),
            password: "pa:ss".into(),
        };
        assert!(authorized(&auth, Some(&basic("admin:pa:ss"))));
        assert!(!authorized(&auth, Some(&basic("admin:pa:s"))));
        assert!(!authorized(&auth, Some(&basic("root:pa:ss"))));
        assert!(!authorized(&auth, Some(&basic("admin"))));
        assert!(!authorized(
            &auth,
            Some(&HeaderValue::from_static("Bearer x"))
        ));
        assert!(!authorized(
            &auth,
            Some(&HeaderValue::from_static("Basic !!!"))
        ));
        assert!(!authorized(&auth, None));
    }
}

//! The HTTP face of the test server: the accept loop, what every request
//! goes through before routing (recording, authentication, faults, Drone's
//! no-cache headers), and one handler per endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, PRAGMA};
use axum::http::{HeaderValue, Request, Response, StatusCode};
use axum::routing::{post, put};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use runnerkit_core::CancellationToken;
use runnerkit_core::drone::{Filter, Line, Stage, Step};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::faults::{Endpoint, Fault};
use super::store::Reject;
use super::{RecordedRequest, Shared, lock};

/// Go's sniffed type for Drone's answers: clients must not expect JSON.
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Returned by the connection's service to make hyper close the connection
/// without an answer.
#[derive(Debug)]
pub(crate) struct ConnectionDropped;

impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for ConnectionDropped {}

/// Accepts connections until `shutdown`; dropping the set of connection
/// tasks when it returns cuts every open connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let router = router(shared.clone());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let router = router.clone();
                let service = hyper::service::service_fn(move |request| {
                    handle(shared.clone(), router.clone(), request)
                });
                connections.spawn(async move {
                    // An error here is a dropped connection: on purpose, or
                    // the client went away.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    router: Router,
    request: Request<Incoming>,
) -> Result<Response<Body>, ConnectionDropped> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| ConnectionDropped)?
        .to_bytes();
    let index = {
        let mut requests = lock(&shared.requests);
        requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.clone(),
            status: None,
            received: Instant::now(),
        });
        requests.len() - 1
    };
    let mut response = answer(
        &shared,
        router,
        Request::from_parts(parts, Body::from(body)),
    )
    .await?;
    add_no_cache_headers(&mut response);
    if let Some(record) = lock(&shared.requests).get_mut(index) {
        record.status = Some(response.status().as_u16());
    }
    Ok(response)
}

async fn answer(
    shared: &Shared,
    mut router: Router,
    request: Request<Body>,
) -> Result<Response<Body>, ConnectionDropped> {
    // Authentication comes before routing, as in Drone: unknown paths are
    // refused first too.
    if shared.secret.is_empty() {
        return Ok(empty(StatusCode::FORBIDDEN));
    }
    let token = request
        .headers()
        .get("x-drone-token")
        .map(HeaderValue::as_bytes);
    if token != Some(shared.secret.as_bytes()) {
        return Ok(empty(StatusCode::UNAUTHORIZED));
    }
    let endpoint = Endpoint::classify(request.method(), request.uri().path());
    let fault = lock(&shared.faults).take(endpoint);
    let lose_answer = match fault {
        None => false,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            false
        }
        Some(Fault::DropConnection) => return Err(ConnectionDropped),
        Some(Fault::Status(code)) => return Ok(fault_answer(code, None)),
        Some(Fault::StatusWithMessage(code, message)) => {
            return Ok(fault_answer(code, Some(message)));
        }
        Some(Fault::LoseAnswer) => true,
    };
    let response = match tower_service::Service::call(&mut router, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if lose_answer {
        // Applied, but the answer never leaves.
        return Err(ConnectionDropped);
    }
    Ok(response)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/rpc/v2/ping", post(ping))
        .route("/rpc/v2/stage", post(request))
        .route(
            "/rpc/v2/stage/{id}",
            post(accept).get(details).put(update_stage),
        )
        .route("/rpc/v2/step/{id}", put(update_step))
        .route("/rpc/v2/build/{id}/watch", post(watch))
        .route("/rpc/v2/step/{id}/logs/batch", post(batch))
        .route("/rpc/v2/step/{id}/logs/upload", post(upload))
        .fallback(not_found)
        .with_state(shared)
}

type AppState = State<Arc<Shared>>;

/// Drone parses path ids leniently: anything not a number is 0, which then
/// finds nothing.
fn id_of(text: &str) -> i64 {
    text.parse().unwrap_or(0)
}

async fn ping() -> Response<Body> {
    empty(StatusCode::OK)
}

async fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "404 page not found")
}

async fn request(State(shared): AppState, body: Bytes) -> Response<Body> {
    let filter: Filter = match serde_json::from_slice(&body) {
        Ok(filter) => filter,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let deadline = Instant::now() + shared.long_poll;
    loop {
        // Registered before looking, so a stage queued in between wakes us.
        let changed = shared.queue_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        // The lock is released before any await: handing a stage over never
        // blocks the queue (Drone's own queue can stall here).
        let found = lock(&shared.store).find_match(&filter);
        if let Some(stage) = found {
            return json(&stage);
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline) => return empty(StatusCode::NO_CONTENT),
        }
    }
}

async fn accept(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response<Body> {
    let machine = query.get("machine").map(String::as_str).unwrap_or_default();
    let result = lock(&shared.store).accept(id_of(&id), machine);
    shared.queue_changed.notify_waiters();
    reply(result)
}

async fn details(State(shared): AppState, Path(id): Path<String>) -> Response<Body> {
    let result = lock(&shared.store).details(id_of(&id));
    reply(result)
}

async fn update_stage(
    State(shared): AppState,
    Path(id): Path<String>,
    body: Bytes,
) -> Response<Body> {
    let stage: Stage = match serde_json::from_slice(&body) {
        Ok(stage) => stage,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let result = lock(&shared.store).update_stage(id_of(&id), stage);
    // Statuses changed: downstream stages may have become pending.
    shared.queue_changed.notify_waiters();
    reply(result)
}

async fn update_step(
    State(shared): AppState,
    Path(id): Path<String>,
    body: Bytes,
) -> Response<Body> {
    let step: Step = match serde_json::from_slice(&body) {
        Ok(step) => step,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let result = lock(&shared.store).update_step(id_of(&id), step);
    reply(result)
}

async fn watch(State(shared): AppState, Path(id): Path<String>) -> Response<Body> {
    let build_id = id_of(&id);
    let deadline = Instant::now() + shared.long_poll;
    // Only a cancel that happens while this watch is held counts (§5.7).
    let seen = lock(&shared.store).cancel_count(build_id);
    loop {
        let cancelled = shared.cancelled.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        if lock(&shared.store).cancel_count(build_id) > seen {
            return empty(StatusCode::OK);
        }
        tokio::select! {
            () = &mut cancelled => {}
            () = tokio::time::sleep_until(deadline) => return empty(StatusCode::NO_CONTENT),
        }
    }
}

async fn batch(State(shared): AppState, Path(id): Path<String>, body: Bytes) -> Response<Body> {
    let lines: Vec<Line> = match serde_json::from_slice(&body) {
        Ok(lines) => lines,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let result = lock(&shared.store).batch(id_of(&id), lines);
    reply_empty(result)
}

async fn upload(State(shared): AppState, Path(id): Path<String>, body: Bytes) -> Response<Body> {
    let result = lock(&shared.store).upload(id_of(&id), body);
    reply_empty(result)
}

fn reply<T: Serialize>(result: Result<T, Reject>) -> Response<Body> {
    match result {
        Ok(value) => json(&value),
        Err(reject) => rejected(&reject),
    }
}

fn reply_empty(result: Result<(), Reject>) -> Response<Body> {
    match result {
        Ok(()) => empty(StatusCode::OK),
        Err(reject) => rejected(&reject),
    }
}

fn rejected(reject: &Reject) -> Response<Body> {
    let status = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text(status, &reject.message)
}

fn fault_answer(code: u16, message: Option<String>) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match (message, code) {
        (Some(message), _) => text(status, &message),
        (None, 409) => text(status, "Optimistic Lock Error"),
        (None, 500) => text(status, "injected server error"),
        (None, _) => empty(status),
    }
}

/// One JSON value and `\n`, typed as Go's sniffing would type it.
fn json<T: Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            with_body(StatusCode::OK, Bytes::from(bytes))
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// An error text and `\n`, as Go's `http.Error` writes it.
fn text(status: StatusCode, message: &str) -> Response<Body> {
    with_body(status, Bytes::from(format!("{message}\n")))
}

fn with_body(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    response
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn add_no_cache_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private, max-age=0"),
    );
    headers.insert(
        EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 UTC"),
    );
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-expires", HeaderValue::from_static("0"));
}

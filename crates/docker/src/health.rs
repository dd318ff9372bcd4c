//! Services that are ready: when a detached step's image declares a
//! `HEALTHCHECK`, its `start` returns only once Docker reports the
//! container `healthy`, so the steps after it in the stage do not start
//! against a service that is still coming up (Woodpecker #1768, harness
//! #2102). A service that becomes `unhealthy`, exits first, or is not
//! healthy within the timeout fails its start with a message naming it and
//! the last lines of its log. Without a health check nothing waits.

use std::time::Duration;

use bollard::Docker;
use bollard::models::HealthStatusEnum;
use bollard::query_parameters::LogsOptionsBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use runnerkit_core::{CancellationToken, EngineError, EngineErrorKind, Step};
use tokio::time::Instant;

use crate::error::{api_error, cancelled, engine_error, is_not_found};
use crate::probe::{Prober, Verdict};

/// How long a service may take to become healthy unless
/// [`DockerEngine::with_health_timeout`](crate::DockerEngine::with_health_timeout)
/// says otherwise.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How often the container's health is read while it is `starting`.
const POLL: Duration = Duration::from_millis(100);

/// How many lines of the service's log a failure quotes.
const LAST_LINES: &str = "10";

/// Waits until the container `id` (named `name`) of the detached `step` is
/// healthy, if its image declares a health check. Returns the lines to show
/// in the step's log (none without a health check).
pub(crate) async fn await_healthy(
    docker: &Docker,
    step: &Step,
    id: &str,
    name: &str,
    timeout: Duration,
    probe_ourselves: bool,
    cancel: &CancellationToken,
) -> Result<Vec<Bytes>, EngineError> {
    let started = Instant::now();
    let mut prober: Option<Prober> = None;
    loop {
        let inspect = match crate::compat::known_states(|| docker.inspect_container(id, None)).await
        {
            Ok(inspect) => inspect,
            Err(e) if is_not_found(&e) => {
                return Err(failed(docker, step, id, "was removed before it was healthy").await);
            }
            Err(e) => return Err(api_error(format!("inspect container {name:?}"), e)),
        };
        let state = inspect.state.unwrap_or_default();
        if probe_ourselves && prober.is_none() {
            prober = inspect
                .config
                .as_ref()
                .and_then(|c| c.healthcheck.as_ref())
                .and_then(Prober::new);
        }
        // No HEALTHCHECK in the image (or `NONE`): nothing to wait for.
        // Docker then has no `Health`; Podman one with an empty status.
        let Some(health) = state.health.filter(|h| {
            matches!(
                h.status,
                Some(
                    HealthStatusEnum::STARTING
                        | HealthStatusEnum::HEALTHY
                        | HealthStatusEnum::UNHEALTHY
                )
            )
        }) else {
            return Ok(Vec::new());
        };
        let healthy = || {
            vec![
                notice(format!(
                    "waiting for service {:?} to be healthy (its image has a HEALTHCHECK)",
                    step.name
                )),
                notice(format!(
                    "service {:?} is healthy after {:.1}s; the steps after it start now",
                    step.name,
                    started.elapsed().as_secs_f64()
                )),
            ]
        };
        if health.status == Some(HealthStatusEnum::HEALTHY) {
            return Ok(healthy());
        }
        // An exited container reads `unhealthy` too: its exit is the news.
        if state.running != Some(true) {
            let code = state.exit_code.unwrap_or_default();
            let what = format!("exited with {code} before it was healthy");
            return Err(failed(docker, step, id, &what).await);
        }
        if health.status == Some(HealthStatusEnum::UNHEALTHY) {
            let probe = health
                .log
                .and_then(|log| log.into_iter().last())
                .and_then(|last| last.output)
                .map(|out| format!(" (its health check said: {})", out.trim()))
                .unwrap_or_default();
            let what = format!("became unhealthy{probe}");
            return Err(failed(docker, step, id, &what).await);
        }
        if let Some(prober) = prober.as_mut() {
            match prober.turn(docker, id).await {
                Ok(Verdict::Healthy) => return Ok(healthy()),
                Ok(Verdict::Unhealthy(said)) => {
                    let probe = if said.is_empty() {
                        String::new()
                    } else {
                        format!(" (its health check said: {said})")
                    };
                    let what = format!("became unhealthy{probe}");
                    return Err(failed(docker, step, id, &what).await);
                }
                Ok(Verdict::Pending) => {}
                // An exited container: the next inspect says so.
                Err(e) => {
                    tracing::debug!(service = %step.name, error = %e, "health probe failed to run")
                }
            }
        }
        if started.elapsed() >= timeout {
            let what = format!("was not healthy within {}s", timeout.as_secs_f64().round());
            return Err(failed(docker, step, id, &what).await);
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => {
                return Err(cancelled(format!("the health wait of service {:?}", step.name)));
            }
        }
    }
}

/// A `[runnerkit]` line for the step's log.
fn notice(text: String) -> Bytes {
    Bytes::from(format!("[runnerkit] {text}\n"))
}

/// The error of a service that did not become healthy: what happened, and
/// the last lines of its log.
async fn failed(docker: &Docker, step: &Step, id: &str, what: &str) -> EngineError {
    let mut message = format!("service {:?} {what}", step.name);
    let tail = last_lines(docker, id).await;
    if !tail.is_empty() {
        message.push_str("; the last lines of its log:\n");
        message.push_str(tail.trim_end());
    }
    engine_error(EngineErrorKind::Other, message)
}

/// The last lines the container wrote; empty when they cannot be had.
async fn last_lines(docker: &Docker, id: &str) -> String {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(LAST_LINES)
        .build();
    let mut logs = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text
}

//! Where Podman's Docker-compatible API differs in a way every call site
//! must bear (the others are handled where they arise; see docs/docker.md).

use std::future::Future;
use std::time::Duration;

use bollard::errors::Error as ApiError;

/// How often a reading is taken again while the daemon reports a state the
/// client does not know, and how long between the readings.
const RETRIES: u32 = 50;
const PAUSE: Duration = Duration::from_millis(100);

/// Runs `read` (a container listing or inspect) again while its answer
/// cannot be decoded. Podman 4.3 reports a container that has just exited
/// or been killed as `stopped` until its cleanup has run, a state the Docker
/// API does not have, and the typed client refuses the whole answer; it
/// passes within a moment. Docker never answers so: there this is one call.
pub(crate) async fn known_states<T, F, Fut>(mut read: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut attempt = 0;
    loop {
        match read().await {
            Err(ApiError::JsonDataError { .. }) if attempt < RETRIES => {
                attempt += 1;
                tracing::debug!(
                    attempt,
                    "a container state the client does not know: reading again"
                );
                tokio::time::sleep(PAUSE).await;
            }
            answer => return answer,
        }
    }
}

/// Whether the daemon is Podman: its version names a "Podman Engine"
/// component. A version that cannot be read says Docker.
pub(crate) async fn is_podman(docker: &bollard::Docker) -> bool {
    docker.version().await.is_ok_and(|v| {
        v.components
            .unwrap_or_default()
            .iter()
            .any(|c| c.name.contains("Podman"))
    })
}

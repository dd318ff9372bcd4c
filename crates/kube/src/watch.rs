//! One watch per stage pod: the latest pod object, for every waiter of the
//! stage. A watch that ends (the server's timeout, a dropped connection)
//! resumes from the last resource version; one the server expired (410) is
//! resumed from a fresh read. Nothing polls.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::is_not_found;

/// What the watch knows of the pod.
#[derive(Debug, Clone)]
pub(crate) enum Seen {
    /// The pod as last seen.
    Pod(Arc<Pod>),
    /// The pod was deleted (or cannot be found).
    Gone,
}

/// Why a wait ended without its condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WaitEnd {
    /// The caller's token fired.
    Cancelled,
    /// The deadline passed.
    TimedOut,
    /// The pod is gone, or the stage was destroyed.
    Gone,
}

/// The watch of one pod; dropping it does not stop the task, `stop` does.
#[derive(Debug, Clone)]
pub(crate) struct PodWatch {
    rx: watch::Receiver<Seen>,
    stop: CancellationToken,
}

impl PodWatch {
    /// Watches `name` from `initial` (as returned by its create) until
    /// `stop` fires or the pod is deleted.
    pub(crate) fn start(
        api: Api<Pod>,
        name: String,
        initial: Pod,
        stop: CancellationToken,
    ) -> Self {
        let version = initial
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let (tx, rx) = watch::channel(Seen::Pod(Arc::new(initial)));
        let task_stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = task_stop.cancelled() => {}
                () = follow(&api, &name, version, &tx) => {}
            }
        });
        Self { rx, stop }
    }

    /// The pod as last seen.
    pub(crate) fn latest(&self) -> Seen {
        self.rx.borrow().clone()
    }

    /// Waits until `check` returns `Some` for the pod, `cancel` fires, the
    /// `deadline` passes or the pod is gone. `check` sees every change.
    pub(crate) async fn until<T>(
        &self,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
        mut check: impl FnMut(&Pod) -> Option<T>,
    ) -> Result<T, WaitEnd> {
        let mut rx = self.rx.clone();
        let deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            let seen = rx.borrow_and_update().clone();
            match seen {
                Seen::Gone => return Err(WaitEnd::Gone),
                Seen::Pod(pod) => {
                    if let Some(found) = check(&pod) {
                        return Ok(found);
                    }
                }
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return Err(WaitEnd::Gone) },
                () = cancel.cancelled() => return Err(WaitEnd::Cancelled),
                () = self.stop.cancelled() => return Err(WaitEnd::Gone),
                () = &mut deadline => return Err(WaitEnd::TimedOut),
            }
        }
    }
}

/// Watches until the pod is deleted; every change goes to `tx`.
async fn follow(api: &Api<Pod>, name: &str, mut version: String, tx: &watch::Sender<Seen>) {
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    let mut failures: u32 = 0;
    loop {
        match api.watch(&params, &version).await {
            Ok(stream) => {
                futures_util::pin_mut!(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                            failures = 0;
                            if let Some(v) = &pod.metadata.resource_version {
                                version.clone_from(v);
                            }
                            tx.send_replace(Seen::Pod(Arc::new(pod)));
                        }
                        Ok(WatchEvent::Deleted(_)) => {
                            tx.send_replace(Seen::Gone);
                            return;
                        }
                        Ok(WatchEvent::Bookmark(mark)) => {
                            version = mark.metadata.resource_version;
                        }
                        Ok(WatchEvent::Error(status)) => {
                            tracing::debug!(
                                pod = name,
                                code = status.code,
                                "watch ended: {}",
                                status.message
                            );
                            if status.code == 410 {
                                version.clear();
                            }
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(pod = name, "watch stream failed: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(pod = name, "watch refused: {e}");
                failures += 1;
            }
        }
        if failures > 0 {
            // Back off while the API server is unreachable, up to 2 s.
            let wait = Duration::from_millis(100 * u64::from(failures.min(20)));
            tokio::time::sleep(wait).await;
        }
        if version.is_empty() || failures > 0 {
            // Re-read: a new resource version, and no change missed between.
            match api.get(name).await {
                Ok(pod) => {
                    failures = 0;
                    version = pod.metadata.resource_version.clone().unwrap_or_default();
                    tx.send_replace(Seen::Pod(Arc::new(pod)));
                }
                Err(e) if is_not_found(&e) => {
                    tx.send_replace(Seen::Gone);
                    return;
                }
                Err(e) => {
                    tracing::debug!(pod = name, "read failed: {e}");
                    failures += 1;
                }
            }
        }
    }
}

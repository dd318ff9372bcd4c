//! [`Poller`]: N workers asking the server for stages and running them.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use runnerkit_core::drone::{Filter, Stage};
use runnerkit_core::{CancellationToken, Manager, ManagerError, Status};
use tokio::task::JoinSet;

use crate::stage::panic_message;
use crate::{Backoff, StageOutcome, StageRunner};

/// Counters a daemon exposes (e.g. as Prometheus metrics).
#[derive(Debug, Default)]
pub struct PollerStats {
    /// Stages running now.
    pub running: AtomicU64,
    /// Stages that ended `success`.
    pub succeeded: AtomicU64,
    /// Stages that ended `failure`.
    pub failed: AtomicU64,
    /// Stages that ended `error` (refused ones included).
    pub errored: AtomicU64,
    /// Stages that ended `killed`.
    pub killed: AtomicU64,
    /// Stages another runner took first.
    pub taken: AtomicU64,
    /// Failed requests for work.
    pub poll_errors: AtomicU64,
}

impl PollerStats {
    fn ended(&self, outcome: &StageOutcome) {
        let counter = match outcome {
            StageOutcome::Taken | StageOutcome::AlreadyDone => &self.taken,
            StageOutcome::Refused(_) => &self.errored,
            StageOutcome::Ran(Status::Success) => &self.succeeded,
            StageOutcome::Ran(Status::Failure) => &self.failed,
            StageOutcome::Ran(Status::Killed) => &self.killed,
            StageOutcome::Ran(_) => &self.errored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Polls a [`Manager`] with `capacity` workers; each runs the stages it gets
/// with a [`StageRunner`], one at a time.
///
/// A long poll that ends with no work is normal. Failed requests back off
/// exponentially with jitter, capped, and are logged once per streak of
/// failures, not once per try.
pub struct Poller {
    manager: Arc<dyn Manager>,
    runner: Arc<StageRunner>,
    filter: Filter,
    capacity: usize,
    drain_timeout: Duration,
    backoff: (Duration, Duration),
    stats: Arc<PollerStats>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("filter", &self.filter)
            .field("capacity", &self.capacity)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// A poller asking for stages matching `filter`, running up to
    /// `capacity` at once.
    pub fn new(
        manager: Arc<dyn Manager>,
        runner: Arc<StageRunner>,
        filter: Filter,
        capacity: usize,
    ) -> Self {
        Self {
            manager,
            runner,
            filter,
            capacity: capacity.max(1),
            drain_timeout: Duration::from_secs(60 * 60),
            backoff: (Duration::from_secs(1), Duration::from_secs(60)),
            stats: Arc::new(PollerStats::default()),
        }
    }

    /// After shutdown, how long running stages may go on before they are
    /// cancelled (and reported `killed`).
    pub fn with_drain_timeout(mut self, drain: Duration) -> Self {
        self.drain_timeout = drain;
        self
    }

    /// The first and the longest pause after a failed request.
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff = (base, cap);
        self
    }

    /// The counters, live.
    pub fn stats(&self) -> Arc<PollerStats> {
        self.stats.clone()
    }

    /// Polls until `shutdown` fires; then stops asking for work, lets
    /// running stages finish for the drain timeout, cancels what still runs,
    /// waits for those to report, and returns.
    pub async fn run(&self, shutdown: CancellationToken) {
        self.run_with(shutdown, CancellationToken::new()).await;
    }

    /// [`run`](Self::run), with a way to cut the drain short: when `cut`
    /// fires after `shutdown`, the stages still running are cancelled at once
    /// (reported killed) instead of at the drain timeout. A daemon cancels it
    /// on a second SIGTERM. Before `shutdown`, `cut` does nothing.
    pub async fn run_with(&self, shutdown: CancellationToken, cut: CancellationToken) {
        let kill = CancellationToken::new();
        let mut workers = JoinSet::new();
        for worker in 0..self.capacity {
            workers.spawn(
                Worker {
                    id: worker,
                    manager: self.manager.clone(),
                    runner: self.runner.clone(),
                    filter: self.filter.clone(),
                    backoff: Backoff::new(self.backoff.0, self.backoff.1),
                    stats: self.stats.clone(),
                }
                .run(shutdown.clone(), kill.clone()),
            );
        }
        shutdown.cancelled().await;
        tracing::info!("shutting down: no new stages; waiting for running ones");
        let drain = async { while workers.join_next().await.is_some() {} };
        let drained = tokio::select! {
            drained = tokio::time::timeout(self.drain_timeout, drain) => {
                if drained.is_err() {
                    tracing::warn!("drain timeout passed; cancelling the stages still running");
                }
                drained.is_ok()
            }
            () = cut.cancelled() => {
                tracing::warn!("drain cut short; cancelling the stages still running");
                false
            }
        };
        if !drained {
            kill.cancel();
            while workers.join_next().await.is_some() {}
        }
    }
}

struct Worker {
    id: usize,
    manager: Arc<dyn Manager>,
    runner: Arc<StageRunner>,
    filter: Filter,
    backoff: Backoff,
    stats: Arc<PollerStats>,
}

impl Worker {
    async fn run(mut self, shutdown: CancellationToken, kill: CancellationToken) {
        loop {
            let asked = Instant::now();
            // Biased: once shutdown is asked for, a request that would be
            // answered at once (work is queued) must not win the race and
            // take one more stage.
            let answer = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                answer = self.manager.request(&self.filter) => answer,
            };
            match answer {
                Ok(Some(stage)) if stage.id != 0 => {
                    self.recovered();
                    self.run_stage(stage, &kill).await;
                }
                Ok(_) => {
                    self.recovered();
                    // A server that answers "no work" at once must not make
                    // this loop spin.
                    if asked.elapsed() < Duration::from_millis(500) {
                        pause(&shutdown, Duration::from_secs(1)).await;
                    }
                }
                Err(e) => {
                    self.stats.poll_errors.fetch_add(1, Ordering::Relaxed);
                    let delay = self.backoff.next_delay();
                    if self.backoff.attempts() == 1 {
                        match &e {
                            ManagerError::Unauthorized { .. } => tracing::error!(
                                worker = self.id,
                                "the server refuses this runner's secret ({e}); check {}",
                                runnerkit_core::settings::RPC_SECRET.name
                            ),
                            _ => {
                                tracing::warn!(worker = self.id, error = %e, "requesting work failed; backing off")
                            }
                        }
                    } else {
                        tracing::debug!(worker = self.id, error = %e, ?delay, "requesting work failed again");
                    }
                    pause(&shutdown, delay).await;
                }
            }
        }
    }

    fn recovered(&mut self) {
        if self.backoff.attempts() > 0 {
            tracing::info!(
                worker = self.id,
                failures = self.backoff.attempts(),
                "reached the server again"
            );
            self.backoff.reset();
        }
    }

    /// Runs one stage. [`StageRunner::run`] reports a panic in the stage's
    /// own flow as that stage's error; one caught here happened before the
    /// stage was ours (in `accept`), so there is nothing to report, and the
    /// worker lives on either way.
    async fn run_stage(&self, stage: Stage, kill: &CancellationToken) {
        self.stats.running.fetch_add(1, Ordering::Relaxed);
        let id = stage.id;
        let run = AssertUnwindSafe(self.runner.run(stage, kill.child_token())).catch_unwind();
        let outcome = match run.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                tracing::error!(stage = id, "stage lost: {e}");
                StageOutcome::Refused(std::sync::Arc::new(crate::StageError::Lost(e)))
            }
            Err(panic) => {
                let msg = panic_message(&*panic);
                tracing::error!(stage = id, "the runner panicked taking the stage: {msg}");
                StageOutcome::Refused(std::sync::Arc::new(crate::StageError::Panic(msg)))
            }
        };
        self.stats.running.fetch_sub(1, Ordering::Relaxed);
        self.stats.ended(&outcome);
    }
}

async fn pause(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(d) => {}
    }
}

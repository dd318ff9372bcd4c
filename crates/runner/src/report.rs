//! The reporting hook: step updates and live logs to the [`Manager`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use runnerkit_core::drone;
use runnerkit_core::{
    CancellationToken, Hook, HookError, Line, Lines, LogUpload, Manager, ManagerError, State,
    Status, StepDecision, StepLog, StepState,
};
use tokio::sync::Notify;

use crate::journal::HeldStage;

/// How live logs are batched toward the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Pending lines are sent at least this often.
    pub batch_interval: Duration,
    /// A batch is sent early once it holds this many lines.
    pub batch_lines: usize,
    /// At most this many lines wait per step (a server that cannot keep up);
    /// past it, lines are counted instead and the next batch says how many
    /// were not streamed live. The uploaded log always has them all.
    pub buffer_lines: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            batch_interval: Duration::from_secs(1),
            batch_lines: 500,
            buffer_lines: 10_000,
        }
    }
}

pub(crate) fn unix(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Drone keeps 500 characters of an error. Only shortened here: an error
/// from the runtime's state is masked already (cutting into a `******`
/// reveals nothing).
pub(crate) fn truncate_error(e: &str) -> String {
    e.chars().take(500).collect()
}

#[derive(Debug, Default)]
struct Pending {
    lines: Vec<Line>,
    /// Lines dropped from the live stream since the last batch that got
    /// through.
    cut: u64,
    closed: bool,
    /// Batches refused in a row, to warn once per streak.
    failures: u32,
}

/// `lines`, opened by a notice of the `cut` lines before them that were not
/// streamed live, when there were any. The notice takes the number of the
/// line it stands before: it is not part of the step's log.
fn with_cut_notice(lines: &[Line], cut: u64) -> Vec<Line> {
    let mut batch = Vec::with_capacity(lines.len() + 1);
    if cut > 0 {
        batch.push(Line {
            number: lines.first().map_or(0, |l| l.number),
            message: format!(
                "[runnerkit] {cut} lines were not streamed live (the server did not keep up); the full log is uploaded when the step ends"
            ),
            timestamp: lines.first().map_or(0, |l| l.timestamp),
        });
    }
    batch.extend_from_slice(lines);
    batch
}

/// One step's live log: lines waiting to be sent, and a lock that keeps the
/// batches of one step in order and before its upload.
#[derive(Debug, Default)]
struct LiveLog {
    pending: Mutex<Pending>,
    sending: tokio::sync::Mutex<()>,
    /// Lines to show first: compile warnings for this step, numbered from 0.
    preamble: Vec<Line>,
}

/// Sends every state change of one stage to the server: `before`/`after` per
/// step, live log batches, the full log, with ids and versions merged back.
pub(crate) struct Reporter {
    manager: Arc<dyn Manager>,
    stage_id: i64,
    /// This runner's name, as the server has it on the stage.
    machine: String,
    steps: Mutex<Vec<drone::Step>>,
    logs: Vec<LiveLog>,
    config: LogConfig,
    wake: Notify,
    /// Cancelled when the server refuses a report with a conflict: the stage
    /// was cancelled or taken over there, so its running steps are stopped.
    stage: CancellationToken,
    /// The stage's journal entry: every acknowledged step version goes
    /// there, for the final update a restarted runner sends.
    held: Option<Arc<HeldStage>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reporter {
    /// Reports for the registered `steps` (every step of the spec, in order),
    /// with each step's warnings to open its log.
    pub(crate) fn new(
        manager: Arc<dyn Manager>,
        started: &drone::Stage,
        warnings: Vec<Vec<String>>,
        config: LogConfig,
        stage: CancellationToken,
        held: Option<Arc<HeldStage>>,
    ) -> Arc<Self> {
        let logs = warnings
            .into_iter()
            .map(|warnings| LiveLog {
                preamble: warnings
                    .into_iter()
                    .enumerate()
                    .map(|(i, message)| Line {
                        number: i as u64,
                        message,
                        timestamp: 0,
                    })
                    .collect(),
                ..LiveLog::default()
            })
            .collect();
        Arc::new(Self {
            manager,
            stage_id: started.id,
            machine: started.machine.clone(),
            steps: Mutex::new(started.steps.clone()),
            logs,
            config,
            wake: Notify::new(),
            stage,
            held,
        })
    }

    /// Merges `step` (as the server acknowledged it) back, and journals it.
    fn merge(&self, index: usize, step: drone::Step) {
        let mut steps = lock(&self.steps);
        steps[index] = step;
        if let Some(held) = &self.held {
            held.record_steps(&steps);
        }
    }

    /// The registered steps as last merged back from the server.
    pub(crate) fn steps(&self) -> Vec<drone::Step> {
        lock(&self.steps).clone()
    }

    /// Sends pending lines every `batch_interval`, or sooner when a step has
    /// a full batch, until `stop` fires.
    pub(crate) async fn flush_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.batch_interval) => {}
            }
            for index in 0..self.logs.len() {
                self.flush(index).await;
            }
        }
    }

    /// Sends step `index`'s pending lines, if any. A batch the server
    /// refuses goes back to the front of the buffer, to be sent again with
    /// the next one (not one it may have applied, its answer lost); past the buffer's bound its oldest lines are counted
    /// instead, and the next batch that gets through says how many were not
    /// streamed live.
    async fn flush(&self, index: usize) {
        let log = &self.logs[index];
        let _order = log.sending.lock().await;
        let (lines, cut) = {
            let mut p = lock(&log.pending);
            (std::mem::take(&mut p.lines), std::mem::take(&mut p.cut))
        };
        if lines.is_empty() && cut == 0 {
            return;
        }
        let batch = with_cut_notice(&lines, cut);
        let step_id = lock(&self.steps)[index].id;
        let result = self.manager.write(step_id, &batch).await;
        let mut p = lock(&log.pending);
        match result {
            Ok(()) => {
                if p.failures > 0 {
                    tracing::info!(
                        step_id,
                        failures = p.failures,
                        "live log batches go through again"
                    );
                }
                p.failures = 0;
            }
            Err(e) if e.maybe_applied() => {
                // The server may have appended the batch: sending it again
                // could show its lines twice. The upload has them all.
                tracing::debug!(step_id, lines = lines.len(), error = %e, "a live log batch's answer was lost; not sent again");
                p.failures = p.failures.saturating_add(1);
            }
            Err(e) => {
                // Every line is in the upload at the end whatever happens;
                // the live stream only has to be told what it missed.
                if p.failures == 0 {
                    tracing::warn!(step_id, error = %e, "sending a live log batch failed; keeping the lines to send again");
                } else {
                    tracing::debug!(step_id, error = %e, "sending a live log batch failed again");
                }
                p.failures = p.failures.saturating_add(1);
                let mut kept = lines;
                kept.append(&mut p.lines);
                let over = kept.len().saturating_sub(self.config.buffer_lines);
                kept.drain(..over);
                p.lines = kept;
                p.cut += cut + over as u64;
            }
        }
    }

    fn refused(&self, what: &str, e: ManagerError) -> HookError {
        if matches!(e, ManagerError::Conflict) {
            self.stage.cancel();
            return HookError::new(format!(
                "the server refused the {what}: the stage was cancelled or taken over"
            ));
        }
        HookError::new(format!("reporting the {what} failed: {e}")).with_source(e)
    }

    /// Sends one step update and merges the answer back.
    async fn update(
        &self,
        index: usize,
        before: bool,
        edit: impl FnOnce(&mut drone::Step),
    ) -> Result<(), HookError> {
        let mut step = lock(&self.steps)[index].clone();
        edit(&mut step);
        let result = if before {
            self.manager.before(&mut step).await
        } else {
            self.manager.after(&mut step).await
        };
        match result {
            Ok(()) => {
                self.merge(index, step);
                Ok(())
            }
            Err(ManagerError::Conflict) if self.still_running_here().await => {
                // Only a cancel rewrites a running stage's steps on the
                // server, and there was none. So this update's own earlier
                // attempt may have been applied while its answer was lost
                // (a proxy's 502/504 after forwarding it) and the retry met
                // the version it had bumped. Sending it once more with that
                // version tells: the server takes it only if so; if not,
                // it refuses it again, changing nothing.
                step.version += 1;
                let resent = if before {
                    self.manager.before(&mut step).await
                } else {
                    self.manager.after(&mut step).await
                };
                match resent {
                    Ok(()) => {
                        tracing::info!(
                            step = %step.name,
                            "a step update was applied though its answer was lost"
                        );
                        self.merge(index, step);
                        Ok(())
                    }
                    Err(e) => Err(self.refused("step update", e)),
                }
            }
            Err(e) => Err(self.refused("step update", e)),
        }
    }

    /// Whether the server still has the stage running on this runner, in a
    /// build nobody cancelled.
    async fn still_running_here(&self) -> bool {
        match self.manager.details(self.stage_id).await {
            Ok(details) => {
                details.stage.status == Status::Running
                    && details.stage.machine == self.machine
                    && !matches!(
                        details.build.status,
                        Status::Killed | Status::Skipped | Status::Error | Status::Failure
                    )
            }
            Err(e) => {
                tracing::warn!(stage = self.stage_id, error = %e, "cannot read the stage back after a conflict");
                false
            }
        }
    }
}

#[async_trait]
impl Hook for Reporter {
    async fn before_each(&self, _: &State, step: &StepState) -> Result<StepDecision, HookError> {
        let started = unix(step.started);
        self.update(step.index, true, |s| {
            s.status = Status::Running;
            s.started = started;
            s.stopped = 0;
            s.exit_code = 0;
        })
        .await?;
        let log = &self.logs[step.index];
        lock(&log.pending).lines.extend_from_slice(&log.preamble);
        Ok(StepDecision::Run)
    }

    /// The upload reads the runtime's kept log.
    fn wants_log(&self) -> bool {
        true
    }

    /// One lock per batch; each line is copied once, into the pending batch.
    fn got_lines(&self, _: &State, step: &StepState, lines: Lines<'_>) {
        let Some(log) = self.logs.get(step.index) else {
            return;
        };
        let offset = log.preamble.len() as u64;
        let mut p = lock(&log.pending);
        if p.closed {
            return;
        }
        let room = self.config.buffer_lines.saturating_sub(p.lines.len());
        p.cut += lines.len().saturating_sub(room) as u64;
        p.lines.extend(lines.iter().take(room).map(|line| Line {
            number: line.number + offset,
            ..line.to_line()
        }));
        if p.lines.len() >= self.config.batch_lines {
            self.wake.notify_one();
        }
    }

    async fn got_logs(&self, _: &State, step: &StepState, kept: &StepLog) -> Result<(), HookError> {
        self.flush(step.index).await;
        let log = &self.logs[step.index];
        {
            // The live stream closes with the step: what the last flush could
            // not send is in the upload, and must not be retried against a
            // closed stream for the rest of the stage.
            let mut p = lock(&log.pending);
            p.closed = true;
            p.lines = Vec::new();
            p.cut = 0;
        }
        let upload = LogUpload {
            head: &log.preamble,
            log: Some(kept),
        };
        let step_id = lock(&self.steps)[step.index].id;
        let _order = log.sending.lock().await;
        self.manager
            .upload(step_id, upload)
            .await
            .map_err(|e| self.refused("log upload", e))
    }

    async fn after_each(&self, _: &State, step: &StepState) -> Result<(), HookError> {
        let (started, stopped) = (unix(step.started), unix(step.stopped));
        let error = step
            .error
            .as_deref()
            .map(truncate_error)
            .unwrap_or_default();
        self.update(step.index, false, |s| {
            s.status = step.status;
            s.exit_code = step.exit_code;
            s.started = if started == 0 { stopped } else { started };
            s.stopped = stopped;
            s.error = error;
        })
        .await
    }
}

//! The [`Manager`] contract: how a runner talks to the CI server.

use async_trait::async_trait;

use crate::drone::{Details, Filter, Netrc, Stage, Step};
use crate::{Line, LogUpload};

/// The runner's side of the conversation with a CI server: where stages come
/// from and where their progress goes. Two implementations ship: Drone's HTTP
/// runner RPC (`runnerkit-drone`) and an in-process queue (`runnerkit-runner`).
///
/// # Who calls what, when
///
/// The poller and stage runner of `runnerkit-runner` call, for one stage:
///
/// 1. [`request`](Manager::request) until it yields a stage (many workers
///    call it concurrently).
/// 2. [`accept`](Manager::accept): claim it. [`ManagerError::Conflict`] means
///    another runner won the race; the stage is dropped without a report.
/// 3. [`watch`](Manager::watch) in the background until the stage ends;
///    [`details`](Manager::details) (and [`netrc`](Manager::netrc) where the
///    server does not put it in the details).
/// 4. [`before_all`](Manager::before_all) once with the stage `running` and
///    every step `pending`; the answer's ids and versions are merged back.
/// 5. Per step: [`before`](Manager::before) (`running`), any number of
///    [`write`](Manager::write) batches, [`upload`](Manager::upload) of the
///    whole log, then [`after`](Manager::after) (final status). Steps run
///    concurrently, so calls for different steps overlap; calls for one step
///    are sequential and in this order.
/// 6. [`after_all`](Manager::after_all) once with the final stage and every
///    step.
///
/// # Updates merge back
///
/// `before_all`, `after_all`, `before` and `after` take the object by
/// `&mut`: on success the implementation writes the server's answer back into
/// it (ids, `version`, server-side fields), so the next update carries the
/// current optimistic-lock version. On error the object is left unchanged.
///
/// # Errors
///
/// [`ManagerError::Conflict`] on any update means the stage was cancelled or
/// taken over on the server: start no further steps. Transient failures
/// (network, 5xx from a proxy) are retried inside the implementation with
/// backoff as far as the call's nature allows; what comes out is final.
///
/// # Cancel safety
///
/// Every method may be dropped at an `.await` point (the caller gives up on
/// shutdown or when the stage ends); no state is left half-applied in the
/// caller's objects.
#[async_trait]
pub trait Manager: Send + Sync {
    /// Waits for a stage matching `filter`. `Ok(None)` means "nothing yet,
    /// ask again" (a long poll that ran out), not an error.
    async fn request(&self, filter: &Filter) -> Result<Option<Stage>, ManagerError>;

    /// Claims stage `stage_id` for runner `machine` and returns it as updated
    /// by the server.
    async fn accept(&self, stage_id: i64, machine: &str) -> Result<Stage, ManagerError>;

    /// Everything needed to run the stage: build, repository, config, secrets,
    /// netrc.
    async fn details(&self, stage_id: i64) -> Result<Details, ManagerError>;

    /// Clone credentials for the repository, where the server has them apart
    /// from the details (Drone's v2 protocol puts them in the details and
    /// answers `Ok(None)` here).
    async fn netrc(&self, repo_id: i64) -> Result<Option<Netrc>, ManagerError>;

    /// Waits until build `build_id` is cancelled (`Ok(true)`) or the long
    /// poll runs out (`Ok(false)`: call again).
    async fn watch(&self, build_id: i64) -> Result<bool, ManagerError>;

    /// Reports the stage started: status `running`, `started` set, every step
    /// `pending`. Exactly once per stage.
    async fn before_all(&self, stage: &mut Stage) -> Result<(), ManagerError>;

    /// Reports the stage's final status with every step's.
    async fn after_all(&self, stage: &mut Stage) -> Result<(), ManagerError>;

    /// Reports a step started (`running`, `started` set). Opens its live log.
    async fn before(&self, step: &mut Step) -> Result<(), ManagerError>;

    /// Reports a step's final status. Closes its live log.
    async fn after(&self, step: &mut Step) -> Result<(), ManagerError>;

    /// Appends a batch of lines to step `step_id`'s live log.
    async fn write(&self, step_id: i64, lines: &[Line]) -> Result<(), ManagerError>;

    /// Stores the whole log of step `step_id`. Called once, after the last
    /// `write` and before `after`. The log may be larger than memory (its
    /// [`StepLog`](crate::StepLog) spilled to a file): read it with
    /// [`LogUpload::for_each`] rather than collect it into lines.
    async fn upload(&self, step_id: i64, log: LogUpload<'_>) -> Result<(), ManagerError>;
}

/// Why a [`Manager`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// Optimistic-lock conflict (HTTP 409): another runner accepted the stage,
    /// or the server changed it (a cancel). Not a failure to report.
    #[error("optimistic lock error: the stage was taken or changed on the server")]
    Conflict,
    /// The server refused the runner's credentials (HTTP 401/403).
    #[error("the server refused the runner's token (HTTP {status})")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// The server answered with an error.
    #[error("server error (HTTP {status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the server at {address}")]
    Transport {
        /// The address called.
        address: String,
        /// The request may have reached the server (the connection broke
        /// after it was sent, or the answer timed out), so it may have been
        /// applied; `false` when it surely was not (no connection).
        sent: bool,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The answer could not be understood.
    #[error("invalid answer from the server: {0}")]
    Invalid(String),
    /// The requested object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

impl ManagerError {
    /// Whether the server may have applied the call though it failed: its
    /// answer was lost on the way ([`Transport`](Self::Transport) with
    /// `sent`, or a proxy's 502/504 after forwarding it). A caller must not
    /// repeat such a call blindly when it is not idempotent (a log batch
    /// appends).
    pub fn maybe_applied(&self) -> bool {
        matches!(
            self,
            Self::Transport { sent: true, .. }
                | Self::Server {
                    status: 502 | 504,
                    ..
                }
        )
    }
}

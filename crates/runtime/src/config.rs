//! Tunables of the runtime.

use std::time::Duration;

/// How a [`Runtime`](crate::Runtime) runs stages. `Default` gives sensible
/// values; override fields with struct update syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Most steps running at once (detached steps count until they started);
    /// `None` for no limit.
    pub concurrency_limit: Option<usize>,
    /// The whole stage is cancelled (status `killed`) after this long.
    pub stage_timeout: Option<Duration>,
    /// Default per-step timeout, for steps without their own
    /// [`Step::timeout`](runnerkit_core::Step::timeout). A step that runs
    /// longer is killed; the rest of the stage goes on as after a failure.
    pub step_timeout: Option<Duration>,
    /// After a step's token is cancelled, how long the engine gets to make
    /// `wait` return before the runtime stops waiting and reports it killed.
    pub kill_grace: Duration,
    /// Deadline of `destroy`.
    pub destroy_timeout: Duration,
    /// How long a step's log stream may go on after `wait` returned (or a
    /// detached step's after `destroy`) before the runtime stops reading it.
    pub drain_timeout: Duration,
    /// Bytes of log kept per step; past it, a marker line and a count.
    pub log_limit: usize,
    /// Bytes of a step's whole log kept in memory, for hooks that want it
    /// ([`Hook::wants_log`](runnerkit_core::Hook::wants_log)); past it the
    /// log moves to a temporary file ([`StepLog`](runnerkit_core::StepLog)).
    pub log_memory: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            concurrency_limit: None,
            stage_timeout: None,
            step_timeout: None,
            kill_grace: Duration::from_secs(30),
            destroy_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(10),
            log_limit: 5 * 1024 * 1024,
            log_memory: 1024 * 1024,
        }
    }
}

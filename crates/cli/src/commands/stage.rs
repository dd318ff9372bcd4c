//! Running one compiled stage with the CLI's reporter: shared by `exec` and
//! its tests, independent of where the Spec came from.

use std::sync::Arc;
use std::time::Duration;

use runnerkit_core::{CancellationToken, Engine, Hook, Snapshot, Spec};
use runnerkit_runtime::{Runtime, RuntimeConfig};

/// What the command line says about how the stage runs.
#[derive(Debug, Clone, Default)]
pub struct StageOptions {
    /// `--timeout`: the stage is killed after this long; `None` for never.
    pub timeout: Option<Duration>,
    /// `--max-procs`: most steps running at once; `None` for no limit.
    pub max_procs: Option<usize>,
    /// `--resume-at`, resolved: the index in `Spec::steps` to start at.
    pub resume_at: Option<usize>,
    /// `--log-limit`: bytes of each step's log kept; `None` for all of it.
    pub log_limit: Option<usize>,
}

/// Settings for a run on a developer's machine: a short kill grace so Ctrl-C
/// feels immediate, and a bounded teardown.
fn config(options: &StageOptions) -> RuntimeConfig {
    RuntimeConfig {
        kill_grace: Duration::from_secs(10),
        destroy_timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(5),
        stage_timeout: options.timeout,
        concurrency_limit: options.max_procs,
        // A local run prints every line unless told otherwise: the
        // runtime's default cap is the server's.
        log_limit: options.log_limit.unwrap_or(usize::MAX),
        ..RuntimeConfig::default()
    }
}

/// Runs `spec` on `engine` with `hooks` (in order), until it ends or
/// `cancel` fires. `Err` only when the runtime refused the spec before
/// anything ran.
pub async fn run(
    engine: Arc<dyn Engine>,
    spec: Spec,
    hooks: Vec<Arc<dyn Hook>>,
    options: &StageOptions,
    cancel: CancellationToken,
) -> Result<Snapshot, runnerkit_runtime::Error> {
    let runtime = hooks
        .into_iter()
        .fold(Runtime::new(engine), Runtime::with_hook)
        .with_config(config(options));
    match options.resume_at {
        Some(start) => runtime.resume(Arc::new(spec), start, cancel).await,
        None => runtime.run(Arc::new(spec), cancel).await,
    }
}

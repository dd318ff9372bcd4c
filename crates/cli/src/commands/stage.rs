//! Running one compiled stage with the CLI's reporter: shared by `exec` and
//! its tests, independent of where the Spec came from.

use std::sync::Arc;
use std::time::Duration;

use runnerkit_core::{CancellationToken, Engine, Hook, Snapshot, Spec};
use runnerkit_runtime::{Runtime, RuntimeConfig};

/// Settings for a run on a developer's machine: a short kill grace so Ctrl-C
/// feels immediate, and a bounded teardown.
fn config() -> RuntimeConfig {
    RuntimeConfig {
        kill_grace: Duration::from_secs(10),
        destroy_timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(5),
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
    cancel: CancellationToken,
) -> Result<Snapshot, runnerkit_runtime::Error> {
    hooks
        .into_iter()
        .fold(Runtime::new(engine), Runtime::with_hook)
        .with_config(config())
        .run(Arc::new(spec), cancel)
        .await
}

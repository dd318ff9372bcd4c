//! Which engine runs a pipeline, by its `type`.

use std::sync::Arc;

use anyhow::{Context, bail};
use runnerkit_core::Engine;
use runnerkit_local::LocalEngine;

/// The engine for pipelines of `pipeline_type`: host processes for `exec`,
/// the Docker daemon for `docker` (connecting now, so an unreachable daemon
/// refuses the run before anything starts).
pub async fn for_type(pipeline_type: &str) -> anyhow::Result<Arc<dyn Engine>> {
    match pipeline_type {
        "exec" => Ok(Arc::new(LocalEngine::new())),
        "docker" => {
            let engine = runnerkit_docker::DockerEngine::connect().await.context(
                "the Docker engine is not available (is the daemon running? DOCKER_HOST?)",
            )?;
            Ok(Arc::new(engine))
        }
        other => bail!(
            "pipelines of type {other:?} cannot run here: runnerkit exec runs `type: exec` and `type: docker`"
        ),
    }
}

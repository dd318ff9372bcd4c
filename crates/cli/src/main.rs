//! `runnerkit`: the runner built on `runnerkit-cli`'s [`Runner`] with the
//! two reference engines registered through the public API, as a third
//! party registers its own.

use runnerkit_cli::{BoxError, Runner, RunnerType};
use runnerkit_core::CancellationToken;
use runnerkit_docker::DockerEngine;
use runnerkit_local::LocalEngine;
use runnerkit_manifest::PipelineType;

/// Connects to the Docker daemon (`DOCKER_HOST` or the default socket), so
/// that an unreachable daemon refuses the run before anything starts.
async fn docker() -> Result<DockerEngine, BoxError> {
    DockerEngine::connect().await.map_err(|e| {
        format!(
            "the Docker engine is not available (is the daemon running? DOCKER_HOST?): {}",
            runnerkit_core::error_chain(&e)
        )
        .into()
    })
}

/// Removes the Docker objects of runs whose process is gone.
async fn prune_docker() -> Result<Vec<String>, BoxError> {
    let report = docker().await?.prune(&CancellationToken::new()).await?;
    let named = |kind: &str, names: Vec<String>| {
        names
            .into_iter()
            .map(|name| format!("{kind} {name}"))
            .collect::<Vec<_>>()
    };
    let mut removed = named("container", report.containers);
    removed.extend(named("network", report.networks));
    removed.extend(named("volume", report.volumes));
    Ok(removed)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    Runner::new("runnerkit")
        .version(env!("CARGO_PKG_VERSION"))
        .with_type(
            RunnerType::new(PipelineType::docker(), docker)
                .about("each step in a Docker container")
                .with_prune(prune_docker),
        )
        .with_type(
            // The daemon and `exec` share this engine, with its default home
            // per stage (Drone's exec runner's). `exec` keeps the user's
            // HOME by setting it on each step of the Spec it runs (see the
            // CLI's platform.rs), and a step's own HOME wins in the engine.
            RunnerType::new(PipelineType::exec(), || async {
                Ok::<_, BoxError>(LocalEngine::new())
            })
            .about("each step as a process on this machine"),
        )
        .run()
        .await
}

//! `runnerkit`: the runner built on `runnerkit-cli`'s [`Runner`] with the
//! three reference engines registered through the public API, as a third
//! party registers its own.

use runnerkit_cli::{BoxError, EngineSettings, Runner, RunnerType};
use runnerkit_core::CancellationToken;
use runnerkit_docker::{DockerEngine, DockerSettings};
use runnerkit_kube::{KubeEngine, KubeSettings};
use runnerkit_local::{HomePolicy, LocalEngine};
use runnerkit_manifest::PipelineType;

/// Connects to the Docker daemon (`DOCKER_HOST`, Podman's `CONTAINER_HOST`
/// or a local socket) with the runner's Docker settings, so that an
/// unreachable daemon refuses the run before anything starts.
async fn docker(settings: EngineSettings) -> Result<DockerEngine, BoxError> {
    let settings = DockerSettings::from_lookup(|name| settings.get(name))?;
    let engine = DockerEngine::connect().await.map_err(|e| {
        format!(
            "the Docker engine is not available (is the daemon running? DOCKER_HOST?): {}",
            runnerkit_core::error_chain(&e)
        )
    })?;
    Ok(engine.with_settings(&settings))
}

/// Removes the Docker objects of runs whose process is gone.
async fn prune_docker(settings: EngineSettings) -> Result<Vec<String>, BoxError> {
    let report = docker(settings)
        .await?
        .prune(&CancellationToken::new())
        .await?;
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

/// Connects to the cluster of the current kubeconfig (or the pod's service
/// account) with the runner's Kubernetes settings.
async fn kube(settings: EngineSettings) -> Result<KubeEngine, BoxError> {
    let settings = KubeSettings::from_lookup(|name| settings.get(name))?;
    answering(KubeEngine::connect(settings).await?).await
}

/// `engine`, once its cluster answered.
async fn answering(engine: KubeEngine) -> Result<KubeEngine, BoxError> {
    engine.ping().await.map_err(|e| {
        format!(
            "the Kubernetes cluster does not answer (KUBECONFIG?): {}",
            runnerkit_core::error_chain(&e)
        )
    })?;
    Ok(engine)
}

/// Removes the pods and secrets of runs whose process is gone. A machine
/// with no cluster configured at all has none to prune: that is not a
/// failure of `runnerkit prune` (a Docker-only user's `prune` must pass).
async fn prune_kube(settings: EngineSettings) -> Result<Vec<String>, BoxError> {
    let kube_settings = KubeSettings::from_lookup(|name| settings.get(name))?;
    let engine = match KubeEngine::connect(kube_settings).await {
        Err(runnerkit_kube::Error::Config(e)) => {
            tracing::debug!(error = %e, "no Kubernetes configuration: nothing to prune there");
            return Ok(Vec::new());
        }
        connected => connected?,
    };
    let report = answering(engine).await?.prune().await?;
    let mut removed: Vec<String> = report
        .pods
        .into_iter()
        .map(|p| format!("pod {p}"))
        .collect();
    removed.extend(report.secrets.into_iter().map(|s| format!("secret {s}")));
    Ok(removed)
}

fn main() -> std::process::ExitCode {
    Runner::new("runnerkit")
        .version(env!("CARGO_PKG_VERSION"))
        .with_type(
            RunnerType::configured(PipelineType::docker(), docker)
                .about("each step in a Docker container")
                .with_prune(prune_docker),
        )
        .with_type(
            RunnerType::configured(runnerkit_kube::pipeline_type(), kube)
                .about("each stage as one pod on a Kubernetes cluster")
                .with_prune(prune_kube),
        )
        .with_type(
            // The daemon keeps a home per stage (Drone's exec runner's);
            // `exec` on the user's machine keeps the user's HOME, so their
            // caches and configuration work. A step's own HOME wins in both.
            RunnerType::new(PipelineType::exec(), || async {
                Ok::<_, BoxError>(LocalEngine::new())
            })
            .with_local_engine(|| async {
                Ok::<_, BoxError>(LocalEngine::new().with_home(HomePolicy::Inherit))
            })
            .with_prune(|_| async { Ok::<_, BoxError>(LocalEngine::new().prune().await?) })
            .about("each step as a process on this machine"),
        )
        .main()
}

//! `runnerkit daemon`: a runner taking stages from a Drone server, and
//! `runnerkit ping` / `daemon --dry-run`, which only check the server.
//!
//! The flow of one stage is `runnerkit-runner`'s ([`Poller`],
//! [`StageRunner`]); this module wires it to the settings
//! ([`settings`]), the engine, the Drone client, the signals and the HTTP
//! endpoint ([`http`]) with what it shows ([`board`], [`metrics`],
//! [`page`]).

pub mod board;
pub mod http;
pub mod metrics;
pub mod page;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use runnerkit_core::{CancellationToken, Engine, Manager, ManagerError};
use runnerkit_drone::{DroneConfig, DroneManager, EnvironPlugin, RegistryPlugin, SecretPlugin};
use runnerkit_runner::{Poller, StageRunner};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{DaemonArgs, DaemonSettingsArgs, PingArgs};
use crate::logging::{self, Verbosity};
use crate::output::error_chain;
use crate::output::exit::Outcome;
use board::{Board, Observed};
use metrics::RunnerInfo;
use settings::{Settings, Values};

use crate::runner::{Runner, RunnerType};

/// Runs the daemon until SIGTERM or SIGINT (or only checks the server with
/// `--dry-run`). Every error that stops it is printed on one line.
pub async fn run(args: &DaemonArgs, runner: &Runner) -> Outcome {
    if args.dry_run {
        return dry_run(&args.settings, runner).await;
    }
    let started = async {
        let values = Values::load(args.settings.envfile.as_deref(), &args.settings.given())?;
        logging::install(settings::verbosity(&values)?);
        let settings = Settings::read(&values, runner.types())?;
        serve(settings, runner).await
    };
    match started.await {
        Ok(()) => Outcome::Clean,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            Outcome::Failed
        }
    }
}

/// `runnerkit ping`: [`check`] with the server's settings alone.
pub async fn ping(args: &PingArgs) -> Outcome {
    check(async {
        let values = Values::load(args.envfile.as_deref(), &args.server.given())?;
        settings::drone(&values)
    })
    .await
}

/// `daemon --dry-run`: [`check`] after reading every setting, so a bad one
/// is found too.
async fn dry_run(args: &DaemonSettingsArgs, runner: &Runner) -> Outcome {
    check(async {
        let values = Values::load(args.envfile.as_deref(), &args.given())?;
        Ok(Settings::read(&values, runner.types())?.drone)
    })
    .await
}

/// Checks that the server `config` names answers and accepts the secret,
/// and says so on one line.
async fn check(config: impl Future<Output = anyhow::Result<DroneConfig>>) -> Outcome {
    logging::install(Verbosity::Warn);
    let checked = async {
        let config = config.await?;
        let manager = DroneManager::new(&config)?;
        manager
            .ping()
            .await
            .map_err(|e| ping_error(manager.server(), e))?;
        Ok::<_, anyhow::Error>(manager.server().to_owned())
    };
    match checked.await {
        Ok(server) => {
            println!("ok: the Drone server at {server} answers and accepts the secret");
            Outcome::Clean
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            Outcome::Failed
        }
    }
}

/// A failed ping, said so an operator knows what to fix.
fn ping_error(server: &str, error: ManagerError) -> anyhow::Error {
    match error {
        ManagerError::Unauthorized { status: 403 } => anyhow::anyhow!(
            "the Drone server at {server} refuses every runner (HTTP 403): it has no DRONE_RPC_SECRET set"
        ),
        ManagerError::Unauthorized { status } => anyhow::anyhow!(
            "the Drone server at {server} refused the secret (HTTP {status}): check DRONE_RPC_SECRET"
        ),
        ManagerError::Transport { source, .. } => {
            // The innermost cause says why (refused, no such host, TLS);
            // the layers above it repeat the URL.
            let mut cause: &(dyn std::error::Error + 'static) = &*source;
            while let Some(next) = cause.source() {
                cause = next;
            }
            anyhow::anyhow!("cannot reach the Drone server at {server}: {cause}")
        }
        other => anyhow::Error::new(other),
    }
}

/// Starts everything, polls until a signal, drains, stops.
async fn serve(settings: Settings, runner: &Runner) -> anyhow::Result<()> {
    // Handled from the start: a SIGTERM while connecting must not kill the
    // process half-way; polling then ends before it takes anything.
    let (shutdown, cut) = (CancellationToken::new(), CancellationToken::new());
    let signals = watch_signals(shutdown.clone(), cut.clone(), settings.drain_timeout);
    if let Some(asked) = runner.shutdown().cloned() {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            asked.cancelled().await;
            tracing::info!("shutdown asked: taking no new stages");
            shutdown.cancel();
        });
    }
    // Every Debug on the way hides secret values.
    tracing::debug!(?settings, "settings");
    let kind_type = settings.kind_type.as_str();
    let runner_type = runner
        .types()
        .get(kind_type)
        .with_context(|| format!("{kind_type:?} is not a pipeline type this runner serves"))?;
    let engine = engine(runner_type, &settings.engine).await?;
    let drone = Arc::new(DroneManager::new(&settings.drone)?);
    let server = drone.server().to_owned();
    match drone.ping().await {
        Ok(()) => tracing::info!(%server, "the Drone server answers and accepts the secret"),
        Err(e @ ManagerError::Unauthorized { .. }) => return Err(ping_error(&server, e)),
        // A runner may start before its server: the poller keeps trying.
        Err(e) => {
            tracing::warn!(%server, "the Drone server does not answer yet ({e}); polling anyway")
        }
    }

    let board = Arc::new(Board::default());
    let manager: Arc<dyn Manager> = Arc::new(Observed::new(drone, board.clone()));
    let mut runner_config = settings.runner.runner_config();
    runner_config.types = runner.registry().clone();
    runner_config.hooks = runner.hooks().to_vec();
    if let Some(plugin) = &settings.runner.secret_plugin {
        let client = SecretPlugin::new(&plugin.endpoint, &plugin.token, plugin.skip_verify)
            .context("cannot set up the secret plugin (DRONE_SECRET_PLUGIN_*)")?;
        tracing::info!(endpoint = %client.endpoint(), "secret plugin configured");
        runner_config.secret_plugin = Some(Arc::new(client));
    }
    if let Some(plugin) = &settings.runner.registry_plugin {
        let client = RegistryPlugin::new(&plugin.endpoint, &plugin.token, plugin.skip_verify)
            .context("cannot set up the registry plugin (DRONE_REGISTRY_PLUGIN_*)")?;
        tracing::info!(endpoint = %client.endpoint(), "registry plugin configured");
        runner_config.registry_plugin = Some(Arc::new(client));
    }
    if let Some(plugin) = &settings.runner.environ_plugin {
        let client = EnvironPlugin::new(&plugin.endpoint, &plugin.token, plugin.skip_verify)
            .context("cannot set up the environ plugin (DRONE_ENV_PLUGIN_*)")?;
        tracing::info!(endpoint = %client.endpoint(), "environ plugin configured");
        runner_config.environ_plugin = Some(Arc::new(client));
    }
    runner_config.journal = open_journal(settings.data_dir.as_deref());
    let stage_runner = Arc::new(StageRunner::new(manager.clone(), engine, runner_config));
    // The engine was pruned above (a dead run's processes and objects are
    // gone); now the server hears that the stages it held ended.
    let recovered = stage_runner.recover().await;
    if !recovered.is_empty() {
        tracing::info!(
            stages = ?recovered,
            "reported error the stages a previous run of this runner held when it died"
        );
    }
    let capacity = settings.runner.capacity;
    let poller = Poller::new(
        manager,
        stage_runner,
        settings.runner.filter(kind_type),
        capacity,
    )
    .with_drain_timeout(settings.drain_timeout);
    let stats = poller.stats();

    let listener = tokio::net::TcpListener::bind(&settings.http.bind)
        .await
        .with_context(|| format!("cannot listen on DRONE_HTTP_BIND {}", settings.http.bind))?;
    let address = listener
        .local_addr()
        .context("the HTTP endpoint has no address")?;
    let info = RunnerInfo {
        name: settings.runner.name.clone(),
        kind_type: kind_type.to_owned(),
        capacity,
    };
    let endpoint = Arc::new(http::Endpoint {
        info,
        stats: stats.clone(),
        board,
        settings: settings.http.clone(),
    });
    let stop_http = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(
        listener,
        http::router(endpoint),
        stop_http.clone(),
    ));
    tracing::info!("serving /healthz, /metrics and the stages page on http://{address}");

    tracing::info!(
        name = %settings.runner.name,
        r#type = kind_type,
        capacity,
        %server,
        "polling for stages"
    );
    poller.run_with(shutdown, cut).await;
    signals.abort();
    stop_http.cancel();
    let _ = http_task.await;
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        succeeded = count(&stats.succeeded),
        failed = count(&stats.failed),
        errored = count(&stats.errored),
        killed = count(&stats.killed),
        "stopped"
    );
    Ok(())
}

/// The stage journal under `data_dir`; without one (no directory, or it
/// cannot be made) the daemon runs, but a crash leaves its stages `running`
/// on the server, as Drone's runners do.
fn open_journal(data_dir: Option<&std::path::Path>) -> Option<runnerkit_runner::Journal> {
    let Some(dir) = data_dir else {
        tracing::warn!("no RUNNERKIT_DATA_DIR and no HOME: keeping no stage journal");
        return None;
    };
    match runnerkit_runner::Journal::open(dir.join("journal")) {
        Ok(journal) => {
            tracing::debug!(dir = %journal.dir().display(), "stage journal");
            Some(journal)
        }
        Err(e) => {
            tracing::warn!(
                "keeping no stage journal: {}",
                runnerkit_core::error_chain(&e)
            );
            None
        }
    }
}

/// The engine of `runner_type`; what crashed runs left is pruned first,
/// where the engine can prune.
async fn engine(
    runner_type: &RunnerType,
    settings: &crate::EngineSettings,
) -> anyhow::Result<Arc<dyn Engine>> {
    let engine = runner_type
        .engine(settings.clone())
        .await
        .map_err(|e| anyhow::anyhow!(runnerkit_core::error_chain(&*e)))?;
    match runner_type.prune(settings.clone()).await {
        None => {}
        Some(Ok(removed)) if removed.is_empty() => {
            tracing::debug!("nothing left by crashed runs to prune");
        }
        Some(Ok(removed)) => tracing::info!(
            removed = removed.len(),
            objects = %removed.join(", "),
            "pruned what crashed runs left behind"
        ),
        Some(Err(e)) => tracing::warn!(
            "pruning what crashed runs left behind failed: {}",
            runnerkit_core::error_chain(&*e)
        ),
    }
    Ok(engine)
}

/// The first SIGTERM or SIGINT starts the shutdown (a drain); the second
/// cuts the drain short, cancelling the running stages, which are reported
/// killed before the daemon exits. The handlers are in place when this
/// returns.
fn watch_signals(
    shutdown: CancellationToken,
    cut: CancellationToken,
    drain: Duration,
) -> tokio::task::JoinHandle<()> {
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot handle SIGTERM and SIGINT: they will end the daemon at once");
        return tokio::spawn(async {});
    };
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let name = tokio::select! {
                Some(()) = terminate.recv() => "SIGTERM",
                Some(()) = interrupt.recv() => "SIGINT",
                else => return,
            };
            if first {
                tracing::info!(
                    "{name}: taking no new stages; running ones get {} to finish, then are cancelled (a second signal cancels them now)",
                    short_duration(drain)
                );
                shutdown.cancel();
                first = false;
            } else if !cut.is_cancelled() {
                tracing::info!("{name}: cancelling the running stages now");
                cut.cancel();
            } else {
                tracing::info!("{name}: already cancelling; waiting for the stages to report");
            }
        }
    })
}

/// `1h`, `10m`, `90s`.
fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{:.0}s", d.as_secs_f64())
    }
}

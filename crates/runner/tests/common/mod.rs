//! The rig of the extension plugin tests: the in-process Drone server, the
//! real Drone client, a runner on the host engine (or another), and the
//! logs it uploaded.
#![allow(dead_code)] // each test file uses a subset

use std::sync::Arc;
use std::time::Duration;

use runnerkit_core::drone;
use runnerkit_core::{CancellationToken, Engine, Manager};
use runnerkit_drone::DroneManager;
use runnerkit_drone::testing::{DroneServer, ServerConfig};
use runnerkit_local::LocalEngine;
use runnerkit_runner::{LogConfig, RunnerConfig, StageOutcome, StageRunner};

/// A Drone server with a runner polling it.
pub struct Rig {
    /// The in-process Drone server.
    pub server: DroneServer,
    /// The runner's client of it.
    pub manager: Arc<DroneManager>,
    /// The runner.
    pub runner: StageRunner,
}

/// A runner configuration for the rig: its name and short log batches;
/// set the plugins with struct update syntax.
pub fn config() -> RunnerConfig {
    RunnerConfig {
        machine: "runner-plugin".into(),
        logs: LogConfig {
            batch_interval: Duration::from_millis(100),
            ..LogConfig::default()
        },
        ..RunnerConfig::default()
    }
}

/// The host engine, as the rig runs stages on it.
pub fn host_engine() -> Arc<LocalEngine> {
    Arc::new(LocalEngine::new().with_kill_grace(Duration::from_secs(1)))
}

impl Rig {
    /// A server and a runner with `config` on the host engine.
    pub async fn start(config: RunnerConfig) -> Self {
        Self::start_on(config, host_engine()).await
    }

    /// A server and a runner with `config` on `engine`.
    pub async fn start_on(config: RunnerConfig, engine: Arc<dyn Engine>) -> Self {
        let server = DroneServer::start(ServerConfig::default()).await.unwrap();
        let manager = Arc::new(DroneManager::new(&server.client_config()).unwrap());
        let runner = StageRunner::new(manager.clone(), engine, config);
        Self {
            server,
            manager,
            runner,
        }
    }

    /// Queues `details` (an `exec` stage), lets the runner take and run it:
    /// the stage's id and the outcome.
    pub async fn run(&self, details: drone::Details) -> (i64, StageOutcome) {
        self.run_typed(details, "exec").await
    }

    /// As [`run`](Self::run), for a stage of pipeline type `kind_type`.
    #[allow(dead_code)] // not every test binary runs other types
    pub async fn run_typed(&self, details: drone::Details, kind_type: &str) -> (i64, StageOutcome) {
        let id = self.server.enqueue(details);
        let filter = drone::Filter {
            kind: "pipeline".into(),
            kind_type: kind_type.into(),
            ..drone::Filter::default()
        };
        let stage = self
            .manager
            .request(&filter)
            .await
            .unwrap()
            .expect("a queued stage");
        let outcome = self
            .runner
            .run(stage, CancellationToken::new())
            .await
            .unwrap();
        (id, outcome)
    }

    /// The uploaded log of `step`, without the `+ command` echoes.
    pub fn uploaded(&self, stage: i64, step: &str) -> Vec<String> {
        let id = self
            .server
            .stage(stage)
            .unwrap()
            .steps
            .iter()
            .find(|s| s.name == step)
            .unwrap()
            .id;
        let body = self.server.uploaded_log(id).expect("a log was uploaded");
        let lines: Vec<drone::Line> = serde_json::from_slice(&body).unwrap();
        lines
            .iter()
            .map(|l| l.out.trim_end_matches('\n').to_owned())
            .filter(|l| !l.starts_with("+ "))
            .collect()
    }
}

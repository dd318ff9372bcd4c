//! A custom runner: `type: vm` pipelines, with a step key of their own
//! (`greeting:`), served by a runner made with `Runner`, run as a daemon
//! against the in-process Drone server until its stage is done.
//! `cargo run --example custom_runner`
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use runnerkit::core::{CancellationToken as Token, Engine, EngineError, ExitState, LogStream};
use runnerkit::core::{Spec, Status, Step};
use runnerkit::local::LocalEngine;
use runnerkit::manifest::{EngineKeys, PipelineType};
use runnerkit_cli::{Runner, RunnerType};
use runnerkit_drone::testing::{DroneServer, ServerConfig, push_stage};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A `type: vm` step's own keys, read from a map that holds Drone's keys
/// too: no `deny_unknown_fields`. Absent, a key is `None`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct VmStep {
    greeting: Option<String>,
}

struct VmKeys;

impl EngineKeys for VmKeys {
    type Pipeline = ();
    type Step = VmStep;

    fn step_keys(&self) -> &[&'static str] {
        &["greeting"]
    }
}

/// Stands in for a VM: runs each step's script on this machine through
/// `LocalEngine`, which keeps the whole contract (cancellation, teardown,
/// stages apart), and opens the step's log with its greeting.
struct VmEngine(LocalEngine);

#[async_trait]
impl Engine for VmEngine {
    fn name(&self) -> &str {
        "vm"
    }
    async fn setup(&self, spec: &Spec, cancel: &Token) -> Result<(), EngineError> {
        self.0.setup(spec, cancel).await
    }
    async fn create(&self, spec: &Spec, step: &Step, cancel: &Token) -> Result<(), EngineError> {
        self.0.create(spec, step, cancel).await
    }
    async fn start(&self, spec: &Spec, step: &Step, cancel: &Token) -> Result<(), EngineError> {
        self.0.start(spec, step, cancel).await
    }
    async fn tail(&self, spec: &Spec, step: &Step, t: &Token) -> Result<LogStream, EngineError> {
        // `get`: as compiled. A Spec read back from JSON would need `decode`.
        let keys = step.options.get::<VmStep>();
        let greeting = keys.and_then(|k| k.greeting.as_deref()).unwrap_or("hello");
        let first = Bytes::from(format!("{greeting} from the vm, step {}\n", step.name));
        let rest = self.0.tail(spec, step, t).await?;
        Ok(Box::pin(stream::iter([Ok(first)]).chain(rest)))
    }
    async fn wait(&self, spec: &Spec, step: &Step, t: &Token) -> Result<ExitState, EngineError> {
        self.0.wait(spec, step, t).await
    }
    async fn destroy(&self, spec: &Spec, cancel: &Token) -> Result<(), EngineError> {
        self.0.destroy(spec, cancel).await
    }
}

const PIPELINE: &str = "kind: pipeline
type: vm
clone: {disable: true}
steps:
- name: greet
  greeting: Bonjour
  commands: [echo the script ran too]
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = DroneServer::start(ServerConfig::default()).await?;
    let stage_id = server.enqueue(push_stage(PIPELINE, "vm"));
    let vm = PipelineType::host("vm").with_keys(VmKeys);
    let vm = RunnerType::new(vm, || async { Ok(VmEngine(LocalEngine::new())) });
    let stop = Token::new();
    let runner = Runner::new("my-runner").with_type(vm);
    let (host, secret) = (server.host(), server.secret());
    // In-process arguments: the secret never shows in `ps`. Port 0: any free one.
    let flags = [
        ("--type", "vm"),
        ("--rpc-proto", "http"),
        ("--rpc-host", &host),
        ("--rpc-secret", secret),
        ("--http-bind", "127.0.0.1:0"),
    ];
    let args = ["my-runner", "daemon"].into_iter();
    let args = args.chain(flags.into_iter().flat_map(|(flag, value)| [flag, value]));
    let finished = || server.stage(stage_id).filter(|s| s.status.is_done());
    let done = async {
        let started = Instant::now();
        while finished().is_none() && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.cancel();
    };
    let daemon = runner.with_shutdown(stop.clone()).run_from(args);
    let (code, ()) = tokio::join!(daemon, done);
    let stage = finished().ok_or_else(|| anyhow::anyhow!("the stage did not end in 60 s"))?;
    if code != std::process::ExitCode::SUCCESS || stage.status != Status::Success {
        anyhow::bail!("daemon {code:?}, stage {}: {}", stage.status, stage.error);
    }
    let greet = stage.steps.iter().find(|s| s.name == "greet");
    let log = greet.and_then(|s| server.uploaded_log(s.id));
    let log = String::from_utf8_lossy(log.as_deref().unwrap_or_default());
    let want = ["Bonjour from the vm, step greet", "the script ran too"];
    anyhow::ensure!(want.iter().all(|w| log.contains(w)), "log: {log}");
    println!("ok: the daemon ran the vm stage; its log opens with the step's greeting");
    Ok(())
}

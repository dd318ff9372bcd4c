//! A custom engine: each step's script runs through its shell on the host,
//! with nothing in its environment but the step's variables and secrets.
//! Short, so a step's output comes when it ends (a real engine streams it),
//! then passes the engine conformance suite. `cargo run --example custom_engine`
use async_trait::async_trait;
use futures_util::future::{BoxFuture, FutureExt, Shared, join, join_all};
use nix::{sys::signal::Signal, sys::signal::killpg, unistd::Pid};
use runnerkit::core::{CancellationToken as Token, Engine, EngineError as Error, ExitState};
use runnerkit::core::{EngineErrorKind as Kind, LogStream, Script, Spec, Step};
use runnerkit::mock::conformance::{self, ShellFixture};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::io::AsyncReadExt;

/// A started step: its output and exit code once it ends, `None` if stopped.
type Run = Shared<BoxFuture<'static, Option<(Vec<u8>, i32)>>>;

/// One stage's started steps by step id; `gone` is cancelled by `destroy`.
#[derive(Default)]
struct Stage {
    gone: Token,
    steps: HashMap<String, Run>,
}

/// Stages by spec id: one engine runs many stages at once, and `destroy` of
/// one must leave the others alone. `setup` and `create` keep their defaults.
#[derive(Default)]
struct EnvSh(Mutex<HashMap<String, Stage>>);

impl EnvSh {
    fn stages(&self) -> MutexGuard<'_, HashMap<String, Stage>> {
        // A panic elsewhere while the lock was held leaves the map whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, spec: &Spec, step: &Step) -> Result<Run, Error> {
        let stages = self.stages();
        let run = stages
            .get(&spec.id)
            .and_then(|stage| stage.steps.get(&step.id));
        let never = || format!("step {:?} was not started", step.name);
        run.cloned()
            .ok_or_else(|| Error::new("env-sh", Kind::Misuse, never()))
    }
}

#[async_trait]
impl Engine for EnvSh {
    fn name(&self) -> &str {
        "env-sh"
    }
    async fn start(&self, spec: &Spec, step: &Step, cancel: &Token) -> Result<(), Error> {
        let Some(Script { shell, body }) = &step.script else {
            let why = format!("step {:?} has no script", step.name);
            return Err(Error::new("env-sh", Kind::NotFound, why));
        };
        let mut sh = tokio::process::Command::new(shell);
        // Values go in the environment, never in argv, where `ps` shows them.
        let secrets = step.secrets.iter().map(|s| (&s.env, &s.value));
        sh.env_clear().envs(&step.environment).envs(secrets);
        sh.args(["-ec", &format!("exec 2>&1; {body}")]);
        // Its own process group: stopping the step stops what it started too.
        sh.process_group(0).stdout(std::process::Stdio::piped());
        let spawn_error = |e| Error::new("env-sh", Kind::NotFound, shell.clone()).with_source(e);
        let mut child = sh.kill_on_drop(true).spawn().map_err(spawn_error)?;
        let group = child.id().and_then(|id| i32::try_from(id).ok());
        let kill = move || {
            // ESRCH: the group is already gone, which is what was wanted.
            let _ = group.map(|id| killpg(Pid::from_raw(id), Signal::SIGKILL));
        };
        let mut stdout = child.stdout.take();
        let mut stages = self.stages();
        let stage = stages.entry(spec.id.clone()).or_default();
        let (cancel, gone) = (cancel.clone(), stage.gone.clone());
        let run = async move {
            let mut out = Vec::new();
            let read = async { Some(stdout.as_mut()?.read_to_end(&mut out).await) };
            // What it left in the background must not hold the output open.
            let exited = async {
                let status = child.wait().await;
                kill();
                status
            };
            let code = tokio::select! {
                (_, status) = join(read, exited) => Some(status.ok().and_then(|s| s.code())),
                () = cancel.cancelled() => None,
                () = gone.cancelled() => None,
            };
            let Some(code) = code else {
                kill();
                return None;
            };
            Some((out, code.unwrap_or(255)))
        };
        stage.steps.insert(step.id.clone(), run.boxed().shared());
        Ok(())
    }
    async fn tail(&self, spec: &Spec, step: &Step, _: &Token) -> Result<LogStream, Error> {
        let run = self.run(spec, step)?;
        let out = run.map(|run| Ok(run.map(|(out, _)| out.into()).unwrap_or_default()));
        Ok(Box::pin(futures_util::stream::once(out)))
    }
    async fn wait(&self, spec: &Spec, step: &Step, _: &Token) -> Result<ExitState, Error> {
        // A stopped step is reported killed whatever this says: 137 is SIGKILL's.
        let code = self.run(spec, step)?.await.map_or(137, |(_, code)| code);
        Ok(ExitState::code(code))
    }
    async fn destroy(&self, spec: &Spec, _: &Token) -> Result<(), Error> {
        let Some(stage) = self.stages().remove(&spec.id) else {
            return Ok(());
        };
        // Every run then kills its process group and ends at once.
        stage.gone.cancel();
        join_all(stage.steps.into_values()).await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut step = Step::named("hello");
    let (shell, body) = ("sh".into(), "echo \"hello $WHO\"; exit 3".into());
    step.script = Some(Script { shell, body });
    step.environment.insert("WHO".into(), "world".into());
    let spec = Spec {
        id: "demo".into(),
        steps: vec![step],
        ..Spec::default()
    };
    let engine = Arc::new(EnvSh::default());
    let runtime = runnerkit::runtime::Runtime::new(engine.clone());
    let done = runtime.run(Arc::new(spec), Token::new()).await?;
    assert_eq!(done.steps[0].exit_code, 3, "the exit code comes back");
    // What an engine's own tests run: every rule of the Engine contract.
    conformance::run_all(&*engine, &ShellFixture::new()).await;
    println!("ok: the step exited 3 through the runtime; the engine passes the conformance suite");
    Ok(())
}

//! A custom engine: each step's script runs through `env -i sh`, seeing only its own
//! variables. Short, so output comes when the step ends and cancellation is ignored
//! (a real engine streams, and kills on the token). `cargo run --example custom_engine`
use async_trait::async_trait;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use runnerkit::core::{CancellationToken as Token, Engine, EngineError as Error, ExitState};
use runnerkit::core::{LogStream, Script, Spec, Step};
use std::{collections::HashMap, process::Output, sync::Arc, sync::Mutex};

/// Each started step's process by step id; `setup` and `create` keep their defaults.
#[derive(Default)]
struct EnvSh(Mutex<HashMap<String, Shared<BoxFuture<'static, Option<Output>>>>>);

#[async_trait]
impl Engine for EnvSh {
    fn name(&self) -> &str {
        "env-sh"
    }
    async fn start(&self, _: &Spec, step: &Step, _: &Token) -> Result<(), Error> {
        let vars = step.environment.iter().map(|(k, v)| format!("{k}={v}"));
        let body = step.script.as_ref().map_or("", |s| &s.body);
        let mut sh = tokio::process::Command::new("env");
        sh.arg("-i").args(vars);
        sh.args(["sh", "-ec", &format!("exec 2>&1; {body}")]);
        let run = sh.output().map(Result::ok).boxed().shared();
        self.0.lock().unwrap().insert(step.id.clone(), run);
        Ok(())
    }
    async fn tail(&self, _: &Spec, step: &Step, _: &Token) -> Result<LogStream, Error> {
        let run = self.0.lock().unwrap()[&step.id].clone();
        let out = run.map(|out| Ok(out.map(|o| o.stdout.into()).unwrap_or_default()));
        Ok(Box::pin(futures_util::stream::once(out)))
    }
    async fn wait(&self, _: &Spec, step: &Step, _: &Token) -> Result<ExitState, Error> {
        let run = self.0.lock().unwrap()[&step.id].clone();
        let code = run.await.and_then(|o| o.status.code());
        Ok(ExitState::code(code.unwrap_or(255)))
    }
    async fn destroy(&self, _: &Spec, _: &Token) -> Result<(), Error> {
        self.0.lock().unwrap().clear();
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut step = Step::named("hello");
    step.environment.insert("WHO".into(), "world".into());
    let shell = "sh".into();
    let body = "echo \"hello $WHO: I see $(env | wc -l) variables\" >&2; exit 3".into();
    step.script = Some(Script { shell, body });
    let mut spec = Spec::default();
    spec.steps.push(step);
    let runtime = runnerkit::runtime::Runtime::new(Arc::new(EnvSh::default()));
    let done = runtime.run(Arc::new(spec), Token::new()).await?;
    assert_eq!(done.steps[0].exit_code, 3, "the exit code comes back");
    println!("ok: the step ran through env -i sh and exited 3");
    Ok(())
}

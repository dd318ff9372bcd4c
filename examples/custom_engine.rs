//! A custom engine: each step's script runs through `env -i sh`, so it sees
//! only its own variables. Kept short: output comes when the step ends, and
//! cancellation is ignored (a real engine streams, and kills on the token).
//! Run it: `cargo run --example custom_engine`
use std::{collections::HashMap, process::Output, sync::Arc, sync::Mutex};

use async_trait::async_trait;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use runnerkit::core::{CancellationToken as Token, Engine, EngineError as Error, ExitState};
use runnerkit::core::{LogStream, Script, Spec, Step};

/// Each started step's process by step id. (An unknown id panics, which the
/// runtime reports as an error of that step.)
#[derive(Default)]
struct EnvSh(Mutex<HashMap<String, Shared<BoxFuture<'static, Option<Output>>>>>);

#[async_trait]
impl Engine for EnvSh {
    fn name(&self) -> &str {
        "env-sh"
    }
    async fn setup(&self, _: &Spec, _: &Token) -> Result<(), Error> {
        Ok(())
    }
    async fn create(&self, _: &Spec, _: &Step, _: &Token) -> Result<(), Error> {
        Ok(())
    }
    async fn start(&self, _: &Spec, step: &Step, _: &Token) -> Result<(), Error> {
        let vars = step.environment.iter().map(|(k, v)| format!("{k}={v}"));
        let script = step.script.as_ref().map_or("", |s| &s.body);
        let mut sh = tokio::process::Command::new("env");
        sh.arg("-i")
            .args(vars)
            .args(["sh", "-ec", &format!("exec 2>&1; {script}")]);
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
        Ok(ExitState::code(
            run.await.and_then(|o| o.status.code()).unwrap_or(255),
        ))
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
    let body = "echo \"hello $WHO: I see $(env | wc -l) variables\" >&2; exit 3".into();
    step.script = Some(Script {
        shell: "sh".into(),
        body,
    });
    let spec = Arc::new(Spec {
        steps: vec![step],
        ..Spec::default()
    });
    let done = runnerkit::runtime::Runtime::new(Arc::new(EnvSh::default()));
    let done = done.run(spec, Token::new()).await?;
    anyhow::ensure!(
        done.steps[0].exit_code == 3,
        "the step's exit code comes back"
    );
    println!("ok: the step ran through env -i sh and exited 3");
    Ok(())
}

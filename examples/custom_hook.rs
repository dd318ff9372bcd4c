//! A custom hook: a notifier that counts log lines as they stream and, when
//! the stage ends, prints a summary (where a real one would post to chat).
//! Hooks see every event of a stage; each method has a no-op default, so a
//! hook implements only what it needs. The steps run on the scripted
//! `MockEngine`, so no daemon is needed.
//! Run it: `cargo run --example custom_hook`
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use runnerkit::core::{
    CancellationToken, Hook, HookError, Lines, Spec, State, Status, Step, StepState,
};
use runnerkit::mock::{MockEngine, StepScript};
use runnerkit::runtime::Runtime;

/// Prints one line per step and a verdict once the stage is over.
#[derive(Default)]
struct Notifier {
    lines: AtomicUsize,
}

#[async_trait]
impl Hook for Notifier {
    fn got_lines(&self, _: &State, _: &StepState, lines: Lines<'_>) {
        // Called for every batch of lines on the log path: keep it quick.
        // (A hook that takes one line at a time implements `got_line`.)
        self.lines.fetch_add(lines.len(), Ordering::Relaxed);
    }

    async fn after(&self, state: &State) -> Result<(), HookError> {
        let stage = state.snapshot();
        println!(
            "stage {} after {} log lines:",
            stage.stage.status,
            self.lines.load(Ordering::Relaxed)
        );
        for step in &stage.steps {
            match step.duration().filter(|_| step.status != Status::Skipped) {
                Some(took) => println!(
                    "  {:<7} {:<8} exit {} in {took:.1?}",
                    step.name, step.status, step.exit_code
                ),
                None => println!("  {:<7} {}", step.name, step.status),
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let engine = MockEngine::new()
        .with_step(
            "build",
            StepScript::exit(0).with_lines(["compiling", "linking"]),
        )
        .with_step(
            "test",
            StepScript::exit(1)
                .with_lines(["1 test failed"])
                .running_for(Duration::from_millis(50)),
        )
        .with_step("notify", StepScript::exit(0));
    let mut notify = Step::named("notify");
    notify.run_policy = runnerkit::core::RunPolicy::Always;
    let spec = Spec {
        id: "hook-demo".into(),
        steps: vec![
            Step::named("build"),
            Step::named("test"),
            Step::named("deploy"),
            notify,
        ],
        ..Spec::default()
    };
    let notifier = Arc::new(Notifier::default());
    let done = Runtime::new(Arc::new(engine))
        .with_hook(notifier.clone())
        .run(Arc::new(spec), CancellationToken::new())
        .await?;
    anyhow::ensure!(done.stage.status == Status::Failure, "test fails the stage");
    anyhow::ensure!(done.step("deploy").map(|s| s.status) == Some(Status::Skipped));
    anyhow::ensure!(done.step("notify").map(|s| s.status) == Some(Status::Success));
    anyhow::ensure!(
        notifier.lines.load(Ordering::Relaxed) == 3,
        "every line reached the hook"
    );
    println!("ok: the notifier saw 3 lines and summarised a failed stage");
    Ok(())
}

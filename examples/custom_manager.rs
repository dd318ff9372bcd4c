//! A custom manager: an in-memory queue that hands out one stage, records
//! every report a runner makes about it, and then has nothing more to give.
//! `main` plays the runner's part in the order the `Manager` docs give:
//! request, accept, details, before_all, per step before/write/upload/after,
//! after_all. The steps run on the scripted `MockEngine`: no server, no daemon.
//! Run it: `cargo run --example custom_manager`
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use runnerkit::core::drone::{ConfigFile, Details, Filter, Netrc, Stage, Step};
use runnerkit::core::{CancellationToken, Line, LogUpload, Manager, ManagerError, Spec, Status};
use runnerkit::mock::{MockEngine, StepScript};
use runnerkit::runtime::Runtime;

/// One stage to give out, and a journal of what the runner reported.
struct OneStage {
    queued: Mutex<Option<Stage>>,
    journal: Mutex<Vec<String>>,
}

impl OneStage {
    fn note(&self, entry: String) {
        self.journal.lock().unwrap().push(entry);
    }
}

#[async_trait]
impl Manager for OneStage {
    async fn request(&self, _: &Filter) -> Result<Option<Stage>, ManagerError> {
        Ok(self.queued.lock().unwrap().take())
    }
    async fn accept(&self, stage_id: i64, machine: &str) -> Result<Stage, ManagerError> {
        self.note(format!("accept {stage_id} by {machine}"));
        Ok(Stage {
            id: stage_id,
            machine: machine.into(),
            name: "demo".into(),
            ..Stage::default()
        })
    }
    async fn details(&self, stage_id: i64) -> Result<Details, ManagerError> {
        let config = ConfigFile {
            data: b"kind: pipeline\nname: demo\n".to_vec(),
            hash: None,
        };
        let stage = Stage {
            id: stage_id,
            name: "demo".into(),
            ..Stage::default()
        };
        Ok(Details {
            stage,
            config,
            ..Details::default()
        })
    }
    async fn netrc(&self, _: i64) -> Result<Option<Netrc>, ManagerError> {
        Ok(None)
    }
    async fn watch(&self, _: i64) -> Result<bool, ManagerError> {
        Ok(false) // never cancelled
    }
    async fn before_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        for (n, step) in stage.steps.iter_mut().enumerate() {
            step.id = n as i64 + 1; // the server numbers the steps
        }
        self.note(format!("stage {} {}", stage.name, stage.status));
        Ok(())
    }
    async fn after_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        self.note(format!("stage {} {}", stage.name, stage.status));
        Ok(())
    }
    async fn before(&self, step: &mut Step) -> Result<(), ManagerError> {
        self.note(format!("step {} {}", step.name, step.status));
        Ok(())
    }
    async fn after(&self, step: &mut Step) -> Result<(), ManagerError> {
        self.note(format!(
            "step {} {} (exit {})",
            step.name, step.status, step.exit_code
        ));
        Ok(())
    }
    async fn write(&self, step_id: i64, lines: &[Line]) -> Result<(), ManagerError> {
        self.note(format!("step #{step_id}: {} live lines", lines.len()));
        Ok(())
    }
    async fn upload(&self, step_id: i64, log: LogUpload<'_>) -> Result<(), ManagerError> {
        self.note(format!("step #{step_id}: full log of {} lines", log.len()));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let manager = OneStage {
        queued: Mutex::new(Some(Stage {
            id: 7,
            ..Stage::default()
        })),
        journal: Mutex::new(Vec::new()),
    };
    // The runner's side: take the stage, run it, report it.
    let queued = manager
        .request(&Filter::default())
        .await?
        .ok_or_else(|| anyhow::anyhow!("one stage was queued"))?;
    let mut stage = manager.accept(queued.id, "laptop").await?;
    let details = manager.details(stage.id).await?;
    anyhow::ensure!(details.config.data.starts_with(b"kind: pipeline"));
    let names = ["build", "test"];
    stage.status = Status::Running;
    stage.steps = names
        .iter()
        .map(|n| Step {
            name: (*n).into(),
            ..Step::default()
        })
        .collect();
    manager.before_all(&mut stage).await?;

    let engine = MockEngine::new().with_step("build", StepScript::exit(0).with_lines(["ok"]));
    let spec = Spec {
        id: "stage-7".into(),
        steps: names
            .iter()
            .map(|n| runnerkit::core::Step::named(*n))
            .collect(),
        ..Spec::default()
    };
    let done = Runtime::new(Arc::new(engine))
        .run(Arc::new(spec), CancellationToken::new())
        .await?;
    for (step, state) in stage.steps.iter_mut().zip(&done.steps) {
        step.status = Status::Running;
        manager.before(step).await?;
        let lines = vec![Line {
            number: 0,
            message: format!("{} ran", step.name),
            timestamp: 0,
        }];
        manager.write(step.id, &lines).await?;
        manager.upload(step.id, LogUpload::lines(&lines)).await?;
        (step.status, step.exit_code) = (state.status, state.exit_code);
        manager.after(step).await?;
    }
    stage.status = done.stage.status;
    manager.after_all(&mut stage).await?;

    anyhow::ensure!(
        manager.request(&Filter::default()).await?.is_none(),
        "only one stage"
    );
    let journal = manager.journal.lock().unwrap();
    for entry in journal.iter() {
        println!("{entry}");
    }
    anyhow::ensure!(journal.last().map(String::as_str) == Some("stage demo success"));
    println!(
        "ok: the manager handed out one stage and recorded {} reports",
        journal.len()
    );
    Ok(())
}

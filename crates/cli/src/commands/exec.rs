//! `runnerkit exec`: run one pipeline of a file on this machine.

use std::sync::Arc;

use runnerkit_core::{CancellationToken, Hook};
use runnerkit_runtime::logs::Masker;

use crate::cli::ExecArgs;
use crate::commands::stage;
use crate::interrupt;
use crate::output::exit::Outcome;
use crate::output::json::RunResult;
use crate::output::{self, HumanReporter};
use crate::pipeline::{self, Prepared, RunInputs};
use crate::runner::Runner;

/// Runs the pipeline; `Err` when the input was refused before anything ran.
pub async fn run(args: &ExecArgs, runner: &Runner) -> Outcome {
    // Known before anything else, so even a refusal cannot print a secret.
    let masker = Masker::new(args.secrets.iter().map(|(_, v)| v.as_str()));
    match prepare_and_run(args, runner).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let message = output::error_chain(&e);
            eprintln!("error: {}", masker.mask_str(&message));
            if args.json {
                let _ = RunResult::refused(&message, &masker).write(&mut std::io::stdout().lock());
            }
            Outcome::Refused
        }
    }
}

async fn prepare_and_run(args: &ExecArgs, runner: &Runner) -> anyhow::Result<Outcome> {
    let types = runner.types();
    let source = pipeline::read(&args.source.file)?;
    let inputs = RunInputs {
        pipeline: args.source.pipeline.as_deref(),
        trusted: args.trusted,
        build: args.build.clone(),
        env: &args.env,
        secrets: &args.secrets,
    };
    let Prepared { compiled, live } = pipeline::prepare(&source, &inputs, types.registry()).await?;
    let engine = types.engine_for(&compiled.pipeline_type).await?;
    // Compile warnings come from the compiler, not the runtime: the CLI
    // masks them with what the compile found to mask.
    let spec = compiled.spec;
    let masker = Masker::new(spec.masked_values());
    // Every step of the pipeline, for the summary and the result: the Spec
    // holds only those that may run.
    let listing = compiled.steps;

    let (out, style) = output::human_destination(args.json);
    let reporter = HumanReporter::new(out, &spec, style, masker.clone())
        .with_warnings(compiled.warnings)
        .with_steps(listing.clone());
    let cancel = CancellationToken::new();
    let watcher = interrupt::watch(cancel.clone());
    let mut hooks: Vec<Arc<dyn Hook>> = vec![Arc::new(live), Arc::new(reporter)];
    hooks.extend(runner.hooks().iter().cloned());
    let result = stage::run(engine, spec, hooks, cancel).await;
    watcher.abort();
    let snapshot = result?;

    if args.json {
        // The stage has run: a closed stdout changes nothing about its outcome.
        let _ = RunResult::from_run(&listing, &snapshot).write(&mut std::io::stdout().lock());
    }
    Ok(Outcome::Ran(snapshot.stage.status))
}

//! `runnerkit exec`: run one pipeline of a file on this machine.

use std::sync::Arc;

use runnerkit_core::{CancellationToken, Hook};
use runnerkit_runtime::logs::Masker;

use anyhow::Context;
use runnerkit_manifest::{Compiled, StepSelection};

use crate::cli::ExecArgs;
use crate::commands::stage::{self, StageOptions};
use crate::interrupt;
use crate::output::exit::Outcome;
use crate::output::json::RunResult;
use crate::output::{self, HumanReporter};
use crate::pipeline::{self, Prepared, RunInputs};
use crate::runner::Runner;

/// Runs the pipeline; `Err` when the input was refused before anything ran.
pub async fn run(args: &ExecArgs, runner: &Runner) -> Outcome {
    // Known before anything else, so even a refusal cannot print a secret;
    // the file's secrets are read first for the same reason.
    let secrets = pipeline::with_env_file(args.secret_file.as_deref(), &args.secrets);
    let masker = Masker::new(
        secrets
            .as_deref()
            .unwrap_or(&args.secrets)
            .iter()
            .map(|(_, v)| v.as_str()),
    );
    let result = match secrets {
        Ok(secrets) => prepare_and_run(args, &secrets, runner).await,
        Err(e) => Err(e.context("cannot read the --secret-file")),
    };
    match result {
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

async fn prepare_and_run(
    args: &ExecArgs,
    secrets: &[(String, String)],
    runner: &Runner,
) -> anyhow::Result<Outcome> {
    let types = runner.types();
    let source = pipeline::read(&args.file)?;
    let env = pipeline::with_env_file(args.env_file.as_deref(), &args.env)
        .context("cannot read the --env-file")?;
    let inputs = RunInputs {
        pipeline: args.pipelines.first().map(String::as_str),
        trusted: args.trusted,
        build: args.build.clone(),
        env: &env,
        secrets,
        selection: StepSelection {
            include: args.include.clone(),
            exclude: args.exclude.clone(),
        },
    };
    let Prepared { compiled, live } = pipeline::prepare(&source, &inputs, types.registry()).await?;
    let options = StageOptions {
        timeout: Some(args.timeout),
        max_procs: args.max_procs.map(std::num::NonZeroUsize::get),
        log_limit: args
            .log_limit
            .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX)),
        resume_at: args
            .resume_at
            .as_deref()
            .map(|name| resume_index(&compiled, name))
            .transpose()?,
    };
    if !args.platform_any {
        crate::platform::check(&compiled)?;
    }
    let engine = types.local_engine_for(&compiled.pipeline_type).await?;
    let spec = compiled.spec;
    // Compile warnings come from the compiler, not the runtime: the CLI
    // masks them with what the compile found to mask.
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
    let result = stage::run(engine, spec, hooks, &options, cancel).await;
    watcher.abort();
    let snapshot = result?;

    if args.json {
        // The stage has run: a closed stdout changes nothing about its outcome.
        let _ = RunResult::from_run(&listing, &snapshot).write(&mut std::io::stdout().lock());
    }
    Ok(Outcome::Ran(snapshot.stage.status))
}

/// Where `--resume-at NAME` starts in the Spec. Refused before anything
/// runs: for a pipeline with `depends_on` (no "earlier" step there), for a
/// step that will not run, and for a name the pipeline does not have.
fn resume_index(compiled: &Compiled, name: &str) -> anyhow::Result<usize> {
    let spec = &compiled.spec;
    if !spec.is_serial() {
        anyhow::bail!(
            "--resume-at {name}: pipeline {:?} runs its steps by depends_on, not one after another; \
             use --include or --exclude instead",
            compiled.pipeline
        );
    }
    if let Some(index) = spec.step_index(name) {
        return Ok(index);
    }
    if let Some(step) = compiled.steps.iter().find(|s| s.name == name) {
        let why = step
            .not_run
            .as_ref()
            .map_or_else(String::new, |r| format!(" ({r})"));
        anyhow::bail!("--resume-at {name}: the step does not run{why}");
    }
    let known: Vec<&str> = compiled.steps.iter().map(|s| s.name.as_str()).collect();
    anyhow::bail!(
        "--resume-at {name}: pipeline {:?} has no such step; its steps: {}",
        compiled.pipeline,
        known.join(", ")
    )
}

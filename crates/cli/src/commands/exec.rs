//! `runnerkit exec`: run the pipelines of a file on this machine, as a
//! server would plan the build (`trigger`, `depends_on`), or the ones
//! `--pipeline` names; `--list` shows that plan without running it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use runnerkit_core::{CancellationToken, Engine, Hook, Status};
use runnerkit_manifest::stages::{NotPlanned, StagePlan};
use runnerkit_manifest::{Compiled, LiveStatus, StepSelection};
use runnerkit_runtime::logs::Masker;
use unicode_width::UnicodeWidthStr;

use crate::cli::ExecArgs;
use crate::commands::build::{self, BuildEvents, StageEnd, StageJob, StageOutcome};
use crate::commands::list;
use crate::commands::stage::StageOptions;
use crate::interrupt;
use crate::output::build::StageRow;
use crate::output::exit::Outcome;
use crate::output::human::HOLD;
use crate::output::json::{BuildResult, RunResult, StageResult};
use crate::output::{self, HumanReporter};
use crate::pipeline::{self, LocalPlan, RunInputs};
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
    let mut source = pipeline::read(&args.file)?;
    if let Some(dir) = &args.workspace {
        source.dir = pipeline::workspace(dir)?;
    }
    let env = pipeline::with_env_file(args.env_file.as_deref(), &args.env)
        .context("cannot read the --env-file")?;
    let inputs = RunInputs {
        pipeline: None,
        trusted: args.trusted,
        build: args.build.clone(),
        env: &env,
        secrets,
        selection: StepSelection {
            include: args.include.clone(),
            exclude: args.exclude.clone(),
        },
        ..RunInputs::default()
    };
    let LocalPlan {
        stages: plan,
        skip_marker,
        parsed,
    } = pipeline::plan(&source, &inputs, &args.pipelines)?;
    // One pipeline considered keeps the output of one stage; the form
    // depends on the command line and the file, never on the build data.
    let single = plan.pipelines.len() == 1 || args.pipelines.len() == 1;

    // Every stage is compiled before any runs: a problem in the last
    // pipeline refuses the build before the first one starts.
    let mut prepared = Vec::new();
    for (index, planned) in plan.stages() {
        let depends_on = planned
            .depends_on
            .iter()
            .map(|&d| plan.pipelines[d].name.clone())
            .collect();
        let number = planned
            .number
            .map_or(1, |n| i32::try_from(n).unwrap_or(i32::MAX));
        let stage_inputs = inputs.for_stage(&planned.name, number, depends_on);
        let stage =
            pipeline::prepare(&source, &stage_inputs, types.registry(), Some(&parsed)).await?;
        prepared.push((index, stage));
    }
    if args.list {
        return list::show(&plan, &prepared, args.json);
    }
    if !args.platform_any {
        for (_, stage) in &prepared {
            crate::platform::check(&stage.compiled)?;
        }
    }
    let resume_at = match (args.resume_at.as_deref(), prepared.as_slice()) {
        (None, _) => None,
        (Some(name), [(_, stage)]) => Some(resume_index(&stage.compiled, name)?),
        (Some(name), _) => anyhow::bail!(
            "--resume-at {name}: {} pipelines run for this build; pick the one to resume with --pipeline",
            prepared.len()
        ),
    };
    let options = StageOptions {
        timeout: Some(args.timeout),
        max_procs: args.max_procs.map(std::num::NonZeroUsize::get),
        log_limit: args
            .log_limit
            .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX)),
        resume_at,
    };
    let mut engines: BTreeMap<String, Arc<dyn Engine>> = BTreeMap::new();
    let mut jobs = Vec::with_capacity(prepared.len());
    for (index, stage) in prepared {
        let kind = stage.compiled.pipeline_type.clone();
        let engine = match engines.get(&kind) {
            Some(engine) => Arc::clone(engine),
            None => {
                let engine = types.local_engine_for(&kind).await.map_err(|e| {
                    if single {
                        e
                    } else {
                        e.context(format!(
                            "pipeline {:?} cannot run; run the others alone with --pipeline NAME",
                            plan.pipelines[index].name
                        ))
                    }
                })?;
                engines.insert(kind, Arc::clone(&engine));
                engine
            }
        };
        jobs.push(StageJob {
            index,
            prepared: stage,
            engine,
        });
    }

    let events = ExecEvents::new(&plan, &jobs, single, args, runner);
    events.introduce(skip_marker);
    let cancel = CancellationToken::new();
    let watcher = interrupt::watch(cancel.clone());
    let started = Instant::now();
    let outcomes = build::run(&plan, jobs, &events, &options, &cancel).await;
    watcher.abort();
    if single {
        return single_result(&plan, outcomes, args.json, cancel.is_cancelled());
    }
    let status = build::status(&outcomes);
    let took = (status != Status::Skipped).then(|| started.elapsed());
    events.conclude(&outcomes, status, took);
    if args.json {
        let stages = stage_results(&plan, &outcomes);
        // The build has run: a closed stdout changes nothing about its outcome.
        let _ = BuildResult::new(status, stages).write(&mut std::io::stdout().lock());
    }
    Ok(Outcome::Ran(status))
}

/// The outcome of a run of one pipeline, as a run of one stage reports it:
/// a Spec the runtime refused refuses the input.
fn single_result(
    plan: &StagePlan,
    outcomes: Vec<StageOutcome>,
    json: bool,
    cancelled: bool,
) -> anyhow::Result<Outcome> {
    let (result, status) = match outcomes.into_iter().next() {
        Some(StageOutcome {
            end: StageEnd::Ran(snapshot),
            listing,
            ..
        }) => (
            RunResult::from_run(&listing, &snapshot),
            snapshot.stage.status,
        ),
        Some(StageOutcome {
            end: StageEnd::Refused(error),
            ..
        }) => anyhow::bail!(error),
        Some(StageOutcome {
            end: StageEnd::Skipped(reason),
            ..
        }) => {
            let status = if cancelled {
                Status::Killed
            } else {
                Status::Skipped
            };
            (RunResult::not_run(&reason), status)
        }
        None => {
            let reason = plan
                .pipelines
                .iter()
                .find_map(|p| p.not_run.as_ref())
                .map_or_else(String::new, ToString::to_string);
            (RunResult::not_run(&reason), Status::Skipped)
        }
    };
    if json {
        // The stage has run: a closed stdout changes nothing about its outcome.
        let _ = result.write(&mut std::io::stdout().lock());
    }
    Ok(Outcome::Ran(status))
}

/// The pipelines of the build in file order (those `--pipeline` left out
/// are not part of it), each with how its stage ended, or why it got none.
fn build_entries<'a>(
    plan: &'a StagePlan,
    outcomes: &'a [StageOutcome],
) -> impl Iterator<Item = (&'a str, Result<&'a StageOutcome, String>)> {
    plan.pipelines
        .iter()
        .enumerate()
        .filter(|(_, p)| p.not_run != Some(NotPlanned::NotSelected))
        .map(|(i, p)| {
            let ended = match &p.not_run {
                Some(why) => Err(why.to_string()),
                None => outcomes
                    .iter()
                    .find(|o| o.index == i)
                    .ok_or_else(|| "cancelled".to_owned()),
            };
            (p.name.as_str(), ended)
        })
}

/// Every pipeline of the build for `--json`.
fn stage_results(plan: &StagePlan, outcomes: &[StageOutcome]) -> Vec<StageResult> {
    build_entries(plan, outcomes)
        .map(|(name, ended)| match ended {
            Err(why) => StageResult::skipped(name, &why),
            Ok(o) => match &o.end {
                StageEnd::Ran(snapshot) => StageResult::ran(name, &o.listing, snapshot),
                StageEnd::Skipped(reason) => StageResult::skipped(name, reason),
                StageEnd::Refused(error) => StageResult::errored(name, error),
            },
        })
        .collect()
}

/// What `exec` prints around the stages: their reporters, a line for each
/// pipeline that does not run, the build's summary.
struct ExecEvents<'a> {
    plan: &'a StagePlan,
    /// One pipeline considered: no labels, no build summary.
    single: bool,
    /// The widest `pipeline/step` label of the build.
    width: usize,
    json: bool,
    color: crate::output::ColorChoice,
    runner_hooks: &'a [Arc<dyn Hook>],
}

impl<'a> ExecEvents<'a> {
    fn new(
        plan: &'a StagePlan,
        jobs: &[StageJob],
        single: bool,
        args: &ExecArgs,
        runner: &'a Runner,
    ) -> Self {
        let width = jobs
            .iter()
            .flat_map(|job| {
                let name = plan.pipelines[job.index].name.width();
                job.prepared
                    .compiled
                    .spec
                    .steps
                    .iter()
                    .map(move |step| name + 1 + step.name.width())
            })
            .max()
            .unwrap_or(0);
        Self {
            plan,
            single,
            width,
            json: args.json,
            color: args.color,
            runner_hooks: runner.hooks(),
        }
    }

    fn emit(&self, text: &str) {
        let (mut out, _) = output::human_destination(self.json, self.color);
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    /// Before anything runs: why each pipeline without a stage has none,
    /// which selected pipelines run against their trigger, and a commit
    /// message a server would not build.
    fn introduce(&self, skip_marker: Option<&str>) {
        let mut text = String::new();
        if let Some(marker) = skip_marker {
            text.push_str(&format!(
                "note: the commit message says {marker}: a server would not build this commit; running it as asked\n"
            ));
        }
        for p in &self.plan.pipelines {
            match (&p.not_run, p.mismatch) {
                (Some(NotPlanned::NotSelected), _) => {}
                (Some(why), _) => text.push_str(&output::build::not_run(
                    &p.name,
                    &why.to_string(),
                    false,
                )),
                (None, Some(key)) => text.push_str(&format!(
                    "note: pipeline {}: runs as --pipeline asks, though its trigger does not match (trigger: {key})\n",
                    p.name
                )),
                (None, None) => {}
            }
        }
        if self.plan.stages().next().is_none() {
            text.push_str("nothing to run: no pipeline's trigger matches this build (see --branch, --event, --ref, or pick one with --pipeline)\n");
        }
        if !text.is_empty() {
            self.emit(&text);
        }
    }

    /// After the build: the table of its pipelines.
    fn conclude(&self, outcomes: &[StageOutcome], status: Status, took: Option<Duration>) {
        let rows: Vec<StageRow> = build_entries(self.plan, outcomes)
            .map(|(name, ended)| {
                let (status, took, reason) = match ended.map(|o| &o.end) {
                    Err(why) => (Status::Skipped, None, Some(why)),
                    Ok(StageEnd::Ran(snapshot)) => {
                        let stage = &snapshot.stage;
                        let took = stage
                            .started
                            .zip(stage.stopped)
                            .map(|(a, b)| b.duration_since(a).unwrap_or_default());
                        (stage.status, took, None)
                    }
                    Ok(StageEnd::Skipped(reason)) => (Status::Skipped, None, Some(reason.clone())),
                    Ok(StageEnd::Refused(error)) => (Status::Error, None, Some(error.clone())),
                };
                StageRow {
                    name: name.to_owned(),
                    status,
                    took,
                    reason,
                }
            })
            .collect();
        let (_, style) = output::human_destination(self.json, self.color);
        self.emit(&output::build::summary(&rows, status, took, style));
    }
}

impl BuildEvents for ExecEvents<'_> {
    fn hooks(&self, job: &StageJob, live: LiveStatus) -> Vec<Arc<dyn Hook>> {
        let compiled = &job.prepared.compiled;
        let spec = &compiled.spec;
        let (out, style) = output::human_destination(self.json, self.color);
        // Compile warnings come from the compiler, not the runtime: the CLI
        // masks them with what the compile found to mask.
        let masker = Masker::new(spec.masked_values());
        let mut reporter = HumanReporter::new(out, spec, style, masker)
            .with_warnings(compiled.warnings.clone())
            // Every step of the pipeline, for the summary: the Spec holds
            // only those that may run.
            .with_steps(compiled.steps.clone());
        if !output::human_on_terminal(self.json) {
            reporter = reporter.with_hold(HOLD);
        }
        if !self.single {
            reporter = reporter.with_stage_label(&self.plan.pipelines[job.index].name, self.width);
        }
        let mut hooks: Vec<Arc<dyn Hook>> = vec![Arc::new(live), Arc::new(reporter)];
        hooks.extend(self.runner_hooks.iter().cloned());
        hooks
    }

    fn skipped(&self, index: usize, reason: &str) {
        self.emit(&output::build::not_run(
            &self.plan.pipelines[index].name,
            reason,
            true,
        ));
    }
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

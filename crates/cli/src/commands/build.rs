//! Running the stages of a local build as a server schedules them: a stage
//! starts once every stage it depends on is done, stages that are ready
//! together run concurrently, `trigger.status` decides whether a stage
//! whose dependencies are done runs, and a cancel stops every stage and
//! skips those not started.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use runnerkit_core::{CancellationToken, Engine, Hook, Snapshot, Status};
use runnerkit_manifest::LiveStatus;
use runnerkit_manifest::StageStep;
use runnerkit_manifest::stages::StagePlan;
use tokio::task::JoinSet;

use crate::commands::stage::{self, StageOptions};
use crate::pipeline::Prepared;

/// One stage to run: a pipeline of the plan that got a stage, compiled.
pub struct StageJob {
    /// Its index in [`StagePlan::pipelines`].
    pub index: usize,
    /// The pipeline, compiled.
    pub prepared: Prepared,
    /// The engine of its type.
    pub engine: Arc<dyn Engine>,
}

/// How a stage of the build ended.
#[derive(Debug)]
pub enum StageEnd {
    /// It ran; the runtime's last word on it.
    Ran(Snapshot),
    /// It did not run: why.
    Skipped(String),
    /// The runtime refused its Spec before anything ran, or the task
    /// running it died: why.
    Refused(String),
}

impl StageEnd {
    /// The stage's status as the build counts it.
    pub fn status(&self) -> Status {
        match self {
            Self::Ran(snapshot) => snapshot.stage.status,
            Self::Skipped(_) => Status::Skipped,
            Self::Refused(_) => Status::Error,
        }
    }
}

/// A stage of the build and how it ended.
#[derive(Debug)]
pub struct StageOutcome {
    /// Its index in [`StagePlan::pipelines`].
    pub index: usize,
    /// Every step of the pipeline, for the summary and the result.
    pub listing: Vec<StageStep>,
    /// How it ended.
    pub end: StageEnd,
}

/// What the build runner tells the caller as it goes.
pub trait BuildEvents: Sync {
    /// The hooks of a stage about to start, given its status hook (which
    /// knows the stages that failed before it).
    fn hooks(&self, job: &StageJob, live: LiveStatus) -> Vec<Arc<dyn Hook>>;
    /// A stage whose turn came does not run, for `reason`.
    fn skipped(&self, index: usize, reason: &str);
}

/// Runs `jobs` (one per stage of `plan`) in `depends_on` order until all
/// are done or `cancel` fires; gives every stage's outcome in plan order.
pub async fn run(
    plan: &StagePlan,
    jobs: Vec<StageJob>,
    events: &dyn BuildEvents,
    options: &StageOptions,
    cancel: &CancellationToken,
) -> Vec<StageOutcome> {
    let n = plan.pipelines.len();
    let mut waiting_on: Vec<usize> = plan.pipelines.iter().map(|p| p.depends_on.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in plan.pipelines.iter().enumerate() {
        for &d in &p.depends_on {
            dependents[d].push(i);
        }
    }
    let mut slots: Vec<Option<StageJob>> = (0..n).map(|_| None).collect();
    for job in jobs {
        let index = job.index;
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(job);
        }
    }
    // File order among the stages ready at once, as the server lists them.
    let mut ready: BTreeSet<usize> = (0..n)
        .filter(|&i| slots[i].is_some() && waiting_on[i] == 0)
        .collect();
    let mut outcomes: Vec<Option<StageOutcome>> = (0..n).map(|_| None).collect();
    let mut failed: Vec<String> = Vec::new();
    let mut running = JoinSet::new();
    let mut running_index = HashMap::new();
    loop {
        while let Some(i) = ready.pop_first() {
            let Some(job) = slots[i].take() else { continue };
            let decision = if cancel.is_cancelled() {
                Err("cancelled".to_owned())
            } else {
                plan.pipelines[i]
                    .decide(!failed.is_empty())
                    .map_err(|skip| skip.to_string())
            };
            let listing = job.prepared.compiled.steps.clone();
            match decision {
                Err(reason) => {
                    events.skipped(i, &reason);
                    outcomes[i] = Some(StageOutcome {
                        index: i,
                        listing,
                        end: StageEnd::Skipped(reason),
                    });
                    release(i, &dependents, &mut waiting_on, &mut ready, &slots);
                }
                Ok(()) => {
                    let hooks = events.hooks(&job, job.prepared.live_status(&failed));
                    let (engine, spec) = (job.engine, job.prepared.compiled.spec);
                    let (options, cancel) = (options.clone(), cancel.clone());
                    let handle = running.spawn(async move {
                        let result = stage::run(engine, spec, hooks, &options, cancel).await;
                        (listing, result)
                    });
                    running_index.insert(handle.id(), i);
                }
            }
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (i, outcome) = match joined {
            Ok((id, (listing, result))) => {
                let end = match result {
                    Ok(snapshot) => StageEnd::Ran(snapshot),
                    Err(e) => StageEnd::Refused(e.to_string()),
                };
                (running_index.get(&id).copied(), (listing, end))
            }
            Err(e) => (
                running_index.get(&e.id()).copied(),
                (
                    Vec::new(),
                    StageEnd::Refused(format!("the stage's task died: {e}")),
                ),
            ),
        };
        let Some(i) = i else { continue };
        let (listing, end) = outcome;
        if end.status().is_failed() {
            failed.push(plan.pipelines[i].name.clone());
        }
        outcomes[i] = Some(StageOutcome {
            index: i,
            listing,
            end,
        });
        release(i, &dependents, &mut waiting_on, &mut ready, &slots);
    }
    outcomes.into_iter().flatten().collect()
}

/// Stage `done` is done: those waiting on it alone are ready.
fn release(
    done: usize,
    dependents: &[Vec<usize>],
    waiting_on: &mut [usize],
    ready: &mut BTreeSet<usize>,
    slots: &[Option<StageJob>],
) {
    for &j in &dependents[done] {
        waiting_on[j] = waiting_on[j].saturating_sub(1);
        if waiting_on[j] == 0 && slots[j].is_some() {
            ready.insert(j);
        }
    }
}

/// The build's status from its stages': nothing ran is `skipped`; else the
/// worst of them (killed, then error, then failure), else `success`.
pub fn status(outcomes: &[StageOutcome]) -> Status {
    let statuses: Vec<Status> = outcomes
        .iter()
        .map(|o| o.end.status())
        .filter(|s| *s != Status::Skipped)
        .collect();
    if statuses.is_empty() {
        return Status::Skipped;
    }
    [Status::Killed, Status::Error, Status::Failure]
        .into_iter()
        .find(|worst| statuses.contains(worst))
        .unwrap_or(Status::Success)
}

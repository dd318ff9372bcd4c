//! The test server's rows and the server-side rules of each call
//! (protocol §5), free of HTTP so they read like the reference.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use runnerkit_core::Status;
use runnerkit_core::drone::{
    Build, ConfigFile, Details, Filter, Line, Netrc, Repo, Secret, Stage, Step, System,
};

use super::queue;

/// Drone keeps this many characters of an `error` text.
const MAX_ERROR_CHARS: usize = 500;

/// Drone's exit code for steps ended by a cancel.
const CANCELLED_EXIT_CODE: i32 = 130;

/// A refused call: the status and text Drone would answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl Reject {
    fn conflict() -> Self {
        Self {
            status: 409,
            message: "Optimistic Lock Error".to_owned(),
        }
    }

    fn fail(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            message: message.into(),
        }
    }

    fn no_rows() -> Self {
        Self::fail("sql: no rows in result set")
    }
}

struct StageRow {
    stage: Stage,
    config: ConfigFile,
    secrets: Vec<Secret>,
    netrc: Option<Netrc>,
    system: System,
}

struct StepRow {
    step: Step,
    stream_open: bool,
    live: Vec<Line>,
    uploaded: Option<Bytes>,
}

/// Everything the server holds.
#[derive(Default)]
pub(crate) struct Store {
    stages: BTreeMap<i64, StageRow>,
    steps: BTreeMap<i64, StepRow>,
    builds: HashMap<i64, Build>,
    repos: HashMap<i64, Repo>,
    next_stage_id: i64,
    next_step_id: i64,
    next_build_id: i64,
    /// Bumped by each cancel of a build; watchers compare against it.
    cancels: HashMap<i64, u64>,
    stage_updates: Vec<Stage>,
    step_updates: Vec<Step>,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn truncate_error(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

fn is_before(status: Status) -> bool {
    matches!(status, Status::Pending | Status::Running)
}

impl Store {
    /// Adds a stage with its build, repository, config, secrets, netrc and
    /// system, as a scheduled build would. Returns the stage id.
    pub(crate) fn enqueue(&mut self, details: Details) -> i64 {
        let Details {
            repository,
            mut build,
            mut stage,
            config,
            secrets,
            system,
            netrc,
        } = details;
        if build.id == 0 {
            self.next_build_id = self
                .next_build_id
                .max(self.builds.keys().copied().max().unwrap_or(0))
                + 1;
            build.id = self.next_build_id;
        }
        if stage.id == 0 {
            self.next_stage_id = self
                .next_stage_id
                .max(self.stages.keys().copied().max().unwrap_or(0))
                + 1;
            stage.id = self.next_stage_id;
        }
        build.repo_id = repository.id;
        build.stages.clear();
        if build.created == 0 {
            build.created = now();
        }
        stage.build_id = build.id;
        stage.repo_id = repository.id;
        stage.steps.clear();
        if stage.name.is_empty() {
            stage.name = "default".to_owned();
        }
        if stage.kind.is_empty() {
            stage.kind = "pipeline".to_owned();
        }
        if stage.kind_type.is_empty() {
            stage.kind_type = "docker".to_owned();
        }
        if stage.os.is_empty() {
            stage.os = "linux".to_owned();
        }
        if stage.arch.is_empty() {
            stage.arch = "amd64".to_owned();
        }
        if stage.throttle == 0 {
            stage.throttle = i32::try_from(repository.throttle).unwrap_or(i32::MAX);
        }
        if !stage.on_success && !stage.on_failure {
            // Drone's default trigger: run when nothing before failed.
            stage.on_success = true;
        }
        if stage.status == Status::Pending && !stage.depends_on.is_empty() {
            stage.status = Status::WaitingOnDependencies;
        }
        if stage.number == 0 {
            let siblings = self
                .stages
                .values()
                .filter(|r| r.stage.build_id == build.id)
                .count();
            stage.number = i32::try_from(siblings + 1).unwrap_or(i32::MAX);
        }
        if stage.version == 0 {
            stage.version = 1;
        }
        if stage.created == 0 {
            stage.created = now();
        }
        let id = stage.id;
        self.repos.insert(repository.id, repository);
        self.builds.insert(build.id, build);
        self.stages.insert(
            id,
            StageRow {
                stage,
                config,
                secrets,
                netrc,
                system,
            },
        );
        id
    }

    /// §5.1: the stage `filter` gets now, if any.
    pub(crate) fn find_match(&self, filter: &Filter) -> Option<Stage> {
        let stages: Vec<&Stage> = self.stages.values().map(|r| &r.stage).collect();
        queue::pick(&stages, filter).cloned()
    }

    /// §5.2: claims the stage for `machine`.
    pub(crate) fn accept(&mut self, stage_id: i64, machine: &str) -> Result<Stage, Reject> {
        let row = self.stages.get_mut(&stage_id).ok_or_else(Reject::no_rows)?;
        if !row.stage.machine.is_empty() {
            return Err(Reject::conflict());
        }
        row.stage.machine = machine.to_owned();
        row.stage.status = Status::Pending;
        row.stage.updated = now();
        row.stage.version += 1;
        Ok(row.stage.clone())
    }

    /// §5.3: everything needed to run the stage.
    pub(crate) fn details(&self, stage_id: i64) -> Result<Details, Reject> {
        let row = self.stages.get(&stage_id).ok_or_else(Reject::no_rows)?;
        let mut build = self
            .builds
            .get(&row.stage.build_id)
            .cloned()
            .ok_or_else(Reject::no_rows)?;
        build.stages = self
            .stages
            .values()
            .filter(|r| r.stage.build_id == build.id)
            .map(|r| r.stage.clone())
            .collect();
        let repository = self
            .repos
            .get(&row.stage.repo_id)
            .cloned()
            .ok_or_else(Reject::no_rows)?;
        Ok(Details {
            repository,
            build,
            stage: row.stage.clone(),
            config: row.config.clone(),
            secrets: row.secrets.clone(),
            system: row.system.clone(),
            netrc: row.netrc.clone(),
        })
    }

    /// §5.4: a stage update; before-all or after-all by the body's status.
    pub(crate) fn update_stage(&mut self, path_id: i64, body: Stage) -> Result<Stage, Reject> {
        if path_id != body.id {
            return Err(Reject::fail(format!(
                "stage id {} in the body does not match {path_id} in the path",
                body.id
            )));
        }
        if !self.stages.contains_key(&body.id) {
            return Err(Reject::no_rows());
        }
        let result = if is_before(body.status) {
            self.before_all(&body)
        } else {
            self.after_all(&body)
        };
        if result.is_ok() {
            self.stage_updates.push(body);
        }
        result
    }

    fn stage_row(&mut self, id: i64) -> Result<&mut StageRow, Reject> {
        self.stages.get_mut(&id).ok_or_else(Reject::no_rows)
    }

    /// Writes the runner-owned fields of `body` into the stage row, with the
    /// optimistic-lock check.
    fn write_stage(&mut self, body: &Stage) -> Result<(), Reject> {
        let row = self.stage_row(body.id)?;
        if row.stage.version != body.version {
            return Err(Reject::conflict());
        }
        let stage = &mut row.stage;
        stage.status = body.status;
        stage.error = truncate_error(&body.error);
        stage.errignore = body.errignore;
        stage.exit_code = body.exit_code;
        stage.started = body.started;
        stage.stopped = body.stopped;
        if !body.machine.is_empty() {
            stage.machine.clone_from(&body.machine);
        }
        stage.updated = now();
        stage.version += 1;
        Ok(())
    }

    fn before_all(&mut self, body: &Stage) -> Result<Stage, Reject> {
        // Drone bumps the stage row first, so a failing step insert below
        // leaves it bumped: a second `running` update is refused with 500.
        self.write_stage(body)?;
        for step in &body.steps {
            if step.step_id != body.id {
                return Err(Reject::fail(format!(
                    "step {} ({:?}) has step_id {}, not the stage id {}",
                    step.number, step.name, step.step_id, body.id
                )));
            }
            if step.number <= 0 {
                return Err(Reject::fail(format!("step {:?} has no number", step.name)));
            }
            let exists = self
                .steps
                .values()
                .any(|r| r.step.step_id == step.step_id && r.step.number == step.number);
            if exists {
                return Err(Reject::fail(
                    "UNIQUE constraint failed: steps.step_stage_id, steps.step_number",
                ));
            }
            self.next_step_id += 1;
            let mut row = step.clone();
            row.id = self.next_step_id;
            row.version = 1;
            row.error = truncate_error(&row.error);
            self.steps.insert(
                row.id,
                StepRow {
                    step: row,
                    stream_open: false,
                    live: Vec::new(),
                    uploaded: None,
                },
            );
        }
        let build_id = body.build_id;
        if let Some(build) = self.builds.get_mut(&build_id)
            && build.status == Status::Pending
        {
            build.status = Status::Running;
            build.started = now();
            build.version += 1;
        }
        self.stage_with_steps(body.id)
    }

    fn after_all(&mut self, body: &Stage) -> Result<Stage, Reject> {
        for step in &body.steps {
            let row = self.steps.get_mut(&step.id).ok_or_else(Reject::conflict)?;
            if row.step.step_id != body.id {
                return Err(Reject::fail(format!(
                    "step {} belongs to stage {}, not {}",
                    step.id, row.step.step_id, body.id
                )));
            }
            write_step(&mut row.step, step)?;
        }
        self.write_stage(body)?;
        for step in &body.steps {
            if let Some(row) = self.steps.get_mut(&step.id) {
                row.stream_open = false;
            }
        }
        self.schedule_downstream(body.build_id);
        self.finish_build(body.build_id);
        self.stage_with_steps(body.id)
    }

    /// Stages waiting on dependencies that are all done become pending, or
    /// skipped when their `on_success`/`on_failure` does not fit the build.
    fn schedule_downstream(&mut self, build_id: i64) {
        loop {
            let of_build: Vec<&Stage> = self
                .stages
                .values()
                .map(|r| &r.stage)
                .filter(|s| s.build_id == build_id)
                .collect();
            let failed = of_build.iter().any(|s| s.status.is_failed());
            let ready: Vec<(i64, bool)> = of_build
                .iter()
                .filter(|s| s.status == Status::WaitingOnDependencies)
                .filter(|s| {
                    s.depends_on.iter().all(|name| {
                        of_build
                            .iter()
                            .filter(|o| &o.name == name)
                            .all(|o| o.status.is_done())
                    })
                })
                .map(|s| (s.id, if failed { s.on_failure } else { s.on_success }))
                .collect();
            if ready.is_empty() {
                return;
            }
            for (id, runs) in ready {
                if let Some(row) = self.stages.get_mut(&id) {
                    row.stage.status = if runs {
                        Status::Pending
                    } else {
                        Status::Skipped
                    };
                    row.stage.updated = now();
                    row.stage.version += 1;
                }
            }
        }
    }

    /// The build's final status once no stage can still run.
    fn finish_build(&mut self, build_id: i64) {
        let stages: Vec<&Stage> = self
            .stages
            .values()
            .map(|r| &r.stage)
            .filter(|s| s.build_id == build_id)
            .collect();
        let open = stages.iter().any(|s| {
            matches!(
                s.status,
                Status::Pending
                    | Status::Running
                    | Status::WaitingOnDependencies
                    | Status::Declined
                    | Status::Blocked
            )
        });
        if open {
            return;
        }
        let status = stages
            .iter()
            .map(|s| s.status)
            .find(|s| matches!(s, Status::Killed | Status::Failure | Status::Error))
            .unwrap_or(Status::Success);
        if let Some(build) = self.builds.get_mut(&build_id)
            && !build.status.is_done()
        {
            build.status = status;
            build.finished = now();
            build.version += 1;
        }
    }

    /// §5.5: a step update; before or after by the body's status.
    pub(crate) fn update_step(&mut self, path_id: i64, body: Step) -> Result<Step, Reject> {
        if path_id != body.id {
            return Err(Reject::fail(format!(
                "step id {} in the body does not match {path_id} in the path",
                body.id
            )));
        }
        let before = is_before(body.status);
        let row = self.steps.get_mut(&body.id).ok_or_else(Reject::conflict)?;
        if before {
            // The live stream opens before the row update, even if it fails.
            row.stream_open = true;
        }
        write_step(&mut row.step, &body)?;
        if !before {
            row.stream_open = false;
        }
        let answer = row.step.clone();
        self.step_updates.push(body);
        Ok(answer)
    }

    /// §5.6 Batch: appends to the step's open live stream.
    pub(crate) fn batch(&mut self, step_id: i64, lines: Vec<Line>) -> Result<(), Reject> {
        match self.steps.get_mut(&step_id) {
            Some(row) if row.stream_open => {
                row.live.extend(lines);
                Ok(())
            }
            _ => Err(Reject::fail("stream: not found")),
        }
    }

    /// §5.6 Upload: the body, verbatim, as the step's log.
    pub(crate) fn upload(&mut self, step_id: i64, body: Bytes) -> Result<(), Reject> {
        let row = self.steps.get_mut(&step_id).ok_or_else(Reject::no_rows)?;
        row.uploaded = Some(body);
        Ok(())
    }

    /// §5.7: cancels a build. Returns false for an unknown build.
    pub(crate) fn cancel_build(&mut self, build_id: i64) -> bool {
        let Some(build) = self.builds.get_mut(&build_id) else {
            return false;
        };
        let time = now();
        build.status = Status::Killed;
        build.finished = time;
        build.version += 1;
        let mut stage_ids = Vec::new();
        for row in self.stages.values_mut() {
            let stage = &mut row.stage;
            if stage.build_id != build_id || stage.status.is_done() {
                continue;
            }
            stage.status = if stage.status == Status::Running {
                Status::Killed
            } else {
                Status::Skipped
            };
            stage.stopped = time;
            stage.updated = time;
            stage.version += 1;
            stage_ids.push(stage.id);
        }
        for row in self.steps.values_mut() {
            let step = &mut row.step;
            if !stage_ids.contains(&step.step_id) || step.status.is_done() {
                continue;
            }
            step.status = if step.status == Status::Running {
                Status::Killed
            } else {
                Status::Skipped
            };
            step.exit_code = CANCELLED_EXIT_CODE;
            step.stopped = time;
            step.version += 1;
        }
        *self.cancels.entry(build_id).or_default() += 1;
        true
    }

    /// How many times build `build_id` was cancelled; a watcher is released
    /// when this grows while it waits.
    pub(crate) fn cancel_count(&self, build_id: i64) -> u64 {
        self.cancels.get(&build_id).copied().unwrap_or(0)
    }

    /// The stage row with its steps, ordered by number.
    pub(crate) fn stage_with_steps(&self, stage_id: i64) -> Result<Stage, Reject> {
        let row = self.stages.get(&stage_id).ok_or_else(Reject::no_rows)?;
        let mut stage = row.stage.clone();
        let mut steps: Vec<Step> = self
            .steps
            .values()
            .filter(|r| r.step.step_id == stage_id)
            .map(|r| r.step.clone())
            .collect();
        steps.sort_by_key(|s| s.number);
        stage.steps = steps;
        Ok(stage)
    }

    pub(crate) fn step(&self, step_id: i64) -> Option<Step> {
        self.steps.get(&step_id).map(|r| r.step.clone())
    }

    pub(crate) fn build(&self, build_id: i64) -> Option<Build> {
        self.builds.get(&build_id).cloned()
    }

    pub(crate) fn stage_updates(&self) -> Vec<Stage> {
        self.stage_updates.clone()
    }

    pub(crate) fn step_updates(&self) -> Vec<Step> {
        self.step_updates.clone()
    }

    pub(crate) fn live_log(&self, step_id: i64) -> Vec<Line> {
        self.steps
            .get(&step_id)
            .map(|r| r.live.clone())
            .unwrap_or_default()
    }

    pub(crate) fn uploaded_log(&self, step_id: i64) -> Option<Bytes> {
        self.steps.get(&step_id).and_then(|r| r.uploaded.clone())
    }

    pub(crate) fn is_stream_open(&self, step_id: i64) -> bool {
        self.steps.get(&step_id).is_some_and(|r| r.stream_open)
    }
}

/// Writes the runner-owned fields of `body` into a step row, with the
/// optimistic-lock check.
fn write_step(row: &mut Step, body: &Step) -> Result<(), Reject> {
    if row.version != body.version {
        return Err(Reject::conflict());
    }
    row.status = body.status;
    row.error = truncate_error(&body.error);
    row.errignore = body.errignore;
    row.exit_code = body.exit_code;
    row.started = body.started;
    row.stopped = body.stopped;
    row.schema.clone_from(&body.schema);
    row.version += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with one accepted stage reported running with `steps` steps.
    fn running_store(steps: i32) -> (Store, Stage) {
        let mut store = Store::default();
        let id = store.enqueue(Details::default());
        let accepted = store.accept(id, "runner").unwrap();
        let mut body = accepted.clone();
        body.status = Status::Running;
        body.steps = (1..=steps)
            .map(|number| Step {
                step_id: id,
                number,
                name: format!("step-{number}"),
                ..Step::default()
            })
            .collect();
        let answer = store.update_stage(id, body).unwrap();
        (store, answer)
    }

    #[test]
    fn errors_are_cut_to_500_characters() {
        let (mut store, stage) = running_store(1);
        let mut step = stage.steps[0].clone();
        step.status = Status::Error;
        step.error = "é".repeat(800);
        let answer = store.update_step(step.id, step).unwrap();
        assert_eq!(answer.error.chars().count(), 500);
    }

    #[test]
    fn a_before_update_opens_the_stream_even_when_it_conflicts() {
        let (mut store, stage) = running_store(1);
        let mut step = stage.steps[0].clone();
        step.status = Status::Running;
        step.version = 99;
        assert_eq!(
            store.update_step(step.id, step.clone()),
            Err(Reject::conflict())
        );
        assert!(store.is_stream_open(step.id));
        assert!(
            store.step_updates().is_empty(),
            "only applied updates are listed"
        );
    }

    #[test]
    fn an_update_of_an_unknown_step_is_a_conflict() {
        let (mut store, _) = running_store(1);
        let step = Step {
            id: 0,
            status: Status::Running,
            ..Step::default()
        };
        assert_eq!(store.update_step(0, step), Err(Reject::conflict()));
    }

    #[test]
    fn after_all_keeps_the_steps_updated_before_a_conflict() {
        let (mut store, stage) = running_store(2);
        let mut body = stage.clone();
        body.status = Status::Failure;
        body.steps[0].status = Status::Success;
        body.steps[1].status = Status::Failure;
        body.steps[1].version = 42;
        assert_eq!(store.update_stage(stage.id, body), Err(Reject::conflict()));
        let now = store.stage_with_steps(stage.id).unwrap();
        assert_eq!(
            now.steps[0].status,
            Status::Success,
            "Drone does not roll back"
        );
        assert_eq!(now.steps[1].status, Status::Pending);
        assert_eq!(now.status, Status::Running);
    }

    #[test]
    fn enqueue_fills_drones_defaults() {
        let mut store = Store::default();
        let id = store.enqueue(Details::default());
        let stage = store.stage_with_steps(id).unwrap();
        assert_eq!(stage.name, "default");
        assert_eq!(
            (stage.kind.as_str(), stage.kind_type.as_str()),
            ("pipeline", "docker")
        );
        assert_eq!((stage.os.as_str(), stage.arch.as_str()), ("linux", "amd64"));
        assert!(stage.on_success);
        assert_eq!(stage.number, 1);
        assert!(stage.build_id > 0);
        let second = store.enqueue(Details {
            build: Build {
                id: stage.build_id,
                ..Build::default()
            },
            ..Details::default()
        });
        assert_eq!(store.stage_with_steps(second).unwrap().number, 2);
    }
}

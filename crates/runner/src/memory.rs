//! [`MemoryManager`]: an in-process stage queue implementing [`Manager`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use runnerkit_core::drone::{Build, ConfigFile, Details, Filter, Netrc, Repo, Stage, Step};
use runnerkit_core::{Line, LogUpload, Manager, ManagerError, Status};
use tokio::sync::Notify;

/// One update the manager received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A stage update (`before_all` or `after_all`) with its status.
    Stage(i64, Status),
    /// A step update (`before` or `after`): stage id, step name, status.
    Step(i64, String, Status),
}

#[derive(Debug, Default)]
struct Inner {
    next_id: i64,
    next_step_id: i64,
    /// Stage id → its details (the stage inside is the latest reported).
    stages: BTreeMap<i64, Details>,
    cancelled: HashSet<i64>,
    /// Repository id → clone credentials.
    netrcs: BTreeMap<i64, Netrc>,
    reports: Vec<Report>,
    live: BTreeMap<i64, Vec<Line>>,
    uploaded: BTreeMap<i64, Vec<Line>>,
}

/// A [`Manager`] that keeps its queue in memory: a runner embedded with no
/// server (or a test of the whole flow without HTTP).
///
/// Stages are enqueued with their pipeline; `request` hands them out by
/// kind and type like Drone's queue; `accept` refuses a stage already taken
/// with [`ManagerError::Conflict`]; [`cancel_build`](Self::cancel_build)
/// releases watchers and makes later updates of that build conflict, as a
/// cancel on a Drone server does. Everything reported is kept for
/// inspection.
#[derive(Debug)]
pub struct MemoryManager {
    inner: Mutex<Inner>,
    changed: Notify,
    long_poll: Duration,
}

impl Default for MemoryManager {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryManager {
    /// An empty queue; long polls give up after 30 s, as Drone's do.
    pub fn new() -> Self {
        Self::with_long_poll(Duration::from_secs(30))
    }

    /// An empty queue whose long polls (`request`, `watch`) give up after `d`.
    pub fn with_long_poll(d: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
            long_poll: d,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a stage running the pipeline `name` of `yaml` (type `kind_type`,
    /// e.g. `exec`) for `repo` and `build`; returns the stage id (the build
    /// id is the same number).
    pub fn enqueue(
        &self,
        yaml: &str,
        name: &str,
        kind_type: &str,
        repo: Repo,
        mut build: Build,
    ) -> i64 {
        let id = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = inner.next_id;
            build.id = id;
            build.status = Status::Pending;
            let stage = Stage {
                id,
                build_id: id,
                repo_id: repo.id,
                number: 1,
                name: name.to_owned(),
                kind: "pipeline".into(),
                kind_type: kind_type.to_owned(),
                status: Status::Pending,
                os: "linux".into(),
                arch: "amd64".into(),
                on_success: true,
                version: 1,
                ..Stage::default()
            };
            inner.stages.insert(
                id,
                Details {
                    repository: repo,
                    build,
                    stage,
                    config: ConfigFile {
                        data: yaml.as_bytes().to_vec(),
                        hash: None,
                    },
                    ..Details::default()
                },
            );
            id
        };
        self.changed.notify_waiters();
        id
    }

    /// Clone credentials handed out for repository `repo_id` (by
    /// [`Manager::netrc`], apart from the details).
    pub fn set_netrc(&self, repo_id: i64, netrc: Netrc) {
        self.lock().netrcs.insert(repo_id, netrc);
    }

    /// Cancels build `build_id`: watchers are told, later reports conflict.
    ///
    /// As on a Drone server, the build becomes `killed`, its unfinished
    /// stages `killed` (running) or `skipped`, and their unfinished steps
    /// likewise with exit code 130.
    pub fn cancel_build(&self, build_id: i64) {
        {
            let mut inner = self.lock();
            inner.cancelled.insert(build_id);
            for details in inner.stages.values_mut() {
                if details.stage.build_id != build_id || details.stage.status.is_done() {
                    continue;
                }
                details.build.status = Status::Killed;
                let stage = &mut details.stage;
                stage.status = match stage.status {
                    Status::Running => Status::Killed,
                    _ => Status::Skipped,
                };
                stage.version += 1;
                for step in stage.steps.iter_mut().filter(|s| !s.status.is_done()) {
                    step.status = match step.status {
                        Status::Running => Status::Killed,
                        _ => Status::Skipped,
                    };
                    step.exit_code = 130;
                    step.version += 1;
                }
            }
        }
        self.changed.notify_waiters();
    }

    /// The stage as last reported, with its steps.
    pub fn stage(&self, id: i64) -> Option<Stage> {
        self.lock().stages.get(&id).map(|d| d.stage.clone())
    }

    /// Every update received, in order.
    pub fn reports(&self) -> Vec<Report> {
        self.lock().reports.clone()
    }

    /// The lines sent live for step `step_id`.
    pub fn live_log(&self, step_id: i64) -> Vec<Line> {
        self.lock().live.get(&step_id).cloned().unwrap_or_default()
    }

    /// The log uploaded for step `step_id`.
    pub fn uploaded_log(&self, step_id: i64) -> Option<Vec<Line>> {
        self.lock().uploaded.get(&step_id).cloned()
    }

    /// Number of stages not accepted yet.
    pub fn pending(&self) -> usize {
        self.lock()
            .stages
            .values()
            .filter(|d| d.stage.machine.is_empty())
            .count()
    }

    fn check_live(inner: &Inner, build_id: i64) -> Result<(), ManagerError> {
        if inner.cancelled.contains(&build_id) {
            Err(ManagerError::Conflict)
        } else {
            Ok(())
        }
    }

    fn stage_of_step<'a>(
        inner: &'a mut Inner,
        step: &Step,
    ) -> Result<&'a mut Details, ManagerError> {
        inner
            .stages
            .get_mut(&step.step_id)
            .ok_or_else(|| ManagerError::NotFound(format!("stage {}", step.step_id)))
    }

    fn update_step(&self, step: &mut Step) -> Result<(), ManagerError> {
        let mut inner = self.lock();
        let build_id = Self::stage_of_step(&mut inner, step)?.stage.build_id;
        Self::check_live(&inner, build_id)?;
        let details = Self::stage_of_step(&mut inner, step)?;
        let stored = details
            .stage
            .steps
            .iter_mut()
            .find(|s| s.id == step.id)
            .ok_or_else(|| ManagerError::NotFound(format!("step {}", step.id)))?;
        if stored.version != step.version {
            return Err(ManagerError::Conflict);
        }
        step.version += 1;
        *stored = step.clone();
        let report = Report::Step(step.step_id, step.name.clone(), step.status);
        inner.reports.push(report);
        Ok(())
    }
}

#[async_trait]
impl Manager for MemoryManager {
    async fn request(&self, filter: &Filter) -> Result<Option<Stage>, ManagerError> {
        let deadline = tokio::time::Instant::now() + self.long_poll;
        loop {
            let changed = self.changed.notified();
            {
                let inner = self.lock();
                let found = inner.stages.values().find(|d| {
                    let s = &d.stage;
                    s.machine.is_empty()
                        && s.status == Status::Pending
                        && (filter.kind.is_empty() || filter.kind == s.kind)
                        && (filter.kind_type.is_empty() || filter.kind_type == s.kind_type)
                });
                if let Some(d) = found {
                    return Ok(Some(d.stage.clone()));
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn accept(&self, stage_id: i64, machine: &str) -> Result<Stage, ManagerError> {
        let mut inner = self.lock();
        let details = inner
            .stages
            .get_mut(&stage_id)
            .ok_or_else(|| ManagerError::NotFound(format!("stage {stage_id}")))?;
        if !details.stage.machine.is_empty() {
            return Err(ManagerError::Conflict);
        }
        details.stage.machine = machine.to_owned();
        details.stage.version += 1;
        Ok(details.stage.clone())
    }

    async fn details(&self, stage_id: i64) -> Result<Details, ManagerError> {
        self.lock()
            .stages
            .get(&stage_id)
            .cloned()
            .ok_or_else(|| ManagerError::NotFound(format!("stage {stage_id}")))
    }

    async fn netrc(&self, repo_id: i64) -> Result<Option<Netrc>, ManagerError> {
        Ok(self.lock().netrcs.get(&repo_id).cloned())
    }

    async fn watch(&self, build_id: i64) -> Result<bool, ManagerError> {
        let deadline = tokio::time::Instant::now() + self.long_poll;
        loop {
            let changed = self.changed.notified();
            if self.lock().cancelled.contains(&build_id) {
                return Ok(true);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(false);
            }
        }
    }

    async fn before_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        let mut inner = self.lock();
        Self::check_live(&inner, stage.build_id)?;
        let first_step_id = inner.next_step_id + 1;
        inner.next_step_id += stage.steps.len() as i64;
        let details = inner
            .stages
            .get_mut(&stage.id)
            .ok_or_else(|| ManagerError::NotFound(format!("stage {}", stage.id)))?;
        if details.stage.version != stage.version {
            return Err(ManagerError::Conflict);
        }
        for (step, id) in stage.steps.iter_mut().zip(first_step_id..) {
            step.id = id;
            step.version = 1;
        }
        stage.version += 1;
        details.stage = stage.clone();
        details.build.status = Status::Running;
        inner.reports.push(Report::Stage(stage.id, stage.status));
        Ok(())
    }

    async fn after_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        let mut inner = self.lock();
        let details = inner
            .stages
            .get_mut(&stage.id)
            .ok_or_else(|| ManagerError::NotFound(format!("stage {}", stage.id)))?;
        stage.version += 1;
        details.stage = stage.clone();
        details.build.status = stage.status;
        inner.reports.push(Report::Stage(stage.id, stage.status));
        Ok(())
    }

    async fn before(&self, step: &mut Step) -> Result<(), ManagerError> {
        self.update_step(step)
    }

    async fn after(&self, step: &mut Step) -> Result<(), ManagerError> {
        self.update_step(step)
    }

    async fn write(&self, step_id: i64, lines: &[Line]) -> Result<(), ManagerError> {
        self.lock()
            .live
            .entry(step_id)
            .or_default()
            .extend_from_slice(lines);
        Ok(())
    }

    /// Keeps the whole log in memory: this manager is for tests and for
    /// embedding, where logs are small.
    async fn upload(&self, step_id: i64, log: LogUpload<'_>) -> Result<(), ManagerError> {
        let mut lines = Vec::new();
        log.for_each(|line| lines.push(line.to_line()))
            .map_err(|e| ManagerError::Invalid(format!("cannot read the step's kept log: {e}")))?;
        self.lock().uploaded.insert(step_id, lines);
        Ok(())
    }
}

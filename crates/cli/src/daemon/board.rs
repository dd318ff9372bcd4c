//! What the daemon shows about its stages: [`Observed`] wraps the
//! [`Manager`] the runner talks to and notes on a [`Board`] every stage and
//! step update that goes to the server, so the page lists the stages
//! running and recently done, and `/metrics` has step durations, without
//! the runner knowing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use runnerkit_core::drone::{Details, Filter, Netrc, Stage, Step};
use runnerkit_core::{Line, LogUpload, Manager, ManagerError, Status};

/// How many finished stages the page keeps.
const RECENT: usize = 50;

/// Upper bounds of the step duration histogram, in seconds.
pub const DURATION_BUCKETS: [f64; 10] = [
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A stage as the page shows it.
#[derive(Debug, Clone)]
pub struct StageView {
    /// The server's stage id.
    pub id: i64,
    /// The pipeline's name.
    pub name: String,
    /// `namespace/name` of the repository, when the details were fetched.
    pub repo: String,
    /// The build number.
    pub build: i64,
    /// The build's event and branch, e.g. `push main`.
    pub trigger: String,
    /// Its status as last reported.
    pub status: Status,
    /// The stage's error, if it has one.
    pub error: String,
    /// When it started, wall clock.
    pub started: Option<SystemTime>,
    /// When it started, for its duration.
    began: Option<Instant>,
    /// How long it ran, once done.
    pub duration: Option<Duration>,
    /// Its steps, with their statuses as last reported.
    pub steps: Vec<(String, Status)>,
}

impl StageView {
    /// A stage known only by its id.
    pub(super) fn new(id: i64) -> Self {
        Self {
            id,
            name: String::new(),
            repo: String::new(),
            build: 0,
            trigger: String::new(),
            status: Status::Pending,
            error: String::new(),
            started: None,
            began: None,
            duration: None,
            steps: Vec::new(),
        }
    }

    /// How long it has run so far, or ran.
    pub fn elapsed(&self) -> Option<Duration> {
        self.duration.or_else(|| self.began.map(|b| b.elapsed()))
    }

    fn update(&mut self, stage: &Stage) {
        self.name.clone_from(&stage.name);
        self.status = stage.status;
        self.error.clone_from(&stage.error);
        if !stage.steps.is_empty() {
            self.steps = stage
                .steps
                .iter()
                .map(|s| (s.name.clone(), s.status))
                .collect();
        }
    }
}

/// Step durations, as a Prometheus histogram.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Observations at or under each of [`DURATION_BUCKETS`].
    pub buckets: [u64; DURATION_BUCKETS.len()],
    /// Every observation.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, n) in DURATION_BUCKETS.iter().zip(&mut self.buckets) {
            if seconds <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct State {
    /// Stages whose details were fetched, not yet started: a stage the
    /// server already finished never starts, so this is bounded.
    preparing: HashMap<i64, StageView>,
    /// Stages between `before_all` and `after_all`.
    running: BTreeMap<i64, StageView>,
    /// Finished stages, the latest first.
    done: VecDeque<StageView>,
    /// When each running step started, by step id.
    step_began: HashMap<i64, Instant>,
    /// Final step statuses, counted.
    steps_done: BTreeMap<&'static str, u64>,
    /// Durations of the steps that ran.
    step_durations: Histogram,
}

/// The stages running and recently done, and step statistics.
#[derive(Default)]
pub struct Board {
    state: Mutex<State>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board").finish_non_exhaustive()
    }
}

impl Board {
    /// The page must keep working even if a thread panicked holding the
    /// lock: the data is only ever replaced whole.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stages running now, oldest first.
    pub fn running(&self) -> Vec<StageView> {
        self.lock().running.values().cloned().collect()
    }

    /// The stages done, the latest first.
    pub fn done(&self) -> Vec<StageView> {
        self.lock().done.iter().cloned().collect()
    }

    /// Final step statuses and how many steps ended so.
    pub fn steps_done(&self) -> BTreeMap<&'static str, u64> {
        self.lock().steps_done.clone()
    }

    /// Durations of the steps that ran.
    pub fn step_durations(&self) -> Histogram {
        self.lock().step_durations.clone()
    }

    fn details(&self, id: i64, details: &Details) {
        let mut state = self.lock();
        if state.preparing.len() >= RECENT {
            state.preparing.clear();
        }
        let view = state
            .preparing
            .entry(id)
            .or_insert_with(|| StageView::new(id));
        view.repo.clone_from(&details.repository.slug);
        view.build = details.build.number;
        view.trigger = format!("{} {}", details.build.event, details.build.target)
            .trim()
            .to_owned();
        view.update(&details.stage);
    }

    fn started(&self, stage: &Stage) {
        let mut state = self.lock();
        let prepared = state.preparing.remove(&stage.id);
        let view = state
            .running
            .entry(stage.id)
            .or_insert_with(|| prepared.unwrap_or_else(|| StageView::new(stage.id)));
        view.update(stage);
        view.started = Some(SystemTime::now());
        view.began = Some(Instant::now());
    }

    fn ended(&self, stage: &Stage) {
        let mut state = self.lock();
        let mut view = state
            .running
            .remove(&stage.id)
            .or_else(|| state.preparing.remove(&stage.id))
            .or_else(|| {
                // A report retried after a failure: update the entry in place.
                let at = state.done.iter().position(|v| v.id == stage.id)?;
                state.done.remove(at)
            })
            .unwrap_or_else(|| StageView::new(stage.id));
        view.update(stage);
        if view.duration.is_none() {
            view.duration = view.began.map(|b| b.elapsed());
        }
        for step in &stage.steps {
            state.step_began.remove(&step.id);
        }
        state.done.push_front(view);
        state.done.truncate(RECENT);
    }

    fn step_started(&self, step: &Step) {
        let mut state = self.lock();
        state.step_began.insert(step.id, Instant::now());
        set_step(&mut state, step);
    }

    fn step_ended(&self, step: &Step) {
        let mut state = self.lock();
        if let Some(began) = state.step_began.remove(&step.id) {
            state.step_durations.observe(began.elapsed().as_secs_f64());
        }
        *state
            .steps_done
            .entry(status_name(step.status))
            .or_default() += 1;
        set_step(&mut state, step);
    }
}

/// Puts a step's status on its running stage.
fn set_step(state: &mut State, step: &Step) {
    let stage = state.running.values_mut().find(|s| s.id == step.step_id);
    if let Some(stage) = stage {
        match stage.steps.iter_mut().find(|(name, _)| *name == step.name) {
            Some(entry) => entry.1 = step.status,
            None => stage.steps.push((step.name.clone(), step.status)),
        }
    }
}

/// A status as Drone spells it, for labels.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Running => "running",
        Status::Success => "success",
        Status::Failure => "failure",
        Status::Skipped => "skipped",
        Status::Killed => "killed",
        Status::Error => "error",
        Status::Blocked => "blocked",
        Status::Declined => "declined",
        Status::WaitingOnDependencies => "waiting_on_dependencies",
    }
}

/// A [`Manager`] that passes every call to another and notes stage and
/// step updates on a [`Board`].
pub struct Observed {
    inner: Arc<dyn Manager>,
    board: Arc<Board>,
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}

impl Observed {
    /// `inner`, observed on `board`.
    pub fn new(inner: Arc<dyn Manager>, board: Arc<Board>) -> Self {
        Self { inner, board }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Manager for Observed {
    async fn request(&self, filter: &Filter) -> Result<Option<Stage>, ManagerError> {
        self.inner.request(filter).await
    }

    async fn accept(&self, stage_id: i64, machine: &str) -> Result<Stage, ManagerError> {
        self.inner.accept(stage_id, machine).await
    }

    async fn details(&self, stage_id: i64) -> Result<Details, ManagerError> {
        let details = self.inner.details(stage_id).await?;
        self.board.details(stage_id, &details);
        Ok(details)
    }

    async fn netrc(&self, repo_id: i64) -> Result<Option<Netrc>, ManagerError> {
        self.inner.netrc(repo_id).await
    }

    async fn watch(&self, build_id: i64) -> Result<bool, ManagerError> {
        self.inner.watch(build_id).await
    }

    async fn before_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        self.inner.before_all(stage).await?;
        self.board.started(stage);
        Ok(())
    }

    async fn after_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        // Noted even when the report fails: the stage is over on this side,
        // and a retried report updates the same entry.
        let result = self.inner.after_all(stage).await;
        self.board.ended(stage);
        result
    }

    async fn before(&self, step: &mut Step) -> Result<(), ManagerError> {
        self.inner.before(step).await?;
        self.board.step_started(step);
        Ok(())
    }

    async fn after(&self, step: &mut Step) -> Result<(), ManagerError> {
        let result = self.inner.after(step).await;
        self.board.step_ended(step);
        result
    }

    async fn write(&self, step_id: i64, lines: &[Line]) -> Result<(), ManagerError> {
        self.inner.write(step_id, lines).await
    }

    async fn upload(&self, step_id: i64, log: LogUpload<'_>) -> Result<(), ManagerError> {
        self.inner.upload(step_id, log).await
    }
}

#[cfg(test)]
mod tests {
    use runnerkit_core::drone::{Build, Repo};

    use super::*;

    fn stage(id: i64, status: Status, steps: &[(&str, Status)]) -> Stage {
        Stage {
            id,
            name: "default".into(),
            status,
            steps: steps
                .iter()
                .enumerate()
                .map(|(i, (name, status))| Step {
                    id: id * 100 + i as i64,
                    step_id: id,
                    name: (*name).into(),
                    status: *status,
                    ..Step::default()
                })
                .collect(),
            ..Stage::default()
        }
    }

    #[test]
    fn a_stage_moves_from_running_to_done_with_its_steps() {
        let board = Board::default();
        let details = Details {
            repository: Repo {
                slug: "octo/hello".into(),
                ..Repo::default()
            },
            build: Build {
                number: 7,
                event: "push".into(),
                target: "main".into(),
                ..Build::default()
            },
            ..Details::default()
        };
        board.details(1, &details);
        board.started(&stage(1, Status::Running, &[("build", Status::Pending)]));
        let mut step = stage(1, Status::Running, &[("build", Status::Running)]).steps[0].clone();
        board.step_started(&step);
        let running = board.running();
        assert_eq!(running.len(), 1);
        assert_eq!(
            (
                running[0].repo.as_str(),
                running[0].build,
                running[0].trigger.as_str()
            ),
            ("octo/hello", 7, "push main")
        );
        assert_eq!(running[0].steps, [("build".to_owned(), Status::Running)]);

        step.status = Status::Failure;
        board.step_ended(&step);
        board.ended(&stage(1, Status::Failure, &[("build", Status::Failure)]));
        assert!(board.running().is_empty());
        let done = board.done();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].status, Status::Failure);
        assert_eq!(done[0].repo, "octo/hello");
        assert!(done[0].duration.is_some());
        assert_eq!(board.steps_done()["failure"], 1);
        assert_eq!(board.step_durations().count, 1);

        // A retried final report replaces the entry instead of adding one.
        board.ended(&stage(1, Status::Failure, &[("build", Status::Failure)]));
        assert_eq!(board.done().len(), 1);
    }

    #[test]
    fn only_the_latest_stages_are_kept() {
        let board = Board::default();
        for id in 0..(RECENT as i64 + 5) {
            board.ended(&stage(id, Status::Success, &[]));
        }
        let done = board.done();
        assert_eq!(done.len(), RECENT);
        assert_eq!(done[0].id, RECENT as i64 + 4, "the latest first");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.5);
        h.observe(7.0);
        h.observe(5000.0);
        assert_eq!(h.buckets[0], 1, "<= 1s");
        assert_eq!(h.buckets[2], 2, "<= 10s");
        assert_eq!(h.buckets[DURATION_BUCKETS.len() - 1], 2, "<= 1h");
        assert_eq!(h.count, 3);
    }
}

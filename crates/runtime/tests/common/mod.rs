//! A hook that records every event, for assertions on order.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use async_trait::async_trait;
use runnerkit_core::{Hook, HookError, LineRef, State, Status, StepDecision, StepLog, StepState};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    Before,
    BeforeEach(String),
    Line(String, String),
    Logs(String, usize),
    AfterEach(String, Status),
    After(Status),
}

#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<Event>>,
    pub running: Mutex<(usize, usize)>,
    /// Virtual time of each step's before_each and after_each.
    pub started_at: Mutex<HashMap<String, Instant>>,
    pub ended_at: Mutex<HashMap<String, Instant>>,
    pub skip: Vec<String>,
    pub fail_before_each: Option<String>,
    pub panic_before_each: Option<String>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
    pub fn lines(&self, step: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Line(s, l) if s == step => Some(l),
                _ => None,
            })
            .collect()
    }
    pub fn position(&self, event: &Event) -> Option<usize> {
        self.events().iter().position(|e| e == event)
    }
    pub fn started(&self, step: &str) -> bool {
        self.position(&Event::BeforeEach(step.into())).is_some()
    }
    pub fn max_running(&self) -> usize {
        self.running.lock().unwrap().1
    }
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }
}

#[async_trait]
impl Hook for Recorder {
    async fn before(&self, _: &State) -> Result<(), HookError> {
        self.push(Event::Before);
        Ok(())
    }
    async fn before_each(&self, _: &State, step: &StepState) -> Result<StepDecision, HookError> {
        assert_eq!(
            step.status,
            Status::Running,
            "before_each sees the step running"
        );
        self.push(Event::BeforeEach(step.name.clone()));
        self.started_at
            .lock()
            .unwrap()
            .insert(step.name.clone(), Instant::now());
        if self.panic_before_each.as_deref() == Some(&step.name) {
            panic!("recorder told to panic");
        }
        if self.fail_before_each.as_deref() == Some(&step.name) {
            return Err(HookError::new("the server said no"));
        }
        if self.skip.contains(&step.name) {
            return Ok(StepDecision::Skip);
        }
        let mut r = self.running.lock().unwrap();
        r.0 += 1;
        r.1 = r.1.max(r.0);
        Ok(StepDecision::Run)
    }
    async fn after_each(&self, _: &State, step: &StepState) -> Result<(), HookError> {
        assert!(step.status.is_done(), "after_each sees a final status");
        if self.started(&step.name)
            && !self.skip.contains(&step.name)
            && step.status != Status::Skipped
        {
            self.running.lock().unwrap().0 -= 1;
        }
        self.push(Event::AfterEach(step.name.clone(), step.status));
        self.ended_at
            .lock()
            .unwrap()
            .insert(step.name.clone(), Instant::now());
        Ok(())
    }
    async fn after(&self, state: &State) -> Result<(), HookError> {
        let snap = state.snapshot();
        assert!(
            snap.steps.iter().all(|s| s.status.is_done()),
            "after sees every step final"
        );
        self.push(Event::After(snap.stage.status));
        Ok(())
    }
    fn got_line(&self, _: &State, step: &StepState, line: LineRef<'_>) {
        self.push(Event::Line(step.name.clone(), line.message.to_owned()));
    }
    fn wants_log(&self) -> bool {
        true
    }
    async fn got_logs(&self, _: &State, step: &StepState, log: &StepLog) -> Result<(), HookError> {
        self.push(Event::Logs(step.name.clone(), log.len() as usize));
        Ok(())
    }
}

//! The `--json` result: one object on one line of stdout.
//!
//! `{"status": "...", "steps": [{"name": "...", "status": "...", "exit_code": N}], "error": "..."?}`
//! as DESIGN.md ("The CLI contract") gives it. Statuses are Drone's
//! spellings; `error` is there only when there is one, secrets masked (by
//! the runtime for a stage that ran, here for a refusal).

use std::io::Write;

use runnerkit_core::{Snapshot, Status};
use runnerkit_runtime::logs::Masker;
use serde::Serialize;

/// The result object.
#[derive(Debug, Serialize)]
pub struct RunResult {
    status: Status,
    steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One step of the result.
#[derive(Debug, Serialize)]
struct StepResult {
    name: String,
    status: Status,
    exit_code: i32,
}

impl RunResult {
    /// The result of a stage that ran. Its `error` is the stage's, else the
    /// first step error, so a failing engine call is explained; the runtime
    /// masked both already.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let error = snapshot
            .stage
            .error
            .clone()
            .or_else(|| snapshot.steps.iter().find_map(|s| s.error.clone()));
        Self {
            status: snapshot.stage.status,
            steps: snapshot
                .steps
                .iter()
                .map(|s| StepResult {
                    name: s.name.clone(),
                    status: s.status,
                    exit_code: s.exit_code,
                })
                .collect(),
            error,
        }
    }

    /// The result when nothing ran: the input was refused. The runtime never
    /// saw the message, so it is masked here.
    pub fn refused(message: &str, masker: &Masker) -> Self {
        Self {
            status: Status::Error,
            steps: Vec::new(),
            error: Some(masker.mask_str(message)),
        }
    }

    /// Writes the object and a newline.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnerkit_core::StepState;

    fn render(r: &RunResult) -> String {
        let mut out = Vec::new();
        r.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_stage_result_is_one_line() {
        let mut ok = StepState::pending(0, "build");
        ok.status = Status::Success;
        let mut bad = StepState::pending(1, "test");
        bad.status = Status::Failure;
        bad.exit_code = 2;
        let mut snap = Snapshot::new(vec![ok, bad]);
        snap.stage.status = Status::Failure;
        let text = render(&RunResult::from_snapshot(&snap));
        assert_eq!(
            text,
            "{\"status\":\"failure\",\"steps\":[{\"name\":\"build\",\"status\":\"success\",\"exit_code\":0},\
             {\"name\":\"test\",\"status\":\"failure\",\"exit_code\":2}]}\n"
        );
    }

    #[test]
    fn a_step_error_explains_a_stage_without_one() {
        let mut step = StepState::pending(0, "deploy");
        step.status = Status::Error;
        step.exit_code = 255;
        step.error = Some("local: start step (/bin/******)".into());
        let mut snap = Snapshot::new(vec![step]);
        snap.stage.status = Status::Error;
        let text = render(&RunResult::from_snapshot(&snap));
        assert!(
            text.contains("\"error\":\"local: start step (/bin/******)\""),
            "{text}"
        );
    }

    #[test]
    fn a_refusal_is_masked() {
        let masker = Masker::new(["hunter2"]);
        let text = render(&RunResult::refused("bad hunter2", &masker));
        assert_eq!(
            text,
            "{\"status\":\"error\",\"steps\":[],\"error\":\"bad ******\"}\n"
        );
    }
}

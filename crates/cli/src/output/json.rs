//! The `--json` result: one object on one line of stdout.
//!
//! ```text
//! {"status": "...",
//!  "steps": [{"name": "...", "status": "...", "exit_code": N|null,
//!             "started": "...", "finished": "...", "seconds": F, "reason": "..."?}],
//!  "error": "..."?}
//! ```
//!
//! as DESIGN.md ("The CLI contract") gives it. Statuses are Drone's
//! spellings. Every step of the pipeline is listed, in pipeline order: a
//! step that did not run (its `when` did not match, an earlier failure,
//! exit 78, a cancel...) is `skipped` with a `reason`, and its `exit_code`,
//! `started`, `finished` and `seconds` are `null`. `started` and `finished`
//! are RFC 3339 timestamps in UTC with microseconds
//! (`2026-12-02T06:32:22.123456Z`), `seconds` how long the step ran, a float.
//! `error` is there only when there is one, secrets masked (by the runtime
//! for a stage that ran, here for a refusal). A pipeline whose `trigger`
//! did not match has `"status": "skipped"`, no steps and a `reason`.
//!
//! A run of several pipelines (a file with more than one, unless one
//! `--pipeline` picks it) gives the build's status and a list of stages, in
//! file order, each with its steps as above:
//!
//! ```text
//! {"status": "...",
//!  "stages": [{"name": "...", "status": "...", "started": ..., "finished": ...,
//!              "seconds": ..., "steps": [...], "reason": "..."?, "error": "..."?}],
//!  "error": "..."?}
//! ```

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use runnerkit_core::{Snapshot, Status};
use runnerkit_manifest::StageStep;
use runnerkit_runtime::logs::Masker;
use serde::Serialize;

use super::{StepRow, step_rows};

/// The result object.
#[derive(Debug, Serialize)]
pub struct RunResult {
    status: Status,
    steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The result of a build of several pipelines.
#[derive(Debug, Serialize)]
pub struct BuildResult {
    status: Status,
    stages: Vec<StageResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One pipeline of a [`BuildResult`].
#[derive(Debug, Serialize)]
pub struct StageResult {
    name: String,
    status: Status,
    started: Option<String>,
    finished: Option<String>,
    seconds: Option<f64>,
    steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl StageResult {
    /// A pipeline whose stage ran, as [`RunResult::from_run`] gives it.
    pub fn ran(name: &str, listing: &[StageStep], snapshot: &Snapshot) -> Self {
        let run = RunResult::from_run(listing, snapshot);
        let stage = &snapshot.stage;
        let (started, finished) = (stage.started, stage.stopped);
        Self {
            name: name.to_owned(),
            status: run.status,
            started: started.and_then(rfc3339),
            finished: finished.and_then(rfc3339),
            seconds: started
                .zip(finished)
                .map(|(a, b)| seconds(b.duration_since(a).unwrap_or_default())),
            steps: run.steps,
            reason: None,
            error: run.error,
        }
    }

    /// A pipeline that did not run, for `reason`.
    pub fn skipped(name: &str, reason: &str) -> Self {
        Self::not_ran(name, Status::Skipped, Some(reason), None)
    }

    /// A pipeline whose stage errored before anything ran (its Spec was
    /// refused), for `error`.
    pub fn errored(name: &str, error: &str) -> Self {
        Self::not_ran(name, Status::Error, None, Some(error))
    }

    fn not_ran(name: &str, status: Status, reason: Option<&str>, error: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            status,
            started: None,
            finished: None,
            seconds: None,
            steps: Vec::new(),
            reason: reason.map(str::to_owned),
            error: error.map(str::to_owned),
        }
    }
}

impl BuildResult {
    /// The build: its status and its pipelines, in file order.
    pub fn new(status: Status, stages: Vec<StageResult>) -> Self {
        Self {
            status,
            stages,
            error: None,
        }
    }

    /// Writes the object and a newline.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_line(self, out)
    }
}

fn write_line(value: &impl Serialize, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `d` in seconds, to the microsecond.
fn seconds(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1e6
}

/// One step of the result.
#[derive(Debug, Serialize)]
struct StepResult {
    name: String,
    status: Status,
    exit_code: Option<i32>,
    started: Option<String>,
    finished: Option<String>,
    seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<StepRow> for StepResult {
    fn from(row: StepRow) -> Self {
        Self {
            seconds: row.duration().map(seconds),
            started: row.started.and_then(rfc3339),
            finished: row.finished.and_then(rfc3339),
            name: row.name,
            status: row.status,
            exit_code: row.exit_code,
            reason: row.reason,
        }
    }
}

impl RunResult {
    /// The result of a stage that ran: every step of `listing` (the
    /// compiled stage's steps, see [`step_rows`]) with what the runtime's
    /// `snapshot` says of it. Its `error` is the stage's, else the first
    /// step error, so a failing engine call is explained; the runtime masked
    /// both already.
    pub fn from_run(listing: &[StageStep], snapshot: &Snapshot) -> Self {
        let error = snapshot
            .stage
            .error
            .clone()
            .or_else(|| snapshot.steps.iter().find_map(|s| s.error.clone()));
        Self {
            status: snapshot.stage.status,
            steps: step_rows(listing, snapshot)
                .into_iter()
                .map(StepResult::from)
                .collect(),
            reason: None,
            error,
        }
    }

    /// The result when the pipeline did not run: its `trigger` did not
    /// match the build.
    pub fn not_run(reason: &str) -> Self {
        Self {
            status: Status::Skipped,
            steps: Vec::new(),
            reason: Some(reason.to_owned()),
            error: None,
        }
    }

    /// The result when nothing ran: the input was refused. The runtime never
    /// saw the message, so it is masked here.
    pub fn refused(message: &str, masker: &Masker) -> Self {
        Self {
            status: Status::Error,
            steps: Vec::new(),
            reason: None,
            error: Some(masker.mask_str(message)),
        }
    }

    /// Writes the object and a newline.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_line(self, out)
    }
}

/// `t` as RFC 3339 in UTC with microseconds; `None` before 1970, which no
/// clock of a run shows (and RFC 3339 cannot say).
fn rfc3339(t: SystemTime) -> Option<String> {
    t.duration_since(UNIX_EPOCH).ok()?;
    Some(humantime::format_rfc3339_micros(t).to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use runnerkit_core::StepState;

    fn render(r: &RunResult) -> String {
        let mut out = Vec::new();
        r.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_stage_result_is_one_line() {
        let start = UNIX_EPOCH + Duration::from_micros(1_764_657_142_123_456);
        let mut ok = StepState::pending(0, "build");
        ok.status = Status::Success;
        ok.started = Some(start);
        ok.stopped = Some(start + Duration::from_millis(1500));
        let mut bad = StepState::pending(1, "test");
        bad.status = Status::Failure;
        bad.exit_code = 2;
        bad.started = Some(start);
        bad.stopped = Some(start);
        let mut rest = StepState::pending(2, "rest");
        rest.status = Status::Skipped;
        rest.started = Some(start);
        rest.stopped = Some(start);
        rest.reason = Some("an earlier failure".into());
        let mut snap = Snapshot::new(vec![ok, bad, rest]);
        snap.stage.status = Status::Failure;
        let text = render(&RunResult::from_run(&[], &snap));
        assert_eq!(
            text,
            "{\"status\":\"failure\",\"steps\":[\
             {\"name\":\"build\",\"status\":\"success\",\"exit_code\":0,\
             \"started\":\"2025-12-02T06:32:22.123456Z\",\"finished\":\"2025-12-02T06:32:23.623456Z\",\
             \"seconds\":1.5},\
             {\"name\":\"test\",\"status\":\"failure\",\"exit_code\":2,\
             \"started\":\"2025-12-02T06:32:22.123456Z\",\"finished\":\"2025-12-02T06:32:22.123456Z\",\
             \"seconds\":0.0},\
             {\"name\":\"rest\",\"status\":\"skipped\",\"exit_code\":null,\
             \"started\":null,\"finished\":null,\"seconds\":null,\"reason\":\"an earlier failure\"}]}\n"
        );
    }

    #[test]
    fn dates_are_the_calendar_s() {
        let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
        assert_eq!(at(0), "1970-01-01T00:00:00.000000Z");
        // The leap day of a year divisible by 400, and the day after.
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000000Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59.000000Z");
        assert_eq!(at(951_868_800), "2000-03-01T00:00:00.000000Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00.000000Z");
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(1)), None);
    }

    #[test]
    fn a_step_error_explains_a_stage_without_one() {
        let mut step = StepState::pending(0, "deploy");
        step.status = Status::Error;
        step.exit_code = 255;
        step.error = Some("local: start step (/bin/******)".into());
        let mut snap = Snapshot::new(vec![step]);
        snap.stage.status = Status::Error;
        let text = render(&RunResult::from_run(&[], &snap));
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

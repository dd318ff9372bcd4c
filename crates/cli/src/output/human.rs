//! Output for people: every log line prefixed with its step's name, a line
//! when each step starts and ends, and a summary table at the end.
//!
//! ```text
//! build | --> running
//! build | + make
//! build | <-- success (exit 0) in 1.20s
//! test  | --> running
//! test  | <-- failure (exit 2) in 0.31s
//! lint  | <-- skipped (an earlier failure)
//!
//! STEP    STATUS   EXIT  DURATION  REASON
//! build   success     0  1.20s
//! test    failure     2  0.31s
//! lint    skipped     -  -         an earlier failure
//! deploy  skipped     -  -         when: branch
//!
//! pipeline failure in 1.52s
//!
//! --- test (failure, exit 2): last 2 lines ---
//! go test ./...
//! FAIL example.com/pkg 0.12s
//! ```
//!
//! The summary lists every step of the pipeline, also those whose `when` left
//! them out of the Spec (they print nothing live: they never reach the
//! runtime). The `REASON` column, why a step was skipped, is there only when
//! one was. Names are padded to the longest, by the width a terminal gives
//! them, so the logs and columns line up; on a terminal each step's prefix
//! has its own colour and statuses are coloured, elsewhere the text is plain.
//!
//! A step that prints nothing for a while is not taken for hung: after each
//! 30 s of silence it gets a line `build | ... still running (1m30s)`, the
//! time since it started (detached steps, which run beside the others by
//! design, get none). After the summary, each step that failed or errored
//! has its last 10 log lines repeated under a heading, as cargo-nextest
//! does, so the cause is on screen without scrolling back through the
//! interleaved logs. Killed steps are left out: a cancel or timeout killed
//! them, not their own output.
//!
//! On a terminal each line is written as it comes. Elsewhere (a pipe, a
//! file) text is held up to [`HOLD`] and written in one go, so a stage of
//! short steps does not cost a write, and a wake-up of the reader, per line.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use runnerkit_core::{
    HookError, LineRef, Lines, Snapshot, Spec, State, Status, StepDecision, StepState,
};
use runnerkit_manifest::{CompileWarning, StageStep};
use runnerkit_runtime::logs::Masker;
use unicode_width::UnicodeWidthStr;

use super::step_rows;
use super::table::{self, Column, Row};

/// How long a step may print nothing before a line says it still runs.
const TICKER: Duration = Duration::from_secs(30);

/// How long text going elsewhere than a terminal may be held
/// ([`HumanReporter::with_hold`]): short enough to read as live.
pub const HOLD: Duration = Duration::from_millis(50);

/// Held text past which it is written at once, however recent.
const HOLD_MAX: usize = 16 * 1024;

/// Where the reporter's text goes. On a terminal each text is written as it
/// comes. Elsewhere (a pipe, a file: a CI system reading the output) text is
/// held for up to [`HumanReporter::with_hold`]'s delay and written in one
/// go: short steps would otherwise cost a write, and a wake-up of the
/// reader, per line. Held text is written by a task the first hold starts
/// (at once where there is no Tokio runtime), when it reaches
/// [`HOLD_MAX`], and at the stage's end and the reporter's drop.
struct Output {
    sink: Box<dyn Write + Send>,
    held: Vec<u8>,
    /// How long text may be held; `None`: never.
    hold: Option<Duration>,
    /// A task is on its way to write what is held.
    write_due: bool,
}

impl Output {
    /// Writes `bytes` to the sink at once. A reader that went away (a
    /// closed pipe) is not an error worth stopping a pipeline for: the text
    /// is dropped.
    fn write_now(sink: &mut dyn Write, bytes: &[u8]) {
        let _ = sink.write_all(bytes).and_then(|()| sink.flush());
    }

    /// Writes whatever is held.
    fn write_held(&mut self) {
        if !self.held.is_empty() {
            Self::write_now(&mut self.sink, &self.held);
            self.held.clear();
        }
    }
}

/// Writes `text` to `out` whole, so lines of concurrent steps never
/// interleave within a line: at once, or held (see [`Output`]).
fn emit_to(out: &Arc<Mutex<Output>>, text: &str) {
    push(&mut lock(out), out, text);
}

/// [`emit_to`] for a caller holding `out`'s lock as `o`.
fn push(o: &mut Output, out: &Arc<Mutex<Output>>, text: &str) {
    let Some(delay) = o.hold else {
        Output::write_now(&mut o.sink, text.as_bytes());
        return;
    };
    o.held.extend_from_slice(text.as_bytes());
    if o.held.len() >= HOLD_MAX {
        o.write_held();
    } else if !o.write_due {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                o.write_due = true;
                let out = Arc::clone(out);
                runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut o = lock(&out);
                    o.write_due = false;
                    o.write_held();
                });
            }
            Err(_) => o.write_held(),
        }
    }
}

/// How many of a step's last log lines a failure repeats.
const TAIL: usize = 10;

/// Colours for step prefixes, by step position.
const PALETTE: [&str; 6] = ["36", "33", "35", "34", "32", "96"];
const RESET: &str = "\x1b[0m";

/// How the reporter styles its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Use ANSI colours (only when the output is a terminal).
    pub color: bool,
}

/// A [`Hook`](runnerkit_core::Hook) that prints a stage for people to read.
pub struct HumanReporter {
    /// Shared with the tickers, which print from their own tasks.
    out: Arc<Mutex<Output>>,
    width: usize,
    style: Style,
    /// For compile warnings only: they come from the compiler, not the
    /// runtime, so nothing has masked them yet. Lines and errors arrive
    /// masked by the runtime.
    masker: Masker,
    /// Compile warnings by step name; `None` for the whole stage.
    warnings: BTreeMap<Option<String>, Vec<String>>,
    /// Every step of the pipeline, for the summary; empty: the Spec's.
    listing: Vec<StageStep>,
    /// The pipeline's name when several run: it heads each step's prefix
    /// (`test/build |`) and the stage's last line.
    stage: Option<String>,
    /// Silence after which a running step gets a "still running" line;
    /// `None`: never.
    ticker: Option<Duration>,
    /// Per step index: its last lines and its ticker while it runs.
    steps: Mutex<HashMap<usize, StepLog>>,
}

/// What the reporter keeps of one step.
#[derive(Default)]
struct StepLog {
    /// Its last [`TAIL`] lines, for a failure's recap: a ring, not the log.
    tail: VecDeque<String>,
    /// While it runs (not detached): the task printing "still running".
    ticker: Option<Ticker>,
}

/// A step's "still running" task and what it watches.
struct Ticker {
    activity: Arc<Mutex<Activity>>,
    task: tokio::task::JoinHandle<()>,
}

/// When a step last showed a sign of life (a log line or a tick), and
/// whether it has ended (its ticker must then stay quiet).
struct Activity {
    last: tokio::time::Instant,
    done: bool,
}

/// `mutex`'s guard, also when a panic poisoned it: the data is text and
/// timestamps, still good to print.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ticker {
    /// Prints `prefix` and "... still running" to `out` after each
    /// `interval` without a sign of life in `activity`, with the time since
    /// `started`.
    fn start(
        out: Arc<Mutex<Output>>,
        prefix: String,
        interval: Duration,
        started: tokio::time::Instant,
    ) -> Self {
        let activity = Arc::new(Mutex::new(Activity {
            last: started,
            done: false,
        }));
        let watched = Arc::clone(&activity);
        let task = tokio::spawn(async move {
            loop {
                // Sleeps until the silence would be a whole interval, never
                // more often: a line in between only moves the next wake-up.
                let due = {
                    let a = lock(&watched);
                    if a.done {
                        return;
                    }
                    a.last + interval
                };
                tokio::time::sleep_until(due).await;
                // `out` before `activity`, as `stop` takes them: a step that
                // ended while this one slept is seen as ended here.
                let mut o = lock(&out);
                let mut a = lock(&watched);
                if a.done {
                    return;
                }
                let now = tokio::time::Instant::now();
                if now < a.last + interval {
                    continue;
                }
                a.last = now;
                let text = format!(
                    "{prefix}... still running ({})\n",
                    elapsed(now.duration_since(started))
                );
                push(&mut o, &out, &text);
            }
        });
        Self { activity, task }
    }

    /// A sign of life: the next line waits a whole interval again.
    fn touch(&self) {
        lock(&self.activity).last = tokio::time::Instant::now();
    }

    /// Ends the ticker: nothing more is printed once this returns, even by
    /// a tick already awake and waiting for `out`.
    fn stop(self, out: &Mutex<Output>) {
        {
            let _out = lock(out);
            lock(&self.activity).done = true;
        }
        self.task.abort();
    }
}

impl Drop for HumanReporter {
    fn drop(&mut self) {
        // A reporter dropped mid-stage leaves no task printing on its own,
        // and no text held.
        for log in lock(&self.steps).values_mut() {
            if let Some(ticker) = log.ticker.take() {
                ticker.task.abort();
            }
        }
        lock(&self.out).write_held();
    }
}

impl std::fmt::Debug for HumanReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HumanReporter")
            .field("width", &self.width)
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

impl HumanReporter {
    /// A reporter for the steps of `spec` writing to `out`. The compile
    /// warnings it shows go through `masker`; log lines and step and stage
    /// errors are printed as the runtime gave them, already masked.
    pub fn new(out: Box<dyn Write + Send>, spec: &Spec, style: Style, masker: Masker) -> Self {
        let width = spec.steps.iter().map(|s| s.name.width()).max().unwrap_or(0);
        Self {
            out: Arc::new(Mutex::new(Output {
                sink: out,
                held: Vec::new(),
                hold: None,
                write_due: false,
            })),
            width,
            style,
            masker,
            warnings: BTreeMap::new(),
            listing: Vec::new(),
            stage: None,
            ticker: Some(TICKER),
            steps: Mutex::new(HashMap::new()),
        }
    }

    /// Says "still running" after each `interval` a running step prints
    /// nothing (default: 30 s); [`Duration::ZERO`] turns it off. For the
    /// tests: people get the default.
    #[cfg(test)]
    fn with_ticker(mut self, interval: Duration) -> Self {
        self.ticker = Some(interval).filter(|i| !i.is_zero());
        self
    }

    /// One of several pipelines running at once: each prefix starts with
    /// the pipeline's `name` (`test/build |`), padded to `width` columns
    /// (the widest `pipeline/step` of the run, so every stage's lines line
    /// up), and the stage's last line names it.
    pub fn with_stage_label(mut self, name: &str, width: usize) -> Self {
        self.width = width.max(self.width + name.width() + 1);
        self.stage = Some(name.to_owned());
        self
    }

    /// Lists every step of the pipeline in the summary (the compiled stage's
    /// [`Compiled::steps`](runnerkit_manifest::Compiled::steps)), not only
    /// the Spec's: those left out show `skipped` with the compiler's reason.
    pub fn with_steps(mut self, listing: Vec<StageStep>) -> Self {
        self.listing = listing;
        self
    }

    /// Shows compile warnings: a step's at the top of its log, the stage's
    /// before anything runs.
    pub fn with_warnings(mut self, warnings: Vec<CompileWarning>) -> Self {
        for w in warnings {
            self.warnings.entry(w.step).or_default().push(w.message);
        }
        self
    }

    /// Holds text for up to `delay` before writing it (see [`Output`]):
    /// for output that is not a terminal.
    pub fn with_hold(self, delay: Duration) -> Self {
        lock(&self.out).hold = Some(delay).filter(|d| !d.is_zero());
        self
    }

    /// Writes `text` whole (see [`emit_to`]).
    fn emit(&self, text: &str) {
        emit_to(&self.out, text);
    }

    /// Stops the ticker of the step `index`, if it has one.
    fn stop_ticker(&self, index: usize) {
        let ticker = lock(&self.steps)
            .get_mut(&index)
            .and_then(|log| log.ticker.take());
        if let Some(ticker) = ticker {
            ticker.stop(&self.out);
        }
    }

    /// The last lines of each step that failed or errored, in step order,
    /// each under a heading; empty when none has lines.
    fn failure_tails(&self, snapshot: &Snapshot) -> String {
        let steps = lock(&self.steps);
        let mut text = String::new();
        for step in &snapshot.steps {
            if !matches!(step.status, Status::Failure | Status::Error) {
                continue;
            }
            let Some(tail) = steps.get(&step.index).map(|log| &log.tail) else {
                continue;
            };
            if tail.is_empty() {
                continue;
            }
            let label = match &self.stage {
                Some(stage) => format!("{stage}/{}", step.name),
                None => step.name.clone(),
            };
            let lines = match tail.len() {
                1 => "last line".to_owned(),
                n => format!("last {n} lines"),
            };
            text.push_str(&format!(
                "\n--- {label} ({}, exit {}): {lines} ---\n",
                self.status(step.status),
                step.exit_code
            ));
            for line in tail {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    fn prefix(&self, step: &StepState) -> String {
        let label = match &self.stage {
            Some(stage) => format!("{stage}/{}", step.name),
            None => step.name.clone(),
        };
        let name = format!("{} |", pad(&label, self.width));
        if self.style.color {
            let colour = PALETTE[step.index % PALETTE.len()];
            format!("\x1b[{colour}m{name}{RESET} ")
        } else {
            format!("{name} ")
        }
    }

    fn status(&self, status: Status) -> String {
        paint(status, self.style)
    }

    fn end_line(&self, step: &StepState) -> String {
        let mut line = format!("{}<-- {}", self.prefix(step), self.status(step.status));
        if step.status != Status::Skipped {
            line.push_str(&format!(" (exit {})", step.exit_code));
        } else if let Some(reason) = &step.reason {
            line.push_str(&format!(" ({reason})"));
        }
        if let Some(d) = step.duration().filter(|_| step.status != Status::Skipped) {
            line.push_str(&format!(" in {}", duration(d)));
        }
        if let Some(error) = &step.error {
            line.push_str(": ");
            line.push_str(error);
        }
        line.push('\n');
        line
    }

    /// The summary table and the stage's last word.
    fn summary(&self, snapshot: &Snapshot) -> String {
        let columns = [
            Column {
                header: "STEP",
                right: false,
            },
            Column {
                header: "STATUS",
                right: false,
            },
            Column {
                header: "EXIT",
                right: true,
            },
            Column {
                header: "DURATION",
                right: false,
            },
        ];
        let rows: Vec<Row> = step_rows(&self.listing, snapshot)
            .into_iter()
            .map(|row| Row {
                cells: vec![
                    row.name.clone(),
                    row.status.as_str().to_owned(),
                    row.exit_code
                        .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    row.duration().map_or_else(|| "-".to_owned(), duration),
                ],
                status: row.status,
                reason: row.reason,
            })
            .collect();
        let mut text = table::render(&columns, &rows, self.style);
        let stage = &snapshot.stage;
        let name = self
            .stage
            .as_ref()
            .map_or_else(String::new, |name| format!("{name}: "));
        text.push_str(&format!("\npipeline {name}{}", self.status(stage.status)));
        if let (Some(start), Some(stop)) = (stage.started, stage.stopped) {
            let took = stop.duration_since(start).unwrap_or_default();
            text.push_str(&format!(" in {}", duration(took)));
        }
        text.push('\n');
        if let Some(error) = &stage.error {
            text.push_str(&format!("error: {error}\n"));
        }
        text
    }
}

/// `status`, coloured by how it went when `style` asks for colour.
pub(super) fn paint(status: Status, style: Style) -> String {
    if !style.color {
        return status.to_string();
    }
    let colour = match status {
        Status::Success => "32",
        Status::Failure | Status::Error | Status::Killed => "31",
        _ => "2",
    };
    format!("\x1b[{colour}m{status}{RESET}")
}

/// `text` and spaces up to `width` columns on a terminal: `format!`'s
/// padding counts chars, which a wide (CJK) or combining one throws off.
pub(super) fn pad(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(text.width());
    format!("{text}{:fill$}", "")
}

/// `30s`, `1m30s`, `1h02m`: a step's running time, in whole seconds.
fn elapsed(d: Duration) -> String {
    if d.as_secs() < 60 {
        format!("{}s", d.as_secs())
    } else {
        duration(d)
    }
}

/// `0.42s`, `12.30s`, `2m05s`, `1h02m`.
pub(super) fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.2}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

impl HumanReporter {
    /// Prints `count` lines of `step` under its prefix and keeps the last
    /// ones for the failure summary.
    fn show<'a>(&self, step: &StepState, count: usize, lines: impl Iterator<Item = LineRef<'a>>) {
        let prefix = self.prefix(step);
        let mut text = String::new();
        {
            let mut steps = lock(&self.steps);
            let log = steps.entry(step.index).or_default();
            let skip = count.saturating_sub(TAIL);
            for (i, line) in lines.enumerate() {
                text.push_str(&prefix);
                text.push_str(line.message);
                text.push('\n');
                if i >= skip {
                    if log.tail.len() == TAIL {
                        log.tail.pop_front();
                    }
                    log.tail.push_back(line.message.to_owned());
                }
            }
            if let Some(ticker) = &log.ticker {
                ticker.touch();
            }
        }
        self.emit(&text);
    }
}

#[async_trait]
impl runnerkit_core::Hook for HumanReporter {
    async fn before(&self, _state: &State) -> Result<(), HookError> {
        for warning in self.warnings.get(&None).into_iter().flatten() {
            self.emit(&format!("warning: {}\n", self.masker.mask_str(warning)));
        }
        Ok(())
    }

    async fn before_each(
        &self,
        _state: &State,
        step: &StepState,
    ) -> Result<StepDecision, HookError> {
        let kind = if step.detached {
            "--> running (detached)"
        } else {
            "--> running"
        };
        let prefix = self.prefix(step);
        let mut text = format!("{prefix}{kind}\n");
        for warning in self
            .warnings
            .get(&Some(step.name.clone()))
            .into_iter()
            .flatten()
        {
            text.push_str(&format!(
                "{prefix}warning: {}\n",
                self.masker.mask_str(warning)
            ));
        }
        self.emit(&text);
        if let Some(interval) = self.ticker.filter(|_| !step.detached) {
            let ticker = Ticker::start(
                Arc::clone(&self.out),
                prefix,
                interval,
                tokio::time::Instant::now(),
            );
            let old = lock(&self.steps)
                .entry(step.index)
                .or_default()
                .ticker
                .replace(ticker);
            // A step runs once; a second start would be the runtime's bug,
            // and must not leave a ticker behind.
            if let Some(old) = old {
                old.stop(&self.out);
            }
        }
        Ok(StepDecision::Run)
    }

    async fn after_each(&self, _state: &State, step: &StepState) -> Result<(), HookError> {
        self.stop_ticker(step.index);
        self.emit(&self.end_line(step));
        Ok(())
    }

    async fn after(&self, state: &State) -> Result<(), HookError> {
        // A step that never got its `after_each` (the stage gave up on it)
        // must not tick under the summary.
        let running: Vec<usize> = lock(&self.steps).keys().copied().collect();
        for index in running {
            self.stop_ticker(index);
        }
        let snapshot = state.snapshot();
        let mut text = self.summary(&snapshot);
        text.push_str(&self.failure_tails(&snapshot));
        self.emit(&text);
        // The stage's last word is not held: whoever reads it may be
        // waiting for it.
        lock(&self.out).write_held();
        Ok(())
    }

    /// A batch is written at once: one lock, one write to the terminal.
    fn got_lines(&self, _state: &State, step: &StepState, lines: Lines<'_>) {
        self.show(step, lines.len(), lines.iter());
    }

    fn got_line(&self, _state: &State, step: &StepState, line: LineRef<'_>) {
        self.show(step, 1, std::iter::once(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::SystemTime;

    use runnerkit_core::{Hook, Snapshot, StateWriter, Step};

    /// A writer the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn spec() -> Spec {
        Spec {
            steps: vec![Step::named("build"), Step::named("test")],
            ..Spec::default()
        }
    }

    fn finished(index: usize, name: &str, status: Status, code: i32, ms: u64) -> StepState {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut s = StepState::pending(index, name);
        s.status = status;
        s.exit_code = code;
        if status != Status::Skipped {
            s.started = Some(start);
            s.stopped = Some(start + Duration::from_millis(ms));
        }
        s
    }

    fn line(message: &str) -> LineRef<'_> {
        LineRef {
            number: 0,
            message,
            timestamp: 0,
        }
    }

    #[tokio::test]
    async fn plain_output_is_prefixed_aligned_and_summarised() {
        let buf = Buffer::default();
        let reporter = HumanReporter::new(
            Box::new(buf.clone()),
            &spec(),
            Style { color: false },
            Masker::new(["s3cr3t"]),
        );
        let build = finished(0, "build", Status::Success, 0, 1200);
        let mut test = finished(1, "test", Status::Error, 255, 10);
        // As the runtime writes it: masked already.
        test.error = Some("local: start step \"test\" (/bin/******)".into());
        let mut snap = Snapshot::new(vec![build.clone(), test.clone()]);
        snap.stage.status = Status::Error;
        snap.stage.started = build.started;
        snap.stage.stopped = Some(build.started.unwrap() + Duration::from_secs(125));
        let state = StateWriter::new(snap).reader();

        reporter.before_each(&state, &build).await.unwrap();
        reporter.got_line(&state, &build, line("+ make"));
        reporter.after_each(&state, &build).await.unwrap();
        reporter.before_each(&state, &test).await.unwrap();
        reporter.after_each(&state, &test).await.unwrap();
        reporter.after(&state).await.unwrap();

        assert_eq!(
            buf.text(),
            "build | --> running\n\
             build | + make\n\
             build | <-- success (exit 0) in 1.20s\n\
             test  | --> running\n\
             test  | <-- error (exit 255) in 0.01s: local: start step \"test\" (/bin/******)\n\
             \n\
             STEP   STATUS   EXIT  DURATION\n\
             build  success     0  1.20s\n\
             test   error     255  0.01s\n\
             \n\
             pipeline error in 2m05s\n"
        );
    }

    #[tokio::test]
    async fn warnings_are_masked_and_errors_printed_as_the_runtime_gave_them() {
        let buf = Buffer::default();
        let reporter = HumanReporter::new(
            Box::new(buf.clone()),
            &spec(),
            Style { color: false },
            Masker::new(["s3cr3t"]),
        )
        .with_warnings(vec![
            CompileWarning {
                step: None,
                message: "stage-wide s3cr3t".into(),
            },
            CompileWarning {
                step: Some("build".into()),
                message: "about s3cr3t".into(),
            },
        ]);
        let mut build = finished(0, "build", Status::Error, 255, 10);
        // A text the runtime gave is printed as it is, not masked again.
        build.error = Some("quotes ****** and s3cr3t".into());
        let state = StateWriter::new(Snapshot::new(vec![build.clone()])).reader();
        reporter.before(&state).await.unwrap();
        reporter.before_each(&state, &build).await.unwrap();
        reporter.after_each(&state, &build).await.unwrap();
        let text = buf.text();
        assert!(
            text.starts_with(
                "warning: stage-wide ******\n\
                 build | --> running\n\
                 build | warning: about ******\n\
                 build | <-- error (exit 255) in 0.01s: quotes ****** and s3cr3t\n"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn skipped_steps_show_no_exit_or_duration() {
        let buf = Buffer::default();
        let reporter = HumanReporter::new(
            Box::new(buf.clone()),
            &spec(),
            Style { color: false },
            Masker::new([]),
        );
        let skipped = finished(1, "test", Status::Skipped, 0, 0);
        let state = StateWriter::new(Snapshot::new(vec![skipped.clone()])).reader();
        reporter.after_each(&state, &skipped).await.unwrap();
        reporter.after(&state).await.unwrap();
        let text = buf.text();
        assert!(text.starts_with("test  | <-- skipped\n"), "{text}");
        assert!(text.contains("test  skipped     -  -\n"), "{text}");
    }

    #[tokio::test]
    async fn skipped_rows_say_why_in_a_last_column_aligned_by_display_width() {
        let buf = Buffer::default();
        let spec = Spec {
            steps: vec![Step::named("ビルド"), Step::named("test")],
            ..Spec::default()
        };
        let listed = |name: &str, spec_index: Option<usize>| StageStep {
            name: name.into(),
            service: false,
            line: 1,
            spec_index,
            not_run: spec_index
                .is_none()
                .then(|| runnerkit_manifest::NotRun::When {
                    key: "branch".into(),
                }),
        };
        let reporter = HumanReporter::new(
            Box::new(buf.clone()),
            &spec,
            Style { color: false },
            Masker::new([]),
        )
        .with_steps(vec![
            listed("ビルド", Some(0)),
            listed("deploy", None),
            listed("test", Some(1)),
        ]);
        let build = finished(0, "ビルド", Status::Failure, 2, 1200);
        let mut test = finished(1, "test", Status::Skipped, 0, 0);
        test.reason = Some("an earlier failure".into());
        let mut snap = Snapshot::new(vec![build.clone(), test.clone()]);
        snap.stage.status = Status::Failure;
        let state = StateWriter::new(snap).reader();
        reporter.got_line(&state, &build, line("x"));
        reporter.got_line(&state, &test, line("y"));
        reporter.after_each(&state, &test).await.unwrap();
        reporter.after(&state).await.unwrap();
        assert_eq!(
            buf.text(),
            "ビルド | x\n\
             test   | y\n\
             test   | <-- skipped (an earlier failure)\n\
             \n\
             STEP    STATUS   EXIT  DURATION  REASON\n\
             ビルド  failure     2  1.20s\n\
             deploy  skipped     -  -         when: branch\n\
             test    skipped     -  -         an earlier failure\n\
             \n\
             pipeline failure\n\
             \n\
             --- ビルド (failure, exit 2): last line ---\n\
             x\n"
        );
    }

    #[tokio::test]
    async fn colours_only_when_asked() {
        let buf = Buffer::default();
        let reporter = HumanReporter::new(
            Box::new(buf.clone()),
            &spec(),
            Style { color: true },
            Masker::new([]),
        );
        let build = finished(0, "build", Status::Success, 0, 5);
        let test = finished(1, "test", Status::Success, 0, 5);
        let state = StateWriter::new(Snapshot::new(vec![build.clone()])).reader();
        reporter.got_line(&state, &build, line("x"));
        reporter.got_line(&state, &test, line("y"));
        let text = buf.text();
        assert_eq!(text, "\x1b[36mbuild |\x1b[0m x\n\x1b[33mtest  |\x1b[0m y\n");
    }

    #[tokio::test]
    async fn a_stage_label_heads_prefixes_and_the_last_line() {
        let buf = Buffer::default();
        // The run's widest label is wider than this stage's own.
        let reporter = HumanReporter::new(
            Box::new(buf.clone()),
            &spec(),
            Style { color: false },
            Masker::new([]),
        )
        .with_stage_label("ci", 12);
        let build = finished(0, "build", Status::Success, 0, 5);
        let mut snap = Snapshot::new(vec![build.clone()]);
        snap.stage.status = Status::Success;
        let state = StateWriter::new(snap).reader();
        reporter.got_line(&state, &build, line("x"));
        reporter.after(&state).await.unwrap();
        let text = buf.text();
        assert!(text.starts_with("ci/build     | x\n"), "{text}");
        assert!(text.ends_with("\npipeline ci: success\n"), "{text}");
    }

    fn plain(buf: &Buffer) -> HumanReporter {
        HumanReporter::new(
            Box::new(buf.clone()),
            &spec(),
            Style { color: false },
            Masker::new([]),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_step_is_said_to_be_still_running_until_it_ends() {
        let buf = Buffer::default();
        let reporter = plain(&buf).with_ticker(Duration::from_secs(30));
        let build = finished(0, "build", Status::Success, 0, 1);
        let state = StateWriter::new(Snapshot::new(vec![build.clone()])).reader();
        reporter.before_each(&state, &build).await.unwrap();
        tokio::time::sleep(Duration::from_secs(35)).await;
        // A line restarts the silence: no tick at 60 s, one at 65 s.
        reporter.got_line(&state, &build, line("working"));
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!buf.text().contains("(1m"), "{}", buf.text());
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Then one each interval of silence: 1m35s, 2m05s.
        tokio::time::sleep(Duration::from_secs(60)).await;
        reporter.after_each(&state, &build).await.unwrap();
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(
            buf.text(),
            "build | --> running\n\
             build | ... still running (30s)\n\
             build | working\n\
             build | ... still running (1m05s)\n\
             build | ... still running (1m35s)\n\
             build | ... still running (2m05s)\n\
             build | <-- success (exit 0) in 0.00s\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn detached_steps_and_a_turned_off_ticker_say_nothing() {
        let buf = Buffer::default();
        let reporter = plain(&buf).with_ticker(Duration::from_secs(30));
        let mut service = finished(0, "build", Status::Success, 0, 1);
        service.detached = true;
        let state = StateWriter::new(Snapshot::new(vec![service.clone()])).reader();
        reporter.before_each(&state, &service).await.unwrap();
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(buf.text(), "build | --> running (detached)\n");

        let buf = Buffer::default();
        let reporter = plain(&buf).with_ticker(Duration::ZERO);
        let build = finished(0, "build", Status::Success, 0, 1);
        reporter.before_each(&state, &build).await.unwrap();
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(buf.text(), "build | --> running\n");
    }

    #[tokio::test(start_paused = true)]
    async fn the_stage_ending_stops_a_ticker_whose_step_never_ended() {
        let buf = Buffer::default();
        let reporter = plain(&buf).with_ticker(Duration::from_secs(30));
        let build = finished(0, "build", Status::Killed, 137, 1);
        let state = StateWriter::new(Snapshot::new(vec![build.clone()])).reader();
        reporter.before_each(&state, &build).await.unwrap();
        reporter.after(&state).await.unwrap();
        let printed = buf.text();
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(buf.text(), printed);
        assert!(!printed.contains("still running"), "{printed}");
    }

    #[tokio::test]
    async fn failed_steps_repeat_their_last_ten_lines_after_the_summary() {
        let buf = Buffer::default();
        let spec = Spec {
            steps: ["build", "test", "lint", "deploy"]
                .into_iter()
                .map(Step::named)
                .collect(),
            ..Spec::default()
        };
        let reporter = HumanReporter::new(
            Box::new(buf.clone()),
            &spec,
            Style { color: false },
            Masker::new([]),
        )
        .with_stage_label("ci", 0);
        let build = finished(0, "build", Status::Success, 0, 10);
        let test = finished(1, "test", Status::Failure, 2, 10);
        let lint = finished(2, "lint", Status::Error, 255, 10);
        let deploy = finished(3, "deploy", Status::Killed, 137, 10);
        let mut snap = Snapshot::new(vec![
            build.clone(),
            test.clone(),
            lint.clone(),
            deploy.clone(),
        ]);
        snap.stage.status = Status::Failure;
        let state = StateWriter::new(snap).reader();
        for step in [&build, &deploy] {
            reporter.got_line(&state, step, line("not repeated"));
        }
        for n in 1..=12 {
            reporter.got_line(&state, &test, line(&format!("test line {n}")));
        }
        reporter.got_line(&state, &lint, line("lint: bad"));
        let before = buf.text().len();
        reporter.after(&state).await.unwrap();
        let text = buf.text()[before..].to_owned();
        let tails = text
            .split_once("pipeline ci: failure\n")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("no last line in {text}"));
        let tested: String = (3..=12).map(|n| format!("test line {n}\n")).collect();
        assert_eq!(
            tails,
            format!(
                "\n--- ci/test (failure, exit 2): last 10 lines ---\n{tested}\
                 \n--- ci/lint (error, exit 255): last line ---\nlint: bad\n"
            )
        );
    }

    #[tokio::test]
    async fn no_recap_without_a_failing_step_that_printed() {
        let buf = Buffer::default();
        let reporter = plain(&buf);
        let build = finished(0, "build", Status::Success, 0, 10);
        let test = finished(1, "test", Status::Failure, 1, 10);
        let mut snap = Snapshot::new(vec![build.clone(), test.clone()]);
        snap.stage.status = Status::Failure;
        let state = StateWriter::new(snap).reader();
        reporter.got_line(&state, &build, line("fine"));
        reporter.after(&state).await.unwrap();
        let text = buf.text();
        assert!(text.ends_with("pipeline failure\n"), "{text}");
        assert!(!text.contains("---"), "{text}");
    }

    #[test]
    fn running_times_are_whole_seconds() {
        assert_eq!(elapsed(Duration::from_millis(30_400)), "30s");
        assert_eq!(elapsed(Duration::from_secs(90)), "1m30s");
        assert_eq!(elapsed(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(420)), "0.42s");
        assert_eq!(duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h02m");
    }

    #[tokio::test(start_paused = true)]
    async fn held_text_is_written_within_the_delay_in_order_and_at_the_end() {
        let buf = Buffer::default();
        let reporter = plain(&buf)
            .with_ticker(Duration::ZERO)
            .with_hold(Duration::from_millis(50));
        let build = finished(0, "build", Status::Success, 0, 1);
        let state = StateWriter::new(Snapshot::new(vec![build.clone()])).reader();
        reporter.before_each(&state, &build).await.unwrap();
        reporter.got_line(&state, &build, line("one"));
        assert_eq!(buf.text(), "", "held");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(buf.text(), "build | --> running\nbuild | one\n");
        // A new hold starts with the next text.
        reporter.got_line(&state, &build, line("two"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!buf.text().contains("two"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(buf.text().ends_with("build | two\n"), "{}", buf.text());
        // The end of the stage is written at once, summary included.
        reporter.after_each(&state, &build).await.unwrap();
        reporter.after(&state).await.unwrap();
        let text = buf.text();
        assert!(text.contains("build | <-- success"), "{text}");
        assert!(text.ends_with("\npipeline pending\n"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn held_text_is_written_when_the_reporter_is_dropped_or_grows_large() {
        let buf = Buffer::default();
        let reporter = plain(&buf)
            .with_ticker(Duration::ZERO)
            .with_hold(Duration::from_secs(3600));
        let build = finished(0, "build", Status::Success, 0, 1);
        let state = StateWriter::new(Snapshot::new(vec![build.clone()])).reader();
        let long = "x".repeat(1000);
        for _ in 0..20 {
            reporter.got_line(&state, &build, line(&long));
        }
        // Past HOLD_MAX the text goes at once, in whole lines.
        let written = buf.text();
        assert!(written.len() >= HOLD_MAX, "{}", written.len());
        assert!(written.ends_with('\n'));
        reporter.got_line(&state, &build, line("last"));
        drop(reporter);
        assert!(buf.text().ends_with("build | last\n"));
        assert_eq!(buf.text().matches(&long).count(), 20);
    }
}

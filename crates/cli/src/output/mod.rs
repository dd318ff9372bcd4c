//! Every byte `runnerkit` shows: live logs and the summary for people
//! ([`human`]), the `--json` result ([`json`]), and the exit status
//! ([`exit`]).
//!
//! Where each goes is decided once, here: without `--json` the logs and the
//! summary go to stdout; with it they go to stderr and stdout holds only the
//! result line. Whether they are coloured is decided here too
//! ([`use_color`]), from `--color` and the environment.

pub mod build;
pub mod exit;
pub mod human;
pub mod json;
mod table;

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use runnerkit_core::{Snapshot, Status, StepState};
use runnerkit_manifest::StageStep;

pub use human::{HumanReporter, Style};

/// One step of a run as the summary and `--json` show it: every step of the
/// pipeline, whether or not it was in the Spec the runtime ran.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    /// The step's name.
    pub name: String,
    /// Its final status; `skipped` for a step that was never in the Spec.
    pub status: Status,
    /// Its exit code, when it ran.
    pub exit_code: Option<i32>,
    /// When it started, when it ran.
    pub started: Option<SystemTime>,
    /// When it finished, when it ran.
    pub finished: Option<SystemTime>,
    /// Why it did not run, when it did not.
    pub reason: Option<String>,
}

impl StepRow {
    fn from_state(st: &StepState) -> Self {
        // A skipped step did not run, even where the runtime stamped it
        // (Drone's servers want times on every step): no exit, no times.
        let ran = !matches!(st.status, Status::Skipped | Status::Pending);
        Self {
            name: st.name.clone(),
            status: st.status,
            exit_code: ran.then_some(st.exit_code),
            started: st.started.filter(|_| ran),
            finished: st.stopped.filter(|_| ran),
            reason: st.reason.clone().filter(|_| !ran),
        }
    }

    /// How long it ran, when it ran and has finished.
    pub fn duration(&self) -> Option<std::time::Duration> {
        let (start, stop) = (self.started?, self.finished?);
        Some(stop.duration_since(start).unwrap_or_default())
    }
}

/// Every step of the pipeline in pipeline order: `listing` (the compiled
/// stage's [`Compiled::steps`](runnerkit_manifest::Compiled::steps)) with
/// the runtime's state of those it ran, and `skipped` with the compiler's
/// reason for those it left out of the Spec. The reasons of steps the
/// runtime skipped are its own, from the state: nothing is guessed here.
/// With an empty listing (a Spec from elsewhere), the snapshot's steps.
pub fn step_rows(listing: &[StageStep], snapshot: &Snapshot) -> Vec<StepRow> {
    let mut shown = vec![false; snapshot.steps.len()];
    let mut rows = Vec::with_capacity(listing.len().max(snapshot.steps.len()));
    for step in listing {
        match step
            .spec_index
            .and_then(|i| snapshot.steps.get(i).map(|st| (i, st)))
        {
            Some((i, st)) => {
                shown[i] = true;
                rows.push(StepRow::from_state(st));
            }
            None => rows.push(StepRow {
                name: step.name.clone(),
                status: Status::Skipped,
                exit_code: None,
                started: None,
                finished: None,
                reason: step.not_run.as_ref().map(ToString::to_string),
            }),
        }
    }
    // A listing that does not cover the Spec (not the one it was compiled
    // with) must not hide a step that ran.
    for (st, _) in snapshot
        .steps
        .iter()
        .zip(&shown)
        .filter(|(_, shown)| !**shown)
    {
        rows.push(StepRow::from_state(st));
    }
    rows
}

/// `--color`: whether the human-readable output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal, unless `NO_COLOR` says no;
    /// `CLICOLOR_FORCE` colours a pipe too.
    #[default]
    Auto,
    /// Always colour, whatever the output and the environment.
    Always,
    /// Never colour.
    Never,
}

/// Whether the human-readable output (stdout; stderr with `--json`) is a
/// terminal.
pub fn human_on_terminal(json: bool) -> bool {
    if json {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    }
}

/// Where the human-readable output goes and how it looks, with colours as
/// `choice` and the process's environment decide ([`use_color`]).
pub fn human_destination(json: bool, choice: ColorChoice) -> (Box<dyn Write + Send>, Style) {
    let no_color = std::env::var_os("NO_COLOR");
    let force = std::env::var_os("CLICOLOR_FORCE");
    let color = use_color(
        choice,
        human_on_terminal(json),
        no_color.as_deref(),
        force.as_deref(),
    );
    if json {
        (Box::new(std::io::stderr()), Style { color })
    } else {
        (Box::new(std::io::stdout()), Style { color })
    }
}

/// Whether to colour output going to a terminal or not (`is_terminal`),
/// given `--color` and the values of `NO_COLOR` and `CLICOLOR_FORCE`
/// (`None` when unset).
///
/// `always` and `never` are what the user asked for on this command line,
/// so they win over the environment. In `auto`, a non-empty `NO_COLOR`
/// (no-color.org) turns colour off, even where `CLICOLOR_FORCE` would force
/// it: asking for no colour is the safer of the two to honour. Otherwise
/// `CLICOLOR_FORCE` set to anything but empty or `0` colours a pipe too
/// (bixense.com/clicolors), as CI log viewers that render ANSI want.
pub fn use_color(
    choice: ColorChoice,
    is_terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    clicolor_force: Option<&std::ffi::OsStr>,
) -> bool {
    let set = |value: Option<&std::ffi::OsStr>| value.is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set(no_color) => false,
        ColorChoice::Auto if set(clicolor_force) && clicolor_force != Some("0".as_ref()) => true,
        ColorChoice::Auto => is_terminal,
    }
}

/// An error and its causes on one line, `: `-separated, each cause once: a
/// cause whose text its parent's message already includes is not repeated.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnerkit_manifest::NotRun;

    #[test]
    fn rows_follow_the_pipeline_and_fill_in_what_the_spec_left_out() {
        let listed = |name: &str, spec_index: Option<usize>| StageStep {
            name: name.into(),
            service: false,
            line: 1,
            spec_index,
            not_run: spec_index.is_none().then(|| NotRun::When {
                key: "branch".into(),
            }),
        };
        let mut build = StepState::pending(0, "build");
        build.status = Status::Success;
        build.started = Some(SystemTime::UNIX_EPOCH);
        build.stopped = Some(SystemTime::UNIX_EPOCH);
        let mut next = StepState::pending(1, "next");
        next.status = Status::Skipped;
        // Stamped by the runtime, as Drone's servers want: not shown.
        next.started = Some(SystemTime::UNIX_EPOCH);
        next.stopped = Some(SystemTime::UNIX_EPOCH);
        next.reason = Some("exit 78".into());
        let snap = Snapshot::new(vec![build, next]);
        let rows = step_rows(
            &[
                listed("build", Some(0)),
                listed("deploy", None),
                listed("next", Some(1)),
            ],
            &snap,
        );
        let shown: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.status, r.exit_code, r.reason.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("build", Status::Success, Some(0), None),
                ("deploy", Status::Skipped, None, Some("when: branch")),
                ("next", Status::Skipped, None, Some("exit 78")),
            ]
        );
        assert!(rows[0].started.is_some() && rows[2].started.is_none());
        // Without a listing, the Spec's steps.
        assert_eq!(step_rows(&[], &snap).len(), 2);
    }

    #[test]
    fn colour_follows_the_flag_then_no_color_then_clicolor_force_then_the_terminal() {
        use ColorChoice::{Always, Auto, Never};
        let v = |s: &'static str| Some(std::ffi::OsStr::new(s));
        // (choice, is_terminal, NO_COLOR, CLICOLOR_FORCE) -> colour
        let cases = [
            (Auto, true, None, None, true),
            (Auto, false, None, None, false),
            // An empty NO_COLOR is as good as unset.
            (Auto, true, v(""), None, true),
            (Auto, true, v("1"), None, false),
            (Auto, false, None, v("1"), true),
            (Auto, false, None, v("yes"), true),
            (Auto, false, None, v("0"), false),
            (Auto, false, None, v(""), false),
            // CLICOLOR_FORCE=0 does not turn a terminal's colour off.
            (Auto, true, None, v("0"), true),
            (Auto, false, v("1"), v("1"), false),
            (Auto, true, v("1"), v("1"), false),
            (Always, false, None, None, true),
            (Always, false, v("1"), None, true),
            (Always, true, v("1"), v("0"), true),
            (Never, true, None, None, false),
            (Never, true, None, v("1"), false),
            (Never, false, v(""), v("1"), false),
        ];
        for (choice, terminal, no_color, force, want) in cases {
            assert_eq!(
                use_color(choice, terminal, no_color, force),
                want,
                "{choice:?} terminal={terminal} NO_COLOR={no_color:?} CLICOLOR_FORCE={force:?}"
            );
        }
    }

    #[test]
    fn causes_already_told_are_not_repeated() {
        let inner = anyhow::anyhow!("bad indent at line 3");
        let e = inner
            .context("document 1: bad indent at line 3")
            .context("ci.yml: invalid pipeline file");
        assert_eq!(
            error_chain(&e),
            "ci.yml: invalid pipeline file: document 1: bad indent at line 3"
        );
    }
}

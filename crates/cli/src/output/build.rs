//! Output for people about a build of several pipelines: a line for each
//! pipeline that does not run, and the build's summary after the stages'
//! own.
//!
//! ```text
//! pipeline deploy: not run (trigger: branch)
//! ... each stage's logs and summary ...
//! pipeline notify: skipped (an earlier stage failed)
//!
//! PIPELINE  STATUS   DURATION  REASON
//! build     failure  1.20s
//! deploy    skipped  -         trigger: branch
//! notify    skipped  -         an earlier stage failed
//!
//! build failure in 1.52s
//! ```

use std::time::Duration;

use runnerkit_core::Status;

use super::Style;
use super::human::{duration, paint};
use super::table::{self, Column, Row};

/// A pipeline of the build as the summary shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRow {
    /// The pipeline's name.
    pub name: String,
    /// How its stage ended; `skipped` when it got none or did not run.
    pub status: Status,
    /// How long it ran, when it ran.
    pub took: Option<Duration>,
    /// Why it did not run, when it did not.
    pub reason: Option<String>,
}

/// The line saying a pipeline does not run, and why.
pub fn not_run(name: &str, reason: &str, started: bool) -> String {
    let what = if started { "skipped" } else { "not run" };
    format!("pipeline {name}: {what} ({reason})\n")
}

/// The table of the build's pipelines and the build's last line.
pub fn summary(rows: &[StageRow], status: Status, took: Option<Duration>, style: Style) -> String {
    let columns = [
        Column {
            header: "PIPELINE",
            right: false,
        },
        Column {
            header: "STATUS",
            right: false,
        },
        Column {
            header: "DURATION",
            right: false,
        },
    ];
    let cells: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            cells: vec![
                r.name.clone(),
                r.status.as_str().to_owned(),
                r.took.map_or_else(|| "-".to_owned(), duration),
            ],
            status: r.status,
            reason: r.reason.clone(),
        })
        .collect();
    let mut text = table::render(&columns, &cells, style);
    text.push_str(&format!("\nbuild {}", paint(status, style)));
    if let Some(took) = took {
        text.push_str(&format!(" in {}", duration(took)));
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_summary_lines_up_and_says_why() {
        let rows = [
            StageRow {
                name: "build".into(),
                status: Status::Failure,
                took: Some(Duration::from_millis(1200)),
                reason: None,
            },
            StageRow {
                name: "デプロイ".into(),
                status: Status::Skipped,
                took: None,
                reason: Some("trigger: branch".into()),
            },
        ];
        let text = summary(
            &rows,
            Status::Failure,
            Some(Duration::from_millis(1520)),
            Style { color: false },
        );
        assert_eq!(
            text,
            "\nPIPELINE  STATUS   DURATION  REASON\n\
             build     failure  1.20s\n\
             デプロイ  skipped  -         trigger: branch\n\
             \n\
             build failure in 1.52s\n"
        );
        assert_eq!(
            not_run("deploy", "trigger: branch", false),
            "pipeline deploy: not run (trigger: branch)\n"
        );
    }
}

//! `/metrics` in Prometheus' text format (version 0.0.4).
//!
//! | metric | type | what |
//! | --- | --- | --- |
//! | `runnerkit_runner_info{name,type,version}` | gauge | always 1: which runner this is |
//! | `runnerkit_capacity` | gauge | stages it runs at once, at most |
//! | `runnerkit_stages_running` | gauge | stages running now |
//! | `runnerkit_stages_total{status}` | counter | stages ended: `success`, `failure`, `error`, `killed` |
//! | `runnerkit_stages_taken_total` | counter | stages another runner accepted first (or the server had already ended) |
//! | `runnerkit_poll_errors_total` | counter | failed requests for work |
//! | `runnerkit_steps_total{status}` | counter | steps ended, by final status |
//! | `runnerkit_step_duration_seconds` | histogram | how long the steps that ran took |

use std::fmt::Write;
use std::sync::atomic::Ordering;

use runnerkit_runner::PollerStats;

use super::board::{Board, DURATION_BUCKETS};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What identifies the runner in `runnerkit_runner_info`.
#[derive(Debug, Clone)]
pub struct RunnerInfo {
    /// `DRONE_RUNNER_NAME`.
    pub name: String,
    /// The pipeline type it runs.
    pub kind_type: String,
    /// Stages at once.
    pub capacity: usize,
}

/// Every metric, rendered.
pub fn render(info: &RunnerInfo, stats: &PollerStats, board: &Board) -> String {
    let mut out = String::new();
    let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    metric(
        &mut out,
        "runnerkit_runner_info",
        "gauge",
        "Which runner this is.",
    );
    let _ = writeln!(
        out,
        "runnerkit_runner_info{{name=\"{}\",type=\"{}\",version=\"{}\"}} 1",
        escape(&info.name),
        escape(&info.kind_type),
        env!("CARGO_PKG_VERSION")
    );
    metric(
        &mut out,
        "runnerkit_capacity",
        "gauge",
        "Stages run at once, at most.",
    );
    let _ = writeln!(out, "runnerkit_capacity {}", info.capacity);
    metric(
        &mut out,
        "runnerkit_stages_running",
        "gauge",
        "Stages running now.",
    );
    let _ = writeln!(out, "runnerkit_stages_running {}", get(&stats.running));
    metric(
        &mut out,
        "runnerkit_stages_total",
        "counter",
        "Stages ended, by final status.",
    );
    for (status, counter) in [
        ("success", &stats.succeeded),
        ("failure", &stats.failed),
        ("error", &stats.errored),
        ("killed", &stats.killed),
    ] {
        let _ = writeln!(
            out,
            "runnerkit_stages_total{{status=\"{status}\"}} {}",
            get(counter)
        );
    }
    metric(
        &mut out,
        "runnerkit_stages_taken_total",
        "counter",
        "Stages another runner accepted first, or the server had already ended.",
    );
    let _ = writeln!(out, "runnerkit_stages_taken_total {}", get(&stats.taken));
    metric(
        &mut out,
        "runnerkit_poll_errors_total",
        "counter",
        "Failed requests for work.",
    );
    let _ = writeln!(
        out,
        "runnerkit_poll_errors_total {}",
        get(&stats.poll_errors)
    );
    metric(
        &mut out,
        "runnerkit_steps_total",
        "counter",
        "Steps ended, by final status.",
    );
    for (status, n) in board.steps_done() {
        let _ = writeln!(out, "runnerkit_steps_total{{status=\"{status}\"}} {n}");
    }
    metric(
        &mut out,
        "runnerkit_step_duration_seconds",
        "histogram",
        "How long the steps that ran took.",
    );
    let histogram = board.step_durations();
    for (bound, n) in DURATION_BUCKETS.iter().zip(histogram.buckets) {
        let _ = writeln!(
            out,
            "runnerkit_step_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "runnerkit_step_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        histogram.count
    );
    let _ = writeln!(out, "runnerkit_step_duration_seconds_sum {}", histogram.sum);
    let _ = writeln!(
        out,
        "runnerkit_step_duration_seconds_count {}",
        histogram.count
    );
    out
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_labels_render_as_prometheus_reads_them() {
        let stats = PollerStats::default();
        stats.running.store(2, Ordering::Relaxed);
        stats.failed.store(3, Ordering::Relaxed);
        stats.poll_errors.store(1, Ordering::Relaxed);
        let info = RunnerInfo {
            name: "eu \"1\"".into(),
            kind_type: "exec".into(),
            capacity: 4,
        };
        let text = render(&info, &stats, &Board::default());
        let info_line = format!(
            "runnerkit_runner_info{{name=\"eu \\\"1\\\"\",type=\"exec\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        for line in [
            info_line.as_str(),
            "runnerkit_capacity 4",
            "runnerkit_stages_running 2",
            "runnerkit_stages_total{status=\"failure\"} 3",
            "runnerkit_stages_total{status=\"success\"} 0",
            "runnerkit_poll_errors_total 1",
            "# TYPE runnerkit_step_duration_seconds histogram",
            "runnerkit_step_duration_seconds_bucket{le=\"+Inf\"} 0",
            "runnerkit_step_duration_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        assert!(text.ends_with('\n'));
    }
}

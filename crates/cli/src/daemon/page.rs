//! `/`: a small server-rendered page of the stages running and recently
//! done. No script, no external assets; it reloads itself every 10 s.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::board::{StageView, status_name};
use super::metrics::RunnerInfo;

/// The page for `running` and `done` stages (each the order to show).
pub fn render(info: &RunnerInfo, running: &[StageView], done: &[StageView]) -> String {
    let mut out = String::new();
    let name = escape(&info.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"10\">\
         <title>runnerkit {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}}\
         .success{{color:#17803d}}.failure,.error,.killed{{color:#c0262d}}.running{{color:#1b5eb8}}\
         .pending,.skipped{{color:#777}}</style></head><body>\n\
         <h1>runnerkit {name}</h1>\n<p>type {kind}, capacity {capacity}</p>\n",
        kind = escape(&info.kind_type),
        capacity = info.capacity,
    );
    table(&mut out, "Running", running, "No stage is running.");
    table(&mut out, "Recently done", done, "No stage has run yet.");
    out.push_str("</body></html>\n");
    out
}

fn table(out: &mut String, title: &str, stages: &[StageView], empty: &str) {
    let _ = writeln!(out, "<h2>{title}</h2>");
    if stages.is_empty() {
        let _ = writeln!(out, "<p>{empty}</p>");
        return;
    }
    out.push_str(
        "<table><tr><th>stage</th><th>repository</th><th>build</th><th>pipeline</th>\
         <th>status</th><th>started</th><th>duration</th><th>steps</th></tr>\n",
    );
    for stage in stages {
        let status = status_name(stage.status);
        let steps = stage
            .steps
            .iter()
            .map(|(name, status)| {
                let status = status_name(*status);
                format!("<span class=\"{status}\">{} {status}</span>", escape(name))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let error = if stage.error.is_empty() {
            String::new()
        } else {
            format!("<br><small>{}</small>", escape(&stage.error))
        };
        let _ = writeln!(
            out,
            "<tr><td>{id}</td><td>{repo}</td><td>{build} {trigger}</td><td>{name}</td>\
             <td class=\"{status}\">{status}{error}</td><td>{started}</td><td>{duration}</td><td>{steps}</td></tr>",
            id = stage.id,
            repo = escape(&stage.repo),
            build = if stage.build > 0 {
                format!("#{}", stage.build)
            } else {
                String::new()
            },
            trigger = escape(&stage.trigger),
            name = escape(&stage.name),
            started = stage.started.map(utc).unwrap_or_default(),
            duration = stage.elapsed().map(duration).unwrap_or_default(),
        );
    }
    out.push_str("</table>\n");
}

/// Text as HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1m05s`, `12.3s`.
fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// `HH:MM:SS UTC`, enough to tell stages of one day apart.
fn utc(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

#[cfg(test)]
mod tests {
    use runnerkit_core::Status;

    use super::*;

    #[test]
    fn names_are_escaped_and_statuses_shown() {
        let info = RunnerInfo {
            name: "eu-1".into(),
            kind_type: "exec".into(),
            capacity: 2,
        };
        let mut stage = StageView::new(3);
        stage.name = "<script>x</script>".into();
        stage.status = Status::Failure;
        stage.steps = vec![("build".into(), Status::Failure)];
        let html = render(&info, &[], &[stage]);
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(html.contains("<span class=\"failure\">build failure</span>"));
        assert!(html.contains("No stage is running."));
        assert_eq!(duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(86_400 + 3723)),
            "01:02:03 UTC"
        );
    }
}

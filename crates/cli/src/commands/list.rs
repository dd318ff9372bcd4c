//! `runnerkit exec --list`: the build `exec` would run, shown and not run.
//!
//! ```text
//! build (stage 1, type exec)
//!   compile
//!   test     after compile
//!   deploy   skipped: when: branch
//!   notify   on failure; after test
//! docs (stage 2, type exec; after build)
//!   render
//! release: not run (trigger: event)
//! ```
//!
//! With `--json`, one object on one line of stdout:
//!
//! ```text
//! {"pipelines": [{"name": "...", "type": "...", "stage": N|null,
//!                 "depends_on": ["..."], "on_success": bool, "on_failure": bool,
//!                 "reason": "..."?,
//!                 "steps": [{"name": "...", "service": bool, "runs": bool,
//!                            "depends_on": ["..."], "when": "on-success"|"on-failure"|"always",
//!                            "reason": "..."?}]}]}
//! ```
//!
//! `steps` is empty for a pipeline that does not run; a step's
//! `depends_on` is empty in a pipeline whose steps run one after another.

use std::io::Write;

use runnerkit_core::{RunPolicy, Spec};
use runnerkit_manifest::stages::{NotPlanned, PlannedPipeline, StagePlan};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use crate::output::exit::Outcome;
use crate::pipeline::Prepared;

/// A pipeline of the listing.
#[derive(Debug, Serialize)]
struct PipelineEntry {
    name: String,
    #[serde(rename = "type")]
    kind_type: String,
    stage: Option<u32>,
    depends_on: Vec<String>,
    on_success: bool,
    on_failure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    steps: Vec<StepEntry>,
}

/// A step of a listed pipeline.
#[derive(Debug, Serialize)]
struct StepEntry {
    name: String,
    service: bool,
    runs: bool,
    depends_on: Vec<String>,
    when: RunPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct Listing {
    pipelines: Vec<PipelineEntry>,
}

/// Prints the build of `plan` (its stages compiled in `prepared`, by plan
/// index) for people, or as JSON. Pipelines left out by `--pipeline` are
/// not part of the build and not listed.
pub fn show(
    plan: &StagePlan,
    prepared: &[(usize, Prepared)],
    json: bool,
) -> anyhow::Result<Outcome> {
    let listing = Listing {
        pipelines: plan
            .pipelines
            .iter()
            .enumerate()
            .filter(|(_, p)| p.not_run != Some(NotPlanned::NotSelected))
            .map(|(i, p)| {
                let stage = prepared.iter().find(|(j, _)| *j == i).map(|(_, s)| s);
                entry(plan, p, stage)
            })
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &listing)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&listing).as_bytes())?;
    }
    out.flush()?;
    Ok(Outcome::Clean)
}

fn entry(plan: &StagePlan, p: &PlannedPipeline, stage: Option<&Prepared>) -> PipelineEntry {
    PipelineEntry {
        name: p.name.clone(),
        kind_type: p.kind_type.clone(),
        stage: p.number,
        depends_on: p
            .depends_on
            .iter()
            .map(|&d| plan.pipelines[d].name.clone())
            .collect(),
        on_success: p.on_success,
        on_failure: p.on_failure,
        reason: p.not_run.as_ref().map(ToString::to_string),
        steps: stage.map(steps).unwrap_or_default(),
    }
}

fn steps(stage: &Prepared) -> Vec<StepEntry> {
    let spec: &Spec = &stage.compiled.spec;
    let serial = spec.is_serial();
    stage
        .compiled
        .steps
        .iter()
        .map(|listed| {
            let step = listed.spec_index.and_then(|i| spec.steps.get(i));
            StepEntry {
                name: listed.name.clone(),
                service: listed.service,
                runs: step.is_some(),
                depends_on: match step {
                    Some(step) if !serial => step.depends_on.to_vec(),
                    _ => Vec::new(),
                },
                when: step.map(|s| s.run_policy).unwrap_or_default(),
                reason: listed.not_run.as_ref().map(ToString::to_string),
            }
        })
        .collect()
}

fn render(listing: &Listing) -> String {
    let mut text = String::new();
    for p in &listing.pipelines {
        if let Some(reason) = &p.reason {
            text.push_str(&format!("{}: not run ({reason})\n", p.name));
            continue;
        }
        let mut head = format!("{} (", p.name);
        if let Some(n) = p.stage {
            head.push_str(&format!("stage {n}, "));
        }
        head.push_str(&format!("type {}", p.kind_type));
        if !p.depends_on.is_empty() {
            head.push_str(&format!("; after {}", p.depends_on.join(", ")));
            match (p.on_success, p.on_failure) {
                (true, true) => head.push_str("; runs whatever they did"),
                (false, true) => head.push_str("; runs only if a stage failed"),
                (false, false) => head.push_str("; never runs (trigger: status)"),
                (true, false) => {}
            }
        }
        head.push_str(")\n");
        text.push_str(&head);
        let width = p.steps.iter().map(|s| s.name.width()).max().unwrap_or(0);
        for s in &p.steps {
            let mut notes = Vec::new();
            if let Some(reason) = &s.reason {
                notes.push(format!("skipped: {reason}"));
            } else {
                if s.service {
                    notes.push("service".to_owned());
                }
                match s.when {
                    RunPolicy::OnFailure => notes.push("on failure".to_owned()),
                    RunPolicy::Always => notes.push("always".to_owned()),
                    RunPolicy::OnSuccess => {}
                }
                if !s.depends_on.is_empty() {
                    notes.push(format!("after {}", s.depends_on.join(", ")));
                }
            }
            let fill = width.saturating_sub(s.name.width());
            let line = format!("  {}{:fill$}  {}", s.name, "", notes.join("; "));
            text.push_str(line.trim_end());
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_reads_as_the_build_would_run() {
        let step = |name: &str, runs: bool, deps: &[&str], when, reason: Option<&str>| StepEntry {
            name: name.into(),
            service: false,
            runs,
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            when,
            reason: reason.map(str::to_owned),
        };
        let listing = Listing {
            pipelines: vec![
                PipelineEntry {
                    name: "build".into(),
                    kind_type: "exec".into(),
                    stage: Some(1),
                    depends_on: vec![],
                    on_success: true,
                    on_failure: false,
                    reason: None,
                    steps: vec![
                        step("compile", true, &[], RunPolicy::OnSuccess, None),
                        step("test", true, &["compile"], RunPolicy::OnSuccess, None),
                        step(
                            "deploy",
                            false,
                            &[],
                            RunPolicy::OnSuccess,
                            Some("when: branch"),
                        ),
                        step("notify", true, &["test"], RunPolicy::OnFailure, None),
                    ],
                },
                PipelineEntry {
                    name: "docs".into(),
                    kind_type: "exec".into(),
                    stage: Some(2),
                    depends_on: vec!["build".into()],
                    on_success: false,
                    on_failure: true,
                    reason: None,
                    steps: vec![],
                },
                PipelineEntry {
                    name: "release".into(),
                    kind_type: "docker".into(),
                    stage: None,
                    depends_on: vec![],
                    on_success: true,
                    on_failure: false,
                    reason: Some("trigger: event".into()),
                    steps: vec![],
                },
            ],
        };
        assert_eq!(
            render(&listing),
            "build (stage 1, type exec)\n  \
             compile\n  \
             test     after compile\n  \
             deploy   skipped: when: branch\n  \
             notify   on failure; after test\n\
             docs (stage 2, type exec; after build; runs only if a stage failed)\n\
             release: not run (trigger: event)\n"
        );
    }
}

//! The server's half of a build: which pipelines of a file get a stage
//! (`trigger`), in what order they run (`depends_on`), and whether a stage
//! whose dependencies are done runs or is skipped (`trigger.status`),
//! reference §6. A Drone server does this before any runner sees a stage;
//! a runner that plays the server (a local run) does it with [`plan`].

use std::collections::BTreeMap;
use std::fmt;

use crate::conditions::MatchInput;
use crate::model::{Manifest, Pipeline};
use crate::{Error, lint_manifest};

/// The stages of one build of a file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// Every pipeline of the file, in file order: those that got a stage
    /// and those that did not (with why).
    pub pipelines: Vec<PlannedPipeline>,
}

/// One pipeline of the file, as the build sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPipeline {
    /// Its name (`default` for an unnamed one).
    pub name: String,
    /// Its type (`docker` when none is written).
    pub kind_type: String,
    /// The 1-based line its document starts at.
    pub line: u64,
    /// Its stage number (1-based, in file order, counting only the
    /// pipelines that got a stage); `None` when it got none.
    pub number: Option<u32>,
    /// The pipelines it waits for that got a stage, as indices into
    /// [`StagePlan::pipelines`]. A dependency that got no stage is dropped,
    /// as the server drops it; empty for a pipeline that got none.
    pub depends_on: Vec<usize>,
    /// Its `trigger.status` allows a run when no stage has failed.
    pub on_success: bool,
    /// Its `trigger.status` allows a run when a stage has failed.
    pub on_failure: bool,
    /// Why it got no stage; `None` when it got one.
    pub not_run: Option<NotPlanned>,
    /// The `trigger` key that does not match the build, also for a
    /// pipeline that got a stage because it was selected by name.
    pub mismatch: Option<&'static str>,
}

/// Why a pipeline got no stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotPlanned {
    /// A `trigger` key did not match the build (its name, e.g. `branch`).
    Trigger {
        /// The key.
        key: &'static str,
    },
    /// Pipelines were selected by name and this one was not.
    NotSelected,
}

impl fmt::Display for NotPlanned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trigger { key } => write!(f, "trigger: {key}"),
            Self::NotSelected => f.write_str("not selected"),
        }
    }
}

/// Why a stage whose dependencies are done does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageSkip {
    /// A stage of the build failed and this one runs only on success.
    EarlierFailure,
    /// Nothing failed and this one runs only on failure.
    OnlyOnFailure,
}

impl fmt::Display for StageSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EarlierFailure => "an earlier stage failed",
            Self::OnlyOnFailure => "trigger: status (runs on failure only)",
        })
    }
}

impl PlannedPipeline {
    /// Whether the stage runs once every stage it waits for is done, given
    /// whether any stage of the build has failed by then. A stage without
    /// dependencies always runs (it starts with the build, before anything
    /// can fail), as on the server.
    pub fn decide(&self, build_failed: bool) -> Result<(), StageSkip> {
        if self.depends_on.is_empty() {
            return Ok(());
        }
        match (build_failed, self.on_success, self.on_failure) {
            (false, true, _) | (true, _, true) => Ok(()),
            (true, _, false) => Err(StageSkip::EarlierFailure),
            (false, false, _) => Err(StageSkip::OnlyOnFailure),
        }
    }
}

impl StagePlan {
    /// The pipelines that got a stage, with their indices.
    pub fn stages(&self) -> impl Iterator<Item = (usize, &PlannedPipeline)> {
        self.pipelines
            .iter()
            .enumerate()
            .filter(|(_, p)| p.not_run.is_none())
    }
}

/// Plans the build of `manifest` for the build facts `input`.
///
/// With `selected` empty, every pipeline whose `trigger` matches gets a
/// stage (keys `status` and `paths` are not tested, as on the server).
/// With names in `selected`, exactly those pipelines get a stage whatever
/// their `trigger`, and their `depends_on` on pipelines not selected is
/// dropped.
///
/// # Errors
/// [`Error::PipelineNotFound`] for a selected name the file does not have
/// (or a file without pipelines); [`Error::Lint`] for what the server
/// refuses in the file as a whole: two pipelines with one name, a
/// dependency naming no pipeline, a dependency cycle.
pub fn plan(
    manifest: &Manifest,
    selected: &[String],
    input: MatchInput<'_>,
) -> Result<StagePlan, Error> {
    let names: Vec<String> = manifest
        .pipelines()
        .map(|p| p.display_name().to_owned())
        .collect();
    if names.is_empty() {
        return Err(Error::PipelineNotFound {
            name: String::new(),
            available: names,
        });
    }
    if let Some(unknown) = selected.iter().find(|s| !names.contains(s)) {
        return Err(Error::PipelineNotFound {
            name: unknown.clone(),
            available: names,
        });
    }
    let problems = lint_manifest(manifest);
    if !problems.is_empty() {
        return Err(Error::Lint(problems));
    }
    let not_run = |p: &Pipeline, mismatch: Option<&'static str>| {
        if selected.is_empty() {
            mismatch.map(|key| NotPlanned::Trigger { key })
        } else if selected.iter().any(|s| s == p.display_name()) {
            None
        } else {
            Some(NotPlanned::NotSelected)
        }
    };
    let mut pipelines: Vec<PlannedPipeline> = Vec::with_capacity(names.len());
    let mut number = 0;
    for p in manifest.pipelines() {
        let mismatch = p.trigger.mismatch(input);
        let not_run = not_run(p, mismatch);
        let status = &p.trigger.status;
        pipelines.push(PlannedPipeline {
            name: p.display_name().to_owned(),
            kind_type: p.pipeline_type().to_owned(),
            line: p.line,
            number: not_run.is_none().then(|| {
                number += 1;
                number
            }),
            depends_on: Vec::new(),
            // Drone's words: `on_success` is "status matches success",
            // `on_failure` "status matches failure and the key is there".
            on_success: status.matches("success"),
            on_failure: !status.is_empty() && status.matches("failure"),
            not_run,
            mismatch,
        });
    }
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    for (i, p) in manifest.pipelines().enumerate() {
        if pipelines[i].not_run.is_some() {
            continue;
        }
        let deps = p
            .depends_on
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .filter(|&d| pipelines[d].not_run.is_none())
            .collect();
        pipelines[i].depends_on = deps;
    }
    Ok(StagePlan { pipelines })
}

/// The marker in the commit message (or a pull request's title, which
/// Drone reads as the message) that makes a server skip the build, if any:
/// `[ci skip]`, `[skip ci]` or `***no_ci***`, in any case. Tags, cron,
/// custom, promote and rollback builds are never skipped this way.
pub fn skip_marker(build: &runnerkit_core::drone::Build) -> Option<&'static str> {
    const MARKERS: [&str; 3] = ["[ci skip]", "[skip ci]", "***no_ci***"];
    const ALWAYS_BUILT: [&str; 5] = ["tag", "cron", "custom", "promote", "rollback"];
    if ALWAYS_BUILT.contains(&build.event.as_str()) {
        return None;
    }
    let message = build.message.to_lowercase();
    let title = build.title.to_lowercase();
    MARKERS
        .into_iter()
        .find(|m| message.contains(m) || title.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnerkit_core::drone::{Build, Repo, System};

    fn planned(text: &str, selected: &[&str], branch: &str) -> Result<StagePlan, Error> {
        let manifest = Manifest::parse(text).unwrap();
        let build = Build {
            target: branch.into(),
            event: "push".into(),
            ..Build::default()
        };
        let (repo, system) = (Repo::default(), System::default());
        let selected: Vec<String> = selected.iter().map(|s| (*s).to_owned()).collect();
        plan(
            &manifest,
            &selected,
            MatchInput {
                build: &build,
                repo: &repo,
                system: &system,
            },
        )
    }

    const FILE: &str = "\
kind: pipeline
name: build
---
kind: pipeline
name: deploy
depends_on: [build]
trigger: {branch: main}
---
kind: pipeline
name: notify
depends_on: [build, deploy]
trigger: {status: [failure]}
";

    /// Name, number, dependencies, why not run.
    type Row = (String, Option<u32>, Vec<usize>, Option<String>);

    fn summary(plan: &StagePlan) -> Vec<Row> {
        plan.pipelines
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.number,
                    p.depends_on.clone(),
                    p.not_run.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    }

    #[test]
    fn the_trigger_picks_the_stages_and_drops_dependencies_that_got_none() {
        let on_dev = planned(FILE, &[], "dev").unwrap();
        assert_eq!(
            summary(&on_dev),
            [
                ("build".into(), Some(1), vec![], None),
                (
                    "deploy".into(),
                    None,
                    vec![],
                    Some("trigger: branch".into())
                ),
                ("notify".into(), Some(2), vec![0], None),
            ]
        );
        let on_main = planned(FILE, &[], "main").unwrap();
        assert_eq!(on_main.pipelines[2].depends_on, [0, 1]);
        assert_eq!(on_main.stages().count(), 3);
    }

    #[test]
    fn selected_pipelines_run_whatever_their_trigger() {
        let plan = planned(FILE, &["deploy"], "dev").unwrap();
        assert_eq!(plan.pipelines[1].mismatch, Some("branch"));
        assert_eq!(
            summary(&plan),
            [
                ("build".into(), None, vec![], Some("not selected".into())),
                ("deploy".into(), Some(1), vec![], None),
                ("notify".into(), None, vec![], Some("not selected".into())),
            ]
        );
        let err = planned(FILE, &["nope"], "dev").unwrap_err();
        assert_eq!(
            err.to_string(),
            "pipeline \"nope\" not found (the file has: build, deploy, notify)"
        );
    }

    #[test]
    fn status_decides_once_dependencies_are_done() {
        let plan = planned(FILE, &[], "main").unwrap();
        let (build, deploy, notify) = (&plan.pipelines[0], &plan.pipelines[1], &plan.pipelines[2]);
        // No dependency: runs, whatever happened.
        assert_eq!(build.decide(true), Ok(()));
        assert_eq!(deploy.decide(false), Ok(()));
        assert_eq!(deploy.decide(true), Err(StageSkip::EarlierFailure));
        assert_eq!(notify.decide(true), Ok(()));
        assert_eq!(notify.decide(false), Err(StageSkip::OnlyOnFailure));
    }

    #[test]
    fn what_the_server_refuses_is_refused() {
        let cycle = "kind: pipeline\nname: a\ndepends_on: [b]\n---\nkind: pipeline\nname: b\ndepends_on: [a]\n";
        let err = planned(cycle, &[], "main").unwrap_err();
        assert!(
            err.to_string()
                .contains("cyclical pipeline dependency: a -> b -> a"),
            "{err}"
        );
        let unknown = "kind: pipeline\nname: a\ndepends_on: [zz]\n";
        let err = planned(unknown, &[], "main").unwrap_err();
        assert!(err.to_string().contains("a references zz"), "{err}");
        let empty = planned("kind: secret\nname: x\nget: {path: a}\n", &[], "main").unwrap_err();
        assert!(err_is_no_pipeline(&empty), "{empty}");
    }

    #[test]
    fn a_skip_marker_skips_pushes_but_not_tags() {
        let mut build = Build {
            event: "push".into(),
            message: "docs: typo [CI SKIP]".into(),
            ..Build::default()
        };
        assert_eq!(skip_marker(&build), Some("[ci skip]"));
        build.event = "tag".into();
        assert_eq!(skip_marker(&build), None);
        build.event = "pull_request".into();
        build.message = "fix".into();
        build.title = "WIP ***NO_CI***".into();
        assert_eq!(skip_marker(&build), Some("***no_ci***"));
        build.title = "skip the ci".into();
        assert_eq!(skip_marker(&build), None);
    }

    fn err_is_no_pipeline(e: &Error) -> bool {
        e.to_string().contains("the file has no pipeline")
    }
}

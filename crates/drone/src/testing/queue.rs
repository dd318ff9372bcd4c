//! Which pending stage a runner's [`Filter`] gets (protocol §5.1).

use runnerkit_core::Status;
use runnerkit_core::drone::{Filter, Stage};

/// The first stage, in id order, that `filter` may run now: pending, not yet
/// accepted, within its concurrency limit and its repository's throttle, and
/// a match for the runner's kind, type, platform and labels. `stages` must be
/// every stage the server knows, ordered by id.
///
/// There is no lease: the same stage is offered to every runner that asks
/// until one accepts it.
pub(crate) fn pick<'a>(stages: &[&'a Stage], filter: &Filter) -> Option<&'a Stage> {
    stages.iter().copied().find(|stage| {
        stage.status == Status::Pending
            && stage.machine.is_empty()
            && within_limit(stage, stages)
            && within_throttle(stage, stages)
            && runner_matches(filter, stage)
    })
}

/// `limit`: stages of the same repository and name that are running, or
/// pending ahead of this one, must number fewer than the limit.
fn within_limit(stage: &Stage, stages: &[&Stage]) -> bool {
    if stage.limit <= 0 {
        return true;
    }
    let ahead = stages
        .iter()
        .filter(|other| {
            other.id != stage.id
                && other.repo_id == stage.repo_id
                && other.name == stage.name
                && (other.status == Status::Running
                    || (other.status == Status::Pending && other.id < stage.id))
        })
        .count();
    ahead < usize::try_from(stage.limit).unwrap_or(usize::MAX)
}

/// `throttle`: unfinished stages of the same repository with a lower id must
/// number fewer than the throttle.
fn within_throttle(stage: &Stage, stages: &[&Stage]) -> bool {
    if stage.throttle <= 0 {
        return true;
    }
    let ahead = stages
        .iter()
        .filter(|other| {
            other.id < stage.id && other.repo_id == stage.repo_id && !other.status.is_done()
        })
        .count();
    ahead < usize::try_from(stage.throttle).unwrap_or(usize::MAX)
}

/// Kind and type (empty meaning `pipeline` and `docker`), platform (only when
/// the runner names one) and labels (identical when either side has any).
pub(crate) fn runner_matches(filter: &Filter, stage: &Stage) -> bool {
    let or = |value: &str, default: &'static str| -> String {
        if value.is_empty() {
            default.to_owned()
        } else {
            value.to_owned()
        }
    };
    if or(&filter.kind, "pipeline") != or(&stage.kind, "pipeline") {
        return false;
    }
    if or(&filter.kind_type, "docker") != or(&stage.kind_type, "docker") {
        return false;
    }
    let runner_names_platform = !(filter.os.is_empty()
        && filter.arch.is_empty()
        && filter.variant.is_empty()
        && filter.kernel.is_empty());
    if runner_names_platform {
        if filter.os != stage.os || filter.arch != stage.arch {
            return false;
        }
        if !stage.variant.is_empty() && stage.variant != filter.variant {
            return false;
        }
        if !stage.kernel.is_empty() && stage.kernel != filter.kernel {
            return false;
        }
    }
    if (!filter.labels.is_empty() || !stage.labels.is_empty()) && filter.labels != stage.labels {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(id: i64) -> Stage {
        Stage {
            id,
            repo_id: 1,
            name: "default".into(),
            status: Status::Pending,
            os: "linux".into(),
            arch: "amd64".into(),
            ..Stage::default()
        }
    }

    fn linux() -> Filter {
        Filter {
            kind: "pipeline".into(),
            kind_type: "docker".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            ..Filter::default()
        }
    }

    #[test]
    fn empty_kind_and_type_mean_pipeline_and_docker() {
        assert!(runner_matches(&Filter::default(), &stage(1)));
        assert!(runner_matches(&linux(), &stage(1)));
        let exec = Filter {
            kind_type: "exec".into(),
            ..linux()
        };
        assert!(!runner_matches(&exec, &stage(1)));
    }

    #[test]
    fn platform_counts_only_when_the_runner_names_one() {
        let arm = Stage {
            arch: "arm64".into(),
            ..stage(1)
        };
        assert!(runner_matches(&Filter::default(), &arm));
        assert!(!runner_matches(&linux(), &arm));
        let variant = Stage {
            variant: "v8".into(),
            ..stage(1)
        };
        assert!(!runner_matches(&linux(), &variant));
        assert!(runner_matches(
            &Filter {
                variant: "v8".into(),
                ..linux()
            },
            &variant
        ));
        // A runner's variant does not restrict stages that name none.
        assert!(runner_matches(
            &Filter {
                variant: "v8".into(),
                ..linux()
            },
            &stage(1)
        ));
    }

    #[test]
    fn labels_must_be_identical_when_either_side_has_some() {
        let mut labelled = stage(1);
        labelled.labels.insert("gpu".into(), "yes".into());
        assert!(!runner_matches(&linux(), &labelled));
        let mut filter = linux();
        filter.labels.insert("gpu".into(), "yes".into());
        assert!(runner_matches(&filter, &labelled));
        assert!(!runner_matches(&filter, &stage(1)));
    }

    #[test]
    fn picks_the_lowest_pending_unaccepted_stage() {
        let running = Stage {
            status: Status::Running,
            ..stage(1)
        };
        let taken = Stage {
            machine: "other".into(),
            ..stage(2)
        };
        let (a, b) = (stage(3), stage(4));
        let all = [&running, &taken, &a, &b];
        assert_eq!(pick(&all, &linux()).map(|s| s.id), Some(3));
    }

    #[test]
    fn limit_and_throttle_hold_stages_back() {
        let running = Stage {
            status: Status::Running,
            limit: 1,
            ..stage(1)
        };
        let limited = Stage {
            limit: 1,
            ..stage(2)
        };
        assert_eq!(pick(&[&running, &limited], &linux()), None);
        let limited_two = Stage {
            limit: 2,
            ..limited.clone()
        };
        assert_eq!(
            pick(&[&running, &limited_two], &linux()).map(|s| s.id),
            Some(2)
        );

        let waiting = Stage {
            status: Status::WaitingOnDependencies,
            ..stage(1)
        };
        let throttled = Stage {
            throttle: 1,
            ..stage(2)
        };
        assert_eq!(pick(&[&waiting, &throttled], &linux()), None);
        let other_repo = Stage {
            repo_id: 2,
            ..waiting.clone()
        };
        assert_eq!(
            pick(&[&other_repo, &throttled], &linux()).map(|s| s.id),
            Some(2)
        );
    }
}

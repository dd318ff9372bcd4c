//! Which stages a runner accepts to run (`DRONE_LIMIT_*`).

use runnerkit_core::drone::Details;
use runnerkit_manifest::Condition;

/// A runner-side allow-list. A stage outside it is reported `error` with
/// Drone's message, "insufficient permission to run the pipeline".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Repository slugs (globs, e.g. `octocat/*`); empty allows all.
    pub repos: Vec<String>,
    /// Build events (globs); empty allows all.
    pub events: Vec<String>,
    /// Only run trusted repositories.
    pub trusted: bool,
}

impl Limits {
    /// `Ok` when the stage may run here; else the message to report.
    pub fn check(&self, details: &Details) -> Result<(), String> {
        let allowed = |patterns: &[String], value: &str| {
            Condition {
                include: patterns.to_vec(),
                exclude: Vec::new(),
            }
            .matches(value)
        };
        let ok = allowed(&self.repos, &details.repository.slug)
            && allowed(&self.events, &details.build.event)
            && (!self.trusted || details.repository.trusted);
        if ok {
            Ok(())
        } else {
            Err("insufficient permission to run the pipeline".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(slug: &str, event: &str, trusted: bool) -> Details {
        let mut d = Details::default();
        d.repository.slug = slug.into();
        d.repository.trusted = trusted;
        d.build.event = event.into();
        d
    }

    #[test]
    fn globs_and_trust_limit_what_runs() {
        let limits = Limits {
            repos: vec!["octocat/*".into()],
            events: vec!["push".into(), "tag".into()],
            trusted: true,
        };
        assert!(
            limits
                .check(&details("octocat/hello", "push", true))
                .is_ok()
        );
        assert!(limits.check(&details("other/hello", "push", true)).is_err());
        assert!(
            limits
                .check(&details("octocat/hello", "pull_request", true))
                .is_err()
        );
        assert!(
            limits
                .check(&details("octocat/hello", "push", false))
                .is_err()
        );
        assert!(
            Limits::default()
                .check(&details("a/b", "cron", false))
                .is_ok()
        );
    }
}

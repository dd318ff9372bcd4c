//! Evaluating `when` (steps) and `trigger` (pipelines), reference §6.

use runnerkit_core::RunPolicy;
use runnerkit_core::drone::{Build, Repo, System};

use crate::glob::{self, Mode};
use crate::model::Conditions;
use crate::values::Condition;

impl Condition {
    /// True when nothing is given: the key matches everything.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Drone's rule: an exclude match ⇒ false; else an include match ⇒ true;
    /// else true only when there are no includes.
    pub fn matches(&self, value: &str) -> bool {
        if self
            .exclude
            .iter()
            .any(|p| glob::matches(p, value, Mode::Path))
        {
            return false;
        }
        if self
            .include
            .iter()
            .any(|p| glob::matches(p, value, Mode::Path))
        {
            return true;
        }
        self.include.is_empty()
    }
}

/// The build facts conditions are tested against.
#[derive(Debug, Clone, Copy)]
pub struct MatchInput<'a> {
    /// The build.
    pub build: &'a Build,
    /// The repository.
    pub repo: &'a Repo,
    /// The server (`instance` is its host).
    pub system: &'a System,
}

impl Conditions {
    /// True when every key except `status` and `paths` matches. `instance` is
    /// tested too (it is a runner-side key; the server ignores it in `trigger`).
    pub fn matches(&self, input: MatchInput<'_>) -> bool {
        self.mismatch(input).is_none()
    }

    /// The first key (in the order Drone lists them) whose condition does
    /// not match, e.g. `"branch"`; `None` when every key matches. `status`
    /// and `paths` are not tested here.
    pub fn mismatch(&self, input: MatchInput<'_>) -> Option<&'static str> {
        let b = input.build;
        let keys: [(&'static str, &Condition, &str); 8] = [
            ("branch", &self.branch, &b.target),
            ("event", &self.event, &b.event),
            ("ref", &self.git_ref, &b.git_ref),
            ("repo", &self.repo, &input.repo.slug),
            ("instance", &self.instance, &input.system.host),
            ("target", &self.target, &b.deploy_to),
            ("cron", &self.cron, &b.cron),
            ("action", &self.action, &b.action),
        ];
        keys.into_iter()
            .find(|(_, condition, value)| !condition.matches(value))
            .map(|(key, _, _)| key)
    }

    /// The run policy of a step with these conditions (§7.2): `Err` with
    /// the key that did not match when the step does not run at all, else
    /// the policy `status` gives.
    pub fn run_policy(&self, input: MatchInput<'_>) -> Result<RunPolicy, &'static str> {
        match self.mismatch(input) {
            Some(key) => Err(key),
            None => Ok(self.status_policy()),
        }
    }

    /// The run policy `status` alone gives.
    pub fn status_policy(&self) -> RunPolicy {
        if self.status.is_empty() {
            return RunPolicy::OnSuccess;
        }
        match (
            self.status.matches("success"),
            self.status.matches("failure"),
        ) {
            (true, true) => RunPolicy::Always,
            (false, true) => RunPolicy::OnFailure,
            _ => RunPolicy::OnSuccess,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(include: &[&str], exclude: &[&str]) -> Condition {
        Condition {
            include: include.iter().map(|s| (*s).to_owned()).collect(),
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn facts() -> (Build, Repo, System) {
        let build = Build {
            target: "feature/login".into(),
            event: "push".into(),
            git_ref: "refs/heads/feature/login".into(),
            deploy_to: "production".into(),
            cron: "nightly".into(),
            action: "opened".into(),
            ..Build::default()
        };
        let repo = Repo {
            slug: "octo/hello".into(),
            ..Repo::default()
        };
        let system = System {
            host: "ci.example.com".into(),
            ..System::default()
        };
        (build, repo, system)
    }

    /// Checks one key with include, exclude and both, against the facts above.
    fn check_key(set: impl Fn(&mut Conditions, Condition), hit: &str, miss: &str) {
        let (build, repo, system) = facts();
        let input = MatchInput {
            build: &build,
            repo: &repo,
            system: &system,
        };
        let run = |c: Condition| {
            let mut all = Conditions::default();
            set(&mut all, c);
            all.matches(input)
        };
        assert!(run(cond(&[hit], &[])), "include {hit}");
        assert!(!run(cond(&[miss], &[])), "include {miss}");
        assert!(!run(cond(&[], &[hit])), "exclude {hit}");
        assert!(run(cond(&[], &[miss])), "exclude {miss}");
        assert!(!run(cond(&[hit], &[hit])), "exclude wins");
        assert!(run(cond(&[], &[])), "empty matches");
    }

    #[test]
    fn branch_tests_the_target_branch_with_globs() {
        check_key(|c, v| c.branch = v, "feature/*", "main");
        check_key(|c, v| c.branch = v, "feature/**", "feature");
    }

    #[test]
    fn event() {
        check_key(|c, v| c.event = v, "push", "pull_request");
    }

    #[test]
    fn git_ref() {
        check_key(|c, v| c.git_ref = v, "refs/heads/**", "refs/tags/*");
    }

    #[test]
    fn repo() {
        check_key(|c, v| c.repo = v, "octo/*", "other/*");
    }

    #[test]
    fn instance() {
        check_key(|c, v| c.instance = v, "ci.example.com", "ci.other.com");
    }

    #[test]
    fn target() {
        check_key(|c, v| c.target = v, "prod*", "staging");
    }

    #[test]
    fn cron() {
        check_key(|c, v| c.cron = v, "nightly", "hourly");
    }

    #[test]
    fn action() {
        check_key(|c, v| c.action = v, "{opened,synchronized}", "closed");
    }

    #[test]
    fn keys_are_anded() {
        let (build, repo, system) = facts();
        let input = MatchInput {
            build: &build,
            repo: &repo,
            system: &system,
        };
        let c = Conditions {
            branch: cond(&["feature/*"], &[]),
            event: cond(&["tag"], &[]),
            ..Conditions::default()
        };
        assert!(!c.matches(input));
        assert_eq!(c.run_policy(input), Err("event"));
    }

    #[test]
    fn status_gives_the_run_policy() {
        let with = |inc: &[&str], exc: &[&str]| Conditions {
            status: cond(inc, exc),
            ..Conditions::default()
        };
        assert_eq!(with(&[], &[]).status_policy(), RunPolicy::OnSuccess);
        assert_eq!(
            with(&["success"], &[]).status_policy(),
            RunPolicy::OnSuccess
        );
        assert_eq!(
            with(&["failure"], &[]).status_policy(),
            RunPolicy::OnFailure
        );
        assert_eq!(
            with(&["success", "failure"], &[]).status_policy(),
            RunPolicy::Always
        );
        assert_eq!(
            with(&[], &["success"]).status_policy(),
            RunPolicy::OnFailure
        );
        assert_eq!(
            with(&[], &["failure"]).status_policy(),
            RunPolicy::OnSuccess
        );
    }

    #[test]
    fn paths_are_not_evaluated() {
        let (build, repo, system) = facts();
        let c = Conditions {
            paths: cond(&["docs/**"], &[]),
            ..Conditions::default()
        };
        let input = MatchInput {
            build: &build,
            repo: &repo,
            system: &system,
        };
        assert!(c.matches(input));
    }
}

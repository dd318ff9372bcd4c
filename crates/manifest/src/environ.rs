//! The `DRONE_*` and `CI_*` variables of reference §10, built from the
//! server's data, and the versions derived from tags (§10.1).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use runnerkit_core::Status;
use runnerkit_core::drone::{Build, Repo, Stage, System};

/// A set of environment variables, sorted by name.
pub type Environ = BTreeMap<String, String>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn or_now(t: i64) -> String {
    if t == 0 { now() } else { t }.to_string()
}

fn is_failing(status: Status) -> bool {
    matches!(status, Status::Failure | Status::Error | Status::Killed)
}

fn put(env: &mut Environ, key: &str, value: impl Into<String>) {
    env.insert(key.to_owned(), value.into());
}

/// System variables: `DRONE_SYSTEM_*`.
pub fn system_environ(system: &System) -> Environ {
    let mut env = Environ::new();
    put(&mut env, "CI", "true");
    put(&mut env, "DRONE", "true");
    put(&mut env, "DRONE_SYSTEM_PROTO", &system.proto);
    put(&mut env, "DRONE_SYSTEM_HOST", &system.host);
    put(&mut env, "DRONE_SYSTEM_HOSTNAME", &system.host);
    put(&mut env, "DRONE_SYSTEM_VERSION", &system.version);
    env
}

/// Repository variables: `DRONE_REPO*`, `DRONE_GIT_*`, `DRONE_REMOTE_URL`
/// and their `CI_*` aliases.
pub fn repo_environ(repo: &Repo) -> Environ {
    let mut env = Environ::new();
    put(&mut env, "DRONE_REPO", &repo.slug);
    put(&mut env, "DRONE_REPO_SCM", &repo.scm);
    put(&mut env, "DRONE_REPO_OWNER", &repo.namespace);
    put(&mut env, "DRONE_REPO_NAMESPACE", &repo.namespace);
    put(&mut env, "DRONE_REPO_NAME", &repo.name);
    put(&mut env, "DRONE_REPO_LINK", &repo.link);
    put(&mut env, "DRONE_REPO_BRANCH", &repo.default_branch);
    put(&mut env, "DRONE_REMOTE_URL", &repo.git_http_url);
    put(&mut env, "DRONE_GIT_HTTP_URL", &repo.git_http_url);
    put(&mut env, "DRONE_GIT_SSH_URL", &repo.git_ssh_url);
    put(&mut env, "DRONE_REPO_VISIBILITY", &repo.visibility);
    put(&mut env, "DRONE_REPO_PRIVATE", repo.private.to_string());
    put(&mut env, "CI_REPO", &repo.slug);
    put(&mut env, "CI_REPO_NAME", &repo.slug);
    put(&mut env, "CI_REPO_LINK", &repo.link);
    put(&mut env, "CI_REPO_REMOTE", &repo.git_http_url);
    put(&mut env, "CI_REMOTE_URL", &repo.git_http_url);
    put(&mut env, "CI_REPO_PRIVATE", repo.private.to_string());
    env
}

/// Build variables: `DRONE_BUILD_*`, `DRONE_COMMIT_*`, branches, tag, pull
/// request, deploy, semver/calver, and their `CI_*` aliases.
pub fn build_environ(build: &Build) -> Environ {
    let mut env = Environ::new();
    put(&mut env, "DRONE_BRANCH", &build.target);
    put(&mut env, "DRONE_SOURCE_BRANCH", &build.source);
    put(&mut env, "DRONE_TARGET_BRANCH", &build.target);
    put(&mut env, "DRONE_COMMIT", &build.after);
    put(&mut env, "DRONE_COMMIT_SHA", &build.after);
    put(&mut env, "DRONE_COMMIT_BEFORE", &build.before);
    put(&mut env, "DRONE_COMMIT_AFTER", &build.after);
    put(&mut env, "DRONE_COMMIT_REF", &build.git_ref);
    put(&mut env, "DRONE_COMMIT_BRANCH", &build.target);
    put(&mut env, "DRONE_COMMIT_LINK", &build.link);
    put(&mut env, "DRONE_COMMIT_MESSAGE", &build.message);
    put(&mut env, "DRONE_COMMIT_AUTHOR", &build.author_login);
    put(&mut env, "DRONE_COMMIT_AUTHOR_EMAIL", &build.author_email);
    put(&mut env, "DRONE_COMMIT_AUTHOR_AVATAR", &build.author_avatar);
    put(&mut env, "DRONE_COMMIT_AUTHOR_NAME", &build.author_name);
    put(&mut env, "DRONE_BUILD_NUMBER", build.number.to_string());
    put(&mut env, "DRONE_BUILD_PARENT", build.parent.to_string());
    put(&mut env, "DRONE_BUILD_EVENT", &build.event);
    put(&mut env, "DRONE_BUILD_ACTION", &build.action);
    put(&mut env, "DRONE_BUILD_TRIGGER", &build.trigger);
    put(&mut env, "DRONE_BUILD_DEBUG", build.debug.to_string());
    put(&mut env, "DRONE_BUILD_CREATED", build.created.to_string());
    put(&mut env, "DRONE_BUILD_STARTED", or_now(build.started));
    put(&mut env, "DRONE_BUILD_FINISHED", or_now(build.finished));
    put(&mut env, "DRONE_DEPLOY_TO", &build.deploy_to);
    put(&mut env, "DRONE_DEPLOY_ID", build.deploy_id.to_string());

    let failed: Vec<&str> = build
        .stages
        .iter()
        .filter(|s| is_failing(s.status))
        .map(|s| s.name.as_str())
        .collect();
    if is_failing(build.status) || !failed.is_empty() {
        put(&mut env, "DRONE_BUILD_STATUS", "failure");
        put(&mut env, "DRONE_FAILED_STAGES", failed.join(","));
    } else {
        put(&mut env, "DRONE_BUILD_STATUS", "success");
    }

    if build.event == "pull_request" {
        if let Some(number) = first_digit_run(&build.git_ref) {
            put(&mut env, "DRONE_PULL_REQUEST", number);
        }
        put(&mut env, "DRONE_PULL_REQUEST_TITLE", &build.title);
    }
    if let Some(tag) = build.git_ref.strip_prefix("refs/tags/") {
        put(&mut env, "DRONE_TAG", tag);
        env.extend(version_environ(tag));
    }

    put(&mut env, "CI_BUILD_NUMBER", build.number.to_string());
    put(&mut env, "CI_PARENT_BUILD_NUMBER", build.parent.to_string());
    put(&mut env, "CI_BUILD_CREATED", build.created.to_string());
    put(&mut env, "CI_BUILD_STARTED", build.started.to_string());
    put(&mut env, "CI_BUILD_FINISHED", build.finished.to_string());
    put(&mut env, "CI_BUILD_STATUS", build.status.to_string());
    put(&mut env, "CI_BUILD_EVENT", &build.event);
    put(&mut env, "CI_BUILD_LINK", &build.link);
    put(&mut env, "CI_BUILD_TARGET", &build.deploy_to);
    put(&mut env, "CI_COMMIT_SHA", &build.after);
    put(&mut env, "CI_COMMIT_REF", &build.git_ref);
    put(&mut env, "CI_COMMIT_BRANCH", &build.target);
    put(&mut env, "CI_COMMIT_MESSAGE", &build.message);
    put(&mut env, "CI_COMMIT_AUTHOR", &build.author_login);
    put(&mut env, "CI_COMMIT_AUTHOR_NAME", &build.author_name);
    put(&mut env, "CI_COMMIT_AUTHOR_EMAIL", &build.author_email);
    put(&mut env, "CI_COMMIT_AUTHOR_AVATAR", &build.author_avatar);
    env
}

fn first_digit_run(text: &str) -> Option<&str> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Stage variables: `DRONE_STAGE_*`, `DRONE_FAILED_STEPS`, `DRONE_CARD_PATH`.
pub fn stage_environ(stage: &Stage) -> Environ {
    let mut env = Environ::new();
    put(&mut env, "DRONE_STAGE_KIND", &stage.kind);
    put(&mut env, "DRONE_STAGE_TYPE", &stage.kind_type);
    put(&mut env, "DRONE_STAGE_NAME", &stage.name);
    put(&mut env, "DRONE_STAGE_NUMBER", stage.number.to_string());
    put(&mut env, "DRONE_STAGE_MACHINE", &stage.machine);
    put(&mut env, "DRONE_STAGE_OS", &stage.os);
    put(&mut env, "DRONE_STAGE_ARCH", &stage.arch);
    put(&mut env, "DRONE_STAGE_VARIANT", &stage.variant);
    put(&mut env, "DRONE_STAGE_VERSION", stage.version.to_string());
    put(&mut env, "DRONE_STAGE_STARTED", or_now(stage.started));
    put(&mut env, "DRONE_STAGE_FINISHED", or_now(stage.stopped));
    put(
        &mut env,
        "DRONE_STAGE_DEPENDS_ON",
        stage.depends_on.join(","),
    );
    put(&mut env, "DRONE_CARD_PATH", "/dev/stdout");
    let failed: Vec<&str> = stage
        .steps
        .iter()
        .filter(|s| is_failing(s.status) && !s.errignore)
        .map(|s| s.name.as_str())
        .collect();
    if is_failing(stage.status) || !failed.is_empty() {
        put(&mut env, "DRONE_STAGE_STATUS", "failure");
        put(&mut env, "DRONE_FAILED_STEPS", failed.join(","));
    } else {
        put(&mut env, "DRONE_STAGE_STATUS", "success");
    }
    env
}

/// `DRONE_BUILD_LINK`: `{proto}://{host}/{slug}/{number}`.
pub fn link_environ(system: &System, repo: &Repo, build: &Build) -> Environ {
    let mut env = Environ::new();
    put(
        &mut env,
        "DRONE_BUILD_LINK",
        format!(
            "{}://{}/{}/{}",
            system.proto, system.host, repo.slug, build.number
        ),
    );
    env
}

/// Git identity: `GIT_AUTHOR_*`, `GIT_COMMITTER_*`, `GIT_TERMINAL_PROMPT`.
pub fn git_environ(build: &Build) -> Environ {
    let mut env = Environ::new();
    let name = if build.author_name.is_empty() {
        "drone"
    } else {
        &build.author_name
    };
    let email = if build.author_email.is_empty() {
        "noreply@drone"
    } else {
        &build.author_email
    };
    put(&mut env, "GIT_AUTHOR_NAME", name);
    put(&mut env, "GIT_AUTHOR_EMAIL", email);
    put(&mut env, "GIT_COMMITTER_NAME", name);
    put(&mut env, "GIT_COMMITTER_EMAIL", email);
    put(&mut env, "GIT_TERMINAL_PROMPT", "0");
    env
}

/// The variables envsubst sees (§11): runner globals, system, repo, build
/// (tag and versions included), stage, the build link, then build params;
/// later wins. Not secrets, netrc, step or workspace variables.
pub fn substitution_environ(
    globals: &Environ,
    system: &System,
    repo: &Repo,
    build: &Build,
    stage: &Stage,
) -> Environ {
    let mut env = globals.clone();
    env.extend(system_environ(system));
    env.extend(repo_environ(repo));
    env.extend(build_environ(build));
    env.extend(stage_environ(stage));
    env.extend(link_environ(system, repo, build));
    env.extend(build.params.clone());
    env
}

/// `DRONE_SEMVER*` and `DRONE_CALVER*` from a tag (leading `v` stripped).
pub fn version_environ(tag: &str) -> Environ {
    let mut env = Environ::new();
    let version = tag.strip_prefix('v').unwrap_or(tag);
    match parse_semver(version) {
        Ok(v) => {
            put(&mut env, "DRONE_SEMVER", version);
            put(&mut env, "DRONE_SEMVER_MAJOR", v.major.to_string());
            put(&mut env, "DRONE_SEMVER_MINOR", v.minor.to_string());
            put(&mut env, "DRONE_SEMVER_PATCH", v.patch.to_string());
            if !v.pre.is_empty() {
                put(&mut env, "DRONE_SEMVER_PRERELEASE", v.pre);
            }
            if !v.build.is_empty() {
                put(&mut env, "DRONE_SEMVER_BUILD", v.build);
            }
            put(
                &mut env,
                "DRONE_SEMVER_SHORT",
                format!("{}.{}.{}", v.major, v.minor, v.patch),
            );
        }
        Err(message) => put(&mut env, "DRONE_SEMVER_ERROR", message),
    }
    if let Some(c) = parse_calver(version) {
        let mut full = format!("{}.{}", c.major, c.minor);
        put(&mut env, "DRONE_CALVER_MAJOR_MINOR", full.clone());
        put(&mut env, "DRONE_CALVER_MAJOR", c.major);
        put(&mut env, "DRONE_CALVER_MINOR", c.minor);
        if !c.micro.is_empty() {
            put(&mut env, "DRONE_CALVER_MICRO", c.micro);
            full = format!("{full}.{}", c.micro);
        }
        put(&mut env, "DRONE_CALVER_SHORT", full.clone());
        if !c.modifier.is_empty() {
            put(&mut env, "DRONE_CALVER_MODIFIER", c.modifier);
            full = format!("{full}-{}", c.modifier);
        }
        put(&mut env, "DRONE_CALVER", full);
    }
    env
}

struct Semver<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    pre: &'a str,
    build: &'a str,
}

fn numeric(part: &str, what: &str) -> Result<u64, String> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid {what} version {part:?}"));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(format!("{what} version {part:?} has a leading zero"));
    }
    part.parse()
        .map_err(|_| format!("{what} version {part:?} is too large"))
}

fn identifiers_ok(text: &str) -> bool {
    text.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Strict `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
fn parse_semver(version: &str) -> Result<Semver<'_>, String> {
    let (rest, build) = version.split_once('+').unwrap_or((version, ""));
    let (core, pre) = rest.split_once('-').unwrap_or((rest, ""));
    let parts: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return Err(format!("{version:?} is not in the form MAJOR.MINOR.PATCH"));
    };
    let v = Semver {
        major: numeric(major, "major")?,
        minor: numeric(minor, "minor")?,
        patch: numeric(patch, "patch")?,
        pre,
        build,
    };
    if version.contains('-') && rest.len() > core.len() && (pre.is_empty() || !identifiers_ok(pre))
    {
        return Err(format!("invalid prerelease {pre:?}"));
    }
    if version.contains('+') && (build.is_empty() || !identifiers_ok(build)) {
        return Err(format!("invalid build metadata {build:?}"));
    }
    Ok(v)
}

struct Calver<'a> {
    major: &'a str,
    minor: &'a str,
    micro: &'a str,
    modifier: &'a str,
}

fn parse_calver(version: &str) -> Option<Calver<'_>> {
    let parts: Vec<&str> = version.splitn(3, '.').collect();
    if parts.len() < 2 {
        return None;
    }
    let (major, minor) = (parts[0], parts[1]);
    let year: u64 = major.parse().ok()?;
    minor.parse::<u64>().ok()?;
    let is_year = match major.len() {
        2 => (19..=99).contains(&year),
        4 => (2019..=9998).contains(&year),
        _ => false,
    };
    if !is_year {
        return None;
    }
    let (micro, modifier) = match parts.get(2) {
        Some(third) => third.split_once('-').unwrap_or((third, "")),
        None => ("", ""),
    };
    Some(Calver {
        major,
        minor,
        micro,
        modifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_from_tags() {
        let env = version_environ("v1.2.3-rc.1+abc");
        assert_eq!(env["DRONE_SEMVER"], "1.2.3-rc.1+abc");
        assert_eq!(env["DRONE_SEMVER_MAJOR"], "1");
        assert_eq!(env["DRONE_SEMVER_MINOR"], "2");
        assert_eq!(env["DRONE_SEMVER_PATCH"], "3");
        assert_eq!(env["DRONE_SEMVER_PRERELEASE"], "rc.1");
        assert_eq!(env["DRONE_SEMVER_BUILD"], "abc");
        assert_eq!(env["DRONE_SEMVER_SHORT"], "1.2.3");
        assert!(!env.contains_key("DRONE_SEMVER_ERROR"));
        let plain = version_environ("2.0.0");
        assert!(!plain.contains_key("DRONE_SEMVER_PRERELEASE"));
        assert!(!plain.contains_key("DRONE_SEMVER_BUILD"));
    }

    #[test]
    fn semver_errors_leave_only_the_error() {
        for tag in ["v1.2", "v1.2.x", "v01.2.3", "v1.2.3-", "v1.2.3+", "latest"] {
            let env = version_environ(tag);
            assert!(env.contains_key("DRONE_SEMVER_ERROR"), "{tag}");
            assert!(!env.contains_key("DRONE_SEMVER"), "{tag}");
        }
    }

    #[test]
    fn calver_from_tags() {
        let env = version_environ("v2023.10.2-beta");
        assert_eq!(env["DRONE_CALVER"], "2023.10.2-beta");
        assert_eq!(env["DRONE_CALVER_MAJOR_MINOR"], "2023.10");
        assert_eq!(env["DRONE_CALVER_MAJOR"], "2023");
        assert_eq!(env["DRONE_CALVER_MINOR"], "10");
        assert_eq!(env["DRONE_CALVER_MICRO"], "2");
        assert_eq!(env["DRONE_CALVER_MODIFIER"], "beta");
        assert_eq!(env["DRONE_CALVER_SHORT"], "2023.10.2");
        let short = version_environ("24.04");
        assert_eq!(short["DRONE_CALVER"], "24.04");
        assert!(!version_environ("1.2.3").contains_key("DRONE_CALVER"));
        assert!(!version_environ("2018.1.0").contains_key("DRONE_CALVER"));
    }

    #[test]
    fn a_tag_can_be_semver_and_calver() {
        let env = version_environ("v20.1.0");
        assert_eq!(env["DRONE_SEMVER"], "20.1.0");
        assert_eq!(env["DRONE_CALVER"], "20.1.0");
    }

    #[test]
    fn build_variables_for_a_tag_and_a_pull_request() {
        let tag = Build {
            number: 7,
            event: "tag".into(),
            git_ref: "refs/tags/v1.0.0".into(),
            after: "abc".into(),
            started: 5,
            finished: 9,
            ..Build::default()
        };
        let env = build_environ(&tag);
        assert_eq!(env["DRONE_TAG"], "v1.0.0");
        assert_eq!(env["DRONE_SEMVER"], "1.0.0");
        assert_eq!(env["DRONE_COMMIT_SHA"], "abc");
        assert_eq!(env["DRONE_BUILD_STARTED"], "5");
        assert_eq!(env["DRONE_BUILD_STATUS"], "success");
        assert!(!env.contains_key("DRONE_PULL_REQUEST"));
        let pr = Build {
            event: "pull_request".into(),
            git_ref: "refs/pull/42/head".into(),
            title: "Fix".into(),
            target: "main".into(),
            ..Build::default()
        };
        let env = build_environ(&pr);
        assert_eq!(env["DRONE_PULL_REQUEST"], "42");
        assert_eq!(env["DRONE_PULL_REQUEST_TITLE"], "Fix");
        assert_eq!(env["DRONE_BRANCH"], "main");
        assert_eq!(env["CI_COMMIT_BRANCH"], "main");
        assert!(!env.contains_key("DRONE_TAG"));
        assert_ne!(env["DRONE_BUILD_STARTED"], "0", "0 means now");
        assert_eq!(env["CI_BUILD_STARTED"], "0", "CI_* keep raw values");
    }

    #[test]
    fn failing_stages_and_steps_are_listed() {
        let build = Build {
            stages: vec![
                Stage {
                    name: "a".into(),
                    status: Status::Failure,
                    ..Stage::default()
                },
                Stage {
                    name: "b".into(),
                    status: Status::Success,
                    ..Stage::default()
                },
            ],
            ..Build::default()
        };
        let env = build_environ(&build);
        assert_eq!(env["DRONE_BUILD_STATUS"], "failure");
        assert_eq!(env["DRONE_FAILED_STAGES"], "a");
        let stage = Stage {
            name: "s".into(),
            steps: vec![
                runnerkit_core::drone::Step {
                    name: "x".into(),
                    status: Status::Failure,
                    errignore: true,
                    ..Default::default()
                },
                runnerkit_core::drone::Step {
                    name: "y".into(),
                    status: Status::Error,
                    ..Default::default()
                },
            ],
            ..Stage::default()
        };
        let env = stage_environ(&stage);
        assert_eq!(env["DRONE_STAGE_STATUS"], "failure");
        assert_eq!(env["DRONE_FAILED_STEPS"], "y");
    }

    #[test]
    fn repo_system_link_and_git_identity() {
        let repo = Repo {
            slug: "octo/hello".into(),
            namespace: "octo".into(),
            name: "hello".into(),
            git_http_url: "https://git.example.com/octo/hello.git".into(),
            private: true,
            ..Repo::default()
        };
        let system = System {
            proto: "https".into(),
            host: "ci.example.com".into(),
            ..System::default()
        };
        let build = Build {
            number: 12,
            ..Build::default()
        };
        let env = repo_environ(&repo);
        assert_eq!(env["DRONE_REPO_OWNER"], "octo");
        assert_eq!(env["DRONE_REPO_PRIVATE"], "true");
        assert_eq!(env["CI_REPO_NAME"], "octo/hello");
        assert_eq!(env["DRONE_REMOTE_URL"], repo.git_http_url);
        assert_eq!(
            system_environ(&system)["DRONE_SYSTEM_HOSTNAME"],
            "ci.example.com"
        );
        assert_eq!(
            link_environ(&system, &repo, &build)["DRONE_BUILD_LINK"],
            "https://ci.example.com/octo/hello/12"
        );
        let git = git_environ(&build);
        assert_eq!(git["GIT_AUTHOR_NAME"], "drone");
        assert_eq!(git["GIT_COMMITTER_EMAIL"], "noreply@drone");
    }

    #[test]
    fn substitution_sees_params_last_and_no_secrets() {
        let mut build = Build::default();
        build
            .params
            .insert("DRONE_BRANCH".into(), "override".into());
        build.target = "main".into();
        let globals: Environ = [("GLOBAL".to_owned(), "g".to_owned())].into();
        let env = substitution_environ(
            &globals,
            &System::default(),
            &Repo::default(),
            &build,
            &Stage::default(),
        );
        assert_eq!(env["GLOBAL"], "g");
        assert_eq!(env["DRONE_BRANCH"], "override");
        assert!(!env.keys().any(|k| k.starts_with("DRONE_NETRC")));
    }
}

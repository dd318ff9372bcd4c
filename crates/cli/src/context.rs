//! The build a local run pretends to be: Drone's `Build`, `Repo`, `Stage` and
//! `System` made from the command line and the workspace, so `when`
//! conditions, `${VAR}` substitution and the `DRONE_*` variables work as on a
//! server.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use runnerkit_core::drone::{Build, Repo, Stage, System};

use crate::cli::BuildArgs;

/// The events a Drone build can have (`--event` takes one of them): a
/// typo would otherwise match no `when: event` and skip steps silently.
pub const EVENTS: [&str; 7] = [
    "push",
    "pull_request",
    "tag",
    "promote",
    "rollback",
    "cron",
    "custom",
];

/// The event when `--event` is not given.
const DEFAULT_EVENT: &str = EVENTS[0];
/// The branch when neither `--branch` nor the workspace's git checkout says.
const DEFAULT_BRANCH: &str = "main";

/// Drone's view of a local run.
#[derive(Debug, Clone)]
pub struct LocalBuild {
    /// The build: event, branch, ref, commit.
    pub build: Build,
    /// The repository: named after the workspace directory.
    pub repo: Repo,
    /// The stage: the pipeline that runs.
    pub stage: Stage,
    /// The "server": this machine.
    pub system: System,
}

/// The build described by `args` for the workspace `dir`, running pipeline
/// `pipeline` (its name, when known) of type `kind_type`.
pub fn local_build(
    args: &BuildArgs,
    dir: &Path,
    trusted: bool,
    pipeline: &str,
    kind_type: &str,
) -> LocalBuild {
    // `git` itself knows worktrees, packed refs and every other layout; the
    // `.git` files are read only when it is not installed (or refuses).
    let git = GitHead::read(dir, args.commit.as_deref());
    let branch = args
        .branch
        .clone()
        .or_else(|| git.as_ref().and_then(|g| g.branch.clone()))
        .or_else(|| checked_out_branch(dir))
        .unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
    let event = args
        .event
        .clone()
        .unwrap_or_else(|| DEFAULT_EVENT.to_owned());
    let git_ref = args
        .git_ref
        .clone()
        .unwrap_or_else(|| format!("refs/heads/{branch}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let name = dir.file_name().map_or_else(
        || "workspace".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let build = Build {
        number: 1,
        event,
        git_ref,
        source: branch.clone(),
        target: branch.clone(),
        after: args
            .commit
            .clone()
            .or_else(|| git.as_ref().map(|g| g.sha.clone()))
            .or_else(|| checked_out_commit(dir))
            .unwrap_or_default(),
        message: git.as_ref().map(|g| g.message.clone()).unwrap_or_default(),
        // A local commit has no forge login: its author's name stands in.
        author_login: git
            .as_ref()
            .map(|g| g.author_name.clone())
            .unwrap_or_default(),
        author_name: git
            .as_ref()
            .map(|g| g.author_name.clone())
            .unwrap_or_default(),
        author_email: git
            .as_ref()
            .map(|g| g.author_email.clone())
            .unwrap_or_default(),
        trigger: "@local".into(),
        timestamp: now,
        started: now,
        created: now,
        ..Build::default()
    };
    let repo = Repo {
        namespace: "local".into(),
        slug: format!("local/{name}"),
        name,
        default_branch: branch,
        trusted,
        ..Repo::default()
    };
    let stage = Stage {
        number: 1,
        name: pipeline.to_owned(),
        kind: "pipeline".into(),
        kind_type: kind_type.to_owned(),
        os: drone_os(std::env::consts::OS).to_owned(),
        arch: drone_arch(std::env::consts::ARCH).to_owned(),
        started: now,
        created: now,
        ..Stage::default()
    };
    let system = System {
        proto: "http".into(),
        host: "localhost".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..System::default()
    };
    LocalBuild {
        build,
        repo,
        stage,
        system,
    }
}

/// Go's name for Rust's operating system names, as Drone spells platforms.
pub(crate) fn drone_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's name for Rust's architecture names, as Drone spells platforms.
pub(crate) fn drone_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// What `git` says about the checkout holding `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitHead {
    /// The commit (`--commit`'s when given and known, else `HEAD`).
    sha: String,
    /// The branch checked out; `None` on a detached `HEAD`.
    branch: Option<String>,
    /// The commit's whole message, without its final newline.
    message: String,
    author_name: String,
    author_email: String,
}

impl GitHead {
    /// Asks `git` about `dir`; `None` when `git` is not installed, `dir` is
    /// not in a checkout, or there is no such commit.
    fn read(dir: &Path, commit: Option<&str>) -> Option<Self> {
        let rev = commit.unwrap_or("HEAD");
        // NUL-separated: a message holds any other character.
        let log = git(
            dir,
            &["log", "-1", "--format=%H%x00%an%x00%ae%x00%B", rev, "--"],
        )?;
        let mut fields = log.splitn(4, '\0');
        let sha = fields.next()?.trim().to_owned();
        if !is_sha(&sha) {
            return None;
        }
        let author_name = fields.next()?.to_owned();
        let author_email = fields.next()?.to_owned();
        let message = fields.next().unwrap_or_default().trim_end().to_owned();
        let branch = git(dir, &["symbolic-ref", "-q", "--short", "HEAD"])
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty());
        Some(Self {
            sha,
            branch,
            message,
            author_name,
            author_email,
        })
    }
}

/// The standard output of `git -C dir ARGS`, if it ran and succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never wait for a credential or pager prompt.
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

/// The `.git` directory of the checkout holding `dir` (itself or a parent).
fn git_dir(dir: &Path) -> Option<std::path::PathBuf> {
    dir.ancestors()
        .map(|d| d.join(".git"))
        .find(|git| git.join("HEAD").is_file())
}

/// The branch checked out where `dir` is, from `.git/HEAD`, if it is a plain
/// git checkout on a branch.
fn checked_out_branch(dir: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git_dir(dir)?.join("HEAD")).ok()?;
    head.trim()
        .strip_prefix("ref: refs/heads/")
        .map(str::to_owned)
}

/// The commit checked out where `dir` is: `HEAD` itself when detached, else
/// the branch's loose ref or its line in `.git/packed-refs`.
fn checked_out_commit(dir: &Path) -> Option<String> {
    let git = git_dir(dir)?;
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return is_sha(head).then(|| head.to_owned());
    };
    if let Ok(sha) = std::fs::read_to_string(git.join(reference)) {
        let sha = sha.trim();
        return is_sha(sha).then(|| sha.to_owned());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (sha, name) = line.split_once(' ')?;
        (name == reference && is_sha(sha)).then(|| sha.to_owned())
    })
}

fn is_sha(text: &str) -> bool {
    text.len() >= 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_takes_drones_events_only() {
        use clap::Parser;
        let event = |value: &str| {
            crate::cli::Cli::try_parse_from(["runnerkit", "exec", "--event", value]).map(|cli| {
                match cli.command {
                    crate::cli::Command::Exec(args) => args.build.event,
                    _ => None,
                }
            })
        };
        for name in EVENTS {
            assert_eq!(event(name).unwrap().as_deref(), Some(name));
        }
        let err = event("deploy").unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn flags_win_and_defaults_fill_in() {
        /// Removes the directory even when an assertion fails.
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = std::env::temp_dir().join(format!("rk-ctx-{}", std::process::id()));
        let _cleanup = Cleanup(dir.clone());
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/heads/feature/x\n").unwrap();
        let sha = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(
            dir.join(".git/packed-refs"),
            format!("# pack-refs\n{sha} refs/heads/feature/x\n"),
        )
        .unwrap();
        let b = local_build(&BuildArgs::default(), &dir, false, "default", "exec");
        assert_eq!(b.build.target, "feature/x");
        assert_eq!(b.build.after, sha, "from packed-refs");
        std::fs::create_dir_all(dir.join(".git/refs/heads/feature")).unwrap();
        let loose = "89abcdef0123456789abcdef0123456789abcdef";
        std::fs::write(dir.join(".git/refs/heads/feature/x"), format!("{loose}\n")).unwrap();
        let b = local_build(&BuildArgs::default(), &dir, false, "default", "exec");
        assert_eq!(b.build.after, loose, "a loose ref wins");
        assert_eq!(b.build.git_ref, "refs/heads/feature/x");
        assert_eq!(b.build.event, "push");
        assert!(b.repo.slug.starts_with("local/rk-ctx-"));
        std::fs::create_dir_all(dir.join("ci")).unwrap();
        let b = local_build(&BuildArgs::default(), &dir.join("ci"), false, "", "exec");
        assert_eq!(
            (b.build.target.as_str(), b.build.after.as_str()),
            ("feature/x", loose),
            "found from a subdirectory"
        );
        let args = BuildArgs {
            branch: Some("main".into()),
            event: Some("tag".into()),
            git_ref: Some("refs/tags/v1.0.0".into()),
            commit: Some("abc".into()),
        };
        let b = local_build(&args, &dir, true, "p", "docker");
        assert_eq!(
            (
                b.build.target.as_str(),
                b.build.event.as_str(),
                b.build.git_ref.as_str(),
                b.build.after.as_str()
            ),
            ("main", "tag", "refs/tags/v1.0.0", "abc")
        );
        assert!(b.repo.trusted);
        assert_eq!(b.stage.kind_type, "docker");
        let b = local_build(&BuildArgs::default(), Path::new("/"), false, "", "exec");
        assert_eq!(b.build.target, "main");
    }
}

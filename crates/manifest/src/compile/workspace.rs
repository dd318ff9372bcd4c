//! Where the workspace is (reference §8, §14), and the time helpers the stage labels use.

use std::time::{SystemTime, UNIX_EPOCH};

use runnerkit_core::Workspace;

use super::CompileContext;
use crate::model::Pipeline;

pub(crate) const DEFAULT_BASE: &str = "/drone/src";

/// Paths a workspace may not be (§14): exactly these, or below the second list.
const RESTRICTED_EXACT: [&str; 3] = ["/", "/etc", "/var"];
const RESTRICTED_TREES: [&str; 13] = [
    "/etc/docker",
    "/var/run",
    "/proc",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/bin",
    "/bin",
    "/mnt",
    "/mount",
    "/media",
    "/sys",
    "/dev",
    "/run/drone",
];

fn is_restricted(path: &str) -> bool {
    let lower = path.to_lowercase();
    let clean = lower.trim_end_matches('/');
    let clean = if clean.is_empty() { "/" } else { clean };
    RESTRICTED_EXACT.contains(&clean)
        || RESTRICTED_TREES
            .iter()
            .any(|t| clean == *t || clean.starts_with(&format!("{t}/")))
}

/// Go's duration format for whole minutes: `1h0m0s`, `30m0s`, `0s`.
pub(crate) fn go_duration(minutes: i64) -> String {
    if minutes <= 0 {
        return "0s".into();
    }
    let (h, m) = (minutes / 60, minutes % 60);
    if h > 0 {
        format!("{h}h{m}m0s")
    } else {
        format!("{m}m0s")
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn workspace(
    pipeline: &Pipeline,
    ctx: &CompileContext,
    docker: bool,
    windows: bool,
) -> Workspace {
    let ws = &pipeline.workspace;
    if !docker {
        return match &ctx.host_workspace {
            Some(host) => Workspace {
                base: host.clone(),
                path: String::new(),
                host_path: Some(host.clone()),
            },
            None => Workspace {
                base: ws.base.clone(),
                path: ws.path.clone(),
                host_path: None,
            },
        };
    }
    let (mut base, mut path) = if !ws.base.is_empty() {
        (ws.base.clone(), ws.path.clone())
    } else if ws.path.starts_with('/') {
        (ws.path.clone(), String::new())
    } else {
        (DEFAULT_BASE.to_owned(), ws.path.clone())
    };
    let full = Workspace {
        base: base.clone(),
        path: path.clone(),
        host_path: None,
    }
    .full_path();
    if is_restricted(&full) {
        tracing::warn!(workspace = %full, "restricted workspace path reset to {DEFAULT_BASE}");
        base = DEFAULT_BASE.to_owned();
        path.clear();
    }
    if windows {
        // Windows containers: `c:` plus backslashes (§8).
        base = format!("c:{}", base.replace('/', "\\"));
        path = path.replace('/', "\\");
    }
    Workspace {
        base,
        path,
        host_path: ctx.host_workspace.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_paths() {
        for p in [
            "/",
            "/etc",
            "/var/",
            "/var/run/x",
            "/DEV/shm",
            "/usr/bin",
            "/run/drone",
        ] {
            assert!(is_restricted(p), "{p}");
        }
        for p in ["/drone/src", "/var/lib/x", "/etc2", "/go/src"] {
            assert!(!is_restricted(p), "{p}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(60), "1h0m0s");
        assert_eq!(go_duration(90), "1h30m0s");
        assert_eq!(go_duration(30), "30m0s");
        assert_eq!(go_duration(0), "0s");
    }
}

//! Who created an engine's objects: the process, on which host and boot, so
//! that a sweeper can tell "its creator is gone" from "its run is still
//! going" and never removes what a live runner (here or on another host)
//! still uses.
//!
//! Engines record a [`Creator`] on every object they make (Docker labels,
//! Kubernetes annotations) with [`Creator::entries`], read it back with
//! [`Creator::from_entries`], and remove an object only when
//! [`Creator::is_gone`]. This module reads `/proc` of this machine, the one
//! place the vocabulary crate looks at the system: the identity of a
//! process is part of what "who owns this object" means.

/// Host name of the creating process.
pub const LABEL_CREATOR_HOST: &str = "io.runnerkit.creator.host";
/// Boot id of the creating host (a reboot ends every creator).
pub const LABEL_CREATOR_BOOT: &str = "io.runnerkit.creator.boot";
/// PID namespace of the creating process: its pid means something only there
/// (a runner in a container with the host's network shares the host name).
pub const LABEL_CREATOR_PIDNS: &str = "io.runnerkit.creator.pidns";
/// Process id of the creating process.
pub const LABEL_CREATOR_PID: &str = "io.runnerkit.creator.pid";
/// Start time of the creating process (clock ticks since boot), so a reused
/// pid is not mistaken for the creator.
pub const LABEL_CREATOR_STARTED: &str = "io.runnerkit.creator.started";

/// The process that creates objects: this one, or one read back from an
/// object ([`Creator::from_entries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    /// Host name.
    pub host: String,
    /// Boot id of the host.
    pub boot: String,
    /// PID namespace (`pid:[4026531836]`).
    pub pidns: String,
    /// Process id, in that namespace.
    pub pid: u32,
    /// Start time, clock ticks since boot.
    pub started: String,
}

impl Creator {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            host: read_trimmed("/proc/sys/kernel/hostname")
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_default(),
            boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            pidns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pid,
            started: process_start_ticks(pid).unwrap_or_default(),
        }
    }

    /// The creator recorded on an object, if it has every creator entry:
    /// `get` looks a key up in the object's labels or annotations.
    pub fn from_entries<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        Some(Self {
            host: get(LABEL_CREATOR_HOST)?.to_owned(),
            boot: get(LABEL_CREATOR_BOOT)?.to_owned(),
            pidns: get(LABEL_CREATOR_PIDNS)?.to_owned(),
            pid: get(LABEL_CREATOR_PID)?.parse().ok()?,
            started: get(LABEL_CREATOR_STARTED)?.to_owned(),
        })
    }

    /// True only when we can tell for sure that `self` no longer runs: it was
    /// created on this host (`here`), and either the host rebooted since, or
    /// (seen from its PID namespace) its pid is gone or now belongs to a
    /// process started at another time. A creator on another host or in
    /// another PID namespace is never "gone": we cannot see its processes.
    pub fn is_gone(&self, here: &Creator) -> bool {
        if self.host != here.host || self.host.is_empty() {
            return false;
        }
        if !self.boot.is_empty() && !here.boot.is_empty() && self.boot != here.boot {
            return true;
        }
        if self.pidns != here.pidns || self.pidns.is_empty() {
            return false;
        }
        match process_start_ticks(self.pid) {
            None => true,
            Some(started) => started != self.started,
        }
    }

    /// The `(key, value)` pairs that record `self` on an object.
    pub fn entries(&self) -> [(&'static str, String); 5] {
        [
            (LABEL_CREATOR_HOST, self.host.clone()),
            (LABEL_CREATOR_BOOT, self.boot.clone()),
            (LABEL_CREATOR_PIDNS, self.pidns.clone()),
            (LABEL_CREATOR_PID, self.pid.to_string()),
            (LABEL_CREATOR_STARTED, self.started.clone()),
        ]
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks
/// since boot. `None` when there is no such process (or no procfs).
fn process_start_ticks(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may hold spaces; the
    // fields after its closing parenthesis start at field 3.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_process_is_not_gone_and_a_dead_pid_is() {
        let here = Creator::current();
        assert!(!here.host.is_empty());
        assert!(!here.started.is_empty());
        assert!(here.pidns.starts_with("pid:["), "{}", here.pidns);
        assert!(!here.is_gone(&here));
        // A child that has exited and been reaped: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Creator {
            pid,
            ..here.clone()
        };
        assert!(dead.is_gone(&here));
        let restarted = Creator {
            started: "1".into(),
            ..here.clone()
        };
        assert!(restarted.is_gone(&here));
        let elsewhere = Creator {
            host: "another-host".into(),
            pid,
            ..here.clone()
        };
        assert!(!elsewhere.is_gone(&here));
        let other_namespace = Creator {
            pidns: "pid:[1]".into(),
            pid,
            ..here.clone()
        };
        assert!(!other_namespace.is_gone(&here));
        let rebooted = Creator {
            boot: "another-boot".into(),
            ..here.clone()
        };
        assert!(rebooted.is_gone(&here));
    }
}

//! What a killed runner leaves on the host, and its removal.
//!
//! Each stage root holds two small files beside the stage's directories:
//! `runnerkit-owner` (the process that set the stage up, as
//! [`Creator::entries`] spells it) and `runnerkit-groups` (one line per
//! step started: its process group and the start time of its leader, or
//! the range of clock ticks it lies in). A
//! runner killed with `kill -9` runs no `destroy`: its steps' process
//! groups live on and its root stays. [`prune`] finds the roots whose owner
//! is gone, kills what is left of their groups and removes them.
//!
//! A step runs as the runner's user and could write these files, so they
//! are trusted no further than the step itself: only processes of the
//! root's own user are killed, and a recorded group whose leader's pid now
//! belongs to a process started at another time is left alone.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use runnerkit_core::creator::Creator;

use crate::error::Error;

const OWNER_FILE: &str = "runnerkit-owner";
const GROUPS_FILE: &str = "runnerkit-groups";
/// Stage roots are named `runnerkit-<stage>-<pid>-<n>` (`stage::create_root`).
const ROOT_PREFIX: &str = "runnerkit-";

/// Records this process as the owner of the stage root `root`; the log
/// of the stage's process groups, open for [`GroupLog::record`].
pub(crate) fn record_owner(root: &Path) -> io::Result<GroupLog> {
    let mut text = String::new();
    for (key, value) in Creator::current().entries() {
        text.push_str(key);
        text.push('=');
        text.push_str(&value);
        text.push('\n');
    }
    std::fs::write(root.join(OWNER_FILE), text)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(GROUPS_FILE))?;
    Ok(GroupLog(file))
}

/// The open `runnerkit-groups` file of a stage root.
#[derive(Debug)]
pub(crate) struct GroupLog(std::fs::File);

impl GroupLog {
    /// Records the process group `pgid`, whose leader just spawned: one
    /// write of one line, so a crash never leaves half of one. `spawned`
    /// is the range of [`boot_ticks`] read just before and just after the
    /// spawn, which holds the leader's start time; without it the start
    /// time is read from `/proc` (which costs ~75 µs right after a spawn,
    /// while the new process is still loading: a tenth of a short step).
    pub(crate) fn record(&mut self, pgid: i32, spawned: Option<(u64, u64)>) -> io::Result<()> {
        let started = match spawned {
            Some((before, after)) => format!("{before}-{after}"),
            None => process_stat(pgid).map_or_else(String::new, |s| s.started),
        };
        self.0.write_all(format!("{pgid} {started}\n").as_bytes())
    }
}

/// Now, as `/proc/<pid>/stat` counts a process's start time: clock ticks
/// (`sysconf(_SC_CLK_TCK)`) of `CLOCK_BOOTTIME`, rounded down as the kernel
/// rounds them.
pub(crate) fn boot_ticks() -> Option<u64> {
    use nix::time::{ClockId, clock_gettime};
    use nix::unistd::{SysconfVar, sysconf};
    let now = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    let hz = u128::try_from(sysconf(SysconfVar::CLK_TCK).ok()??).ok()?;
    let ns =
        u128::try_from(now.tv_sec()).ok()? * 1_000_000_000 + u128::try_from(now.tv_nsec()).ok()?;
    u64::try_from(ns * hz / 1_000_000_000).ok()
}

/// Whether a leader's start time (as `/proc` shows it) is the recorded one:
/// equal to it, or within the recorded `before-after` range.
fn started_as_recorded(started: &str, recorded: &str) -> bool {
    match recorded.split_once('-') {
        Some((before, after)) => {
            let range = before.parse::<u64>().ok().zip(after.parse::<u64>().ok());
            match (range, started.parse::<u64>()) {
                (Some((before, after)), Ok(started)) => (before..=after).contains(&started),
                _ => false,
            }
        }
        None => started == recorded,
    }
}

/// The roots below `temp_dir` whose owner is gone: what is left of their
/// steps' process groups is killed (SIGKILL), then each root is removed.
/// Returns what was removed, one entry per process group and root
/// (`process group 1234 of /tmp/runnerkit-...`, `directory /tmp/...`).
///
/// Roots of a live runner (this one or another), and directories without
/// an owner record, are left alone.
///
/// # Errors
/// When `temp_dir` cannot be read or a root cannot be removed; the roots
/// before it are removed still.
pub async fn prune(temp_dir: &Path, scripts_in: Option<&Path>) -> Result<Vec<String>, Error> {
    let temp_dir = temp_dir.to_path_buf();
    let scripts_in = scripts_in.map(Path::to_path_buf);
    tokio::task::spawn_blocking(move || prune_blocking(&temp_dir, scripts_in.as_deref()))
        .await
        .unwrap_or_else(|join| {
            Err(Error::Remove {
                path: PathBuf::new(),
                source: io::Error::other(join.to_string()),
            })
        })
}

fn prune_blocking(temp_dir: &Path, scripts_in: Option<&Path>) -> Result<Vec<String>, Error> {
    let entries = match std::fs::read_dir(temp_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Remove {
                path: temp_dir.to_path_buf(),
                source,
            });
        }
    };
    let here = Creator::current();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let root = entry.path();
        let is_root = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(ROOT_PREFIX));
        // Not followed: a symlink named like a root is not ours to enter.
        let Ok(meta) = std::fs::symlink_metadata(&root) else {
            continue;
        };
        if !is_root || !meta.is_dir() {
            continue;
        }
        let Some(owner) = read_owner(&root) else {
            continue;
        };
        if !owner.is_gone(&here) {
            continue;
        }
        for group in read_groups(&root) {
            if kill_group(&group, meta.uid()) {
                removed.push(format!("process group {} of {}", group.0, root.display()));
            }
        }
        // The scripts apart first: a crash between the two leaves the root,
        // which the next prune finds again.
        if let Some(scripts) = scripts_in.zip(root.file_name()).map(|(d, n)| d.join(n)) {
            crate::stage::remove_tree(&scripts)
                .or_else(crate::stage::gone)
                .map_err(|source| Error::Remove {
                    path: scripts.clone(),
                    source,
                })?;
        }
        crate::stage::remove_tree(&root).map_err(|source| Error::Remove {
            path: root.clone(),
            source,
        })?;
        tracing::info!(root = %root.display(), "removed the stage directory of a dead run");
        removed.push(format!("directory {}", root.display()));
    }
    Ok(removed)
}

fn read_owner(root: &Path) -> Option<Creator> {
    let text = std::fs::read_to_string(root.join(OWNER_FILE)).ok()?;
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    Creator::from_entries(|key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
}

/// A recorded group: its id and its leader's start time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group(i32, String);

fn read_groups(root: &Path) -> Vec<Group> {
    let Ok(text) = std::fs::read_to_string(root.join(GROUPS_FILE)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (pgid, started) = line.split_once(' ')?;
            let pgid: i32 = pgid.parse().ok().filter(|p| *p > 1)?;
            Some(Group(pgid, started.to_owned()))
        })
        .collect()
}

/// What `/proc/<pid>/stat` says of a process.
struct Stat {
    /// `Z` for a zombie, which cannot be killed again (init reaps it).
    state: String,
    pgrp: i32,
    started: String,
}

fn process_stat(pid: i32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3; the
    // process group is field 5, the start time field 22.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(Stat {
        state: (*fields.first()?).to_owned(),
        pgrp: fields.get(2)?.parse().ok()?,
        started: (*fields.get(19)?).to_owned(),
    })
}

/// Kills every process of `group` owned by `uid`; true when there was one.
///
/// While any member of a group lives, its id is not given to a new
/// process, so members found by the group id are the recorded step's,
/// unless the leader's pid names a process started at another time (the
/// group ended and the id was reused).
fn kill_group(group: &Group, uid: u32) -> bool {
    let Group(pgid, started) = group;
    if let Some(leader) = process_stat(*pgid)
        && (leader.pgrp != *pgid || !started_as_recorded(&leader.started, started))
    {
        return false;
    }
    let mut killed = false;
    // A member may fork while it is being killed: look again until none is
    // left, a few times at most.
    for _ in 0..5 {
        let members = members_of(*pgid, uid);
        if members.is_empty() {
            break;
        }
        for pid in members {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed = true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    killed
}

fn members_of(pgid: i32, uid: u32) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let owned = std::fs::metadata(e.path()).ok()?.uid() == uid;
            let stat = process_stat(pid)?;
            (owned && stat.pgrp == pgid && stat.state != "Z").then_some(pid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_read_back_and_nonsense_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(GROUPS_FILE),
            "1234 99\nbad line\n1 5\n-3 4\n77 \n",
        )
        .unwrap();
        assert_eq!(
            read_groups(dir.path()),
            [Group(1234, "99".into()), Group(77, String::new())]
        );
    }

    /// `record_owner`, with `owner` in place of this process.
    fn record_owner_as(root: &Path, owner: &Creator) -> GroupLog {
        let groups = record_owner(root).unwrap();
        let text: String = owner
            .entries()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(root.join(OWNER_FILE), text).unwrap();
        groups
    }

    /// A root named as the engine names them, owned by `owner`, with a
    /// process group of `sleep` recorded (and its leader's handle).
    fn planted_root(base: &Path, name: &str, owner: &Creator) -> (PathBuf, std::process::Child) {
        use std::os::unix::process::CommandExt;
        let root = base.join(format!("{ROOT_PREFIX}{name}-1-0"));
        std::fs::create_dir_all(root.join("drone/src")).unwrap();
        let before = boot_ticks().unwrap();
        let child = std::process::Command::new("sh")
            .args(["-c", "sleep 300 & sleep 300"])
            .process_group(0)
            .spawn()
            .unwrap();
        let spawned = (before, boot_ticks().unwrap());
        let pgid = i32::try_from(child.id()).unwrap();
        // Both sleeps are in the group before it is recorded and pruned.
        for _ in 0..100 {
            if members_of(pgid, std::fs::metadata(&root).unwrap().uid()).len() >= 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut groups = record_owner_as(&root, owner);
        groups.record(pgid, Some(spawned)).unwrap();
        (root, child)
    }

    #[tokio::test]
    async fn a_dead_runners_root_and_processes_are_removed_a_live_ones_kept() {
        let base = tempfile::tempdir().unwrap();
        let mut dead = Creator::current();
        dead.started = "0".into();
        let (dead_root, mut dead_child) = planted_root(base.path(), "dead", &dead);
        let (live_root, mut live_child) = planted_root(base.path(), "live", &Creator::current());
        let dead_pgid = i32::try_from(dead_child.id()).unwrap();
        let uid = std::fs::metadata(&live_root).unwrap().uid();

        // Each root's scripts apart, in a directory of its name.
        let memory = tempfile::tempdir().unwrap();
        for root in [&dead_root, &live_root] {
            std::fs::create_dir(memory.path().join(root.file_name().unwrap())).unwrap();
        }
        let removed = prune(base.path(), Some(memory.path())).await.unwrap();
        assert!(!memory.path().join(dead_root.file_name().unwrap()).exists());
        assert!(memory.path().join(live_root.file_name().unwrap()).exists());
        assert_eq!(
            removed,
            [
                format!("process group {dead_pgid} of {}", dead_root.display()),
                format!("directory {}", dead_root.display()),
            ]
        );
        assert!(!dead_root.exists());
        // The leader is our child: reaped here, killed by the prune.
        let status = dead_child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        for _ in 0..100 {
            if members_of(dead_pgid, uid).is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            members_of(dead_pgid, uid).is_empty(),
            "the background sleep died too"
        );

        assert!(live_root.exists(), "a live runner's root is kept");
        assert!(
            live_child.try_wait().unwrap().is_none(),
            "and its processes"
        );
        let live_pgid = i32::try_from(live_child.id()).unwrap();
        let _ = nix::sys::signal::killpg(Pid::from_raw(live_pgid), Signal::SIGKILL);
        live_child.wait().unwrap();
    }

    #[test]
    fn the_recorded_start_time_is_the_kernels() {
        let before = boot_ticks().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let after = boot_ticks().unwrap();
        let started = process_stat(i32::try_from(child.id()).unwrap())
            .unwrap()
            .started;
        assert!(
            started_as_recorded(&started, &format!("{before}-{after}")),
            "/proc says {started}, the spawn was between {before} and {after}"
        );
        assert!(started_as_recorded(&started, &started));
        assert!(!started_as_recorded(
            &started,
            &format!("{}-{}", after + 1, after + 9)
        ));
        assert!(!started_as_recorded(&started, "x-y"));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_reused_leader_pid_is_not_killed() {
        // This process as a "leader" recorded with another start time.
        let me = i32::try_from(std::process::id()).unwrap();
        let group = Group(me, "0".into());
        assert!(!kill_group(&group, 0), "this process lives on");
    }

    #[test]
    fn the_owner_is_read_back_and_this_process_is_not_gone() {
        let dir = tempfile::tempdir().unwrap();
        let _groups = record_owner(dir.path()).unwrap();
        let owner = read_owner(dir.path()).expect("an owner");
        assert_eq!(owner, Creator::current());
        assert!(!owner.is_gone(&Creator::current()));
    }
}

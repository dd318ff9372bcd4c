//! The journal of the stages a runner process holds: one small file per
//! stage under the runner's data directory, written before the accept's
//! answer reaches the poller and removed once the stage's end is reported.
//!
//! A runner killed mid-stage (`kill -9`, a power cut) leaves its files
//! behind. The next runner on the same directory finds them
//! ([`Journal::orphans`]: files whose writing process is gone) and ends
//! those stages on the server ([`StageRunner::recover`](crate::StageRunner::recover)):
//! Drone would otherwise show them `running` forever.
//!
//! Each file holds the stage as the server last acknowledged it, steps and
//! their versions included, since a final update is checked against those
//! versions. It is rewritten (to a temporary file, then renamed, so a crash
//! never leaves half a file) at accept, at the stage's start and after
//! every step update.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use runnerkit_core::creator::Creator;
use runnerkit_core::drone::Stage;
use serde::{Deserialize, Serialize};

/// Why the journal could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("the stage journal at {}", path.display())]
pub struct JournalError {
    /// The directory or file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// What one journal file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The process that holds the stage, as `Creator::entries` spells it.
    creator: HashMap<String, String>,
    /// The stage as the server last acknowledged it.
    stage: Stage,
}

/// The journal directory of one runner; cheap to clone.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    creator: Creator,
}

impl Journal {
    /// Opens (creating, mode 0700) the journal directory `dir`.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, JournalError> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| JournalError {
                path: dir.clone(),
                source,
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                creator: Creator::current(),
            }),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn file(&self, stage_id: i64) -> PathBuf {
        self.inner.dir.join(format!("stage-{stage_id}.json"))
    }

    /// Records that this process holds `stage`; the entry's drop removes
    /// the file again.
    pub(crate) fn hold(&self, stage: &Stage) -> Result<HeldStage, JournalError> {
        let held = HeldStage {
            journal: self.clone(),
            stage_id: stage.id,
            last: Mutex::new(stage.clone()),
            kept: std::sync::atomic::AtomicBool::new(false),
        };
        held.record(stage)?;
        Ok(held)
    }

    /// The stages recorded by runner processes that are gone (killed, or
    /// the machine rebooted), oldest file name first. Files of live
    /// processes, and files that cannot be read as a record, are left
    /// alone (an unreadable one is logged).
    pub fn orphans(&self) -> Vec<OrphanStage> {
        let Ok(entries) = std::fs::read_dir(&self.inner.dir) else {
            return Vec::new();
        };
        let mut found: Vec<OrphanStage> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("stage-"))
            })
            .filter_map(|path| {
                let text = std::fs::read(&path).ok()?;
                match serde_json::from_slice::<Record>(&text) {
                    Ok(record) => Some((path, record)),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), "an unreadable stage journal entry: {e}");
                        None
                    }
                }
            })
            .filter(|(_, record)| {
                let creator = Creator::from_entries(|k| record.creator.get(k).map(String::as_str));
                creator.is_some_and(|c| c.is_gone(&self.inner.creator))
            })
            .map(|(path, record)| OrphanStage {
                path,
                stage: record.stage,
            })
            .collect();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found
    }
}

/// A stage this process holds, journalled until dropped.
#[derive(Debug)]
pub(crate) struct HeldStage {
    journal: Journal,
    stage_id: i64,
    /// The stage last recorded; its lock also serialises the rewrites, so
    /// the last one written is the last one made.
    last: Mutex<Stage>,
    /// Set by [`keep`](Self::keep): the drop leaves the file.
    kept: std::sync::atomic::AtomicBool,
}

impl HeldStage {
    /// Rewrites the entry with `stage` as the server now holds it.
    pub(crate) fn record(&self, stage: &Stage) -> Result<(), JournalError> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.clone_from(stage);
        self.write(&last)
    }

    /// Rewrites the entry with `steps` (as the server acknowledged them)
    /// in place of the recorded stage's.
    pub(crate) fn record_steps(&self, steps: &[runnerkit_core::drone::Step]) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.steps = steps.to_vec();
        if let Err(e) = self.write(&last) {
            tracing::warn!(stage = self.stage_id, "{}", runnerkit_core::error_chain(&e));
        }
    }

    /// Leaves the entry in place when this is dropped: the stage's end did
    /// not reach the server, so the next runner on this journal ends it.
    pub(crate) fn keep(&self) {
        self.kept.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn write(&self, stage: &Stage) -> Result<(), JournalError> {
        let record = Record {
            creator: self
                .journal
                .inner
                .creator
                .entries()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            stage: stage.clone(),
        };
        let path = self.journal.file(self.stage_id);
        let written = write_atomically(&path, &record);
        written.map_err(|source| JournalError { path, source })
    }

    /// [`record`](Self::record), logging a failure: a journal that cannot be
    /// written costs the recovery after a crash, not the stage.
    pub(crate) fn record_or_warn(&self, stage: &Stage) {
        if let Err(e) = self.record(stage) {
            tracing::warn!(stage = self.stage_id, "{}", runnerkit_core::error_chain(&e));
        }
    }
}

impl Drop for HeldStage {
    fn drop(&mut self) {
        if self.kept.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let path = self.journal.file(self.stage_id);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), "cannot remove a stage journal entry: {e}");
        }
    }
}

/// A stage a dead runner process held: [`StageRunner::recover`](crate::StageRunner::recover)
/// ends it on the server, then [`forget`](Self::forget)s it.
#[derive(Debug)]
pub struct OrphanStage {
    path: PathBuf,
    /// The stage as the server last acknowledged it to the dead process.
    pub stage: Stage,
}

impl OrphanStage {
    /// Removes the entry.
    pub fn forget(self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(file = %self.path.display(), "cannot remove a stage journal entry: {e}");
        }
    }
}

fn write_atomically(path: &Path, record: &Record) -> io::Result<()> {
    let body = serde_json::to_vec(record).map_err(io::Error::other)?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(&body)?;
    // No fsync: what a killed process wrote is in the page cache and
    // survives it, and the rename never shows half a record. A power cut
    // may lose the latest record; the stage then ends as Drone's would.
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_stage_is_recorded_until_dropped_and_is_no_orphan_while_we_live() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("journal")).unwrap();
        let mut stage = Stage {
            id: 42,
            version: 3,
            ..Stage::default()
        };
        let held = journal.hold(&stage).unwrap();
        stage.version = 4;
        held.record(&stage).unwrap();
        let file = journal.file(42);
        let record: Record = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(record.stage.version, 4);
        assert!(journal.orphans().is_empty(), "this process is alive");
        drop(held);
        assert!(!file.exists());
    }

    #[test]
    fn an_entry_of_a_dead_process_is_an_orphan() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let mut creator = Creator::current();
        creator.started = "0".into(); // the pid now belongs to another start
        let record = Record {
            creator: creator
                .entries()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            stage: Stage {
                id: 7,
                ..Stage::default()
            },
        };
        write_atomically(&journal.file(7), &record).unwrap();
        std::fs::write(dir.path().join("stage-8.json"), "not json").unwrap();
        let orphans = journal.orphans();
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].stage.id, 7);
        orphans.into_iter().for_each(OrphanStage::forget);
        assert!(!journal.file(7).exists());
        assert!(journal.orphans().is_empty());
    }
}

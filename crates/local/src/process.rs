//! A running step: its process group, its output pipe and its exit.
//!
//! Two tasks are spawned per step when it starts. The *waiter* owns the
//! child, reaps it, kills whatever the step left running in its process
//! group (as a container's processes die with its init) and publishes the
//! exit. The *reader* moves the output pipe's bytes into a channel from the
//! first byte on, so nothing is lost before `tail` is called; once the main
//! process has exited it reads only what is still buffered, so a background
//! process that escaped the group cannot hold the log open.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use runnerkit_core::{EngineError, ExitState, Step};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::launch::Launch;

/// How the main process ended, once it has.
#[derive(Debug, Clone)]
pub(crate) enum Exit {
    /// It exited (or was killed by a signal).
    Exited(ExitState),
    /// The operating system could not tell.
    Lost(String),
}

/// Chunks of output between the reader and `tail`.
pub(crate) type Chunks = mpsc::Receiver<Result<Bytes, EngineError>>;

/// Chunks buffered before backpressure reaches the step's writes.
const CHANNEL_CHUNKS: usize = 256;
/// Bytes read from the pipe at once.
const READ_SIZE: usize = 16 * 1024;
/// After the main process exited: how long the pipe may stay silent before
/// the log is considered complete, and how long reading may go on at most.
const DRAIN_IDLE: Duration = Duration::from_millis(200);
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// After SIGKILL, how long to wait for the main process to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// The process group of a step; signals stop once the group is known dead.
#[derive(Debug)]
pub(crate) struct Group {
    pgid: Pid,
    dead: AtomicBool,
}

impl Group {
    /// Sends `signal` to every process of the group, unless it was already
    /// SIGKILLed after its leader exited: its id may then belong to someone else.
    pub fn signal(&self, signal: Signal) {
        if self.dead.load(Ordering::Acquire) {
            return;
        }
        if let Err(errno) = killpg(self.pgid, signal) {
            tracing::debug!(pgid = self.pgid.as_raw(), %errno, ?signal, "killpg");
        }
    }

    /// Kills whatever is left of the group, for the last time.
    fn finish(&self) {
        self.signal(Signal::SIGKILL);
        self.dead.store(true, Ordering::Release);
    }

    /// The group's id (the main process's pid).
    pub fn id(&self) -> i32 {
        self.pgid.as_raw()
    }
}

/// A step whose process was started.
#[derive(Debug)]
pub(crate) struct Running {
    step: String,
    group: Arc<Group>,
    exit: watch::Receiver<Option<Exit>>,
    output: Mutex<Option<Chunks>>,
}

impl Running {
    /// Starts `launch` of the step `step` in a new process group with
    /// stdout and stderr on one pipe. `stop` ends the reading of its output
    /// (the stage's teardown).
    pub fn spawn(step: &Step, launch: &Launch, stop: CancellationToken) -> Result<Self, Error> {
        let name = step.name.as_str();
        let spawn_err = |source| Error::Spawn {
            step: name.to_owned(),
            program: launch.program.clone(),
            source,
        };
        // One pipe for both streams keeps their relative order as written.
        // The write end goes to the child in blocking mode, as programs expect.
        let (writer, pipe) = pipe::pipe().map_err(spawn_err)?;
        let writer = writer.into_blocking_fd().map_err(spawn_err)?;
        let stderr = writer.try_clone().map_err(spawn_err)?;
        let mut command = tokio::process::Command::new(&launch.program);
        command
            .args(&launch.args)
            .env_clear()
            .envs(launch.environment(step))
            .current_dir(&launch.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        let spawned = command.spawn();
        // The command holds our copies of the pipe's write end: drop them
        // now, or the output would never reach end-of-file.
        drop(command);
        let mut child = spawned.map_err(spawn_err)?;
        let Some(pid) = child.id() else {
            return Err(Error::Lost {
                step: name.to_owned(),
                reason: "the process exited before its id was known".into(),
            });
        };
        let Ok(pgid) = i32::try_from(pid).map(Pid::from_raw) else {
            return Err(Error::Lost {
                step: name.to_owned(),
                reason: format!("process id {pid} out of range"),
            });
        };
        let group = Arc::new(Group {
            pgid,
            dead: AtomicBool::new(false),
        });

        let (exit_tx, exit_rx) = watch::channel(None);
        let waiter_group = Arc::clone(&group);
        tokio::spawn(async move {
            let exit = match child.wait().await {
                Ok(status) => Exit::Exited(exit_state(status)),
                Err(e) => Exit::Lost(e.to_string()),
            };
            waiter_group.finish();
            exit_tx.send_replace(Some(exit));
        });

        let (chunks_tx, chunks_rx) = mpsc::channel(CHANNEL_CHUNKS);
        tokio::spawn(read_output(
            name.to_owned(),
            pipe,
            chunks_tx,
            exit_rx.clone(),
            stop,
        ));

        Ok(Self {
            step: name.to_owned(),
            group,
            exit: exit_rx,
            output: Mutex::new(Some(chunks_rx)),
        })
    }

    /// The output channel, once: `None` when it was already taken.
    pub fn take_output(&self) -> Option<Chunks> {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The step's process group.
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// The exit, as soon as the main process has been reaped.
    pub async fn exited(&self) -> Result<ExitState, Error> {
        let mut exit = self.exit.clone();
        match wait_exit(&mut exit).await {
            Some(Exit::Exited(state)) => Ok(state),
            Some(Exit::Lost(reason)) => Err(Error::Lost {
                step: self.step.clone(),
                reason,
            }),
            None => Err(Error::Lost {
                step: self.step.clone(),
                reason: "the process's waiter ended".into(),
            }),
        }
    }

    /// True once the main process has been reaped.
    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Stops the step: SIGTERM to its group, SIGKILL if it is still there
    /// after `grace`, then waits (bounded) for it to be reaped.
    pub async fn terminate(&self, grace: Duration) {
        if self.has_exited() {
            return;
        }
        self.group.signal(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_ok() {
            return;
        }
        self.group.signal(Signal::SIGKILL);
        if tokio::time::timeout(REAP_WAIT, self.exited())
            .await
            .is_err()
        {
            tracing::warn!(step = %self.step, pgid = self.group.id(), "step still not reaped after SIGKILL");
        }
    }
}

/// The watched exit, once there is one; `None` if the waiter went away.
async fn wait_exit(exit: &mut watch::Receiver<Option<Exit>>) -> Option<Exit> {
    exit.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|seen| seen.clone())
}

fn exit_state(status: ExitStatus) -> ExitState {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(255);
    ExitState::code(code)
}

async fn read_output(
    step: String,
    mut pipe: pipe::Receiver,
    chunks: mpsc::Sender<Result<Bytes, EngineError>>,
    mut exit: watch::Receiver<Option<Exit>>,
    stop: CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut drain_until = None;
    loop {
        buf.reserve(READ_SIZE);
        let read = match drain_until {
            None => tokio::select! {
                biased;
                read = pipe.read_buf(&mut buf) => read,
                _ = wait_exit(&mut exit) => {
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_MAX);
                    continue;
                }
                () = stop.cancelled() => return,
            },
            Some(deadline) => {
                let idle = tokio::time::sleep(DRAIN_IDLE);
                tokio::select! {
                    biased;
                    read = pipe.read_buf(&mut buf) => read,
                    () = idle => return,
                    () = tokio::time::sleep_until(deadline) => return,
                    () = stop.cancelled() => return,
                }
            }
        };
        let item = match read {
            Ok(0) => return,
            Ok(_) => Ok(buf.split().freeze()),
            Err(source) => Err(EngineError::from(Error::Output {
                step: step.clone(),
                source,
            })),
        };
        let failed = item.is_err();
        tokio::select! {
            // A dropped receiver is fine: keep draining so the step never
            // blocks on a full pipe.
            _ = chunks.send(item) => {}
            () = stop.cancelled() => return,
        }
        if failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_become_128_plus_n() {
        assert_eq!(exit_state(ExitStatus::from_raw(3 << 8)).exit_code, 3);
        assert_eq!(exit_state(ExitStatus::from_raw(9)).exit_code, 137);
        assert_eq!(exit_state(ExitStatus::from_raw(15)).exit_code, 143);
    }
}

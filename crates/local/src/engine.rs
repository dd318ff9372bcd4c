//! [`LocalEngine`]: the `Engine` calls, and the per-stage bookkeeping.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use runnerkit_core::{CancellationToken, Engine, EngineError, ExitState, LogStream, Spec, Step};

use crate::error::Error;
use crate::launch::{self, HostEnv, Launch};
use crate::process::{Chunks, Running};
use crate::stage::{self, StageDirs};

/// How long a step may take to exit after SIGTERM before it is SIGKILLed,
/// unless [`LocalEngine::with_kill_grace`] says otherwise.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// Which `HOME` a step gets when its own environment sets none.
///
/// A step's own `HOME` (from its `environment`, or a local run's
/// `--env HOME=...`) always wins, as in Drone's exec runner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HomePolicy {
    /// The stage's own `home/drone`, made by `setup` and removed by
    /// `destroy`: what Drone's exec runner does, so that one build's
    /// dotfiles and caches never leak into the next. The default, for a
    /// runner serving a server.
    #[default]
    PerStage,
    /// The runner's own `HOME`, so the user's caches (cargo, Go, npm) and
    /// configuration are used as in their shell. For a local run on the
    /// user's machine; falls back to the stage home when the runner has no
    /// `HOME`.
    Inherit,
}

/// Runs steps as processes on this machine, for `type: exec` pipelines.
///
/// Per stage, [`setup`](Engine::setup) makes a temporary root (below
/// [`std::env::temp_dir`], or the directory given to
/// [`with_temp_dir`](Self::with_temp_dir)) holding `home/drone` (every
/// step's `HOME` under [`HomePolicy::PerStage`], the default), `drone/src`
/// (the workspace, unless
/// [`Workspace::host_path`](runnerkit_core::Workspace::host_path) names a host
/// directory, which is then used as is and never deleted) and, where there
/// is no memory filesystem, `opt` (script files). Script files go to a
/// directory of the root's name in a memory filesystem when there is one
/// (`XDG_RUNTIME_DIR`, else `/dev/shm`; see
/// [`with_script_dir`](Self::with_script_dir)): on a disk each new file costs
/// a journalled inode, a third of a short step. [`destroy`](Engine::destroy)
/// removes the root and the scripts' directory.
///
/// A step with a [`Script`](runnerkit_core::Script) has it written to a file
/// (mode 0700) and runs `SHELL -e FILE`; any other step runs its `entrypoint`
/// followed by its `command`. A step sees only its own `environment` and
/// `secrets` plus `PATH` and `USER` from the runner (a step's own `PATH` may
/// use `$PATH` and other runner variables), `SHELL`, `HOME` (unless the
/// step sets its own: the stage home, or the runner's with
/// [`with_home`](Self::with_home)`(`[`HomePolicy::Inherit`]`)`) and
/// `DRONE_WORKSPACE` (the real workspace directory). It runs in its
/// working directory (pipeline workspace paths are mapped onto the real
/// workspace), with stdin closed and stdout and stderr on one pipe.
///
/// Each step runs in its own process group. When its main process exits,
/// whatever it left in the group is killed, as in a container; cancelling
/// `wait` or `tail`, and `destroy`, send SIGTERM to the group and SIGKILL
/// after the kill grace. A step killed by a signal reports 128 + the signal.
///
/// No isolation beyond that: steps run as the runner's user, with its
/// rights, on its filesystem. `Step::user`, images, volumes and resource
/// limits are ignored.
///
/// ```no_run
/// use std::sync::Arc;
/// use runnerkit_core::Engine;
/// use runnerkit_local::LocalEngine;
///
/// let engine: Arc<dyn Engine> = Arc::new(LocalEngine::new());
/// assert_eq!(engine.name(), "local");
/// ```
#[derive(Debug)]
pub struct LocalEngine {
    temp_dir: PathBuf,
    /// Where the script files of stages go, apart from their roots.
    scripts_in: Option<PathBuf>,
    kill_grace: Duration,
    home: HomePolicy,
    host: HostEnv,
    stages: Mutex<HashMap<String, Arc<StageEntry>>>,
}

/// One set-up stage.
#[derive(Debug)]
struct StageEntry {
    /// Known as soon as `setup` picked the root, so `destroy` finds it even
    /// when `setup` failed half-way.
    dirs: Mutex<Option<StageDirs>>,
    /// Where each step's process group is recorded, for a prune after a
    /// crash; open from setup to destroy.
    groups: Mutex<Option<crate::orphans::GroupLog>>,
    steps: Mutex<HashMap<String, Arc<StepEntry>>>,
    /// Cancelled by `destroy`: ends every log stream of the stage.
    stop: CancellationToken,
}

/// One created step.
#[derive(Debug)]
struct StepEntry {
    launch: Mutex<Option<Launch>>,
    running: std::sync::OnceLock<Running>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here only moves values in or out, so the data
    // stays consistent even if a panic interrupted one.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for LocalEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalEngine {
    /// An engine with stage roots in the system's temporary directory, the
    /// [`DEFAULT_KILL_GRACE`], and `PATH`/`USER` taken from this process.
    pub fn new() -> Self {
        Self {
            temp_dir: std::env::temp_dir(),
            scripts_in: stage::memory_dir(),
            kill_grace: DEFAULT_KILL_GRACE,
            home: HomePolicy::PerStage,
            host: HostEnv::current(),
            stages: Mutex::new(HashMap::new()),
        }
    }

    /// Kills and removes what stages of dead runners left below this
    /// engine's temporary directory ([`orphans::prune`](crate::orphans::prune)):
    /// their steps' processes and their roots. Stages of live runners,
    /// this one included, are left alone.
    ///
    /// # Errors
    /// When the directory cannot be read or a root cannot be removed.
    pub async fn prune(&self) -> Result<Vec<String>, Error> {
        crate::orphans::prune(&self.temp_dir, self.scripts_in.as_deref()).await
    }

    /// Writes step scripts to a directory of each stage's name below `dir`
    /// (a memory filesystem: by default the user's `XDG_RUNTIME_DIR`, or
    /// else `/dev/shm`), or with `None` to `opt` below the stage's root.
    pub fn with_script_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.scripts_in = dir;
        self
    }

    /// Creates stage roots below `dir` (which must exist) instead.
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = dir.into();
        self
    }

    /// How long a step may take to exit after SIGTERM before it is SIGKILLed.
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Which `HOME` steps get when they set none: the stage's own
    /// ([`HomePolicy::PerStage`], the default) or the runner's.
    pub fn with_home(mut self, home: HomePolicy) -> Self {
        self.home = home;
        self
    }

    /// The real workspace directory of a set-up stage: where its steps run
    /// by default. `None` when `spec` is not set up.
    pub fn workspace_dir(&self, spec: &Spec) -> Option<PathBuf> {
        let stage = lock(&self.stages).get(&spec.id).cloned()?;
        let dirs = lock(&stage.dirs);
        dirs.as_ref().map(|d| d.workspace.clone())
    }

    /// The temporary root of a set-up stage (removed by `destroy`).
    pub fn stage_root(&self, spec: &Spec) -> Option<PathBuf> {
        let stage = lock(&self.stages).get(&spec.id).cloned()?;
        let dirs = lock(&stage.dirs);
        dirs.as_ref().map(|d| d.root.clone())
    }

    fn stage(&self, call: &'static str, spec: &Spec) -> Result<Arc<StageEntry>, Error> {
        lock(&self.stages)
            .get(&spec.id)
            .cloned()
            .ok_or_else(|| Error::OutOfOrder {
                call,
                what: format!("stage {:?}", spec.id),
                reason: "the stage was not set up",
            })
    }

    fn step(
        &self,
        call: &'static str,
        spec: &Spec,
        step: &Step,
    ) -> Result<(Arc<StageEntry>, Arc<StepEntry>), Error> {
        let stage = self.stage(call, spec)?;
        let entry = lock(&stage.steps)
            .get(&step.id)
            .cloned()
            .ok_or_else(|| Error::OutOfOrder {
                call,
                what: format!("step {:?}", step.name),
                reason: "the step was not created",
            })?;
        Ok((stage, entry))
    }

    fn running<'a>(
        call: &'static str,
        step: &Step,
        entry: &'a StepEntry,
    ) -> Result<&'a Running, Error> {
        entry.running.get().ok_or_else(|| Error::OutOfOrder {
            call,
            what: format!("step {:?}", step.name),
            reason: "the step was not started",
        })
    }
}

fn cancelled(call: &'static str, what: String) -> Error {
    Error::Cancelled { call, what }
}

/// Whether the relative `path`, read component by component, ever climbs
/// above where it starts.
fn climbs(path: &str) -> bool {
    let mut depth = 0usize;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

#[async_trait]
impl Engine for LocalEngine {
    fn name(&self) -> &str {
        crate::ENGINE_NAME
    }

    async fn setup(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        if cancel.is_cancelled() {
            return Err(cancelled("setup", format!("stage {:?}", spec.id)).into());
        }
        // The manifest's lint refuses such a path; a spec built in code
        // is checked here, before anything is created below the root.
        if spec.workspace.host_path.is_none() && climbs(&spec.workspace.path) {
            return Err(Error::WorkspaceEscape {
                path: spec.workspace.path.clone(),
            }
            .into());
        }
        let entry = Arc::new(StageEntry {
            dirs: Mutex::new(None),
            groups: Mutex::new(None),
            steps: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
        });
        {
            let mut stages = lock(&self.stages);
            if stages.contains_key(&spec.id) {
                return Err(Error::OutOfOrder {
                    call: "setup",
                    what: format!("stage {:?}", spec.id),
                    reason: "a stage with this id is already set up",
                }
                .into());
            }
            stages.insert(spec.id.clone(), Arc::clone(&entry));
        }
        let host_path = spec.workspace.host_path.as_ref().map(PathBuf::from);
        let layout = |root: &std::path::Path| {
            StageDirs::new(
                root.to_path_buf(),
                host_path.clone(),
                &spec.workspace,
                self.scripts_in.as_deref(),
            )
        };
        let root = stage::create_root(&self.temp_dir, &spec.id, |root| {
            *lock(&entry.dirs) = Some(layout(root));
        })
        .await?;
        // Before anything runs in it: a runner killed from here on leaves a
        // root that `orphans::prune` can tell is a dead run's.
        let groups = crate::orphans::record_owner(&root).map_err(|source| Error::StageDir {
            path: root.clone(),
            source,
        })?;
        *lock(&entry.groups) = Some(groups);
        let dirs = layout(&root).create().await?;
        *lock(&entry.dirs) = Some(dirs.clone());
        tracing::debug!(stage = %spec.id, root = %dirs.root.display(), "stage set up");
        Ok(())
    }

    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        if cancel.is_cancelled() {
            return Err(cancelled("create", format!("step {:?}", step.name)).into());
        }
        let stage = self.stage("create", spec)?;
        let Some(dirs) = lock(&stage.dirs).clone() else {
            return Err(Error::OutOfOrder {
                call: "create",
                what: format!("step {:?}", step.name),
                reason: "the stage's setup did not complete",
            }
            .into());
        };
        let launch = launch::plan(spec, step, &dirs, &self.host, self.home)?;
        if !step.user.is_empty() {
            tracing::warn!(step = %step.name, user = %step.user, "the local engine runs every step as the runner's user");
        }
        // The working directory and the script file, here rather than on
        // the blocking pool: a `mkdir -p` and a small write take
        // microseconds, while each trip to the pool is two thread wake-ups,
        // a visible part of a short step's cost (`benches/host.rs`).
        let in_workspace = launch.cwd.starts_with(&dirs.workspace);
        prepare(
            &step.name,
            &launch.cwd,
            in_workspace,
            launch.script.as_ref(),
        )?;
        let mut steps = lock(&stage.steps);
        if steps.contains_key(&step.id) {
            return Err(Error::OutOfOrder {
                call: "create",
                what: format!("step {:?}", step.name),
                reason: "the step was already created",
            }
            .into());
        }
        steps.insert(
            step.id.clone(),
            Arc::new(StepEntry {
                launch: Mutex::new(Some(launch)),
                running: std::sync::OnceLock::new(),
            }),
        );
        Ok(())
    }

    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        if cancel.is_cancelled() {
            return Err(cancelled("start", format!("step {:?}", step.name)).into());
        }
        let (stage, entry) = self.step("start", spec, step)?;
        if stage.stop.is_cancelled() {
            return Err(Error::OutOfOrder {
                call: "start",
                what: format!("step {:?}", step.name),
                reason: "the stage is being destroyed",
            }
            .into());
        }
        let Some(launch) = lock(&entry.launch).take() else {
            return Err(Error::OutOfOrder {
                call: "start",
                what: format!("step {:?}", step.name),
                reason: "the step was already started",
            }
            .into());
        };
        let before = crate::orphans::boot_ticks();
        let running = Running::spawn(step, &launch, stage.stop.child_token())?;
        let spawned = before.zip(crate::orphans::boot_ticks());
        tracing::debug!(step = %step.name, pgid = running.group().id(), "step started");
        if let Some(groups) = lock(&stage.groups).as_mut()
            && let Err(e) = groups.record(running.group().id(), spawned)
        {
            // Costs the cleanup after a crash only; the step runs.
            tracing::warn!(step = %step.name, "cannot record the step's process group: {e}");
        }
        // `launch` was taken above, so this is the only `set`.
        let _ = entry.running.set(running);
        Ok(())
    }

    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        let (stage, entry) = self.step("tail", spec, step)?;
        let running = Self::running("tail", step, &entry)?;
        let Some(chunks) = running.take_output() else {
            return Err(Error::OutOfOrder {
                call: "tail",
                what: format!("step {:?}", step.name),
                reason: "the step's output was already tailed",
            }
            .into());
        };
        // A cancelled tail stops the step too, whether or not anyone waits
        // for it (detached steps have no `wait`).
        let grace = self.kill_grace;
        let (watch_cancel, watch_entry) = (cancel.clone(), Arc::clone(&entry));
        let stage_stop = stage.stop.clone();
        tokio::spawn(async move {
            let Some(running) = watch_entry.running.get() else {
                return;
            };
            tokio::select! {
                () = watch_cancel.cancelled() => running.terminate(grace).await,
                _ = running.exited() => {}
                () = stage_stop.cancelled() => {}
            }
        });
        let stream = chunk_stream(chunks, stage.stop.clone());
        Ok(Box::pin(stream))
    }

    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        let (_stage, entry) = self.step("wait", spec, step)?;
        let running = Self::running("wait", step, &entry)?;
        tokio::select! {
            biased;
            exit = running.exited() => Ok(exit?),
            () = cancel.cancelled() => {
                running.terminate(self.kill_grace).await;
                if running.has_exited() {
                    Ok(running.exited().await?)
                } else {
                    Err(cancelled("wait", format!("step {:?}", step.name)).into())
                }
            }
        }
    }

    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        let Some(stage) = lock(&self.stages).get(&spec.id).cloned() else {
            return Ok(());
        };
        stage.stop.cancel();
        let steps: Vec<Arc<StepEntry>> = lock(&stage.steps).values().cloned().collect();
        let dirs = lock(&stage.dirs).clone();
        let grace = self.kill_grace;
        let teardown = async {
            let kills = steps
                .iter()
                .filter_map(|s| s.running.get())
                .map(|r| r.terminate(grace));
            futures_util::future::join_all(kills).await;
            match &dirs {
                Some(dirs) => dirs.remove().await,
                None => Ok(()),
            }
        };
        let removed = tokio::select! {
            removed = teardown => removed,
            () = cancel.cancelled() => {
                let mut left: Vec<String> = steps
                    .iter()
                    .filter_map(|s| s.running.get())
                    .filter(|r| !r.has_exited())
                    .map(|r| format!("process group {}", r.group().id()))
                    .collect();
                if let Some(d) = dirs.as_ref().filter(|d| d.root.exists()) {
                    left.push(d.root.display().to_string());
                }
                return Err(Error::TeardownDeadline { stage: spec.id.clone(), left: left.join(", ") }.into());
            }
        };
        removed?;
        lock(&self.stages).remove(&spec.id);
        tracing::debug!(stage = %spec.id, "stage destroyed");
        Ok(())
    }
}

/// The output channel as a stream that ends when the reader is done (the
/// main process exited and its group was killed), or once `stop` (the
/// stage's teardown) fired and what was already read is handed over
/// (bounded by the channel: a step spewing output cannot keep it open).
/// A cancel does not end it: what the step prints while it stops on
/// SIGTERM is part of its log, and the grace bounds how long that lasts.
fn chunk_stream(
    chunks: Chunks,
    stop: CancellationToken,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, EngineError>> + Send {
    futures_util::stream::unfold((chunks, false), move |(mut chunks, ending)| {
        let stop = stop.clone();
        async move {
            if ending {
                return chunks.try_recv().ok().map(|c| (c, (chunks, true)));
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => {}
                chunk = chunks.recv() => return chunk.map(|c| (c, (chunks, false))),
            }
            chunks.try_recv().ok().map(|c| (c, (chunks, true)))
        }
    })
}

/// Makes the step's working directory (a directory of the workspace is
/// made as a container engine would; any other must exist, or the step
/// fails here, naming it, rather than at start as if its program were
/// missing) and writes its script.
fn prepare(
    step: &str,
    cwd: &std::path::Path,
    in_workspace: bool,
    script: Option<&(PathBuf, String)>,
) -> Result<(), Error> {
    let made = if in_workspace {
        std::fs::create_dir_all(cwd)
    } else {
        std::fs::metadata(cwd).and_then(|m| {
            if m.is_dir() {
                Ok(())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "not a directory",
                ))
            }
        })
    };
    made.map_err(|source| Error::WorkingDir {
        step: step.to_owned(),
        path: cwd.to_path_buf(),
        source,
    })?;
    if let Some((file, body)) = script {
        write_script(file, body).map_err(|source| Error::Script {
            step: step.to_owned(),
            path: file.clone(),
            source,
        })?;
    }
    Ok(())
}

fn write_script(file: &std::path::Path, body: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(file)?;
    f.write_all(body.as_bytes())
}

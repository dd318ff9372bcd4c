//! The [`Engine`] contract: what runs a step.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use tokio_util::sync::CancellationToken;

use crate::{ExitState, Spec, Step};

/// A step's output: chunks of bytes (stdout and stderr merged, in the order
/// they were written), ending when the step's output is complete.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<Bytes, EngineError>> + Send>>;

/// Runs the steps of a [`Spec`]: in containers, host processes, VMs, or
/// anything else. The six calls are those of Drone's runtime.
///
/// # Who calls it, in what order
///
/// One engine value serves any number of stages at once: the runtime calls it
/// from many tasks concurrently, so it is `Send + Sync` and keeps per-stage
/// bookkeeping keyed by [`Spec::id`] (and per-step by [`Step::id`]). For one
/// stage, the runtime (`runnerkit-runtime`) calls:
///
/// 1. [`setup`](Engine::setup) once, before anything else.
/// 2. For each step that runs, in this order and each at most once:
///    [`create`](Engine::create) → [`start`](Engine::start) →
///    [`tail`](Engine::tail) → [`wait`](Engine::wait). The stream from `tail`
///    is read while `wait` is pending. Steps that run at the same time (a DAG,
///    detached steps, services) have their calls interleaved and concurrent.
///    A detached step gets `create`, `start` and `tail` but no `wait`; it
///    ends `success` when its stream ends, unless the stream ends with an
///    error: then it ends `error` with that error's text. That is how an
///    engine says a service did not end as services do (e.g. its container
///    was removed from outside); at `destroy` the stream just ends.
///    If a call fails, the later calls for that step are not made.
/// 3. [`destroy`](Engine::destroy) exactly once, last, whatever happened.
///
/// # Cancellation
///
/// Step calls receive the step's token. It is cancelled when the stage is
/// cancelled, times out, is failed fast, or the step's own timeout passes.
/// Then the engine stops the step (a grace period first if it has one),
/// `wait` returns promptly (with the exit state of the stopped step or an
/// error), and the log stream ends. The runtime reports the step `killed`
/// whatever `wait` returns, and stops waiting for an engine that ignores the
/// token after its kill grace.
///
/// # Errors
///
/// An error from `create`, `start`, `tail` or `wait` marks the step `error`
/// (exit code 255, the error's text shown to the user) and fails the stage; an
/// error from `setup` errors the stage before any step runs. The runtime never
/// retries a call. A step that ran and exited non-zero is **not** an error:
/// `wait` returns its [`ExitState`]. A panic in any call is caught and treated
/// as an error.
///
/// # Conformance
///
/// `runnerkit-mock`'s `conformance` module checks an implementation against
/// this contract; run it from your engine's tests.
#[async_trait]
pub trait Engine: Send + Sync {
    /// A short name for logs and error messages, e.g. `"docker"`.
    fn name(&self) -> &str;

    /// Prepares what the whole stage shares: a network, volumes, a workspace.
    ///
    /// Called once per stage, before any other call for `spec`. When it fails,
    /// no step runs and [`destroy`](Engine::destroy) is still called, so
    /// anything created before the failure must be findable from `spec`.
    ///
    /// `cancel` is the stage's token: stop early when it fires.
    ///
    /// The default prepares nothing, for engines whose steps share nothing.
    async fn setup(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        let _ = (spec, cancel);
        Ok(())
    }

    /// Creates the step's process or container without starting it, fetching
    /// what it needs first (an image pull; progress may go to the step's log
    /// through the engine's own means, e.g. prefixed to the `tail` stream).
    ///
    /// The default creates nothing, for engines that make a step's process in
    /// [`start`](Engine::start).
    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let _ = (spec, step, cancel);
        Ok(())
    }

    /// Starts the step created by [`create`](Engine::create). Returns once it
    /// is running, not when it ends.
    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError>;

    /// The step's output from its very first byte, stdout and stderr merged
    /// in write order.
    ///
    /// Called after `start`, yet no output may be lost, even from a step that
    /// printed and exited before `tail` was called: attach before starting,
    /// or buffer. The stream ends once the step has exited and all its output
    /// has been yielded, or when `destroy` runs; an engine must not keep it
    /// open because a background process of the step still holds the output
    /// open after the step's main process ended. When `cancel` fires the
    /// engine stops the step (gracefully where it can: SIGTERM, then SIGKILL
    /// after its kill grace) and should go on yielding what the step prints
    /// while it stops; an engine that cannot may end the stream at once.
    /// The runtime stops reading a drain timeout after `wait` returned.
    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError>;

    /// Waits for the step to exit and says how.
    ///
    /// Must work when the step has already exited. OOM-killed steps set
    /// [`ExitState::oom_killed`]; the runtime reports them with exit code 137.
    /// When `cancel` fires, stop the step and return promptly.
    ///
    /// # Cancel safety
    ///
    /// The runtime may drop this future after `cancel` fired and the kill
    /// grace passed; `destroy` must still clean up.
    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError>;

    /// Removes everything `setup` and `create` made for `spec`: containers or
    /// processes (detached steps and services too, running or not), networks,
    /// volumes, temporary files.
    ///
    /// # Contract
    /// - **Always called**, once per `setup`, whatever happened: success,
    ///   failure, engine error, cancellation, timeout, a panic in a hook. Also
    ///   after a `setup` that failed half-way, so resources may never have
    ///   existed.
    /// - **Idempotent.** A second call, or a call when everything is already
    ///   gone, returns `Ok(())`. "Not found" from the backend is success.
    /// - **Its own deadline.** `cancel` is a fresh token, cancelled when the
    ///   teardown deadline passes; never the stage's (maybe cancelled) token.
    ///   When it fires, stop and report what is left.
    /// - Streams returned by `tail` for this spec may still be open: end them,
    ///   do not wait for them.
    ///
    /// # Errors
    /// Only for resources that may still exist afterwards; name them.
    ///
    /// # Cancel safety
    /// The future may be dropped when the deadline passes; a later `destroy`
    /// must still succeed.
    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError>;
}

#[async_trait]
impl<E: Engine + ?Sized> Engine for std::sync::Arc<E> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn setup(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        (**self).setup(spec, cancel).await
    }
    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        (**self).create(spec, step, cancel).await
    }
    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        (**self).start(spec, step, cancel).await
    }
    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        (**self).tail(spec, step, cancel).await
    }
    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        (**self).wait(spec, step, cancel).await
    }
    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        (**self).destroy(spec, cancel).await
    }
}

/// The few kinds of engine failure callers act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineErrorKind {
    /// Something the step needs does not exist (an image with `pull: never`,
    /// a shell, a working directory).
    NotFound,
    /// The backend cannot be reached (a Docker daemon that is down).
    Unavailable,
    /// The call stopped because its token was cancelled.
    Cancelled,
    /// A protocol violation: a call out of the documented order.
    Misuse,
    /// Anything else.
    Other,
}

/// Why an engine call failed: what failed, on which object, and the cause.
///
/// `Display` prints the engine's name and the message; the cause is exposed
/// as [`source`](std::error::Error::source), not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[error("{engine}: {message}")]
pub struct EngineError {
    engine: String,
    kind: EngineErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl EngineError {
    /// An error of `kind` from the engine named `engine`, saying `message`
    /// (what failed and on which object, e.g. `pull image "x:1"`).
    pub fn new(
        engine: impl Into<String>,
        kind: EngineErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            engine: engine.into(),
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> EngineErrorKind {
        self.kind
    }

    /// The name of the engine that failed.
    pub fn engine(&self) -> &str {
        &self.engine
    }

    /// The message without the engine's name or the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message followed by every cause in the chain, `: `-separated: what
    /// a user should read in a step's error.
    pub fn to_chain_string(&self) -> String {
        crate::error_chain(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_string_reads_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e =
            EngineError::new("local", EngineErrorKind::NotFound, "spawn /bin/zsh").with_source(io);
        assert_eq!(e.to_string(), "local: spawn /bin/zsh");
        assert_eq!(e.to_chain_string(), "local: spawn /bin/zsh: no such file");
        assert_eq!(e.kind(), EngineErrorKind::NotFound);
    }
}

//! [`Recorded`]: any engine, keeping the `Spec` of every stage it sets up.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use runnerkit_core::{CancellationToken, Engine, EngineError, ExitState, LogStream, Spec, Step};

/// Wraps `E` and keeps a copy of every `Spec` given to `setup`, so a test
/// can check what a runner compiled (its engine options, its steps) while
/// the wrapped engine runs it. Every call goes to `E` unchanged.
///
/// Cloning shares the engine and the record.
#[derive(Debug)]
pub struct Recorded<E> {
    inner: Arc<E>,
    specs: Arc<Mutex<Vec<Spec>>>,
}

impl<E> Clone for Recorded<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            specs: self.specs.clone(),
        }
    }
}

impl<E: Engine> Recorded<E> {
    /// Records what `engine` is given.
    pub fn new(engine: E) -> Self {
        Self {
            inner: Arc::new(engine),
            specs: Arc::default(),
        }
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// Every spec set up so far, in order.
    pub fn specs(&self) -> Vec<Spec> {
        self.specs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<E: Engine> Engine for Recorded<E> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn setup(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        self.specs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(spec.clone());
        self.inner.setup(spec, cancel).await
    }

    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        self.inner.create(spec, step, cancel).await
    }

    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        self.inner.start(spec, step, cancel).await
    }

    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        self.inner.tail(spec, step, cancel).await
    }

    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        self.inner.wait(spec, step, cancel).await
    }

    async fn destroy(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        self.inner.destroy(spec, cancel).await
    }
}

//! # runnerkit
//!
//! A Rust SDK for building CI runners that speak Drone's pipeline language
//! (`.drone.yml`) and runner RPC protocol: a runner takes a pipeline, runs its
//! steps in containers, host processes or anything an engine author plugs in —
//! serially or as a DAG — streams their logs with secrets masked, and reports
//! every state change.
//!
//! This facade re-exports the member crates as modules:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`core`] | `runnerkit-core` | `Spec`, `Step`, state, and the `Engine`, `Hook`, `Manager` contracts |
//! | [`runtime`] | `runnerkit-runtime` | `Runtime`: runs a `Spec` on an `Engine` with `Hook`s |
//! | [`manifest`] | `runnerkit-manifest` | `.drone.yml`: parse, envsubst, conditions, lint, compile to a `Spec` |
//! | [`runner`] | `runnerkit-runner` | `Poller`, `StageRunner`, `MemoryManager`: an engine as a CI runner |
//! | `local` | `runnerkit-local` | the host-process engine (feature `local`) |
//! | `docker` | `runnerkit-docker` | the Docker engine (feature `docker`) |
//! | `kube` | `runnerkit-kube` | the Kubernetes engine: one pod per stage (feature `kube`) |
//! | `drone` | `runnerkit-drone` | the `Manager` over Drone's runner RPC (feature `drone`) |
//! | `mock` | `runnerkit-mock` | the scripted `MockEngine` and the engine conformance suite (feature `mock`) |
//! | `cli` | `runnerkit-cli` | `Runner`: a whole runner binary (`exec`, `compile`, `lint`, `daemon`, `prune`) from your pipeline types (feature `cli`) |
//!
//! ## Features
//!
//! | feature | default | brings |
//! |---|---|---|
//! | `local` | yes | `runnerkit::local`: `LocalEngine`, steps as host processes |
//! | `mock` | yes | `runnerkit::mock`: `MockEngine`, `runnerkit::mock::conformance` |
//! | `docker` | no | `runnerkit::docker`: `DockerEngine` over the Docker Engine API |
//! | `kube` | no | `runnerkit::kube`: `KubeEngine`, `type: kubernetes` pipelines on a cluster |
//! | `drone` | no | `runnerkit::drone`: `DroneManager` over Drone's runner RPC v2 |
//! | `cli` | no | `runnerkit::cli`: `Runner` and `RunnerType`, a runner binary in a few lines (and `drone`) |
//!
//! ## Write an engine, run a pipeline on it
//!
//! An engine implements the six calls of [`Engine`]; the
//! [`Runtime`] does the rest (order, DAGs, policies,
//! cancellation, logs, masking, teardown):
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use async_trait::async_trait;
//! use bytes::Bytes;
//! use runnerkit::core::{
//!     CancellationToken, Engine, EngineError, ExitState, LogStream, Spec, Status, Step,
//! };
//! use runnerkit::runtime::Runtime;
//!
//! /// "Runs" a step by echoing its name; remembers what it set up.
//! #[derive(Default)]
//! struct EchoEngine {
//!     live: Mutex<Vec<String>>,
//! }
//!
//! #[async_trait]
//! impl Engine for EchoEngine {
//!     fn name(&self) -> &str { "echo" }
//!     async fn setup(&self, spec: &Spec, _: &CancellationToken) -> Result<(), EngineError> {
//!         self.live.lock().unwrap().push(spec.id.clone());
//!         Ok(())
//!     }
//!     async fn start(&self, _: &Spec, _: &Step, _: &CancellationToken) -> Result<(), EngineError> { Ok(()) }
//!     async fn tail(&self, _: &Spec, step: &Step, _: &CancellationToken) -> Result<LogStream, EngineError> {
//!         let out = Bytes::from(format!("hello from {}\n", step.name));
//!         Ok(Box::pin(futures_util::stream::iter([Ok(out)])))
//!     }
//!     async fn wait(&self, _: &Spec, _: &Step, _: &CancellationToken) -> Result<ExitState, EngineError> {
//!         Ok(ExitState::code(0))
//!     }
//!     async fn destroy(&self, spec: &Spec, _: &CancellationToken) -> Result<(), EngineError> {
//!         self.live.lock().unwrap().retain(|id| id != &spec.id);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let engine = Arc::new(EchoEngine::default());
//! let spec = Spec {
//!     id: "stage-1".into(),
//!     steps: vec![Step::named("build"), Step::named("test")],
//!     ..Spec::default()
//! };
//! let done = Runtime::new(engine.clone())
//!     .run(Arc::new(spec), CancellationToken::new())
//!     .await
//!     .expect("a valid spec");
//! assert_eq!(done.stage.status, Status::Success);
//! assert_eq!(done.steps.len(), 2);
//! assert!(engine.live.lock().unwrap().is_empty(), "destroy ran");
//! # }
//! ```
//!
//! Check an engine against the contract with the conformance suite
//! (`runnerkit::mock::conformance::run_all`), as every engine here does.

#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
#[doc(inline)]
pub use runnerkit_cli as cli;
#[doc(inline)]
pub use runnerkit_core as core;
#[cfg(feature = "docker")]
#[cfg_attr(docsrs, doc(cfg(feature = "docker")))]
#[doc(inline)]
pub use runnerkit_docker as docker;
#[cfg(feature = "drone")]
#[cfg_attr(docsrs, doc(cfg(feature = "drone")))]
#[doc(inline)]
pub use runnerkit_drone as drone;
#[cfg(feature = "kube")]
#[cfg_attr(docsrs, doc(cfg(feature = "kube")))]
#[doc(inline)]
pub use runnerkit_kube as kube;
#[cfg(feature = "local")]
#[cfg_attr(docsrs, doc(cfg(feature = "local")))]
#[doc(inline)]
pub use runnerkit_local as local;
#[doc(inline)]
pub use runnerkit_manifest as manifest;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
#[doc(inline)]
pub use runnerkit_mock as mock;
#[doc(inline)]
pub use runnerkit_runner as runner;
#[doc(inline)]
pub use runnerkit_runtime as runtime;

#[doc(inline)]
pub use runnerkit_core::{Engine, Hook, Manager, Spec, Step};
#[doc(inline)]
pub use runnerkit_runtime::{Runtime, RuntimeConfig};

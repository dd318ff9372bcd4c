//! The vocabulary of runnerkit: types and traits, nothing that runs.
//!
//! This crate does **not** execute pipelines, talk to Docker, parse YAML or
//! speak HTTP. It holds what every other part agrees on, so that an engine
//! author depends on `runnerkit-core` alone:
//!
//! - [`Spec`] and [`Step`]: the compiled, engine-facing pipeline of one stage.
//! - [`Status`], [`StepState`], [`StageState`], [`Snapshot`] and the shared
//!   [`State`] handle hooks read from.
//! - [`Lines`], [`Line`], [`StepLog`] and [`ExitState`]: what a step produces.
//! - The three contracts: [`Engine`] (runs steps), [`Hook`] (observes a
//!   stage), [`Manager`] (talks to the CI server), each documented with who
//!   calls what, when, and what must hold afterwards; and the extension
//!   plugins a runner asks ([`SecretPluginClient`], [`RegistryPluginClient`],
//!   [`EnvironPluginClient`]).
//! - [`drone`]: Drone's runner RPC data model, field for field.
//! - [`settings`]: a runner daemon's settings (`DRONE_RPC_HOST`, ...), each
//!   declared once, for every crate that reads or documents them.
//!
//! The runtime that drives these contracts lives in `runnerkit-runtime`; the
//! scripted test engine and the engine conformance suite in `runnerkit-mock`.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod chain;
pub mod creator;
pub mod drone;
mod engine;
mod hook;
mod line;
mod log;
mod manager;
mod options;
mod plugins;
mod serde_util;
pub mod settings;
mod spec;
mod state;
mod status;

pub use chain::error_chain;
pub use engine::{Engine, EngineError, EngineErrorKind, LogStream};
pub use hook::{Hook, HookError, StepDecision};
pub use line::{ExitState, Line, LineRef, Lines, LinesIter};
pub use log::{LogUpload, StepLog};
pub use manager::{Manager, ManagerError};
pub use options::{EngineOptions, OptionsValue};
pub use plugins::{EnvironPluginClient, PluginVariable, RegistryPluginClient, SecretPluginClient};
pub use spec::{
    Device, ErrorPolicy, Mount, Network, Platform, PullPolicy, RegistryAuth, Resources, RunPolicy,
    Script, Secret, SecretVar, Spec, Step, Volume, VolumeSource, Workspace,
};
pub use state::{Snapshot, StageState, State, StateWriter, StepState};
pub use status::Status;

/// Re-exported so engines and hooks name the same token type as the runtime.
pub use tokio_util::sync::CancellationToken;

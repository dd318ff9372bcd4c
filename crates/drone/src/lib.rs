//! A [`runnerkit_core::Manager`] over Drone's HTTP runner RPC (v2), and the
//! in-process Drone server it is tested against.
//!
//! [`DroneManager`] speaks the protocol of `reference/drone-rpc-protocol.md`
//! to the byte (the `X-Drone-Token` header, JSON bodies ending in `\n`, the
//! base64 config) and does better than Drone's own client where that
//! reference says it falls short: long polls that run out return at once,
//! 409 is a [`Conflict`](runnerkit_core::ManagerError::Conflict), 401/403 are
//! fatal, proxies' 502–504 and broken connections are retried with capped,
//! jittered, interruptible backoff, every attempt has a deadline, and
//! redirects are never followed.
//!
//! ```no_run
//! use runnerkit_core::Manager;
//! use runnerkit_core::drone::Filter;
//! use runnerkit_drone::{DroneConfig, DroneManager};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = DroneManager::new(&DroneConfig::from_env()?)?;
//! manager.ping().await?;
//! let filter = Filter { kind: "pipeline".into(), kind_type: "docker".into(), ..Filter::default() };
//! if let Some(stage) = manager.request(&filter).await? {
//!     let stage = manager.accept(stage.id, "runner-1").await?;
//!     let details = manager.details(stage.id).await?;
//!     println!("{}", String::from_utf8_lossy(&details.config.data));
//! }
//! # Ok(()) }
//! ```
//!
//! [`SecretPlugin`], [`RegistryPlugin`] and [`EnvironPlugin`] are the
//! clients of the extension plugins (`DRONE_SECRET_PLUGIN_ENDPOINT`,
//! `DRONE_REGISTRY_PLUGIN_ENDPOINT`, `DRONE_ENV_PLUGIN_ENDPOINT`, §10 of the
//! reference): signed requests, `aesgcm` answers.
//!
//! # Features
//!
//! | feature | brings |
//! | --- | --- |
//! | `test-server` | [`testing::DroneServer`]: an in-process HTTP server that behaves as a Drone server does (§5 of the reference), with fault injection, for testing runners; [`testing::SecretPluginServer`], [`testing::ListPluginServer`]: secret, registry and environ plugins that verify signatures |
//!
//! TLS is rustls on the `ring` provider, configured per client: the process
//! default provider is neither required nor installed.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod manager;
mod plugins;
mod retry;
mod rpc;
#[cfg(feature = "test-server")]
pub mod testing;
mod tls;

pub use config::DroneConfig;
pub use error::Error;
pub use manager::DroneManager;
pub use plugins::{EnvironPlugin, RegistryPlugin, SecretPlugin};
pub use retry::RetryPolicy;

//! runnerkit's reference [`Engine`](runnerkit_core::Engine): every step of a
//! stage runs in its own Docker container, driven through the Docker Engine
//! API ([bollard]; the `docker` CLI is never run).
//!
//! ```no_run
//! # async fn demo() -> Result<(), runnerkit_docker::Error> {
//! use std::time::Duration;
//! use runnerkit_docker::DockerEngine;
//!
//! // DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, or the local socket.
//! let engine = DockerEngine::connect().await?.with_stop_grace(Duration::from_secs(3));
//! # let _ = engine;
//! # Ok(()) }
//! ```
//!
//! # What a stage becomes
//!
//! | spec | Docker object |
//! | --- | --- |
//! | the stage | a bridge network `rk-<spec id>`; each step joins it with its name as alias |
//! | `workspace` | a volume `rk-<id>-workspace` mounted at `base`, or a bind mount of `host_path` |
//! | `temp` volume | a Docker volume `rk-<id>-vol-<name>` |
//! | `temp` volume, `memory` | a tmpfs in each container that mounts it (mode 0700, `size_limit`) |
//! | `host` volume | a bind mount |
//! | a step | a container `rk-<id>-<step id>`, no TTY |
//!
//! A step with a `script` runs Drone's way: entrypoint `/bin/sh -c`, command
//! `echo "$DRONE_SCRIPT" | <shell>`, the script in `DRONE_SCRIPT`.
//!
//! Every object carries the spec's labels and ours: `io.runnerkit.managed`,
//! `io.runnerkit.stage` (the spec id), `io.runnerkit.step` (containers), and
//! `io.runnerkit.creator.*` (host, boot id, PID namespace, pid and start time of the
//! creating process). `destroy` removes everything labelled with the stage;
//! [`DockerEngine::prune`] removes what processes that are gone left behind.
//!
//! # Images
//!
//! Pull policies follow Drone: `always` pulls before every create; the default
//! pulls first for `latest` and otherwise only when the image is missing;
//! `if-not-exists` pulls only when missing; `never` reports a missing image
//! as a `NotFound` error naming it. Registry credentials of the spec are sent
//! when their host matches the image's (`index.docker.io` is `docker.io`).
//! Pull progress (status changes, not byte counts) opens the step's log.
//!
//! # Output and exit
//!
//! `start` attaches to the container's stdout and stderr before starting it,
//! so a step that prints and exits at once loses nothing; the frames are
//! buffered until `tail` reads them, in the daemon's order. `wait` reads the
//! exit code and the OOM flag from an inspect. A cancelled step is stopped:
//! SIGTERM (to every process of a script step, so its `trap`s run; to the
//! main process otherwise), SIGKILL after the grace
//! ([`DockerEngine::with_stop_grace`]).
//!
//! Design notes and measurements: `docs/docker.md`.
//!
//! # Features
//!
//! | feature | brings |
//! | --- | --- |
//! | `testing` | the `testing` module: `docker_or_skip()`, the `runnerkit-test:busybox` image fixture, `stage_leftovers()` |
//!
//! [bollard]: https://docs.rs/bollard
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod connect;
mod engine;
mod error;
mod image;
mod labels;
mod logs;
mod prune;
mod teardown;
#[cfg(feature = "testing")]
pub mod testing;

pub use connect::{ConnectOptions, DEFAULT_SOCKET};
pub use engine::{DEFAULT_STOP_GRACE, DockerEngine};
pub use error::Error;
pub use labels::{
    LABEL_CREATOR_BOOT, LABEL_CREATOR_HOST, LABEL_CREATOR_PID, LABEL_CREATOR_PIDNS,
    LABEL_CREATOR_STARTED, LABEL_MANAGED, LABEL_STAGE, LABEL_STEP,
};
pub use prune::PruneReport;

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
//! | the stage | a bridge network `rk-<spec id>-<token>`; each step joins it (by id) with its name as alias |
//! | `workspace` | a volume `rk-<id>-<token>-workspace` mounted at `base`, or a bind mount of `host_path` |
//! | `temp` volume | a Docker volume `rk-<id>-<token>-vol-<name>` |
//! | `temp` volume, `memory` | a tmpfs in each container that mounts it (mode 0700, `size_limit`) |
//! | `host` volume | a bind mount |
//! | a step | a container `rk-<id>-<token>-<step id>`, no TTY |
//!
//! The `<token>` is 16 random hex digits drawn per run of the stage: the spec
//! id is guessable, the token is not, so nothing can be created under a
//! stage's names ahead of it. `setup` and `create` still check: a volume
//! Docker hands back without this run's labels, a network or container whose
//! name is taken, is refused (an error naming it), neither used nor removed.
//! Characters outside `[A-Za-z0-9_.-]` become `_`; two volumes whose names
//! then agree (`a/b`, `a_b`) are refused rather than shared.
//!
//! A step with a `script` runs nearly Drone's way: entrypoint `/bin/sh -c`,
//! command `read -r _ || exit 125; echo "$DRONE_SCRIPT" | <shell>`, the
//! script in `DRONE_SCRIPT`. The `read` holds the script until `start`
//! writes a line to the container's stdin.
//!
//! # Pipelining
//!
//! While a step runs, the next steps' containers are made in the background
//! ([`DockerEngine::with_lookahead`], default [`DEFAULT_LOOKAHEAD`]): images
//! made present, containers created, script steps' containers started held,
//! so that a serial stage's next step starts at once. A step a hook amended
//! since is made afresh; a failure while making ahead is left for the step's
//! own calls to meet and report. Ended steps' containers are removed in the
//! background once their output is read; `destroy` waits for all of it.
//!
//! Every object carries the spec's labels and ours: `io.runnerkit.managed`,
//! `io.runnerkit.stage` (the spec id), `io.runnerkit.token` (the run's token),
//! `io.runnerkit.step` (containers), and `io.runnerkit.creator.*` (host, boot
//! id, PID namespace, pid and start time of the creating process). `destroy`
//! removes everything labelled with the stage and the run's token;
//! [`DockerEngine::prune`] removes what processes that are gone left behind.
//! Both remove containers and networks by id, never by name.
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
//! exit code and the OOM flag from an inspect; a container that is gone or
//! being removed (`docker rm -f` from outside) is an error instead: "the
//! container was removed outside runnerkit". A detached step's stream ends
//! with that error when its container is removed before the teardown. A
//! cancelled step is stopped:
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
//! | `testing` | the `testing` module: `docker_or_skip()`, the `runnerkit-test:busybox` image fixture, `stage_leftovers()`, `remove_from_outside()` |
//!
//! [bollard]: https://docs.rs/bollard
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// Needs the test image of `testing`, which the crate's own dev-dependency on
// itself switches on.
#[cfg(all(test, feature = "testing"))]
mod adoption_tests;
mod ahead;
mod compat;
mod config;
mod connect;
mod engine;
mod error;
mod health;
mod image;
mod labels;
mod logs;
mod make;
mod probe;
mod prune;
mod settings;
mod stage;
mod teardown;
#[cfg(feature = "testing")]
pub mod testing;

pub use ahead::DEFAULT_LOOKAHEAD;
pub use connect::{ConnectOptions, DEFAULT_SOCKET};
pub use engine::{DEFAULT_STOP_GRACE, DockerEngine};
pub use error::Error;
pub use health::DEFAULT_HEALTH_TIMEOUT;
pub use labels::{
    LABEL_CREATOR_BOOT, LABEL_CREATOR_HOST, LABEL_CREATOR_PID, LABEL_CREATOR_PIDNS,
    LABEL_CREATOR_STARTED, LABEL_MANAGED, LABEL_STAGE, LABEL_STEP, LABEL_TOKEN,
};
pub use prune::PruneReport;
pub use settings::DockerSettings;

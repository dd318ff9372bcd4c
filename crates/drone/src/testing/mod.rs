//! An in-process Drone server: the reference behaviour runners are tested
//! against.
//!
//! [`DroneServer`] answers the runner RPC v2 on `127.0.0.1` the way a Drone
//! 2.x server does, following §5 of `reference/drone-rpc-protocol.md` call
//! by call, failure answers included:
//!
//! - **Auth** before routing: a server with an empty secret answers 403 to
//!   everything, a missing or wrong `X-Drone-Token` gets 401, both empty.
//!   Unknown paths then get `404 page not found`, wrong methods 405.
//! - **Request** (§5.1): a long poll over a queue of stages, ordered by id,
//!   with Drone's matching (kind/type defaults, platform only when the runner
//!   names one, identical labels), concurrency `limit` and repository
//!   `throttle`. No lease: a pending stage is offered until accepted. 204 once
//!   the long poll ([`ServerConfig::long_poll`], 30 s by default) runs out.
//! - **Accept** (§5.2): 409 if the stage already has a machine.
//! - **Detail** (§5.3): repository, build with all its stages, stage, base64
//!   config, secrets, system, netrc; 500 `sql: no rows in result set` for an
//!   unknown stage.
//! - **Stage updates** (§5.4): before-all inserts the steps (ids assigned,
//!   version 1; a second insert fails with 500 after bumping the stage, as
//!   in Drone); after-all updates every step then the stage with version
//!   checks (409), closes the steps' live streams, schedules downstream
//!   stages and finishes the build.
//! - **Step updates** (§5.5): before opens the step's live stream (even if
//!   the update then fails), after closes it; version-checked (409).
//! - **Batch** appends to the open live stream, else 500 `stream: not found`;
//!   **Upload** stores the body verbatim (§5.6).
//! - **Watch** (§5.7): 200 with no body when the build is cancelled while the
//!   watch is held, 204 when the long poll runs out; a cancel nobody was
//!   watching is not reported later. [`DroneServer::cancel_build`] cancels as
//!   the UI does (stages and steps killed or skipped, steps exit 130).
//! - Answers are one JSON value and `\n`, typed `text/plain` (as Go sniffs
//!   it), with Drone's no-cache headers.
//!
//! Stricter than Drone, to catch client bugs: a PUT whose path id differs
//! from the body's `id`, and a before-all step whose `step_id` is not the
//! stage id, get 500. Unlike Drone's queue, a stage is never handed over with
//! a blocking send under a lock.
//!
//! Faults are injected per [`Endpoint`] with [`DroneServer::inject`] (the
//! next call), [`inject_times`](DroneServer::inject_times) and
//! [`inject_always`](DroneServer::inject_always): any status (204, 409, 500,
//! 502...), a dropped connection, a slow answer. Everything received is kept
//! for inspection: raw [`requests`](DroneServer::requests), accepted
//! [`stage_updates`](DroneServer::stage_updates) and
//! [`step_updates`](DroneServer::step_updates) in order, each step's
//! [`live_log`](DroneServer::live_log) and
//! [`uploaded_log`](DroneServer::uploaded_log).
//!
//! ```
//! use runnerkit_core::Manager;
//! use runnerkit_core::drone::{Details, Filter};
//! use runnerkit_drone::DroneManager;
//! use runnerkit_drone::testing::{DroneServer, Endpoint, Fault, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = DroneServer::start(ServerConfig::default()).await?;
//! let stage_id = server.enqueue(Details::default());
//! let manager = DroneManager::new(&server.client_config())?;
//!
//! server.inject(Endpoint::Accept, Fault::Status(502)); // retried inside
//! let stage = manager.request(&Filter::default()).await?.expect("queued");
//! let stage = manager.accept(stage.id, "runner-1").await?;
//! assert_eq!(stage.id, stage_id);
//! assert_eq!(server.stage(stage_id).unwrap().machine, "runner-1");
//! # Ok(()) }
//! ```
//!
//! The server runs on the Tokio runtime that starts it and stops when the
//! [`DroneServer`] is dropped; under a paused clock its long polls and
//! delays follow the paused clock.

mod faults;
mod http;
mod queue;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use runnerkit_core::CancellationToken;
use runnerkit_core::Status;
use runnerkit_core::drone::{Build, ConfigFile, Details, Line, Repo, Stage, Step, System};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use crate::plugins::fake::{ListAnswer, ListPluginServer, PluginAnswer, SecretPluginServer};
pub use faults::{Endpoint, Fault};

use crate::DroneConfig;
use faults::Faults;
use store::Store;

/// A stage to [`enqueue`](DroneServer::enqueue): the `default` stage (of
/// type `kind_type`) of push build 7 of `octo/hello` on `main`, whose
/// `.drone.yml` is `yaml`. Override fields with struct update syntax.
pub fn push_stage(yaml: &str, kind_type: &str) -> Details {
    Details {
        repository: Repo {
            id: 1,
            namespace: "octo".into(),
            name: "hello".into(),
            slug: "octo/hello".into(),
            default_branch: "main".into(),
            timeout: 60,
            active: true,
            ..Repo::default()
        },
        build: Build {
            number: 7,
            event: "push".into(),
            git_ref: "refs/heads/main".into(),
            source: "main".into(),
            target: "main".into(),
            after: "0123456789abcdef0123456789abcdef01234567".into(),
            status: Status::Pending,
            ..Build::default()
        },
        stage: Stage {
            name: "default".into(),
            kind_type: kind_type.into(),
            ..Stage::default()
        },
        config: ConfigFile {
            data: yaml.as_bytes().to_vec(),
            hash: None,
        },
        ..Details::default()
    }
}

/// Settings of a [`DroneServer`].
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The shared secret (`DRONE_RPC_SECRET`); empty makes the server answer
    /// 403 to everything, as Drone does.
    pub secret: String,
    /// How long Request and Watch are held before 204. Drone: 30 s.
    pub long_poll: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            secret: "runnerkit-test-secret".to_owned(),
            long_poll: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("secret", &"******")
            .field("long_poll", &self.long_poll)
            .finish()
    }
}

impl ServerConfig {
    /// Sets [`secret`](Self::secret).
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = secret.into();
        self
    }

    /// Sets [`long_poll`](Self::long_poll).
    pub fn with_long_poll(mut self, long_poll: Duration) -> Self {
        self.long_poll = long_poll;
        self
    }
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, `PUT`...
    pub method: String,
    /// The path, e.g. `/rpc/v2/stage/42`.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
    /// Every header, names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Bytes,
    /// The status answered; `None` while in progress or when the connection
    /// was dropped without an answer.
    pub status: Option<u16>,
    /// When it arrived, on Tokio's clock (so a paused clock in tests gives
    /// exact, virtual times).
    pub received: tokio::time::Instant,
}

impl RecordedRequest {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the handlers share.
pub(crate) struct Shared {
    secret: String,
    long_poll: Duration,
    store: Mutex<Store>,
    /// Woken whenever a stage may have become (un)available.
    queue_changed: Notify,
    /// Woken whenever a build is cancelled.
    cancelled: Notify,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// A poisoned lock only means a test thread panicked; the data is still
/// what the server holds.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An in-process Drone server; see the [module docs](self) for what it does.
#[derive(Debug)]
pub struct DroneServer {
    address: SocketAddr,
    secret: String,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Drop for DroneServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl DroneServer {
    /// Binds `127.0.0.1` on a free port and serves on the current Tokio
    /// runtime until dropped.
    ///
    /// # Errors
    /// The listening socket could not be opened.
    pub async fn start(config: ServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            secret: config.secret.clone(),
            long_poll: config.long_poll,
            store: Mutex::new(Store::default()),
            queue_changed: Notify::new(),
            cancelled: Notify::new(),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(http::serve(listener, shared.clone(), shutdown.clone()));
        Ok(Self {
            address,
            secret: config.secret,
            shared,
            shutdown,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `127.0.0.1:PORT`, what `DRONE_RPC_HOST` should be.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// The shared secret it expects.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Client settings for this server: `http`, its host and secret, default
    /// timeouts and retries.
    pub fn client_config(&self) -> DroneConfig {
        DroneConfig::new("http", self.host(), self.secret.clone())
    }

    /// Queues a stage as a scheduled build would, and returns its id.
    ///
    /// `details` carries the stage with its repository, build, config,
    /// secrets, system and netrc, served back by Detail. Ids of 0 are
    /// assigned (stage and build); the stage's `build_id` and `repo_id` are
    /// taken from the build and repository; empty `name`, `kind`, `type`,
    /// `os`, `arch` get Drone's defaults (`default`, `pipeline`, `docker`,
    /// `linux`, `amd64`); neither `on_success` nor `on_failure` means
    /// `on_success`; a pending stage with `depends_on` waits on its
    /// dependencies. Several stages of one build share its build id.
    pub fn enqueue(&self, details: Details) -> i64 {
        let id = lock(&self.shared.store).enqueue(details);
        self.shared.queue_changed.notify_waiters();
        id
    }

    /// Queues a stage of a new push build of `runnerkit/test` (repository
    /// id 1, 60-minute timeout, branch `main`) whose pipeline file is `yaml`,
    /// named like the stage: `default` unless `name` is given. Returns the
    /// stage id.
    pub fn enqueue_yaml(&self, yaml: &str, name: Option<&str>) -> i64 {
        self.enqueue(Details {
            repository: Repo {
                id: 1,
                namespace: "runnerkit".to_owned(),
                name: "test".to_owned(),
                slug: "runnerkit/test".to_owned(),
                default_branch: "main".to_owned(),
                visibility: "public".to_owned(),
                active: true,
                timeout: 60,
                ..Repo::default()
            },
            build: Build {
                trigger: "@hook".to_owned(),
                event: "push".to_owned(),
                git_ref: "refs/heads/main".to_owned(),
                source: "main".to_owned(),
                target: "main".to_owned(),
                after: "0000000000000000000000000000000000000001".to_owned(),
                message: "test build".to_owned(),
                author_login: "runnerkit".to_owned(),
                sender: "runnerkit".to_owned(),
                status: Status::Pending,
                ..Build::default()
            },
            stage: Stage {
                name: name.unwrap_or("default").to_owned(),
                ..Stage::default()
            },
            config: ConfigFile {
                data: yaml.as_bytes().to_vec(),
                hash: None,
            },
            secrets: Vec::new(),
            system: System {
                proto: "http".to_owned(),
                host: self.host(),
                ..System::default()
            },
            netrc: None,
        })
    }

    /// Cancels build `build_id` as a user would in the UI (§5.7) and releases
    /// its current watchers. Returns false for an unknown build.
    pub fn cancel_build(&self, build_id: i64) -> bool {
        let found = lock(&self.shared.store).cancel_build(build_id);
        self.shared.cancelled.notify_waiters();
        self.shared.queue_changed.notify_waiters();
        found
    }

    /// The next call to `endpoint` meets `fault`.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        self.inject_times(endpoint, fault, 1);
    }

    /// The next `times` calls to `endpoint` meet `fault`. Counted faults are
    /// used up before standing ones, in the order injected.
    pub fn inject_times(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        lock(&self.shared.faults).arm(endpoint, fault, times);
    }

    /// Every call to `endpoint` meets `fault` until [`clear_faults`](Self::clear_faults).
    /// `inject_always(Endpoint::Any, Fault::DropConnection)` is a server that
    /// went away.
    pub fn inject_always(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.shared.faults).arm_standing(endpoint, fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The server's current copy of a stage, with its steps.
    pub fn stage(&self, stage_id: i64) -> Option<Stage> {
        lock(&self.shared.store).stage_with_steps(stage_id).ok()
    }

    /// The server's current copy of a step.
    pub fn step(&self, step_id: i64) -> Option<Step> {
        lock(&self.shared.store).step(step_id)
    }

    /// The server's current copy of a build (without its stages).
    pub fn build(&self, build_id: i64) -> Option<Build> {
        lock(&self.shared.store).build(build_id)
    }

    /// The bodies of the stage updates the server applied, in order.
    pub fn stage_updates(&self) -> Vec<Stage> {
        lock(&self.shared.store).stage_updates()
    }

    /// The bodies of the step updates the server applied, in order.
    pub fn step_updates(&self) -> Vec<Step> {
        lock(&self.shared.store).step_updates()
    }

    /// The lines Batch appended to step `step_id`'s live stream, in order.
    pub fn live_log(&self, step_id: i64) -> Vec<Line> {
        lock(&self.shared.store).live_log(step_id)
    }

    /// The body of step `step_id`'s last Upload, verbatim.
    pub fn uploaded_log(&self, step_id: i64) -> Option<Bytes> {
        lock(&self.shared.store).uploaded_log(step_id)
    }

    /// Whether step `step_id`'s live stream is open (between its before and
    /// after updates).
    pub fn is_stream_open(&self, step_id: i64) -> bool {
        lock(&self.shared.store).is_stream_open(step_id)
    }
}

//! End-to-end: the built `runnerkit` binary as a runner daemon against the
//! in-process Drone server (`runnerkit_drone::testing::DroneServer`), and
//! `runnerkit prune` against the real Docker daemon when one is reachable.
//!
//! What the daemon did is checked from the server's side (the stage and step
//! updates it applied, the logs it received) and from its HTTP endpoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use runnerkit_core::Status;
use runnerkit_core::drone::{Details, Stage};
use runnerkit_drone::testing::{DroneServer, ServerConfig, push_stage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_runnerkit");

/// Long enough for a debug build on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- fixtures

const PASSES: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: greet
  commands:
  - echo hello from the daemon
- name: check
  commands:
  - test \"$DRONE_STAGE_MACHINE\" = file-runner
  - echo machine ok
";

const SLOW: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: slow
  commands:
  - echo started
  - sleep 3
  - echo finished
";

const ENDLESS: &str = "\
kind: pipeline
type: exec
name: default
clone:
  disable: true
steps:
- name: endless
  commands:
  - echo started
  - sleep 300
";

async fn server() -> DroneServer {
    DroneServer::start(ServerConfig::default().with_long_poll(Duration::from_secs(5)))
        .await
        .unwrap()
}

/// A stage of a push build of `octo/hello` running the `default` pipeline of
/// `yaml` (type `exec`).
fn exec_stage(yaml: &str) -> Details {
    push_stage(yaml, "exec")
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rk-daemon-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Credentials for the stages page, which is off without them.
const UI_CREDENTIALS: &[(&str, &str)] = &[
    ("DRONE_UI_USERNAME", "admin"),
    ("DRONE_UI_PASSWORD", "ui-password"),
];
/// `UI_CREDENTIALS` as basic auth's `user:password`.
const UI_LOGIN: &str = "admin:ui-password";

/// `runnerkit` with a clean environment (no `DRONE_*` from the caller's),
/// serving HTTP on a free port.
fn runnerkit(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().env("NO_COLOR", "1");
    for name in ["PATH", "HOME", "DOCKER_HOST", "KUBECONFIG"] {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.env("DRONE_HTTP_BIND", "127.0.0.1:0");
    // Each daemon its own journal: one killed by a test's end must not be
    // recovered by another test's daemon.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let data = std::env::temp_dir().join(format!("rk-daemon-data-{}-{n}", std::process::id()));
    cmd.env("RUNNERKIT_DATA_DIR", data);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a command that ends by itself (`ping`, `prune`).
async fn run(mut cmd: Command) -> Ran {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Ran {
        code: out.status.code().expect("exited by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A running daemon; killed when dropped if still running.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<String>>,
    address: String,
}

impl Daemon {
    /// Starts `runnerkit daemon --type exec` for `server` and waits until
    /// its HTTP endpoint is up.
    async fn start(server: &DroneServer, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_typed(server, "exec", args, env).await
    }

    /// As [`start`](Self::start), with engine type `kind`.
    async fn start_typed(
        server: &DroneServer,
        kind: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut all_args = vec!["daemon", "--type", kind];
        all_args.extend_from_slice(args);
        let host = server.host();
        let mut all_env = vec![
            ("DRONE_RPC_HOST", host.as_str()),
            ("DRONE_RPC_SECRET", server.secret()),
        ];
        all_env.extend_from_slice(env);
        let mut child = runnerkit(&all_args, &all_env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut daemon = Self {
            child,
            stderr,
            address: String::new(),
        };
        let found = wait_for("the HTTP endpoint", || {
            let text = daemon.stderr();
            text.lines()
                .find(|l| l.contains("serving /healthz"))
                .and_then(|l| l.split("http://").nth(1))
                .map(|a| a.trim().to_owned())
        })
        .await;
        match found {
            Some(address) => daemon.address = address,
            None => panic!("the daemon did not start:\n{}", daemon.stderr()),
        }
        daemon
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the daemon to exit; its exit code.
    async fn exit_code(&mut self) -> i32 {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited by a signal");
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the daemon did not exit:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str, auth: Option<&str>) -> Answer {
        get(&self.address, path, auth).await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `probe` until it gives a value or [`PATIENCE`] runs out.
async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if started.elapsed() > PATIENCE {
            eprintln!("gave up waiting for {what}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until stage `id` is done on the server; its final status.
async fn stage_done(server: &DroneServer, id: i64, daemon: &Daemon) -> Stage {
    wait_for("the stage to end", || {
        server.stage(id).filter(|s| s.status.is_done())
    })
    .await
    .unwrap_or_else(|| panic!("stage {id} did not end; daemon said:\n{}", daemon.stderr()))
}

/// Waits until a step of stage `id` is reported running.
async fn step_running(server: &DroneServer, id: i64, daemon: &Daemon) {
    wait_for("a step to run", || {
        server
            .step_updates()
            .iter()
            .any(|s| s.step_id == id && s.status == Status::Running)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no step of {id} ran; daemon said:\n{}", daemon.stderr()));
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// A minimal HTTP/1.1 GET with `Connection: close`.
async fn get(address: &str, path: &str, basic: Option<&str>) -> Answer {
    use base64::Engine as _;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let auth = basic.map_or_else(String::new, |user_pass| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        format!("Authorization: Basic {encoded}\r\n")
    });
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The value of metric line `name` (labels included), e.g.
/// `runnerkit_stages_total{status="success"}`.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

// ---------------------------------------------------------------- daemon

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_daemon_runs_a_stage_reports_it_and_stops_on_sigterm() {
    let server = server().await;
    let id = server.enqueue(exec_stage(PASSES));
    // The name comes from the ENVFILE; its wrong secret loses to the
    // process environment's.
    let envfile = TempFile::new(
        "runner.env",
        "DRONE_RUNNER_NAME=file-runner\nDRONE_RPC_SECRET=not-the-secret\nDRONE_RUNNER_CAPACITY=1\n",
    );
    let mut daemon = Daemon::start(&server, &[envfile.0.to_str().unwrap()], UI_CREDENTIALS).await;

    let stage = stage_done(&server, id, &daemon).await;
    assert_eq!(stage.status, Status::Success, "{}", daemon.stderr());
    assert_eq!(stage.machine, "file-runner");
    let updates: Vec<(String, Status)> = server
        .step_updates()
        .into_iter()
        .filter(|s| s.step_id == id)
        .map(|s| (s.name, s.status))
        .collect();
    assert_eq!(
        updates,
        [
            ("greet".to_owned(), Status::Running),
            ("greet".to_owned(), Status::Success),
            ("check".to_owned(), Status::Running),
            ("check".to_owned(), Status::Success),
        ]
    );
    let greet = stage.steps.iter().find(|s| s.name == "greet").unwrap();
    let log = server.uploaded_log(greet.id).expect("the log was uploaded");
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("hello from the daemon"), "{log}");

    let health = daemon.get("/healthz", None).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    // The poller counts the stage a moment after the server heard of its end.
    let mut metrics = daemon.get("/metrics", None).await;
    for _ in 0..100 {
        if metric(&metrics.body, "runnerkit_stages_total{status=\"success\"}") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = daemon.get("/metrics", None).await;
    }
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{:?}",
        metrics.headers
    );
    let body = &metrics.body;
    assert_eq!(
        metric(body, "runnerkit_stages_total{status=\"success\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(body, "runnerkit_stages_running"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        metric(body, "runnerkit_poll_errors_total"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(metric(body, "runnerkit_capacity"), Some(1.0), "{body}");
    assert_eq!(
        metric(body, "runnerkit_steps_total{status=\"success\"}"),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        metric(body, "runnerkit_step_duration_seconds_count"),
        Some(2.0),
        "{body}"
    );
    let page = daemon.get("/", Some(UI_LOGIN)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("octo/hello"), "{}", page.body);
    assert!(
        page.body
            .contains("<span class=\"success\">greet success</span>"),
        "{}",
        page.body
    );

    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    let said = daemon.stderr();
    assert!(said.contains("SIGTERM"), "{said}");
    assert!(
        !said.contains(server.secret()),
        "the secret was logged:\n{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_stage_finish() {
    let server = server().await;
    let id = server.enqueue(exec_stage(SLOW));
    let mut daemon = Daemon::start(&server, &[], &[]).await;
    step_running(&server, id, &daemon).await;
    daemon.signal(Signal::SIGTERM);
    wait_for("the daemon to see the signal", || {
        daemon.stderr().contains("SIGTERM:").then_some(())
    })
    .await
    .expect("the daemon logs the signal");
    let queued_after = server.enqueue(exec_stage(PASSES));

    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    let stage = server.stage(id).unwrap();
    assert_eq!(stage.status, Status::Success, "drained to its end");
    let log = server.uploaded_log(stage.steps[0].id).expect("uploaded");
    assert!(String::from_utf8_lossy(&log).contains("finished"));
    assert_eq!(
        server.stage(queued_after).unwrap().status,
        Status::Pending,
        "no stage is taken after SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_after_the_drain_timeout_kills_what_remains() {
    let server = server().await;
    let id = server.enqueue(exec_stage(ENDLESS));
    let mut daemon = Daemon::start(&server, &["--drain-timeout", "1s"], UI_CREDENTIALS).await;
    step_running(&server, id, &daemon).await;
    // The server heard of the step a moment before the daemon's page did.
    let mut page = String::new();
    for _ in 0..100 {
        page = daemon.get("/", Some(UI_LOGIN)).await.body;
        if page.contains("<span class=\"running\">endless running</span>") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let running = page.split("<h2>Recently done</h2>").next().unwrap();
    assert!(
        running.contains("<span class=\"running\">endless running</span>"),
        "{page}"
    );
    let metrics = daemon.get("/metrics", None).await.body;
    assert_eq!(
        metric(&metrics, "runnerkit_stages_running"),
        Some(1.0),
        "{metrics}"
    );
    daemon.signal(Signal::SIGINT);

    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    let stage = server.stage(id).unwrap();
    assert_eq!(stage.status, Status::Killed, "{}", daemon.stderr());
    assert_eq!(stage.steps[0].status, Status::Killed);
    assert!(
        !server.is_stream_open(stage.steps[0].id),
        "the killed step was closed"
    );
    assert!(daemon.stderr().contains("killed=1"), "{}", daemon.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_cancels_the_running_stage_now() {
    let server = server().await;
    let id = server.enqueue(exec_stage(ENDLESS));
    let mut daemon = Daemon::start(&server, &["--drain-timeout", "1h"], &[]).await;
    step_running(&server, id, &daemon).await;
    daemon.signal(Signal::SIGTERM);
    wait_for("the daemon to see the signal", || {
        daemon.stderr().contains("SIGTERM:").then_some(())
    })
    .await
    .expect("the daemon logs the signal");
    daemon.signal(Signal::SIGTERM);

    // Within the Daemon's own exit deadline, far below the hour of drain.
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    let said = daemon.stderr();
    assert!(said.contains("cancelling the running stages now"), "{said}");
    let stage = server.stage(id).unwrap();
    assert_eq!(stage.status, Status::Killed, "{said}");
    assert_eq!(stage.steps[0].status, Status::Killed);
}

/// Without credentials the stages page (repositories, branches, errors) is
/// not served at all; `/healthz` and `/metrics` are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_off_without_credentials() {
    let server = server().await;
    let daemon = Daemon::start(&server, &[], &[]).await;
    let page = daemon.get("/", None).await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("DRONE_UI_USERNAME"), "{}", page.body);
    assert_eq!(daemon.get("/healthz", None).await.status, 200);
    assert_eq!(daemon.get("/metrics", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_needs_basic_auth_when_configured() {
    let server = server().await;
    let daemon = Daemon::start(
        &server,
        &["--ui-realm", "CI runners"],
        &[
            ("DRONE_UI_USERNAME", "admin"),
            ("DRONE_UI_PASSWORD", "correct-horse"),
        ],
    )
    .await;
    let refused = daemon.get("/", None).await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.headers["www-authenticate"].starts_with("Basic realm=\"CI runners\""),
        "{:?}",
        refused.headers
    );
    assert_eq!(daemon.get("/", Some("admin:wrong")).await.status, 401);
    let page = daemon.get("/", Some("admin:correct-horse")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No stage is running."), "{}", page.body);
    assert_eq!(
        daemon.get("/healthz", None).await.status,
        200,
        "always open"
    );
    assert_eq!(
        daemon.get("/metrics", None).await.status,
        200,
        "always open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logging_shows_the_settings_but_no_secret() {
    let server = server().await;
    let mut daemon = Daemon::start(
        &server,
        &["--debug"],
        &[
            ("DRONE_RUNNER_SECRETS", "token:hunter2-value"),
            ("DRONE_RUNNER_ENVIRON", "GREETING:environ-value"),
            ("DRONE_UI_USERNAME", "admin"),
            ("DRONE_UI_PASSWORD", "ui-password-value"),
        ],
    )
    .await;
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let said = daemon.stderr();
    assert!(said.contains(" DEBUG "), "{said}");
    assert!(said.contains("settings"), "{said}");
    for secret in [
        server.secret(),
        "hunter2-value",
        "environ-value",
        "ui-password-value",
    ] {
        assert!(!said.contains(secret), "{secret} was logged:\n{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_secret_stops_the_daemon_with_one_line() {
    let server = server().await;
    let host = server.host();
    let r = run(runnerkit(
        &["daemon", "--type", "exec"],
        &[
            ("DRONE_RPC_HOST", &host),
            ("DRONE_RPC_SECRET", "wrong-secret-value"),
        ],
    ))
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "error: the Drone server at http://{host} refused the secret (HTTP 401): check DRONE_RPC_SECRET"
        )
    );
    assert!(!r.stderr.contains("wrong-secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_server_settings_are_named() {
    let r = run(runnerkit(
        &["daemon", "--type", "exec"],
        &[("DRONE_RPC_SECRET", "s")],
    ))
    .await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: DRONE_RPC_HOST is not set: give the Drone server's address (in the environment, the ENVFILE or --rpc-host)\n"
    );
    let r = run(runnerkit(&["ping", "--rpc-host", "127.0.0.1:9"], &[])).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: DRONE_RPC_SECRET is not set"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- dry run

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_says_in_one_line_whether_the_server_takes_the_secret() {
    let server = server().await;
    let host = server.host();
    for args in [&["daemon", "--dry-run"][..], &["ping"][..]] {
        let right = run(runnerkit(
            args,
            &[
                ("DRONE_RPC_HOST", &host),
                ("DRONE_RPC_SECRET", server.secret()),
            ],
        ))
        .await;
        assert_eq!(right.code, 0, "{args:?}: {}", right.stderr);
        assert_eq!(
            right.stdout,
            format!("ok: the Drone server at http://{host} answers and accepts the secret\n")
        );

        let wrong = run(runnerkit(
            args,
            &[("DRONE_RPC_HOST", &host), ("DRONE_RPC_SECRET", "hunter2")],
        ))
        .await;
        assert_eq!(wrong.code, 1, "{args:?}");
        assert_eq!(
            wrong.stderr,
            format!(
                "error: the Drone server at http://{host} refused the secret (HTTP 401): check DRONE_RPC_SECRET\n"
            )
        );
        assert!(wrong.stdout.is_empty());
    }
    let pings = server
        .requests()
        .iter()
        .filter(|r| r.path == "/rpc/v2/ping")
        .count();
    assert_eq!(pings, 4, "one ping per check, nothing else");
    assert_eq!(server.requests().len(), 4);

    let r = run(runnerkit(
        &["ping"],
        &[("DRONE_RPC_HOST", "127.0.0.1:9"), ("DRONE_RPC_SECRET", "s")],
    ))
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("error: cannot reach the Drone server at http://127.0.0.1:9: "),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envfile_is_read_and_the_process_environment_wins() {
    let server = server().await;
    let host = server.host();
    let good = TempFile::new(
        "good.env",
        &format!(
            "# a runner\nDRONE_RPC_HOST={host}\nexport DRONE_RPC_SECRET='{}'\n",
            server.secret()
        ),
    );
    let bad = TempFile::new(
        "bad.env",
        &format!("DRONE_RPC_HOST={host}\nDRONE_RPC_SECRET=wrong\n"),
    );
    let path = |f: &TempFile| f.0.to_str().unwrap().to_owned();

    let r = run(runnerkit(&["ping", &path(&good)], &[])).await;
    assert_eq!(r.code, 0, "the file alone: {}", r.stderr);
    let r = run(runnerkit(
        &["ping", &path(&bad)],
        &[("DRONE_RPC_SECRET", server.secret())],
    ))
    .await;
    assert_eq!(r.code, 0, "the environment wins: {}", r.stderr);
    let r = run(runnerkit(
        &["ping", &path(&good)],
        &[("DRONE_RPC_SECRET", "wrong")],
    ))
    .await;
    assert_eq!(r.code, 1, "the environment wins, even when wrong");
    let r = run(runnerkit(
        &["ping", &path(&bad), "--rpc-secret", server.secret()],
        &[("DRONE_RPC_SECRET", "wrong")],
    ))
    .await;
    assert_eq!(r.code, 0, "a flag wins over both: {}", r.stderr);

    let broken = TempFile::new("broken.env", "DRONE_RPC_HOST=h\nnot a setting\n");
    let r = run(runnerkit(&["ping", &path(&broken)], &[])).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
}

// ---------------------------------------------------------------- prune

/// Tests that prune (the daemon at start, `runnerkit prune`) take turns: one
/// would remove the other's orphan first.
static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's creator labels, with `pid` (and, for a dead one, a start
/// time no process has) in place of its own.
fn creator_labels(pid: u32, started: &str) -> HashMap<String, String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let pidns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    HashMap::from([
        (
            runnerkit_docker::LABEL_MANAGED.to_owned(),
            "true".to_owned(),
        ),
        (
            runnerkit_docker::LABEL_STAGE.to_owned(),
            format!("prune-test-{}", std::process::id()),
        ),
        (
            runnerkit_docker::LABEL_CREATOR_HOST.to_owned(),
            read("/proc/sys/kernel/hostname"),
        ),
        (
            runnerkit_docker::LABEL_CREATOR_BOOT.to_owned(),
            read("/proc/sys/kernel/random/boot_id"),
        ),
        (runnerkit_docker::LABEL_CREATOR_PIDNS.to_owned(), pidns),
        (
            runnerkit_docker::LABEL_CREATOR_PID.to_owned(),
            pid.to_string(),
        ),
        (
            runnerkit_docker::LABEL_CREATOR_STARTED.to_owned(),
            started.to_owned(),
        ),
    ])
}

/// Field 22 of `/proc/PID/stat`: when the process started.
fn start_ticks(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name.split_whitespace().nth(19).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_orphaned_containers_only() {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};

    // Prints why it skips, or fails with RUNNERKIT_REQUIRE_DOCKER=1.
    let _turn = DOCKER.lock().await;
    let Some(_engine) = runnerkit_docker::testing::docker_or_skip().await else {
        return;
    };
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let here = std::process::id();
    let tag = format!("rk-prune-cli-{here}");
    let containers = [
        (format!("{tag}-orphan"), Some(creator_labels(dead, "1"))),
        (
            format!("{tag}-live"),
            Some(creator_labels(here, &start_ticks(here))),
        ),
        (format!("{tag}-foreign"), None),
    ];
    for (name, labels) in &containers {
        docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(name).build()),
                ContainerCreateBody {
                    image: Some(runnerkit_docker::testing::TEST_IMAGE.to_owned()),
                    cmd: Some(vec!["true".to_owned()]),
                    labels: labels.clone(),
                    ..ContainerCreateBody::default()
                },
            )
            .await
            .unwrap();
    }
    let r = run(runnerkit(&["prune"], &[])).await;
    let exists = |name: String| {
        let docker = docker.clone();
        async move { docker.inspect_container(&name, None).await.is_ok() }
    };
    let (orphan, live, foreign) = (
        exists(containers[0].0.clone()).await,
        exists(containers[1].0.clone()).await,
        exists(containers[2].0.clone()).await,
    );
    for (name, _) in &containers {
        let _ = docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
    }
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l == format!("removed container {}", containers[0].0)),
        "{}",
        r.stdout
    );
    assert!(!orphan, "the orphan is gone");
    assert!(live, "a container of a running creator stays");
    assert!(foreign, "a container runnerkit did not create stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_daemon_prunes_at_start_and_runs_a_docker_stage() {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};

    let _turn = DOCKER.lock().await;
    let Some(_engine) = runnerkit_docker::testing::docker_or_skip().await else {
        return;
    };
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let orphan = format!("rk-daemon-cli-{}-orphan", std::process::id());
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&orphan).build()),
            ContainerCreateBody {
                image: Some(runnerkit_docker::testing::TEST_IMAGE.to_owned()),
                cmd: Some(vec!["true".to_owned()]),
                labels: Some(creator_labels(dead, "1")),
                ..ContainerCreateBody::default()
            },
        )
        .await
        .unwrap();

    let server = server().await;
    let yaml = format!(
        "kind: pipeline\ntype: docker\nname: default\nclone:\n  disable: true\nsteps:\n\
         - name: inside\n  image: {}\n  pull: if-not-exists\n  commands:\n  - echo in a container\n",
        runnerkit_docker::testing::TEST_IMAGE
    );
    let mut details = exec_stage(&yaml);
    details.stage.kind_type = "docker".into();
    let id = server.enqueue(details);
    let mut daemon = Daemon::start_typed(&server, "docker", &[], &[]).await;
    let pruned = docker.inspect_container(&orphan, None).await.is_err();
    if !pruned {
        let _ = docker
            .remove_container(
                &orphan,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
    }
    assert!(
        pruned,
        "the orphan was pruned at start:\n{}",
        daemon.stderr()
    );

    let stage = stage_done(&server, id, &daemon).await;
    assert_eq!(stage.status, Status::Success, "{}", daemon.stderr());
    let log = server.uploaded_log(stage.steps[0].id).expect("uploaded");
    assert!(String::from_utf8_lossy(&log).contains("in a container"));
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_daemon_runs_a_kubernetes_stage() {
    if std::env::var_os("KUBECONFIG").is_none() {
        let require = std::env::var("RUNNERKIT_REQUIRE_KUBE").is_ok_and(|v| v == "1");
        assert!(
            !require,
            "RUNNERKIT_REQUIRE_KUBE=1 but KUBECONFIG is not set"
        );
        eprintln!("skipped: no KUBECONFIG (start the test cluster with .ci/kube.sh)");
        return;
    }
    let server = server().await;
    let yaml = "kind: pipeline\ntype: kubernetes\nname: default\nclone:\n  disable: true\nsteps:\n\
         - name: in-a-pod\n  image: runnerkit-kube/busybox:1\n  pull: never\n  commands:\n  - echo in a pod named $HOSTNAME\n\
         - name: after\n  image: runnerkit-kube/busybox:1\n  pull: never\n  commands:\n  - exit 78\n\
         - name: skipped-by-78\n  image: runnerkit-kube/busybox:1\n  pull: never\n  commands:\n  - echo never\n";
    let mut details = exec_stage(yaml);
    details.stage.kind_type = "kubernetes".into();
    let id = server.enqueue(details);
    let env = [("RUNNERKIT_KUBE_DNS_POLICY", "Default")];
    let mut daemon = Daemon::start_typed(&server, "kubernetes", &[], &env).await;
    let stage = stage_done(&server, id, &daemon).await;
    assert_eq!(stage.status, Status::Success, "{}", daemon.stderr());
    let log = server.uploaded_log(stage.steps[0].id).expect("uploaded");
    assert!(
        String::from_utf8_lossy(&log).contains("in a pod named rk-"),
        "{}",
        String::from_utf8_lossy(&log)
    );
    let statuses: Vec<Status> = stage.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [Status::Success, Status::Success, Status::Skipped]
    );
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_without_a_docker_daemon_fails_with_one_line() {
    let r = run(runnerkit(
        &["prune"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    ))
    .await;
    assert_eq!(r.code, 1);
    // One line for Docker; where no cluster is configured, the Kubernetes
    // engine's prune says so in a line of its own.
    let docker: Vec<&str> = r.stderr.lines().filter(|l| l.contains("Docker")).collect();
    assert_eq!(docker.len(), 1, "{}", r.stderr);
    assert!(
        docker[0].starts_with("error: the Docker engine is not available"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.lines().all(|l| l.starts_with("error: ")),
        "{}",
        r.stderr
    );
}

/// `kill -9` of the daemon mid-stage, then a restart on the same data and
/// temporary directories: the step's processes and the stage directory of
/// the dead run are gone, and the server shows the stage ended `error`
/// ("the runner restarted"), not `running` forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_kill_9_cleans_up_and_ends_the_held_stage() {
    let data = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("background.pid");
    let yaml = format!(
        "kind: pipeline\ntype: exec\nname: default\nclone:\n  disable: true\nsteps:\n- name: endless\n  commands:\n  - sleep 300 &\n  - echo $! > {}\n  - wait\n",
        pid_file.display()
    );
    let env = [
        ("RUNNERKIT_DATA_DIR", data.path().to_str().unwrap()),
        ("TMPDIR", tmp.path().to_str().unwrap()),
    ];
    let server = server().await;
    let id = server.enqueue(exec_stage(&yaml));
    let mut first = Daemon::start(&server, &[], &env).await;
    step_running(&server, id, &first).await;
    let sleeper: i32 = wait_for("the step's background process", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await
    .expect("the step wrote its pid");
    let stage_roots = || -> Vec<PathBuf> {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("runnerkit-"))
            })
            .collect()
    };
    let journal = data.path().join("journal");
    let journalled = || std::fs::read_dir(&journal).map_or(0, |d| d.count());

    first.signal(Signal::SIGKILL);
    first.child.wait().unwrap();
    // What the dead run left, before the restart.
    assert!(alive(sleeper), "the step's process outlived its runner");
    assert_eq!(stage_roots().len(), 1, "its stage directory too");
    assert_eq!(journalled(), 1, "the journal holds the stage");
    assert_eq!(server.stage(id).unwrap().status, Status::Running);

    let mut second = Daemon::start(&server, &[], &env).await;
    let stage = stage_done(&server, id, &second).await;
    assert_eq!(stage.status, Status::Error, "{}", second.stderr());
    assert!(
        stage.error.contains("the runner restarted"),
        "{}",
        stage.error
    );
    assert_eq!(stage.steps[0].status, Status::Error);
    assert!(stage.steps[0].error.contains("restarted"));
    wait_for("the step's process to be gone", || {
        (!alive(sleeper)).then_some(())
    })
    .await
    .expect("the restart killed the dead run's process");
    assert_eq!(
        stage_roots(),
        Vec::<PathBuf>::new(),
        "the stage directory was removed"
    );
    assert_eq!(journalled(), 0, "the journal entry was dropped");
    let said = second.stderr();
    assert!(
        said.contains("pruned what crashed runs left behind"),
        "{said}"
    );

    second.signal(Signal::SIGTERM);
    assert_eq!(second.exit_code().await, 0, "{}", second.stderr());
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// The Docker side of a crash: `kill -9` of a docker daemon mid-stage (a
/// running step and a service), then a restart: no container, network or
/// volume of the dead run is left and the server shows the stage `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_restart_after_kill_9_prunes_every_object_and_ends_the_stage() {
    use bollard::query_parameters::{
        ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    };

    let _turn = DOCKER.lock().await;
    let Some(_engine) = runnerkit_docker::testing::docker_or_skip().await else {
        return;
    };
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let data = tempfile::tempdir().unwrap();
    let env = [("RUNNERKIT_DATA_DIR", data.path().to_str().unwrap())];
    let image = runnerkit_docker::testing::TEST_IMAGE;
    let yaml = format!(
        "kind: pipeline\ntype: docker\nname: default\nclone:\n  disable: true\n\
         services:\n- name: db\n  image: {image}\n  pull: if-not-exists\n  commands:\n  - sleep 300\n\
         steps:\n- name: endless\n  image: {image}\n  pull: if-not-exists\n  commands:\n  - echo started\n  - sleep 300\n"
    );
    let server = server().await;
    let mut details = exec_stage(&yaml);
    details.stage.kind_type = "docker".into();
    let id = server.enqueue(details);
    let mut first = Daemon::start_typed(&server, "docker", &[], &env).await;
    wait_for("the endless step to run", || {
        server
            .step_updates()
            .iter()
            .any(|s| s.step_id == id && s.name == "endless" && s.status == Status::Running)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the step did not run:\n{}", first.stderr()));
    let dead_pid = first.child.id();
    let by_creator = HashMap::from([(
        "label".to_owned(),
        vec![format!("io.runnerkit.creator.pid={dead_pid}")],
    )]);
    let left = || async {
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&by_creator)
                    .build(),
            ))
            .await
            .unwrap();
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new()
                    .filters(&by_creator)
                    .build(),
            ))
            .await
            .unwrap();
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new()
                    .filters(&by_creator)
                    .build(),
            ))
            .await
            .unwrap()
            .volumes
            .unwrap_or_default();
        (containers.len(), networks.len(), volumes.len())
    };
    // The step is reported running before its container is created.
    let started = Instant::now();
    while left().await.0 < 2 && started.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.signal(Signal::SIGKILL);
    first.child.wait().unwrap();
    let (containers, networks, _) = left().await;
    assert!(
        containers >= 2,
        "the step and the service outlived the runner"
    );
    assert_eq!(networks, 1, "the stage network too");

    let mut second = Daemon::start_typed(&server, "docker", &[], &env).await;
    let stage = stage_done(&server, id, &second).await;
    assert_eq!(stage.status, Status::Error, "{}", second.stderr());
    assert!(
        stage.error.contains("the runner restarted"),
        "{}",
        stage.error
    );
    for step in &stage.steps {
        assert!(step.status.is_done(), "{} is {:?}", step.name, step.status);
    }
    assert_eq!(left().await, (0, 0, 0), "{}", second.stderr());
    second.signal(Signal::SIGTERM);
    assert_eq!(second.exit_code().await, 0, "{}", second.stderr());
}

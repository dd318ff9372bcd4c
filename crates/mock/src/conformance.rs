//! The engine conformance suite: checks any [`Engine`] runs from its tests.
//!
//! Each check is a `pub async fn` over `&dyn Engine` and a [`Fixture`] that
//! knows how to express a [`Behaviour`] as a [`Step`] on that engine and what
//! the engine may have left behind. A check panics, with a message naming the
//! contract clause, when the engine breaks it. [`run_all`] runs them all.
//!
//! ```no_run
//! # async fn demo(engine: &dyn runnerkit_core::Engine) {
//! use runnerkit_mock::conformance::{self, ShellFixture};
//! // An engine that runs POSIX sh scripts in a busybox image, say:
//! let fixture = ShellFixture::new().with_image("runnerkit-test:busybox");
//! conformance::run_all(engine, &fixture).await;
//! # }
//! ```
//!
//! The checks create real resources and tear them down; they are not API
//! stable yet (new checks will be added as the contract is sharpened).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use runnerkit_core::{
    CancellationToken, Engine, EngineError, ExitState, LogStream, PullPolicy, Script, SecretVar,
    Spec, Step, Workspace,
};

use crate::{MockEngine, StepScript};

/// What a step should do, independent of how an engine runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Exit with this code at once.
    Exit(i32),
    /// Write these lines, in this order, each followed by a newline, to
    /// stdout (`false`) or stderr (`true`); then exit 0.
    Print(Vec<(bool, String)>),
    /// Print the value of each environment variable, one per line, as
    /// `NAME=value`; then exit 0.
    PrintEnv(Vec<String>),
    /// Run for this long, then exit 0.
    Sleep(Duration),
    /// Something this engine cannot run at all: create, start, tail or wait
    /// must fail with an error (an image that does not exist with
    /// `pull: never`, a shell that does not exist).
    Unrunnable,
}

/// How a [`Behaviour`] becomes a [`Step`] on one engine, and how to tell
/// what the engine left behind.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// A spec holding `steps`, with a fresh unique [`Spec::id`] and whatever
    /// stage-wide settings the engine needs.
    fn spec(&self, steps: Vec<Step>) -> Spec;

    /// A step named `name` doing `behaviour`.
    fn step(&self, name: &str, behaviour: &Behaviour) -> Step;

    /// What still exists of `spec` after `destroy` (containers, networks,
    /// volumes, processes, directories), described; empty means clean.
    async fn leftovers(&self, spec: &Spec) -> Vec<String>;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A unique spec id: process id plus a counter, so concurrent test binaries
/// never collide.
pub fn unique_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// A [`Fixture`] for engines that run [`Step::script`] with a POSIX shell:
/// each behaviour becomes a small `sh` script.
#[derive(Debug, Clone)]
pub struct ShellFixture {
    image: String,
    pull: PullPolicy,
    workspace: Workspace,
    unrunnable: Step,
    labels: BTreeMap<String, String>,
}

impl Default for ShellFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl ShellFixture {
    /// Scripts run by `/bin/sh`, no image; the unrunnable step names a shell
    /// that does not exist.
    pub fn new() -> Self {
        Self {
            image: String::new(),
            pull: PullPolicy::Default,
            workspace: Workspace::default(),
            unrunnable: Step {
                script: Some(Script {
                    shell: "/nonexistent/runnerkit/sh".into(),
                    body: "true\n".into(),
                }),
                ..Step::default()
            },
            labels: BTreeMap::new(),
        }
    }

    /// Runs every step in `image` with pull policy `never` (no registry is
    /// needed); the unrunnable step then names an image that does not exist.
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self.pull = PullPolicy::Never;
        self.unrunnable = Step {
            image: "runnerkit-conformance/does-not-exist:never".into(),
            pull: PullPolicy::Never,
            script: Some(Script {
                shell: "/bin/sh".into(),
                body: "true\n".into(),
            }),
            ..Step::default()
        };
        self
    }

    /// Uses `workspace` in every spec.
    pub fn with_workspace(mut self, workspace: Workspace) -> Self {
        self.workspace = workspace;
        self
    }

    /// Puts `labels` on every spec (engines use them to find their objects).
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    fn script(body: String) -> Option<Script> {
        Some(Script {
            shell: "/bin/sh".into(),
            body,
        })
    }
}

/// Quotes `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[async_trait]
impl Fixture for ShellFixture {
    fn spec(&self, steps: Vec<Step>) -> Spec {
        Spec {
            id: unique_id("rkconf"),
            workspace: self.workspace.clone(),
            labels: self.labels.clone(),
            steps,
            ..Spec::default()
        }
    }

    fn step(&self, name: &str, behaviour: &Behaviour) -> Step {
        let base = Step {
            id: unique_id(name),
            name: name.into(),
            image: self.image.clone(),
            pull: self.pull,
            ..Step::default()
        };
        let body = match behaviour {
            Behaviour::Exit(code) => format!("exit {code}\n"),
            Behaviour::Print(lines) => {
                let mut body = String::new();
                for (stderr, line) in lines {
                    let redirect = if *stderr { " >&2" } else { "" };
                    body.push_str(&format!("echo {}{redirect}\n", sh_quote(line)));
                }
                body
            }
            Behaviour::PrintEnv(vars) => vars
                .iter()
                .map(|v| format!("echo \"{v}=${{{v}}}\"\n"))
                .collect(),
            Behaviour::Sleep(d) => format!("sleep {}\n", d.as_secs().max(1)),
            Behaviour::Unrunnable => {
                return Step {
                    id: base.id,
                    name: base.name,
                    ..self.unrunnable.clone()
                };
            }
        };
        Step {
            script: Self::script(body),
            ..base
        }
    }

    async fn leftovers(&self, _spec: &Spec) -> Vec<String> {
        Vec::new()
    }
}

/// The [`Fixture`] of [`MockEngine`]: behaviours become scripts registered
/// on the engine.
#[derive(Debug, Clone)]
pub struct MockFixture {
    engine: MockEngine,
}

impl MockFixture {
    /// Scripts steps on `engine`.
    pub fn new(engine: MockEngine) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl Fixture for MockFixture {
    fn spec(&self, steps: Vec<Step>) -> Spec {
        Spec {
            id: unique_id("rkmock"),
            steps,
            ..Spec::default()
        }
    }

    fn step(&self, name: &str, behaviour: &Behaviour) -> Step {
        let step = Step::named(name);
        let script = match behaviour {
            Behaviour::Exit(code) => StepScript::exit(*code),
            Behaviour::Print(lines) => {
                StepScript::exit(0).with_lines(lines.iter().map(|(_, l)| l.as_str()))
            }
            // The mock has no processes: it echoes the step's own environment.
            Behaviour::PrintEnv(vars) => StepScript::exit(0).echo_env(vars.clone()),
            Behaviour::Sleep(d) => StepScript::exit(0).running_for(*d),
            Behaviour::Unrunnable => StepScript::exit(0).error_at(crate::CallKind::Create),
        };
        self.engine.script(name, script);
        step
    }

    async fn leftovers(&self, spec: &Spec) -> Vec<String> {
        self.engine
            .live_stages()
            .into_iter()
            .filter(|id| *id == spec.id)
            .map(|id| format!("stage {id} not destroyed"))
            .collect()
    }
}

/// Longest any single engine call may take in these checks before the check
/// fails with "hung".
const CALL_BOUND: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(CALL_BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {CALL_BOUND:?}: the engine hangs"),
    }
}

fn ok<T>(what: &str, r: Result<T, EngineError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {}", e.to_chain_string()),
    }
}

async fn collect(mut stream: LogStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&ok("reading the tail stream", chunk));
    }
    out
}

/// Runs one step through create, start, tail and wait; returns its output and
/// exit state.
async fn run_step(engine: &dyn Engine, spec: &Spec, step: &Step) -> (Vec<u8>, ExitState) {
    let cancel = CancellationToken::new();
    let name = &step.name;
    ok(
        &format!("create({name})"),
        bounded("create", engine.create(spec, step, &cancel)).await,
    );
    ok(
        &format!("start({name})"),
        bounded("start", engine.start(spec, step, &cancel)).await,
    );
    let stream = ok(
        &format!("tail({name})"),
        bounded("tail", engine.tail(spec, step, &cancel)).await,
    );
    let (output, exit) = bounded("tail + wait", async {
        tokio::join!(collect(stream), engine.wait(spec, step, &cancel))
    })
    .await;
    (output, ok(&format!("wait({name})"), exit))
}

async fn setup(engine: &dyn Engine, spec: &Spec) {
    ok(
        "setup",
        bounded("setup", engine.setup(spec, &CancellationToken::new())).await,
    );
}

async fn destroy_clean(engine: &dyn Engine, fixture: &dyn Fixture, spec: &Spec) {
    ok(
        "destroy",
        bounded("destroy", engine.destroy(spec, &CancellationToken::new())).await,
    );
    let left = fixture.leftovers(spec).await;
    assert!(
        left.is_empty(),
        "destroy must remove everything setup and create made; left: {left:?}"
    );
}

/// The full lifecycle of one step: setup, create, start, tail, wait (exit 0),
/// destroy, and nothing left behind.
pub async fn lifecycle(engine: &dyn Engine, fixture: &dyn Fixture) {
    let step = fixture.step("lifecycle", &Behaviour::Exit(0));
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    let (_, exit) = run_step(engine, &spec, &step).await;
    assert_eq!(exit.exit_code, 0, "a step that exits 0 must report 0");
    assert!(!exit.oom_killed, "a step that exits 0 was not OOM-killed");
    destroy_clean(engine, fixture, &spec).await;
}

/// Exit codes come back exactly, 78 included.
pub async fn exit_codes(engine: &dyn Engine, fixture: &dyn Fixture) {
    let codes = [0, 1, 2, 78, 127];
    let steps: Vec<Step> = codes
        .iter()
        .map(|c| fixture.step(&format!("exit-{c}"), &Behaviour::Exit(*c)))
        .collect();
    let spec = fixture.spec(steps.clone());
    setup(engine, &spec).await;
    for (step, code) in steps.iter().zip(codes) {
        let (_, exit) = run_step(engine, &spec, step).await;
        assert_eq!(
            exit.exit_code, code,
            "step {:?} must report exit code {code}",
            step.name
        );
    }
    destroy_clean(engine, fixture, &spec).await;
}

/// Every byte of output arrives, stdout and stderr both, each stream in order.
pub async fn logs_whole_and_in_order(engine: &dyn Engine, fixture: &dyn Fixture) {
    let lines: Vec<(bool, String)> = (0..300)
        .map(|i| (i % 3 == 2, format!("line {i:03} {}", "x".repeat(i % 40))))
        .collect();
    let step = fixture.step("logs", &Behaviour::Print(lines.clone()));
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    let (output, exit) = run_step(engine, &spec, &step).await;
    assert_eq!(exit.exit_code, 0);
    let text = String::from_utf8_lossy(&output);
    let got: Vec<&str> = text.lines().collect();
    for stderr in [false, true] {
        let want: Vec<&str> = lines
            .iter()
            .filter(|(e, _)| *e == stderr)
            .map(|(_, l)| l.as_str())
            .collect();
        let have: Vec<&str> = got.iter().copied().filter(|l| want.contains(l)).collect();
        assert_eq!(
            have,
            want,
            "every {} line must arrive once, in order",
            if stderr { "stderr" } else { "stdout" }
        );
    }
    destroy_clean(engine, fixture, &spec).await;
}

/// The step sees its environment and its secrets.
pub async fn environment(engine: &dyn Engine, fixture: &dyn Fixture) {
    let mut step = fixture.step(
        "env",
        &Behaviour::PrintEnv(vec!["RK_PLAIN".into(), "RK_SECRET".into()]),
    );
    step.environment
        .insert("RK_PLAIN".into(), "plain value".into());
    step.secrets.push(SecretVar {
        env: "RK_SECRET".into(),
        value: "s3cr3t".into(),
        mask: true,
    });
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    let (output, exit) = run_step(engine, &spec, &step).await;
    assert_eq!(exit.exit_code, 0);
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.lines().any(|l| l == "RK_PLAIN=plain value"),
        "environment variables must reach the step; output: {text:?}"
    );
    assert!(
        text.lines().any(|l| l == "RK_SECRET=s3cr3t"),
        "secrets must reach the step as environment variables; output: {text:?}"
    );
    destroy_clean(engine, fixture, &spec).await;
}

/// `tail` and `wait` called after the step already exited still deliver all
/// its output and its exit code.
pub async fn wait_after_exit(engine: &dyn Engine, fixture: &dyn Fixture) {
    let lines: Vec<(bool, String)> = (0..20).map(|i| (false, format!("early {i}"))).collect();
    let step = fixture.step("early", &Behaviour::Print(lines.clone()));
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    let cancel = CancellationToken::new();
    ok(
        "create",
        bounded("create", engine.create(&spec, &step, &cancel)).await,
    );
    ok(
        "start",
        bounded("start", engine.start(&spec, &step, &cancel)).await,
    );
    // Let the step finish before anyone reads from it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stream = ok(
        "tail",
        bounded("tail", engine.tail(&spec, &step, &cancel)).await,
    );
    let output = bounded("tail stream", collect(stream)).await;
    let exit = ok(
        "wait",
        bounded("wait", engine.wait(&spec, &step, &cancel)).await,
    );
    assert_eq!(exit.exit_code, 0);
    assert_output(
        &output,
        &lines,
        "a step that exited before tail must lose no output",
    );
    destroy_clean(engine, fixture, &spec).await;
}

/// `destroy` twice, and `destroy` of a spec never set up, both succeed.
pub async fn destroy_is_idempotent(engine: &dyn Engine, fixture: &dyn Fixture) {
    let step = fixture.step("twice", &Behaviour::Exit(0));
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    run_step(engine, &spec, &step).await;
    destroy_clean(engine, fixture, &spec).await;
    destroy_clean(engine, fixture, &spec).await;
    let never = fixture.spec(vec![fixture.step("never", &Behaviour::Exit(0))]);
    destroy_clean(engine, fixture, &never).await;
}

/// A step created but never started is removed by `destroy`.
pub async fn destroy_removes_unstarted(engine: &dyn Engine, fixture: &dyn Fixture) {
    let step = fixture.step("unstarted", &Behaviour::Sleep(Duration::from_secs(30)));
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    ok(
        "create",
        bounded(
            "create",
            engine.create(&spec, &step, &CancellationToken::new()),
        )
        .await,
    );
    destroy_clean(engine, fixture, &spec).await;
}

/// Cancelling a running step makes `wait` return promptly and the stream end;
/// `destroy` then leaves nothing.
pub async fn cancel_mid_step(engine: &dyn Engine, fixture: &dyn Fixture) {
    let step = fixture.step("cancelled", &Behaviour::Sleep(Duration::from_secs(300)));
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    let cancel = CancellationToken::new();
    ok(
        "create",
        bounded("create", engine.create(&spec, &step, &cancel)).await,
    );
    ok(
        "start",
        bounded("start", engine.start(&spec, &step, &cancel)).await,
    );
    let stream = ok(
        "tail",
        bounded("tail", engine.tail(&spec, &step, &cancel)).await,
    );
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
    };
    // Either an exit state or an error is fine: the runtime reports `killed`.
    // What matters is that both return, well before the step's 300 s.
    let ((), _, exit) = bounded("wait after cancel", async {
        tokio::join!(
            canceller,
            collect_lossy(stream),
            engine.wait(&spec, &step, &cancel)
        )
    })
    .await;
    if let Ok(exit) = exit {
        assert_ne!(
            exit.exit_code, 0,
            "a step stopped by cancellation must not report success"
        );
    }
    destroy_clean(engine, fixture, &spec).await;
}

async fn collect_lossy(mut stream: LogStream) {
    while let Some(chunk) = stream.next().await {
        if chunk.is_err() {
            break;
        }
    }
}

/// A step the engine cannot run fails with an error from one of its calls,
/// never with a silent exit 0; `destroy` still cleans up.
pub async fn errors_surface(engine: &dyn Engine, fixture: &dyn Fixture) {
    let step = fixture.step("unrunnable", &Behaviour::Unrunnable);
    let spec = fixture.spec(vec![step.clone()]);
    setup(engine, &spec).await;
    let cancel = CancellationToken::new();
    let outcome: Result<ExitState, EngineError> = bounded("unrunnable step", async {
        engine.create(&spec, &step, &cancel).await?;
        engine.start(&spec, &step, &cancel).await?;
        let stream = engine.tail(&spec, &step, &cancel).await?;
        let (_, exit) = tokio::join!(collect_lossy(stream), engine.wait(&spec, &step, &cancel));
        exit
    })
    .await;
    match outcome {
        Err(e) => assert!(
            !e.to_chain_string().is_empty(),
            "an engine error must say what failed"
        ),
        Ok(exit) => panic!(
            "an unrunnable step must fail with an engine error, not exit {}",
            exit.exit_code
        ),
    }
    destroy_clean(engine, fixture, &spec).await;
}

/// Two steps of one stage run at the same time without disturbing each
/// other's output.
pub async fn concurrent_steps(engine: &dyn Engine, fixture: &dyn Fixture) {
    let a_lines: Vec<(bool, String)> = (0..50).map(|i| (false, format!("a{i}"))).collect();
    let b_lines: Vec<(bool, String)> = (0..50).map(|i| (false, format!("b{i}"))).collect();
    let a = fixture.step("par-a", &Behaviour::Print(a_lines.clone()));
    let b = fixture.step("par-b", &Behaviour::Print(b_lines.clone()));
    let spec = fixture.spec(vec![a.clone(), b.clone()]);
    setup(engine, &spec).await;
    let ((out_a, exit_a), (out_b, exit_b)) =
        tokio::join!(run_step(engine, &spec, &a), run_step(engine, &spec, &b));
    assert_eq!((exit_a.exit_code, exit_b.exit_code), (0, 0));
    for (out, lines) in [(out_a, a_lines), (out_b, b_lines)] {
        assert_output(
            &out,
            &lines,
            "concurrent steps must each get exactly their own output",
        );
    }
    destroy_clean(engine, fixture, &spec).await;
}

/// Panics with `why` unless `output` is exactly `lines`, in order.
fn assert_output(output: &[u8], lines: &[(bool, String)], why: &str) {
    let text = String::from_utf8_lossy(output);
    let want: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), want, "{why}");
}

/// Every check, one after another.
pub async fn run_all(engine: &dyn Engine, fixture: &dyn Fixture) {
    lifecycle(engine, fixture).await;
    exit_codes(engine, fixture).await;
    logs_whole_and_in_order(engine, fixture).await;
    environment(engine, fixture).await;
    wait_after_exit(engine, fixture).await;
    destroy_is_idempotent(engine, fixture).await;
    destroy_removes_unstarted(engine, fixture).await;
    cancel_mid_step(engine, fixture).await;
    errors_surface(engine, fixture).await;
    concurrent_steps(engine, fixture).await;
}

//! Golden tests: each pipeline under `tests/pipelines/` (and the examples
//! under `examples/pipelines/`) goes through `prepare` with one fixed context,
//! and the compiled Spec plus warnings must equal the committed snapshot.
//!
//! Update after an intended change: `INSTA_UPDATE=always cargo test -p
//! runnerkit-manifest --test golden`, then review the diff.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use runnerkit_core::drone::{Build, Netrc, Repo, Stage, System};
use runnerkit_manifest::{CompileContext, Compiled, Compiler, StaticSecrets};

mod support;
use support::prepare;

const DOCKER_CONFIG: &str =
    r#"{"auths":{"registry.example.com:5000":{"auth":"Ym9iOnJlZ2lzdHJ5LXB3"}}}"#;

fn context(stage_name: &str, kind_type: &str) -> CompileContext {
    let secrets: BTreeMap<String, String> = [
        ("api_token", "tok-123456"),
        ("docker_password", "pw-abcdef"),
        ("docker_username", "octobot"),
        ("dockerconfig", DOCKER_CONFIG),
        ("demo_token", "demo-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    CompileContext {
        spec_id: "golden".into(),
        build: Build {
            number: 42,
            event: "push".into(),
            trigger: "@hook".into(),
            git_ref: "refs/heads/feature/login".into(),
            source: "feature/login".into(),
            target: "feature/login".into(),
            before: "fedcba9876543210".into(),
            after: "0123456789abcdef".into(),
            message: "Add login".into(),
            link: "https://git.example.com/octo/hello/commit/0123456789abcdef".into(),
            author_login: "octocat".into(),
            author_name: "The Octocat".into(),
            author_email: "octocat@example.com".into(),
            created: 1_700_000_000,
            started: 1_700_000_010,
            finished: 1_700_000_020,
            params: [("DEPLOY_ENV".to_owned(), "staging".to_owned())].into(),
            ..Build::default()
        },
        repo: Repo {
            namespace: "octo".into(),
            name: "hello".into(),
            slug: "octo/hello".into(),
            scm: "git".into(),
            git_http_url: "https://git.example.com/octo/hello.git".into(),
            git_ssh_url: "git@git.example.com:octo/hello.git".into(),
            link: "https://git.example.com/octo/hello".into(),
            default_branch: "main".into(),
            visibility: "public".into(),
            timeout: 60,
            ..Repo::default()
        },
        stage: Stage {
            name: stage_name.into(),
            number: 1,
            kind: "pipeline".into(),
            kind_type: kind_type.into(),
            machine: "runner-1".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            started: 1_700_000_011,
            stopped: 1_700_000_019,
            ..Stage::default()
        },
        system: System {
            proto: "https".into(),
            host: "ci.example.com".into(),
            version: "2.0.4".into(),
            ..System::default()
        },
        netrc: Some(Netrc {
            machine: "git.example.com".into(),
            login: "octocat".into(),
            password: "netrc-pw".into(),
        }),
        secrets: Arc::new(StaticSecrets::new(secrets)),
        now: 1_700_000_000,
        ..CompileContext::default()
    }
}

fn compile(
    path: &Path,
    name: &str,
    kind_type: &str,
    edit: impl FnOnce(&mut CompileContext),
) -> Compiled {
    let text = std::fs::read_to_string(path).unwrap();
    let mut ctx = context(name, kind_type);
    edit(&mut ctx);
    prepare(&text, Some(name), true, &Compiler::default(), &ctx)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn snapshot(compiled: &Compiled) -> serde_json::Value {
    serde_json::json!({ "spec": compiled.spec, "warnings": compiled.warnings, "steps": compiled.steps })
}

fn golden(file: &str, name: &str, kind_type: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pipelines")
        .join(file);
    let compiled = compile(&path, name, kind_type, |_| {});
    insta::assert_json_snapshot!(file.trim_end_matches(".yml"), snapshot(&compiled));
}

macro_rules! golden_tests {
    ($($test:ident => ($file:literal, $name:literal, $kind:literal)),* $(,)?) => {$(
        #[test]
        fn $test() {
            golden($file, $name, $kind);
        }
    )*};
}

golden_tests! {
    serial => ("serial.yml", "serial", "docker"),
    dag => ("dag.yml", "dag", "docker"),
    services => ("services.yml", "services", "docker"),
    plugin_settings => ("plugin-settings.yml", "plugin", "docker"),
    secrets => ("secrets.yml", "secrets", "docker"),
    when_branch => ("when-branch.yml", "when-branch", "docker"),
    when_event => ("when-event.yml", "when-event", "docker"),
    when_status => ("when-status.yml", "when-status", "docker"),
    when_other_keys => ("when-other-keys.yml", "when-other-keys", "docker"),
    volumes => ("volumes.yml", "volumes", "docker"),
    clone_disabled => ("clone-disabled.yml", "no-clone", "docker"),
    clone_settings => ("clone-settings.yml", "clone-settings", "docker"),
    workspace_custom => ("workspace-custom.yml", "workspace", "docker"),
    workspace_absolute_path => ("workspace-absolute-path.yml", "workspace-absolute", "docker"),
    workspace_restricted => ("workspace-restricted.yml", "workspace-restricted", "docker"),
    exec_serial => ("exec-serial.yml", "exec-serial", "exec"),
    exec_dag => ("exec-dag.yml", "exec-dag", "exec"),
    failure_policies => ("failure-policies.yml", "failure", "docker"),
    detach => ("detach.yml", "detach", "docker"),
    privileged_plugin => ("privileged-plugin.yml", "privileged-plugin", "docker"),
    resources => ("resources.yml", "resources", "docker"),
    image_pull_secrets => ("image-pull-secrets.yml", "pull-secrets", "docker"),
    anchors_merge => ("anchors-merge.yml", "anchors", "docker"),
    envsubst => ("envsubst.yml", "envsubst", "docker"),
    windows => ("windows.yml", "windows", "docker"),
    multi_document => ("multi-document.yml", "second", "docker"),
}

/// What `runnerkit exec` does: no clone, the file's directory as workspace.
fn golden_local(file: &Path, name: &str, kind_type: &str, snapshot_name: &str) {
    let compiled = compile(file, name, kind_type, |ctx| {
        ctx.clone = false;
        ctx.netrc = None;
        ctx.host_workspace = Some("/home/dev/project".into());
    });
    insta::assert_json_snapshot!(snapshot_name, snapshot(&compiled));
}

fn example(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/pipelines")
        .join(file)
}

#[test]
fn exec_serial_with_host_workspace() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipelines/exec-serial.yml");
    golden_local(&path, "exec-serial", "exec", "exec-serial-local");
}

#[test]
fn example_exec_hello() {
    golden_local(
        &example("exec-hello.drone.yml"),
        "hello",
        "exec",
        "example-exec-hello",
    );
}

#[test]
fn example_docker_hello() {
    golden_local(
        &example("docker-hello.drone.yml"),
        "hello",
        "docker",
        "example-docker-hello",
    );
}

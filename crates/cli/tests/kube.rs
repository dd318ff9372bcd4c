//! `runnerkit exec` and `runnerkit prune` on `type: kubernetes` pipelines,
//! against the cluster of the current kubeconfig (`.ci/kube.sh` starts the
//! test cluster). Without one, each test prints why and passes; with
//! `RUNNERKIT_REQUIRE_KUBE=1` (CI) a missing cluster fails.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Run, run_with, summary, workspace};

const HEAD: &str = "kind: pipeline\ntype: kubernetes\nname: default\n";
const IMAGE: &str = "image: runnerkit-kube/busybox:1\n  pull: never";

/// True when a cluster answers; prints why not otherwise (and fails with
/// `RUNNERKIT_REQUIRE_KUBE=1`). Asked on a thread of its own, so that sync
/// and async tests can both ask.
fn cluster() -> bool {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(runnerkit_kube::testing::kube_or_skip())
            .is_some()
    })
    .join()
    .unwrap()
}

/// The test cluster has no cluster DNS.
const ENV: [(&str, &str); 2] = [
    ("RUNNERKIT_KUBE_DNS_POLICY", "Default"),
    ("RUNNERKIT_KUBE_SCHEDULE_TIMEOUT", "4"),
];

fn exec(pipeline: &str, args: &[&str]) -> Run {
    let dir = workspace(pipeline, &[]);
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let env: Vec<(&str, &OsStr)> = ENV.iter().map(|(k, v)| (*k, OsStr::new(*v))).collect();
    run_with(dir.path(), &all, &env)
}

fn row<'a>(rows: &'a [Vec<String>], step: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[0] == step)
        .unwrap_or_else(|| panic!("no summary row for {step}: {rows:?}"))
}

#[test]
fn a_stage_shares_its_workspace_reaches_its_service_and_masks_secrets() {
    if !cluster() {
        return;
    }
    let pipeline = format!(
        "{HEAD}services:\n- name: web\n  {IMAGE}\n  commands: [\"mkdir -p /www && echo served > /www/index.html && httpd -f -p 8080 -h /www\"]\nsteps:\n- name: write\n  {IMAGE}\n  environment:\n    TOKEN: {{from_secret: token}}\n  commands:\n  - echo hello > shared.txt\n  - echo \"token is $TOKEN\"\n- name: read\n  {IMAGE}\n  depends_on: [write]\n  commands:\n  - cat shared.txt\n  - until wget -q -O - http://web:8080/; do sleep 0.2; done\n- name: also\n  {IMAGE}\n  depends_on: [write]\n  commands: [\"echo dollars $$HOME stay\"]\n"
    );
    let run = exec(&pipeline, &["--secret", "token=hunter2"]);
    let out = run.printed();
    assert_eq!(run.code, 0, "{out}");
    for want in [
        "token is ******",
        "read  | hello",
        "served",
        "dollars $HOME stay",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("hunter2"), "the secret leaked:\n{out}");
}

#[test]
fn exit_codes_and_oom_come_from_the_container_status() {
    if !cluster() {
        return;
    }
    let pipeline = format!(
        "{HEAD}steps:\n- name: three\n  {IMAGE}\n  commands: [exit 3]\n  failure: ignore\n- name: hungry\n  {IMAGE}\n  resources:\n    limits: {{memory: 32Mi}}\n  commands: [\"head -c 200m /dev/zero | tail > /dev/null\"]\n"
    );
    let run = exec(&pipeline, &[]);
    let out = run.printed();
    assert_ne!(run.code, 0, "{out}");
    let rows = summary(&run.stdout);
    assert_eq!(row(&rows, "three")[2], "3", "{out}");
    assert_eq!(row(&rows, "hungry")[2], "137", "{out}");
    assert!(
        out.to_lowercase().contains("oom") || out.contains("memory"),
        "the OOM kill is said:\n{out}"
    );
}

#[test]
fn a_missing_image_errors_with_the_kubelets_reason_in_seconds() {
    if !cluster() {
        return;
    }
    let pipeline = format!(
        "{HEAD}steps:\n- name: ghost\n  image: runnerkit-kube/does-not-exist:1\n  pull: never\n  commands: [true]\n"
    );
    let started = Instant::now();
    let run = exec(&pipeline, &[]);
    let out = run.printed();
    assert_ne!(run.code, 0, "{out}");
    assert!(out.contains("ErrImageNeverPull"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_unschedulable_pod_errors_the_stage() {
    if !cluster() {
        return;
    }
    let pipeline = format!(
        "{HEAD}node_selector: {{runnerkit-test: no-such-node}}\nsteps:\n- name: never\n  {IMAGE}\n  commands: [true]\n"
    );
    let run = exec(&pipeline, &["--trusted"]);
    let out = run.printed();
    assert_ne!(run.code, 0, "{out}");
    assert!(out.contains("unschedulable"), "{out}");
    assert!(
        out.contains("node selector") || out.contains("node(s)"),
        "the scheduler's message: {out}"
    );
}

#[test]
fn a_stopped_step_gets_sigterm_and_its_trap_runs() {
    if !cluster() {
        return;
    }
    let pipeline = format!(
        "{HEAD}steps:\n- name: patient\n  {IMAGE}\n  commands:\n  - trap 'echo got TERM; exit 1' TERM\n  - echo waiting\n  - sleep 60\n"
    );
    let run = exec(&pipeline, &["--timeout", "8s"]);
    let out = run.printed();
    assert_ne!(run.code, 0, "{out}");
    assert!(out.contains("got TERM"), "the trap's output:\n{out}");
}

#[test]
fn prune_removes_what_a_killed_runner_left() {
    if !cluster() {
        return;
    }
    let pipeline =
        format!("{HEAD}steps:\n- name: long\n  {IMAGE}\n  commands: [echo started, sleep 300]\n");
    let dir = workspace(&pipeline, &[]);
    let mut child = Command::new(BIN)
        .args(["exec"])
        .current_dir(dir.path())
        .envs(ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains("started") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: no destroy runs.
    child.wait().unwrap();
    let env: Vec<(&str, &OsStr)> = ENV.iter().map(|(k, v)| (*k, OsStr::new(*v))).collect();
    let prune = run_with(dir.path(), &["prune"], &env);
    let out = prune.printed();
    assert_eq!(prune.code, 0, "{out}");
    assert!(
        out.contains("pod "),
        "the killed run's pod is pruned:\n{out}"
    );
    assert!(out.contains("secret "), "and its secret:\n{out}");
    // A second prune finds nothing of it.
    let again = run_with(dir.path(), &["prune"], &env).printed();
    assert!(!again.contains("pod default/"), "{again}");
}

#[tokio::test]
async fn placement_volumes_and_identity_keys_reach_the_pod() {
    if !cluster() {
        return;
    }
    let Some(engine) = runnerkit_kube::testing::kube_or_skip().await else {
        return;
    };
    let name = format!("rk-cli-test-{}", std::process::id());
    runnerkit_kube::testing::put_config_map(
        &engine,
        "default",
        &name,
        &[("greeting", "hello from a config map")],
    )
    .await
    .unwrap();
    let pipeline = format!(
        "{HEAD}metadata:\n  labels: {{team: ci}}\n  annotations: {{note: kept}}\ntolerations:\n- {{key: dedicated, operator: Equal, value: ci, effect: NoExecute, toleration_seconds: 30}}\ndns_config:\n  options: [{{name: ndots, value: 2}}]\nhost_aliases:\n- {{ip: 10.1.2.3, hostnames: [db.internal]}}\nresources:\n  requests: {{cpu: \"0.2\", memory: 64Mi}}\nvolumes:\n- name: conf\n  config_map: {{name: {name}, default_mode: 420}}\n- name: scratch\n  temp: {{medium: memory, size_limit: 16Mi}}\nsteps:\n- name: look\n  {IMAGE}\n  user: 1000\n  resources:\n    limits: {{cpu: 500, memory: 64Mi}}\n  volumes:\n  - {{name: conf, path: /etc/app}}\n  - {{name: scratch, path: /scratch}}\n  commands:\n  - cat /etc/app/greeting; echo\n  - grep db.internal /etc/hosts\n  - grep ndots /etc/resolv.conf\n  - id -u\n  - mount | grep -c ' /scratch type tmpfs'\n"
    );
    let run = tokio::task::spawn_blocking(move || exec(&pipeline, &["--trusted"]))
        .await
        .unwrap();
    runnerkit_kube::testing::delete_config_map(&engine, "default", &name)
        .await
        .unwrap();
    let out = run.printed();
    assert_eq!(run.code, 0, "{out}");
    for want in [
        "hello from a config map",
        "10.1.2.3",
        "ndots:2",
        "look | 1000",
        "look | 1\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

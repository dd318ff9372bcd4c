//! What a stage costs on Kubernetes: one pod per stage against the
//! pod-per-step design of Woodpecker and Tekton, in one run.
//!
//! Run: `cargo bench -p runnerkit-kube --bench kube` (needs a cluster in
//! `KUBECONFIG`, e.g. `.ci/kube.sh`'s; prints a Markdown table).
//!
//! 1. A 10-step serial stage of `true` through `Runtime::run` on
//!    `KubeEngine` (pod, Secret, ten image swaps, destroy), against ten
//!    one-container pods of `true` created and awaited one after another
//!    through the same client (each awaited until its container ended, by a
//!    watch; deleted without waiting for the object to vanish).
//! 2. The engine's `start` of one step: from the image patch to the step's
//!    container running (or ended), the latency a step pays once its stage
//!    pod is up.
//!
//! Every pod it makes is named `rk-bench-<pid>-…` or `bench-pod-<pid>-…`;
//! whatever of them is left at the end (a failed round included) is deleted
//! before the bench exits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use runnerkit_core::{CancellationToken, Engine, PullPolicy, Script, Spec, Step, Workspace};
use runnerkit_kube::testing::{TEST_IMAGE, kube_or_skip};
use runnerkit_kube::{KubeEngine, LABEL_MANAGED};
use runnerkit_runtime::Runtime;

const ROUNDS: usize = 5;
const STEPS: usize = 10;
/// The label of the peer's pods.
const BENCH_LABEL: &str = "io.runnerkit.bench";
/// How long one peer pod may take before the round fails.
const POD_DEADLINE: Duration = Duration::from_secs(120);

fn step(i: usize) -> Step {
    Step {
        id: format!("s{i}"),
        image: TEST_IMAGE.into(),
        pull: PullPolicy::Never,
        script: Some(Script {
            shell: "/bin/sh".into(),
            body: "true\n".into(),
        }),
        ..Step::named(format!("s{i}"))
    }
}

fn spec(id: String) -> Spec {
    Spec {
        id,
        workspace: Workspace {
            base: "/drone/src".into(),
            ..Workspace::default()
        },
        steps: (0..STEPS).map(step).collect(),
        ..Spec::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn stage_through_engine(engine: Arc<KubeEngine>, round: usize) -> Duration {
    let spec = spec(format!("bench-{}-{round}", std::process::id()));
    let runtime = Runtime::new(engine);
    let t0 = Instant::now();
    let done = runtime
        .run(Arc::new(spec), CancellationToken::new())
        .await
        .expect("stage");
    let took = t0.elapsed();
    assert!(done.steps.iter().all(|s| s.exit_code == 0), "{done:?}");
    took
}

/// Whether the pod's one container has terminated (its state, not the
/// pod's phase, which the kubelet sets on a later sync).
fn terminated(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
        })
}

/// One pod of `true`, awaited by a watch until its container terminated,
/// then deleted (grace 0, not waited for).
async fn one_pod(pods: &Api<Pod>, name: &str) -> Result<(), String> {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([(BENCH_LABEL.to_owned(), std::process::id().to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "step".into(),
                image: Some(TEST_IMAGE.into()),
                image_pull_policy: Some("Never".into()),
                command: Some(vec!["true".into()]),
                ..Container::default()
            }],
            restart_policy: Some("Never".into()),
            dns_policy: Some("Default".into()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .map_err(|e| format!("create pod {name}: {e}"))?;
    let mut version = created.metadata.resource_version.unwrap_or_default();
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(60);
    let watched = tokio::time::timeout(POD_DEADLINE, async {
        loop {
            let stream = pods
                .watch(&params, &version)
                .await
                .map_err(|e| format!("watch pod {name}: {e}"))?;
            futures_util::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                        if terminated(&pod) {
                            return Ok(());
                        }
                        if let Some(v) = pod.metadata.resource_version {
                            version = v;
                        }
                    }
                    Ok(WatchEvent::Deleted(_)) => return Err(format!("pod {name} deleted")),
                    Ok(WatchEvent::Bookmark(_)) => {}
                    Ok(WatchEvent::Error(e)) => return Err(format!("watch pod {name}: {e:?}")),
                    Err(e) => return Err(format!("watch pod {name}: {e}")),
                }
            }
            // The server's watch timeout: resume from the last version seen.
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("pod {name} not ended within {POD_DEADLINE:?}")));
    let deleted = pods
        .delete(name, &DeleteParams::default().grace_period(0))
        .await
        .map_err(|e| format!("delete pod {name}: {e}"));
    watched.and(deleted.map(drop))
}

async fn pod_per_step(engine: &KubeEngine, round: usize) -> Duration {
    let pods: Api<Pod> = Api::namespaced(engine.client().clone(), &engine.settings().namespace);
    let t0 = Instant::now();
    for i in 0..STEPS {
        let name = format!("bench-pod-{}-{round}-{i}", std::process::id());
        if let Err(e) = one_pod(&pods, &name).await {
            panic!("pod per step, round {round}: {e}");
        }
    }
    t0.elapsed()
}

/// `start` of each step of one stage, timed alone.
async fn start_latency(engine: &KubeEngine) -> Vec<Duration> {
    let spec = spec(format!("bench-start-{}", std::process::id()));
    let cancel = CancellationToken::new();
    let measured = async {
        engine.setup(&spec, &cancel).await?;
        let mut took = Vec::new();
        for step in &spec.steps {
            engine.create(&spec, step, &cancel).await?;
            let t0 = Instant::now();
            engine.start(&spec, step, &cancel).await?;
            took.push(t0.elapsed());
            engine.wait(&spec, step, &cancel).await?;
        }
        Ok::<_, runnerkit_core::EngineError>(took)
    }
    .await;
    // Destroy whatever happened, as the runtime does.
    let destroyed = engine.destroy(&spec, &CancellationToken::new()).await;
    let took = measured.unwrap_or_else(|e| panic!("start latency: {e}"));
    destroyed.unwrap_or_else(|e| panic!("start latency: destroy: {e}"));
    took
}

/// Deletes (grace 0) every pod of this process still there: the stages'
/// (`rk-bench-<pid>-…`, `rk-bench-start-<pid>`) and the peer's.
async fn sweep(engine: &KubeEngine) {
    let pid = std::process::id();
    let pods: Api<Pod> = Api::namespaced(engine.client().clone(), &engine.settings().namespace);
    let ours = |name: &str| {
        name.starts_with(&format!("rk-bench-{pid}-"))
            || name == format!("rk-bench-start-{pid}")
            || name.starts_with(&format!("bench-pod-{pid}-"))
    };
    let mut left = Vec::new();
    for selector in [LABEL_MANAGED.to_owned(), format!("{BENCH_LABEL}={pid}")] {
        match pods.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => left.extend(
                list.into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter_map(|p| p.metadata.name)
                    .filter(|n| ours(n)),
            ),
            Err(e) => eprintln!("cleanup: cannot list pods ({selector}): {e}"),
        }
    }
    for name in left {
        eprintln!("cleanup: deleting pod {name}");
        if let Err(e) = pods
            .delete(&name, &DeleteParams::default().grace_period(0))
            .await
        {
            eprintln!("cleanup: delete pod {name}: {e}");
        }
    }
}

#[tokio::main]
async fn main() {
    let Some(engine) = kube_or_skip().await else {
        println!("no cluster: nothing measured");
        return;
    };
    let engine = Arc::new(engine);
    // The measurement runs in its own task so that a panic in it (a failed
    // round) still reaches the sweep below.
    let measured = tokio::spawn(measure(engine.clone())).await;
    sweep(&engine).await;
    if let Err(e) = measured {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn measure(engine: Arc<KubeEngine>) {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        ours.push(stage_through_engine(engine.clone(), round).await);
        theirs.push(pod_per_step(&engine, round).await);
        eprintln!(
            "round {round}: stage {:?}, pod per step {:?}",
            ours[round], theirs[round]
        );
    }
    let starts = start_latency(&engine).await;
    let (ours, theirs) = (median(ours), median(theirs));
    println!("| measure | runnerkit-kube | pod per step | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| {STEPS}-step serial stage of `true` vs {STEPS} one-container pods, one after another | {:.2} s | {:.2} s | {:.2} |",
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
    let (min, max) = (starts.iter().min(), starts.iter().max());
    println!(
        "\nstep start (image patch to the step's container running): median {:.0} ms, min {:.0} ms, max {:.0} ms over {} steps",
        median(starts.clone()).as_secs_f64() * 1e3,
        min.map_or(0.0, |d| d.as_secs_f64() * 1e3),
        max.map_or(0.0, |d| d.as_secs_f64() * 1e3),
        starts.len()
    );
}

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

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use runnerkit_core::{CancellationToken, Engine, PullPolicy, Script, Spec, Step, Workspace};
use runnerkit_kube::KubeEngine;
use runnerkit_kube::testing::{TEST_IMAGE, kube_or_skip};
use runnerkit_runtime::Runtime;

const ROUNDS: usize = 5;
const STEPS: usize = 10;

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

/// One pod of `true`, awaited until its container ended, then deleted.
async fn one_pod(pods: &Api<Pod>, name: &str) {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([("io.runnerkit.bench".to_owned(), "true".to_owned())].into()),
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
        .expect("create pod");
    let version = created.metadata.resource_version.unwrap_or_default();
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    let ended = |pod: &Pod| {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        matches!(phase, Some("Succeeded" | "Failed"))
    };
    'watching: loop {
        let stream = pods.watch(&params, &version).await.expect("watch");
        futures_util::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(WatchEvent::Modified(pod)) = event
                && ended(&pod)
            {
                break 'watching;
            }
        }
    }
    pods.delete(name, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
}

async fn pod_per_step(engine: &KubeEngine, round: usize) -> Duration {
    let pods: Api<Pod> = Api::namespaced(engine.client().clone(), "default");
    let t0 = Instant::now();
    for i in 0..STEPS {
        one_pod(
            &pods,
            &format!("bench-pod-{}-{round}-{i}", std::process::id()),
        )
        .await;
    }
    t0.elapsed()
}

/// `start` of each step of one stage, timed alone.
async fn start_latency(engine: &KubeEngine) -> Vec<Duration> {
    let spec = spec(format!("bench-start-{}", std::process::id()));
    let cancel = CancellationToken::new();
    engine.setup(&spec, &cancel).await.expect("setup");
    let mut took = Vec::new();
    for step in &spec.steps {
        engine.create(&spec, step, &cancel).await.expect("create");
        let t0 = Instant::now();
        engine.start(&spec, step, &cancel).await.expect("start");
        took.push(t0.elapsed());
        engine.wait(&spec, step, &cancel).await.expect("wait");
    }
    engine
        .destroy(&spec, &CancellationToken::new())
        .await
        .expect("destroy");
    took
}

#[tokio::main]
async fn main() {
    let Some(engine) = kube_or_skip().await else {
        println!("no cluster: nothing measured");
        return;
    };
    let engine = Arc::new(engine);
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

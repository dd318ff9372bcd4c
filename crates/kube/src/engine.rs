//! [`KubeEngine`]: the [`Engine`] calls as Kubernetes API calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use runnerkit_core::creator::Creator;
use runnerkit_core::{Engine, EngineError, EngineErrorKind, ExitState, LogStream, Spec, Step};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ENGINE;
use crate::error::{Error, is_not_found};
use crate::logs::Follow;
use crate::names;
use crate::pod::{self, StagePlan};
use crate::settings::KubeSettings;
use crate::status;
use crate::watch::{PodWatch, Seen, WaitEnd};

/// Runs each stage as one pod on a Kubernetes cluster (see the crate docs).
///
/// Cheap to clone; one value serves any number of stages at once.
#[derive(Clone)]
pub struct KubeEngine {
    client: Client,
    settings: Arc<KubeSettings>,
    creator: Creator,
    stages: Arc<Mutex<HashMap<String, Arc<Stage>>>>,
}

impl std::fmt::Debug for KubeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What the engine keeps of a stage between calls.
struct Stage {
    pods: Api<Pod>,
    pod: String,
    /// Container of each step, by step key.
    containers: HashMap<String, String>,
    watch: PodWatch,
    /// Fired by `destroy`: ends the watch and every log follow.
    done: CancellationToken,
    /// A local directory the stage asked for as its workspace
    /// (`runnerkit exec`), which a pod cannot mount; said once, in the
    /// first step's log.
    unmounted_workspace: Mutex<Option<String>>,
}

fn step_key(step: &Step) -> &str {
    if step.id.is_empty() {
        &step.name
    } else {
        &step.id
    }
}

fn engine_error(kind: EngineErrorKind, message: impl Into<String>) -> EngineError {
    EngineError::new(ENGINE, kind, message)
}

fn ended_early(end: WaitEnd, what: &str) -> EngineError {
    match end {
        WaitEnd::Cancelled => {
            engine_error(EngineErrorKind::Cancelled, format!("{what}: cancelled"))
        }
        WaitEnd::TimedOut => engine_error(EngineErrorKind::Other, format!("{what}: timed out")),
        WaitEnd::Gone => engine_error(EngineErrorKind::Other, format!("{what}: the pod is gone")),
    }
}

impl KubeEngine {
    /// An engine on the cluster of [`KubeSettings::kubeconfig`], else of the
    /// current kubeconfig (`KUBECONFIG`, `~/.kube/config`), else of the
    /// pod's service account, with `settings`.
    ///
    /// # Errors
    /// [`Error::Config`] when there is no usable configuration.
    pub async fn connect(settings: KubeSettings) -> Result<Self, Error> {
        let config = match settings.kubeconfig.clone() {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(&path)
                    .map_err(|e| Error::Config(Box::new(e)))?;
                kube::Config::from_custom_kubeconfig(
                    file,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .map_err(|e| Error::Config(Box::new(e)))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| Error::Config(Box::new(e)))?,
        };
        let client = Client::try_from(config).map_err(|e| Error::Config(Box::new(e)))?;
        Ok(Self::with_client(client, settings))
    }

    /// An engine over `client`.
    pub fn with_client(client: Client, settings: KubeSettings) -> Self {
        Self {
            client,
            settings: Arc::new(settings),
            creator: Creator::current(),
            stages: Arc::default(),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &KubeSettings {
        &self.settings
    }

    /// The API client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The process recorded as creator of this engine's objects.
    pub(crate) fn creator(&self) -> &Creator {
        &self.creator
    }

    /// Checks that the API server answers.
    ///
    /// # Errors
    /// The client's error, saying which server.
    pub async fn ping(&self) -> Result<String, Error> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(Error::api("ask the API server its version"))?;
        Ok(info.git_version)
    }

    fn stage(&self, spec: &Spec) -> Result<Arc<Stage>, EngineError> {
        let stages = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        stages.get(&spec.id).cloned().ok_or_else(|| {
            engine_error(
                EngineErrorKind::Misuse,
                format!("stage {} was not set up", spec.id),
            )
        })
    }

    fn container(stage: &Stage, step: &Step) -> Result<String, EngineError> {
        stage
            .containers
            .get(step_key(step))
            .cloned()
            .ok_or_else(|| {
                engine_error(
                    EngineErrorKind::Misuse,
                    format!("step {:?} is not in the stage's pod", step.name),
                )
            })
    }

    /// Points `container` at `image`: the kubelet stops what runs there
    /// (SIGTERM, the pod's grace, SIGKILL) and starts the image.
    async fn swap_image(
        &self,
        stage: &Stage,
        container: &str,
        image: &str,
    ) -> Result<(), EngineError> {
        let patch = serde_json::json!({
            "spec": { "containers": [ { "name": container, "image": image } ] }
        });
        stage
            .pods
            .patch(
                &stage.pod,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
            .map_err(Error::api(format!(
                "set the image of container {container} to {image:?}"
            )))
            .map_err(Error::into_engine)?;
        Ok(())
    }

    /// The kubelet's last warning about `container`, as `reason: message`.
    async fn why_not_started(&self, stage: &Stage, container: &str) -> String {
        let namespace = stage.pods.namespace().unwrap_or_default().to_owned();
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let list = ListParams::default().fields(&format!(
            "involvedObject.kind=Pod,involvedObject.name={},type=Warning",
            stage.pod
        ));
        let field_path = format!("spec.containers{{{container}}}");
        // The kubelet says it in several events ("Failed to pull image
        // ...: <cause>", then "Error: ErrImagePull"): all of them, in order.
        let warning = match events.list(&list).await {
            Ok(list) => {
                let mut events: Vec<Event> = list
                    .items
                    .into_iter()
                    .filter(|e| {
                        e.involved_object.field_path.as_deref() == Some(field_path.as_str())
                    })
                    .collect();
                events.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
                let mut messages: Vec<String> = Vec::new();
                for message in events.into_iter().filter_map(|e| e.message) {
                    if !messages.contains(&message) {
                        messages.push(message);
                    }
                }
                (!messages.is_empty()).then(|| messages.join("; "))
            }
            Err(e) => Some(format!(
                "the kubelet could not start it (its events cannot be read: {e})"
            )),
        };
        warning.unwrap_or_else(|| "the kubelet could not start it".into())
    }

    async fn create_objects(&self, plan: &StagePlan) -> Result<Pod, Error> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &plan.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &plan.namespace);
        let post = PostParams::default();
        let mut made = Vec::new();
        for secret in std::iter::once(&plan.secret).chain(&plan.pull_secret) {
            let name = secret.metadata.name.clone().unwrap_or_default();
            secrets
                .create(&post, secret)
                .await
                .map_err(Error::api(format!(
                    "create secret {}/{name}",
                    plan.namespace
                )))?;
            made.push(name);
        }
        let pod_name = plan.pod.metadata.name.clone().unwrap_or_default();
        let pod = pods
            .create(&post, &plan.pod)
            .await
            .map_err(Error::api(format!(
                "create pod {}/{pod_name}",
                plan.namespace
            )))?;
        // Owned by the pod: whoever deletes the pod deletes its secrets.
        if let Some(uid) = pod.metadata.uid.clone() {
            let owner = OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod_name.clone(),
                uid,
                ..OwnerReference::default()
            };
            let patch = serde_json::json!({ "metadata": { "ownerReferences": [owner] } });
            for name in made {
                if let Err(e) = secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::warn!(secret = name, "cannot make the pod own the secret: {e}");
                }
            }
        }
        Ok(pod)
    }

    /// Waits until the pod is placed and every placeholder runs.
    async fn await_placeholders(
        &self,
        stage: &Stage,
        containers: &[String],
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let what = format!("start pod {}", stage.pod);
        let scheduled = stage
            .watch
            .until(
                cancel,
                Some(Instant::now() + self.settings.schedule_timeout),
                |pod| {
                    if let Some(why) = status::stage_failure(pod, containers) {
                        return Some(Err(why));
                    }
                    status::scheduled(pod).then_some(Ok(()))
                },
            )
            .await;
        match scheduled {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                return Err(engine_error(
                    EngineErrorKind::Other,
                    format!("{what}: {why}"),
                ));
            }
            Err(WaitEnd::TimedOut) => {
                let why = match stage.watch.latest() {
                    Seen::Pod(pod) => status::unschedulable(&pod).unwrap_or_default(),
                    Seen::Gone => String::new(),
                };
                return Err(engine_error(
                    EngineErrorKind::Other,
                    format!(
                        "{what}: unschedulable for {} s: {why}",
                        self.settings.schedule_timeout.as_secs()
                    )
                    .trim_end_matches(": ")
                    .to_owned(),
                ));
            }
            Err(end) => return Err(ended_early(end, &what)),
        }
        let running = stage
            .watch
            .until(
                cancel,
                Some(Instant::now() + self.settings.start_timeout),
                |pod| {
                    if let Some(why) = status::stage_failure(pod, containers) {
                        return Some(Err(why));
                    }
                    status::all_running(pod, containers).then_some(Ok(()))
                },
            )
            .await;
        match running {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(engine_error(
                EngineErrorKind::Other,
                format!("{what}: {why}"),
            )),
            Err(end) => Err(ended_early(end, &what)),
        }
    }
}

#[async_trait]
impl Engine for KubeEngine {
    fn name(&self) -> &str {
        ENGINE
    }

    async fn setup(&self, spec: &Spec, cancel: &CancellationToken) -> Result<(), EngineError> {
        let plan = pod::plan(spec, &self.settings, &self.creator);
        let created = self
            .create_objects(&plan)
            .await
            .map_err(Error::into_engine)?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &plan.namespace);
        let pod_name = created.metadata.name.clone().unwrap_or_default();
        let done = CancellationToken::new();
        let watch = PodWatch::start(pods.clone(), pod_name.clone(), created, done.clone());
        let containers = spec
            .steps
            .iter()
            .zip(&plan.containers)
            .map(|(step, name)| (step_key(step).to_owned(), name.clone()))
            .collect();
        let stage = Arc::new(Stage {
            pods,
            pod: pod_name,
            containers,
            watch,
            done,
            unmounted_workspace: Mutex::new(spec.workspace.host_path.clone()),
        });
        self.stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.id.clone(), stage.clone());
        self.await_placeholders(&stage, &plan.containers, cancel)
            .await
    }

    async fn create(
        &self,
        spec: &Spec,
        step: &Step,
        _: &CancellationToken,
    ) -> Result<(), EngineError> {
        // The container exists since setup; only check it does.
        Self::container(&*self.stage(spec)?, step).map(drop)
    }

    async fn start(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let stage = self.stage(spec)?;
        let container = Self::container(&stage, step)?;
        self.swap_image(&stage, &container, &step.image).await?;
        let what = format!("start step {:?} (image {:?})", step.name, step.image);
        let began = stage
            .watch
            .until(
                cancel,
                Some(Instant::now() + self.settings.start_timeout),
                |pod| {
                    let c = status::container(pod, &container)?;
                    if let Some(why) = status::fatal_waiting(c).filter(|_| c.restart_count <= 1) {
                        return Some(Err(why));
                    }
                    if let Some(Err(why)) = status::step_ended(c).map(status::exit_of) {
                        return Some(Err(why));
                    }
                    if status::never_started(c) {
                        return Some(Err(String::new()));
                    }
                    status::step_began(c).then_some(Ok(()))
                },
            )
            .await;
        let began = match began {
            // The kubelet stopped the placeholder but could not start the
            // step, and will not retry (restartPolicy Never): its events
            // say why.
            Ok(Err(why)) if why.is_empty() => {
                Ok(Err(self.why_not_started(&stage, &container).await))
            }
            other => other,
        };
        match began {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => {
                let kind = if why.starts_with("ErrImageNeverPull") {
                    EngineErrorKind::NotFound
                } else {
                    EngineErrorKind::Other
                };
                Err(engine_error(kind, format!("{what}: {why}")))
            }
            Err(end) => Err(ended_early(end, &what)),
        }
    }

    async fn tail(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        let stage = self.stage(spec)?;
        let container = Self::container(&stage, step)?;
        let (tx, rx) = mpsc::channel(256);
        let follow = Follow {
            api: stage.pods.clone(),
            pod: stage.pod.clone(),
            container,
            watch: stage.watch.clone(),
            done: stage.done.clone(),
            cancel: cancel.clone(),
            grace: self.settings.stop_grace + std::time::Duration::from_secs(2),
        };
        let notice = stage
            .unmounted_workspace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(dir) = notice {
            let line = format!(
                "[runnerkit] {dir} is not in the pod (a pod cannot mount a local directory): the workspace starts empty\n"
            );
            let _ = tx.send(Ok(bytes::Bytes::from(line))).await;
        }
        tokio::spawn(follow.run(tx));
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        )))
    }

    async fn wait(
        &self,
        spec: &Spec,
        step: &Step,
        cancel: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        let stage = self.stage(spec)?;
        let container = Self::container(&stage, step)?;
        let what = format!("wait for step {:?}", step.name);
        let ended = |pod: &Pod| {
            status::container(pod, &container)
                .and_then(status::step_ended)
                .map(status::exit_of)
        };
        let exit = match stage.watch.until(cancel, None, ended).await {
            Ok(exit) => exit,
            Err(WaitEnd::Cancelled) => {
                // Stop this step only: back to the placeholder, which makes
                // the kubelet send SIGTERM and, after the grace, SIGKILL.
                let placeholder = self.settings.placeholder.clone();
                self.swap_image(&stage, &container, &placeholder).await?;
                let bound =
                    Instant::now() + self.settings.stop_grace + std::time::Duration::from_secs(10);
                let never = CancellationToken::new();
                match stage.watch.until(&never, Some(bound), ended).await {
                    Ok(exit) => exit,
                    Err(end) => return Err(ended_early(end, &what)),
                }
            }
            Err(end) => return Err(ended_early(end, &what)),
        };
        match exit {
            Ok((exit_code, oom_killed)) => Ok(ExitState {
                exit_code,
                oom_killed,
            }),
            Err(why) => Err(engine_error(
                EngineErrorKind::Other,
                format!("{what}: {why}"),
            )),
        }
    }

    async fn destroy(&self, spec: &Spec, _cancel: &CancellationToken) -> Result<(), EngineError> {
        let stage = self
            .stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&spec.id);
        if let Some(stage) = &stage {
            stage.done.cancel();
        }
        let namespace = pod::namespace_of(spec, &self.settings);
        let pod_name = names::pod_name(&spec.id);
        let selector = format!("{}={pod_name}", names::LABEL_STAGE);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let mut left = Vec::new();
        // The pod gets its grace (services see SIGTERM); nothing waits for
        // the object to vanish.
        match pods.delete(&pod_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => left.push(format!("pod {namespace}/{pod_name} ({e})")),
        }
        let list = ListParams::default().labels(&selector);
        if let Err(e) = secrets
            .delete_collection(&DeleteParams::default(), &list)
            .await
        {
            left.push(format!("secrets {namespace}/{selector} ({e})"));
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(engine_error(
                EngineErrorKind::Unavailable,
                format!("could not delete {}", left.join(", ")),
            ))
        }
    }
}

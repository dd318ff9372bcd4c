//! Compiling a `type: docker` or `type: exec` pipeline into a
//! [`runnerkit_core::Spec`] (reference §7-§9, §13-§14, §16).

mod context;
mod script;
mod settings;
mod workspace;

pub use context::{
    CompileContext, CompileError, CompileWarning, Compiled, Compiler, NotRun, StageStep,
    StepSelection,
};

use std::collections::{BTreeMap, BTreeSet};

use runnerkit_core::drone::Stage;
use runnerkit_core::{
    Device, ErrorPolicy, Mount, Platform, PullPolicy, RegistryAuth, Resources, RunPolicy, Script,
    Secret, SecretVar, Spec, Step, Volume, VolumeSource, Workspace,
};

use self::workspace::{go_duration, unix_now, workspace};
use crate::environ::{self, Environ};
use crate::model::{Pipeline, StepSpec};
use crate::registry::DockerConfig;
use crate::types::{PipelineType, ReadKeys, StepKind};
use crate::values::{EnvValue, SettingValue};

/// What the stage assembly looked up before compiling: every secret the
/// pipeline refers to (`None`: no source knows it) and the registry
/// credentials of the caller's sources.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub(crate) secrets: BTreeMap<String, Option<String>>,
    pub(crate) registries: Vec<RegistryAuth>,
}

struct Assembly<'a> {
    compiler: &'a Compiler,
    ctx: &'a CompileContext,
    pipeline: &'a Pipeline,
    docker: bool,
    windows: bool,
    workspace: Workspace,
    base_env: Environ,
    resolved: &'a Resolved,
    warnings: Vec<CompileWarning>,
    volumes: BTreeSet<String>,
}

/// A step compiled, and why it will not run, if it will not.
struct Candidate {
    step: Step,
    not_run: Option<NotRun>,
    service: bool,
    line: u64,
}

impl Compiler {
    /// Compiles `pipeline` of `pipeline_type` for the run described by
    /// `ctx`, with the engine's `keys` and what the assembly `resolved`.
    ///
    /// Lint first: this does not check names, images or trust. Null steps
    /// are skipped. Steps whose `when` does not match are left out of the
    /// spec (listed in [`Compiled::steps`] with the key), their dependents
    /// waiting for their own dependencies instead.
    pub(crate) fn compile(
        &self,
        pipeline: &Pipeline,
        pipeline_type: &PipelineType,
        keys: ReadKeys,
        ctx: &CompileContext,
        resolved: &Resolved,
    ) -> Result<Compiled, CompileError> {
        let docker = pipeline_type.step_kind() == StepKind::Container;
        let platform = platform(pipeline, &ctx.stage);
        let windows = platform.os == "windows";
        let workspace = workspace(pipeline, ctx, docker, windows);
        let mut b = Assembly {
            compiler: self,
            ctx,
            pipeline,
            docker,
            windows,
            base_env: Environ::new(),
            workspace,
            resolved,
            warnings: Vec::new(),
            volumes: pipeline
                .volumes
                .iter()
                .map(|v| v.value.name.clone())
                .collect(),
        };
        b.base_env = b.stage_environ();
        // An empty variable is not set (Drone drops them): dropped once here,
        // and each step drops only the empty ones it sets itself.
        b.base_env.retain(|_, v| !v.is_empty());

        let mut spec = Spec {
            id: ctx.spec_id.clone(),
            platform,
            workspace: b.workspace.clone(),
            labels: b.stage_labels(),
            volumes: spec_volumes(pipeline),
            options: keys.pipeline,
            ..Spec::default()
        };
        spec.registries = b.registries()?;

        let with_clone = ctx.clone && !pipeline.clone.disable;
        let mut candidates = Vec::new();
        if with_clone {
            candidates.push(Candidate {
                step: b.clone_step(),
                not_run: None,
                service: false,
                line: 0,
            });
        }
        let mut options = keys.steps.into_iter();
        let mut known = Vec::new();
        for (entry, service) in pipeline.all_steps() {
            let own = options.next().unwrap_or_default();
            if let Some(step) = &entry.value {
                let (mut compiled, when) = b.step(step, service)?;
                compiled.options = own;
                // A `when` that does not match is the reason to show: the
                // step would not run whatever the selection.
                let not_run = match when {
                    Some(key) => Some(NotRun::When {
                        key: key.to_owned(),
                    }),
                    None => ctx.selection.leaves_out(&compiled.name),
                };
                known.push(compiled.name.clone());
                candidates.push(Candidate {
                    step: compiled,
                    not_run,
                    service,
                    line: entry.line,
                });
            }
        }
        let unknown = ctx.selection.unknown(&known);
        if !unknown.is_empty() {
            return Err(CompileError::UnknownSelectedStep {
                pipeline: pipeline.display_name().to_owned(),
                unknown,
                known,
            });
        }
        let (steps, listed) = leave_out_steps_that_do_not_run(candidates, &mut spec.graph);
        spec.steps = steps;
        if docker {
            let runner_mounts = runner_volumes(&self.runner_volumes)?;
            for step in &mut spec.steps {
                step.volumes
                    .extend(runner_mounts.iter().map(|(_, mount)| mount.clone()));
            }
            spec.volumes
                .extend(runner_mounts.into_iter().map(|(volume, _)| volume));
            spec.network.options.clone_from(&self.network_options);
        }
        add_secret_environ(&mut spec, &ctx.secret_environ);
        finish_steps(&mut spec, with_clone, &ctx.spec_id);
        collect_stage_secrets(&mut spec, &resolved.secrets, &ctx.masked);
        tracing::debug!(
            pipeline = pipeline.display_name(),
            steps = spec.steps.len(),
            warnings = b.warnings.len(),
            "compiled pipeline"
        );
        Ok(Compiled {
            spec,
            warnings: b.warnings,
            steps: listed,
            pipeline: pipeline.display_name().to_owned(),
            pipeline_type: pipeline_type.name().to_owned(),
        })
    }
}

/// Splits the candidates into the spec's steps and the listing of every
/// step. A step that does not run is left out of the spec; a step that
/// depended on it depends on its dependencies instead (transitively), so
/// it still waits for them, as in Drone, where such a step is a vertex
/// that completes at once when its turn comes. Sets `graph` when the
/// pipeline is a DAG but no edge is left, so the rest still start at once
/// rather than one after another.
fn leave_out_steps_that_do_not_run(
    candidates: Vec<Candidate>,
    graph: &mut bool,
) -> (Vec<Step>, Vec<StageStep>) {
    let is_graph = candidates.iter().any(|c| !c.step.depends_on.is_empty());
    let left_out: BTreeMap<String, std::sync::Arc<[String]>> = candidates
        .iter()
        .filter(|c| c.not_run.is_some())
        .map(|c| (c.step.name.clone(), c.step.depends_on.clone()))
        .collect();
    let mut expanded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut listed = Vec::with_capacity(candidates.len());
    for c in candidates {
        let spec_index = c.not_run.is_none().then_some(steps.len());
        listed.push(StageStep {
            name: c.step.name.clone(),
            service: c.service,
            line: c.line,
            spec_index,
            not_run: c.not_run.clone(),
        });
        if c.not_run.is_some() {
            continue;
        }
        let mut step = c.step;
        if !left_out.is_empty() && step.depends_on.iter().any(|d| left_out.contains_key(d)) {
            let mut deps = Vec::new();
            for d in step.depends_on.iter() {
                through_left_out(d, &left_out, &mut expanded, &mut Vec::new(), &mut deps);
            }
            let mut seen = BTreeSet::new();
            deps.retain(|d| seen.insert(d.clone()));
            step.depends_on = deps.into();
        }
        steps.push(step);
    }
    if is_graph && steps.iter().all(|s| s.depends_on.is_empty()) {
        *graph = true;
    }
    (steps, listed)
}

/// Appends to `out` what depending on `name` means once the steps that do
/// not run are left out: `name` itself, or (for a left-out step) what its
/// own dependencies mean, memoized so that each left-out step is expanded
/// once. `path` guards against a cycle (which lint refuses anyway).
fn through_left_out(
    name: &str,
    left_out: &BTreeMap<String, std::sync::Arc<[String]>>,
    expanded: &mut BTreeMap<String, Vec<String>>,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    let Some(deps) = left_out.get(name) else {
        out.push(name.to_owned());
        return;
    };
    if let Some(done) = expanded.get(name) {
        out.extend(done.iter().cloned());
        return;
    }
    if path.iter().any(|p| p == name) {
        return;
    }
    path.push(name.to_owned());
    let mut mine = Vec::new();
    for d in deps.iter() {
        through_left_out(d, left_out, expanded, path, &mut mine);
    }
    path.pop();
    let mut seen = BTreeSet::new();
    mine.retain(|d| seen.insert(d.clone()));
    out.extend(mine.iter().cloned());
    expanded.insert(name.to_owned(), mine);
}

/// The masked runner globals (an environ plugin's masked variables): set in
/// every step as secrets are, before the step's own (so that its
/// `from_secret` of the same name wins), and masked in every log
/// (reference §12). Empty values are skipped, as empty variables are
/// dropped anyway.
fn add_secret_environ(spec: &mut Spec, environ: &BTreeMap<String, String>) {
    let globals: Vec<SecretVar> = environ
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, value)| SecretVar {
            env: name.clone(),
            value: value.clone(),
            mask: true,
        })
        .collect();
    if globals.is_empty() {
        return;
    }
    for step in &mut spec.steps {
        step.secrets.splice(0..0, globals.iter().cloned());
    }
}

fn platform(pipeline: &Pipeline, stage: &Stage) -> Platform {
    let p = &pipeline.platform;
    let or = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_owned()
        } else {
            a.to_owned()
        }
    };
    Platform {
        os: or(&p.os, &stage.os),
        arch: or(&p.arch, &stage.arch),
        variant: or(&p.variant, &stage.variant),
        version: or(&p.version, &stage.kernel),
    }
}

fn spec_volumes(pipeline: &Pipeline) -> Vec<Volume> {
    pipeline
        .volumes
        .iter()
        .filter_map(|v| {
            let v = &v.value;
            let source = if let Some(host) = &v.host {
                VolumeSource::Host {
                    path: host.path.clone(),
                }
            } else {
                let temp = v.temp.clone().unwrap_or_default();
                VolumeSource::Temp {
                    memory: temp.medium == "memory",
                    size_limit: temp.size_limit.0,
                }
            };
            (!v.name.is_empty()).then(|| Volume {
                name: v.name.clone(),
                source,
            })
        })
        .collect()
}

/// Every masked step secret, once, in `Spec.secrets`, named after its
/// `from_secret` name where known (else after its variable), then every
/// value of `masked` (masked whether or not a step uses it).
fn collect_stage_secrets(
    spec: &mut Spec,
    found: &BTreeMap<String, Option<String>>,
    masked: &[Secret],
) {
    let mut secrets: Vec<Secret> = Vec::new();
    for var in spec.steps.iter().flat_map(|s| &s.secrets) {
        if var.mask && !secrets.iter().any(|s| s.value == var.value) {
            let name = found
                .iter()
                .find(|(_, v)| v.as_deref() == Some(var.value.as_str()))
                .map_or_else(|| var.env.clone(), |(name, _)| name.clone());
            secrets.push(Secret {
                name,
                value: var.value.clone(),
                mask: true,
            });
        }
    }
    for secret in masked {
        if !secret.value.is_empty() && !secrets.iter().any(|s| s.value == secret.value) {
            secrets.push(Secret {
                mask: true,
                ..secret.clone()
            });
        }
    }
    spec.secrets = secrets;
}

/// `Compiler::runner_volumes` as host volumes of the spec and their mounts.
fn runner_volumes(specs: &[String]) -> Result<Vec<(Volume, Mount)>, CompileError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let invalid = || CompileError::RunnerVolume {
                volume: text.clone(),
            };
            let parts: Vec<&str> = text.split(':').collect();
            let (host, path, read_only) = match parts.as_slice() {
                [host, path] => (*host, *path, false),
                [host, path, "ro"] => (*host, *path, true),
                [host, path, "rw"] => (*host, *path, false),
                _ => return Err(invalid()),
            };
            if !host.starts_with('/') || !path.starts_with('/') {
                return Err(invalid());
            }
            let name = format!("_runner_volume_{i}");
            Ok((
                Volume {
                    name: name.clone(),
                    source: VolumeSource::Host {
                        path: host.to_owned(),
                    },
                },
                Mount {
                    name,
                    path: path.to_owned(),
                    read_only,
                },
            ))
        })
        .collect()
}

/// Ids, step numbers and the DAG's implicit dependency on `clone`.
fn finish_steps(spec: &mut Spec, with_clone: bool, spec_id: &str) {
    let dag = spec.steps.iter().any(|s| !s.depends_on.is_empty());
    for (i, step) in spec.steps.iter_mut().enumerate() {
        let n = i + 1;
        step.id = format!("{spec_id}-{n}");
        step.environment
            .insert("DRONE_STEP_NAME".into(), step.name.clone());
        step.environment
            .insert("DRONE_STEP_NUMBER".into(), n.to_string());
        step.labels
            .insert("io.drone.step.name".into(), step.name.clone());
        step.labels
            .insert("io.drone.step.number".into(), n.to_string());
        if !dag || step.name == "clone" && with_clone && i == 0 {
            continue;
        }
        if !with_clone {
            if step.depends_on.iter().any(|d| d == "clone") {
                step.depends_on = step
                    .depends_on
                    .iter()
                    .filter(|d| *d != "clone")
                    .cloned()
                    .collect();
            }
        } else if step.depends_on.is_empty() {
            step.depends_on = ["clone".to_owned()].into();
        }
    }
    share_dependency_lists(spec);
}

/// Gives consecutive steps with equal `depends_on` lists one shared list, so
/// that a generated pipeline (a layer of steps each depending on the whole
/// layer before) holds each list once and the runtime checks it once.
fn share_dependency_lists(spec: &mut Spec) {
    let mut previous: Option<std::sync::Arc<[String]>> = None;
    for step in &mut spec.steps {
        match &previous {
            Some(list) if !list.is_empty() && **list == *step.depends_on => {
                step.depends_on = list.clone();
            }
            _ => previous = Some(step.depends_on.clone()),
        }
    }
}

impl Assembly<'_> {
    /// The workspace's full path, joined with the platform's separator.
    fn full_path(&self) -> String {
        let ws = &self.workspace;
        if self.windows && !ws.path.is_empty() {
            format!("{}\\{}", ws.base.trim_end_matches('\\'), ws.path)
        } else {
            ws.full_path()
        }
    }

    fn warn(&mut self, step: Option<&str>, message: String) {
        // Debug, not warn: the warning reaches the user through
        // `Compiled::warnings` (the step's log); a warn line here printed
        // it a second time in `runnerkit exec`.
        tracing::debug!(step = step.unwrap_or(""), "{message}");
        self.warnings.push(CompileWarning {
            step: step.map(str::to_owned),
            message,
        });
    }

    /// Variables every step starts from (§10), later wins.
    fn stage_environ(&self) -> Environ {
        let ctx = self.ctx;
        let mut env = ctx.environ.clone();
        env.extend(ctx.build.params.clone());
        env.extend(self.pipeline.environment.clone());
        env.extend(environ::system_environ(&ctx.system));
        env.extend(environ::repo_environ(&ctx.repo));
        env.extend(environ::build_environ(&ctx.build));
        env.extend(environ::stage_environ(&ctx.stage));
        env.extend(environ::link_environ(&ctx.system, &ctx.repo, &ctx.build));
        env.extend(environ::git_environ(&ctx.build));
        if !self.workspace.base.is_empty() {
            env.insert("DRONE_WORKSPACE".into(), self.full_path());
            env.insert("DRONE_WORKSPACE_BASE".into(), self.workspace.base.clone());
            env.insert("DRONE_WORKSPACE_PATH".into(), self.workspace.path.clone());
        }
        if self.windows {
            env.insert("SHELL".into(), "powershell.exe".into());
        }
        env
    }

    fn stage_labels(&self) -> BTreeMap<String, String> {
        let ctx = self.ctx;
        let now = if ctx.now == 0 { unix_now() } else { ctx.now };
        let expires = now + ctx.repo.timeout.max(0) * 60 + 3600;
        let mut labels: BTreeMap<String, String> = [
            ("io.drone", "true".to_owned()),
            ("io.drone.protected", "false".to_owned()),
            ("io.drone.system.host", ctx.system.host.clone()),
            ("io.drone.system.proto", ctx.system.proto.clone()),
            ("io.drone.system.version", ctx.system.version.clone()),
            ("io.drone.repo.namespace", ctx.repo.namespace.clone()),
            ("io.drone.repo.name", ctx.repo.name.clone()),
            ("io.drone.repo.slug", ctx.repo.slug.clone()),
            ("io.drone.build.number", ctx.build.number.to_string()),
            ("io.drone.stage.name", ctx.stage.name.clone()),
            ("io.drone.stage.number", ctx.stage.number.to_string()),
            ("io.drone.ttl", go_duration(ctx.repo.timeout)),
            ("io.drone.created", now.to_string()),
            ("io.drone.expires", expires.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        labels.extend(self.compiler.labels.clone());
        labels
    }

    /// `image_pull_secrets` (each a `config.json`), then the registry provider.
    fn registries(&mut self) -> Result<Vec<RegistryAuth>, CompileError> {
        let pipeline_name = self.pipeline.display_name().to_owned();
        let mut out = Vec::new();
        for name in &self.pipeline.image_pull_secrets {
            match self.secret(name) {
                Some(json) => {
                    let config = DockerConfig::parse(&json, name).map_err(|source| {
                        CompileError::Registry {
                            pipeline: pipeline_name.clone(),
                            source,
                        }
                    })?;
                    out.extend(config.into_auths());
                }
                None => self.warn(
                    None,
                    format!("image_pull_secrets: secret {name:?} not found, pulling without it"),
                ),
            }
        }
        out.extend(self.resolved.registries.iter().cloned());
        Ok(out)
    }

    fn netrc(&self, step: &mut Step, is_clone: bool) {
        let Some(netrc) = &self.ctx.netrc else {
            return;
        };
        if netrc.machine.is_empty() || (self.compiler.netrc_clone_only && !is_clone) {
            return;
        }
        step.environment
            .insert("DRONE_NETRC_MACHINE".into(), netrc.machine.clone());
        step.environment
            .insert("DRONE_NETRC_USERNAME".into(), netrc.login.clone());
        step.secrets.push(SecretVar {
            env: "DRONE_NETRC_PASSWORD".into(),
            value: netrc.password.clone(),
            mask: true,
        });
        step.secrets.push(SecretVar {
            env: "DRONE_NETRC_FILE".into(),
            value: format!(
                "machine {} login {} password {}",
                netrc.machine, netrc.login, netrc.password
            ),
            mask: true,
        });
    }

    fn clone_step(&mut self) -> Step {
        let settings = &self.pipeline.clone;
        let mut env = self.base_env.clone();
        if settings.depth > 0 {
            env.insert("PLUGIN_DEPTH".into(), settings.depth.to_string());
        }
        if settings.retries > 0 {
            env.insert("PLUGIN_RETRIES".into(), settings.retries.to_string());
        }
        if settings.skip_verify {
            env.insert("PLUGIN_SKIP_VERIFY".into(), "true".into());
            env.insert("GIT_SSL_NO_VERIFY".into(), "true".into());
        }
        if settings.trace {
            env.insert("GIT_TRACE".into(), "true".into());
        }
        let mut step = Step {
            name: "clone".into(),
            environment: env,
            run_policy: RunPolicy::Always,
            ..Step::default()
        };
        if self.docker {
            step.image.clone_from(&self.compiler.clone_image);
            step.pull = PullPolicy::IfNotExists;
            step.working_dir = self.full_path();
        } else {
            let repo = &self.ctx.repo;
            let remote = if repo.git_http_url.is_empty() {
                &repo.git_ssh_url
            } else {
                &repo.git_http_url
            };
            step.script = Some(Script {
                shell: "/bin/sh".into(),
                body: script::host_clone(&self.ctx.build, remote, settings.depth),
            });
        }
        self.netrc(&mut step, true);
        step
    }

    /// The compiled step, and the `when` key that keeps it from running.
    fn step(
        &mut self,
        spec: &StepSpec,
        service: bool,
    ) -> Result<(Step, Option<&'static str>), CompileError> {
        let name = spec.name.clone();
        let (run_policy, not_run) = match spec.when.run_policy(self.ctx.match_input()) {
            Ok(policy) => (policy, None),
            Err(key) => (RunPolicy::default(), Some(key)),
        };
        let detach = service || spec.detach;
        // Drone ignores these silently; say so instead.
        if !spec.when.paths.is_empty() {
            self.warn(
                Some(&name),
                "when.paths is not evaluated (as in Drone): the step runs whatever changed".into(),
            );
        }
        if !spec.shell.is_empty() {
            self.warn(
                Some(&name),
                format!(
                    "shell: {} is ignored (as in Drone): commands run with {}",
                    spec.shell,
                    if self.windows {
                        "powershell"
                    } else {
                        "/bin/sh"
                    }
                ),
            );
        }
        let mut env = self.base_env.clone();
        let mut secrets = Vec::new();
        for (key, value) in &spec.environment {
            match value {
                EnvValue::Text(text) if text.is_empty() => {
                    env.remove(key);
                }
                EnvValue::Text(text) => {
                    env.insert(key.clone(), text.clone());
                }
                EnvValue::FromSecret(secret) => {
                    env.remove(key);
                    self.secret_var(&name, key, secret, &mut secrets)?;
                }
            }
        }
        for (key, value) in &spec.settings {
            let var = settings::plugin_key(key);
            match value {
                SettingValue::Value(v) => match settings::plugin_value(v) {
                    Some(text) if text.is_empty() => {
                        env.remove(&var);
                    }
                    Some(text) => {
                        env.insert(var, text);
                    }
                    None => {}
                },
                SettingValue::FromSecret(secret) => {
                    self.secret_var(&name, &var, secret, &mut secrets)?;
                }
            }
        }

        let mut step = Step {
            name: name.clone(),
            environment: env,
            secrets,
            depends_on: spec.depends_on.as_slice().into(),
            run_policy,
            error_policy: error_policy(&spec.failure),
            detach,
            user: spec.user.clone(),
            ..Step::default()
        };
        if !spec.commands.is_empty() {
            step.script = Some(self.script(&spec.commands));
        } else {
            step.entrypoint.clone_from(&spec.entrypoint);
            step.command.clone_from(&spec.command);
        }
        step.working_dir = if !spec.working_dir.is_empty() {
            spec.working_dir.clone()
        } else if !self.docker || (detach && spec.commands.is_empty()) {
            String::new()
        } else {
            self.full_path()
        };
        if self.docker {
            self.container_fields(spec, &mut step);
        }
        self.netrc(&mut step, false);
        Ok((step, not_run))
    }

    fn script(&self, commands: &[String]) -> Script {
        if self.windows {
            Script {
                shell: "powershell".into(),
                body: script::powershell(commands),
            }
        } else if self.docker {
            Script {
                shell: "/bin/sh".into(),
                body: script::posix_container(commands),
            }
        } else {
            Script {
                shell: "/bin/sh".into(),
                body: script::posix_host(commands),
            }
        }
    }

    /// A secret's value, as the assembly looked it up.
    fn secret(&self, name: &str) -> Option<String> {
        self.resolved.secrets.get(name).cloned().flatten()
    }

    fn secret_var(
        &mut self,
        step: &str,
        env: &str,
        secret: &str,
        out: &mut Vec<SecretVar>,
    ) -> Result<(), CompileError> {
        match self.secret(secret) {
            Some(value) => out.push(SecretVar {
                env: env.to_owned(),
                value,
                mask: true,
            }),
            None => self.warn(
                Some(step),
                format!("secret {secret:?} not found: {env} is not set"),
            ),
        }
        Ok(())
    }

    /// Image, pull policy, mounts, devices, resources, networking, privileges.
    fn container_fields(&mut self, spec: &StepSpec, step: &mut Step) {
        step.image.clone_from(&spec.image);
        step.pull = pull_policy(&spec.pull);
        for mount in &spec.volumes {
            if self.volumes.contains(&mount.name) {
                step.volumes.push(Mount {
                    name: mount.name.clone(),
                    path: mount.path.clone(),
                    read_only: false,
                });
            } else {
                self.warn(
                    Some(&spec.name),
                    format!(
                        "volume {:?} is not declared by the pipeline: not mounted at {}",
                        mount.name, mount.path
                    ),
                );
            }
        }
        for device in &spec.devices {
            step.devices.push(Device {
                name: device.name.clone(),
                path: device.path.clone(),
            });
        }
        let defaults = &self.compiler.default_resources;
        let pick = |own: u64, default: u64| if own > 0 { own } else { default };
        step.resources = Resources {
            mem_limit: pick(spec.mem_limit.0, defaults.mem_limit),
            memswap_limit: pick(spec.memswap_limit.0, defaults.memswap_limit),
            shm_size: pick(spec.shm_size.0, defaults.shm_size),
            cpu_quota: pick(spec.cpu_quota, defaults.cpu_quota),
            cpu_period: pick(spec.cpu_period, defaults.cpu_period),
            cpu_shares: pick(spec.cpu_shares, defaults.cpu_shares),
            cpu_set: if spec.cpu_set.is_empty() {
                defaults.cpu_set.clone()
            } else {
                spec.cpu_set.clone()
            },
        };
        step.network_mode.clone_from(&spec.network_mode);
        step.dns.clone_from(&spec.dns);
        step.dns_search.clone_from(&spec.dns_search);
        step.extra_hosts.clone_from(&spec.extra_hosts);
        step.privileged = spec.privileged || self.is_privileged_plugin(spec);
    }

    /// §9.4: a known Docker-building plugin image used as a plain plugin.
    fn is_privileged_plugin(&self, spec: &StepSpec) -> bool {
        const BLOCKED_ENV: [&str; 5] = [
            "XDG_RUNTIME_DIR",
            "DOCKER_OPTS",
            "DOCKER_HOST",
            "PATH",
            "HOME",
        ];
        let image = image_without_tag(&spec.image);
        self.compiler
            .privileged_images
            .iter()
            .any(|p| image_without_tag(p) == image)
            && spec.commands.is_empty()
            && spec.command.is_empty()
            && spec.entrypoint.is_empty()
            && spec.volumes.is_empty()
            && !spec
                .environment
                .keys()
                .any(|k| BLOCKED_ENV.contains(&k.as_str()))
    }
}

/// `docker.io/plugins/docker:20` ⇒ `plugins/docker`.
fn image_without_tag(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let image = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    };
    image
        .strip_prefix("docker.io/")
        .or_else(|| image.strip_prefix("index.docker.io/"))
        .unwrap_or(image)
}

fn pull_policy(text: &str) -> PullPolicy {
    match text.to_ascii_lowercase().as_str() {
        "always" => PullPolicy::Always,
        "if-not-exists" => PullPolicy::IfNotExists,
        "never" => PullPolicy::Never,
        _ => PullPolicy::Default,
    }
}

fn error_policy(text: &str) -> ErrorPolicy {
    match text {
        "ignore" => ErrorPolicy::Ignore,
        "fast" | "fast-fail" | "fail-fast" => ErrorPolicy::FailFast,
        _ => ErrorPolicy::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_volumes_parse_and_honour_read_only() {
        let v = runner_volumes(&["/cache:/cache".into(), "/etc/ssl:/etc/ssl:ro".into()]).unwrap();
        assert_eq!(v.len(), 2);
        assert!(!v[0].1.read_only);
        assert!(v[1].1.read_only);
        assert_eq!(v[1].1.path, "/etc/ssl");
        assert_eq!(
            v[1].0.source,
            VolumeSource::Host {
                path: "/etc/ssl".into()
            }
        );
        for bad in ["relative:/x", "/a", "/a:/b:rx", "/a:b"] {
            assert!(runner_volumes(&[bad.into()]).is_err(), "{bad}");
        }
    }

    fn candidate(name: &str, deps: &[&str], not_run: Option<NotRun>) -> Candidate {
        Candidate {
            step: Step {
                name: name.into(),
                depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
                ..Step::default()
            },
            not_run,
            service: false,
            line: 1,
        }
    }

    #[test]
    fn a_selection_leaves_out_what_it_does_not_name_or_excludes() {
        let selection = StepSelection {
            include: vec!["a".into(), "b".into()],
            exclude: vec!["b".into()],
        };
        assert_eq!(selection.leaves_out("a"), None);
        assert_eq!(
            selection.leaves_out("b"),
            Some(NotRun::Excluded {
                not_included: false
            })
        );
        assert_eq!(
            selection.leaves_out("c"),
            Some(NotRun::Excluded { not_included: true })
        );
        assert_eq!(StepSelection::default().leaves_out("c"), None);
        let known = ["a".to_owned()];
        assert_eq!(selection.unknown(&known), ["b"]);
    }

    #[test]
    fn dependents_wait_through_an_excluded_step() {
        let excluded = Some(NotRun::Excluded {
            not_included: false,
        });
        let mut graph = false;
        let (steps, listed) = leave_out_steps_that_do_not_run(
            vec![
                candidate("a", &[], None),
                candidate("b", &["a"], excluded.clone()),
                candidate("c", &["b"], None),
            ],
            &mut graph,
        );
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(&*steps[1].depends_on, ["a".to_owned()]);
        assert_eq!(listed[1].not_run, excluded);
        assert_eq!(listed[1].spec_index, None);
        assert_eq!(excluded.map(|r| r.to_string()).as_deref(), Some("excluded"));
    }

    #[test]
    fn policies_from_text() {
        assert_eq!(pull_policy("Always"), PullPolicy::Always);
        assert_eq!(pull_policy("IF-NOT-EXISTS"), PullPolicy::IfNotExists);
        assert_eq!(pull_policy("never"), PullPolicy::Never);
        assert_eq!(pull_policy("sometimes"), PullPolicy::Default);
        assert_eq!(error_policy("ignore"), ErrorPolicy::Ignore);
        for fast in ["fast", "fast-fail", "fail-fast"] {
            assert_eq!(error_policy(fast), ErrorPolicy::FailFast);
        }
        assert_eq!(error_policy("whatever"), ErrorPolicy::Fail);
    }

    #[test]
    fn image_names_without_tags() {
        assert_eq!(image_without_tag("plugins/docker:20"), "plugins/docker");
        assert_eq!(
            image_without_tag("docker.io/plugins/docker"),
            "plugins/docker"
        );
        assert_eq!(
            image_without_tag("host:5000/plugins/docker"),
            "host:5000/plugins/docker"
        );
        assert_eq!(image_without_tag("plugins/ecr@sha256:abc"), "plugins/ecr");
    }
}

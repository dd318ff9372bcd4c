//! The linter (reference §15): every rule of Drone's, all problems at once,
//! each naming the pipeline, the step and the line where known.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::{Manifest, ParseWarning, Pipeline, StepSpec};
use crate::types::{PipelineType, StepKind, TypeRegistry};
use crate::unknown::{KeyLevel, UnknownKey, closest};

/// One problem found by [`lint`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LintError {
    /// The pipeline's name (`default` when it has none).
    pub pipeline: String,
    /// The step or service, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// 1-based line of the step or volume, 0 when unknown.
    pub line: u64,
    /// Which rule was broken.
    pub rule: LintRule,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pipeline {:?}", self.pipeline)?;
        if let Some(step) = &self.step {
            write!(f, ", step {step:?}")?;
        }
        if self.line > 0 {
            write!(f, " (line {})", self.line)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LintError {}

/// The rules [`lint`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LintRule {
    /// A step written as `-` alone.
    NullStep,
    /// A step without a name.
    MissingName,
    /// A step name over 100 characters.
    NameTooLong,
    /// Two steps (or a step and `clone`) with one name.
    DuplicateName,
    /// Two pipelines with one name.
    DuplicatePipeline,
    /// A Docker step without an image.
    MissingImage,
    /// `depends_on` naming no step (of a step) or no pipeline (of a pipeline).
    UnknownDependency,
    /// `depends_on` forming a cycle, of steps or of pipelines.
    CyclicalDependency,
    /// A trusted-only feature in an untrusted repository.
    Untrusted,
    /// A volume without a name, with a reserved name, or declared twice; or
    /// two volumes that would become one container volume (`a/b`, `a_b`).
    InvalidVolume,
    /// A mount of a reserved volume, or under `/run/drone`.
    InvalidMount,
    /// A `workspace.base` or `workspace.path` with a `..` component: on the
    /// host it would place the workspace outside the stage's directory.
    WorkspaceEscape,
    /// A key of the pipeline type's engine has the wrong shape, or breaks
    /// one of the engine's own rules (see `EngineKeys`).
    EngineKey,
    /// A step of a host type (`type: exec`) without `commands` (nor
    /// `entrypoint` or `command`): it would start and fail with nothing to
    /// run.
    NothingToRun,
    /// A warning ([`lint_warnings`]): a key neither Drone's model nor the
    /// type's engine reads, ignored (Drone ignores it silently).
    UnknownKey,
    /// A warning ([`lint_file_warnings`]): a key written twice in one map;
    /// the last one wins, as in Drone.
    DuplicateKey,
}

const MAX_NAME: usize = 100;
const RESERVED_VOLUMES: [&str; 3] = ["workspace", "_workspace", "_docker_socket"];

struct Linter<'a> {
    pipeline: &'a Pipeline,
    errors: Vec<LintError>,
}

impl Linter<'_> {
    fn push(&mut self, step: Option<&str>, line: u64, rule: LintRule, message: String) {
        self.errors.push(LintError {
            pipeline: self.pipeline.display_name().to_owned(),
            step: step.map(str::to_owned),
            line,
            rule,
            message,
        });
    }
}

/// Lints one pipeline of `pipeline_type`: Drone's rules for its kind of
/// steps (and a host step needs something to run), then the engine's own
/// keys and rules. `trusted` is the repository's trusted flag: without it,
/// privileged mode, devices, DNS settings, extra hosts, network mode,
/// shared memory size, host volumes and memory volumes are refused.
///
/// Returns every problem found (Drone's rules in file order, then the
/// engine's); empty means clean.
pub fn lint(pipeline: &Pipeline, pipeline_type: &PipelineType, trusted: bool) -> Vec<LintError> {
    let mut problems = lint_shared(pipeline, pipeline_type, trusted);
    if let Err(engine) = pipeline_type.read_keys(pipeline, trusted) {
        problems.extend(engine);
    }
    problems
}

/// Drone's own rules (reference §15) for a pipeline of `pipeline_type`,
/// and runnerkit's one beside them: a host step needs something to run.
pub(crate) fn lint_shared(
    pipeline: &Pipeline,
    pipeline_type: &PipelineType,
    trusted: bool,
) -> Vec<LintError> {
    let mut l = Linter {
        pipeline,
        errors: Vec::new(),
    };
    let docker = pipeline_type.step_kind() == StepKind::Container;
    lint_workspace(&mut l);
    lint_volumes(&mut l, trusted);
    if docker {
        lint_volume_docker_names(&mut l);
    }

    let mut names: BTreeMap<&str, u64> = BTreeMap::new();
    if !pipeline.clone.disable {
        names.insert("clone", 0);
    }
    let (mut services, mut steps) = (0usize, 0usize);
    for (entry, service) in pipeline.all_steps() {
        let line = entry.line;
        // Its path in the document, as unknown keys name it.
        let path = if service {
            services += 1;
            format!("services[{}]", services - 1)
        } else {
            steps += 1;
            format!("steps[{}]", steps - 1)
        };
        let Some(step) = &entry.value else {
            l.push(
                None,
                line,
                LintRule::NullStep,
                "null step (a `-` with nothing after it)".into(),
            );
            continue;
        };
        let name = step.name.as_str();
        let label = (!name.is_empty()).then_some(name);
        if name.is_empty() {
            l.push(
                None,
                line,
                LintRule::MissingName,
                "missing step name".into(),
            );
        } else if name.chars().count() > MAX_NAME {
            l.push(
                label,
                line,
                LintRule::NameTooLong,
                format!("step name cannot exceed {MAX_NAME} characters"),
            );
        }
        if !name.is_empty() {
            if let Some(&first) = names.get(name) {
                let at = if first > 0 {
                    format!(" (first at line {first})")
                } else {
                    " (clone is the clone step's name)".to_owned()
                };
                l.push(
                    label,
                    line,
                    LintRule::DuplicateName,
                    format!("duplicate step name {name:?}{at}"),
                );
            } else {
                names.insert(name, line);
            }
        }
        if docker && step.image.trim().is_empty() {
            l.push(label, line, LintRule::MissingImage, "missing image".into());
        }
        // A host engine runs the script of `commands`, else `entrypoint`
        // and `command` as a program; with neither the step would start and
        // fail at run time.
        if !docker
            && step.commands.is_empty()
            && step.entrypoint.is_empty()
            && step.command.is_empty()
        {
            let message = nothing_to_run(pipeline, pipeline_type, label, service, &path);
            l.push(label, line, LintRule::NothingToRun, message);
        }
        if !trusted {
            lint_untrusted_step(&mut l, label, line, step);
        }
        lint_mounts(&mut l, label, line, step);
    }
    lint_dependencies(&mut l);
    l.errors
}

fn lint_untrusted_step(l: &mut Linter<'_>, label: Option<&str>, line: u64, step: &StepSpec) {
    let refused = [
        (step.privileged, "privileged mode"),
        (!step.devices.is_empty(), "devices"),
        (!step.dns.is_empty(), "dns"),
        (!step.dns_search.is_empty(), "dns_search"),
        (!step.extra_hosts.is_empty(), "extra_hosts"),
        (!step.network_mode.is_empty(), "network_mode"),
        (step.shm_size.0 > 0, "shm_size"),
    ];
    for (used, what) in refused {
        if used {
            l.push(
                label,
                line,
                LintRule::Untrusted,
                format!("untrusted repositories cannot use {what} (mark the repository trusted)"),
            );
        }
    }
}

fn lint_mounts(l: &mut Linter<'_>, label: Option<&str>, line: u64, step: &StepSpec) {
    for mount in step.volumes.iter().chain(&step.devices) {
        if RESERVED_VOLUMES.contains(&mount.name.as_str()) {
            l.push(
                label,
                line,
                LintRule::InvalidMount,
                format!("invalid volume name: {}", mount.name),
            );
        }
        if is_under_run_drone(&mount.path) {
            l.push(
                label,
                line,
                LintRule::InvalidMount,
                format!("cannot mount volume at {} (under /run/drone)", mount.path),
            );
        }
    }
}

/// `workspace.base` and `workspace.path` name a directory below the stage's
/// root: a `..` in either could climb out of it (the host engine creates
/// the workspace there), and no pipeline needs one, so any is refused.
fn lint_workspace(l: &mut Linter<'_>) {
    let ws = &l.pipeline.workspace;
    for (key, value) in [("base", &ws.base), ("path", &ws.path)] {
        if value.split(['/', '\\']).any(|part| part == "..") {
            let message = format!(
                "workspace.{key} {value:?} has a `..`: the workspace must stay below its base"
            );
            l.push(None, l.pipeline.line, LintRule::WorkspaceEscape, message);
        }
    }
}

/// `path`, cleaned (`.`/`..`/repeated slashes), is `/run/drone` or below.
fn is_under_run_drone(path: &str) -> bool {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.len() >= 2 && parts[0] == "run" && parts[1] == "drone"
}

fn lint_volumes(l: &mut Linter<'_>, trusted: bool) {
    let mut seen = BTreeSet::new();
    for entry in &l.pipeline.volumes {
        let (v, line) = (&entry.value, entry.line);
        let mut problems = Vec::new();
        if v.name.is_empty() {
            problems.push((LintRule::InvalidVolume, "missing volume name".to_owned()));
        } else if RESERVED_VOLUMES.contains(&v.name.as_str()) {
            problems.push((
                LintRule::InvalidVolume,
                format!("invalid volume name: {} (reserved)", v.name),
            ));
        } else if !seen.insert(v.name.as_str()) {
            problems.push((
                LintRule::InvalidVolume,
                format!("duplicate volume name: {}", v.name),
            ));
        }
        if !trusted && v.host.is_some() {
            problems.push((
                LintRule::Untrusted,
                format!(
                    "untrusted repositories cannot mount host volumes ({})",
                    v.name
                ),
            ));
        }
        if !trusted && v.temp.as_ref().is_some_and(|t| t.medium == "memory") {
            problems.push((
                LintRule::Untrusted,
                format!(
                    "untrusted repositories cannot mount in-memory volumes ({})",
                    v.name
                ),
            ));
        }
        for (rule, message) in problems {
            l.push(None, line, rule, message);
        }
    }
}

/// Two disk-backed temp volumes whose names become one Docker volume name.
///
/// The Docker engine names a temp volume's Docker volume after it, with each
/// character outside `[A-Za-z0-9_.-]` replaced by `_` (`crates/docker`,
/// `labels::sanitize`): `a/b` and `a_b` would be one volume, shared by steps
/// that meant two. In-memory volumes are tmpfs mounts without a name.
fn lint_volume_docker_names(l: &mut Linter<'_>) {
    let docker_name = |name: &str| -> String {
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut clashes = Vec::new();
    for entry in &l.pipeline.volumes {
        let v = &entry.value;
        let on_disk = v.temp.as_ref().is_some_and(|t| t.medium != "memory");
        // Empty and repeated names have their own errors already.
        if !on_disk || v.name.is_empty() {
            continue;
        }
        let docker = docker_name(&v.name);
        match seen.get(docker.as_str()) {
            Some(first) if *first != v.name => {
                clashes.push((entry.line, (*first).to_owned(), v.name.clone(), docker));
            }
            Some(_) => {}
            None => {
                seen.insert(docker, v.name.as_str());
            }
        }
    }
    for (line, first, second, docker) in clashes {
        l.push(
            None,
            line,
            LintRule::InvalidVolume,
            format!(
                "volumes {first:?} and {second:?} would share one Docker volume (both become {docker:?}): rename one"
            ),
        );
    }
}

/// Unknown dependencies, then cycles (each cycle reported once).
fn lint_dependencies(l: &mut Linter<'_>) {
    let pipeline = l.pipeline;
    let steps: Vec<(&StepSpec, u64)> = pipeline
        .all_steps()
        .filter_map(|(e, _)| e.value.as_ref().map(|s| (s, e.line)))
        .filter(|(s, _)| !s.name.is_empty())
        .collect();
    let known: BTreeSet<&str> = steps.iter().map(|(s, _)| s.name.as_str()).collect();
    for (step, line) in &steps {
        for dep in &step.depends_on {
            // `clone` is always a valid dependency: with clone disabled Drone drops it.
            if dep != "clone" && !known.contains(dep.as_str()) {
                l.push(
                    Some(&step.name),
                    *line,
                    LintRule::UnknownDependency,
                    format!("unknown step dependency: {} references {dep}", step.name),
                );
            }
        }
    }
    let lines: BTreeMap<&str, u64> = steps
        .iter()
        .map(|(s, line)| (s.name.as_str(), *line))
        .collect();
    let graph: BTreeMap<&str, &[String]> = steps
        .iter()
        .map(|(s, _)| (s.name.as_str(), s.depends_on.as_slice()))
        .collect();
    for cycle in cycles(&graph) {
        let first = cycle[0];
        l.push(
            Some(first),
            lines.get(first).copied().unwrap_or(0),
            LintRule::CyclicalDependency,
            format!("cyclical step dependency: {}", cycle_path(&cycle)),
        );
    }
}

/// `a -> b -> a`.
fn cycle_path(cycle: &[&str]) -> String {
    let mut path = cycle.join(" -> ");
    path.push_str(" -> ");
    path.push_str(cycle[0]);
    path
}

/// Every cycle of `graph` (name → the names it depends on), each once,
/// found by a depth-first search for back edges: linear in the graph.
/// Names a node depends on that are not in `graph` are left out (the
/// unknown-dependency rule reports them).
fn cycles<'a>(graph: &BTreeMap<&'a str, &'a [String]>) -> Vec<Vec<&'a str>> {
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on stack, 2 = done
    let mut reported = BTreeSet::new();
    let mut found = Vec::new();
    for start in graph.keys() {
        visit(start, graph, &mut state, &mut Vec::new(), &mut |cycle| {
            let mut key: Vec<&str> = cycle.to_vec();
            key.sort_unstable();
            if reported.insert(key) {
                found.push(cycle.to_vec());
            }
        });
    }
    found
}

fn visit<'a>(
    name: &'a str,
    graph: &BTreeMap<&'a str, &'a [String]>,
    state: &mut BTreeMap<&'a str, u8>,
    stack: &mut Vec<&'a str>,
    on_cycle: &mut dyn FnMut(&[&'a str]),
) {
    match state.get(name) {
        Some(2) => return,
        Some(1) => {
            if let Some(pos) = stack.iter().position(|n| *n == name) {
                on_cycle(&stack[pos..]);
            }
            return;
        }
        _ => {}
    }
    let Some(deps) = graph.get(name) else {
        return;
    };
    state.insert(name, 1);
    stack.push(name);
    for dep in *deps {
        if let Some((key, _)) = graph.get_key_value(dep.as_str()) {
            visit(key, graph, state, stack, on_cycle);
        }
    }
    stack.pop();
    state.insert(name, 2);
}

/// Lints a whole file as `runnerkit lint` does: the file-wide rules, then
/// every pipeline whose type `types` serves (a pipeline of another type is
/// another runner's to check, and is left alone).
pub fn lint_file(manifest: &Manifest, types: &TypeRegistry, trusted: bool) -> Vec<LintError> {
    let mut problems = lint_manifest(manifest);
    for pipeline in manifest.pipelines() {
        if let Some(pipeline_type) = types.get(pipeline.pipeline_type()) {
            problems.extend(lint(pipeline, pipeline_type, trusted));
        }
    }
    problems
}

/// Lints what spans pipelines: two pipelines with one name, a
/// `depends_on` naming no pipeline of the file, and pipelines depending
/// on each other in a cycle (the server would refuse the build).
pub fn lint_manifest(manifest: &Manifest) -> Vec<LintError> {
    let mut seen = BTreeMap::new();
    let mut errors = Vec::new();
    let problem = |p: &Pipeline, rule, message| LintError {
        pipeline: p.display_name().to_owned(),
        step: None,
        line: p.line,
        rule,
        message,
    };
    for p in manifest.pipelines() {
        if let Some(first) = seen.insert(p.display_name(), p.line) {
            errors.push(problem(
                p,
                LintRule::DuplicatePipeline,
                format!("duplicate pipeline name (first at line {first})"),
            ));
        }
    }
    for p in manifest.pipelines() {
        for dep in p
            .depends_on
            .iter()
            .filter(|d| !seen.contains_key(d.as_str()))
        {
            errors.push(problem(
                p,
                LintRule::UnknownDependency,
                format!(
                    "unknown pipeline dependency: {} references {dep}",
                    p.display_name()
                ),
            ));
        }
    }
    let graph: BTreeMap<&str, &[String]> = manifest
        .pipelines()
        .map(|p| (p.display_name(), p.depends_on.as_slice()))
        .collect();
    for cycle in cycles(&graph) {
        if let Some(p) = manifest.pipeline(Some(cycle[0])) {
            errors.push(problem(
                p,
                LintRule::CyclicalDependency,
                format!("cyclical pipeline dependency: {}", cycle_path(&cycle)),
            ));
        }
    }
    errors
}

/// Why a host step has nothing to run, naming the unknown key of the step
/// that was probably meant as `commands` (else its first unknown key).
fn nothing_to_run(
    pipeline: &Pipeline,
    pipeline_type: &PipelineType,
    label: Option<&str>,
    service: bool,
    path: &str,
) -> String {
    let what = if service { "service" } else { "step" };
    let head = match label {
        Some(name) => format!("{what} {name:?} has nothing to run"),
        None => format!("{what} has nothing to run"),
    };
    let level = if service {
        KeyLevel::Service
    } else {
        KeyLevel::Step
    };
    let engine = pipeline_type.step_keys();
    let unknown: Vec<&UnknownKey> = pipeline
        .unknown_keys
        .iter()
        .filter(|k| k.level == level && k.path == path)
        .filter(|k| !engine.contains(&k.key.as_str()))
        .collect();
    // Close to `commands`, even when closer to another key (`comand` is
    // one edit from `command`, which a host step does not run).
    let meant = unknown
        .iter()
        .find(|k| k.suggestion(["commands"]).is_some());
    match (meant, unknown.first()) {
        (Some(key), _) => format!(
            "{head} (did you mean commands? found {:?} at line {})",
            key.key, key.line
        ),
        (None, Some(key)) => format!(
            "{head} (no commands; found the unknown key {:?} at line {})",
            key.key, key.line
        ),
        (None, None) => format!("{head} (no commands)"),
    }
}

/// The keys read at `level` of a pipeline of `pipeline_type`: the model's,
/// and the engine's own at that level.
fn known_keys(level: KeyLevel, pipeline_type: &PipelineType) -> impl Iterator<Item = &str> {
    let engine = pipeline_type.engine_keys_at(level);
    level.model_keys().iter().chain(engine).copied()
}

/// The warnings of one pipeline of `pipeline_type`: every key that neither
/// the model nor the type's engine reads ([`LintRule::UnknownKey`]), in
/// file order, each with its line and, when a known key is close, the one
/// probably meant. Drone ignores such keys silently; `runnerkit lint
/// --strict` refuses them. (Keys starting with `x-`, keys holding an
/// anchor, and the keys of `settings` and `environment` are never unknown:
/// see [`UnknownKey`].)
pub fn lint_warnings(pipeline: &Pipeline, pipeline_type: &PipelineType) -> Vec<LintError> {
    pipeline
        .unknown_keys
        .iter()
        .filter(|k| {
            !pipeline_type
                .engine_keys_at(k.level)
                .contains(&k.key.as_str())
        })
        .map(|k| {
            let suggestion = closest(&k.key, known_keys(k.level, pipeline_type));
            LintError {
                pipeline: pipeline.display_name().to_owned(),
                step: k.step.clone().filter(|name| !name.is_empty()),
                line: k.line,
                rule: LintRule::UnknownKey,
                message: unknown_key_message(k, suggestion),
            }
        })
        .collect()
}

/// `unknown key `comands`, ignored (did you mean `commands`?)`, naming the
/// map below the step or pipeline it is in (`when`, `volumes[0].temp`).
fn unknown_key_message(key: &UnknownKey, suggestion: Option<&str>) -> String {
    let within = match key.level {
        KeyLevel::Pipeline | KeyLevel::Step | KeyLevel::Service => None,
        // Below a step the step is named already: `steps[2].when` is `when`.
        _ if key.step.is_some() => key.path.split_once('.').map(|(_, rest)| rest),
        _ => Some(key.path.as_str()),
    };
    let mut message = format!("unknown key `{}`", key.key);
    if let Some(within) = within {
        message.push_str(&format!(" in `{within}`"));
    }
    message.push_str(", ignored");
    if let Some(known) = suggestion {
        message.push_str(&format!(" (did you mean `{known}`?)"));
    }
    message
}

/// The warnings of a whole file, as `runnerkit lint` shows them: every
/// duplicate key ([`LintRule::DuplicateKey`], from `Manifest::warnings`),
/// then the [`lint_warnings`] of every pipeline whose type `types` serves
/// (another type's keys are its runner's to know).
pub fn lint_file_warnings(manifest: &Manifest, types: &TypeRegistry) -> Vec<LintError> {
    // Each warning names its pipeline by its document's line: looked up in
    // a map, as a search per warning is quadratic in the documents.
    let names: BTreeMap<u64, &str> = manifest
        .pipelines()
        .map(|p| (p.line, p.display_name()))
        .collect();
    let mut warnings: Vec<LintError> = manifest
        .warnings
        .iter()
        .map(|w| {
            let pipeline = names.get(&w.document_line).copied();
            duplicate_key_warning(pipeline, w)
        })
        .collect();
    for pipeline in manifest.pipelines() {
        if let Some(pipeline_type) = types.get(pipeline.pipeline_type()) {
            warnings.extend(lint_warnings(pipeline, pipeline_type));
        }
    }
    warnings
}

/// The parse warnings of `pipeline`'s document.
pub(crate) fn parse_warnings<'m>(
    manifest: &'m Manifest,
    pipeline: &'m Pipeline,
) -> impl Iterator<Item = LintError> + 'm {
    manifest
        .warnings
        .iter()
        .filter(move |w| w.document_line == pipeline.line)
        .map(move |w| parse_warning(manifest, w))
}

fn parse_warning(manifest: &Manifest, warning: &ParseWarning) -> LintError {
    let pipeline = manifest
        .pipelines()
        .find(|p| p.line == warning.document_line)
        .map(Pipeline::display_name);
    duplicate_key_warning(pipeline, warning)
}

/// A parse warning as a lint warning of `pipeline` (by its display name).
fn duplicate_key_warning(pipeline: Option<&str>, warning: &ParseWarning) -> LintError {
    LintError {
        pipeline: pipeline.unwrap_or("default").to_owned(),
        step: None,
        line: warning.line,
        rule: LintRule::DuplicateKey,
        message: warning.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint_text(text: &str, trusted: bool) -> Vec<LintError> {
        let m = Manifest::parse(text).unwrap();
        let p = m.pipeline(None).unwrap();
        let ty = match p.pipeline_type() {
            "exec" => PipelineType::exec(),
            other => PipelineType::container(other),
        };
        lint(p, &ty, trusted)
    }

    fn rules(errors: &[LintError]) -> Vec<LintRule> {
        errors.iter().map(|e| e.rule).collect()
    }

    const HEAD: &str = "kind: pipeline\ntype: docker\nname: ci\n";

    #[test]
    fn clean_pipeline_has_no_errors() {
        let text = format!(
            "{HEAD}steps:\n- name: a\n  image: alpine\n- name: b\n  image: alpine\n  depends_on: [a, clone]\n"
        );
        assert_eq!(lint_text(&text, false), []);
    }

    #[test]
    fn null_step() {
        let e = lint_text(&format!("{HEAD}steps:\n-\n- name: a\n  image: x\n"), true);
        assert_eq!(rules(&e), [LintRule::NullStep]);
        assert_eq!(e[0].line, 5);
    }

    #[test]
    fn missing_name() {
        let e = lint_text(&format!("{HEAD}steps:\n- image: x\n"), true);
        assert_eq!(rules(&e), [LintRule::MissingName]);
    }

    #[test]
    fn name_too_long() {
        let name = "n".repeat(101);
        let e = lint_text(&format!("{HEAD}steps:\n- name: {name}\n  image: x\n"), true);
        assert_eq!(rules(&e), [LintRule::NameTooLong]);
        let ok = "n".repeat(100);
        assert_eq!(
            lint_text(&format!("{HEAD}steps:\n- name: {ok}\n  image: x\n"), true),
            []
        );
    }

    #[test]
    fn duplicate_names_across_services_steps_and_clone() {
        let text = format!(
            "{HEAD}services:\n- name: db\n  image: x\nsteps:\n- name: db\n  image: x\n- name: clone\n  image: x\n"
        );
        let e = lint_text(&text, true);
        assert_eq!(
            rules(&e),
            [LintRule::DuplicateName, LintRule::DuplicateName]
        );
        assert_eq!(e[0].step.as_deref(), Some("db"));
        assert_eq!(e[0].line, 8);
        assert!(e[0].message.contains("first at line 5"), "{}", e[0].message);
        let disabled =
            format!("{HEAD}clone:\n  disable: true\nsteps:\n- name: clone\n  image: x\n");
        assert_eq!(lint_text(&disabled, true), []);
    }

    #[test]
    fn missing_image_only_for_docker() {
        let e = lint_text(
            &format!("{HEAD}steps:\n- name: a\n  commands: [ls]\n"),
            true,
        );
        assert_eq!(rules(&e), [LintRule::MissingImage]);
        let exec = "kind: pipeline\ntype: exec\nsteps:\n- name: a\n  commands: [ls]\n";
        assert_eq!(lint_text(exec, true), []);
    }

    #[test]
    fn unknown_dependency() {
        let e = lint_text(
            &format!("{HEAD}steps:\n- name: a\n  image: x\n  depends_on: [nope]\n"),
            true,
        );
        assert_eq!(rules(&e), [LintRule::UnknownDependency]);
        assert_eq!(e[0].message, "unknown step dependency: a references nope");
    }

    #[test]
    fn cyclical_dependencies_self_and_longer() {
        let e = lint_text(
            &format!("{HEAD}steps:\n- name: a\n  image: x\n  depends_on: [a]\n"),
            true,
        );
        assert_eq!(rules(&e), [LintRule::CyclicalDependency]);
        let text = format!(
            "{HEAD}steps:\n- name: a\n  image: x\n  depends_on: [c]\n- name: b\n  image: x\n  depends_on: [a]\n- name: c\n  image: x\n  depends_on: [b]\n"
        );
        let e = lint_text(&text, true);
        assert_eq!(rules(&e), [LintRule::CyclicalDependency]);
        assert_eq!(e[0].message, "cyclical step dependency: a -> c -> b -> a");
    }

    #[test]
    fn forward_references_without_cycles_are_fine() {
        let text = format!(
            "{HEAD}steps:\n- name: a\n  image: x\n  depends_on: [b]\n- name: b\n  image: x\n"
        );
        assert_eq!(lint_text(&text, true), []);
    }

    #[test]
    fn trusted_only_step_features() {
        let text = format!(
            "{HEAD}volumes:\n- name: dev\n  host: {{path: /dev/kvm}}\nsteps:\n- name: a\n  image: x\n  privileged: true\n  devices: [{{name: dev, path: /dev/kvm}}]\n  dns: [1.1.1.1]\n  dns_search: [x]\n  extra_hosts: [\"a:1.2.3.4\"]\n  network_mode: host\n  shm_size: 1gb\n"
        );
        let e = lint_text(&text, false);
        assert_eq!(e.len(), 8, "{e:#?}");
        assert!(e.iter().all(|e| e.rule == LintRule::Untrusted));
        for what in [
            "privileged",
            "devices",
            "dns",
            "dns_search",
            "extra_hosts",
            "network_mode",
            "shm_size",
            "host volumes",
        ] {
            assert!(e.iter().any(|e| e.message.contains(what)), "{what}");
        }
        assert_eq!(lint_text(&text, true), []);
    }

    #[test]
    fn memory_volumes_are_trusted_only() {
        let text = format!(
            "{HEAD}volumes:\n- name: ram\n  temp: {{medium: memory}}\n- name: disk\n  temp: {{}}\nsteps:\n- name: a\n  image: x\n"
        );
        let e = lint_text(&text, false);
        assert_eq!(rules(&e), [LintRule::Untrusted]);
        assert_eq!(e[0].line, 5);
        assert_eq!(lint_text(&text, true), []);
    }

    #[test]
    fn volume_names() {
        let text = format!(
            "{HEAD}volumes:\n- temp: {{}}\n- name: workspace\n  temp: {{}}\n- name: c\n  temp: {{}}\n- name: c\n  temp: {{}}\nsteps:\n- name: a\n  image: x\n"
        );
        let e = lint_text(&text, true);
        assert_eq!(rules(&e), [LintRule::InvalidVolume; 3]);
    }

    #[test]
    fn volumes_that_become_one_docker_volume_are_refused_naming_both() {
        let text = format!(
            "{HEAD}volumes:\n- name: a/b\n  temp: {{}}\n- name: a_b\n  temp: {{}}\n- name: c d\n  temp: {{medium: memory}}\n- name: c_d\n  temp: {{}}\nsteps:\n- name: a\n  image: x\n"
        );
        let e = lint_text(&text, true);
        assert_eq!(rules(&e), [LintRule::InvalidVolume], "{e:?}");
        assert_eq!(
            e[0].message,
            "volumes \"a/b\" and \"a_b\" would share one Docker volume (both become \"a_b\"): rename one"
        );
        assert_eq!(e[0].line, 7, "the second volume's line");
        // Host pipelines have no Docker volumes.
        let exec = text
            .replace("type: docker", "type: exec")
            .replace("  image: x\n", "  commands: [x]\n");
        assert_eq!(lint_text(&exec, true), []);
    }

    #[test]
    fn a_workspace_with_dot_dot_is_refused() {
        for (workspace, bad) in [
            ("{path: ../../x}", true),
            ("{path: a/../../x}", true),
            ("{base: /drone/.., path: src}", true),
            ("{path: 'a\\..\\..'}", true),
            ("{path: a/..b/c}", false),
            ("{base: /work, path: src/app}", false),
        ] {
            let text = format!("{HEAD}workspace: {workspace}\nsteps:\n- name: a\n  image: x\n");
            let e = lint_text(&text, true);
            if bad {
                assert_eq!(rules(&e), [LintRule::WorkspaceEscape], "{workspace}");
                assert!(e[0].message.contains(".."), "{}", e[0].message);
                assert_eq!(e[0].line, 1);
            } else {
                assert_eq!(e, [], "{workspace}");
            }
        }
    }

    #[test]
    fn reserved_mounts_and_run_drone() {
        let text = format!(
            "{HEAD}steps:\n- name: a\n  image: x\n  volumes:\n  - name: _docker_socket\n    path: /var/run/docker.sock\n  - name: c\n    path: /run/./drone/x\n"
        );
        let e = lint_text(&text, true);
        assert_eq!(rules(&e), [LintRule::InvalidMount, LintRule::InvalidMount]);
        assert!(!is_under_run_drone("/run/dronex"));
        assert!(is_under_run_drone("/run/drone"));
    }

    #[test]
    fn all_problems_are_reported_at_once_with_pipeline_and_step() {
        let text = format!(
            "{HEAD}steps:\n- name: a\n  privileged: true\n- name: a\n  image: x\n  depends_on: [z]\n"
        );
        let e = lint_text(&text, false);
        assert_eq!(
            rules(&e),
            [
                LintRule::MissingImage,
                LintRule::Untrusted,
                LintRule::DuplicateName,
                LintRule::UnknownDependency
            ]
        );
        assert_eq!(
            e[0].to_string(),
            "pipeline \"ci\", step \"a\" (line 5): missing image"
        );
    }

    #[test]
    fn duplicate_pipelines() {
        let m = Manifest::parse("kind: pipeline\nname: a\n---\nkind: pipeline\nname: a\n").unwrap();
        let e = lint_manifest(&m);
        assert_eq!(rules(&e), [LintRule::DuplicatePipeline]);
        assert_eq!(e[0].line, 3);
    }

    #[test]
    fn pipeline_dependencies_must_name_a_pipeline_and_not_loop() {
        let m = Manifest::parse(
            "kind: pipeline\nname: a\ndepends_on: [c]\n---\nkind: pipeline\nname: b\ndepends_on: [a, nope]\n---\nkind: pipeline\nname: c\ndepends_on: [b]\n",
        )
        .unwrap();
        let e = lint_manifest(&m);
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "pipeline \"b\" (line 4): unknown pipeline dependency: b references nope",
                "pipeline \"a\" (line 1): cyclical pipeline dependency: a -> c -> b -> a",
            ]
        );
        let fine = Manifest::parse(
            "kind: pipeline\nname: a\n---\nkind: pipeline\nname: b\ndepends_on: [a]\n",
        )
        .unwrap();
        assert_eq!(lint_manifest(&fine), []);
    }
}

//! What a step's process is made of: program, arguments, environment and
//! working directory. Pure: no I/O, so every rule here is unit-tested.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runnerkit_core::{Spec, Step};

use crate::HomePolicy;
use crate::error::Error;
use crate::stage::StageDirs;

/// The few variables a step inherits from the runner's own environment.
/// Everything else a step sees comes from its [`Step`].
#[derive(Debug, Clone, Default)]
pub(crate) struct HostEnv {
    /// The runner's `PATH`.
    pub path: Option<String>,
    /// The runner's `USER`.
    pub user: Option<String>,
    /// The runner's `HOME`: every step's under [`HomePolicy::Inherit`].
    pub home: Option<String>,
    /// Every variable of the runner, used only to expand `$VAR` in a step's
    /// own `PATH` (as Drone's exec runner does).
    pub all: BTreeMap<String, String>,
}

impl HostEnv {
    /// The environment of the current process.
    pub fn current() -> Self {
        let all: BTreeMap<String, String> = std::env::vars().collect();
        Self {
            path: all.get("PATH").cloned(),
            user: all.get("USER").cloned(),
            home: all.get("HOME").cloned(),
            all,
        }
    }
}

/// A step's process, fully described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// The program: the script's shell, or the first word of entrypoint+command.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// What the process gets on top of the step's own variables
    /// ([`Launch::environment`]): its secrets, and what any program expects
    /// to find. Kept apart so that the step's variables are copied once, by
    /// the spawn, rather than into this map first.
    pub env_over: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: PathBuf,
    /// The script to write before starting, and where.
    pub script: Option<(PathBuf, String)>,
}

/// The shell used when a script names none.
const DEFAULT_SHELL: &str = "/bin/sh";

/// Plans the process of `step`, a step of `spec` whose stage lives in `dirs`.
pub(crate) fn plan(
    spec: &Spec,
    step: &Step,
    dirs: &StageDirs,
    host: &HostEnv,
    home: HomePolicy,
) -> Result<Launch, Error> {
    // The script's shell runs it and is the step's `SHELL`; other steps get
    // the default as their `SHELL`.
    let shell = match &step.script {
        Some(s) if !s.shell.is_empty() => s.shell.clone(),
        _ => DEFAULT_SHELL.to_owned(),
    };
    let (program, args, script) = match &step.script {
        Some(script) => {
            let file = dirs.script_file(step);
            let args = vec!["-e".to_owned(), file.display().to_string()];
            (shell.clone(), args, Some((file, script.body.clone())))
        }
        None => {
            let mut argv = step.entrypoint.iter().chain(&step.command).cloned();
            let Some(program) = argv.next() else {
                return Err(Error::NothingToRun {
                    step: step.name.clone(),
                });
            };
            (program, argv.collect(), None)
        }
    };
    Ok(Launch {
        program,
        args,
        env_over: additions(step, dirs, host, home, &shell),
        cwd: working_dir(&step.working_dir, spec, &dirs.workspace),
        script,
    })
}

impl Launch {
    /// The process's whole environment, for `step`: its variables, then
    /// [`Launch::env_over`] (the process starts from an empty one). In the
    /// order a `Command` takes them: a later value wins.
    pub fn environment<'a>(
        &'a self,
        step: &'a Step,
    ) -> impl Iterator<Item = (&'a String, &'a String)> {
        step.environment.iter().chain(&self.env_over)
    }
}

/// What the step's process gets on top of its variables: its secrets, plus
/// what any program expects to find.
fn additions(
    step: &Step,
    dirs: &StageDirs,
    host: &HostEnv,
    home: HomePolicy,
    shell: &str,
) -> BTreeMap<String, String> {
    let mut over = BTreeMap::new();
    for secret in &step.secrets {
        over.insert(secret.env.clone(), secret.value.clone());
    }
    let set = |over: &BTreeMap<String, String>, key: &str| {
        over.contains_key(key) || step.environment.contains_key(key)
    };
    let path = match over.get("PATH").or_else(|| step.environment.get("PATH")) {
        Some(path) => Some(expand(path, &host.all)),
        None => host.path.clone(),
    };
    if let Some(path) = path {
        over.insert("PATH".into(), path);
    }
    if let Some(user) = host.user.as_ref().filter(|_| !set(&over, "USER")) {
        over.insert("USER".into(), user.clone());
    }
    if !set(&over, "SHELL") {
        over.insert("SHELL".into(), shell.to_owned());
    }
    // A `HOME` of the step's own (its `environment`, or `--env HOME` of a
    // local run) wins, as in Drone's exec runner where the step's variables
    // are merged last; the compiler never sets one, so any here was asked for.
    if !set(&over, "HOME") {
        let engine_home = match (home, &host.home) {
            (HomePolicy::Inherit, Some(h)) => h.clone(),
            // A runner without `HOME` has nothing to inherit: the stage's own
            // home at least exists and is writable.
            _ => dirs.home.display().to_string(),
        };
        over.insert("HOME".into(), engine_home);
    }
    // The compiled workspace is a container path that does not exist here.
    over.insert(
        "DRONE_WORKSPACE".into(),
        dirs.workspace.display().to_string(),
    );
    over
}

/// Expands `$NAME` and `${NAME}` from `vars`; unknown names expand to nothing.
fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
        } else if let Some(value) = vars.get(name) {
            out.push_str(value);
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Where the step runs. The compiled working directory is a path of the
/// pipeline's workspace (`/drone/src/...`), which on the host is
/// `workspace`; a relative one is relative to it; any other absolute path is
/// taken as a host path.
fn working_dir(step_dir: &str, spec: &Spec, workspace: &Path) -> PathBuf {
    if step_dir.is_empty() {
        return workspace.to_path_buf();
    }
    let full = spec.workspace.full_path();
    let full = full.trim_end_matches('/');
    if !full.is_empty() {
        if step_dir == full {
            return workspace.to_path_buf();
        }
        if let Some(rest) = step_dir
            .strip_prefix(full)
            .and_then(|r| r.strip_prefix('/'))
        {
            return workspace.join(rest);
        }
    }
    workspace.join(step_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnerkit_core::{Script, SecretVar, Workspace};

    /// The process's environment, as the spawn builds it.
    fn env(launch: &Launch, step: &Step) -> BTreeMap<String, String> {
        launch
            .environment(step)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn dirs() -> StageDirs {
        StageDirs::new(
            PathBuf::from("/tmp/rk-1"),
            None,
            &Workspace::default(),
            None,
        )
    }

    fn host() -> HostEnv {
        let all: BTreeMap<String, String> = [
            ("PATH", "/usr/bin:/bin"),
            ("USER", "ci"),
            ("GOPATH", "/go"),
            ("SECRET_OF_RUNNER", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        HostEnv {
            path: all.get("PATH").cloned(),
            user: all.get("USER").cloned(),
            home: Some("/home/ci".into()),
            all,
        }
    }

    fn spec() -> Spec {
        Spec {
            id: "s".into(),
            workspace: Workspace {
                base: "/drone/src".into(),
                ..Workspace::default()
            },
            ..Spec::default()
        }
    }

    #[test]
    fn scripts_run_as_shell_dash_e_file() {
        let step = Step {
            script: Some(Script {
                shell: "/bin/bash".into(),
                body: "echo hi\n".into(),
            }),
            ..Step::named("build")
        };
        let l = plan(&spec(), &step, &dirs(), &host(), HomePolicy::PerStage).unwrap();
        assert_eq!(l.program, "/bin/bash");
        assert_eq!(l.args[0], "-e");
        let (file, body) = l.script.clone().unwrap();
        assert_eq!(l.args[1], file.display().to_string());
        assert!(file.starts_with("/tmp/rk-1/opt"));
        assert_eq!(body, "echo hi\n");
        assert_eq!(env(&l, &step)["SHELL"], "/bin/bash");
    }

    #[test]
    fn commands_run_directly_and_need_something_to_run() {
        let step = Step {
            entrypoint: vec!["/bin/echo".into()],
            command: vec!["a".into(), "b".into()],
            ..Step::named("e")
        };
        let l = plan(&spec(), &step, &dirs(), &host(), HomePolicy::PerStage).unwrap();
        assert_eq!(
            (l.program.as_str(), l.args.clone()),
            ("/bin/echo", vec!["a".to_owned(), "b".to_owned()])
        );
        assert!(l.script.is_none());
        let err = plan(
            &spec(),
            &Step::named("empty"),
            &dirs(),
            &host(),
            HomePolicy::PerStage,
        )
        .unwrap_err();
        assert!(matches!(err, Error::NothingToRun { step } if step == "empty"));
    }

    #[test]
    fn environment_is_the_steps_plus_a_few_host_values() {
        let mut step = Step {
            entrypoint: vec!["true".into()],
            secrets: vec![SecretVar {
                env: "TOKEN".into(),
                value: "t0k".into(),
                mask: true,
            }],
            ..Step::named("e")
        };
        step.environment.insert("A".into(), "1".into());
        step.environment.insert("HOME".into(), "/root".into());
        step.environment
            .insert("DRONE_WORKSPACE".into(), "/drone/src".into());
        let l = plan(&spec(), &step, &dirs(), &host(), HomePolicy::PerStage).unwrap();
        let env = env(&l, &step);
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "A",
                "DRONE_WORKSPACE",
                "HOME",
                "PATH",
                "SHELL",
                "TOKEN",
                "USER"
            ]
        );
        assert_eq!(env["HOME"], "/root", "the step's own HOME wins");
        assert_eq!(env["DRONE_WORKSPACE"], "/tmp/rk-1/drone/src");
        assert_eq!(env["PATH"], "/usr/bin:/bin");
        assert_eq!(env["USER"], "ci");
        assert_eq!(env["TOKEN"], "t0k");
    }

    #[test]
    fn home_is_the_stages_or_the_runners_by_policy() {
        let step = Step {
            entrypoint: vec!["true".into()],
            ..Step::named("e")
        };
        let home = |policy, host: &HostEnv| {
            env(&plan(&spec(), &step, &dirs(), host, policy).unwrap(), &step)["HOME"].clone()
        };
        assert_eq!(home(HomePolicy::PerStage, &host()), "/tmp/rk-1/home/drone");
        assert_eq!(home(HomePolicy::Inherit, &host()), "/home/ci");
        let homeless = HostEnv {
            home: None,
            ..host()
        };
        assert_eq!(home(HomePolicy::Inherit, &homeless), "/tmp/rk-1/home/drone");
    }

    #[test]
    fn a_steps_path_expands_runner_variables() {
        let mut step = Step {
            entrypoint: vec!["true".into()],
            ..Step::named("e")
        };
        step.environment
            .insert("PATH".into(), "${GOPATH}/bin:$PATH:$NOPE:/x$".into());
        let l = plan(&spec(), &step, &dirs(), &host(), HomePolicy::PerStage).unwrap();
        assert_eq!(env(&l, &step)["PATH"], "/go/bin:/usr/bin:/bin::/x$");
    }

    #[test]
    fn working_dirs_map_the_pipeline_workspace_onto_the_host() {
        let ws = Path::new("/host/ws");
        let s = spec();
        assert_eq!(working_dir("", &s, ws), ws);
        assert_eq!(working_dir("/drone/src", &s, ws), ws);
        assert_eq!(
            working_dir("/drone/src/sub/dir", &s, ws),
            ws.join("sub/dir")
        );
        assert_eq!(working_dir("sub", &s, ws), ws.join("sub"));
        assert_eq!(
            working_dir("/drone/srcx", &s, ws),
            PathBuf::from("/drone/srcx")
        );
        assert_eq!(working_dir("/etc", &s, ws), PathBuf::from("/etc"));
    }

    #[test]
    fn expansion_handles_braces_and_strays() {
        let vars = host().all;
        assert_eq!(expand("a${USER}b", &vars), "acib");
        assert_eq!(expand("${unterminated", &vars), "${unterminated");
        assert_eq!(expand("$", &vars), "$");
    }
}

//! The command line: what `runnerkit` accepts, and the help it prints.

pub mod daemon;

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use daemon::{DaemonArgs, DaemonSettingsArgs, PingArgs};

/// Run Drone pipelines on this machine (no server, nothing cloned), or run
/// a runner daemon that takes stages from a Drone server.
///
/// With `exec`, the directory holding the pipeline file is the workspace:
/// `type: exec` steps run in it, `type: docker` steps get it mounted at the
/// pipeline's workspace path.
#[derive(Debug, Parser)]
#[command(name = "runnerkit", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  runnerkit exec\n  runnerkit exec ci/.drone.yml --pipeline test --secret TOKEN=abc\n  runnerkit lint --trusted\n  runnerkit compile --pipeline build > spec.json\n  runnerkit daemon --type exec /etc/runnerkit.env\n  runnerkit prune\n  runnerkit completions bash > /etc/bash_completion.d/runnerkit"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the daemon's settings costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the pipelines of a .drone.yml locally and report how they went.
    ///
    /// Runs the build a Drone server would: every pipeline whose `trigger`
    /// matches the build data (--branch, --event, --ref...), in `depends_on`
    /// order, independent ones at once; a pipeline whose dependency failed
    /// is skipped unless its `trigger.status` says failure. --pipeline NAME
    /// runs the ones named instead; --list shows the plan and runs nothing.
    /// `type: exec` pipelines run as processes on this machine, `type: docker`
    /// pipelines on the Docker daemon (DOCKER_HOST, or the default socket).
    /// Exit status: 0 the build passed (or no pipeline matched), 1 it failed,
    /// errored or was interrupted, 2 the input was refused (unreadable file,
    /// YAML or lint error, unknown pipeline, engine not available). Ctrl-C
    /// gives the running steps SIGTERM and a grace period, then cleans up; a
    /// second Ctrl-C quits at once.
    #[command(
        after_help = "Examples:\n  runnerkit exec\n  runnerkit exec examples/pipelines/exec-hello.drone.yml --secret demo_token=hunter2\n  runnerkit exec --pipeline test --branch main --event push --env GOFLAGS=-mod=vendor\n  runnerkit exec --list --event tag\n  runnerkit exec --json | jq .status"
    )]
    Exec(ExecArgs),
    /// Print the compiled pipeline (the engine-facing Spec) as JSON.
    #[command(
        after_help = "Examples:\n  runnerkit compile\n  runnerkit compile ci/.drone.yml --pipeline build | jq '.steps[].name'"
    )]
    Compile(CompileArgs),
    /// Check a .drone.yml; print one line per problem and per warning.
    ///
    /// Exit status: 0 no problem (warnings alone, such as an unknown key,
    /// do not refuse the file unless --strict), 2 problems found (or the
    /// file could not be read or parsed, or has no pipeline). Each message
    /// names the pipeline, the step and, where known, the line.
    #[command(
        after_help = "Examples:\n  runnerkit lint\n  runnerkit lint ci/.drone.yml --trusted\n  runnerkit lint --strict"
    )]
    Lint(LintArgs),
    /// Run a runner: take stages from a Drone server and run them.
    ///
    /// Configured like Drone's runners, by DRONE_* variables (each also a
    /// flag below), read from ENVFILE first, then the process environment,
    /// then the flags, the last one winning. `--type` picks the engine and
    /// the pipeline type asked for. Beside polling, it serves `/healthz`,
    /// Prometheus `/metrics` and a page of the stages running and recently
    /// done on DRONE_HTTP_BIND. At start, what crashed runs left behind is
    /// pruned, and the stages a crashed run of this runner held (its journal
    /// under RUNNERKIT_DATA_DIR) are reported `error`. SIGTERM or SIGINT: no new stages, running
    /// ones get the drain timeout to finish, then are cancelled (reported
    /// killed); a second signal cancels them at once; exit 0. Exit 1 when it cannot start (a missing or bad
    /// setting, no Docker daemon, a secret the server refuses).
    #[command(
        after_help = "Examples:\n  DRONE_RPC_HOST=drone.example.com DRONE_RPC_SECRET=... runnerkit daemon\n  runnerkit daemon --type exec --capacity 4 --labels zone:eu /etc/runnerkit.env\n  runnerkit daemon --dry-run /etc/runnerkit.env\n  curl -s localhost:3000/metrics"
    )]
    Daemon(DaemonArgs),
    /// Check that the Drone server answers and accepts the secret.
    ///
    /// Reads the server's settings as `daemon` does (ENVFILE, environment,
    /// flags) and says in one line whether the server can be reached and
    /// takes DRONE_RPC_SECRET. Exit status 0 yes, 1 no. Same as `runnerkit
    /// daemon --dry-run`, which checks the runner's other settings too.
    #[command(
        after_help = "Examples:\n  runnerkit ping /etc/runnerkit.env\n  DRONE_RPC_HOST=drone.example.com DRONE_RPC_SECRET=... runnerkit ping"
    )]
    Ping(PingArgs),
    /// Remove what crashed runs left behind, and say what was removed.
    ///
    /// Removes the containers, networks and volumes runnerkit created whose
    /// creating process is gone (a crash, a `kill -9`, a reboot), the pods
    /// and secrets of such runs on Kubernetes, and for `type: exec` the
    /// processes and temporary stage directories (below TMPDIR) they left.
    /// Never touches what a run still in progress uses, nor anything
    /// runnerkit did not create. Exit 0 when done (removing nothing
    /// included), 1 when the Docker daemon cannot be reached or an object
    /// could not be removed. The Docker daemon is DOCKER_HOST's, or the
    /// default socket.
    #[command(
        after_help = "Examples:\n  runnerkit prune\n  DOCKER_HOST=tcp://10.0.0.5:2375 runnerkit prune"
    )]
    Prune,
    /// Print a shell completion script for this command on stdout.
    ///
    /// Completes the subcommands, the flags and the values they take
    /// (`--event`, `--type`, shells). Load it from the shell's startup file
    /// or install it where the shell looks for completions.
    #[command(
        after_help = "Examples:\n  runnerkit completions bash > /etc/bash_completion.d/runnerkit\n  runnerkit completions zsh > \"${fpath[1]}/_runnerkit\"\n  runnerkit completions fish > ~/.config/fish/completions/runnerkit.fish\n  echo 'source <(runnerkit completions bash)' >> ~/.bashrc"
    )]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout: the command, then a section
    /// per subcommand with its flags.
    #[command(
        after_help = "Examples:\n  runnerkit man | man -l -\n  runnerkit man > /usr/local/share/man/man1/runnerkit.1"
    )]
    Man,
}

/// `runnerkit completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for: bash, zsh, fish, elvish or powershell.
    ///
    /// Example: `runnerkit completions zsh`
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// The pipeline file and which pipeline of it.
#[derive(Debug, Args)]
pub struct Source {
    /// The pipeline file. Its directory is the workspace.
    ///
    /// Example: `runnerkit exec ci/.drone.yml`
    #[arg(value_name = "FILE", default_value = ".drone.yml")]
    pub file: PathBuf,
    /// The pipeline to use, by name; default: the first pipeline of the file.
    ///
    /// Example: `--pipeline test`
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
}

/// What the build looks like to `when` conditions and `DRONE_*` variables.
#[derive(Debug, Args, Clone, Default)]
pub struct BuildArgs {
    /// The branch being built (`when: branch`, `DRONE_BRANCH`); default: the
    /// branch checked out where FILE is, else `main`.
    ///
    /// Example: `--branch main`
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// The event that triggered the build: one of Drone's, push,
    /// pull_request, tag, promote, rollback, cron, custom (`when: event`,
    /// `DRONE_BUILD_EVENT`); default: push. Any other is refused.
    ///
    /// Example: `--event pull_request`
    #[arg(
        long,
        value_name = "EVENT",
        value_parser = clap::builder::PossibleValuesParser::new(crate::context::EVENTS)
    )]
    pub event: Option<String>,
    /// The git reference (`when: ref`, `DRONE_COMMIT_REF`); default:
    /// `refs/heads/` and the branch.
    ///
    /// Example: `--ref refs/tags/v1.2.0`
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// The commit SHA (`DRONE_COMMIT_SHA`); default: the commit checked out
    /// where FILE is.
    ///
    /// Example: `--commit 9f2c1e0`
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
}

/// `runnerkit exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pipeline file. Its directory is the workspace unless
    /// `--workspace` says otherwise.
    ///
    /// Example: `runnerkit exec ci/.drone.yml`
    #[arg(value_name = "FILE", default_value = ".drone.yml")]
    pub file: PathBuf,
    /// Run this pipeline, by name (repeatable), whatever its `trigger`
    /// says; its `depends_on` on pipelines not named is ignored. Default:
    /// every pipeline whose `trigger` matches the build, in `depends_on`
    /// order, as the server would.
    ///
    /// Example: `--pipeline test --pipeline lint`
    #[arg(long = "pipeline", value_name = "NAME")]
    pub pipelines: Vec<String>,
    /// The directory the steps work in: `type: exec` steps run in it,
    /// `type: docker` steps get it mounted at the workspace path.
    /// Default: the directory holding FILE.
    ///
    /// Example: `--workspace ../checkout`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Show what would run for this build and why anything would not:
    /// the pipelines in order with their dependencies, and each one's
    /// steps; nothing runs. With `--json`, as one JSON object.
    ///
    /// Example: `runnerkit exec --list --branch main`
    #[arg(long)]
    pub list: bool,
    /// Treat the repository as trusted: allow privileged steps, host
    /// volumes, devices and the other trusted-only settings.
    ///
    /// Example: `--trusted`
    #[arg(long)]
    pub trusted: bool,
    /// Run a `type: exec` pipeline whose `platform` (os/arch) is not this
    /// host's; without it such a pipeline is refused (exit 2), as its steps
    /// run on this host.
    ///
    /// Example: `--platform-any`
    #[arg(long = "platform-any")]
    pub platform_any: bool,
    /// Set an environment variable in every step (repeatable); also
    /// available to `${VAR}` substitution in the file.
    ///
    /// Example: `--env GOFLAGS=-mod=vendor --env CI=true`
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// Provide a secret for `from_secret` (repeatable). Its value is masked
    /// in everything printed.
    ///
    /// Example: `--secret docker_password=hunter2`
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = key_value)]
    pub secrets: Vec<(String, String)>,
    /// Read environment variables from a dotenv file (`KEY=VALUE` lines,
    /// `#` comments, optional quotes), as if each were an `--env`; an
    /// `--env` of the same name wins.
    ///
    /// Example: `--env-file ci.env`
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Read secrets from a dotenv file, as if each were a `--secret` (and
    /// masked the same way); a `--secret` of the same name wins.
    ///
    /// Example: `--secret-file ci.secrets`
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Run only this step or service (repeatable); the others are listed
    /// as skipped, and steps depending on them wait only for what runs.
    /// A name the pipeline does not have is refused.
    ///
    /// Example: `--include test --include lint`
    #[arg(long = "include", value_name = "STEP")]
    pub include: Vec<String>,
    /// Do not run this step or service (repeatable), as if its `when` did
    /// not match. A name the pipeline does not have is refused.
    ///
    /// Example: `--exclude publish`
    #[arg(long = "exclude", value_name = "STEP")]
    pub exclude: Vec<String>,
    /// Start a serial pipeline at this step: the steps before it are
    /// reported skipped. Refused for a pipeline with `depends_on`.
    ///
    /// Example: `--resume-at test`
    #[arg(long = "resume-at", value_name = "STEP")]
    pub resume_at: Option<String>,
    /// Stop the pipeline after this long (steps killed, status killed),
    /// like a repository's timeout in Drone.
    ///
    /// Example: `--timeout 30m`
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
    pub timeout: std::time::Duration,
    /// Run at most this many steps at once (steps without `depends_on`
    /// already run one by one); default: no limit.
    ///
    /// Example: `--max-procs 2`
    #[arg(long = "max-procs", value_name = "N")]
    pub max_procs: Option<std::num::NonZeroUsize>,
    /// Keep at most this much of each step's log (`512k`, `5mb`): past it,
    /// a marker line says how much was left out. Default: every line, as a
    /// local run should (the daemon caps logs toward the server at 5 MiB).
    ///
    /// Example: `--log-limit 10mb`
    #[arg(long = "log-limit", value_name = "SIZE", value_parser = byte_size)]
    pub log_limit: Option<u64>,
    /// Print one JSON object with the result on stdout; the logs and the
    /// summary then go to stderr.
    ///
    /// Example: `runnerkit exec --json | jq '.steps[] | select(.status != "success")'`
    #[arg(long)]
    pub json: bool,
    /// Colour the logs and the summary: `auto` when they go to a terminal
    /// (stdout, or stderr with `--json`) and NO_COLOR is unset or empty, or
    /// when CLICOLOR_FORCE is set and not `0` (NO_COLOR wins); `always` and
    /// `never` whatever the output and the environment.
    ///
    /// Example: `runnerkit exec --color always | less -R`
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = crate::output::ColorChoice::Auto)]
    pub color: crate::output::ColorChoice,
    /// The build, as `when` conditions and `DRONE_*` variables see it.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// `runnerkit compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The pipeline file and pipeline.
    #[command(flatten)]
    pub source: Source,
    /// Set an environment variable in every step (repeatable), as `exec`
    /// does; also available to `${VAR}` substitution in the file.
    ///
    /// Example: `--env GOFLAGS=-mod=vendor`
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// Read environment variables from a dotenv file, as `exec` does; an
    /// `--env` of the same name wins.
    ///
    /// Example: `--env-file ci.env`
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Provide a secret for `from_secret` (repeatable), as `exec` does.
    ///
    /// Example: `--secret docker_password=hunter2`
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = key_value)]
    pub secrets: Vec<(String, String)>,
    /// Read secrets from a dotenv file, as `exec` does; a `--secret` of
    /// the same name wins.
    ///
    /// Example: `--secret-file ci.secrets`
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// The build, as `when` conditions and `DRONE_*` variables see it.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// `runnerkit lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The pipeline file.
    ///
    /// Example: `runnerkit lint ci/.drone.yml`
    #[arg(value_name = "FILE", default_value = ".drone.yml")]
    pub file: PathBuf,
    /// Lint as a trusted repository: the trusted-only settings are allowed.
    ///
    /// Example: `--trusted`
    #[arg(long)]
    pub trusted: bool,
    /// Count warnings as problems: a key no one reads (a typo Drone would
    /// ignore silently) or a key written twice then fails the file (exit 2).
    /// Without it they are printed and the exit status stays 0.
    ///
    /// Example: `runnerkit lint --strict`
    #[arg(long)]
    pub strict: bool,
}

/// Parses `KEY=VALUE`; the value may be empty and may contain `=`.
/// A size as the pipeline language writes one (`512k`, `1.5g`, bytes).
fn byte_size(text: &str) -> Result<u64, String> {
    runnerkit_manifest::ByteSize::parse(text)
        .map(|size| size.0)
        .ok_or_else(|| format!("{text:?} is not a size (write e.g. 512k, 10mb, 1g)"))
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some(("", _)) => Err(format!("{text:?}: the name before '=' is empty")),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!("{text:?}: expected NAME=VALUE")),
    }
}

/// Parses a duration such as `90s`, `30m` or `1h30m`; zero is refused, as
/// a stage that is killed at once is never what was meant.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("{text:?}: the timeout must be more than zero")),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{text:?}: {e} (expected e.g. 90s, 30m, 1h30m)")),
    }
}

/// Parses `args` for `runner`: its name in the usage and help, the types
/// it serves listed under `--type`.
///
/// # Errors
/// clap's, to print and exit with (`--help` and `--version` included).
pub fn parse<I, T>(runner: &crate::runner::Runner, args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command(runner).try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// The command line of `runner` as clap describes it: the one `parse`
/// reads, and so the one `completions` and `man` describe (the runner's
/// name, version and types, not `runnerkit`'s).
pub fn command(runner: &crate::runner::Runner) -> clap::Command {
    let types: Vec<String> = runner
        .types()
        .iter()
        .map(|t| {
            if t.about_text().is_empty() {
                format!("`{}`", t.name())
            } else {
                format!("`{}`: {}", t.name(), t.about_text())
            }
        })
        .collect();
    let type_help = format!(
        "The pipeline type asked for, and so the engine that runs it: {}. Default: {}.",
        types.join("; "),
        runner.types().iter().next().map_or("none", |t| t.name())
    );
    let mut command = Cli::command()
        .name(runner.name().to_owned())
        .bin_name(runner.name().to_owned())
        .mut_subcommand("daemon", |daemon| {
            daemon.mut_arg(runnerkit_core::settings::TYPE.name, |arg| {
                arg.help(type_help.clone()).long_help(type_help.clone())
            })
        });
    if let Some(version) = runner.version_text() {
        command = command.version(version.to_owned());
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(key_value("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(key_value("A=").unwrap(), ("A".into(), String::new()));
        assert!(key_value("A").is_err());
        assert!(key_value("=x").is_err());
    }

    #[test]
    fn exec_takes_every_documented_flag() {
        let cli = Cli::try_parse_from([
            "runnerkit",
            "exec",
            "ci.yml",
            "--pipeline",
            "p",
            "--pipeline",
            "q",
            "--workspace",
            "w",
            "--list",
            "--trusted",
            "--env",
            "A=1",
            "--env",
            "B=2",
            "--secret",
            "S=x",
            "--json",
            "--branch",
            "main",
            "--event",
            "push",
            "--ref",
            "refs/heads/main",
            "--commit",
            "abc",
            "--include",
            "a",
            "--include",
            "b",
            "--exclude",
            "c",
            "--env-file",
            "e.env",
            "--secret-file",
            "s.env",
            "--resume-at",
            "b",
            "--timeout",
            "1h30m",
            "--max-procs",
            "2",
            "--color",
            "never",
        ])
        .unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("not exec");
        };
        assert_eq!(args.file, PathBuf::from("ci.yml"));
        assert_eq!(args.pipelines, ["p", "q"]);
        assert_eq!(args.workspace, Some(PathBuf::from("w")));
        assert!(args.list);
        assert!(args.trusted && args.json);
        assert_eq!(args.env.len(), 2);
        assert_eq!(args.secrets, [("S".to_owned(), "x".to_owned())]);
        assert_eq!(args.build.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(args.include, ["a", "b"]);
        assert_eq!(args.exclude, ["c"]);
        assert_eq!(args.env_file, Some(PathBuf::from("e.env")));
        assert_eq!(args.secret_file, Some(PathBuf::from("s.env")));
        assert_eq!(args.resume_at.as_deref(), Some("b"));
        assert_eq!(args.timeout, std::time::Duration::from_secs(5400));
        assert_eq!(args.max_procs.map(std::num::NonZeroUsize::get), Some(2));
        assert_eq!(args.color, crate::output::ColorChoice::Never);
        let cli = Cli::try_parse_from(["runnerkit", "exec"]).unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("not exec");
        };
        assert_eq!(args.color, crate::output::ColorChoice::Auto);
        assert_eq!(args.timeout, std::time::Duration::from_secs(3600));
        let cli = Cli::try_parse_from(["runnerkit", "lint"]).unwrap();
        let Command::Lint(args) = cli.command else {
            panic!("not lint");
        };
        assert_eq!(args.file, PathBuf::from(".drone.yml"));
    }

    #[test]
    fn every_flag_has_help_with_an_example() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                let help = arg
                    .get_long_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                assert!(
                    help.contains("Example"),
                    "{} --{}: no example in {help:?}",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}

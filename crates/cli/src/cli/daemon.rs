//! The flags of `runnerkit daemon` and `runnerkit ping`, built from the
//! settings' declarations ([`runnerkit_core::settings`]): each flag is also
//! an environment variable, named as Drone's runners name it, and is listed
//! in `docs/daemon-settings.md`, which a test regenerates from them.
//!
//! Every value is kept as text and read in one place
//! ([`crate::daemon::settings`]), whether it came from a flag, the process
//! environment or the ENVFILE, so all three are checked the same way and an
//! error names the variable. clap knows each setting's variable only to
//! show it in `--help`: the flags hold what the command line gave, and the
//! process environment is read with the ENVFILE, under them.

use std::marker::PhantomData;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, FromArgMatches};
use runnerkit_core::settings::{self, Group, Kind, Setting};

/// `runnerkit daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Only check that the server can be reached and accepts the secret,
    /// say so in one line, and exit (0 yes, 1 no). Same as `runnerkit ping`.
    ///
    /// Example: `runnerkit daemon --dry-run /etc/runnerkit.env`
    #[arg(long)]
    pub dry_run: bool,
    /// Everything the daemon is configured with.
    #[command(flatten)]
    pub settings: DaemonSettingsArgs,
}

/// What `daemon` reads: an env file and one flag per setting.
#[derive(Debug, Args)]
pub struct DaemonSettingsArgs {
    /// A dotenv file of settings (`KEY=VALUE` lines, `#` comments), read
    /// first: the process environment and the flags win over it.
    ///
    /// Example: `runnerkit daemon /etc/runnerkit.env`
    #[arg(value_name = "ENVFILE")]
    pub envfile: Option<PathBuf>,
    /// A flag per setting.
    #[command(flatten)]
    pub flags: SettingFlags<AllSettings>,
}

impl DaemonSettingsArgs {
    /// Every setting given as a flag, by its variable name.
    pub fn given(&self) -> Vec<(&'static str, &str)> {
        self.flags.given()
    }
}

/// `runnerkit ping`: the server's settings alone.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// A dotenv file of settings (`KEY=VALUE` lines, `#` comments), read
    /// first: the process environment and the flags win over it.
    ///
    /// Example: `runnerkit ping /etc/runnerkit.env`
    #[arg(value_name = "ENVFILE")]
    pub envfile: Option<PathBuf>,
    /// A flag per server setting.
    #[command(flatten)]
    pub server: SettingFlags<ServerSettings>,
}

/// Which declared settings a command has flags for.
pub trait Scope {
    /// Whether `setting` is one of them.
    fn includes(setting: &Setting) -> bool;
}

/// Every setting: `runnerkit daemon`.
#[derive(Debug)]
pub struct AllSettings;

impl Scope for AllSettings {
    fn includes(_: &Setting) -> bool {
        true
    }
}

/// The server's settings ([`Group::Server`]): `runnerkit ping`.
#[derive(Debug)]
pub struct ServerSettings;

impl Scope for ServerSettings {
    fn includes(setting: &Setting) -> bool {
        setting.group == Group::Server
    }
}

/// The flags of the settings `S` has, and the values the command line gave
/// them, as text.
pub struct SettingFlags<S> {
    given: Vec<(&'static Setting, String)>,
    scope: PhantomData<S>,
}

impl<S: Scope> SettingFlags<S> {
    /// The settings with a flag here, in the order help lists them.
    fn settings() -> impl Iterator<Item = &'static Setting> {
        settings::ALL.iter().filter(|s| S::includes(s))
    }

    /// Every setting given as a flag, by its variable name.
    pub fn given(&self) -> Vec<(&'static str, &str)> {
        self.given
            .iter()
            .map(|(setting, value)| (setting.name, value.as_str()))
            .collect()
    }
}

impl<S> std::fmt::Debug for SettingFlags<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (setting, value) in &self.given {
            let shown = if setting.secret { "******" } else { value };
            map.entry(&setting.name, &shown);
        }
        map.finish()
    }
}

impl<S: Scope> FromArgMatches for SettingFlags<S> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = Self::settings()
            // The value clap took from the variable is ignored: the process
            // environment is read with the ENVFILE, which it must win over.
            .filter(|s| matches.value_source(s.name) == Some(ValueSource::CommandLine))
            .filter_map(|s| Some((s, matches.get_one::<String>(s.name)?.clone())))
            .collect();
        Ok(Self {
            given,
            scope: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<S: Scope> Args for SettingFlags<S> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(Self::settings().map(flag))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The flag of `setting`, its variable shown in help (never its value when
/// secret).
fn flag(setting: &'static Setting) -> Arg {
    let default = setting
        .default
        .map(|d| format!(" [default: {d}]"))
        .unwrap_or_default();
    // Short help is a summary: clap's derive drops the closing period too.
    let short = format!("{}{default}", setting.doc.trim_end_matches('.'));
    let long = format!("{}{default}\n\nExample: {}", setting.doc, example(setting));
    let arg = Arg::new(setting.name)
        .long(setting.flag)
        .env(setting.name)
        .hide_env_values(setting.secret)
        .help(short)
        .long_help(long)
        .help_heading(setting.group.title());
    match setting.kind {
        Kind::Text { value_name } => arg.value_name(value_name),
        // `--debug` alone means true; `--debug=false` is taken too.
        Kind::Bool => arg
            .value_name("BOOL")
            .num_args(0..=1)
            .default_missing_value("true"),
    }
}

/// How help shows `setting` set: a secret in the environment only, where
/// `ps` does not show it.
fn example(setting: &Setting) -> String {
    let value = shell_word(setting.example);
    let variable = format!("`{}={value}`", setting.name);
    match setting.kind {
        _ if setting.secret => variable,
        Kind::Bool => format!("`--{}` (or {variable})", setting.flag),
        Kind::Text { .. } => format!("`--{} {value}` (or {variable})", setting.flag),
    }
}

/// `text` as one word of a shell command line: quoted when it holds
/// anything but plain characters (`*`, a blank).
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:/=@+%".contains(c);
    if text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::{Cli, Command};

    /// `docs/daemon-settings.md`: every setting, group by group, with its
    /// variable, flag, default and help.
    fn settings_reference() -> String {
        let mut doc = String::from(
            "# Daemon settings\n\n\
         <!-- Generated from runnerkit_core::settings: do not edit. Update with\n     \
         RUNNERKIT_BLESS=1 cargo test -p runnerkit-cli settings_doc -->\n\n\
         `runnerkit daemon` is configured by these settings, named as Drone's runners name\n\
         them; `runnerkit ping` reads the Drone server's alone. Each is an environment\n\
         variable and a flag. They are read from the ENVFILE first (`runnerkit daemon\n\
         /etc/runnerkit.env`), then the process environment, then the flags, the last one\n\
         winning; a blank value counts as unset. A secret's value is never printed.\n",
        );
        for group in Group::ALL {
            // Writing to a String cannot fail.
            let _ = write!(
                doc,
                "\n## {}\n\n| variable | flag | default | meaning |\n| --- | --- | --- | --- |\n",
                group.title()
            );
            for setting in settings::ALL.iter().filter(|s| s.group == group) {
                let flag = match setting.kind {
                    Kind::Text { value_name } => format!("`--{} <{value_name}>`", setting.flag),
                    Kind::Bool => format!("`--{}`", setting.flag),
                };
                let default = setting
                    .default
                    .map(|d| format!("`{d}`"))
                    .unwrap_or_default();
                let secret = if setting.secret { " Secret." } else { "" };
                let _ = writeln!(
                    doc,
                    "| `{}` | {flag} | {default} | {}{secret} |",
                    setting.name,
                    setting.doc.replace('|', r"\|")
                );
            }
        }
        doc
    }

    #[test]
    fn the_extension_plugin_flags_are_settings_by_their_variable_names() {
        let cli = Cli::try_parse_from([
            "runnerkit",
            "daemon",
            "--registry-plugin-endpoint",
            "http://registry-plugin:3000",
            "--registry-plugin-token",
            "registry-token",
            "--registry-plugin-skip-verify",
            "--env-plugin-endpoint",
            "http://env-plugin:3000",
            "--env-plugin-token",
            "env-token",
            "--env-plugin-skip-verify=false",
        ])
        .unwrap();
        let Command::Daemon(args) = cli.command else {
            panic!("not daemon");
        };
        let given = args.settings.given();
        for expected in [
            (
                "DRONE_REGISTRY_PLUGIN_ENDPOINT",
                "http://registry-plugin:3000",
            ),
            ("DRONE_REGISTRY_PLUGIN_TOKEN", "registry-token"),
            ("DRONE_REGISTRY_PLUGIN_SKIP_VERIFY", "true"),
            ("DRONE_ENV_PLUGIN_ENDPOINT", "http://env-plugin:3000"),
            ("DRONE_ENV_PLUGIN_TOKEN", "env-token"),
            ("DRONE_ENV_PLUGIN_SKIP_VERIFY", "false"),
        ] {
            assert!(given.contains(&expected), "{expected:?} in {given:?}");
        }
        assert_eq!(given.len(), 6, "only what the command line gave");
        assert!(!format!("{:?}", args.settings).contains("env-token"));
    }

    #[test]
    fn daemon_has_a_flag_per_setting_and_ping_the_servers() {
        let cli = Cli::command();
        let flags = |name: &str| -> Vec<String> {
            let sub = cli.find_subcommand(name).unwrap();
            sub.get_arguments()
                .filter_map(|a| Some(a.get_env()?.to_string_lossy().into_owned()))
                .collect()
        };
        let all: Vec<String> = settings::ALL.iter().map(|s| s.name.to_owned()).collect();
        assert_eq!(flags("daemon"), all);
        assert_eq!(
            flags("ping"),
            [
                "DRONE_RPC_PROTO",
                "DRONE_RPC_HOST",
                "DRONE_RPC_SECRET",
                "DRONE_RPC_SKIP_VERIFY"
            ]
        );
    }

    #[test]
    fn help_shows_the_default_and_an_example_and_hides_secrets() {
        let long = |s: &'static Setting| flag(s).get_long_help().unwrap().to_string();
        assert_eq!(
            long(&settings::CAPACITY),
            "How many stages run at once. [default: 2]\n\n\
             Example: `--capacity 4` (or `DRONE_RUNNER_CAPACITY=4`)"
        );
        assert!(long(&settings::UI_REALM).contains("`--ui-realm 'CI runners'`"));
        assert!(long(&settings::DEBUG).contains("`--debug` (or `DRONE_DEBUG=true`)"));
        assert!(
            long(&settings::RPC_SECRET)
                .ends_with("Example: `DRONE_RPC_SECRET=bea26a2221fd8090ea38720fc445eca6`")
        );
        assert!(flag(&settings::RPC_SECRET).is_hide_env_values_set());
        assert!(!flag(&settings::RPC_HOST).is_hide_env_values_set());
    }

    #[test]
    fn settings_doc_is_up_to_date() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/daemon-settings.md");
        let expected = settings_reference();
        if std::env::var_os("RUNNERKIT_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/daemon-settings.md differs from the settings table \
             (runnerkit_core::settings); regenerate it with:\n  \
             RUNNERKIT_BLESS=1 cargo test -p runnerkit-cli settings_doc"
        );
    }
}

//! Everything the daemon is configured with, read in one place: the ENVFILE
//! first, then the process environment and the flags (clap gives a flag's
//! value, else its variable's), the later winning.
//!
//! The runner's own settings are `runnerkit-runner`'s to read
//! ([`DaemonSettings`]), the server's `runnerkit-drone`'s ([`DroneConfig`]);
//! what only the daemon has (engine type, HTTP endpoint, drain timeout, log
//! level) is read here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use runnerkit_drone::DroneConfig;
use runnerkit_runner::DaemonSettings;
use runnerkit_runner::daemon::{Environment, read_env_file};

use crate::cli::{DaemonSettingsArgs, EngineType};
use crate::logging::Verbosity;

/// Where the HTTP endpoint listens when `DRONE_HTTP_BIND` is not set, as
/// Drone's runners do.
const DEFAULT_HTTP_BIND: &str = ":3000";
/// The basic auth realm when `DRONE_UI_REALM` is not set.
const DEFAULT_REALM: &str = "runnerkit";
/// How long running stages may go on after SIGTERM, by default.
const DEFAULT_DRAIN: Duration = Duration::from_secs(60 * 60);

/// Every setting's value by variable name, the winning one.
#[derive(Clone, Default)]
pub struct Values(BTreeMap<String, String>);

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values hold secrets: names only.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Values {
    /// The variables of `envfile` under the settings `given` (by flags or
    /// in the process environment, as clap found them) and the process
    /// environment.
    pub fn load(envfile: Option<&Path>, given: &[(&'static str, &str)]) -> anyhow::Result<Self> {
        let mut values = match envfile {
            Some(path) => read_env_file(path)?,
            None => BTreeMap::new(),
        };
        if envfile.is_some() {
            // Variables clap does not know (RUNNERKIT_TYPE is an enum there)
            // still follow the rule: the process environment wins.
            for name in values.keys().cloned().collect::<Vec<_>>() {
                if let Some(value) = std::env::var_os(&name) {
                    values.insert(name, value.to_string_lossy().into_owned());
                }
            }
        }
        for (name, value) in given {
            values.insert((*name).to_owned(), (*value).to_owned());
        }
        Ok(Self(values))
    }

    /// The value of `name`, trimmed; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// As the runner's settings reader takes them.
    fn environment(&self) -> Environment {
        Environment::from_vars(self.0.clone())
    }
}

/// Basic auth in front of the stages page.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// `DRONE_UI_USERNAME`.
    pub username: String,
    /// `DRONE_UI_PASSWORD`.
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"******")
            .finish()
    }
}

/// The HTTP endpoint's settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The address to listen on, as `TcpListener::bind` takes it.
    pub bind: String,
    /// Credentials for the page, when set.
    pub auth: Option<BasicAuth>,
    /// `DRONE_UI_REALM`.
    pub realm: String,
}

/// The daemon's settings, all of them checked.
#[derive(Debug)]
pub struct Settings {
    /// `--type`: the engine and the pipeline type asked for.
    pub engine: EngineType,
    /// The server (`DRONE_RPC_*`).
    pub drone: DroneConfig,
    /// The runner (`DRONE_RUNNER_*`, `DRONE_LIMIT_*`, `DRONE_PLATFORM_*`).
    pub runner: DaemonSettings,
    /// `DRONE_HTTP_BIND`, `DRONE_UI_*`.
    pub http: HttpSettings,
    /// `RUNNERKIT_DRAIN_TIMEOUT`.
    pub drain_timeout: Duration,
}

/// The engine type: the flag or `RUNNERKIT_TYPE` in the process
/// environment, else the ENVFILE's, else `docker`.
pub fn engine_type(args: &DaemonSettingsArgs, values: &Values) -> anyhow::Result<EngineType> {
    if let Some(engine) = args.engine {
        return Ok(engine);
    }
    match values.get("RUNNERKIT_TYPE") {
        None => Ok(EngineType::Docker),
        Some(text) => EngineType::from_str(&text, true)
            .map_err(|_| anyhow::anyhow!("RUNNERKIT_TYPE: {text:?} is neither docker nor exec")),
    }
}

/// The server's settings alone: all `ping` needs.
pub fn drone(values: &Values) -> anyhow::Result<DroneConfig> {
    DroneConfig::from_lookup(|name| values.get(name)).map_err(|e| match e {
        runnerkit_drone::Error::MissingSetting { name } => anyhow::anyhow!(
            "{name} is not set: give the Drone server's {} (in the environment, the ENVFILE or --{})",
            if name == "DRONE_RPC_HOST" {
                "address"
            } else {
                "shared secret"
            },
            flag_name(name)
        ),
        other => anyhow::Error::new(other),
    })
}

/// The flag of setting `name`: `DRONE_RPC_HOST` is `--rpc-host`.
fn flag_name(name: &str) -> String {
    name.trim_start_matches("DRONE_")
        .trim_start_matches("RUNNER_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

impl Settings {
    /// Reads and checks every setting.
    pub fn read(args: &DaemonSettingsArgs, values: &Values) -> anyhow::Result<Self> {
        let engine = engine_type(args, values)?;
        let drone = drone(values)?;
        let runner = DaemonSettings::from_environment(&values.environment())?;
        let drain_timeout = match values.get("RUNNERKIT_DRAIN_TIMEOUT") {
            None => DEFAULT_DRAIN,
            Some(text) => parse_duration(&text)
                .with_context(|| format!("RUNNERKIT_DRAIN_TIMEOUT: {text:?}"))?,
        };
        let auth = match (
            values.get("DRONE_UI_USERNAME"),
            values.get("DRONE_UI_PASSWORD"),
        ) {
            (Some(username), Some(password)) => Some(BasicAuth { username, password }),
            (None, None) => None,
            _ => bail!("DRONE_UI_USERNAME and DRONE_UI_PASSWORD go together: set both or neither"),
        };
        let bind = values
            .get("DRONE_HTTP_BIND")
            .unwrap_or_else(|| DEFAULT_HTTP_BIND.to_owned());
        Ok(Self {
            engine,
            drone,
            runner,
            http: HttpSettings {
                bind: listen_address(&bind),
                auth,
                realm: values
                    .get("DRONE_UI_REALM")
                    .unwrap_or_else(|| DEFAULT_REALM.to_owned()),
            },
            drain_timeout,
        })
    }
}

/// How much to log: `DRONE_TRACE`, else `DRONE_DEBUG`, else info.
pub fn verbosity(values: &Values) -> anyhow::Result<Verbosity> {
    if boolean(values, "DRONE_TRACE")? {
        Ok(Verbosity::Trace)
    } else if boolean(values, "DRONE_DEBUG")? {
        Ok(Verbosity::Debug)
    } else {
        Ok(Verbosity::Info)
    }
}

/// Go's `strconv.ParseBool`, as Drone reads its booleans; unset is false.
fn boolean(values: &Values, name: &str) -> anyhow::Result<bool> {
    match values.get(name).as_deref() {
        None => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => bail!("{name}: {other:?} is not a boolean (true or false)"),
    }
}

/// Go's `:3000` means every interface.
fn listen_address(bind: &str) -> String {
    if bind.starts_with(':') {
        format!("0.0.0.0{bind}")
    } else {
        bind.to_owned()
    }
}

/// A duration as Go writes one: `90s`, `15m`, `1h30m`, `500ms`, `0`.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        bail!("an empty duration");
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| anyhow::anyhow!("a number without a unit (s, m, h)"))?;
        if digits == 0 {
            bail!("expected a number, e.g. 90s, 15m or 1h30m");
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| anyhow::anyhow!("{:?} is not a number", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            other => bail!("unknown unit {other:?}: use ms, s, m or h"),
        };
        rest = &rest[unit_len..];
        total +=
            Duration::try_from_secs_f64(seconds).map_err(|_| anyhow::anyhow!("out of range"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        Values(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "10", "m", "5d", "1h-2m", "s10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_server_settings_say_what_to_set() {
        let err = drone(&values(&[("DRONE_RPC_SECRET", "s")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DRONE_RPC_HOST is not set: give the Drone server's address (in the environment, the ENVFILE or --rpc-host)"
        );
        let err = drone(&values(&[("DRONE_RPC_HOST", "h")])).unwrap_err();
        assert!(err.to_string().contains("--rpc-secret"), "{err}");
    }

    #[test]
    fn daemon_settings_have_drones_defaults() {
        use clap::Parser;
        let crate::cli::Command::Daemon(args) =
            crate::cli::Cli::parse_from(["runnerkit", "daemon"]).command
        else {
            panic!("not daemon");
        };
        let args = args.settings;
        let v = values(&[("DRONE_RPC_HOST", "drone:80"), ("DRONE_RPC_SECRET", "s")]);
        let settings = Settings::read(&args, &v).unwrap();
        assert_eq!(settings.engine, EngineType::Docker);
        assert_eq!(settings.http.bind, "0.0.0.0:3000");
        assert!(settings.http.auth.is_none());
        assert_eq!(settings.drain_timeout, DEFAULT_DRAIN);
        assert_eq!(settings.runner.capacity, 2);
        assert_eq!(verbosity(&v).unwrap(), Verbosity::Info);

        let v = values(&[
            ("DRONE_RPC_HOST", "drone:80"),
            ("DRONE_RPC_SECRET", "s"),
            ("RUNNERKIT_TYPE", "exec"),
            ("DRONE_HTTP_BIND", "127.0.0.1:0"),
            ("DRONE_UI_USERNAME", "admin"),
            ("DRONE_UI_PASSWORD", "pw"),
            ("RUNNERKIT_DRAIN_TIMEOUT", "2m"),
            ("DRONE_DEBUG", "true"),
        ]);
        let settings = Settings::read(&args, &v).unwrap();
        assert_eq!(settings.engine, EngineType::Exec);
        assert_eq!(settings.http.bind, "127.0.0.1:0");
        assert_eq!(settings.http.auth.unwrap().username, "admin");
        assert_eq!(settings.drain_timeout, Duration::from_secs(120));
        assert_eq!(verbosity(&v).unwrap(), Verbosity::Debug);

        let half = values(&[
            ("DRONE_RPC_HOST", "drone:80"),
            ("DRONE_RPC_SECRET", "s"),
            ("DRONE_UI_PASSWORD", "pw"),
        ]);
        assert!(Settings::read(&args, &half).is_err());
        let bad = values(&[("DRONE_DEBUG", "yes please")]);
        assert!(
            verbosity(&bad)
                .unwrap_err()
                .to_string()
                .contains("DRONE_DEBUG")
        );
    }
}

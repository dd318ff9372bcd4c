//! Everything the daemon is configured with, read in one place: the ENVFILE
//! first, then the process environment, then the flags, the later winning.
//!
//! Each setting is declared once in [`runnerkit_core::settings`] and looked
//! up by its declaration. The runner's own settings are
//! `runnerkit-runner`'s to read ([`DaemonSettings`]), the server's
//! `runnerkit-drone`'s ([`DroneConfig`]); what only the daemon has (engine
//! type, HTTP endpoint, drain timeout, log level) is read here.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use runnerkit_core::settings::{
    self as declared, DATA_DIR, DEBUG, DRAIN_TIMEOUT, HTTP_BIND, RPC_HOST, Setting, TRACE, TYPE,
    UI_PASSWORD, UI_REALM, UI_USERNAME,
};
use runnerkit_drone::DroneConfig;
use runnerkit_runner::DaemonSettings;
use runnerkit_runner::daemon::Environment;

use crate::logging::Verbosity;
use crate::runner::{EngineSettings, RunnerTypes};

/// Every setting's value: the ENVFILE's under the process environment's
/// under the flags'.
#[derive(Debug, Clone, Default)]
pub struct Values(Environment);

impl Values {
    /// The variables of `envfile` under the process environment, under the
    /// settings `given` as flags (by variable name).
    pub fn load(envfile: Option<&Path>, given: &[(&'static str, &str)]) -> anyhow::Result<Self> {
        let flags = given
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()));
        Ok(Self(Environment::load(envfile)?.with_overrides(flags)))
    }

    /// The value of `setting`, trimmed; its default when unset or blank.
    pub fn get(&self, setting: &Setting) -> Option<String> {
        self.0.value(setting)
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
    /// `RUNNERKIT_TYPE` (`--type`): the pipeline type asked for, one the
    /// runner serves (and so the engine).
    pub kind_type: String,
    /// The server (`DRONE_RPC_*`).
    pub drone: DroneConfig,
    /// The runner (`DRONE_RUNNER_*`, `DRONE_LIMIT_*`, `DRONE_PLATFORM_*`).
    pub runner: DaemonSettings,
    /// `DRONE_HTTP_BIND`, `DRONE_UI_*`.
    pub http: HttpSettings,
    /// `RUNNERKIT_DRAIN_TIMEOUT`.
    pub drain_timeout: Duration,
    /// `RUNNERKIT_DATA_DIR`, or its default; `None` when there is neither
    /// it nor a `HOME` (no journal is kept).
    pub data_dir: Option<std::path::PathBuf>,
    /// Every setting, for the engine factory and the prune.
    pub engine: EngineSettings,
}

/// The pipeline type named by `RUNNERKIT_TYPE` (any case; unset: the
/// first type served), checked against the types the runner serves.
fn pipeline_type(name: Option<&str>, types: &RunnerTypes) -> anyhow::Result<String> {
    let found = match name {
        None => types.iter().next(),
        Some(name) => types.iter().find(|t| t.name().eq_ignore_ascii_case(name)),
    };
    match found {
        Some(t) => Ok(t.name().to_owned()),
        None => bail!(
            "{:?} is not a pipeline type this runner serves ({})",
            name.unwrap_or_default(),
            types.names()
        ),
    }
}

/// The server's settings alone: all `ping` needs.
pub fn drone(values: &Values) -> anyhow::Result<DroneConfig> {
    DroneConfig::from_lookup(|name| values.0.get(name)).map_err(|e| match e {
        runnerkit_drone::Error::MissingSetting { name } => anyhow::anyhow!(
            "{name} is not set: give the Drone server's {} (in the environment, the ENVFILE or --{})",
            if name == RPC_HOST.name {
                "address"
            } else {
                "shared secret"
            },
            declared::find(name).map_or(name, |s| s.flag)
        ),
        other => anyhow::Error::new(other),
    })
}

impl Settings {
    /// Reads and checks every setting.
    pub fn read(values: &Values, types: &RunnerTypes) -> anyhow::Result<Self> {
        // Every setting read here has a default: unset it reads as that.
        let text = |setting: &Setting| values.get(setting).unwrap_or_default();
        let kind_type = pipeline_type(values.get(&TYPE).as_deref(), types).context(TYPE.name)?;
        let drone = drone(values)?;
        let runner = DaemonSettings::from_environment(&values.0)?;
        let drain = text(&DRAIN_TIMEOUT);
        let drain_timeout =
            parse_duration(&drain).with_context(|| format!("{}: {drain:?}", DRAIN_TIMEOUT.name))?;
        let auth = match (values.get(&UI_USERNAME), values.get(&UI_PASSWORD)) {
            (Some(username), Some(password)) => Some(BasicAuth { username, password }),
            (None, None) => None,
            _ => bail!(
                "{} and {} go together: set both or neither",
                UI_USERNAME.name,
                UI_PASSWORD.name
            ),
        };
        Ok(Self {
            kind_type,
            drone,
            runner,
            http: HttpSettings {
                bind: listen_address(&text(&HTTP_BIND)),
                auth,
                realm: text(&UI_REALM),
            },
            drain_timeout,
            data_dir: data_dir(values.get(&DATA_DIR), |name| values.0.get(name)),
            engine: {
                let values = values.0.clone();
                EngineSettings::from_fn(move |name| values.get(name))
            },
        })
    }
}

/// `RUNNERKIT_DATA_DIR` as given, else `$XDG_STATE_HOME/runnerkit`, else
/// `$HOME/.local/state/runnerkit` (the XDG base directory rules).
fn data_dir(
    given: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<std::path::PathBuf> {
    let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
    if let Some(dir) = nonempty(given) {
        return Some(dir.into());
    }
    if let Some(state) = nonempty(env("XDG_STATE_HOME")) {
        return Some(std::path::Path::new(&state).join("runnerkit"));
    }
    nonempty(env("HOME")).map(|home| std::path::Path::new(&home).join(".local/state/runnerkit"))
}

/// How much to log: `DRONE_TRACE`, else `DRONE_DEBUG`, else info.
pub fn verbosity(values: &Values) -> anyhow::Result<Verbosity> {
    if boolean(values, &TRACE)? {
        Ok(Verbosity::Trace)
    } else if boolean(values, &DEBUG)? {
        Ok(Verbosity::Debug)
    } else {
        Ok(Verbosity::Info)
    }
}

/// A boolean setting (Go's `strconv.ParseBool`, as Drone reads its
/// booleans); unset is false.
fn boolean(values: &Values, setting: &Setting) -> anyhow::Result<bool> {
    let Some(text) = values.get(setting) else {
        return Ok(false);
    };
    match declared::parse_bool(&text) {
        Some(value) => Ok(value),
        None => bail!(
            "{}: {text:?} is not a boolean (true or false)",
            setting.name
        ),
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

    #[test]
    fn the_data_dir_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let both = env(&[("XDG_STATE_HOME", "/state"), ("HOME", "/home/u")]);
        assert_eq!(data_dir(Some("/data".into()), both), Some("/data".into()));
        assert_eq!(data_dir(None, both), Some("/state/runnerkit".into()));
        let home = env(&[("XDG_STATE_HOME", ""), ("HOME", "/home/u")]);
        assert_eq!(
            data_dir(None, home),
            Some("/home/u/.local/state/runnerkit".into())
        );
        assert_eq!(data_dir(None, env(&[])), None);
    }

    fn types() -> RunnerTypes {
        RunnerTypes::for_tests(&["docker", "exec"])
    }

    #[test]
    fn an_unknown_type_is_refused_naming_the_known_ones() {
        let err = Settings::read(
            &values(&[
                ("DRONE_RPC_HOST", "drone:80"),
                ("DRONE_RPC_SECRET", "s"),
                ("RUNNERKIT_TYPE", "kubernetes"),
            ]),
            &types(),
        )
        .unwrap_err();
        assert_eq!(
            crate::output::error_chain(&err),
            "RUNNERKIT_TYPE: \"kubernetes\" is not a pipeline type this runner serves (docker, exec)"
        );
    }

    #[test]
    fn flags_win_over_the_process_environment_and_the_file() {
        let file =
            std::env::temp_dir().join(format!("runnerkit-values-{}.env", std::process::id()));
        // PATH is set in any test process: it wins over the file.
        std::fs::write(
            &file,
            "DRONE_UI_REALM=file\nDRONE_UI_USERNAME=file\nPATH=/file\n",
        )
        .unwrap();
        let v = Values::load(Some(&file), &[("DRONE_UI_USERNAME", "flag")]).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(v.get(&UI_REALM).as_deref(), Some("file"));
        assert_eq!(v.get(&UI_USERNAME).as_deref(), Some("flag"));
        assert_ne!(v.0.get("PATH").as_deref(), Some("/file"));
        assert_eq!(
            Values::default().get(&HTTP_BIND).as_deref(),
            Some("127.0.0.1:3000")
        );
    }

    fn values(pairs: &[(&str, &str)]) -> Values {
        Values(Environment::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
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
        let v = values(&[("DRONE_RPC_HOST", "drone:80"), ("DRONE_RPC_SECRET", "s")]);
        let settings = Settings::read(&v, &types()).unwrap();
        assert_eq!(settings.kind_type, "docker");
        assert_eq!(settings.http.bind, "127.0.0.1:3000");
        assert!(settings.http.auth.is_none());
        assert_eq!(settings.drain_timeout, Duration::from_secs(60 * 60));
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
        let settings = Settings::read(&v, &types()).unwrap();
        assert_eq!(settings.kind_type, "exec");
        assert_eq!(settings.http.bind, "127.0.0.1:0");
        assert_eq!(settings.http.auth.unwrap().username, "admin");
        assert_eq!(settings.drain_timeout, Duration::from_secs(120));
        assert_eq!(verbosity(&v).unwrap(), Verbosity::Debug);

        let half = values(&[
            ("DRONE_RPC_HOST", "drone:80"),
            ("DRONE_RPC_SECRET", "s"),
            ("DRONE_UI_PASSWORD", "pw"),
        ]);
        assert!(Settings::read(&half, &types()).is_err());
        let other = values(&[
            ("DRONE_RPC_HOST", "drone:80"),
            ("DRONE_RPC_SECRET", "s"),
            ("RUNNERKIT_TYPE", "EXEC"),
        ]);
        assert_eq!(Settings::read(&other, &types()).unwrap().kind_type, "exec");
        let bad = values(&[("DRONE_DEBUG", "yes please")]);
        assert!(
            verbosity(&bad)
                .unwrap_err()
                .to_string()
                .contains("DRONE_DEBUG")
        );
    }
}

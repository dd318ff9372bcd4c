//! A runner daemon's settings, read from the environment the way Drone's
//! runners read theirs (`DRONE_RUNNER_*`, `DRONE_LIMIT_*`, `DRONE_PLATFORM_*`),
//! with an optional dotenv file underneath.
//!
//! [`Environment`] is where the values come from: the dotenv file given to
//! the daemon (`ENVFILE`) first, then the process environment, which wins,
//! as in Drone (a variable set in the process, even empty, is never
//! replaced by the file), then the flags of a command line
//! ([`Environment::with_overrides`]). [`DaemonSettings`] reads the runner's
//! own settings from it and gives the [`Filter`] to poll with, the
//! [`RunnerConfig`] and the capacity. The server's address and secret
//! (`DRONE_RPC_*`) are the Drone client's to read from the same
//! [`Environment::get`]. Every setting is looked up through its declaration
//! in [`runnerkit_core::settings`], which holds its name and default.
//!
//! ```
//! use std::collections::BTreeMap;
//! use runnerkit_runner::daemon::{DaemonSettings, Environment};
//!
//! let env = Environment::from_vars(BTreeMap::from([
//!     ("DRONE_RUNNER_NAME".to_owned(), "runner-1".to_owned()),
//!     ("DRONE_RUNNER_CAPACITY".to_owned(), "4".to_owned()),
//!     ("DRONE_RUNNER_LABELS".to_owned(), "zone:eu,disk:ssd".to_owned()),
//!     ("DRONE_LIMIT_REPOS".to_owned(), "octocat/*".to_owned()),
//! ]));
//! let settings = DaemonSettings::from_environment(&env)?;
//! assert_eq!(settings.capacity, 4);
//! let filter = settings.filter("exec");
//! assert_eq!((filter.kind_type.as_str(), filter.os.as_str()), ("exec", "linux"));
//! assert_eq!(filter.labels["zone"], "eu");
//! let config = settings.runner_config();
//! assert_eq!(config.machine, "runner-1");
//! assert_eq!(config.limits.repos, ["octocat/*"]);
//! # Ok::<(), runnerkit_runner::daemon::SettingsError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runnerkit_core::drone::Filter;
use runnerkit_core::settings::{self, Setting, parse_bool};
use runnerkit_manifest::{Compiler, StaticSecrets};

use crate::{Limits, RunnerConfig};

pub use crate::envfile::read_env_file;

/// Why the daemon's settings could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A variable has a value that cannot be used.
    #[error("{name}: {reason}")]
    Invalid {
        /// The variable, e.g. `DRONE_RUNNER_CAPACITY`.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The env file could not be read.
    #[error("cannot read the env file {}", path.display())]
    ReadEnvFile {
        /// Its path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of the env file is not `KEY=VALUE`.
    #[error("{}, line {line}: {reason}", path.display())]
    EnvFile {
        /// Its path.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
}

/// Where settings are read from: the process environment over a dotenv
/// file's variables, and under values given on a command line.
#[derive(Clone, Default)]
pub struct Environment {
    file: BTreeMap<String, String>,
    process: bool,
    overrides: BTreeMap<String, String>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are secrets as often as not; names only.
        f.debug_struct("Environment")
            .field("file", &self.file.keys().collect::<Vec<_>>())
            .field("process", &self.process)
            .field("overrides", &self.overrides.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Environment {
    /// The process environment over the variables of `envfile`, if given.
    ///
    /// # Errors
    /// The file cannot be read or has a line that is not `KEY=VALUE`.
    pub fn load(envfile: Option<&Path>) -> Result<Self, SettingsError> {
        let file = match envfile {
            Some(path) => read_env_file(path)?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            file,
            process: true,
            overrides: BTreeMap::new(),
        })
    }

    /// Exactly these variables, without the process environment (tests,
    /// embedding).
    pub fn from_vars(vars: BTreeMap<String, String>) -> Self {
        Self {
            file: vars,
            process: false,
            overrides: BTreeMap::new(),
        }
    }

    /// With `vars` (by variable name) winning over the process environment
    /// and the file: the flags of a command line.
    pub fn with_overrides(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.overrides.extend(vars);
        self
    }

    /// The value of `name`: an override's, else the process's if it has the
    /// variable, else the file's.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.overrides.get(name) {
            return Some(value.clone());
        }
        if self.process
            && let Some(value) = std::env::var_os(name)
        {
            return Some(value.to_string_lossy().into_owned());
        }
        self.file.get(name).cloned()
    }

    /// The value of `setting`, as [`Setting::value_in`] reads it: trimmed,
    /// blank as unset, else its default.
    pub fn value(&self, setting: &Setting) -> Option<String> {
        setting.value_in(|name| self.get(name))
    }
}

/// The platform a runner asks stages for (`DRONE_PLATFORM_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `DRONE_PLATFORM_OS`, default `linux`.
    pub os: String,
    /// `DRONE_PLATFORM_ARCH`, default `amd64`.
    pub arch: String,
    /// `DRONE_PLATFORM_VARIANT`, e.g. `v7`.
    pub variant: String,
    /// `DRONE_PLATFORM_KERNEL`, e.g. `1809`.
    pub kernel: String,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            os: settings::PLATFORM_OS.default.unwrap_or_default().into(),
            arch: settings::PLATFORM_ARCH.default.unwrap_or_default().into(),
            variant: String::new(),
            kernel: String::new(),
        }
    }
}

/// A runner daemon's own settings, named as Drone's runners name them.
#[derive(Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `DRONE_RUNNER_NAME`, default the host name: `machine` on accept.
    pub name: String,
    /// `DRONE_RUNNER_CAPACITY`, default 2: stages run at once.
    pub capacity: usize,
    /// `DRONE_RUNNER_LABELS` (`key:value,key:value`): only stages whose
    /// `node` labels are exactly these are taken.
    pub labels: BTreeMap<String, String>,
    /// `DRONE_RUNNER_ENVIRON` (`NAME:value,...`): variables every stage sees.
    pub environ: BTreeMap<String, String>,
    /// `DRONE_RUNNER_SECRETS` (`name:value,...`): static secrets for
    /// `from_secret`, asked after the server's. A value cannot hold a comma.
    pub secrets: BTreeMap<String, String>,
    /// `DRONE_LIMIT_REPOS`, `DRONE_LIMIT_EVENTS` (comma-separated globs) and
    /// `DRONE_LIMIT_TRUSTED` (a boolean).
    pub limits: Limits,
    /// `DRONE_PLATFORM_OS`, `_ARCH`, `_VARIANT`, `_KERNEL`.
    pub platform: Platform,
    /// `DRONE_RUNNER_CLONE_IMAGE`: the clone step's image for Docker
    /// pipelines, when set.
    pub clone_image: Option<String>,
    /// `DRONE_NETRC_CLONE_ONLY`: give the clone credentials to the clone
    /// step only.
    pub netrc_clone_only: bool,
    /// `DRONE_SECRET_PLUGIN_ENDPOINT`, `_TOKEN`, `_SKIP_VERIFY`: the secret
    /// extension plugin, when an endpoint is set.
    pub secret_plugin: Option<PluginSettings>,
    /// `DRONE_REGISTRY_PLUGIN_ENDPOINT`, `_TOKEN`, `_SKIP_VERIFY`: the
    /// registry extension plugin, when an endpoint is set.
    pub registry_plugin: Option<PluginSettings>,
    /// `DRONE_ENV_PLUGIN_ENDPOINT`, `_TOKEN`, `_SKIP_VERIFY`: the environ
    /// extension plugin, when an endpoint is set.
    pub environ_plugin: Option<PluginSettings>,
}

/// Where an extension plugin is (reference §10): the secret
/// (`DRONE_SECRET_PLUGIN_*`), registry (`DRONE_REGISTRY_PLUGIN_*`) or
/// environ (`DRONE_ENV_PLUGIN_*`) plugin. The HTTP clients are
/// `runnerkit_drone::{SecretPlugin, RegistryPlugin, EnvironPlugin}`;
/// whoever builds the runner turns these settings into one and sets
/// [`RunnerConfig::secret_plugin`], [`RunnerConfig::registry_plugin`] or
/// [`RunnerConfig::environ_plugin`]. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// `DRONE_<PLUGIN>_PLUGIN_ENDPOINT`: the URL requests are `POST`ed to.
    pub endpoint: String,
    /// `DRONE_<PLUGIN>_PLUGIN_TOKEN`: the shared token requests are signed
    /// with. Required with an endpoint.
    pub token: String,
    /// `DRONE_<PLUGIN>_PLUGIN_SKIP_VERIFY`: accept any TLS certificate.
    pub skip_verify: bool,
}

impl std::fmt::Debug for PluginSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSettings")
            .field("endpoint", &self.endpoint)
            .field("token", &"******")
            .field("skip_verify", &self.skip_verify)
            .finish()
    }
}

impl std::fmt::Debug for DaemonSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonSettings")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("labels", &self.labels)
            .field("environ", &self.environ.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .field("platform", &self.platform)
            .field("clone_image", &self.clone_image)
            .field("netrc_clone_only", &self.netrc_clone_only)
            .field("secret_plugin", &self.secret_plugin)
            .field("registry_plugin", &self.registry_plugin)
            .field("environ_plugin", &self.environ_plugin)
            .finish()
    }
}

impl DaemonSettings {
    /// Reads the settings from the process environment over `envfile`.
    ///
    /// # Errors
    /// As [`Environment::load`] and [`from_environment`](Self::from_environment).
    pub fn from_env(envfile: Option<&Path>) -> Result<Self, SettingsError> {
        Self::from_environment(&Environment::load(envfile)?)
    }

    /// Reads the settings from `env`.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the first variable whose value
    /// cannot be used: a capacity that is not a positive number, a list item
    /// that is not `key:value`, a boolean that is not one of Go's (`1`, `t`,
    /// `true`, `0`, `f`, `false`, any case).
    pub fn from_environment(env: &Environment) -> Result<Self, SettingsError> {
        // The capacity has a default: unset it reads as that.
        let text = env.value(&settings::CAPACITY).unwrap_or_default();
        let capacity = match text.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(SettingsError::Invalid {
                    name: settings::CAPACITY.name,
                    reason: format!("{text:?} is not a positive number"),
                });
            }
        };
        let platform = Platform {
            os: env.value(&settings::PLATFORM_OS).unwrap_or_default(),
            arch: env.value(&settings::PLATFORM_ARCH).unwrap_or_default(),
            variant: env.value(&settings::PLATFORM_VARIANT).unwrap_or_default(),
            kernel: env.value(&settings::PLATFORM_KERNEL).unwrap_or_default(),
        };
        let secret_plugin = plugin(
            env,
            [
                &settings::SECRET_PLUGIN_ENDPOINT,
                &settings::SECRET_PLUGIN_TOKEN,
                &settings::SECRET_PLUGIN_SKIP_VERIFY,
            ],
        )?;
        let registry_plugin = plugin(
            env,
            [
                &settings::REGISTRY_PLUGIN_ENDPOINT,
                &settings::REGISTRY_PLUGIN_TOKEN,
                &settings::REGISTRY_PLUGIN_SKIP_VERIFY,
            ],
        )?;
        let environ_plugin = plugin(
            env,
            [
                &settings::ENV_PLUGIN_ENDPOINT,
                &settings::ENV_PLUGIN_TOKEN,
                &settings::ENV_PLUGIN_SKIP_VERIFY,
            ],
        )?;
        Ok(Self {
            name: env.value(&settings::NAME).unwrap_or_else(host_name),
            capacity,
            labels: pairs(env, &settings::LABELS)?,
            environ: pairs(env, &settings::ENVIRON)?,
            secrets: pairs(env, &settings::SECRETS)?,
            limits: Limits {
                repos: list(env, &settings::LIMIT_REPOS),
                events: list(env, &settings::LIMIT_EVENTS),
                trusted: boolean(env, &settings::LIMIT_TRUSTED)?,
            },
            platform,
            clone_image: env.value(&settings::CLONE_IMAGE),
            netrc_clone_only: boolean(env, &settings::NETRC_CLONE_ONLY)?,
            secret_plugin,
            registry_plugin,
            environ_plugin,
        })
    }

    /// The filter to request stages of pipeline type `kind_type` (`docker`,
    /// `exec`...) with.
    pub fn filter(&self, kind_type: &str) -> Filter {
        Filter {
            kind: "pipeline".into(),
            kind_type: kind_type.into(),
            os: self.platform.os.clone(),
            arch: self.platform.arch.clone(),
            variant: self.platform.variant.clone(),
            kernel: self.platform.kernel.clone(),
            labels: self.labels.clone(),
        }
    }

    /// A [`RunnerConfig`] with these settings (name, environment, static
    /// secrets, limits, clone settings) and defaults for the rest. The
    /// extension plugins are not set: they need an HTTP client, which this
    /// crate does not have (see [`PluginSettings`]).
    pub fn runner_config(&self) -> RunnerConfig {
        let mut compiler = Compiler {
            netrc_clone_only: self.netrc_clone_only,
            ..Compiler::default()
        };
        if let Some(image) = &self.clone_image {
            compiler.clone_image.clone_from(image);
        }
        let mut secrets: Vec<Arc<dyn runnerkit_manifest::SecretProvider>> = Vec::new();
        if !self.secrets.is_empty() {
            secrets.push(Arc::new(StaticSecrets::new(self.secrets.clone())));
        }
        RunnerConfig {
            machine: self.name.clone(),
            environ: self.environ.clone(),
            secrets,
            limits: self.limits.clone(),
            compiler,
            ..RunnerConfig::default()
        }
    }
}

/// `key:value,key:value`, as Drone's settings library reads a map. Blank
/// items are skipped; the value is what follows the first `:`.
fn pairs(env: &Environment, setting: &Setting) -> Result<BTreeMap<String, String>, SettingsError> {
    let name = setting.name;
    let Some(text) = env.value(setting) else {
        return Ok(BTreeMap::new());
    };
    let mut map = BTreeMap::new();
    let items = text.split(',').map(str::trim).filter(|i| !i.is_empty());
    for (index, item) in items.enumerate() {
        let Some((key, value)) = item.split_once(':') else {
            return Err(SettingsError::Invalid {
                name,
                // By position: the item may be a secret.
                reason: format!("item {} is not key:value", index + 1),
            });
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(SettingsError::Invalid {
                name,
                reason: "an item has an empty key".to_owned(),
            });
        }
        map.insert(key.to_owned(), value.trim().to_owned());
    }
    Ok(map)
}

/// An extension plugin's settings from its `[endpoint, token, skip_verify]`
/// settings; `None` without an endpoint.
fn plugin(
    env: &Environment,
    [endpoint, token, skip_verify]: [&Setting; 3],
) -> Result<Option<PluginSettings>, SettingsError> {
    let Some(url) = env.value(endpoint) else {
        return Ok(None);
    };
    Ok(Some(PluginSettings {
        endpoint: url,
        token: env.value(token).ok_or_else(|| SettingsError::Invalid {
            name: token.name,
            reason: format!("required when {} is set", endpoint.name),
        })?,
        skip_verify: boolean(env, skip_verify)?,
    }))
}

/// A comma-separated list; blank items are skipped.
fn list(env: &Environment, setting: &Setting) -> Vec<String> {
    env.value(setting)
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A boolean setting (Go's `strconv.ParseBool`, which Drone's settings
/// use); unset is false.
fn boolean(env: &Environment, setting: &Setting) -> Result<bool, SettingsError> {
    let Some(text) = env.value(setting) else {
        return Ok(false);
    };
    parse_bool(&text).ok_or_else(|| SettingsError::Invalid {
        name: setting.name,
        reason: format!("{text:?} is not a boolean"),
    })
}

/// The machine's host name, as Drone's runners default their name to it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "runnerkit".to_owned())
}

#[cfg(test)]
mod tests {
    use runnerkit_core::drone::{Build, Repo};
    use runnerkit_manifest::SecretRequest;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::from_vars(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_are_drones() {
        let settings = DaemonSettings::from_environment(&env(&[])).unwrap();
        assert_eq!(settings.capacity, 2);
        assert!(!settings.name.is_empty());
        assert_eq!(settings.platform, Platform::default());
        assert!(settings.labels.is_empty() && settings.secrets.is_empty());
        assert_eq!(settings.limits, Limits::default());
        let filter = settings.filter("docker");
        assert_eq!(
            (
                filter.kind.as_str(),
                filter.kind_type.as_str(),
                filter.os.as_str(),
                filter.arch.as_str()
            ),
            ("pipeline", "docker", "linux", "amd64")
        );
        let config = settings.runner_config();
        assert!(config.secrets.is_empty());
        assert_eq!(config.compiler.clone_image, Compiler::default().clone_image);
    }

    #[tokio::test]
    async fn every_setting_is_read() {
        let settings = DaemonSettings::from_environment(&env(&[
            ("DRONE_RUNNER_NAME", " runner-7 "),
            ("DRONE_RUNNER_CAPACITY", "8"),
            ("DRONE_RUNNER_LABELS", "zone:eu-west, disk:ssd"),
            (
                "DRONE_RUNNER_ENVIRON",
                "GOPROXY:https://proxy.example.com,CI_TIER:gold",
            ),
            ("DRONE_RUNNER_SECRETS", "docker_password:pa:ss,token:abc"),
            ("DRONE_LIMIT_REPOS", "octocat/*, acme/api"),
            ("DRONE_LIMIT_EVENTS", "push,tag"),
            ("DRONE_LIMIT_TRUSTED", "true"),
            ("DRONE_PLATFORM_OS", "linux"),
            ("DRONE_PLATFORM_ARCH", "arm"),
            ("DRONE_PLATFORM_VARIANT", "v7"),
            ("DRONE_PLATFORM_KERNEL", "5.10"),
            ("DRONE_RUNNER_CLONE_IMAGE", "registry.local/git:1"),
            ("DRONE_NETRC_CLONE_ONLY", "1"),
        ]))
        .unwrap();
        assert_eq!(settings.name, "runner-7");
        assert_eq!(settings.capacity, 8);
        assert_eq!(
            settings.environ["GOPROXY"], "https://proxy.example.com",
            "the value is what follows the first colon"
        );
        assert_eq!(settings.secrets["docker_password"], "pa:ss");
        let filter = settings.filter("exec");
        assert_eq!(
            filter.labels,
            BTreeMap::from([
                ("disk".to_owned(), "ssd".to_owned()),
                ("zone".to_owned(), "eu-west".to_owned())
            ])
        );
        assert_eq!(
            (
                filter.arch.as_str(),
                filter.variant.as_str(),
                filter.kernel.as_str()
            ),
            ("arm", "v7", "5.10")
        );

        let config = settings.runner_config();
        assert_eq!(config.machine, "runner-7");
        assert_eq!(config.environ["CI_TIER"], "gold");
        assert_eq!(
            config.limits,
            Limits {
                repos: vec!["octocat/*".into(), "acme/api".into()],
                events: vec!["push".into(), "tag".into()],
                trusted: true,
            }
        );
        assert_eq!(config.compiler.clone_image, "registry.local/git:1");
        assert!(config.compiler.netrc_clone_only);
        let (build, repo) = (Build::default(), Repo::default());
        let found = config.secrets[0]
            .find(&SecretRequest {
                name: "token",
                build: &build,
                repo: &repo,
                document: None,
            })
            .await
            .unwrap();
        assert_eq!(found.as_deref(), Some("abc"));
    }

    #[test]
    fn bad_values_name_their_variable_and_hide_secrets() {
        for (name, value) in [
            ("DRONE_RUNNER_CAPACITY", "0"),
            ("DRONE_RUNNER_CAPACITY", "many"),
            ("DRONE_RUNNER_LABELS", "zone"),
            ("DRONE_RUNNER_ENVIRON", ":x"),
            ("DRONE_LIMIT_TRUSTED", "yes"),
            ("DRONE_NETRC_CLONE_ONLY", "maybe"),
        ] {
            let err = DaemonSettings::from_environment(&env(&[(name, value)])).unwrap_err();
            assert!(
                matches!(&err, SettingsError::Invalid { name: n, .. } if *n == name),
                "{name}={value}: {err}"
            );
        }
        let err = DaemonSettings::from_environment(&env(&[(
            "DRONE_RUNNER_SECRETS",
            "token:abc,hunter2-is-the-password-of-the-day",
        )]))
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("item 2"), "{err}");
        let settings =
            DaemonSettings::from_environment(&env(&[("DRONE_RUNNER_SECRETS", "token:hunter2")]))
                .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn the_secret_plugin_needs_a_token_and_hides_it() {
        let settings = DaemonSettings::from_environment(&env(&[])).unwrap();
        assert_eq!(settings.secret_plugin, None);
        let settings = DaemonSettings::from_environment(&env(&[
            ("DRONE_SECRET_PLUGIN_ENDPOINT", "https://vault-plugin:3000"),
            ("DRONE_SECRET_PLUGIN_TOKEN", "plugin-token-hunter2"),
            ("DRONE_SECRET_PLUGIN_SKIP_VERIFY", "true"),
        ]))
        .unwrap();
        assert_eq!(
            settings.secret_plugin,
            Some(PluginSettings {
                endpoint: "https://vault-plugin:3000".into(),
                token: "plugin-token-hunter2".into(),
                skip_verify: true,
            })
        );
        assert!(!format!("{settings:?}").contains("hunter2"));
        let err = DaemonSettings::from_environment(&env(&[(
            "DRONE_SECRET_PLUGIN_ENDPOINT",
            "https://vault-plugin:3000",
        )]))
        .unwrap_err();
        assert!(
            matches!(
                err,
                SettingsError::Invalid {
                    name: "DRONE_SECRET_PLUGIN_TOKEN",
                    ..
                }
            ),
            "{err}"
        );
        let err = DaemonSettings::from_environment(&env(&[
            ("DRONE_SECRET_PLUGIN_ENDPOINT", "https://vault-plugin:3000"),
            ("DRONE_SECRET_PLUGIN_TOKEN", "t"),
            ("DRONE_SECRET_PLUGIN_SKIP_VERIFY", "perhaps"),
        ]))
        .unwrap_err();
        assert!(
            matches!(
                err,
                SettingsError::Invalid {
                    name: "DRONE_SECRET_PLUGIN_SKIP_VERIFY",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_registry_and_environ_plugins_are_read_like_the_secret_plugin() {
        let settings = DaemonSettings::from_environment(&env(&[])).unwrap();
        assert_eq!(
            (settings.registry_plugin, settings.environ_plugin),
            (None, None)
        );
        let settings = DaemonSettings::from_environment(&env(&[
            (
                "DRONE_REGISTRY_PLUGIN_ENDPOINT",
                "http://registry-plugin:3000",
            ),
            ("DRONE_REGISTRY_PLUGIN_TOKEN", "registry-token-hunter2"),
            ("DRONE_ENV_PLUGIN_ENDPOINT", "https://env-plugin:3000"),
            ("DRONE_ENV_PLUGIN_TOKEN", "env-token-hunter2"),
            ("DRONE_ENV_PLUGIN_SKIP_VERIFY", "1"),
        ]))
        .unwrap();
        assert_eq!(
            settings.registry_plugin,
            Some(PluginSettings {
                endpoint: "http://registry-plugin:3000".into(),
                token: "registry-token-hunter2".into(),
                skip_verify: false,
            })
        );
        assert_eq!(
            settings.environ_plugin,
            Some(PluginSettings {
                endpoint: "https://env-plugin:3000".into(),
                token: "env-token-hunter2".into(),
                skip_verify: true,
            })
        );
        assert_eq!(settings.secret_plugin, None);
        assert!(!format!("{settings:?}").contains("hunter2"));
        for (endpoint, token) in [
            (
                "DRONE_REGISTRY_PLUGIN_ENDPOINT",
                "DRONE_REGISTRY_PLUGIN_TOKEN",
            ),
            ("DRONE_ENV_PLUGIN_ENDPOINT", "DRONE_ENV_PLUGIN_TOKEN"),
        ] {
            let err =
                DaemonSettings::from_environment(&env(&[(endpoint, "http://p:3000")])).unwrap_err();
            assert!(
                matches!(&err, SettingsError::Invalid { name, .. } if *name == token),
                "{err}"
            );
            assert!(err.to_string().contains(endpoint), "{err}");
        }
        let err = DaemonSettings::from_environment(&env(&[
            ("DRONE_ENV_PLUGIN_ENDPOINT", "http://p:3000"),
            ("DRONE_ENV_PLUGIN_TOKEN", "t"),
            ("DRONE_ENV_PLUGIN_SKIP_VERIFY", "perhaps"),
        ]))
        .unwrap_err();
        assert!(
            matches!(
                err,
                SettingsError::Invalid {
                    name: "DRONE_ENV_PLUGIN_SKIP_VERIFY",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_process_environment_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("runnerkit-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runner.env");
        // PATH is set in any test process; the file cannot override it.
        std::fs::write(
            &path,
            "PATH=/from/the/file\nRUNNERKIT_TEST_ONLY_IN_FILE=file\nDRONE_RUNNER_CAPACITY=5\n",
        )
        .unwrap();
        let env = Environment::load(Some(&path)).unwrap();
        assert_eq!(
            env.get("RUNNERKIT_TEST_ONLY_IN_FILE").as_deref(),
            Some("file")
        );
        assert_ne!(env.get("PATH").as_deref(), Some("/from/the/file"));
        assert_eq!(env.get("RUNNERKIT_TEST_NOWHERE"), None);
        let settings = DaemonSettings::from_env(Some(&path)).unwrap();
        assert_eq!(settings.capacity, 5);
        let env = Environment::load(Some(&path)).unwrap().with_overrides([
            ("PATH".to_owned(), "/from/a/flag".to_owned()),
            ("DRONE_RUNNER_CAPACITY".to_owned(), "7".to_owned()),
        ]);
        assert_eq!(env.get("PATH").as_deref(), Some("/from/a/flag"));
        assert_eq!(env.value(&settings::CAPACITY).as_deref(), Some("7"));
        assert_eq!(env.value(&settings::PLATFORM_OS).as_deref(), Some("linux"));
        std::fs::remove_dir_all(&dir).unwrap();

        let err = Environment::load(Some(&dir.join("missing.env"))).unwrap_err();
        assert!(matches!(err, SettingsError::ReadEnvFile { .. }));
    }
}

//! The runner's settings for Docker stages (Drone's names where Drone has
//! one), read from the declarations in [`runnerkit_core::settings`].

use std::time::Duration;

use runnerkit_core::settings::{self, Setting};

use crate::{DockerEngine, Error};

/// How the engine runs stages: what `runnerkit daemon` and `runnerkit exec`
/// read from the environment, an env file or flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerSettings {
    /// Whether pull progress opens a step's log (`DRONE_DOCKER_STREAM_PULL`,
    /// true).
    pub stream_pull: bool,
    /// Steps made ahead (`RUNNERKIT_DOCKER_LOOKAHEAD`, 3; see
    /// [`DockerEngine::with_lookahead`]).
    pub lookahead: usize,
    /// How long a service may take to become healthy
    /// (`RUNNERKIT_DOCKER_HEALTH_TIMEOUT`, 300 s).
    pub health_timeout: Duration,
    /// SIGTERM to SIGKILL when a step is stopped
    /// (`RUNNERKIT_DOCKER_STOP_GRACE`, 5 s).
    pub stop_grace: Duration,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            stream_pull: true,
            lookahead: crate::DEFAULT_LOOKAHEAD,
            health_timeout: crate::DEFAULT_HEALTH_TIMEOUT,
            stop_grace: crate::DEFAULT_STOP_GRACE,
        }
    }
}

impl DockerSettings {
    /// The settings `get` gives (by variable name; blank is unset), the
    /// table's defaults (group `Docker`) elsewhere.
    ///
    /// # Errors
    /// A setting that does not read, named.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let value = |setting: &Setting| setting.value_in(&get).unwrap_or_default();
        let bad = |setting: &Setting, why: String| Error::Setting {
            name: setting.name.to_owned(),
            why,
        };
        let number = |setting: &Setting, what: &str| -> Result<u64, Error> {
            let text = value(setting);
            text.parse::<u64>()
                .map_err(|_| bad(setting, format!("{text:?} is not {what}")))
        };
        let stream_pull = {
            let setting = &settings::DOCKER_STREAM_PULL;
            let text = value(setting);
            settings::parse_bool(&text)
                .ok_or_else(|| bad(setting, format!("{text:?} is not a boolean")))?
        };
        let lookahead = number(&settings::DOCKER_LOOKAHEAD, "a number of steps")?;
        Ok(Self {
            stream_pull,
            lookahead: usize::try_from(lookahead).unwrap_or(usize::MAX),
            health_timeout: Duration::from_secs(number(
                &settings::DOCKER_HEALTH_TIMEOUT,
                "a number of seconds",
            )?),
            stop_grace: Duration::from_secs(number(
                &settings::DOCKER_STOP_GRACE,
                "a number of seconds",
            )?),
        })
    }
}

impl DockerEngine {
    /// The engine, configured as `settings` say.
    pub fn with_settings(self, settings: &DockerSettings) -> Self {
        self.with_pull_progress(settings.stream_pull)
            .with_lookahead(settings.lookahead)
            .with_health_timeout(settings.health_timeout)
            .with_stop_grace(settings.stop_grace)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn settings_read_their_names_and_defaults() {
        assert_eq!(
            DockerSettings::from_lookup(|_| None).unwrap(),
            DockerSettings::default()
        );
        let env = BTreeMap::from([
            ("DRONE_DOCKER_STREAM_PULL", "false"),
            ("RUNNERKIT_DOCKER_LOOKAHEAD", "0"),
            ("RUNNERKIT_DOCKER_HEALTH_TIMEOUT", "60"),
            ("RUNNERKIT_DOCKER_STOP_GRACE", " 9 "),
        ]);
        let read = DockerSettings::from_lookup(|n| env.get(n).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(
            read,
            DockerSettings {
                stream_pull: false,
                lookahead: 0,
                health_timeout: Duration::from_secs(60),
                stop_grace: Duration::from_secs(9),
            }
        );
    }

    #[test]
    fn a_setting_that_does_not_read_is_named() {
        let err = DockerSettings::from_lookup(|n| {
            (n == "RUNNERKIT_DOCKER_LOOKAHEAD").then(|| "many".to_owned())
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting RUNNERKIT_DOCKER_LOOKAHEAD: \"many\" is not a number of steps"
        );
        let err = DockerSettings::from_lookup(|n| {
            (n == "DRONE_DOCKER_STREAM_PULL").then(|| "sometimes".to_owned())
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting DRONE_DOCKER_STREAM_PULL: \"sometimes\" is not a boolean"
        );
    }
}

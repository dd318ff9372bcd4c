//! The flags of `runnerkit daemon` and `runnerkit ping`: each is also an
//! environment variable, named as Drone's runners name it.
//!
//! Every value is kept as text and read in one place
//! ([`crate::daemon::settings`]), whether it came from a flag, the process
//! environment or the ENVFILE, so all three are checked the same way and an
//! error names the variable.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// The engine the daemon runs stages on, and the pipeline `type` it asks
/// the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineType {
    /// Each step in a Docker container (`type: docker` pipelines).
    Docker,
    /// Each step as a process on this machine (`type: exec` pipelines).
    Exec,
}

impl EngineType {
    /// The pipeline type, as `.drone.yml` and the server spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Exec => "exec",
        }
    }
}

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

/// What `daemon` and `ping` read: an env file, the engine type, and one flag
/// per setting.
#[derive(Debug, Args)]
pub struct DaemonSettingsArgs {
    /// A dotenv file of settings (`KEY=VALUE` lines, `#` comments), read
    /// first: the process environment and the flags win over it.
    ///
    /// Example: `runnerkit daemon /etc/runnerkit.env`
    #[arg(value_name = "ENVFILE")]
    pub envfile: Option<PathBuf>,
    /// The engine, and the pipeline type asked for: `docker` runs `type:
    /// docker` pipelines in containers, `exec` runs `type: exec` pipelines as
    /// processes on this machine. Default `docker`.
    ///
    /// Example: `--type exec` (or `RUNNERKIT_TYPE=exec`)
    #[arg(long = "type", value_enum, env = "RUNNERKIT_TYPE", value_name = "TYPE")]
    pub engine: Option<EngineType>,
    /// The Drone server and how to reach it.
    #[command(flatten)]
    pub server: ServerArgs,
    /// What this runner is and which stages it takes.
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// The HTTP endpoint, shutdown and logging.
    #[command(flatten)]
    pub operation: OperationArgs,
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
    /// The Drone server and how to reach it.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The Drone server (`DRONE_RPC_*`).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// `http` or `https`; default `http`.
    ///
    /// Example: `--rpc-proto https` (or `DRONE_RPC_PROTO=https`)
    #[arg(long, env = "DRONE_RPC_PROTO", value_name = "PROTO")]
    pub rpc_proto: Option<String>,
    /// The server's host and optional port, without a scheme. Required.
    ///
    /// Example: `--rpc-host drone.example.com` (or `DRONE_RPC_HOST=drone.example.com:8080`)
    #[arg(long, env = "DRONE_RPC_HOST", value_name = "HOST")]
    pub rpc_host: Option<String>,
    /// The secret shared with the server (its `DRONE_RPC_SECRET`). Required.
    /// Prefer the environment or the ENVFILE: a flag shows in `ps`.
    ///
    /// Example: `DRONE_RPC_SECRET=bea26a2221fd8090ea38720fc445eca6`
    #[arg(
        long,
        env = "DRONE_RPC_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub rpc_secret: Option<String>,
    /// Accept any TLS certificate from the server (self-signed setups).
    ///
    /// Example: `--rpc-skip-verify` (or `DRONE_RPC_SKIP_VERIFY=true`)
    #[arg(long, env = "DRONE_RPC_SKIP_VERIFY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rpc_skip_verify: Option<String>,
}

/// The runner (`DRONE_RUNNER_*`, `DRONE_LIMIT_*`, `DRONE_PLATFORM_*`).
#[derive(Debug, Args)]
pub struct RunnerArgs {
    /// How many stages run at once; default 2.
    ///
    /// Example: `--capacity 4` (or `DRONE_RUNNER_CAPACITY=4`)
    #[arg(long, env = "DRONE_RUNNER_CAPACITY", value_name = "N")]
    pub capacity: Option<String>,
    /// The runner's name, shown on the server as the stage's machine;
    /// default the host name.
    ///
    /// Example: `--name runner-eu-1` (or `DRONE_RUNNER_NAME=runner-eu-1`)
    #[arg(long, env = "DRONE_RUNNER_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// Labels (`key:value,...`): only stages whose `node` labels are exactly
    /// these are taken.
    ///
    /// Example: `--labels zone:eu,disk:ssd` (or `DRONE_RUNNER_LABELS=zone:eu`)
    #[arg(long, env = "DRONE_RUNNER_LABELS", value_name = "K:V,...")]
    pub labels: Option<String>,
    /// Variables every step gets (`NAME:value,...`).
    ///
    /// Example: `--environ GOPROXY:https://proxy.example.com,CI_TIER:gold`
    #[arg(
        long,
        env = "DRONE_RUNNER_ENVIRON",
        value_name = "K:V,...",
        hide_env_values = true
    )]
    pub environ: Option<String>,
    /// Static secrets for `from_secret` (`name:value,...`), asked after the
    /// server's; for local setups. Values are masked in logs.
    ///
    /// Example: `DRONE_RUNNER_SECRETS=docker_password:hunter2`
    #[arg(
        long,
        env = "DRONE_RUNNER_SECRETS",
        value_name = "K:V,...",
        hide_env_values = true
    )]
    pub secrets: Option<String>,
    /// Only run stages of these repositories (comma-separated globs).
    ///
    /// Example: `--limit-repos 'octocat/*,acme/api'`
    #[arg(long, env = "DRONE_LIMIT_REPOS", value_name = "GLOBS")]
    pub limit_repos: Option<String>,
    /// Only run stages of builds for these events (comma-separated).
    ///
    /// Example: `--limit-events push,tag`
    #[arg(long, env = "DRONE_LIMIT_EVENTS", value_name = "EVENTS")]
    pub limit_events: Option<String>,
    /// Only run stages of trusted repositories.
    ///
    /// Example: `--limit-trusted` (or `DRONE_LIMIT_TRUSTED=true`)
    #[arg(long, env = "DRONE_LIMIT_TRUSTED", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub limit_trusted: Option<String>,
    /// The OS asked for; default `linux`.
    ///
    /// Example: `--platform-os linux`
    #[arg(long, env = "DRONE_PLATFORM_OS", value_name = "OS")]
    pub platform_os: Option<String>,
    /// The architecture asked for; default `amd64`.
    ///
    /// Example: `--platform-arch arm64`
    #[arg(long, env = "DRONE_PLATFORM_ARCH", value_name = "ARCH")]
    pub platform_arch: Option<String>,
    /// The architecture variant asked for.
    ///
    /// Example: `--platform-arch arm --platform-variant v7`
    #[arg(long, env = "DRONE_PLATFORM_VARIANT", value_name = "VARIANT")]
    pub platform_variant: Option<String>,
    /// The kernel version asked for (Windows builds).
    ///
    /// Example: `--platform-kernel 1809`
    #[arg(long, env = "DRONE_PLATFORM_KERNEL", value_name = "KERNEL")]
    pub platform_kernel: Option<String>,
    /// The clone step's image for `type: docker` pipelines.
    ///
    /// Example: `--clone-image registry.local/drone/git:latest`
    #[arg(long, env = "DRONE_RUNNER_CLONE_IMAGE", value_name = "IMAGE")]
    pub clone_image: Option<String>,
    /// Give the clone credentials (netrc) to the clone step only.
    ///
    /// Example: `--netrc-clone-only` (or `DRONE_NETRC_CLONE_ONLY=true`)
    #[arg(long, env = "DRONE_NETRC_CLONE_ONLY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub netrc_clone_only: Option<String>,
    /// The secret extension plugin (e.g. drone-vault) asked for `kind:
    /// secret` documents with `get: {path, name}`; unset: none.
    ///
    /// Example: `--secret-plugin-endpoint http://vault-plugin:3000` (or `DRONE_SECRET_PLUGIN_ENDPOINT=http://vault-plugin:3000`)
    #[arg(long, env = "DRONE_SECRET_PLUGIN_ENDPOINT", value_name = "URL")]
    pub secret_plugin_endpoint: Option<String>,
    /// The token shared with the secret plugin: requests are signed with it.
    /// Required with an endpoint. Prefer the environment or the ENVFILE: a
    /// flag shows in `ps`.
    ///
    /// Example: `DRONE_SECRET_PLUGIN_TOKEN=bea26a2221fd8090ea38720fc445eca6`
    #[arg(
        long,
        env = "DRONE_SECRET_PLUGIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub secret_plugin_token: Option<String>,
    /// Accept any TLS certificate from the secret plugin.
    ///
    /// Example: `--secret-plugin-skip-verify` (or `DRONE_SECRET_PLUGIN_SKIP_VERIFY=true`)
    #[arg(long, env = "DRONE_SECRET_PLUGIN_SKIP_VERIFY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub secret_plugin_skip_verify: Option<String>,
    /// The registry extension plugin asked for each stage's registry
    /// credentials (after `image_pull_secrets`); unset: none.
    ///
    /// Example: `--registry-plugin-endpoint http://registry-plugin:3000` (or `DRONE_REGISTRY_PLUGIN_ENDPOINT=http://registry-plugin:3000`)
    #[arg(long, env = "DRONE_REGISTRY_PLUGIN_ENDPOINT", value_name = "URL")]
    pub registry_plugin_endpoint: Option<String>,
    /// The token shared with the registry plugin: requests are signed with
    /// it. Required with an endpoint. Prefer the environment or the
    /// ENVFILE: a flag shows in `ps`.
    ///
    /// Example: `DRONE_REGISTRY_PLUGIN_TOKEN=bea26a2221fd8090ea38720fc445eca6`
    #[arg(
        long,
        env = "DRONE_REGISTRY_PLUGIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub registry_plugin_token: Option<String>,
    /// Accept any TLS certificate from the registry plugin.
    ///
    /// Example: `--registry-plugin-skip-verify` (or `DRONE_REGISTRY_PLUGIN_SKIP_VERIFY=true`)
    #[arg(long, env = "DRONE_REGISTRY_PLUGIN_SKIP_VERIFY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub registry_plugin_skip_verify: Option<String>,
    /// The environ extension plugin asked for each stage's global variables
    /// (masked ones are masked in logs); unset: none.
    ///
    /// Example: `--env-plugin-endpoint http://env-plugin:3000` (or `DRONE_ENV_PLUGIN_ENDPOINT=http://env-plugin:3000`)
    #[arg(long, env = "DRONE_ENV_PLUGIN_ENDPOINT", value_name = "URL")]
    pub env_plugin_endpoint: Option<String>,
    /// The token shared with the environ plugin: requests are signed with
    /// it. Required with an endpoint. Prefer the environment or the
    /// ENVFILE: a flag shows in `ps`.
    ///
    /// Example: `DRONE_ENV_PLUGIN_TOKEN=bea26a2221fd8090ea38720fc445eca6`
    #[arg(
        long,
        env = "DRONE_ENV_PLUGIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub env_plugin_token: Option<String>,
    /// Accept any TLS certificate from the environ plugin.
    ///
    /// Example: `--env-plugin-skip-verify` (or `DRONE_ENV_PLUGIN_SKIP_VERIFY=true`)
    #[arg(long, env = "DRONE_ENV_PLUGIN_SKIP_VERIFY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub env_plugin_skip_verify: Option<String>,
}

/// The HTTP endpoint, shutdown and logging.
#[derive(Debug, Args)]
pub struct OperationArgs {
    /// Where to serve `/healthz`, `/metrics` and the stages page; `:PORT`
    /// listens on every interface. Default `:3000`.
    ///
    /// Example: `--http-bind 127.0.0.1:3000` (or `DRONE_HTTP_BIND=:3000`)
    #[arg(long, env = "DRONE_HTTP_BIND", value_name = "ADDR")]
    pub http_bind: Option<String>,
    /// User name for the stages page (HTTP basic auth, with
    /// `--ui-password`); `/healthz` and `/metrics` stay open.
    ///
    /// Example: `--ui-username admin` (or `DRONE_UI_USERNAME=admin`)
    #[arg(long, env = "DRONE_UI_USERNAME", value_name = "USER")]
    pub ui_username: Option<String>,
    /// Password for the stages page.
    ///
    /// Example: `DRONE_UI_PASSWORD=correct-horse`
    #[arg(
        long,
        env = "DRONE_UI_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub ui_password: Option<String>,
    /// The basic auth realm; default `runnerkit`.
    ///
    /// Example: `--ui-realm "CI runners"`
    #[arg(long, env = "DRONE_UI_REALM", value_name = "REALM")]
    pub ui_realm: Option<String>,
    /// After SIGTERM or SIGINT, how long running stages may go on before they
    /// are cancelled and reported killed (`90s`, `15m`, `1h30m`); default `1h`.
    /// A second signal cancels them at once.
    ///
    /// Example: `--drain-timeout 10m` (or `RUNNERKIT_DRAIN_TIMEOUT=10m`)
    #[arg(long, env = "RUNNERKIT_DRAIN_TIMEOUT", value_name = "DURATION")]
    pub drain_timeout: Option<String>,
    /// Log at debug level (runnerkit's own messages).
    ///
    /// Example: `--debug` (or `DRONE_DEBUG=true`)
    #[arg(long, env = "DRONE_DEBUG", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub debug: Option<String>,
    /// Log at trace level (runnerkit's own messages).
    ///
    /// Example: `--trace` (or `DRONE_TRACE=true`)
    #[arg(long, env = "DRONE_TRACE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub trace: Option<String>,
}

impl ServerArgs {
    /// Every server setting given as a flag or in the process environment,
    /// by its variable name.
    pub fn given(&self) -> Vec<(&'static str, &str)> {
        let all: [(&'static str, &Option<String>); 4] = [
            ("DRONE_RPC_PROTO", &self.rpc_proto),
            ("DRONE_RPC_HOST", &self.rpc_host),
            ("DRONE_RPC_SECRET", &self.rpc_secret),
            ("DRONE_RPC_SKIP_VERIFY", &self.rpc_skip_verify),
        ];
        all.into_iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
            .collect()
    }
}

impl DaemonSettingsArgs {
    /// Every setting given as a flag or in the process environment, by its
    /// variable name.
    pub fn given(&self) -> Vec<(&'static str, &str)> {
        let r = &self.runner;
        let o = &self.operation;
        let all: [(&'static str, &Option<String>); 30] = [
            ("DRONE_RUNNER_CAPACITY", &r.capacity),
            ("DRONE_RUNNER_NAME", &r.name),
            ("DRONE_RUNNER_LABELS", &r.labels),
            ("DRONE_RUNNER_ENVIRON", &r.environ),
            ("DRONE_RUNNER_SECRETS", &r.secrets),
            ("DRONE_LIMIT_REPOS", &r.limit_repos),
            ("DRONE_LIMIT_EVENTS", &r.limit_events),
            ("DRONE_LIMIT_TRUSTED", &r.limit_trusted),
            ("DRONE_PLATFORM_OS", &r.platform_os),
            ("DRONE_PLATFORM_ARCH", &r.platform_arch),
            ("DRONE_PLATFORM_VARIANT", &r.platform_variant),
            ("DRONE_PLATFORM_KERNEL", &r.platform_kernel),
            ("DRONE_RUNNER_CLONE_IMAGE", &r.clone_image),
            ("DRONE_NETRC_CLONE_ONLY", &r.netrc_clone_only),
            ("DRONE_SECRET_PLUGIN_ENDPOINT", &r.secret_plugin_endpoint),
            ("DRONE_SECRET_PLUGIN_TOKEN", &r.secret_plugin_token),
            (
                "DRONE_SECRET_PLUGIN_SKIP_VERIFY",
                &r.secret_plugin_skip_verify,
            ),
            (
                "DRONE_REGISTRY_PLUGIN_ENDPOINT",
                &r.registry_plugin_endpoint,
            ),
            ("DRONE_REGISTRY_PLUGIN_TOKEN", &r.registry_plugin_token),
            (
                "DRONE_REGISTRY_PLUGIN_SKIP_VERIFY",
                &r.registry_plugin_skip_verify,
            ),
            ("DRONE_ENV_PLUGIN_ENDPOINT", &r.env_plugin_endpoint),
            ("DRONE_ENV_PLUGIN_TOKEN", &r.env_plugin_token),
            ("DRONE_ENV_PLUGIN_SKIP_VERIFY", &r.env_plugin_skip_verify),
            ("DRONE_HTTP_BIND", &o.http_bind),
            ("DRONE_UI_USERNAME", &o.ui_username),
            ("DRONE_UI_PASSWORD", &o.ui_password),
            ("DRONE_UI_REALM", &o.ui_realm),
            ("RUNNERKIT_DRAIN_TIMEOUT", &o.drain_timeout),
            ("DRONE_DEBUG", &o.debug),
            ("DRONE_TRACE", &o.trace),
        ];
        let mut given = self.server.given();
        given.extend(
            all.into_iter()
                .filter_map(|(name, value)| value.as_deref().map(|v| (name, v))),
        );
        given
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

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
    }
}

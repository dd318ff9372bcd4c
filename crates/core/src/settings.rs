//! The daemon's settings, each declared once: its environment variable (as
//! Drone's runners name it), its flag, its default, a line of help, its group
//! and whether its value is a secret.
//!
//! Every reader looks its variables up through these declarations, never by
//! a name of its own: `runnerkit-drone` reads the server's
//! ([`RPC_HOST`], ...), `runnerkit-runner` the runner's ([`CAPACITY`], ...),
//! and `runnerkit-cli` builds the flags of `runnerkit daemon` and `runnerkit
//! ping`, reads what only the daemon has ([`HTTP_BIND`], ...) and generates
//! `docs/daemon-settings.md`, all from [`ALL`].
//!
//! A value is text wherever it comes from (an env file, the process
//! environment, a flag); [`Setting::value_in`] applies the rules every
//! reader shares (trimmed, blank counts as unset, then the default), and the
//! reader checks it, naming the variable when it cannot be used.
//!
//! ```
//! use runnerkit_core::settings;
//!
//! let given = |name: &str| (name == "DRONE_RUNNER_CAPACITY").then(|| " 4 ".to_owned());
//! assert_eq!(settings::CAPACITY.value_in(given).as_deref(), Some("4"));
//! assert_eq!(settings::PLATFORM_OS.value_in(given).as_deref(), Some("linux"));
//! assert_eq!(settings::find("DRONE_RPC_HOST").map(|s| s.flag), Some("rpc-host"));
//! ```

/// Where a setting belongs: `--help` and the docs list the settings by group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// The Drone server and how to reach it (`DRONE_RPC_*`): all `runnerkit
    /// ping` reads.
    Server,
    /// What the runner is and which stages it takes (`DRONE_RUNNER_*`,
    /// `DRONE_LIMIT_*`, `DRONE_PLATFORM_*`, the extension plugins).
    Runner,
    /// The daemon's HTTP endpoint, shutdown and logging.
    Operation,
    /// How `type: docker` stages run (`DRONE_DOCKER_STREAM_PULL`, ...);
    /// read by the Docker engine.
    Docker,
    /// Where and how `type: kubernetes` stages run (`DRONE_NAMESPACE_DEFAULT`,
    /// `DRONE_RESOURCE_*`, ...); read by the Kubernetes engine.
    Kubernetes,
}

impl Group {
    /// Every group, in the order they are listed.
    pub const ALL: [Self; 5] = [
        Self::Server,
        Self::Runner,
        Self::Operation,
        Self::Docker,
        Self::Kubernetes,
    ];

    /// The group's title, as a help heading.
    pub fn title(self) -> &'static str {
        match self {
            Self::Server => "Drone server",
            Self::Runner => "Runner",
            Self::Operation => "Operation",
            Self::Docker => "Docker engine",
            Self::Kubernetes => "Kubernetes engine",
        }
    }
}

/// What a setting's text is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any text its reader checks (a number, a list, an address...);
    /// `value_name` is how help shows it, e.g. `N` in `--capacity <N>`.
    Text {
        /// The placeholder in help, e.g. `N`.
        value_name: &'static str,
    },
    /// A boolean as Go's `strconv.ParseBool` reads one ([`parse_bool`]); its
    /// flag alone means `true`.
    Bool,
}

/// The declaration of one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable, e.g. `DRONE_RUNNER_CAPACITY`; also the key
    /// in an env file.
    pub name: &'static str,
    /// The flag without its dashes, e.g. `capacity` for `--capacity`.
    pub flag: &'static str,
    /// What the text is read as.
    pub kind: Kind,
    /// The value when unset or blank, as text; `None`: no value (or one its
    /// reader computes, said in [`doc`](Self::doc)).
    pub default: Option<&'static str>,
    /// One line of help.
    pub doc: &'static str,
    /// A value to show in help, e.g. `4`.
    pub example: &'static str,
    /// Where it is listed.
    pub group: Group,
    /// Its value is never printed: not in help, logs or `Debug` output.
    pub secret: bool,
}

impl Setting {
    /// A text setting with no default, no doc and no example yet.
    pub const fn text(
        group: Group,
        name: &'static str,
        flag: &'static str,
        value_name: &'static str,
    ) -> Self {
        Self {
            name,
            flag,
            kind: Kind::Text { value_name },
            default: None,
            doc: "",
            example: "",
            group,
            secret: false,
        }
    }

    /// A boolean setting: unset is `false`, the example is `true`.
    pub const fn boolean(group: Group, name: &'static str, flag: &'static str) -> Self {
        Self {
            kind: Kind::Bool,
            default: Some("false"),
            example: "true",
            ..Self::text(group, name, flag, "")
        }
    }

    /// Sets [`default`](Self::default).
    pub const fn with_default(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }

    /// Sets [`example`](Self::example).
    pub const fn with_example(mut self, example: &'static str) -> Self {
        self.example = example;
        self
    }

    /// Marks the value [`secret`](Self::secret).
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Sets [`doc`](Self::doc), without the blank a doc comment starts
    /// with (the table below takes each doc from its constant's comment).
    const fn with_doc(mut self, doc: &'static str) -> Self {
        self.doc = match doc.as_bytes() {
            [b' ', rest @ ..] => match core::str::from_utf8(rest) {
                Ok(rest) => rest,
                Err(_) => doc,
            },
            _ => doc,
        };
        self
    }

    /// This setting's value among `get`'s (which answers by variable name):
    /// trimmed, a blank one counting as unset; else the default.
    pub fn value_in(&self, get: impl FnOnce(&str) -> Option<String>) -> Option<String> {
        get(self.name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| self.default.map(str::to_owned))
    }
}

/// The declared setting named `name` (its variable), if any.
pub fn find(name: &str) -> Option<&'static Setting> {
    ALL.iter().find(|s| s.name == name)
}

/// Go's `strconv.ParseBool`, as Drone reads its booleans: `1`, `t`, `T`,
/// `TRUE`, `true`, `True` and their `0`/`f`/`false` counterparts.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Declares each setting as a constant documented by its help line, and
/// [`ALL`] of them: the doc comment is the setting's `doc`, so it is
/// written once.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $id:ident = $declaration:expr; )+) => {
        $(
            $(#[doc = $doc])+
            pub const $id: Setting = $declaration.with_doc(concat!($($doc),+));
        )+

        /// Every setting, group by group, in the order `--help` and the docs
        /// list them.
        pub const ALL: &[Setting] = &[$($id),+];
    };
}

use Group::{Docker, Kubernetes, Operation, Runner, Server};

settings! {
    /// How to reach the server: `http` or `https`.
    RPC_PROTO = Setting::text(Server, "DRONE_RPC_PROTO", "rpc-proto", "PROTO")
        .with_default("http")
        .with_example("https");
    /// The server's host and optional port, without a scheme. Required.
    RPC_HOST = Setting::text(Server, "DRONE_RPC_HOST", "rpc-host", "HOST")
        .with_example("drone.example.com:8080");
    /// The secret shared with the server (the server's setting of the same
    /// name). Required. Prefer the environment or the ENVFILE: a flag shows
    /// in `ps`.
    RPC_SECRET = Setting::text(Server, "DRONE_RPC_SECRET", "rpc-secret", "SECRET")
        .with_example("bea26a2221fd8090ea38720fc445eca6")
        .secret();
    /// Accept any TLS certificate from the server (self-signed setups).
    RPC_SKIP_VERIFY = Setting::boolean(Server, "DRONE_RPC_SKIP_VERIFY", "rpc-skip-verify");

    /// The pipeline type asked for, and so the engine that runs it: one of
    /// the types this runner serves (runnerkit: `docker`, containers; `exec`,
    /// processes on this machine); unset: the first it serves.
    TYPE = Setting::text(Runner, "RUNNERKIT_TYPE", "type", "TYPE")
        .with_example("exec");
    /// How many stages run at once.
    CAPACITY = Setting::text(Runner, "DRONE_RUNNER_CAPACITY", "capacity", "N")
        .with_default("2")
        .with_example("4");
    /// The runner's name, shown on the server as the stage's machine; unset:
    /// the host name.
    NAME = Setting::text(Runner, "DRONE_RUNNER_NAME", "name", "NAME")
        .with_example("runner-eu-1");
    /// Labels (`key:value,...`): only stages whose `node` labels are exactly
    /// these are taken.
    LABELS = Setting::text(Runner, "DRONE_RUNNER_LABELS", "labels", "K:V,...")
        .with_example("zone:eu,disk:ssd");
    /// Variables every step gets (`NAME:value,...`).
    ENVIRON = Setting::text(Runner, "DRONE_RUNNER_ENVIRON", "environ", "K:V,...")
        .with_example("GOPROXY:https://proxy.example.com,CI_TIER:gold")
        .secret();
    /// Static secrets for `from_secret` (`name:value,...`), asked after the
    /// server's; for local setups. Values are masked in logs.
    SECRETS = Setting::text(Runner, "DRONE_RUNNER_SECRETS", "secrets", "K:V,...")
        .with_example("docker_password:hunter2")
        .secret();
    /// Only run stages of these repositories (comma-separated globs).
    LIMIT_REPOS = Setting::text(Runner, "DRONE_LIMIT_REPOS", "limit-repos", "GLOBS")
        .with_example("octocat/*,acme/api");
    /// Only run stages of builds for these events (comma-separated).
    LIMIT_EVENTS = Setting::text(Runner, "DRONE_LIMIT_EVENTS", "limit-events", "EVENTS")
        .with_example("push,tag");
    /// Only run stages of trusted repositories.
    LIMIT_TRUSTED = Setting::boolean(Runner, "DRONE_LIMIT_TRUSTED", "limit-trusted");
    /// The OS asked for.
    PLATFORM_OS = Setting::text(Runner, "DRONE_PLATFORM_OS", "platform-os", "OS")
        .with_default("linux")
        .with_example("linux");
    /// The architecture asked for.
    PLATFORM_ARCH = Setting::text(Runner, "DRONE_PLATFORM_ARCH", "platform-arch", "ARCH")
        .with_default("amd64")
        .with_example("arm64");
    /// The architecture variant asked for.
    PLATFORM_VARIANT = Setting::text(Runner, "DRONE_PLATFORM_VARIANT", "platform-variant", "VARIANT")
        .with_example("v7");
    /// The kernel version asked for (Windows builds).
    PLATFORM_KERNEL = Setting::text(Runner, "DRONE_PLATFORM_KERNEL", "platform-kernel", "KERNEL")
        .with_example("1809");
    /// The clone step's image for `type: docker` pipelines; unset: the
    /// compiler's default clone image.
    CLONE_IMAGE = Setting::text(Runner, "DRONE_RUNNER_CLONE_IMAGE", "clone-image", "IMAGE")
        .with_example("registry.local/drone/git:latest");
    /// Give the clone credentials (netrc) to the clone step only.
    NETRC_CLONE_ONLY = Setting::boolean(Runner, "DRONE_NETRC_CLONE_ONLY", "netrc-clone-only");
    /// The secret extension plugin (e.g. drone-vault) asked for `kind:
    /// secret` documents with `get: {path, name}`; unset: none.
    SECRET_PLUGIN_ENDPOINT = Setting::text(Runner, "DRONE_SECRET_PLUGIN_ENDPOINT", "secret-plugin-endpoint", "URL")
        .with_example("http://vault-plugin:3000");
    /// The token shared with the secret plugin: requests are signed with it.
    /// Required with an endpoint. Prefer the environment or the ENVFILE: a
    /// flag shows in `ps`.
    SECRET_PLUGIN_TOKEN = Setting::text(Runner, "DRONE_SECRET_PLUGIN_TOKEN", "secret-plugin-token", "TOKEN")
        .with_example("bea26a2221fd8090ea38720fc445eca6")
        .secret();
    /// Accept any TLS certificate from the secret plugin.
    SECRET_PLUGIN_SKIP_VERIFY = Setting::boolean(Runner, "DRONE_SECRET_PLUGIN_SKIP_VERIFY", "secret-plugin-skip-verify");
    /// The registry extension plugin asked for each stage's registry
    /// credentials (after `image_pull_secrets`); unset: none.
    REGISTRY_PLUGIN_ENDPOINT = Setting::text(Runner, "DRONE_REGISTRY_PLUGIN_ENDPOINT", "registry-plugin-endpoint", "URL")
        .with_example("http://registry-plugin:3000");
    /// The token shared with the registry plugin: requests are signed with
    /// it. Required with an endpoint. Prefer the environment or the ENVFILE:
    /// a flag shows in `ps`.
    REGISTRY_PLUGIN_TOKEN = Setting::text(Runner, "DRONE_REGISTRY_PLUGIN_TOKEN", "registry-plugin-token", "TOKEN")
        .with_example("bea26a2221fd8090ea38720fc445eca6")
        .secret();
    /// Accept any TLS certificate from the registry plugin.
    REGISTRY_PLUGIN_SKIP_VERIFY = Setting::boolean(Runner, "DRONE_REGISTRY_PLUGIN_SKIP_VERIFY", "registry-plugin-skip-verify");
    /// The environ extension plugin asked for each stage's global variables
    /// (masked ones are masked in logs); unset: none.
    ENV_PLUGIN_ENDPOINT = Setting::text(Runner, "DRONE_ENV_PLUGIN_ENDPOINT", "env-plugin-endpoint", "URL")
        .with_example("http://env-plugin:3000");
    /// The token shared with the environ plugin: requests are signed with
    /// it. Required with an endpoint. Prefer the environment or the ENVFILE:
    /// a flag shows in `ps`.
    ENV_PLUGIN_TOKEN = Setting::text(Runner, "DRONE_ENV_PLUGIN_TOKEN", "env-plugin-token", "TOKEN")
        .with_example("bea26a2221fd8090ea38720fc445eca6")
        .secret();
    /// Accept any TLS certificate from the environ plugin.
    ENV_PLUGIN_SKIP_VERIFY = Setting::boolean(Runner, "DRONE_ENV_PLUGIN_SKIP_VERIFY", "env-plugin-skip-verify");

    /// Where to serve `/healthz`, `/metrics` and the stages page; loopback
    /// unless told otherwise (`:PORT` listens on every interface).
    HTTP_BIND = Setting::text(Operation, "DRONE_HTTP_BIND", "http-bind", "ADDR")
        .with_default("127.0.0.1:3000")
        .with_example(":3000");
    /// User name for the stages page (HTTP basic auth, with `--ui-password`);
    /// without both the page is not served. `/healthz` and `/metrics` stay open.
    UI_USERNAME = Setting::text(Operation, "DRONE_UI_USERNAME", "ui-username", "USER")
        .with_example("admin");
    /// Password for the stages page.
    UI_PASSWORD = Setting::text(Operation, "DRONE_UI_PASSWORD", "ui-password", "PASSWORD")
        .with_example("correct-horse")
        .secret();
    /// The basic auth realm.
    UI_REALM = Setting::text(Operation, "DRONE_UI_REALM", "ui-realm", "REALM")
        .with_default("runnerkit")
        .with_example("CI runners");
    /// After SIGTERM or SIGINT, how long running stages may go on before they
    /// are cancelled and reported killed (`90s`, `15m`, `1h30m`). A second
    /// signal cancels them at once.
    DRAIN_TIMEOUT = Setting::text(Operation, "RUNNERKIT_DRAIN_TIMEOUT", "drain-timeout", "DURATION")
        .with_default("1h")
        .with_example("10m");
    /// Where the daemon keeps its state: the journal of the stages it holds,
    /// so that after a crash (`kill -9`, a power cut) the next start ends
    /// them on the server and cleans what they left. Unset:
    /// `$XDG_STATE_HOME/runnerkit`, else `~/.local/state/runnerkit`.
    DATA_DIR = Setting::text(Operation, "RUNNERKIT_DATA_DIR", "data-dir", "DIR")
        .with_example("/var/lib/runnerkit");
    /// Log at debug level (runnerkit's own messages).
    DEBUG = Setting::boolean(Operation, "DRONE_DEBUG", "debug");
    /// Log at trace level (runnerkit's own messages).
    TRACE = Setting::boolean(Operation, "DRONE_TRACE", "trace");

    /// Whether pull progress opens a step's log.
    DOCKER_STREAM_PULL = Setting::boolean(Docker, "DRONE_DOCKER_STREAM_PULL", "docker-stream-pull")
        .with_default("true")
        .with_example("false");
    /// How many steps after the one being created have their containers
    /// made (and script steps started, held) in the background; 0: none.
    DOCKER_LOOKAHEAD = Setting::text(Docker, "RUNNERKIT_DOCKER_LOOKAHEAD", "docker-lookahead", "N")
        .with_default("3")
        .with_example("0");
    /// Seconds a service whose image has a `HEALTHCHECK` may take to become
    /// healthy; the steps after it wait until then.
    DOCKER_HEALTH_TIMEOUT = Setting::text(Docker, "RUNNERKIT_DOCKER_HEALTH_TIMEOUT", "docker-health-timeout", "SECONDS")
        .with_default("300")
        .with_example("60");
    /// Seconds from SIGTERM to SIGKILL when a step is stopped.
    DOCKER_STOP_GRACE = Setting::text(Docker, "RUNNERKIT_DOCKER_STOP_GRACE", "docker-stop-grace", "SECONDS")
        .with_default("5")
        .with_example("30");

    /// The kubeconfig file of the cluster; unset: `KUBECONFIG`,
    /// `~/.kube/config`, then the pod's service account.
    KUBERNETES_CONFIG = Setting::text(Kubernetes, "DRONE_KUBERNETES_CONFIG", "kubernetes-config", "PATH")
        .with_example("/etc/runnerkit/kubeconfig");
    /// The namespace of a pipeline that names none in `metadata.namespace`.
    NAMESPACE_DEFAULT = Setting::text(Kubernetes, "DRONE_NAMESPACE_DEFAULT", "namespace-default", "NAMESPACE")
        .with_default("default")
        .with_example("ci");
    /// The service account of a pipeline that names none; unset: the pod
    /// mounts no service-account token.
    SERVICE_ACCOUNT_DEFAULT = Setting::text(Kubernetes, "DRONE_SERVICE_ACCOUNT_DEFAULT", "service-account-default", "NAME")
        .with_example("ci-builder");
    /// The node selector of a pipeline without `node_selector` (`key:value,...`).
    NODE_SELECTOR_DEFAULT = Setting::text(Kubernetes, "DRONE_NODE_SELECTOR_DEFAULT", "node-selector-default", "K:V,...")
        .with_example("pool:ci");
    /// Labels on every pod (`key:value,...`).
    LABELS_DEFAULT = Setting::text(Kubernetes, "DRONE_LABELS_DEFAULT", "labels-default", "K:V,...")
        .with_example("team:ci");
    /// Annotations on every pod (`key:value,...`).
    ANNOTATIONS_DEFAULT = Setting::text(Kubernetes, "DRONE_ANNOTATIONS_DEFAULT", "annotations-default", "K:V,...")
        .with_example("owner:ci");
    /// The stage's CPU request when the pipeline sets none, split over its
    /// containers: millicores, or a quantity (`0.5`, `500m`).
    RESOURCE_REQUEST_CPU = Setting::text(Kubernetes, "DRONE_RESOURCE_REQUEST_CPU", "resource-request-cpu", "CPU")
        .with_default("100")
        .with_example("1000");
    /// The stage's memory request when the pipeline sets none: bytes, or a
    /// size (`512Mi`, `1GiB`).
    RESOURCE_REQUEST_MEMORY = Setting::text(Kubernetes, "DRONE_RESOURCE_REQUEST_MEMORY", "resource-request-memory", "SIZE")
        .with_default("100MiB")
        .with_example("1GiB");
    /// Default and ceiling of each container's CPU limit; unset: none.
    RESOURCE_LIMIT_CPU = Setting::text(Kubernetes, "DRONE_RESOURCE_LIMIT_CPU", "resource-limit-cpu", "CPU")
        .with_example("2000");
    /// Default and ceiling of each container's memory limit; unset: none.
    RESOURCE_LIMIT_MEMORY = Setting::text(Kubernetes, "DRONE_RESOURCE_LIMIT_MEMORY", "resource-limit-memory", "SIZE")
        .with_example("4GiB");
    /// The floor of each container's CPU request.
    RESOURCE_MIN_REQUEST_CPU = Setting::text(Kubernetes, "DRONE_RESOURCE_MIN_REQUEST_CPU", "resource-min-request-cpu", "CPU")
        .with_default("1")
        .with_example("10");
    /// The floor of each container's memory request.
    RESOURCE_MIN_REQUEST_MEMORY = Setting::text(Kubernetes, "DRONE_RESOURCE_MIN_REQUEST_MEMORY", "resource-min-request-memory", "SIZE")
        .with_default("4MiB")
        .with_example("16MiB");
    /// The image every container runs until its step starts (a static
    /// program at `/bin/sh` that sleeps until SIGTERM; `crates/kube/placeholder`).
    IMAGE_PLACEHOLDER = Setting::text(Kubernetes, "DRONE_IMAGE_PLACEHOLDER", "image-placeholder", "IMAGE")
        .with_default("runnerkit/kube-placeholder:1")
        .with_example("registry.local/runnerkit/kube-placeholder:1");
    /// Seconds a step's container may take to start, pulls included (a pull
    /// error ends it at once).
    CONTAINER_START_TIMEOUT = Setting::text(Kubernetes, "DRONE_ENGINE_CONTAINER_START_TIMEOUT", "container-start-timeout", "SECONDS")
        .with_default("480")
        .with_example("600");
    /// Seconds a pod may stay unschedulable before its stage errors.
    SCHEDULE_TIMEOUT = Setting::text(Kubernetes, "RUNNERKIT_KUBE_SCHEDULE_TIMEOUT", "schedule-timeout", "SECONDS")
        .with_default("120")
        .with_example("600");
    /// Seconds from SIGTERM to SIGKILL when a step is stopped (the pod's
    /// termination grace).
    KUBE_STOP_GRACE = Setting::text(Kubernetes, "RUNNERKIT_KUBE_STOP_GRACE", "kube-stop-grace", "SECONDS")
        .with_default("5")
        .with_example("30");
    /// The pods' `dnsPolicy`; unset: the cluster's default (`ClusterFirst`).
    KUBE_DNS_POLICY = Setting::text(Kubernetes, "RUNNERKIT_KUBE_DNS_POLICY", "kube-dns-policy", "POLICY")
        .with_example("Default");
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_and_flags_are_unique_and_groups_contiguous() {
        let names: HashSet<_> = ALL.iter().map(|s| s.name).collect();
        let flags: HashSet<_> = ALL.iter().map(|s| s.flag).collect();
        assert_eq!((names.len(), flags.len()), (ALL.len(), ALL.len()));
        let mut order: Vec<Group> = ALL.iter().map(|s| s.group).collect();
        order.dedup();
        assert_eq!(order, Group::ALL, "listed group by group");
    }

    #[test]
    fn every_setting_is_documented_with_an_example() {
        for setting in ALL {
            assert!(
                !setting.doc.is_empty() && !setting.doc.starts_with(' '),
                "{}: {:?}",
                setting.name,
                setting.doc
            );
            assert!(!setting.example.is_empty(), "{}", setting.name);
            assert!(
                !setting.secret || setting.default.is_none(),
                "{}",
                setting.name
            );
        }
        assert_eq!(
            RPC_SECRET.doc,
            "The secret shared with the server (the server's setting of the same name). \
             Required. Prefer the environment or the ENVFILE: a flag shows in `ps`."
        );
    }

    #[test]
    fn a_blank_value_is_unset_and_the_default_applies() {
        let blank = |_: &str| Some("  ".to_owned());
        assert_eq!(CAPACITY.value_in(blank).as_deref(), Some("2"));
        assert_eq!(RPC_HOST.value_in(blank), None);
        assert_eq!(RPC_HOST.value_in(|_| None), None);
        assert_eq!(DEBUG.value_in(|_| None).as_deref(), Some("false"));
    }

    #[test]
    fn booleans_read_as_go_reads_them() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}

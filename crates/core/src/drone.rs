//! Drone's runner RPC data model, field for field.
//!
//! These are the JSON objects a Drone server (2.x, runner protocol v2) and a
//! runner exchange. Key names, omission rules and types follow
//! `reference/drone-rpc-protocol.md` §4 exactly: note `step_id` on [`Step`]
//! (it holds the *stage* id) and the capitalised `Data`/`Hash` of
//! [`ConfigFile`]. Timestamps are Unix seconds. Unknown keys are ignored when
//! reading. Values that must never be printed (`password`, `data`, `secret`)
//! are hidden from `Debug`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Status;

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}
fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// What a runner asks the queue for (body of `POST /rpc/v2/stage`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Always `pipeline`.
    pub kind: String,
    /// Pipeline type: `docker`, `exec`, ...
    #[serde(rename = "type")]
    pub kind_type: String,
    /// Platform OS, e.g. `linux`.
    pub os: String,
    /// Platform architecture, e.g. `amd64`.
    pub arch: String,
    /// Architecture variant.
    pub variant: String,
    /// Kernel version.
    pub kernel: String,
    /// Runner labels; must equal the pipeline's `node`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A stage: one pipeline of a build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stage {
    /// Stage id.
    pub id: i64,
    /// Repository id (sent by the server only).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub repo_id: i64,
    /// Build id.
    pub build_id: i64,
    /// 1-based position in the build.
    pub number: i32,
    /// Pipeline name (`default` when empty).
    pub name: String,
    /// `pipeline`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Pipeline type, e.g. `docker`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind_type: String,
    /// Status.
    pub status: Status,
    /// Error text (the server keeps 500 characters).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Failures of this stage are ignored.
    pub errignore: bool,
    /// Exit code.
    pub exit_code: i32,
    /// Runner name, set by Accept.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub machine: String,
    /// Platform OS.
    pub os: String,
    /// Platform architecture.
    pub arch: String,
    /// Architecture variant.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Kernel version (pipeline `platform.version`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel: String,
    /// Concurrency limit of stages with this name.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub limit: i32,
    /// Repository throttle.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub throttle: i32,
    /// Unix seconds.
    pub started: i64,
    /// Unix seconds.
    pub stopped: i64,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds.
    pub updated: i64,
    /// Optimistic-lock counter.
    pub version: i64,
    /// Run when no earlier stage failed.
    pub on_success: bool,
    /// Run when an earlier stage failed.
    pub on_failure: bool,
    /// Names of stages this one waits for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Pipeline `node:` labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Steps; required in stage updates, absent from Request/Accept/Detail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// A step as the server records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// Step row id, assigned by the server on the `running` stage update.
    pub id: i64,
    /// The id of the **stage** (the wire key is `step_id`).
    pub step_id: i64,
    /// 1..n in stage order.
    pub number: i32,
    /// Name.
    pub name: String,
    /// Status.
    pub status: Status,
    /// Error text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// `failure: ignore`.
    #[serde(skip_serializing_if = "is_false")]
    pub errignore: bool,
    /// Exit code.
    pub exit_code: i32,
    /// Unix seconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub started: i64,
    /// Unix seconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub stopped: i64,
    /// Optimistic-lock counter.
    pub version: i64,
    /// Names of steps it waits for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Image.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// A detached step or service.
    #[serde(skip_serializing_if = "is_false")]
    pub detached: bool,
    /// Card schema URL.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub schema: String,
}

/// A build (inside [`Details`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Build {
    /// Build id.
    pub id: i64,
    /// Repository id.
    pub repo_id: i64,
    /// What started it: `@hook`, `@cron`, a login.
    pub trigger: String,
    /// Build number.
    pub number: i64,
    /// Parent build (promote, restart).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub parent: i64,
    /// Status.
    pub status: Status,
    /// Error text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// `push`, `pull_request`, `tag`, `promote`, `rollback`, `cron`, `custom`.
    pub event: String,
    /// SCM action, e.g. `opened`.
    pub action: String,
    /// Commit or compare link.
    pub link: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// PR title.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Commit message.
    pub message: String,
    /// Commit before.
    pub before: String,
    /// Commit to build.
    pub after: String,
    /// Git ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Fork slug.
    pub source_repo: String,
    /// Source branch.
    pub source: String,
    /// Target branch.
    pub target: String,
    /// Author login.
    pub author_login: String,
    /// Author name.
    pub author_name: String,
    /// Author email.
    pub author_email: String,
    /// Author avatar URL.
    pub author_avatar: String,
    /// Sender login.
    pub sender: String,
    /// Custom build parameters.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Cron job name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cron: String,
    /// Promotion target.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deploy_to: String,
    /// Deployment id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub deploy_id: i64,
    /// Debug build.
    #[serde(skip_serializing_if = "is_false")]
    pub debug: bool,
    /// Unix seconds.
    pub started: i64,
    /// Unix seconds.
    pub finished: i64,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds.
    pub updated: i64,
    /// Optimistic-lock counter.
    pub version: i64,
    /// Every stage of the build, without steps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
}

/// A repository (Details key `repository`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Repo {
    /// Repository id.
    pub id: i64,
    /// SCM id.
    pub uid: String,
    /// Owner's user id.
    pub user_id: i64,
    /// Owner or organisation.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `namespace/name`.
    pub slug: String,
    /// SCM kind.
    pub scm: String,
    /// HTTP clone URL.
    pub git_http_url: String,
    /// SSH clone URL.
    pub git_ssh_url: String,
    /// Web link.
    pub link: String,
    /// Default branch.
    pub default_branch: String,
    /// Private repository.
    pub private: bool,
    /// `public`, `private`, `internal`.
    pub visibility: String,
    /// Active in Drone.
    pub active: bool,
    /// Path of the pipeline file.
    pub config_path: String,
    /// Trusted: privileged pipeline features allowed.
    pub trusted: bool,
    /// Protected: config changes need approval.
    pub protected: bool,
    /// Ignore forks.
    pub ignore_forks: bool,
    /// Ignore pull requests.
    pub ignore_pull_requests: bool,
    /// Auto-cancel pull requests.
    pub auto_cancel_pull_requests: bool,
    /// Auto-cancel pushes.
    pub auto_cancel_pushes: bool,
    /// Stage timeout in **minutes**.
    pub timeout: i64,
    /// Build counter.
    pub counter: i64,
    /// Unix seconds.
    pub synced: i64,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds.
    pub updated: i64,
    /// Optimistic-lock counter.
    pub version: i64,
    /// Concurrent build limit.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub throttle: i64,
    /// Per-repository key for `kind: secret` documents. Hidden from `Debug`.
    pub secret: String,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("trusted", &self.trusted)
            .field("timeout", &self.timeout)
            .field("secret", &"******")
            .finish_non_exhaustive()
    }
}

/// A secret the server hands over with the stage.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Secret {
    /// Secret id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub id: i64,
    /// Repository id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub repo_id: i64,
    /// Organisation, for organisation secrets.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name `from_secret` refers to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Type.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The value. Hidden from `Debug`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub data: String,
    /// Exposed to pull requests.
    #[serde(skip_serializing_if = "is_false")]
    pub pull_request: bool,
    /// Exposed to pushes of pull requests.
    #[serde(skip_serializing_if = "is_false")]
    pub pull_request_push: bool,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("data", &"******")
            .field("pull_request", &self.pull_request)
            .finish_non_exhaustive()
    }
}

/// Clone credentials, minted by the SCM for each Detail call.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Netrc {
    /// Host, e.g. `github.com`.
    pub machine: String,
    /// Login.
    pub login: String,
    /// Password or token. Hidden from `Debug`.
    pub password: String,
}

impl std::fmt::Debug for Netrc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netrc")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &"******")
            .finish()
    }
}

/// The server's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct System {
    /// `http` or `https`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proto: String,
    /// Host name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Public link.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub link: String,
    /// Server version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// The pipeline file (Details key `config`): `{"Data": <base64>, "Hash": null}`.
///
/// `data` holds the raw bytes; serde encodes them as standard base64, as Go
/// does for `[]byte`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// The YAML text.
    #[serde(rename = "Data", with = "base64_bytes")]
    pub data: Vec<u8>,
    /// Unused by the protocol; always `null` from Drone.
    #[serde(rename = "Hash", default, with = "opt_base64_bytes")]
    pub hash: Option<Vec<u8>>,
}

/// Everything needed to run a stage (answer of `GET /rpc/v2/stage/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Details {
    /// The repository, with its `secret`.
    pub repository: Repo,
    /// The build, with all its stages.
    pub build: Build,
    /// The stage to run (no steps).
    pub stage: Stage,
    /// The pipeline file.
    pub config: ConfigFile,
    /// Repository and organisation secrets (`null` on the wire when none).
    #[serde(deserialize_with = "null_as_empty")]
    pub secrets: Vec<Secret>,
    /// The server's identity.
    pub system: System,
    /// Clone credentials, if the SCM gave any.
    pub netrc: Option<Netrc>,
}

/// A log line as Batch and Upload carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// 0-based line counter per step.
    pub pos: i64,
    /// The text, with its trailing newline.
    pub out: String,
    /// Whole seconds since the step's log started.
    pub time: i64,
}

impl From<&crate::Line> for Line {
    fn from(line: &crate::Line) -> Self {
        let mut out = String::with_capacity(line.message.len() + 1);
        out.push_str(&line.message);
        out.push('\n');
        Self {
            pos: i64::try_from(line.number).unwrap_or(i64::MAX),
            out,
            time: i64::try_from(line.timestamp).unwrap_or(i64::MAX),
        }
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD.decode(text.as_bytes()).map_err(D::Error::custom)
    }
}

mod opt_base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        data: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match data {
            Some(bytes) => super::base64_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        use base64::Engine as _;
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t.as_bytes())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_uses_capitalised_keys_and_base64() {
        let cfg = ConfigFile {
            data: b"kind: pipeline\n".to_vec(),
            hash: None,
        };
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(json, r#"{"Data":"a2luZDogcGlwZWxpbmUK","Hash":null}"#);
        assert_eq!(serde_json::from_str::<ConfigFile>(&json).unwrap(), cfg);
    }

    #[test]
    fn step_wire_keys_and_omissions() {
        let step = Step {
            step_id: 42,
            number: 1,
            name: "clone".into(),
            ..Step::default()
        };
        let json = serde_json::to_string(&step).unwrap();
        assert_eq!(
            json,
            r#"{"id":0,"step_id":42,"number":1,"name":"clone","status":"pending","exit_code":0,"version":0}"#
        );
    }

    #[test]
    fn details_accept_null_secrets_and_netrc_and_unknown_keys() {
        let json = r#"{"repository":{"id":1,"slug":"o/r","timeout":60,"secret":"k","permissions":{}},
            "build":{"id":7,"ref":"refs/heads/main","event":"push"},
            "stage":{"id":42,"build_id":7,"number":1,"name":"default","status":"pending","os":"linux","arch":"amd64"},
            "config":{"Data":"a2luZDogcGlwZWxpbmUK","Hash":null},
            "secrets":null,"system":{"host":"drone.example.com"},"netrc":null}"#;
        let d: Details = serde_json::from_str(json).unwrap();
        assert!(d.secrets.is_empty());
        assert!(d.netrc.is_none());
        assert_eq!(d.build.git_ref, "refs/heads/main");
        assert_eq!(d.config.data, b"kind: pipeline\n");
        assert_eq!(d.repository.timeout, 60);
        assert!(!format!("{:?}", d.repository).contains("\"k\""));
    }

    #[test]
    fn filter_spells_type() {
        let f = Filter {
            kind: "pipeline".into(),
            kind_type: "exec".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            ..Filter::default()
        };
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"kind":"pipeline","type":"exec","os":"linux","arch":"amd64","variant":"","kernel":""}"#
        );
    }

    #[test]
    fn wire_line_carries_its_newline() {
        let line = crate::Line {
            number: 3,
            message: "hello".into(),
            timestamp: 2,
        };
        assert_eq!(
            serde_json::to_string(&Line::from(&line)).unwrap(),
            r#"{"pos":3,"out":"hello\n","time":2}"#
        );
    }
}

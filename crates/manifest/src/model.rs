//! The typed `.drone.yml`: every document of a file as a [`Resource`], and
//! pipelines field for field as reference §3-§5 describes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits::{Limit, LimitError, ParseLimits};
use crate::unknown::{DocumentKeys, UnknownKey};
use crate::values::{self, ByteSize, Condition, EnvValue, SettingValue};
use crate::yaml::{self, Located, YamlError};

/// Why a pipeline file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A document is not valid YAML or not the shape Drone expects.
    #[error("document {document} (line {first_line}): {source}")]
    Yaml {
        /// 1-based index of the document in the file.
        document: usize,
        /// Line of the document's first line.
        first_line: u64,
        /// What is wrong and where.
        #[source]
        source: YamlError,
    },
    /// The file is past one of its [`ParseLimits`]: too large, too many
    /// documents or steps, nested too deep. Nothing of it is used.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl ParseError {
    /// The 1-based line of the problem, 0 when unknown.
    pub fn line(&self) -> u64 {
        match self {
            ParseError::Yaml { source, .. } => source.line,
            ParseError::Limit(limit) => limit.line,
        }
    }

    /// The error of document `document` (1-based) that starts at
    /// `first_line`: a YAML error, or the limit the YAML reader stopped at.
    fn of_document(
        document: usize,
        first_line: u64,
        source: YamlError,
        limits: &ParseLimits,
    ) -> Self {
        match source.limit {
            Some(limit) => ParseError::Limit(LimitError {
                limit,
                max: limits.get(limit),
                found: limits.get(limit).saturating_add(1),
                document,
                pipeline: None,
                line: source.line,
                column: source.column,
            }),
            None => ParseError::Yaml {
                document,
                first_line,
                source,
            },
        }
    }
}

/// A parsed pipeline file: all its documents, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Manifest {
    /// One entry per non-empty document.
    pub resources: Vec<Resource>,
    /// Things accepted for compatibility that the user should fix, e.g. a
    /// duplicate key (Drone lets the last one win; so does runnerkit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ParseWarning>,
}

/// Something in the file that parsed but is probably a mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseWarning {
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based line of the first line of the document it is in: the
    /// [`Pipeline::line`] of the pipeline it concerns.
    pub document_line: u64,
    /// What was found, with its path when known.
    pub message: String,
}

impl std::fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// One document of a pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// `kind: pipeline`, of any `type`.
    Pipeline(Box<Pipeline>),
    /// `kind: secret`.
    Secret(SecretResource),
    /// `kind: signature`.
    Signature(Signature),
    /// Any other kind (`approval`, `deployment`, ...): kept, ignored.
    Other(OtherResource),
}

/// The keys every document has, read first to pick the document's type.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Header {
    kind: String,
}

/// A `kind: secret` document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretResource {
    /// The name `from_secret` refers to.
    pub name: String,
    /// Encrypted value: base64 of a 12-byte nonce and AES-256-GCM ciphertext.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub data: String,
    /// Lookup through a secret plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get: Option<SecretGet>,
}

/// `get:` of a `kind: secret` document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretGet {
    /// Path in the secret store.
    pub path: String,
    /// Name in the secret store.
    pub name: String,
    /// Key within the secret.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
}

/// A `kind: signature` document (parsed, never verified by a runner).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Signature {
    /// The HMAC of the file.
    pub hmac: String,
}

/// A document of a kind runnerkit does not use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OtherResource {
    /// Its `kind`.
    #[serde(rename = "other_kind")]
    pub kind: String,
    /// Line of its first line.
    pub line: u64,
}

/// A `kind: pipeline` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pipeline {
    /// `type`: `docker` (also when empty), `exec`, or another runner's type.
    #[serde(rename = "type")]
    pub kind_type: String,
    /// Name; empty means `default`.
    pub name: String,
    /// Target platform.
    #[serde(deserialize_with = "values::or_default")]
    pub platform: PlatformSpec,
    /// Runner labels the stage must be routed to.
    #[serde(deserialize_with = "values::or_default")]
    pub node: BTreeMap<String, String>,
    /// Concurrency limit of stages with this name (server side).
    #[serde(deserialize_with = "values::or_default")]
    pub concurrency: Concurrency,
    /// Pipelines this one waits for (server side).
    #[serde(deserialize_with = "values::pipeline_names")]
    pub depends_on: Vec<String>,
    /// When the pipeline runs (evaluated by the server).
    #[serde(deserialize_with = "values::or_default")]
    pub trigger: Conditions,
    /// Clone settings.
    #[serde(deserialize_with = "values::or_default")]
    pub clone: CloneSettings,
    /// Workspace location.
    #[serde(deserialize_with = "values::or_default")]
    pub workspace: WorkspaceSpec,
    /// Environment of every step (plain values only).
    #[serde(deserialize_with = "values::plain_env")]
    pub environment: BTreeMap<String, String>,
    /// Secrets whose values are Docker `config.json` files.
    #[serde(deserialize_with = "values::secret_names")]
    pub image_pull_secrets: Vec<String>,
    /// Volumes steps can mount.
    #[serde(deserialize_with = "values::volumes")]
    pub volumes: Vec<Located<VolumeSpec>>,
    /// Services: steps started detached before the steps.
    #[serde(deserialize_with = "values::nullable_steps")]
    pub services: Vec<Located<Option<StepSpec>>>,
    /// The steps, in order. A `None` is a null step (`-` alone), which lint reports.
    #[serde(deserialize_with = "values::nullable_steps")]
    pub steps: Vec<Located<Option<StepSpec>>>,
    /// The keys of the document the typed model does not read, in file
    /// order: typos, or keys of the pipeline type's engine (see
    /// [`UnknownKey`]). Empty for a pipeline built in code.
    #[serde(skip)]
    pub unknown_keys: Vec<UnknownKey>,
    /// 1-based line of the document's first line in the file.
    #[serde(skip)]
    pub line: u64,
    /// The document it was read from, for the keys of its engine
    /// (`EngineKeys`); `None` for a pipeline built in code.
    #[serde(skip)]
    pub(crate) source: Option<std::sync::Arc<yaml::DocumentText>>,
}

impl Pipeline {
    /// The name, with Drone's default `default` for an empty one.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            "default"
        } else {
            &self.name
        }
    }

    /// The type, with Drone's default `docker` for an empty one.
    pub fn pipeline_type(&self) -> &str {
        if self.kind_type.is_empty() {
            "docker"
        } else {
            &self.kind_type
        }
    }

    /// Services then steps, skipping null entries, with a flag telling services apart.
    pub fn all_steps(&self) -> impl Iterator<Item = (&Located<Option<StepSpec>>, bool)> {
        self.services
            .iter()
            .map(|s| (s, true))
            .chain(self.steps.iter().map(|s| (s, false)))
    }

    /// The names of the secrets the pipeline refers to, each once, in order:
    /// `image_pull_secrets`, then each service's and step's `from_secret`
    /// (environment, then settings). What a secret source is asked for.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.image_pull_secrets.iter().map(String::as_str).collect();
        for (step, _) in self.all_steps() {
            let Some(step) = &step.value else { continue };
            let env = step.environment.values().filter_map(|v| match v {
                EnvValue::FromSecret(name) => Some(name.as_str()),
                _ => None,
            });
            let settings = step.settings.values().filter_map(|v| match v {
                SettingValue::FromSecret(name) => Some(name.as_str()),
                SettingValue::Value(_) => None,
            });
            names.extend(env.chain(settings));
        }
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|name| seen.insert(*name));
        names
    }
}

/// `platform:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlatformSpec {
    /// Operating system.
    pub os: String,
    /// Architecture.
    pub arch: String,
    /// Architecture variant.
    pub variant: String,
    /// Kernel version.
    pub version: String,
}

/// `concurrency:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Concurrency {
    /// Maximum concurrent stages of this name per repository; 0 = unlimited.
    pub limit: i64,
}

/// `clone:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloneSettings {
    /// No clone step.
    pub disable: bool,
    /// `git fetch --depth`; 0 = full history.
    pub depth: i64,
    /// Retries of the fetch.
    pub retries: i64,
    /// Skip TLS verification.
    pub skip_verify: bool,
    /// `GIT_TRACE=true`.
    pub trace: bool,
}

/// `workspace:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceSpec {
    /// Mount point of the shared workspace.
    pub base: String,
    /// Path of the source below `base`.
    pub path: String,
}

/// A pipeline volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeSpec {
    /// Name steps mount it by.
    pub name: String,
    /// A scratch volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::or_default")]
    pub temp: Option<TempVolume>,
    /// A host path (trusted repositories only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::or_default")]
    pub host: Option<HostVolume>,
}

/// `temp:` of a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TempVolume {
    /// `memory` for a tmpfs (trusted only); anything else is disk.
    pub medium: String,
    /// Size limit of a memory volume.
    pub size_limit: ByteSize,
}

/// `host:` of a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostVolume {
    /// Absolute host path.
    pub path: String,
}

/// A mount of a volume or device into a step: `{name, path}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountSpec {
    /// Name of a pipeline volume.
    pub name: String,
    /// Path inside the step.
    pub path: String,
}

/// `when:` / `trigger:`: every key must match (§6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conditions {
    /// Build target branch.
    pub branch: Condition,
    /// Build event.
    pub event: Condition,
    /// Git ref.
    #[serde(rename = "ref")]
    pub git_ref: Condition,
    /// Repository slug.
    pub repo: Condition,
    /// Server host.
    pub instance: Condition,
    /// Stage status so far (`success`, `failure`): becomes the run policy.
    pub status: Condition,
    /// Deployment target.
    pub target: Condition,
    /// Cron job name.
    pub cron: Condition,
    /// SCM action.
    pub action: Condition,
    /// Changed files: parsed, not evaluated (Drone does not either).
    pub paths: Condition,
}

/// A step or service as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepSpec {
    /// Name, unique across clone, services and steps.
    pub name: String,
    /// Container image.
    pub image: String,
    /// `always`, `if-not-exists`, `never`, else default.
    pub pull: String,
    /// Shell commands.
    #[serde(deserialize_with = "values::commands")]
    pub commands: Vec<String>,
    /// Entrypoint override (without `commands`).
    #[serde(deserialize_with = "values::strings")]
    pub entrypoint: Vec<String>,
    /// Command override (without `commands`).
    #[serde(deserialize_with = "values::strings")]
    pub command: Vec<String>,
    /// Parsed and ignored, as in Drone.
    pub shell: String,
    /// Environment: plain values or `from_secret`.
    #[serde(deserialize_with = "values::or_default")]
    pub environment: BTreeMap<String, EnvValue>,
    /// Plugin settings, become `PLUGIN_*`.
    #[serde(deserialize_with = "values::or_default")]
    pub settings: BTreeMap<String, SettingValue>,
    /// When the step runs.
    #[serde(deserialize_with = "values::or_default")]
    pub when: Conditions,
    /// Steps this one waits for.
    #[serde(deserialize_with = "values::step_names")]
    pub depends_on: Vec<String>,
    /// `ignore`, `fast`/`fast-fail`/`fail-fast`, else fail.
    pub failure: String,
    /// Start and do not wait.
    pub detach: bool,
    /// Privileged mode (trusted only).
    pub privileged: bool,
    /// Volume mounts.
    #[serde(deserialize_with = "values::mounts")]
    pub volumes: Vec<MountSpec>,
    /// Device mounts (trusted only).
    #[serde(deserialize_with = "values::mounts")]
    pub devices: Vec<MountSpec>,
    /// Network mode (trusted only).
    pub network_mode: String,
    /// DNS servers (trusted only).
    #[serde(deserialize_with = "values::strings")]
    pub dns: Vec<String>,
    /// DNS search domains (trusted only).
    #[serde(deserialize_with = "values::strings")]
    pub dns_search: Vec<String>,
    /// Extra hosts entries (trusted only).
    #[serde(deserialize_with = "values::strings")]
    pub extra_hosts: Vec<String>,
    /// User to run as.
    pub user: String,
    /// Working directory.
    pub working_dir: String,
    /// Size of `/dev/shm` (trusted only).
    pub shm_size: ByteSize,
    /// Memory limit.
    pub mem_limit: ByteSize,
    /// Memory plus swap limit.
    pub memswap_limit: ByteSize,
    /// CPU period in microseconds.
    pub cpu_period: u64,
    /// CPU quota in microseconds per period.
    pub cpu_quota: u64,
    /// Relative CPU weight.
    pub cpu_shares: u64,
    /// CPUs, e.g. `0-1`.
    pub cpu_set: String,
}

/// One document of a file, not yet typed: for engines whose pipeline type
/// has keys runnerkit does not model (a `type: kubernetes` step's
/// `resources`, a `type: ssh` pipeline's `server`), so they can read it into
/// their own serde types with the same YAML rules and error locations.
#[derive(Debug, Clone)]
pub struct RawDocument {
    /// Its `kind` (empty when it has none).
    pub kind: String,
    /// 1-based line of its first line in the file.
    pub first_line: u64,
    text: yaml::DocumentText,
}

impl RawDocument {
    /// Reads the document into `T` (merge keys, YAML 1.1 booleans, nulls as
    /// empty strings, as for runnerkit's own types).
    ///
    /// # Errors
    /// [`YamlError`] with the path, line and column in the file.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, YamlError> {
        self.text.parse()
    }
}

/// Splits a file into its documents without typing them (see [`RawDocument`]),
/// within the default [`ParseLimits`].
///
/// # Errors
/// [`ParseError::Yaml`] when a document's `kind` cannot be read;
/// [`ParseError::Limit`] past a limit.
pub fn raw_documents(text: &str) -> Result<Vec<RawDocument>, ParseError> {
    let limits = ParseLimits::default();
    documents(text, &limits)?
        .into_iter()
        .enumerate()
        .map(|(index, doc)| {
            let kind = match doc.kind_hint() {
                Some(kind) => kind,
                None => {
                    doc.parse::<Header>()
                        .map_err(|source| {
                            ParseError::of_document(index + 1, doc.first_line, source, &limits)
                        })?
                        .kind
                }
            };
            Ok(RawDocument {
                kind,
                first_line: doc.first_line,
                text: doc,
            })
        })
        .collect()
}

/// The documents of `text`, refused past the file's size or its number of
/// documents (counted to the end, without copying them, for the message).
fn documents(text: &str, limits: &ParseLimits) -> Result<Vec<yaml::DocumentText>, LimitError> {
    limits.check_size(text)?;
    let budget = yaml::DocumentBudget::from(limits);
    let mut spans = yaml::document_spans(text);
    let mut docs = Vec::new();
    for span in spans.by_ref().take(limits.max_documents) {
        docs.push(span.document(text, budget));
    }
    match spans.next() {
        None => Ok(docs),
        Some(past) => Err(LimitError {
            limit: Limit::Documents,
            max: limits.max_documents,
            found: limits.max_documents + 1 + spans.count(),
            document: limits.max_documents + 1,
            pipeline: None,
            line: past.first_line,
            column: 0,
        }),
    }
}

/// Refuses a pipeline with more steps and services than `limits` allows,
/// naming the first one past the limit.
fn check_steps(
    pipeline: &Pipeline,
    document: usize,
    limits: &ParseLimits,
) -> Result<(), LimitError> {
    let count = pipeline.services.len() + pipeline.steps.len();
    if count <= limits.max_steps {
        return Ok(());
    }
    let past = pipeline.all_steps().nth(limits.max_steps).map(|(s, _)| s);
    Err(LimitError {
        limit: Limit::Steps,
        max: limits.max_steps,
        found: count,
        document,
        pipeline: Some(pipeline.display_name().to_owned()),
        line: past.map_or(pipeline.line, |s| s.line),
        column: past.map_or(0, |s| s.column),
    })
}

impl Manifest {
    /// Parses a (possibly multi-document) pipeline file, within the default
    /// [`ParseLimits`].
    ///
    /// Run [`crate::envsubst`] over the text first when substituting variables.
    ///
    /// # Errors
    /// [`ParseError::Yaml`] for the first document that is not valid YAML or
    /// not the expected shape: an error in any document fails the file.
    /// [`ParseError::Limit`] when the file is past a limit.
    pub fn parse(text: &str) -> Result<Manifest, ParseError> {
        Self::parse_with(text, &ParseLimits::default())
    }

    /// [`Manifest::parse`] within other limits.
    ///
    /// Time and memory are linear in the size of the text: each document is
    /// read on its own, a fixed number of times (its `kind`, the typed
    /// read, the unknown keys, once more for a duplicate key).
    ///
    /// # Errors
    /// As [`Manifest::parse`].
    pub fn parse_with(text: &str, limits: &ParseLimits) -> Result<Manifest, ParseError> {
        let mut resources = Vec::new();
        let mut warnings = Vec::new();
        for (index, doc) in documents(text, limits)?.into_iter().enumerate() {
            let wrap = |source| ParseError::of_document(index + 1, doc.first_line, source, limits);
            let kind = match doc.kind_hint() {
                Some(kind) => kind,
                None => doc.parse::<Header>().map_err(wrap)?.kind,
            };
            let resource = match kind.as_str() {
                "pipeline" => {
                    let (mut pipeline, duplicate) =
                        doc.parse_lenient::<Pipeline>().map_err(wrap)?;
                    pipeline.line = doc.first_line;
                    check_steps(&pipeline, index + 1, limits)?;
                    if let Some(dup) = duplicate {
                        warnings.push(ParseWarning {
                            line: dup.line,
                            document_line: doc.first_line,
                            message: format!(
                                "{}: the last one wins, as in Drone",
                                dup.to_string()
                                    .split(" at line ")
                                    .next()
                                    .unwrap_or_default()
                            ),
                        });
                    }
                    // A second, untyped pass: what the typed one read
                    // parses again, so it cannot fail here; if it did, the
                    // pipeline would only lose its warnings.
                    if let Ok((keys, _)) = doc.parse_lenient::<DocumentKeys>() {
                        pipeline.unknown_keys = keys.resolve(&pipeline, &doc);
                    }
                    pipeline.source = Some(std::sync::Arc::new(doc));
                    Resource::Pipeline(Box::new(pipeline))
                }
                "secret" => Resource::Secret(doc.parse().map_err(wrap)?),
                "signature" => Resource::Signature(doc.parse().map_err(wrap)?),
                other => Resource::Other(OtherResource {
                    kind: other.to_owned(),
                    line: doc.first_line,
                }),
            };
            resources.push(resource);
        }
        Ok(Manifest {
            resources,
            warnings,
        })
    }

    /// Every `kind: pipeline` document, in order.
    pub fn pipelines(&self) -> impl Iterator<Item = &Pipeline> {
        self.resources.iter().filter_map(|r| match r {
            Resource::Pipeline(p) => Some(p.as_ref()),
            _ => None,
        })
    }

    /// Every `kind: secret` document, in order.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretResource> {
        self.resources.iter().filter_map(|r| match r {
            Resource::Secret(s) => Some(s),
            _ => None,
        })
    }

    /// The pipeline named `name` (an empty name matches `default`), or the
    /// first pipeline when `name` is `None`.
    pub fn pipeline(&self, name: Option<&str>) -> Option<&Pipeline> {
        match name {
            None => self.pipelines().next(),
            Some(name) => {
                let name = if name.is_empty() { "default" } else { name };
                self.pipelines().find(|p| p.display_name() == name)
            }
        }
    }

    /// Drone's lookup: the first pipeline named `name` whose type is `kind_type`
    /// (an empty type counts as `docker`).
    pub fn pipeline_of_type(&self, name: &str, kind_type: &str) -> Option<&Pipeline> {
        let name = if name.is_empty() { "default" } else { name };
        self.pipelines()
            .find(|p| p.display_name() == name && p.pipeline_type() == kind_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "\
kind: pipeline
type: docker
name: build

x-common: &common
  image: golang:1.22
  environment:
    GOFLAGS: -mod=vendor

steps:
- name: test
  <<: *common
  commands: [go test ./...]
- name: vet
  <<: *common
  environment:
    CGO: 0
  commands: [go vet ./...]
---
kind: secret
name: token
get:
  path: secret/data/ci
  name: token
---
kind: approval
name: whatever
---
kind: pipeline
type: exec
name: deploy
depends_on: [build]
steps:
-
- name: ship
  commands:
  - ./ship.sh
---
kind: signature
hmac: abc123
";

    #[test]
    fn secret_names_lists_every_reference_once() {
        let text = "\
kind: pipeline
name: p
image_pull_secrets: [dockerconfig]
services:
- name: db
  image: postgres
  environment:
    POSTGRES_PASSWORD: {from_secret: db_password}
steps:
- name: test
  image: golang
  environment:
    PLAIN: value
    TOKEN: {from_secret: token}
- name: publish
  image: plugins/docker
  settings:
    repo: octo/app
    password: {from_secret: token}
    username: {from_secret: docker_username}
";
        let manifest = Manifest::parse(text).unwrap();
        let pipeline = manifest.pipelines().next().unwrap();
        assert_eq!(
            pipeline.secret_names(),
            ["dockerconfig", "db_password", "token", "docker_username"]
        );
    }

    #[test]
    fn multi_document_files_parse_into_typed_resources() {
        let m = Manifest::parse(MULTI).unwrap();
        assert_eq!(m.resources.len(), 5);
        assert!(matches!(&m.resources[1], Resource::Secret(s) if s.name == "token"));
        assert!(
            matches!(&m.resources[2], Resource::Other(o) if o.kind == "approval" && o.line == 25)
        );
        assert!(matches!(&m.resources[4], Resource::Signature(s) if s.hmac == "abc123"));
        let build = m.pipeline(Some("build")).unwrap();
        assert_eq!(build.pipeline_type(), "docker");
        let test = build.steps[0].value.as_ref().unwrap();
        assert_eq!(test.image, "golang:1.22");
        assert_eq!(
            test.environment["GOFLAGS"],
            EnvValue::Text("-mod=vendor".into())
        );
        // An explicit key replaces the merged map as a whole, as in YAML 1.1.
        let vet = build.steps[1].value.as_ref().unwrap();
        assert_eq!(vet.environment.len(), 1);
        assert_eq!(vet.environment["CGO"], EnvValue::Text("0".into()));
        assert_eq!(build.steps[1].line, 14);
        let deploy = m.pipeline_of_type("deploy", "exec").unwrap();
        assert_eq!(deploy.line, 28);
        assert!(deploy.steps[0].value.is_none(), "null step kept for lint");
        assert_eq!(deploy.steps[1].line, 35);
        assert!(m.pipeline_of_type("deploy", "docker").is_none());
        assert_eq!(m.pipeline(None).unwrap().name, "build");
    }

    #[test]
    fn errors_name_document_path_and_line() {
        let text = "kind: pipeline\nname: a\n---\nkind: pipeline\nname: b\nsteps:\n- name: one\n- name: two\n- name: three\n  depends_on:\n    one: two\n";
        let err = Manifest::parse(text).unwrap_err();
        assert_eq!(err.line(), 11);
        assert_eq!(
            err.to_string(),
            "document 2 (line 3): steps[2].depends_on: expected a list of step names, found a map at line 11, column 5"
        );
    }

    #[test]
    fn duplicate_keys_warn_and_the_last_wins() {
        let text =
            "kind: pipeline\nsteps:\n- name: a\n  image: one\n  commands: [x]\n  image: two\n";
        let m = Manifest::parse(text).unwrap();
        let step = m.pipeline(None).unwrap().steps[0].value.clone().unwrap();
        assert_eq!(step.image, "two");
        assert_eq!(m.warnings.len(), 1);
        assert_eq!(
            m.warnings[0].to_string(),
            "line 6: steps[0]: duplicate mapping key `image`: the last one wins, as in Drone"
        );
    }

    #[test]
    fn raw_documents_let_other_engines_read_their_own_keys() {
        #[derive(Debug, serde::Deserialize)]
        struct SshPipeline {
            server: SshServer,
        }
        #[derive(Debug, serde::Deserialize)]
        struct SshServer {
            host: String,
        }
        let text = "kind: pipeline\ntype: docker\n---\nkind: pipeline\ntype: ssh\nserver:\n  host: 10.0.0.1\n";
        let docs = raw_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[1].kind.as_str(), docs[1].first_line), ("pipeline", 3));
        let ssh: SshPipeline = docs[1].deserialize().unwrap();
        assert_eq!(ssh.server.host, "10.0.0.1");
        let err = docs[0].deserialize::<SshPipeline>().unwrap_err();
        assert!(err.message.contains("server"), "{}", err.message);
    }

    #[test]
    fn an_error_in_any_document_fails_the_file() {
        let text = "kind: pipeline\nname: a\n---\nkind: secret\nname: [x\n";
        assert!(Manifest::parse(text).is_err());
    }

    #[test]
    fn empty_name_and_type_take_drone_defaults() {
        let m = Manifest::parse("kind: pipeline\nsteps:\n- name: a\n  image: alpine\n").unwrap();
        let p = m.pipeline(Some("")).unwrap();
        assert_eq!(p.display_name(), "default");
        assert!(m.pipeline_of_type("default", "docker").is_some());
    }
}

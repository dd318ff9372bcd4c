//! The pipeline language: from the text of a `.drone.yml` to a compiled
//! [`runnerkit_core::Spec`].
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod conditions;
pub mod environ;
mod envsubst;
mod glob;
mod lint;
mod model;
mod registry;
mod secrets;
mod values;
mod yaml;

pub use conditions::MatchInput;
pub use envsubst::{EnvsubstError, envsubst};
pub use lint::{LintError, LintRule, lint, lint_manifest};
pub use model::{
    CloneSettings, Concurrency, Conditions, HostVolume, Manifest, MountSpec, OtherResource,
    ParseError, Pipeline, PlatformSpec, Resource, SecretGet, SecretResource, Signature, StepSpec,
    TempVolume, VolumeSpec, WorkspaceSpec,
};
pub use registry::{
    CombinedRegistries, DockerConfig, RegistryError, RegistryProvider, StaticRegistries,
    find_credentials, image_registry, normalize_host,
};
pub use secrets::{
    CombinedSecrets, EnvSecrets, SecretError, SecretProvider, SecretRequest, ServerSecrets,
    StaticSecrets,
};
pub use values::{ByteSize, Condition, EnvValue, SettingValue};
pub use yaml::{Located, YamlError};

//! What a local run checks before a `type: exec` pipeline runs: its steps
//! run on this machine, so its `platform` must be this machine's (unless
//! `--platform-any`). The user's `HOME` is the local engine's setting (see
//! `RunnerType::with_local_engine` in `main.rs`), not a change to the Spec.

use runnerkit_core::Platform;
use runnerkit_manifest::{Compiled, PipelineType};

use crate::context::{drone_arch, drone_os};

/// A pipeline refused because its platform is not this host's.
#[derive(Debug)]
pub struct WrongPlatform {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its `platform`, as `os/arch`.
    pub wanted: String,
    /// This host, as `os/arch`.
    pub host: String,
}

impl std::fmt::Display for WrongPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pipeline {:?} is for {}, but this host is {} and a type exec pipeline runs its \
             steps on this host (use --platform-any to run it anyway)",
            self.pipeline, self.wanted, self.host
        )
    }
}

impl std::error::Error for WrongPlatform {}

/// Refuses the compiled `type: exec` pipeline when its `platform` is not
/// this host's: its steps run on this machine. Any other type passes: a
/// container or a VM brings its own platform.
pub fn check(compiled: &Compiled) -> Result<(), WrongPlatform> {
    if compiled.pipeline_type != PipelineType::exec().name() {
        return Ok(());
    }
    check_platform(&compiled.spec.platform, &compiled.pipeline)
}

/// Compares `wanted` (`os`/`arch`) with this host's; an empty value matches
/// any.
fn check_platform(wanted: &Platform, pipeline: &str) -> Result<(), WrongPlatform> {
    let os = drone_os(std::env::consts::OS);
    let arch = drone_arch(std::env::consts::ARCH);
    let matches = |want: &str, have: &str| want.is_empty() || want.eq_ignore_ascii_case(have);
    if matches(&wanted.os, os) && matches(&wanted.arch, arch) {
        return Ok(());
    }
    let or_any = |v: &str| {
        if v.is_empty() {
            "any".to_owned()
        } else {
            v.to_owned()
        }
    };
    Err(WrongPlatform {
        pipeline: pipeline.to_owned(),
        wanted: format!("{}/{}", or_any(&wanted.os), or_any(&wanted.arch)),
        host: format!("{os}/{arch}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(os: &str, arch: &str) -> Platform {
        Platform {
            os: os.into(),
            arch: arch.into(),
            ..Platform::default()
        }
    }

    #[test]
    fn only_this_hosts_platform_runs() {
        let os = drone_os(std::env::consts::OS);
        let arch = drone_arch(std::env::consts::ARCH);
        assert!(check_platform(&platform(os, arch), "p").is_ok());
        assert!(check_platform(&platform("", ""), "p").is_ok());
        let err = check_platform(&platform("plan9", ""), "p").unwrap_err();
        assert_eq!(err.wanted, "plan9/any");
        assert!(err.to_string().contains("--platform-any"), "{err}");
    }
}

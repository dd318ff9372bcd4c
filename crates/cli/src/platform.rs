//! What a local run of a `type: exec` pipeline adds before it runs: its
//! steps run on this machine, so its `platform` must be this machine's, and
//! they keep the user's `HOME` (DESIGN: "A local run keeps the user's HOME").
//!
//! Only `exec` does this, on the Spec it runs: the daemon shares the same
//! engine factory and keeps the engine's default, a home per stage.

use runnerkit_core::Spec;
use runnerkit_manifest::PipelineType;

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

/// Readies `spec`, the compiled pipeline `pipeline` of type `pipeline_type`,
/// for a local run. For a host (`exec`) pipeline: refuses a `platform` this
/// host is not, unless `any_platform`, and gives every step that sets no
/// `HOME` (neither in the file nor with `--env HOME`) the user's. Any other
/// type is returned unchanged: a container has its own platform and home.
pub fn for_local_run(
    mut spec: Spec,
    pipeline: &str,
    pipeline_type: &str,
    any_platform: bool,
) -> Result<Spec, WrongPlatform> {
    if pipeline_type != PipelineType::exec().name() {
        return Ok(spec);
    }
    if !any_platform {
        check(&spec, pipeline)?;
    }
    if let Some(home) = std::env::var_os("HOME").and_then(|h| h.into_string().ok()) {
        for step in &mut spec.steps {
            step.environment
                .entry("HOME".into())
                .or_insert_with(|| home.clone());
        }
    }
    Ok(spec)
}

/// Compares the pipeline's `platform.os`/`arch` with this host's; an empty
/// value (the compiler fills unset ones with the host's) matches any.
fn check(spec: &Spec, pipeline: &str) -> Result<(), WrongPlatform> {
    let os = drone_os(std::env::consts::OS);
    let arch = drone_arch(std::env::consts::ARCH);
    let wanted = &spec.platform;
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
    use runnerkit_core::{Platform, Step};

    fn spec(os: &str, arch: &str) -> Spec {
        Spec {
            platform: Platform {
                os: os.into(),
                arch: arch.into(),
                ..Platform::default()
            },
            steps: vec![Step::named("a")],
            ..Spec::default()
        }
    }

    #[test]
    fn only_this_hosts_platform_runs_unless_any() {
        let os = drone_os(std::env::consts::OS);
        let arch = drone_arch(std::env::consts::ARCH);
        assert!(for_local_run(spec(os, arch), "p", "exec", false).is_ok());
        assert!(for_local_run(spec("", ""), "p", "exec", false).is_ok());
        let err = for_local_run(spec("plan9", ""), "p", "exec", false).unwrap_err();
        assert_eq!(err.wanted, "plan9/any");
        assert!(err.to_string().contains("--platform-any"), "{err}");
        assert!(for_local_run(spec("plan9", "x"), "p", "exec", true).is_ok());
        assert!(for_local_run(spec("plan9", "x"), "p", "docker", false).is_ok());
    }
}

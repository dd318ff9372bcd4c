//! Helpers for tests that need a Docker daemon (feature `testing`).
//!
//! No registry is reachable where runnerkit is tested, so the test image,
//! [`TEST_IMAGE`], is built here `FROM scratch` with the host's static
//! busybox (Debian's `busybox-static`) when the daemon lacks it.
//!
//! ```no_run
//! # async fn demo() {
//! use runnerkit_docker::testing::docker_or_skip;
//! let Some(engine) = docker_or_skip().await else { return };
//! # let _ = engine;
//! # }
//! ```

use std::path::Path;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use crate::engine::DockerEngine;
use crate::error::{Error, is_not_found};
use crate::labels;
use crate::teardown;

/// The image the tests run: busybox on `FROM scratch`, every applet linked
/// into `/bin`.
pub const TEST_IMAGE: &str = "runnerkit-test:busybox";

/// Set to `1` where a daemon must be present (CI): [`docker_or_skip`] then
/// fails instead of skipping.
pub const REQUIRE_DOCKER_ENV: &str = "RUNNERKIT_REQUIRE_DOCKER";

/// Where Debian's static busybox may be installed.
const BUSYBOX_PATHS: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];

/// An engine on the environment's daemon with [`TEST_IMAGE`] present, or
/// `None` after printing why the test is skipped (no daemon, no busybox).
///
/// # Panics
/// Instead of skipping, when `RUNNERKIT_REQUIRE_DOCKER=1`; and when the
/// image cannot be built although a daemon answers.
pub async fn docker_or_skip() -> Option<DockerEngine> {
    let required = std::env::var(REQUIRE_DOCKER_ENV).is_ok_and(|v| v == "1");
    let engine = match DockerEngine::connect().await {
        Ok(engine) => engine,
        Err(e) => {
            let reason = runnerkit_core::error_chain(&e);
            assert!(
                !required,
                "{REQUIRE_DOCKER_ENV}=1 but no Docker daemon: {reason}"
            );
            println!("skipped: no Docker daemon ({reason})");
            return None;
        }
    };
    if let Err(e) = ensure_test_image(&engine).await {
        let reason = runnerkit_core::error_chain(&e);
        assert!(
            !required,
            "{REQUIRE_DOCKER_ENV}=1 but the test image is unavailable: {reason}"
        );
        println!("skipped: test image {TEST_IMAGE} unavailable ({reason})");
        return None;
    }
    Some(engine)
}

/// Why a test of the OOM flag skips on Podman ([`docker_unless_podman`]).
pub const PODMAN_LEAVES_OOM_UNREPORTED: &str = "Podman 4.3's conmon writes the OOM flag into the API service's working directory, where podman never reads it: OOMKilled stays false";

/// Why a test of the http stand-in registry skips on Podman
/// ([`docker_unless_podman`]).
pub const PODMAN_PULLS_LOOPBACK_OVER_HTTPS: &str =
    "Podman reaches a registry on 127.0.0.1 over https only, and the stand-in registry speaks http";

/// Like [`docker_or_skip`], but `None` also when the daemon is Podman,
/// after printing `why` the test cannot pass there (a documented
/// difference of Podman's, docs/docker.md).
pub async fn docker_unless_podman(why: &str) -> Option<DockerEngine> {
    let engine = docker_or_skip().await?;
    if is_podman(&engine).await {
        println!("skipped on Podman: {why}");
        return None;
    }
    Some(engine)
}

/// Whether the daemon `engine` talks to is Podman (its version names a
/// "Podman Engine" component).
pub async fn is_podman(engine: &DockerEngine) -> bool {
    engine.is_podman()
}

/// Builds [`TEST_IMAGE`] unless the daemon already has it.
///
/// # Errors
/// No static busybox on this host, or the daemon refused the build.
pub async fn ensure_test_image(engine: &DockerEngine) -> Result<(), Error> {
    // Tests of one binary run in parallel: one build at a time, the others
    // then find the image.
    static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = BUILDING.lock().await;
    let docker = engine.docker();
    match docker.inspect_image(TEST_IMAGE).await {
        Ok(_) => return Ok(()),
        Err(e) if is_not_found(&e) => {}
        Err(source) => {
            return Err(Error::api(format!("inspect image {TEST_IMAGE:?}"), source));
        }
    }
    let busybox = BUSYBOX_PATHS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Io {
            operation: format!(
                "build {TEST_IMAGE:?}: find a static busybox at {} (package busybox-static)",
                BUSYBOX_PATHS.join(" or ")
            ),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
    let binary = std::fs::read(busybox).map_err(|source| Error::Io {
        operation: format!("read {}", busybox.display()),
        source,
    })?;
    let dockerfile = b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    let context = tar(&[
        ("Dockerfile", 0o644, dockerfile),
        ("busybox", 0o755, &binary),
    ]);
    build(docker, TEST_IMAGE, context).await
}

/// Builds the image `tag` from the build context `context` (a tar).
async fn build(docker: &bollard::Docker, tag: &str, context: Vec<u8>) -> Result<(), Error> {
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let operation = format!("build image {tag:?}");
    let mut build = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = build.next().await {
        match step {
            Ok(info) => {
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    return Err(Error::api(
                        operation,
                        bollard::errors::Error::DockerStreamError { error: detail },
                    ));
                }
            }
            Err(source) => return Err(Error::api(operation, source)),
        }
    }
    Ok(())
}

/// Builds the image `tag` from [`TEST_IMAGE`] plus the Dockerfile
/// instructions `instructions` (a `HEALTHCHECK`, say), unless the daemon
/// already has it.
///
/// # Errors
/// The daemon refused the build.
pub async fn ensure_derived_image(
    engine: &DockerEngine,
    tag: &str,
    instructions: &str,
) -> Result<(), Error> {
    static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = BUILDING.lock().await;
    ensure_test_image(engine).await?;
    let docker = engine.docker();
    match docker.inspect_image(tag).await {
        Ok(_) => return Ok(()),
        Err(e) if is_not_found(&e) => {}
        Err(source) => return Err(Error::api(format!("inspect image {tag:?}"), source)),
    }
    let dockerfile = format!("FROM {TEST_IMAGE}\n{instructions}\n");
    let context = tar(&[("Dockerfile", 0o644, dockerfile.as_bytes())]);
    build(docker, tag, context).await
}

/// Removes the image `name` (and its untagged parents) if present.
///
/// # Errors
/// The daemon refused (e.g. a container still uses it).
pub async fn remove_image(engine: &DockerEngine, name: &str) -> Result<(), Error> {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
        .force(true)
        .build();
    match engine
        .docker()
        .remove_image(name, Some(options), None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::api(format!("remove image {name:?}"), source)),
    }
}

/// Names (`kind name`) of every container, network and volume still
/// labelled with the stage `stage_id`: empty after a complete `destroy`.
///
/// # Errors
/// The daemon could not list them.
pub async fn stage_leftovers(engine: &DockerEngine, stage_id: &str) -> Result<Vec<String>, Error> {
    let found = teardown::list(engine.docker(), &labels::stage_filter(stage_id))
        .await
        .map_err(|f| Error::api(f.operation, f.source))?;
    Ok(found
        .into_iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect())
}

/// Force-removes the containers of step `step` of the stage `stage_id`, as
/// `docker rm -f` from outside runnerkit would; returns their names.
///
/// # Errors
/// The daemon could not list or remove them.
pub async fn remove_from_outside(
    engine: &DockerEngine,
    stage_id: &str,
    step: &str,
) -> Result<Vec<String>, Error> {
    let mut filters = labels::stage_filter(stage_id);
    filters
        .entry("label".to_owned())
        .or_default()
        .push(format!("{}={step}", labels::LABEL_STEP));
    let found = teardown::list(engine.docker(), &filters)
        .await
        .map_err(|f| Error::api(f.operation, f.source))?;
    let mut removed = Vec::new();
    for container in found.iter().filter(|o| o.kind == teardown::Kind::Container) {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
            .force(true)
            .build();
        engine
            .docker()
            .remove_container(&container.id, Some(options))
            .await
            .map_err(|e| Error::api(format!("remove container {:?}", container.name), e))?;
        removed.push(container.name.clone());
    }
    Ok(removed)
}

/// Docker objects made without runnerkit's labels under names of one's
/// choosing, as someone who guessed a stage's names would plant them.
/// [`Planted::remove`] removes them again.
#[derive(Debug, Default)]
pub struct Planted {
    volumes: Vec<String>,
    /// Network ids: a planted network may share its name with a stage's.
    networks: Vec<String>,
}

impl Planted {
    /// Nothing planted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the volume `name` holding the file `file` (its contents: the
    /// word `planted`), written by a container of [`TEST_IMAGE`].
    ///
    /// # Errors
    /// The daemon refused a call.
    pub async fn volume(
        &mut self,
        engine: &DockerEngine,
        name: &str,
        file: &str,
    ) -> Result<(), Error> {
        use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
        let docker = engine.docker();
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            ..VolumeCreateRequest::default()
        };
        docker
            .create_volume(request)
            .await
            .map_err(|e| Error::api(format!("create volume {name:?}"), e))?;
        self.volumes.push(name.to_owned());
        let writer = ContainerCreateBody {
            image: Some(TEST_IMAGE.to_owned()),
            cmd: Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                format!("echo planted > /v/{file}"),
            ]),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{name}:/v")]),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let operation = format!("write {file:?} into volume {name:?}");
        let api = |e| Error::api(operation.clone(), e);
        let id = docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                writer,
            )
            .await
            .map_err(api)?
            .id;
        let written = async {
            docker.start_container(&id, None).await?;
            let mut waited =
                docker.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
            match waited.next().await {
                Some(Err(e)) => Err(e),
                _ => Ok(()),
            }
        }
        .await;
        let removed = docker
            .remove_container(
                &id,
                Some(
                    bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .build(),
                ),
            )
            .await;
        written.and(removed).map_err(api)
    }

    /// Creates the bridge network `name`.
    ///
    /// # Errors
    /// The daemon refused.
    pub async fn network(&mut self, engine: &DockerEngine, name: &str) -> Result<(), Error> {
        let request = bollard::models::NetworkCreateRequest {
            name: name.to_owned(),
            ..bollard::models::NetworkCreateRequest::default()
        };
        let created = engine
            .docker()
            .create_network(request)
            .await
            .map_err(|e| Error::api(format!("create network {name:?}"), e))?;
        self.networks.push(created.id);
        Ok(())
    }

    /// The planted objects still on the daemon, as `kind name`.
    ///
    /// # Errors
    /// The daemon could not inspect one.
    pub async fn present(&self, engine: &DockerEngine) -> Result<Vec<String>, Error> {
        let docker = engine.docker();
        let mut present = Vec::new();
        for name in &self.volumes {
            match docker.inspect_volume(name).await {
                Ok(_) => present.push(format!("volume {name}")),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api(format!("inspect volume {name:?}"), e)),
            }
        }
        for id in &self.networks {
            let options = None::<bollard::query_parameters::InspectNetworkOptions>;
            match docker.inspect_network(id, options).await {
                Ok(n) => present.push(format!("network {}", n.name.unwrap_or_default())),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api(format!("inspect network {id:?}"), e)),
            }
        }
        Ok(present)
    }

    /// Removes every planted object (those already gone included).
    ///
    /// # Errors
    /// The daemon refused a removal.
    pub async fn remove(self, engine: &DockerEngine) -> Result<(), Error> {
        let docker = engine.docker();
        for name in &self.volumes {
            match docker
                .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api(format!("remove volume {name:?}"), e)),
            }
        }
        for id in &self.networks {
            match docker.remove_network(id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api(format!("remove network {id:?}"), e)),
            }
        }
        Ok(())
    }
}

/// A ustar archive of regular files `(path, mode, contents)`: a build
/// context, or an image layer for a test registry.
pub fn tar(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    const BLOCK: usize = 512;
    let mut out = Vec::new();
    for (name, mode, data) in files {
        let mut header = [0u8; BLOCK];
        header[..name.len()].copy_from_slice(name.as_bytes());
        let mut field = |offset: usize, width: usize, value: u64| {
            // Octal, zero-padded, NUL-terminated.
            let text = format!("{value:0w$o}\0", w = width - 1);
            header[offset..offset + width].copy_from_slice(text.as_bytes());
        };
        field(100, 8, u64::from(*mode));
        field(108, 8, 0);
        field(116, 8, 0);
        field(124, 12, data.len() as u64);
        field(136, 12, 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field read as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_are_well_formed() {
        let archive = tar(&[("a.txt", 0o644, b"hello")]);
        assert_eq!(archive.len(), 512 * 4);
        assert_eq!(&archive[..5], b"a.txt");
        assert_eq!(&archive[124..136], b"00000000005\0");
        assert_eq!(&archive[512..517], b"hello");
        let stored = std::str::from_utf8(&archive[148..154]).unwrap();
        let mut header = archive[..512].to_vec();
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
    }
}

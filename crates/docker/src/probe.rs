//! Running a container's `HEALTHCHECK` ourselves, for a daemon that does not
//! run it: Podman runs health checks from systemd timers, so on a machine
//! without systemd a service's health stays `starting` for ever. The check
//! runs through `exec`, with the image's own interval, timeout, retries and
//! start period, as Docker would run it.

use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ExecConfig, HealthConfig};
use futures_util::StreamExt;
use tokio::time::Instant;

/// Docker's defaults for a `HEALTHCHECK` that leaves a value out.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;

/// How much of a probe's output is kept for a message.
const OUTPUT_LIMIT: usize = 4096;

/// A health check and the state of its runs.
#[derive(Debug)]
pub(crate) struct Prober {
    command: Vec<String>,
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
    started: Instant,
    next: Instant,
    failures: u32,
}

/// What one turn of the prober found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not time for a probe yet, or a failure that does not count yet.
    Pending,
    /// A probe passed.
    Healthy,
    /// `retries` probes in a row failed; the last one's output.
    Unhealthy(String),
}

impl Prober {
    /// The prober for `config`, or `None` when it declares no check
    /// (`NONE`, or no test at all).
    pub(crate) fn new(config: &HealthConfig) -> Option<Self> {
        let command = command(config.test.as_deref().unwrap_or_default())?;
        let nanos = |v: Option<i64>| {
            v.and_then(|n| u64::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(Duration::from_nanos)
        };
        let interval = nanos(config.interval).unwrap_or(DEFAULT_INTERVAL);
        let now = Instant::now();
        Some(Self {
            command,
            interval,
            timeout: nanos(config.timeout).unwrap_or(DEFAULT_TIMEOUT),
            retries: config
                .retries
                .and_then(|r| u32::try_from(r).ok())
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
            start_period: nanos(config.start_period).unwrap_or_default(),
            started: now,
            // As Docker: the first probe one interval after the start.
            next: now + interval,
            failures: 0,
        })
    }

    /// Runs a probe in container `id` if one is due and says what it found.
    pub(crate) async fn turn(&mut self, docker: &Docker, id: &str) -> Result<Verdict, ApiError> {
        let now = Instant::now();
        if now < self.next {
            return Ok(Verdict::Pending);
        }
        self.next = now + self.interval;
        let (passed, output) = self.probe(docker, id).await?;
        Ok(self.record(passed, output, Instant::now()))
    }

    /// Counts a probe's result: failures within the start period do not
    /// count, as in Docker.
    fn record(&mut self, passed: bool, output: String, at: Instant) -> Verdict {
        if passed {
            return Verdict::Healthy;
        }
        if at.duration_since(self.started) < self.start_period {
            return Verdict::Pending;
        }
        self.failures += 1;
        if self.failures >= self.retries {
            Verdict::Unhealthy(output)
        } else {
            Verdict::Pending
        }
    }

    /// One run of the check: whether it exited 0 within the timeout, and
    /// what it printed.
    async fn probe(&self, docker: &Docker, id: &str) -> Result<(bool, String), ApiError> {
        let exec = ExecConfig {
            cmd: Some(self.command.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..ExecConfig::default()
        };
        let created = docker.create_exec(id, exec).await?;
        let mut output = String::new();
        let run = async {
            if let StartExecResults::Attached {
                output: mut out, ..
            } = docker
                .start_exec(&created.id, None::<StartExecOptions>)
                .await?
            {
                while let Some(chunk) = out.next().await {
                    let text = String::from_utf8_lossy(&chunk?.into_bytes()).into_owned();
                    if output.len() < OUTPUT_LIMIT {
                        output.push_str(&text);
                    }
                }
            }
            Ok::<_, ApiError>(())
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result?,
            Err(_) => {
                let message = format!(
                    "the health check timed out after {:.1}s",
                    self.timeout.as_secs_f64()
                );
                return Ok((false, message));
            }
        }
        let inspect = docker.inspect_exec(&created.id).await?;
        Ok((inspect.exit_code == Some(0), output.trim().to_owned()))
    }
}

/// The command a `HEALTHCHECK` test runs: `CMD args…` as given, `CMD-SHELL
/// line` through `/bin/sh -c`; `None` for `NONE` or an empty test.
fn command(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
        Some((kind, [line])) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), line.clone()])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_test_becomes_a_command() {
        assert_eq!(
            command(&strings(&["CMD", "test", "-f", "/ready"])),
            Some(strings(&["test", "-f", "/ready"]))
        );
        assert_eq!(
            command(&strings(&["CMD-SHELL", "echo hi; false"])),
            Some(strings(&["/bin/sh", "-c", "echo hi; false"]))
        );
        assert_eq!(command(&strings(&["NONE"])), None);
        assert_eq!(command(&[]), None);
        assert_eq!(command(&strings(&["CMD"])), None);
    }

    #[test]
    fn defaults_and_counting_follow_docker() {
        let config = HealthConfig {
            test: Some(strings(&["CMD", "true"])),
            retries: Some(2),
            start_period: Some(1_000_000_000),
            ..HealthConfig::default()
        };
        let mut prober = Prober::new(&config).expect("a check");
        assert_eq!(prober.interval, DEFAULT_INTERVAL);
        assert_eq!(prober.timeout, DEFAULT_TIMEOUT);
        let start = prober.started;
        // Within the start period a failure does not count.
        assert_eq!(prober.record(false, "no".into(), start), Verdict::Pending);
        let later = start + Duration::from_secs(2);
        assert_eq!(prober.record(false, "no".into(), later), Verdict::Pending);
        assert_eq!(
            prober.record(false, "still no".into(), later),
            Verdict::Unhealthy("still no".into())
        );
        assert_eq!(prober.record(true, String::new(), later), Verdict::Healthy);
        let none = HealthConfig {
            test: Some(strings(&["NONE"])),
            ..HealthConfig::default()
        };
        assert!(Prober::new(&none).is_none());
    }
}

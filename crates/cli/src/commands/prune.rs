//! `runnerkit prune`: remove the Docker objects of runs whose process is
//! gone, with the Docker engine's reaper.

use std::io::Write;

use anyhow::Context;
use runnerkit_core::CancellationToken;
use runnerkit_docker::{DockerEngine, PruneReport};

use crate::output::error_chain;
use crate::output::exit::Outcome;

/// Prunes and lists what was removed on `out`; errors go to stderr.
pub async fn run(out: &mut dyn Write) -> Outcome {
    match prune().await {
        Ok(report) => {
            // What was removed is gone whether or not it can be told.
            let _ = describe(&report, out);
            Outcome::Clean
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            Outcome::Failed
        }
    }
}

async fn prune() -> anyhow::Result<PruneReport> {
    let engine = DockerEngine::connect()
        .await
        .context("the Docker engine is not available (is the daemon running? DOCKER_HOST?)")?;
    engine
        .prune(&CancellationToken::new())
        .await
        .context("pruning failed")
}

/// One line per object removed, or one saying there was nothing.
fn describe(report: &PruneReport, out: &mut dyn Write) -> std::io::Result<()> {
    if report.is_empty() {
        return writeln!(
            out,
            "nothing to remove: no runnerkit object outlived its run"
        );
    }
    for (kind, names) in [
        ("container", &report.containers),
        ("network", &report.networks),
        ("volume", &report.volumes),
    ] {
        for name in names {
            writeln!(out, "removed {kind} {name}")?;
        }
    }
    let total = report.containers.len() + report.networks.len() + report.volumes.len();
    writeln!(
        out,
        "{total} object{} removed",
        if total == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_was_removed() {
        let mut out = Vec::new();
        describe(&PruneReport::default(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "nothing to remove: no runnerkit object outlived its run\n"
        );
        let report = PruneReport {
            containers: vec!["rk-a-build".into()],
            networks: vec!["rk-a".into()],
            volumes: vec![],
        };
        let mut out = Vec::new();
        describe(&report, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "removed container rk-a-build\nremoved network rk-a\n2 objects removed\n"
        );
    }
}

//! `runnerkit exec`: run one pipeline of a file on this machine.

use std::sync::Arc;

use runnerkit_core::{CancellationToken, Secret, Spec};
use runnerkit_runtime::logs::Masker;

use crate::cli::ExecArgs;
use crate::commands::stage;
use crate::engines;
use crate::interrupt;
use crate::output::exit::Outcome;
use crate::output::json::RunResult;
use crate::output::{self, HumanReporter};
use crate::pipeline::{self, Prepared, RunInputs};

/// Runs the pipeline; `Err` when the input was refused before anything ran.
pub async fn run(args: &ExecArgs) -> Outcome {
    // Known before anything else, so even a refusal cannot print a secret.
    let masker = Masker::new(args.secrets.iter().map(|(_, v)| v.as_str()));
    match prepare_and_run(args).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let message = output::error_chain(&e);
            eprintln!("error: {}", masker.mask_str(&message));
            if args.json {
                let _ = RunResult::refused(&message, &masker).write(&mut std::io::stdout().lock());
            }
            Outcome::Refused
        }
    }
}

async fn prepare_and_run(args: &ExecArgs) -> anyhow::Result<Outcome> {
    let source = pipeline::read(&args.source.file)?;
    let inputs = RunInputs {
        pipeline: args.source.pipeline.as_deref(),
        trusted: args.trusted,
        build: args.build.clone(),
        env: &args.env,
        secrets: &args.secrets,
    };
    let Prepared {
        compiled,
        pipeline_type,
        live,
    } = pipeline::prepare(&source, &inputs)?;
    let mut spec = compiled.spec;
    mask_every_given_secret(&mut spec, &args.secrets);
    let engine = engines::for_type(&pipeline_type).await?;
    // Whatever the compile found to mask (secrets of the file's own `kind:
    // secret` documents included) is hidden in what the CLI prints too.
    let masker = Masker::new(spec.masked_values());

    let (out, style) = output::human_destination(args.json);
    let reporter =
        HumanReporter::new(out, &spec, style, masker.clone()).with_warnings(compiled.warnings);
    let cancel = CancellationToken::new();
    let watcher = interrupt::watch(cancel.clone());
    let result = stage::run(
        engine,
        spec,
        vec![Arc::new(live), Arc::new(reporter)],
        cancel,
    )
    .await;
    watcher.abort();
    let snapshot = result?;

    if args.json {
        // The stage has run: a closed stdout changes nothing about its outcome.
        let _ = RunResult::from_snapshot(&snapshot).write(&mut std::io::stdout().lock());
    }
    Ok(Outcome::Ran(snapshot.stage.status))
}

/// Puts every `--secret` value in the spec's masked secrets, whether or not
/// the pipeline uses it: a step may print it some other way (a file that
/// holds it, a value read from the environment of another tool).
fn mask_every_given_secret(spec: &mut Spec, secrets: &[(String, String)]) {
    for (name, value) in secrets {
        let known = spec.secrets.iter_mut().find(|s| s.value == *value);
        match known {
            Some(secret) => secret.mask = true,
            None => spec.secrets.push(Secret {
                name: name.clone(),
                value: value.clone(),
                mask: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_given_secret_is_masked_once() {
        let mut spec = Spec {
            secrets: vec![Secret {
                name: "a".into(),
                value: "A".into(),
                mask: false,
            }],
            ..Spec::default()
        };
        mask_every_given_secret(
            &mut spec,
            &[("a".into(), "A".into()), ("b".into(), "B".into())],
        );
        let masked: Vec<&str> = spec.masked_values().collect();
        assert_eq!(masked, ["A", "B"]);
    }
}

//! `runnerkit compile`: the Spec an engine would run, as JSON.

use std::io::Write;

use anyhow::Context;
use runnerkit_manifest::TypeRegistry;

use crate::cli::CompileArgs;
use crate::output::exit::Outcome;
use crate::pipeline::{self, RunInputs};

/// Compiles the pipeline as `exec` would (trusted, since only the shape is
/// shown) and prints the Spec; warnings go to stderr.
pub async fn run(
    args: &CompileArgs,
    types: &TypeRegistry,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let source = pipeline::read(&args.source.file)?;
    let secrets = pipeline::with_env_file(args.secret_file.as_deref(), &args.secrets)
        .context("cannot read the --secret-file")?;
    let env = pipeline::with_env_file(args.env_file.as_deref(), &args.env)
        .context("cannot read the --env-file")?;
    let inputs = RunInputs {
        pipeline: args.source.pipeline.as_deref(),
        trusted: true,
        build: args.build.clone(),
        secrets: &secrets,
        env: &env,
        ..RunInputs::default()
    };
    let prepared = pipeline::prepare(&source, &inputs, types, None).await?;
    for warning in &prepared.compiled.warnings {
        match &warning.step {
            Some(step) => eprintln!("warning: step {step:?}: {}", warning.message),
            None => eprintln!("warning: {}", warning.message),
        }
    }
    serde_json::to_writer_pretty(&mut *out, &prepared.compiled.spec)?;
    writeln!(out)?;
    Ok(Outcome::Clean)
}

//! `runnerkit lint`: every problem of every pipeline of a file.

use std::io::Write;

use crate::cli::LintArgs;
use crate::output::exit::Outcome;
use crate::pipeline;

/// Lints the file; problems go to `out`, one per line, and refuse it.
pub fn run(args: &LintArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let source = pipeline::read(&args.file)?;
    let manifest = pipeline::parse_for_lint(&source)?;
    let problems = pipeline::lint(&manifest, manifest.pipelines(), args.trusted);
    if problems.is_empty() {
        return Ok(Outcome::Clean);
    }
    writeln!(out, "{}", pipeline::describe(&problems, &source))?;
    let count = problems.len();
    writeln!(out, "{count} problem{}", if count == 1 { "" } else { "s" })?;
    Ok(Outcome::Refused)
}

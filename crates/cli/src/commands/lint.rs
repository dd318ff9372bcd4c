//! `runnerkit lint`: every problem of every pipeline of a file.

use std::io::Write;

use runnerkit_manifest::TypeRegistry;

use crate::cli::LintArgs;
use crate::output::exit::Outcome;
use crate::pipeline;

/// Lints the file; problems go to `out`, one per line, and refuse it.
pub fn run(args: &LintArgs, types: &TypeRegistry, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let source = pipeline::read(&args.file)?;
    let manifest = pipeline::parse_for_lint(&source)?;
    let problems = runnerkit_manifest::lint_file(&manifest, types, args.trusted);
    for other in manifest
        .pipelines()
        .filter(|p| types.get(p.pipeline_type()).is_none())
    {
        eprintln!(
            "note: pipeline {:?} is of type {:?}, which this runner does not serve: only the file-wide rules were checked",
            other.display_name(),
            other.pipeline_type()
        );
    }
    if problems.is_empty() {
        return Ok(Outcome::Clean);
    }
    writeln!(out, "{}", pipeline::describe(&problems, &source))?;
    let count = problems.len();
    writeln!(out, "{count} problem{}", if count == 1 { "" } else { "s" })?;
    Ok(Outcome::Refused)
}

//! `runnerkit lint`: every problem and warning of every pipeline of a file.

use std::io::Write;

use runnerkit_manifest::{Manifest, TypeRegistry};

use crate::cli::LintArgs;
use crate::output::exit::Outcome;
use crate::pipeline;

/// Lints the file; problems go to `out`, one per line, and refuse it;
/// warnings (unknown and duplicate keys) follow them, one per line, and
/// refuse it only with `--strict`. A file without a pipeline is refused.
pub fn run(args: &LintArgs, types: &TypeRegistry, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let source = pipeline::read(&args.file)?;
    let manifest = pipeline::parse_for_lint(&source)?;
    let path = source.path.display();
    if let Some(why) = no_pipeline(&manifest) {
        writeln!(out, "{path}: no pipeline: {why}")?;
        writeln!(out, "1 problem")?;
        return Ok(Outcome::Refused);
    }
    let mut problems = runnerkit_manifest::lint_file(&manifest, types, args.trusted);
    let mut warnings = runnerkit_manifest::lint_file_warnings(&manifest, types);
    if args.strict {
        problems.append(&mut warnings);
    }
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
    if !problems.is_empty() {
        writeln!(out, "{}", pipeline::describe(&problems, &source))?;
    }
    for warning in &warnings {
        writeln!(out, "{path}: warning: {warning}")?;
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (problems.len(), warnings.len()) {
        (0, 0) => return Ok(Outcome::Clean),
        (0, w) => writeln!(out, "{}", count(w, "warning"))?,
        (p, 0) => writeln!(out, "{}", count(p, "problem"))?,
        (p, w) => writeln!(out, "{}, {}", count(p, "problem"), count(w, "warning"))?,
    }
    Ok(if problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Refused
    })
}

/// Why the file has nothing to lint, when it has no pipeline: Drone would
/// run nothing, which is never what a `.drone.yml` is for.
fn no_pipeline(manifest: &Manifest) -> Option<&'static str> {
    if manifest.pipelines().next().is_some() {
        None
    } else if manifest.resources.is_empty() {
        Some("the file is empty (or holds only comments)")
    } else {
        Some("the file has no `kind: pipeline` document")
    }
}

//! The cost of reading a pipeline file as `runnerkit lint` does (parse, then
//! lint every pipeline and collect the warnings) for files of many one-line
//! documents: time, bytes allocated and the process's peak memory, so a
//! cost growing faster than the file shows as a ratio well above 2 between
//! the two sizes.
//!
//! Run: `cargo bench -p runnerkit-manifest --bench parse_cost` (prints a
//! Markdown table; the numbers in docs/benchmarks.md come from it). The
//! files are past the default limit of 1,000 documents, so they are read
//! with that limit raised; the last row is the default refusal.

use std::alloc::System;
use std::time::Instant;

use runnerkit_manifest::{
    Manifest, ParseLimits, PipelineType, TypeRegistry, lint_file, lint_file_warnings,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The process's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn lint_equivalent(
    text: &str,
    limits: &ParseLimits,
    types: &TypeRegistry,
) -> Result<usize, String> {
    let manifest = Manifest::parse_with(text, limits).map_err(|e| e.to_string())?;
    Ok(lint_file(&manifest, types, false).len() + lint_file_warnings(&manifest, types).len())
}

fn main() {
    let types = TypeRegistry::new()
        .with(PipelineType::docker())
        .with(PipelineType::exec());
    let roomy = ParseLimits {
        max_documents: 100_000,
        ..ParseLimits::default()
    };
    println!("| documents | bytes | limits | time | allocated | peak RSS (process) |");
    println!("|---|---|---|---|---|---|");
    // Ascending: the peak RSS of a row includes the rows before it.
    for (n, limits, name) in [
        (8_000, &roomy, "max_documents: 100,000"),
        (16_000, &roomy, "max_documents: 100,000"),
        (16_000, &ParseLimits::default(), "default (refused)"),
    ] {
        let text = "---\nkind: pipeline\n".repeat(n);
        let region = Region::new(GLOBAL);
        let start = Instant::now();
        let outcome = lint_equivalent(&text, limits, &types);
        let elapsed = start.elapsed();
        let allocated = region.change().bytes_allocated;
        if let Err(refusal) = &outcome {
            eprintln!("{n} documents, {name}: {refusal}");
        }
        println!(
            "| {n} | {} | {name} | {:.3} s | {:.1} MiB | {:.1} MiB |",
            text.len(),
            elapsed.as_secs_f64(),
            allocated as f64 / (1024.0 * 1024.0),
            peak_rss_mib()
        );
    }
}

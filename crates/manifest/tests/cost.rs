//! The parser's cost is linear in the file: reading a file 8 times larger
//! (in documents, in steps, in nesting) does about 8 times the work and
//! keeps about 8 times the memory. Work is counted in bytes and blocks
//! allocated, not in time, so the tests are exact on a busy machine; a
//! quadratic pass (a document padded with the lines before it, the whole
//! file indexed once per pipeline) shows as a ratio of 20 and more.

use std::alloc::System;
use std::sync::Mutex;

use runnerkit_manifest::{
    Manifest, ParseLimits, PipelineType, TypeRegistry, envsubst, lint_file, lint_file_warnings,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The counters are process-wide and `cargo test` runs this binary's tests
/// on parallel threads: a test measuring while another builds its input
/// would count that input too. So each test holds this for its whole body.
static SERIAL: Mutex<()> = Mutex::new(());

/// This test's turn: no other test of the binary allocates until it ends.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What reading a file cost.
#[derive(Debug, Clone, Copy)]
struct Cost {
    /// Bytes allocated in all.
    bytes: f64,
    /// Allocations made.
    blocks: f64,
    /// Bytes still held by the parsed file and its lint results.
    kept: f64,
}

/// Reads `text` as `runnerkit lint` does: substitution, parse, lint of every
/// pipeline, the warnings. `Err` (a refusal) is a cost too.
fn cost(text: &str, limits: &ParseLimits) -> Cost {
    let types = TypeRegistry::new()
        .with(PipelineType::docker())
        .with(PipelineType::exec());
    let region = Region::new(GLOBAL);
    let read = envsubst(text, |_| None)
        .map_err(|e| e.to_string())
        .and_then(|text| Manifest::parse_with(&text, limits).map_err(|e| e.to_string()))
        .map(|manifest| {
            let problems = lint_file(&manifest, &types, false);
            let warnings = lint_file_warnings(&manifest, &types);
            (manifest, problems, warnings)
        });
    let change = region.change();
    drop(read);
    let kept = change.bytes_allocated as f64 - change.bytes_deallocated as f64
        + change.bytes_reallocated as f64;
    Cost {
        bytes: change.bytes_allocated as f64,
        blocks: change.allocations as f64,
        kept,
    }
}

/// Asserts that `large` (8 times `small`'s size) cost at most `max` times
/// as much, in each measure.
fn assert_linear(what: &str, small: Cost, large: Cost, max: f64) {
    let ratios = [
        ("bytes", large.bytes / small.bytes),
        ("blocks", large.blocks / small.blocks),
        ("kept", large.kept / small.kept.max(1.0)),
    ];
    println!("{what}: ratios {ratios:.2?}");
    for (measure, ratio) in ratios {
        assert!(
            ratio <= max,
            "{what}: 8 times the input cost {ratio:.1} times the {measure} (at most {max}): {small:?} then {large:?}"
        );
    }
}

/// Room for more than the tests read, so they measure the parse, not a
/// refusal.
fn roomy() -> ParseLimits {
    ParseLimits {
        max_documents: 100_000,
        max_steps: 100_000,
        max_nodes: 10_000_000,
        ..ParseLimits::default()
    }
}

/// `n` small pipelines, each with an unknown key and a duplicate key (the
/// passes that find them run per document).
fn documents(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "---\nkind: pipeline\nname: p{i}\ntype: exec\nsteps:\n- name: a\n  commands: [x]\n  comands: [y]\n  image: a\n  image: b\n"
            )
        })
        .collect()
}

/// One pipeline of `n` steps, each depending on the one before and with an
/// unknown key.
fn steps(n: usize) -> String {
    let mut text = String::from("kind: pipeline\ntype: exec\nname: many\nsteps:\n");
    for i in 0..n {
        text.push_str(&format!(
            "- name: s{i}\n  commands: [make]\n  depends_on: [s{}]\n  comands: [y]\n",
            i.saturating_sub(1)
        ));
    }
    text.replacen("  depends_on: [s0]\n", "", 1)
}

/// A step whose `settings` nest `depth` maps deep, `width` times over.
fn nesting(depth: usize, width: usize) -> String {
    let mut text = String::from("kind: pipeline\nname: deep\nsteps:\n");
    for i in 0..width {
        text.push_str(&format!(
            "- name: s{i}\n  image: a\n  settings:\n    v: {}x{}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        ));
    }
    text
}

#[test]
fn documents_cost_linear() {
    let _serial = serial();
    // Warms up what is built once per process (key tables, the registry).
    cost(&documents(10), &roomy());
    let small = cost(&documents(400), &roomy());
    let large = cost(&documents(3_200), &roomy());
    assert_linear("documents", small, large, 10.0);
    // Within the default limits, too.
    let small = cost(&documents(120), &ParseLimits::default());
    let large = cost(&documents(960), &ParseLimits::default());
    assert_linear("documents (default limits)", small, large, 10.0);
}

#[test]
fn steps_cost_linear() {
    let _serial = serial();
    cost(&steps(10), &roomy());
    let small = cost(&steps(400), &roomy());
    let large = cost(&steps(3_200), &roomy());
    assert_linear("steps", small, large, 10.0);
}

#[test]
fn nesting_costs_linear() {
    let _serial = serial();
    cost(&nesting(2, 2), &ParseLimits::default());
    // Nesting within the limit (64 levels; the setting starts at level 5):
    // what each level adds, over a file of the same steps without it.
    let base = cost(&nesting(0, 100), &ParseLimits::default());
    let extra = |c: Cost| Cost {
        bytes: c.bytes - base.bytes,
        blocks: c.blocks - base.blocks,
        kept: c.kept - base.kept,
    };
    let small = extra(cost(&nesting(7, 100), &ParseLimits::default()));
    let large = extra(cost(&nesting(56, 100), &ParseLimits::default()));
    assert_linear("nesting", small, large, 10.0);
}

#[test]
fn refusing_a_deep_nesting_costs_at_most_its_size() {
    let _serial = serial();
    let deep = |n: usize| format!("kind: pipeline\nx: {}", "[".repeat(n));
    cost(&deep(1_000), &ParseLimits::default());
    let small = cost(&deep(100_000), &ParseLimits::default());
    let large = cost(&deep(800_000), &ParseLimits::default());
    // The text is copied once; the YAML reader stops at level 65.
    assert_linear("refused nesting", small, large, 10.0);
    assert!(
        large.bytes < 4.0 * 800_000.0,
        "refusing 800,000 levels allocated {} bytes",
        large.bytes
    );
    let subst = |n: usize| format!("x: {}v{}\n", "${A:-".repeat(n), "}".repeat(n));
    let small = cost(&subst(10_000), &ParseLimits::default());
    let large = cost(&subst(80_000), &ParseLimits::default());
    assert_linear("refused substitution nesting", small, large, 10.0);
}

#[test]
fn refusing_too_many_documents_costs_at_most_the_limit() {
    let _serial = serial();
    let text = |n: usize| "---\nkind: pipeline\n".repeat(n);
    cost(&text(10), &ParseLimits::default());
    let small = cost(&text(20_000), &ParseLimits::default());
    let large = cost(&text(160_000), &ParseLimits::default());
    // Past the limit the documents are counted, not copied: both files
    // cost the 1,000 documents read before the refusal, and a copy of the
    // text (the substitution's).
    assert_linear("refused documents", small, large, 10.0);
    assert!(
        large.blocks <= small.blocks * 1.1,
        "refused documents: {small:?} then {large:?}"
    );
}

/// A document built from `shape`: some steps, a nesting depth in their
/// settings, an unknown key, a duplicate key, an anchor merged in.
fn shaped(shape: (usize, usize, bool, bool, bool), i: usize) -> String {
    let (steps, depth, unknown, duplicate, anchor) = shape;
    let mut doc = format!("---\nkind: pipeline\nname: p{i}\n");
    if anchor {
        doc.push_str("x-base: &base\n  image: alpine\n");
    }
    doc.push_str("steps:\n");
    for s in 0..steps {
        doc.push_str(&format!("- name: s{s}\n  image: a\n"));
        if anchor {
            doc.push_str("  <<: *base\n");
        }
        if unknown {
            doc.push_str("  comands: [x]\n");
        }
        if duplicate {
            doc.push_str("  image: b\n");
        }
        doc.push_str(&format!(
            "  settings: {{v: {}x{}}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ));
    }
    doc
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]

    /// Whatever the documents hold, 8 times as many cost at most 10 times
    /// as much.
    #[test]
    fn any_document_repeated_costs_linear(
        shape in (1usize..6, 0usize..50, proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY)
    ) {
        let _serial = serial();
        let file = |n: usize| (0..n).map(|i| shaped(shape, i)).collect::<String>();
        cost(&file(5), &roomy());
        let small = cost(&file(40), &roomy());
        let large = cost(&file(320), &roomy());
        assert_linear(&format!("{shape:?}"), small, large, 10.0);
    }
}

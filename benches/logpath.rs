//! The log path end to end, against its floor in the same run.
//!
//! Run: `cargo bench --bench logpath` (prints a Markdown table).
//!
//! 100 MiB of 80-byte lines (one in 100 holds a secret when the stage has
//! any) go through `Runtime::run`: a no-op engine yields the text in 32 KiB
//! or 80-byte chunks (slices of one buffer, as an engine's reads are), the
//! runtime splits and masks it, and hooks get the batches. Three hooks:
//! one that counts lines (`Lines::len`), one that reads every line, and one
//! that also keeps the whole log (`wants_log`, spilled past the runtime's
//! 1 MiB bound). The runtime's log limit is off, so every line counts.
//!
//! The floor is the least any log path does with the same text in the same
//! writes: find each line with `memchr` and copy it once into a reused
//! buffer. Peak RSS is measured per run (VmHWM reset through
//! `/proc/self/clear_refs`) above what the process held before it, the text
//! included.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::{TextEngine, corpus, proc_status, secrets};
use runnerkit::core::{
    CancellationToken, Hook, HookError, Lines, Secret, Spec, State, Status, Step, StepLog,
    StepState,
};
use runnerkit::runtime::{Runtime, RuntimeConfig};

const TOTAL: usize = 100 * 1024 * 1024;
const SECRET_EVERY: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum HookKind {
    Counts,
    Reads,
    Keeps,
}

/// Counts lines, and (unless it only counts) the masked ones: a masked
/// line is shorter than 79.
struct Sink {
    kind: HookKind,
    lines: AtomicU64,
    masked: AtomicU64,
    kept: AtomicU64,
}

#[async_trait]
impl Hook for Sink {
    fn wants_log(&self) -> bool {
        self.kind == HookKind::Keeps
    }
    fn got_lines(&self, _: &State, _: &StepState, lines: Lines<'_>) {
        self.lines.fetch_add(lines.len() as u64, Ordering::Relaxed);
        if self.kind != HookKind::Counts {
            let masked = lines.iter().filter(|l| l.message.len() != 79).count();
            self.masked.fetch_add(masked as u64, Ordering::Relaxed);
        }
    }
    async fn got_logs(&self, _: &State, _: &StepState, log: &StepLog) -> Result<(), HookError> {
        self.kept.store(log.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// One run through `Runtime::run`: its time and the peak RSS it added (KiB).
fn through_runtime(
    rt: &tokio::runtime::Runtime,
    text: &Bytes,
    chunk: usize,
    secrets: &[String],
    kind: HookKind,
    injected: u64,
) -> (Duration, u64) {
    let spec = Arc::new(Spec {
        steps: vec![Step::named("log")],
        secrets: secrets
            .iter()
            .enumerate()
            .map(|(i, value)| Secret {
                name: format!("s{i}"),
                value: value.clone(),
                mask: true,
            })
            .collect(),
        ..Spec::default()
    });
    let sink = Arc::new(Sink {
        kind,
        lines: AtomicU64::new(0),
        masked: AtomicU64::new(0),
        kept: AtomicU64::new(0),
    });
    let runtime = Runtime::new(Arc::new(TextEngine {
        text: text.clone(),
        chunk,
    }))
    .with_config(RuntimeConfig {
        log_limit: usize::MAX,
        ..RuntimeConfig::default()
    })
    .with_hook(sink.clone());
    // Peak RSS from here on.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = proc_status("VmRSS:");
    let t = Instant::now();
    let snap = rt
        .block_on(runtime.run(spec, CancellationToken::new()))
        .expect("valid spec");
    let took = t.elapsed();
    let peak = proc_status("VmHWM:").saturating_sub(before);
    assert_eq!(snap.stage.status, Status::Success);
    let lines = (text.len() / 80) as u64;
    assert_eq!(
        sink.lines.load(Ordering::Relaxed),
        lines,
        "every line arrives"
    );
    if kind != HookKind::Counts {
        assert_eq!(
            sink.masked.load(Ordering::Relaxed),
            injected,
            "every secret is masked"
        );
    }
    if kind == HookKind::Keeps {
        assert_eq!(
            sink.kept.load(Ordering::Relaxed),
            lines,
            "the kept log is whole"
        );
    }
    (took, peak)
}

/// The floor: each line found with `memchr` and copied once into a reused
/// buffer, from the same chunks.
fn floor(text: &[u8], chunk: usize) -> Duration {
    let t = Instant::now();
    let mut line = Vec::with_capacity(256);
    let mut lines = 0u64;
    let mut bytes = 0u64;
    for c in text.chunks(chunk) {
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', c) {
            line.extend_from_slice(&c[start..end]);
            bytes += std::hint::black_box(&line).len() as u64;
            line.clear();
            lines += 1;
            start = end + 1;
        }
        line.extend_from_slice(&c[start..]);
    }
    let took = t.elapsed();
    assert_eq!(lines, (text.len() / 80) as u64);
    std::hint::black_box(bytes);
    took
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn mib_s(d: Duration) -> f64 {
    TOTAL as f64 / d.as_secs_f64() / (1024.0 * 1024.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runs = 5;
    println!(
        "| secrets | writes | hook | floor MiB/s | runnerkit MiB/s | × floor | peak RSS added |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in [0, 1, 100] {
        let secrets = secrets(n);
        let (text, injected) = corpus(&secrets, SECRET_EVERY, TOTAL);
        let text = Bytes::from(text);
        for (label, chunk) in [("32 KiB", 32 * 1024), ("80 B", 80)] {
            let kinds: &[(HookKind, &str)] = if n == 100 && chunk > 80 {
                &[
                    (HookKind::Counts, "counts"),
                    (HookKind::Reads, "reads"),
                    (HookKind::Keeps, "keeps the log"),
                ]
            } else {
                &[(HookKind::Counts, "counts"), (HookKind::Reads, "reads")]
            };
            for &(kind, name) in kinds {
                let mut floors = Vec::new();
                let mut times = Vec::new();
                let mut peak = 0;
                // Interleaved, so both see the same machine.
                for _ in 0..runs {
                    floors.push(floor(&text, chunk));
                    let (took, added) =
                        through_runtime(&rt, &text, chunk, &secrets, kind, injected);
                    times.push(took);
                    peak = peak.max(added);
                }
                let (f, t) = (median(floors), median(times));
                println!(
                    "| {n} | {label} | {name} | {:.0} | {:.0} | {:.2} | {:.1} MiB |",
                    mib_s(f),
                    mib_s(t),
                    t.as_secs_f64() / f.as_secs_f64(),
                    peak as f64 / 1024.0
                );
            }
        }
    }
}

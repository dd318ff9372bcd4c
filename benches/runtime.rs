//! Runtime overhead per step, with a no-op engine and one no-op hook.
//!
//! Run: `cargo bench --bench runtime` (all workloads, prints a Markdown
//! table), or `cargo bench --bench runtime -- memory [copied]` for the peak
//! memory of the layered (or layered-copied) N = 10,000 run (read from /proc,
//! so run it in its own process).
//!
//! Workloads, each for N = 100, 1,000, 10,000 steps and 0 or 100 log lines
//! of 80 bytes per step:
//! - chain: step i depends on step i-1;
//! - fan-out: N independent steps;
//! - layered: 10 layers of N/10 steps, each depending on every step of the
//!   layer before; the steps of a layer share one `depends_on` list, as a
//!   generator builds them;
//! - layered-copied: the same with every step holding its own copy of the
//!   list (9 million `String`s at N = 10,000), as deserialized input does;
//! - random: fixed seed, each step depends on up to 3 earlier steps.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TextEngine, proc_status};
use runnerkit::core::{CancellationToken, Hook, Spec, Status, Step};
use runnerkit::runtime::Runtime;

/// Every method left at its no-op default.
struct NoopHook;
impl Hook for NoopHook {}

#[derive(Clone, Copy, Debug)]
enum Workload {
    Chain,
    FanOut,
    Layered,
    LayeredCopied,
    Random,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Chain => "chain",
            Self::FanOut => "fan-out",
            Self::Layered => "layered",
            Self::LayeredCopied => "layered-copied",
            Self::Random => "random",
        }
    }

    fn spec(self, n: usize) -> Spec {
        let names: Vec<String> = (0..n).map(|i| format!("step-{i}")).collect();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            // xorshift64*: a fixed-seed generator, enough for a benchmark.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let layer = (n / 10).max(1);
        let layers: Vec<Arc<[String]>> = names.chunks(layer).map(Arc::from).collect();
        let steps = (0..n)
            .map(|i| {
                let depends_on = match self {
                    Self::Chain if i > 0 => [names[i - 1].clone()].into(),
                    Self::Chain | Self::FanOut => Arc::default(),
                    Self::Layered if i >= layer => layers[i / layer - 1].clone(),
                    Self::LayeredCopied if i >= layer => layers[i / layer - 1].to_vec().into(),
                    Self::Layered | Self::LayeredCopied => Arc::default(),
                    Self::Random if i > 0 => {
                        let k = (next() % 4) as usize;
                        let mut deps: Vec<String> = (0..k)
                            .map(|_| names[(next() % i as u64) as usize].clone())
                            .collect();
                        deps.sort();
                        deps.dedup();
                        deps.into()
                    }
                    Self::Random => Arc::default(),
                };
                Step {
                    depends_on,
                    ..Step::named(names[i].clone())
                }
            })
            .collect();
        // Fan-out must still be a DAG run, not a serial one: give one step a
        // dependency on the first (the rest stay independent).
        let mut spec = Spec {
            id: format!("bench-{}-{n}", self.name()),
            steps,
            ..Spec::default()
        };
        if matches!(self, Self::FanOut) && n > 1 {
            spec.steps[n - 1].depends_on = [names[0].clone()].into();
        }
        spec
    }
}

fn runtime_for(lines: usize) -> Runtime {
    let mut line = vec![b'x'; 79];
    line.push(b'\n');
    let engine = TextEngine {
        text: Bytes::from(line.repeat(lines)),
        chunk: 80,
    };
    Runtime::new(Arc::new(engine)).with_hook(Arc::new(NoopHook))
}

fn measure(rt: &tokio::runtime::Runtime, w: Workload, n: usize, lines: usize) -> Duration {
    let spec = Arc::new(w.spec(n));
    let runtime = runtime_for(lines);
    let runs = if n >= 10_000 {
        5
    } else if n >= 1_000 {
        11
    } else {
        51
    };
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let snap = rt
                .block_on(runtime.run(spec.clone(), CancellationToken::new()))
                .expect("valid spec");
            let took = t.elapsed();
            assert_eq!(snap.stage.status, Status::Success);
            took
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn memory(rt: &tokio::runtime::Runtime, workload: Workload) {
    let spec = Arc::new(workload.spec(10_000));
    let runtime = runtime_for(0);
    let before = proc_status("VmRSS:");
    let snap = rt
        .block_on(runtime.run(spec.clone(), CancellationToken::new()))
        .expect("valid spec");
    assert_eq!(snap.stage.status, Status::Success);
    let peak = proc_status("VmHWM:");
    println!(
        "{} N=10000: peak RSS {:.1} MiB, of which the input spec and process {:.1} MiB, the run {:.1} MiB",
        workload.name(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0
    );
}

fn main() {
    // RK_BENCH_THREADS=1 measures on a current-thread runtime.
    let threads: usize = std::env::var("RK_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "memory") {
        let copied = args.iter().any(|a| a == "copied");
        memory(
            &rt,
            if copied {
                Workload::LayeredCopied
            } else {
                Workload::Layered
            },
        );
        return;
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    println!(
        "| workload | log lines/step | N=100 µs/step | N=1,000 µs/step | N=10,000 µs/step | growth 1k→10k |"
    );
    println!("|---|---|---|---|---|---|");
    for w in [
        Workload::Chain,
        Workload::FanOut,
        Workload::Layered,
        Workload::LayeredCopied,
        Workload::Random,
    ] {
        if filter.as_deref().is_some_and(|f| !w.name().contains(f)) {
            continue;
        }
        for lines in [0, 100] {
            let per_step: Vec<f64> = [100, 1_000, 10_000]
                .iter()
                .map(|&n| measure(&rt, w, n, lines).as_secs_f64() * 1e6 / n as f64)
                .collect();
            println!(
                "| {} | {lines} | {:.2} | {:.2} | {:.2} | {:.2}× |",
                w.name(),
                per_step[0],
                per_step[1],
                per_step[2],
                per_step[2] / per_step[1]
            );
        }
    }
}

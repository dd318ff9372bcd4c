//! Log path throughput: line splitting plus secret masking.
//!
//! Run: `cargo bench --bench logs` (prints a Markdown table).
//!
//! 100 MB of 80-byte log lines (one in 1,000 holds a secret) go through
//! `LineWriter` with 1, 10 and 100 secrets, fed in 80-byte and in 32 KiB
//! chunks. Each line becomes an owned, masked `Line`, as the runtime hands
//! them to hooks.

use std::sync::Arc;
use std::time::Instant;

use runnerkit::runtime::logs::{LineWriter, Masker};

const TOTAL: usize = 100 * 1000 * 1000;

fn secrets(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("s3cr3t-{i:04}-{:x}", i * 7919))
        .collect()
}

fn corpus(secrets: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL + 100);
    let mut i = 0usize;
    while out.len() < TOTAL {
        let mut line = if i % 1000 == 999 {
            format!(
                "step {i}: token={} ok",
                secrets
                    .get(i % secrets.len().max(1))
                    .map_or("none", String::as_str)
            )
        } else {
            format!("step {i}: compiling module {} of the project", i % 977)
        };
        line.truncate(79);
        while line.len() < 79 {
            line.push('.');
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        i += 1;
    }
    out
}

fn run(masker: &Arc<Masker>, data: &[u8], chunk: usize) -> (f64, u64) {
    let mut writer = LineWriter::new(masker.clone(), usize::MAX);
    let mut lines = 0u64;
    let mut masked = 0u64;
    let t = Instant::now();
    // Masked lines are told by their length (a mask is shorter than the
    // secret): cheap enough not to weigh on the measure.
    let mut emit = |line: runnerkit::core::Line| {
        lines += 1;
        masked += u64::from(line.message.len() != 79);
    };
    for c in data.chunks(chunk) {
        writer.write(c, 0, &mut emit);
    }
    writer.finish(0, &mut emit);
    let secs = t.elapsed().as_secs_f64();
    assert!(lines > 0);
    (data.len() as f64 / secs / (1024.0 * 1024.0), masked)
}

fn main() {
    println!("| secrets | chunk | MiB/s | lines masked |");
    println!("|---|---|---|---|");
    for n in [0, 1, 10, 100] {
        let secrets = secrets(n);
        let data = corpus(&secrets);
        let masker = Arc::new(Masker::new(secrets.iter().map(String::as_str)));
        for (label, chunk) in [("80 B", 80), ("32 KiB", 32 * 1024)] {
            // Median of three runs.
            let mut runs: Vec<(f64, u64)> = (0..3).map(|_| run(&masker, &data, chunk)).collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (speed, masked) = runs[1];
            assert!(masked > 0 || n == 0, "the corpus holds secrets to mask");
            println!("| {n} | {label} | {speed:.0} | {masked} |");
        }
    }
}

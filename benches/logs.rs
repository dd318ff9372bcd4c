//! Log path throughput: line splitting plus secret masking.
//!
//! Run: `cargo bench --bench logs` (prints a Markdown table).
//!
//! 100 MB of 80-byte log lines (one in 1,000 holds a secret) go through
//! `LineWriter` with 1, 10 and 100 secrets, fed in 80-byte and in 32 KiB
//! chunks. Each chunk's lines become a masked `Lines` batch, as the runtime
//! hands them to hooks, and the bench reads every line of it. The masker searches each secret's encoded forms too
//! (base64, percent, JSON); the corpus holds the plain secrets. Then the
//! time `Masker::new` took for each set. Last, 0 and 100 secrets over
//! 100 MB of random base64 text, the worst case for the masker's filter.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{corpus, secrets};
use runnerkit::runtime::logs::{LineWriter, Masker};

const TOTAL: usize = 100 * 1000 * 1000;

/// 100 MB of 79-character lines of random base64 characters (a blob, a
/// certificate, an image config): the text most like the secrets' base64
/// forms, so the most windows pass the masker's filter by chance.
fn base64_corpus() -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(TOTAL + 100);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    while out.len() < TOTAL {
        for _ in 0..79 {
            // xorshift64: cheap, deterministic, uniform enough.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push(ALPHABET[(state >> 58) as usize]);
        }
        out.push(b'\n');
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
    let mut emit = |batch: runnerkit::core::Lines<'_>| {
        lines += batch.len() as u64;
        masked += batch.iter().filter(|l| l.message.len() != 79).count() as u64;
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
    let mut builds = Vec::new();
    for n in [0, 1, 10, 100] {
        let secrets = secrets(n);
        let (data, _) = corpus(&secrets, 1000, TOTAL);
        // Each secret's encoded forms are built and searched too.
        let t = Instant::now();
        let masker = Arc::new(Masker::new(secrets.iter().map(String::as_str)));
        builds.push((n, t.elapsed()));
        for (label, chunk) in [("80 B", 80), ("32 KiB", 32 * 1024)] {
            // Median of three runs.
            let mut runs: Vec<(f64, u64)> = (0..3).map(|_| run(&masker, &data, chunk)).collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (speed, masked) = runs[1];
            assert!(masked > 0 || n == 0, "the corpus holds secrets to mask");
            println!("| {n} | {label} | {speed:.0} | {masked} |");
        }
    }
    // The worst case for the filter: base64 text, which no secret is in.
    let data = base64_corpus();
    for n in [0, 100] {
        let secrets = secrets(n);
        let masker = Arc::new(Masker::new(secrets.iter().map(String::as_str)));
        let mut runs: Vec<(f64, u64)> = (0..3).map(|_| run(&masker, &data, 32 * 1024)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (speed, masked) = runs[1];
        println!("| {n} | 32 KiB, base64 text | {speed:.0} | {masked} |");
    }
    println!();
    for (n, took) in builds {
        println!("Masker::new with {n} secrets: {took:.2?}");
    }
}

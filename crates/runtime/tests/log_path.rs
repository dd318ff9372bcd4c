//! The log path's properties: batches, splits and the kept log.
//!
//! However a step's output is cut into chunks, hooks get the same masked
//! lines as from one chunk, in order, each exactly once, in batches numbered
//! on from each other; and the whole log a hook asked to keep reads back
//! byte-exact, also once it spilled to its temporary file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use runnerkit_core::{
    CancellationToken, Hook, HookError, Lines, Secret, Spec, State, Status, Step, StepLog,
    StepState,
};
use runnerkit_mock::{MockEngine, StepScript};
use runnerkit_runtime::logs::{LineWriter, Masker};
use runnerkit_runtime::{Runtime, RuntimeConfig};

/// Output text: lines of letters (some the secrets), `\r\n` and `\n` ends,
/// stray bytes that are not UTF-8, and at times no final newline.
fn output() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => "[a-e ]{0,12}".prop_map(String::into_bytes),
            2 => Just(b"hunter22".to_vec()),
            1 => Just(b"s3cr3t-token".to_vec()),
            2 => Just(b"\n".to_vec()),
            1 => Just(b"\r\n".to_vec()),
            1 => Just(vec![0xff]),
            1 => Just("é".as_bytes().to_vec()),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// `text` cut at `cuts` (positions, any order, clamped).
fn split(text: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for c in cuts {
        chunks.push(text[last..c].to_vec());
        last = c;
    }
    chunks.push(text[last..].to_vec());
    chunks
}

const SECRETS: [&str; 2] = ["hunter22", "s3cr3t-token"];

/// The lines a `LineWriter` makes of `chunks`, checking that every batch
/// is numbered on from the one before.
fn written(chunks: &[Vec<u8>]) -> Vec<String> {
    let masker = Arc::new(Masker::new(SECRETS));
    let mut writer = LineWriter::new(masker, usize::MAX);
    let mut out = Vec::new();
    let mut emit = |lines: Lines<'_>| {
        assert_eq!(
            lines.first(),
            out.len() as u64,
            "a batch starts where the last ended"
        );
        assert!(!lines.is_empty(), "no empty batch");
        out.extend(lines.iter().map(|l| l.message.to_owned()));
    };
    for chunk in chunks {
        writer.write(chunk, 0, &mut emit);
    }
    writer.finish(0, &mut emit);
    out
}

/// Numbered lines, as a hook saw them.
type Numbered = Vec<(u64, String)>;

/// Every batch a step's hook got, and the log it kept (and whether it had
/// spilled).
#[derive(Default)]
struct Batches {
    lines: Mutex<Numbered>,
    breaks: Mutex<Vec<String>>,
    kept: Mutex<Option<(Numbered, bool)>>,
}

#[async_trait]
impl Hook for Batches {
    fn wants_log(&self) -> bool {
        true
    }
    fn got_lines(&self, _: &State, _: &StepState, lines: Lines<'_>) {
        let mut seen = self.lines.lock().unwrap();
        if lines.first() != seen.len() as u64 {
            self.breaks.lock().unwrap().push(format!(
                "batch at {} after {} lines",
                lines.first(),
                seen.len()
            ));
        }
        seen.extend(lines.iter().map(|l| (l.number, l.message.to_owned())));
    }
    async fn got_logs(&self, _: &State, _: &StepState, log: &StepLog) -> Result<(), HookError> {
        let lines = log
            .to_lines()
            .map_err(|e| HookError::new(e.to_string()))?
            .into_iter()
            .map(|l| (l.number, l.message))
            .collect();
        *self.kept.lock().unwrap() = Some((lines, log.is_spilled()));
        Ok(())
    }
}

fn spec() -> Arc<Spec> {
    Arc::new(Spec {
        steps: vec![Step::named("out")],
        secrets: SECRETS
            .iter()
            .map(|s| Secret {
                name: (*s).to_owned(),
                value: (*s).to_owned(),
                mask: true,
            })
            .collect(),
        ..Spec::default()
    })
}

/// Runs one step that prints `chunks`, keeping its log with `log_memory`
/// bytes of memory.
fn run(chunks: &[Vec<u8>], log_memory: usize) -> Arc<Batches> {
    let mut script = StepScript::exit(0);
    for chunk in chunks {
        script = script.with_chunk(Duration::ZERO, chunk.clone());
    }
    let engine = MockEngine::new().with_step("out", script);
    let hook = Arc::new(Batches::default());
    let runtime = Runtime::new(Arc::new(engine))
        .with_config(RuntimeConfig {
            log_limit: usize::MAX,
            log_memory,
            ..RuntimeConfig::default()
        })
        .with_hook(hook.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snap = rt
        .block_on(runtime.run(spec(), CancellationToken::new()))
        .unwrap();
    assert_eq!(snap.stage.status, Status::Success);
    hook
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any split of the output gives the same masked lines as one chunk.
    #[test]
    fn any_split_gives_the_lines_of_one_chunk(
        text in output(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = written(std::slice::from_ref(&text));
        let parts = written(&split(&text, &cuts));
        prop_assert_eq!(&parts, &whole);
        for line in &whole {
            for secret in SECRETS {
                prop_assert!(!line.contains(secret), "{secret} in {line:?}");
            }
        }
    }

    /// Through the runtime: batches arrive in order, numbered on from each
    /// other, none lost or repeated, and the kept log (spilled when its
    /// memory bound is small) holds exactly the lines the batches had.
    #[test]
    fn batches_are_whole_and_the_kept_log_matches_them(
        text in output(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        log_memory in prop_oneof![Just(1usize), Just(64), Just(1 << 20)],
    ) {
        let chunks = split(&text, &cuts);
        let hook = run(&chunks, log_memory);
        let breaks = hook.breaks.lock().unwrap().clone();
        prop_assert!(breaks.is_empty(), "{breaks:?}");
        let streamed = hook.lines.lock().unwrap().clone();
        let whole = written(std::slice::from_ref(&text));
        let messages: Vec<&String> = streamed.iter().map(|(_, m)| m).collect();
        prop_assert_eq!(messages, whole.iter().collect::<Vec<_>>());
        for (i, (number, _)) in streamed.iter().enumerate() {
            prop_assert_eq!(*number, i as u64);
        }
        let (kept, spilled) = hook.kept.lock().unwrap().clone().expect("got_logs was called");
        prop_assert_eq!(&kept, &streamed);
        if log_memory == 1 && !streamed.is_empty() {
            prop_assert!(spilled, "a 1-byte bound spills");
        }
    }

    /// A kept log reads back byte-exact whatever its batches, timestamps and
    /// memory bound.
    #[test]
    fn a_kept_log_reads_back_byte_exact(
        batches in proptest::collection::vec(("[a-z\\r\\n]{0,40}", 0u64..3), 0..40),
        memory in prop_oneof![Just(0usize), Just(16), Just(1000), Just(1 << 20)],
    ) {
        let mut log = StepLog::new(memory);
        let mut want = Vec::new();
        let mut number = 0u64;
        let mut ts = 0u64;
        for (text, step) in &batches {
            ts += step;
            let lines = Lines::new(text, number, ts);
            want.extend(lines.iter().map(|l| l.to_line()));
            number = lines.end();
            log.push(lines);
        }
        prop_assert_eq!(log.len(), want.len() as u64);
        prop_assert_eq!(log.to_lines().unwrap(), want);
    }
}

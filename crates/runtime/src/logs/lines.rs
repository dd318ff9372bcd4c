//! Bytes to masked [`Lines`] batches, with a size limit.

use std::borrow::Cow;
use std::sync::Arc;

use runnerkit_core::Lines;

use super::Masker;

/// Longest line kept whole; longer output without a newline is cut into
/// several lines (never inside a secret) so one runaway write cannot hold the
/// whole log in memory. A line is held until it is this long plus the
/// masker's longest part, so that a secret straddling the cut is seen whole.
pub const MAX_LINE: usize = 64 * 1024;

/// Turns a step's output chunks into masked, numbered batches of lines.
///
/// The lines a chunk completes are handed on as one [`Lines`] batch that
/// borrows the chunk itself: no copy, no allocation per line. Text is copied
/// only where it must be: when masking changed it, when it is not UTF-8, and
/// for the one line a chunk finishes that an earlier chunk began (held until
/// its newline, or [`finish`](Self::finish)). `\r\n` ends a line like `\n`.
/// Masking runs over complete lines only, so a secret split across any two
/// chunks is still masked. Once the step's log passes `limit` bytes, one
/// marker line says so and later lines are counted and dropped;
/// [`finish`](Self::finish) then says how many.
#[derive(Debug)]
pub struct LineWriter {
    masker: Arc<Masker>,
    pending: Vec<u8>,
    scratch: Vec<u8>,
    next: u64,
    limit: usize,
    written: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LineWriter {
    /// A writer masking with `masker`, keeping at most `limit` bytes of lines.
    pub fn new(masker: Arc<Masker>, limit: usize) -> Self {
        Self {
            masker,
            pending: Vec::new(),
            scratch: Vec::new(),
            next: 0,
            limit,
            written: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// Feeds one chunk; the lines it completes go to `emit`, in order,
    /// stamped `timestamp` (one batch for the line an earlier chunk began,
    /// one for the rest).
    pub fn write(&mut self, chunk: &[u8], timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        match memchr::memrchr(b'\n', chunk) {
            Some(last) => {
                let (mut complete, rest) = chunk.split_at(last + 1);
                if !self.pending.is_empty() {
                    // The held line ends in this chunk: it alone is copied.
                    let first = memchr::memchr(b'\n', complete).map_or(complete.len(), |i| i + 1);
                    let mut held = std::mem::take(&mut self.pending);
                    held.extend_from_slice(&complete[..first]);
                    self.region(&held, timestamp, emit);
                    held.clear();
                    self.pending = held;
                    complete = &complete[first..];
                }
                if !complete.is_empty() {
                    self.region(complete, timestamp, emit);
                }
                self.pending.extend_from_slice(rest);
            }
            None => self.pending.extend_from_slice(chunk),
        }
        // An overlong line is cut only once it holds `longest` bytes past
        // the bound: any secret starting before the bound is then whole in
        // `pending`, so `safe_cut` sees it and moves the cut past it. Cutting
        // as soon as the line passed the bound would split a secret whose
        // end had not arrived yet, and show both halves.
        let hold = MAX_LINE.saturating_add(self.masker.longest());
        while self.pending.len() > hold {
            let cut = self.masker.safe_cut(&self.pending, MAX_LINE);
            let mut held = std::mem::take(&mut self.pending);
            self.region(&held[..cut], timestamp, emit);
            held.drain(..cut);
            self.pending = held;
        }
    }

    /// Ends the stream: a held partial line is emitted, then a note of what
    /// the limit dropped, if anything.
    pub fn finish(&mut self, timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        self.end_line(timestamp, emit);
        if self.dropped_lines > 0 {
            let message = format!(
                "[runnerkit] {} more lines ({} bytes) were dropped by the log limit",
                self.dropped_lines, self.dropped_bytes
            );
            self.note(&message, timestamp, emit);
            self.dropped_lines = 0;
        }
    }

    /// Lines emitted so far.
    pub fn count(&self) -> u64 {
        self.next
    }

    /// Masks a region of lines (each ended by `\n`, but for an open last
    /// one) at once and emits it as one batch, as far as the limit lets it.
    fn region(&mut self, region: &[u8], timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        let mut masked = std::mem::take(&mut self.scratch);
        let text = if self.masker.mask_into(region, &mut masked) {
            &masked[..]
        } else {
            region
        };
        // One UTF-8 check for the whole region: a valid region splits at
        // `\n` into valid lines, and replacing invalid bytes region-wide
        // gives the same lines as line by line (`\n` never belongs to an
        // invalid sequence).
        let text = match std::str::from_utf8(text) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(text),
        };
        self.admit(&text, timestamp, emit);
        drop(text);
        masked.clear();
        self.scratch = masked;
    }

    /// Emits the lines of `text` that fit under the limit; the line that
    /// crosses it is replaced by the marker, and the rest are counted.
    fn admit(&mut self, text: &str, timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        if self.written > self.limit {
            self.drop_lines(text);
            return;
        }
        if text.len() <= self.limit - self.written {
            self.written += text.len();
            self.emit(text, timestamp, emit);
            return;
        }
        let mut kept = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1) {
            if end - kept > self.limit - self.written {
                break;
            }
            self.written += end - kept;
            kept = end;
        }
        self.emit(&text[..kept], timestamp, emit);
        self.written = self.limit + 1;
        let message = format!(
            "[runnerkit] log limit of {} bytes reached: the rest of this step's output is not kept",
            self.limit
        );
        self.note(&message, timestamp, emit);
        self.drop_lines(&text[kept..]);
    }

    fn drop_lines(&mut self, text: &str) {
        let lines = Lines::new(text, 0, 0);
        self.dropped_lines += lines.len() as u64;
        self.dropped_bytes += text.len() as u64;
    }

    /// Ends the open line, if there is one, and adds `message` as a line of
    /// the runtime's own (masked, on one line): why the log stops here.
    pub fn note_after(&mut self, message: &str, timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        self.end_line(timestamp, emit);
        self.note(message, timestamp, emit);
    }

    /// The held partial line, if any, goes out as a line.
    fn end_line(&mut self, timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.region(&rest, timestamp, emit);
        }
    }

    /// A line of the writer's own, masked like the step's output: what the
    /// runtime writes into a log must not show a secret either, whatever it
    /// quotes.
    fn note(&mut self, message: &str, timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        let message = self.masker.mask_str(message).replace('\n', " ");
        self.emit(&message, timestamp, emit);
    }

    fn emit(&mut self, text: &str, timestamp: u64, emit: &mut impl FnMut(Lines<'_>)) {
        let lines = Lines::new(text, self.next, timestamp);
        if !lines.is_empty() {
            self.next = lines.end();
            emit(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::MASK;

    fn run(secrets: &[&str], chunks: &[&[u8]], limit: usize) -> Vec<String> {
        let mut w = LineWriter::new(Arc::new(Masker::new(secrets.iter().copied())), limit);
        let mut out = Vec::new();
        let mut emit = |lines: Lines<'_>| {
            assert_eq!(
                lines.first(),
                out.len() as u64,
                "lines are numbered in order"
            );
            out.extend(lines.iter().map(|l| l.message.to_owned()));
        };
        for c in chunks {
            w.write(c, 0, &mut emit);
        }
        w.finish(0, &mut emit);
        out
    }

    #[test]
    fn partial_lines_are_held_and_crlf_folds() {
        let out = run(&[], &[b"he", b"llo\r\nwor", b"ld\n", b"tail"], usize::MAX);
        assert_eq!(out, ["hello", "world", "tail"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_line_by_line() {
        let out = run(
            &["hunter2"],
            &[b"ok\r\nbad \xff hunter2\nfine\n"],
            usize::MAX,
        );
        assert_eq!(out, ["ok", "bad \u{fffd} ******", "fine"]);
    }

    #[test]
    fn empty_lines_are_kept() {
        assert_eq!(run(&[], &[b"a\n\nb\n"], usize::MAX), ["a", "", "b"]);
    }

    #[test]
    fn a_secret_split_at_every_byte_position_is_masked() {
        let secret = "correct-horse-battery";
        let text = format!("before {secret} after\nnext {secret}\n");
        for cut in 0..=text.len() {
            let (a, b) = text.as_bytes().split_at(cut);
            let out = run(&[secret], &[a, b], usize::MAX);
            assert_eq!(out, ["before ****** after", "next ******"], "cut at {cut}");
        }
    }

    #[test]
    fn a_secret_split_across_three_chunks_is_masked() {
        let out = run(&["abcdef"], &[b"x ab", b"cd", b"ef y\n"], usize::MAX);
        assert_eq!(out, ["x ****** y"]);
    }

    #[test]
    fn every_line_of_a_multi_line_secret_is_masked() {
        let key = "line-one\nline-two\n";
        let out = run(&[key], &[b"line-one\nline-two\nline-three\n"], usize::MAX);
        assert_eq!(out, ["******", "******", "line-three"]);
    }

    #[test]
    fn the_limit_truncates_with_a_marker_and_a_count() {
        let out = run(&[], &[b"aaaa\nbbbb\ncccc\ndddd\n"], 10);
        assert_eq!(out.len(), 4);
        assert_eq!(&out[..2], ["aaaa", "bbbb"]);
        assert!(out[2].contains("log limit of 10 bytes reached"), "{out:?}");
        assert!(out[3].contains("2 more lines (10 bytes)"), "{out:?}");
    }

    #[test]
    fn overlong_lines_are_cut_but_never_inside_a_secret() {
        let secret = "s3cr3t-value";
        let mut text = vec![b'x'; MAX_LINE - 4];
        text.extend_from_slice(secret.as_bytes());
        text.extend_from_slice(&[b'y'; 100]);
        text.extend_from_slice(b"\n");
        // The first chunk alone is over the line bound, with the secret
        // straddling the natural cut.
        let out = run(
            &[secret],
            &[&text[..MAX_LINE + 50], &text[MAX_LINE + 50..]],
            usize::MAX,
        );
        assert_eq!(out.len(), 2, "one overlong line becomes two");
        assert!(out.iter().all(|l| !l.contains("s3cr3t")), "secret leaked");
        assert!(out[0].ends_with("******"), "the cut moved past the secret");
    }

    #[test]
    fn a_secret_straddling_the_line_bound_is_masked_wherever_the_chunk_ends() {
        // The secret starts just before MAX_LINE; the first chunk ends
        // anywhere from inside it to past it, so the writer may see only
        // part of the secret when the pending line first passes the bound.
        let secret = "s3cr3t-value-0123456789";
        let mut text = vec![b'x'; MAX_LINE - 4];
        text.extend_from_slice(secret.as_bytes());
        text.extend_from_slice(&[b'y'; 100]);
        text.extend_from_slice(b"\n");
        for end in MAX_LINE - 10..MAX_LINE + 40 {
            let out = run(&[secret], &[&text[..end], &text[end..]], usize::MAX);
            let joined = out.concat();
            assert!(!joined.contains("s3cr3t"), "cut at {end}: leaked");
            assert!(!joined.contains("0123456789"), "cut at {end}: leaked");
            assert_eq!(joined.matches(MASK).count(), 1, "cut at {end}");
        }
    }

    proptest::proptest! {
        /// Whatever the secrets (overlapping ones included) and however the
        /// output is chunked, no secret survives in any line.
        #[test]
        fn no_secret_survives(
            secrets in proptest::collection::vec("[abc]{2,6}", 1..8),
            text in "[abc\n]{0,200}",
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts {
                chunks.push(&text.as_bytes()[last..c]);
                last = c;
            }
            chunks.push(&text.as_bytes()[last..]);
            for line in run(&secrets, &chunks, usize::MAX) {
                for secret in &secrets {
                    proptest::prop_assert!(!line.contains(secret), "{secret:?} visible in {line:?}");
                }
            }
        }
    }
}

//! A step's whole log, kept for the hooks that ask for it.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use crate::{Line, LineRef, Lines};

/// The most text one record holds: consecutive batches with one timestamp
/// share a record up to this size, and reading back needs a buffer only
/// this large (plus the longest line).
const RECORD_TEXT: usize = 256 * 1024;

/// Bytes of a record's header: its timestamp (`u64`) and its text's length
/// (`u32`), little-endian.
const HEADER: usize = 12;

/// Every line of one step's log, in order, as the runtime keeps it for hooks
/// that declared they want it ([`Hook::wants_log`](crate::Hook::wants_log))
/// and hands it to their [`got_logs`](crate::Hook::got_logs).
///
/// Kept compactly: one buffer of records, each a run of lines with one
/// timestamp (not a `String` per line). Past `memory_bound` bytes the buffer
/// is moved to an unnamed temporary file (deleted by the OS when the log is
/// dropped, even after a crash), and again each time it refills, so a log of
/// any size costs about `memory_bound` bytes of memory. Lines are numbered
/// from 0 in the order they were pushed.
pub struct StepLog {
    memory: Vec<u8>,
    /// Where the record being appended to starts in `memory`, while batches
    /// with its timestamp may still join it.
    open: Option<(usize, u64)>,
    memory_bound: usize,
    file: Option<File>,
    /// Bytes of records in `file`.
    spilled: u64,
    /// Spilling failed once (a full disk): the rest stays in memory rather
    /// than be lost.
    spill_failed: bool,
    lines: u64,
    text_bytes: u64,
}

impl std::fmt::Debug for StepLog {
    /// Sizes only: the text is the step's whole log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepLog")
            .field("lines", &self.lines)
            .field("text_bytes", &self.text_bytes)
            .field("in_memory", &self.memory.len())
            .field("spilled", &self.spilled)
            .finish()
    }
}

impl StepLog {
    /// An empty log that keeps at most about `memory_bound` bytes in memory.
    pub fn new(memory_bound: usize) -> Self {
        Self {
            memory: Vec::new(),
            open: None,
            memory_bound,
            file: None,
            spilled: 0,
            spill_failed: false,
            lines: 0,
            text_bytes: 0,
        }
    }

    /// Appends a batch; its lines are numbered after those already kept,
    /// whatever its own numbers.
    pub fn push(&mut self, lines: Lines<'_>) {
        if lines.is_empty() {
            return;
        }
        self.lines += lines.len() as u64;
        let timestamp = lines.timestamp();
        let mut text = lines.text();
        while !text.is_empty() {
            let take = record_cut(text);
            let (part, rest) = text.split_at(take);
            // Records hold whole lines: an open last line is closed, or the
            // next batch's first line would run on from it.
            self.append(part, !part.ends_with('\n'), timestamp);
            text = rest;
        }
        if self.memory.len() >= self.memory_bound {
            self.spill();
        }
    }

    /// Appends one line of text, the next in the log.
    pub fn push_line(&mut self, message: &str, timestamp: u64) {
        let mut text = String::with_capacity(message.len() + 1);
        text.push_str(message);
        text.push('\n');
        self.push(Lines::new(&text, self.lines, timestamp));
    }

    /// Appends `text` (and a `\n` after it when `close`) to the open record
    /// when it has this timestamp and room, else to a new one.
    fn append(&mut self, text: &str, close: bool, timestamp: u64) {
        let added = text.len() + usize::from(close);
        self.text_bytes += added as u64;
        let joined = match self.open {
            Some((start, ts)) if ts == timestamp => {
                let len = self.memory.len() - start - HEADER;
                (len + added <= RECORD_TEXT).then_some((start, len + added))
            }
            _ => None,
        };
        let (start, len) = joined.unwrap_or_else(|| {
            let start = self.memory.len();
            self.memory.extend_from_slice(&timestamp.to_le_bytes());
            self.memory.extend_from_slice(&[0; 4]);
            (start, added)
        });
        self.memory.extend_from_slice(text.as_bytes());
        if close {
            self.memory.push(b'\n');
        }
        // A record's text is at most a line past RECORD_TEXT, and a line is
        // bounded by the runtime's line cut, far below 4 GiB.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.memory[start + 8..start + HEADER].copy_from_slice(&len.to_le_bytes());
        self.open = Some((start, timestamp));
    }

    fn spill(&mut self) {
        if self.spill_failed {
            return;
        }
        let written = match &mut self.file {
            Some(file) => file.write_all(&self.memory),
            None => tempfile::tempfile().and_then(|mut file| {
                file.write_all(&self.memory)?;
                self.file = Some(file);
                Ok(())
            }),
        };
        match written {
            Ok(()) => {
                self.spilled += self.memory.len() as u64;
                self.memory.clear();
                self.open = None;
            }
            Err(e) => {
                // A partial write is never read: `spilled` counts what
                // landed whole. The log stays whole, in memory.
                tracing::warn!(error = %e, "a step's log could not be moved to a temporary file; it stays in memory");
                self.spill_failed = true;
            }
        }
    }

    /// Lines kept.
    pub fn len(&self) -> u64 {
        self.lines
    }

    /// Whether no line was kept.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Bytes of text kept: every line with its `\n`.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Whether part of the log lives in its temporary file.
    pub fn is_spilled(&self) -> bool {
        self.spilled > 0
    }

    /// Bytes of memory the log holds now (its buffer's capacity).
    pub fn memory_bytes(&self) -> usize {
        self.memory.capacity()
    }

    /// Every line, owned, numbered from 0: for a log known to be small (a
    /// test's); [`read`](Self::read) streams a large one.
    pub fn to_lines(&self) -> io::Result<Vec<Line>> {
        let mut out = Vec::new();
        self.read(0, |lines| out.extend(lines.iter().map(|l| l.to_line())))?;
        Ok(out)
    }

    /// Reads the log back in order, batch by batch, numbered from `first`:
    /// each `Lines` given to `each` is one record (lines of one timestamp).
    /// Only reading the temporary file can fail.
    pub fn read(&self, first: u64, mut each: impl FnMut(Lines<'_>)) -> io::Result<()> {
        let mut number = first;
        if let Some(file) = &self.file {
            let mut buf = Vec::with_capacity(2 * RECORD_TEXT);
            let mut at = 0u64;
            while at < self.spilled {
                let want = (self.spilled - at).min(RECORD_TEXT as u64) as usize;
                let old = buf.len();
                buf.resize(old + want, 0);
                file.read_exact_at(&mut buf[old..], at)?;
                at += want as u64;
                let used = records(&buf, &mut number, &mut each)?;
                buf.drain(..used);
            }
            if !buf.is_empty() {
                return Err(corrupt());
            }
        }
        let used = records(&self.memory, &mut number, &mut each)?;
        if used != self.memory.len() {
            return Err(corrupt());
        }
        Ok(())
    }
}

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "a step's kept log is cut short")
}

/// How much of `text` goes in one record: all of it when it is short, else
/// as many whole lines as fit (at least one, however long).
fn record_cut(text: &str) -> usize {
    if text.len() <= RECORD_TEXT {
        return text.len();
    }
    let bytes = text.as_bytes();
    match memchr::memrchr(b'\n', &bytes[..RECORD_TEXT]) {
        Some(end) => end + 1,
        None => memchr::memchr(b'\n', bytes).map_or(text.len(), |end| end + 1),
    }
}

/// Hands every complete record at the start of `buf` to `each`; returns the
/// bytes they took.
fn records(buf: &[u8], number: &mut u64, each: &mut impl FnMut(Lines<'_>)) -> io::Result<usize> {
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let header = &buf[at..at + HEADER];
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&header[..8]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[8..]);
        let len = u32::from_le_bytes(len) as usize;
        let Some(body) = buf.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        let text = std::str::from_utf8(body).map_err(|_| corrupt())?;
        let lines = Lines::new(text, *number, u64::from_le_bytes(ts));
        *number = lines.end();
        each(lines);
        at += HEADER + len;
    }
    Ok(at)
}

/// A step's whole log as [`Manager::upload`](crate::Manager::upload) sends
/// it: `head` (lines the runner writes before the step's output, such as the
/// pipeline's warnings for it), then the step's own kept log, numbered on
/// from the head.
#[derive(Debug, Clone, Copy)]
pub struct LogUpload<'a> {
    /// Lines that open the log, numbered from 0 in this order.
    pub head: &'a [Line],
    /// The step's log, if it had one kept.
    pub log: Option<&'a StepLog>,
}

impl<'a> LogUpload<'a> {
    /// An upload of `lines` alone.
    pub fn lines(lines: &'a [Line]) -> Self {
        Self {
            head: lines,
            log: None,
        }
    }

    /// Lines in the upload.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.log.map_or(0, StepLog::len)
    }

    /// Whether the upload holds no line.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every line in order, numbered from 0. Only reading a kept log's
    /// temporary file can fail.
    pub fn for_each(&self, mut each: impl FnMut(LineRef<'_>)) -> io::Result<()> {
        for (i, line) in self.head.iter().enumerate() {
            each(LineRef {
                number: i as u64,
                ..line.as_ref()
            });
        }
        if let Some(log) = self.log {
            log.read(self.head.len() as u64, |lines| {
                lines.iter().for_each(&mut each)
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(log: &StepLog) -> Vec<(u64, String, u64)> {
        let mut out = Vec::new();
        log.read(0, |lines| {
            for l in lines {
                out.push((l.number, l.message.to_owned(), l.timestamp));
            }
        })
        .unwrap();
        out
    }

    #[test]
    fn batches_read_back_in_order_with_their_timestamps() {
        let mut log = StepLog::new(1 << 20);
        log.push(Lines::new("a\nb\n", 0, 0));
        log.push(Lines::new("c", 2, 0));
        log.push(Lines::new("d\r\n", 3, 1));
        log.push_line("e", 1);
        assert_eq!(log.len(), 5);
        assert!(!log.is_spilled());
        let got = read_all(&log);
        let want: Vec<(u64, String, u64)> = [("a", 0), ("b", 0), ("c", 0), ("d", 1), ("e", 1)]
            .iter()
            .enumerate()
            .map(|(i, (m, t))| (i as u64, (*m).to_owned(), *t))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_log_past_its_memory_bound_spills_and_reads_back_whole() {
        let mut log = StepLog::new(4096);
        let mut want = Vec::new();
        for i in 0..20_000u64 {
            let text = format!("line {i} {}\n", "x".repeat((i % 97) as usize));
            log.push(Lines::new(&text, i, i / 1000));
            want.push((i, text[..text.len() - 1].to_owned(), i / 1000));
        }
        assert!(log.is_spilled());
        assert!(log.memory_bytes() < 64 * 1024, "{}", log.memory_bytes());
        let got = read_all(&log);
        assert_eq!(got.len(), want.len());
        let first_wrong = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(first_wrong, None, "the first line that differs");
    }

    #[test]
    fn a_batch_larger_than_a_record_is_split_at_lines() {
        let text: String = (0..100_000).map(|i| format!("{i}\n")).collect();
        let mut log = StepLog::new(1 << 30);
        log.push(Lines::new(&text, 0, 5));
        let got = read_all(&log);
        assert_eq!(got.len(), 100_000);
        assert!(got.iter().enumerate().all(|(i, l)| l.1 == i.to_string()));
    }

    #[test]
    fn an_upload_numbers_the_log_after_its_head() {
        let head = [Line {
            number: 9,
            message: "warning".into(),
            timestamp: 0,
        }];
        let mut log = StepLog::new(16);
        log.push(Lines::new("one\ntwo\n", 0, 1));
        let upload = LogUpload {
            head: &head,
            log: Some(&log),
        };
        let mut got = Vec::new();
        upload
            .for_each(|l| got.push((l.number, l.message.to_owned())))
            .unwrap();
        assert_eq!(
            got,
            [(0, "warning".into()), (1, "one".into()), (2, "two".into())]
        );
        assert_eq!(upload.len(), 3);
    }
}

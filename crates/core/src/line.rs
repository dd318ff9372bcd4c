//! What a step produces: log lines and an exit state.

use serde::{Deserialize, Serialize};

/// One line of a step's log, after splitting and masking, owned: what a hook
/// keeps or sends on (a live-log batch to a server). The runtime hands lines
/// to hooks as borrowed [`Lines`] batches; [`LineRef::to_line`] makes one of
/// these from a line of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// 0-based position of the line in the step's log.
    pub number: u64,
    /// The text, without its line terminator; secrets already masked.
    pub message: String,
    /// Whole seconds since the step started when the line arrived.
    pub timestamp: u64,
}

impl Line {
    /// This line as a borrowed [`LineRef`].
    pub fn as_ref(&self) -> LineRef<'_> {
        LineRef {
            number: self.number,
            message: &self.message,
            timestamp: self.timestamp,
        }
    }
}

/// One line of a [`Lines`] batch, borrowed from the text the engine yielded
/// (or from the masked copy of it, when masking changed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRef<'a> {
    /// 0-based position of the line in the step's log.
    pub number: u64,
    /// The text, without its line terminator; secrets already masked.
    pub message: &'a str,
    /// Whole seconds since the step started when the line arrived.
    pub timestamp: u64,
}

impl LineRef<'_> {
    /// An owned copy of the line.
    pub fn to_line(&self) -> Line {
        Line {
            number: self.number,
            message: self.message.to_owned(),
            timestamp: self.timestamp,
        }
    }
}

/// Consecutive lines of one step's log, as the runtime hands them to
/// [`Hook::got_lines`](crate::Hook::got_lines): a view of one text holding
/// the lines, each ended by `\n` (a `\r` before it is not part of the line),
/// numbered from [`first`](Self::first), all stamped with one timestamp.
///
/// The text is borrowed from the chunk the engine yielded, so a batch costs
/// no copy and no allocation per line; a hook that keeps lines past the call
/// copies them ([`LineRef::to_line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines<'a> {
    text: &'a str,
    count: usize,
    first: u64,
    timestamp: u64,
}

impl<'a> Lines<'a> {
    /// The lines of `text`, the first numbered `first`. Each line is ended by
    /// `\n`; a last line without one counts too (`"a\nb"` is two lines,
    /// `"a\n"` one, `""` none).
    pub fn new(text: &'a str, first: u64, timestamp: u64) -> Self {
        let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).count();
        let open = !text.is_empty() && !text.ends_with('\n');
        Self {
            text,
            count: newlines + usize::from(open),
            first,
            timestamp,
        }
    }

    /// How many lines the batch holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The number of the batch's first line.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The number the line after the batch gets.
    pub fn end(&self) -> u64 {
        self.first + self.count as u64
    }

    /// When the batch's lines arrived: whole seconds since the step started.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The text of the lines as given: each line with its terminator.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The lines in order.
    pub fn iter(&self) -> LinesIter<'a> {
        LinesIter {
            rest: self.text,
            number: self.first,
            timestamp: self.timestamp,
        }
    }
}

impl<'a> IntoIterator for Lines<'a> {
    type Item = LineRef<'a>;
    type IntoIter = LinesIter<'a>;

    fn into_iter(self) -> LinesIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Lines<'a> {
    type Item = LineRef<'a>;
    type IntoIter = LinesIter<'a>;

    fn into_iter(self) -> LinesIter<'a> {
        self.iter()
    }
}

/// The lines of a [`Lines`] batch, in order.
#[derive(Debug, Clone)]
pub struct LinesIter<'a> {
    rest: &'a str,
    number: u64,
    timestamp: u64,
}

impl<'a> Iterator for LinesIter<'a> {
    type Item = LineRef<'a>;

    fn next(&mut self) -> Option<LineRef<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.rest.as_bytes()) {
            Some(end) => (&self.rest[..end], &self.rest[end + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        let number = self.number;
        self.number += 1;
        Some(LineRef {
            number,
            message: line.strip_suffix('\r').unwrap_or(line),
            timestamp: self.timestamp,
        })
    }
}

/// How a step's process ended, as reported by [`Engine::wait`](crate::Engine::wait).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitState {
    /// The exit code; 128 + signal for a process killed by a signal.
    pub exit_code: i32,
    /// The kernel's OOM killer ended it. The runtime then reports exit code 137.
    pub oom_killed: bool,
}

impl ExitState {
    /// An exit with `exit_code`, not OOM-killed.
    pub fn code(exit_code: i32) -> Self {
        Self {
            exit_code,
            oom_killed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str) -> Vec<String> {
        Lines::new(text, 0, 0)
            .iter()
            .map(|l| l.message.to_owned())
            .collect()
    }

    #[test]
    fn a_batch_counts_and_splits_its_lines() {
        assert_eq!(Lines::new("", 0, 0).len(), 0);
        assert_eq!(messages("\n"), [""]);
        assert_eq!(messages("a\r\nb\n"), ["a", "b"]);
        assert_eq!(messages("a\nb"), ["a", "b"]);
        let lines = Lines::new("a\n\nc\n", 7, 3);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines.end(), 10);
        let numbers: Vec<u64> = lines.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [7, 8, 9]);
        assert!(lines.iter().all(|l| l.timestamp == 3));
    }
}

//! Secret masking with one Aho-Corasick automaton over every secret.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// What a masked secret is replaced by (Drone's mask).
pub const MASK: &str = "******";

/// Finds and masks secret values in log text.
///
/// Secrets are matched line by line: a multi-line value is split into its
/// lines, each trimmed, and each line masked wherever it appears, which is how
/// the value shows in a line-oriented log. Parts shorter than two characters
/// are never masked (masking every `a` would make logs unreadable and reveal
/// more than it hides). Because no part contains a newline, a match never
/// spans two lines, so masking complete lines is exact however the output was
/// chunked.
#[derive(Debug, Clone)]
pub struct Masker {
    automaton: Option<AhoCorasick>,
    longest: usize,
}

impl Masker {
    /// A masker for `secrets`. Empty and too-short parts are dropped.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut parts: Vec<&str> = secrets
            .into_iter()
            .flat_map(str::lines)
            .map(str::trim)
            .filter(|p| p.chars().count() >= 2)
            .collect();
        parts.sort_unstable();
        parts.dedup();
        let longest = parts.iter().map(|p| p.len()).max().unwrap_or(0);
        // Leftmost-longest so a secret that contains another is masked whole.
        let automaton = if parts.is_empty() {
            None
        } else {
            // A full DFA: secrets are few and short, so its memory is small,
            // and it scans the log a byte per step with no fallback path.
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&parts)
                .or_else(|_| {
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&parts)
                })
                .ok()
        };
        Self { automaton, longest }
    }

    /// True when there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    /// Length in bytes of the longest secret part.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Masks `text` into `out` (cleared first). Returns false, leaving `out`
    /// empty, when `text` holds no secret: the caller then uses `text` as is.
    pub fn mask_into(&self, text: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let Some(ac) = &self.automaton else {
            return false;
        };
        let mut last = 0;
        for m in ac.find_iter(text) {
            out.extend_from_slice(&text[last..m.start()]);
            out.extend_from_slice(MASK.as_bytes());
            last = m.end();
        }
        if last == 0 && out.is_empty() {
            return false;
        }
        out.extend_from_slice(&text[last..]);
        true
    }

    /// Where to cut `text` near `at` without splitting a secret: `at`, or
    /// the end of a secret that straddles it.
    pub fn safe_cut(&self, text: &[u8], at: usize) -> usize {
        let Some(ac) = &self.automaton else {
            return at;
        };
        let from = at.saturating_sub(self.longest);
        let to = (at + self.longest).min(text.len());
        ac.find_iter(&text[from..to])
            .map(|m| (from + m.start(), from + m.end()))
            .find(|&(s, e)| s < at && at < e)
            .map_or(at, |(_, e)| e)
    }

    /// Masks `text`, returning a new string.
    pub fn mask_str(&self, text: &str) -> String {
        let mut out = Vec::new();
        if self.mask_into(text.as_bytes(), &mut out) {
            String::from_utf8_lossy(&out).into_owned()
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_and_the_longest_secret() {
        let m = Masker::new(["hunter2", "hunter22", "x"]);
        assert_eq!(
            m.mask_str("a hunter2 b hunter22 c x"),
            "a ****** b ****** c x"
        );
    }

    #[test]
    fn multi_line_secrets_mask_each_line_trimmed() {
        let key = "-----BEGIN KEY-----\n  abcdef  \n-----END KEY-----\n";
        let m = Masker::new([key]);
        assert_eq!(m.mask_str("abcdef"), "******");
        assert_eq!(m.mask_str("-----END KEY-----"), "******");
    }

    #[test]
    fn nothing_to_mask_leaves_text_alone() {
        let m = Masker::new(["", "a"]);
        assert!(m.is_empty());
        let mut out = Vec::new();
        assert!(!m.mask_into(b"a b c", &mut out));
    }

    #[test]
    fn safe_cut_moves_past_a_straddling_secret() {
        let m = Masker::new(["secret"]);
        let text = b"xxsecretyy";
        assert_eq!(m.safe_cut(text, 4), 8);
        assert_eq!(m.safe_cut(text, 2), 2);
        assert_eq!(m.safe_cut(text, 9), 9);
    }
}

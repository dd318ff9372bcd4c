//! Secret masking with one Aho-Corasick automaton over every secret.

use std::borrow::Cow;

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use super::encode;

/// What a masked secret is replaced by (Drone's mask).
pub const MASK: &str = "******";

/// Secrets per packed (SIMD) searcher: the size its heuristics accept.
const PACKED_GROUP: usize = 64;

/// Finds and masks secret values in log text.
///
/// Secrets are matched line by line: a multi-line value is split into its
/// lines, each trimmed, and each line masked wherever it appears, which is how
/// the value shows in a line-oriented log. Parts shorter than two characters
/// are never masked (masking every `a` would make logs unreadable and reveal
/// more than it hides). Because no part contains a newline, a match never
/// spans two lines, so masking complete lines is exact however the output was
/// chunked.
///
/// The search runs on SIMD packed searchers (Teddy), one per group of up to
/// 64 secrets, where the CPU has them; elsewhere on one Aho-Corasick DFA.
/// Overlapping matches (one secret inside another, or two that overlap) are
/// merged and masked as one.
#[derive(Debug, Clone)]
pub struct Masker {
    finder: Option<Finder>,
    longest: usize,
}

#[derive(Debug, Clone)]
enum Finder {
    Packed(Vec<packed::Searcher>),
    Automaton(AhoCorasick),
}

impl Finder {
    fn new(parts: &[&str]) -> Option<Self> {
        let packed: Option<Vec<packed::Searcher>> = parts
            .chunks(PACKED_GROUP)
            .map(|group| {
                packed::Config::new()
                    .match_kind(packed::MatchKind::LeftmostLongest)
                    .builder()
                    .extend(group)
                    .build()
            })
            .collect();
        if let Some(searchers) = packed {
            return Some(Self::Packed(searchers));
        }
        // A full DFA: secrets are few and short, so its memory is small, and
        // it scans a byte per step with no fallback path.
        let builder = |kind| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(kind)
                .build(parts)
        };
        builder(Some(AhoCorasickKind::DFA))
            .or_else(|_| builder(None))
            .ok()
            .map(Self::Automaton)
    }

    /// Every secret in `text` as `(start, end)`, sorted, overlaps merged.
    ///
    /// After each match the search resumes one byte past its start, not at
    /// its end, so that a secret overlapping another is found too (and its
    /// tail cannot show past the first one's mask).
    fn find(&self, text: &[u8], out: &mut Vec<(usize, usize)>) {
        out.clear();
        match self {
            Self::Automaton(ac) => {
                let mut pos = 0;
                while let Some(m) = ac.find(aho_corasick::Input::new(text).range(pos..)) {
                    out.push((m.start(), m.end()));
                    pos = m.start() + 1;
                }
            }
            Self::Packed(searchers) => {
                for searcher in searchers {
                    let mut pos = 0;
                    while let Some(m) =
                        searcher.find_in(text, aho_corasick::Span::from(pos..text.len()))
                    {
                        out.push((m.start(), m.end()));
                        pos = m.start() + 1;
                    }
                }
            }
        }
        if out.len() > 1 {
            out.sort_unstable();
            let mut merged = 0;
            for i in 1..out.len() {
                if out[i].0 < out[merged].1 {
                    out[merged].1 = out[merged].1.max(out[i].1);
                } else {
                    merged += 1;
                    out[merged] = out[i];
                }
            }
            out.truncate(merged + 1);
        }
    }
}

impl Masker {
    /// A masker for `secrets`: each one's lines and encoded forms (base64,
    /// percent-encoding, JSON escaping). Empty and too-short parts are
    /// dropped.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut parts: Vec<Cow<'a, str>> = Vec::new();
        let mut encoded = Vec::new();
        for secret in secrets {
            parts.extend(
                secret
                    .lines()
                    .map(str::trim)
                    .filter(|p| p.chars().count() >= 2)
                    .map(Cow::Borrowed),
            );
            // Drone's rule for plain text holds for every form: a secret of
            // fewer than 2 characters is not masked at all. The value is
            // encoded as the step has it (`printf %s "$TOKEN" | base64`)
            // and trimmed, for a value read from a file with its newline.
            let trimmed = secret.trim();
            if trimmed.chars().count() >= 2 {
                encode::encoded_forms(secret, &mut encoded);
                if trimmed != secret {
                    encode::encoded_forms(trimmed, &mut encoded);
                }
            }
        }
        parts.extend(encoded.into_iter().map(Cow::Owned));
        parts.sort_unstable();
        parts.dedup();
        let longest = parts.iter().map(|p| p.len()).max().unwrap_or(0);
        let parts: Vec<&str> = parts.iter().map(|p| &**p).collect();
        let finder = if parts.is_empty() {
            None
        } else {
            Finder::new(&parts)
        };
        Self { finder, longest }
    }

    /// True when there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.finder.is_none()
    }

    /// Length in bytes of the longest secret part.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Masks `text` into `out` (cleared first). Returns false, leaving `out`
    /// empty, when `text` holds no secret: the caller then uses `text` as is.
    pub fn mask_into(&self, text: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let Some(finder) = &self.finder else {
            return false;
        };
        let mut found = Vec::new();
        finder.find(text, &mut found);
        if found.is_empty() {
            return false;
        }
        let mut last = 0;
        for (start, end) in found {
            out.extend_from_slice(&text[last..start]);
            out.extend_from_slice(MASK.as_bytes());
            last = end;
        }
        out.extend_from_slice(&text[last..]);
        true
    }

    /// Where to cut `text` near `at` without splitting a secret: `at`, or
    /// the end of a secret that straddles it.
    pub fn safe_cut(&self, text: &[u8], at: usize) -> usize {
        let Some(finder) = &self.finder else {
            return at;
        };
        let from = at.saturating_sub(self.longest);
        let to = (at + self.longest).min(text.len());
        let mut found = Vec::new();
        finder.find(&text[from..to], &mut found);
        found
            .into_iter()
            .map(|(s, e)| (from + s, from + e))
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
    fn many_secrets_across_groups_mask_with_overlaps_merged() {
        let secrets: Vec<String> = (0..150).map(|i| format!("tok{i:03}x")).collect();
        let m = Masker::new(secrets.iter().map(String::as_str));
        for s in &secrets {
            assert_eq!(m.mask_str(&format!("a {s} b")), "a ****** b", "{s}");
        }
        // Overlapping secrets become one mask, whichever group they are in.
        let m = Masker::new(
            ["abcdef", "defghi"]
                .into_iter()
                .chain(secrets.iter().map(String::as_str)),
        );
        assert_eq!(m.mask_str("xx abcdefghi yy"), "xx ****** yy");
        let m = Masker::new(["abcdef", "defghi"]);
        assert_eq!(m.mask_str("xx abcdefghi yy"), "xx ****** yy");
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

//! Secret masking: every secret and its encoded forms in one search pass.

use std::borrow::Cow;

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use super::encode;

/// What a masked secret is replaced by (Drone's mask).
pub const MASK: &str = "******";

/// Secrets per packed (SIMD) searcher: the size its heuristics accept.
const PACKED_GROUP: usize = 64;

/// Bytes of the windows the sampled filter hashes (one `u32` load).
const GRAM: usize = 4;

/// Shortest part the sampled filter takes; shorter ones go to the packed
/// searchers. Its stride is its shortest part's length minus `GRAM - 1`: at
/// 8 bytes it reads a window every 5 bytes (at 16, every 13), which keeps it
/// well ahead of the rest of the log path.
const SAMPLED_MIN: usize = 8;

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
/// Each secret's encoded forms are parts too: its base64 (standard and
/// URL-safe, padded or not, the lines of GNU `base64`'s 76-column wrapping,
/// and the stable middle of its encoding inside a longer base64 text), its
/// percent-encodings (as URL query and component escaping print them, upper-
/// and lowercase hex) and its JSON string escapings. Base64 forms shorter
/// than 8 characters are not masked: they would match inside unrelated
/// base64 text.
///
/// The search is one pass over the text for all parts of 8 bytes or more,
/// plain or encoded, whatever their number: a sampled filter (see `Sampled`)
/// reads a 4-byte window every few bytes and an Aho-Corasick automaton over
/// those parts looks only around the windows it lets through. Each secret
/// brings several forms, so 100 secrets make hundreds of parts: SIMD packed
/// searchers (Teddy), which take 64 parts each and scan every byte, would
/// need a pass per 64 (the log path then took 4.9 times as long with 100
/// secrets as with none; see docs/benchmarks.md). Shorter parts, which are few, still go to packed
/// searchers (an automaton where the CPU lacks SIMD), one per 64. Overlapping
/// matches (one secret inside another, or two that overlap) are merged and
/// masked as one.
#[derive(Debug, Clone)]
pub struct Masker {
    search: Option<Search>,
    longest: usize,
}

/// The searchers of a masker's parts: together they find each part
/// wherever it occurs.
#[derive(Debug, Clone)]
struct Search {
    direct: Option<Finder>,
    sampled: Option<Sampled>,
}

impl Search {
    fn new(parts: &[&str], longest: usize) -> Option<Self> {
        let (long, short): (Vec<&str>, Vec<&str>) =
            parts.iter().partition(|p| p.len() >= SAMPLED_MIN);
        match Sampled::new(&long, longest) {
            Some(sampled) => Some(Self {
                direct: if short.is_empty() {
                    None
                } else {
                    Some(Finder::new(&short)?)
                },
                sampled: Some(sampled),
            }),
            // No long parts (or an automaton that could not be built): the
            // packed searchers take everything.
            None => Some(Self {
                direct: Some(Finder::new(parts)?),
                sampled: None,
            }),
        }
    }

    /// Every part in `text` as `(start, end)`, sorted, overlaps merged.
    fn find(&self, text: &[u8], out: &mut Vec<(usize, usize)>) {
        out.clear();
        if let Some(direct) = &self.direct {
            direct.find(text, out);
        }
        if let Some(sampled) = &self.sampled {
            sampled.find(text, out);
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

    /// Appends every part in `text` as `(start, end)`, unsorted.
    ///
    /// After each match the search resumes one byte past its start, not at
    /// its end, so that a part overlapping another is found too (and its
    /// tail cannot show past the first one's mask).
    fn find(&self, text: &[u8], out: &mut Vec<(usize, usize)>) {
        match self {
            Self::Automaton(ac) => find_all(ac, text, 0..text.len(), out),
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
    }
}

/// Appends every match of `ac` inside `range` of `text`, resuming one byte
/// past each match's start (see [`Finder::find`]).
fn find_all(
    ac: &AhoCorasick,
    text: &[u8],
    range: std::ops::Range<usize>,
    out: &mut Vec<(usize, usize)>,
) {
    let mut pos = range.start;
    while let Some(m) = ac.find(aho_corasick::Input::new(text).range(pos..range.end)) {
        out.push((m.start(), m.end()));
        pos = m.start() + 1;
    }
}

/// A filter over many parts of at least `stride + GRAM - 1` bytes that
/// reads one `GRAM`-byte window every `stride` bytes, and an automaton that
/// looks for the parts only around the windows the filter lets through.
///
/// Why it finds everything: a part of `len >= stride + GRAM - 1` bytes
/// occurring at `s` contains the window at the first multiple `j` of
/// `stride` at or after `s` (`j < s + stride`, so `j + GRAM <= s + len`),
/// and that window is one of the part's windows at offsets `0..stride`. The
/// filter holds a bit for each of those windows (by hash), so the window at
/// `j` passes; the automaton then searches `j - (stride - 1) .. j + longest`,
/// which holds every part starting at `s` in `j - (stride - 1) ..= j`.
///
/// Why it is fast: the pass is one load, a multiply and a bit test per
/// `stride` bytes (5 or more), the same for 1 part or 10,000, where a packed
/// searcher scans every byte for its 64 parts. The bit table is sized
/// to about 64 bits per window, so random text passes about one window in 64
/// (log text passes fewer: secrets and their encodings rarely share 4-byte
/// runs with it), and the automaton reads only around those.
#[derive(Debug, Clone)]
struct Sampled {
    bits: Box<[u64]>,
    /// `32 - log2(bits in the table)`: a hash's top bits index the table.
    shift: u32,
    stride: usize,
    longest: usize,
    verify: AhoCorasick,
}

impl Sampled {
    fn new(parts: &[&str], longest: usize) -> Option<Self> {
        let shortest = parts.iter().map(|p| p.len()).min()?;
        let stride = shortest.checked_sub(GRAM - 1)?.max(1);
        let windows = parts.len().saturating_mul(stride);
        // Between 4 KiB and 512 KiB of table (2^15 to 2^22 bits): small
        // enough to stay in the L2 cache.
        let log2 = windows
            .saturating_mul(64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(15, 22);
        let shift = 32 - log2;
        let mut bits = vec![0u64; 1 << (log2 - 6)].into_boxed_slice();
        for part in parts {
            for window in part.as_bytes().windows(GRAM).take(stride) {
                let h = hash(window, shift);
                bits[h >> 6] |= 1 << (h & 63);
            }
        }
        // The automaton reads short ranges only, so a contiguous NFA: its
        // memory is a few bytes per pattern byte, where a DFA's is a table
        // row per state (megabytes for 100 secrets' forms, or for one
        // encoded key). No prefilter: its set-up per search would cost more
        // than it saves on a range.
        let verify = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .prefilter(false)
            .build(parts)
            .ok()?;
        Some(Self {
            bits,
            shift,
            stride,
            longest,
            verify,
        })
    }

    /// Appends every part in `text` as `(start, end)`.
    fn find(&self, text: &[u8], out: &mut Vec<(usize, usize)>) {
        // Consecutive passing windows' search ranges overlap: they are
        // merged and searched once.
        let mut pending: Option<(usize, usize)> = None;
        let mut j = 0;
        while let Some(window) = text.get(j..j + GRAM) {
            let h = hash(window, self.shift);
            if self.bits[h >> 6] & (1 << (h & 63)) != 0 {
                let from = j.saturating_sub(self.stride - 1);
                let to = (j + self.longest).min(text.len());
                pending = match pending {
                    Some((start, end)) if from <= end => Some((start, to)),
                    Some((start, end)) => {
                        find_all(&self.verify, text, start..end, out);
                        Some((from, to))
                    }
                    None => Some((from, to)),
                };
            }
            j += self.stride;
        }
        if let Some((start, end)) = pending {
            find_all(&self.verify, text, start..end, out);
        }
    }
}

/// A `GRAM`-byte window's index in a table of `2^(32 - shift)` bits
/// (Fibonacci hashing: the product's top bits depend on every input bit).
#[inline]
fn hash(window: &[u8], shift: u32) -> usize {
    let mut word = [0u8; GRAM];
    word.copy_from_slice(window);
    (u32::from_le_bytes(word).wrapping_mul(0x9E37_79B1) >> shift) as usize
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
        let search = if parts.is_empty() {
            None
        } else {
            Search::new(&parts, longest)
        };
        Self { search, longest }
    }

    /// True when there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.search.is_none()
    }

    /// Length in bytes of the longest secret part.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Masks `text` into `out` (cleared first). Returns false, leaving `out`
    /// empty, when `text` holds no secret: the caller then uses `text` as is.
    pub fn mask_into(&self, text: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let Some(search) = &self.search else {
            return false;
        };
        let mut found = Vec::new();
        search.find(text, &mut found);
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
        let Some(search) = &self.search else {
            return at;
        };
        let from = at.saturating_sub(self.longest);
        let to = (at + self.longest).min(text.len());
        let mut found = Vec::new();
        search.find(&text[from..to], &mut found);
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
    /// Every occurrence of every part, overlaps merged: what `Search::find`
    /// must return, by brute force.
    fn naive(parts: &[&str], text: &[u8]) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = parts
            .iter()
            .flat_map(|p| {
                let p = p.as_bytes();
                (0..text.len())
                    .filter(move |&i| text[i..].starts_with(p))
                    .map(move |i| (i, i + p.len()))
            })
            .collect();
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (s, e) in found {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }

    #[test]
    fn the_sampled_filter_takes_long_parts_and_packed_searchers_short_ones() {
        let search = Search::new(&["abcdefgh", "abc"], 8).expect("builds");
        assert!(search.sampled.is_some() && search.direct.is_some());
        let search = Search::new(&["abc"], 3).expect("builds");
        assert!(search.sampled.is_none());
        // A part at every offset from the filter's grid, at the text's ends
        // too.
        let part = "0123456789abcdef";
        let m = Masker::new([part]);
        for pad in 0..20 {
            let text = format!("{}{part}{}", "x".repeat(pad), "y".repeat(pad));
            assert_eq!(
                m.mask_str(&text),
                format!("{}{MASK}{}", "x".repeat(pad), "y".repeat(pad))
            );
        }
    }

    #[test]
    fn a_hundred_secrets_mask_every_form() {
        use base64::Engine;
        let secrets: Vec<String> = (0..100).map(|i| format!("s3cr3t/{i:03}?x")).collect();
        let m = Masker::new(secrets.iter().map(String::as_str));
        for s in &secrets {
            let b64 = base64::engine::general_purpose::STANDARD.encode(s);
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            let percent = s.replace('/', "%2F").replace('?', "%3F");
            for form in [s.as_str(), &b64, &url, &percent] {
                assert_eq!(m.mask_str(&format!("a {form} b")), "a ****** b", "{form}");
            }
        }
    }

    proptest::proptest! {
        /// The sampled filter and the packed searchers together find
        /// exactly what a brute-force search finds, on text dense with
        /// near-misses (a two-letter alphabet), with many parts or few.
        #[test]
        fn search_finds_what_brute_force_finds(
            parts in proptest::collection::vec("[ab]{2,14}", 1..80),
            text in "[ab\n]{0,300}",
        ) {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let longest = parts.iter().map(|p| p.len()).max().unwrap_or(0);
            let search = Search::new(&parts, longest).expect("builds");
            let mut found = Vec::new();
            search.find(text.as_bytes(), &mut found);
            proptest::prop_assert_eq!(found, naive(&parts, text.as_bytes()));
        }

        /// The same where most windows do not pass the filter: parts from
        /// eight letters, copied into random text at every offset from the
        /// filter's grid.
        #[test]
        fn sparse_hits_find_what_brute_force_finds(
            parts in proptest::collection::vec("[a-h]{2,20}", 1..40),
            pieces in proptest::collection::vec(
                ("[a-h\n]{0,9}", proptest::sample::select((0..40usize).collect::<Vec<_>>())),
                0..30,
            ),
        ) {
            let mut text = String::new();
            for (filler, index) in &pieces {
                text.push_str(filler);
                text.push_str(&parts[index % parts.len()]);
            }
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let longest = parts.iter().map(|p| p.len()).max().unwrap_or(0);
            let search = Search::new(&parts, longest).expect("builds");
            let mut found = Vec::new();
            search.find(text.as_bytes(), &mut found);
            proptest::prop_assert_eq!(found, naive(&parts, text.as_bytes()));
        }
    }
}

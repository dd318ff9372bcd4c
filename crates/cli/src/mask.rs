//! Hides secret values in everything the CLI prints itself.
//!
//! Step logs reach the CLI already masked by the runtime; this covers the
//! rest: error messages, a step's or the stage's error, the JSON result.

use std::borrow::Cow;

/// Drone's mask, the same the runtime puts in logs.
pub const MASK: &str = "******";

/// Replaces every known secret value in a text by [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so a secret that contains another is hidden whole.
    values: Vec<String>,
}

impl Masker {
    /// A masker for `values`. Each line of a multi-line value is masked on
    /// its own too (a line of a secret can show up alone); empty values and
    /// blank lines are skipped, since they would mask everything.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut all = Vec::new();
        for value in values {
            let value = value.as_ref();
            if value.trim().is_empty() {
                continue;
            }
            all.push(value.to_owned());
            if value.contains('\n') {
                all.extend(
                    value
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_owned),
                );
            }
        }
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Self { values: all }
    }

    /// `text` with every secret value replaced.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), MASK));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_value_longest_first() {
        let m = Masker::new(["abc", "abcdef", ""]);
        assert_eq!(m.mask("x abcdef y abc z"), "x ****** y ****** z");
        assert_eq!(m.mask("nothing here"), "nothing here");
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn masks_lines_of_multi_line_values() {
        let m = Masker::new(["line-one\nline-two\n"]);
        assert_eq!(m.mask("got line-two only"), "got ****** only");
        assert_eq!(m.mask("line-one\nline-two\n!"), "******!");
    }

    #[test]
    fn blank_values_mask_nothing() {
        let m = Masker::new([" ", "\n"]);
        assert_eq!(m.mask("a b\nc"), "a b\nc");
    }
}

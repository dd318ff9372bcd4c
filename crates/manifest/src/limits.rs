//! How much of a pipeline file runnerkit reads before refusing it.
//!
//! Anyone who can change `.drone.yml` in a pull request chooses what the
//! runner parses, so the parse has bounds: the file's size, its number of
//! documents, the steps of a pipeline, how deep the YAML nests and how many
//! nodes a document has. Within them parsing costs time and memory linear in
//! the file's size; past one, [`crate::Manifest::parse`] refuses the file
//! with a [`LimitError`] naming the limit, what was found and where.

use std::fmt;

/// The bounds [`crate::Manifest::parse`] holds a file to
/// ([`crate::Manifest::parse_with`] takes others).
///
/// The defaults are far above any real pipeline file (the largest public
/// `.drone.yml` files are a few hundred kilobytes, with tens of documents)
/// and low enough that a hostile one cannot exhaust a runner's memory.
/// Change some and keep the rest:
///
/// ```
/// use runnerkit_manifest::{Manifest, ParseLimits};
///
/// let limits = ParseLimits { max_documents: 2, ..ParseLimits::default() };
/// let err = Manifest::parse_with("kind: a\n---\nkind: b\n---\nkind: c\n", &limits).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "the file has 3 documents; at most 2 are accepted (document 3 at line 4)"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Size of the file in bytes (after `${...}` substitution, and before
    /// it in [`crate::assemble`]). Default 4 MiB.
    pub max_file_bytes: usize,
    /// Documents (`---`-separated, blank ones not counted). Default 1,000.
    pub max_documents: usize,
    /// Steps of one pipeline, services included. Default 1,000.
    pub max_steps: usize,
    /// Nesting of maps and lists in one document, the document's own map
    /// counting as 1 (a step's `settings` map is at 4). Default 64.
    pub max_depth: usize,
    /// YAML nodes (each key, value and list item, aliases expanded) of one
    /// document. Default 250,000.
    pub max_nodes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 * 1024 * 1024,
            max_documents: 1_000,
            max_steps: 1_000,
            max_depth: 64,
            max_nodes: 250_000,
        }
    }
}

impl ParseLimits {
    /// Refuses a text longer than [`Self::max_file_bytes`].
    ///
    /// # Errors
    /// [`LimitError`] for [`Limit::FileBytes`].
    pub fn check_size(&self, text: &str) -> Result<(), LimitError> {
        if text.len() <= self.max_file_bytes {
            return Ok(());
        }
        Err(LimitError {
            limit: Limit::FileBytes,
            max: self.max_file_bytes,
            found: text.len(),
            document: 0,
            pipeline: None,
            line: 0,
            column: 0,
        })
    }

    /// The value of `limit` in these limits.
    pub fn get(&self, limit: Limit) -> usize {
        match limit {
            Limit::FileBytes => self.max_file_bytes,
            Limit::Documents => self.max_documents,
            Limit::Steps => self.max_steps,
            Limit::Depth => self.max_depth,
            Limit::Nodes => self.max_nodes,
        }
    }
}

/// One of the bounds of [`ParseLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`ParseLimits::max_file_bytes`].
    FileBytes,
    /// [`ParseLimits::max_documents`].
    Documents,
    /// [`ParseLimits::max_steps`].
    Steps,
    /// [`ParseLimits::max_depth`].
    Depth,
    /// [`ParseLimits::max_nodes`].
    Nodes,
}

/// A file went past one of its [`ParseLimits`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct LimitError {
    /// Which limit.
    pub limit: Limit,
    /// Its value.
    pub max: usize,
    /// What the file has: bytes, documents, or steps and services of the
    /// pipeline. For [`Limit::Depth`] and [`Limit::Nodes`] the YAML reader
    /// stops at the first level or node past the limit, so this is
    /// `max + 1` ("more than `max`").
    pub found: usize,
    /// The 1-based document it is in (for [`Limit::Documents`], the first
    /// one past the limit); 0 for the file's size.
    pub document: usize,
    /// The pipeline, by its display name, for [`Limit::Steps`].
    pub pipeline: Option<String>,
    /// 1-based line in the file of the first thing past the limit (the
    /// document, step, level or node); for [`Limit::Steps`] and
    /// [`Limit::Documents`] 0 only when unknown; 0 for the file's size.
    pub line: u64,
    /// 1-based column of it, 0 when unknown.
    pub column: u64,
}

impl LimitError {
    fn render(&self) -> String {
        let max = thousands(self.max);
        let at = match (self.line, self.column) {
            (0, _) => String::new(),
            (line, 0) => format!(" at line {}", thousands_u64(line)),
            (line, column) => format!(" at line {}, column {column}", thousands_u64(line)),
        };
        match self.limit {
            Limit::FileBytes => format!(
                "the file is {} bytes; at most {max} bytes{} are accepted",
                thousands(self.found),
                human_bytes(self.max).map_or_else(String::new, |unit| format!(" ({unit})"))
            ),
            Limit::Documents => format!(
                "the file has {} documents; at most {max} are accepted (document {}{at})",
                thousands(self.found),
                thousands(self.document)
            ),
            Limit::Steps => format!(
                "pipeline {:?} (document {}) has {} steps and services; at most {max} are accepted (the {}{at})",
                self.pipeline.as_deref().unwrap_or("default"),
                thousands(self.document),
                thousands(self.found),
                ordinal(self.max.saturating_add(1)),
            ),
            Limit::Depth => format!(
                "document {}: the YAML nests more than {max} levels deep{at}; at most {max} levels of maps and lists are accepted",
                thousands(self.document),
            ),
            Limit::Nodes => format!(
                "document {}: the document has more than {max} YAML nodes (keys, values and list items, aliases expanded), the one past the limit{at}; at most {max} are accepted",
                thousands(self.document),
            ),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::FileBytes => "max_file_bytes",
            Limit::Documents => "max_documents",
            Limit::Steps => "max_steps",
            Limit::Depth => "max_depth",
            Limit::Nodes => "max_nodes",
        })
    }
}

/// `1234567` as `1,234,567`: limits are read by people.
pub(crate) fn thousands(n: usize) -> String {
    thousands_u64(u64::try_from(n).unwrap_or(u64::MAX))
}

fn thousands_u64(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1,001st`, `1,002nd`, `1,003rd`, `1,011th`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{}{suffix}", thousands(n))
}

/// `4 MiB`, `512 KiB`: the unit a limit was likely set in; `None` for a
/// number of bytes that is neither.
fn human_bytes(n: usize) -> Option<String> {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        Some(format!("{} MiB", n / MIB))
    } else if n >= KIB && n.is_multiple_of(KIB) {
        Some(format!("{} KiB", n / KIB))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(4_194_304), "4,194,304");
        assert_eq!(ordinal(1_001), "1,001st");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(113), "113th");
        assert_eq!(human_bytes(4 * 1024 * 1024).as_deref(), Some("4 MiB"));
        assert_eq!(human_bytes(512 * 1024).as_deref(), Some("512 KiB"));
        assert_eq!(human_bytes(1_000), None);
    }

    #[test]
    fn the_file_size_is_checked_in_bytes() {
        let limits = ParseLimits {
            max_file_bytes: 10,
            ..ParseLimits::default()
        };
        assert!(limits.check_size("0123456789").is_ok());
        let err = limits.check_size("0123456789a").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the file is 11 bytes; at most 10 bytes are accepted"
        );
        assert_eq!(limits.get(err.limit), 10);
        assert_eq!(err.limit.to_string(), "max_file_bytes");
    }
}

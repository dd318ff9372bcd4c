//! The only door to the YAML crate (`serde-saphyr`): splitting a stream into
//! documents, deserializing one document into a typed value, and turning the
//! crate's errors into [`YamlError`] (path, line, column, plain message).
//!
//! Everything else in runnerkit-manifest sees plain serde and the two
//! wrappers defined here, [`Located`] and [`Verbatim`], so the YAML crate can
//! be swapped by rewriting this file alone. See `docs/yaml.md` for why
//! serde-saphyr.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_saphyr::budget::BudgetBreach;

use crate::limits::{Limit, ParseLimits, thousands};

/// A YAML document that failed to parse or did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct YamlError {
    /// Where in the document the problem is, e.g. `steps[2].depends_on`;
    /// empty for syntax errors and problems at the document root.
    pub path: String,
    /// What went wrong, e.g. `expected a list of step names, found a map`.
    pub message: String,
    /// 1-based line in the whole file, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// The limit of [`ParseLimits`] the document went past, when that is
    /// the problem ([`Limit::Depth`] or [`Limit::Nodes`]);
    /// [`crate::Manifest::parse`] reports it as [`crate::ParseError::Limit`].
    pub limit: Option<Limit>,
}

impl YamlError {
    fn render(&self) -> String {
        let mut out = String::new();
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if self.line > 0 {
            out.push_str(&format!(" at line {}, column {}", self.line, self.column));
        }
        out
    }
}

/// One document of a multi-document stream, ready to deserialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocumentText {
    /// The document's text alone. The YAML crate counts lines from its
    /// start; every line this module hands out is moved down by
    /// `first_line - 1`, so it is the line the user sees in the file.
    /// (Padding the text with that many newlines instead made parsing a
    /// file quadratic in its number of documents.) Shared, because the
    /// thread-local source of [`Verbatim`] holds it for each parse.
    text: Arc<str>,
    /// 1-based line of the document's first line in the file.
    pub(crate) first_line: u64,
    /// What the YAML crate may read of it before refusing it.
    budget: DocumentBudget,
}

/// The per-document bounds of [`crate::ParseLimits`], which the YAML crate
/// enforces while it reads (so a deep nesting is refused before anything
/// recurses into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DocumentBudget {
    /// [`crate::ParseLimits::max_depth`].
    pub(crate) max_depth: usize,
    /// [`crate::ParseLimits::max_nodes`].
    pub(crate) max_nodes: usize,
}

impl From<&ParseLimits> for DocumentBudget {
    fn from(limits: &ParseLimits) -> Self {
        Self {
            max_depth: limits.max_depth,
            max_nodes: limits.max_nodes,
        }
    }
}

impl Default for DocumentBudget {
    fn default() -> Self {
        Self::from(&ParseLimits::default())
    }
}

/// Where one document of a stream is: a byte range of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DocumentSpan {
    /// Byte offset of its first line (its `---` marker, when it has one).
    pub(crate) start: usize,
    /// Byte offset just past its last line.
    pub(crate) end: usize,
    /// 1-based line of its first line in the file.
    pub(crate) first_line: u64,
}

impl DocumentSpan {
    /// The document's text, copied out of `text` (the file it was found in).
    pub(crate) fn document(&self, text: &str, budget: DocumentBudget) -> DocumentText {
        DocumentText::new(
            text.get(self.start..self.end).unwrap_or_default(),
            self.first_line,
            budget,
        )
    }
}

/// Splits a stream into documents at YAML document markers.
///
/// A line that is `---` (alone or followed by a space or tab) starts a new
/// document; a line that is `...` ends the input, as in Drone. Unlike Drone's
/// splitter, a line that merely *starts* with `---` (`---foo`) is content:
/// YAML forbids neither marker inside a scalar at column 0, so this split is
/// exact. Documents holding only blanks and comments are dropped.
///
/// Nothing is copied: the documents are found one at a time, so a caller
/// can stop (or merely count) past a limit.
pub(crate) fn document_spans(text: &str) -> DocumentSpans<'_> {
    DocumentSpans {
        text,
        pos: 0,
        lines: 0,
        done: false,
    }
}

/// The documents of a stream, as [`document_spans`] finds them.
pub(crate) struct DocumentSpans<'a> {
    text: &'a str,
    /// Byte offset of the next line to read.
    pos: usize,
    /// Lines read so far.
    lines: u64,
    /// An end marker or the end of the text was reached.
    done: bool,
}

impl Iterator for DocumentSpans<'_> {
    type Item = DocumentSpan;

    fn next(&mut self) -> Option<DocumentSpan> {
        let mut start = self.pos;
        let mut first_line = self.lines + 1;
        let mut has_content = false;
        while !self.done {
            let rest = self.text.get(self.pos..).unwrap_or_default();
            if rest.is_empty() {
                self.done = true;
                break;
            }
            let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
            let bare = rest[..len].trim_end_matches(['\n', '\r']);
            if is_marker(bare, "...") {
                self.done = true;
                break;
            }
            if is_marker(bare, "---") {
                if has_content {
                    // The marker is the next document's first line.
                    return Some(DocumentSpan {
                        start,
                        end: self.pos,
                        first_line,
                    });
                }
                start = self.pos;
                first_line = self.lines + 1;
                // The marker stays in the document: `--- !tag` or `--- |` carry content.
                if !bare.trim_start_matches('-').trim().is_empty() {
                    has_content = true;
                }
            } else {
                let trimmed = bare.trim();
                if !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('%') {
                    has_content = true;
                }
            }
            self.pos += len;
            self.lines += 1;
        }
        has_content.then_some(DocumentSpan {
            start,
            end: self.pos,
            first_line,
        })
    }
}

/// Every document of a stream (see [`document_spans`]).
#[cfg(test)]
pub(crate) fn split_documents(text: &str, budget: DocumentBudget) -> Vec<DocumentText> {
    document_spans(text)
        .map(|span| span.document(text, budget))
        .collect()
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

thread_local! {
    /// The document being deserialized on this thread, so [`Verbatim`] can
    /// copy a scalar's spelling out of it and [`Located`] can give lines in
    /// the file. Set only for the duration of [`DocumentText::parse`];
    /// deserialization is synchronous, so the value never outlives the call
    /// that set it.
    static SOURCE: RefCell<Option<Source>> = const { RefCell::new(None) };
}

struct Source {
    text: Arc<str>,
    /// Lines before the document in the file.
    line_offset: u64,
}

struct SourceGuard;

impl SourceGuard {
    fn set(doc: &DocumentText) -> Self {
        SOURCE.with(|s| {
            *s.borrow_mut() = Some(Source {
                text: Arc::clone(&doc.text),
                line_offset: doc.line_offset(),
            });
        });
        SourceGuard
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        SOURCE.with(|s| *s.borrow_mut() = None);
    }
}

fn source_slice(offset: u64, len: u64) -> Option<String> {
    SOURCE.with(|s| {
        let s = s.borrow();
        let text = &s.as_ref()?.text;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        text.get(start..end).map(str::to_owned)
    })
}

/// A line the YAML crate reports in the document being parsed, as a line of
/// the file (0, unknown, stays 0). Outside a parse of this module the
/// document is the whole text.
fn file_line(line: u64) -> u64 {
    if line == 0 {
        return 0;
    }
    let offset = SOURCE.with(|s| s.borrow().as_ref().map_or(0, |s| s.line_offset));
    line.saturating_add(offset)
}

fn options(budget: DocumentBudget) -> serde_saphyr::Options {
    options_with(serde_saphyr::DuplicateKeyPolicy::Error, budget)
}

fn options_with(
    duplicate_keys: serde_saphyr::DuplicateKeyPolicy,
    budget: DocumentBudget,
) -> serde_saphyr::Options {
    serde_saphyr::options! {
        duplicate_keys: duplicate_keys,
        // Drone's Go parser turns a null into an empty string.
        null_as_string: true,
        // We render our own message; the snippet would repeat the source.
        with_snippet: false,
        // Many steps merging one anchor (`<<: *defaults` x 200) is normal in
        // pipelines; the default alias/anchor ratio heuristic refuses it.
        // Alias bombs stay bounded by the absolute caps (aliases, replayed
        // events, expansions per anchor).
        budget: serde_saphyr::budget! {
            enforce_alias_anchor_ratio: false,
            max_depth: budget.max_depth,
            // The parser's own cap on `[[[...` (255) would otherwise answer
            // first, with a message that names no limit of ours.
            flow_nesting_limit: budget.max_depth.saturating_add(1),
            max_nodes: budget.max_nodes,
        },
    }
}

impl DocumentText {
    /// A document whose first line is line `first_line` of its file.
    pub(crate) fn new(text: &str, first_line: u64, budget: DocumentBudget) -> Self {
        Self {
            text: Arc::from(text),
            first_line: first_line.max(1),
            budget,
        }
    }

    /// Lines before the document in the file.
    fn line_offset(&self) -> u64 {
        self.first_line - 1
    }

    /// The document's text (its lines start at [`Self::first_line`]).
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The document's top-level `kind`, read without parsing when it is
    /// written the usual way: one `kind: value` line at column 0 with a plain
    /// or quoted scalar. `None` when not sure (the caller then parses).
    ///
    /// Parsing a document twice (once for `kind`, once typed) is most of the
    /// parse time of a large pipeline; this skips the first pass.
    pub(crate) fn kind_hint(&self) -> Option<String> {
        let mut found = None;
        for line in self.text.lines() {
            let Some(rest) = line.strip_prefix("kind:") else {
                continue;
            };
            if found.is_some() {
                return None; // a duplicate key: let the parser report it
            }
            let value = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            }
            .trim();
            let value = match value.as_bytes() {
                [b'"', .., b'"'] | [b'\'', .., b'\''] if value.len() >= 2 => {
                    &value[1..value.len() - 1]
                }
                _ => value,
            };
            let plain = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !plain {
                return None;
            }
            found = Some(value.to_owned());
        }
        found
    }

    /// Deserializes the document into `T`; a duplicate key is an error.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, YamlError> {
        self.parse_with(options(self.budget))
    }

    /// Deserializes the document into `T` the way Drone's Go parser does: a
    /// duplicate key is not an error, the last one wins. The first duplicate
    /// found is returned beside the value so the caller can warn about it.
    pub(crate) fn parse_lenient<T: DeserializeOwned>(
        &self,
    ) -> Result<(T, Option<YamlError>), YamlError> {
        match self.parse_with(options(self.budget)) {
            Ok(value) => Ok((value, None)),
            Err(err) if err.message.starts_with("duplicate mapping key") => {
                let value = self.parse_with(options_with(
                    serde_saphyr::DuplicateKeyPolicy::LastWins,
                    self.budget,
                ))?;
                Ok((value, Some(err)))
            }
            Err(err) => Err(err),
        }
    }

    fn parse_with<T: DeserializeOwned>(
        &self,
        options: serde_saphyr::Options,
    ) -> Result<T, YamlError> {
        let _guard = SourceGuard::set(self);
        let mut path = String::new();
        let result =
            serde_saphyr::with_deserializer_from_str_with_options(&self.text, options, |de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    path = e.path().to_string();
                    e.into_inner()
                })
            });
        result.map_err(|e| {
            let mut err = convert_error(&e, path, self.budget);
            if err.line > 0 {
                err.line += self.line_offset();
            }
            self.explain(err)
        })
    }

    /// Adds the likely cause to an error where one is known: a `commands`
    /// item that YAML read as a map, which an unquoted `: ` in a command
    /// (`- echo key: value`) does. The message then names the step and says
    /// to quote the command.
    fn explain(&self, mut err: YamlError) -> YamlError {
        let Some(step_path) = command_item_step(&err.path) else {
            return err;
        };
        // The typed parse only knows a string was expected; reading the
        // document again untyped tells whether the item is a map.
        let untyped = serde_saphyr::from_str_with_options::<serde_json::Value>(
            &self.text,
            options_with(serde_saphyr::DuplicateKeyPolicy::LastWins, self.budget),
        );
        let Ok(doc) = untyped else { return err };
        if !lookup(&doc, &err.path).is_some_and(serde_json::Value::is_object) {
            return err;
        }
        let step = lookup(&doc, step_path)
            .and_then(|step| step.get("name"))
            .and_then(serde_json::Value::as_str)
            .filter(|name| !name.is_empty())
            .map_or_else(|| step_path.to_owned(), |name| format!("step {name:?}"));
        err.message = format!(
            "{}: in {step}, YAML reads the unquoted \": \" of this command as a key; quote the command",
            err.message
        );
        if let Some(quoted) = self.quoted_item(err.line, err.column) {
            err.message.push_str(&format!(": - {quoted}"));
        }
        err
    }

    /// The block sequence item at `line` (of the file), `column` (1-based)
    /// single-quoted, when it is one line of plain text holding `: `; `None`
    /// otherwise.
    fn quoted_item(&self, line: u64, column: u64) -> Option<String> {
        let index = line.checked_sub(self.first_line)?;
        let text = self.text.lines().nth(usize::try_from(index).ok()?)?;
        let column = usize::try_from(column).ok()?.checked_sub(1)?;
        let at = text.char_indices().nth(column).map(|(i, _)| i)?;
        let (before, item) = text.split_at(at);
        // Only a `- item` line: a flow list's item runs up to a `,` or `]`.
        if before.trim() != "-" {
            return None;
        }
        // YAML ends a plain scalar at ` #`: the command as YAML saw it.
        let item = item.split(" #").next()?.trim_end();
        // Single quotes keep backslashes and `$` as written.
        item.contains(": ")
            .then(|| format!("'{}'", item.replace('\'', "''")))
    }
}

/// For the path of a `commands` item (`steps[1].commands[0]`), the path of
/// its step (`steps[1]`).
fn command_item_step(path: &str) -> Option<&str> {
    let (step, item) = path.rsplit_once(".commands[")?;
    let index = item.strip_suffix(']')?;
    (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())).then_some(step)
}

/// The node at an error path (`steps[1].commands[0]`) of an untyped
/// document; `None` when the path does not lead to one.
fn lookup<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut node = doc;
    for part in path.split('.') {
        let (key, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            node = node.get(key)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            node = node.get(index.strip_suffix(']')?.parse::<usize>().ok()?)?;
        }
    }
    Some(node)
}

/// Parses a whole text as one document (used by tests and small helpers).
#[cfg(test)]
pub(crate) fn parse_one<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    DocumentText::new(text, 1, DocumentBudget::default()).parse()
}

/// The crate's error as ours, with the line in the document (the caller
/// moves it to the file's).
fn convert_error(err: &serde_saphyr::Error, path: String, budget: DocumentBudget) -> YamlError {
    use serde_saphyr::Error as E;
    let err = err.without_snippet();
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // `serde_path_to_error` marks unknown positions with `?` and the root with `.`.
    let path = match path.as_str() {
        "." => String::new(),
        // `Located` wraps list items in a struct whose field is `value`.
        p => p.trim_end_matches(".?").replace("].value", "]"),
    };
    let mut limit = None;
    let message = match err {
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!(
            "expected {expected}, found {}",
            describe_unexpected(unexpected)
        ),
        E::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
        E::Unexpected { expected, .. } => {
            format!("expected {}", describe_expected(expected))
        }
        E::NullIntoString { .. } => "expected a string, found nothing (null)".to_owned(),
        E::DuplicateMappingKey { key, .. } => match key {
            Some(key) => format!("duplicate mapping key `{key}`"),
            None => "duplicate mapping key".to_owned(),
        },
        E::Budget { breach, .. } => {
            let (message, hit) = describe_breach(breach, budget);
            limit = hit;
            message
        }
        // The scanner's own caps on nesting (set just past ours in
        // `options_with`) answer before the budget where the scanner reads
        // ahead, as it does through `[[[...`, which could be a key. The
        // crate has no variant for it; the message is locked by a test.
        E::ExternalMessage { msg, .. } if msg == "recursion limit exceeded" => {
            let (message, hit) = describe_breach(&BudgetBreach::Depth { depth: 0 }, budget);
            limit = hit;
            message
        }
        other => strip_location(&other.to_string()),
    };
    YamlError {
        path,
        message,
        line,
        column,
        limit,
    }
}

/// What a budget breach means, in words, and the limit of
/// [`ParseLimits`] it is when it is one. (The crate's own text is
/// `budget breached: Nodes { nodes: 250001 }`.) The other caps are the
/// crate's defaults, which only a hostile file reaches.
fn describe_breach(breach: &BudgetBreach, budget: DocumentBudget) -> (String, Option<Limit>) {
    let caps = serde_saphyr::Budget::default();
    let more_than = |what: &str, max: usize| {
        format!(
            "the document has more than {} {what}; at most {} are accepted",
            thousands(max),
            thousands(max)
        )
    };
    match breach {
        BudgetBreach::Depth { .. } => (
            format!(
                "the YAML nests more than {} levels deep; at most {} levels of maps and lists are accepted",
                budget.max_depth, budget.max_depth
            ),
            Some(Limit::Depth),
        ),
        BudgetBreach::Nodes { .. } => (
            more_than(
                "YAML nodes (keys, values and list items, aliases expanded)",
                budget.max_nodes,
            ),
            Some(Limit::Nodes),
        ),
        BudgetBreach::Events { .. } => (more_than("YAML events", caps.max_events), None),
        BudgetBreach::Aliases { .. } => (more_than("aliases (`*name`)", caps.max_aliases), None),
        BudgetBreach::Anchors { .. } => (more_than("anchors (`&name`)", caps.max_anchors), None),
        BudgetBreach::MergeKeys { .. } => {
            (more_than("merge keys (`<<`)", caps.max_merge_keys), None)
        }
        BudgetBreach::ScalarBytes { .. } => (
            more_than("bytes of text in its values", caps.max_total_scalar_bytes),
            None,
        ),
        BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. } => (
            "the document's anchors hold more than the YAML reader keeps for aliases (an alias bomb?)".to_owned(),
            None,
        ),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => (
            format!("the document has {aliases} aliases of {anchors} anchors (an alias bomb?)"),
            None,
        ),
        other => (format!("the document is past a limit of the YAML reader ({other:?})"), None),
    }
}

/// serde-saphyr appends ` at line L, column C` to its messages; we print the
/// location ourselves.
fn strip_location(message: &str) -> String {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    let message = match message.find("line ") {
        Some(0) => message
            .split_once(": ")
            .map(|(_, rest)| rest)
            .unwrap_or(message),
        _ => message,
    };
    message.trim().to_owned()
}

fn describe_unexpected(unexpected: &str) -> String {
    match unexpected {
        "map" => "a map".to_owned(),
        "sequence" => "a list".to_owned(),
        "unit value" => "nothing (null)".to_owned(),
        other => other.replace('`', "").to_owned(),
    }
}

fn describe_expected(expected: &str) -> &str {
    match expected {
        "sequence start" => "a list",
        "mapping start" => "a map",
        "string scalar" => "a string",
        other => other,
    }
}

/// A value with the line and column of the YAML node it came from.
///
/// Lint messages use it to point at a step or volume. For a value reached
/// through an alias or a merge key, the location is where it is *used*.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// 1-based line, 0 when unknown (e.g. a value built in code).
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

impl<T> Located<T> {
    /// A value with no known location.
    pub fn new(value: T) -> Self {
        Self {
            value,
            line: 0,
            column: 0,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(de)?;
        Ok(Self {
            value: spanned.value,
            line: file_line(spanned.referenced.line()),
            column: spanned.referenced.column(),
        })
    }
}

impl<T: serde::Serialize> serde::Serialize for Located<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// A value together with the text it was written as (for scalars).
///
/// Drone keeps `environment` values "as written": `1.10` stays `1.10` and
/// `yes` stays `yes`, where a typed YAML reading would give `1.1` and `true`.
pub(crate) struct Verbatim<T> {
    /// The value as the YAML crate typed it.
    pub(crate) value: T,
    /// The source text of the node where it is a plain scalar.
    pub(crate) text: Option<String>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Verbatim<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(de)?;
        let span = spanned.defined.span();
        let text = match (span.byte_offset(), span.byte_len()) {
            (Some(offset), Some(len)) if len > 0 && len < 4096 => source_slice(offset, len),
            _ => None,
        };
        Ok(Self {
            value: spanned.value,
            text,
        })
    }
}

impl<T: fmt::Debug> fmt::Debug for Verbatim<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verbatim")
            .field("value", &self.value)
            .field("text", &self.text)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    fn parse_one_lenient<T: DeserializeOwned>(
        text: &str,
    ) -> Result<(T, Option<YamlError>), YamlError> {
        DocumentText::new(text, 1, DocumentBudget::default()).parse_lenient()
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Doc {
        kind: String,
        #[serde(default)]
        steps: Vec<Step>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Step {
        name: String,
        #[serde(default)]
        image: String,
        #[serde(default)]
        privileged: bool,
        #[serde(default)]
        depends_on: Vec<String>,
        #[serde(default)]
        environment: BTreeMap<String, String>,
    }

    #[test]
    fn merge_keys_apply_into_structs_and_explicit_keys_win() {
        let text = "kind: pipeline\n\
                    defaults: &defaults\n  image: golang\n  privileged: yes\n  environment: {A: a}\n\
                    steps:\n\
                    - <<: *defaults\n  name: one\n\
                    - <<: *defaults\n  name: two\n  image: rust\n";
        let doc: Doc = parse_one(text).unwrap();
        assert_eq!(doc.steps.len(), 2);
        assert_eq!(doc.steps[0].image, "golang");
        assert!(doc.steps[0].privileged, "yes is a YAML 1.1 boolean");
        assert_eq!(doc.steps[0].environment["A"], "a");
        assert_eq!(doc.steps[1].image, "rust");
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let text = "kind: pipeline\nsteps:\n- name: &n build\n  depends_on: [*n]\n";
        let doc: Doc = parse_one(text).unwrap();
        assert_eq!(doc.steps[0].depends_on, ["build"]);
    }

    #[test]
    fn yaml_1_1_booleans() {
        for (word, want) in [("on", true), ("off", false), ("yes", true), ("no", false)] {
            let text = format!("kind: pipeline\nsteps:\n- name: a\n  privileged: {word}\n");
            let doc: Doc = parse_one(&text).unwrap();
            assert_eq!(doc.steps[0].privileged, want, "{word}");
        }
    }

    #[test]
    fn split_keeps_line_numbers_of_later_documents() {
        let text = "kind: pipeline\nname: a\n---\nkind: pipeline\nname: b\nsteps:\n- name: x\n  privileged: maybe\n";
        let docs = split_documents(text, DocumentBudget::default());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].first_line, 3);
        let err = docs[1].parse::<Doc>().unwrap_err();
        assert_eq!(err.line, 8);
        assert_eq!(err.column, 15);
        assert_eq!(err.path, "steps[0].privileged");
    }

    #[test]
    fn split_ignores_empty_documents_and_stops_at_end_marker() {
        let text = "---\n# only a comment\n---\nkind: a\n--- \nkind: b\n...\nkind: c\n";
        let docs = split_documents(text, DocumentBudget::default());
        assert_eq!(docs.len(), 2);
        let kinds: Vec<String> = docs
            .iter()
            .map(|d| d.parse::<BTreeMap<String, String>>().unwrap()["kind"].clone())
            .collect();
        assert_eq!(kinds, ["a", "b"]);
    }

    #[test]
    fn a_line_starting_with_dashes_is_not_a_marker() {
        let text = "kind: a\nx: |\n  ---\n  y\n";
        assert_eq!(split_documents(text, DocumentBudget::default()).len(), 1);
        assert!(is_marker("---", "---"));
        assert!(is_marker("--- # c", "---"));
        assert!(!is_marker("----", "---"));
        assert!(!is_marker("---foo", "---"));
    }

    #[test]
    fn anchors_do_not_cross_documents() {
        let text = "kind: a\nx: &a 1\n---\nkind: b\ny: *a\n";
        let docs = split_documents(text, DocumentBudget::default());
        let err = docs[1].parse::<BTreeMap<String, String>>().unwrap_err();
        assert_eq!(err.line, 5);
        assert!(err.message.contains("anchor"), "{}", err.message);
    }

    #[test]
    fn type_errors_carry_path_line_and_column() {
        let text = "kind: pipeline\nsteps:\n- name: a\n- name: b\n  depends_on:\n    a: b\n";
        let err = parse_one::<Doc>(text).unwrap_err();
        assert_eq!(err.path, "steps[1].depends_on");
        assert_eq!((err.line, err.column), (6, 5));
        assert_eq!(err.message, "expected a list");
        assert_eq!(
            err.to_string(),
            "steps[1].depends_on: expected a list at line 6, column 5"
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err =
            parse_one::<Doc>("kind: pipeline\nsteps:\n- name: a\n  image: \"x\n").unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.message.contains("unclosed quote"), "{}", err.message);
        assert!(!err.message.contains("line 4"), "{}", err.message);
    }

    #[test]
    fn missing_fields_and_duplicate_keys_are_errors() {
        let err = parse_one::<Doc>("kind: pipeline\nsteps:\n- image: x\n").unwrap_err();
        assert_eq!(err.path, "steps[0]");
        assert_eq!(err.message, "missing field `name`");
        assert_eq!(err.line, 3);
        let err = parse_one::<Doc>("kind: pipeline\nsteps:\n- name: a\n  name: b\n").unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }

    #[test]
    fn hundreds_of_steps_may_merge_one_anchor() {
        let mut text = String::from("kind: pipeline\nx: &c\n  image: alpine\nsteps:\n");
        for i in 0..300 {
            text.push_str(&format!("- <<: *c\n  name: s{i}\n"));
        }
        let doc: Doc = parse_one(&text).unwrap();
        assert_eq!(doc.steps.len(), 300);
        assert_eq!(doc.steps[299].image, "alpine");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h'] {
            let list = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{list}]\n"));
            prev = name;
        }
        let err = parse_one::<BTreeMap<String, serde_json::Value>>(&text).unwrap_err();
        assert!(!err.message.is_empty());
    }

    #[test]
    fn kind_hint_reads_the_usual_forms_and_defers_the_rest() {
        let hint = |t: &str| DocumentText::new(t, 1, DocumentBudget::default()).kind_hint();
        assert_eq!(
            hint("kind: pipeline\nname: a\n").as_deref(),
            Some("pipeline")
        );
        assert_eq!(
            hint("---\nname: a\nkind: \"secret\" # c\n").as_deref(),
            Some("secret")
        );
        assert_eq!(hint("kind: 'signature'\n").as_deref(), Some("signature"));
        assert_eq!(hint("name: a\nsteps:\n- kind: x\n"), None, "not top level");
        assert_eq!(hint("kind: &k pipeline\n"), None);
        assert_eq!(
            hint("kind: a\nkind: b\n"),
            None,
            "duplicates go to the parser"
        );
        assert_eq!(hint("<<: *base\n"), None);
    }

    #[test]
    fn lenient_parse_lets_the_last_duplicate_win_and_reports_it() {
        let text = "kind: pipeline\nsteps:\n- name: a\n  image: one\n  image: two\n";
        let (doc, dup) = parse_one_lenient::<Doc>(text).unwrap();
        assert_eq!(doc.steps[0].image, "two");
        let dup = dup.unwrap();
        assert_eq!(dup.line, 5);
        assert_eq!(dup.message, "duplicate mapping key `image`");
        let (_, none) = parse_one_lenient::<Doc>("kind: x\n").unwrap();
        assert!(none.is_none());
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // read only to fail on `commands`
    struct Scripts {
        steps: Vec<Script>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // read only to fail on `commands`
    struct Script {
        #[serde(default)]
        name: String,
        commands: Vec<String>,
    }

    #[test]
    fn a_command_read_as_a_map_says_to_quote_it_naming_step_and_line() {
        let text = "steps:\n- name: ok\n  commands: [true]\n- name: build\n  commands:\n  - make\n  - echo 'it''s' key: $V # note\n";
        let err = parse_one::<Scripts>(text).unwrap_err();
        assert_eq!(err.path, "steps[1].commands[1]");
        assert_eq!((err.line, err.column), (7, 5));
        assert_eq!(
            err.message,
            r#"expected a string: in step "build", YAML reads the unquoted ": " of this command as a key; quote the command: - 'echo ''it''''s'' key: $V'"#
        );
        // A flow list: the hint without a rewritten line; no name: the path.
        let err = parse_one::<Scripts>("steps:\n- commands: [a: b]\n").unwrap_err();
        assert!(
            err.message.ends_with(
                r#"in steps[0], YAML reads the unquoted ": " of this command as a key; quote the command"#
            ),
            "{}",
            err.message
        );
        // Not a map: no hint.
        let err = parse_one::<Scripts>("steps:\n- name: a\n  commands:\n  - [a]\n").unwrap_err();
        assert!(!err.message.contains("quote"), "{}", err.message);
    }

    #[test]
    fn command_paths_and_lookups() {
        assert_eq!(command_item_step("steps[2].commands[10]"), Some("steps[2]"));
        assert_eq!(
            command_item_step("services[0].commands[1]"),
            Some("services[0]")
        );
        assert_eq!(command_item_step("steps[0].commands"), None);
        assert_eq!(command_item_step("steps[0].entrypoint[0]"), None);
        let doc = serde_json::json!({"a": [{"b": [[1, 2]]}]});
        assert_eq!(lookup(&doc, "a[0].b[0][1]"), Some(&serde_json::json!(2)));
        assert_eq!(lookup(&doc, "a[3]"), None);
        assert_eq!(lookup(&doc, "a[x]"), None);
    }

    #[test]
    fn null_is_an_empty_string() {
        let doc: Doc = parse_one("kind: pipeline\nsteps:\n- name: a\n  image:\n").unwrap();
        assert_eq!(doc.steps[0].image, "");
    }

    #[test]
    fn located_reports_where_a_node_is() {
        #[derive(Deserialize)]
        struct D {
            steps: Vec<Located<Step>>,
        }
        let d: D = parse_one("steps:\n- name: a\n-   name: b\n").unwrap();
        assert_eq!((d.steps[0].line, d.steps[0].column), (2, 3));
        assert_eq!(d.steps[1].line, 3);
    }

    #[test]
    fn verbatim_keeps_the_spelling_of_plain_scalars() {
        #[derive(Deserialize)]
        struct D {
            v: BTreeMap<String, Verbatim<serde_json::Value>>,
        }
        let d: D = parse_one("x: &x 010\nv:\n  a: 1.10\n  b: yes\n  c: \"q\"\n  d: *x\n").unwrap();
        assert_eq!(d.v["a"].text.as_deref(), Some("1.10"));
        assert_eq!(d.v["b"].text.as_deref(), Some("yes"));
        assert_eq!(d.v["c"].value, serde_json::json!("q"));
        assert_eq!(d.v["d"].text.as_deref(), Some("010"));
    }

    #[test]
    fn a_later_document_reports_file_lines_without_being_padded() {
        #[derive(Deserialize)]
        struct D {
            steps: Vec<Located<Step>>,
            v: BTreeMap<String, Verbatim<serde_json::Value>>,
        }
        let text = "kind: a\n---\nkind: b\n---\nsteps:\n- name: a\n-   name: b\nv:\n  a: 1.10\n";
        let docs = split_documents(text, DocumentBudget::default());
        assert_eq!(docs[2].first_line, 4);
        assert!(docs[2].text().starts_with("---\nsteps:"), "not padded");
        let d: D = docs[2].parse().unwrap();
        assert_eq!((d.steps[0].line, d.steps[0].column), (6, 3));
        assert_eq!(d.steps[1].line, 7);
        assert_eq!(
            d.v["a"].text.as_deref(),
            Some("1.10"),
            "spans are the document's"
        );
        // Outside a parse, a location is the YAML crate's own.
        assert_eq!(file_line(3), 3);
        let err = DocumentText::new(
            "x: 1\nsteps:\n- name: a\n  commands:\n  - a: b\n",
            10,
            DocumentBudget::default(),
        )
        .parse::<Scripts>()
        .unwrap_err();
        assert_eq!((err.line, err.column), (14, 5));
        assert!(
            err.message.ends_with("quote the command: - 'a: b'"),
            "{}",
            err.message
        );
    }
}

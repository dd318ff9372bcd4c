//! `${VAR}` substitution over a pipeline's text before it is parsed
//! (reference §11), with Drone's function set.
//!
//! Follows envsubst v2: outside `${…}` only `$$` is special (it escapes a
//! `$`, so `$${X}` stays `${X}` literally); a bare `$NAME` is left for the
//! shell. A value holding a newline is inserted as a double-quoted, escaped
//! string so the YAML stays valid.

use crate::glob;

/// A `${…}` expression that cannot be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvsubstError {
    /// `${` without its `}`.
    #[error("missing closing brace in `{expression}` at line {line}")]
    MissingBrace {
        /// The text from `${` to the end of its line.
        expression: String,
        /// 1-based line.
        line: usize,
    },
    /// A form runnerkit does not substitute, e.g. `${X-d}`, `${{ x }}`.
    #[error(
        "unsupported substitution `{expression}` at line {line}: {reason} (write `$${{` for a literal `${{`)"
    )]
    Unsupported {
        /// The whole expression.
        expression: String,
        /// Why it was refused.
        reason: &'static str,
        /// 1-based line.
        line: usize,
    },
    /// `${A:-${B:-${C...}}}` nested deeper than [`ENVSUBST_MAX_NESTING`]: each level
    /// is substituted recursively, so a hostile file could otherwise
    /// overflow the stack (and each level rescans the rest of the line).
    #[error(
        "substitution nested more than {max} levels deep at line {line}; at most {max} are accepted"
    )]
    TooDeep {
        /// The levels accepted ([`ENVSUBST_MAX_NESTING`]).
        max: usize,
        /// 1-based line.
        line: usize,
    },
}

/// How deep `${...}` expressions may nest in one another (`${A:-${B}}` is
/// 2 levels). Real pipelines use 2 or 3.
pub const ENVSUBST_MAX_NESTING: usize = 64;

/// Substitutes every `${…}` of `text`, looking names up with `lookup`
/// (`None` = unset, which reads as empty).
///
/// # Errors
/// [`EnvsubstError`] naming the first expression that is malformed or not
/// supported.
pub fn envsubst<F>(text: &str, lookup: F) -> Result<String, EnvsubstError>
where
    F: Fn(&str) -> Option<String>,
{
    substitute(text, &lookup)
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn substitute(text: &str, lookup: Lookup<'_>) -> Result<String, EnvsubstError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_start) = after.strip_prefix('{') {
            // Counted only on error: counting per expression is quadratic.
            let at = text.len() - rest.len() + i;
            let line = || text[..at].matches('\n').count() + 1;
            let Some((end, depth)) = closing_brace(body_start) else {
                let expression = rest[i..].lines().next().unwrap_or_default().to_owned();
                return Err(EnvsubstError::MissingBrace {
                    expression,
                    line: line(),
                });
            };
            if depth > ENVSUBST_MAX_NESTING {
                return Err(EnvsubstError::TooDeep {
                    max: ENVSUBST_MAX_NESTING,
                    line: line(),
                });
            }
            let body = &body_start[..end];
            let value = expand(body, lookup).map_err(|reason| EnvsubstError::Unsupported {
                expression: format!("${{{body}}}"),
                reason,
                line: line(),
            })?;
            if value.contains('\n') {
                out.push_str(&quote(&value));
            } else {
                out.push_str(&value);
            }
            rest = &body_start[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Index of the `}` closing an expression whose body starts `body`,
/// counting nested `${…}`, and how deep they nest (1 for none).
fn closing_brace(body: &str) -> Option<(usize, usize)> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => return None,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
                i += 1;
            }
            b'}' if depth == 0 => return Some((i, deepest + 1)),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn quote(value: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(value).unwrap_or_default()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Evaluates the body of one `${…}`.
fn expand(body: &str, lookup: Lookup<'_>) -> Result<String, &'static str> {
    if let Some(name) = body.strip_prefix('#') {
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err("bad substitution");
        }
        return Ok(lookup(name).unwrap_or_default().len().to_string());
    }
    let name_len = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    let (name, op) = body.split_at(name_len);
    if name.is_empty() {
        return Err("unable to parse variable name");
    }
    let value = lookup(name).unwrap_or_default();
    // Arguments may hold nested expressions.
    let arg = |s: &str| substitute(s, lookup).map_err(|_| "bad nested substitution");
    let mut chars = op.chars();
    let Some(first) = chars.next() else {
        return Ok(value);
    };
    let tail = chars.as_str();
    Ok(match first {
        '^' if tail == "^" => value.to_uppercase(),
        '^' if tail.is_empty() => change_first(&value, true),
        ',' if tail == "," => value.to_lowercase(),
        ',' if tail.is_empty() => change_first(&value, false),
        ':' => match tail.chars().next() {
            // `:?` and `:+` behave like `:-`, as in Drone (not as in bash).
            Some('-' | '=' | '?' | '+') => {
                if value.is_empty() {
                    arg(&tail[1..])?
                } else {
                    value
                }
            }
            _ => substring(&value, tail),
        },
        '=' => {
            if value.is_empty() {
                arg(tail)?
            } else {
                value
            }
        }
        '#' => {
            let (longest, pattern) = match tail.strip_prefix('#') {
                Some(p) => (true, p),
                None => (false, tail),
            };
            strip_prefix(&value, &arg(pattern)?, longest)
        }
        '%' => {
            let (longest, pattern) = match tail.strip_prefix('%') {
                Some(p) => (true, p),
                None => (false, tail),
            };
            strip_suffix(&value, &arg(pattern)?, longest)
        }
        '/' => replace(&value, tail, &arg)?,
        '-' | '+' => return Err("missing closing brace (use `:-` for a default)"),
        _ => return Err("bad substitution"),
    })
}

fn change_first(value: &str, upper: bool) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(c) if upper => c.to_uppercase().chain(chars).collect(),
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `${V:offset}` and `${V:offset:length}` over bytes; a non-numeric offset
/// leaves the value unchanged.
fn substring(value: &str, spec: &str) -> String {
    let (offset, length) = match spec.split_once(':') {
        Some((o, l)) => (o, Some(l)),
        None => (spec, None),
    };
    let Ok(offset) = offset.trim().parse::<usize>() else {
        return value.to_owned();
    };
    let bytes = value.as_bytes();
    let start = offset.min(bytes.len());
    let end = match length.map(|l| l.trim().parse::<usize>()) {
        Some(Ok(len)) => start.saturating_add(len).min(bytes.len()),
        Some(Err(_)) => return value.to_owned(),
        None => bytes.len(),
    };
    String::from_utf8_lossy(&bytes[start..end]).into_owned()
}

fn strip_prefix(value: &str, pattern: &str, longest: bool) -> String {
    let ends = glob::prefix_matches(pattern, value).unwrap_or_default();
    let cut = if longest { ends.last() } else { ends.first() };
    match cut {
        Some(&cut) => value[cut..].to_owned(),
        None => value.to_owned(),
    }
}

fn strip_suffix(value: &str, pattern: &str, longest: bool) -> String {
    let starts = glob::suffix_matches(pattern, value).unwrap_or_default();
    let cut = if longest {
        starts.first()
    } else {
        starts.last()
    };
    match cut {
        Some(&cut) => value[..cut].to_owned(),
        None => value.to_owned(),
    }
}

/// `/p/r`, `//p/r`, `/#p/r`, `/%p/r`: literal (not glob) replacement; `\/`
/// is a literal `/` inside the pattern.
fn replace<F>(value: &str, spec: &str, arg: &F) -> Result<String, &'static str>
where
    F: Fn(&str) -> Result<String, &'static str>,
{
    enum Kind {
        First,
        All,
        Prefix,
        Suffix,
    }
    let (kind, spec) = if let Some(s) = spec.strip_prefix('/') {
        (Kind::All, s)
    } else if let Some(s) = spec.strip_prefix('#') {
        (Kind::Prefix, s)
    } else if let Some(s) = spec.strip_prefix('%') {
        (Kind::Suffix, s)
    } else {
        (Kind::First, spec)
    };
    let mut pattern = String::new();
    let mut chars = spec.char_indices();
    let mut replacement_at = spec.len();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => pattern.push('/'),
                Some((_, other)) => {
                    pattern.push('\\');
                    pattern.push(other);
                }
                None => pattern.push('\\'),
            },
            '/' => {
                replacement_at = i + 1;
                break;
            }
            c => pattern.push(c),
        }
    }
    let replacement = arg(spec.get(replacement_at..).unwrap_or_default())?;
    let pattern = arg(&pattern)?;
    if pattern.is_empty() {
        return Ok(value.to_owned());
    }
    Ok(match kind {
        Kind::First => value.replacen(&pattern, &replacement, 1),
        Kind::All => value.replace(&pattern, &replacement),
        Kind::Prefix => match value.strip_prefix(pattern.as_str()) {
            Some(rest) => format!("{replacement}{rest}"),
            None => value.to_owned(),
        },
        Kind::Suffix => match value.strip_suffix(pattern.as_str()) {
            Some(rest) => format!("{rest}{replacement}"),
            None => value.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sub(text: &str) -> Result<String, EnvsubstError> {
        let vars: BTreeMap<&str, &str> = [
            ("B", "feature/login"),
            ("R", "refs/heads/feature/x"),
            ("EMPTY", ""),
            ("U", "été"),
            ("ML", "a\nb\"c"),
        ]
        .into();
        envsubst(text, |n| vars.get(n).map(|v| (*v).to_owned()))
    }

    fn ok(text: &str) -> String {
        sub(text).unwrap()
    }

    #[test]
    fn plain_value_and_unset() {
        assert_eq!(ok("x ${B} y"), "x feature/login y");
        assert_eq!(ok("[${NOPE}]"), "[]");
        assert_eq!(ok("${EMPTY}"), "");
    }

    #[test]
    fn length_in_bytes() {
        assert_eq!(ok("${#B}"), "13");
        assert_eq!(ok("${#U}"), "5");
        assert_eq!(ok("${#NOPE}"), "0");
    }

    #[test]
    fn case_changes() {
        assert_eq!(ok("${B^}"), "Feature/login");
        assert_eq!(ok("${B^^}"), "FEATURE/LOGIN");
        assert_eq!(ok("${U^}"), "Été");
        assert_eq!(ok("${U^^}"), "ÉTÉ");
        assert_eq!(ok("${B,}"), "feature/login");
        assert_eq!(ok("${U,,}"), "été");
        let vars = |n: &str| (n == "X").then(|| "ÀB".to_owned());
        assert_eq!(envsubst("${X,}", vars).unwrap(), "àB");
        assert_eq!(envsubst("${X,,}", vars).unwrap(), "àb");
    }

    #[test]
    fn substrings_by_byte_offset() {
        assert_eq!(ok("${B:8}"), "login");
        assert_eq!(ok("${B:0:7}"), "feature");
        assert_eq!(ok("${B:100}"), "");
        assert_eq!(ok("${B:8:100}"), "login");
        assert_eq!(ok("${B:x}"), "feature/login", "non-numeric offset");
    }

    #[test]
    fn prefix_and_suffix_stripping_with_globs_crossing_slash() {
        assert_eq!(ok("${R#*/}"), "heads/feature/x");
        assert_eq!(ok("${R##*/}"), "x");
        assert_eq!(ok("${R%/*}"), "refs/heads/feature");
        assert_eq!(ok("${R%%/*}"), "refs");
        assert_eq!(ok("${R#nomatch}"), "refs/heads/feature/x");
        assert_eq!(ok("${R#refs/?eads/}"), "feature/x");
    }

    #[test]
    fn defaults_never_assign_and_may_nest() {
        assert_eq!(ok("${NOPE=d}"), "d");
        assert_eq!(ok("${NOPE:=d}"), "d");
        assert_eq!(ok("${NOPE:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d", "empty counts as unset");
        assert_eq!(ok("${B:-d}"), "feature/login");
        assert_eq!(ok("${NOPE:=d} ${NOPE}"), "d ", "never assigns");
        assert_eq!(ok("${NOPE:-${B}-v2}"), "feature/login-v2");
        assert_eq!(ok("${NOPE:-${NADA:-deep}}"), "deep");
        assert_eq!(ok("${NOPE:?m}"), "m");
        assert_eq!(ok("${NOPE:+a}"), "a");
    }

    #[test]
    fn literal_replacement() {
        assert_eq!(ok("${B/e/E}"), "fEature/login");
        assert_eq!(ok("${B//e/E}"), "fEaturE/login");
        assert_eq!(ok("${B/#feature/fix}"), "fix/login");
        assert_eq!(ok("${B/%login/out}"), "feature/out");
        assert_eq!(ok("${B//\\//-}"), "feature-login");
        assert_eq!(ok("${B/*/x}"), "feature/login", "patterns are literal");
        assert_eq!(ok("${B/#nope/x}"), "feature/login");
        assert_eq!(ok("${B//e}"), "fatur/login", "empty replacement deletes");
    }

    #[test]
    fn escapes_and_bare_dollars() {
        assert_eq!(ok("$${B}"), "${B}");
        assert_eq!(ok("$$B"), "$B");
        assert_eq!(ok("echo $B $HOME $1"), "echo $B $HOME $1");
        assert_eq!(ok("cost: 5$"), "cost: 5$");
        assert_eq!(ok("a\\\\b \\/"), "a\\\\b \\/", "v2: backslashes stay");
    }

    #[test]
    fn newline_values_are_quoted() {
        assert_eq!(ok("k: ${ML}"), "k: \"a\\nb\\\"c\"");
    }

    #[test]
    fn unsupported_forms_are_errors_naming_them() {
        let err = sub("a\nx: ${X-d}").unwrap_err();
        assert_eq!(
            err,
            EnvsubstError::Unsupported {
                expression: "${X-d}".into(),
                reason: "missing closing brace (use `:-` for a default)",
                line: 2
            }
        );
        assert!(matches!(
            sub("${X+d}"),
            Err(EnvsubstError::Unsupported { .. })
        ));
        let err = sub("${{ x }}").unwrap_err();
        assert!(err.to_string().contains("`${{ x }`"), "{err}");
        assert!(matches!(sub("${}"), Err(EnvsubstError::Unsupported { .. })));
        assert!(matches!(
            sub("${#}"),
            Err(EnvsubstError::Unsupported { .. })
        ));
        assert!(matches!(
            sub("${B!}"),
            Err(EnvsubstError::Unsupported { .. })
        ));
        let err = sub("x\ny ${B\n").unwrap_err();
        assert_eq!(
            err,
            EnvsubstError::MissingBrace {
                expression: "${B".into(),
                line: 2
            }
        );
    }

    #[test]
    fn nesting_past_the_limit_is_refused_without_recursing() {
        let nested = |levels: usize| {
            format!(
                "a: b\nx: {}v{}\n",
                "${A:-".repeat(levels),
                "}".repeat(levels)
            )
        };
        assert_eq!(sub(&nested(ENVSUBST_MAX_NESTING)).unwrap(), "a: b\nx: v\n");
        let err = sub(&nested(ENVSUBST_MAX_NESTING + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "substitution nested more than 64 levels deep at line 2; at most 64 are accepted"
        );
        // Deep enough to overflow the stack if it recursed.
        assert!(matches!(
            sub(&nested(200_000)),
            Err(EnvsubstError::TooDeep { line: 2, .. })
        ));
    }
}

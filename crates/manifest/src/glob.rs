//! Glob matching, written here because no maintained crate has exactly the
//! semantics Drone's conditions use (doublestar v1) and those of envsubst's
//! prefix/suffix patterns at once.
//!
//! Syntax: `*`, `**`, `?`, `[abc]`, `[a-z]`, `[^x]` / `[!x]`, `{a,b}`, `\`
//! escapes. Case-sensitive; a malformed pattern never matches.

use std::collections::HashSet;

/// Most alternatives `{a,b}` may expand to; beyond, the pattern is refused
/// (never matches) instead of taking exponential time.
const MAX_ALTERNATIVES: usize = 1024;

/// How `*` treats `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Conditions (doublestar v1): `*`, `?` and classes stop at `/`; `**`
    /// crosses it, and `a/**/b` also matches `a/b`.
    Path,
    /// envsubst patterns: `*` matches any run of characters, `/` included.
    Text,
}

/// True when `pattern` matches all of `text`.
pub(crate) fn matches(pattern: &str, text: &str, mode: Mode) -> bool {
    let Some(alternatives) = expand_braces(pattern) else {
        return false;
    };
    let text: Vec<char> = text.chars().collect();
    alternatives.iter().any(|p| {
        let p: Vec<char> = p.chars().collect();
        let mut memo = Matcher {
            mode,
            failed: HashSet::new(),
        };
        memo.at(&p, &text).unwrap_or(false)
    })
}

/// One element of a pattern, for the set-of-positions matcher below.
enum Token {
    Literal(char),
    AnyChar,
    Class(Class),
    Star,
}

fn tokens(pattern: &[char]) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '*' => {
                if !matches!(out.last(), Some(Token::Star)) {
                    out.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Token::AnyChar);
                i += 1;
            }
            '[' => {
                let (class, len) = parse_class(&pattern[i + 1..])?;
                out.push(Token::Class(class));
                i += 1 + len;
            }
            '\\' => {
                out.push(Token::Literal(*pattern.get(i + 1)?));
                i += 2;
            }
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    Some(out)
}

/// Char positions `e` such that `pattern` matches `text[..e]` (text mode:
/// `*` crosses `/`), in one pass over the pattern: O(|pattern|·|text|).
fn prefix_ends(pattern: &[Token], text: &[char]) -> Vec<bool> {
    let n = text.len();
    let mut live = vec![false; n + 1];
    live[0] = true;
    for token in pattern {
        let mut next = vec![false; n + 1];
        match token {
            Token::Star => {
                if let Some(first) = live.iter().position(|&l| l) {
                    next[first..].iter_mut().for_each(|x| *x = true);
                }
            }
            one => {
                for pos in 0..n {
                    if live[pos] {
                        let ok = match one {
                            Token::Literal(c) => text[pos] == *c,
                            Token::AnyChar => true,
                            Token::Class(class) => class.contains(text[pos]),
                            Token::Star => false,
                        };
                        next[pos + 1] |= ok;
                    }
                }
            }
        }
        live = next;
    }
    live
}

/// Byte offsets where a prefix of `text` matching `pattern` ends (text
/// mode), ascending; `None` for a malformed pattern.
pub(crate) fn prefix_matches(pattern: &str, text: &str) -> Option<Vec<usize>> {
    let chars: Vec<char> = text.chars().collect();
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let mut ends = vec![false; chars.len() + 1];
    for alternative in expand_braces(pattern)? {
        let p: Vec<char> = alternative.chars().collect();
        let found = prefix_ends(&tokens(&p)?, &chars);
        ends.iter_mut().zip(found).for_each(|(e, f)| *e |= f);
    }
    Some(
        ends.iter()
            .zip(&offsets)
            .filter(|(e, _)| **e)
            .map(|(_, o)| *o)
            .collect(),
    )
}

/// Byte offsets where a suffix of `text` matching `pattern` starts (text
/// mode), ascending; `None` for a malformed pattern.
pub(crate) fn suffix_matches(pattern: &str, text: &str) -> Option<Vec<usize>> {
    let chars: Vec<char> = text.chars().rev().collect();
    let offsets: Vec<usize> = std::iter::once(text.len())
        .chain(text.char_indices().rev().map(|(i, _)| i))
        .collect();
    let mut starts = vec![false; chars.len() + 1];
    for alternative in expand_braces(pattern)? {
        let p: Vec<char> = alternative.chars().collect();
        let mut toks = tokens(&p)?;
        toks.reverse();
        let found = prefix_ends(&toks, &chars);
        starts.iter_mut().zip(found).for_each(|(e, f)| *e |= f);
    }
    let mut out: Vec<usize> = starts
        .iter()
        .zip(&offsets)
        .filter(|(e, _)| **e)
        .map(|(_, o)| *o)
        .collect();
    out.reverse();
    Some(out)
}

/// Expands `{a,b}` alternatives (nested ones too); `None` when unbalanced.
fn expand_braces(pattern: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut open = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => {
                open = Some(i);
                break;
            }
            '}' => return None,
            _ => {}
        }
        i += 1;
    }
    let Some(start) = open else {
        return Some(vec![pattern.to_owned()]);
    };
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut part_start = start + 1;
    let mut end = None;
    let mut j = start;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(chars[part_start..j].iter().collect::<String>());
                    end = Some(j);
                    break;
                }
            }
            ',' if depth == 1 => {
                parts.push(chars[part_start..j].iter().collect::<String>());
                part_start = j + 1;
            }
            _ => {}
        }
        j += 1;
    }
    let end = end?;
    let prefix: String = chars[..start].iter().collect();
    let suffix: String = chars[end + 1..].iter().collect();
    let mut out = Vec::new();
    for part in parts {
        out.extend(expand_braces(&format!("{prefix}{part}{suffix}"))?);
        if out.len() > MAX_ALTERNATIVES {
            return None;
        }
    }
    Some(out)
}

/// Backtracking matcher over suffixes of the pattern and the text, which
/// remembers the (pattern, text) suffix pairs known not to match, so no pair
/// is tried twice: at most `|p|·|t|` steps however many stars there are.
struct Matcher {
    mode: Mode,
    /// (pattern suffix length, text suffix length) pairs that do not match.
    failed: HashSet<(usize, usize)>,
}

impl Matcher {
    /// `None` for a malformed pattern.
    fn at(&mut self, p: &[char], t: &[char]) -> Option<bool> {
        if self.failed.contains(&(p.len(), t.len())) {
            return Some(false);
        }
        let result = self.step(p, t)?;
        if !result {
            self.failed.insert((p.len(), t.len()));
        }
        Some(result)
    }

    fn step(&mut self, p: &[char], t: &[char]) -> Option<bool> {
        let mode = self.mode;
        let Some(&c) = p.first() else {
            return Some(t.is_empty());
        };
        match c {
            '*' => {
                let double = p.get(1) == Some(&'*');
                let crosses = mode == Mode::Text || double;
                let rest = if double { &p[2..] } else { &p[1..] };
                // `a/**/b` matches `a/b`: the `**/` may stand for nothing.
                if double
                    && mode == Mode::Path
                    && rest.first() == Some(&'/')
                    && self.at(&rest[1..], t)?
                {
                    return Some(true);
                }
                // The star matches nothing, or eats one character and stays.
                if self.at(rest, t)? {
                    return Some(true);
                }
                match t.first() {
                    Some(&ch) if crosses || ch != '/' => self.at(p, &t[1..]),
                    _ => Some(false),
                }
            }
            '?' => match t.first() {
                Some(&ch) if !(mode == Mode::Path && ch == '/') => self.at(&p[1..], &t[1..]),
                _ => {
                    // Still validate the rest of the pattern.
                    self.at(&p[1..], &[])?;
                    Some(false)
                }
            },
            '[' => {
                let (set, len) = parse_class(&p[1..])?;
                match t.first() {
                    Some(&ch) if !(mode == Mode::Path && ch == '/') && set.contains(ch) => {
                        self.at(&p[1 + len..], &t[1..])
                    }
                    _ => Some(false),
                }
            }
            '\\' => {
                let &lit = p.get(1)?;
                if t.first() == Some(&lit) {
                    self.at(&p[2..], &t[1..])
                } else {
                    Some(false)
                }
            }
            lit => {
                if t.first() == Some(&lit) {
                    self.at(&p[1..], &t[1..])
                } else {
                    Some(false)
                }
            }
        }
    }
}

struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, ch: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != self.negated
    }
}

/// Parses a class after its `[`; returns it and how many chars it used (with `]`).
fn parse_class(p: &[char]) -> Option<(Class, usize)> {
    let mut i = 0;
    let negated = matches!(p.first(), Some('^' | '!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let &c = p.get(i)?;
        if c == ']' && !first {
            return Some((Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            c
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&n| n != ']') {
            let mut hi = *p.get(i + 1)?;
            i += 2;
            if hi == '\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            if hi < lo {
                return None;
            }
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str, t: &str) -> bool {
        matches(p, t, Mode::Path)
    }

    #[test]
    fn star_stops_at_slash_and_double_star_crosses_it() {
        assert!(path("feature/*", "feature/x"));
        assert!(!path("feature/*", "feature/x/y"));
        assert!(path("feature/**", "feature/x"));
        assert!(path("feature/**", "feature/x/y"));
        assert!(path("a/**/b", "a/b"));
        assert!(path("a/**/b", "a/x/y/b"));
        assert!(path("*", "main"));
        assert!(!path("*", "a/b"));
        assert!(path("**", "a/b"));
    }

    #[test]
    fn question_classes_braces_and_escapes() {
        assert!(path("v?", "v1"));
        assert!(!path("a?b", "a/b"));
        assert!(path("release-[0-9]", "release-7"));
        assert!(!path("release-[0-9]", "release-x"));
        assert!(path("[^x]y", "ay"));
        assert!(path("[!x]y", "ay"));
        assert!(!path("[^x]y", "xy"));
        assert!(path("{main,dev}", "dev"));
        assert!(path("{release/*,hotfix-{a,b}}", "hotfix-b"));
        assert!(!path("{main,dev}", "prod"));
        assert!(path("a\\*", "a*"));
        assert!(!path("a\\*", "ab"));
        assert!(path("[]]", "]"));
    }

    #[test]
    fn case_sensitive_and_malformed_never_match() {
        assert!(!path("Main", "main"));
        assert!(!path("[a-", "a"));
        assert!(!path("{a,b", "a"));
        assert!(!path("a\\", "a"));
        assert!(!path("[z-a]", "b"));
    }

    #[test]
    fn many_stars_and_braces_stay_cheap() {
        let text = "a".repeat(500);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pattern, &text, Mode::Text));
        assert!(matches(&"*a".repeat(50), &text, Mode::Text));
        let braces = "{a,b}".repeat(12);
        assert!(
            !matches(&braces, "aaaaaaaaaaaa", Mode::Path),
            "too many alternatives"
        );
        assert!(matches(&"{a,b}".repeat(5), "ababa", Mode::Path));
    }

    #[test]
    fn prefix_and_suffix_positions() {
        assert_eq!(prefix_matches("*/", "a/b/c").unwrap(), [2, 4]);
        assert_eq!(prefix_matches("a?", "abc").unwrap(), [2]);
        assert_eq!(prefix_matches("*", "ab").unwrap(), [0, 1, 2]);
        assert_eq!(prefix_matches("{x,a}", "ab").unwrap(), [1]);
        assert_eq!(suffix_matches("/*", "a/b/c").unwrap(), [1, 3]);
        assert_eq!(suffix_matches("[bc]", "abc").unwrap(), [2]);
        assert_eq!(prefix_matches("é*", "été").unwrap(), [2, 3, 5]);
        assert!(prefix_matches("[a-", "a").is_none());
        let long = "x".repeat(5000);
        assert_eq!(
            prefix_matches("*x*x*x*y", &long).unwrap(),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn text_mode_star_crosses_slash() {
        assert!(matches("*/", "refs/heads/", Mode::Text));
        assert!(matches("refs/*", "refs/heads/x", Mode::Text));
        assert!(!matches("refs/*", "refs/heads/x", Mode::Path));
    }
}

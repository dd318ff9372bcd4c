//! Glob matching, written here because no maintained crate has exactly the
//! semantics Drone's conditions use (doublestar v1) and those of envsubst's
//! prefix/suffix patterns at once.
//!
//! Syntax: `*`, `**`, `?`, `[abc]`, `[a-z]`, `[^x]` / `[!x]`, `{a,b}`, `\`
//! escapes. Case-sensitive; a malformed pattern never matches.

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
        match_here(&p, &text, mode).unwrap_or(false)
    })
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
    }
    Some(out)
}

/// Backtracking matcher; `None` for a malformed pattern.
fn match_here(p: &[char], t: &[char], mode: Mode) -> Option<bool> {
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
                && match_here(&rest[1..], t, mode)?
            {
                return Some(true);
            }
            for skip in 0..=t.len() {
                if match_here(rest, &t[skip..], mode)? {
                    return Some(true);
                }
                if skip < t.len() && !crosses && t[skip] == '/' {
                    break;
                }
            }
            Some(false)
        }
        '?' => match t.first() {
            Some(&ch) if !(mode == Mode::Path && ch == '/') => match_here(&p[1..], &t[1..], mode),
            _ => {
                // Still validate the rest of the pattern.
                match_here(&p[1..], &[], mode)?;
                Some(false)
            }
        },
        '[' => {
            let (set, len) = parse_class(&p[1..])?;
            match t.first() {
                Some(&ch) if !(mode == Mode::Path && ch == '/') && set.contains(ch) => {
                    match_here(&p[1 + len..], &t[1..], mode)
                }
                _ => Some(false),
            }
        }
        '\\' => {
            let &lit = p.get(1)?;
            if t.first() == Some(&lit) {
                match_here(&p[2..], &t[1..], mode)
            } else {
                Some(false)
            }
        }
        lit => {
            if t.first() == Some(&lit) {
                match_here(&p[1..], &t[1..], mode)
            } else {
                Some(false)
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
    fn text_mode_star_crosses_slash() {
        assert!(matches("*/", "refs/heads/", Mode::Text));
        assert!(matches("refs/*", "refs/heads/x", Mode::Text));
        assert!(!matches("refs/*", "refs/heads/x", Mode::Path));
    }
}

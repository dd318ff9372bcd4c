//! Dotenv files, as Drone's runners read their `ENVFILE`.
//!
//! One `KEY=VALUE` a line; blank lines and lines starting with `#` are
//! ignored; a leading `export ` is allowed. Values may be bare (trimmed, a
//! ` #` starts a comment), single-quoted (taken literally) or double-quoted
//! (`\n`, `\t`, `\"`, `\\` and `\$` are unescaped). Quoted values may not
//! span lines. Variables are not expanded: a runner's settings are plain
//! values.

use std::collections::BTreeMap;
use std::path::Path;

use crate::daemon::SettingsError;

/// Reads and parses the dotenv file at `path`.
///
/// # Errors
/// [`SettingsError::ReadEnvFile`] when it cannot be read,
/// [`SettingsError::EnvFile`] naming the first line that is not
/// `KEY=VALUE`.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadEnvFile {
        path: path.to_owned(),
        source,
    })?;
    parse_env_file(&text).map_err(|(line, reason)| SettingsError::EnvFile {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Parses dotenv text; a later definition of a key wins. The error is the
/// 1-based line number and what is wrong with it.
pub(crate) fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut vars = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| (index + 1, "expected KEY=VALUE".to_owned()))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err((index + 1, format!("{key:?} is not a variable name")));
        }
        let value = parse_value(value.trim()).map_err(|reason| (index + 1, reason))?;
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

fn parse_value(value: &str) -> Result<String, String> {
    if let Some(rest) = value.strip_prefix('\'') {
        let end = rest
            .find('\'')
            .ok_or_else(|| "a single quote is not closed".to_owned())?;
        return trailing_comment_only(&rest[end + 1..]).map(|()| rest[..end].to_owned());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return trailing_comment_only(&rest[i + 1..]).map(|()| out),
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('"' | '\\' | '$')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        return Err("a double quote is not closed".to_owned());
    }
    let bare = match value.find(" #") {
        Some(comment) => &value[..comment],
        None => value,
    };
    Ok(bare.trim_end().to_owned())
}

/// After a closing quote only blanks or a comment may follow.
fn trailing_comment_only(rest: &str) -> Result<(), String> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err(format!("unexpected {rest:?} after the quoted value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bare_quoted_and_exported_values() {
        let text = "\
# the runner
DRONE_RPC_HOST=drone.example.com
export DRONE_RPC_PROTO = https
DRONE_RUNNER_LABELS=zone:eu,disk:ssd   # where it runs

DRONE_RPC_SECRET='a#b \"c\" $d'
DRONE_RUNNER_ENVIRON=\"GREETING:hello\\tworld,PRICE:\\$5\" # comment
EMPTY=
DRONE_RPC_HOST=override.example.com
";
        let vars = parse_env_file(text).unwrap();
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(get("DRONE_RPC_HOST"), Some("override.example.com"));
        assert_eq!(get("DRONE_RPC_PROTO"), Some("https"));
        assert_eq!(get("DRONE_RUNNER_LABELS"), Some("zone:eu,disk:ssd"));
        assert_eq!(get("DRONE_RPC_SECRET"), Some("a#b \"c\" $d"));
        assert_eq!(
            get("DRONE_RUNNER_ENVIRON"),
            Some("GREETING:hello\tworld,PRICE:$5")
        );
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(vars.len(), 6);
    }

    #[test]
    fn names_the_bad_line() {
        assert_eq!(parse_env_file("A=1\nnot a setting\n").unwrap_err().0, 2);
        assert_eq!(parse_env_file("A='open\n").unwrap_err().0, 1);
        assert_eq!(parse_env_file("B=\"open\n").unwrap_err().0, 1);
        assert_eq!(parse_env_file("C='x' y\n").unwrap_err().0, 1);
        assert_eq!(parse_env_file("=value\n").unwrap_err().0, 1);
        assert_eq!(parse_env_file("BAD KEY=value\n").unwrap_err().0, 1);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = read_env_file(Path::new("/nonexistent/runnerkit.env")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/runnerkit.env"),
            "{err}"
        );
    }
}

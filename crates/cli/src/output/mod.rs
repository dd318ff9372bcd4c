//! Every byte `runnerkit` shows: live logs and the summary for people
//! ([`human`]), the `--json` result ([`json`]), and the exit status
//! ([`exit`]).
//!
//! Where each goes is decided once, here: without `--json` the logs and the
//! summary go to stdout; with it they go to stderr and stdout holds only the
//! result line.

pub mod exit;
pub mod human;
pub mod json;

use std::io::{IsTerminal, Write};

pub use human::{HumanReporter, Style};

/// Where the human-readable output goes and how it looks.
pub fn human_destination(json: bool) -> (Box<dyn Write + Send>, Style) {
    let color_allowed = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if json {
        let color = color_allowed && std::io::stderr().is_terminal();
        (Box::new(std::io::stderr()), Style { color })
    } else {
        let color = color_allowed && std::io::stdout().is_terminal();
        (Box::new(std::io::stdout()), Style { color })
    }
}

/// An error and its causes on one line, `: `-separated, each cause once: a
/// cause whose text its parent's message already includes is not repeated.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_told_are_not_repeated() {
        let inner = anyhow::anyhow!("bad indent at line 3");
        let e = inner
            .context("document 1: bad indent at line 3")
            .context("ci.yml: invalid pipeline file");
        assert_eq!(
            error_chain(&e),
            "ci.yml: invalid pipeline file: document 1: bad indent at line 3"
        );
    }
}

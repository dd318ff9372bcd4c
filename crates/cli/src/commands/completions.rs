//! `runnerkit completions SHELL` and `runnerkit man`: the command line
//! described for a shell and for `man`, from the same clap command that
//! parses it, so neither can drift from the flags.
//!
//! Both are rendered into memory first and then written: clap_complete
//! panics on a failed write, and a half-written script is worse than none.

use std::io::Write;

use clap_complete::Shell;
use clap_mangen::Man;

use crate::output::exit::Outcome;

/// The completion script of `command` for `shell`, completing the binary
/// `name`.
pub fn script(mut command: clap::Command, shell: Shell, name: &str) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

/// One manual page for `command`: its own synopsis, description and
/// options, then a section per subcommand with its synopsis, description,
/// options and examples, then the top-level examples and the version.
///
/// One page rather than clap_mangen's page per subcommand, as it goes to
/// stdout (`runnerkit man | man -l -`) and there is no directory to fill.
///
/// # Errors
/// Only the writer's, and rendering writes to memory.
pub fn man_page(command: clap::Command) -> std::io::Result<Vec<u8>> {
    // `help` is clap's, not a command to document.
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let page = Man::new(command.clone());
    // Every render writes roff's preamble (the apostrophe string): the page
    // needs it once, after `.TH` so that the page opens with its title.
    let mut preamble = Vec::new();
    clap_mangen::roff::Roff::new().to_writer(&mut preamble)?;
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    let mut out = out
        .strip_prefix(preamble.as_slice())
        .unwrap_or(&out)
        .to_vec();
    out.extend_from_slice(&preamble);
    let mut add = |render: &dyn Fn(&mut dyn Write) -> std::io::Result<()>, nested: bool| {
        let mut text = Vec::new();
        render(&mut text)?;
        let text = text.strip_prefix(preamble.as_slice()).unwrap_or(&text);
        if nested {
            out.extend_from_slice(&subsections(text));
        } else {
            out.extend_from_slice(text);
        }
        std::io::Result::Ok(())
    };
    add(&|w| page.render_name_section(w), false)?;
    add(&|w| page.render_synopsis_section(w), false)?;
    add(&|w| page.render_description_section(w), false)?;
    add(&|w| page.render_options_section(w), false)?;
    // In `--help`'s order: the runner's adjustments re-insert a subcommand.
    let mut subs: Vec<_> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .collect();
    subs.sort_by_key(|s| s.get_display_order());
    for sub in subs {
        let name = sub
            .get_bin_name()
            .unwrap_or_else(|| sub.get_name())
            .to_uppercase();
        add(
            &|w| {
                let mut heading = clap_mangen::roff::Roff::new();
                heading.control("SH", [name.as_str()]);
                heading.to_writer(w)
            },
            false,
        )?;
        let man = Man::new(sub.clone());
        add(&|w| man.render_synopsis_section(w), true)?;
        add(&|w| man.render_description_section(w), true)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            add(&|w| man.render_options_section(w), true)?;
        }
        if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
            add(&|w| man.render_extra_section(w), true)?;
        }
    }
    if command.get_after_help().is_some() || command.get_after_long_help().is_some() {
        add(&|w| page.render_extra_section(w), false)?;
    }
    if command.get_version().is_some() {
        add(&|w| page.render_version_section(w), false)?;
    }
    Ok(out)
}

/// `roff`'s sections as subsections, to nest a subcommand's page under its
/// own section. Text lines starting with `.` are escaped by roff (`\&.`),
/// so only the section macros begin with `.SH `.
fn subsections(roff: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(roff.len());
    for line in roff.split_inclusive(|b| *b == b'\n') {
        match line.strip_prefix(b".SH ") {
            Some(rest) => {
                out.extend_from_slice(b".SS ");
                out.extend_from_slice(rest);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// Writes `text` to `out`. A reader that went away early (`| head`) is not
/// a failure; any other write error is (a full disk behind `>`).
pub fn write(text: &[u8], out: &mut dyn Write) -> Outcome {
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => Outcome::Clean,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Clean,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Runner;

    #[test]
    fn the_script_completes_the_runners_name() {
        let runner = Runner::new("my-runner");
        let text = script(crate::cli::command(&runner), Shell::Bash, runner.name());
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("my-runner"), "{text}");
        assert!(!text.contains("runnerkit__"), "{text}");
    }

    #[test]
    fn the_man_page_has_a_section_per_subcommand() {
        let runner = Runner::new("my-runner").version("1.2.3");
        let page = man_page(crate::cli::command(&runner)).unwrap();
        let page = String::from_utf8(page).unwrap();
        let title = page
            .lines()
            .find(|l| l.starts_with('.') && !l.starts_with(".ie") && !l.starts_with(".el"));
        assert_eq!(
            title.map(|l| l.split(' ').take(3).collect::<Vec<_>>()),
            Some(vec![".TH", "my-runner", "1"]),
            "{page}"
        );
        assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble: {page}");
        for section in ["MY-RUNNER EXEC", "MY-RUNNER DAEMON", "MY-RUNNER MAN"] {
            assert!(
                page.contains(&format!(".SH \"{section}\"")),
                "{section}: {page}"
            );
        }
        assert!(!page.contains("HELP\""), "{page}");
        assert!(page.contains(".SS OPTIONS"), "{page}");
        assert!(page.contains("v1.2.3"), "{page}");
    }

    #[test]
    fn only_section_macros_are_demoted() {
        assert_eq!(
            subsections(b".SH OPTIONS\n\\&.SH text\nx .SH y\n.SH \"A B\"\n"),
            b".SS OPTIONS\n\\&.SH text\nx .SH y\n.SS \"A B\"\n"
        );
    }

    #[test]
    fn a_closed_pipe_is_not_a_failure() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert_eq!(write(b"x", &mut Closed), Outcome::Clean);
    }
}

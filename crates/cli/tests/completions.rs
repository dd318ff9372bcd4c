//! End-to-end: `runnerkit completions SHELL` and `runnerkit man` through the
//! built binary: what they print describes the real command line.

mod common;

use common::run;

#[test]
fn bash_completions_know_the_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["completions", "bash"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for word in ["exec", "daemon", "--pipeline", "runnerkit"] {
        assert!(r.stdout.contains(word), "no {word} in {}", r.stdout);
    }
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn every_shell_gets_a_script() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = run(dir.path(), &["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains("exec"), "{shell}: {}", r.stdout);
    }
}

#[test]
fn an_unknown_shell_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(r.code, 2, "{}", r.printed());
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("tcsh"), "{}", r.stderr);
}

#[test]
fn the_man_page_is_roff_and_covers_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["man"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with(".TH runnerkit 1 "), "{}", r.stdout);
    assert!(r.stdout.contains(".SH \"RUNNERKIT EXEC\""), "{}", r.stdout);
    assert!(r.stdout.contains("exec"), "{}", r.stdout);
    // The exec section lists exec's own flags.
    assert!(r.stdout.contains("\\-\\-pipeline"), "{}", r.stdout);
}

//! End-to-end: `exec --color` through the built binary, whose stdout is a
//! pipe here: only `always` (or `CLICOLOR_FORCE` in `auto`) colours it.

mod common;

use std::ffi::OsStr;

use common::{run_with, workspace};

const HELLO: &str = "kind: pipeline
type: exec
name: hello
steps:
- name: greet
  commands: [echo hello]
";

const ESC: char = '\x1b';

#[test]
fn always_colours_a_pipe_even_under_no_color() {
    let dir = workspace(HELLO, &[]);
    // `run_with` sets NO_COLOR=1: the flag is asked for, so it wins.
    let r = run_with(dir.path(), &["exec", "--color", "always"], &[]);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(r.stdout.contains(ESC), "no ANSI escape in {:?}", r.stdout);
    assert!(r.stdout.contains("hello"), "{}", r.stdout);
}

#[test]
fn never_wins_over_clicolor_force() {
    let dir = workspace(HELLO, &[]);
    let r = run_with(
        dir.path(),
        &["exec", "--color", "never"],
        &[
            ("NO_COLOR", OsStr::new("")),
            ("CLICOLOR_FORCE", OsStr::new("1")),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(!r.printed().contains(ESC), "{:?}", r.printed());
    assert!(r.stdout.contains("hello"), "{}", r.stdout);
}

#[test]
fn auto_colours_a_pipe_only_when_forced() {
    let dir = workspace(HELLO, &[]);
    let forced = [
        ("NO_COLOR", OsStr::new("")),
        ("CLICOLOR_FORCE", OsStr::new("1")),
    ];
    let r = run_with(dir.path(), &["exec"], &forced);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(r.stdout.contains(ESC), "{:?}", r.stdout);
    let plain = [
        ("NO_COLOR", OsStr::new("")),
        ("CLICOLOR_FORCE", OsStr::new("0")),
    ];
    let r = run_with(dir.path(), &["exec", "--color", "auto"], &plain);
    assert_eq!(r.code, 0, "{}", r.printed());
    assert!(!r.stdout.contains(ESC), "{:?}", r.stdout);
}

#[test]
fn an_unknown_choice_is_refused() {
    let dir = workspace(HELLO, &[]);
    let r = run_with(dir.path(), &["exec", "--color", "sometimes"], &[]);
    assert_eq!(r.code, 2, "{}", r.printed());
}

#[test]
fn exec_help_documents_the_choices() {
    let dir = workspace(HELLO, &[]);
    let r = run_with(dir.path(), &["exec", "--help"], &[]);
    assert_eq!(r.code, 0, "{}", r.printed());
    for word in [
        "--color <WHEN>",
        "always",
        "never",
        "NO_COLOR",
        "CLICOLOR_FORCE",
    ] {
        assert!(r.stdout.contains(word), "no {word} in {}", r.stdout);
    }
}

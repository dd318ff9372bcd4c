//! The built `runnerkit` binary on input Drone accepts or refuses: `lint`
//! with `${VAR}` wherever a value goes, `--event` checked against Drone's
//! events, and the hint for a command YAML read as a map.

mod common;

use common::run;
use tempfile::TempDir;

/// A fresh directory holding `text` as `.drone.yml`, removed when dropped.
fn workspace(text: &str) -> TempDir {
    common::workspace(text, &[])
}

/// An exec pipeline whose step `s` has `body` (indented by 2) after its name.
fn exec_pipeline(body: &str) -> String {
    format!("kind: pipeline\ntype: exec\nname: p\nsteps:\n- name: s\n{body}")
}

#[test]
fn lint_accepts_variables_wherever_a_value_goes() {
    let cases = [
        (
            "joined by text",
            "  environment:\n    IMAGE_TAG: ${A}-${B}\n  commands: [env]\n",
        ),
        (
            "alone as a list item",
            "  commands:\n  - ${SCRIPT}\n  - echo done\n",
        ),
        (
            "the whole value",
            "  environment:\n    TAG: ${DRONE_TAG}\n  commands: [env]\n",
        ),
        (
            "inside a quoted string",
            "  environment:\n    Q: \"${A}-${B}: ${C}\"\n    S: '- ${A}'\n  commands: [env]\n",
        ),
        (
            "with a default",
            "  environment:\n    D: ${VAR:-default}\n    E: ${VAR:-}-x\n  commands:\n  - echo ${VAR:-${A}}-${B}\n",
        ),
        ("in a flow list", "  commands: [\"echo ${A}\", ${A}-${B}]\n"),
        ("separated by a colon", "  commands:\n  - ${A}:${B}\n"),
        ("a size", "  mem_limit: ${MEM}\n  commands: [env]\n"),
    ];
    for (case, body) in cases {
        let text = exec_pipeline(body);
        let dir = workspace(&text);
        let r = run(dir.path(), &["lint"]);
        assert_eq!(
            r.code, 0,
            "{case}: refused\n{text}\n{}{}",
            r.stdout, r.stderr
        );
    }
}

#[test]
fn lint_keeps_two_variables_apart_and_still_reports_real_problems() {
    // Two names from two variables are not duplicates.
    let text = "kind: pipeline\ntype: exec\nsteps:\n- name: ${A}\n  commands: [a]\n- name: ${B}\n  commands: [b]\n  depends_on: [\"${A}\"]\n";
    let dir = workspace(text);
    let r = run(dir.path(), &["lint"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // The same variable twice is the same name at run time too.
    let text = "kind: pipeline\ntype: exec\nsteps:\n- name: ${A}\n  commands: [a]\n- name: ${A}\n  commands: [b]\n";
    let dir = workspace(text);
    let r = run(dir.path(), &["lint"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("duplicate"), "{}", r.stdout);
    // A malformed expression is still refused.
    let dir = workspace(&exec_pipeline("  commands:\n  - echo ${A-d}\n"));
    let r = run(dir.path(), &["lint"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("variable substitution failed"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unknown_event_is_refused_with_exit_2_listing_drones_events() {
    let dir = workspace(&exec_pipeline("  commands: [echo ran]\n"));
    for args in [
        &["exec", "--event", "puhs"][..],
        &["exec", "--event", "Push"],
        &["exec", "--event", ""],
    ] {
        let r = run(dir.path(), args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(!r.stdout.contains("ran"), "nothing ran: {}", r.stdout);
        assert!(
            r.stderr
                .contains("push, pull_request, tag, promote, rollback, cron, custom"),
            "{args:?}: {}",
            r.stderr
        );
    }
    for event in [
        "push",
        "pull_request",
        "tag",
        "promote",
        "rollback",
        "cron",
        "custom",
    ] {
        let r = run(dir.path(), &["exec", "--event", event]);
        assert_eq!(r.code, 0, "{event}: {}{}", r.stdout, r.stderr);
    }
}

#[test]
fn a_command_read_as_a_map_says_to_quote_it() {
    let text = exec_pipeline("  commands:\n  - echo start\n  - echo key: value\n");
    let dir = workspace(&text);
    for command in ["lint", "exec"] {
        let r = run(dir.path(), &[command]);
        assert_eq!(r.code, 2, "{command}: {}{}", r.stdout, r.stderr);
        let message = r.stderr.lines().next().unwrap_or_default();
        for part in [
            "steps[0].commands[1]",
            "in step \"s\"",
            "quote the command: - 'echo key: value'",
            "at line 8, column 5",
        ] {
            assert!(
                message.contains(part),
                "{command}: no {part:?} in {message}"
            );
        }
    }
}

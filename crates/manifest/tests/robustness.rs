//! Property tests: parse, lint, compile and envsubst never panic, whatever
//! the input (the cargo-fuzz targets in `fuzz/` explore further).

use proptest::prelude::*;
use runnerkit_manifest::{CompileContext, Compiler, Manifest, envsubst, lint_file};

mod support;

/// Pieces of real pipelines, glued in random order and indentation: most
/// results are invalid YAML in interesting ways, some parse.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("kind: pipeline\n"),
        Just("type: docker\n"),
        Just("type: exec\n"),
        Just("---\n"),
        Just("steps:\n"),
        Just("services:\n"),
        Just("- name: a\n"),
        Just("- name: b\n  depends_on: [a]\n"),
        Just("  image: alpine\n"),
        Just("  commands: [echo hi]\n"),
        Just("  when: {branch: {exclude: [x]}}\n"),
        Just("  environment: {A: {from_secret: s}, B: 1.10}\n"),
        Just("  settings: {tags: [1, a], m: {k: v}}\n"),
        Just("x: &a {image: x}\n"),
        Just("- <<: *a\n  name: c\n"),
        Just("  mem_limit: 1.5g\n"),
        Just("volumes: [{name: v, temp: {}}]\n"),
        Just("  volumes: [{name: v, path: /v}]\n"),
        Just("-\n"),
        Just("  - \n"),
        Just(": :\n"),
        Just("[{\n"),
        Just("\"unterminated\n"),
        Just("...\n"),
        Just("*nope\n"),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn parse_lint_compile_never_panic(text in yamlish()) {
        if let Ok(manifest) = Manifest::parse(&text) {
            let _ = lint_file(&manifest, &support::types(), false);
            let ctx = CompileContext { spec_id: "p".into(), ..CompileContext::default() };
            for p in manifest.pipelines() {
                let _ = support::prepare(&text, Some(p.display_name()), false, &Compiler::default(), &ctx);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = Manifest::parse(&text);
    }

    #[test]
    fn envsubst_never_panics_and_leaves_dollar_free_text_alone(
        text in "[a-zA-Z0-9 ${}:#%/^,=+\\-\\\\\n]{0,80}"
    ) {
        let unset = envsubst(&text, |_| None);
        let _ = envsubst(&text, |name| Some(format!("{name}é\n")));
        if !text.contains('$') {
            prop_assert_eq!(unset, Ok(text.clone()));
        }
    }
}

//! Parse, lint and compile arbitrary text: nothing may panic, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runnerkit_manifest::{CompileContext, Compiler, Manifest, lint, lint_manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    let _ = lint_manifest(&manifest);
    let ctx = CompileContext {
        spec_id: "fuzz".into(),
        ..CompileContext::default()
    };
    for pipeline in manifest.pipelines() {
        let _ = lint(pipeline, false);
        let _ = Compiler::default().compile(pipeline, &ctx);
    }
});

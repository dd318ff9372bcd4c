//! Parse, lint and assemble arbitrary text: nothing may panic, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runnerkit_manifest::{
    CompileContext, Compiler, Manifest, PipelineType, StageInput, TypeRegistry, assemble,
    lint_file,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    let types = TypeRegistry::new()
        .with(PipelineType::docker())
        .with(PipelineType::exec());
    let _ = lint_file(&manifest, &types, false);
    let ctx = CompileContext {
        spec_id: "fuzz".into(),
        ..CompileContext::default()
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    for pipeline in manifest.pipelines() {
        let _ = runtime.block_on(assemble(StageInput {
            text,
            pipeline: Some(pipeline.display_name()),
            trusted: false,
            types: &types,
            compiler: &Compiler::default(),
            context: &ctx,
            parsed: None,
        }));
    }
});

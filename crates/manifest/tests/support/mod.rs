//! The stage assembly as the tests call it: docker and exec served, the
//! file's encrypted `kind: secret` documents asked after the context's own
//! sources (as `runnerkit exec` does), run to completion on a one-thread
//! runtime.

#![allow(dead_code)]

use std::sync::Arc;

use runnerkit_manifest::{
    CombinedSecrets, CompileContext, Compiled, Compiler, DocumentSecrets, Error, Parsed,
    PipelineType, StageInput, TypeRegistry, assemble,
};

/// The types `runnerkit` serves.
pub fn types() -> TypeRegistry {
    TypeRegistry::new()
        .with(PipelineType::docker())
        .with(PipelineType::exec())
}

/// Assembles the pipeline `name` (`None`: the first) of `text`.
pub fn prepare(
    text: &str,
    name: Option<&str>,
    trusted: bool,
    compiler: &Compiler,
    ctx: &CompileContext,
) -> Result<Compiled, Error> {
    prepare_with(&types(), text, name, trusted, compiler, ctx)
}

/// [`prepare`] with the types given.
pub fn prepare_with(
    types: &TypeRegistry,
    text: &str,
    name: Option<&str>,
    trusted: bool,
    compiler: &Compiler,
    ctx: &CompileContext,
) -> Result<Compiled, Error> {
    prepare_reusing(types, text, name, trusted, compiler, ctx, None)
}

/// [`prepare_with`], offering `assemble` the file as `parsed` parsed it.
pub fn prepare_reusing(
    types: &TypeRegistry,
    text: &str,
    name: Option<&str>,
    trusted: bool,
    compiler: &Compiler,
    ctx: &CompileContext,
    parsed: Option<&Parsed>,
) -> Result<Compiled, Error> {
    let ctx = CompileContext {
        secrets: Arc::new(
            CombinedSecrets::new()
                .with_shared(ctx.secrets.clone())
                .with(DocumentSecrets),
        ),
        ..ctx.clone()
    };
    let input = StageInput {
        text,
        pipeline: name,
        trusted,
        types,
        compiler,
        context: &ctx,
        parsed,
    };
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(assemble(input))
}

//! The pipeline language's cost: envsubst + parse + lint + compile of a
//! 200-step `.drone.yml`, through `runnerkit_manifest::assemble` as the
//! runner calls it for each stage.
//!
//! Run: `cargo bench --bench manifest` (prints a Markdown table).
//!
//! The pipeline (about 40 KB) uses what real ones do: a YAML anchor merged into
//! every step, `${...}` substitutions, `when` conditions, `depends_on`,
//! plugin `settings` (lists and maps), `from_secret` environment, a service,
//! and volumes.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runnerkit::manifest::{
    CompileContext, Compiled, Compiler, PipelineType, StageInput, StaticSecrets, TypeRegistry,
    assemble,
};

/// One assembly, as a runner does it for a stage.
fn prepare(
    runtime: &tokio::runtime::Runtime,
    text: &str,
    types: &TypeRegistry,
    compiler: &Compiler,
    ctx: &CompileContext,
) -> Compiled {
    runtime
        .block_on(assemble(StageInput {
            text,
            pipeline: None,
            trusted: true,
            types,
            compiler,
            context: ctx,
            parsed: None,
        }))
        .expect("the pipeline compiles")
}

const STEPS: usize = 200;
const RUNS: usize = 50;

fn pipeline() -> String {
    let mut y = String::from(
        "kind: pipeline\ntype: docker\nname: default\n\n\
         x-common: &common\n  image: golang:${GO_VERSION=1.22}\n  pull: if-not-exists\n  \
         environment:\n    GOFLAGS: -mod=vendor\n    CGO_ENABLED: \"0\"\n\n\
         volumes:\n- name: cache\n  temp: {}\n\n\
         services:\n- name: db\n  image: postgres:16\n  environment:\n    POSTGRES_PASSWORD: {from_secret: db_password}\n\n\
         steps:\n",
    );
    for i in 0..STEPS {
        let _ = write!(
            y,
            "- name: step-{i}\n  <<: *common\n  commands:\n  - echo building ${{DRONE_REPO_NAME}} at ${{DRONE_COMMIT_SHA:0:8}}\n  \
             - go test ./pkg/{i}/...\n  - echo \"${{DRONE_BRANCH/\\//-}}-{i}\"\n  \
             volumes:\n  - name: cache\n    path: /go/pkg\n  \
             environment:\n    TOKEN: {{from_secret: token}}\n    STEP: \"{i}\"\n  \
             when:\n    branch: [main, release/*]\n    event:\n      exclude: [promote]\n",
        );
        if i > 0 {
            let _ = writeln!(y, "  depends_on: [step-{}]", i - 1);
        }
        if i % 10 == 9 {
            let _ = write!(
                y,
                "- name: publish-{i}\n  image: plugins/docker\n  settings:\n    repo: octo/app\n    \
                 tags: [latest, \"${{DRONE_TAG=dev}}\", \"{i}\"]\n    password: {{from_secret: token}}\n    \
                 build_args:\n      VERSION: \"{i}\"\n  depends_on: [step-{i}]\n",
            );
        }
    }
    y
}

fn main() {
    let text = pipeline();
    let mut ctx = CompileContext {
        spec_id: "bench".into(),
        secrets: Arc::new(StaticSecrets::new(
            [
                ("token".to_owned(), "t0k3n-value".to_owned()),
                ("db_password".to_owned(), "hunter2".to_owned()),
            ]
            .into(),
        )),
        ..CompileContext::default()
    };
    ctx.build.event = "push".into();
    ctx.build.target = "main".into();
    ctx.build.after = "0123456789abcdef0123456789abcdef01234567".into();
    ctx.repo.name = "app".into();
    let compiler = Compiler::default();
    let types = TypeRegistry::new().with(PipelineType::docker());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let compiled = prepare(&runtime, &text, &types, &compiler, &ctx);
            let elapsed = t.elapsed();
            assert!(compiled.spec.steps.len() > STEPS, "every step compiled");
            elapsed
        })
        .collect();
    times.sort();
    let steps = prepare(&runtime, &text, &types, &compiler, &ctx)
        .spec
        .steps
        .len();
    println!("| pipeline | bytes | steps compiled | median | p90 |");
    println!("|---|---|---|---|---|");
    println!(
        "| {STEPS} steps + {} plugin steps + 1 service | {} | {steps} | {:.2} ms | {:.2} ms |",
        STEPS / 10,
        text.len(),
        times[RUNS / 2].as_secs_f64() * 1e3,
        times[RUNS * 9 / 10].as_secs_f64() * 1e3,
    );
}

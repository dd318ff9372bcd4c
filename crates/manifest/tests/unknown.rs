//! Typos and empty files (issue 13): every key no one reads is a warning
//! with its line and the key probably meant; an engine's own keys are not
//! unknown for pipelines of its type; a host step without `commands` is a
//! lint error; the warnings reach `Compiled::warnings` once each.

use runnerkit_manifest::{
    CompileContext, Compiler, EngineKeys, Error, KeyLevel, LintError, LintRule, Manifest,
    PipelineType, TypeRegistry, lint_file, lint_file_warnings, lint_warnings,
};

mod support;

fn warnings(text: &str) -> Vec<LintError> {
    let manifest = Manifest::parse(text).unwrap();
    lint_file_warnings(&manifest, &support::types())
}

fn said(found: &[LintError]) -> Vec<String> {
    found.iter().map(ToString::to_string).collect()
}

fn ctx() -> CompileContext {
    CompileContext {
        spec_id: "t".into(),
        clone: false,
        host_workspace: Some("/tmp/ws".into()),
        ..CompileContext::default()
    }
}

#[test]
fn every_level_warns_with_the_line_and_the_key_meant() {
    let text = "\
kind: pipeline
type: docker
name: ci
stpes: []
trigger:
  evnt: push
volumes:
- name: cache
  tmep: {}
- name: ram
  temp: {medum: memory}
services:
- name: db
  image: postgres
  enviroment: {A: b}
steps:
- name: build
  image: golang
  comands: [go build]
  settings: {anything: goes, comands: too}
  environment: {FREE: form}
  when:
    brnach: main
  volumes:
  - name: cache
    pth: /go
platform: {oss: linux}
";
    let found = warnings(text);
    assert!(found.iter().all(|w| w.rule == LintRule::UnknownKey));
    assert_eq!(
        said(&found),
        [
            "pipeline \"ci\" (line 4): unknown key `stpes`, ignored (did you mean `steps`?)",
            "pipeline \"ci\" (line 6): unknown key `evnt` in `trigger`, ignored (did you mean `event`?)",
            "pipeline \"ci\" (line 9): unknown key `tmep` in `volumes[0]`, ignored (did you mean `temp`?)",
            "pipeline \"ci\" (line 11): unknown key `medum` in `volumes[1].temp`, ignored (did you mean `medium`?)",
            "pipeline \"ci\", step \"db\" (line 15): unknown key `enviroment`, ignored (did you mean `environment`?)",
            "pipeline \"ci\", step \"build\" (line 19): unknown key `comands`, ignored (did you mean `commands`?)",
            "pipeline \"ci\", step \"build\" (line 23): unknown key `brnach` in `when`, ignored (did you mean `branch`?)",
            "pipeline \"ci\", step \"build\" (line 26): unknown key `pth` in `volumes[0]`, ignored (did you mean `path`?)",
            "pipeline \"ci\" (line 27): unknown key `oss` in `platform`, ignored (did you mean `os`?)",
        ]
    );
    let p = Manifest::parse(text).unwrap();
    let keys = &p.pipeline(None).unwrap().unknown_keys;
    assert_eq!(keys[4].level, KeyLevel::Service);
    assert_eq!(keys[6].path, "steps[0].when");
}

#[test]
fn far_keys_warn_without_a_guess() {
    let text = "kind: pipeline\ntype: exec\nsteps:\n- name: a\n  commands: [ls]\n  script: x\n";
    assert_eq!(
        said(&warnings(text)),
        ["pipeline \"default\", step \"a\" (line 6): unknown key `script`, ignored"]
    );
}

#[test]
fn anchor_holders_are_not_typos() {
    // `x-` as in Docker Compose, or any key whose value is anchored.
    let text = "\
kind: pipeline
type: docker
x-go: &go
  image: golang
defaults: &defaults
  pull: always
\"quoted\": &q {}
.hidden: &h 1
steps:
- name: a
  <<: [*go, *defaults]
  commands: [ls]
  x-note: why not
";
    assert_eq!(said(&warnings(text)), Vec::<String>::new());
    // A key with no anchor is one, whatever it looks like.
    assert_eq!(warnings(&format!("{text}.hidden2: 1\n")).len(), 1);
}

#[test]
fn a_typo_merged_from_an_anchor_warns_in_each_step_that_merges_it() {
    let text = "\
kind: pipeline
x-common: &common
  image: golang
  comands: [go test]
steps:
- name: a
  <<: *common
- name: b
  <<: *common
";
    let found = warnings(text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!((found[0].step.as_deref(), found[0].line), (Some("a"), 7));
    assert_eq!((found[1].step.as_deref(), found[1].line), (Some("b"), 9));
}

struct VmKeys;

impl EngineKeys for VmKeys {
    type Pipeline = ();
    type Step = ();

    fn pipeline_keys(&self) -> &[&'static str] {
        &["node_selector"]
    }

    fn step_keys(&self) -> &[&'static str] {
        &["resources"]
    }
}

#[test]
fn an_engines_keys_are_known_for_its_type_only() {
    let vm = PipelineType::container("vm").with_keys(VmKeys);
    let types = TypeRegistry::new().with(vm.clone());
    let body = "node_selector: {a: b}\nsteps:\n- name: a\n  image: x\n  resources: {cpu: 1}\n  resorces: {}\n";
    let text = format!("kind: pipeline\ntype: vm\n{body}");
    let manifest = Manifest::parse(&text).unwrap();
    let found = lint_warnings(manifest.pipeline(None).unwrap(), &vm);
    assert_eq!(
        said(&found),
        [
            "pipeline \"default\", step \"a\" (line 8): unknown key `resorces`, ignored (did you mean `resources`?)"
        ],
        "an engine key is a candidate for the guess too"
    );
    assert_eq!(lint_file_warnings(&manifest, &types).len(), 1);
    // As a docker pipeline, the same keys are unknown.
    let docker = format!("kind: pipeline\ntype: docker\n{body}");
    assert_eq!(warnings(&docker).len(), 3);
    // A type not served is another runner's: its keys are not ours to judge.
    assert_eq!(lint_file_warnings(&manifest, &support::types()), []);
}

#[test]
fn a_host_step_without_commands_has_nothing_to_run() {
    let text = "kind: pipeline\ntype: exec\nsteps:\n- name: build\n  comands:\n  - make\n- name: lone\n- name: other\n  script: make\n";
    let manifest = Manifest::parse(text).unwrap();
    let problems = lint_file(&manifest, &support::types(), false);
    assert!(problems.iter().all(|p| p.rule == LintRule::NothingToRun));
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "step \"build\" has nothing to run (did you mean commands? found \"comands\" at line 5)",
            "step \"lone\" has nothing to run (no commands)",
            "step \"other\" has nothing to run (no commands; found the unknown key \"script\" at line 9)",
        ]
    );
    assert_eq!(problems[0].line, 4);
    // Refused before anything starts.
    let err = support::prepare(text, None, false, &Compiler::default(), &ctx()).unwrap_err();
    let Error::Lint(problems) = err else {
        panic!("not a lint error: {err}")
    };
    assert_eq!(problems.len(), 3);
    // A host step may run a program instead of a script.
    let program = "kind: pipeline\ntype: exec\nsteps:\n- name: p\n  entrypoint: [/bin/echo]\n  command: [hi]\n";
    assert_eq!(
        lint_file(&Manifest::parse(program).unwrap(), &support::types(), false),
        []
    );
    // A container step runs its image's entrypoint: no commands needed.
    let docker = "kind: pipeline\nsteps:\n- name: plugin\n  image: plugins/docker\n";
    assert_eq!(
        lint_file(&Manifest::parse(docker).unwrap(), &support::types(), false),
        []
    );
}

#[test]
fn compiled_warnings_carry_duplicate_and_unknown_keys_once_each() {
    let text = "\
kind: pipeline
type: exec
name: ci
stpes: 1
steps:
- name: build
  commands: [make]
  commands: [make all]
  enviroment: {A: b}
---
kind: pipeline
type: exec
name: other
steps:
- name: x
  commands: [ls]
  commands: [ls]
";
    let compiled = support::prepare(text, Some("ci"), false, &Compiler::default(), &ctx()).unwrap();
    let got: Vec<(Option<&str>, &str)> = compiled
        .warnings
        .iter()
        .map(|w| (w.step.as_deref(), w.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                None,
                "line 8: steps[0]: duplicate mapping key `commands`: the last one wins, as in Drone"
            ),
            (
                None,
                "line 4: unknown key `stpes`, ignored (did you mean `steps`?)"
            ),
            (
                Some("build"),
                "line 9: unknown key `enviroment`, ignored (did you mean `environment`?)"
            ),
        ],
        "the other pipeline's duplicate is not this stage's"
    );
    // The file's warnings: both duplicates, each naming its pipeline.
    let all = warnings(text);
    let duplicates: Vec<&str> = all
        .iter()
        .filter(|w| w.rule == LintRule::DuplicateKey)
        .map(|w| w.pipeline.as_str())
        .collect();
    assert_eq!(duplicates, ["ci", "other"]);
}

#[test]
fn an_empty_file_is_refused_by_name() {
    for text in ["", "# nothing\n", "kind: secret\nname: a\ndata: x\n"] {
        let err = support::prepare(text, None, false, &Compiler::default(), &ctx()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the file has no pipeline (no `kind: pipeline` document)",
            "{text:?}"
        );
    }
}

#[test]
fn many_unknown_keys_cost_linear_time() {
    // 20,000 unknown keys and a key of a megabyte: each is compared with a
    // few dozen known keys at most, and a key far longer than any known one
    // costs nothing to compare.
    let mut text =
        String::from("kind: pipeline\ntype: exec\nsteps:\n- name: a\n  commands: [ls]\n");
    for i in 0..20_000 {
        text.push_str(&format!("  key{i}: x\n"));
    }
    // An explicit key (`? `): YAML caps implicit ones at 1024 characters.
    text.push_str(&format!("  ? {}\n  : x\n", "k".repeat(1 << 20)));
    let started = std::time::Instant::now();
    assert_eq!(warnings(&text).len(), 20_001);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

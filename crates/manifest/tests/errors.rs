//! What users see when a pipeline file is wrong: parse errors with the line,
//! lint problems all at once, substitution errors naming the expression.

use runnerkit_manifest::{CompileContext, Compiler, Error, LintRule, Manifest, ParseError};

mod support;
use support::prepare;

fn parse_err(text: &str) -> ParseError {
    Manifest::parse(text).expect_err("should not parse")
}

#[test]
fn wrong_list_shape_names_path_line_and_what_was_found() {
    let text = "\
kind: pipeline
type: docker
name: default

steps:
- name: build
  image: golang
  commands:
  - go build
- name: test
  image: golang
- name: publish
  image: plugins/docker
  depends_on:
    build: true
";
    let err = parse_err(text);
    assert_eq!(err.line(), 15);
    assert_eq!(
        err.to_string(),
        "document 1 (line 1): steps[2].depends_on: expected a list of step names, found a map at line 15, column 5"
    );
}

#[test]
fn scalar_where_a_list_is_expected() {
    let err = parse_err("kind: pipeline\nsteps:\n- name: a\n  commands: make\n");
    assert_eq!(err.line(), 4);
    assert!(
        err.to_string()
            .contains("steps[0].commands: expected a list of commands, found string \"make\""),
        "{err}"
    );
}

#[test]
fn bad_boolean_and_bad_byte_size() {
    let err = parse_err("kind: pipeline\nsteps:\n- name: a\n  privileged: maybe\n");
    assert_eq!(err.line(), 4);
    assert!(err.to_string().contains("steps[0].privileged"), "{err}");
    let err = parse_err("kind: pipeline\nsteps:\n- name: a\n  mem_limit: 2 gallons\n");
    assert_eq!(err.line(), 4);
    assert!(err.to_string().contains("byte size"), "{err}");
}

#[test]
fn syntax_error_in_a_later_document_has_its_file_line() {
    let text = "kind: pipeline\nname: one\n---\nkind: pipeline\nname: two\nsteps:\n- name: a\n  image: \"unterminated\n";
    let err = parse_err(text);
    assert!(err.line() >= 8, "line {}", err.line());
    assert!(err.to_string().starts_with("document 2 (line 3)"), "{err}");
}

#[test]
fn unknown_anchor_points_at_the_alias() {
    let err = parse_err("kind: pipeline\nsteps:\n- name: a\n  image: *nowhere\n");
    assert_eq!(err.line(), 4);
}

#[test]
fn scalar_include_is_rejected_with_its_line() {
    let err =
        parse_err("kind: pipeline\nsteps:\n- name: a\n  when:\n    branch:\n      include: main\n");
    assert_eq!(err.line(), 6);
    assert!(err.to_string().contains("steps[0].when.branch"), "{err}");
}

#[test]
fn from_secret_at_pipeline_level_is_refused() {
    let err = parse_err("kind: pipeline\nenvironment:\n  T:\n    from_secret: x\nsteps: []\n");
    assert!(err.to_string().contains("from_secret"), "{err}");
}

fn ctx() -> CompileContext {
    CompileContext {
        spec_id: "t".into(),
        ..CompileContext::default()
    }
}

#[test]
fn prepare_reports_every_lint_problem_at_once() {
    let text = "\
kind: pipeline
type: docker
name: ci
steps:
- name: a
  privileged: true
- name: a
  image: alpine
  depends_on: [missing]
";
    let Err(Error::Lint(problems)) = prepare(text, None, false, &Compiler::default(), &ctx())
    else {
        panic!("expected lint errors");
    };
    let rules: Vec<LintRule> = problems.iter().map(|p| p.rule).collect();
    assert_eq!(
        rules,
        [
            LintRule::MissingImage,
            LintRule::Untrusted,
            LintRule::DuplicateName,
            LintRule::UnknownDependency
        ]
    );
    assert!(problems.iter().all(|p| p.pipeline == "ci"));
    assert_eq!(problems[2].line, 7);
}

#[test]
fn prepare_names_the_bad_substitution() {
    let err = prepare(
        "kind: pipeline\nsteps:\n- name: a\n  image: ${{ matrix.image }}\n",
        None,
        true,
        &Compiler::default(),
        &ctx(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Envsubst(_)));
    assert!(err.to_string().contains("line 4"), "{err}");
}

#[test]
fn prepare_lists_the_pipelines_when_the_name_is_unknown() {
    let text = "kind: pipeline\nname: a\nsteps: []\n---\nkind: pipeline\nname: b\nsteps: []\n";
    let err = prepare(text, Some("c"), true, &Compiler::default(), &ctx()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline \"c\" not found (the file has: a, b)"
    );
}

#[test]
fn prepare_refuses_types_the_runner_does_not_serve_naming_those_it_does() {
    let text = "kind: pipeline\ntype: kubernetes\nsteps:\n- name: a\n  image: x\n";
    let err = prepare(text, None, true, &Compiler::default(), &ctx()).unwrap_err();
    assert!(matches!(err, Error::UnknownType { .. }));
    assert_eq!(
        err.to_string(),
        "pipeline \"default\": type \"kubernetes\" is not served here (this runner serves: docker, exec)"
    );
}

#[test]
fn empty_maps_and_lists_written_as_nothing_are_empty() {
    let text = "\
kind: pipeline
platform:
trigger:
clone:
workspace:
volumes:
- name: scratch
  temp:
steps:
- name: a
  image: alpine
  environment:
  settings:
  when:
  depends_on:
  commands:
  volumes:
";
    let m = Manifest::parse(text).expect("nulls read as empty");
    let p = m.pipeline(None).unwrap();
    let step = p.steps[0].value.as_ref().unwrap();
    assert!(step.environment.is_empty() && step.settings.is_empty() && step.commands.is_empty());
    assert!(p.volumes[0].value.temp.is_none());
}

#[test]
fn prepare_finds_kind_secret_documents_with_the_repository_key() {
    // Made outside Rust (Python's `cryptography` AESGCM) with the repository
    // key below and a fixed nonce; the value is `from-doc`.
    let data = include_str!("fixtures/doc_token.b64").trim();
    let text = format!(
        "kind: pipeline\nsteps:\n- name: a\n  image: alpine\n  environment:\n    T: {{from_secret: doc_token}}\n---\nkind: secret\nname: doc_token\ndata: {data}\n"
    );
    let mut keyed = ctx();
    keyed.repo.secret = "0123456789abcdef0123456789abcdef".into();
    let compiled = prepare(&text, None, true, &Compiler::default(), &keyed).unwrap();
    let step = compiled.spec.steps.iter().find(|s| s.name == "a").unwrap();
    assert_eq!(step.secrets[0].value, "from-doc");
    assert!(compiled.warnings.is_empty());
    // Without the key the secret is not found: a warning, not an error.
    let compiled = prepare(&text, None, true, &Compiler::default(), &ctx()).unwrap();
    assert_eq!(compiled.warnings.len(), 1);
}

#[test]
fn runner_volumes_and_network_options_reach_every_container_step() {
    let text = "kind: pipeline\nsteps:\n- name: a\n  image: alpine\n";
    let compiler = Compiler {
        runner_volumes: vec!["/var/cache/ci:/cache:ro".into()],
        network_options: [(
            "com.docker.network.driver.mtu".to_owned(),
            "1400".to_owned(),
        )]
        .into(),
        ..Compiler::default()
    };
    let compiled = prepare(text, None, true, &compiler, &ctx()).unwrap();
    let spec = &compiled.spec;
    assert_eq!(spec.steps.len(), 2, "clone and a");
    for step in &spec.steps {
        assert_eq!(step.volumes.len(), 1, "{}", step.name);
        assert!(step.volumes[0].read_only);
        assert_eq!(step.volumes[0].path, "/cache");
    }
    assert_eq!(
        spec.network.options["com.docker.network.driver.mtu"],
        "1400"
    );
    let bad = Compiler {
        runner_volumes: vec!["nope".into()],
        ..Compiler::default()
    };
    let err = prepare(text, None, true, &bad, &ctx()).unwrap_err();
    assert!(err.to_string().contains("runner volume \"nope\""), "{err}");
}

//! Every value form Drone accepts where the reference (§5, §3, §4, §9.3)
//! lists one: step and service `environment` (a scalar, `{value: TEXT}`,
//! `{from_secret: NAME}`), pipeline `environment` (plain values), and
//! `settings` (any YAML, `{from_secret: NAME}`), in block and flow style,
//! for docker and exec pipelines alike, compiled the way a stage is.

use std::collections::BTreeMap;
use std::sync::Arc;

use runnerkit_core::{SecretVar, Step};
use runnerkit_manifest::{CompileContext, Compiled, Compiler, Error, StaticSecrets};

mod support;
use support::prepare;

fn ctx() -> CompileContext {
    CompileContext {
        spec_id: "v".into(),
        clone: false,
        secrets: Arc::new(StaticSecrets::new(BTreeMap::from([
            ("api_token".to_owned(), "t0ken".to_owned()),
            ("docker_password".to_owned(), "pw".to_owned()),
        ]))),
        ..CompileContext::default()
    }
}

fn compile(text: &str) -> Compiled {
    prepare(text, None, false, &Compiler::default(), &ctx())
        .unwrap_or_else(|e| panic!("should compile: {e}\n{text}"))
}

fn refuse(text: &str) -> String {
    match prepare(text, None, false, &Compiler::default(), &ctx()) {
        Ok(_) => panic!("should be refused:\n{text}"),
        Err(Error::Parse(e)) => e.to_string(),
        Err(other) => panic!("refused, but not by the parser: {other}"),
    }
}

fn step<'a>(c: &'a Compiled, name: &str) -> &'a Step {
    c.spec
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn secret<'a>(step: &'a Step, env: &str) -> Option<&'a SecretVar> {
    step.secrets.iter().find(|s| s.env == env)
}

/// A pipeline of `kind_type` with one step `s` (and, for docker, one service
/// `db`), each with `env` as its `environment` block, indented by 4.
fn with_step_env(kind_type: &str, env: &str) -> String {
    let image = if kind_type == "docker" {
        "  image: alpine\n"
    } else {
        ""
    };
    let service = if kind_type == "docker" {
        format!("services:\n- name: db\n  image: postgres\n  environment:\n{env}")
    } else {
        String::new()
    };
    format!(
        "kind: pipeline\ntype: {kind_type}\nname: p\n{service}steps:\n- name: s\n{image}  commands: [env]\n  environment:\n{env}"
    )
}

const BLOCK_ENV: &str = "    \
PLAIN: -mod=vendor
    NUMBER: 1.10
    BOOL: yes
    OCTAL: 010
    EMPTY:
    VALUE:
      value: hello world
    VALUE_NUMBER:
      value: 1.10
    VALUE_BOOL:
      value: on
    VALUE_EMPTY:
      value:
    TOKEN:
      from_secret: api_token
";

const FLOW_ENV: &str = "    \
PLAIN: -mod=vendor
    NUMBER: 1.10
    BOOL: yes
    OCTAL: 010
    EMPTY: ~
    VALUE: {value: \"hello world\"}
    VALUE_NUMBER: {value: 1.10}
    VALUE_BOOL: {value: on}
    VALUE_EMPTY: {value: }
    TOKEN: {from_secret: api_token}
";

#[test]
fn step_and_service_environment_take_every_form_in_both_styles_and_pipeline_types() {
    for kind_type in ["docker", "exec"] {
        for (style, env) in [("block", BLOCK_ENV), ("flow", FLOW_ENV)] {
            let c = compile(&with_step_env(kind_type, env));
            let names: &[&str] = if kind_type == "docker" {
                &["db", "s"]
            } else {
                &["s"]
            };
            for name in names {
                let s = step(&c, name);
                let at = format!("{kind_type}, {style}, step {name}");
                let env = &s.environment;
                assert_eq!(env["PLAIN"], "-mod=vendor", "{at}");
                assert_eq!(env["NUMBER"], "1.10", "{at}");
                assert_eq!(env["BOOL"], "yes", "{at}");
                assert_eq!(env["OCTAL"], "010", "{at}");
                assert_eq!(env["VALUE"], "hello world", "{at}");
                assert_eq!(env["VALUE_NUMBER"], "1.10", "{at}: kept as written");
                assert_eq!(env["VALUE_BOOL"], "on", "{at}: kept as written");
                assert!(!env.contains_key("EMPTY"), "{at}: empty values are dropped");
                assert!(!env.contains_key("VALUE_EMPTY"), "{at}");
                assert!(!env.contains_key("TOKEN"), "{at}: a secret is no plain var");
                let token = secret(s, "TOKEN").unwrap_or_else(|| panic!("{at}: no TOKEN"));
                assert_eq!(token.value, "t0ken", "{at}");
                assert!(token.mask, "{at}");
            }
        }
    }
}

#[test]
fn pipeline_environment_takes_plain_values_and_the_value_form() {
    for kind_type in ["docker", "exec"] {
        let text = format!(
            "kind: pipeline\ntype: {kind_type}\nenvironment:\n  A: 1.10\n  B:\n    value: block\n  C: {{value: flow}}\n  D: {{value: 010}}\nsteps:\n- name: s\n  image: alpine\n  commands: [env]\n"
        );
        let c = compile(&text);
        let env = &step(&c, "s").environment;
        assert_eq!(
            (&*env["A"], &*env["B"], &*env["C"], &*env["D"]),
            ("1.10", "block", "flow", "010"),
            "{kind_type}"
        );
    }
}

#[test]
fn pipeline_environment_still_refuses_from_secret() {
    let err = refuse(
        "kind: pipeline\nenvironment:\n  T: {from_secret: api_token}\nsteps:\n- name: s\n  image: alpine\n",
    );
    assert!(err.contains("environment"), "{err}");
    assert!(err.contains("takes no from_secret"), "{err}");
}

#[test]
fn settings_take_plain_nested_and_secret_values_in_both_styles() {
    let block = "\
kind: pipeline
steps:
- name: publish
  image: plugins/docker
  settings:
    repo: example/app
    dry_run: yes
    tags:
    - latest
    - \"1.2\"
    build_args:
      - name: a
    labels:
      team: ci
      tier:
        value: 1
    value_map:
      value: x
    password:
      from_secret: docker_password
";
    let flow = "\
kind: pipeline
steps:
- name: publish
  image: plugins/docker
  settings: {repo: example/app, dry_run: yes, tags: [latest, \"1.2\"], build_args: [{name: a}], labels: {team: ci, tier: {value: 1}}, value_map: {value: x}, password: {from_secret: docker_password}}
";
    for (style, text) in [("block", block), ("flow", flow)] {
        let c = compile(text);
        let s = step(&c, "publish");
        let env = &s.environment;
        assert_eq!(env["PLUGIN_REPO"], "example/app", "{style}");
        assert_eq!(env["PLUGIN_DRY_RUN"], "true", "{style}");
        assert_eq!(env["PLUGIN_TAGS"], "latest,1.2", "{style}");
        assert_eq!(env["PLUGIN_BUILD_ARGS"], r#"[{"name":"a"}]"#, "{style}");
        assert_eq!(
            env["PLUGIN_LABELS"], r#"{"team":"ci","tier":{"value":1}}"#,
            "{style}: nested maps are JSON"
        );
        assert_eq!(
            env["PLUGIN_VALUE_MAP"], r#"{"value":"x"}"#,
            "{style}: under settings, {{value}} is a map like any other, as in Drone"
        );
        let password = secret(s, "PLUGIN_PASSWORD").expect("the password secret");
        assert_eq!(password.value, "pw", "{style}");
    }
}

#[test]
fn a_value_map_that_is_no_value_form_is_refused_with_its_path() {
    let env = |value: &str| {
        format!(
            "kind: pipeline\nsteps:\n- name: s\n  image: alpine\n  environment:\n    X: {value}\n"
        )
    };
    let err = refuse(&env("{valeu: x}"));
    assert!(err.contains("steps[0].environment.X"), "{err}");
    assert!(err.contains("`valeu`"), "{err}");
    assert!(err.contains("{value: TEXT}"), "{err}");
    let err = refuse(&env("{value: x, from_secret: api_token}"));
    assert!(err.contains("found both"), "{err}");
    let err = refuse(&env("{value: [a, b]}"));
    assert!(
        err.contains("value: expected a plain value, found a list"),
        "{err}"
    );
    let err = refuse(&env("[a]"));
    assert!(err.contains("found a list"), "{err}");
    let err = refuse(
        "kind: pipeline\nsteps:\n- name: s\n  image: alpine\n  settings:\n    p: {from_secret: docker_password, other: 1}\n",
    );
    assert!(err.contains("steps[0].settings.p"), "{err}");
    assert!(err.contains("no other key, found `other`"), "{err}");
}

//! Targeted compile checks through the public API (the golden snapshots
//! cover whole pipelines).

use runnerkit_core::drone::Netrc;
use runnerkit_core::{PullPolicy, Resources, RunPolicy};
use runnerkit_manifest::{CompileContext, Compiler};

mod support;
use support::prepare;

fn ctx() -> CompileContext {
    CompileContext {
        spec_id: "run7".into(),
        ..CompileContext::default()
    }
}

const DOCKER: &str = "kind: pipeline\nsteps:\n- name: a\n  image: alpine\n  environment:\n    T: {from_secret: nope}\n  commands: [ls]\n- name: b\n  image: alpine\n  mem_limit: 1k\n";

#[test]
fn step_ids_follow_the_spec_id_and_position() {
    let c = prepare(DOCKER, None, true, &Compiler::default(), &ctx()).unwrap();
    let ids: Vec<&str> = c.spec.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["run7-1", "run7-2", "run7-3"]);
    assert_eq!(c.spec.steps[2].environment["DRONE_STEP_NUMBER"], "3");
    assert_eq!(c.spec.steps[2].labels["io.drone.step.name"], "b");
}

#[test]
fn warnings_are_found_per_step() {
    let c = prepare(DOCKER, None, true, &Compiler::default(), &ctx()).unwrap();
    let a: Vec<&str> = c.warnings_for("a").collect();
    assert_eq!(a, ["secret \"nope\" not found: T is not set"]);
    assert_eq!(c.warnings_for("b").count(), 0);
    assert!(!c.spec.steps[1].environment.contains_key("T"));
    assert!(c.spec.steps[1].secrets.is_empty());
}

#[test]
fn clone_image_netrc_only_in_clone_and_default_resources() {
    let compiler = Compiler {
        clone_image: "registry.local/git:2".into(),
        netrc_clone_only: true,
        default_resources: Resources {
            mem_limit: 4096,
            cpu_shares: 100,
            ..Resources::default()
        },
        ..Compiler::default()
    };
    let mut ctx = ctx();
    ctx.netrc = Some(Netrc {
        machine: "git.example.com".into(),
        login: "bot".into(),
        password: "pw".into(),
    });
    let c = prepare(DOCKER, None, true, &compiler, &ctx).unwrap();
    let clone = &c.spec.steps[0];
    assert_eq!(clone.image, "registry.local/git:2");
    assert_eq!(clone.pull, PullPolicy::IfNotExists);
    assert_eq!(clone.run_policy, RunPolicy::Always);
    assert!(
        clone
            .secrets
            .iter()
            .any(|s| s.env == "DRONE_NETRC_PASSWORD" && s.mask)
    );
    assert!(!clone.environment.contains_key("DRONE_NETRC_PASSWORD"));
    let b = &c.spec.steps[2];
    assert!(b.secrets.is_empty(), "netrc only in clone");
    assert_eq!(b.resources.mem_limit, 1024, "the step's own limit wins");
    assert_eq!(
        b.resources.cpu_shares, 100,
        "the runner default fills zeros"
    );
    assert!(c.spec.secrets.iter().any(|s| s.value == "pw" && s.mask));
}

#[test]
fn docker_with_a_host_workspace_bind_mounts_it_at_the_base() {
    let mut ctx = ctx();
    ctx.clone = false;
    ctx.host_workspace = Some("/home/dev/app".into());
    let c = prepare(DOCKER, None, true, &Compiler::default(), &ctx).unwrap();
    assert_eq!(c.spec.workspace.base, "/drone/src");
    assert_eq!(c.spec.workspace.host_path.as_deref(), Some("/home/dev/app"));
    assert_eq!(c.spec.steps.len(), 2, "no clone step");
    assert_eq!(c.spec.steps[0].working_dir, "/drone/src");
}

#[test]
fn exec_without_a_host_workspace_leaves_the_base_to_the_engine() {
    let text = "kind: pipeline\ntype: exec\nclone:\n  disable: true\nsteps:\n- name: a\n  commands: [pwd]\n";
    let c = prepare(text, None, true, &Compiler::default(), &ctx()).unwrap();
    assert_eq!(c.spec.workspace.base, "");
    assert!(c.spec.workspace.host_path.is_none());
    let step = &c.spec.steps[0];
    assert!(!step.environment.contains_key("DRONE_WORKSPACE"));
    assert!(step.image.is_empty());
    assert!(step.working_dir.is_empty());
    let script = step.script.as_ref().unwrap();
    assert_eq!(script.shell, "/bin/sh");
    assert_eq!(script.body, "set -e\n\necho + \"pwd\"\npwd\n");
}

#[test]
fn plain_plugin_steps_keep_no_entrypoint_or_command() {
    let c = prepare(DOCKER, None, true, &Compiler::default(), &ctx()).unwrap();
    assert_eq!(c.spec.id, "run7");
    assert!(c.spec.steps[2].entrypoint.is_empty() && c.spec.steps[2].command.is_empty());
}

#[test]
fn steps_with_the_same_dependencies_share_one_list() {
    let text = "\
kind: pipeline
type: exec
steps:
- name: a
  commands: [true]
- name: b
  commands: [true]
- name: c
  depends_on: [a, b]
  commands: [true]
- name: d
  depends_on: [a, b]
  commands: [true]
- name: e
  depends_on: [c]
  commands: [true]
";
    let c = prepare(text, None, true, &Compiler::default(), &ctx()).unwrap();
    let deps = |name: &str| {
        let step = c.spec.steps.iter().find(|s| s.name == name).unwrap();
        step.depends_on.clone()
    };
    assert_eq!(*deps("c"), ["a", "b"]);
    assert!(std::sync::Arc::ptr_eq(&deps("c"), &deps("d")));
    assert_eq!(*deps("e"), ["c"]);
}

/// A file parsed for another stage serves only a stage whose variables
/// give the same text; any other stage parses its own.
#[test]
fn a_parsed_file_is_reused_only_for_the_same_text() {
    use runnerkit_manifest::Parsed;
    let text = "kind: pipeline\ntype: exec\nname: p\nsteps:\n- name: a\n  commands: [echo ${DRONE_STAGE_NAME}]\n";
    let mut ctx = ctx();
    ctx.stage.name = "p".into();
    let types = support::types();
    let compiler = Compiler::default();
    let run = |parsed: Option<&Parsed>| {
        let compiled = support::prepare_reusing(&types, text, None, false, &compiler, &ctx, parsed)
            .expect("compiles");
        compiled
            .spec
            .steps
            .iter()
            .find(|s| s.name == "a")
            .expect("step a")
            .script
            .as_ref()
            .expect("a script")
            .body
            .clone()
    };
    let own = run(None);
    assert!(own.contains("echo p"), "{own}");
    // Another stage's substitution: not this stage's file.
    let other = Parsed::new(text.replace("${DRONE_STAGE_NAME}", "other")).expect("parses");
    assert_eq!(run(Some(&other)), own);
    // The same text: used as it is (its steps are the file's).
    let same = Parsed::new(text.replace("${DRONE_STAGE_NAME}", "p")).expect("parses");
    assert_eq!(same.text(), text.replace("${DRONE_STAGE_NAME}", "p"));
    assert_eq!(run(Some(&same)), own);
}

/// An empty variable is not set: the stage's empty ones are dropped, and a
/// step's empty value unsets what the pipeline set.
#[test]
fn empty_variables_are_not_set() {
    let text = "kind: pipeline\ntype: exec\nname: p\nenvironment:\n  A: x\n  B: y\nsteps:\n- name: s\n  environment:\n    A: ''\n    C: ''\n    D: d\n  commands: [true]\n";
    let c = prepare(text, None, false, &Compiler::default(), &ctx()).unwrap();
    let env = &c
        .spec
        .steps
        .iter()
        .find(|s| s.name == "s")
        .unwrap()
        .environment;
    assert!(!env.contains_key("A"), "{env:?}");
    assert_eq!(env.get("B").map(String::as_str), Some("y"));
    assert!(!env.contains_key("C"));
    assert_eq!(env.get("D").map(String::as_str), Some("d"));
    assert!(env.values().all(|v| !v.is_empty()), "{env:?}");
}

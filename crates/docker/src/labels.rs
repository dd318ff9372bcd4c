//! Labels and names of the Docker objects a stage owns.
//!
//! Every container, network and volume carries the spec's labels plus ours
//! (`io.runnerkit.*`): which stage it belongs to, and which process created
//! it, on which host and boot, so the orphan reaper can tell "its creator is
//! gone" from "its run is still going". Each run of a stage also has a
//! random token, in its objects' names and labels ([`StageNames`]).

use std::collections::HashMap;

use runnerkit_core::{Spec, Step};

/// Marks an object as created by runnerkit's Docker engine.
pub const LABEL_MANAGED: &str = "io.runnerkit.managed";
/// The [`Spec::id`] of the stage the object belongs to.
pub const LABEL_STAGE: &str = "io.runnerkit.stage";
/// The step name (containers only).
pub const LABEL_STEP: &str = "io.runnerkit.step";
/// The stage run's random token: every object of one stage run carries it
/// (label and name), so that `setup` can tell the objects it created from
/// ones that merely have the name it chose, and `destroy` removes only what
/// this run created.
pub const LABEL_TOKEN: &str = "io.runnerkit.token";
pub(crate) use runnerkit_core::creator::Creator;
pub use runnerkit_core::creator::{
    LABEL_CREATOR_BOOT, LABEL_CREATOR_HOST, LABEL_CREATOR_PID, LABEL_CREATOR_PIDNS,
    LABEL_CREATOR_STARTED,
};

/// Reads the creator recorded in `labels`.
pub(crate) fn creator_of(labels: &HashMap<String, String>) -> Option<Creator> {
    Creator::from_entries(|key| labels.get(key).map(String::as_str))
}

/// Labels for the stage's network and volumes: the spec's, then ours (ours
/// win, so a pipeline cannot disguise its objects as another stage's, nor
/// forge the run's token).
pub(crate) fn stage_labels(
    spec: &Spec,
    creator: &Creator,
    names: &StageNames,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_MANAGED.into(), "true".into());
    labels.insert(LABEL_STAGE.into(), spec.id.clone());
    labels.insert(LABEL_TOKEN.into(), names.token.clone());
    labels.extend(creator.entries().map(|(k, v)| (k.to_owned(), v)));
    labels
}

/// Labels for a step's container: the stage's, the step's, then ours.
pub(crate) fn step_labels(
    spec: &Spec,
    step: &Step,
    creator: &Creator,
    names: &StageNames,
) -> HashMap<String, String> {
    let mut labels = stage_labels(spec, creator, names);
    for (k, v) in &step.labels {
        if !k.starts_with("io.runnerkit.") {
            labels.insert(k.clone(), v.clone());
        }
    }
    labels.insert(LABEL_STEP.into(), step.name.clone());
    labels
}

/// The label filter selecting every object of the stage `stage_id`.
pub(crate) fn stage_filter(stage_id: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_STAGE}={stage_id}"),
        ],
    )])
}

/// The label filter selecting the objects of one run of the stage `stage_id`:
/// those carrying its token, which only that run's `setup` and `create` set.
pub(crate) fn run_filter(stage_id: &str, names: &StageNames) -> HashMap<String, Vec<String>> {
    let mut filter = stage_filter(stage_id);
    filter
        .entry("label".to_owned())
        .or_default()
        .push(format!("{LABEL_TOKEN}={}", names.token));
    filter
}

/// True when `labels` mark an object as one of the run `names` of the stage
/// `stage_id`: what `setup` checks on a volume Docker handed back.
pub(crate) fn is_of_run(
    labels: &HashMap<String, String>,
    stage_id: &str,
    names: &StageNames,
) -> bool {
    let is = |key: &str, value: &str| labels.get(key).is_some_and(|v| v == value);
    is(LABEL_MANAGED, "true") && is(LABEL_STAGE, stage_id) && is(LABEL_TOKEN, &names.token)
}

/// The label filter selecting every object runnerkit's Docker engine created.
pub(crate) fn managed_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGED}=true")])])
}

/// Random bytes in a stage run's token (hex-encoded in names and labels).
///
/// 64 bits: the spec id (the stage id and a timestamp) is guessable, so the
/// token is the part of a name nobody can create ahead of the stage.
const TOKEN_BYTES: usize = 8;

/// The names of one stage run's Docker objects:
/// `rk-<sanitized spec id>-<token>` and suffixes of it.
///
/// A name's random part makes it unguessable, so nothing can be planted
/// under it before `setup` (Docker returns an existing volume when asked to
/// create one with its name); `setup` still checks what it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StageNames {
    /// `rk-<sanitized spec id>-<token>`: the network's name, and the start
    /// of every other name.
    prefix: String,
    token: String,
}

/// The system's random source failed (no entropy could be read).
#[derive(Debug, thiserror::Error)]
#[error("read random bytes for the stage's object names: {0}")]
pub(crate) struct NoRandom(getrandom::Error);

impl StageNames {
    /// Names for a new run of the stage `spec_id`, with a fresh token from
    /// the operating system's CSPRNG.
    pub(crate) fn generate(spec_id: &str) -> Result<Self, NoRandom> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::getrandom(&mut bytes).map_err(NoRandom)?;
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self::with_token(spec_id, token))
    }

    /// Names of the stage `spec_id` with the token `token` (a test chooses
    /// one to plant objects under the names `setup` will use).
    pub(crate) fn with_token(spec_id: &str, token: String) -> Self {
        Self {
            prefix: format!("rk-{}-{token}", sanitize(spec_id)),
            token,
        }
    }

    /// The value of [`LABEL_TOKEN`] on the run's objects.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Name of the stage's network.
    pub(crate) fn network(&self) -> String {
        self.prefix.clone()
    }

    /// Name of the workspace volume.
    pub(crate) fn workspace_volume(&self) -> String {
        format!("{}-workspace", self.prefix)
    }

    /// Name of the Docker volume backing the spec volume `volume`.
    ///
    /// Not injective: `a/b` and `a_b` have one name. `setup` refuses such a
    /// pair (and the linter reports it) rather than sharing one volume.
    pub(crate) fn volume(&self, volume: &str) -> String {
        format!("{}-vol-{}", self.prefix, sanitize(volume))
    }

    /// Name of the container of `step`: injective in the step's id, so
    /// two steps whose names differ only in characters Docker refuses
    /// (`go build`, `go_build`) never contend for one name.
    pub(crate) fn container(&self, step: &Step) -> String {
        let id = if step.id.is_empty() {
            &step.name
        } else {
            &step.id
        };
        format!("{}-{}", self.prefix, encode(id))
    }
}

/// Letters, digits, `-` and `.` as they are; any other byte as `_xx` (hex),
/// `_` included, so that no two texts share an encoding.
fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// Docker object names allow `[a-zA-Z0-9_.-]`; anything else becomes `_`.
fn sanitize(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_docker_names() {
        let names = StageNames::with_token("run/1 ä", "0123abcd".into());
        assert_eq!(names.network(), "rk-run_1__-0123abcd");
        assert_eq!(names.workspace_volume(), "rk-run_1__-0123abcd-workspace");
        assert_eq!(names.volume("cache"), "rk-run_1__-0123abcd-vol-cache");
        assert_eq!(
            names.container(&Step::named("go build")),
            "rk-run_1__-0123abcd-go_20build"
        );
        assert_eq!(
            names.container(&Step::named("go_build")),
            "rk-run_1__-0123abcd-go_5fbuild"
        );
    }

    #[test]
    fn each_run_of_a_stage_gets_its_own_unguessable_names() {
        let a = StageNames::generate("stage-1").unwrap();
        let b = StageNames::generate("stage-1").unwrap();
        assert_ne!(a.token(), b.token());
        assert_ne!(a.network(), b.network());
        assert_eq!(a.token().len(), 2 * TOKEN_BYTES);
        assert!(a.token().chars().all(|c| c.is_ascii_hexdigit()), "{a:?}");
        assert!(a.network().starts_with("rk-stage-1-"), "{a:?}");
    }

    #[test]
    fn the_run_is_told_by_its_token() {
        let spec = Spec {
            id: "s1".into(),
            // A pipeline's own labels cannot forge the token.
            labels: [(LABEL_TOKEN.to_owned(), "forged".to_owned())].into(),
            ..Spec::default()
        };
        let names = StageNames::with_token("s1", "feed".into());
        let labels = stage_labels(&spec, &Creator::current(), &names);
        assert_eq!(labels[LABEL_TOKEN], "feed");
        assert!(is_of_run(&labels, "s1", &names));
        let other_run = StageNames::with_token("s1", "beef".into());
        assert!(!is_of_run(&labels, "s1", &other_run));
        assert!(!is_of_run(&labels, "s2", &names));
        assert!(!is_of_run(&HashMap::new(), "s1", &names));
        let filter = run_filter("s1", &names);
        assert!(filter["label"].contains(&format!("{LABEL_TOKEN}=feed")));
    }

    #[test]
    fn our_labels_win_over_the_spec_and_step() {
        let spec = Spec {
            id: "s1".into(),
            labels: [(LABEL_STAGE.to_owned(), "other".to_owned())].into(),
            ..Spec::default()
        };
        let step = Step {
            labels: [
                (LABEL_STEP.to_owned(), "spoof".to_owned()),
                (LABEL_TOKEN.to_owned(), "spoof".to_owned()),
                ("team".to_owned(), "ci".to_owned()),
            ]
            .into(),
            ..Step::named("build")
        };
        let creator = Creator::current();
        let names = StageNames::with_token("s1", "feed".into());
        let labels = step_labels(&spec, &step, &creator, &names);
        assert_eq!(labels[LABEL_STAGE], "s1");
        assert_eq!(labels[LABEL_STEP], "build");
        assert_eq!(labels[LABEL_TOKEN], "feed");
        assert_eq!(labels["team"], "ci");
        assert_eq!(creator_of(&labels), Some(creator));
    }
}

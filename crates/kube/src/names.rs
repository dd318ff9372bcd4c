//! Names and labels of a stage's Kubernetes objects.

use runnerkit_core::{EngineOptions, OptionsValue, Step};
use serde::de::DeserializeOwned;

/// Marks an object as made by runnerkit's Kubernetes engine.
pub const LABEL_MANAGED: &str = "io.runnerkit.managed";
/// The stage an object belongs to: its pod's name (a valid label value,
/// derived from the spec id).
pub const LABEL_STAGE: &str = "io.runnerkit.stage";
/// The spec id itself, unshortened (an annotation: ids need not be valid
/// label values).
pub const ANNOTATION_STAGE_ID: &str = "io.runnerkit.stage.id";

/// The engine's options of type `T`, typed or read back from JSON; the
/// default when absent or unreadable (a Spec the assembly made always reads).
pub(crate) fn read<T: OptionsValue + DeserializeOwned + Clone + Default>(o: &EngineOptions) -> T {
    o.decode::<T>().ok().flatten().unwrap_or_default()
}

/// The pod (and stage Secret) name of the spec `id`: `rk-` and the id made a
/// DNS label; a long or rewritten id gets a hash of the original so two ids
/// never share a name.
pub(crate) fn pod_name(id: &str) -> String {
    let slug = slug(id);
    let name = format!("rk-{slug}");
    if name.len() <= 63 && slug == id {
        return name;
    }
    let hash = format!("{:016x}", fnv1a(id.as_bytes()));
    let keep = 63 - 3 - 1 - hash.len();
    let head = slug[..slug.len().min(keep)].trim_end_matches('-');
    format!("rk-{head}-{hash}")
}

/// Name of the pull secret of the pod `pod`.
pub(crate) fn pull_secret_name(pod: &str) -> String {
    format!("{pod}-pull")
}

/// Container name of the step at `index`: unique by the index, readable by
/// the step's name.
pub(crate) fn container_name(index: usize, step: &Step) -> String {
    let prefix = format!("s{index}-");
    let slug = slug(&step.name);
    let room = 63 - prefix.len();
    let name = format!(
        "{prefix}{}",
        slug[..slug.len().min(room)].trim_end_matches('-')
    );
    name.trim_end_matches('-').to_owned()
}

/// Name of the pod volume for the spec volume at `index`.
pub(crate) fn volume_name(index: usize) -> String {
    format!("v{index}")
}

/// A valid DNS-1123 label (a host name the pod's `/etc/hosts` can hold).
pub(crate) fn is_dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Lower-case letters, digits and single `-`, nothing else.
fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_distinct() {
        assert_eq!(pod_name("rk12-1700"), "rk-rk12-1700");
        let odd = pod_name("Stage/1 ä");
        assert!(
            odd.starts_with("rk-stage-1-") && is_dns_label(&odd),
            "{odd}"
        );
        assert_ne!(pod_name("a_b"), pod_name("a-b"), "a rewritten id is hashed");
        let long = pod_name(&"x".repeat(200));
        assert!(long.len() <= 63 && is_dns_label(&long), "{long}");
        let step = Step::named("Go Build!");
        assert_eq!(container_name(3, &step), "s3-go-build");
        assert!(is_dns_label(&container_name(
            0,
            &Step::named("é".repeat(90))
        )));
    }
}

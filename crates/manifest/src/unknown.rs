//! Keys the typed model does not read: Drone ignores them silently, so a
//! typo (`comands:`) makes a step that does nothing. [`Manifest::parse`]
//! records every such key of a pipeline with its line ([`UnknownKey`]);
//! lint and the stage assembly turn them into warnings once the pipeline's
//! type, and so its engine's own keys, is known.
//!
//! The keys are found by a second, schema-directed pass over the document
//! (plain serde through [`crate::yaml`], so merge keys and aliases resolve
//! exactly as for the typed read): it descends only into the maps the model
//! types (steps, services, volumes, mounts, `when`, `trigger`, `platform`,
//! ...), skips every value it does not descend into, and allocates only for
//! the keys it reports. The known keys of each level are the model's own
//! serde field names, read from its `Deserialize` impls, so the two cannot
//! drift apart.
//!
//! [`Manifest::parse`]: crate::Manifest::parse

use std::cell::OnceCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::model::{
    CloneSettings, Concurrency, Conditions, HostVolume, MountSpec, Pipeline, PlatformSpec,
    StepSpec, TempVolume, VolumeSpec, WorkspaceSpec,
};
use crate::yaml::{DocumentText, Located};

/// Where an [`UnknownKey`] is: which map of the pipeline it is a key of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyLevel {
    /// The pipeline document itself.
    Pipeline,
    /// A step.
    Step,
    /// A service.
    Service,
    /// A pipeline volume (`volumes:` of the pipeline).
    Volume,
    /// `temp:` of a volume.
    TempVolume,
    /// `host:` of a volume.
    HostVolume,
    /// A step's `volumes:` or `devices:` entry.
    Mount,
    /// A step's `when:`.
    When,
    /// The pipeline's `trigger:`.
    Trigger,
    /// `platform:`.
    Platform,
    /// `clone:`.
    Clone,
    /// `workspace:`.
    Workspace,
    /// `concurrency:`.
    Concurrency,
}

impl KeyLevel {
    /// The keys the typed model reads at this level.
    pub fn model_keys(self) -> &'static [&'static str] {
        match self {
            KeyLevel::Pipeline => PIPELINE_KEYS.as_slice(),
            KeyLevel::Step | KeyLevel::Service => fields_of::<StepSpec>(),
            KeyLevel::Volume => fields_of::<VolumeSpec>(),
            KeyLevel::TempVolume => fields_of::<TempVolume>(),
            KeyLevel::HostVolume => fields_of::<HostVolume>(),
            KeyLevel::Mount => fields_of::<MountSpec>(),
            KeyLevel::When | KeyLevel::Trigger => fields_of::<Conditions>(),
            KeyLevel::Platform => fields_of::<PlatformSpec>(),
            KeyLevel::Clone => fields_of::<CloneSettings>(),
            KeyLevel::Workspace => fields_of::<WorkspaceSpec>(),
            KeyLevel::Concurrency => fields_of::<Concurrency>(),
        }
    }

    /// The map below `key` at this level that the model types, if any
    /// (`settings` and `environment` are free-form and not descended into).
    fn child(self, key: &str) -> Option<Child> {
        use Child::{List, Map};
        Some(match (self, key) {
            (KeyLevel::Pipeline, "steps") => List(KeyLevel::Step),
            (KeyLevel::Pipeline, "services") => List(KeyLevel::Service),
            (KeyLevel::Pipeline, "volumes") => List(KeyLevel::Volume),
            (KeyLevel::Pipeline, "trigger") => Map(KeyLevel::Trigger),
            (KeyLevel::Pipeline, "platform") => Map(KeyLevel::Platform),
            (KeyLevel::Pipeline, "clone") => Map(KeyLevel::Clone),
            (KeyLevel::Pipeline, "workspace") => Map(KeyLevel::Workspace),
            (KeyLevel::Pipeline, "concurrency") => Map(KeyLevel::Concurrency),
            (KeyLevel::Step | KeyLevel::Service, "when") => Map(KeyLevel::When),
            (KeyLevel::Step | KeyLevel::Service, "volumes" | "devices") => List(KeyLevel::Mount),
            (KeyLevel::Volume, "temp") => Map(KeyLevel::TempVolume),
            (KeyLevel::Volume, "host") => Map(KeyLevel::HostVolume),
            _ => return None,
        })
    }
}

/// What a known key holds, when the model types it as a map.
#[derive(Clone, Copy)]
enum Child {
    /// One map.
    Map(KeyLevel),
    /// A list of maps.
    List(KeyLevel),
}

/// `kind` is read before the pipeline is (to pick its type), so it is no
/// field of [`Pipeline`]; the rest are.
static PIPELINE_KEYS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut keys = vec!["kind"];
    keys.extend_from_slice(fields_of::<Pipeline>());
    keys
});

/// The field names a derived `Deserialize` passes to `deserialize_struct`
/// (renames applied, skipped fields left out).
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = FieldProbe(&[]);
    // The probe always fails: it only wants the field list.
    let _ = T::deserialize(&mut probe);
    probe.0
}

struct FieldProbe(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut FieldProbe {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("fields read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// A key of a pipeline document that the typed model does not read, as
/// found by [`crate::Manifest::parse`].
///
/// Keys an engine declared for its pipeline type
/// ([`crate::EngineKeys::pipeline_keys`], `step_keys`) are among these
/// until the type is known: lint and the stage assembly leave them out.
/// Not recorded: keys starting with `x-` (the extension-field convention
/// of Docker Compose, used in pipelines to hold YAML anchors), keys whose
/// value carries an anchor (`defaults: &defaults`, there to be aliased),
/// and the keys of `settings` and `environment`, which are free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownKey {
    /// The key as written.
    pub key: String,
    /// Which map it is a key of.
    pub level: KeyLevel,
    /// The path of that map in the document: empty for the pipeline,
    /// `steps[2]`, `steps[2].when`, `volumes[0].temp`, `trigger`, ...
    pub path: String,
    /// The step or service it is in, by name (empty when the step has
    /// none); `None` outside steps and services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// 1-based line of the key in the file (for a key merged in with
    /// `<<:`, as the YAML crate locates it), 0 when unknown.
    pub line: u64,
}

impl UnknownKey {
    /// The closest of `known` to this key, when one is close enough to be
    /// a likely typo of it: at most one edit (insertion, deletion,
    /// substitution, or swap of neighbours) per three characters, and at
    /// least one. The first of equally close keys wins.
    pub fn suggestion<'k>(&self, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
        closest(&self.key, known)
    }
}

/// See [`UnknownKey::suggestion`].
pub(crate) fn closest<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let key: Vec<char> = key.chars().flat_map(char::to_lowercase).collect();
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        let cand: Vec<char> = candidate.chars().flat_map(char::to_lowercase).collect();
        let limit = (key.len().min(cand.len()) / 3).clamp(1, 3);
        let Some(distance) = bounded_distance(&key, &cand, limit) else {
            continue;
        };
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The optimal-string-alignment distance of `a` and `b` (Levenshtein plus
/// swaps of neighbours), `None` when above `limit`. Lengths further apart
/// than `limit` are rejected before any work, so a hostile megabyte-long
/// key costs nothing; otherwise the cost is `a.len() * b.len()` with `b`
/// a known key (a few dozen characters at most).
fn bounded_distance(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        before.clone_from(&previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let distance = previous[b.len()];
    (distance <= limit).then_some(distance)
}

/// A key as the walk reads it: its text when it is a scalar.
struct KeyText(Option<String>);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(Some(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeyText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(KeyText(None))
            }
        }
        de.deserialize_any(KeyVisitor)
    }
}

/// A key found at a level, before the step names are known.
struct Found {
    key: String,
    level: KeyLevel,
    path: String,
    /// Services then steps, by position: `(service, index)`.
    step: Option<(bool, usize)>,
    line: u64,
    column: u64,
}

/// The unknown keys of one pipeline document, as [`crate::yaml`] reads it.
pub(crate) struct DocumentKeys(Vec<Found>);

impl<'de> Deserialize<'de> for DocumentKeys {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let mut found = Vec::new();
        MapSeed {
            level: KeyLevel::Pipeline,
            path: String::new(),
            step: None,
            out: &mut found,
        }
        .deserialize(de)?;
        Ok(DocumentKeys(found))
    }
}

impl DocumentKeys {
    /// The keys, with the names of their steps from `pipeline` (the same
    /// document, typed) and those whose value carries an anchor left out.
    /// Lines are looked up in the document alone: the whole file, once per
    /// pipeline, made a file of many pipelines quadratic.
    pub(crate) fn resolve(mut self, pipeline: &Pipeline, doc: &DocumentText) -> Vec<UnknownKey> {
        // The YAML crate hands merged keys over after the map's own ones.
        self.0.sort_by_key(|f| (f.line, f.column));
        let lines = OnceCell::new();
        self.0
            .into_iter()
            .filter(|f| !holds_anchor(doc, &lines, f))
            .map(|f| {
                let step = f.step.map(|(service, index)| {
                    let list = if service {
                        &pipeline.services
                    } else {
                        &pipeline.steps
                    };
                    list.get(index)
                        .and_then(|s| s.value.as_ref())
                        .map(|s| s.name.clone())
                        .unwrap_or_default()
                });
                UnknownKey {
                    key: f.key,
                    level: f.level,
                    path: f.path,
                    step,
                    line: f.line,
                }
            })
            .collect()
    }
}

/// The key's value starts with an anchor (`key: &name ...`) on the key's
/// line: the key is there to hold something aliased elsewhere.
fn holds_anchor(doc: &DocumentText, lines: &OnceCell<Vec<usize>>, found: &Found) -> bool {
    let text = doc.text();
    let starts = lines.get_or_init(|| {
        std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect()
    });
    let Some(line) = found
        .line
        .checked_sub(doc.first_line)
        .and_then(|l| usize::try_from(l).ok())
        .and_then(|l| starts.get(l).map(|&start| &text[start..]))
    else {
        return false;
    };
    let line = line.split('\n').next().unwrap_or_default();
    let skip = usize::try_from(found.column.saturating_sub(1)).unwrap_or(usize::MAX);
    let Some((offset, _)) = line.char_indices().nth(skip) else {
        return false;
    };
    let rest = &line[offset..];
    // The key as written: plain, or quoted (its text then sits between the quotes).
    let rest = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..]
            .strip_prefix(found.key.as_str())
            .and_then(|r| r.strip_prefix(q)),
        _ => rest.strip_prefix(found.key.as_str()),
    };
    rest.and_then(|r| r.trim_start().strip_prefix(':'))
        .is_some_and(|r| r.trim_start().starts_with('&'))
}

/// The scalar visits of a seed that only looks into maps and lists: a
/// scalar where it expected one of those is the typed read's to refuse, so
/// here it is accepted and passed over.
macro_rules! accept_scalars {
    () => {
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }

        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }

        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }

        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
            Ok(())
        }
    };
}

/// Reads one map of `level`, recording its unknown keys and descending
/// into the maps the model types below it.
struct MapSeed<'a> {
    level: KeyLevel,
    path: String,
    step: Option<(bool, usize)>,
    out: &'a mut Vec<Found>,
}

impl<'de> DeserializeSeed<'de> for MapSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MapSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let known = self.level.model_keys();
        while let Some(key) = map.next_key::<Located<KeyText>>()? {
            let Located {
                value: KeyText(text),
                line,
                column,
            } = key;
            let Some(text) = text else {
                // Not a scalar: the typed read refuses what matters.
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if known.contains(&text.as_str()) {
                match self.level.child(&text) {
                    Some(Child::Map(level)) => map.next_value_seed(MapSeed {
                        level,
                        path: join(&self.path, &text),
                        step: self.step,
                        out: &mut *self.out,
                    })?,
                    Some(Child::List(level)) => map.next_value_seed(ListSeed {
                        level,
                        path: join(&self.path, &text),
                        step: self.step,
                        out: &mut *self.out,
                    })?,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                continue;
            }
            map.next_value::<IgnoredAny>()?;
            if text.starts_with("x-") || text == "<<" {
                continue;
            }
            self.out.push(Found {
                key: text,
                level: self.level,
                path: self.path.clone(),
                step: self.step,
                line,
                column,
            });
        }
        Ok(())
    }

    // Anything but a map here is the typed read's to refuse.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (IgnoredAny, variant) = data.variant()?;
        de::VariantAccess::newtype_variant::<IgnoredAny>(variant).map(drop)
    }

    accept_scalars!();
}

/// Reads a list of maps of `level` (steps, services, volumes, mounts).
struct ListSeed<'a> {
    level: KeyLevel,
    path: String,
    step: Option<(bool, usize)>,
    out: &'a mut Vec<Found>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let step = match self.level {
                KeyLevel::Step => Some((false, index)),
                KeyLevel::Service => Some((true, index)),
                _ => self.step,
            };
            let seed = MapSeed {
                level: self.level,
                path: format!("{}[{index}]", self.path),
                step,
                out: &mut *self.out,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    // Anything but a list here is the typed read's to refuse.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }

    accept_scalars!();
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_keys_come_from_the_typed_model() {
        let pipeline = KeyLevel::Pipeline.model_keys();
        for key in [
            "kind",
            "type",
            "name",
            "steps",
            "trigger",
            "image_pull_secrets",
        ] {
            assert!(pipeline.contains(&key), "{key}");
        }
        assert!(!pipeline.contains(&"line") && !pipeline.contains(&"source"));
        let step = KeyLevel::Step.model_keys();
        assert!(step.contains(&"commands") && step.contains(&"cpu_set"));
        assert!(KeyLevel::When.model_keys().contains(&"ref"));
    }

    #[test]
    fn close_keys_are_suggested_and_far_ones_are_not() {
        let known = KeyLevel::Step.model_keys();
        let near = |k: &str| closest(k, known.iter().copied());
        assert_eq!(near("comands"), Some("commands"));
        assert_eq!(near("comamnds"), Some("commands"), "a swap is one edit");
        assert_eq!(near("Image"), Some("image"));
        assert_eq!(near("imag"), Some("image"));
        assert_eq!(near("depends-on"), Some("depends_on"));
        assert_eq!(near("script"), None);
        assert_eq!(near("env"), None);
        assert_eq!(near(&"x".repeat(1 << 20)), None);
    }

    #[test]
    fn bounded_distance_counts_edits() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        let d = |a: &str, b: &str| bounded_distance(&chars(a), &chars(b), 9);
        assert_eq!(d("kitten", "sitting"), Some(3));
        assert_eq!(d("", "abc"), Some(3));
        assert_eq!(d("ab", "ba"), Some(1));
        assert_eq!(d("same", "same"), Some(0));
        assert_eq!(
            bounded_distance(&chars("kitten"), &chars("sitting"), 2),
            None
        );
    }
}

//! Value forms of the pipeline language that plain serde does not read the way
//! Drone does: lists with precise errors, byte sizes, `environment` and
//! `settings` values with `from_secret`, and conditions.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::yaml::Verbatim;

/// Reads a YAML sequence (null reads as empty) and names `what` when the
/// node is anything else: "expected a list of step names, found a map".
fn list<'de, D, T>(de: D, what: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ListVisitor<T> {
        what: &'static str,
        marker: PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    de.deserialize_any(ListVisitor {
        what,
        marker: PhantomData,
    })
}

macro_rules! list_fn {
    ($($name:ident => $what:literal),* $(,)?) => {$(
        pub(crate) fn $name<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
        where
            D: Deserializer<'de>,
            T: Deserialize<'de>,
        {
            list(de, $what)
        }
    )*};
}

list_fn! {
    step_names => "a list of step names",
    pipeline_names => "a list of pipeline names",
    commands => "a list of commands",
    strings => "a list of strings",
    volumes => "a list of volumes",
    mounts => "a list of {name, path} mounts",
    secret_names => "a list of secret names",
    patterns => "a list of patterns",
}

/// Reads a map or struct where a YAML null (`environment:` with nothing
/// after it) means "empty", as in Drone.
pub(crate) fn or_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// Deserializes a list of steps where `-` alone (a null step) is kept as
/// `None` so lint can report it instead of failing the parse.
pub(crate) fn nullable_steps<'de, D, T>(de: D) -> Result<Vec<crate::Located<Option<T>>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    list(de, "a list of steps")
}

/// A byte size: an integer (bytes) or `<number>[ ]<unit>` with unit
/// `k|m|g|t|p`, optional `i`, optional `b`, case-insensitive, always
/// 1024-based (`512mb`, `1GiB`, `1.5g`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses the string form; `None` when it is not a size.
    pub fn parse(text: &str) -> Option<ByteSize> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
            return None;
        }
        let number: f64 = number.parse().ok()?;
        let unit = unit.trim_start().to_ascii_lowercase();
        let unit = unit.strip_suffix('b').unwrap_or(&unit);
        let unit = unit.strip_suffix('i').unwrap_or(unit);
        let power = match unit {
            "" => 0,
            "k" => 1,
            "m" => 2,
            "g" => 3,
            "t" => 4,
            "p" => 5,
            _ => return None,
        };
        let bytes = number * 1024f64.powi(power);
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return None;
        }
        // Truncation is intended: a fraction of a byte is no byte.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(ByteSize(bytes as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size like 512mb, 1GiB or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ByteSize, E> {
                Ok(ByteSize(0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                if v.is_empty() {
                    return Ok(ByteSize(0));
                }
                ByteSize::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        de.deserialize_any(SizeVisitor)
    }
}

/// An `environment` value: text, or a reference to a secret.
///
/// Read from every form Drone's `Variable` accepts: a scalar (`GO: 1.10`),
/// `{value: TEXT}` and `{from_secret: NAME}`, in block or flow style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvValue {
    /// A plain value, as written in the file (`1.10` stays `1.10`), from a
    /// scalar or from `{value: TEXT}`.
    Text(String),
    /// `{from_secret: NAME}`.
    FromSecret(String),
}

/// The text of a scalar, as written where it was a plain (unquoted) scalar.
fn scalar_text(v: Verbatim<serde_json::Value>) -> Result<String, serde_json::Value> {
    match v.value {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Null => Ok(String::new()),
        value @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_)) => {
            Ok(v.text.unwrap_or_else(|| value.to_string()))
        }
        other => Err(other),
    }
}

/// What the map forms of a value say when they are not one of the forms.
const ENV_FORMS: &str = "a string, {value: TEXT} or {from_secret: NAME}";

/// An `environment` value node before it is known where it stands: the
/// pipeline level takes no secret, a step does.
enum EnvNode {
    /// A string scalar (quoted, or plain and not read as anything else).
    Text(String),
    /// A null scalar (`X:` alone, `~`): an empty value.
    Null,
    /// A boolean or a number; its spelling is in the [`Verbatim`] around
    /// the node, this rendering is the fallback.
    Typed(String),
    /// `{value: TEXT}` (or `{}`, an empty value, as in Drone).
    Value(String),
    /// `{from_secret: NAME}`.
    Secret(String),
    /// A list: no value form.
    List,
}

/// What an `environment` value node stands for, once its spelling is known.
enum EnvForm {
    /// A plain value: a scalar as written, or `{value: TEXT}`.
    Value(String),
    /// `{from_secret: NAME}`.
    Secret(String),
    /// A list.
    List,
}

impl EnvNode {
    /// The form a node stands for, a scalar's text as written (`1.10`
    /// stays `1.10`, `yes` stays `yes`).
    fn form(node: Verbatim<EnvNode>) -> EnvForm {
        match node.value {
            EnvNode::Text(text) | EnvNode::Value(text) => EnvForm::Value(text),
            EnvNode::Null => EnvForm::Value(String::new()),
            EnvNode::Typed(fallback) => EnvForm::Value(node.text.unwrap_or(fallback)),
            EnvNode::Secret(name) => EnvForm::Secret(name),
            EnvNode::List => EnvForm::List,
        }
    }
}

impl<'de> Deserialize<'de> for EnvNode {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = EnvNode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ENV_FORMS)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvNode, E> {
                Ok(EnvNode::Typed(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvNode, E> {
                Ok(EnvNode::Typed(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvNode, E> {
                Ok(EnvNode::Typed(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvNode, E> {
                Ok(EnvNode::Typed(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvNode, E> {
                Ok(EnvNode::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<EnvNode, E> {
                Ok(EnvNode::Text(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EnvNode, E> {
                Ok(EnvNode::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<EnvNode, E> {
                self.visit_unit()
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EnvNode, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(EnvNode::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvNode, A::Error> {
                let mut value = None;
                let mut secret = None;
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "value" => &mut value,
                        "from_secret" => &mut secret,
                        // Drone ignores other keys, so `{valeu: x}` would be an
                        // empty value: a typo should not pass silently.
                        other => {
                            return Err(de::Error::custom(format!(
                                "expected {ENV_FORMS}, found a map with the key `{other}`"
                            )));
                        }
                    };
                    let node = map.next_value::<Verbatim<serde_json::Value>>()?;
                    let text = scalar_text(node).map_err(|other| {
                        de::Error::custom(format!(
                            "{key}: expected a plain value, found {}",
                            json_kind(&other)
                        ))
                    })?;
                    *slot = Some(text);
                }
                match (value, secret) {
                    // Drone takes the secret and drops the value: refuse the
                    // ambiguity instead of guessing which one was meant.
                    (Some(_), Some(_)) => Err(de::Error::custom(
                        "expected either {value: TEXT} or {from_secret: NAME}, found both",
                    )),
                    (None, Some(name)) => Ok(EnvNode::Secret(name)),
                    (value, None) => Ok(EnvNode::Value(value.unwrap_or_default())),
                }
            }
        }
        de.deserialize_any(NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        match EnvNode::form(Verbatim::<EnvNode>::deserialize(de)?) {
            EnvForm::Value(text) => Ok(EnvValue::Text(text)),
            EnvForm::Secret(name) => Ok(EnvValue::FromSecret(name)),
            EnvForm::List => Err(de::Error::custom(format!(
                "expected {ENV_FORMS}, found a list"
            ))),
        }
    }
}

/// A pipeline-level `environment` map: plain values, written as scalars or
/// `{value: TEXT}`; no `from_secret` (Drone has none at that level).
pub(crate) fn plain_env<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let raw = Option::<std::collections::BTreeMap<String, Verbatim<EnvNode>>>::deserialize(de)?
        .unwrap_or_default();
    raw.into_iter()
        .map(|(k, node)| match EnvNode::form(node) {
            EnvForm::Value(text) => Ok((k, text)),
            EnvForm::Secret(_) => Err(de::Error::custom(format!(
                "{k}: expected a plain value (pipeline environment takes no from_secret), found a map"
            ))),
            EnvForm::List => Err(de::Error::custom(format!(
                "{k}: expected a plain value or {{value: TEXT}}, found a list"
            ))),
        })
        .collect()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a map",
        _ => "a scalar",
    }
}

/// A plugin `settings` value: any YAML, or a reference to a secret.
///
/// As in Drone's `Parameter`, only `from_secret` is special: `{value: x}`
/// under `settings` is a map like any other (a JSON object in `PLUGIN_*`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingValue {
    /// Any YAML value, as JSON.
    Value(serde_json::Value),
    /// `{from_secret: NAME}`.
    FromSecret(String),
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(de)?;
        let Some(map) = v.as_object().filter(|m| m.contains_key("from_secret")) else {
            return Ok(SettingValue::Value(v));
        };
        // Drone reads the secret and drops the other keys; refusing them
        // keeps a misplaced key from vanishing.
        if let Some(other) = map.keys().find(|k| *k != "from_secret") {
            return Err(de::Error::custom(format!(
                "{{from_secret: NAME}} takes no other key, found `{other}`"
            )));
        }
        match &map["from_secret"] {
            serde_json::Value::String(name) => Ok(SettingValue::FromSecret(name.clone())),
            serde_json::Value::Null => Ok(SettingValue::FromSecret(String::new())),
            scalar @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_)) => {
                Ok(SettingValue::FromSecret(scalar.to_string()))
            }
            other => Err(de::Error::custom(format!(
                "from_secret: expected a secret name, found {}",
                json_kind(other)
            ))),
        }
    }
}

/// One condition key of `when`/`trigger`: patterns to include and exclude.
///
/// Written as a string, a list (both mean `include`) or
/// `{include: [...], exclude: [...]}`. Unlike Drone, a scalar under
/// `include`/`exclude` is an error rather than silently matching everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// Patterns of which one must match (when any are given).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Patterns of which none may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct ConditionVisitor;
        impl<'de> Visitor<'de> for ConditionVisitor {
            type Value = Condition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pattern, a list of patterns or {include, exclude}")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Condition, E> {
                Ok(Condition::default())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Condition, E> {
                Ok(Condition {
                    include: vec![v.to_owned()],
                    exclude: Vec::new(),
                })
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Condition, E> {
                self.visit_str(if v { "true" } else { "false" })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Condition, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Condition, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Condition, A::Error> {
                let mut include = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    include.push(item);
                }
                Ok(Condition {
                    include,
                    exclude: Vec::new(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
                #[derive(serde::Deserialize)]
                struct Patterns(#[serde(deserialize_with = "patterns")] Vec<String>);
                let mut out = Condition::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "include" => out.include = map.next_value::<Patterns>()?.0,
                        "exclude" => out.exclude = map.next_value::<Patterns>()?.0,
                        other => {
                            return Err(de::Error::unknown_field(other, &["include", "exclude"]));
                        }
                    }
                }
                Ok(out)
            }
        }
        de.deserialize_any(ConditionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::yaml::parse_one;

    #[test]
    fn byte_sizes_are_1024_based() {
        let cases = [
            ("100", 100),
            ("512mb", 536_870_912),
            ("512 MB", 536_870_912),
            ("1GiB", 1_073_741_824),
            ("1gi", 1_073_741_824),
            ("1.5g", 1_610_612_736),
            ("2k", 2048),
            ("1t", 1 << 40),
            ("1p", 1 << 50),
            ("3b", 3),
        ];
        for (text, want) in cases {
            assert_eq!(ByteSize::parse(text), Some(ByteSize(want)), "{text}");
        }
        for bad in ["", "mb", "1x", "1.5.5g", "-1", "1 gigabyte", ".5g"] {
            assert_eq!(ByteSize::parse(bad), None, "{bad}");
        }
    }

    #[derive(Debug, Deserialize)]
    struct Sizes {
        a: ByteSize,
        b: ByteSize,
    }

    #[test]
    fn byte_sizes_read_numbers_and_strings_and_report_bad_ones() {
        let s: Sizes = parse_one("a: 1024\nb: 1.5g\n").unwrap();
        assert_eq!((s.a.0, s.b.0), (1024, 1_610_612_736));
        let err = parse_one::<Sizes>("a: 1\nb: lots\n").unwrap_err();
        assert_eq!(err.path, "b");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("byte size"), "{}", err.message);
    }

    #[derive(Debug, Deserialize)]
    struct Deps {
        #[serde(deserialize_with = "step_names")]
        depends_on: Vec<String>,
    }

    #[test]
    fn list_errors_say_what_was_expected_and_found() {
        let err = parse_one::<Deps>("\n\ndepends_on:\n    a: b\n").unwrap_err();
        assert_eq!(err.path, "depends_on");
        assert_eq!(err.message, "expected a list of step names, found a map");
        assert_eq!(err.line, 4);
        let err = parse_one::<Deps>("depends_on: build\n").unwrap_err();
        assert_eq!(
            err.message,
            "expected a list of step names, found string \"build\""
        );
        let d: Deps = parse_one("depends_on:\n").unwrap();
        assert!(d.depends_on.is_empty());
    }

    #[derive(Debug, Deserialize)]
    struct Env {
        environment: BTreeMap<String, EnvValue>,
    }

    #[test]
    fn environment_values_keep_their_spelling_and_read_from_secret() {
        let e: Env = parse_one(
            "environment:\n  GO: 1.10\n  ON: yes\n  N: 010\n  Q: \"x y\"\n  E:\n  T:\n    from_secret: token\n",
        )
        .unwrap();
        let text = |k: &str| match &e.environment[k] {
            EnvValue::Text(t) => t.clone(),
            EnvValue::FromSecret(s) => format!("secret:{s}"),
        };
        assert_eq!(text("GO"), "1.10");
        assert_eq!(text("ON"), "yes");
        assert_eq!(text("N"), "010");
        assert_eq!(text("Q"), "x y");
        assert_eq!(text("E"), "");
        assert_eq!(text("T"), "secret:token");
        let err = parse_one::<Env>("environment:\n  L: [a]\n").unwrap_err();
        assert!(err.message.contains("from_secret"), "{}", err.message);
        assert_eq!(err.path, "environment.L");
    }

    #[derive(Debug, Deserialize)]
    struct When {
        branch: Condition,
    }

    #[test]
    fn conditions_read_all_three_forms() {
        let w: When = parse_one("branch: main\n").unwrap();
        assert_eq!(w.branch.include, ["main"]);
        let w: When = parse_one("branch: [main, dev]\n").unwrap();
        assert_eq!(w.branch.include, ["main", "dev"]);
        let w: When = parse_one("branch:\n  include: [a]\n  exclude: [b, c]\n").unwrap();
        assert_eq!((w.branch.include.len(), w.branch.exclude.len()), (1, 2));
    }

    #[test]
    fn scalar_include_or_exclude_is_rejected_loudly() {
        let err = parse_one::<When>("branch:\n  exclude: main\n").unwrap_err();
        assert_eq!(
            err.message,
            "expected a list of patterns, found string \"main\""
        );
        assert_eq!(err.line, 2);
        let err = parse_one::<When>("branch:\n  includes: [main]\n").unwrap_err();
        assert!(err.message.contains("includes"), "{}", err.message);
    }

    #[test]
    fn settings_detect_from_secret() {
        #[derive(Debug, Deserialize)]
        struct S {
            settings: BTreeMap<String, SettingValue>,
        }
        let s: S = parse_one("settings:\n  a: [1, b]\n  p: {from_secret: pw}\n").unwrap();
        assert_eq!(
            s.settings["a"],
            SettingValue::Value(serde_json::json!([1, "b"]))
        );
        assert_eq!(s.settings["p"], SettingValue::FromSecret("pw".into()));
    }
}

//! `settings` ⇒ `PLUGIN_*` (reference §9.3).

use serde_json::Value;

/// `PLUGIN_` + the key upper-cased; nothing else changes (`dry-run` ⇒ `PLUGIN_DRY-RUN`).
pub(crate) fn plugin_key(key: &str) -> String {
    format!("PLUGIN_{}", key.to_uppercase())
}

/// The environment value of a setting; `None` for null (the setting is skipped).
pub(crate) fn plugin_value(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(is_scalar) => items
            .iter()
            .map(|v| plugin_value(v).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    })
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_upper_cased_only() {
        assert_eq!(plugin_key("dry-run"), "PLUGIN_DRY-RUN");
        assert_eq!(plugin_key("repo"), "PLUGIN_REPO");
    }

    #[test]
    fn values_follow_drones_encoding() {
        assert_eq!(plugin_value(&json!("x")).unwrap(), "x");
        assert_eq!(plugin_value(&json!(true)).unwrap(), "true");
        assert_eq!(plugin_value(&json!(12)).unwrap(), "12");
        assert_eq!(plugin_value(&json!(1.5)).unwrap(), "1.5");
        assert_eq!(plugin_value(&json!(["a", "b", 1])).unwrap(), "a,b,1");
        assert_eq!(
            plugin_value(&json!([{"a": 1}, "b"])).unwrap(),
            r#"[{"a":1},"b"]"#
        );
        assert_eq!(
            plugin_value(&json!({"k": [1, 2]})).unwrap(),
            r#"{"k":[1,2]}"#
        );
        assert_eq!(plugin_value(&json!(null)), None);
    }
}

//! [`EngineOptions`]: the values an engine reads from pipeline keys of its
//! own, carried on [`Spec`](crate::Spec) and [`Step`](crate::Step).
//!
//! The shared compiler knows Drone's keys; an engine that needs more (a
//! Kubernetes step's `resources`, a VM's `vcpus`) declares them when its
//! pipeline type is registered and receives them here, parsed into its own
//! type. The runtime and other engines never look inside.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an options value must be: plain data that prints (`runnerkit
/// compile`), compares and crosses threads.
pub trait OptionsValue: Serialize + fmt::Debug + PartialEq + Send + Sync + 'static {}

impl<T: Serialize + fmt::Debug + PartialEq + Send + Sync + 'static> OptionsValue for T {}

/// An engine's own options: empty, a typed value the compiler produced, or
/// the JSON of one (a `Spec` read back from `runnerkit compile`'s output).
///
/// Cheap to clone (an `Arc`). Two options are equal when their JSON forms
/// are.
#[derive(Clone, Default)]
pub struct EngineOptions(Repr);

#[derive(Clone, Default)]
enum Repr {
    #[default]
    Empty,
    Typed(Arc<dyn Erased>),
    Json(Arc<serde_json::Value>),
}

trait Erased: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn to_json(&self) -> serde_json::Value;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: OptionsValue> Erased for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn to_json(&self) -> serde_json::Value {
        // A value that cannot be JSON (a map with non-string keys) prints as
        // null rather than failing `runnerkit compile` as a whole.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl EngineOptions {
    /// Options holding `value`.
    pub fn new<T: OptionsValue>(value: T) -> Self {
        Self(Repr::Typed(Arc::new(value)))
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            Repr::Empty => true,
            Repr::Typed(_) => false,
            Repr::Json(v) => v.is_null(),
        }
    }

    /// The typed value, when these options hold a `T` (as the compiler
    /// makes them). `None` when empty, of another type, or read from JSON:
    /// use [`decode`](Self::decode) to accept those too.
    pub fn get<T: OptionsValue>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Typed(value) => value.as_any().downcast_ref(),
            _ => None,
        }
    }

    /// The value as a `T`, whichever form it is in: a clone of the typed
    /// value, or `T` read from the JSON. `Ok(None)` when empty.
    ///
    /// # Errors
    /// When the JSON (or a typed value of another type) does not read as `T`.
    pub fn decode<T: OptionsValue + DeserializeOwned + Clone>(
        &self,
    ) -> Result<Option<T>, serde_json::Error> {
        if let Some(value) = self.get::<T>() {
            return Ok(Some(value.clone()));
        }
        match &self.0 {
            Repr::Empty => Ok(None),
            Repr::Json(v) if v.is_null() => Ok(None),
            Repr::Json(v) => T::deserialize(&**v).map(Some),
            Repr::Typed(other) => T::deserialize(other.to_json()).map(Some),
        }
    }

    fn json(&self) -> serde_json::Value {
        match &self.0 {
            Repr::Empty => serde_json::Value::Null,
            Repr::Typed(value) => value.to_json(),
            Repr::Json(v) => (**v).clone(),
        }
    }
}

impl fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Empty => f.write_str("EngineOptions(none)"),
            Repr::Typed(value) => value.debug(f),
            Repr::Json(v) => write!(f, "EngineOptions({v})"),
        }
    }
}

impl PartialEq for EngineOptions {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Empty, Repr::Empty) => true,
            (Repr::Typed(a), Repr::Typed(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.json() == other.json(),
        }
    }
}

impl Eq for EngineOptions {}

impl Serialize for EngineOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for EngineOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(if value.is_null() {
            Self::default()
        } else {
            Self(Repr::Json(Arc::new(value)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Vm {
        vcpus: u32,
    }

    #[test]
    fn typed_values_come_back_typed_and_survive_json() {
        let options = EngineOptions::new(Vm { vcpus: 4 });
        assert_eq!(options.get::<Vm>(), Some(&Vm { vcpus: 4 }));
        assert_eq!(options.get::<String>(), None);
        let json = serde_json::to_string(&options).unwrap();
        assert_eq!(json, r#"{"vcpus":4}"#);
        let back: EngineOptions = serde_json::from_str(&json).unwrap();
        assert_eq!(back, options);
        assert_eq!(back.get::<Vm>(), None);
        assert_eq!(back.decode::<Vm>().unwrap(), Some(Vm { vcpus: 4 }));
        assert!(back.decode::<u32>().is_err());
    }

    #[test]
    fn empty_options_are_empty_in_every_form() {
        let empty = EngineOptions::default();
        assert!(empty.is_empty());
        assert_eq!(empty.decode::<Vm>().unwrap(), None);
        let back: EngineOptions = serde_json::from_str("null").unwrap();
        assert!(back.is_empty());
        assert_eq!(back, empty);
    }
}

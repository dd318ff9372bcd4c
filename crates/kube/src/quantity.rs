//! CPU and memory amounts as a pipeline writes them, read exactly.
//!
//! Drone's kube runner reads `cpu: 1000` as millicores and truncates
//! fractions (`cpu: 1.9` becomes one millicore). Here an integer keeps
//! Drone's meaning (millicores, bytes), a string is a Kubernetes quantity
//! (`"500m"`, `"1.5"`, `"256Mi"`) or, for memory, a Drone byte size
//! (`"1GiB"`, `"100MB"`), and a fraction written as a number is refused
//! with the spelling to use instead.

use serde::{Deserialize, Serialize};

/// A CPU or memory value as written: a YAML integer, a number with a
/// fraction, or a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    /// `1000`: millicores for CPU, bytes for memory (Drone's units).
    Integer(u64),
    /// `1.5`: refused (Drone truncates it); write `"1500m"` or `"1.5"`.
    Fraction(f64),
    /// `"500m"`, `"2"`, `"256Mi"`, `"1GiB"`.
    Text(String),
}

/// What an [`Amount`] is an amount of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// CPU, counted in millicores.
    Cpu,
    /// Memory, counted in bytes.
    Memory,
}

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        }
    }
}

impl Amount {
    /// The value in millicores (CPU) or bytes (memory).
    ///
    /// # Errors
    /// A message saying what is wrong and what to write instead.
    pub fn value(&self, resource: Resource) -> Result<u64, String> {
        match self {
            Amount::Integer(n) => Ok(*n),
            Amount::Fraction(f) => Err(match resource {
                Resource::Cpu => format!(
                    "cpu: {f} is a fraction; write millicores as an integer ({}) or a quoted quantity (\"{f}\")",
                    (f * 1000.0).round()
                ),
                Resource::Memory => {
                    format!("memory: {f} is a fraction; write bytes or a quoted size (\"512Mi\")")
                }
            }),
            Amount::Text(text) => parse_text(text.trim(), resource).ok_or_else(|| {
                let want = match resource {
                    Resource::Cpu => "a Kubernetes quantity such as \"500m\" or \"2\"",
                    Resource::Memory => {
                        "a Kubernetes quantity such as \"256Mi\" or a size such as \"1GiB\""
                    }
                };
                format!("{}: {text:?} is not {want}", resource.name())
            }),
        }
    }
}

/// Parses a Kubernetes quantity (decimal number, then an optional suffix)
/// and, for memory, Drone's byte sizes.
fn parse_text(text: &str, resource: Resource) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number.matches('.').count() > 1 {
        return None;
    }
    // The scale of one unit of the number, in the resource's own unit
    // (millicores or bytes), as numerator/denominator to stay exact.
    let (numerator, denominator): (u128, u128) = match (resource, suffix) {
        (Resource::Cpu, "m") => (1, 1),
        (Resource::Cpu, "") => (1000, 1),
        (Resource::Cpu, _) => return None,
        (Resource::Memory, "" | "b" | "B") => (1, 1),
        (Resource::Memory, suffix) => (memory_scale(suffix)?, 1),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.len() > 9 {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mantissa: u128 = digits.parse().ok()?;
    let divisor = 10u128.pow(u32::try_from(fraction.len()).ok()?) * denominator;
    let scaled = mantissa.checked_mul(numerator)?;
    // A fraction of the smallest unit rounds up, as Kubernetes does.
    let value = scaled.div_ceil(divisor);
    u64::try_from(value).ok()
}

/// Bytes per unit of a memory suffix: Kubernetes' (`Ki`, `M`) and Drone's
/// (`KiB`, `MB`, `kb`, case-insensitive for the latter).
fn memory_scale(suffix: &str) -> Option<u128> {
    const K: u128 = 1000;
    const KI: u128 = 1024;
    let kubernetes = match suffix {
        "k" => Some(K),
        "M" => Some(K.pow(2)),
        "G" => Some(K.pow(3)),
        "T" => Some(K.pow(4)),
        "P" => Some(K.pow(5)),
        "E" => Some(K.pow(6)),
        "Ki" => Some(KI),
        "Mi" => Some(KI.pow(2)),
        "Gi" => Some(KI.pow(3)),
        "Ti" => Some(KI.pow(4)),
        "Pi" => Some(KI.pow(5)),
        "Ei" => Some(KI.pow(6)),
        _ => None,
    };
    if kubernetes.is_some() {
        return kubernetes;
    }
    match suffix.to_ascii_lowercase().as_str() {
        "kb" => Some(K),
        "mb" => Some(K.pow(2)),
        "gb" => Some(K.pow(3)),
        "tb" => Some(K.pow(4)),
        "kib" => Some(KI),
        "mib" => Some(KI.pow(2)),
        "gib" => Some(KI.pow(3)),
        "tib" => Some(KI.pow(4)),
        _ => None,
    }
}

/// Millicores as a Kubernetes quantity.
pub(crate) fn cpu_quantity(millicores: u64) -> String {
    format!("{millicores}m")
}

/// Bytes as a Kubernetes quantity.
pub(crate) fn memory_quantity(bytes: u64) -> String {
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str, r: Resource) -> Result<u64, String> {
        Amount::Text(s.into()).value(r)
    }

    #[test]
    fn cpu_reads_exactly() {
        assert_eq!(Amount::Integer(1000).value(Resource::Cpu), Ok(1000));
        assert_eq!(text("500m", Resource::Cpu), Ok(500));
        assert_eq!(text("1.9", Resource::Cpu), Ok(1900));
        assert_eq!(text("2", Resource::Cpu), Ok(2000));
        assert_eq!(text("0.0005", Resource::Cpu), Ok(1), "rounds up");
        let e = Amount::Fraction(1.9).value(Resource::Cpu).unwrap_err();
        assert!(e.contains("1900") && e.contains("\"1.9\""), "{e}");
        assert!(text("1Gi", Resource::Cpu).is_err());
        assert!(text("lots", Resource::Cpu).is_err());
        assert!(text("1.2.3", Resource::Cpu).is_err());
    }

    #[test]
    fn memory_reads_kubernetes_and_drone_sizes() {
        assert_eq!(text("256Mi", Resource::Memory), Ok(256 << 20));
        assert_eq!(text("1GiB", Resource::Memory), Ok(1 << 30));
        assert_eq!(text("100MB", Resource::Memory), Ok(100_000_000));
        assert_eq!(text("1.5Gi", Resource::Memory), Ok(3 << 29));
        assert_eq!(text("4096", Resource::Memory), Ok(4096));
        assert_eq!(
            Amount::Integer(32 << 20).value(Resource::Memory),
            Ok(32 << 20)
        );
        assert!(text("12 parsecs", Resource::Memory).is_err());
        assert!(Amount::Fraction(0.5).value(Resource::Memory).is_err());
    }
}

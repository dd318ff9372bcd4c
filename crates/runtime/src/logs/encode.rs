//! The encoded forms of a secret that a step may print instead of its plain
//! text: base64 (standard and URL-safe, padded or not, wrapped or not, and
//! inside a longer base64 text), percent-encoding and JSON string escaping.
//!
//! A step that runs `printf %s "$TOKEN" | base64`, builds a URL with the
//! token in its query or logs a JSON request body shows the secret in a form
//! a plain-text search misses. act_runner and Buildkite mask such forms;
//! Drone masks none.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Shortest base64 form that is masked, in characters.
///
/// Base64 is dense: logs print long blobs of it (certificates, image
/// configs, tokens), and a short form would match by chance inside them,
/// masking innocent text. That matters most for the fragments (a wrapped
/// line's remainder, the middle of an encoding inside a longer text), which
/// can be as short as one character. Eight characters is 48 bits: one chance
/// in about 10^14 per position of random base64. A secret so short that its
/// encodings are shorter (3 bytes or fewer; 4 and 5 bytes keep only their
/// padded encoding) still has its plain text masked.
pub(super) const MIN_BASE64: usize = 8;

/// Where GNU `base64` (and `openssl base64` at 64, which is a multiple of 4
/// too, but not handled here) wraps its output by default.
const WRAP: usize = 76;

/// Appends every encoded form of `value` that differs from `value` itself.
/// Forms may repeat; the caller deduplicates.
pub(super) fn encoded_forms(value: &str, out: &mut Vec<String>) {
    base64_forms(value.as_bytes(), out);
    percent_forms(value, out);
    json_forms(value, out);
}

/// Standard base64 with padding, as `base64` prints it, and from it: the
/// same without padding, its lines when wrapped at 76 columns, and the
/// stable cores of the secret inside a longer encoding; each also in the
/// URL-safe alphabet (`-_` for `+/`).
fn base64_forms(bytes: &[u8], out: &mut Vec<String>) {
    let mut push = |form: &str| {
        if form.len() >= MIN_BASE64 {
            out.push(form.to_owned());
            if form.contains(['+', '/']) {
                out.push(form.replace('+', "-").replace('/', "_"));
            }
        }
    };
    let padded = STANDARD.encode(bytes);
    push(&padded);
    push(padded.trim_end_matches('='));
    // GNU base64 wraps at 76 columns: each line shows on its own, like the
    // lines of a multi-line secret. Every line but the last is 76 characters;
    // the last is dropped by `push` when shorter than MIN_BASE64, because a
    // remainder like `Zg==` would mask unrelated text (see MIN_BASE64), and
    // what it would hide is at most the secret's last 5 bytes, whose other
    // encodings and plain text stay masked.
    if padded.len() > WRAP {
        for line in padded.as_bytes().chunks(WRAP) {
            // Base64 is ASCII, so any byte offset is a char boundary.
            if let Ok(line) = std::str::from_utf8(line) {
                push(line);
            }
        }
    }
    // Base64 of the secret inside a longer text depends on the secret's
    // offset modulo 3: with `k` bytes before it in its 3-byte group, its
    // characters start at bit 8k of a 6-bit grid. The characters whose 6
    // bits all come from the secret are the same whatever surrounds it: that
    // core is what a longer text shows at that offset (the characters at
    // each end mix in the neighbours' bits and are left visible: at most 4
    // bits of the secret each). For k = 0 the core is the unpadded encoding
    // minus its last character when the length is not a multiple of 3: the
    // secret followed by more data, as `echo "$TOKEN" | base64` prints it.
    for k in 0..3 {
        let mut shifted = vec![0u8; k];
        shifted.extend_from_slice(bytes);
        let encoded = STANDARD.encode(&shifted);
        let start = (8 * k).div_ceil(6);
        let end = 8 * (k + bytes.len()) / 6;
        if let Some(core) = encoded.get(start..end) {
            push(core);
        }
    }
}

/// How URL encoders escape: the punctuation they leave as is (letters and
/// digits always are) and whether a space becomes `+`.
const PERCENT: [(&[u8], bool); 6] = [
    // RFC 3986's unreserved set: curl `--data-urlencode`, Python's
    // `quote(s, safe='')`, PHP's `rawurlencode`.
    (b"-_.~", false),
    // Go's `url.QueryEscape`, Python's `quote_plus`.
    (b"-_.~", true),
    // JavaScript's `encodeURIComponent`.
    (b"-_.~!'()*", false),
    // Python's `quote` with its default `safe='/'`.
    (b"-_.~/", false),
    // The WHATWG form encoding: `URLSearchParams`, Java's `URLEncoder`,
    // Rust's `form_urlencoded`.
    (b"*-._", true),
    // PHP's `urlencode`.
    (b"-_.", true),
];

/// Percent-encodings of `value` as URL encoders print it (see `PERCENT`),
/// each with uppercase hex (what RFC 3986 recommends and all of them print)
/// and lowercase hex (which some hand-written encoders print and every
/// decoder accepts).
fn percent_forms(value: &str, out: &mut Vec<String>) {
    for (keep, space_plus) in PERCENT {
        for hex in [UPPER_HEX, LOWER_HEX] {
            let form = percent(value, keep, space_plus, hex);
            if form != value {
                out.push(form);
            }
        }
    }
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

fn percent(value: &str, keep: &[u8], space_plus: bool, hex: &[u8; 16]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' && space_plus {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(hex[usize::from(b >> 4)]));
            out.push(char::from(hex[usize::from(b & 0xf)]));
        }
    }
    out
}

/// How a JSON encoder writes a string's characters.
#[derive(Clone, Copy)]
enum Json {
    /// Only what JSON requires: `"`, `\` and control characters (serde_json,
    /// `JSON.stringify`, Python's `json.dumps(..., ensure_ascii=False)`).
    Minimal,
    /// Also every non-ASCII character as `\uXXXX`, astral ones as surrogate
    /// pairs (Python's `json.dumps` default).
    Ascii,
    /// Also `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX` (Go's
    /// `encoding/json`).
    Html,
}

/// The secret as written inside a JSON string by common encoders, with
/// lowercase `\u` hex (all of the above) and uppercase (Jackson, among
/// others).
fn json_forms(value: &str, out: &mut Vec<String>) {
    for style in [Json::Minimal, Json::Ascii, Json::Html] {
        for hex in [LOWER_HEX, UPPER_HEX] {
            let form = json(value, style, hex);
            if form != value {
                out.push(form);
            }
        }
    }
}

fn json(value: &str, style: Json, hex: &[u8; 16]) -> String {
    let mut out = String::with_capacity(value.len());
    let unicode = |out: &mut String, unit: u16| {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            out.push(char::from(hex[usize::from((unit >> shift) & 0xf)]));
        }
    };
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => unicode(&mut out, c as u16),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if matches!(style, Json::Html) => {
                unicode(&mut out, c as u16);
            }
            c if !c.is_ascii() && matches!(style, Json::Ascii) => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    unicode(&mut out, unit);
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: fn(&str, &mut Vec<String>), value: &str) -> Vec<String> {
        let mut out = Vec::new();
        f(value, &mut out);
        out.sort();
        out.dedup();
        out
    }

    fn base64(value: &str) -> Vec<String> {
        with(|v, out| base64_forms(v.as_bytes(), out), value)
    }

    fn has(forms: &[String], form: &str) -> bool {
        forms.iter().any(|f| f == form)
    }

    #[test]
    fn base64_padded_unpadded_and_cores() {
        let f = base64("hunter22");
        assert!(has(&f, "aHVudGVyMjI="), "{f:?}");
        assert!(has(&f, "aHVudGVyMjI"), "{f:?}");
        // "hunter22" is 8 bytes: 64 bits, 10 whole characters at offset 0.
        assert!(has(&f, "aHVudGVyMj"), "{f:?}");
        // Offsets 1 and 2: the base64 of "x" + secret and "xy" + secret
        // contain the core whatever x and y are.
        for prefix in ["x", "\u{0}", "xy", "\u{ff}z"] {
            let encoded = STANDARD.encode(format!("{prefix}hunter22tail"));
            assert!(
                f.iter().any(|c| encoded.contains(c.as_str())),
                "no core for {prefix:?} in {encoded}: {f:?}"
            );
        }
        assert_eq!(f.len(), 5, "padded, unpadded and three cores: {f:?}");
    }

    #[test]
    fn base64_url_safe_differs_only_when_plus_or_slash() {
        // base64("??>>??>>") = "Pz8+Pj8/Pj4=": both + and /.
        let f = base64("??>>??>>");
        assert!(has(&f, "Pz8+Pj8/Pj4="), "{f:?}");
        assert!(has(&f, "Pz8-Pj8_Pj4="), "{f:?}");
        assert!(has(&f, "Pz8-Pj8_Pj4"), "{f:?}");
        assert!(!base64("hunter22").iter().any(|c| c.contains(['-', '_'])));
    }

    #[test]
    fn short_base64_forms_are_dropped() {
        // base64("abcde") = "YWJjZGU=": 8 characters, kept; the unpadded
        // form and the cores are shorter and dropped.
        assert_eq!(base64("abcde"), ["YWJjZGU="]);
        assert_eq!(base64("abcd"), ["YWJjZA=="]);
        assert!(base64("abc").is_empty());
    }

    #[test]
    fn wrapped_base64_lines_are_forms_and_short_remainders_are_not() {
        // 58 bytes: 80 characters, wrapped into 76 + "Kg==" (dropped).
        let secret = "a".repeat(57) + "*";
        let encoded = STANDARD.encode(&secret);
        let f = base64(&secret);
        assert!(has(&f, &encoded[..76]));
        assert_eq!(&encoded[76..], "Kg==");
        assert!(!f.iter().any(|c| c.len() < MIN_BASE64), "{f:?}");
        // 70 bytes: the remainder is 20 characters, kept.
        let secret = "b".repeat(70);
        let encoded = STANDARD.encode(&secret);
        assert!(has(&base64(&secret), &encoded[76..]), "{}", &encoded[76..]);
    }

    #[test]
    fn percent_forms_as_url_encoders_print_them() {
        let f = with(percent_forms, "p@ss/w rd");
        assert_eq!(
            f,
            [
                "p%40ss%2Fw%20rd",
                "p%40ss%2Fw+rd",
                "p%40ss%2fw%20rd",
                "p%40ss%2fw+rd",
                "p%40ss/w%20rd"
            ]
        );
        // Letters, digits and "-_.": nothing to add.
        assert!(with(percent_forms, "abc-DEF_1.2").is_empty());
        // encodeURIComponent and the form encoding keep '*', the others
        // escape it; the form encoding and PHP's escape '~'.
        assert_eq!(with(percent_forms, "ab*cd"), ["ab%2Acd", "ab%2acd"]);
        assert_eq!(with(percent_forms, "ab~cd"), ["ab%7Ecd", "ab%7ecd"]);
    }

    #[test]
    fn json_forms_as_encoders_print_them() {
        assert_eq!(with(json_forms, r#"a"b\c"#), [r#"a\"b\\c"#]);
        assert!(with(json_forms, "plain text").is_empty());
        let f = with(json_forms, "t\u{1}é<\n");
        for form in [
            r"t\u0001é<\n",
            r"t\u0001\u00e9<\n",
            r"t\u0001é\u003c\n",
            r"t\u0001\u00E9<\n",
        ] {
            assert!(has(&f, form), "{form}: {f:?}");
        }
        // An astral character is a surrogate pair.
        assert!(has(&with(json_forms, "k🔑"), r"k\ud83d\udd11"));
    }
}

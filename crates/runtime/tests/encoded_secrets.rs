//! A secret's encoded forms are masked through the log path like its plain
//! text, however the output is chunked.
//!
//! The forms here come from the encoders steps use (the base64 crate,
//! serde_json, percent-encoding and form_urlencoded) or from first
//! principles (the stable core of base64 at an offset), not from the
//! masker's own code, so they check it rather than restate it.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use runnerkit_core::Lines;
use runnerkit_runtime::logs::{LineWriter, MASK, Masker};

/// RFC 3986's unreserved characters are left as is.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn masker(secrets: &[&str]) -> Arc<Masker> {
    Arc::new(Masker::new(secrets.iter().copied()))
}

/// The lines `chunks` make through a `LineWriter` masking with `masker`.
fn run(masker: &Arc<Masker>, chunks: &[&[u8]]) -> Vec<String> {
    let mut writer = LineWriter::new(masker.clone(), usize::MAX);
    let mut out = Vec::new();
    let mut emit = |lines: Lines<'_>| out.extend(lines.iter().map(|l| l.message.to_owned()));
    for chunk in chunks {
        writer.write(chunk, 0, &mut emit);
    }
    writer.finish(0, &mut emit);
    out
}

/// `text` cut at each of `cuts` (clamped, in order).
fn split<'a>(text: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(text.len())).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for c in cuts {
        chunks.push(&text[last..c]);
        last = c;
    }
    chunks.push(&text[last..]);
    chunks
}

fn lowercase_hex(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut hex = 0;
    for c in escaped.chars() {
        if c == '%' {
            hex = 2;
            out.push(c);
        } else if hex > 0 {
            hex -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The whole-value forms of `secret` that differ from it.
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("a string serializes");
    let rfc3986 = utf8_percent_encode(secret, RFC3986).to_string();
    let mut forms = vec![
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        json[1..json.len() - 1].to_owned(),
        lowercase_hex(&rfc3986),
        rfc3986,
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
    ];
    forms.retain(|f| f != secret);
    forms.sort();
    forms.dedup();
    forms
}

/// The characters of the base64 of `before + secret + after` that depend on
/// the secret alone: those that stay the same when every bit of the
/// neighbours is flipped (a character mixing in any neighbour bit changes).
fn core(before: &[u8], secret: &str, after: &[u8]) -> (String, String) {
    let flip = |b: &[u8]| b.iter().map(|x| !x).collect::<Vec<u8>>();
    let text = |before: &[u8], after: &[u8]| {
        let mut t = before.to_vec();
        t.extend_from_slice(secret.as_bytes());
        t.extend_from_slice(after);
        STANDARD.encode(t)
    };
    let one = text(before, after);
    let two = text(&flip(before), &flip(after));
    let core: String = one
        .chars()
        .zip(two.chars())
        .filter(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    (one, core)
}

/// Printable ASCII without `*`: a secret made of mask characters would
/// "show" in every mask.
const SECRET: &str = "[!-)+-~][ -)+-~]{6,30}[!-)+-~]";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Each form of a secret, and the base64 of the secret inside a longer
    /// text at any offset, is masked at every split of the output into two
    /// chunks and at a random split into several; neither the secret nor
    /// any form shows.
    #[test]
    fn every_form_is_masked_at_every_split(
        secret in SECRET,
        before in "[ -~]{0,12}",
        after in "[ -~]{0,12}",
        neighbours in proptest::collection::vec(any::<u8>(), 0..6),
        cuts in proptest::collection::vec(0usize..2000, 1..8),
    ) {
        let forms = forms(&secret);
        let mut text = String::new();
        text.push_str(&format!("{before}{secret}{after}\n"));
        for form in &forms {
            text.push_str(&format!("{before}{form}{after}\n"));
        }
        // Base64 of the secret with 0 to 5 bytes on either side.
        let (at, rest) = neighbours.split_at(neighbours.len() / 2);
        let (embedded, core) = core(at, &secret, rest);
        prop_assert!(core.len() >= 8, "{core}");
        text.push_str(&format!("{before}{embedded}{after}\n"));
        let bytes = text.as_bytes();

        let check = |out: &[String]| -> Result<(), TestCaseError> {
            prop_assert_eq!(out.len(), forms.len() + 2);
            for line in out {
                prop_assert!(!line.contains(&secret), "secret in {:?}", line);
                for form in &forms {
                    prop_assert!(!line.contains(form.as_str()), "{:?} in {:?}", form, line);
                }
                prop_assert!(line.contains(MASK), "nothing masked in {:?}", line);
            }
            // At most one character of the core shows, at its end when
            // nothing follows (padding bits, not a neighbour's, mix into it).
            let last = &out[out.len() - 1];
            for window in core.as_bytes().windows(8) {
                let window = std::str::from_utf8(window).expect("base64 is ASCII");
                prop_assert!(!last.contains(window), "{:?} of {:?} in {:?}", window, core, last);
            }
            Ok(())
        };
        let m = masker(&[&secret]);
        for cut in 0..=bytes.len() {
            check(&run(&m, &split(bytes, &[cut])))?;
        }
        check(&run(&m, &split(bytes, &cuts)))?;
    }

    /// GNU `base64` wraps at 76 columns: every line of a long secret's
    /// wrapped encoding is masked but a remainder shorter than 8
    /// characters, which is left alone so as not to mask unrelated text.
    #[test]
    fn wrapped_base64_lines_are_masked(
        secret in "[!-)+-~]{58,240}",
        cut in 0usize..400,
    ) {
        let encoded = STANDARD.encode(&secret);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|l| std::str::from_utf8(l).expect("base64 is ASCII"))
            .collect();
        let text = format!("$ base64 key\n{}\n", lines.join("\n"));
        let out = run(&masker(&[&secret]), &split(text.as_bytes(), &[cut]));
        prop_assert_eq!(out.len(), lines.len() + 1);
        for (line, shown) in lines.iter().zip(&out[1..]) {
            if line.len() >= 8 {
                prop_assert_eq!(shown.as_str(), MASK);
            } else {
                prop_assert_eq!(shown, line);
            }
        }
    }

    /// Text holding no form of any secret passes unchanged. Secrets are
    /// uppercase letters and the text has none: then no form fits in it
    /// either, as each 4 characters of base64 (at any offset) hold one
    /// that is the top 6 bits of a secret byte, an uppercase `Q` to `W`.
    #[test]
    fn text_without_a_form_is_unchanged(
        secrets in proptest::collection::vec("[A-Z]{8,16}", 1..20),
        text in "[a-z0-9 .,:/=+%\\\\\"\n-]{0,400}",
        cut in 0usize..400,
    ) {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let out = run(&masker(&secrets), &split(text.as_bytes(), &[cut]));
        let expected: Vec<&str> = text.split_inclusive('\n').map(|l| l.trim_end_matches('\n')).collect();
        prop_assert_eq!(out, expected);
    }
}

#[test]
fn known_values() {
    let out = run(
        &masker(&["hunter22", "p@ss/w rd", r#"a"b\c"#, "??>>??>>"]),
        &[concat!(
            "echo aHVudGVyMjI= | base64 -d\n",
            // `echo hunter22 | base64`: the newline's bits end the text.
            "aHVudGVyMjIK\n",
            "curl https://x/?p=p%40ss%2Fw%20rd&q=p%40ss%2fw+rd\n",
            "{\"password\":\"a\\\"b\\\\c\"}\n",
            "std Pz8+Pj8/Pj4= url Pz8-Pj8_Pj4\n",
        )
        .as_bytes()],
    );
    assert_eq!(
        out,
        [
            "echo ****** | base64 -d",
            "******K",
            "curl https://x/?p=******&q=******",
            "{\"password\":\"******\"}",
            "std ****** url ******",
        ]
    );
}

#[test]
fn a_multi_line_key_is_masked_in_its_encodings() {
    let key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END KEY-----\n";
    let json = serde_json::to_string(key).expect("a string serializes");
    let wrapped: Vec<String> = STANDARD
        .encode(key)
        .as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let text = format!(
        "{{\"key\":{json}}}\n{}\n{}\n",
        STANDARD.encode(key),
        wrapped.join("\n")
    );
    let out = run(&masker(&[key]), &[text.as_bytes()]);
    assert_eq!(out[0], "{\"key\":\"******\"}");
    assert_eq!(out[1], MASK);
    let short = wrapped.iter().filter(|l| l.len() < 8).count();
    assert_eq!(
        out[2..].iter().filter(|l| *l == MASK).count(),
        wrapped.len() - short,
        "{out:?}"
    );
}

#[test]
fn log_text_without_secrets_is_unchanged() {
    let text = concat!(
        "   Compiling serde v1.0.219\n",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
        "data: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n",
        "GET /search?q=a%20b%2Fc&lang=en {\"ok\":true,\"msg\":\"a\\\"b\"}\n",
    );
    let out = run(
        &masker(&["hunter22", "p@ss/w rd", r#"a"b\c"#]),
        &[text.as_bytes()],
    );
    let expected: Vec<&str> = text.lines().collect();
    assert_eq!(out, expected);
}

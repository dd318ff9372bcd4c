//! Substitute arbitrary text with every variable set, and with none: no panic,
//! and text without `$` comes back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runnerkit_manifest::envsubst;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let unset = envsubst(text, |_| None);
    let _ = envsubst(text, |name| Some(format!("{name}/é\n{name}")));
    if !text.contains('$') {
        assert_eq!(unset.as_deref(), Ok(text));
    }
});

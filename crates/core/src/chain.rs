//! One line for an error and its causes.

/// `error`'s message followed by each of its causes, `: `-separated: what a
/// user should read of an error whose sources carry the details (an I/O
/// error under an HTTP one under a plugin's).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

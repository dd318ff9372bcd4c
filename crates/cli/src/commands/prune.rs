//! `runnerkit prune`: remove what runs whose process is gone left behind,
//! with the prune of every registered type that has one.

use std::io::Write;

use crate::output::exit::Outcome;
use crate::runner::RunnerTypes;

/// Prunes every engine that can and lists what was removed on `out`;
/// errors go to stderr. Fails when one engine could not be pruned (the
/// others still are).
pub async fn run(types: &RunnerTypes, out: &mut dyn Write) -> Outcome {
    let mut removed = Vec::new();
    let mut outcome = Outcome::Clean;
    for runner_type in types.iter() {
        match runner_type
            .prune(crate::runner::EngineSettings::from_env())
            .await
        {
            None => {}
            Some(Ok(objects)) => removed.extend(objects),
            Some(Err(e)) => {
                // The engine's own message names it ("the Docker engine ...").
                eprintln!("error: {}", runnerkit_core::error_chain(&*e));
                outcome = Outcome::Failed;
            }
        }
    }
    // What was removed is gone whether or not it can be told.
    let _ = describe(&removed, out);
    outcome
}

/// One line per object removed, or one saying there was nothing.
fn describe(removed: &[String], out: &mut dyn Write) -> std::io::Result<()> {
    if removed.is_empty() {
        return writeln!(
            out,
            "nothing to remove: no runnerkit object outlived its run"
        );
    }
    for object in removed {
        writeln!(out, "removed {object}")?;
    }
    let total = removed.len();
    writeln!(
        out,
        "{total} object{} removed",
        if total == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_was_removed() {
        let mut out = Vec::new();
        describe(&[], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "nothing to remove: no runnerkit object outlived its run\n"
        );
        let report = ["container rk-a-build".to_owned(), "network rk-a".to_owned()];
        let mut out = Vec::new();
        describe(&report, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "removed container rk-a-build\nremoved network rk-a\n2 objects removed\n"
        );
    }
}

//! Ctrl-C: the first cancels the stage (running steps are killed, the
//! engine tears down, `exec` exits 1); a second exits at once with 130.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::output::exit::{self, Outcome};

/// Watches for SIGINT until the returned task is aborted.
pub fn watch(cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling on this platform: Ctrl-C keeps its default.
            return;
        }
        eprintln!(
            "runnerkit: interrupted: stopping the steps (press Ctrl-C again to quit at once)"
        );
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("runnerkit: interrupted again: quitting without cleaning up");
            std::process::exit(i32::from(exit::code(Outcome::Interrupted)));
        }
    })
}

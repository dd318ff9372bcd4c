//! Ctrl-C (SIGINT) and SIGTERM: the first cancels the stage (running steps
//! are killed, the engine tears down, `exec` exits 1); a second exits at once
//! with 130, leaving the teardown undone.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::output::exit::{self, Outcome};

/// Watches for SIGINT and SIGTERM until the returned task is aborted.
pub fn watch(cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut signals) = Signals::install() else {
            return;
        };
        if !signals.next().await {
            return;
        }
        eprintln!(
            "runnerkit: interrupted: stopping the steps (press Ctrl-C again to quit at once)"
        );
        cancel.cancel();
        if signals.next().await {
            eprintln!("runnerkit: interrupted again: quitting without cleaning up");
            std::process::exit(i32::from(exit::code(Outcome::Interrupted)));
        }
    })
}

/// The two signals that stop a run.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// `None` when the handlers cannot be installed: the signals then keep
    /// their default action (the process ends).
    fn install() -> Option<Self> {
        Some(Self {
            interrupt: signal(SignalKind::interrupt()).ok()?,
            terminate: signal(SignalKind::terminate()).ok()?,
        })
    }

    /// Waits for either; `false` once no more can arrive.
    async fn next(&mut self) -> bool {
        tokio::select! {
            got = self.interrupt.recv() => got.is_some(),
            got = self.terminate.recv() => got.is_some(),
        }
    }
}

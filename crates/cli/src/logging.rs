//! Log messages of runnerkit's crates (and of the libraries below them) on
//! stderr, through `tracing`.
//!
//! `exec`, `compile` and `lint` show warnings and errors only, so an engine's
//! or the runtime's warnings are seen without drowning the step logs; the
//! daemon logs at info, and at debug or trace with `DRONE_DEBUG` /
//! `DRONE_TRACE`. The extra detail is for runnerkit's own crates; the HTTP
//! and Docker libraries stay at warn, as their debug output is noise (and
//! may carry request bodies).

use std::io::IsTerminal;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Warnings and errors (`exec`, `compile`, `lint`).
    Warn,
    /// What a daemon's operator follows: stages taken and done, reconnects.
    Info,
    /// `DRONE_DEBUG`.
    Debug,
    /// `DRONE_TRACE`.
    Trace,
}

/// Targets are matched by prefix: this is the binary (`runnerkit::...`) and
/// every `runnerkit_*` crate. Everything else is logged from warn up.
const OURS: &str = "runnerkit";

/// Installs the stderr logger for the whole process. A second call (tests)
/// is ignored.
pub fn install(verbosity: Verbosity) {
    let level = match verbosity {
        Verbosity::Warn => LevelFilter::WARN,
        Verbosity::Info => LevelFilter::INFO,
        Verbosity::Debug => LevelFilter::DEBUG,
        Verbosity::Trace => LevelFilter::TRACE,
    };
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target(OURS, level);
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .with_target(verbosity >= Verbosity::Debug),
        )
        .with(filter)
        .try_init();
}

//! Following a step's log from its first byte to its last, across a follow
//! that ends early (a kubelet restart, a dropped connection): each line
//! carries its timestamp, and a resumed follow skips what was delivered.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{AsyncBufReadExt, AsyncReadExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use runnerkit_core::EngineError;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::status;
use crate::watch::{PodWatch, Seen, WaitEnd};

/// The longest piece of a line read at once.
const MAX_PIECE: u64 = 1 << 20;

/// Where a resumed follow starts: after the last line delivered.
///
/// stdout and stderr are merged by the kubelet in no stable order, so their
/// timestamps need not rise within one read: nothing is dropped there. Only a
/// resumed read (from the second of the latest line, the API's granularity)
/// skips, up to the point already delivered.
#[derive(Debug, Default)]
struct Position {
    /// The latest timestamp delivered.
    last: Option<Timestamp>,
    /// How many lines delivered carry exactly `last`.
    at_last: usize,
}

/// What a read still has to skip before its lines are new.
#[derive(Debug)]
struct Skip {
    /// Still skipping (a resumed read, before the point delivered).
    active: bool,
    /// Lines stamped exactly `last` still to skip.
    at_last: usize,
}

impl Position {
    /// The skip of a read starting now.
    fn skip(&self) -> Skip {
        Skip {
            active: self.last.is_some(),
            at_last: self.at_last,
        }
    }

    /// Whether the line stamped `at` is new, recording it if so.
    fn admit(&mut self, at: Timestamp, skip: &mut Skip) -> bool {
        if skip.active {
            match self.last {
                Some(last) if at < last => return false,
                Some(last) if at == last && skip.at_last > 0 => {
                    skip.at_last -= 1;
                    return false;
                }
                _ => skip.active = false,
            }
        }
        match self.last {
            Some(last) if at == last => self.at_last += 1,
            Some(last) if at < last => {}
            _ => {
                self.last = Some(at);
                self.at_last = 1;
            }
        }
        true
    }
}

/// What a follow is of: one container of one pod.
pub(crate) struct Follow {
    pub(crate) api: Api<Pod>,
    pub(crate) pod: String,
    pub(crate) container: String,
    pub(crate) watch: PodWatch,
    /// The stage's end (destroy).
    pub(crate) done: CancellationToken,
    /// The step's token; after it fires the follow goes on for `grace`
    /// (the step's last words, its trap's output), then ends.
    pub(crate) cancel: CancellationToken,
    pub(crate) grace: Duration,
}

impl Follow {
    /// Sends the step's output to `tx` until it has all been sent.
    pub(crate) async fn run(self, tx: mpsc::Sender<Result<Bytes, EngineError>>) {
        let mut position = Position::default();
        let mut failures: u32 = 0;
        loop {
            let (began, ended, restarted) = match self.watch.latest() {
                Seen::Gone => return,
                Seen::Pod(pod) => match status::container(&pod, &self.container) {
                    Some(c) => (
                        status::step_began(c),
                        status::step_ended(c).is_some(),
                        c.restart_count >= 2,
                    ),
                    None => return,
                },
            };
            if !began {
                return;
            }
            let params = LogParams {
                container: Some(self.container.clone()),
                // Once the container went back to the placeholder, the
                // step's run is its previous instance, complete.
                follow: !restarted,
                previous: restarted,
                timestamps: true,
                since_time: position.last.map(|t| {
                    // The API takes whole seconds: start at the second of
                    // the last line and skip what was delivered.
                    Timestamp::from_second(t.as_second()).unwrap_or(t)
                }),
                ..LogParams::default()
            };
            let mut skip = position.skip();
            let outcome = tokio::select! {
                () = self.done.cancelled() => return,
                () = after(&self.cancel, self.grace) => return,
                outcome = self.read(&params, &mut position, &mut skip, &tx) => outcome,
            };
            match outcome {
                Read::Closed => return,
                Read::Ended if ended || restarted => return,
                Read::Ended => {
                    // A follow ends when the container does; if its end is
                    // not seen within moments, the follow ended early
                    // (kubelet restart, dropped connection): resume.
                    let deadline = Some(Instant::now() + Duration::from_secs(2));
                    let end = self
                        .watch
                        .until(&self.done, deadline, |pod| {
                            status::container(pod, &self.container)
                                .and_then(status::step_ended)
                                .map(|_| ())
                        })
                        .await;
                    match end {
                        Ok(()) | Err(WaitEnd::Gone | WaitEnd::Cancelled) => return,
                        Err(WaitEnd::TimedOut) => {}
                    }
                }
                Read::Failed(e) => {
                    failures += 1;
                    tracing::debug!(container = self.container, "log follow failed: {e}");
                    if failures > 30 {
                        let _ = tx
                            .send(Err(EngineError::new(
                                crate::ENGINE,
                                runnerkit_core::EngineErrorKind::Unavailable,
                                format!("follow the log of container {}: {e}", self.container),
                            )))
                            .await;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(10))))
                        .await;
                }
            }
        }
    }

    async fn read(
        &self,
        params: &LogParams,
        position: &mut Position,
        skip: &mut Skip,
        tx: &mpsc::Sender<Result<Bytes, EngineError>>,
    ) -> Read {
        let reader = match self.api.log_stream(&self.pod, params).await {
            Ok(reader) => reader,
            Err(e) => return Read::Failed(e.to_string()),
        };
        futures_util::pin_mut!(reader);
        let mut line = Vec::with_capacity(256);
        // A line longer than the cap goes on in pieces: memory stays bounded
        // whatever a step prints, and a piece after the first has no stamp.
        let mut continuing = false;
        let mut admitted = true;
        loop {
            line.clear();
            let mut capped = (&mut reader).take(MAX_PIECE);
            match capped.read_until(b'\n', &mut line).await {
                Ok(0) => return Read::Ended,
                Ok(_) => {
                    let (at, text) = if continuing {
                        (None, &line[..])
                    } else {
                        split_timestamp(&line)
                    };
                    let new = match at {
                        Some(at) => position.admit(at, skip),
                        // The rest of a long line, or a line without a stamp:
                        // as new as the piece before it.
                        None => admitted,
                    };
                    admitted = new;
                    continuing = line.last() != Some(&b'\n');
                    if new && tx.send(Ok(Bytes::copy_from_slice(text))).await.is_err() {
                        return Read::Closed;
                    }
                }
                Err(e) => return Read::Failed(e.to_string()),
            }
        }
    }
}

enum Read {
    /// The stream ended cleanly.
    Ended,
    /// The reader of the step's stream went away.
    Closed,
    /// The stream could not be opened, or broke.
    Failed(String),
}

/// Fires `grace` after `cancel` fires.
async fn after(cancel: &CancellationToken, grace: Duration) {
    cancel.cancelled().await;
    tokio::time::sleep(grace).await;
}

/// `2026-12-02T10:00:00.123456789Z text` → the timestamp and `text`.
fn split_timestamp(line: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let Some(space) = line.iter().position(|b| *b == b' ') else {
        return (None, line);
    };
    let stamp = std::str::from_utf8(&line[..space])
        .ok()
        .and_then(|s| s.parse::<Timestamp>().ok());
    match stamp {
        Some(at) => (Some(at), &line[space + 1..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_follow_skips_what_was_delivered_and_a_first_read_nothing() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut position = Position::default();
        let mut skip = position.skip();
        assert!(position.admit(t("2026-01-01T00:00:01.5Z"), &mut skip));
        assert!(position.admit(t("2026-01-01T00:00:02Z"), &mut skip));
        assert!(
            position.admit(t("2026-01-01T00:00:01.7Z"), &mut skip),
            "stderr behind stdout: late, not lost"
        );
        assert!(position.admit(t("2026-01-01T00:00:02Z"), &mut skip));
        // Resumed from second 1: the four lines come again, then new ones.
        let mut skip = position.skip();
        assert!(!position.admit(t("2026-01-01T00:00:01.5Z"), &mut skip));
        assert!(!position.admit(t("2026-01-01T00:00:01.7Z"), &mut skip));
        assert!(!position.admit(t("2026-01-01T00:00:02Z"), &mut skip));
        assert!(!position.admit(t("2026-01-01T00:00:02Z"), &mut skip));
        assert!(
            position.admit(t("2026-01-01T00:00:02Z"), &mut skip),
            "a third line of that instant is new"
        );
        assert!(position.admit(t("2026-01-01T00:00:03Z"), &mut skip));
        assert!(
            position.admit(t("2026-01-01T00:00:02.5Z"), &mut skip),
            "past the point, nothing is skipped"
        );
    }

    #[test]
    fn timestamps_are_split_off() {
        let (at, text) = split_timestamp(b"2026-12-02T10:00:00.123456789Z hello world\n");
        assert!(at.is_some());
        assert_eq!(text, b"hello world\n");
        let (at, text) = split_timestamp(b"no stamp here\n");
        assert!(at.is_none());
        assert_eq!(text, b"no stamp here\n");
    }
}

//! A step's output: copied from the container's attach stream (opened before
//! the container starts, so no byte is missed) into a buffer the `tail`
//! stream reads.
//!
//! The copy runs in its own task and never waits for the reader: the daemon
//! writes attached output synchronously, so a reader that lags must not slow
//! the container down. The buffer is unbounded for that reason; the runtime
//! reads `tail` while the step runs, so it stays small in practice.

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::errors::Error as ApiError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt, stream};
use runnerkit_core::{CancellationToken, EngineError, LogStream};
use tokio::sync::mpsc;

use crate::error::api_error;

/// A chunk of output, or the error that ended it.
pub(crate) type Chunk = Result<Bytes, EngineError>;

/// The attach stream's output, as bollard decodes it.
pub(crate) type AttachOutput = Pin<Box<dyn Stream<Item = Result<LogOutput, ApiError>> + Send>>;

/// Asked once when the output ends on its own, before the teardown: the
/// error to end the stream with, if any (a detached step's container was
/// removed from outside; nobody waits for it, so only its stream can say).
pub(crate) type EndCheck = Box<dyn FnOnce() -> BoxFuture<'static, Option<EngineError>> + Send>;

/// Starts copying `output` (stdout and stderr frames, in the order the
/// daemon sent them) into a buffer and returns its reading end, and a token
/// fired when the copy has ended. The copy ends with the output (then
/// `end_check`'s error, if it has one, is its last item), on a read error
/// (passed on), when the reader is gone, or when `stop` fires.
pub(crate) fn forward(
    mut output: AttachOutput,
    container: String,
    stop: CancellationToken,
    mut end_check: Option<EndCheck>,
) -> (mpsc::UnboundedReceiver<Chunk>, CancellationToken) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ended = CancellationToken::new();
    let copy_ended = ended.clone().drop_guard();
    tokio::spawn(async move {
        let _copy_ended = copy_ended;
        loop {
            let next = tokio::select! {
                biased;
                next = output.next() => next,
                () = stop.cancelled() => break,
            };
            let chunk = match next {
                None => {
                    if let Some(check) = end_check.take() {
                        let ended = tokio::select! {
                            biased;
                            () = stop.cancelled() => None,
                            ended = check() => ended,
                        };
                        if let Some(e) = ended {
                            let _ = tx.send(Err(e));
                        }
                    }
                    break;
                }
                Some(Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message }))
                | Some(Ok(LogOutput::Console { message })) => Ok(message),
                Some(Ok(LogOutput::StdIn { .. })) => continue,
                Some(Err(e)) => Err(api_error(
                    format!("read the output of container {container:?}"),
                    e,
                )),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).is_err() || failed {
                break;
            }
        }
        tracing::trace!(%container, "output copy ended");
    });
    (rx, ended)
}

/// The `tail` stream: `preamble` (pull progress) first, then the buffered
/// output, ending when the output ends: the container stopped, or the
/// stage's teardown stopped the copy ([`forward`]). A cancel does not end
/// it: the step is being stopped (SIGTERM, then SIGKILL after the grace)
/// and what it prints meanwhile is part of its log.
pub(crate) fn tail_stream(
    preamble: Vec<Bytes>,
    output: mpsc::UnboundedReceiver<Chunk>,
) -> LogStream {
    let buffered = stream::unfold(output, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Box::pin(stream::iter(preamble.into_iter().map(Ok)).chain(buffered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(items: Vec<Result<LogOutput, ApiError>>) -> AttachOutput {
        Box::pin(stream::iter(items))
    }

    async fn collect(s: LogStream) -> Vec<Result<Bytes, String>> {
        s.map(|c| c.map_err(|e| e.to_string())).collect().await
    }

    #[tokio::test]
    async fn preamble_then_stdout_and_stderr_in_order() {
        let out = frames(vec![
            Ok(LogOutput::StdOut {
                message: Bytes::from("a\n"),
            }),
            Ok(LogOutput::StdErr {
                message: Bytes::from("b\n"),
            }),
            Ok(LogOutput::StdOut {
                message: Bytes::from("c"),
            }),
        ]);
        let (rx, _) = forward(out, "c1".into(), CancellationToken::new(), None);
        let s = tail_stream(vec![Bytes::from("pulled\n")], rx);
        let got = collect(s).await;
        let want: Vec<Result<Bytes, String>> = ["pulled\n", "a\n", "b\n", "c"]
            .into_iter()
            .map(|s| Ok(Bytes::from(s)))
            .collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_read_error_is_passed_on_and_ends_the_stream() {
        let out = frames(vec![
            Ok(LogOutput::StdOut {
                message: Bytes::from("a\n"),
            }),
            Err(ApiError::RequestTimeoutError),
            Ok(LogOutput::StdOut {
                message: Bytes::from("never\n"),
            }),
        ]);
        let (rx, _) = forward(out, "c1".into(), CancellationToken::new(), None);
        let got = collect(tail_stream(Vec::new(), rx)).await;
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1].as_ref().unwrap_err(),
            "docker: read the output of container \"c1\""
        );
    }

    #[tokio::test]
    async fn the_stream_reads_on_until_the_copy_stops() {
        let (tx, mut_rx) = mpsc::unbounded_channel();
        tx.send(Ok(Bytes::from("before\n"))).unwrap();
        let mut s = tail_stream(Vec::new(), mut_rx);
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from("before\n"));
        // What a stopping step prints after a cancel still arrives.
        tx.send(Ok(Bytes::from("stopping\n"))).unwrap();
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from("stopping\n"));
        drop(tx);
        assert!(s.next().await.is_none());
    }

    fn saying(message: &'static str) -> EndCheck {
        Box::new(move || {
            Box::pin(async move {
                Some(crate::error::engine_error(
                    runnerkit_core::EngineErrorKind::NotFound,
                    message,
                ))
            })
        })
    }

    #[tokio::test]
    async fn the_end_check_has_the_last_word_unless_torn_down() {
        let out = frames(vec![Ok(LogOutput::StdOut {
            message: Bytes::from("a\n"),
        })]);
        let (rx, _) = forward(
            out,
            "c1".into(),
            CancellationToken::new(),
            Some(saying("gone")),
        );
        let got = collect(tail_stream(Vec::new(), rx)).await;
        assert_eq!(
            got,
            [Ok(Bytes::from("a\n")), Err("docker: gone".to_owned())]
        );

        // After the teardown the end is expected: nothing is asked.
        let stop = CancellationToken::new();
        stop.cancel();
        let (rx, _) = forward(frames(Vec::new()), "c1".into(), stop, Some(saying("gone")));
        assert!(collect(tail_stream(Vec::new(), rx)).await.is_empty());
    }

    #[tokio::test]
    async fn the_ended_token_fires_once_the_copy_ends() {
        let out = frames(vec![Ok(LogOutput::StdOut {
            message: Bytes::from("a\n"),
        })]);
        let (rx, ended) = forward(out, "c1".into(), CancellationToken::new(), None);
        let got = collect(tail_stream(Vec::new(), rx)).await;
        assert_eq!(got, [Ok(Bytes::from("a\n"))]);
        ended.cancelled().await;

        // An output that never ends: the copy ends, and the token fires, on stop.
        let stop = CancellationToken::new();
        let (_rx, ended) = forward(Box::pin(stream::pending()), "c1".into(), stop.clone(), None);
        assert!(!ended.is_cancelled());
        stop.cancel();
        ended.cancelled().await;
    }

    #[tokio::test]
    async fn the_teardown_ends_a_stream_that_would_never_end() {
        let out: AttachOutput = Box::pin(stream::pending());
        let stop = CancellationToken::new();
        let (rx, _) = forward(out, "c1".into(), stop.clone(), None);
        let s = tail_stream(Vec::new(), rx);
        // Stopping the copy drops the sender: the reader sees the end.
        stop.cancel();
        assert!(collect(s).await.is_empty());
    }
}

//! Reading an engine's log stream, small chunks that are ready together
//! joined into one.

use std::future::poll_fn;
use std::task::{Context, Poll};

use bytes::Bytes;
use runnerkit_core::{EngineError, LogStream};

/// Chunks shorter than this are joined with the ones ready after them.
pub(crate) const JOIN_BELOW: usize = 4 * 1024;

/// Joined text is handed on once it is this long.
pub(crate) const JOIN_UP_TO: usize = 64 * 1024;

/// What [`ChunkReader::next`] read.
pub(crate) enum Read<'a> {
    /// Text: one chunk as the engine yielded it, or small chunks joined.
    /// `fresh` when the stream made the reader wait since the last text (or
    /// this is the first): the text arrived at a new moment.
    Text { text: TextRef<'a>, fresh: bool },
    /// The stream failed (after any text read before the failure).
    Failed(EngineError),
    /// The stream ended.
    End,
}

/// A chunk of output, borrowed from the reader until the next read.
pub(crate) enum TextRef<'a> {
    Chunk(Bytes),
    Joined(&'a [u8]),
}

impl std::ops::Deref for TextRef<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Chunk(bytes) => bytes,
            Self::Joined(text) => text,
        }
    }
}

/// Reads a step's log stream for the log pump.
///
/// An engine often yields a process's writes as they were made: many small
/// chunks (a line each) that are all ready at once. Each chunk handed on
/// costs a pass of the line writer and a hook call, so chunks shorter than
/// [`JOIN_BELOW`] that are ready one after another are copied into one
/// buffer (up to [`JOIN_UP_TO`]) and handed on together. Nothing waits for
/// more: the moment the stream has nothing ready, what was joined goes on.
/// Larger chunks go on as they are, without a copy. Order is kept.
pub(crate) struct ChunkReader {
    stream: LogStream,
    joined: Vec<u8>,
    /// Read after the joined text, and handed on next.
    held: Option<Result<Bytes, EngineError>>,
    ended: bool,
    waited: bool,
}

impl ChunkReader {
    pub(crate) fn new(stream: LogStream) -> Self {
        Self {
            stream,
            joined: Vec::new(),
            held: None,
            ended: false,
            waited: true,
        }
    }

    /// The next text, failure or end.
    pub(crate) async fn next(&mut self) -> Read<'_> {
        poll_fn(|cx| self.poll_fill(cx)).await;
        let fresh = std::mem::take(&mut self.waited);
        if !self.joined.is_empty() {
            return Read::Text {
                text: TextRef::Joined(&self.joined),
                fresh,
            };
        }
        match self.held.take() {
            Some(Ok(bytes)) => Read::Text {
                text: TextRef::Chunk(bytes),
                fresh,
            },
            Some(Err(e)) => Read::Failed(e),
            None => Read::End,
        }
    }

    /// Ready once there is something to hand on: joined text, a held chunk
    /// or failure, or the end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.joined.clear();
        if self.held.is_some() || self.ended {
            return Poll::Ready(());
        }
        loop {
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) if bytes.len() < JOIN_BELOW => {
                    if self.joined.capacity() == 0 {
                        // Once, at the first join: growing the buffer chunk by
                        // chunk would copy what it holds again and again.
                        self.joined.reserve(JOIN_UP_TO + JOIN_BELOW);
                    }
                    self.joined.extend_from_slice(&bytes);
                    if self.joined.len() >= JOIN_UP_TO {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(Some(other)) => {
                    self.held = Some(other);
                    return Poll::Ready(());
                }
                Poll::Ready(None) => {
                    // A stream is not polled again once it ended.
                    self.ended = true;
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    self.waited = true;
                    return if self.joined.is_empty() {
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use futures_util::Stream;
    use runnerkit_core::EngineErrorKind;

    use super::*;

    /// Yields its items, with `Pending` (and a wake) where an item is `None`.
    struct Scripted {
        items: Mutex<Vec<Option<Result<Bytes, EngineError>>>>,
        polls_after_end: Arc<AtomicUsize>,
    }

    impl Stream for Scripted {
        type Item = Result<Bytes, EngineError>;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let mut items = self.items.lock().unwrap();
            if items.is_empty() {
                self.polls_after_end.fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(None);
            }
            match items.remove(0) {
                Some(item) => Poll::Ready(Some(item)),
                None => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
    }

    fn chunk(text: &str) -> Option<Result<Bytes, EngineError>> {
        Some(Ok(Bytes::from(text.to_owned())))
    }

    #[tokio::test]
    async fn small_ready_chunks_are_joined_until_the_stream_waits() {
        let big = "x".repeat(JOIN_BELOW);
        let ends = Arc::new(AtomicUsize::new(0));
        let stream = Scripted {
            items: Mutex::new(vec![
                chunk("a\n"),
                chunk("b\n"),
                None,
                chunk("c"),
                chunk(&big),
                chunk("d\n"),
                Some(Err(EngineError::new(
                    "scripted",
                    EngineErrorKind::Other,
                    "lost",
                ))),
            ]),
            polls_after_end: ends.clone(),
        };
        let mut reader = ChunkReader::new(Box::pin(stream));
        let mut got = Vec::new();
        loop {
            match reader.next().await {
                Read::Text { text, .. } => got.push(String::from_utf8(text.to_vec()).unwrap()),
                Read::Failed(e) => got.push(format!("failed: {e}")),
                Read::End => break,
            }
        }
        assert_eq!(
            got,
            [
                "a\nb\n".to_owned(),
                "c".to_owned(),
                big,
                "d\n".to_owned(),
                "failed: scripted: lost".to_owned()
            ]
        );
        assert_eq!(ends.load(Ordering::Relaxed), 1, "not polled past its end");
    }
}

//! What the log and runtime benches share: a no-op engine that streams a
//! text, and the corpus of log lines with secrets in it. Each bench uses a
//! part of it.
#![allow(dead_code)]

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream;
use runnerkit::core::{CancellationToken, Engine, EngineError, ExitState, LogStream, Spec, Step};

/// Does nothing, at once; `tail` yields `text` in `chunk`-byte slices (of
/// one buffer, as an engine's reads are).
pub struct TextEngine {
    pub text: Bytes,
    pub chunk: usize,
}

#[async_trait]
impl Engine for TextEngine {
    fn name(&self) -> &str {
        "text"
    }
    async fn setup(&self, _: &Spec, _: &CancellationToken) -> Result<(), EngineError> {
        Ok(())
    }
    async fn create(&self, _: &Spec, _: &Step, _: &CancellationToken) -> Result<(), EngineError> {
        Ok(())
    }
    async fn start(&self, _: &Spec, _: &Step, _: &CancellationToken) -> Result<(), EngineError> {
        Ok(())
    }
    async fn tail(
        &self,
        _: &Spec,
        _: &Step,
        _: &CancellationToken,
    ) -> Result<LogStream, EngineError> {
        let text = self.text.clone();
        let chunk = self.chunk;
        let chunks = (0..text.len().div_ceil(chunk))
            .map(move |i| Ok(text.slice(i * chunk..((i + 1) * chunk).min(text.len()))));
        let s: Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, EngineError>> + Send>> =
            Box::pin(stream::iter(chunks));
        Ok(s)
    }
    async fn wait(
        &self,
        _: &Spec,
        _: &Step,
        _: &CancellationToken,
    ) -> Result<ExitState, EngineError> {
        Ok(ExitState::code(0))
    }
    async fn destroy(&self, _: &Spec, _: &CancellationToken) -> Result<(), EngineError> {
        Ok(())
    }
}

/// `n` secrets of 13 to 16 bytes.
pub fn secrets(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("s3cr3t-{i:04}-{:x}", i * 7919))
        .collect()
}

/// About `total` bytes of 80-byte lines (79 characters and a newline); every
/// `every`th line holds one of `secrets` when there are any. Returns the
/// text and how many lines hold a secret.
pub fn corpus(secrets: &[String], every: usize, total: usize) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(total + 100);
    let mut injected = 0;
    let mut i = 0usize;
    while out.len() + 80 <= total {
        let mut line = match secrets.get(i % secrets.len().max(1)) {
            Some(secret) if i % every == every - 1 => {
                injected += 1;
                format!("step {i}: token={secret} ok")
            }
            _ => format!("step {i}: compiling module {} of the project", i % 977),
        };
        line.truncate(79);
        while line.len() < 79 {
            line.push('.');
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        i += 1;
    }
    (out, injected)
}

/// A `kB` field of `/proc/self/status` (`VmRSS:`, `VmHWM:`), 0 if unknown.
pub fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

//! The log path: bytes from an engine to masked, numbered batches of lines.
//!
//! The step's pump reads the engine's stream, joining small chunks that are
//! ready together; [`Masker`] finds secrets and their encoded forms in one
//! pass; [`LineWriter`] splits chunks into lines, masks complete lines (so
//! chunk boundaries never matter), hands them on as borrowed
//! [`Lines`](runnerkit_core::Lines) batches, and enforces the per-step size
//! limit.

mod encode;
mod lines;
mod mask;
mod reader;

pub use lines::{LineWriter, MAX_LINE};
pub use mask::{MASK, Masker};
pub(crate) use reader::{ChunkReader, Read};

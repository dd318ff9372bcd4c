//! The log path: bytes from an engine to masked, numbered lines.
//!
//! [`Masker`] finds secrets with one Aho-Corasick automaton; [`LineWriter`]
//! splits chunks into lines, masks complete lines (so chunk boundaries never
//! matter), and enforces the per-step size limit.

mod encode;
mod lines;
mod mask;
mod reader;

pub use lines::{LineWriter, MAX_LINE};
pub use mask::{MASK, Masker};
pub(crate) use reader::{ChunkReader, Read};

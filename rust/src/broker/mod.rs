//! The broker feed: compact-array frames.

pub mod compact;

pub(crate) use compact::{frame_bytes, to_err};
pub use compact::{CompactDecoder, QuoteBook, QuoteOut};

//! `symphonia_core::io::MediaSource` for [`Stream`] (feature `symphonia`).

use crate::stream::{Stream, StreamType};

/// A stream is a symphonia media source: wrap it in a
/// `symphonia_core::io::MediaSourceStream` and probe/decode as usual.
///
/// - `is_seekable` is always `true` (a seek outside the downloaded area of
///   an [`HttpFile`](crate::HttpFile) re-aims the download);
/// - `byte_len` is [`Stream::len`] (`None` while unknown, e.g. chunked).
///
/// Reads and seeks block (see [`Stream`]): decode on a plain thread, not on
/// an async executor's.
impl<T: StreamType> symphonia_core::io::MediaSource for Stream<T> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        self.len()
    }
}

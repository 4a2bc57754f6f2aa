//! `symphonia_core::io::MediaSource` for [`Stream`]: symphonia 0.6 (feature
//! `symphonia`) and 0.5 (feature `symphonia-05`); both may be on at once.

use crate::stream::{Stream, StreamType};

/// One impl per symphonia major; the trait is the same in both.
macro_rules! media_source {
    ($core:ident, $feature:literal, $version:literal) => {
        /// A stream is a symphonia
        #[doc = $version]
        /// media source: wrap it in a `MediaSourceStream` and probe/decode as
        /// usual.
        ///
        /// - `is_seekable` is always `true` (a seek outside the downloaded
        ///   area of an [`HttpFile`](crate::HttpFile) re-aims the download);
        /// - `byte_len` is [`Stream::len`] (`None` while unknown, e.g. chunked).
        ///
        /// Reads and seeks block (see [`Stream`]): decode on a plain thread,
        /// not on an async executor's.
        #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
        impl<T: StreamType> $core::io::MediaSource for Stream<T> {
            fn is_seekable(&self) -> bool {
                true
            }

            fn byte_len(&self) -> Option<u64> {
                self.len()
            }
        }
    };
}

#[cfg(feature = "symphonia")]
media_source!(symphonia_core, "symphonia", "0.6");
#[cfg(feature = "symphonia-05")]
media_source!(symphonia_core_05, "symphonia-05", "0.5");

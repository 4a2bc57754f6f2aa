//! [`BodyStream`]: a response body as the downloader hands it out.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use crate::net::{ByteStream, NetError};

/// A response body: a stream of chunks, already policed by the downloader
/// (cancellation, inactivity timeout, short-body detection, resume).
///
/// It ends after the first `Err` item. Dropping it early releases everything
/// it holds (the connection, and for [`PeerHandle::execute`](super::PeerHandle::execute)
/// its concurrency slot).
///
/// ```
/// use kithara_stream::dl::BodyStream;
/// let chunks = ["hello", " ", "world"].map(|s| Ok(bytes::Bytes::from(s)));
/// let body = BodyStream::from_raw(Box::pin(futures::stream::iter(chunks)));
/// let all = futures::executor::block_on(body.collect()).unwrap();
/// assert_eq!(&all[..], b"hello world");
/// ```
pub struct BodyStream {
    inner: ByteStream,
    ended: bool,
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// Wraps any chunk stream (nothing is added: no timeout, no cancel).
    pub fn from_raw(inner: ByteStream) -> Self {
        Self {
            inner,
            ended: false,
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from_raw(Box::pin(futures::stream::empty()))
    }

    /// A body that yields `bytes` as one chunk (nothing if empty).
    pub fn from_bytes(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            return Self::empty();
        }
        Self::from_raw(Box::pin(futures::stream::iter([Ok(bytes)])))
    }

    /// Reads the whole body into memory.
    ///
    /// # Errors
    /// The first error the body yields.
    pub async fn collect(mut self) -> Result<Bytes, NetError> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }

    /// Passes every chunk, in order, to `writer`; returns the byte total.
    ///
    /// # Errors
    /// The body's first error, or [`NetError::Writer`] when `writer` fails
    /// (the body is then dropped).
    pub async fn write_all<W>(mut self, mut writer: W) -> Result<u64, NetError>
    where
        W: FnMut(&[u8]) -> io::Result<()>,
    {
        let mut total = 0u64;
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            writer(&chunk).map_err(|e| writer_error(&e))?;
            total += chunk.len() as u64;
        }
        Ok(total)
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, NetError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let item = futures::ready!(self.inner.poll_next_unpin(cx));
        if !matches!(item, Some(Ok(_))) {
            self.ended = true;
        }
        Poll::Ready(item)
    }
}

/// Makes a [`NetError`] from a writer's I/O error.
pub(crate) fn writer_error(e: &io::Error) -> NetError {
    NetError::Writer(e.to_string())
}

//! "Ours": the one place that builds the pipeline's reader, a
//! `Stream::<HttpFile>` as a user builds it, and the storage choices.

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::AsyncRead;
use kithara_stream::dl::{Downloader, FetchCmd, Peer, RequestPriority};
use kithara_stream::{HttpFile, HttpFileConfig, Stream};
use url::Url;

use crate::backend::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageKind {
    Memory,
    File,
    /// `HttpFileStorage::Bounded` with the default 16 MiB budget.
    Bounded,
}

impl StorageKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::File => "file",
            Self::Bounded => "bounded",
        }
    }
}

/// A peer for the imperative path only (`execute`), streaming nothing.
pub(crate) struct NoStreaming;

impl Peer for NoStreaming {
    fn poll_next(&self, _cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        Poll::Ready(None)
    }

    fn priority(&self) -> RequestPriority {
        RequestPriority::High
    }
}

/// What [`ours_stream`] returns: a `Stream<HttpFile>` readable with `Read`
/// (reader thread) or `AsyncRead` (tasks), plus the temp dir that holds
/// its cache file.
pub(crate) struct Ours {
    pub(crate) stream: Stream<HttpFile>,
    _dir: Option<tempfile::TempDir>,
}

impl Read for Ours {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.read(buf)
    }
}

impl AsyncRead for Ours {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

/// **The only place that builds the "ours" reader:** what a user does,
/// `Stream::<HttpFile>::new(config)` on the shared downloader, with
/// memory storage or a cache file in a fresh temp dir. The clock of the
/// caller starts before this, so time to first byte includes opening.
pub(crate) fn ours_stream(
    backend: &Backend,
    dl: &Downloader,
    url: Url,
    storage: StorageKind,
) -> Ours {
    let config = HttpFileConfig::from_url(url).downloader(dl.clone());
    let (config, dir) = match storage {
        StorageKind::Memory => (config.memory(), None),
        StorageKind::Bounded => (
            config.bounded_memory(kithara_stream::file::DEFAULT_BOUNDED_BUDGET),
            None,
        ),
        StorageKind::File => {
            let dir = tempfile::tempdir().unwrap();
            (config.cache_file(dir.path().join("body")), Some(dir))
        }
    };
    let stream = backend.block_on(Stream::<HttpFile>::new(config)).unwrap();
    Ours { stream, _dir: dir }
}

//! # kithara-stream
//!
//! Streams bytes from the network into a local, range-tracked store and lets
//! synchronous consumers (audio decoders, any `std::io::Read + Seek` user)
//! read them while the download is still running.
//!
//! The core knows no async runtime and no HTTP library. It is written against
//! two small traits:
//!
//! - [`rt::Spawn`]: spawn a task, sleep for a while;
//! - [`net::HttpClient`]: send a request, get status, headers and a streaming body.
//!
//! Feature-gated [`backends`] plug in tokio + reqwest (default), smol + the
//! crate's own HTTP/1.1 client (the tokio-free pair), or async-std + surf;
//! anyone can plug in their own. The seam's signatures use [`http`], [`url`]
//! and [`bytes`], re-exported here so an implementor never matches their
//! majors by hand.
//!
//! | feature | what it adds |
//! |---|---|
//! | `tokio` | `backends::tokio::TokioRuntime` |
//! | `reqwest` (implies `tokio`, default) | `backends::reqwest::ReqwestClient` (rustls, ring) |
//! | `smol` | `backends::smol::SmolRuntime` |
//! | `smol-http` (implies `smol`) | `backends::smol_http::SmolHttpClient` (HTTP/1.1, rustls, ring; no tokio) |
//! | `async-std` | `backends::async_std::AsyncStdRuntime` (async-std is discontinued; prefer `smol`) |
//! | `surf` (implies `async-std`) | `backends::surf::SurfClient` (unmaintained; prefer `smol-http`) |
//! | `symphonia` | `symphonia_core::io::MediaSource` (symphonia 0.6) for [`Stream`] |
//! | `symphonia-05` | the same for symphonia 0.5 |
//! | `test-util` | `net::MemoryClient`, `net::MemoryResource`, `net::SeenRequest`: test doubles; `rt::ThreadSpawn`: a `Spawn` on plain threads, no runtime needed |
//! | `tracing` | `tracing` events (target `kithara_stream`): requests, answers, re-aims, retries, resumes, commits, failures |
//!
//! # Usage
//!
//! ```no_run
//! # #[cfg(feature = "reqwest")]
//! # {
//! use std::io::{Read, Seek, SeekFrom};
//! use kithara_stream::{HttpFile, HttpFileConfig, Stream};
//! use kithara_stream::dl::Downloader;
//!
//! async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     // One downloader (one connection pool, one `max_concurrent` cap) for every stream.
//!     let dl = Downloader::with_default_backend()?; // tokio + reqwest, inside a tokio runtime
//!     let config = HttpFileConfig::new("https://example.com/song.mp3")?
//!         .downloader(dl)
//!         .cache_file("song.mp3"); // complete: no request next time; partial: resumes
//!     // Resolves once the headers are in (404, 500 or an HTML page is an error here).
//!     let mut stream = Stream::<HttpFile>::new(config).await?;
//!     println!("{:?} {:?}", stream.len(), stream.source().media_info());
//!     // `Read + Seek` block: use them on a plain thread (a decoder's), not an executor's.
//!     std::thread::spawn(move || -> std::io::Result<()> {
//!         stream.seek(SeekFrom::Start(1 << 20))?; // outside the downloaded area: re-aims with Range
//!         let mut buf = [0u8; 4096];
//!         stream.read_exact(&mut buf)
//!     });
//!     Ok(())
//! }
//! # }
//! ```
//!
//! ## The sync side
//!
//! Async producers write into a [`storage::StorageResource`]; sync readers
//! read it through a [`Stream`] (`std::io::Read + Seek`, or
//! `futures::io::AsyncRead + AsyncSeek`) over a [`Source`] such as
//! [`StorageSource`]. The two halves share only the resource: writes,
//! commit, failure and cancellation notify one `event_listener::Event`, and
//! readers wait on it with a deadline (no polling). [`Stream::try_read`]
//! waits at most [`MAX_WAIT_SPINS`] × [`WAIT_RANGE_TIMEOUT`]; `Read` blocks
//! until data, the true end, an error or cancellation.
//!
//! The modules `error`, `source`, `stream` and `timeline` are private; their
//! public names are re-exported at the crate root.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cancel;
pub mod dl;
pub mod file;
pub mod media;
pub mod net;
pub mod rt;
pub mod storage;

#[cfg(any(feature = "symphonia", feature = "symphonia-05"))]
mod media_source;

// What the seam's signatures use, so an implementor names the same majors.
pub use bytes;
pub use http;
pub use url;

// The sync side: private modules, public names re-exported here.
mod error;
mod offload;
mod source;
mod stream;
#[cfg(test)]
mod test_util;
mod timeline;
mod trace;

pub use error::{SourceError, StreamError, StreamResult};
pub use source::{NotReadyCause, PendingReason, ReadOutcome, Source, SourcePhase, StorageSource};
pub use storage::{StorageResource, WaitOutcome};
pub use stream::{
    MAX_WAIT_SPINS, SEEK_WAIT_TIMEOUT, Stream, StreamPending, StreamReadError, StreamReadOutcome,
    StreamSeekPastEof, StreamType, WAIT_RANGE_TIMEOUT,
};
pub use timeline::Timeline;

pub use file::{HttpFile, HttpFileConfig, HttpFileSource, HttpFileStorage};

pub use media::{
    AudioCodec, CodecMagicError, ContainerFormat, MediaInfo, audio_codec_supports_fmp4_packaging,
};

#[path = "../backends/mod.rs"]
pub mod backends;

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
//! Feature-gated [`backends`] plug in tokio + reqwest (default) or
//! async-std + surf; anyone can plug in their own.
//!
//! | feature | what it adds |
//! |---|---|
//! | `tokio` | [`backends::tokio::TokioRuntime`] |
//! | `reqwest` (implies `tokio`, default) | [`backends::reqwest::ReqwestClient`] |
//! | `async-std` | [`backends::async_std::AsyncStdRuntime`] |
//! | `surf` (implies `async-std`) | [`backends::surf::SurfClient`] |
//! | `symphonia` | `symphonia_core::io::MediaSource` for [`Stream`] |
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

#[cfg(feature = "symphonia")]
mod media_source;

// The sync side: private modules, public names re-exported here.
mod error;
mod source;
mod stream;
#[cfg(test)]
mod test_util;
mod timeline;

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

//! Live streams and bounded storage on the `HttpFile` peer, as a thin layer
//! over the fetch callbacks: ICY stripping in the write path, the reconnect
//! of an endless stream (a plain GET appending after what was received),
//! and the writer's backpressure on a bounded storage.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, header};

use super::Shared;
use super::plan::FetchCtx;
use crate::cancel::lock;
use crate::dl::{FetchCmd, reject_html_response};
use crate::file::icy::{IcyDemuxer, IcyError, IcyHeaders, IcyMetadata, IcyPart, parse_metaint};
use crate::storage::StorageError;

/// Events kept for [`live_events`](crate::HttpFileSource::live_events) at
/// most; older ones are dropped first.
pub const LIVE_EVENT_CAPACITY: usize = 256;

/// Something a live stream reports in band, with the byte offset (in the
/// stream the reader sees) where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveEvent {
    /// A new ICY metadata block (`StreamTitle`, `StreamUrl`, ...); it
    /// applies from audio byte `offset` on.
    Metadata {
        /// Audio byte where it starts.
        offset: u64,
        /// The block.
        metadata: IcyMetadata,
    },
    /// A metadata block that did not parse (it was still removed from the
    /// audio).
    InvalidMetadata {
        /// Audio byte where it sat.
        offset: u64,
        /// Why it did not parse.
        error: IcyError,
    },
    /// The connection of a live stream dropped and a new one continues at
    /// `offset`: the bytes before and after do not join (a decoder should
    /// resync there).
    Discontinuity {
        /// First byte from the new connection.
        offset: u64,
    },
}

/// The current ICY title and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IcyTitle {
    /// Audio byte where this metadata starts.
    pub offset: u64,
    /// The metadata block.
    pub metadata: IcyMetadata,
}

#[derive(Default)]
pub(crate) struct LiveState {
    icy_requested: bool,
    /// The first response was seen (liveness decided).
    decided: bool,
    live: bool,
    icy: Option<IcyHeaders>,
    title: Option<IcyTitle>,
    events: VecDeque<LiveEvent>,
}

impl LiveState {
    fn push(&mut self, event: LiveEvent) {
        if self.events.len() >= LIVE_EVENT_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

/// A fetch's ICY demuxer, when its answer had `icy-metaint`.
type Demux = Arc<Mutex<Option<IcyDemuxer>>>;

/// An endless stream: no length, no `Range`, and a radio's signs (`icy-*`
/// headers or an audio type). A finite file served chunked by a server
/// without ranges is not live: a new connection restarts it at byte 0.
fn looks_live(headers: &HeaderMap, icy: bool) -> bool {
    let ranges = headers
        .get(header::ACCEPT_RANGES)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"));
    let audio = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.trim_start().to_ascii_lowercase();
            ct.starts_with("audio/") || ct.starts_with("application/ogg")
        });
    !ranges
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::CONTENT_RANGE)
        && (icy || audio)
}

impl Shared {
    /// Asks for ICY metadata (the caller adds `Icy-MetaData: 1` to the
    /// request headers).
    pub(crate) fn set_icy(&self, on: bool) {
        lock(&self.live).icy_requested = on;
    }

    /// Whether the stream was found to be live (see `looks_live`).
    pub(crate) fn is_live(&self) -> bool {
        lock(&self.live).live
    }

    pub(crate) fn icy_headers(&self) -> Option<IcyHeaders> {
        lock(&self.live).icy.clone()
    }

    pub(crate) fn icy_title(&self) -> Option<IcyTitle> {
        lock(&self.live).title.clone()
    }

    pub(crate) fn drain_live_events(&self) -> Vec<LiveEvent> {
        lock(&self.live).events.drain(..).collect()
    }

    /// Where the next fetch of a live stream starts: after every byte
    /// received (a live stream cannot go back).
    pub(crate) fn live_append_point(&self) -> Option<u64> {
        self.is_live().then(|| self.storage.available().end())
    }

    /// Whether `pos` is gone for good: a bounded storage evicted it (or a
    /// live stream passed it) and the resource cannot be fetched there
    /// again (no `Range` support, or live).
    pub(crate) fn unreachable(&self, pos: u64) -> bool {
        if !self.storage.is_bounded() {
            return false;
        }
        if !(self.is_live() || self.ranges_supported() == Some(false)) {
            return false;
        }
        // One snapshot: a write landing between two looks must not make a
        // byte about to arrive look passed.
        let present = self.storage.available();
        !present.contains(pos..pos.saturating_add(1)) && pos < present.end()
    }

    /// Whether `pos`, behind a running fetch's frontier `f`, was evicted
    /// by a bounded storage (bytes after it, before `f`, are still there):
    /// the fetch passed it and will not bring it back. (A byte of the chunk
    /// being stored right now has nothing present after it below `f`.)
    pub(super) fn evicted_behind(&self, pos: u64, f: u64) -> bool {
        self.storage.is_bounded()
            && pos < f
            && self
                .storage
                .next_gap(pos, f)
                .is_some_and(|gap| gap.start == pos && gap.end < f)
    }

    /// Wires a fetch's headers and body callbacks through this layer, and
    /// its backpressure when the storage is bounded.
    pub(super) fn live_callbacks(
        self: &Arc<Self>,
        cmd: FetchCmd,
        ctx: &Arc<Mutex<FetchCtx>>,
    ) -> FetchCmd {
        let demux: Demux = Arc::default();
        let (s1, c1, d1) = (self.clone(), ctx.clone(), demux.clone());
        let (s2, c2) = (self.clone(), ctx.clone());
        let mut cmd = cmd
            .check(move |answer| {
                reject_html_response(answer)?;
                if answer.resumed_at.is_some() {
                    // The downloader continues the same body: nothing new.
                    return Ok(());
                }
                // Liveness and the station's headers are known before
                // `Stream::new` (woken by `answer`) returns.
                s1.before_response(&d1, answer.headers);
                s1.answer(&c1, answer)?;
                s1.after_response(&c1);
                Ok(())
            })
            .writer_bytes(move |chunk| s2.deliver(&c2, &demux, chunk));
        if self.storage.is_bounded() {
            let (storage, c3) = (self.storage.clone(), ctx.clone());
            cmd = cmd.ready(move |_len| {
                let at = {
                    let c = lock(&c3);
                    c.offset.max(c.start)
                };
                (!storage.is_writable(at)).then(|| Box::pin(storage.writable(at)) as _)
            });
        }
        cmd
    }

    /// Before the peer reads the headers: decide liveness (first
    /// response), keep the station's headers, start the ICY demuxer.
    fn before_response(&self, demux: &Demux, headers: &HeaderMap) {
        let mut lv = lock(&self.live);
        if !lv.decided {
            lv.decided = true;
            lv.icy = IcyHeaders::from_headers(headers);
            // An ICY-framed body is a radio stream whatever else it says:
            // its byte offsets are not the server's, so no `Range` either.
            let framed = lv.icy_requested && matches!(parse_metaint(headers), Ok(Some(_)));
            lv.live = framed || looks_live(headers, lv.icy.is_some());
            if lv.live {
                // Nothing but the running connection can deliver bytes.
                lock(&self.state).ranges_supported = Some(false);
            }
        }
        if lv.icy_requested
            && let Ok(Some(metaint)) = parse_metaint(headers)
        {
            *lock(demux) = Some(IcyDemuxer::new(metaint));
        }
    }

    /// After the peer read the headers: a live reconnect's body goes after
    /// what was received (the peer took a 200 for the resource's start).
    fn after_response(&self, ctx: &Mutex<FetchCtx>) {
        let mut lv = lock(&self.live);
        if lv.live {
            let mut c = lock(ctx);
            if c.start > 0 && !c.partial {
                // A new connection to a live stream: its first byte follows
                // the last one received, it does not restart the stream.
                c.offset = c.start;
                c.frontier.store(c.start, Ordering::Release);
                let offset = c.start;
                drop(c);
                lv.push(LiveEvent::Discontinuity { offset });
            }
        }
    }

    /// One body chunk: through the ICY demuxer if there is one, then into
    /// storage.
    fn deliver(&self, ctx: &Mutex<FetchCtx>, demux: &Demux, chunk: Bytes) -> io::Result<()> {
        let mut guard = lock(demux);
        let Some(dm) = guard.as_mut() else {
            drop(guard);
            return self.store(ctx, &chunk);
        };
        let mut result = Ok(());
        dm.feed(&chunk, |part| match part {
            IcyPart::Audio(bytes) => {
                if result.is_ok() {
                    result = self.store(ctx, &bytes);
                }
            }
            IcyPart::Metadata { metadata, .. } => {
                // The resource offset of the next audio byte.
                let offset = lock(ctx).offset;
                let mut lv = lock(&self.live);
                match metadata {
                    Ok(metadata) => {
                        lv.title = Some(IcyTitle {
                            offset,
                            metadata: metadata.clone(),
                        });
                        lv.push(LiveEvent::Metadata { offset, metadata });
                    }
                    Err(error) => lv.push(LiveEvent::InvalidMetadata { offset, error }),
                }
            }
        });
        result
    }

    /// `write`, except that a bounded storage with no room (a reader that
    /// jumped back under a running fetch) ends this fetch quietly, so the
    /// peer plans again from the first missing byte.
    fn store(&self, ctx: &Mutex<FetchCtx>, bytes: &[u8]) -> io::Result<()> {
        self.write(ctx, bytes).inspect_err(|e| {
            let full = e
                .get_ref()
                .and_then(|e| e.downcast_ref::<StorageError>())
                .is_some_and(|e| matches!(e, StorageError::BudgetExceeded { .. }));
            if full {
                lock(ctx).token.cancel();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use http::HeaderValue;
    use url::Url;

    use super::*;
    use crate::cancel::CancelToken;
    use crate::dl::Peer;
    use crate::file::peer::plan::FilePeer;
    use crate::net::RangeSpec;
    use crate::storage::StorageResource;
    use crate::timeline::Timeline;

    const MIB: u64 = 1 << 20;

    fn bounded(len: Option<u64>) -> Arc<Shared> {
        Arc::new(Shared::new(
            Url::parse("http://127.0.0.1/x").unwrap(),
            HeaderMap::new(),
            StorageResource::bounded(MIB, 0, CancelToken::new()),
            Timeline::new(),
            16,
            len,
            None,
        ))
    }

    fn poll(peer: &FilePeer) -> Poll<Option<Vec<FetchCmd>>> {
        let waker = futures::task::noop_waker();
        peer.poll_next(&mut Context::from_waker(&waker))
    }

    /// Bounded storage fetches at and after the reader only: the gaps
    /// behind it (evicted bytes) are not filled, and the peer stays
    /// registered (a seek back needs it) instead of finishing.
    #[test]
    fn bounded_storage_never_fills_the_gaps_behind_the_reader() {
        let s = bounded(Some(3 * MIB));
        s.storage.write_at(2 * MIB, &[1; 4096]).unwrap();
        s.storage.check_range(2 * MIB..2 * MIB + 1).unwrap();
        s.storage
            .write_at(2 * MIB + 4096, &vec![2; (MIB - 4096) as usize])
            .unwrap();
        s.want(2 * MIB);
        let peer = FilePeer(s.clone());
        assert!(
            poll(&peer).is_pending(),
            "nothing after the reader: no fetch of 0..2 MiB, and not finished"
        );
        // A seek back plans a fetch there.
        s.want(MIB / 2);
        let Poll::Ready(Some(cmds)) = poll(&peer) else {
            panic!("a fetch at the reader");
        };
        assert_eq!(
            cmds[0].range,
            Some(RangeSpec::new(MIB / 2, Some(2 * MIB - 1)).unwrap())
        );
    }

    #[test]
    fn liveness_needs_no_length_no_ranges_and_a_radio_sign() {
        let mut h = HeaderMap::new();
        assert!(!looks_live(&h, false), "no sign of a radio");
        assert!(looks_live(&h, true), "icy headers");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
        assert!(looks_live(&h, false));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        assert!(!looks_live(&h, true), "ranges: a file");
        h.remove(header::ACCEPT_RANGES);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(!looks_live(&h, true), "a length: a file");
    }

    #[test]
    fn evicted_behind_a_fetch_is_told_from_a_chunk_in_flight() {
        let s = bounded(None);
        s.storage.write_at(500, &[1; 100]).unwrap();
        // 0..500 missing, bytes present before the frontier: passed.
        assert!(s.evicted_behind(10, 1000));
        // 600..1000 missing up to the frontier: the chunk being stored.
        assert!(!s.evicted_behind(700, 1000));
        assert!(!s.evicted_behind(1000, 1000));
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Stream contracts that only a scripted source or an exact interleaving
//! shows: the `io::ErrorKind` of every terminal read error, an async seek
//! that must not wait for the download, and an epoch change without a flush
//! during a wait.

use std::io::{self, Read, SeekFrom};
use std::ops::Range;
use std::time::Duration;

use futures::FutureExt;
use futures::io::AsyncSeekExt;
use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{StorageError, StorageResource, WaitOutcome};
use kithara_stream::{
    PendingReason, ReadOutcome, Source, SourceError, SourcePhase, StorageSource, Stream,
    StreamReadError, StreamReadOutcome, StreamResult, StreamType, Timeline,
};

mod sync_common;
use sync_common::{LIMIT, stream_over, within};

/// A [`StorageSource`] whose `wait_range` first runs a hook (given the
/// call number and the timeline); a hook that returns an error makes the
/// wait fail with it.
struct ScriptedSource {
    inner: StorageSource,
    waits: usize,
    hook: Box<WaitHook>,
}

type WaitHook = dyn FnMut(usize, &Timeline) -> Option<SourceError> + Send + Sync;

impl ScriptedSource {
    fn new(
        res: &StorageResource,
        hook: impl FnMut(usize, &Timeline) -> Option<SourceError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: StorageSource::new(res.clone()),
            waits: 0,
            hook: Box::new(hook),
        }
    }
}

impl Source for ScriptedSource {
    fn wait_range(&mut self, r: Range<u64>, t: Option<Duration>) -> StreamResult<WaitOutcome> {
        self.waits += 1;
        if let Some(e) = (self.hook)(self.waits, &self.inner.timeline()) {
            return Err(e.into());
        }
        self.inner.wait_range(r, t)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> StreamResult<ReadOutcome> {
        self.inner.read_at(offset, buf)
    }
    fn position(&self) -> u64 {
        self.inner.position()
    }
    fn set_position(&self, pos: u64) {
        self.inner.set_position(pos);
    }
    fn advance(&self, n: u64) {
        self.inner.advance(n);
    }
    fn len(&self) -> Option<u64> {
        self.inner.len()
    }
    fn phase_at(&self, r: Range<u64>) -> SourcePhase {
        self.inner.phase_at(r)
    }
    fn timeline(&self) -> Timeline {
        self.inner.timeline()
    }
}

struct Scripted;
impl StreamType for Scripted {
    type Config = ScriptedSource;
    type Source = ScriptedSource;
    async fn create(config: ScriptedSource) -> Result<ScriptedSource, SourceError> {
        Ok(config)
    }
}

/// The kind a terminal read error maps to, with the typed error kept.
#[test]
fn read_error_kinds_follow_the_cause() {
    let cases: [(fn() -> SourceError, io::ErrorKind); 8] = [
        (
            || io::Error::from(io::ErrorKind::ConnectionReset).into(),
            io::ErrorKind::ConnectionReset,
        ),
        (
            || StorageError::Io(io::Error::from(io::ErrorKind::PermissionDenied)).into(),
            io::ErrorKind::PermissionDenied,
        ),
        (
            || SourceError::Timeout("headers".into()),
            io::ErrorKind::TimedOut,
        ),
        (
            || StorageError::InvalidRange { start: 5, end: 3 }.into(),
            io::ErrorKind::InvalidInput,
        ),
        (
            || SourceError::Unsupported("nope"),
            io::ErrorKind::Unsupported,
        ),
        (|| StorageError::Cancelled.into(), io::ErrorKind::Other),
        (|| SourceError::Cancelled, io::ErrorKind::Other),
        (|| SourceError::other("odd"), io::ErrorKind::Other),
    ];
    for (make, kind) in cases {
        let want = make().to_string();
        let res = StorageResource::memory(CancelToken::new());
        let mut s =
            Stream::<Scripted>::from_source(ScriptedSource::new(&res, move |_, _| Some(make())));
        let e = s.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), kind, "{want}");
        let typed = e.get_ref().unwrap().downcast_ref::<StreamReadError>();
        assert_eq!(typed.unwrap().source_error().to_string(), want);
    }
}

/// An async seek to `Start`/`Current` is arithmetic: it must not wait for
/// the length (only `End` does), even when nothing is downloaded yet.
#[test]
fn async_seek_to_start_or_current_never_waits_for_the_length() {
    // Bounded: a poll that spun instead of returning `Pending` would hang.
    within(LIMIT, "async seeks", || {
        let res = StorageResource::memory(CancelToken::new());
        let mut s = stream_over(&res);
        let now = |r: Option<io::Result<u64>>| r.expect("resolved at once").unwrap();
        assert_eq!(now(s.seek(SeekFrom::Start(5)).now_or_never()), 5);
        assert_eq!(now(s.seek(SeekFrom::Current(3)).now_or_never()), 8);
        assert_eq!(now(s.seek(SeekFrom::Current(-8)).now_or_never()), 0);
        // `End` on an unknown length does wait...
        assert!(s.seek(SeekFrom::End(0)).now_or_never().is_none());
        // ...until the length is known.
        res.set_len_hint(Some(10));
        assert_eq!(now(s.seek(SeekFrom::End(-1)).now_or_never()), 9);
    });
}

/// A seek elsewhere (the epoch moves, the flush already over) while a read
/// waits in its 10 ms slices: the read gives `SeekPending`, not a budget
/// exhaustion 500 ms later. The seek lands inside the third wait (the
/// source's hook), so the interleaving is exact.
#[test]
fn epoch_change_without_flush_during_a_wait_is_seek_pending() {
    let res = StorageResource::memory(CancelToken::new());
    let mut s = Stream::<Scripted>::from_source(ScriptedSource::new(&res, |n, tl| {
        if n == 3 {
            let epoch = tl.initiate_seek(Duration::ZERO);
            tl.complete_seek(epoch);
            assert!(!tl.is_flushing());
        }
        None
    }));
    let out = within(LIMIT, "try_read", move || s.try_read(&mut [0u8; 4]));
    assert_eq!(
        out.unwrap(),
        StreamReadOutcome::Pending(PendingReason::SeekPending)
    );
}

/// The stream's thin accessors reach its source: position, emptiness,
/// phase, seek epoch, the waiter wake-up, and the `Debug` snapshot.
#[test]
fn stream_accessors_reach_the_source() {
    use std::io::Read;
    let res = StorageResource::from_bytes(b"0123456789", CancelToken::new());
    let mut s = stream_over(&res);
    s.set_position(6);
    assert_eq!(s.position(), 6);
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"67", "read from the position set");
    assert_eq!(s.is_empty(), Some(false));
    assert_eq!(s.phase_at(0..3), SourcePhase::Ready);
    assert_eq!(s.phase_at(10..11), SourcePhase::Eof);
    s.set_position(10);
    assert_eq!(s.phase(), SourcePhase::Eof);
    s.set_seek_epoch(7);
    assert_eq!(s.source().seek_epoch(), 7);
    let d = format!("{s:?}");
    assert!(
        d.starts_with("Stream {") && d.contains("position: 10"),
        "{d}"
    );
    assert_eq!(
        stream_over(&StorageResource::from_bytes(b"", CancelToken::new())).is_empty(),
        Some(true)
    );

    // `notify_waiting` wakes a waiter on the storage event.
    let res = StorageResource::memory(CancelToken::new());
    let s = stream_over(&res);
    assert_eq!(
        (s.is_empty(), s.phase()),
        (None, SourcePhase::WaitingMetadata)
    );
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (r, f) = (res.clone(), flag.clone());
    let waiter = sync_common::spawn("wait_until(None)", move || {
        r.wait_until(None, || {
            f.load(std::sync::atomic::Ordering::SeqCst).then_some(())
        })
    });
    waiter.assert_blocked(Duration::from_millis(20));
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    waiter.assert_blocked(Duration::from_millis(20));
    s.notify_waiting();
    assert_eq!(waiter.join(LIMIT), Some(()));
}

/// `StorageSource` as a `Source`: a missing byte below the announced
/// length is "not ready", not the end; `is_empty` follows the length.
#[test]
fn storage_source_read_at_and_is_empty() {
    let res = StorageResource::memory(CancelToken::new());
    let mut src = StorageSource::new(res.clone());
    assert!(src.is_empty(), "length unknown");
    res.write_at(0, b"abc").unwrap();
    res.set_len_hint(Some(10));
    assert!(!src.is_empty());
    let mut buf = [0u8; 4];
    assert_eq!(
        src.read_at(5, &mut buf).unwrap(),
        ReadOutcome::Pending(PendingReason::NotReady(
            kithara_stream::NotReadyCause::SourcePending
        ))
    );
    assert_eq!(src.read_at(10, &mut buf).unwrap(), ReadOutcome::Eof);
    assert!(format!("{src:?}").starts_with("StorageSource {"), "{src:?}");
    assert!(StorageSource::new(StorageResource::from_bytes(b"", CancelToken::new())).is_empty());
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Stream contracts that only a scripted source or an exact interleaving
//! shows: the `io::ErrorKind` of every terminal read error, an async seek
//! that must not wait for the download, and an epoch change without a flush
//! during a wait.

use std::io::{self, Read, SeekFrom};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::io::AsyncSeekExt;
use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{StorageError, StorageResource, WaitOutcome};
use kithara_stream::{
    NotReadyCause, PendingReason, ReadOutcome, Source, SourceError, SourcePhase, Stream,
    StreamReadError, StreamReadOutcome, StreamResult, StreamType, Timeline,
};

mod sync_common;
use sync_common::{LIMIT, spawn, stream_over, within};

/// A source whose every wait fails with the error `make` builds.
struct FailingSource {
    make: fn() -> SourceError,
    pos: AtomicU64,
    timeline: Timeline,
}

impl Source for FailingSource {
    fn wait_range(&mut self, _: Range<u64>, _: Option<Duration>) -> StreamResult<WaitOutcome> {
        Err((self.make)().into())
    }
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> StreamResult<ReadOutcome> {
        Err((self.make)().into())
    }
    fn position(&self) -> u64 {
        self.pos.load(Ordering::SeqCst)
    }
    fn set_position(&self, pos: u64) {
        self.pos.store(pos, Ordering::SeqCst);
    }
    fn advance(&self, n: u64) {
        self.pos.fetch_add(n, Ordering::SeqCst);
    }
    fn len(&self) -> Option<u64> {
        None
    }
    fn phase_at(&self, _: Range<u64>) -> SourcePhase {
        SourcePhase::Waiting
    }
    fn timeline(&self) -> Timeline {
        self.timeline.clone()
    }
}

struct Failing;
impl StreamType for Failing {
    type Config = FailingSource;
    type Source = FailingSource;
    async fn create(config: FailingSource) -> Result<FailingSource, SourceError> {
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
        let mut s = Stream::<Failing>::from_source(FailingSource {
            make,
            pos: AtomicU64::new(0),
            timeline: Timeline::new(),
        });
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
/// exhaustion 500 ms later.
#[test]
fn epoch_change_without_flush_during_a_wait_is_seek_pending() {
    for round in 0..3 {
        let res = StorageResource::memory(CancelToken::new());
        let mut s = stream_over(&res);
        let tl = s.timeline();
        let reader = spawn("try_read on an empty resource", move || {
            let t0 = Instant::now();
            (s.try_read(&mut [0u8; 4]), t0.elapsed())
        });
        reader.assert_blocked(Duration::from_millis(40));
        let epoch = tl.initiate_seek(Duration::ZERO);
        tl.complete_seek(epoch);
        assert!(!tl.is_flushing());
        let (out, took) = reader.join(LIMIT);
        match out.unwrap() {
            StreamReadOutcome::Pending(PendingReason::SeekPending) => {}
            // The whole budget went by before the seek landed (a stalled
            // machine): not the path under test, try again.
            StreamReadOutcome::Pending(PendingReason::NotReady(
                NotReadyCause::WaitBudgetExhausted,
            )) if took >= Duration::from_millis(450) && round < 2 => continue,
            other => panic!("round {round}: {other:?} after {took:?}"),
        }
        return;
    }
}

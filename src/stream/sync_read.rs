//! The blocking side of [`Stream`]: [`Stream::try_read`] (the real-time
//! path) and `std::io::Read + Seek` on top of it.

use std::io::{self, Read, Seek, SeekFrom};
use std::time::Instant;

use super::{
    MAX_WAIT_SPINS, SEEK_WAIT_TIMEOUT, Step, Stream, StreamReadError, StreamReadOutcome,
    StreamType, WAIT_RANGE_TIMEOUT, interrupted, passed,
};
use crate::error::{SourceError, StreamError};
use crate::source::{NotReadyCause, PendingReason, Source};
use crate::storage::WaitOutcome;

impl<T: StreamType> Stream<T> {
    /// One bounded read attempt (the real-time path). Blocks at most about
    /// [`MAX_WAIT_SPINS`] × [`WAIT_RANGE_TIMEOUT`] without progress.
    ///
    /// An empty `buf` gives `Eof { byte_position: position() }` at once.
    /// Otherwise it waits for `pos..pos + buf.len()` (cut at the end once
    /// the length is known: a read that crosses the end returns the tail as
    /// soon as the tail is present, whatever gaps lie before) in 10 ms slices; a
    /// flush or an epoch change gives `Pending(SeekPending)` (bytes read
    /// under a stale epoch are discarded, the cursor does not move);
    /// 50 slices without readiness give `Pending(NotReady(WaitBudgetExhausted))`.
    /// On success the cursor advances and the timeline's segment position
    /// records where the read started.
    ///
    /// ```
    /// use kithara_stream::{StorageSource, Stream, StreamReadOutcome};
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::StorageResource;
    ///
    /// let res = StorageResource::from_bytes(b"abc", CancelToken::new());
    /// let mut stream = Stream::<StorageSource>::from_source(StorageSource::new(res));
    /// let mut buf = [0u8; 8];
    /// match stream.try_read(&mut buf)? {
    ///     StreamReadOutcome::Bytes { count, byte_position } => {
    ///         assert_eq!((&buf[..count.get()], byte_position), (&b"abc"[..], 3)); // the cursor after
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(matches!(stream.try_read(&mut buf)?, StreamReadOutcome::Eof { byte_position: 3 }));
    /// # Ok::<(), kithara_stream::StreamReadError>(())
    /// ```
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<StreamReadOutcome, StreamReadError> {
        self.try_read_until(buf, None)
    }

    /// [`try_read`](Self::try_read) that also stops spinning once `deadline`
    /// passes.
    fn try_read_until(
        &mut self,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<StreamReadOutcome, StreamReadError> {
        if buf.is_empty() {
            return Ok(StreamReadOutcome::Eof {
                byte_position: self.source.position(),
            });
        }
        let mut spins: u32 = 0;
        loop {
            let tl = self.source.timeline();
            let read_epoch = tl.seek_epoch();
            let pos = self.source.position();
            let range = self.wanted(pos, buf.len());
            match self.source.wait_range(range, Some(WAIT_RANGE_TIMEOUT)) {
                Err(StreamError::Source(SourceError::WaitBudgetExceeded)) => {
                    if tl.is_flushing() || tl.seek_epoch() != read_epoch {
                        return Ok(StreamReadOutcome::Pending(PendingReason::SeekPending));
                    }
                    spins += 1;
                    if spins >= MAX_WAIT_SPINS || passed(deadline) {
                        return Ok(StreamReadOutcome::Pending(PendingReason::NotReady(
                            NotReadyCause::WaitBudgetExhausted,
                        )));
                    }
                    std::thread::yield_now();
                }
                Err(e) => return Err(e.into()),
                Ok(WaitOutcome::Eof) => return Ok(StreamReadOutcome::Eof { byte_position: pos }),
                Ok(WaitOutcome::Interrupted) => {
                    if tl.is_flushing() {
                        return Ok(StreamReadOutcome::Pending(PendingReason::SeekPending));
                    }
                    spins += 1;
                    if spins >= MAX_WAIT_SPINS || passed(deadline) {
                        return Ok(StreamReadOutcome::Pending(PendingReason::NotReady(
                            NotReadyCause::WaitInterrupted,
                        )));
                    }
                    std::thread::yield_now();
                }
                Ok(WaitOutcome::Ready) => {
                    spins = 0;
                    match self.read_step(&tl, read_epoch, pos, buf)? {
                        Step::Read(count) => {
                            return Ok(StreamReadOutcome::Bytes {
                                count,
                                byte_position: self.source.position(),
                            });
                        }
                        Step::Eof => return Ok(StreamReadOutcome::Eof { byte_position: pos }),
                        Step::Moved => {
                            return Ok(StreamReadOutcome::Pending(PendingReason::SeekPending));
                        }
                        Step::Pending(PendingReason::Retry) => std::thread::yield_now(),
                        Step::Pending(r) => return Ok(StreamReadOutcome::Pending(r)),
                    }
                }
            }
        }
    }
}

impl<T: StreamType> Read for Stream<T> {
    /// Blocking read; see [`Stream`] for the policy. Never returns `Ok(0)`
    /// before the true end (or for an empty `buf`).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self
            .read_timeout
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            match self.try_read_until(buf, deadline)? {
                StreamReadOutcome::Bytes { count, .. } => return Ok(count.get()),
                StreamReadOutcome::Eof { .. } => return Ok(0),
                StreamReadOutcome::Pending(PendingReason::SeekPending) => {
                    // `read_exact` retries `Interrupted` at once: wait out
                    // the flush here (bounded), so the retry is not a spin.
                    if self.source.timeline().is_flushing() {
                        let wait = deadline.map_or(SEEK_WAIT_TIMEOUT, |d| {
                            d.saturating_duration_since(Instant::now())
                                .min(SEEK_WAIT_TIMEOUT)
                        });
                        self.source.wait_flush_end(wait);
                    }
                    if passed(deadline) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            self.pending(PendingReason::SeekPending, buf.len()),
                        ));
                    }
                    return Err(interrupted());
                }
                StreamReadOutcome::Pending(reason) => {
                    if passed(deadline) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            self.pending(reason, buf.len()),
                        ));
                    }
                }
            }
        }
    }
}

impl<T: StreamType> Seek for Stream<T> {
    /// Seeks per the crate's policy (blocking): `SeekFrom::End` with an
    /// unknown length waits ([`Source::wait_len`]) for it; a negative target
    /// or one past a known length is `InvalidInput` (the latter with a
    /// [`StreamSeekPastEof`](super::StreamSeekPastEof) payload) and leaves the cursor where it was;
    /// otherwise the cursor moves and the new position is primed for up to
    /// [`SEEK_WAIT_TIMEOUT`]. The timeline is not touched.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let current = self.source.position();
        let mut len = self.source.len();
        if matches!(pos, SeekFrom::End(_)) && len.is_none() {
            len = self.source.wait_len(None).map_err(StreamReadError::from)?;
            if len.is_none() {
                return Err(self.unknown_len_error(true));
            }
        }
        let new_pos = Self::seek_target(current, pos, len)?;
        if let Some(e) = self.past_eof(current, new_pos) {
            return Err(e);
        }
        self.source.set_position(new_pos);
        let _ = self
            .source
            .wait_range(new_pos..new_pos.saturating_add(1), Some(SEEK_WAIT_TIMEOUT));
        if let Some(e) = self.past_eof(current, new_pos) {
            self.source.set_position(current);
            return Err(e);
        }
        Ok(new_pos)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.source.position())
    }
}

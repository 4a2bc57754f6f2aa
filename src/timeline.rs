//! [`Timeline`]: seek epoch and flags shared by the reader and its producer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

const PLAYING: u8 = 1 << 0;
const FLUSHING: u8 = 1 << 1;
const SEEK_PENDING: u8 = 1 << 2;
const EOF: u8 = 1 << 3;

/// Sentinel for "no value" in the `u64` atomics below.
const NONE: u64 = u64::MAX;

#[derive(Debug)]
struct Inner {
    flags: AtomicU8,
    seek_epoch: Arc<AtomicU64>,
    seek_target_ns: AtomicU64,
    pending_seek_epoch: AtomicU64,
    seek_preempt: AtomicBool,
    decoder_node_seek: AtomicBool,
    download_position: AtomicU64,
    segment_position: AtomicU64,
    total_duration_ns: AtomicU64,
}

/// Seek state and flags shared between a stream's reader and whoever drives
/// it (decoder, UI, the download peer). Lock-free; `Clone` shares the same
/// state (an `Arc` bump). Never blocks.
///
/// # Seek protocol
/// 1. The seeker calls [`initiate_seek`](Self::initiate_seek): the epoch
///    bumps, FLUSHING and SEEK_PENDING are raised. It must then wake blocked
///    readers (`Source::notify_waiting`), which return `Interrupted`.
/// 2. Readers compare epochs before and after a read and drop stale bytes.
/// 3. [`complete_seek(epoch)`](Self::complete_seek) lowers FLUSHING only if no
///    newer seek started meanwhile; [`clear_seek_pending(epoch)`](Self::clear_seek_pending)
///    likewise for SEEK_PENDING.
///
/// ```
/// use std::time::Duration;
/// use kithara_stream::Timeline;
///
/// let tl = Timeline::new();
/// let epoch = tl.initiate_seek(Duration::from_secs(3));
/// assert!(tl.is_flushing() && tl.is_seek_pending());
/// tl.complete_seek(epoch);
/// assert!(!tl.is_flushing());
/// assert_eq!(tl.seek_target(), Some(Duration::from_secs(3)));
/// ```
#[derive(Debug, Clone)]
pub struct Timeline {
    inner: Arc<Inner>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    /// A fresh timeline: epoch 0, no flags, positions 0, nothing pending.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                flags: AtomicU8::new(0),
                seek_epoch: Arc::new(AtomicU64::new(0)),
                seek_target_ns: AtomicU64::new(NONE),
                pending_seek_epoch: AtomicU64::new(NONE),
                seek_preempt: AtomicBool::new(false),
                decoder_node_seek: AtomicBool::new(false),
                download_position: AtomicU64::new(0),
                segment_position: AtomicU64::new(0),
                total_duration_ns: AtomicU64::new(NONE),
            }),
        }
    }

    fn set_flag(&self, flag: u8, on: bool) {
        if on {
            self.inner.flags.fetch_or(flag, Ordering::SeqCst);
        } else {
            self.inner.flags.fetch_and(!flag, Ordering::SeqCst);
        }
    }

    fn flag(&self, flag: u8) -> bool {
        self.inner.flags.load(Ordering::SeqCst) & flag != 0
    }

    // ---- seek protocol ----

    /// Starts a seek to `target`: bumps the epoch and returns the new value
    /// (the first call returns 1), records the target (saturated to the
    /// largest representable nanosecond count, never panics), raises
    /// FLUSHING and SEEK_PENDING and arms the two one-shot latches. Does not
    /// touch PLAYING or positions. Callers must wake blocked readers.
    #[must_use = "pass the epoch to complete_seek / clear_seek_pending"]
    pub fn initiate_seek(&self, target: Duration) -> u64 {
        let epoch = self.inner.seek_epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let ns = u64::try_from(target.as_nanos())
            .unwrap_or(NONE - 1)
            .min(NONE - 1);
        self.inner.seek_target_ns.store(ns, Ordering::SeqCst);
        self.inner
            .flags
            .fetch_or(FLUSHING | SEEK_PENDING, Ordering::SeqCst);
        self.inner.seek_preempt.store(true, Ordering::Release);
        self.inner.decoder_node_seek.store(true, Ordering::Release);
        epoch
    }

    /// Lowers FLUSHING if `epoch` is still the current one; if a newer seek
    /// interleaved with the clear, FLUSHING is raised again. Keeps the seek
    /// target and SEEK_PENDING.
    pub fn complete_seek(&self, epoch: u64) {
        if self.seek_epoch() != epoch {
            return;
        }
        self.set_flag(FLUSHING, false);
        if self.seek_epoch() != epoch {
            self.set_flag(FLUSHING, true);
        }
    }

    /// Lowers SEEK_PENDING if `epoch` is still the current one (with the same
    /// double check as [`complete_seek`](Self::complete_seek)).
    pub fn clear_seek_pending(&self, epoch: u64) {
        if self.seek_epoch() != epoch {
            return;
        }
        self.set_flag(SEEK_PENDING, false);
        if self.seek_epoch() != epoch {
            self.set_flag(SEEK_PENDING, true);
        }
    }

    /// The current seek epoch (0 before any seek).
    pub fn seek_epoch(&self) -> u64 {
        self.inner.seek_epoch.load(Ordering::SeqCst)
    }

    /// The shared epoch counter itself, for lock-free observers.
    pub fn seek_epoch_handle(&self) -> Arc<AtomicU64> {
        self.inner.seek_epoch.clone()
    }

    /// The target of the latest seek, if any.
    pub fn seek_target(&self) -> Option<Duration> {
        match self.inner.seek_target_ns.load(Ordering::SeqCst) {
            NONE => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Whether a seek is flushing (readers must drop what they read).
    pub fn is_flushing(&self) -> bool {
        self.flag(FLUSHING)
    }

    /// Whether a seek has not yet landed.
    pub fn is_seek_pending(&self) -> bool {
        self.flag(SEEK_PENDING)
    }

    /// Consumes the "seek preempt" latch armed by `initiate_seek`: true
    /// once per seek.
    pub fn did_take_seek_preempt(&self) -> bool {
        self.inner.seek_preempt.swap(false, Ordering::AcqRel)
    }

    /// Consumes the "decoder node seek" latch armed by `initiate_seek`: true
    /// once per seek. For a player's pipeline, whose decoder stage must
    /// reset once per seek while the reader stage flushes (the seek
    /// preempt latch is the reader's). Nothing in this crate takes it: it
    /// is part of the timeline shared with such stages (upstream contract).
    pub fn did_take_decoder_node_seek(&self) -> bool {
        self.inner.decoder_node_seek.swap(false, Ordering::AcqRel)
    }

    /// Records an epoch whose seek is still to be applied: a pipeline stage
    /// that cannot apply a seek at once marks it here and clears it with
    /// [`did_clear_pending_seek_epoch`](Self::did_clear_pending_seek_epoch)
    /// when done, so a newer seek is never cleared by an older one.
    /// Nothing in this crate marks one (upstream contract).
    pub fn mark_pending_seek_epoch(&self, epoch: u64) {
        self.inner.pending_seek_epoch.store(epoch, Ordering::SeqCst);
    }

    /// The epoch recorded by [`mark_pending_seek_epoch`](Self::mark_pending_seek_epoch).
    pub fn pending_seek_epoch(&self) -> Option<u64> {
        match self.inner.pending_seek_epoch.load(Ordering::SeqCst) {
            NONE => None,
            e => Some(e),
        }
    }

    /// Clears the pending epoch if it equals `epoch` (a CAS); returns whether
    /// it did.
    pub fn did_clear_pending_seek_epoch(&self, epoch: u64) -> bool {
        self.inner
            .pending_seek_epoch
            .compare_exchange(epoch, NONE, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    // ---- flags ----

    /// The EOF flag (set by other layers; the stream never sets it).
    pub fn is_eof(&self) -> bool {
        self.flag(EOF)
    }

    /// Sets or clears the EOF flag; other flags are untouched.
    pub fn set_eof(&self, on: bool) {
        self.set_flag(EOF, on);
    }

    /// The PLAYING flag: peers read it to ask for high download priority.
    pub fn is_playing(&self) -> bool {
        self.flag(PLAYING)
    }

    /// Sets or clears PLAYING; other flags are untouched.
    pub fn set_playing(&self, on: bool) {
        self.set_flag(PLAYING, on);
    }

    // ---- positions ----

    /// How far the producer has downloaded (bytes), as it reports.
    pub fn download_position(&self) -> u64 {
        self.inner.download_position.load(Ordering::Acquire)
    }

    /// Records the producer's download position.
    pub fn set_download_position(&self, pos: u64) {
        self.inner.download_position.store(pos, Ordering::Release);
    }

    /// The byte offset the last successful `try_read` started at.
    pub fn segment_position(&self) -> u64 {
        self.inner.segment_position.load(Ordering::Acquire)
    }

    /// Records the byte offset a read started at.
    pub fn set_segment_position(&self, pos: u64) {
        self.inner.segment_position.store(pos, Ordering::Release);
    }

    /// The total duration, if known.
    pub fn total_duration(&self) -> Option<Duration> {
        match self.inner.total_duration_ns.load(Ordering::Acquire) {
            NONE => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Records (or clears) the total duration (saturating).
    pub fn set_total_duration(&self, d: Option<Duration>) {
        let ns = d.map_or(NONE, |d| {
            u64::try_from(d.as_nanos())
                .unwrap_or(NONE - 1)
                .min(NONE - 1)
        });
        self.inner.total_duration_ns.store(ns, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn download_position_defaults_to_zero() {
        assert_eq!(Timeline::new().download_position(), 0);
    }

    #[test]
    fn download_position_is_shared_between_clones() {
        let a = Timeline::new();
        let b = a.clone();
        a.set_download_position(42);
        assert_eq!(b.download_position(), 42);
        b.set_segment_position(7);
        assert_eq!(a.segment_position(), 7);
    }

    #[test]
    fn initiate_seek_sets_flushing_and_target() {
        let t = Timeline::new();
        t.set_segment_position(99);
        let e = t.initiate_seek(secs(5));
        assert_eq!(e, 1);
        assert!(t.is_flushing());
        assert_eq!(t.seek_target(), Some(secs(5)));
        assert_eq!(t.segment_position(), 99);
    }

    #[test]
    fn initiate_seek_saturates_huge_targets() {
        let t = Timeline::new();
        let _ = t.initiate_seek(Duration::MAX);
        assert_eq!(t.seek_target(), Some(Duration::from_nanos(u64::MAX - 1)));
        t.set_total_duration(Some(Duration::MAX));
        assert!(t.total_duration().is_some());
        t.set_total_duration(None);
        assert_eq!(t.total_duration(), None);
    }

    #[test]
    fn complete_seek_clears_flushing() {
        let t = Timeline::new();
        let e = t.initiate_seek(secs(1));
        t.complete_seek(e);
        assert!(!t.is_flushing());
        assert_eq!(t.seek_target(), Some(secs(1)));
    }

    #[test]
    fn complete_seek_ignores_stale_epoch() {
        let t = Timeline::new();
        let e1 = t.initiate_seek(secs(1));
        let _e2 = t.initiate_seek(secs(2));
        t.complete_seek(e1);
        assert!(t.is_flushing());
    }

    #[test]
    fn seek_epoch_monotonically_increases() {
        let t = Timeline::new();
        assert_eq!(t.seek_epoch(), 0);
        assert_eq!(t.initiate_seek(secs(0)), 1);
        assert_eq!(t.initiate_seek(secs(0)), 2);
        assert_eq!(t.initiate_seek(secs(0)), 3);
        assert_eq!(t.seek_epoch_handle().load(Ordering::SeqCst), 3);
    }

    #[test]
    fn complete_seek_does_not_clobber_concurrent_target() {
        let t = Timeline::new();
        let e1 = t.initiate_seek(secs(1));
        let _ = t.initiate_seek(secs(2));
        t.complete_seek(e1);
        assert_eq!(t.seek_target(), Some(secs(2)));
    }

    #[test]
    fn initiate_seek_is_visible_across_clones() {
        let a = Timeline::new();
        let b = a.clone();
        let e = a.initiate_seek(secs(3));
        assert_eq!(b.seek_epoch(), e);
        assert!(b.is_flushing());
        assert_eq!(b.seek_target(), Some(secs(3)));
    }

    #[test]
    fn initiate_seek_sets_seek_pending() {
        let t = Timeline::new();
        assert!(!t.is_seek_pending());
        let _ = t.initiate_seek(secs(1));
        assert!(t.is_seek_pending());
    }

    #[test]
    fn clear_seek_pending_only_clears_matching_epoch() {
        let t = Timeline::new();
        let e1 = t.initiate_seek(secs(1));
        let e2 = t.initiate_seek(secs(2));
        t.clear_seek_pending(e1);
        assert!(t.is_seek_pending());
        t.clear_seek_pending(e2);
        assert!(!t.is_seek_pending());
    }

    #[test]
    fn new_initiate_seek_resets_seek_pending() {
        let t = Timeline::new();
        let e = t.initiate_seek(secs(1));
        t.clear_seek_pending(e);
        let _ = t.initiate_seek(secs(2));
        assert!(t.is_seek_pending());
    }

    #[test]
    fn complete_seek_does_not_clear_seek_pending() {
        let t = Timeline::new();
        let e = t.initiate_seek(secs(1));
        t.complete_seek(e);
        assert!(t.is_seek_pending());
    }

    #[test]
    fn is_seek_pending_visible_across_clones() {
        let a = Timeline::new();
        let b = a.clone();
        let e = a.initiate_seek(secs(1));
        assert!(b.is_seek_pending());
        b.clear_seek_pending(e);
        assert!(!a.is_seek_pending());
    }

    #[test]
    fn complete_seek_double_check_re_raises_flushing_when_newer_seek_interleaves() {
        // Hammer the interleaving: after both threads finish, if the last
        // initiated epoch was never completed, FLUSHING must be up.
        for _ in 0..200 {
            let t = Timeline::new();
            let e0 = t.initiate_seek(secs(0));
            let t2 = t.clone();
            let h = thread::spawn(move || t2.initiate_seek(secs(1)));
            t.complete_seek(e0);
            let e1 = h.join().unwrap();
            assert_eq!(t.seek_epoch(), e1);
            assert!(t.is_flushing(), "a newer seek's flush was lost");
        }
    }

    #[test]
    fn pending_seek_epoch_cas() {
        let t = Timeline::new();
        assert_eq!(t.pending_seek_epoch(), None);
        t.mark_pending_seek_epoch(4);
        assert!(!t.did_clear_pending_seek_epoch(3));
        assert_eq!(t.pending_seek_epoch(), Some(4));
        assert!(t.did_clear_pending_seek_epoch(4));
        assert_eq!(t.pending_seek_epoch(), None);
    }

    #[test]
    fn latches_fire_once_per_seek() {
        let t = Timeline::new();
        assert!(!t.did_take_seek_preempt());
        let _ = t.initiate_seek(secs(1));
        assert!(t.did_take_seek_preempt());
        assert!(!t.did_take_seek_preempt());
        assert!(t.did_take_decoder_node_seek());
        assert!(!t.did_take_decoder_node_seek());
    }

    #[test]
    fn set_eof_toggles_flag_without_affecting_others() {
        let t = Timeline::new();
        t.set_playing(true);
        let _ = t.initiate_seek(secs(1));
        t.set_eof(true);
        assert!(t.is_eof() && t.is_playing() && t.is_flushing() && t.is_seek_pending());
        t.set_eof(false);
        assert!(!t.is_eof() && t.is_playing() && t.is_flushing() && t.is_seek_pending());
    }

    #[test]
    fn flag_triple_matrix_matches_bitflags_snapshot() {
        for bits in 0u8..8 {
            let t = Timeline::new();
            let (eof, flush, pending) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
            t.set_eof(eof);
            t.set_flag(FLUSHING, flush);
            t.set_flag(SEEK_PENDING, pending);
            let want = (if eof { EOF } else { 0 })
                | (if flush { FLUSHING } else { 0 })
                | (if pending { SEEK_PENDING } else { 0 });
            assert_eq!(t.inner.flags.load(Ordering::SeqCst), want);
            assert_eq!(
                (t.is_eof(), t.is_flushing(), t.is_seek_pending()),
                (eof, flush, pending)
            );
        }
    }

    #[test]
    fn concurrent_flag_toggles_preserve_independent_semantics() {
        let t = Timeline::new();
        t.set_playing(true);
        let hs: Vec<_> = [EOF, FLUSHING, SEEK_PENDING]
            .into_iter()
            .map(|flag| {
                let t = t.clone();
                thread::spawn(move || {
                    for i in 0..50_000 {
                        t.set_flag(flag, i % 2 == 0);
                        assert!(t.is_playing());
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(!t.is_eof() && !t.is_flushing() && !t.is_seek_pending());
        assert!(t.is_playing());
    }

    #[test]
    fn playing_defaults_to_false() {
        assert!(!Timeline::new().is_playing());
    }

    #[test]
    fn set_playing_true_is_visible_across_clones() {
        let a = Timeline::new();
        a.clone().set_playing(true);
        assert!(a.is_playing());
    }

    #[test]
    fn set_playing_idempotent() {
        let t = Timeline::new();
        t.set_playing(true);
        t.set_playing(true);
        assert!(t.is_playing());
        t.set_playing(false);
        t.set_playing(false);
        assert!(!t.is_playing());
    }

    #[test]
    fn playing_is_orthogonal_to_other_flags() {
        let t = Timeline::new();
        t.set_eof(true);
        t.set_playing(true);
        t.set_playing(false);
        assert!(t.is_eof());
    }

    #[test]
    fn initiate_seek_does_not_touch_playing() {
        let t = Timeline::new();
        t.set_playing(true);
        let _ = t.initiate_seek(secs(1));
        assert!(t.is_playing());
        let u = Timeline::new();
        let _ = u.initiate_seek(secs(1));
        assert!(!u.is_playing());
    }
}

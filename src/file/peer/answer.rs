//! The fetch callbacks of an `HttpFile`'s download: what an answer's
//! headers say (`answer`, the fetch's check), where its bytes go (`write`), and what
//! comes next when it ends (`on_complete`, `version_changed`).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::{StatusCode, header};

use super::plan::FetchCtx;
use super::{MAX_FETCH_FAILURES, Shared, Terminal, is_generic_mime};
use crate::cancel::lock;
use crate::dl::ResponseInfo;
use crate::media::MediaInfo;
use crate::net::{NetError, Validator, header_u64};
use crate::storage::StorageError;

impl Shared {
    /// Judges an answer (the fetch's check): where the body starts, the
    /// length, the type. A contradiction with the request or with the
    /// version in storage rejects it.
    pub(super) fn answer(
        &self,
        ctx: &Mutex<FetchCtx>,
        answer: &ResponseInfo<'_>,
    ) -> Result<(), NetError> {
        let mut ctx = lock(ctx);
        let headers = answer.headers;
        let reject = |reason: String| NetError::InvalidResponse {
            url: self.url.clone(),
            reason,
        };
        let length_changed = |now: u64, before: u64| {
            reject(format!(
                "resource length changed: {now} bytes now, {before} before"
            ))
        };
        let total = match answer.content_range {
            Some(cr) => {
                // The downloader checked its first byte; the last must be
                // the wanted one too (or the resource's last).
                let total = cr.complete_length();
                let want_last = ctx
                    .end
                    .map(|e| total.map_or(e, |t| e.min(t)).saturating_sub(1));
                if want_last.is_some_and(|l| cr.last() != l) {
                    return Err(reject(format!(
                        "asked for bytes {}-{}, got Content-Range {}-{}",
                        ctx.start,
                        ctx.end.map_or(String::new(), |e| (e - 1).to_string()),
                        cr.first(),
                        cr.last()
                    )));
                }
                ctx.offset = cr.first();
                ctx.partial = true;
                total
            }
            None => {
                // A 200: the body is the whole resource from byte 0; bytes
                // before the wanted start are skipped by the writer.
                ctx.offset = 0;
                header_u64(headers, header::CONTENT_LENGTH)
            }
        };
        ctx.frontier.store(ctx.offset, Ordering::Release);
        let new = Validator::from_headers(headers);
        let mut st = lock(&self.state);
        let old = ctx.if_range.clone().or_else(|| st.validator.clone());
        // Another version: a validator that differs (a 206 without one says
        // nothing), or another length.
        let differs = old
            .as_ref()
            .is_some_and(|o| !o.matches(headers) && (new.is_some() || !ctx.partial));
        let len_differs = matches!((st.len, total), (Some(l), Some(t)) if l != t);
        let changed =
            (differs || len_differs) && self.storage.next_gap(0, u64::MAX) != Some(0..u64::MAX);
        if changed {
            let error = match old.filter(|_| differs) {
                Some(old) => NetError::ResourceChanged {
                    url: self.url.clone(),
                    old: Box::new(old),
                    new: new.clone().map(Box::new),
                },
                None => length_changed(total.unwrap_or_default(), st.len.unwrap_or_default()),
            };
            // No byte of this answer is stored: its fetch ends, and its
            // completion drops the old version (off the executor's threads
            // for a cache file) and starts over or fails
            // (`version_changed`).
            ctx.changed = true;
            return Err(error);
        }
        let refuses_ranges = headers
            .get(header::ACCEPT_RANGES)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"none"));
        // A 200 streams from byte 0 and keeps what storage lacks: the fetch
        // serves a reader anywhere from there (no re-aim behind its start).
        if let Some(a) = st.active.as_mut().filter(|a| a.id == ctx.id) {
            a.start = a.start.min(ctx.offset);
        }
        // A 200 to a Range (one that answers a failed `If-Range` was
        // rejected above), or `Accept-Ranges: none` (RFC 9110 §14.3).
        if (ctx.ranged && !ctx.partial) || refuses_ranges {
            st.ranges_supported = Some(false);
        } else if ctx.partial {
            st.ranges_supported = Some(true);
        }
        // The version (validator and length) the stored bytes belong to,
        // recorded with them when first learned.
        let mut learned = false;
        if let Some(t) = total {
            match st.len {
                Some(l) if l != t => {
                    drop(st);
                    return Err(length_changed(t, l));
                }
                Some(_) => {}
                None => {
                    st.len = Some(t);
                    self.storage.set_len_hint(Some(t));
                    learned = true;
                }
            }
        }
        if st.validator.is_none() && new.is_some() {
            st.validator = new;
            learned = true;
        }
        if learned {
            self.storage.set_validator(st.validator.clone());
        }
        if !st.headers_known {
            st.headers_known = true;
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            st.media = ct
                .as_deref()
                .filter(|c| !is_generic_mime(c))
                .and_then(MediaInfo::from_mime);
            st.content_type = ct;
        }
        drop(st);
        self.storage.notify_waiters();
        Ok(())
    }

    /// One body chunk: the bytes storage lacks land at their offset (a 200
    /// answer to a `Range` request streams from byte 0: the bytes before
    /// the wanted start are kept too, so the pass is not wasted).
    pub(super) fn write(&self, ctx: &Mutex<FetchCtx>, chunk: &[u8]) -> io::Result<()> {
        let mut ctx = lock(ctx);
        let off = ctx.offset;
        let end = off
            .checked_add(chunk.len() as u64)
            .ok_or_else(|| io::Error::other("body past the largest offset"))?;
        // Before the write: the write wakes the reader, which must find the
        // frontier past the bytes it just saw arrive (else it re-aims).
        ctx.frontier.store(end, Ordering::Release);
        let mut from = off;
        while let Some(gap) = self.storage.next_gap(from, end) {
            // Both ends lie within the chunk: `off <= gap < end`.
            let (a, b) = ((gap.start - off) as usize, (gap.end - off) as usize);
            self.storage
                .write_at(gap.start, &chunk[a..b])
                .map_err(io::Error::other)?;
            ctx.stored += gap.end - gap.start;
            ctx.progress = Instant::now();
            from = gap.end;
        }
        ctx.offset = end;
        self.timeline.set_download_position(ctx.offset);
        Ok(())
    }

    /// The fetch ended (exactly once): learn the length of an unsized
    /// body, count failures, and wake the peer to plan what is next.
    ///
    /// Peer-level retries (a new fetch from the first missing byte) follow
    /// retryable errors and a failed resume after progress (e.g. a server
    /// that ignores `Range` dropped the connection: the downloader cannot
    /// resume that, a new request skipping to the offset can); they stop
    /// after [`MAX_FETCH_FAILURES`] failed fetches in a row that stored
    /// nothing new; that give-up is transient (a later read revives it),
    /// every other failure is permanent.
    pub(super) fn on_complete(
        self: &Arc<Self>,
        ctx: &Mutex<FetchCtx>,
        _bytes: u64,
        err: Option<&NetError>,
    ) {
        let (id, start, end, offset, stored, stale, partial, progress, changed) = {
            let c = lock(ctx);
            (
                c.id,
                c.start,
                c.end,
                c.offset,
                c.stored,
                c.token.is_cancelled(),
                c.partial,
                c.progress,
                c.changed,
            )
        };
        let error = err.cloned();
        if let Some(e) = &error
            && (changed || matches!(e, NetError::ResourceChanged { .. }))
            && !stale
        {
            // The check found another version, or a resume did (`dl` sent
            // `If-Range`).
            self.version_changed(id, e.clone());
            return;
        }
        let succeeded = error.is_none();
        let mut fatal = None;
        let mut transient = false;
        {
            let mut st = lock(&self.state);
            if st.active.as_ref().is_some_and(|a| a.id == id) {
                st.active = None;
            }
            if st.done || st.error.is_some() || self.storage.cancel_token().is_cancelled() {
                return;
            }
            match error {
                None => {
                    st.failures = 0;
                    st.failing_since = None;
                    if end.is_none() && !partial && st.len.is_none() {
                        // An unsized (chunked) 200 body ended: that is the
                        // length. (A 206 may end early by the server's
                        // choice; its end says nothing about the length.)
                        st.len = Some(offset);
                        self.storage.set_len_hint(Some(offset));
                    }
                }
                Some(_) if stale => {}
                Some(NetError::Cancelled) => fatal = Some(NetError::Cancelled),
                Some(NetError::Status { status, .. })
                    if status == StatusCode::RANGE_NOT_SATISFIABLE
                        && start > 0
                        && st.headers_known =>
                {
                    // The resource ends at or before `start`.
                    st.limit = Some(st.limit.map_or(start, |l| l.min(start)));
                }
                Some(e)
                    if st.headers_known
                        && (e.is_retryable()
                            || (stored > 0 && matches!(e, NetError::InvalidResponse { .. }))) =>
                {
                    if stored > 0 {
                        st.failures = 0;
                        st.failing_since = None;
                    }
                    st.failures += 1;
                    let since = *st.failing_since.get_or_insert(progress);
                    // A retryable error is the downloader's give-up: it has
                    // retried since the fetch's last progress, until its
                    // next delay no longer fit the budget. Once the run is
                    // that old, more fetches would only stretch the budget.
                    let spent = e.is_retryable()
                        && self.retry.is_some_and(|p| {
                            since.elapsed().saturating_add(p.max_delay) > p.budget
                        });
                    if st.failures >= MAX_FETCH_FAILURES || spent {
                        fatal = Some(e);
                        transient = true;
                    }
                }
                Some(e) => fatal = Some(e),
            }
        }
        // Commit here, on the fetch's task, rather than in `plan`: `plan`
        // runs on the downloader's loop, which a cache file's `fdatasync`
        // (tens of ms for a big file) would stall for every peer.
        if succeeded {
            self.commit_if_complete(lock(&self.state));
        }
        match fatal {
            Some(e) => self.fail_as(Terminal::Net(e), transient),
            None => self.wake(),
        }
    }
}

impl Shared {
    /// Fetch `id` found that the resource changed (its check saw another
    /// version, or a resume was answered `200` to its `If-Range`): with
    /// nothing read yet, the stored bytes are dropped and the download
    /// starts over on the new version; otherwise the resource fails with
    /// `error` (and storage is emptied).
    pub(super) fn version_changed(self: &Arc<Self>, id: u64, error: NetError) {
        // A cache file's reset truncates it and syncs its sidecar. The fetch
        // stays active (nothing else is planned) until it ran.
        let this = self.clone();
        self.file_work(move || this.drop_old_version(id, error));
    }

    /// [`version_changed`](Self::version_changed)'s work: blocking file I/O
    /// for a cache file.
    fn drop_old_version(self: &Arc<Self>, id: u64, error: NetError) {
        let consumed = lock(&self.consumed);
        let mut st = lock(&self.state);
        if st.active.as_ref().is_some_and(|a| a.id == id) {
            st.active = None;
        }
        if st.done || st.error.is_some() || self.storage.cancel_token().is_cancelled() {
            return;
        }
        let reset = self.storage.reset();
        if *consumed || reset.is_err() {
            drop(st);
            drop(consumed);
            self.fail(match reset {
                Err(e) if !matches!(e, StorageError::Cancelled) => Terminal::Storage(e.to_string()),
                _ => Terminal::Net(error),
            });
            return;
        }
        st.forget_version();
        drop(st);
        drop(consumed);
        crate::trace::trace!(info, url = %self.url, %error, "the resource changed before any byte was read: starting over");
        self.wake();
    }
}

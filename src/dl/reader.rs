//! Reading a body under the policy: cancel, inactivity timeout, short and
//! long body detection, and resume with `Range` after a failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, StatusCode, header};

use super::establish::{Request, invalid, race_cancel};
use super::events::DownloaderEvent;
use super::track::Publisher;
use crate::cancel::Cancelled;
use crate::net::{
    ByteStream, ContentRange, NetError, RangeSpec, TimeoutKind, TransportKind, Validator,
};
use crate::rt::{Deadline, Spawn};

/// The body inactivity timeout as one [`Deadline`] per body instead of one
/// timer per chunk: [`restart`](Self::restart) is a clock read and a field
/// write.
struct Watchdog {
    period: Duration,
    deadline: Deadline,
}

impl Watchdog {
    /// `None` for a zero period (no inactivity timeout) and for one too long
    /// for the clock (a deadline never reached).
    fn new(period: Duration) -> Option<Self> {
        let at = Instant::now().checked_add(period)?;
        (!period.is_zero()).then(|| Self {
            period,
            deadline: Deadline::new(at),
        })
    }

    /// A new wait begins: the full period is granted from now.
    fn restart(&mut self) {
        if let Some(at) = Instant::now().checked_add(self.period) {
            self.deadline.reset(at);
        }
    }

    /// `Ready` once `period` has passed since the last restart.
    fn poll_expired(&mut self, spawn: &dyn Spawn, cx: &mut Context<'_>) -> Poll<()> {
        self.deadline.poll_expired(spawn, cx)
    }
}

/// Reads a body under the policy: cancel, inactivity timeout, short/long
/// body detection, and resume with `Range` after a retryable failure.
pub(crate) struct Reader {
    req: Arc<Request>,
    publisher: Publisher,
    stream: ByteStream,
    /// Kept across chunks: one listener per body, not one per chunk.
    cancelled: Cancelled,
    /// `None` when the inactivity timeout is off.
    watchdog: Option<Watchdog>,
    /// Resource offset of the next byte.
    pos: u64,
    /// Resource offset one past the last byte expected, when known.
    end: Option<u64>,
    /// The complete resource length, when a `Content-Range` stated it.
    total: Option<u64>,
    /// Resumes in the current run of failures (reset by progress).
    resumes: u32,
    /// When the current run of failures began (`None`: none since the
    /// last byte): the retry budget counts from here.
    failing_since: Option<Instant>,
    done: bool,
    /// The version a resume asks for: the command's `If-Range`, else the
    /// first response's validator (sent as `If-Range` by the resume).
    version: Option<Validator>,
    /// Whether the command's own headers carry that `If-Range`.
    own_if_range: bool,
}

impl Reader {
    /// Interprets the first response (its `Content-Range` checked by
    /// [`Request::content_range`]): where its body starts and ends.
    pub(crate) fn open(
        req: Arc<Request>,
        publisher: Publisher,
        content_range: Option<ContentRange>,
        headers: &HeaderMap,
        body: ByteStream,
    ) -> Self {
        let content_length = crate::net::header_u64(headers, header::CONTENT_LENGTH);
        let (pos, end, total) = match content_range {
            Some(cr) => (cr.first(), Some(cr.end()), cr.complete_length()),
            // 200 (also to a ranged request whose Range the server ignored):
            // the body is the resource from byte 0.
            None => (0, content_length, content_length),
        };
        let watchdog = Watchdog::new(req.shared.cfg.inactivity_timeout);
        let own = req
            .headers
            .get(header::IF_RANGE)
            .and_then(|v| v.to_str().ok());
        let version = match own {
            Some(v) if v.starts_with('"') => Some(Validator::ETag(v.to_owned())),
            Some(v) => Some(Validator::LastModified(v.to_owned())),
            None => Validator::from_headers(headers),
        };
        Self {
            own_if_range: own.is_some(),
            version,
            cancelled: req.cancel.cancelled(),
            watchdog,
            req,
            publisher,
            stream: body,
            pos,
            end,
            total,
            resumes: 0,
            failing_since: None,
            done: false,
        }
    }

    /// The next chunk; `None` at the true end. After an `Err`, always `None`.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, NetError>> {
        if self.done {
            return None;
        }
        loop {
            let error = match self.read_one().await {
                Ok(Some(b)) => {
                    // Progress renews the retry budget.
                    self.failing_since = None;
                    self.resumes = 0;
                    return Some(Ok(b));
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => e,
            };
            if let Err(e) = self.resume(error).await {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// The next chunk of the current stream (`Ok(None)` at its end), or
    /// `Err`: the stream's error, `Cancelled` when the command is cancelled
    /// first, or the inactivity `Timeout` (resumable) when the body stays
    /// silent that long. A ready chunk costs one atomic load: the timer
    /// and the cancel listener are only polled when the stream is
    /// `Pending`, and both are kept across chunks.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, NetError>> {
        // Cancellation wins over a ready chunk (one atomic load).
        if self.req.cancel.is_cancelled() {
            return Poll::Ready(Err(NetError::Cancelled));
        }
        if let Poll::Ready(item) = self.stream.poll_next_unpin(cx) {
            return Poll::Ready(match item {
                Some(Ok(chunk)) => Ok(Some(chunk)),
                Some(Err(e)) => Err(e),
                None => Ok(None),
            });
        }
        if Pin::new(&mut self.cancelled).poll(cx).is_ready() {
            return Poll::Ready(Err(NetError::Cancelled));
        }
        if let Some(w) = &mut self.watchdog
            && w.poll_expired(&*self.req.shared.cfg.spawn, cx).is_ready()
        {
            return Poll::Ready(Err(NetError::Timeout {
                kind: TimeoutKind::Inactivity,
                url: self.req.url.clone(),
            }));
        }
        Poll::Pending
    }

    async fn read_one(&mut self) -> Result<Option<Bytes>, NetError> {
        if let Some(w) = &mut self.watchdog {
            w.restart();
        }
        loop {
            let Some(chunk) = futures::future::poll_fn(|cx| self.poll_item(cx)).await? else {
                if let Some(end) = self.end.filter(|&end| self.pos < end) {
                    return Err(NetError::Transport {
                        kind: TransportKind::Body,
                        url: self.req.url.clone(),
                        message: format!(
                            "body ended early: at byte {} of {end} announced",
                            self.pos
                        ),
                    });
                }
                return Ok(None);
            };
            // An empty chunk is not progress: the wait goes on, unrestarted.
            if chunk.is_empty() {
                continue;
            }
            let new_pos = self.pos.saturating_add(chunk.len() as u64);
            if let Some(end) = self.end.filter(|&end| new_pos > end) {
                return Err(invalid(
                    &self.req.url,
                    format!("body longer than announced: more than {end} bytes"),
                ));
            }
            self.pos = new_pos;
            return Ok(Some(chunk));
        }
    }

    /// Re-opens the body from `pos` after `error`, if the policy allows;
    /// otherwise gives back the error to report.
    async fn resume(&mut self, mut error: NetError) -> Result<(), NetError> {
        let policy = self.req.shared.cfg.retry;
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        loop {
            if self.req.cancel.is_cancelled() {
                return Err(NetError::Cancelled);
            }
            if !policy.allows(self.resumes, since.elapsed(), &error) || !self.req.may_resume() {
                return Err(error);
            }
            let delay = policy.delay_for_attempt(self.resumes);
            self.resumes += 1;
            self.publisher.publish(&DownloaderEvent::RequestResumed {
                request_id: self.publisher.id,
                attempt: self.resumes,
                offset: self.pos,
                error,
            });
            if !delay.is_zero() {
                race_cancel(&self.req.cancel, self.req.shared.cfg.spawn.sleep(delay)).await?;
            }
            match self.reopen().await {
                Ok(stream) => {
                    self.stream = stream;
                    return Ok(());
                }
                Err(e) => error = e,
            }
        }
    }

    async fn reopen(&mut self) -> Result<ByteStream, NetError> {
        let url = &self.req.url;
        let last = self
            .end
            .map(|e| e.saturating_sub(1))
            .or(self.req.range.and_then(|r| r.end()));
        let spec = RangeSpec::new(self.pos, last)?;
        let if_range = self.version.as_ref().filter(|_| !self.own_if_range);
        let resp = self.req.attempt(Some(spec), None, if_range).await?;
        if let Some(old) = &self.version
            && resp.status == StatusCode::OK
            && !old.matches(&resp.headers)
        {
            // `If-Range` did not match: another version (RFC 9110 §13.1.5).
            return Err(NetError::ResourceChanged {
                url: url.clone(),
                old: Box::new(old.clone()),
                new: Validator::from_headers(&resp.headers).map(Box::new),
            });
        }
        if resp.status != StatusCode::PARTIAL_CONTENT {
            return Err(invalid(
                url,
                format!(
                    "cannot resume at byte {}: asked for {spec}, server answered {} instead of 206",
                    self.pos, resp.status
                ),
            ));
        }
        // It starts at `pos`; it must also end where the body ends.
        let cr = self.req.content_range(&resp, Some(spec))?;
        let wrong_end = self.end.is_some_and(|e| cr.end() != e);
        let wrong_total =
            matches!((self.total, cr.complete_length()), (Some(a), Some(b)) if a != b);
        if wrong_end || wrong_total {
            return Err(invalid(
                url,
                format!(
                    "cannot resume: asked for {spec}, got Content-Range {}-{}/{}",
                    cr.first(),
                    cr.last(),
                    cr.complete_length()
                        .map_or_else(|| "*".to_owned(), |n| n.to_string())
                ),
            ));
        }
        self.req
            .check(&resp, Some(spec), Some(cr), Some(self.pos))?;
        self.end = Some(cr.end());
        self.total = self.total.or(cr.complete_length());
        Ok(resp.body)
    }
}

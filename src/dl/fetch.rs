//! Fetch execution: one request from headers to last byte, with the
//! retry, timeout, validation and resume policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::channel::oneshot;
use futures::future::{Either, select};
use http::{HeaderMap, StatusCode, header};
use url::Url;

use super::body::{BodyStream, writer_error};
use super::events::{CancelReason, DownloaderEvent, Hub, RequestId, bandwidth_bps};
use super::shared::{Shared, Slot};
use super::{FetchResponse, OnCompleteFn, OnResponseFn, ReadyFn, ValidatorFn, WriterFn};
use crate::cancel::{CancelGroup, CancelToken, Cancelled};
use crate::net::{
    ByteStream, ContentRange, HttpRequest, HttpResponse, NetError, RangeSpec, RequestMethod,
    TimeoutKind, TransportKind, Validator,
};
use crate::rt::{self, BoxFuture, Spawn};

/// The tokens a command's cancel group is made of, kept for classification.
pub(crate) struct Tokens {
    pub(crate) root: CancelToken,
    pub(crate) peer: CancelToken,
    pub(crate) epoch: Option<CancelToken>,
    pub(crate) caller: Option<CancelToken>,
}

impl Tokens {
    pub(crate) fn group(&self) -> CancelGroup {
        let mut members = vec![self.peer.clone()];
        members.extend(self.epoch.iter().cloned());
        members.extend(self.caller.iter().cloned());
        CancelGroup::new(members)
    }

    fn reason(&self) -> CancelReason {
        if self.root.is_cancelled() {
            CancelReason::DownloaderShutdown
        } else if self.peer.is_cancelled() {
            CancelReason::PeerCancel
        } else if self.epoch.as_ref().is_some_and(CancelToken::is_cancelled) {
            CancelReason::EpochCancel
        } else if self.caller.is_some() {
            CancelReason::Dropped
        } else {
            CancelReason::BeforeStart
        }
    }
}

/// Publishes a request's events to the downloader's and the peer's subscribers.
#[derive(Clone)]
pub(crate) struct Publisher {
    shared: Arc<Shared>,
    peer_hub: Arc<Hub>,
    pub(crate) id: RequestId,
}

impl Publisher {
    pub(crate) fn new(shared: Arc<Shared>, peer_hub: Arc<Hub>, id: RequestId) -> Self {
        Self {
            shared,
            peer_hub,
            id,
        }
    }

    pub(crate) fn publish(&self, event: &DownloaderEvent) {
        self.shared.hub.publish(event);
        self.peer_hub.publish(event);
    }
}

/// Publishes exactly one terminal event per request: the first of
/// `completed` / `failed` / drop (cancelled).
pub(crate) struct Tracker {
    pub(crate) publisher: Publisher,
    tokens: Tokens,
    enqueued: Instant,
    started: Instant,
    done: bool,
}

impl Tracker {
    pub(crate) fn new(publisher: Publisher, tokens: Tokens) -> Self {
        let now = Instant::now();
        Self {
            publisher,
            tokens,
            enqueued: now,
            started: now,
            done: false,
        }
    }

    pub(crate) fn start(&mut self) {
        self.started = Instant::now();
        self.publisher.publish(&DownloaderEvent::RequestStarted {
            request_id: self.publisher.id,
            wait_in_queue: self.started.duration_since(self.enqueued),
        });
    }

    pub(crate) fn completed(&mut self, bytes: u64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let duration = self.started.elapsed();
        self.publisher.publish(&DownloaderEvent::RequestCompleted {
            request_id: self.publisher.id,
            bytes_transferred: bytes,
            duration,
            bandwidth_bps: bandwidth_bps(bytes, duration),
        });
    }

    pub(crate) fn failed(&mut self, error: &NetError, bytes: u64) {
        if error.is_cancelled() {
            return self.cancelled(bytes);
        }
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.publisher.publish(&DownloaderEvent::RequestFailed {
            request_id: self.publisher.id,
            error: error.clone(),
            retryable: error.is_retryable(),
        });
    }

    pub(crate) fn cancelled(&mut self, bytes: u64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.publisher.publish(&DownloaderEvent::RequestCancelled {
            request_id: self.publisher.id,
            reason: self.tokens.reason(),
            bytes_transferred: bytes,
        });
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.cancelled(0);
    }
}

/// A streaming command's completion: calls `on_complete` exactly once —
/// through [`finish`](Self::finish), or as cancelled when dropped unfinished
/// (queued at shutdown, peer gone, task dropped by the executor).
pub(crate) struct Completion {
    callback: Option<OnCompleteFn>,
    pub(crate) tracker: Tracker,
}

impl Completion {
    pub(crate) fn new(callback: Option<OnCompleteFn>, tracker: Tracker) -> Self {
        Self { callback, tracker }
    }

    pub(crate) fn finish(
        mut self,
        bytes: u64,
        headers: Option<&HeaderMap>,
        error: Option<&NetError>,
    ) {
        match error {
            None => self.tracker.completed(bytes),
            Some(e) => self.tracker.failed(e, bytes),
        }
        if let Some(cb) = self.callback.take() {
            cb(bytes, headers, error);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.tracker.cancelled(0);
        if let Some(cb) = self.callback.take() {
            cb(0, None, Some(&NetError::Cancelled));
        }
    }
}

/// Everything needed to (re)issue one request.
pub(crate) struct Request {
    pub(crate) shared: Arc<Shared>,
    pub(crate) method: RequestMethod,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) range: Option<RangeSpec>,
    pub(crate) validator: Option<ValidatorFn>,
    pub(crate) cancel: CancelGroup,
}

/// Runs `fut` unless `cancel` fires first.
async fn race_cancel<F: Future>(cancel: &CancelGroup, fut: F) -> Result<F::Output, NetError> {
    if cancel.is_cancelled() {
        return Err(NetError::Cancelled);
    }
    let fut = std::pin::pin!(fut);
    match select(fut, cancel.cancelled()).await {
        Either::Left((out, _)) => Ok(out),
        Either::Right(((), _)) => Err(NetError::Cancelled),
    }
}

/// [`rt::timeout`], except that a zero duration means no timeout.
async fn timeout_unless_zero<F: Future>(
    spawn: &dyn Spawn,
    duration: Duration,
    fut: F,
) -> Result<F::Output, rt::Elapsed> {
    if duration.is_zero() {
        return Ok(fut.await);
    }
    rt::timeout(spawn, duration, fut).await
}

/// The shortest headers wait an attempt gets, even when the connect
/// deadline is closer: an attempt that cannot succeed is not worth sending.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

fn invalid(url: &Url, reason: String) -> NetError {
    NetError::InvalidResponse {
        url: url.clone(),
        reason,
    }
}

impl Request {
    fn cfg(&self) -> &super::DownloaderConfig {
        &self.shared.cfg
    }

    /// One attempt: send (adding `If-Range: if_range` when given), wait
    /// for headers (request timeout, cut at `limit` when given), judge the
    /// status (2xx only).
    async fn attempt(
        &self,
        range: Option<RangeSpec>,
        limit: Option<Instant>,
        if_range: Option<&Validator>,
    ) -> Result<HttpResponse, NetError> {
        let mut req = match self.method {
            RequestMethod::Get => HttpRequest::get(self.url.clone()),
            RequestMethod::Head => HttpRequest::head(self.url.clone()),
        }
        .with_headers(&self.headers);
        if let Some(v) = if_range.and_then(Validator::header_value) {
            req.headers.insert(header::IF_RANGE, v);
        }
        if let Some(r) = range {
            req = req.with_range(r);
        }
        let cfg = self.cfg();
        let exchange = async {
            let resp = cfg.client.send(req).await?;
            resp.error_for_status(&self.url).await
        };
        let mut headers_timeout = cfg.request_timeout;
        if let Some(limit) = limit {
            let left = limit
                .saturating_duration_since(Instant::now())
                .max(MIN_ATTEMPT);
            if headers_timeout.is_zero() || left < headers_timeout {
                headers_timeout = left;
            }
        }
        let timed = timeout_unless_zero(&*cfg.spawn, headers_timeout, exchange);
        match race_cancel(&self.cancel, timed).await? {
            Ok(result) => result,
            Err(rt::Elapsed) => Err(NetError::Timeout {
                kind: TimeoutKind::Headers,
                url: self.url.clone(),
            }),
        }
    }

    /// Attempts with retries and backoff (cancellable), then the validator.
    ///
    /// Until the server first answers (any status), the connect phase's
    /// deadline (`connect_timeout`) bounds the whole loop, each attempt's
    /// headers wait included; from then on the retry budget does.
    async fn establish_inner(&self, publisher: &Publisher) -> Result<HttpResponse, NetError> {
        let cfg = self.cfg();
        let policy = cfg.retry;
        let contact_limit = (!cfg.connect_timeout.is_zero())
            .then(|| Instant::now().checked_add(cfg.connect_timeout))
            .flatten();
        let mut answered = false;
        let mut attempt = 0u32;
        let mut first_failure: Option<Instant> = None;
        let resp = loop {
            let limit = if answered { None } else { contact_limit };
            let error = match self.attempt(self.range, limit, None).await {
                Ok(resp) => break resp,
                Err(e) => e,
            };
            if self.cancel.is_cancelled() {
                return Err(NetError::Cancelled);
            }
            answered |= matches!(error, NetError::Status { .. });
            let since = *first_failure.get_or_insert_with(Instant::now);
            let delay = policy.delay_for_attempt(attempt);
            let within_contact = answered
                || limit.is_none_or(|l| Instant::now().checked_add(delay).is_some_and(|t| t < l));
            if !within_contact || !policy.allows(attempt, since.elapsed(), &error) {
                return Err(error);
            }
            attempt += 1;
            publisher.publish(&DownloaderEvent::RequestRetried {
                request_id: publisher.id,
                attempt,
                delay,
                error,
            });
            if !delay.is_zero() {
                race_cancel(&self.cancel, cfg.spawn.sleep(delay)).await?;
            }
        };
        if let Some(validate) = self.validator {
            validate(&self.url, &resp.headers)?;
        }
        Ok(resp)
    }

    /// [`establish_inner`](Self::establish_inner) under the soft timeout:
    /// past it, `LoadSlow` is published once and the request continues.
    pub(crate) async fn establish(
        &self,
        publisher: &Publisher,
        started: Instant,
    ) -> Result<HttpResponse, NetError> {
        let fut = std::pin::pin!(self.establish_inner(publisher));
        let soft = self.cfg().soft_timeout;
        if soft.is_zero() {
            return fut.await;
        }
        match select(fut, self.cfg().spawn.sleep(soft)).await {
            Either::Left((result, _)) => result,
            Either::Right(((), fut)) => {
                publisher.publish(&DownloaderEvent::LoadSlow {
                    request_id: publisher.id,
                    elapsed: started.elapsed(),
                });
                fut.await
            }
        }
    }
}

/// The body inactivity timeout as one re-armed timer per body instead of
/// one timer per chunk: [`restart`](Self::restart) is a clock read and a
/// field write; the timer is made only when a wait is `Pending` and, when it
/// fires early (progress was made since it was armed), re-armed for the
/// time that is really left.
struct Watchdog {
    period: Duration,
    /// When the current wait for a chunk began.
    since: Instant,
    timer: Option<BoxFuture<'static, ()>>,
}

impl Watchdog {
    /// `None` for a zero period (no inactivity timeout).
    fn new(period: Duration) -> Option<Self> {
        (!period.is_zero()).then(|| Self {
            period,
            since: Instant::now(),
            timer: None,
        })
    }

    /// A new wait begins: the full period is granted from now.
    fn restart(&mut self) {
        self.since = Instant::now();
    }

    /// `Ready` once `period` has passed since the last restart.
    fn poll_expired(&mut self, spawn: &dyn Spawn, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let timer = match &mut self.timer {
                Some(t) => t,
                None => {
                    let left = self.period.saturating_sub(self.since.elapsed());
                    if left.is_zero() {
                        return Poll::Ready(());
                    }
                    self.timer.insert(spawn.sleep(left))
                }
            };
            futures::ready!(timer.as_mut().poll(cx));
            // Never poll a finished timer again; arm a new one if the
            // deadline moved on since this one was set.
            self.timer = None;
        }
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
    /// Interprets the first response: where its body starts and ends.
    pub(crate) fn open(
        req: Arc<Request>,
        publisher: Publisher,
        status: StatusCode,
        headers: &HeaderMap,
        body: ByteStream,
    ) -> Result<Self, NetError> {
        let content_length = crate::net::header_u64(headers, header::CONTENT_LENGTH);
        let (pos, end, total) = if status == StatusCode::PARTIAL_CONTENT {
            let cr = parse_content_range(&req.url, headers)?;
            if let Some(asked) = req.range
                && cr.first() != asked.start()
            {
                return Err(invalid(
                    &req.url,
                    format!(
                        "asked for {asked}, got Content-Range starting at {}",
                        cr.first()
                    ),
                ));
            }
            (cr.first(), Some(cr.end()), cr.complete_length())
        } else {
            // 200 (also to a ranged request whose Range the server ignored):
            // the body is the resource from byte 0.
            (0, content_length, content_length)
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
        Ok(Self {
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
        })
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
            if !policy.allows(self.resumes, since.elapsed(), &error) {
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
        let cr = parse_content_range(url, &resp.headers)?;
        let wrong_end = self.end.is_some_and(|e| cr.end() != e);
        let wrong_total =
            matches!((self.total, cr.complete_length()), (Some(a), Some(b)) if a != b);
        if cr.first() != self.pos || wrong_end || wrong_total {
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
        self.end = Some(cr.end());
        self.total = self.total.or(cr.complete_length());
        Ok(resp.body)
    }
}

fn parse_content_range(url: &Url, headers: &HeaderMap) -> Result<ContentRange, NetError> {
    let value = headers
        .get(header::CONTENT_RANGE)
        .ok_or_else(|| invalid(url, "206 without Content-Range".to_owned()))?;
    let text = value
        .to_str()
        .map_err(|_| invalid(url, "Content-Range is not text".to_owned()))?;
    ContentRange::parse(text).map_err(|e| invalid(url, e.to_string()))
}

/// A streaming command's task: establish, `on_response`, body to `writer`,
/// then `on_complete` (exactly once, via `Completion`).
pub(crate) async fn run_streaming(
    req: Arc<Request>,
    completion: Completion,
    writer: Option<WriterFn>,
    on_response: Option<OnResponseFn>,
    mut ready: Option<ReadyFn>,
    slot: Slot,
) {
    let publisher = completion.tracker.publisher.clone();
    let started = Instant::now();
    let resp = match req.establish(&publisher, started).await {
        Ok(resp) => resp,
        Err(e) => {
            drop(slot);
            return completion.finish(0, None, Some(&e));
        }
    };
    let HttpResponse {
        status,
        headers,
        body,
        ..
    } = resp;
    let mut writer = match writer {
        Some(w) if req.method == RequestMethod::Get => w,
        _ => {
            drop(body);
            drop(slot);
            if let Some(f) = on_response {
                f(&headers);
            }
            return completion.finish(0, Some(&headers), None);
        }
    };
    let mut reader = match Reader::open(req.clone(), publisher, status, &headers, body) {
        Ok(r) => r,
        Err(e) => {
            drop(slot);
            return completion.finish(0, Some(&headers), Some(&e));
        }
    };
    if let Some(f) = on_response {
        f(&headers);
    }
    let mut total = 0u64;
    let mut error = None;
    while let Some(item) = reader.next().await {
        match item {
            Ok(chunk) => {
                let n = chunk.len() as u64;
                // Backpressure: the body is not polled while the consumer
                // has no room (nor is the inactivity timer running).
                if let Some(wait) = ready.as_mut().and_then(|f| f(chunk.len()))
                    && let Err(e) = race_cancel(&req.cancel, wait).await
                {
                    error = Some(e);
                    break;
                }
                if let Err(e) = writer(chunk) {
                    error = Some(writer_error(&e));
                    break;
                }
                total += n;
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    drop(reader);
    drop(slot);
    completion.finish(total, Some(&headers), error.as_ref());
}

/// An imperative command's task: answers on `tx`.
pub(crate) async fn run_imperative(
    req: Arc<Request>,
    mut tracker: Tracker,
    tx: oneshot::Sender<Result<FetchResponse, NetError>>,
    collect: bool,
    slot: Slot,
) {
    let publisher = tracker.publisher.clone();
    let started = Instant::now();
    let opened = async {
        let resp = req.establish(&publisher, started).await?;
        let HttpResponse {
            status,
            headers,
            body,
            ..
        } = resp;
        if req.method == RequestMethod::Head {
            return Ok((status, headers, None));
        }
        let reader = Reader::open(req.clone(), publisher.clone(), status, &headers, body)?;
        Ok((status, headers, Some(reader)))
    }
    .await;
    let (status, headers, reader) = match opened {
        Ok(parts) => parts,
        Err(e) => {
            drop(slot);
            tracker.failed(&e, 0);
            let _ = tx.send(Err(e));
            return;
        }
    };
    let Some(mut reader) = reader else {
        drop(slot);
        tracker.completed(0);
        let _ = tx.send(Ok(FetchResponse::new(status, headers, BodyStream::empty())));
        return;
    };
    if !collect {
        let body = live_body(reader, tracker, slot);
        // A caller that is gone drops the response: the body's drop
        // releases the slot and reports the request cancelled.
        let _ = tx.send(Ok(FetchResponse::new(status, headers, body)));
        return;
    }
    let mut buf = BytesMut::new();
    while let Some(item) = reader.next().await {
        match item {
            Ok(chunk) => buf.extend_from_slice(&chunk),
            Err(e) => {
                drop(slot);
                tracker.failed(&e, buf.len() as u64);
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
    drop(reader);
    drop(slot);
    tracker.completed(buf.len() as u64);
    let body = BodyStream::from_bytes(buf.freeze());
    let _ = tx.send(Ok(FetchResponse::new(status, headers, body)));
}

struct Live {
    reader: Reader,
    tracker: Tracker,
    _slot: Slot,
    bytes: u64,
}

/// A body that keeps its slot until it ends or is dropped.
fn live_body(reader: Reader, tracker: Tracker, slot: Slot) -> BodyStream {
    let state = Some(Live {
        reader,
        tracker,
        _slot: slot,
        bytes: 0,
    });
    let stream = futures::stream::unfold(state, |state| async move {
        let mut live = state?;
        match live.reader.next().await {
            Some(Ok(chunk)) => {
                live.bytes += chunk.len() as u64;
                Some((Ok(chunk), Some(live)))
            }
            Some(Err(e)) => {
                live.tracker.failed(&e, live.bytes);
                Some((Err(e), None))
            }
            None => {
                live.tracker.completed(live.bytes);
                None
            }
        }
    });
    BodyStream::from_raw(Box::pin(stream))
}

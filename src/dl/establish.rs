//! Establishing a request: attempts, status and answer checks, and
//! the retry policy until the headers of an acceptable answer are in.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{Either, select};
use http::{HeaderMap, StatusCode, header};
use url::Url;

use super::events::DownloaderEvent;
use super::shared::Shared;
use super::track::Publisher;
use super::{CheckFn, ResponseInfo, ResumeFn};
use crate::cancel::{CancelGroup, lock};
use crate::net::{
    ContentRange, HttpRequest, HttpResponse, NetError, RangeSpec, RequestMethod, TimeoutKind,
    Validator,
};
use crate::rt::{self, Spawn};

/// Everything needed to (re)issue one request.
pub(crate) struct Request {
    pub(crate) shared: Arc<Shared>,
    pub(crate) method: RequestMethod,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) range: Option<RangeSpec>,
    /// The command's answer check (run by one task at a time: the fetch's).
    pub(crate) check: Mutex<Option<CheckFn>>,
    /// The command's resume gate (asked by the fetch's task only).
    pub(crate) resume_if: Mutex<Option<ResumeFn>>,
    pub(crate) cancel: CancelGroup,
}

/// Runs `fut` unless `cancel` fires first.
pub(crate) async fn race_cancel<F: Future>(
    cancel: &CancelGroup,
    fut: F,
) -> Result<F::Output, NetError> {
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

pub(crate) fn invalid(url: &Url, reason: String) -> NetError {
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
    pub(crate) async fn attempt(
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

    /// Attempts with retries and backoff (cancellable), then the checks of
    /// the answer (`Content-Range`, the command's own).
    ///
    /// Until the server first answers (any status), the connect phase's
    /// deadline (`connect_timeout`) bounds the whole loop, each attempt's
    /// headers wait included; from then on the retry budget does.
    async fn establish_inner(
        &self,
        publisher: &Publisher,
    ) -> Result<(HttpResponse, Option<ContentRange>), NetError> {
        let cfg = self.cfg();
        let policy = cfg.retry;
        let contact_limit = (!cfg.connect_timeout.is_zero())
            .then(|| Instant::now().checked_add(cfg.connect_timeout))
            .flatten();
        let mut answered = false;
        let mut attempt = 0u32;
        let mut first_failure: Option<Instant> = None;
        loop {
            let limit = if answered { None } else { contact_limit };
            let error = match self.attempt(self.range, limit, None).await {
                Ok(resp) => match self.judge(&resp) {
                    Ok(content_range) => return Ok((resp, content_range)),
                    Err(e) => {
                        answered = true;
                        e
                    }
                },
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
        }
    }

    /// The checks of a first answer: the `Content-Range` of a `206`, then
    /// the command's own check.
    fn judge(&self, resp: &HttpResponse) -> Result<Option<ContentRange>, NetError> {
        let content_range = if resp.status == StatusCode::PARTIAL_CONTENT {
            Some(self.content_range(resp, self.range)?)
        } else if resp.headers.contains_key(header::CONTENT_RANGE) {
            // Meaningless on another status (RFC 9110 §14.4), and harmless
            // when it names the whole resource; a part contradicts a body
            // that starts at byte 0.
            let cr = self.parse_content_range(resp)?;
            if cr.first() != 0 || cr.complete_length() != Some(cr.end()) {
                return Err(invalid(
                    &self.url,
                    format!(
                        "{} with Content-Range {}-{}: a part, not the whole resource",
                        resp.status,
                        cr.first(),
                        cr.last()
                    ),
                ));
            }
            None
        } else {
            None
        };
        self.check(resp, self.range, content_range, None)?;
        Ok(content_range)
    }

    /// The `Content-Range` of `resp`: present and well-formed.
    fn parse_content_range(&self, resp: &HttpResponse) -> Result<ContentRange, NetError> {
        let url = &self.url;
        let value = resp
            .headers
            .get(header::CONTENT_RANGE)
            .ok_or_else(|| invalid(url, format!("{} without Content-Range", resp.status)))?;
        let text = value
            .to_str()
            .map_err(|_| invalid(url, "Content-Range is not text".to_owned()))?;
        ContentRange::parse(text).map_err(|e| invalid(url, e.to_string()))
    }

    /// The `Content-Range` of a `206` answer to a request for `asked`:
    /// present, well-formed, starting at the asked first byte (byte 0 when
    /// no range was asked: a part from elsewhere answers no question).
    pub(crate) fn content_range(
        &self,
        resp: &HttpResponse,
        asked: Option<RangeSpec>,
    ) -> Result<ContentRange, NetError> {
        let cr = self.parse_content_range(resp)?;
        let first = asked.map_or(0, |a| a.start());
        if cr.first() != first {
            let asked = asked.map_or_else(|| "the whole resource".to_owned(), |a| a.to_string());
            return Err(invalid(
                &self.url,
                format!(
                    "asked for {asked}, got Content-Range starting at {}",
                    cr.first()
                ),
            ));
        }
        Ok(cr)
    }

    /// Whether the command lets a failed body be resumed (its gate, if any).
    pub(crate) fn may_resume(&self) -> bool {
        lock(&self.resume_if).as_mut().is_none_or(|resume| resume())
    }

    /// Runs the command's answer check, if it has one.
    pub(crate) fn check(
        &self,
        resp: &HttpResponse,
        requested: Option<RangeSpec>,
        content_range: Option<ContentRange>,
        resumed_at: Option<u64>,
    ) -> Result<(), NetError> {
        let mut check = lock(&self.check);
        let Some(check) = check.as_mut() else {
            return Ok(());
        };
        let mut answer = ResponseInfo::new(&self.url, resp.status, &resp.headers);
        answer.requested = requested;
        answer.content_range = content_range;
        answer.resumed_at = resumed_at;
        check(&answer)
    }

    /// [`establish_inner`](Self::establish_inner) under the soft timeout:
    /// past it, `LoadSlow` is published once and the request continues.
    pub(crate) async fn establish(
        &self,
        publisher: &Publisher,
        started: Instant,
    ) -> Result<(HttpResponse, Option<ContentRange>), NetError> {
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

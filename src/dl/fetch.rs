//! Fetch execution: one command's task from headers to last byte, on the
//! pieces of `establish.rs` (headers, retries), `reader.rs` (the body) and
//! `track.rs` (events, the exactly-once completion).

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use futures::channel::oneshot;

use super::body::{BodyStream, writer_error};
use super::establish::{Request, race_cancel};
use super::reader::Reader;
use super::shared::Slot;
use super::track::{Completion, Tracker};
use super::{FetchResponse, OnResponseFn, ReadyFn, WriterFn};
use crate::net::{HttpResponse, NetError, RequestMethod};

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
    let (resp, content_range) = match req.establish(&publisher, started).await {
        Ok(answer) => answer,
        Err(e) => {
            drop(slot);
            return completion.finish(0, None, Some(&e));
        }
    };
    crate::trace::trace!(
        debug,
        request_id = %publisher.id,
        url = %req.url,
        status = %resp.status,
        range = ?req.range.map(|r| r.to_string()),
        content_range = ?resp.headers.get(http::header::CONTENT_RANGE),
        "answer"
    );
    let HttpResponse { headers, body, .. } = resp;
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
    let mut reader = Reader::open(req.clone(), publisher, content_range, &headers, body);
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
                    // A consumer that fails because the command was
                    // cancelled meanwhile (its storage went with it) ends
                    // a cancelled command.
                    error = Some(if req.cancel.is_cancelled() {
                        NetError::Cancelled
                    } else {
                        writer_error(&e)
                    });
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
        let (resp, content_range) = req.establish(&publisher, started).await?;
        let HttpResponse {
            status,
            headers,
            body,
            ..
        } = resp;
        if req.method == RequestMethod::Head {
            return Ok((status, headers, None));
        }
        let reader = Reader::open(
            req.clone(),
            publisher.clone(),
            content_range,
            &headers,
            body,
        );
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

//! Property tests: arbitrary `Content-Range`, `Content-Length`,
//! `Content-Type`, `ETag` and `Last-Modified` values, through the parsers
//! and through the whole fetch path (`Downloader` streaming commands and
//! `Stream::<HttpFile>`), in a debug build (overflow checks on): no panic
//! anywhere, typed errors only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dl_common;

use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dl_common::*;
use futures::FutureExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
use kithara_stream::net::{
    ContentRange, HttpClient, HttpRequest, HttpResponse, NetError, RangeSpec, RetryPolicy,
    header_u64,
};
use kithara_stream::rt::{BoxFuture, Spawn};
use kithara_stream::{HttpFile, HttpFileConfig, Stream};
use proptest::prelude::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Numbers around the edges, and any.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("1".to_owned()),
        Just(u64::MAX.to_string()),
        Just((u64::MAX - 1).to_string()),
        Just("18446744073709551616".to_owned()),
        (0u64..5000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[ -~]{0,6}",
    ]
}

fn content_range() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            number(),
            number(),
            prop_oneof![Just("*".to_owned()), number()]
        )
            .prop_map(|(a, b, c)| format!("bytes {a}-{b}/{c}")),
        number().prop_map(|c| format!("bytes */{c}")),
        "[ -~]{0,40}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("audio/mpeg".to_owned()),
        Just("text/html; charset=utf-8".to_owned()),
        Just("application/octet-stream".to_owned()),
        Just(String::new()),
        text(),
    ]
}

proptest! {
    #[test]
    fn content_range_parse_never_panics(v in content_range()) {
        if let Ok(cr) = ContentRange::parse(&v) {
            prop_assert!(cr.first() <= cr.last());
            prop_assert!(cr.last() < u64::MAX);
            prop_assert_eq!(cr.len(), cr.last() - cr.first() + 1);
            prop_assert_eq!(cr.as_range(), cr.first()..cr.end());
            if let Some(c) = cr.complete_length() {
                prop_assert!(cr.last() < c);
            }
        }
    }

    #[test]
    fn range_spec_never_overflows(start in any::<u64>(), end in proptest::option::of(any::<u64>())) {
        match RangeSpec::new(start, end) {
            Ok(spec) => {
                let len = spec.len();
                prop_assert_eq!(len.is_some(), end.is_some());
                if let (Some(len), Some(e)) = (len, end) {
                    prop_assert_eq!(len, e - start + 1);
                }
                prop_assert!(spec.to_header_value().starts_with("bytes="));
            }
            Err(NetError::InvalidRange { .. }) => {
                prop_assert!(end.is_some_and(|e| e < start || e == u64::MAX));
            }
            Err(e) => prop_assert!(false, "untyped {e:?}"),
        }
    }

    #[test]
    fn header_u64_never_panics(v in number()) {
        let mut h = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&v) {
            h.insert(header::CONTENT_LENGTH, value);
            let _ = header_u64(&h, header::CONTENT_LENGTH);
        }
    }
}

/// One scripted answer, the same for every request.
#[derive(Debug, Clone)]
struct Script {
    status: u16,
    headers: Vec<(header::HeaderName, String)>,
    body: Bytes,
}

struct ScriptedClient(Script);

impl HttpClient for ScriptedClient {
    fn send(&self, _request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            for (name, value) in &self.0.headers {
                if let Ok(v) = HeaderValue::from_str(value) {
                    headers.insert(name.clone(), v);
                }
            }
            let status = StatusCode::from_u16(self.0.status).unwrap();
            let chunks: Vec<Result<Bytes, NetError>> = self
                .0
                .body
                .chunks(700)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Ok(HttpResponse::new(
                status,
                headers,
                Box::pin(futures::stream::iter(chunks)),
            ))
        })
    }
}

/// Runs tasks on the pool, catching (and recording) any panic.
#[derive(Clone)]
struct PanicSpawn {
    pool: PoolSpawn,
    panicked: Arc<AtomicBool>,
}

impl Spawn for PanicSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        let flag = self.panicked.clone();
        self.pool.spawn(Box::pin(async move {
            if AssertUnwindSafe(task).catch_unwind().await.is_err() {
                flag.store(true, Ordering::SeqCst);
            }
        }));
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        sleep(d)
    }
    fn spawn_blocking(&self, f: Box<dyn FnOnce() + Send>) {
        if std::panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
            self.panicked.store(true, Ordering::SeqCst);
        }
    }
}

struct Idle;
impl Peer for Idle {}

fn script() -> impl Strategy<Value = Script> {
    (
        prop_oneof![Just(200u16), Just(206), Just(416), Just(404), Just(503)],
        proptest::option::of(content_range()),
        proptest::option::of(number()),
        proptest::option::of(content_type()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        0usize..3000,
    )
        .prop_map(|(status, cr, cl, ct, etag, lm, len)| {
            let mut headers = Vec::new();
            let mut push = |n: header::HeaderName, v: Option<String>| {
                if let Some(v) = v {
                    headers.push((n, v));
                }
            };
            push(header::CONTENT_RANGE, cr);
            push(header::CONTENT_LENGTH, cl);
            push(header::CONTENT_TYPE, ct);
            push(header::ETAG, etag);
            push(header::LAST_MODIFIED, lm);
            Script {
                status,
                headers,
                body: pattern(len, 9),
            }
        })
}

fn downloader(script: Script) -> (Downloader, Arc<AtomicBool>) {
    let panicked = Arc::new(AtomicBool::new(false));
    let spawn = PanicSpawn {
        pool: PoolSpawn::new(),
        panicked: panicked.clone(),
    };
    let dl = Downloader::new(
        DownloaderConfig::new(Arc::new(spawn), Arc::new(ScriptedClient(script)))
            .retry(RetryPolicy::none())
            .connect_timeout(Duration::from_millis(200))
            .inactivity_timeout(Duration::from_secs(2)),
    );
    (dl, panicked)
}

proptest! {
    // 512 cases: about a second for the five properties, and a rare lie (a
    // Content-Range near the largest offset) was found at 96 only by luck.
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Through the downloader: a streaming command (plain and ranged) and
    /// an imperative one end with bytes or a typed error, never a panic.
    #[test]
    fn fetch_path_never_panics(script in script(), ranged in any::<bool>()) {
        let (dl, panicked) = downloader(script);
        let h = dl.register(Arc::new(Idle));
        let mut cmd = FetchCmd::get(url("/x"));
        if ranged {
            cmd = cmd.range(RangeSpec::new(100, Some(1999)).unwrap());
        }
        let r = block_on_timeout(LIMIT, async {
            match h.execute(cmd).await {
                Ok(resp) => resp.body.collect().await.map(|b| b.len()),
                Err(e) => Err(e),
            }
        });
        let _ = r; // bytes or a typed NetError: both fine
        prop_assert!(!panicked.load(Ordering::SeqCst), "a fetch task panicked");
    }

    /// Through `Stream::<HttpFile>`: open, then read to the end (bounded):
    /// bytes, or a typed error from `new` or `read`; never a panic.
    #[test]
    fn http_file_never_panics(script in script()) {
        let (dl, panicked) = downloader(script);
        let cfg = HttpFileConfig::new("http://127.0.0.1/x")
            .unwrap()
            .downloader(dl.clone())
            .read_timeout(Some(Duration::from_secs(5)));
        if let Ok(mut s) = block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg)) {
            let r = std::thread::spawn(move || {
                let mut out = Vec::new();
                s.read_to_end(&mut out).map(|_| out.len())
            })
            .join();
            prop_assert!(r.is_ok(), "the reader panicked");
        }
        prop_assert!(!panicked.load(Ordering::SeqCst), "a task panicked");
    }
}

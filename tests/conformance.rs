//! Backend conformance: the `HttpClient` contract (see `net::HttpClient`),
//! written once and run against every enabled backend pair. Test names say
//! which: `reqwest::full_get`, `surf::full_get`, ...
//!
//! Every request talks to a loopback [`TestServer`] and is bounded in time.
#![cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::StatusCode;
use kithara_stream::net::{
    ByteStream, ContentRange, HttpClient, HttpRequest, HttpResponse, NetError, RangeSpec,
    TransportKind,
};
use support::backends::{Env, backend_tests};
use support::server::{
    Checksum, Cut, Resource, TestServer, checksum, closed_port_url, pseudo_random,
};

/// Bound on one request (headers) or one body.
const LIMIT: Duration = Duration::from_secs(10);
/// Bound on waiting for the server to observe something.
const WAIT: Duration = Duration::from_secs(5);

async fn send(env: &Env, request: HttpRequest) -> Result<HttpResponse, NetError> {
    env.timeout(LIMIT, env.client.send(request))
        .await
        .unwrap_or_else(|_| panic!("[{}] send did not finish within {LIMIT:?}", env.name))
}

async fn get(env: &Env, url: url::Url) -> HttpResponse {
    send(env, HttpRequest::get(url)).await.expect("response")
}

async fn body_of(env: &Env, response: HttpResponse) -> Result<Bytes, NetError> {
    env.timeout(LIMIT, response.bytes())
        .await
        .expect("body within the limit")
}

/// The next body chunk, or `None` if nothing arrives within `within`.
async fn next_chunk(
    env: &Env,
    body: &mut ByteStream,
    within: Duration,
) -> Option<Option<Result<Bytes, NetError>>> {
    env.timeout(within, body.next()).await.ok()
}

fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn body_64k() -> Bytes {
    pseudo_random(64 * 1024, 64)
}

static BIG: OnceLock<(Bytes, u64)> = OnceLock::new();

/// 64 MiB of pseudo-random bytes and their checksum, shared by the backends.
fn big_body() -> &'static (Bytes, u64) {
    BIG.get_or_init(|| {
        let body = pseudo_random(64 << 20, 0xB16);
        let sum = checksum(&body);
        (body, sum)
    })
}

backend_tests! {
    fn full_get(env) {
        let body = body_64k();
        let server = TestServer::with([(
            "/a.mp3",
            Resource::new(body.clone()).content_type("audio/mpeg"),
        )]);
        let r = get(&env, server.url("/a.mp3")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_length(), Some(body.len() as u64));
        assert_eq!(r.content_type(), Some("audio/mpeg"));
        assert_eq!(body_of(&env, r).await.unwrap(), body);
        let stats = server.stats();
        assert_eq!(stats.requests_for("/a.mp3"), 1);
        assert_eq!(stats.ranges_for("/a.mp3"), [None], "no Range unless asked");
    }

    fn ranged_get_is_206_with_exact_bytes(env) {
        let body = body_64k();
        let server = TestServer::with([("/r", Resource::new(body.clone()))]);
        let range = RangeSpec::new(1000, Some(1999)).unwrap();
        let r = send(&env, HttpRequest::get(server.url("/r")).with_range(range))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        let cr = ContentRange::parse(header(&r, "content-range").unwrap()).unwrap();
        assert_eq!(cr.as_range(), 1000..2000);
        assert_eq!(cr.complete_length(), Some(body.len() as u64));
        assert_eq!(r.content_length(), Some(1000));
        assert_eq!(body_of(&env, r).await.unwrap(), body.slice(1000..2000));
        assert_eq!(
            server.stats().ranges_for("/r"),
            [Some("bytes=1000-1999".to_owned())],
            "the Range header reaches the server unchanged"
        );
    }

    fn open_ended_range(env) {
        let body = body_64k();
        let len = body.len() as u64;
        let server = TestServer::with([("/o", Resource::new(body.clone()))]);
        let r = send(
            &env,
            HttpRequest::get(server.url("/o")).with_range(RangeSpec::from_start(len - 1000)),
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        let cr = ContentRange::parse(header(&r, "content-range").unwrap()).unwrap();
        assert_eq!(cr.as_range(), len - 1000..len);
        assert_eq!(body_of(&env, r).await.unwrap(), body.slice(body.len() - 1000..));
    }

    fn unsatisfiable_range_passes_416_through(env) {
        let server = TestServer::with([("/u", Resource::new(body_64k()))]);
        let r = send(
            &env,
            HttpRequest::get(server.url("/u")).with_range(RangeSpec::from_start(1 << 20)),
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&r, "content-range"), Some("bytes */65536"));
    }

    fn server_ignoring_range_passes_200_through(env) {
        let body = body_64k();
        let server = TestServer::with([("/i", Resource::new(body.clone()).ignore_range())]);
        let r = send(
            &env,
            HttpRequest::get(server.url("/i")).with_range(RangeSpec::from_start(100)),
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::OK, "the backend does not interpret Range");
        assert_eq!(body_of(&env, r).await.unwrap(), body);
    }

    fn head_has_headers_and_no_body(env) {
        let body = body_64k();
        let server = TestServer::with([(
            "/h",
            Resource::new(body.clone()).content_type("audio/flac"),
        )]);
        let r = send(&env, HttpRequest::head(server.url("/h"))).await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_length(), Some(body.len() as u64));
        assert_eq!(r.content_type(), Some("audio/flac"));
        assert!(body_of(&env, r).await.unwrap().is_empty());
        let stats = server.stats();
        assert_eq!(stats.log.len(), 1);
        assert_eq!(stats.log[0].method, "HEAD");
    }

    fn headers_arrive_before_the_body(env) {
        // The server sends the headers, then nothing: `send` must not wait
        // for the body.
        let server = TestServer::with([(
            "/s",
            Resource::new(body_64k()).then(Cut::StallAfter(0)),
        )]);
        let r = get(&env, server.url("/s")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_length(), Some(64 * 1024));
        let mut body = r.body;
        assert!(
            next_chunk(&env, &mut body, Duration::from_millis(300)).await.is_none(),
            "no body byte was sent"
        );
    }

    fn delayed_body_arrives_after_the_headers(env) {
        let body = body_64k();
        let server = TestServer::with([(
            "/d",
            Resource::new(body.clone()).body_delay(Duration::from_millis(400)),
        )]);
        let r = get(&env, server.url("/d")).await;
        let got_headers = Instant::now();
        let got = body_of(&env, r).await.unwrap();
        assert!(
            got_headers.elapsed() >= Duration::from_millis(200),
            "the body came {:?} after the headers; send waited for it",
            got_headers.elapsed()
        );
        assert_eq!(got, body);
    }

    fn body_streams_in_several_chunks(env) {
        // Only the first 64 KiB of 1 MiB are sent: a client that buffered
        // the whole body would never yield them.
        let body = pseudo_random(1 << 20, 5);
        let server = TestServer::with([
            ("/s", Resource::new(body.clone()).then(Cut::StallAfter(64 * 1024))),
            ("/t", Resource::new(body.slice(..256 * 1024)).throttle(4 << 20)),
        ]);
        let r = get(&env, server.url("/s")).await;
        let mut stream = r.body;
        let mut got = Vec::new();
        while got.len() < 64 * 1024 {
            match next_chunk(&env, &mut stream, WAIT).await {
                Some(Some(Ok(chunk))) => got.extend_from_slice(&chunk),
                other => panic!("[{}] expected body bytes, got {other:?}", env.name),
            }
        }
        assert_eq!(got, body[..64 * 1024]);
        assert!(next_chunk(&env, &mut stream, Duration::from_millis(200)).await.is_none());

        // A throttled body arrives as many chunks, the first long before the last.
        let r = get(&env, server.url("/t")).await;
        let mut stream = r.body;
        let start = Instant::now();
        let (mut chunks, mut first_at, mut total) = (0, None, 0);
        while let Some(chunk) = next_chunk(&env, &mut stream, WAIT).await.expect("in time") {
            let chunk = chunk.unwrap();
            chunks += 1;
            total += chunk.len();
            first_at.get_or_insert_with(|| start.elapsed());
        }
        assert_eq!(total, 256 * 1024);
        assert!(chunks >= 4, "only {chunks} chunks");
        assert!(start.elapsed() >= first_at.unwrap() + Duration::from_millis(20));
    }

    fn status_404_and_500_map_to_status_error(env) {
        let server = TestServer::with([("/boom", Resource::error(500, "boom"))]);
        for (path, status, text) in [("/missing", 404, "not found"), ("/boom", 500, "boom")] {
            let url = server.url(path);
            let r = get(&env, url.clone()).await;
            assert_eq!(r.status.as_u16(), status, "raw send returns the status");
            let err = env
                .timeout(LIMIT, r.error_for_status(&url))
                .await
                .unwrap()
                .unwrap_err();
            match &err {
                NetError::Status { status: s, url: u, body } => {
                    assert_eq!(s.as_u16(), status);
                    assert_eq!(u, &url);
                    assert_eq!(body.as_deref(), Some(text));
                }
                other => panic!("expected Status, got {other:?}"),
            }
            assert_eq!(err.is_retryable(), status == 500);
        }
        // A success passes through `error_for_status` untouched.
        server.add("/ok", Resource::new(&b"fine"[..]));
        let url = server.url("/ok");
        let r = get(&env, url.clone()).await.error_for_status(&url).await.unwrap();
        assert_eq!(body_of(&env, r).await.unwrap(), &b"fine"[..]);
    }

    fn connection_refused_is_a_connect_transport_error(env) {
        let url = closed_port_url("/x");
        match send(&env, HttpRequest::get(url.clone())).await {
            Err(NetError::Transport { kind, url: u, .. }) => {
                assert_eq!(kind, TransportKind::Connect);
                assert_eq!(u, url);
            }
            other => panic!("expected a Connect transport error, got {other:?}"),
        }
    }

    fn chunked_body_without_length_arrives_intact(env) {
        let body = pseudo_random(300_000, 8);
        let server = TestServer::with([("/c", Resource::new(body.clone()).chunked())]);
        let r = get(&env, server.url("/c")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_length(), None);
        assert_eq!(body_of(&env, r).await.unwrap(), body);
    }

    /// A body cut short of its `Content-Length` ends with a retryable body
    /// error or cleanly (the contract allows both: the downloader compares
    /// the body with its length and resumes it, as
    /// `dl_backends::resume_after_server_drops_at_random_offsets` checks on
    /// every backend); never with a byte that was not sent.
    fn truncated_body_ends_short_and_correct(env) {
        let body = pseudo_random(1 << 20, 13);
        let server = TestServer::with([(
            "/t",
            Resource::new(body.clone()).then(Cut::DropAfter(100_000)),
        )]);
        let r = get(&env, server.url("/t")).await;
        assert_eq!(r.content_length(), Some(1 << 20));
        let mut stream = r.body;
        let mut got = Vec::new();
        loop {
            match next_chunk(&env, &mut stream, WAIT).await.expect("in time") {
                Some(Ok(chunk)) => got.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    assert!(
                        matches!(e, NetError::Transport { kind: TransportKind::Body, .. }),
                        "[{}] {e:?}",
                        env.name
                    );
                    assert!(e.is_retryable());
                    break;
                }
                None => break,
            }
        }
        assert!(got.len() <= 100_000);
        assert_eq!(got, body[..got.len()], "the bytes before the cut are correct");
        // The next request (plan used up) succeeds.
        let r = get(&env, server.url("/t")).await;
        assert_eq!(body_of(&env, r).await.unwrap(), body);
    }

    fn truncated_chunked_body_is_an_error(env) {
        let body = pseudo_random(1 << 20, 14);
        let server = TestServer::with([(
            "/tc",
            Resource::new(body.clone()).chunked().then(Cut::DropAfter(100_000)),
        )]);
        let r = get(&env, server.url("/tc")).await;
        assert_eq!(r.content_length(), None);
        let mut stream = r.body;
        let mut got = 0;
        loop {
            match next_chunk(&env, &mut stream, WAIT).await.expect("in time") {
                Some(Ok(chunk)) => got += chunk.len(),
                Some(Err(e)) => {
                    assert!(matches!(e, NetError::Transport { kind: TransportKind::Body, .. }), "{e:?}");
                    break;
                }
                None => panic!("[{}] chunked body ended cleanly after {got} bytes", env.name),
            }
        }
        assert!(got <= 100_000);
    }

    fn dropping_send_before_the_headers_closes_the_connection(env) {
        // Cancel-safety of `send`: a request dropped while it waits for the
        // headers must not finish in the background (and go to a pool).
        let server = TestServer::with([(
            "/slow",
            Resource::new(body_64k()).header_delay(Duration::from_millis(700)),
        )]);
        let sent = env
            .timeout(Duration::from_millis(200), env.client.send(HttpRequest::get(server.url("/slow"))))
            .await;
        assert!(sent.is_err(), "[{}] the headers came before their delay", env.name);
        // The server notices the closed socket when it writes the answer.
        server
            .wait_for(&*env.spawn, WAIT, |s| s.requests == 1 && s.open_connections == 0)
            .await
            .unwrap_or_else(|s| panic!("[{}] the dropped request lives on: {s:?}", env.name));
    }

    fn dropping_the_body_mid_stream_releases_the_connection(env) {
        let server = TestServer::with([(
            "/s",
            Resource::new(pseudo_random(1 << 20, 3)).always(Cut::StallAfter(32 * 1024)),
        )]);
        let r = get(&env, server.url("/s")).await;
        let mut stream = r.body;
        let first = next_chunk(&env, &mut stream, WAIT).await.expect("first chunk");
        assert!(first.unwrap().unwrap().len() <= 32 * 1024);
        let stats = server.stats();
        assert_eq!((stats.open_connections, stats.in_flight), (1, 1));
        drop(stream);
        server
            .wait_for(&*env.spawn, WAIT, |s| s.open_connections == 0 && s.in_flight == 0)
            .await
            .unwrap_or_else(|s| panic!("[{}] connection still held: {s:?}", env.name));
    }

    fn a_request_after_a_dropped_body_gets_a_clean_response(env) {
        // Dropping a body with bytes still on the wire must not leave that
        // connection for the next request to read garbage from.
        let big = pseudo_random(4 << 20, 21);
        let small = body_64k();
        let server = TestServer::with([
            ("/big", Resource::new(big)),
            ("/small", Resource::new(small.clone())),
        ]);
        for _ in 0..3 {
            let r = get(&env, server.url("/big")).await;
            let mut stream = r.body;
            let first = next_chunk(&env, &mut stream, WAIT).await.expect("a chunk");
            assert!(first.unwrap().is_ok());
            drop(stream);
            let r = get(&env, server.url("/small")).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.content_length(), Some(small.len() as u64));
            assert_eq!(body_of(&env, r).await.unwrap(), small);
        }
    }

    fn sequential_requests_share_connections_where_the_backend_pools(env) {
        let body = body_64k();
        let server = TestServer::with([("/k", Resource::new(body.clone()))]);
        for _ in 0..5 {
            let r = get(&env, server.url("/k")).await;
            assert_eq!(body_of(&env, r).await.unwrap(), body);
            // Let the finished connection go back to the pool.
            env.sleep(Duration::from_millis(30)).await;
        }
        let stats = server.stats();
        assert_eq!(stats.requests, 5);
        let ports = stats.client_ports.len();
        if env.name == "surf" {
            // SurfClient::new() turns keep-alive off (see its docs).
            assert_eq!(ports, 5, "one connection per request: {stats:?}");
        } else {
            assert!(ports <= 2, "keep-alive reuses connections: {stats:?}");
        }
        server
            .wait_for(&*env.spawn, WAIT, |s| s.open_connections <= 1)
            .await
            .unwrap_or_else(|s| panic!("[{}] finished connections left open: {s:?}", env.name));
    }

    fn concurrent_requests_all_succeed(env) {
        let body = body_64k();
        let server = TestServer::with([(
            "/c",
            Resource::new(body.clone()).header_delay(Duration::from_millis(50)),
        )]);
        let client: Arc<dyn HttpClient> = Arc::clone(&env.client);
        let url = server.url("/c");
        let all = futures::future::join_all((0..8).map(|_| {
            let (client, url) = (Arc::clone(&client), url.clone());
            async move { client.send(HttpRequest::get(url)).await?.bytes().await }
        }));
        let results = env.timeout(LIMIT, all).await.expect("in time");
        for r in results {
            assert_eq!(r.unwrap(), body);
        }
        let stats = server.stats();
        assert_eq!(stats.requests, 8);
        assert!(stats.peak_in_flight >= 2, "requests overlapped: {stats:?}");
    }

    fn body_of_64_mib_arrives_intact(env) {
        let (body, sum) = big_body();
        let server = TestServer::with([(
            "/big",
            Resource::new(body.clone()).chunk_size(256 * 1024),
        )]);
        let r = get(&env, server.url("/big")).await;
        assert_eq!(r.content_length(), Some(64 << 20));
        let mut stream = r.body;
        let mut check = Checksum::default();
        let mut chunks = 0u32;
        let read_all = async {
            while let Some(chunk) = stream.next().await {
                check.update(&chunk.unwrap());
                chunks += 1;
            }
        };
        env.timeout(Duration::from_secs(40), read_all).await.expect("64 MiB in time");
        assert_eq!(check.len(), 64 << 20);
        assert_eq!(check.finish(), *sum);
        assert!(chunks > 1);
    }
}

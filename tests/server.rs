//! Pins the loopback test server's own behaviour (Range handling, faults,
//! stats) with a raw blocking client, so the conformance suite and later
//! tests can trust it. Runs in every feature set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::server::{
    BlackHole, Checksum, Cut, RangeAnswer, Resource, TestServer, checksum, closed_port_url,
    interpret_range, pseudo_random, raw_request,
};

const WAIT: Duration = Duration::from_secs(5);

fn body_1000() -> bytes::Bytes {
    pseudo_random(1000, 7)
}

#[test]
fn interpret_range_table() {
    use RangeAnswer::{Full, Partial, Unsatisfiable};
    let cases: &[(&str, u64, RangeAnswer)] = &[
        ("bytes=0-0", 1000, Partial(0..1)),
        ("bytes=10-19", 1000, Partial(10..20)),
        ("bytes=990-", 1000, Partial(990..1000)),
        ("bytes=0-", 1000, Partial(0..1000)),
        ("bytes=-10", 1000, Partial(990..1000)),
        ("bytes=-2000", 1000, Partial(0..1000)),
        ("bytes=995-2000", 1000, Partial(995..1000)),
        ("bytes=999-999", 1000, Partial(999..1000)),
        (" bytes= 5 - 9 ", 1000, Partial(5..10)),
        ("bytes=1000-", 1000, Unsatisfiable),
        ("bytes=1000-1005", 1000, Unsatisfiable),
        ("bytes=-0", 1000, Unsatisfiable),
        ("bytes=0-", 0, Unsatisfiable),
        ("bytes=-5", 0, Unsatisfiable),
        ("bytes=5-2", 1000, Full),
        ("bytes=0-1,5-6", 1000, Full),
        ("items=0-1", 1000, Full),
        ("bytes=abc", 1000, Full),
        ("bytes=-", 1000, Full),
        ("bytes=+1-2", 1000, Full),
    ];
    for (value, len, want) in cases {
        assert_eq!(&interpret_range(value, *len), want, "{value:?} of {len}");
    }
}

#[test]
fn full_get_has_length_type_and_exact_body() {
    let body = body_1000();
    let server = TestServer::with([(
        "/a.mp3",
        Resource::new(body.clone()).content_type("audio/mpeg"),
    )]);
    let r = raw_request(&server.url("/a.mp3"), "GET", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(r.header("content-type"), Some("audio/mpeg"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-range"), None);
    assert!(r.complete);
    assert_eq!(r.body, body);
}

#[test]
fn ranges_over_the_wire() {
    let body = body_1000();
    let server = TestServer::with([("/r", Resource::new(body.clone()))]);
    let url = server.url("/r");
    // (Range header, status, Content-Range, body slice)
    let cases: &[(&str, u16, Option<&str>, std::ops::Range<usize>)] = &[
        ("bytes=0-0", 206, Some("bytes 0-0/1000"), 0..1),
        ("bytes=100-199", 206, Some("bytes 100-199/1000"), 100..200),
        ("bytes=900-", 206, Some("bytes 900-999/1000"), 900..1000),
        ("bytes=-10", 206, Some("bytes 990-999/1000"), 990..1000),
        ("bytes=995-5000", 206, Some("bytes 995-999/1000"), 995..1000),
        ("bytes=1000-", 416, Some("bytes */1000"), 0..0),
        ("bytes=2000-3000", 416, Some("bytes */1000"), 0..0),
        ("bytes=-0", 416, Some("bytes */1000"), 0..0),
        ("bytes=9-3", 200, None, 0..1000),
        ("bytes=0-1, 4-5", 200, None, 0..1000),
    ];
    for (range, status, content_range, slice) in cases {
        let r = raw_request(&url, "GET", &[&format!("Range: {range}")]);
        assert_eq!(r.status, *status, "{range}");
        assert_eq!(r.header("content-range"), *content_range, "{range}");
        assert_eq!(
            r.header("content-length"),
            Some(slice.len().to_string().as_str()),
            "{range}"
        );
        assert_eq!(r.body, &body[slice.clone()], "{range}");
        assert!(r.complete, "{range}");
    }
    let seen = server.stats().ranges_for("/r");
    assert_eq!(seen.len(), cases.len());
    assert_eq!(seen[1].as_deref(), Some("bytes=100-199"));
}

#[test]
fn empty_body_range_is_416_and_plain_get_is_empty_200() {
    let server = TestServer::with([("/e", Resource::new(bytes::Bytes::new()))]);
    let r = raw_request(&server.url("/e"), "GET", &["Range: bytes=0-"]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */0"));
    let r = raw_request(&server.url("/e"), "GET", &[]);
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    assert!(r.body.is_empty());
}

#[test]
fn head_has_headers_and_no_body_and_keeps_the_plan() {
    let body = body_1000();
    let server = TestServer::with([(
        "/h",
        Resource::new(body.clone())
            .content_type("audio/flac")
            .then(Cut::DropAfter(10)),
    )]);
    let url = server.url("/h");
    let r = raw_request(&url, "HEAD", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(r.header("content-type"), Some("audio/flac"));
    assert!(r.body.is_empty());
    let r = raw_request(&url, "HEAD", &["Range: bytes=10-19"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(r.header("content-length"), Some("10"));
    // The HEADs did not consume the cut: the first GET still dies at 10 bytes.
    let r = raw_request(&url, "GET", &[]);
    assert!(!r.complete);
    assert_eq!(r.body, &body[..10]);
    let stats = server.stats();
    let methods: Vec<&str> = stats.log.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["HEAD", "HEAD", "GET"]);
    assert_eq!(stats.body_bytes_sent, 10);
}

#[test]
fn unknown_path_is_404_and_status_resources_answer_their_status() {
    let server = TestServer::with([("/boom", Resource::error(500, "boom"))]);
    let r = raw_request(&server.url("/nothing"), "GET", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"not found");
    let r = raw_request(&server.url("/boom"), "GET", &["Range: bytes=0-1"]);
    assert_eq!(r.status, 500);
    assert_eq!(r.body, b"boom");
    assert_eq!(r.header("content-range"), None);
    let r = raw_request(&server.url("/boom?x=1"), "GET", &[]);
    assert_eq!(r.status, 500, "the query is not part of the path");
    assert_eq!(server.stats().requests_for("/boom"), 2);
}

#[test]
fn ignore_range_answers_200_full() {
    let body = body_1000();
    let server = TestServer::with([("/i", Resource::new(body.clone()).ignore_range())]);
    let r = raw_request(&server.url("/i"), "GET", &["Range: bytes=100-199"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.header("accept-ranges"), None);
    assert_eq!(r.body, body);
}

#[test]
fn chunked_has_no_length_and_dechunks_intact() {
    let body = pseudo_random(300_000, 3);
    let server = TestServer::with([("/c", Resource::new(body.clone()).chunked())]);
    let r = raw_request(&server.url("/c"), "GET", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete);
    assert_eq!(r.body, body);
}

#[test]
fn html_error_page_is_200_text_html() {
    let server = TestServer::with([("/x", Resource::html_error_page())]);
    let r = raw_request(&server.url("/x"), "GET", &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.starts_with(b"<!DOCTYPE html>"));
}

#[test]
fn drop_plan_is_consumed_one_per_response() {
    let body = pseudo_random(4000, 9);
    let server = TestServer::with([(
        "/d",
        Resource::new(body.clone())
            .chunk_size(256)
            .then(Cut::DropAfter(1000))
            .then(Cut::Full)
            .then(Cut::DropAfter(0)),
    )]);
    let url = server.url("/d");
    let r = raw_request(&url, "GET", &[]);
    assert_eq!(r.header("content-length"), Some("4000"));
    assert!(!r.complete);
    assert_eq!(r.body, &body[..1000]);
    let r = raw_request(&url, "GET", &[]);
    assert!(r.complete);
    assert_eq!(r.body, body);
    // Counted from the start of this response's body (a 206 here).
    let r = raw_request(&url, "GET", &["Range: bytes=2000-"]);
    assert_eq!(r.status, 206);
    assert!(!r.complete);
    assert!(r.body.is_empty());
    // The plan is used up: full bodies from now on.
    for _ in 0..2 {
        let r = raw_request(&url, "GET", &[]);
        assert!(r.complete);
        assert_eq!(r.body, body);
    }
    // `always` applies once the plan is empty.
    server.add("/d", Resource::new(body.clone()).always(Cut::DropAfter(5)));
    for _ in 0..2 {
        let r = raw_request(&url, "GET", &[]);
        assert_eq!(r.body, &body[..5]);
        assert!(!r.complete);
    }
}

/// Reads until `want` body bytes arrived after the head, or panics after 5 s.
fn read_head_and(stream: &mut TcpStream, want: usize) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n")
            && raw.len() - (end + 4) >= want
        {
            return raw;
        }
        assert!(Instant::now() < deadline, "no data in time");
        match stream.read(&mut buf) {
            Ok(0) => panic!("server closed early"),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
}

fn send_get(server: &TestServer, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    s
}

#[test]
fn stall_keeps_connection_open_silently_until_the_client_leaves() {
    let body = pseudo_random(10_000, 1);
    let server = TestServer::with([("/s", Resource::new(body).then(Cut::StallAfter(100)))]);
    let mut s = send_get(&server, "/s");
    let raw = read_head_and(&mut s, 100);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert_eq!(
        raw.len() - (end + 4),
        100,
        "exactly the bytes before the stall"
    );
    // Nothing more arrives, and the connection stays open.
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    let err = s.read(&mut buf).expect_err("no bytes after the stall");
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    let stats = server.stats();
    assert_eq!((stats.open_connections, stats.in_flight), (1, 1));
    // The client leaves: the server notices and releases the request.
    drop(s);
    let stats = server
        .wait_blocking(WAIT, |s| s.open_connections == 0 && s.in_flight == 0)
        .expect("server saw the client leave");
    assert_eq!(stats.connections_closed, 1);
}

#[test]
fn throttle_and_delays_slow_the_answer_down() {
    let body = pseudo_random(20_000, 2);
    let server = TestServer::with([
        ("/t", Resource::new(body.clone()).throttle(100_000)),
        (
            "/hd",
            Resource::new(body.clone()).header_delay(Duration::from_millis(200)),
        ),
        (
            "/bd",
            Resource::new(body.clone()).body_delay(Duration::from_millis(200)),
        ),
    ]);
    for path in ["/t", "/hd", "/bd"] {
        let start = Instant::now();
        let r = raw_request(&server.url(path), "GET", &[]);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(180), "{path} took {took:?}");
        assert_eq!(r.body, body, "{path}");
    }
}

#[test]
fn body_delay_sends_headers_first() {
    let server = TestServer::with([(
        "/bd",
        Resource::new(pseudo_random(100, 1)).body_delay(Duration::from_millis(400)),
    )]);
    let mut s = send_get(&server, "/bd");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    let head_at = start.elapsed();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert_eq!(raw.len(), end + 4, "head arrives alone, before the body");
    let mut body = Vec::new();
    while body.len() < 100 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        body.extend_from_slice(&buf[..n]);
    }
    assert!(start.elapsed() >= head_at + Duration::from_millis(200));
}

#[test]
fn stats_count_connections_requests_and_ports() {
    let body = pseudo_random(50_000, 4);
    let server = TestServer::with([
        ("/a", Resource::new(body.clone())),
        ("/stall", Resource::new(body).always(Cut::StallAfter(10))),
    ]);
    for _ in 0..3 {
        raw_request(&server.url("/a"), "GET", &[]);
    }
    let stats = server
        .wait_blocking(WAIT, |s| s.connections_closed == 3)
        .unwrap();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.requests_for("/a"), 3);
    assert_eq!(
        stats.client_ports.len(),
        3,
        "one connection per raw request"
    );
    assert_eq!(stats.body_bytes_sent, 150_000);
    assert_eq!(stats.open_connections, 0);

    server.reset_stats();
    assert_eq!(server.stats().requests, 0);
    // Three concurrent stalled requests: three connections and three in flight.
    let held: Vec<TcpStream> = (0..3).map(|_| send_get(&server, "/stall")).collect();
    let stats = server
        .wait_blocking(WAIT, |s| s.in_flight == 3 && s.open_connections == 3)
        .unwrap();
    assert_eq!((stats.peak_in_flight, stats.peak_connections), (3, 3));
    assert_eq!(stats.requests_for("/stall"), 3);
    drop(held);
    let stats = server
        .wait_blocking(WAIT, |s| s.open_connections == 0 && s.in_flight == 0)
        .unwrap();
    assert_eq!(stats.peak_connections, 3);
    assert_eq!(stats.connections_closed, 3);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let body = pseudo_random(1000, 5);
    let server = TestServer::with([("/k", Resource::new(body))]);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    for _ in 0..3 {
        write!(s, "GET /k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        // Head plus exactly the 1000-byte body: nothing of the next response.
        let raw = read_head_and(&mut s, 1000);
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        assert_eq!(raw.len(), end + 4 + 1000);
    }
    let stats = server.stats();
    assert_eq!((stats.requests, stats.client_ports.len()), (3, 1));
}

#[test]
fn closed_port_refuses_and_black_hole_never_answers() {
    let url = closed_port_url("/x");
    assert_eq!(url.host_str(), Some("127.0.0.1"));
    let err = TcpStream::connect(("127.0.0.1", url.port().unwrap())).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    let hole = BlackHole::start();
    let url = hole.url("/x");
    let mut s = TcpStream::connect(("127.0.0.1", url.port().unwrap())).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(s.read(&mut buf).is_err(), "a black hole never answers");
    let deadline = Instant::now() + WAIT;
    while hole.accepted() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(hole.accepted(), 1);
}

#[test]
fn dropping_the_server_is_bounded_even_with_stalled_connections() {
    let server = TestServer::with([(
        "/s",
        Resource::new(pseudo_random(1000, 1)).always(Cut::StallAfter(1)),
    )]);
    let mut s = send_get(&server, "/s");
    let _ = read_head_and(&mut s, 1);
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // The connection is gone with the server.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
}

#[test]
fn test_data_is_deterministic_and_checksum_ignores_chunking() {
    let a = pseudo_random(100_003, 42);
    assert_eq!(a, pseudo_random(100_003, 42));
    assert!(a != pseudo_random(100_003, 43));
    assert_eq!(a.len(), 100_003);
    let whole = checksum(&a);
    for step in [1, 3, 7, 8, 4096, 100_003] {
        let mut c = Checksum::default();
        for chunk in a.chunks(step) {
            c.update(chunk);
        }
        assert_eq!(c.finish(), whole, "chunks of {step}");
        assert_eq!(c.len(), 100_003);
    }
    let mut b = a.to_vec();
    b[50_000] ^= 1;
    assert_ne!(checksum(&b), whole);
    assert_ne!(checksum(&a[..100_002]), whole);
}

#[test]
fn large_drop_delivers_exactly_the_bytes_before_the_cut() {
    let body = pseudo_random(4 << 20, 11);
    let server = TestServer::with([(
        "/big",
        Resource::new(body.clone())
            .chunk_size(64 * 1024)
            .then(Cut::DropAfter(1 << 20))
            .then(Cut::DropAfter(1_000_003)),
    )]);
    let r = raw_request(&server.url("/big"), "GET", &[]);
    assert!(!r.complete);
    assert_eq!(r.body.len(), 1 << 20);
    assert!(r.body == body[..1 << 20]);
    let r = raw_request(&server.url("/big"), "GET", &["Range: bytes=1048576-"]);
    assert_eq!(r.status, 206);
    assert!(!r.complete);
    assert_eq!(r.body.len(), 1_000_003);
    assert!(r.body == body[1 << 20..(1 << 20) + 1_000_003]);
    let r = raw_request(&server.url("/big"), "GET", &[]);
    assert!(r.complete && r.body == body);
}

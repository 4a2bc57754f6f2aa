//! What `SmolHttpClient` does beyond the conformance suite (which it passes
//! with the other backends): redirects, a pooled connection the server has
//! closed, `Connection: close`. Loopback servers only; every wait bounded.
#![cfg(feature = "smol-http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use kithara_stream::backends::smol::SmolRuntime;
use kithara_stream::backends::smol_http::SmolHttpClient;
use kithara_stream::net::{HttpClient, HttpRequest, NetError, RangeSpec, TransportKind};
use support::server::{Resource, TestServer, pseudo_random};

const LIMIT: Duration = Duration::from_secs(20);

/// Runs `fut` on smol, failing the test after [`LIMIT`].
fn run<T>(fut: impl std::future::Future<Output = T>) -> T {
    smol::block_on(kithara_stream::rt::timeout(
        &SmolRuntime::global(),
        LIMIT,
        fut,
    ))
    .expect("the test body finished in time")
}

/// Sends `request` and reads the whole body: `(status, body)`.
async fn get(client: &SmolHttpClient, request: HttpRequest) -> Result<(u16, Vec<u8>), NetError> {
    let response = client.send(request).await?;
    let status = response.status.as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

#[test]
fn follows_redirects_with_the_range_header() {
    let body = pseudo_random(10_000, 1);
    let server = TestServer::with([
        ("/a", Resource::error(302, "").header("location", "/b")),
        ("/b", Resource::error(301, "").header("location", "/target")),
        ("/target", Resource::new(body.clone())),
    ]);
    let client = SmolHttpClient::new().unwrap();
    let request =
        HttpRequest::get(server.url("/a")).with_range(RangeSpec::new(100, Some(199)).unwrap());
    let (status, got) = run(get(&client, request)).unwrap();
    assert_eq!(status, 206);
    assert_eq!(got, body[100..200]);
    assert_eq!(
        server.stats().ranges_for("/target"),
        [Some("bytes=100-199".to_owned())],
        "the Range header survives the redirects"
    );
}

#[test]
fn a_redirect_loop_is_a_typed_error() {
    let server = TestServer::with([(
        "/loop",
        Resource::error(302, "").header("location", "/loop"),
    )]);
    let client = SmolHttpClient::new().unwrap();
    match run(client.send(HttpRequest::get(server.url("/loop")))) {
        Err(NetError::Transport {
            kind: TransportKind::Other,
            message,
            ..
        }) => {
            assert!(message.contains("redirects"), "{message}");
        }
        other => panic!("expected a redirect error, got {other:?}"),
    }
    assert_eq!(
        server.stats().requests_for("/loop"),
        11,
        "the first request and 10 redirects"
    );
}

#[test]
fn connection_close_is_honoured_and_not_pooled() {
    let server = TestServer::with([(
        "/c",
        Resource::new(&b"bye"[..]).header("connection", "close"),
    )]);
    let client = SmolHttpClient::new().unwrap();
    for _ in 0..3 {
        let (_, got) = run(get(&client, HttpRequest::get(server.url("/c")))).unwrap();
        assert_eq!(got, b"bye");
    }
    assert_eq!(
        server.stats().client_ports.len(),
        3,
        "one connection per response"
    );
}

/// A raw server: each connection answers one keep-alive response, then the
/// server closes it (as a server does with an idle connection). The client
/// pools the first connection, finds it closed on the second request, and
/// sends that request again on a fresh one.
#[test]
fn a_pooled_connection_closed_by_the_server_is_replaced() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (socket, _) = listener.accept().unwrap();
            socket.set_read_timeout(Some(LIMIT)).unwrap();
            let mut reader = BufReader::new(socket.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let mut socket = socket;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            // Dropped here: closed after the answer.
        }
    });
    let client = SmolHttpClient::new().unwrap();
    let url = kithara_stream::url::Url::parse(&format!("http://{addr}/x")).unwrap();
    let (_, first) = run(get(&client, HttpRequest::get(url.clone()))).unwrap();
    assert_eq!(first, b"ok");
    // Let the close reach the client's socket.
    std::thread::sleep(Duration::from_millis(100));
    let (_, second) = run(get(&client, HttpRequest::get(url))).unwrap();
    assert_eq!(second, b"ok");
    server.join().unwrap();
}

/// A loopback TLS server (futures-rustls, a self-signed certificate for
/// `localhost`) that accepts up to `connections` connections and answers
/// up to `requests` GETs on them, then ends; returns its port, the
/// certificate, and the thread, which yields the connections it accepted.
fn tls_server(
    connections: usize,
    requests: usize,
) -> (
    u16,
    rustls::pki_types::CertificateDer<'static>,
    std::thread::JoinHandle<usize>,
) {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = key.cert.der().clone();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], private)
        .unwrap();
    let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let serve = async {
            let (mut answered, mut accepted) = (0, 0);
            while answered < requests && accepted < connections {
                let (tcp, _) = listener.accept().await.unwrap();
                accepted += 1;
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue; // a client that rejected the certificate
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while answered < requests && tls.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                    if head.ends_with(b"\r\n\r\n") {
                        head.clear();
                        tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                            .await
                            .unwrap();
                        tls.flush().await.unwrap();
                        answered += 1;
                    }
                }
            }
            accepted
        };
        smol::block_on(kithara_stream::rt::timeout(
            &SmolRuntime::global(),
            LIMIT,
            serve,
        ))
        .expect("the TLS server finished in time")
    });
    (port, cert, server)
}

#[test]
fn https_through_rustls_reuses_its_connection() {
    let (port, cert, server) = tls_server(2, 2);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = SmolHttpClient::with_tls_config(Arc::new(config));
    let url = kithara_stream::url::Url::parse(&format!("https://localhost:{port}/x")).unwrap();
    for _ in 0..2 {
        let (status, body) = run(get(&client, HttpRequest::get(url.clone()))).unwrap();
        assert_eq!((status, &body[..]), (200, &b"hello"[..]));
    }
    assert_eq!(
        server.join().unwrap(),
        1,
        "both requests on one TLS connection"
    );
}

#[test]
fn an_untrusted_certificate_is_a_connect_error() {
    let (port, _cert, server) = tls_server(1, 1);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let client = SmolHttpClient::with_tls_config(Arc::new(config));
    let url = kithara_stream::url::Url::parse(&format!("https://localhost:{port}/x")).unwrap();
    match run(client.send(HttpRequest::get(url.clone()))) {
        Err(NetError::Transport {
            kind: TransportKind::Connect,
            message,
            ..
        }) => {
            assert!(message.to_lowercase().contains("certificate"), "{message}");
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert_eq!(server.join().unwrap(), 1);
}

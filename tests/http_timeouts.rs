//! No client holds a connection open for free: headers sent too slowly, a keep-alive connection
//! left idle, and a body trickled in are each cut off after their timeout.

#[path = "support/served.rs"]
mod served;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ecny::server::connections::Timeouts;
use ecny::server::ServerConfig;
use served::Served;

const TIMEOUT_MS: u64 = 300;
/// Far beyond the server's timeout: a connection still open then was never going to close.
const CLIENT_PATIENCE_MS: u64 = 10_000;

fn serve_with_short_timeouts() -> Served {
    Served::configured(ServerConfig {
        timeouts: Timeouts {
            header_read_ms: TIMEOUT_MS,
            body_read_ms: TIMEOUT_MS,
        },
        ..ServerConfig::default()
    })
}

fn connect(served: &Served) -> TcpStream {
    let stream = TcpStream::connect(served.server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(CLIENT_PATIENCE_MS)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; what it sent, and how long that took.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!(
            "the server kept the connection open for {:?} ({error})",
            started.elapsed()
        ),
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn headers_that_never_finish_are_cut_off() {
    let served = serve_with_short_timeouts();
    let mut stream = connect(&served);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, waited) = read_until_closed(&mut stream);
    assert!(
        waited >= Duration::from_millis(TIMEOUT_MS / 2),
        "{waited:?}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let served = serve_with_short_timeouts();
    let mut stream = connect(&served);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answered, _) = read_until_closed(&mut stream);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.contains("\"status\""), "{answered}");
}

#[test]
fn a_body_trickled_in_is_refused_and_the_connection_closed() {
    let served = serve_with_short_timeouts();
    let mut stream = connect(&served);
    // A holder's payment: the signature in the body is its authority, so no bearer token.
    let head = "POST /v1/payments HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nIdempotency-Key: 0123456789abcdef\r\n\
         Content-Length: 100\r\n\r\n{\"payer\"";
    stream.write_all(head.as_bytes()).unwrap();
    let (answered, waited) = read_until_closed(&mut stream);
    assert!(answered.starts_with("HTTP/1.1 400"), "{answered}");
    assert!(
        answered.contains("did not arrive within 300 ms"),
        "{answered}"
    );
    assert!(
        waited >= Duration::from_millis(TIMEOUT_MS / 2),
        "{waited:?}"
    );
}

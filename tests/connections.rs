//! Black-box tests of connection hygiene: the real `warden serve` on loopback, with raw
//! sockets that connect and say nothing, speak only HTTP/2 preface and PINGs, or send a
//! request head a byte at a time; a connection limit per port; and a low open-files limit
//! with hundreds of idle connections.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::grpc::pb;
use warden::grpc::pb::authorizer_client::AuthorizerClient;

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;
use server::*;

const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
const ORDER: &str = "arn:aws:orders:us-east-1:333333333333:order/42";

/// The client connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
/// A PING frame (type 6, length 8) on stream 0.
const H2_PING: &[u8] = b"\0\0\x08\x06\0\0\0\0\0pingping";

// === the server under test ===

/// The shipped server, not watching its bundle (nothing here edits it).
fn serve(extra: &[&str]) -> Server {
    serve_with_open_files(None, extra)
}

fn serve_with_open_files(nofile: Option<u32>, extra: &[&str]) -> Server {
    Server::start_with_open_files(nofile, &[&["--watch", "false"], extra].concat())
}

// === helpers ===

/// Whether the server closes the connection within [`PATIENCE`]: the client reads (and
/// discards) whatever comes until end-of-file or a reset.
async fn closed_by_server(mut s: impl AsyncRead + Unpin) -> bool {
    let read_all = async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("reading: {e}"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all).await.is_ok()
}

fn ask(principal: &str, action: &str, resource: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        principal: principal.into(),
        action: action.into(),
        resource: resource.into(),
        ..Default::default()
    }
}

/// One Authorize call, bounded by [`PATIENCE`]: the decision, or why there was none.
async fn try_authorize(server: &Server) -> Result<pb::Decision, String> {
    let call = async {
        let channel = warden::grpc::client::connect(&server.grpc, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        let r = AuthorizerClient::new(channel)
            .authorize(ask(ALICE, "orders:GetOrder", ORDER))
            .await
            .map_err(|e| e.to_string())?;
        Ok(r.into_inner().decision())
    };
    tokio::time::timeout(PATIENCE, call)
        .await
        .unwrap_or_else(|_| Err("no answer in time".to_owned()))
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_on_both_ports_and_the_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("warden.sock");
    let unix = serve(&[
        "--grpc-addr",
        &format!("unix:{}", socket.display()),
        "--idle-timeout",
        "300ms",
    ]);
    let server = serve(&["--idle-timeout", "300ms", "--header-read-timeout", "300ms"]);
    let grpc = TcpStream::connect(&server.grpc).await.unwrap();
    let admin = TcpStream::connect(&server.admin).await.unwrap();
    let local = tokio::net::UnixStream::connect(&socket).await.unwrap();
    assert!(closed_by_server(grpc).await, "the gRPC port kept it");
    assert!(closed_by_server(admin).await, "the admin port kept it");
    assert!(closed_by_server(local).await, "the Unix socket kept it");
    let idle = r#"warden_connections_idle_closed_total{port="grpc"}"#;
    server.until_metric(idle, |n| n == 1.0).await;
    // At least: a scrape that stalls past the timeout on a loaded machine counts too.
    let idle = r#"warden_connections_idle_closed_total{port="admin"}"#;
    server.until_metric(idle, |n| n >= 1.0).await;
    unix.until_metric(r#"warden_connections_open{port="grpc"}"#, |n| n == 0.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_without_requests_is_idle_even_with_pings_but_a_calling_client_stays() {
    // A second: long beside the pauses of a loaded machine, short beside the test.
    let server = serve(&["--idle-timeout", "1s"]);

    let mut preface_only = TcpStream::connect(&server.grpc).await.unwrap();
    preface_only.write_all(H2_PREFACE).await.unwrap();
    assert!(closed_by_server(preface_only).await, "preface and nothing");

    // PINGs every 100 ms: the server answers each, and still closes the connection.
    let pinging = TcpStream::connect(&server.grpc).await.unwrap();
    let (reader, mut writer) = pinging.into_split();
    writer.write_all(H2_PREFACE).await.unwrap();
    let pinger = tokio::spawn(async move {
        while writer.write_all(H2_PING).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(closed_by_server(reader).await, "PINGs kept it open");
    pinger.abort();

    let idle = r#"warden_connections_idle_closed_total{port="grpc"}"#;
    let before = server.until_metric(idle, |n| n == 2.0).await;
    // A client calling every 100 ms keeps its one connection for 3 s, three idle timeouts.
    let mut client = server.client().await;
    for _ in 0..30 {
        let r = client
            .authorize(ask(ALICE, "orders:GetOrder", ORDER))
            .await
            .unwrap();
        assert_eq!(r.into_inner().decision(), pb::Decision::Allow);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.metrics().await.get(idle),
        before,
        "a busy client was cut"
    );
    // Once quiet, its connection goes too.
    server.until_metric(idle, |n| n == before + 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_keepalive_ping_closes_a_connection_without_idle_timeout() {
    let server = serve(&[
        "--idle-timeout",
        "0",
        "--keepalive-interval",
        "200ms",
        "--keepalive-timeout",
        "200ms",
    ]);
    // The peer completes the handshake, then answers nothing, as a vanished host would.
    let mut s = TcpStream::connect(&server.grpc).await.unwrap();
    s.write_all(H2_PREFACE).await.unwrap();
    assert!(closed_by_server(s).await, "no keepalive");
    let idle = r#"warden_connections_idle_closed_total{port="grpc"}"#;
    assert_eq!(server.metrics().await.get(idle), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_closes_a_slowloris_and_a_quiet_keep_alive_connection() {
    let server = serve(&["--header-read-timeout", "300ms"]);

    // A header byte every 100 ms: never a whole head.
    let slow = TcpStream::connect(&server.admin).await.unwrap();
    let (reader, mut writer) = slow.into_split();
    let dribble = tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nHost: warden\r\nX-Slow: ";
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(closed_by_server(reader).await, "the slowloris kept it");
    dribble.abort();

    // hyper's header-read timeout also runs between requests on a kept-alive connection.
    let mut kept = TcpStream::connect(&server.admin).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: warden\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.ends_with(b"\r\n\r\nok\n") {
        let n = kept.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{seen:?}");
    assert!(
        closed_by_server(kept).await,
        "the kept-alive connection stayed"
    );

    let idle = r#"warden_connections_idle_closed_total{port="admin"}"#;
    server.until_metric(idle, |n| n >= 2.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limit_new_connections_are_closed_at_once_and_counted() {
    let server = serve(&[
        "--max-connections",
        "2",
        "--admin-max-connections",
        "2",
        "--idle-timeout",
        "60s",
        "--header-read-timeout",
        "60s",
    ]);

    // The admin port first, before any scrape: two silent connections fill it. The
    // listener accepts in connection order, so the third is judged with both open.
    let held = [
        TcpStream::connect(&server.admin).await.unwrap(),
        TcpStream::connect(&server.admin).await.unwrap(),
    ];
    let third = TcpStream::connect(&server.admin).await.unwrap();
    assert!(closed_by_server(third).await, "the admin port took a third");
    drop(held);
    let refused = r#"warden_connections_refused_total{port="admin"}"#;
    assert!(server.metrics().await.get(refused) >= 1.0);

    let open = r#"warden_connections_open{port="grpc"}"#;
    let first = TcpStream::connect(&server.grpc).await.unwrap();
    let _second = TcpStream::connect(&server.grpc).await.unwrap();
    server.until_metric(open, |n| n == 2.0).await;
    let third = TcpStream::connect(&server.grpc).await.unwrap();
    assert!(closed_by_server(third).await, "the gRPC port took a third");
    let refused = r#"warden_connections_refused_total{port="grpc"}"#;
    assert_eq!(server.metrics().await.get(refused), 1.0);
    assert_eq!(server.metrics().await.get(open), 2.0);

    // A freed slot takes a client again.
    drop(first);
    server.until_metric(open, |n| n == 1.0).await;
    assert_eq!(try_authorize(&server).await, Ok(pb::Decision::Allow));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_open_files_limit_idle_connections_give_way_to_calls() {
    // 256 descriptors, fewer than the 300 silent connections below: accepts fail with
    // EMFILE until idle connections time out.
    let server = serve_with_open_files(Some(256), &["--idle-timeout", "2s"]);
    assert!(
        server.stderr().contains("lower `--max-connections`"),
        "no open-files warning:\n{}",
        server.stderr()
    );
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(TcpStream::connect(&server.grpc).await.unwrap());
    }
    // A caller retries, as gRPC clients do, within a bounded time.
    let give_up = tokio::time::Instant::now() + PATIENCE * 2;
    let mut last = Err(String::new());
    while tokio::time::Instant::now() < give_up {
        last = try_authorize(&server).await;
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last, Ok(pb::Decision::Allow), "{}", server.stderr());
    // The server keeps serving, said why it could not accept, and closed every silent one.
    assert_eq!(try_authorize(&server).await, Ok(pb::Decision::Allow));
    let m = server.metrics().await;
    assert!(m.get(r#"warden_connections_accept_errors_total{port="grpc"}"#) >= 1.0);
    assert!(server.stderr().contains("cannot accept a connection"));
    for s in silent {
        assert!(closed_by_server(s).await);
    }
}

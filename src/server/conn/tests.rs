//! The connection machinery in paused time: the limit, the idle timeout against requests
//! in flight and against bytes that are not requests, and the start-up warning.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use super::*;

const IDLE: Duration = Duration::from_secs(10);

fn gate(max: usize) -> Arc<Gate> {
    Gate::new("test", max, &PortMetrics::noop())
}

/// A connection with the idle timeout, and the peer's end of it.
fn conn() -> (Conn<DuplexStream>, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(1024);
    let slot = gate(1).admit().unwrap();
    (Conn::new(ours, slot, Some(IDLE)), theirs)
}

/// Reads until end-of-file, returning the bytes read.
async fn read_to_eof(conn: &mut Conn<DuplexStream>) -> usize {
    let mut total = 0;
    let mut buf = [0u8; 64];
    loop {
        match conn.read(&mut buf).await.unwrap() {
            0 => return total,
            n => total += n,
        }
    }
}

#[test]
fn the_gate_refuses_beyond_its_limit_and_frees_a_slot_on_drop() {
    let g = gate(2);
    let a = g.admit().unwrap();
    let _b = g.admit().unwrap();
    assert!(g.admit().is_none());
    drop(a);
    assert!(g.admit().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_connection_with_no_request_reads_end_of_file_after_the_idle_timeout() {
    let (mut conn, _peer) = conn();
    let start = Instant::now();
    assert_eq!(read_to_eof(&mut conn).await, 0);
    let waited = start.elapsed();
    assert!(waited >= IDLE && waited < IDLE * 2, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_holds_the_connection_and_idleness_counts_from_its_end() {
    let (mut conn, _peer) = conn();
    let request = conn.activity.begin();
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(IDLE * 5, conn.read(&mut buf)).await;
    assert!(read.is_err(), "closed with a request in flight: {read:?}");
    drop(request);
    let ended = Instant::now();
    assert_eq!(read_to_eof(&mut conn).await, 0);
    let waited = ended.elapsed();
    assert!(waited >= IDLE && waited < IDLE * 3, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn bytes_that_start_no_request_do_not_keep_the_connection_open() {
    let (mut conn, mut peer) = conn();
    // The peer sends something (a PING, say) every tenth of the idle timeout, forever.
    let pinger = tokio::spawn(async move {
        while peer.write_all(b"ping").await.is_ok() {
            tokio::time::sleep(IDLE / 10).await;
        }
    });
    let start = Instant::now();
    let read = read_to_eof(&mut conn).await;
    assert!(read > 0);
    let waited = start.elapsed();
    assert!(waited >= IDLE && waited < IDLE * 2, "{waited:?}");
    pinger.abort();
}

#[tokio::test(start_paused = true)]
async fn without_an_idle_timeout_a_connection_stays_open() {
    let (ours, _theirs) = tokio::io::duplex(64);
    let mut conn = Conn::new(ours, gate(1).admit().unwrap(), None);
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(IDLE * 100, conn.read(&mut buf)).await;
    assert!(read.is_err(), "{read:?}");
}

#[tokio::test(start_paused = true)]
async fn warnings_are_let_through_once_per_period_with_a_count_of_the_rest() {
    let mut every = Every::new(Duration::from_secs(5));
    assert_eq!(every.ready(), Some(0));
    assert_eq!(every.ready(), None);
    assert_eq!(every.ready(), None);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(every.ready(), Some(2));
}

#[test]
fn the_open_files_warning_names_the_flag_and_what_fits() {
    let config = Config {
        max_grpc: 512,
        max_admin: 64,
        idle_timeout: None,
        keepalive_interval: None,
        keepalive_timeout: Duration::from_secs(1),
        header_read_timeout: None,
    };
    let check = |limit: Option<u64>, admin: bool, expect: Option<&str>| {
        assert_eq!(
            open_files_warning(limit, &config, admin).as_deref(),
            expect,
            "limit {limit:?}, admin {admin}"
        );
    };
    check(None, true, None);
    check(Some(1024), true, None);
    check(Some(640), true, None);
    check(
        Some(639),
        true,
        Some(
            "the open-files limit of 639 is below the 640 descriptors the connection limits \
             may take (512 gRPC + 64 admin + 64 for the rest of the process): lower \
             `--max-connections` to 511 or raise the limit (`ulimit -n`)",
        ),
    );
    check(Some(600), false, None);
    check(
        Some(100),
        true,
        Some(
            "the open-files limit of 100 is below the 640 descriptors the connection limits \
             may take (512 gRPC + 64 admin + 64 for the rest of the process): raise the \
             limit (`ulimit -n`), or lower `--admin-max-connections` and `--max-connections`",
        ),
    );
}

/// A socket that counts the writes made to it, vectored like a TCP stream's.
struct Counting {
    io: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = Pin::into_inner(self);
        this.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = Pin::into_inner(self);
        this.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).io).poll_shutdown(cx)
    }
}

/// HTTP/2 over a connection: 64 requests at once, each answered as gRPC answers (headers,
/// a 300-byte body, trailers). Returns the writes the server's side made, the handshake's
/// included.
async fn writes_for_answers<T>(wrap: impl FnOnce(Counting) -> T) -> usize
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    const REQUESTS: usize = 64;
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let io = wrap(Counting {
        io: ours,
        writes: writes.clone(),
    });
    let server = tokio::spawn(async move {
        let mut connection = h2::server::handshake(io).await.unwrap();
        // Every request first, as a busy connection reads them, then every answer.
        let mut pending = Vec::new();
        while pending.len() < REQUESTS {
            let (_request, respond) = connection.accept().await.unwrap().unwrap();
            pending.push(respond);
        }
        for mut respond in pending {
            let mut stream = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            stream
                .send_data(prost::bytes::Bytes::from(vec![7u8; 300]), false)
                .unwrap();
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            stream.send_trailers(trailers).unwrap();
        }
        // Let the answers out until the client hangs up.
        std::future::poll_fn(|cx| connection.poll_closed(cx))
            .await
            .ok();
    });
    let (client, connection) = h2::client::handshake(theirs).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut responses = Vec::new();
    for _ in 0..REQUESTS {
        let request = http::Request::post("http://warden/x").body(()).unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        responses.push(response);
        client = client.ready().await.unwrap();
    }
    for response in responses {
        let mut body = response.await.unwrap().into_body();
        while let Some(data) = body.data().await {
            data.unwrap();
        }
        body.trailers().await.unwrap();
    }
    drop(client);
    server.await.unwrap();
    writes.load(Ordering::Relaxed)
}

#[tokio::test]
async fn answers_share_writes_where_a_vectored_socket_writes_each_on_its_own() {
    // The socket as it is: h2 flushes at each 300-byte body (67 writes here).
    let vectored = writes_for_answers(|io| io).await;
    // Through `Conn` (and `Unvectored`, the baseline's), answers are copied and batched
    // (4 writes here).
    let through_conn = writes_for_answers(|io| {
        let slot = gate(1).admit().unwrap();
        Conn::new(io, slot, None)
    })
    .await;
    let unvectored = writes_for_answers(Unvectored).await;
    assert!(vectored >= 64, "{vectored}");
    assert!(through_conn < 16, "{through_conn} writes for 64 answers");
    assert!(unvectored < 16, "{unvectored} writes for 64 answers");
}

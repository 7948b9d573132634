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

//! The admin port (HTTP/1.1): `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (a snapshot is serving; the body shows its revision, its bundle's
//! digest, the source and its watch, and the last load error). It never decides anything.
//! Each connection is served by hyper with a header-read timeout, under the port's own
//! connection limit.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::server::conn::{Acceptor, Tcp};
use crate::source::{LoadStatus, Published};
use crate::telemetry::Telemetry;

#[derive(Clone)]
struct Admin {
    published: Arc<Published>,
    telemetry: Arc<Telemetry>,
}

/// The admin routes.
pub fn router(published: Arc<Published>, telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Admin {
            published,
            telemetry,
        })
}

/// Serves `app` on the connections `acceptor` admits until `stop`, then stops accepting
/// and waits up to `drain` for the requests in flight.
///
/// `axum::serve` sets no header-read timeout, so this serves each connection with hyper
/// itself. hyper's `header_read_timeout` runs whenever it waits for a request head: from
/// the connection's start, and again from the end of each response on a kept-alive
/// connection. It therefore closes a connection that sends nothing, a slowloris, and a
/// keep-alive connection idle between requests alike; the admin port needs no other idle
/// timeout (`tests/connections.rs` pins all three).
pub async fn serve(
    mut acceptor: Acceptor<Tcp>,
    app: Router,
    header_read_timeout: Option<Duration>,
    stop: CancellationToken,
    drain: Duration,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper enforces the timeout only with a timer.
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let idle_closed = acceptor.gate().metrics().idle_closed.clone();
    loop {
        let conn = tokio::select! {
            () = stop.cancelled() => break,
            conn = acceptor.accept() => conn,
        };
        let served = graceful.watch(
            http.serve_connection(TokioIo::new(conn), TowerToHyperService::new(app.clone())),
        );
        let idle_closed = idle_closed.clone();
        tokio::spawn(async move {
            if let Err(e) = served.await {
                if e.is_timeout() {
                    idle_closed.increment(1);
                }
                tracing::debug!("admin connection ended: {e}");
            }
        });
    }
    // Closes the listening socket, so new connections are refused rather than queued.
    drop(acceptor);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("admin requests still in flight after {drain:?}: stopping anyway");
    }
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(loaded) = admin.published.status().loaded_at {
        admin
            .telemetry
            .metrics
            .snapshot_age
            .set(now.saturating_sub(loaded) as f64);
    }
    let mut text = admin.telemetry.render();
    if let Some(snapshot) = admin.published.current() {
        // An info series written here rather than kept by the recorder: a gauge per digest
        // would leave one stale series behind for every bundle ever served.
        let _ = write!(
            text,
            "# HELP warden_bundle_info The serving snapshot: its revision and its bundle's \
             content digest (equal on every sidecar serving the same files)\n\
             # TYPE warden_bundle_info gauge\n\
             warden_bundle_info{{revision=\"{}\",digest=\"{}\"}} 1\n",
            snapshot.revision(),
            snapshot.digest()
        );
    }
    if let Some(contact) = admin.published.contact() {
        source_metrics(&mut text, contact);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A remote source's contact with its store (etcd), written here rather than kept by the
/// recorder: a server with a directory source has no such series at all, instead of a
/// `warden_source_connected 0` that would look like an outage.
fn source_metrics(text: &mut String, contact: &crate::source::Contact) {
    let fresh = contact.freshness();
    let age = fresh
        .last_contact_seconds
        .map_or_else(|| "+Inf".to_owned(), |s| s.to_string());
    let _ = write!(
        text,
        "# HELP warden_source_connected 1 while the source (etcd) has a watch open\n\
         # TYPE warden_source_connected gauge\n\
         warden_source_connected {}\n\
         # HELP warden_source_from_cache 1 while the serving bundle came from the local \
         cache (`--etcd-cache`) and etcd has not answered since\n\
         # TYPE warden_source_from_cache gauge\n\
         warden_source_from_cache {}\n\
         # HELP warden_source_stale 1 while the source (etcd) has not been heard from \
         recently: the serving snapshot may be behind\n\
         # TYPE warden_source_stale gauge\n\
         warden_source_stale {}\n\
         # HELP warden_source_last_contact_seconds Seconds since the source (etcd) last \
         answered (a read, a change, a progress notification)\n\
         # TYPE warden_source_last_contact_seconds gauge\n\
         warden_source_last_contact_seconds {age}\n\
         # HELP warden_source_revision The highest revision the source (etcd) said it was at\n\
         # TYPE warden_source_revision gauge\n\
         warden_source_revision {}\n\
         # HELP warden_source_resyncs_total Whole reads of the source (etcd) instead of \
         following its changes, by reason\n\
         # TYPE warden_source_resyncs_total counter\n",
        u8::from(fresh.connected),
        u8::from(fresh.from_cache),
        u8::from(fresh.stale),
        fresh.source_revision,
    );
    for (why, n) in crate::source::Resync::ALL.iter().zip(contact.resyncs()) {
        let _ = writeln!(
            text,
            "warden_source_resyncs_total{{reason=\"{}\"}} {n}",
            why.as_str()
        );
    }
}

/// The body of `/readyz`.
#[derive(Serialize)]
struct Readiness {
    ready: bool,
    #[serde(flatten)]
    status: LoadStatus,
    /// A remote source's freshness (`stale`, `connected`, `last_contact_seconds`,
    /// `source_revision`); absent for a local source.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    freshness: Option<crate::source::Freshness>,
}

async fn readyz(State(admin): State<Admin>) -> Response {
    let status = admin.published.status();
    // Ready while any snapshot serves: a later failed load is reported, not fatal, since
    // the serving snapshot is still correct and taking every sidecar out of service over
    // one bad push would turn a policy typo into an outage.
    //
    // A stale remote source (etcd unreachable) stays ready for the same reason: the sidecar
    // answers from its last snapshot, and an etcd outage must not pull every sidecar out of
    // service at once. Readiness says `stale` with the age; a sidecar that never loaded a
    // bundle stays unready.
    let ready = status.revision.is_some();
    let freshness = admin.published.contact().map(|c| c.freshness());
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(Readiness {
            ready,
            status,
            freshness,
        }),
    )
        .into_response()
}

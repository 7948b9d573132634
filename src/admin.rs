//! The admin port (HTTP): `/metrics` (Prometheus text), `/healthz` (the process answers)
//! and `/readyz` (a snapshot is serving; the body shows its revision and the last load
//! error). It never decides anything.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        admin.telemetry.render(),
    )
        .into_response()
}

/// The body of `/readyz`.
#[derive(Serialize)]
struct Readiness {
    ready: bool,
    #[serde(flatten)]
    status: LoadStatus,
}

async fn readyz(State(admin): State<Admin>) -> Response {
    let status = admin.published.status();
    // Ready while any snapshot serves: a later failed load is reported, not fatal, since
    // the serving snapshot is still correct and taking every sidecar out of service over
    // one bad push would turn a policy typo into an outage.
    let ready = status.revision.is_some();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(Readiness { ready, status })).into_response()
}

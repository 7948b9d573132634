//! A driver for valgrind: the whole request path of the service, per request, on the
//! synthetic requests of `benches/authorize.rs` — admission, bounds, screening, validation,
//! the snapshot, the catalog, principal resolution, evaluation, metrics — with `handle` as
//! the one function to count and the cache off, so that every request is evaluated:
//!
//! ```text
//! cargo bench --bench service_misses --no-run
//! valgrind --tool=callgrind --toggle-collect='service_misses::handle' \
//!     target/release/deps/service_misses-HASH 1000
//! ```
//!
//! Divide the total by 10,000. The request is built before the counted call, as a face
//! builds it while decoding, and dropped inside it, as the face's is.
//!
//! With `WARDEN_BENCH_DECISION_LOG=FILE` (such as `/dev/null`) the service also logs every
//! decision there: the request path's part of the log (the record built and queued; the
//! writer's thread is not counted) is then in the total.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use warden::bench::synth::{self, Spec};
use warden::bundle;
use warden::caller::Caller;
use warden::context::Context;
use warden::eval::Decision;
use warden::service::{Item, Limits, Request, Service, ServiceConfig, Shape};
use warden::snapshot::Snapshot;

fn main() {
    let statements: usize = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .next()
        .unwrap_or(1_000);
    let org = synth::generate(Spec {
        statements,
        requests: 10_000,
        seed: 1,
    })
    .expect("generate");
    let snapshot = Snapshot::compile(
        &bundle::load_files(&org.files).expect("the bundle loads"),
        1,
    );
    let config = ServiceConfig {
        cache_size: 0,
        limits: Limits::default(),
    };
    let service = match std::env::var_os("WARDEN_BENCH_DECISION_LOG") {
        None => Service::serving(snapshot, config),
        Some(path) => {
            let published = std::sync::Arc::new(warden::source::Published::new());
            let telemetry = std::sync::Arc::new(warden::telemetry::Telemetry::new());
            published.publish(snapshot, &telemetry.metrics);
            let sink = warden::telemetry::LogSink::File(path.into());
            let log = warden::telemetry::DecisionLog::start(&sink, 1 << 20, &telemetry.metrics)
                .expect("the decision log opens");
            Service::new(published, telemetry, Some(log), config)
        }
    };
    let mut allows = 0usize;
    for r in &org.requests {
        let request = black_box(Request {
            caller: Caller::Asserted(r.principal.clone()),
            // Sorted, as a face's decoder builds it.
            context: Context::from_entries(
                r.context_keys()
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.clone()))
                    .collect(),
            )
            .expect("distinct keys"),
            items: vec![Item {
                action: r.action.clone(),
                resource: r.resource.clone(),
                context: Context::new(),
            }],
            min_revision: 0,
            explain: false,
            shape: Shape::One,
            face: warden::telemetry::Face::Authorize,
            snapshot: None,
        });
        if handle(&service, request) {
            allows += 1;
        }
    }
    println!(
        "{statements} statements: {allows} of {} requests allowed",
        org.requests.len()
    );
}

/// The function valgrind counts. The service's future never waits without a
/// `min_revision`, so it is polled once, without a runtime around it.
#[inline(never)]
fn handle(service: &Service, request: Request) -> bool {
    let mut future = pin!(service.handle(|_| Ok(request)));
    match future
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(answer) => answer
            .expect("a synthetic request is decided")
            .decisions
            .first()
            .is_some_and(|d| d.outcome.decision == Decision::Allow),
        Poll::Pending => panic!("the service waited with no minimum revision"),
    }
}

//! Envoy's `Check` against `Authorize` on the same question, in process: the two tonic
//! handlers called directly (no transport), each from the request's bytes to the encoded
//! response, over the example organization (`examples/org`) with the server's cache on.
//! A driver for valgrind, with one function to count per face, and a wall-clock figure per
//! request (median of 9 batches) when run without valgrind:
//!
//! ```text
//! cargo bench --bench check --no-run
//! valgrind --tool=callgrind --toggle-collect='check::check_one' \
//!     target/release/deps/check-HASH mtls 10000        # or `token`
//! valgrind --tool=callgrind --toggle-collect='check::authorize_one' \
//!     target/release/deps/check-HASH authorize 10000   # or `authorize-web` (token's session)
//! target/release/deps/check-HASH all 100000            # ns per request, each face
//! ```
//!
//! Divide the total by the count. The question: `GET /orders/42` from an mTLS peer
//! (`spiffe://cluster.local/ns/shop/sa/app-runtime`, the session `shop.app-runtime` of
//! `role/service/app-runtime`) or with a demo bearer token (`sub` = `alice`), against
//! Authorize of that session's ARN on `orders:GetOrder`, `order/42`, with the context keys
//! the Check face fills (`aws:SourceIp`, `aws:SecureTransport`, `aws:UserAgent`). Add
//! `--no-cache` to evaluate every request.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

/// The binary's allocator (`src/main.rs`), so that the counts are the served ones: under
/// glibc's malloc the allocations were a quarter of a Check's instructions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use prost::Message;
use prost::bytes::Bytes;
use warden::context::Context;
use warden::grpc::check::server::authorization_server::Authorization as _;
use warden::grpc::client::{self, HttpAsk};
use warden::grpc::server::authorizer_server::Authorizer as _;
use warden::grpc::wire::{AuthorizeBytes, CheckBytes};
use warden::oidc::Verifier;
use warden::oidc::mint::SigningKey;
use warden::service::{Limits, Service, ServiceConfig};
use warden::snapshot::Snapshot;
use warden::source::Published;
use warden::telemetry::Telemetry;

const MTLS_SESSION: &str = "arn:aws:sts::333333333333:assumed-role/app-runtime/shop.app-runtime";
const WEB_SESSION: &str = "arn:aws:sts::333333333333:assumed-role/app-runtime/alice";
const USER_AGENT: &str = "wrk";

struct Faces {
    check: warden::grpc::check::Authorization,
    authorize: warden::grpc::Authorizer,
}

fn faces(cache_size: usize) -> Faces {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = warden::bundle::load_dir(&root.join("examples/org")).expect("the bundle loads");
    let published = Arc::new(Published::new());
    let telemetry = Arc::new(Telemetry::new());
    published.publish(Snapshot::compile(&bundle, 1), &telemetry.metrics);
    let service = Arc::new(Service::new(
        published.clone(),
        telemetry,
        None,
        ServiceConfig {
            cache_size,
            limits: Limits::default(),
        },
    ));
    let verifier = Arc::new(Verifier::new(published));
    let checker = Arc::new(warden::ext_authz::Checker::new(service.clone(), verifier));
    Faces {
        check: warden::grpc::check::Authorization::new(checker),
        authorize: warden::grpc::Authorizer::new(service),
    }
}

/// A demo token as `warden token --key examples/demo-oidc/signing-key.pem --sub alice
/// --aud orders` mints it.
fn token() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read(root.join("examples/demo-oidc/signing-key.pem")).expect("the key");
    let key = SigningKey::from_pem(&pem).expect("a signing key");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    key.sign(&serde_json::json!({
        "iss": "https://demo.warden.invalid", "sub": "alice", "aud": "orders",
        "iat": now, "exp": now + 3600,
    }))
    .expect("signed")
}

fn check_bytes(token: Option<&str>) -> Bytes {
    let mut headers = vec![("user-agent".to_owned(), USER_AGENT.to_owned())];
    if let Some(t) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {t}")));
    }
    let ask = HttpAsk {
        method: "GET".into(),
        host: "orders.example.com".into(),
        path: "/orders/42".into(),
        headers,
        extensions: Vec::new(),
        peer: "127.0.0.1".into(),
        peer_principal: if token.is_some() {
            String::new()
        } else {
            "spiffe://cluster.local/ns/shop/sa/app-runtime".into()
        },
    };
    client::check_request(&ask).encode_to_vec().into()
}

fn authorize_bytes(principal: &str) -> Bytes {
    let context = Context::from_pairs(&[
        "aws:SourceIp=127.0.0.1".to_owned(),
        "aws:SecureTransport=false".to_owned(),
        format!("aws:UserAgent={USER_AGENT}"),
    ])
    .expect("context");
    client::authorize_request(
        principal,
        "orders:GetOrder",
        "arn:aws:orders:us-east-1:333333333333:order/42",
        &context,
        false,
    )
    .encode_to_vec()
    .into()
}

/// Polls a handler's future once: nothing in either face waits (no `min_revision`, the
/// demo provider's keys are inline).
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a face waited"),
    }
}

/// The function valgrind counts for Check: the handler, then the response encoded (as
/// tonic's codec writes it into its buffer). Whether it allowed is read outside.
#[inline(never)]
fn check_one(faces: &Faces, bytes: Bytes) -> Vec<u8> {
    let response = ready(faces.check.check(tonic::Request::new(CheckBytes(bytes))))
        .expect("check answers")
        .into_inner();
    black_box(response.encode_to_vec())
}

/// The function valgrind counts for Authorize.
#[inline(never)]
fn authorize_one(faces: &Faces, bytes: Bytes) -> Vec<u8> {
    let response = ready(
        faces
            .authorize
            .authorize(tonic::Request::new(AuthorizeBytes(bytes))),
    )
    .expect("authorize answers")
    .into_inner();
    black_box(response.encode_to_vec())
}

fn check_allowed(encoded: &[u8]) -> bool {
    CheckResponse::decode(encoded)
        .expect("a check response")
        .status
        .is_some_and(|s| s.code == 0)
}

fn authorize_allowed(encoded: &[u8]) -> bool {
    warden::grpc::pb::AuthorizeResponse::decode(encoded)
        .expect("an authorize response")
        .decision
        == warden::grpc::pb::Decision::Allow as i32
}

fn run(faces: &Faces, face: &str, bytes: &Bytes, n: usize) -> usize {
    let mut allows = 0;
    for _ in 0..n {
        // A fresh handle per request, as tonic hands each its own buffer.
        let b = black_box(Bytes::copy_from_slice(bytes));
        let allowed = if face.starts_with("authorize") {
            authorize_allowed(&authorize_one(faces, b))
        } else {
            check_allowed(&check_one(faces, b))
        };
        allows += usize::from(allowed);
    }
    allows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_cache = args.iter().any(|a| a == "--no-cache");
    let mut rest = args.iter().filter(|a| !a.starts_with("--"));
    let mode = rest.next().map_or("all", String::as_str).to_owned();
    let n: usize = rest
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(10_000);
    let faces = faces(if no_cache { 0 } else { 100_000 });
    let token = token();
    let requests = |face: &str| match face {
        "mtls" => check_bytes(None),
        "token" => check_bytes(Some(&token)),
        "authorize" => authorize_bytes(MTLS_SESSION),
        "authorize-web" => authorize_bytes(WEB_SESSION),
        other => panic!("unknown face `{other}`: mtls, token, authorize, authorize-web, all"),
    };
    if mode != "all" {
        let allows = run(&faces, &mode, &requests(&mode), n);
        println!("{mode}: {allows} of {n} allowed");
        assert_eq!(allows, n, "the question is an Allow");
        return;
    }
    // Wall clock: the faces alternate, 9 batches each, the median batch per face.
    let names = ["authorize", "mtls", "token", "authorize-web"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..9 {
        for (face, t) in names.iter().zip(times.iter_mut()) {
            let bytes = requests(face);
            let started = Instant::now();
            let allows = run(&faces, face, &bytes, n);
            t.push(started.elapsed().as_nanos() as f64 / n as f64);
            assert_eq!(allows, n, "{face}: the question is an Allow");
        }
    }
    let cache = if no_cache { "off" } else { "on" };
    for (face, mut t) in names.iter().zip(times) {
        t.sort_by(f64::total_cmp);
        println!(
            "{face:>13}: {:>7.0} ns per request (median of 9 batches of {n}, cache {cache})",
            t.get(4).copied().unwrap_or_default()
        );
    }
}

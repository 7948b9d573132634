//! Fuzz body `check`: Envoy's `Check` from its bytes — `grpc::check::decode`, the example
//! organization's `default` listener (`routes/default.json`: routes, path refusals, mTLS
//! and the demo OIDC provider) and the `Checker` over a real service — on a snapshot of
//! `examples/org`. It checks that
//! - nothing panics;
//! - every answer is an answer: OK exactly when allowed, else 401, 403 or 503 with a JSON
//!   body naming its decision and reason;
//! - an allow names a decision id and an Allow (or a deny let through by a dry-run route)
//!   and never comes without a route; it names a principal to the upstream, or, let through
//!   by dry-run without one, removes a client's principal header;
//! - a path holding what warden must refuse (an encoded slash or backslash, a `;`, a dot
//!   or empty segment) is never routed, and a routed resource never holds `*` or `?`;
//! - a request built from pieces decodes back to the request that was encoded.
//!
//! Input: the first byte chooses raw bytes (the rest, read as a `CheckRequest`) or a
//! request built with `arbitrary` from pieces chosen to reach the routes and their traps.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arbitrary::{Result, Unstructured};
use prost::Message;
use warden::eval::Decision;
use warden::ext_authz::{Checker, HttpCheck, Verdict};
use warden::grpc::check::decode;
use warden::grpc::client::{HttpAsk, check_request};
use warden::oidc::Verifier;
use warden::service::{Service, ServiceConfig};
use warden::snapshot::Snapshot;
use warden::source::Published;

/// Pieces of paths: the example's routes and what warden must refuse.
const SEGMENTS: &[&str] = &[
    "orders",
    "42",
    "history",
    "2026",
    "refund",
    "a%2Fb",
    "a%2fb",
    "a%5Cb",
    "..",
    ".",
    "%2e%2e",
    "x;y",
    "x%3By",
    "*",
    "%2A",
    "4%3F2",
    "$",
    "%7B",
    "caf%C3%A9",
    "%zz",
    "",
    "ORDERS",
    "a b",
    "%00",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "get"];
const HEADERS: &[&str] = &[
    "user-agent",
    "x-team",
    "x-order-amount",
    "authorization",
    "x-forwarded-for",
    "x-warden-principal-arn",
];
const VALUES: &[&str] = &[
    "curl",
    "blue",
    "5000",
    "1,2",
    "Bearer x.y.z",
    "Bearer",
    "1.2.3.4",
    "",
    "a,b",
];
const SPIFFE: &[&str] = &[
    "",
    "spiffe://cluster.local/ns/shop/sa/app-runtime",
    "spiffe://cluster.local/ns/other/sa/app-runtime",
    "spiffe://cluster.local/ns/shop/sa/x;y",
];
const QUERIES: &[&str] = &[
    "",
    "?currency=EUR",
    "?amount=1&amount=2",
    "?amount=%zz",
    "?x",
];

/// Runs one input; returns whether the request was allowed (so a replay can tell that its
/// corpus reaches both answers).
pub fn run(data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    let bytes = match u.int_in_range(0..=3u8) {
        Ok(0) => u.take_rest().to_vec(),
        _ => match built(&mut u) {
            Ok(ask) => {
                let bytes = check_request(&ask).encode_to_vec();
                let back = decode(&bytes).expect("a built request decodes");
                assert_eq!(back.path, ask.path);
                assert_eq!(back.method, ask.method);
                assert_eq!(back.peer_principal, ask.peer_principal);
                bytes
            }
            Err(_) => return false,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let checker = checker();
    let decoded = decode(&bytes).ok();
    let verdict = runtime.block_on(checker.check(|| decode(&bytes)));
    holds(decoded.as_ref(), &verdict);
    verdict.allowed
}

fn built(u: &mut Unstructured<'_>) -> Result<HttpAsk> {
    let mut path = String::new();
    for _ in 0..u.int_in_range(0..=5u8)? {
        path.push('/');
        path.push_str(u.choose(SEGMENTS)?);
    }
    if path.is_empty() || u.ratio(1, 8)? {
        path.push('/');
    }
    path.push_str(u.choose(QUERIES)?);
    let mut headers = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        headers.push((
            (*u.choose(HEADERS)?).to_owned(),
            (*u.choose(VALUES)?).to_owned(),
        ));
    }
    Ok(HttpAsk {
        method: (*u.choose(METHODS)?).to_owned(),
        host: "orders.example.com".to_owned(),
        path,
        headers,
        extensions: Vec::new(),
        peer: "127.0.0.1".to_owned(),
        peer_principal: (*u.choose(SPIFFE)?).to_owned(),
    })
}

/// The invariants of one answer (see the module's header).
fn holds(http: Option<&HttpCheck>, v: &Verdict) {
    assert_eq!(v.allowed, v.status == 200, "{v:?}");
    if !v.allowed {
        assert!(matches!(v.status, 401 | 403 | 503), "{v:?}");
        let body: serde_json::Value = serde_json::from_str(&v.body).expect("a JSON body");
        assert_eq!(body["decision"], v.record.decision.as_str(), "{v:?}");
        assert_eq!(body["reason"], &*v.record.reason, "{v:?}");
        assert_ne!(v.record.decision, Decision::Allow, "{v:?}");
    } else {
        assert!(
            !v.record.route.is_empty(),
            "an allow without a route: {v:?}"
        );
        assert_eq!(v.record.decision_id.len(), 32, "{v:?}");
        assert!(
            v.record.decision == Decision::Allow || v.record.dry_run,
            "{v:?}"
        );
        // Only a dry-run route lets a request through without a principal, and then the
        // upstream is told none: a client's own principal header is removed.
        let told = v.headers.iter().any(|(k, _)| k == "x-warden-principal-arn");
        if v.record.principal.is_empty() {
            assert!(v.record.dry_run, "an allow without a principal: {v:?}");
            assert!(
                !told && v.remove.iter().any(|k| k == "x-warden-principal-arn"),
                "{v:?}"
            );
        } else {
            assert!(told, "{v:?}");
        }
    }
    let Some(http) = http else {
        assert_eq!(v.record.reason, "malformed_request", "{v:?}");
        return;
    };
    let path = http
        .path
        .split('?')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let refused = ["%2f", "%5c", ";", "%3b", "//", "/../", "/./"]
        .iter()
        .any(|t| path.contains(t))
        || path.ends_with("/..")
        || path.ends_with("/.");
    if refused {
        assert!(v.record.route.is_empty(), "{path:?} was routed: {v:?}");
    }
    assert!(
        !v.record.resource.contains(['*', '?']) || v.record.resource == "*",
        "{v:?}"
    );
}

/// The example organization's checker, built once.
fn checker() -> &'static Checker {
    static CHECKER: OnceLock<Checker> = OnceLock::new();
    CHECKER.get_or_init(|| {
        let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/org");
        let bundle = if bundle.exists() {
            bundle
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")
        };
        let snapshot = Snapshot::load_dir(&bundle, 1).unwrap();
        let service = Arc::new(Service::serving(
            snapshot,
            ServiceConfig {
                cache_size: 1024,
                limits: Default::default(),
            },
        ));
        Checker::new(service, Arc::new(Verifier::new(Arc::new(Published::new()))))
    })
}

//! The whole cost of the most expensive requests the limits allow: what `SECURITY.md`
//! states as the bound of one request. Each case is the largest context a request may carry
//! against the longest patterns a bundle may hold, and the decision's time is measured.
//!
//! - decoding: 60,000 context keys (refused at the 65th) and the largest accepted context;
//! - evaluation: a role whose inline policy (10,240 characters, AWS's maximum) is one
//!   pattern built to be slow, against one key with 64 values of 4,096 bytes (256 KiB, a
//!   quarter of the 1 MiB message), for each kind of pattern: text pieces (`*aaa…ab*c`),
//!   pieces with `?` (`*a?a?…b*c`), and a policy variable (`*aaa…ab*c${aws:userid}`,
//!   matched as tokens resolved for the request).
//!
//! Run: `cargo bench --bench bounds`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message;
use warden::context::{CallerContext, Context, ContextValue};
use warden::grpc::{pb, wire};
use warden::service::{Limits, MAX_VALUE_BYTES};
use warden::snapshot::Snapshot;

const ROLE: &str = "arn:aws:sts::333333333333:assumed-role/slow/s";
const ORDER: &str = "arn:aws:orders:us-east-1:333333333333:order/1";
/// AWS's maximum for a role's inline policies, in characters without white space.
const POLICY_CHARS: usize = 10_240;

/// The example organization with role `slow`, whose one statement allows `orders:GetOrder`
/// when any value of `orders:Currency` matches `pattern`.
fn snapshot(pattern: &str) -> Snapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    let mut files = warden::bundle::read_dir(&dir).expect("the example bundle");
    let role = serde_json::json!({
        "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "333333333333"}, "Action": "sts:AssumeRole"}]},
        "inline_policies": {"p": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
            "Condition": {"ForAnyValue:StringLike": {"orders:Currency": pattern}}}]}}
    });
    files.insert(
        "accounts/333333333333/roles/slow.json".into(),
        role.to_string(),
    );
    Snapshot::load_files(&files, 1).expect("the bundle with the slow role loads")
}

/// A pattern of about the policy's size: `unit` repeated, between `*` and `*c`.
fn pattern(unit: &str) -> String {
    let room = POLICY_CHARS - 400;
    format!("*{}b*c", unit.repeat(room / unit.len()))
}

/// The largest context on one key: 64 values of 4,096 `a`s.
fn context() -> CallerContext {
    let mut c = Context::new();
    c.insert(
        "orders:Currency",
        ContextValue::Multi(vec!["a".repeat(MAX_VALUE_BYTES); 64]),
    );
    CallerContext::screen(c, |_| {})
}

fn evaluation(c: &mut Criterion) {
    let ctx = context();
    let now = SystemTime::now();
    let mut group = c.benchmark_group("evaluate_worst_policy");
    group.sample_size(10);
    for (name, p) in [
        ("text_pieces", pattern("a")),
        ("question_mark_pieces", pattern("a?")),
        // A variable makes the value a template, matched token by token.
        (
            "variable_template",
            format!("${{aws:userid}}{}", pattern("a")),
        ),
    ] {
        let s = snapshot(&p);
        let decided = s.ask(ROLE, "orders:GetOrder", ORDER, &ctx, now).unwrap();
        assert!(
            !decided.outcome.decision.to_string().is_empty(),
            "{name} decides"
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(s.ask(ROLE, "orders:GetOrder", ORDER, black_box(&ctx), now)))
        });
    }
    group.finish();
}

fn decoding(c: &mut Criterion) {
    let limits = Limits::default();
    let string = |s: String| pb::ContextValue {
        kind: Some(pb::context_value::Kind::String(s)),
    };
    let many: BTreeMap<String, pb::ContextValue> = (0..60_000)
        .map(|i| (format!("k{i:05}"), string("v".into())))
        .collect();
    let refused = pb::AuthorizeRequest {
        principal: ROLE.into(),
        action: "orders:GetOrder".into(),
        resource: ORDER.into(),
        context: many,
        ..Default::default()
    }
    .encode_to_vec();
    // The largest context accepted: 64 keys, values filling the 1 MiB message.
    let largest: BTreeMap<String, pb::ContextValue> = (0..64)
        .map(|i| {
            (
                format!("k{i:02}"),
                string("v".repeat(16_000.min(MAX_VALUE_BYTES))),
            )
        })
        .collect();
    let accepted = pb::AuthorizeRequest {
        principal: ROLE.into(),
        action: "orders:GetOrder".into(),
        resource: ORDER.into(),
        context: largest,
        ..Default::default()
    }
    .encode_to_vec();
    assert!(wire::authorize(&refused, &limits).is_err());
    assert!(wire::authorize(&accepted, &limits).is_ok());
    c.bench_function("decode/60000_keys_refused", |b| {
        b.iter(|| black_box(wire::authorize(black_box(&refused), &limits)))
    });
    c.bench_function("decode/64_keys_of_4096_bytes", |b| {
        b.iter(|| black_box(wire::authorize(black_box(&accepted), &limits)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = decoding, evaluation
}
criterion_main!(benches);

//! SigV4 verification of a request boto3 signed (the first line of
//! `tests/fixtures/sts/boto3-requests.jsonl`, a `GetCallerIdentity` POST): parse alone;
//! parse and verify with the key from a warm `SigningKeys` cache (a repeated caller); and
//! with the key derived for the request (a first call of the day); the key cache's hit
//! alone; and a presigned request verified with a cached key.
//!
//! Run: `cargo bench --bench sigv4`.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use warden::sigv4::{self, HttpRequest, Payload, Signer, SigningKey, SigningKeys};

const SECRET: &str = "probeSecret/abc+123";

struct Fixture {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn fixture() -> Fixture {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sts/boto3-requests.jsonl");
    let text = std::fs::read_to_string(path).expect("the fixtures are readable");
    let line = text.lines().next().expect("a first request");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    Fixture {
        method: v["method"].as_str().expect("method").to_string(),
        target: v["path"].as_str().expect("path").to_string(),
        headers: v["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("a header value").to_string()))
            .collect(),
        body: v["body"].as_str().expect("body").to_string(),
    }
}

fn verify(req: &HttpRequest<'_>, keys: Option<&SigningKeys>, now: SystemTime) {
    let signed = sigv4::parse(req).expect("parses").expect("is signed");
    let key = match keys {
        Some(keys) => keys.get(
            signed.access_key_id,
            SECRET,
            signed.date,
            signed.region,
            signed.service,
        ),
        None => SigningKey::derive(SECRET, signed.date, signed.region, signed.service),
    };
    signed.verify(req, &key, now).expect("verifies");
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let headers: Vec<(&str, &str)> = f
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let req = HttpRequest {
        method: &f.method,
        target: &f.target,
        headers: &headers,
        payload: Payload::Bytes(f.body.as_bytes()),
    };
    // 20261201T213532Z, the request's X-Amz-Date.
    let now = UNIX_EPOCH + Duration::from_secs(1_796_160_932);
    let keys = SigningKeys::new(1024);
    verify(&req, Some(&keys), now);

    c.bench_function("sigv4/parse", |b| {
        b.iter(|| black_box(sigv4::parse(black_box(&req)).expect("parses")))
    });
    c.bench_function("sigv4/parse_verify/cached_key", |b| {
        b.iter(|| verify(black_box(&req), Some(&keys), now))
    });
    c.bench_function("sigv4/parse_verify/derived_key", |b| {
        b.iter(|| verify(black_box(&req), None, now))
    });
    c.bench_function("sigv4/key_cache_hit", |b| {
        b.iter(|| {
            black_box(keys.get(
                "AKIAPROBEEXAMPLE0001",
                SECRET,
                "20261201",
                "us-east-1",
                "sts",
            ))
        })
    });

    let host = [("Host", "127.0.0.1:18443")];
    let get = HttpRequest {
        method: "GET",
        target: "/?Action=GetCallerIdentity&Version=2011-06-15",
        headers: &host,
        payload: Payload::Unknown,
    };
    let signer = Signer {
        access_key_id: "AKIAPROBEEXAMPLE0001",
        secret_access_key: SECRET,
        session_token: None,
        region: "us-east-1",
        service: "sts",
    };
    let target = sigv4::presign(&get, &signer, now, Duration::from_secs(900));
    let presigned = HttpRequest {
        target: &target,
        ..get
    };
    verify(&presigned, Some(&keys), now);
    c.bench_function("sigv4/parse_verify/presigned_cached_key", |b| {
        b.iter(|| verify(black_box(&presigned), Some(&keys), now))
    });
}

criterion_group! {
    name = sigv4_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(sigv4_benches);

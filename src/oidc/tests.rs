//! Tests of OIDC: tokens of each accepted algorithm and every way one is refused, the
//! token cache, key sets from a file and a loopback HTTP server (kept on failure, backed
//! off), provider documents' findings, the trust policy deciding a web-identity session,
//! and a caller's forged token keys dropped by the service.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::mint::SigningKey;
use super::*;
use crate::context::{Context, ContextValue};
use crate::telemetry::Telemetry;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://issuer.test.invalid";
const PROVIDER: &str = "arn:aws:iam::333333333333:oidc-provider/issuer.test.invalid";
const ROLE: &str = "arn:aws:iam::333333333333:role/web-app";
const PROVIDER_FILE: &str = "accounts/333333333333/oidc-providers/test.json";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn key(name: &str) -> SigningKey {
    let pem = match name {
        "rsa" => include_str!("testdata/rsa.pem"),
        "ec" => include_str!("testdata/ec.pem"),
        "ed" => include_str!("testdata/ed25519.pem"),
        "ed-other" => include_str!("testdata/ed25519-other.pem"),
        _ => unreachable!(),
    };
    SigningKey::from_pem(pem.as_bytes()).unwrap()
}

fn jwks_of(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk().clone()).collect::<Vec<_>>() })
}

/// Claims valid at [`NOW`] for the test provider.
fn claims() -> serde_json::Map<String, Value> {
    let Value::Object(m) = json!({
        "iss": ISSUER, "sub": "alice", "aud": "app",
        "iat": NOW - 10, "exp": NOW + 600,
    }) else {
        unreachable!()
    };
    m
}

fn sign(k: &SigningKey, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut c = claims();
    edit(&mut c);
    k.sign(&Value::Object(c)).unwrap()
}

fn example_files() -> BTreeMap<String, String> {
    crate::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")).unwrap()
}

/// A role trusting the test provider for `aud` `app` and `sub` `alice`, whose identity
/// policy allows `orders:GetOrder` only when the session's `sub` is `alice`.
const WEB_APP_ROLE: &str = r#"{
  "trust_policy": {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::333333333333:oidc-provider/issuer.test.invalid"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {"issuer.test.invalid:aud": "app", "issuer.test.invalid:sub": "alice"}}
  }]},
  "inline_policies": {"orders": {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
    "Condition": {"StringEquals": {"issuer.test.invalid:sub": "alice"}}
  }]}}
}"#;

/// The example organization with the test provider (`provider` as its file) and role.
fn files_with(provider: &Value) -> BTreeMap<String, String> {
    let mut files = example_files();
    files.insert(PROVIDER_FILE.into(), provider.to_string());
    files.insert(
        "accounts/333333333333/roles/web-app.json".into(),
        WEB_APP_ROLE.into(),
    );
    files
}

fn inline_provider() -> Value {
    json!({"url": ISSUER, "client_ids": ["app", "other"],
           "jwks": jwks_of(&[&key("rsa"), &key("ec"), &key("ed")])})
}

fn published(provider: &Value) -> (Arc<Published>, Arc<Telemetry>) {
    let p = Arc::new(Published::new());
    let t = Arc::new(Telemetry::new());
    p.publish(
        Snapshot::load_files(&files_with(provider), 1).unwrap(),
        &t.metrics,
    );
    (p, t)
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `ok`, or the error's code.
fn outcome(r: &Result<Arc<Claims>, TokenError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code,
    }
}

// === Tokens ===

#[test]
fn tokens_verify_or_are_refused_with_a_stable_code() {
    let (rsa, ec, ed) = (key("rsa"), key("ec"), key("ed"));
    let secs = Duration::from_secs;
    let tampered = {
        let t = sign(&ed, |_| {});
        let mut parts: Vec<&str> = t.split('.').collect();
        let other = sign(&ed, |c| {
            c.insert("sub".into(), json!("mallory"));
        });
        let payload = other.split('.').nth(1).unwrap().to_owned();
        parts[1] = &payload;
        parts.join(".")
    };
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let body = b64(Value::Object(claims()));
    let alg_none = format!(
        "{}.{body}.c2ln",
        b64(json!({"alg": "none", "kid": ed.kid()}))
    );
    // HMAC keyed with the RSA public key's JWK text: refused for its algorithm alone.
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(rsa.kid().to_owned());
        let secret = rsa.public_jwk().to_string();
        jsonwebtoken::encode(
            &header,
            &Value::Object(claims()),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let huge = sign(&ed, |c| {
        c.insert("pad".into(), json!("x".repeat(17 * 1024)));
    });
    let cases: Vec<(&str, String, Duration, SystemTime, &str)> = vec![
        ("RS256", sign(&rsa, |_| {}), secs(0), now(), "ok"),
        ("ES256", sign(&ec, |_| {}), secs(0), now(), "ok"),
        ("EdDSA", sign(&ed, |_| {}), secs(0), now(), "ok"),
        (
            "aud in a list",
            sign(&ed, |c| {
                c.insert("aud".into(), json!(["x", "other"]));
            }),
            secs(0),
            now(),
            "ok",
        ),
        (
            "expired",
            sign(&ed, |c| {
                c.insert("exp".into(), json!(NOW - 10));
            }),
            secs(0),
            now(),
            "expired",
        ),
        (
            "expired within skew",
            sign(&ed, |c| {
                c.insert("exp".into(), json!(NOW - 10));
            }),
            secs(60),
            now(),
            "ok",
        ),
        (
            "expired past skew",
            sign(&ed, |c| {
                c.insert("exp".into(), json!(NOW - 100));
            }),
            secs(60),
            now(),
            "expired",
        ),
        (
            "not yet valid",
            sign(&ed, |c| {
                c.insert("nbf".into(), json!(NOW + 30));
            }),
            secs(0),
            now(),
            "not_yet_valid",
        ),
        (
            "nbf within skew",
            sign(&ed, |c| {
                c.insert("nbf".into(), json!(NOW + 30));
            }),
            secs(60),
            now(),
            "ok",
        ),
        (
            "issued in the future",
            sign(&ed, |c| {
                c.insert("iat".into(), json!(NOW + 3600));
            }),
            secs(60),
            now(),
            "not_yet_valid",
        ),
        (
            "no exp",
            sign(&ed, |c| {
                c.remove("exp");
            }),
            secs(0),
            now(),
            "malformed",
        ),
        (
            "wrong audience",
            sign(&ed, |c| {
                c.insert("aud".into(), json!("someone-else"));
            }),
            secs(0),
            now(),
            "wrong_audience",
        ),
        (
            "wrong issuer",
            sign(&ed, |c| {
                c.insert("iss".into(), json!("https://evil.invalid"));
            }),
            secs(0),
            now(),
            "wrong_issuer",
        ),
        (
            "issuer with a slash",
            sign(&ed, |c| {
                c.insert("iss".into(), json!(format!("{ISSUER}/")));
            }),
            secs(0),
            now(),
            "wrong_issuer",
        ),
        (
            "another key's signature",
            sign(&key("ed-other").with_kid(ed.kid()), |_| {}),
            secs(0),
            now(),
            "bad_signature",
        ),
        (
            "tampered payload",
            tampered,
            secs(0),
            now(),
            "bad_signature",
        ),
        (
            "unknown kid",
            sign(&key("ed-other"), |_| {}),
            secs(0),
            now(),
            "unknown_kid",
        ),
        (
            "ES256 header on an RSA kid",
            sign(&ec.with_kid(rsa.kid()), |_| {}),
            secs(0),
            now(),
            "bad_signature",
        ),
        ("alg none", alg_none, secs(0), now(), "unsupported_alg"),
        (
            "HS256 with the public key",
            hs256,
            secs(0),
            now(),
            "unsupported_alg",
        ),
        ("two parts", "abc.def".into(), secs(0), now(), "malformed"),
        ("four parts", "a.b.c.d".into(), secs(0), now(), "malformed"),
        (
            "empty signature",
            format!("{}.{body}.", b64(json!({"alg": "EdDSA", "kid": "k"}))),
            secs(0),
            now(),
            "malformed",
        ),
        (
            "not base64url",
            "a+b.c.d".into(),
            secs(0),
            now(),
            "malformed",
        ),
        (
            "header not JSON",
            format!("{}.{body}.c2ln", b64(json!("text"))),
            secs(0),
            now(),
            "malformed",
        ),
        (
            "no kid",
            format!("{}.{body}.c2ln", b64(json!({"alg": "EdDSA"}))),
            secs(0),
            now(),
            "unknown_kid",
        ),
        ("oversized", huge, secs(0), now(), "too_large"),
    ];
    let (published, _) = published(&inline_provider());
    let snapshot = published.current().unwrap();
    let verifier = Verifier::new(published);
    let mut failures = Vec::new();
    for (name, token, skew, at, want) in cases {
        let got = run(verifier.verify(&snapshot, PROVIDER, &token, skew, at));
        if outcome(&got) != want {
            failures.push(format!("{name}: want {want}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let got = run(verifier.verify(
        &snapshot,
        "arn:aws:iam::333333333333:oidc-provider/nope",
        &sign(&ed, |_| {}),
        Duration::ZERO,
        now(),
    ));
    assert_eq!(outcome(&got), "unknown_provider");
}

#[test]
fn verified_claims_are_read_whole() {
    let (published, _) = published(&inline_provider());
    let snapshot = published.current().unwrap();
    let token = sign(&key("ec"), |c| {
        c.insert("aud".into(), json!(["other", "app"]));
        c.insert("amr".into(), json!(["pwd", "mfa"]));
    });
    let c =
        run(Verifier::new(published).verify(&snapshot, PROVIDER, &token, Duration::ZERO, now()))
            .unwrap();
    assert_eq!(c.issuer(), ISSUER);
    assert_eq!(c.subject(), Some("alice"));
    assert_eq!(c.audiences(), ["other", "app"]);
    assert_eq!(c.expiry(), UNIX_EPOCH + Duration::from_secs(NOW + 600));
    assert_eq!(c.get("amr"), Some(&json!(["pwd", "mfa"])));
    let from_json = Claims::from_json(c.all().clone()).unwrap();
    assert_eq!(from_json.subject(), Some("alice"));
    assert_ne!(
        from_json.digest(),
        c.digest(),
        "claims given as JSON are not the token"
    );
    assert_eq!(
        Claims::from_json(serde_json::Map::new()).unwrap_err().code,
        "wrong_issuer"
    );
}

#[test]
fn a_cached_token_is_checked_for_time_again_and_counted() {
    let (published, telemetry) = published(&inline_provider());
    let snapshot = published.current().unwrap();
    let verifier =
        Verifier::with_config(published, RefreshConfig::default(), telemetry.oidc.clone());
    let token = sign(&key("ed"), |_| {});
    for _ in 0..3 {
        let got = run(verifier.verify(&snapshot, PROVIDER, &token, Duration::ZERO, now()));
        assert_eq!(outcome(&got), "ok");
    }
    let later = now() + Duration::from_secs(601);
    let got = run(verifier.verify(&snapshot, PROVIDER, &token, Duration::ZERO, later));
    assert_eq!(outcome(&got), "expired");
    let text = telemetry.render();
    assert!(
        text.contains("warden_oidc_token_cache_hits_total 2"),
        "{text}"
    );
    assert!(
        text.contains(r#"warden_oidc_tokens_total{result="ok"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"warden_oidc_tokens_total{result="expired"} 1"#),
        "{text}"
    );
}

/// A token is found in the cache by its end, the end of its signature
/// ([`Verifier::slot`]), and taken from it only when it is the very same token: one
/// whose claims were rewritten around a cached token's signature shares its slot and is
/// verified, and refused.
#[test]
fn a_token_sharing_a_cached_tokens_slot_is_verified_not_taken_from_the_cache() {
    let (published, telemetry) = published(&inline_provider());
    let snapshot = published.current().unwrap();
    let verifier =
        Verifier::with_config(published, RefreshConfig::default(), telemetry.oidc.clone());
    let token = sign(&key("ed"), |_| {});
    let got = run(verifier.verify(&snapshot, PROVIDER, &token, Duration::ZERO, now()));
    assert_eq!(outcome(&got), "ok");
    // `sub` alice as mallo: the same length, the same signature.
    let (payload, signature) = {
        let parts: Vec<&str> = token.split('.').collect();
        (parts[1].to_owned(), parts[2].to_owned())
    };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = String::from_utf8(b64.decode(&payload).unwrap()).unwrap();
    let forged_claims = claims.replace("\"alice\"", "\"mallo\"");
    assert_ne!(forged_claims, claims);
    let header = token.split('.').next().unwrap();
    let forged = format!("{header}.{}.{signature}", b64.encode(forged_claims));
    assert_eq!(forged.len(), token.len());
    assert_eq!(
        verifier.slot(PROVIDER, &forged),
        verifier.slot(PROVIDER, &token)
    );
    let got = run(verifier.verify(&snapshot, PROVIDER, &forged, Duration::ZERO, now()));
    assert_eq!(outcome(&got), "bad_signature");
    // The cached token is still there, and still itself.
    let got = run(verifier.verify(&snapshot, PROVIDER, &token, Duration::ZERO, now()));
    assert_eq!(got.unwrap().subject(), Some("alice"));
    let text = telemetry.render();
    assert!(
        text.contains("warden_oidc_token_cache_hits_total 1"),
        "{text}"
    );
}

// === Remote key sets ===

fn file_provider(path: &Path) -> Value {
    json!({"url": ISSUER, "client_ids": ["app"], "jwks_file": path.to_str().unwrap()})
}

#[test]
fn a_key_removed_from_a_file_set_stops_verifying_its_cached_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (a, b) = (key("ed"), key("ec"));
    std::fs::write(&path, jwks_of(&[&a, &b]).to_string()).unwrap();
    let (published, telemetry) = published(&file_provider(&path));
    let snapshot = published.current().unwrap();
    let config = RefreshConfig {
        unknown_kid_gap: Duration::from_secs(3600),
        ..RefreshConfig::default()
    };
    let verifier = Verifier::with_config(published, config, telemetry.oidc.clone());
    let token = sign(&a, |_| {});
    run(async {
        // No fetch yet: the first token fetches the set.
        assert_eq!(
            outcome(
                &verifier
                    .verify(&snapshot, PROVIDER, &token, Duration::ZERO, now())
                    .await
            ),
            "ok"
        );
        assert_eq!(
            outcome(
                &verifier
                    .verify(&snapshot, PROVIDER, &token, Duration::ZERO, now())
                    .await
            ),
            "ok"
        );
        // Key `a` rotated out; the schedule's next fetch sees it.
        std::fs::write(&path, jwks_of(&[&b]).to_string()).unwrap();
        let later = tokio::time::Instant::now() + config.interval;
        assert_eq!(verifier.refresh_due(later).await, 1);
        let got = verifier
            .verify(&snapshot, PROVIDER, &token, Duration::ZERO, now())
            .await;
        assert_eq!(outcome(&got), "unknown_kid");
        assert_eq!(
            outcome(
                &verifier
                    .verify(
                        &snapshot,
                        PROVIDER,
                        &sign(&b, |_| {}),
                        Duration::ZERO,
                        now()
                    )
                    .await
            ),
            "ok"
        );
    });
    let text = telemetry.render();
    assert!(
        text.contains(&format!(
            r#"warden_oidc_jwks_refresh_total{{provider="{PROVIDER}",result="ok"}} 2"#
        )),
        "{text}"
    );
}

/// A loopback HTTP server answering each request with the current `(status, body)`.
struct KeyServer {
    url: String,
    answer: Arc<std::sync::Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
}

async fn key_server(body: String) -> KeyServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let answer = Arc::new(std::sync::Mutex::new((200u16, body)));
    let hits = Arc::new(AtomicUsize::new(0));
    let (a, h) = (answer.clone(), hits.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (a, h) = (a.clone(), h.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                h.fetch_add(1, Ordering::SeqCst);
                let (status, body) = a.lock().unwrap().clone();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    KeyServer { url, answer, hits }
}

#[test]
fn keys_from_a_loopback_server_are_kept_when_a_refresh_fails_and_retries_back_off() {
    run(async {
        let ed = key("ed");
        let server = key_server(jwks_of(&[&ed]).to_string()).await;
        let provider = json!({"url": ISSUER, "client_ids": ["app"], "jwks_uri": server.url});
        let (published, telemetry) = published(&provider);
        let snapshot = published.current().unwrap();
        let config = RefreshConfig {
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(5),
            unknown_kid_gap: Duration::from_secs(3600),
            ..RefreshConfig::default()
        };
        let verifier = Verifier::with_config(published, config, telemetry.oidc.clone());
        let t0 = tokio::time::Instant::now();
        assert_eq!(verifier.refresh_due(t0).await, 1);
        let token = sign(&ed, |_| {});
        assert_eq!(
            outcome(
                &verifier
                    .verify(&snapshot, PROVIDER, &token, Duration::ZERO, now())
                    .await
            ),
            "ok"
        );
        assert_eq!(
            verifier.refresh_due(t0).await,
            0,
            "not due before its interval"
        );

        // The server breaks: each failure keeps the set and doubles the wait, up to the cap.
        *server.answer.lock().unwrap() = (500, "oops".into());
        let remote = verifier
            .remote(snapshot.oidc_provider(PROVIDER).unwrap())
            .unwrap();
        let mut at = t0 + config.interval;
        for want in [2, 4, 5, 5] {
            assert_eq!(verifier.refresh_due(at).await, 1);
            let next = remote.state.lock().unwrap().next_at;
            assert_eq!(next - at, Duration::from_secs(want));
            assert_eq!(
                verifier.refresh_due(next - Duration::from_millis(1)).await,
                0
            );
            at = next;
        }
        assert_eq!(
            outcome(
                &verifier
                    .verify(&snapshot, PROVIDER, &token, Duration::ZERO, now())
                    .await
            ),
            "ok",
            "the last good set stays"
        );

        // An unknown `kid` fetches at most once per gap, however many tokens name it.
        let hits = server.hits.load(Ordering::SeqCst);
        let stranger = sign(&key("ed-other"), |_| {});
        for _ in 0..3 {
            assert_eq!(
                outcome(
                    &verifier
                        .verify(&snapshot, PROVIDER, &stranger, Duration::ZERO, now())
                        .await
                ),
                "unknown_kid"
            );
        }
        assert_eq!(server.hits.load(Ordering::SeqCst), hits + 1);

        // Recovered, and a set over the size limit is a failure, not a partial read.
        *server.answer.lock().unwrap() = (200, jwks_of(&[&ed]).to_string());
        assert_eq!(verifier.refresh_due(at).await, 1);
        assert_eq!(remote.state.lock().unwrap().failures, 0);
        let big = json!({"keys": [ed.public_jwk()], "pad": "x".repeat(300 * 1024)});
        *server.answer.lock().unwrap() = (200, big.to_string());
        let next = remote.state.lock().unwrap().next_at;
        assert_eq!(verifier.refresh_due(next).await, 1);
        let s = remote.state.lock().unwrap();
        assert!(
            s.last_error.as_deref().unwrap().contains("more than"),
            "{:?}",
            s.last_error
        );
        assert!(s.keys.is_some());
        drop(s);
        let text = telemetry.render();
        assert!(
            text.contains(&format!(
                r#"warden_oidc_jwks_refresh_total{{provider="{PROVIDER}",result="error"}} 6"#
            )),
            "{text}"
        );
    });
}

#[test]
fn a_provider_never_fetched_has_no_keys() {
    let provider =
        json!({"url": ISSUER, "client_ids": ["app"], "jwks_file": "/nonexistent/warden/jwks.json"});
    let (published, _) = published(&provider);
    let snapshot = published.current().unwrap();
    let verifier = Verifier::new(published);
    let got = run(verifier.verify(
        &snapshot,
        PROVIDER,
        &sign(&key("ed"), |_| {}),
        Duration::ZERO,
        now(),
    ));
    assert_eq!(outcome(&got), "no_keys");
}

#[test]
fn backoff_doubles_from_its_minimum_to_its_cap() {
    let c = RefreshConfig::default();
    let got: Vec<u64> = (1..=12).map(|f| c.backoff(f).as_secs()).collect();
    assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    assert_eq!(c.backoff(u32::MAX).as_secs(), 300);
}

// === Provider documents ===

#[test]
fn provider_documents_are_checked_with_located_findings() {
    let ed = key("ed");
    let mut private = ed.public_jwk().clone();
    private["d"] = json!("AAAA");
    let mut short = ed.public_jwk().clone();
    short["x"] = json!("AAAA");
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "http url",
            json!({"url": "http://issuer.test.invalid", "client_ids": ["a"], "jwks": jwks_of(&[&ed])}),
            "invalid-provider-url",
            "$.url",
        ),
        (
            "query",
            json!({"url": "https://issuer.test.invalid/?x=1", "client_ids": ["a"], "jwks": jwks_of(&[&ed])}),
            "invalid-provider-url",
            "$.url",
        ),
        (
            "fragment",
            json!({"url": "https://issuer.test.invalid#f", "client_ids": ["a"], "jwks": jwks_of(&[&ed])}),
            "invalid-provider-url",
            "$.url",
        ),
        (
            "userinfo",
            json!({"url": "https://u@issuer.test.invalid", "client_ids": ["a"], "jwks": jwks_of(&[&ed])}),
            "invalid-provider-url",
            "$.url",
        ),
        (
            "port",
            json!({"url": "https://issuer.test.invalid:8443", "client_ids": ["a"], "jwks": jwks_of(&[&ed])}),
            "invalid-provider-url",
            "$.url",
        ),
        (
            "uppercase host",
            json!({"url": "https://Issuer.test.invalid", "client_ids": ["a"], "jwks": jwks_of(&[&ed])}),
            "invalid-provider-url",
            "$.url",
        ),
        (
            "dot segment",
            json!({"url": "https://issuer.test.invalid/a/../b", "client_ids": ["a"], "jwks": jwks_of(&[&ed])}),
            "invalid-provider-url",
            "$.url",
        ),
        (
            "no client ids",
            json!({"url": ISSUER, "client_ids": [], "jwks": jwks_of(&[&ed])}),
            "invalid-client-ids",
            "$.client_ids",
        ),
        (
            "empty client id",
            json!({"url": ISSUER, "client_ids": [""], "jwks": jwks_of(&[&ed])}),
            "invalid-client-ids",
            "$.client_ids[0]",
        ),
        (
            "two sources",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": jwks_of(&[&ed]), "jwks_uri": "https://x.invalid/k"}),
            "invalid-jwks",
            "$",
        ),
        (
            "no source",
            json!({"url": ISSUER, "client_ids": ["a"]}),
            "invalid-jwks",
            "$",
        ),
        (
            "http uri",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks_uri": "http://keys.invalid/k"}),
            "invalid-jwks",
            "$.jwks_uri",
        ),
        (
            "relative file",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks_file": "keys.json"}),
            "invalid-jwks",
            "$.jwks_file",
        ),
        (
            "symmetric key",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}}),
            "invalid-jwks",
            "$.jwks.keys[0].k",
        ),
        (
            "private key",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": {"keys": [private]}}),
            "invalid-jwks",
            "$.jwks.keys[0].d",
        ),
        (
            "short key",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": {"keys": [short]}}),
            "invalid-jwks",
            "$.jwks.keys[0].x",
        ),
        (
            "duplicate kid",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": {"keys": [ed.public_jwk(), ed.public_jwk()]}}),
            "invalid-jwks",
            "$.jwks.keys[1].kid",
        ),
        (
            "no kid",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ed.public_jwk()["x"]}]}}),
            "invalid-jwks",
            "$.jwks.keys[0].kid",
        ),
        (
            "P-384",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k", "x": "AA", "y": "AA"}]}}),
            "invalid-jwks",
            "$.jwks.keys[0].crv",
        ),
        (
            "empty set",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": {"keys": []}}),
            "invalid-jwks",
            "$.jwks.keys",
        ),
        (
            "unknown member",
            json!({"url": ISSUER, "client_ids": ["a"], "jwks": jwks_of(&[&ed]), "thumbprints": []}),
            "unknown-key",
            "$.thumbprints",
        ),
    ];
    let mut failures = Vec::new();
    for (name, doc, code, path) in cases {
        let mut files = example_files();
        files.insert(PROVIDER_FILE.into(), doc.to_string());
        let found = match crate::bundle::load_files(&files) {
            Ok(_) => None,
            Err(e) => e
                .findings
                .iter()
                .find(|f| {
                    f.file == PROVIDER_FILE && f.finding.code == code && f.finding.path == path
                })
                .cloned(),
        };
        if found.is_none() {
            failures.push(format!(
                "{name}: no `{code}` at {path}: {:?}",
                crate::bundle::load_files(&files).err()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // The same URL twice in one account is one ARN: refused.
    let mut files = files_with(&inline_provider());
    files.insert(
        "accounts/333333333333/oidc-providers/again.json".into(),
        inline_provider().to_string(),
    );
    let e = crate::bundle::load_files(&files).unwrap_err();
    assert!(
        e.findings
            .iter()
            .any(|f| f.finding.code == "duplicate-provider"),
        "{e}"
    );

    // Loopback http is allowed, and the snapshot knows the provider by its ARN.
    let files = files_with(
        &json!({"url": format!("{ISSUER}/tenant-1"), "client_ids": ["a"], "jwks_uri": "http://127.0.0.1:9/k"}),
    );
    let s = Snapshot::load_files(&files, 1).unwrap();
    let p = s.oidc_provider(&format!("{PROVIDER}/tenant-1")).unwrap();
    assert_eq!(p.key_prefix(), "issuer.test.invalid/tenant-1");
    assert!(s.is_web_identity_key("issuer.test.invalid/tenant-1:sub"));
    assert!(!s.is_web_identity_key("issuer.test.invalid:sub"));
}

// === Web identity sessions ===

fn claims_for(sub: &str) -> Claims {
    let mut c = claims();
    c.insert("sub".into(), json!(sub));
    c.insert("exp".into(), json!(unix_now() + 3600));
    Claims::from_json(c).unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_trust_policy_decides_who_assumes_the_role() {
    let s = Snapshot::load_files(&files_with(&inline_provider()), 1).unwrap();
    let at = SystemTime::now();
    let alice = s
        .assume_role_with_web_identity(
            PROVIDER,
            ROLE,
            "alice-session",
            &claims_for("alice"),
            (at, Duration::ZERO),
        )
        .unwrap();
    assert_eq!(
        alice.arn,
        "arn:aws:sts::333333333333:assumed-role/web-app/alice-session"
    );
    assert!(
        alice.id.starts_with("web:") && alice.id.len() == 68,
        "{}",
        alice.id
    );
    let w = alice.web_identity.as_ref().unwrap();
    let key = |k: &str| {
        w.keys
            .get(k)
            .and_then(ContextValue::single)
            .map(str::to_owned)
    };
    assert_eq!(key("issuer.test.invalid:sub").as_deref(), Some("alice"));
    assert_eq!(key("issuer.test.invalid:aud").as_deref(), Some("app"));
    assert_eq!(key("aws:federatedprovider").as_deref(), Some(PROVIDER));
    // Another session name is another session.
    let again = s
        .assume_role_with_web_identity(
            PROVIDER,
            ROLE,
            "alice-2",
            &claims_for("alice"),
            (at, Duration::ZERO),
        )
        .unwrap();
    assert_ne!(again.id, alice.id);

    let bob = s
        .assume_role_with_web_identity(
            PROVIDER,
            ROLE,
            "bob",
            &claims_for("bob"),
            (at, Duration::ZERO),
        )
        .unwrap_err();
    assert_eq!(bob.code, "denied");
    assert_eq!(bob.outcome.unwrap().reason.as_str(), "no_resource_allow");

    for (provider, role, name, code) in [
        (
            "arn:aws:iam::333333333333:oidc-provider/nope",
            ROLE,
            "alice",
            "unknown_provider",
        ),
        (
            PROVIDER,
            "arn:aws:iam::333333333333:role/nope",
            "alice",
            "unknown_role",
        ),
        (PROVIDER, ROLE, "a", "invalid_session_name"),
        (PROVIDER, ROLE, "alice/../x", "invalid_session_name"),
        (
            PROVIDER,
            "arn:aws:iam::333333333333:role/service/app-runtime",
            "alice",
            "denied",
        ),
    ] {
        let e = s
            .assume_role_with_web_identity(
                provider,
                role,
                name,
                &claims_for("alice"),
                (at, Duration::ZERO),
            )
            .unwrap_err();
        assert_eq!(e.code, code, "{provider} {role} {name}: {e}");
    }
    let mut wrong = claims();
    wrong.insert("aud".into(), json!("nobody"));
    let e = s
        .assume_role_with_web_identity(
            PROVIDER,
            ROLE,
            "alice",
            &Claims::from_json(wrong).unwrap(),
            (now(), Duration::ZERO),
        )
        .unwrap_err();
    assert_eq!(e.code, "wrong_audience");
}

#[test]
fn the_demo_provider_lets_a_demo_token_assume_app_runtime() {
    let demo = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-oidc/signing-key.pem"),
    )
    .unwrap();
    let key = SigningKey::from_pem(&demo).unwrap();
    let p = Arc::new(Published::new());
    p.publish(
        Snapshot::load_files(&example_files(), 1).unwrap(),
        &Telemetry::new().metrics,
    );
    let snapshot = p.current().unwrap();
    let provider = "arn:aws:iam::333333333333:oidc-provider/demo.warden.invalid";
    let token = key
        .sign(&json!({"iss": "https://demo.warden.invalid", "sub": "alice", "aud": "orders", "exp": unix_now() + 600}))
        .unwrap();
    let claims = run(Verifier::new(p.clone()).verify(
        &snapshot,
        provider,
        &token,
        Duration::ZERO,
        SystemTime::now(),
    ))
    .unwrap();
    let session = snapshot
        .assume_role_with_web_identity(
            provider,
            "arn:aws:iam::333333333333:role/service/app-runtime",
            "alice",
            &claims,
            (SystemTime::now(), Duration::ZERO),
        )
        .unwrap();
    assert_eq!(
        session.arn,
        "arn:aws:sts::333333333333:assumed-role/app-runtime/alice"
    );
}

#[test]
fn a_callers_forged_token_keys_are_dropped_and_a_sessions_are_seen() {
    use crate::service::{Item, Limits, Request, Service, ServiceConfig, Shape};
    let (published, telemetry) = published(&inline_provider());
    let snapshot = published.current().unwrap();
    let service = Service::new(
        published,
        telemetry.clone(),
        None,
        ServiceConfig {
            cache_size: 100,
            limits: Limits::default(),
        },
    );
    let ask = |caller: Caller, forged: bool| {
        let mut context = Context::new();
        if forged {
            context.insert(
                "issuer.test.invalid:sub",
                ContextValue::Single("alice".into()),
            );
            context.insert(
                "Issuer.Test.Invalid/:aud",
                ContextValue::Single("app".into()),
            );
        }
        let r = Request {
            caller,
            context,
            items: vec![Item {
                action: "orders:GetOrder".into(),
                resource: "arn:aws:orders:us-east-1:333333333333:order/1".into(),
                context: Context::new(),
            }],
            min_revision: 0,
            explain: false,
            shape: Shape::One,
            face: crate::telemetry::Face::Authorize,
            snapshot: None,
        };
        let a = run(service.handle(|_| Ok(r))).unwrap();
        a.decisions[0].outcome.decision.to_string()
    };
    let asserted = Caller::Asserted("arn:aws:sts::333333333333:assumed-role/web-app/alice".into());
    assert_eq!(
        ask(asserted, true),
        "ImplicitDeny",
        "a forged `HOST:sub` must not allow"
    );
    let text = telemetry.render();
    assert!(
        text.contains(r#"warden_context_keys_dropped_total{key="web_identity"} 2"#),
        "{text}"
    );

    let session = snapshot
        .assume_role_with_web_identity(
            PROVIDER,
            ROLE,
            "alice",
            &claims_for("alice"),
            (SystemTime::now(), Duration::ZERO),
        )
        .unwrap();
    assert_eq!(ask(Caller::Session(session.clone()), false), "Allow");
    assert_eq!(ask(Caller::Session(session), true), "Allow");
}

use crate::caller::Caller;

#[test]
fn a_session_lasts_the_skew_the_verifier_allowed() {
    let s = Snapshot::load_files(&files_with(&inline_provider()), 1).unwrap();
    let claims = claims_for("alice");
    let after = claims.expiry() + Duration::from_secs(20);
    let e = s
        .assume_role_with_web_identity(PROVIDER, ROLE, "alice", &claims, (after, Duration::ZERO))
        .unwrap_err();
    assert_eq!(e.code, "expired");
    let session = s
        .assume_role_with_web_identity(
            PROVIDER,
            ROLE,
            "alice",
            &claims,
            (after, Duration::from_secs(60)),
        )
        .unwrap();
    assert_eq!(
        session.expires_at,
        claims.expiry() + Duration::from_secs(60)
    );
}

#[test]
fn a_trust_policy_that_reads_the_time_keeps_its_sessions_from_being_reused() {
    let mut files = files_with(&inline_provider());
    assert!(
        !Snapshot::load_files(&files, 1)
            .unwrap()
            .web_identity_reads_the_time(ROLE)
    );
    files.insert(
        "accounts/333333333333/roles/web-app.json".into(),
        WEB_APP_ROLE.replace(
            r#""Condition": {"StringEquals": {"issuer.test.invalid:aud": "app", "issuer.test.invalid:sub": "alice"}}"#,
            r#""Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#,
        ),
    );
    let s = Snapshot::load_files(&files, 1).unwrap();
    assert!(s.web_identity_reads_the_time(ROLE));
    // A role the snapshot does not hold is never kept either.
    assert!(s.web_identity_reads_the_time("arn:aws:iam::333333333333:role/nobody"));
}

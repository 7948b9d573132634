use super::*;

fn http<'a>(headers: &[(&'a str, &'a str)], peer: &str) -> HttpCheck<'a> {
    HttpCheck {
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        peer: peer.parse().ok(),
        ..HttpCheck::default()
    }
}

#[test]
fn the_source_ip_is_the_peer_or_the_entry_behind_the_trusted_hops() {
    let check = |headers: &[(&str, &str)], hops: usize, want: Option<&str>| {
        let got = source_ip(&http(headers, "10.0.0.9"), hops).map(|ip| ip.to_string());
        assert_eq!(got.as_deref(), want, "{headers:?} with {hops} hops");
    };
    let xff = |v: &'static str| [("x-forwarded-for", v)];
    // No trusted hops: the header is the client's to write, so it is ignored.
    check(&xff("1.2.3.4"), 0, Some("10.0.0.9"));
    check(&[], 0, Some("10.0.0.9"));
    // One trusted proxy appended the address it saw; what the client wrote before it is not
    // believed.
    check(&xff("6.6.6.6, 1.2.3.4"), 1, Some("1.2.3.4"));
    check(&xff("6.6.6.6,1.2.3.4, 10.1.1.1"), 2, Some("1.2.3.4"));
    check(&xff("2001:db8::1"), 1, Some("2001:db8::1"));
    // Fewer entries than trusted hops, or not an address: the peer.
    check(&xff("1.2.3.4"), 2, Some("10.0.0.9"));
    check(&[], 1, Some("10.0.0.9"));
    check(&xff("6.6.6.6, not-an-ip"), 1, Some("10.0.0.9"));
}

#[test]
fn server_keys_come_from_the_request_not_from_routes() {
    let mut h = http(&[("user-agent", "curl/8")], "127.0.0.1");
    h.scheme = "https".into();
    let mut context = Context::new();
    context.insert("aws:SecureTransport", ContextValue::Single("false".into()));
    server_keys(&h, 0, &mut context);
    let get = |k: &str| context.get(&k.to_ascii_lowercase()).cloned();
    assert_eq!(
        get("aws:SecureTransport"),
        Some(ContextValue::Single("true".into()))
    );
    assert_eq!(
        get("aws:SourceIp"),
        Some(ContextValue::Single("127.0.0.1".into()))
    );
    assert_eq!(
        get("aws:UserAgent"),
        Some(ContextValue::Single("curl/8".into()))
    );
}

#[test]
fn bearer_tokens_are_read_strictly() {
    for (value, want) in [
        ("Bearer abc.def.ghi", Some("abc.def.ghi")),
        ("bearer abc", Some("abc")),
        ("BEARER  abc", Some("abc")),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        // Two Authorization headers arrive joined by a comma: neither is taken.
        ("Bearer a,Bearer b", None),
        ("Bearer a b", None),
    ] {
        assert_eq!(bearer(value), want, "{value}");
    }
}

#[test]
fn claims_become_context_values_only_when_they_are_values() {
    use serde_json::json;
    let check = |v: serde_json::Value, want: Option<ContextValue>| {
        assert_eq!(claim_value(&v), want, "{v}");
    };
    check(json!("x"), Some(ContextValue::Single("x".into())));
    check(json!(42), Some(ContextValue::Single("42".into())));
    check(json!(true), Some(ContextValue::Single("true".into())));
    check(
        json!(["a", 1]),
        Some(ContextValue::Multi(vec!["a".into(), "1".into()])),
    );
    check(json!({"a": 1}), None);
    check(json!(["a", {"b": 1}]), None);
    check(json!(null), None);
}

#[test]
fn token_errors_keep_their_codes_and_unknown_ones_are_malformed() {
    assert_eq!(token_code("expired"), "token_expired");
    assert_eq!(token_code("unknown_kid"), "token_unknown_kid");
    assert_eq!(token_code("something_new"), "token_malformed");
}

#[test]
fn a_denied_body_is_small_json_and_401_says_bearer() {
    let record = Record {
        decision: Decision::ImplicitDeny,
        reason: "token_expired".into(),
        decision_id: "d1".into(),
        ..Record::default()
    };
    let v = denied(record, 401);
    assert!(!v.allowed);
    let body: serde_json::Value = serde_json::from_str(&v.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"decision": "ImplicitDeny", "reason": "token_expired", "decision_id": "d1"})
    );
    assert!(
        v.headers
            .iter()
            .any(|(k, val)| k == "www-authenticate" && val.contains("invalid_token"))
    );
}

#[test]
fn every_refusal_code_is_a_label() {
    let t = crate::telemetry::Telemetry::new();
    for code in REFUSALS {
        t.metrics.check_refused(code);
    }
    t.metrics.check_refused("not-a-code");
    let text = t.render();
    for code in REFUSALS {
        let want = if *code == "other" { 2 } else { 1 };
        let line = format!(r#"warden_check_refusals_total{{reason="{code}"}} {want}"#);
        assert!(text.contains(&line), "{line}");
    }
}

#[test]
fn mtls_sessions_are_named_as_aws_names_role_sessions() {
    let check = |role: &str, session: &str, want: Option<&str>| {
        assert_eq!(
            session_arn(role, session).as_deref(),
            want,
            "{role} {session}"
        );
    };
    check(
        "arn:aws:iam::333333333333:role/app-runtime",
        "shop.orders-web",
        Some("arn:aws:sts::333333333333:assumed-role/app-runtime/shop.orders-web"),
    );
    check(
        "arn:aws:iam::333333333333:role/ci/deployer",
        "x1",
        Some("arn:aws:sts::333333333333:assumed-role/deployer/x1"),
    );
    check("arn:aws:iam::333333333333:role/r", "a", None);
    check("arn:aws:iam::333333333333:role/r", "a/b", None);
    check("arn:aws:iam::333333333333:role/r", &"a".repeat(65), None);
    check("arn:aws:iam::333333333333:user/u", "ab", None);
    check("arn:aws:s3:::bucket", "ab", None);
}

#[tokio::test]
async fn overload_is_refused_before_the_request_is_decoded() {
    use crate::service::{Limits, Service, ServiceConfig};
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    let snapshot = Snapshot::load_dir(&bundle, 1).unwrap();
    let service = Arc::new(Service::serving(
        snapshot,
        ServiceConfig {
            cache_size: 0,
            limits: Limits {
                max_concurrency: 1,
                ..Limits::default()
            },
        },
    ));
    let verifier = Arc::new(Verifier::new(Arc::new(crate::source::Published::new())));
    let checker = Checker::new(service.clone(), verifier);
    let held = service.admit().unwrap();
    let mut decoded = false;
    let v = checker
        .check(|| {
            decoded = true;
            Ok(HttpCheck::default())
        })
        .await;
    assert!(!decoded, "decoded before admission");
    assert_eq!((v.status, &*v.record.reason), (503, "overloaded"));
    drop(held);
    // Admitted, a request that does not decode is a deny with its reason.
    let v = checker.check(|| Err("truncated".into())).await;
    assert_eq!((v.status, &*v.record.reason), (403, "malformed_request"));
    assert!(!v.allowed);
}

#[test]
fn the_context_of_a_check_is_in_key_order_so_that_the_cache_can_keep_it() {
    let h = http(&[("user-agent", "curl/8")], "127.0.0.1");
    let mut context = Context::new();
    context.insert("orders:Currency", ContextValue::Single("EUR".into()));
    server_keys(&h, 0, &mut context);
    let keys = |c: &Context| c.iter().map(|(k, _)| k.to_owned()).collect::<Vec<_>>();
    assert!(
        !keys(&context).is_sorted(),
        "the keys as added: {:?}",
        keys(&context)
    );
    let sorted = in_key_order(context.clone());
    assert_eq!(
        keys(&sorted),
        [
            "aws:securetransport",
            "aws:sourceip",
            "aws:useragent",
            "orders:currency"
        ]
    );
    for (k, v) in context.iter() {
        assert_eq!(sorted.get(k), Some(v), "{k}");
    }
    // What the service keeps as sent, and so may cache.
    let screened = crate::context::CallerContext::screen(sorted, |_| {});
    assert!(screened.is_as_sent());
    // A route without context keys: the server's keys alone are added in order.
    let mut alone = Context::new();
    server_keys(&h, 0, &mut alone);
    assert!(keys(&alone).is_sorted(), "{:?}", keys(&alone));
}

#[test]
fn an_address_is_written_as_display_writes_it() {
    let mut rng = oorandom::Rand32::new(16);
    for _ in 0..20_000 {
        let ip = IpAddr::from(std::net::Ipv4Addr::from(rng.rand_u32()));
        assert_eq!(ip_text(ip), ip.to_string());
    }
    for text in [
        "0.0.0.0",
        "255.255.255.255",
        "10.0.100.9",
        "::1",
        "2001:db8::1",
        "::ffff:1.2.3.4",
    ] {
        let ip: IpAddr = text.parse().unwrap();
        assert_eq!(ip_text(ip), ip.to_string());
    }
}

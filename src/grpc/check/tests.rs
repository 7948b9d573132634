use super::*;
use crate::eval::Decision;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/envoy/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The headers that differ between two captures of the same curl (Envoy's request id).
fn without_request_id(mut h: HttpCheck) -> HttpCheck {
    h.headers.retain(|(k, _)| k != "x-request-id");
    h
}

#[test]
fn both_header_encodings_decode_to_the_same_request() {
    let plain = decode(&fixture("check_request_default.bin")).unwrap();
    let raw = decode(&fixture("check_request_raw_headers.bin")).unwrap();
    assert_eq!(plain.method, "GET");
    assert_eq!(plain.path, "/allowed/x?q=1");
    assert_eq!(plain.host, "127.0.0.1:18000");
    assert_eq!(plain.scheme, "http");
    assert_eq!(plain.peer, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(plain.header("authorization"), Some("Bearer abc"));
    assert_eq!(plain.header("x-multi"), Some("a,b"));
    assert_eq!(
        plain.extensions.get("route").map(String::as_str),
        Some("catch-all")
    );
    let (plain, raw) = (without_request_id(plain), without_request_id(raw));
    let mut sorted = raw.headers.clone();
    sorted.sort();
    assert_eq!(plain.headers, sorted, "header_map joins repeated headers");
    assert_eq!(raw.header("x-multi"), Some("a,b"));
}

#[test]
fn jwt_authn_claims_are_read_from_the_metadata_context() {
    use envoy_types::pb::google::protobuf::ListValue;
    let mut check = CheckRequest::decode(&*fixture("check_request_default.bin")).unwrap();
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.into())),
    };
    let payload = Struct {
        fields: [
            ("sub".to_owned(), string("alice")),
            (
                "exp".to_owned(),
                Value {
                    kind: Some(Kind::NumberValue(1_900_000_000.0)),
                },
            ),
            (
                "groups".to_owned(),
                Value {
                    kind: Some(Kind::ListValue(ListValue {
                        values: vec![string("a"), string("b")],
                    })),
                },
            ),
        ]
        .into_iter()
        .collect(),
    };
    let attributes = check.attributes.as_mut().unwrap();
    attributes.metadata_context = Some(Metadata {
        filter_metadata: [(
            JWT_AUTHN_FILTER.to_owned(),
            Struct {
                fields: [(
                    "jwt_payload".to_owned(),
                    Value {
                        kind: Some(Kind::StructValue(payload)),
                    },
                )]
                .into_iter()
                .collect(),
            },
        )]
        .into_iter()
        .collect(),
        ..Metadata::default()
    });
    let http = decode(&check.encode_to_vec()).unwrap();
    let claims = http.jwt_claims.unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["exp"], 1_900_000_000_i64);
    assert_eq!(claims["groups"], serde_json::json!(["a", "b"]));
    // The fixture's own metadata is not jwt_authn's.
    assert!(
        decode(&fixture("check_request_default.bin"))
            .unwrap()
            .jwt_claims
            .is_none()
    );
}

#[test]
fn what_does_not_decode_says_what_is_missing() {
    assert!(
        decode(b"\xff\xff\xff")
            .unwrap_err()
            .contains("not a check request")
    );
    assert_eq!(
        decode(&CheckRequest::default().encode_to_vec()).unwrap_err(),
        "no `attributes`"
    );
    let mut many = CheckRequest::decode(&*fixture("check_request_default.bin")).unwrap();
    let http = many
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap();
    for i in 0..=MAX_HEADERS {
        http.headers.insert(format!("x-{i}"), "v".into());
    }
    assert!(
        decode(&many.encode_to_vec())
            .unwrap_err()
            .contains("headers")
    );
}

#[test]
fn a_deny_is_an_answer_with_envoy_status_and_body() {
    let verdict = Verdict {
        allowed: false,
        status: 403,
        headers: vec![("content-type".into(), "application/json".into())],
        remove: vec![],
        body: "{}".into(),
        record: Record {
            decision: Decision::ExplicitDeny,
            reason: "explicit_deny".into(),
            revision: 3,
            ..Record::default()
        },
    };
    let r = response(verdict);
    assert_eq!(r.status.as_ref().map(|s| s.code), Some(PERMISSION_DENIED));
    let Some(HttpResponse::DeniedResponse(d)) = r.http_response else {
        panic!("not denied")
    };
    assert_eq!(d.status.map(|s| s.code), Some(403));
    assert_eq!(d.body, "{}");
    let m = r.dynamic_metadata.unwrap().fields;
    assert_eq!(
        m["decision"].kind,
        Some(Kind::StringValue("ExplicitDeny".into()))
    );
    assert_eq!(m["revision"].kind, Some(Kind::NumberValue(3.0)));
}

#[test]
fn an_allow_overwrites_the_headers_it_sets_and_removes_the_rest() {
    let verdict = Verdict {
        allowed: true,
        status: 200,
        headers: vec![(
            "x-warden-principal-arn".into(),
            "arn:aws:iam::1:user/a".into(),
        )],
        remove: vec!["x-other".into()],
        body: String::new(),
        record: Record {
            decision: Decision::Allow,
            ..Record::default()
        },
    };
    let r = response(verdict);
    assert_eq!(r.status.as_ref().map(|s| s.code), Some(OK));
    let Some(HttpResponse::OkResponse(ok)) = r.http_response else {
        panic!("not ok")
    };
    assert_eq!(
        ok.headers[0].append_action,
        HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    );
    assert_eq!(ok.headers_to_remove, vec!["x-other".to_owned()]);
}

#[test]
fn the_body_is_known_when_envoy_sent_it_whole_or_the_request_has_none() {
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let bytes = |b: &[u8]| Some(prost::bytes::Bytes::copy_from_slice(b));
    // Sent by Envoy, as bytes or as text.
    assert_eq!(
        request_body(String::new(), b"a=1".to_vec(), &h(&[])),
        bytes(b"a=1")
    );
    assert_eq!(
        request_body("a=1".into(), Vec::new(), &h(&[("content-length", "3")])),
        bytes(b"a=1")
    );
    // No body declared: empty.
    assert_eq!(request_body(String::new(), Vec::new(), &h(&[])), bytes(b""));
    assert_eq!(
        request_body(String::new(), Vec::new(), &h(&[("content-length", "0")])),
        bytes(b"")
    );
    // A body Envoy did not send, or sent in part: unknown.
    for headers in [
        h(&[("content-length", "12")]),
        h(&[("transfer-encoding", "chunked")]),
    ] {
        assert_eq!(request_body(String::new(), Vec::new(), &headers), None);
    }
    assert_eq!(
        request_body(
            "a=".into(),
            Vec::new(),
            &h(&[(PARTIAL_BODY_HEADER, "true")])
        ),
        None
    );
    assert_eq!(
        request_body(
            "a=1".into(),
            Vec::new(),
            &h(&[(PARTIAL_BODY_HEADER, "false")])
        ),
        bytes(b"a=1")
    );
}

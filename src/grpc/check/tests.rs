use envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderMap, HeaderValue, HeaderValueOption, Metadata, Pipe, SocketAddress, address,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest as PbHttpRequest, Peer, Request as PbRequest,
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
    check_response::HttpResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use std::net::IpAddr;

use super::*;
use crate::eval::Decision;

/// The answer as Envoy reads it.
fn response(verdict: &Verdict) -> CheckResponse {
    CheckResponse::decode(encode_response(verdict)).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/envoy/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The headers that differ between two captures of the same curl (Envoy's request id).
fn without_request_id(mut h: HttpCheck<'_>) -> HttpCheck<'_> {
    h.headers.retain(|(k, _)| k != "x-request-id");
    h
}

#[test]
fn both_header_encodings_decode_to_the_same_request() {
    let (plain, raw) = (
        fixture("check_request_default.bin"),
        fixture("check_request_raw_headers.bin"),
    );
    let (plain, raw) = (decode(&plain).unwrap(), decode(&raw).unwrap());
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
    assert_eq!(
        in_name_order(plain).headers,
        in_name_order(raw.clone()).headers,
        "header_map joins repeated headers"
    );
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
    let bytes = check.encode_to_vec();
    let http = decode(&bytes).unwrap();
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
    let http = http_of(&mut many);
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
        headers: smallvec::smallvec![("content-type".into(), "application/json".into())],
        remove: smallvec::smallvec![],
        body: "{}".into(),
        record: Record {
            decision: Decision::ExplicitDeny,
            reason: "explicit_deny".into(),
            revision: 3,
            ..Record::default()
        },
    };
    let r = response(&verdict);
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
        headers: smallvec::smallvec![(
            "x-warden-principal-arn".into(),
            "arn:aws:iam::1:user/a".into(),
        )],
        remove: smallvec::smallvec!["x-other".into()],
        body: String::new(),
        record: Record {
            decision: Decision::Allow,
            ..Record::default()
        },
    };
    let r = response(&verdict);
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
    let h = |pairs: &[(&'static str, &'static str)]| -> Vec<Header<'static>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    };
    let bytes = |b: &[u8]| Some(prost::bytes::Bytes::copy_from_slice(b));
    // Sent by Envoy, as bytes or as text.
    assert_eq!(request_body("", b"a=1", &h(&[])), bytes(b"a=1"));
    assert_eq!(
        request_body("a=1", &[], &h(&[("content-length", "3")])),
        bytes(b"a=1")
    );
    // No body declared: empty.
    assert_eq!(request_body("", &[], &h(&[])), bytes(b""));
    assert_eq!(
        request_body("", &[], &h(&[("content-length", "0")])),
        bytes(b"")
    );
    // A body Envoy did not send, or sent in part: unknown.
    for headers in [
        h(&[("content-length", "12")]),
        h(&[("transfer-encoding", "chunked")]),
    ] {
        assert_eq!(request_body("", &[], &headers), None);
    }
    assert_eq!(
        request_body("a=", &[], &h(&[(PARTIAL_BODY_HEADER, "true")])),
        None
    );
    assert_eq!(
        request_body("a=1", &[], &h(&[(PARTIAL_BODY_HEADER, "false")])),
        bytes(b"a=1")
    );
}

// === the decoder and the writer against prost ===

/// What [`decode`] stands for: the message decoded by prost, then converted (the decoder
/// before it read the bytes itself).
fn prost_decode(bytes: &[u8]) -> Result<HttpCheck<'static>, String> {
    let request = CheckRequest::decode(bytes).map_err(|e| format!("not a check request: {e}"))?;
    let CheckRequest { attributes } = request;
    let AttributeContext {
        source,
        destination: _,
        request,
        context_extensions,
        metadata_context,
        route_metadata_context: _,
        tls_session: _,
    } = attributes.ok_or("no `attributes`")?;
    let PbRequest { time: _, http } = request.ok_or("no `attributes.request`")?;
    let PbHttpRequest {
        id: _,
        method,
        headers,
        header_map,
        path,
        host,
        scheme,
        query: _,
        fragment: _,
        size: _,
        protocol: _,
        body,
        raw_body,
    } = http.ok_or("no `attributes.request.http`")?;
    let headers = match header_map {
        // `encode_raw_headers: true`: repeated headers arrive apart; joined as Envoy joins
        // them in `headers`, so that both encodings decide alike.
        Some(map) => {
            if map.headers.len() > MAX_HEADERS {
                return Err(format!("more than {MAX_HEADERS} headers"));
            }
            let mut joined: Vec<(String, String)> = Vec::with_capacity(map.headers.len());
            for HeaderValue {
                key,
                value,
                raw_value,
            } in map.headers
            {
                let value = if raw_value.is_empty() {
                    value
                } else {
                    String::from_utf8(raw_value)
                        .map_err(|_| format!("header `{key}` is not UTF-8"))?
                };
                let key = key.to_ascii_lowercase();
                match joined.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => {
                        v.push(',');
                        v.push_str(&value);
                    }
                    None => joined.push((key, value)),
                }
            }
            joined
        }
        None => {
            if headers.len() > MAX_HEADERS {
                return Err(format!("more than {MAX_HEADERS} headers"));
            }
            let mut list: Vec<(String, String)> = headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            // A map's order is arbitrary; sorted, a request reads the same every time.
            list.sort();
            list
        }
    };
    let (peer, peer_principal) = match source {
        Some(Peer {
            address, principal, ..
        }) => (address.as_ref().and_then(socket_ip), principal),
        None => (None, String::new()),
    };
    let jwt_claims = metadata_context
        .and_then(
            |Metadata {
                 filter_metadata, ..
             }| {
                filter_metadata
                    .into_iter()
                    .find(|(k, _)| k == JWT_AUTHN_FILTER)
            },
        )
        .and_then(|(_, s)| jwt_payload(s));
    let headers: Vec<Header<'static>> = headers
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let body = request_body(&body, &raw_body, &headers);
    Ok(HttpCheck {
        method: method.into(),
        host: host.into(),
        path: path.into(),
        scheme: scheme.into(),
        headers,
        peer,
        peer_principal: peer_principal.into(),
        extensions: context_extensions,
        jwt_claims,
        body,
    })
}

/// The downstream's IP address, when it connected over IP.
fn socket_ip(address: &Address) -> Option<IpAddr> {
    match &address.address {
        Some(address::Address::SocketAddress(SocketAddress { address, .. })) => {
            address.parse().ok()
        }
        _ => None,
    }
}

/// What [`encode_response`] stands for: the message, built with prost's types.
fn message(verdict: Verdict<'_>) -> CheckResponse {
    let Verdict {
        allowed,
        status,
        headers,
        remove,
        body,
        record,
    } = verdict;
    let headers: Vec<HeaderValueOption> = headers
        .into_iter()
        .map(|(key, value)| HeaderValueOption {
            header: Some(HeaderValue {
                key: key.into_owned(),
                value: value.into_owned(),
                raw_value: Vec::new(),
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..HeaderValueOption::default()
        })
        .collect();
    let dynamic_metadata = (!record.fields.is_empty()).then(|| metadata_struct(&record));
    if allowed {
        CheckResponse {
            status: Some(rpc_status(OK, "")),
            dynamic_metadata,
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers,
                headers_to_remove: remove.into_iter().map(Cow::into_owned).collect(),
                ..OkHttpResponse::default()
            })),
        }
    } else {
        let code = if status == 401 {
            UNAUTHENTICATED
        } else {
            PERMISSION_DENIED
        };
        CheckResponse {
            status: Some(rpc_status(code, &record.reason)),
            dynamic_metadata,
            http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: Some(HttpStatus {
                    code: i32::from(status),
                }),
                headers,
                body,
            })),
        }
    }
}

fn rpc_status(code: i32, message: &str) -> RpcStatus {
    RpcStatus {
        code,
        message: message.to_owned(),
        details: Vec::new(),
    }
}

/// The decision for Envoy's dynamic metadata: every field, then those the record does not
/// list taken out.
fn metadata_struct(record: &Record<'_>) -> Struct {
    let Record {
        decision,
        reason,
        revision,
        decision_id,
        principal,
        action,
        resource,
        listener,
        route,
        dry_run,
        fields: listed,
    } = record;
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    // Sized for every field at once: no rehash while it fills.
    let mut fields = HashMap::with_capacity(10);
    fields.insert("decision".to_owned(), string(decision.as_str()));
    fields.insert("reason".to_owned(), string(reason));
    fields.insert(
        "revision".to_owned(),
        Value {
            kind: Some(Kind::NumberValue(*revision as f64)),
        },
    );
    fields.insert("decision_id".to_owned(), string(decision_id));
    for (key, value) in [
        ("principal", principal),
        ("action", action),
        ("resource", resource),
        ("listener", listener),
        ("route", route),
    ] {
        if !value.is_empty() {
            fields.insert(key.to_owned(), string(value));
        }
    }
    fields.insert(
        "dry_run".to_owned(),
        Value {
            kind: Some(Kind::BoolValue(*dry_run)),
        },
    );
    fields.retain(|name, _| MetadataFields::named(name).is_some_and(|f| listed.has(f)));
    Struct { fields }
}

fn pick<'a, T>(rng: &mut oorandom::Rand32, from: &'a [T]) -> &'a T {
    &from[rng.rand_range(0..from.len() as u32) as usize]
}

/// A random `CheckRequest`: any of the fields warden reads present or not, headers in
/// either encoding (with names in any case, repeated, with raw values), sources of each
/// kind, `jwt_authn` claims or another filter's metadata, and fields warden skips.
fn random_request(rng: &mut oorandom::Rand32) -> CheckRequest {
    let text = |rng: &mut oorandom::Rand32, from: &[&str]| (*pick(rng, from)).to_owned();
    let names = [
        "host",
        "X-Multi",
        "x-multi",
        "authorization",
        "content-length",
        "",
        "user-agent",
        "x-\u{e9}t\u{e9}",
    ];
    // Text in several scripts, and a value of 300 bytes (its length and its entry's take
    // two bytes; `wire::utf8` checks it by SIMD, the short ones as ASCII first).
    let long = format!("Bearer {}\u{e9}", "t".repeat(300));
    let values = [
        "",
        "a",
        "b,c",
        "Bearer t",
        "0",
        "3",
        "caf\u{e9}",
        "\u{65e5}\u{672c}",
        &long,
    ];
    let mut http = PbHttpRequest {
        id: text(rng, &["", "id-1"]),
        method: text(rng, &["", "GET", "POST"]),
        path: text(rng, &["", "/orders/42", "/a?b=c"]),
        host: text(rng, &["", "shop.example"]),
        scheme: text(rng, &["", "http", "https"]),
        query: text(rng, &["", "b=c"]),
        size: i64::from(rng.rand_range(0..3)),
        protocol: text(rng, &["", "HTTP/1.1"]),
        body: text(rng, &["", "a=1"]),
        raw_body: pick(rng, &[&b""[..], b"x=2"]).to_vec(),
        ..PbHttpRequest::default()
    };
    for _ in 0..rng.rand_range(0..6) {
        http.headers.insert(text(rng, &names), text(rng, &values));
    }
    if rng.rand_range(0..2) == 0 {
        let headers = (0..rng.rand_range(0..6))
            .map(|_| HeaderValue {
                key: text(rng, &names),
                value: text(rng, &values),
                raw_value: pick(rng, &[&b""[..], b"raw", b"r,s"]).to_vec(),
            })
            .collect();
        http.header_map = Some(HeaderMap { headers });
    }
    let socket = |address: &str| Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.to_owned(),
            ..SocketAddress::default()
        })),
    };
    let source = match rng.rand_range(0..5) {
        0 => None,
        1 => Some(Peer::default()),
        2 => Some(Peer {
            address: Some(socket(&text(rng, &["127.0.0.1", "::1", "not an ip", ""]))),
            principal: text(rng, &["", "spiffe://cluster.local/ns/shop/sa/app"]),
            service: text(rng, &["", "svc"]),
            ..Peer::default()
        }),
        3 => Some(Peer {
            address: Some(Address {
                address: Some(address::Address::Pipe(Pipe {
                    path: "/tmp/s".into(),
                    mode: 0,
                })),
            }),
            ..Peer::default()
        }),
        _ => Some(Peer {
            address: Some(Address { address: None }),
            principal: "p".into(),
            ..Peer::default()
        }),
    };
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    let claims = |sub: &str| Struct {
        fields: [(
            "jwt_payload".to_owned(),
            Value {
                kind: Some(Kind::StructValue(Struct {
                    fields: [("sub".to_owned(), string(sub))].into_iter().collect(),
                })),
            },
        )]
        .into_iter()
        .collect(),
    };
    let metadata = match rng.rand_range(0..4) {
        0 => None,
        1 => Some(Metadata::default()),
        2 => Some(Metadata {
            filter_metadata: [(JWT_AUTHN_FILTER.to_owned(), claims("alice"))]
                .into_iter()
                .collect(),
            ..Metadata::default()
        }),
        _ => Some(Metadata {
            filter_metadata: [("envoy.other".to_owned(), claims("bob"))]
                .into_iter()
                .collect(),
            ..Metadata::default()
        }),
    };
    let request = match rng.rand_range(0..6) {
        0 => None,
        1 => Some(PbRequest::default()),
        _ => Some(PbRequest {
            time: None,
            http: Some(http),
        }),
    };
    let attributes = (rng.rand_range(0..8) != 0).then(|| AttributeContext {
        source,
        destination: Some(Peer {
            principal: "destination".into(),
            ..Peer::default()
        }),
        request,
        context_extensions: (0..rng.rand_range(0..3))
            .map(|i| (format!("warden.k{i}"), text(rng, &values)))
            .collect(),
        metadata_context: metadata,
        ..AttributeContext::default()
    });
    CheckRequest { attributes }
}

#[test]
fn the_decoder_reads_what_prost_reads_and_merges_as_protobuf_merges() {
    let mut rng = oorandom::Rand32::new(14);
    let (mut decided, mut refused) = (0, 0);
    for round in 0..4000 {
        let mut bytes = random_request(&mut rng).encode_to_vec();
        // Two messages one after the other are one message, merged.
        if round % 3 == 0 {
            bytes.extend(random_request(&mut rng).encode_to_vec());
        }
        let (ours, theirs) = (decode(&bytes), prost_decode(&bytes));
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                same_request(a, b, &bytes);
                decided += 1;
            }
            (Err(_), Err(_)) => refused += 1,
            _ => panic!("{ours:?} against prost's {theirs:?}"),
        }
    }
    assert!(decided > 2000 && refused > 200, "{decided} {refused}");
    // Fixtures captured from Envoy, both encodings.
    for name in ["check_request_default.bin", "check_request_raw_headers.bin"] {
        let bytes = fixture(name);
        same_request(
            &decode(&bytes).unwrap(),
            &prost_decode(&bytes).unwrap(),
            &bytes,
        );
    }
}

/// `a` and `b` are the same request: equal once their headers are in name order (Envoy's
/// are kept in the order sent, prost's reading here sorts them), and every header name
/// finds the same value in each.
fn same_request(a: &HttpCheck<'_>, b: &HttpCheck<'_>, bytes: &[u8]) {
    for (name, _) in &b.headers {
        assert_eq!(a.header(name), b.header(name), "`{name}` in {bytes:?}");
    }
    assert_eq!(a.headers.len(), b.headers.len(), "{bytes:?}");
    assert_eq!(
        in_name_order(a.clone()),
        in_name_order(b.clone()),
        "{bytes:?}"
    );
}

fn in_name_order(mut h: HttpCheck<'_>) -> HttpCheck<'_> {
    h.headers.sort();
    h
}

/// A request as Envoy sends it (names in lower case, each once) keeps its headers in the
/// order sent; one with a name in upper case, or a name twice, has them sorted, the last
/// value of a name sent twice kept.
#[test]
fn headers_as_envoy_sends_them_are_kept_in_order() {
    let request = |headers: &[(&str, &str)]| {
        let mut r = CheckRequest::decode(&*fixture("check_request_default.bin")).unwrap();
        http_of(&mut r).headers.clear();
        r.encode_to_vec()
            .into_iter()
            .chain(headers.iter().flat_map(|(k, v)| http_header(k, v)))
            .collect::<Vec<u8>>()
    };
    let sent = request(&[("x-b", "1"), ("x-a", "2"), (":path", "/")]);
    assert_eq!(decode_owned(&sent), ["x-b=1", "x-a=2", ":path=/"]);
    let twice = request(&[("x-b", "1"), ("x-a", "2"), ("x-b", "3")]);
    assert_eq!(decode_owned(&twice), ["x-a=2", "x-b=3"]);
    let upper = request(&[("x-b", "1"), ("X-A", "2")]);
    assert_eq!(decode_owned(&upper), ["x-a=2", "x-b=1"]);
    // A name in capitals and the same in lower case are two keys of the map: both kept,
    // lowered, in sorted order whichever came first.
    let both = request(&[("x-b", "1"), ("X-A", "2"), ("x-a", "3")]);
    assert_eq!(decode_owned(&both), ["x-a=2", "x-a=3", "x-b=1"]);
    let last = request(&[("x-b", "3"), ("x-a", "2"), ("X-B", "1")]);
    assert_eq!(decode_owned(&last), ["x-a=2", "x-b=1", "x-b=3"]);
    // Up to 32 names are kept as sent; a 33rd makes the map sorted.
    let many: Vec<(String, String)> = (0..33)
        .rev()
        .map(|i| (format!("x-{i:02}"), i.to_string()))
        .collect();
    let pairs = |n: usize| -> Vec<(&str, &str)> {
        many.iter()
            .take(n)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    };
    let expect = |n: usize, sorted: bool| -> Vec<String> {
        let mut e: Vec<String> = pairs(n).iter().map(|(k, v)| format!("{k}={v}")).collect();
        if sorted {
            e.sort();
        }
        e
    };
    let thirty_two = decode_owned(&request(&pairs(32)));
    assert_eq!(thirty_two, expect(32, false));
    assert_ne!(thirty_two, expect(32, true), "kept, not sorted");
    assert_eq!(decode_owned(&request(&pairs(33))), expect(33, true));
}

/// The headers of a `CheckRequest`'s bytes, decoded, as `name=value`.
fn decode_owned(bytes: &[u8]) -> Vec<String> {
    decode(bytes)
        .unwrap()
        .headers
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// A request's `attributes.request.http`, to edit.
fn http_of(r: &mut CheckRequest) -> &mut PbHttpRequest {
    r.attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap()
}

/// The bytes of one `headers` entry appended to a `CheckRequest` (`attributes.request.http`
/// merged into the message before it, as protobuf merges).
fn http_header(name: &str, value: &str) -> Vec<u8> {
    let mut http = PbHttpRequest::default();
    http.headers.insert(name.to_owned(), value.to_owned());
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(PbRequest {
                http: Some(http),
                ..Default::default()
            }),
            ..AttributeContext::default()
        }),
    }
    .encode_to_vec()
}

#[test]
fn headers_are_counted_as_they_come_in_either_encoding() {
    let mut many = CheckRequest::decode(&*fixture("check_request_raw_headers.bin")).unwrap();
    let http = http_of(&mut many);
    let map = http.header_map.as_mut().unwrap();
    map.headers.truncate(0);
    for i in 0..MAX_HEADERS {
        map.headers.push(HeaderValue {
            key: format!("x-{i}"),
            value: "v".into(),
            raw_value: Vec::new(),
        });
    }
    assert!(decode(&many.encode_to_vec()).is_ok());
    // One more, even a repeat of a name: refused at the entry past the limit.
    let mut bytes = many.encode_to_vec();
    let one = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(PbRequest {
                time: None,
                http: Some(PbHttpRequest {
                    header_map: Some(HeaderMap {
                        headers: vec![HeaderValue {
                            key: "x-0".into(),
                            value: "w".into(),
                            raw_value: Vec::new(),
                        }],
                    }),
                    ..PbHttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    };
    bytes.extend(one.encode_to_vec());
    assert_eq!(
        decode(&bytes).unwrap_err(),
        format!("more than {MAX_HEADERS} headers")
    );
}

/// A value of 200 bytes: its length takes two bytes, and so do those of the messages
/// around it.
const LONG: &str = "arn:aws:orders:us-east-1:111122223333:order/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A random verdict: allowed or denied with each status, headers, removals, a body, and
/// a record with fields empty, short or long.
fn random_verdict(rng: &mut oorandom::Rand32) -> Verdict<'static> {
    let text = |rng: &mut oorandom::Rand32, from: &[&'static str]| Cow::Borrowed(*pick(rng, from));
    let pairs = |rng: &mut oorandom::Rand32| {
        (0..rng.rand_range(0..4))
            .map(|i| {
                (
                    Cow::Owned(format!("x-warden-{i}")),
                    text(rng, &["", "v", "arn:aws:iam::1:user/a", LONG]),
                )
            })
            .collect()
    };
    Verdict {
        allowed: rng.rand_range(0..2) == 0,
        status: *pick(rng, &[200, 401, 403, 503]),
        headers: pairs(rng),
        remove: (0..rng.rand_range(0..3))
            .map(|i| Cow::Owned([String::new(), format!("x-{i}")][i as usize % 2].clone()))
            .collect(),
        body: text(rng, &["", "{\"decision\":\"ExplicitDeny\"}", LONG]).into_owned(),
        record: Record {
            decision: *pick(
                rng,
                &[
                    Decision::Allow,
                    Decision::ExplicitDeny,
                    Decision::ImplicitDeny,
                ],
            ),
            reason: text(rng, &["", "identity_allow", "no_route", LONG]),
            revision: *pick(rng, &[0, 7, 1 << 60]),
            decision_id: text(rng, &["", "0123456789abcdef"]),
            principal: text(rng, &["", "arn:aws:sts::1:assumed-role/r/s", LONG]),
            action: text(rng, &["", "orders:GetOrder"]),
            resource: text(rng, &["", "arn:aws:orders:us-east-1:1:order/42", LONG]),
            listener: text(rng, &["", "default"]),
            route: text(rng, &["", "get-order"]),
            dry_run: rng.rand_range(0..2) == 0,
            fields: random_fields(rng),
        },
    }
}

/// Listed metadata fields: none, all, the default, or each field by a coin's toss.
fn random_fields(rng: &mut oorandom::Rand32) -> MetadataFields {
    match rng.rand_range(0..5) {
        0 => MetadataFields::NONE,
        1 => MetadataFields::ALL,
        2 => MetadataFields::default(),
        _ => MetadataFields::NAMED
            .iter()
            .filter(|_| rng.rand_range(0..2) == 0)
            .fold(MetadataFields::NONE, |all, (_, f)| all.with(*f)),
    }
}

#[test]
fn the_written_answer_is_the_message_prost_would_write() {
    let mut rng = oorandom::Rand32::new(15);
    // Values of every length around the ones where a length takes a second byte (an
    // entry's, a header's), for the writes that take a short entry's lengths at once.
    let lengths: Vec<String> = (0..260).map(|n| "a".repeat(n)).collect();
    for i in 0..6000 {
        let mut verdict = random_verdict(&mut rng);
        if i % 2 == 0 {
            let mut any = || -> Cow<'static, str> {
                Cow::Owned(lengths[rng.rand_range(0..260) as usize].clone())
            };
            let record = &mut verdict.record;
            record.reason = any();
            record.decision_id = any();
            record.principal = any();
            record.action = any();
            record.resource = any();
            record.listener = any();
            record.route = any();
            for (_, value) in verdict.headers.iter_mut() {
                *value = any();
            }
        }
        let bytes = encode_response(&verdict);
        let want = message(verdict);
        assert_eq!(CheckResponse::decode(bytes.clone()).unwrap(), want);
        assert_eq!(bytes.len(), want.encoded_len());
    }
}

#[test]
fn repeated_headers_are_joined_in_time_linear_in_their_length() {
    // 256 repeats of a 16 KiB value: joined once, 4 MiB, not 256 copies of a growing join.
    let value = "v".repeat(16 * 1024);
    let check = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(PbRequest {
                time: None,
                http: Some(PbHttpRequest {
                    header_map: Some(HeaderMap {
                        headers: (0..MAX_HEADERS)
                            .map(|_| HeaderValue {
                                key: "x-repeat".into(),
                                value: value.clone(),
                                raw_value: Vec::new(),
                            })
                            .collect(),
                    }),
                    ..PbHttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    };
    let bytes = check.encode_to_vec();
    let http = decode(&bytes).unwrap();
    let joined = http.header("x-repeat").unwrap();
    assert_eq!(joined.len(), MAX_HEADERS * (value.len() + 1) - 1);
    assert_eq!(joined.matches(',').count(), MAX_HEADERS - 1);
}

#[test]
fn context_extensions_are_counted_as_they_come() {
    let with = |n: usize| {
        let mut check = CheckRequest::decode(&*fixture("check_request_default.bin")).unwrap();
        let attributes = check.attributes.as_mut().unwrap();
        attributes.context_extensions = (0..n).map(|i| (format!("k{i}"), "v".into())).collect();
        check.encode_to_vec()
    };
    assert_eq!(
        decode(&with(MAX_EXTENSIONS)).unwrap().extensions.len(),
        MAX_EXTENSIONS
    );
    assert_eq!(
        decode(&with(MAX_EXTENSIONS + 1)).unwrap_err(),
        format!("more than {MAX_EXTENSIONS} context extensions")
    );
    // A key sent again counts again: the same key 65 times is refused too.
    let mut bytes = with(MAX_EXTENSIONS);
    let again = CheckRequest {
        attributes: Some(AttributeContext {
            context_extensions: [("k0".to_owned(), "w".to_owned())].into_iter().collect(),
            ..AttributeContext::default()
        }),
    };
    bytes.extend(again.encode_to_vec());
    assert!(decode(&bytes).is_err());
}

/// A `headers` entry of any shape is read as prost reads it: those Envoy sends at once
/// (`Reader::short_ascii_pair`), the others field by field.
#[test]
fn header_entries_of_every_shape_are_read_as_prost_reads_them() {
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![tag << 3 | 2];
        prost::encoding::encode_varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }
    let request = |entry: &[u8]| field(1, &field(4, &field(2, &field(3, entry))));
    let long = vec![b'v'; 130];
    let cases: Vec<Vec<u8>> = vec![
        b"\x0a\x01a\x12\x01b".to_vec(),
        b"\x12\x01b\x0a\x01a".to_vec(),
        b"\x0a\x01a\x0a\x01c\x12\x01b".to_vec(),
        b"\x0a\x01a\x12\x01b\x18\x01".to_vec(),
        b"\x0a\x01a\x12\x01b\x12\x01c".to_vec(),
        b"\x0a\x01a\x12\x02\xc3\xa9".to_vec(),
        b"\x0a\x02\xc3\xa9\x12\x01b".to_vec(),
        b"\x0a\x01a\x12\x01\xff".to_vec(),
        b"\x0a\x01\xff\x12\x01b".to_vec(),
        [&b"\x0a\x01a"[..], &field(2, &long)].concat(),
        [&field(1, &long)[..], &b"\x12\x01b"[..]].concat(),
        b"\x0a\x01a".to_vec(),
        b"\x12\x01b".to_vec(),
        b"\x0a\x00\x12\x00".to_vec(),
        b"\x0a\x05a".to_vec(),
        b"\x0a\x01a\x12\x01bc".to_vec(),
        b"\x0a\x01a\x12\x05b".to_vec(),
        b"\x0a\x01a\x12\x81\x00".to_vec(),
        Vec::new(),
    ];
    for entry in cases {
        let bytes = request(&entry);
        match (decode(&bytes), prost_decode(&bytes)) {
            (Ok(a), Ok(b)) => same_request(&a, &b, &bytes),
            (Err(_), Err(_)) => {}
            (ours, theirs) => panic!("{entry:?}: {ours:?} against prost's {theirs:?}"),
        }
    }
}

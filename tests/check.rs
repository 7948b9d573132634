//! Envoy's `Check` through a real `warden serve`: CheckRequests built from the captures in
//! `tests/fixtures/envoy` (Envoy 1.40's own, both header encodings) on a listener of the
//! test's own, the answers Envoy reads (status, denied body, upstream headers, dynamic
//! metadata), and a property test that `Check` and `Authorize` decide alike for random
//! routed requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod support;

use std::collections::HashMap;

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use envoy_types::pb::google::protobuf::value::Kind;
use prost::Message;
use support::{Server, example_copy};
use tonic::transport::Channel;
use warden::grpc::pb;

const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
const CAROL: &str = "arn:aws:iam::333333333333:user/engineering/carol";
const PRINCIPAL_HEADER: &str = "x-test-principal";

/// The test's own listener: a trusted header and mTLS for principals, four routes, every
/// field of the answer in Envoy's metadata.
const LISTENER: &str = r#"{
  "account": "333333333333",
  "region": "us-east-1",
  "unmatched": "deny",
  "principals": {
    "mtls": [{"spiffe": "spiffe://cluster.local/ns/{ns}/sa/{sa}",
              "role": "arn:aws:iam::333333333333:role/service/app-runtime",
              "session": "{ns}.{sa}"}],
    "trusted_header": {"name": "x-test-principal"}
  },
  "upstream_headers": {"principal": "x-warden-principal-arn", "decision_id": "x-warden-decision-id"},
  "metadata": ["decision", "reason", "revision", "decision_id", "principal", "action",
               "resource", "listener", "route", "dry_run"],
  "routes": [
    {"name": "get-order", "host": "*", "methods": ["GET"], "path": "/orders/{id}",
     "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"},
    {"name": "delete-order", "host": "*", "methods": ["DELETE"], "path": "/orders/{id}",
     "action": "orders:DeleteOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"},
    {"name": "list-orders", "host": "*", "methods": ["GET"], "path": "/orders",
     "action": "orders:ListOrders", "resource": "*"},
    {"name": "history", "host": "*", "methods": ["GET"], "path": "/orders/{id}/history/{rest...}",
     "action": "orders:DescribeOrderHistory",
     "resource": "arn:aws:orders:{region}:{account}:order/{id}", "dry_run": true}
  ]
}"#;

/// A listener that takes the claims Envoy's `jwt_authn` verified.
const METADATA_LISTENER: &str = r#"{
  "account": "333333333333",
  "region": "us-east-1",
  "principals": {
    "oidc": {"provider": "arn:aws:iam::333333333333:oidc-provider/demo.warden.invalid",
             "role": "arn:aws:iam::333333333333:role/service/app-runtime",
             "from_metadata": true}
  },
  "metadata": ["decision", "principal"],
  "routes": [
    {"name": "get-order", "methods": ["GET"], "path": "/orders/{id}",
     "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"}
  ]
}"#;

fn server() -> Server {
    let bundle = example_copy();
    let routes = bundle.path().join("routes");
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::write(routes.join("test.json"), LISTENER).unwrap();
    std::fs::write(routes.join("meta.json"), METADATA_LISTENER).unwrap();
    Server::start_in(bundle, &["--cache-size", "0"])
}

async fn client(server: &Server) -> AuthorizationClient<Channel> {
    AuthorizationClient::new(server.channel().await)
}

/// The captured request, sent to the test listener as `method path` by `principal`.
fn request(method: &str, path: &str, principal: Option<&str>) -> CheckRequest {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/envoy/check_request_default.bin"
    ))
    .unwrap();
    let mut check = CheckRequest::decode(&*bytes).unwrap();
    let attributes = check.attributes.as_mut().unwrap();
    attributes.context_extensions = HashMap::from([("warden.listener".into(), "test".into())]);
    let http = attributes
        .request
        .as_mut()
        .and_then(|r| r.http.as_mut())
        .unwrap();
    http.method = method.into();
    http.path = path.into();
    http.headers.insert(":method".into(), method.into());
    http.headers.insert(":path".into(), path.into());
    http.headers.remove("authorization");
    if let Some(p) = principal {
        http.headers.insert(PRINCIPAL_HEADER.into(), p.into());
    }
    check
}

/// What Envoy reads from an answer.
#[derive(Debug)]
struct Answer {
    /// 200 for OK, else the denied response's HTTP status.
    status: i32,
    headers: HashMap<String, String>,
    /// Headers removed before the request goes upstream.
    remove: Vec<String>,
    body: serde_json::Value,
    metadata: HashMap<String, String>,
}

fn read(r: CheckResponse) -> Answer {
    let metadata = r
        .dynamic_metadata
        .map(|s| {
            s.fields
                .into_iter()
                .map(|(k, v)| {
                    let text = match v.kind {
                        Some(Kind::StringValue(s)) => s,
                        Some(Kind::NumberValue(n)) => n.to_string(),
                        Some(Kind::BoolValue(b)) => b.to_string(),
                        other => format!("{other:?}"),
                    };
                    (k, text)
                })
                .collect()
        })
        .unwrap_or_default();
    let grpc = r.status.map(|s| s.code).unwrap_or(-1);
    let headers_of = |h: Vec<envoy_types::pb::envoy::config::core::v3::HeaderValueOption>| {
        h.into_iter()
            .filter_map(|o| o.header)
            .map(|h| (h.key, h.value))
            .collect::<HashMap<_, _>>()
    };
    match r.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            assert_eq!(grpc, 0);
            Answer {
                status: 200,
                headers: headers_of(ok.headers),
                remove: ok.headers_to_remove,
                body: serde_json::Value::Null,
                metadata,
            }
        }
        Some(HttpResponse::DeniedResponse(d)) => {
            let status = d.status.map(|s| s.code).unwrap_or(-1);
            assert_eq!(grpc, if status == 401 { 16 } else { 7 });
            Answer {
                status,
                headers: headers_of(d.headers),
                remove: Vec::new(),
                body: serde_json::from_str(&d.body).unwrap(),
                metadata,
            }
        }
        other => panic!("no http response: {other:?}"),
    }
}

async fn check(c: &mut AuthorizationClient<Channel>, r: CheckRequest) -> Answer {
    read(c.check(r).await.unwrap().into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_requests_go_upstream_with_the_principal_and_decision_id() {
    let server = server();
    let mut c = client(&server).await;
    let a = check(&mut c, request("GET", "/orders/42", Some(ALICE))).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.headers["x-warden-principal-arn"], ALICE);
    assert_eq!(a.headers["x-warden-decision-id"].len(), 32);
    assert_eq!(a.metadata["decision"], "Allow");
    assert_eq!(a.metadata["action"], "orders:GetOrder");
    assert_eq!(
        a.metadata["resource"],
        "arn:aws:orders:us-east-1:333333333333:order/42"
    );
    assert_eq!(a.metadata["route"], "get-order");
    assert_eq!(a.metadata["revision"], "1");
    assert_eq!(a.metadata["dry_run"], "false");
}

#[tokio::test(flavor = "multi_thread")]
async fn denies_are_403_answers_with_a_small_json_body() {
    let server = server();
    let mut c = client(&server).await;
    let a = check(&mut c, request("GET", "/orders/42", Some(CAROL))).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.body["decision"], "ImplicitDeny");
    assert_eq!(a.body["reason"], "no_identity_allow");
    assert_eq!(a.body["decision_id"].as_str().unwrap().len(), 32);
    assert_eq!(a.headers["content-type"], "application/json");
    // The Check face's metrics and Authorize's are one set, labelled by face.
    let m = server.metrics().await;
    assert_eq!(
        m.get(r#"warden_decisions_total{face="Check",decision="ImplicitDeny",reason="no_identity_allow"}"#),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_principal_the_answer_is_401_and_never_an_allow() {
    let server = server();
    let mut c = client(&server).await;
    let a = check(&mut c, request("GET", "/orders/42", None)).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.body["reason"], "no_principal");
    assert!(a.headers.contains_key("www-authenticate"));
    // An empty header is no principal either.
    let a = check(&mut c, request("GET", "/orders/42", Some(""))).await;
    assert_eq!(a.status, 401, "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unmatched_and_undecidable_paths_are_denied_with_their_reason() {
    let server = server();
    let mut c = client(&server).await;
    for (method, path, reason) in [
        ("GET", "/nowhere", "no_route"),
        ("POST", "/orders/42", "no_route"),
        ("GET", "/orders/a%2Fb", "encoded_slash"),
        ("GET", "/orders/a%2fb", "encoded_slash"),
        ("GET", "/orders/../admin", "dot_segment"),
        ("GET", "/orders//42", "empty_segment"),
        ("GET", "/orders/*", "wildcard_in_value"),
        ("GET", "/orders/4%3F2", "wildcard_in_value"),
    ] {
        let a = check(&mut c, request(method, path, Some(ALICE))).await;
        assert_eq!(a.status, 403, "{method} {path}: {a:?}");
        assert_eq!(a.body["reason"], reason, "{method} {path}");
    }
    let m = server.metrics().await;
    assert_eq!(
        m.get(r#"warden_check_refusals_total{reason="no_route"}"#),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_route_lets_a_deny_through_and_says_so() {
    let server = server();
    let mut c = client(&server).await;
    let a = check(
        &mut c,
        request("GET", "/orders/42/history/2026/11", Some(CAROL)),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.metadata["decision"], "ImplicitDeny");
    assert_eq!(a.metadata["dry_run"], "true");
    assert_eq!(a.metadata["route"], "history");
    // The upstream learns who asked, as for an allow.
    assert_eq!(a.headers["x-warden-principal-arn"], CAROL);
    assert!(a.remove.is_empty());
    // Without a principal, a client's own principal header is removed.
    let a = check(&mut c, request("GET", "/orders/42/history/2026", None)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.remove, vec!["x-warden-principal-arn".to_owned()]);
    let m = server.metrics().await;
    assert_eq!(m.get("warden_check_dry_run_passed_total"), 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_is_given_the_fields_a_listener_lists() {
    let server = server();
    let mut c = client(&server).await;
    let fields = |a: &Answer| {
        let mut keys: Vec<String> = a.metadata.keys().cloned().collect();
        keys.sort();
        keys
    };
    // The example's listener lists none: the default four.
    let mut r = request("GET", "/orders/42", None);
    let attributes = r.attributes.as_mut().unwrap();
    attributes.context_extensions.clear();
    attributes.source.as_mut().unwrap().principal =
        "spiffe://cluster.local/ns/shop/sa/app-runtime".into();
    let a = check(&mut c, r).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        fields(&a),
        ["decision", "decision_id", "reason", "revision"],
        "{a:?}"
    );
    assert_eq!(a.metadata["decision_id"], a.headers["x-warden-decision-id"]);
    // The test listener lists every one (those naming the request when known).
    let a = check(&mut c, request("GET", "/orders/42", Some(ALICE))).await;
    assert_eq!(
        fields(&a),
        [
            "action",
            "decision",
            "decision_id",
            "dry_run",
            "listener",
            "principal",
            "reason",
            "resource",
            "revision",
            "route"
        ],
        "{a:?}"
    );
    // A deny before any route: the listener's fields still.
    let a = check(&mut c, request("GET", "/nowhere", Some(ALICE))).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.metadata["reason"], "no_route");
    assert_eq!(a.metadata["listener"], "test");
    assert!(!a.metadata.contains_key("route"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mtls_peer_is_a_role_session_by_its_spiffe_id() {
    let server = server();
    let mut c = client(&server).await;
    let mut r = request("GET", "/orders/42", None);
    let source = r
        .attributes
        .as_mut()
        .and_then(|a| a.source.as_mut())
        .unwrap();
    source.principal = "spiffe://cluster.local/ns/shop/sa/orders-web".into();
    let a = check(&mut c, r.clone()).await;
    assert_eq!(
        a.metadata["principal"],
        "arn:aws:sts::333333333333:assumed-role/app-runtime/shop.orders-web",
        "{a:?}"
    );
    // A SPIFFE id no rule maps is no principal.
    r.attributes
        .as_mut()
        .and_then(|a| a.source.as_mut())
        .unwrap()
        .principal = "spiffe://elsewhere/sa/x".into();
    assert_eq!(check(&mut c, r).await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn both_header_encodings_decide_alike_and_malformed_bytes_are_a_deny() {
    let server = server();
    let mut c = client(&server).await;
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/envoy/check_request_raw_headers.bin"
    ))
    .unwrap();
    // As captured: no listener named, so the example's `default`, which has no route for
    // the captured path; a listener the bundle does not have is refused as such.
    let captured = CheckRequest::decode(&*raw).unwrap();
    let a = check(&mut c, captured.clone()).await;
    assert_eq!(
        (a.status, &a.body["reason"]),
        (403, &serde_json::json!("no_route"))
    );
    let mut elsewhere = captured;
    elsewhere.attributes.as_mut().unwrap().context_extensions =
        HashMap::from([("warden.listener".into(), "nowhere".into())]);
    let a = check(&mut c, elsewhere).await;
    assert_eq!(
        (a.status, &a.body["reason"]),
        (403, &serde_json::json!("unknown_listener"))
    );
    let mut raw = CheckRequest::decode(&*raw).unwrap();
    let plain = request("GET", "/orders/42", Some(ALICE));
    raw.attributes.as_mut().unwrap().context_extensions = plain
        .attributes
        .as_ref()
        .unwrap()
        .context_extensions
        .clone();
    let http = raw
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap();
    http.path = "/orders/42".into();
    let map = http.header_map.as_mut().unwrap();
    map.headers
        .push(envoy_types::pb::envoy::config::core::v3::HeaderValue {
            key: PRINCIPAL_HEADER.into(),
            value: String::new(),
            raw_value: ALICE.as_bytes().to_vec(),
        });
    let a = check(&mut c, raw).await;
    let b = check(&mut c, plain).await;
    assert_eq!(
        (a.status, &a.metadata["decision"]),
        (200, &"Allow".to_owned())
    );
    assert_eq!(a.metadata["principal"], b.metadata["principal"]);

    // Bytes that are no CheckRequest: a deny, not a gRPC error Envoy could fail open on.
    let mut raw_client = tonic::client::Grpc::new(server.channel().await);
    raw_client.ready().await.unwrap();
    let answer: tonic::Response<CheckResponse> = raw_client
        .unary(
            tonic::Request::new(Garbage),
            "/envoy.service.auth.v3.Authorization/Check"
                .parse()
                .unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    let a = read(answer.into_inner());
    assert_eq!(a.status, 403);
    assert_eq!(a.body["reason"], "malformed_request");
}

/// A message whose bytes are not a CheckRequest (field 1 with a truncated length).
#[derive(Clone, Default)]
struct Garbage;

impl prost::Message for Garbage {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(b"\x0a\xff\xff\x01");
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        4
    }
    fn clear(&mut self) {}
}

impl std::fmt::Debug for Garbage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Garbage")
    }
}

/// A request on the `meta` listener whose `jwt_authn` payload is `claims`.
fn with_jwt_payload(claims: serde_json::Value) -> CheckRequest {
    use envoy_types::pb::envoy::config::core::v3::Metadata;
    use envoy_types::pb::google::protobuf::{ListValue, Struct, Value};
    fn value(v: &serde_json::Value) -> Value {
        let kind = match v {
            serde_json::Value::String(s) => Kind::StringValue(s.clone()),
            serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
            serde_json::Value::Bool(b) => Kind::BoolValue(*b),
            serde_json::Value::Array(a) => Kind::ListValue(ListValue {
                values: a.iter().map(value).collect(),
            }),
            other => panic!("{other}"),
        };
        Value { kind: Some(kind) }
    }
    let payload = Struct {
        fields: claims
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect(),
    };
    let mut r = request("GET", "/orders/42", None);
    let attributes = r.attributes.as_mut().unwrap();
    attributes.context_extensions = HashMap::from([("warden.listener".into(), "meta".into())]);
    attributes.metadata_context = Some(Metadata {
        filter_metadata: HashMap::from([(
            "envoy.filters.http.jwt_authn".to_owned(),
            Struct {
                fields: HashMap::from([(
                    "jwt_payload".to_owned(),
                    Value {
                        kind: Some(Kind::StructValue(payload)),
                    },
                )]),
            },
        )]),
        ..Metadata::default()
    });
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_from_jwt_authn_metadata_are_still_checked_against_the_provider() {
    let server = server();
    let mut c = client(&server).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |iss: &str, aud: &str, exp: u64| serde_json::json!({"iss": iss, "aud": aud, "sub": "alice", "exp": exp});
    let issuer = "https://demo.warden.invalid";
    let a = check(
        &mut c,
        with_jwt_payload(claims(issuer, "orders", now + 600)),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.metadata["principal"],
        "arn:aws:sts::333333333333:assumed-role/app-runtime/alice"
    );
    for (claims, reason) in [
        // Past the listener's 60 s of skew.
        (claims(issuer, "orders", now - 120), "token_expired"),
        (
            claims("https://elsewhere", "orders", now + 600),
            "token_wrong_issuer",
        ),
        (
            claims(issuer, "someone-else", now + 600),
            "token_wrong_audience",
        ),
    ] {
        let a = check(&mut c, with_jwt_payload(claims.clone())).await;
        assert_eq!(
            (a.status, &a.body["reason"]),
            (401, &serde_json::json!(reason)),
            "{claims}"
        );
    }
    // Without jwt_authn's metadata there is no principal: the bearer header is not read.
    let mut r = request("GET", "/orders/42", None);
    let attributes = r.attributes.as_mut().unwrap();
    attributes.context_extensions = HashMap::from([("warden.listener".into(), "meta".into())]);
    let http = attributes
        .request
        .as_mut()
        .and_then(|r| r.http.as_mut())
        .unwrap();
    http.headers
        .insert("authorization".into(), "Bearer not.a.token".into());
    let a = check(&mut c, r).await;
    assert_eq!(
        (a.status, &a.body["reason"]),
        (401, &serde_json::json!("no_principal"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_and_health_list_check() {
    let server = server();
    let channel = server.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "envoy.service.auth.v3.Authorization".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("no list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"envoy.service.auth.v3.Authorization".to_owned()),
        "{names:?}"
    );
}

/// For random routed requests, `Check` and `Authorize` (with the mapped action, resource
/// and principal, and the keys the Check face fills) decide alike.
#[tokio::test(flavor = "multi_thread")]
async fn check_and_authorize_decide_alike() {
    let server = server();
    let mut c = client(&server).await;
    let mut authorizer = server.client().await;
    let principals = [
        ALICE,
        CAROL,
        "arn:aws:iam::333333333333:user/engineering/bob",
        "arn:aws:iam::555555555555:user/dana",
        "arn:aws:iam::222222222222:user/erin",
        "arn:aws:iam::333333333333:user/nobody",
        "arn:aws:sts::333333333333:assumed-role/app-runtime/s1",
    ];
    let ids = ["42", "7", "order-1", "a.b", "x_y", "Z9"];
    let mut rng = oorandom::Rand32::new(14);
    let mut pick = |n: usize| rng.rand_range(0..n as u32) as usize;
    let mut allowed = 0;
    for _ in 0..200 {
        let principal = principals[pick(principals.len())];
        let id = ids[pick(ids.len())];
        let (method, path, action, resource) = match pick(3) {
            0 => (
                "GET",
                format!("/orders/{id}"),
                "orders:GetOrder",
                format!("arn:aws:orders:us-east-1:333333333333:order/{id}"),
            ),
            1 => (
                "DELETE",
                format!("/orders/{id}"),
                "orders:DeleteOrder",
                format!("arn:aws:orders:us-east-1:333333333333:order/{id}"),
            ),
            _ => (
                "GET",
                "/orders".to_owned(),
                "orders:ListOrders",
                "*".to_owned(),
            ),
        };
        let a = check(&mut c, request(method, &path, Some(principal))).await;
        let mut ask = support::ask(principal, action, &resource);
        let context = [
            ("aws:SourceIp", "127.0.0.1"),
            ("aws:SecureTransport", "false"),
            ("aws:UserAgent", "curl/7.88.1"),
        ];
        for (k, v) in context {
            ask.context.insert(
                k.into(),
                pb::ContextValue {
                    kind: Some(pb::context_value::Kind::String(v.into())),
                },
            );
        }
        let b = authorizer.authorize(ask).await.unwrap().into_inner();
        let want = match b.decision() {
            pb::Decision::Allow => "Allow",
            pb::Decision::ExplicitDeny => "ExplicitDeny",
            _ => "ImplicitDeny",
        };
        assert_eq!(
            (
                a.metadata["decision"].as_str(),
                a.metadata["reason"].as_str()
            ),
            (want, b.reason.as_str()),
            "{principal} {method} {path}"
        );
        assert_eq!(a.status == 200, want == "Allow");
        allowed += usize::from(want == "Allow");
    }
    // Both outcomes were exercised.
    assert!(allowed > 0 && allowed < 200, "{allowed} allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_load_drives_check_against_the_server_and_the_baseline() {
    let server = server();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["loadgen", "--addr", &server.grpc, "-n", "200", "-c", "4"])
        .args(["--threads", "1", "--baseline", "--format", "json"])
        .args([
            "--face",
            "check",
            "--listener",
            "test",
            "--path",
            "/orders/42",
        ])
        .args(["--header", &format!("{PRINCIPAL_HEADER}={ALICE}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["target"]["ok"], 200);
    assert_eq!(report["baseline"]["ok"], 200);
    // 200 requests, and the one whose answer the baseline repeats: each an Allow of Check.
    let m = server.metrics().await;
    assert_eq!(
        m.get(r#"warden_decisions_total{face="Check",decision="Allow",reason="identity_allow"}"#),
        201.0
    );
}

// === credentials: SigV4-signed requests and session tokens ===

/// A listener that takes SigV4-signed requests and, behind trusted hops, a session token
/// alone in its own header.
const CREDENTIALS_LISTENER: &str = r#"{
  "account": "333333333333",
  "region": "us-east-1",
  "principals": {
    "sigv4": {},
    "session_token_header": {"name": "x-warden-session-token"}
  },
  "routes": [
    {"name": "get-order", "methods": ["GET"], "path": "/orders/{id}",
     "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"},
    {"name": "list-orders", "methods": ["GET"], "path": "/orders",
     "action": "orders:ListOrders", "resource": "*"}
  ]
}"#;

const TOKEN_HEADER: &str = "x-warden-session-token";
const APP_RUNTIME: &str = "arn:aws:iam::333333333333:role/service/app-runtime";
/// What the captured request's `:authority` is: the host the SDK signed.
const HOST: &str = "127.0.0.1:18000";

/// A server with a key ring and a secrets store holding one access key for Alice and one
/// for Carol.
struct Credentialed {
    server: Server,
    ring: warden::sts::keyring::KeyRing,
    alice: warden::sts::secrets::AccessKey,
    carol: warden::sts::secrets::AccessKey,
    /// The decision log.
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Credentialed {
    /// The decision log's record of `decision_id`, waited for.
    async fn logged(&self, decision_id: &str) -> serde_json::Value {
        for _ in 0..500 {
            let found = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|r| r["decision_id"] == decision_id);
            if let Some(record) = found {
                return record;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no decision `{decision_id}` in the log");
    }
}

fn credentialed_server() -> Credentialed {
    use warden::sts::keyring::KeyRing;
    use warden::sts::secrets::SecretsStore;
    let dir = tempfile::tempdir().unwrap();
    let (ring_path, store_path) = (dir.path().join("ring.json"), dir.path().join("secrets"));
    let log = dir.path().join("decisions.jsonl");
    let ring = KeyRing::generate().unwrap();
    ring.save(&ring_path).unwrap();
    let mut store = SecretsStore::new();
    let alice = store.create_key(ALICE).unwrap();
    let carol = store.create_key(CAROL).unwrap();
    store.save(&store_path, &ring).unwrap();
    let bundle = example_copy();
    let routes = bundle.path().join("routes");
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::write(routes.join("creds.json"), CREDENTIALS_LISTENER).unwrap();
    let server = Server::start_in(
        bundle,
        &[
            "--cache-size",
            "0",
            "--key-ring",
            ring_path.to_str().unwrap(),
            "--secrets",
            store_path.to_str().unwrap(),
            "--decision-log",
            log.to_str().unwrap(),
        ],
    );
    Credentialed {
        server,
        ring,
        alice,
        carol,
        log,
        _dir: dir,
    }
}

/// Credentials to sign with: (access key id, secret, session token).
type Keys<'a> = (&'a str, &'a str, Option<&'a str>);

/// A request on the credentials listener, without credentials.
fn unsigned(method: &str, path: &str) -> CheckRequest {
    let mut r = request(method, path, None);
    r.attributes.as_mut().unwrap().context_extensions =
        HashMap::from([("warden.listener".into(), "creds".into())]);
    r
}

fn headers_of(r: &mut CheckRequest) -> &mut HashMap<String, String> {
    &mut r
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap()
        .headers
}

/// `method path` signed as an AWS SDK signs it (the `host` header, an empty body) with
/// `keys`, scoped to `service`, plus `extra` headers signed too; Envoy hands its headers
/// over with `:authority` for the host.
fn signed(
    method: &str,
    path: &str,
    keys: Keys<'_>,
    service: &str,
    extra: &[(&str, &str)],
) -> CheckRequest {
    use warden::sigv4::{HttpRequest, Payload, Signer, sign_headers};
    let mut to_sign = vec![("host", HOST)];
    to_sign.extend_from_slice(extra);
    let payload = if extra.iter().any(|(n, _)| *n == "x-amz-content-sha256") {
        Payload::Unknown
    } else {
        Payload::Bytes(b"")
    };
    let added = sign_headers(
        &HttpRequest {
            method,
            target: path,
            headers: &to_sign,
            payload,
        },
        &Signer {
            access_key_id: keys.0,
            secret_access_key: keys.1,
            session_token: keys.2,
            region: "us-east-1",
            service,
        },
        std::time::SystemTime::now(),
    );
    let mut r = unsigned(method, path);
    let headers = headers_of(&mut r);
    for (name, value) in extra
        .iter()
        .copied()
        .chain(added.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        headers.insert(name.to_ascii_lowercase(), value.to_owned());
    }
    r
}

/// What `Authorize` decides for `principal` with the keys the Check face fills.
async fn authorize_as(
    server: &Server,
    principal: &str,
    action: &str,
    resource: &str,
) -> (String, String) {
    let mut ask = support::ask(principal, action, resource);
    ask.context = context_of_check();
    answer_of(
        server
            .client()
            .await
            .authorize(ask)
            .await
            .unwrap()
            .into_inner(),
    )
}

/// The same, for the session whose token is `token`.
async fn authorize_with_token(
    server: &Server,
    token: &str,
    action: &str,
    resource: &str,
) -> (String, String) {
    let mut ask = support::ask("", action, resource);
    ask.session_token = token.into();
    ask.context = context_of_check();
    answer_of(
        server
            .client()
            .await
            .authorize(ask)
            .await
            .unwrap()
            .into_inner(),
    )
}

fn context_of_check() -> std::collections::BTreeMap<String, pb::ContextValue> {
    [
        ("aws:SourceIp", "127.0.0.1"),
        ("aws:SecureTransport", "false"),
        ("aws:UserAgent", "curl/7.88.1"),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_owned(),
            pb::ContextValue {
                kind: Some(pb::context_value::Kind::String(v.into())),
            },
        )
    })
    .collect()
}

fn answer_of(b: pb::AuthorizeResponse) -> (String, String) {
    let decision = match b.decision() {
        pb::Decision::Allow => "Allow",
        pb::Decision::ExplicitDeny => "ExplicitDeny",
        _ => "ImplicitDeny",
    };
    (decision.to_owned(), b.reason)
}

fn decided(a: &Answer) -> (String, String) {
    (a.metadata["decision"].clone(), a.metadata["reason"].clone())
}

const ORDER_42: &str = "arn:aws:orders:us-east-1:333333333333:order/42";

#[tokio::test(flavor = "multi_thread")]
async fn a_request_signed_with_a_users_key_is_decided_as_that_user() {
    let cx = credentialed_server();
    let mut c = client(&cx.server).await;
    let alice = (cx.alice.id.as_str(), cx.alice.secret(), None);
    let carol = (cx.carol.id.as_str(), cx.carol.secret(), None);
    for (keys, user) in [(alice, ALICE), (carol, CAROL)] {
        for (path, action, resource) in [
            ("/orders/42", "orders:GetOrder", ORDER_42),
            ("/orders", "orders:ListOrders", "*"),
        ] {
            let a = check(&mut c, signed("GET", path, keys, "orders", &[])).await;
            let want = authorize_as(&cx.server, user, action, resource).await;
            assert_eq!(decided(&a), want, "{user} GET {path}: {a:?}");
            assert_eq!(a.status == 200, want.0 == "Allow", "{a:?}");
        }
    }
    // Both outcomes were exercised: Alice may read order 42, Carol may not.
    let a = check(&mut c, signed("GET", "/orders/42", alice, "orders", &[])).await;
    assert_eq!(a.status, 200, "{a:?}");
    // The decision log names the user the signature proved.
    let record = cx.logged(&a.metadata["decision_id"]).await;
    assert_eq!(record["principal"], ALICE, "{record}");
    // The upstream is told the user the signature proved.
    assert_eq!(a.headers["x-warden-principal-arn"], ALICE, "{a:?}");
    let a = check(&mut c, signed("GET", "/orders/42", carol, "orders", &[])).await;
    assert_eq!(a.status, 403, "{a:?}");

    // A body Envoy did not send verifies only when the SDK declared its payload unsigned.
    let mut r = signed(
        "GET",
        "/orders/42",
        alice,
        "orders",
        &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
    );
    headers_of(&mut r).insert("content-length".into(), "5".into());
    assert_eq!(check(&mut c, r).await.status, 200);
    let mut r = signed("GET", "/orders/42", alice, "orders", &[]);
    headers_of(&mut r).insert("content-length".into(), "5".into());
    let a = check(&mut c, r).await;
    assert_eq!(
        (a.status, &a.body["reason"]),
        (401, &serde_json::json!("credentials_refused"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_that_does_not_verify_is_a_401_never_a_grpc_error() {
    let cx = credentialed_server();
    let mut c = client(&cx.server).await;
    let alice = (cx.alice.id.as_str(), cx.alice.secret(), None);
    let refused = |a: &Answer| {
        assert_eq!(
            (a.status, &a.body["reason"]),
            (401, &serde_json::json!("credentials_refused")),
            "{a:?}"
        );
        assert_eq!(a.headers["www-authenticate"], "AWS4-HMAC-SHA256");
    };
    // A tampered signature.
    let mut r = signed("GET", "/orders/42", alice, "orders", &[]);
    let auth = headers_of(&mut r).get_mut("authorization").unwrap();
    let last = auth.pop().unwrap();
    auth.push(if last == '0' { '1' } else { '0' });
    refused(&check(&mut c, r).await);
    // A signed request sent to another path than the one signed.
    let mut r = signed("GET", "/orders/42", alice, "orders", &[]);
    let attributes = r.attributes.as_mut().unwrap();
    let http = attributes
        .request
        .as_mut()
        .and_then(|r| r.http.as_mut())
        .unwrap();
    http.path = "/orders/7".into();
    refused(&check(&mut c, r).await);
    // Scoped to another service than the route's action's.
    let a = check(&mut c, signed("GET", "/orders/42", alice, "files", &[])).await;
    refused(&a);
    let record = cx.logged(a.body["decision_id"].as_str().unwrap()).await;
    assert_eq!(record["reason"], "credentials_refused", "{record}");
    assert_eq!(record["action"], "orders:GetOrder", "{record}");
    // A wrong secret, and a key the store does not have.
    refused(
        &check(
            &mut c,
            signed("GET", "/orders/42", (alice.0, "x", None), "orders", &[]),
        )
        .await,
    );
    refused(
        &check(
            &mut c,
            signed(
                "GET",
                "/orders/42",
                ("AKIAAAAAAAAAAAAAAAAA", "x", None),
                "orders",
                &[],
            ),
        )
        .await,
    );
    // An Authorization header that is not SigV4 enough to read.
    let mut r = unsigned("GET", "/orders/42");
    headers_of(&mut r).insert("authorization".into(), "AWS4-HMAC-SHA256 nonsense".into());
    refused(&check(&mut c, r).await);
    // A security token without a signature proves nothing: no principal.
    let mut r = unsigned("GET", "/orders/42");
    headers_of(&mut r).insert("x-amz-security-token".into(), "anything".into());
    let a = check(&mut c, r).await;
    assert_eq!(
        (a.status, &a.body["reason"]),
        (401, &serde_json::json!("no_principal"))
    );
    // Counted by reason, and in the decision log's face metrics.
    let m = cx.server.metrics().await;
    assert_eq!(
        m.get(r#"warden_check_refusals_total{reason="credentials_refused"}"#),
        6.0
    );
}

/// A role session of app-runtime, sealed on the server's ring: its session policy allows
/// listing orders only; `expires_in` seconds from now (negative: already expired).
fn role_session(
    ring: &warden::sts::keyring::KeyRing,
    expires_in: i64,
) -> (String, warden::sts::token::SealedSession) {
    use warden::sts::token::{KeyIdKind, new_access_key_id, seal};
    use warden::sts::{Grant, Subject};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let grant = Grant {
        access_key_id: new_access_key_id(KeyIdKind::Session).unwrap(),
        subject: Subject::Role {
            role_arn: APP_RUNTIME.into(),
            session_name: "check-test".into(),
            chained: false,
        },
        issued_at: now - 7200,
        expires_at: now.checked_add_signed(expires_in).unwrap(),
        mfa_at: None,
        policy: Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"orders:ListOrders","Resource":"*"}]}"#
                .into(),
        ),
        policy_arns: Vec::new(),
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        source_identity: None,
        web_identity: None,
    };
    let sealed = seal(ring, &grant).unwrap();
    (grant.access_key_id, sealed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sessions_credentials_decide_as_the_session_with_its_session_policy() {
    let cx = credentialed_server();
    let mut c = client(&cx.server).await;
    let (akid, sealed) = role_session(&cx.ring, 3600);
    let token = sealed.session_token.as_str();
    let keys = (
        akid.as_str(),
        sealed.secret_access_key.as_str(),
        Some(token),
    );
    let session_arn = "arn:aws:sts::333333333333:assumed-role/app-runtime/check-test";
    // The role allows reading order 42; the session policy narrows it to listing.
    assert_eq!(
        authorize_as(&cx.server, session_arn, "orders:GetOrder", ORDER_42)
            .await
            .0,
        "Allow"
    );
    for (path, action, resource, allowed) in [
        ("/orders", "orders:ListOrders", "*", true),
        ("/orders/42", "orders:GetOrder", ORDER_42, false),
    ] {
        let want = authorize_with_token(&cx.server, token, action, resource).await;
        assert_eq!(want.0 == "Allow", allowed, "{want:?}");
        // Signed with the session's credentials.
        let a = check(&mut c, signed("GET", path, keys, "orders", &[])).await;
        assert_eq!(decided(&a), want, "signed GET {path}: {a:?}");
        let record = cx.logged(&a.metadata["decision_id"]).await;
        assert_eq!(record["principal"], session_arn, "{record}");
        if allowed {
            assert_eq!(a.headers["x-warden-principal-arn"], session_arn, "{a:?}");
        }
        assert_eq!(a.status, if allowed { 200 } else { 403 }, "{a:?}");
        // The token alone, in the listener's header: removed before the upstream.
        let mut r = unsigned("GET", path);
        headers_of(&mut r).insert(TOKEN_HEADER.into(), token.into());
        let a = check(&mut c, r).await;
        assert_eq!(decided(&a), want, "token GET {path}: {a:?}");
        if allowed {
            assert!(a.remove.contains(&TOKEN_HEADER.to_owned()), "{a:?}");
        }
    }
    // A signature with the session's secret but without its token is refused.
    let a = check(
        &mut c,
        signed("GET", "/orders", (keys.0, keys.1, None), "orders", &[]),
    )
    .await;
    assert_eq!(a.status, 401, "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_or_tampered_session_credentials_are_a_401() {
    let cx = credentialed_server();
    let mut c = client(&cx.server).await;
    let (akid, sealed) = role_session(&cx.ring, -60);
    let token = sealed.session_token.as_str();
    let keys = (
        akid.as_str(),
        sealed.secret_access_key.as_str(),
        Some(token),
    );
    let a = check(&mut c, signed("GET", "/orders", keys, "orders", &[])).await;
    assert_eq!(
        (a.status, &a.body["reason"]),
        (401, &serde_json::json!("credentials_refused")),
        "{a:?}"
    );
    let mut r = unsigned("GET", "/orders");
    headers_of(&mut r).insert(TOKEN_HEADER.into(), token.into());
    let a = check(&mut c, r).await;
    assert_eq!(
        (a.status, &a.body["reason"]),
        (401, &serde_json::json!("credentials_refused")),
        "{a:?}"
    );
    // A token altered by one character does not open.
    let (_, sealed) = role_session(&cx.ring, 3600);
    let mut forged = sealed.session_token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let mut r = unsigned("GET", "/orders");
    headers_of(&mut r).insert(TOKEN_HEADER.into(), forged);
    let a = check(&mut c, r).await;
    assert_eq!(a.status, 401, "{a:?}");
    // A token sealed on another ring either.
    let other = warden::sts::keyring::KeyRing::generate().unwrap();
    let (_, elsewhere) = role_session(&other, 3600);
    let mut r = unsigned("GET", "/orders");
    headers_of(&mut r).insert(TOKEN_HEADER.into(), elsewhere.session_token);
    assert_eq!(check(&mut c, r).await.status, 401);
}

//! Attacks on the Check face through a real `warden serve`: each test pins a defect found
//! by the attack review of issue 14, and failed before its fix. The comment on each names
//! the defect.
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
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as PbRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use support::{Server, example_copy};
use tonic::transport::Channel;

const MALLORY: &str = "arn:aws:iam::333333333333:user/attack/mallory";

/// Mallory may do anything to orders, except: nothing on `order/secret`, and no order over
/// 1000 (the kind of guard a policy author writes on a request-derived key).
const MALLORY_USER: &str = r#"{
  "path": "/attack/",
  "inline_policies": {"orders": {"Version": "2012-10-17", "Statement": [
    {"Sid": "All", "Effect": "Allow", "Action": "orders:*", "Resource": "*"},
    {"Sid": "NotTheSecretOrder", "Effect": "Deny", "Action": "orders:*",
     "Resource": "arn:aws:orders:us-east-1:333333333333:order/secret"},
    {"Sid": "NoBigOrders", "Effect": "Deny", "Action": ["orders:CreateOrder", "orders:RefundOrder"],
     "Resource": "*", "Condition": {"NumericGreaterThan": {"orders:Amount": "1000"}}}
  ]}}
}"#;

/// A listener with the trusted header (the test names the principal directly).
const LISTENER: &str = r#"{
  "account": "333333333333",
  "region": "us-east-1",
  "unmatched": "deny",
  "principals": {"trusted_header": {"name": "x-test-principal"}},
  "routes": [
    {"name": "get-order", "methods": ["GET"], "path": "/orders/{id}",
     "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"},
    {"name": "create-order", "methods": ["POST"], "path": "/orders/{id}",
     "action": "orders:CreateOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}",
     "context": {"orders:Amount": {"header": "x-order-amount"}}},
    {"name": "refund-order", "methods": ["POST"], "path": "/orders/{id}/refund",
     "action": "orders:RefundOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}",
     "context": {"orders:Amount": {"query": "amount"}}}
  ]
}"#;

fn server() -> Server {
    let bundle = example_copy();
    let root = bundle.path();
    std::fs::create_dir_all(root.join("accounts/333333333333/users")).unwrap();
    std::fs::write(
        root.join("accounts/333333333333/users/mallory.json"),
        MALLORY_USER,
    )
    .unwrap();
    std::fs::write(root.join("routes/attack.json"), LISTENER).unwrap();
    // The same routes on a listener that lets unmatched requests through (incremental
    // adoption), as the issue allows.
    let open = LISTENER.replace(r#""unmatched": "deny""#, r#""unmatched": "allow""#);
    std::fs::write(root.join("routes/open.json"), open).unwrap();
    Server::start_in(bundle, &["--cache-size", "0"])
}

/// A CheckRequest as Envoy builds it (the `headers` encoding: a repeated header is one
/// entry, its values joined by `,`).
fn request(listener: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert(":method".into(), method.into());
    map.insert(":path".into(), path.into());
    map.insert(":authority".into(), "orders.test".into());
    for (k, v) in headers {
        map.entry((*k).to_owned())
            .and_modify(|old| {
                old.push(',');
                old.push_str(v);
            })
            .or_insert_with(|| (*v).to_owned());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: "192.0.2.10".into(),
                        ..SocketAddress::default()
                    })),
                }),
                ..Peer::default()
            }),
            request: Some(PbRequest {
                time: None,
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    host: "orders.test".into(),
                    scheme: "http".into(),
                    headers: map,
                    ..HttpRequest::default()
                }),
            }),
            context_extensions: HashMap::from([("warden.listener".into(), listener.into())]),
            ..AttributeContext::default()
        }),
    }
}

/// The HTTP status Envoy would answer with (200: forwarded upstream) and the reason.
fn status(r: &CheckResponse) -> (i32, String) {
    match &r.http_response {
        Some(HttpResponse::OkResponse(_)) => (200, String::new()),
        Some(HttpResponse::DeniedResponse(d)) => {
            let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
            (
                d.status.as_ref().map_or(-1, |s| s.code),
                body["reason"].as_str().unwrap_or_default().to_owned(),
            )
        }
        other => panic!("no http response: {other:?}"),
    }
}

async fn check(c: &mut AuthorizationClient<Channel>, r: CheckRequest) -> (i32, String) {
    status(&c.check(r).await.unwrap().into_inner())
}

// DEFECT 1 (path parameters, `;`): a `;` matrix parameter stays in the segment, so
// `/orders/secret;x` is decided on the resource `order/secret;x`, which the Deny on
// `order/secret` does not name, and is allowed; Tomcat, Jetty, Spring (and any servlet
// container) strip `;x` and serve `/orders/secret`. warden already reads `..;` as `..`
// (Tomcat's reading) but not `secret;x` as `secret`.
#[tokio::test(flavor = "multi_thread")]
async fn a_semicolon_path_parameter_does_not_dodge_a_deny_on_the_resource() {
    let server = server();
    let mut c = AuthorizationClient::new(server.channel().await);
    let who = [("x-test-principal", MALLORY)];
    assert_eq!(
        check(&mut c, request("attack", "GET", "/orders/42", &who))
            .await
            .0,
        200
    );
    let plain = check(&mut c, request("attack", "GET", "/orders/secret", &who)).await;
    assert_eq!(plain, (403, "explicit_deny".to_owned()));
    for path in [
        "/orders/secret;x",
        "/orders/secret;jsessionid=1",
        "/orders/secret%3Bx",
    ] {
        let got = check(&mut c, request("attack", "GET", path, &who)).await;
        assert_ne!(got.0, 200, "{path} reaches the upstream as /orders/secret");
    }
}

// DEFECT 1b (path parameters on a literal segment, `unmatched: allow`): `/orders;x/42`
// matches no route (the literal `orders` is compared with `orders;x`), so a listener in
// incremental adoption lets it through with no principal at all; a servlet upstream serves
// `/orders/42`. Same for a literal's case (`/ORDERS/42`) on a case-insensitive upstream is
// not claimed here: `;` is the unambiguous one.
#[tokio::test(flavor = "multi_thread")]
async fn a_semicolon_on_a_literal_segment_does_not_skip_the_route() {
    let server = server();
    let mut c = AuthorizationClient::new(server.channel().await);
    // The route applies: no principal is 401.
    assert_eq!(
        check(&mut c, request("open", "GET", "/orders/42", &[])).await,
        (401, "no_principal".to_owned())
    );
    let got = check(&mut c, request("open", "GET", "/orders;x/42", &[])).await;
    assert_ne!(
        got.0, 200,
        "`/orders;x/42` goes upstream unauthenticated: {got:?}"
    );
}

// DEFECT 2 (parameter pollution): a repeated query parameter becomes a multi-valued key,
// and a plain operator on a multi-valued key matches nothing, so `Deny ... NumericGreaterThan
// orders:Amount 1000` is skipped for `?amount=5000&amount=1`, and the request is allowed;
// the upstream reads one of the values (Flask, Express, PHP, Spring: the first or the last).
#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_query_parameter_does_not_turn_a_deny_off() {
    let server = server();
    let mut c = AuthorizationClient::new(server.channel().await);
    let who = [("x-test-principal", MALLORY)];
    assert_eq!(
        check(
            &mut c,
            request("attack", "POST", "/orders/42/refund?amount=10", &who)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        check(
            &mut c,
            request("attack", "POST", "/orders/42/refund?amount=5000", &who)
        )
        .await,
        (403, "explicit_deny".to_owned())
    );
    for query in ["amount=5000&amount=1", "amount=1&amount=5000"] {
        let got = check(
            &mut c,
            request(
                "attack",
                "POST",
                &format!("/orders/42/refund?{query}"),
                &who,
            ),
        )
        .await;
        assert_ne!(got.0, 200, "?{query} refunds 5000 past the Deny");
    }
}

// DEFECT 2b (the same through a repeated header): Envoy joins a repeated header's values
// with `,`; `x-order-amount: 5000` twice is the one value `5000,5000` (or `5000,1`), which
// is no number, so the NumericGreaterThan Deny does not match and the order is created;
// the upstream reads the first header (5000).
#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_header_does_not_turn_a_deny_off() {
    let server = server();
    let mut c = AuthorizationClient::new(server.channel().await);
    let one = [("x-test-principal", MALLORY), ("x-order-amount", "5000")];
    assert_eq!(
        check(&mut c, request("attack", "POST", "/orders/42", &one)).await,
        (403, "explicit_deny".to_owned())
    );
    let twice = [
        ("x-test-principal", MALLORY),
        ("x-order-amount", "5000"),
        ("x-order-amount", "1"),
    ];
    let got = check(&mut c, request("attack", "POST", "/orders/42", &twice)).await;
    assert_ne!(got.0, 200, "two x-order-amount headers create a 5000 order");
}

// DEFECT 3 (a key fetch in the request path): a token whose `kid` the provider's set lacks
// (anyone can make one) makes Check fetch the JWKS before answering, up to the fetch timeout
// (10 s) — far past Envoy's ext_authz timeout (0.25 s in deploy/envoy/envoy.yaml) and the
// server's own request timeout (2 s by default, which answers with a gRPC error). A deny
// becomes a timeout, which `failure_mode_allow: true` lets through, and each such request
// holds an admission permit meanwhile. Here the JWKS endpoint accepts and never answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_with_an_unknown_kid_is_denied_within_envoys_timeout_when_the_jwks_hangs() {
    // A key server that accepts connections and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in hang.incoming().take(8) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let bundle = example_copy();
    let root = bundle.path();
    std::fs::write(
        root.join("accounts/333333333333/oidc-providers/hang.json"),
        format!(
            r#"{{"url": "https://hang.example", "client_ids": ["orders"],
                "jwks_uri": "http://127.0.0.1:{port}/jwks"}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("routes/tokens.json"),
        r#"{
  "account": "333333333333", "region": "us-east-1", "unmatched": "deny",
  "principals": {"oidc": {"provider": "arn:aws:iam::333333333333:oidc-provider/hang.example",
                          "role": "arn:aws:iam::333333333333:role/service/app-runtime"}},
  "routes": [{"name": "get-order", "methods": ["GET"], "path": "/orders/{id}",
              "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"}]
}"#,
    )
    .unwrap();
    // The shipped request timeout (2 s).
    let server = Server::start_in(
        bundle,
        &["--request-timeout", "2s", "--revision-wait", "1s"],
    );
    let mut c = AuthorizationClient::new(server.channel().await);
    // {"alg":"RS256","kid":"made-up"} . {} . signature
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im1hZGUtdXAifQ.e30.c2ln";
    let auth = format!("Bearer {token}");
    let mut req = tonic::Request::new(request(
        "tokens",
        "GET",
        "/orders/42",
        &[("authorization", auth.as_str())],
    ));
    // Envoy gives up after its timeout; one second is four times the shipped one.
    req.set_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let answer = c.check(req).await;
    let took = started.elapsed();
    drop(held);
    match answer {
        Ok(r) => {
            let (code, reason) = status(&r.into_inner());
            assert_eq!(code, 401, "{reason}");
        }
        Err(e) => panic!(
            "a forged token got a gRPC error after {took:?} instead of a deny: {:?} {}",
            e.code(),
            e.message()
        ),
    }
}

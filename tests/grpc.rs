//! Black-box tests of `warden serve`: the real binary on loopback ports, driven over gRPC
//! (Authorizer, health, reflection) and its admin HTTP port, with a copy of the example
//! bundle that the tests edit and break while the server runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use warden::grpc::pb;
use warden::grpc::pb::authorizer_client::AuthorizerClient;

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;
use server::*;

const CAROL: &str = "arn:aws:iam::333333333333:user/engineering/carol";
const DEVELOPER: &str = "arn:aws:sts::555555555555:assumed-role/Developer/s1";
const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/1";

// === requests ===

fn string(s: &str) -> pb::ContextValue {
    pb::ContextValue {
        kind: Some(pb::context_value::Kind::String(s.into())),
    }
}

async fn authorize(
    client: &mut AuthorizerClient<Channel>,
    req: pb::AuthorizeRequest,
) -> pb::AuthorizeResponse {
    client.authorize(req).await.unwrap().into_inner()
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_explicit_deny_and_implicit_deny_are_ok_responses() {
    let server = Server::start(&[]);
    let mut c = server.client().await;

    let r = authorize(&mut c, ask(ALICE, "orders:GetOrder", ORDER)).await;
    assert_eq!(r.decision(), pb::Decision::Allow);
    assert_eq!(r.reason, "identity_allow");
    assert_eq!(r.revision, 1);
    assert_eq!(r.decision_id.len(), 32);
    assert!(r.denied_by.is_empty());
    assert!(
        r.statements
            .iter()
            .any(|s| s.kind == "identity" && s.sid == "PowerUserAccess"),
        "{:?}",
        r.statements
    );
    assert!(r.explanation.is_none());

    let r = authorize(&mut c, ask(DEVELOPER, "orders:DeleteOrder", PROD_ORDER)).await;
    assert_eq!(r.decision(), pb::Decision::ExplicitDeny);
    assert_eq!(r.reason, "explicit_deny");
    assert_eq!(r.denied_by, "scp");
    assert_eq!(r.statements.len(), 1);
    assert_eq!(r.statements[0].sid, "DenyDestructiveActions");
    assert_eq!(r.statements[0].effect(), pb::Effect::Deny);

    let r = authorize(&mut c, ask(CAROL, "orders:GetOrder", ORDER)).await;
    assert_eq!(r.decision(), pb::Decision::ImplicitDeny);
    assert_eq!(r.reason, "no_identity_allow");
    assert_eq!(r.denied_by, "identity");
    assert!(r.statements.is_empty());

    let unknown = "arn:aws:iam::333333333333:user/nobody";
    let r = authorize(&mut c, ask(unknown, "orders:GetOrder", ORDER)).await;
    assert_eq!(r.decision(), pb::Decision::ImplicitDeny);
    assert_eq!(r.reason, "unknown_principal");

    // Decision ids differ per decision, including cached ones.
    let a = authorize(&mut c, ask(ALICE, "orders:GetOrder", ORDER)).await;
    assert_ne!(
        a.decision_id,
        authorize(&mut c, ask(ALICE, "orders:GetOrder", ORDER))
            .await
            .decision_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_every_layer_and_why_statements_missed() {
    let server = Server::start(&[]);
    let mut c = server.client().await;
    let mut req = ask(CAROL, "orders:GetOrder", ORDER);
    req.explain = true;
    let r = authorize(&mut c, req).await;
    assert_eq!(r.decision(), pb::Decision::ImplicitDeny);
    let e = r.explanation.expect("an explanation");
    let kinds: Vec<&str> = e.layers.iter().map(|l| l.kind.as_str()).collect();
    assert!(
        kinds.contains(&"scp") && kinds.contains(&"identity"),
        "{kinds:?}"
    );
    let identity = e.layers.iter().find(|l| l.kind == "identity").unwrap();
    assert_eq!(identity.result(), pb::LayerResult::LayerNoMatch);
    assert_eq!(identity.level, None);
    let root = e.layers.iter().find(|l| l.kind == "scp").unwrap();
    assert_eq!(root.level, Some(0));
    assert_eq!(root.result(), pb::LayerResult::LayerAllow);
    let leave = root
        .statements
        .iter()
        .find(|s| s.sid == "DenyLeave")
        .unwrap();
    assert!(!leave.matched);
    assert_eq!(leave.mismatch(), pb::Mismatch::Action);
    // The RCP that keeps orders in the organization holds, so its Deny does not match on
    // its condition.
    let rcp = e
        .layers
        .iter()
        .flat_map(|l| &l.statements)
        .find(|s| s.sid == "OrdersStayInOrganization")
        .unwrap();
    assert_eq!(rcp.mismatch(), pb::Mismatch::Condition);
    assert_eq!(rcp.condition_key, "aws:principalorgid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_decides_every_item_at_one_revision() {
    let server = Server::start(&[]);
    let mut c = server.client().await;
    let item = |action: &str, resource: &str| pb::BatchItem {
        action: action.into(),
        resource: resource.into(),
        context: BTreeMap::new(),
    };
    let r = c
        .batch_authorize(pb::BatchAuthorizeRequest {
            principal: BOB.into(),
            items: vec![
                item("orders:GetOrder", ORDER),
                item("orders:UpdateOrder", ORDER),
                item("orders:ListOrders", "*"),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.revision, 1);
    let decisions: Vec<pb::Decision> = r.results.iter().map(|x| x.decision()).collect();
    assert_eq!(
        decisions,
        [
            pb::Decision::Allow,
            pb::Decision::ImplicitDeny,
            pb::Decision::Allow
        ]
    );
    assert!(r.results.iter().all(|x| x.revision == 1));

    let too_many = pb::BatchAuthorizeRequest {
        principal: BOB.into(),
        items: vec![item("orders:GetOrder", ORDER); 129],
        ..Default::default()
    };
    let e = c.batch_authorize(too_many).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "items: more than the maximum of 128 items");

    let mut bad_item = vec![item("orders:GetOrder", ORDER); 3];
    bad_item[2].resource = "order-42".into();
    let e = c
        .batch_authorize(pb::BatchAuthorizeRequest {
            principal: BOB.into(),
            items: bad_item,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("items[2].resource: `order-42`"),
        "{}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_request_is_invalid_argument_with_a_message() {
    let server = Server::start(&["--max-message-bytes", "65536"]);
    let mut c = server.client().await;
    let with_context = |entries: Vec<(String, pb::ContextValue)>| {
        let mut r = ask(ALICE, "orders:GetOrder", ORDER);
        r.context = entries.into_iter().collect();
        r
    };
    let list = |n: usize| pb::ContextValue {
        kind: Some(pb::context_value::Kind::List(pb::StringList {
            values: vec!["v".into(); n],
        })),
    };
    let cases: Vec<(&str, pb::AuthorizeRequest, &str)> = vec![
        (
            "no principal",
            ask("", "orders:GetOrder", ORDER),
            "principal: is required",
        ),
        (
            "principal not an ARN",
            ask("alice", "orders:GetOrder", ORDER),
            "principal: `alice` is not a principal ARN",
        ),
        (
            "a role is not a principal",
            ask(
                "arn:aws:iam::333333333333:role/app",
                "orders:GetOrder",
                ORDER,
            ),
            "principal: `arn:aws:iam::333333333333:role/app` is not a principal ARN",
        ),
        ("no action", ask(ALICE, "", ORDER), "action: is required"),
        (
            "action without service",
            ask(ALICE, "GetOrder", ORDER),
            "action: `GetOrder` is not `service:Action`",
        ),
        (
            "no resource",
            ask(ALICE, "orders:GetOrder", ""),
            "resource: is required",
        ),
        (
            "resource not an ARN",
            ask(ALICE, "orders:GetOrder", "order/42"),
            "resource: `order/42` is neither an ARN",
        ),
        (
            "oversized resource",
            ask(
                ALICE,
                "orders:GetOrder",
                &format!("arn:aws:s3:::{}", "x".repeat(3000)),
            ),
            "resource: is longer than 2048 bytes",
        ),
        (
            "context value without kind",
            with_context(vec![("k".into(), pb::ContextValue { kind: None })]),
            "context: key `k` has no value (set `string` or `list`)",
        ),
        (
            "context key twice",
            with_context(vec![
                ("aws:SourceVpc".into(), string("a")),
                ("aws:sourcevpc".into(), string("b")),
            ]),
            "is given twice (keys are case-insensitive)",
        ),
        (
            "too many context keys",
            with_context((0..65).map(|i| (format!("k{i}"), string("v"))).collect()),
            "context: more than the limit of 64 keys",
        ),
        (
            "too many values",
            with_context(vec![("aws:TagKeys".into(), list(65))]),
            "context: key `aws:TagKeys` has more than the limit of 64 values",
        ),
        (
            "oversized value",
            with_context(vec![("k".into(), string(&"v".repeat(5000)))]),
            "context: a value of key `k` is longer than 4096 bytes",
        ),
        (
            "a wildcard action",
            ask(ALICE, "orders:Get*", ORDER),
            "action: `orders:Get*` holds a wildcard",
        ),
        (
            "an action the catalog does not know",
            ask(ALICE, "orders:GetOrdr", ORDER),
            "action: `orders:GetOrdr` is not an action of the catalog",
        ),
        (
            "a principal in another partition",
            ask(
                "arn:aws-cn:sts::555555555555:assumed-role/BreakGlass/x",
                "orders:DeleteOrder",
                PROD_ORDER,
            ),
            "principal: `arn:aws-cn:sts::555555555555:assumed-role/BreakGlass/x` is in partition `aws-cn`",
        ),
    ];
    for (what, req, message) in cases {
        let e = c.authorize(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(e.message().contains(message), "{what}: {:?}", e.message());
    }
    // A message beyond the transport's limit is refused before it is decoded, with the
    // code gRPC transports use for it.
    let huge = with_context(vec![("k".into(), string(&"v".repeat(70_000)))]);
    let e = c.authorize(huge).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("the limit is: 65536 bytes"), "{e:?}");
    // Bytes that are not a protobuf message: INVALID_ARGUMENT, not INTERNAL.
    for garbage in [&[0xffu8, 0xff, 0xff][..], &[0x0a, 0x7f, b'x'][..]] {
        let e = raw_authorize(&server, garbage).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("malformed protobuf"), "{e:?}");
    }
    let m = server.metrics().await;
    assert_eq!(m.get("warden_invalid_requests_total"), 18.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_before_their_work_and_forged_keys_are_dropped() {
    let server = Server::start(&[]);
    let mut c = server.client().await;
    // 60,000 context keys (under the message limit): refused at the 65th, while reading.
    let many: BTreeMap<String, pb::ContextValue> = (0..60_000)
        .map(|i| (format!("k{i:05}"), string("v")))
        .collect();
    let mut req = ask(ALICE, "orders:GetOrder", ORDER);
    req.context = many.clone();
    assert!(prost::Message::encoded_len(&req) > 800_000);
    let e = c.authorize(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "context: more than the limit of 64 keys");
    // A batch sharing 40,000 keys among 128 items: refused before any item is read.
    let batch = pb::BatchAuthorizeRequest {
        principal: ALICE.into(),
        context: many.into_iter().take(40_000).collect(),
        items: vec![
            pb::BatchItem {
                action: "orders:GetOrder".into(),
                resource: ORDER.into(),
                context: BTreeMap::new(),
            };
            128
        ],
        ..Default::default()
    };
    let e = c.batch_authorize(batch).await.unwrap_err();
    assert_eq!(e.message(), "context: more than the limit of 64 keys");

    // The data perimeter: orders of the Workloads OU only for the organization's principals,
    // unless an AWS service calls. A principal outside claims to be a service.
    let bundle = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        bundle.path(),
    );
    for (rel, text) in [
        (
            "rcps/OrdersStayInOrganization.json",
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
            "Action": "orders:*", "Resource": "*",
            "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"},
                          "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}]}"#,
        ),
        (
            "accounts/999999999999/account.json",
            r#"{"name": "outside"}"#,
        ),
        (
            "accounts/999999999999/users/mallory.json",
            r#"{"inline_policies": {"all": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}}}"#,
        ),
        (
            "accounts/333333333333/resources/open.json",
            r#"{"arn": "arn:aws:orders:us-east-1:333333333333:order/open/*", "policy": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
            "Action": "orders:GetOrder"}]}}"#,
        ),
    ] {
        let path = bundle.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let server = Server::start_in(bundle, &[]);
    let mut c = server.client().await;
    let mallory = "arn:aws:iam::999999999999:user/mallory";
    let open = "arn:aws:orders:us-east-1:333333333333:order/open/1";
    for key in ["aws:PrincipalIsAWSService", "AWS:principalisawsservice"] {
        let mut req = ask(mallory, "orders:GetOrder", open);
        req.context.insert(key.into(), string("true"));
        let r = authorize(&mut c, req).await;
        assert_eq!(r.decision(), pb::Decision::ExplicitDeny, "{key}: {r:?}");
    }
    let m = server.metrics().await;
    assert_eq!(
        m.get(r#"warden_context_keys_dropped_total{key="aws:PrincipalIsAWSService"}"#),
        2.0
    );
}

/// Calls Authorize with `bytes` as the request message, whatever they hold.
async fn raw_authorize(
    server: &Server,
    bytes: &[u8],
) -> Result<pb::AuthorizeResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let codec =
        tonic_prost::ProstCodec::<warden::grpc::wire::AuthorizeBytes, pb::AuthorizeResponse>::default();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/warden.v1.Authorizer/Authorize");
    let request = tonic::Request::new(warden::grpc::wire::AuthorizeBytes(bytes.to_vec().into()));
    grpc.unary(request, path, codec)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_bundle_file_switches_the_revision() {
    let server = Server::start(&[]);
    let mut c = server.client().await;
    let r = authorize(&mut c, ask(BOB, "orders:UpdateOrder", ORDER)).await;
    assert_eq!((r.decision(), r.revision), (pb::Decision::ImplicitDeny, 1));

    server.write(
        READER,
        &reader_policy(&["orders:GetOrder", "orders:ListOrders", "orders:UpdateOrder"]),
    );
    // Read-your-writes: the server holds the request until revision 2 is serving.
    let mut req = ask(BOB, "orders:UpdateOrder", ORDER);
    req.min_revision = 2;
    let r = authorize(&mut c, req).await;
    assert_eq!((r.decision(), r.revision), (pb::Decision::Allow, 2));
    // The cached deny of revision 1 is not served at revision 2.
    let r = authorize(&mut c, ask(BOB, "orders:UpdateOrder", ORDER)).await;
    assert_eq!((r.decision(), r.revision), (pb::Decision::Allow, 2));

    // SIGHUP reloads too.
    server.signal("HUP");
    let mut req = ask(BOB, "orders:UpdateOrder", ORDER);
    req.min_revision = 3;
    assert_eq!(authorize(&mut c, req).await.revision, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimum_revision_that_never_comes_fails_the_precondition() {
    let server = Server::start(&["--revision-wait", "100ms"]);
    let mut c = server.client().await;
    let mut req = ask(ALICE, "orders:GetOrder", ORDER);
    req.min_revision = 7;
    let e = c.authorize(req).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        "the serving snapshot is at revision 1, older than the requested minimum 7"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_bundle_keeps_the_old_revision_and_readiness_reports_it() {
    let server = Server::start(&[]);
    let mut c = server.client().await;
    server.write(
        READER,
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n",
    );
    server
        .until_ready("the failed load", |_, b| b["reloads_failed"] == 1)
        .await;
    let (code, body) = server.readyz().await;
    assert_eq!(code, 200, "the old snapshot still serves: {body}");
    assert_eq!(body["revision"], 1);
    let error = body["last_error"]["message"].as_str().unwrap();
    assert!(error.contains("ReportsReader.json"), "{error}");
    assert!(error.contains(":4:"), "names the line: {error}");
    let r = authorize(&mut c, ask(BOB, "orders:GetOrder", ORDER)).await;
    assert_eq!((r.decision(), r.revision), (pb::Decision::Allow, 1));
    let m = server.metrics().await;
    assert_eq!(m.get(r#"warden_reloads_total{result="error"}"#), 1.0);
    assert_eq!(m.get("warden_snapshot_revision"), 1.0);
    assert!(server.stderr().contains("bundle load failed"));

    // Fixing the file publishes a later revision (the failed read had its own, so a
    // request never confuses the two) and clears the error.
    let failed = body["last_error"]["revision"].as_u64().unwrap();
    assert!(
        failed > 1,
        "the failed read has a revision of its own: {body}"
    );
    server.write(READER, &reader_policy(&["orders:GetOrder"]));
    let mut req = ask(BOB, "orders:GetOrder", ORDER);
    req.min_revision = failed + 1;
    assert!(authorize(&mut c, req).await.revision > failed);
    let (_, body) = server.readyz().await;
    assert!(body["last_error"].is_null(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_snapshot_is_unready_and_answers_unavailable() {
    let bundle = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        bundle.path(),
    );
    std::fs::write(bundle.path().join(READER), "not json").unwrap();
    let server = Server::start_in(bundle, &[]);
    let (code, body) = server.readyz().await;
    assert_eq!(code, 503);
    assert_eq!(body["ready"], false);
    // The log says what the failure means: nothing serves (not "keeping the serving
    // snapshot", which there is none of).
    let log = server.stderr();
    assert!(log.contains("no snapshot is serving"), "{log}");
    assert!(!log.contains("keeping the serving snapshot"), "{log}");
    assert!(
        body["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("ReportsReader.json")
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let check = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };
    let h = health
        .check(check("warden.v1.Authorizer"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status(),
        tonic_health::pb::health_check_response::ServingStatus::NotServing
    );
    let e = server
        .client()
        .await
        .authorize(ask(ALICE, "orders:GetOrder", ORDER))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.message(), "no snapshot is loaded yet");

    server.write(READER, &reader_policy(&["orders:GetOrder"]));
    server
        .until_ready("a snapshot", |code, _| code == 200)
        .await;
    let h = health.check(check("")).await.unwrap().into_inner();
    assert_eq!(
        h.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_concurrent_load_lose_no_request() {
    let server = Server::start(&[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let mut c = server.client().await;
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let (mut n, mut last) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Half the workers ask what every revision allows, half what none does.
                let (principal, want) = if w % 2 == 0 {
                    (ALICE, pb::Decision::Allow)
                } else {
                    (CAROL, pb::Decision::ImplicitDeny)
                };
                let r = c
                    .authorize(ask(principal, "orders:GetOrder", ORDER))
                    .await
                    .unwrap_or_else(|e| panic!("request {n} of worker {w} failed: {e:?}"))
                    .into_inner();
                assert_eq!(r.decision(), want);
                assert!(
                    r.revision >= last,
                    "revision went back from {last} to {}",
                    r.revision
                );
                last = r.revision;
                n += 1;
            }
            (n, last)
        }));
    }
    let mut c = server.client().await;
    for revision in 2..=21u64 {
        if revision % 2 == 0 {
            server.signal("HUP");
        } else {
            // A new Sid makes each write a real change.
            let policy = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Sid": format!("Read{revision}"), "Effect": "Allow",
                               "Action": ["orders:GetOrder", "orders:ListOrders"], "Resource": "*"}]
            });
            server.write(READER, &policy.to_string());
        }
        let mut req = ask(ALICE, "orders:GetOrder", ORDER);
        req.min_revision = revision;
        let r = c
            .authorize(req)
            .await
            .unwrap_or_else(|e| panic!("revision {revision}: {e:?}\n{}", server.stderr()))
            .into_inner();
        assert!(r.revision >= revision);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        let (n, last) = w.await.unwrap();
        assert!(n > 0);
        assert!(last >= 20, "a worker ended at revision {last}");
        total += n;
    }
    let m = server.metrics().await;
    assert_eq!(m.get(r#"warden_reloads_total{result="error"}"#), 0.0);
    assert!(m.get(r#"warden_reloads_total{result="ok"}"#) >= 21.0);
    let errors = m.get(r#"warden_rpc_duration_seconds_count{rpc="Authorize",decision="error"}"#);
    assert_eq!(errors, 0.0, "after {total} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_decisions_cache_and_latency() {
    let server = Server::start(&[]);
    let mut c = server.client().await;
    for _ in 0..5 {
        authorize(&mut c, ask(ALICE, "orders:GetOrder", ORDER)).await;
    }
    authorize(&mut c, ask(CAROL, "orders:GetOrder", ORDER)).await;
    let m = server.metrics().await;
    assert_eq!(
        m.get(
            r#"warden_decisions_total{face="Authorize",decision="Allow",reason="identity_allow"}"#
        ),
        5.0
    );
    assert_eq!(
        m.get(r#"warden_decisions_total{face="Authorize",decision="ImplicitDeny",reason="no_identity_allow"}"#),
        1.0
    );
    assert_eq!(m.get("warden_cache_hits_total"), 4.0);
    assert_eq!(m.get("warden_cache_misses_total"), 2.0);
    assert_eq!(
        m.get(r#"warden_rpc_duration_seconds_count{rpc="Authorize",decision="Allow"}"#),
        5.0
    );
    let inf =
        m.get(r#"warden_rpc_duration_seconds_bucket{rpc="Authorize",decision="Allow",le="+Inf"}"#);
    assert_eq!(inf, 5.0);
    assert_eq!(m.get("warden_snapshot_revision"), 1.0);
    assert_eq!(m.get(r#"warden_reloads_total{result="ok"}"#), 1.0);
    assert!(m.get("warden_snapshot_age_seconds") >= 0.0);
    assert_eq!(m.get("warden_requests_in_flight"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_dependent_decision_is_never_cached() {
    let server = Server::start(&[]);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadOrders", "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"},
            {"Sid": "UntilTheEnd", "Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*",
             "Condition": {"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}}
        ]
    });
    server.write(READER, &policy.to_string());
    let mut c = server.client().await;
    let mut req = ask(BOB, "orders:ListOrders", "*");
    req.min_revision = 2;
    for _ in 0..3 {
        let r = authorize(&mut c, req.clone()).await;
        assert_eq!(r.decision(), pb::Decision::Allow);
    }
    let m = server.metrics().await;
    assert_eq!(m.get("warden_cache_uncacheable_total"), 3.0);
    assert_eq!(m.get("warden_cache_hits_total"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_and_a_deadline_ends_a_wait() {
    let server = Server::start(&[
        "--max-concurrency",
        "1",
        "--revision-wait",
        "2s",
        "--request-timeout",
        "30s",
    ]);
    // A request waiting for a revision that never comes holds the only slot...
    let mut waiting = ask(ALICE, "orders:GetOrder", ORDER);
    waiting.min_revision = 99;
    let mut c = server.client().await;
    let held = tokio::spawn(async move { c.authorize(waiting).await });
    server.until_in_flight(1.0).await;
    let shed = server
        .client()
        .await
        .authorize(ask(ALICE, "orders:GetOrder", ORDER))
        .await
        .unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert_eq!(
        shed.message(),
        "overloaded: 1 requests are already being decided"
    );
    // ...until the revision wait ends it, with the promised status.
    let e = held.await.unwrap().unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(server.metrics().await.get("warden_shed_total") >= 1.0);
    // A caller's own deadline, shorter than the wait, ends it first.
    let mut hurried = tonic::Request::new(ask(ALICE, "orders:GetOrder", ORDER));
    hurried.get_mut().min_revision = 99;
    hurried.set_timeout(Duration::from_millis(200));
    let e = server.client().await.authorize(hurried).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shipped_settings_a_missing_revision_fails_the_precondition() {
    // The shipped revision wait ends before the shipped request deadline: the caller sees
    // FAILED_PRECONDITION, as the API promises, not a deadline.
    let server = Server::start_as_shipped(&[]);
    let mut req = ask(ALICE, "orders:GetOrder", ORDER);
    req.min_revision = 5;
    let e = server.client().await.authorize(req).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // And a revision wait that is not shorter than the deadline is refused at start.
    let o = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "serve",
            "--revision-wait",
            "3s",
            "--request-timeout",
            "2s",
            "--check",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("must be shorter than request-timeout"),
        "{o:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    use tonic_health::pb::health_check_response::ServingStatus;

    let server = Server::start(&[]);
    let status = |service: &'static str| async { health(server.channel().await, service).await };
    assert_eq!(
        status("warden.v1.Authorizer").await.unwrap(),
        ServingStatus::Serving
    );
    // Analysis is registered but off without --analysis (every call PERMISSION_DENIED):
    // never SERVING. STS and Admin are not registered without credentials or a fleet:
    // health does not know them.
    assert_eq!(
        status("warden.v1.Analysis").await.unwrap(),
        ServingStatus::NotServing
    );
    for service in ["warden.v1.Sts", "warden.v1.Admin"] {
        let e = status(service).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{service}: {e:?}");
    }

    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let asks = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("warden.v1.Authorizer".into()),
    ];
    let requests = tokio_stream::iter(asks.into_iter().map(|m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    }));
    let mut answers = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"warden.v1.Authorizer"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no descriptor");
    };
    use prost::Message as _;
    let file = prost_types::FileDescriptorProto::decode(&*files.file_descriptor_proto[0]).unwrap();
    assert_eq!(file.package(), "warden.v1");
    assert_eq!(file.service[0].method.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let mut server = Server::start(&["--revision-wait", "60s", "--request-timeout", "90s"]);
    let mut c = server.client().await;
    let mut waiting = ask(BOB, "orders:UpdateOrder", ORDER);
    waiting.min_revision = 2;
    let in_flight = tokio::spawn(async move { c.authorize(waiting).await });
    server.until_in_flight(1.0).await;
    server.signal("TERM");
    // The server is draining: the request still waits, and a new snapshot still reaches it.
    server.write(
        READER,
        &reader_policy(&["orders:GetOrder", "orders:ListOrders", "orders:UpdateOrder"]),
    );
    let r = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!((r.decision(), r.revision), (pb::Decision::Allow, 2));
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert!(server.stderr().contains("draining"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_logged_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let server = Server::start(&["--decision-log", log.to_str().unwrap()]);
    let mut c = server.client().await;
    let ids = [
        authorize(&mut c, ask(ALICE, "orders:GetOrder", ORDER))
            .await
            .decision_id,
        authorize(&mut c, ask(CAROL, "orders:GetOrder", ORDER))
            .await
            .decision_id,
    ];
    let mut lines = Vec::new();
    for _ in 0..500 {
        lines = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
        if lines.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["decision_id"], ids[0].as_str());
    assert_eq!(lines[0]["decision"], "Allow");
    assert_eq!(lines[1]["principal"], CAROL);
    assert_eq!(lines[1]["reason"], "no_identity_allow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_check_answers_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("warden.sock");
    let addr = format!("unix:{}", socket.display());
    let server = Server::start(&["--grpc-addr", &addr]);
    assert_eq!(server.grpc, addr);
    let check = |principal: &str| {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["check", "--addr", &addr, "--principal", principal])
            .args(["--action", "orders:GetOrder", "--resource", ORDER])
            .output()
            .unwrap()
    };
    let out = check(ALICE);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Allow (identity_allow) at revision 1"),
        "{text}"
    );
    let out = check(CAROL);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("ImplicitDeny (no_identity_allow)")
    );
    let out = check("carol");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("InvalidArgument: principal: `carol`")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_load_reports_a_summary_against_the_server_and_the_baseline() {
    let server = Server::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "loadgen",
            "--addr",
            &server.grpc,
            "-n",
            "400",
            "-c",
            "4",
            "--threads",
            "1",
            "--baseline",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["target"]["count"], 400);
    assert_eq!(report["target"]["ok"], 400);
    assert_eq!(report["baseline"]["ok"], 400);
    assert!(report["throughput_vs_baseline"].as_f64().unwrap() > 0.0);
    // 400 requests, and the one whose answer the baseline repeats.
    let m = server.metrics().await;
    assert_eq!(
        m.get(
            r#"warden_decisions_total{face="Authorize",decision="Allow",reason="identity_allow"}"#
        ),
        401.0
    );
}

#[test]
fn serve_check_flag_validates_a_bundle_and_exits() {
    let run = |bundle: &Path| {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--check", "--bundle"])
            .arg(bundle)
            .output()
            .unwrap()
    };
    let ok = run(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"));
    assert!(ok.status.success());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        dir.path(),
    );
    std::fs::write(dir.path().join(READER), "[1,").unwrap();
    let bad = run(dir.path());
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8(bad.stderr)
            .unwrap()
            .contains("ReportsReader.json")
    );

    // A missing directory is one line naming it; a FIFO is a finding, not a hang (the
    // check reads as the server does: regular files only, bounded in time).
    let missing = dir.path().join("missing");
    let gone = run(&missing);
    assert_eq!(gone.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(gone.stderr).unwrap(),
        format!(
            "warden: bundle directory `{}` does not exist\n",
            missing.display()
        )
    );
    std::fs::write(dir.path().join(READER), reader_policy(&["orders:GetOrder"])).unwrap();
    let fifo = dir.path().join("accounts/333333333333/policies/Pipe.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let piped = run(dir.path());
    assert_eq!(piped.status.code(), Some(1));
    let stderr = String::from_utf8(piped.stderr).unwrap();
    assert!(
        stderr.contains("Pipe.json") && stderr.contains("not-a-regular-file"),
        "{stderr}"
    );
}

#[test]
fn serve_reads_a_config_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(&config, "bundle = \"/no/such/bundle\"\ncache-size = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/no/such/bundle")
    );
    // The environment wins over the file.
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .env(
            "WARDEN_BUNDLE",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&config, "grpc_addr = \"x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("unknown field `grpc_addr`")
    );
}

#[test]
fn ghz_configurations_name_real_methods_and_fields() {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let file = set
        .file
        .iter()
        .find(|f| f.name() == "warden/v1/authorizer.proto")
        .unwrap();
    let message = |name: &str| {
        file.message_type
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no message {name}"))
    };
    let fields = |name: &str| -> Vec<String> {
        message(name)
            .field
            .iter()
            .map(|f| f.name().to_owned())
            .collect()
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ghz");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let call = config["call"].as_str().unwrap();
        // Envoy's `Check` (check.json) is checked against Envoy's own requests in deploy.rs.
        let Some(method_name) = call.strip_prefix("warden.v1.Authorizer.") else {
            continue;
        };
        let method = file.service[0]
            .method
            .iter()
            .find(|m| m.name() == method_name)
            .unwrap_or_else(|| panic!("{}: no method {call}", path.display()));
        let input = method.input_type().rsplit('.').next().unwrap();
        let known = fields(input);
        for (key, value) in config["data"].as_object().unwrap() {
            assert!(
                known.contains(key),
                "{}: {input} has no field `{key}`",
                path.display()
            );
            if key == "items" {
                let item = fields("BatchItem");
                for k in value[0].as_object().unwrap().keys() {
                    assert!(
                        item.contains(k),
                        "{}: BatchItem has no `{k}`",
                        path.display()
                    );
                }
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
}

// === every face decides alike ===

/// What a face answered: `Decision reason`, or the refusal's message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Decided(String),
    Refused(String),
}

/// A random request over the example organization: known and unknown principals, every
/// catalog action and some that are not, resources of every account (and `*`, and roles
/// to assume), request attributes and forged server keys.
fn random_request(rng: &mut oorandom::Rand32) -> pb::AuthorizeRequest {
    let pick = |rng: &mut oorandom::Rand32, from: &[&str]| -> String {
        from[rng.rand_range(0..from.len() as u32) as usize].to_owned()
    };
    let principal = pick(
        rng,
        &[
            ALICE,
            BOB,
            CAROL,
            "arn:aws:iam::222222222222:user/audit/erin",
            "arn:aws:iam::555555555555:user/admin",
            "arn:aws:iam::555555555555:user/dana",
            DEVELOPER,
            "arn:aws:sts::555555555555:assumed-role/Auditor/a",
            "arn:aws:sts::555555555555:assumed-role/BreakGlass/b",
            "arn:aws:sts::333333333333:assumed-role/app-runtime/i-1",
            "arn:aws:sts::444444444444:assumed-role/ci-deployer/build",
            "arn:aws:iam::555555555555:root",
            "arn:aws:iam::333333333333:user/engineering/mallory",
            "arn:aws-cn:iam::333333333333:user/engineering/alice",
        ],
    );
    let services: &[(&str, &[&str])] = &[
        (
            "orders",
            &[
                "ListOrders",
                "GetOrder",
                "DescribeOrderHistory",
                "CreateOrder",
                "UpdateOrder",
                "DeleteOrder",
                "RefundOrder",
                "TagOrder",
                "PutOrderPolicy",
            ],
        ),
        (
            "db",
            &[
                "ListDatabases",
                "DescribeDatabase",
                "Query",
                "CreateDatabase",
                "DeleteDatabase",
                "TagDatabase",
            ],
        ),
        (
            "files",
            &[
                "ListBuckets",
                "GetObject",
                "PutObject",
                "DeleteObject",
                "PutBucketPolicy",
            ],
        ),
        ("network", &["DescribeVpc", "DeleteVpc", "AuthorizeIngress"]),
        ("deploy", &["GetDeployment", "CreateDeployment"]),
        ("monitoring", &["GetMetricData", "PutAlarm"]),
        ("sts", &["AssumeRole", "GetCallerIdentity"]),
        ("iam", &["CreateUser", "ListRoles"]),
    ];
    let (service, actions) = services[rng.rand_range(0..services.len() as u32) as usize];
    let action = match rng.rand_range(0..20) {
        0 => "orders:Delete*".to_owned(),
        1 => "nosvc:GetOrder".to_owned(),
        _ => format!("{service}:{}", pick(rng, actions)),
    };
    let account = pick(
        rng,
        &[
            "333333333333",
            "444444444444",
            "555555555555",
            "999999999999",
        ],
    );
    let resource = match (service, rng.rand_range(0..8)) {
        (_, 0) => "*".to_owned(),
        ("sts", _) => format!(
            "arn:aws:iam::555555555555:role/{}",
            pick(rng, &["Developer", "Auditor", "BreakGlass"])
        ),
        ("orders", 1) => "arn:aws:orders:us-east-1:555555555555:order/shared/7".to_owned(),
        ("files", _) => format!("arn:aws:files:::reports/{}", rng.rand_range(0..3)),
        ("db", _) => format!("arn:aws:db:us-east-1:{account}:database/main"),
        ("network", _) => format!("arn:aws:network:us-east-1:{account}:vpc/vpc-1"),
        ("deploy", _) => format!("arn:aws:deploy:us-east-1:{account}:application/web"),
        ("monitoring", _) => format!("arn:aws:monitoring:us-east-1:{account}:alarm/a"),
        ("iam", _) => format!("arn:aws:iam::{account}:user/x"),
        _ => format!(
            "arn:aws:orders:us-east-1:{account}:order/{}",
            rng.rand_range(0..3)
        ),
    };
    let mut request = ask(&principal, &action, &resource);
    for (key, value) in [
        ("aws:SourceIp", "10.0.0.1"),
        ("aws:RequestedRegion", "us-east-1"),
        ("orders:Amount", "150"),
        ("aws:PrincipalOrgID", "o-a1b2c3d4e5"),
        ("aws:PrincipalTag/team", "admins"),
        ("aws:MultiFactorAuthPresent", "true"),
        (
            "aws:PrincipalArn",
            "arn:aws:iam::555555555555:role/BreakGlass",
        ),
    ] {
        if rng.rand_range(0..4) == 0 {
            request.context.insert(key.into(), string(value));
        }
    }
    request
}

fn decided(decision: pb::Decision, reason: &str) -> Answer {
    let name = match decision {
        pb::Decision::Allow => "Allow",
        pb::Decision::ExplicitDeny => "ExplicitDeny",
        pb::Decision::ImplicitDeny => "ImplicitDeny",
        pb::Decision::Unspecified => "Unspecified",
    };
    Answer::Decided(format!("{name} {reason}"))
}

/// The flags of `warden authorize` for a request.
fn authorize_flags(bundle: &Path, r: &pb::AuthorizeRequest) -> Vec<String> {
    let mut flags = vec![
        "authorize".to_owned(),
        "--bundle".into(),
        bundle.display().to_string(),
        "--principal".into(),
        r.principal.clone(),
        "--action".into(),
        r.action.clone(),
        "--resource".into(),
        r.resource.clone(),
    ];
    for (k, v) in &r.context {
        if let Some(pb::context_value::Kind::String(s)) = &v.kind {
            flags.extend(["--context".into(), format!("{k}={s}")]);
        }
    }
    flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_decide_alike_through_every_face() {
    // Authorize, a one-item BatchAuthorize, the offline `warden authorize`, and `warden
    // eval` on the request written out as a self-contained case (`warden authorize
    // --case`): the same decision and reason, or the same refusal.
    let server = Server::start(&[]);
    let mut c = server.client().await;
    let bin = env!("CARGO_BIN_EXE_warden");
    let mut rng = oorandom::Rand32::new(2026);
    let mut cases = String::new();
    let mut expected_from_cases = Vec::new();
    let (mut refusals, mut allows) = (0, 0);
    for _ in 0..120 {
        let r = random_request(&mut rng);
        let one = match c.authorize(r.clone()).await {
            Ok(a) => {
                let a = a.into_inner();
                decided(a.decision(), &a.reason)
            }
            Err(s) => Answer::Refused(s.message().to_owned()),
        };
        let batch = pb::BatchAuthorizeRequest {
            principal: r.principal.clone(),
            context: r.context.clone(),
            items: vec![pb::BatchItem {
                action: r.action.clone(),
                resource: r.resource.clone(),
                context: BTreeMap::new(),
            }],
            explain: false,
            min_revision: 0,
            ..Default::default()
        };
        let batched = match c.batch_authorize(batch).await {
            Ok(b) => {
                let b = b.into_inner();
                assert_eq!(b.results.len(), 1);
                decided(b.results[0].decision(), &b.results[0].reason)
            }
            // A batch names an item's fields `items[0].action`.
            Err(s) => Answer::Refused(s.message().replace("items[0].", "")),
        };
        assert_eq!(batched, one, "{r:?}");
        let mut flags = authorize_flags(server.bundle.path(), &r);
        flags.push("--json".into());
        let o = Command::new(bin).args(&flags).output().unwrap();
        let offline = match o.status.code() {
            Some(0 | 1) => {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                Answer::Decided(format!(
                    "{} {}",
                    v["decision"].as_str().unwrap(),
                    v["reason"].as_str().unwrap()
                ))
            }
            _ => {
                let err = String::from_utf8_lossy(&o.stderr);
                let message = err
                    .trim()
                    .strip_prefix("warden: the request is refused: ")
                    .unwrap_or_else(|| panic!("{r:?}: {err}"));
                Answer::Refused(message.to_owned())
            }
        };
        assert_eq!(offline, one, "{r:?}");
        match &one {
            Answer::Refused(_) => refusals += 1,
            Answer::Decided(d) if d.ends_with("unknown_principal") => {}
            Answer::Decided(d) => {
                allows += usize::from(d.starts_with("Allow"));
                let mut flags = authorize_flags(server.bundle.path(), &r);
                flags.push("--case".into());
                let o = Command::new(bin).args(&flags).output().unwrap();
                assert!(o.status.success(), "{r:?}: {o:?}");
                cases.push_str(std::str::from_utf8(&o.stdout).unwrap());
                expected_from_cases.push((r.clone(), one.clone()));
            }
        }
    }
    assert!(
        refusals > 5 && allows > 5,
        "{refusals} refused, {allows} allowed"
    );
    let mut eval = Command::new(bin)
        .arg("eval")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut eval.stdin.take().unwrap(), cases.as_bytes()).unwrap();
    let out = eval.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), expected_from_cases.len());
    for (line, (r, want)) in lines.iter().zip(&expected_from_cases) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let got = Answer::Decided(format!(
            "{} {}",
            v["decision"].as_str().unwrap_or("?"),
            v["reason"].as_str().unwrap_or("?")
        ));
        assert_eq!(&got, want, "{r:?}: {line}");
    }
}

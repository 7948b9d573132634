//! `warden.v1.Analysis` through the real server: off without `--analysis`
//! (PERMISSION_DENIED), the example's story with `--analysis`, pages that add up to the
//! whole answer, a cursor refused after a reload (another revision) and for another
//! query, reflection listing the service.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use tonic::Code;
use warden::grpc::pb;
use warden::grpc::pb::analysis_client::AnalysisClient;

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;
use server::*;

const SHARED_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/shared/7";
const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/1";

fn who_can(action: &str, resource: &str, size: u32, cursor: &str) -> pb::WhoCanRequest {
    pb::WhoCanRequest {
        action: action.into(),
        resource: resource.into(),
        page: Some(pb::Page {
            size,
            cursor: cursor.into(),
        }),
        assume_with_mfa: true,
        ..Default::default()
    }
}

fn principals(r: &pb::ReverseResponse) -> Vec<String> {
    r.items
        .iter()
        .map(|i| match &i.item {
            Some(pb::reverse_item::Item::Principal(p)) => p.principal.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn actions(r: &pb::ReverseResponse) -> Vec<String> {
    r.items
        .iter()
        .map(|i| match &i.item {
            Some(pb::reverse_item::Item::Action(a)) => a.action.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn reverse_queries_are_off_without_the_flag() {
    let server = Server::start(&[]);
    let mut c = AnalysisClient::new(server.channel().await);
    let e = c
        .who_can(who_can("orders:GetOrder", SHARED_ORDER, 0, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("--analysis"), "{}", e.message());
    let e = c
        .what_can(pb::WhatCanRequest {
            principal: "arn:aws:iam::555555555555:user/admin".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn who_can_through_the_server_pages_and_refuses_stale_cursors() {
    let server = Server::start(&["--analysis"]);
    let mut c = AnalysisClient::new(server.channel().await);
    assert_eq!(
        health(server.channel().await, "warden.v1.Analysis")
            .await
            .unwrap(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // The documented story: only BreakGlass deletes production orders, and the security
    // account's root (with MFA) may become it.
    let r = c
        .who_can(who_can("orders:DeleteOrder", PROD_ORDER, 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(r.complete && r.next_cursor.is_empty());
    assert_eq!(
        principals(&r),
        ["arn:aws:sts::555555555555:assumed-role/BreakGlass/warden-who-can"]
    );
    let Some(pb::reverse_item::Item::Principal(p)) = &r.items[0].item else {
        unreachable!()
    };
    assert_eq!(p.reason, "identity_allow");
    let by: Vec<&str> = p
        .assumable_by
        .iter()
        .map(|a| a.principal.as_str())
        .collect();
    assert_eq!(by, ["arn:aws:iam::222222222222:root"]);

    // Pages of two add up to the one-page answer.
    let whole = c
        .who_can(who_can("orders:GetOrder", SHARED_ORDER, 1_000, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(whole.complete);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    let mut first_cursor = None;
    loop {
        let r = c
            .who_can(who_can("orders:GetOrder", SHARED_ORDER, 2, &cursor))
            .await
            .unwrap()
            .into_inner();
        assert!(r.items.len() <= 2);
        paged.extend(principals(&r));
        if r.complete {
            assert!(r.next_cursor.is_empty());
            break;
        }
        cursor = r.next_cursor;
        first_cursor.get_or_insert(cursor.clone());
    }
    assert_eq!(paged, principals(&whole));
    assert_eq!(
        paged.iter().cloned().collect::<BTreeSet<_>>().len(),
        paged.len()
    );
    let cursor = first_cursor.unwrap();

    // A cursor for another query, and garbage, are INVALID_ARGUMENT.
    let e = c
        .who_can(who_can("orders:GetOrder", PROD_ORDER, 2, &cursor))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("another query"), "{}", e.message());
    let e = c
        .who_can(who_can("orders:GetOrder", SHARED_ORDER, 2, "not a cursor"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = c
        .who_can(who_can("orders:GetOrder", SHARED_ORDER, 5_000, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // After a reload the cursor's revision is no longer served: FAILED_PRECONDITION.
    server.write(
        "accounts/333333333333/policies/ReportsReader.json",
        &reader_policy(&["orders:GetOrder"]),
    );
    // Read-your-writes as Authorize: the query waits until revision 2 serves.
    let mut fresh = who_can("orders:GetOrder", SHARED_ORDER, 2, "");
    fresh.min_revision = 2;
    let r = c.who_can(fresh).await.unwrap().into_inner();
    assert_eq!(r.revision, 2);
    let e = c
        .who_can(who_can("orders:GetOrder", SHARED_ORDER, 2, &cursor))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("revision 1"), "{}", e.message());

    // WhatCan and CanAny answer too; a context key the server owns is screened out.
    let r = c
        .what_can(pb::WhatCanRequest {
            principal: "arn:aws:iam::333333333333:user/engineering/bob".into(),
            resource: SHARED_ORDER.into(),
            context: [(
                "aws:PrincipalAccount".to_owned(),
                pb::ContextValue {
                    kind: Some(pb::context_value::Kind::String("555555555555".into())),
                },
            )]
            .into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let actions = actions(&r);
    // GetCallerIdentity needs no permission (on any resource).
    assert_eq!(actions, ["orders:GetOrder", "sts:GetCallerIdentity"]);
    let r = c
        .can_any(pb::CanAnyRequest {
            principal: "arn:aws:iam::333333333333:user/engineering/carol".into(),
            resource_type: "orders:order".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.items.is_empty() && r.complete);
}

#[tokio::test]
async fn an_action_the_search_cannot_decide_is_listed_undecided_with_why() {
    let server = Server::start(&["--analysis"]);
    // dave may read the orders whose own tag names him: no split of order ARNs decides it.
    server.write(
        "accounts/333333333333/policies/DavePolicy.json",
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:orders:*:333333333333:order/${aws:ResourceTag/owner}"},
            {"Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*"}
        ]}"#,
    );
    let mut c = AnalysisClient::new(server.channel().await);
    // The policy serves (revision 2) before the user that attaches it is written.
    c.can_any(pb::CanAnyRequest {
        principal: "arn:aws:iam::333333333333:user/engineering/carol".into(),
        resource_type: "orders:order".into(),
        min_revision: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    server.write(
        "accounts/333333333333/users/dave.json",
        r#"{"path": "/engineering/", "managed_policies": ["DavePolicy"]}"#,
    );
    let r = c
        .what_can(pb::WhatCanRequest {
            principal: "arn:aws:iam::333333333333:user/engineering/dave".into(),
            min_revision: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let actions = actions(&r);
    assert!(
        actions.contains(&"orders:ListOrders".to_owned()),
        "{actions:?}"
    );
    assert!(
        !actions.contains(&"orders:GetOrder".to_owned()),
        "{actions:?}"
    );
    let u: Vec<(&str, &str)> = r
        .undecided
        .iter()
        .map(|u| (u.action.as_str(), u.why.as_str()))
        .collect();
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0].0, "orders:GetOrder");
    assert!(
        u[0].1.contains("reads the resource's own keys"),
        "{}",
        u[0].1
    );
}

//! The context keys the server owns, as a served request sees them: each comes from the
//! snapshot, and a caller's value for any of them is ignored (cannot be forged).
#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use warden::context::{CallerContext, Context, ContextValue};
use warden::eval::Decision;
use warden::snapshot::Snapshot;

const ACCT: &str = "111111111111";
const ALICE: &str = "arn:aws:iam::111111111111:user/eng/alice";
const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/app/sess-1";
const ROLE: &str = "arn:aws:iam::111111111111:role/svc/app";
const ORDER: &str = "arn:aws:probe:us-east-1:111111111111:thing/1";
const TAGGED: &str = "arn:aws:probe:us-east-1:111111111111:thing/tagged";
/// 1,000,000 seconds after the epoch: `1970-01-12T13:46:40Z`.
const NOW_SECS: u64 = 1_000_000;

/// One action per condition: `probe:CheckN` is allowed when condition N holds.
const CHECKS: &[(&str, &str, &str)] = &[
    ("StringEquals", "aws:PrincipalArn", "PRINCIPAL_ARN"),
    ("StringEquals", "aws:PrincipalAccount", ACCT),
    ("StringEquals", "aws:username", "alice"),
    ("StringLike", "aws:userid", "USERID"),
    ("StringEquals", "aws:PrincipalType", "PRINCIPAL_TYPE"),
    ("StringEquals", "aws:PrincipalTag/team", "TEAM"),
    ("StringEquals", "aws:PrincipalOrgID", "o-abcdefghij"),
    (
        "ForAnyValue:StringLike",
        "aws:PrincipalOrgPaths",
        "o-abcdefghij/r-root/ou-work/",
    ),
    ("StringEquals", "aws:ResourceAccount", ACCT),
    ("StringEquals", "aws:ResourceOrgID", "o-abcdefghij"),
    ("StringEquals", "aws:CurrentTime", "1970-01-12T13:46:40Z"),
    ("StringEquals", "aws:EpochTime", "1000000"),
    ("StringEquals", "aws:ResourceTag/stage", "prod"),
    ("StringEquals", "probe:Free", "yes"),
];

fn policy(principal_arn: &str, userid: &str, kind: &str, team: &str) -> serde_json::Value {
    let statements: Vec<serde_json::Value> = CHECKS
        .iter()
        .enumerate()
        .map(|(i, (op, key, value))| {
            let value = value
                .replace("PRINCIPAL_ARN", principal_arn)
                .replace("USERID", userid)
                .replace("PRINCIPAL_TYPE", kind)
                .replace("TEAM", team);
            serde_json::json!({
                "Effect": "Allow",
                "Action": format!("probe:Check{i}"),
                "Resource": "*",
                "Condition": {*op: {*key: value}},
            })
        })
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

fn snapshot() -> Snapshot {
    let actions: serde_json::Map<String, serde_json::Value> = (0..CHECKS.len())
        .map(|i| {
            (
                format!("Check{i}"),
                serde_json::json!({"access": "Read", "resources": ["thing"]}),
            )
        })
        .collect();
    let mut files = BTreeMap::new();
    let mut add = |path: &str, v: serde_json::Value| {
        files.insert(path.to_owned(), v.to_string());
    };
    add(
        "catalog/probe.json",
        serde_json::json!({
            "prefix": "probe",
            "resource_types": {"thing": {"arn": "arn:${Partition}:probe:${Region}:${Account}:thing/${Id}"}},
            "condition_keys": ["probe:Free"],
            "actions": actions,
        }),
    );
    add(
        "organization.json",
        serde_json::json!({
            "id": "o-abcdefghij",
            "management_account": "999999999999",
            "root": {
                "id": "r-root",
                "accounts": [{"id": "999999999999"}],
                "units": [{"id": "ou-work", "accounts": [{"id": ACCT}]}],
            },
        }),
    );
    add(
        &format!("accounts/{ACCT}/users/alice.json"),
        serde_json::json!({
            "path": "/eng/",
            "tags": {"team": "blue"},
            "inline_policies": {"probe": policy(ALICE, "AIDA*", "User", "blue")},
        }),
    );
    add(
        &format!("accounts/{ACCT}/roles/app.json"),
        serde_json::json!({
            "path": "/svc/",
            "tags": {"team": "green"},
            "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "compute.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "inline_policies": {"probe": policy(ROLE, "AROA*:sess-1", "AssumedRole", "green")},
        }),
    );
    add(
        &format!("accounts/{ACCT}/resources/tagged.json"),
        serde_json::json!({
            "arn": TAGGED,
            "tags": {"stage": "prod"},
            "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "probe:Check0", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "nobody"}}}]},
        }),
    );
    Snapshot::load_files(&files, 1).unwrap()
}

fn decide(
    s: &Snapshot,
    principal: &str,
    check: usize,
    resource: &str,
    caller: &[(&str, &str)],
) -> Decision {
    let mut ctx = Context::new();
    for (k, v) in caller {
        ctx.insert(k, ContextValue::Single((*v).to_owned()));
    }
    // Screened as the service screens what a caller sends.
    let ctx = CallerContext::screen(ctx, |_| {});
    s.ask(
        principal,
        &format!("probe:Check{check}"),
        resource,
        &ctx,
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS),
    )
    .unwrap()
    .outcome
    .decision
}

/// A caller value that would fail every check.
fn forged() -> Vec<(&'static str, &'static str)> {
    CHECKS.iter().map(|(_, key, _)| (*key, "forged")).collect()
}

#[test]
fn a_user_gets_every_server_key_whatever_the_caller_says() {
    let s = snapshot();
    let forged = forged();
    // Every check but the resource's tag (ORDER has none) and the caller's own key holds,
    // with or without forged values.
    for check in 0..12 {
        assert_eq!(
            decide(&s, ALICE, check, ORDER, &[]),
            Decision::Allow,
            "check {check}"
        );
        assert_eq!(
            decide(&s, ALICE, check, ORDER, &forged),
            Decision::Allow,
            "forged check {check}"
        );
    }
}

#[test]
fn a_role_session_gets_the_role_s_keys_and_its_own_id() {
    let s = snapshot();
    let forged = forged();
    for check in [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11] {
        assert_eq!(
            decide(&s, SESSION, check, ORDER, &forged),
            Decision::Allow,
            "check {check}"
        );
    }
    // A session has no `aws:username`, and the caller cannot supply one.
    assert_eq!(
        decide(&s, SESSION, 2, ORDER, &[("aws:username", "alice")]),
        Decision::ImplicitDeny
    );
    // Another session of the same role has another id.
    let other = "arn:aws:sts::111111111111:assumed-role/app/sess-2";
    assert_eq!(decide(&s, other, 3, ORDER, &[]), Decision::ImplicitDeny);
    assert_eq!(decide(&s, other, 0, ORDER, &[]), Decision::Allow);
}

#[test]
fn resource_tags_come_from_the_resource_when_it_has_them() {
    let s = snapshot();
    let tag = 12;
    // The tagged resource's own tag holds, and a caller cannot override it.
    assert_eq!(decide(&s, ALICE, tag, TAGGED, &[]), Decision::Allow);
    assert_eq!(
        decide(&s, ALICE, tag, TAGGED, &[("aws:ResourceTag/stage", "dev")]),
        Decision::Allow
    );
    // A resource the store knows no tags of takes the caller's (the service vouches for it).
    assert_eq!(
        decide(&s, ALICE, tag, ORDER, &[("aws:ResourceTag/stage", "prod")]),
        Decision::Allow
    );
    assert_eq!(decide(&s, ALICE, tag, ORDER, &[]), Decision::ImplicitDeny);
}

#[test]
fn caller_keys_the_server_does_not_own_pass_through() {
    let s = snapshot();
    let free = 13;
    assert_eq!(
        decide(&s, ALICE, free, ORDER, &[("probe:Free", "yes")]),
        Decision::Allow
    );
    assert_eq!(
        decide(&s, ALICE, free, ORDER, &[("PROBE:FREE", "yes")]),
        Decision::Allow
    );
    assert_eq!(
        decide(&s, ALICE, free, ORDER, &[("probe:Free", "no")]),
        Decision::ImplicitDeny
    );
    // A principal tag is owned even when the principal has no such tag.
    assert_eq!(
        decide(&s, SESSION, 5, ORDER, &[("aws:PrincipalTag/team", "blue")]),
        Decision::Allow
    );
}

#[test]
fn time_keys_follow_the_request_s_time() {
    let s = snapshot();
    let mut ctx = Context::new();
    ctx.insert("probe:Free", ContextValue::Single("yes".into()));
    for (secs, expected) in [
        (NOW_SECS, Decision::Allow),
        (NOW_SECS + 1, Decision::ImplicitDeny),
        (NOW_SECS, Decision::Allow),
    ] {
        let d = s
            .ask(
                ALICE,
                "probe:Check11",
                ORDER,
                &CallerContext::screen(ctx.clone(), |_| {}),
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            )
            .unwrap()
            .outcome
            .decision;
        assert_eq!(d, expected, "at {secs}");
    }
}

#[test]
fn unknown_principals_are_denied() {
    let s = snapshot();
    for p in [
        "arn:aws:iam::111111111111:user/eng/mallory",
        "arn:aws:sts::111111111111:assumed-role/nope/s",
        "arn:aws:iam::222222222222:root",
    ] {
        let a = s
            .ask(
                p,
                "probe:Check1",
                ORDER,
                &CallerContext::empty(),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_eq!(
            a.outcome.reason,
            warden::eval::Reason::UnknownPrincipal,
            "{p}"
        );
    }
}

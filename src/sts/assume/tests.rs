//! Tests of STS's decisions: each rule of `AssumeRole` (trust and identity sides, same and
//! cross account, tags, chaining, source identity, MFA, external id, durations, session
//! policies, limits), `GetSessionToken`, `GetCallerIdentity`, and sessions deciding
//! requests afterwards (session policies, session tags, revocation by issue time).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::json;

use super::*;
use crate::caller::Caller;
use crate::context::CallerContext;

const A: &str = "111122223333";
const B: &str = "444455556666";
/// 2027-01-15T08:00:00Z.
const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn allow(action: serde_json::Value) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})
}

fn trust(principal: serde_json::Value, action: serde_json::Value) -> serde_json::Value {
    trust_if(principal, action, json!({}))
}

fn trust_if(
    principal: serde_json::Value,
    action: serde_json::Value,
    condition: serde_json::Value,
) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Condition": condition
    }]})
}

fn user(a: &str, name: &str) -> String {
    format!("arn:aws:iam::{a}:user/{name}")
}

fn role(a: &str, name: &str) -> String {
    format!("arn:aws:iam::{a}:role/{name}")
}

/// Account A: users `alice` (may assume any role, tag and set a source identity), `bob`
/// (no policy), `dave` (may assume `B:CrossDirect` only); roles named for the rule they
/// test. Account B: `CrossTrust` (trusts account A), `CrossDirect` (names bob and dave).
fn files() -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |path: String, v: serde_json::Value| {
        f.insert(path, v.to_string());
    };
    // A and B are members (SCPs govern them) beside a management account.
    put(
        "organization.json".into(),
        json!({"id": "o-stsexample1", "management_account": "999988887777",
               "root": {"id": "r-root", "scps": ["FullAWSAccess"],
                        "accounts": [{"id": "999988887777"}, {"id": A, "scps": ["FullAWSAccess", "NoScpBlocked"]}, {"id": B}]}}),
    );
    put(
        "scps/NoScpBlocked.json".into(),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sts:AssumeRole",
               "Resource": role(A, "ScpBlocked")}]}),
    );
    put(
        "accounts/999988887777/account.json".into(),
        json!({"name": "m"}),
    );
    put(format!("accounts/{A}/account.json"), json!({"name": "a"}));
    put(format!("accounts/{B}/account.json"), json!({"name": "b"}));
    put(
        format!("accounts/{A}/policies/ReadOnly.json"),
        allow(json!("orders:GetOrder")),
    );
    put(
        format!("accounts/{A}/users/alice.json"),
        json!({"inline_policies": {"assume": allow(json!(["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity", "orders:*"]))}}),
    );
    put(
        format!("accounts/{A}/users/bob.json"),
        json!({"tags": {"team": "red"}}),
    );
    put(
        format!("accounts/{A}/users/dave.json"),
        json!({"inline_policies": {"assume": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role(B, "CrossDirect")}]}}}),
    );
    let orders = json!({"all": allow(json!("orders:*"))});
    let mut role_file = |name: &str, v: serde_json::Value| {
        put(format!("accounts/{A}/roles/{name}.json"), v);
    };
    role_file(
        "AccountTrust",
        json!({"trust_policy": trust(json!(A), json!("sts:AssumeRole")), "inline_policies": orders}),
    );
    role_file(
        "ScpBlocked",
        json!({"trust_policy": trust(json!(user(A, "bob")), json!("sts:AssumeRole"))}),
    );
    role_file(
        "DirectTrust",
        json!({"trust_policy": trust(json!(user(A, "bob")), json!("sts:AssumeRole"))}),
    );
    role_file(
        "Tagged",
        json!({
            "tags": {"team": "red"},
            "trust_policy": trust(json!(A), json!(["sts:AssumeRole", "sts:TagSession"])),
            "inline_policies": {"p": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}}}]}}
        }),
    );
    role_file(
        "NoTagSession",
        json!({"trust_policy": trust(json!(A), json!("sts:AssumeRole"))}),
    );
    role_file(
        "Mfa",
        json!({"trust_policy": trust_if(json!(A), json!("sts:AssumeRole"),
            json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}}))}),
    );
    role_file(
        "External",
        json!({"trust_policy": trust_if(json!(A), json!("sts:AssumeRole"),
            json!({"StringEquals": {"sts:ExternalId": "Example987"}}))}),
    );
    role_file(
        "Chain1",
        json!({
            "max_session_duration": 43200,
            "trust_policy": trust(json!(A), json!(["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"])),
            "inline_policies": {"p": allow(json!(["sts:AssumeRole", "sts:TagSession", "orders:*"]))}
        }),
    );
    role_file(
        "Chain2",
        json!({
            "max_session_duration": 43200,
            "tags": {"Star": "3"},
            "trust_policy": trust(json!(role(A, "Chain1")), json!(["sts:AssumeRole", "sts:TagSession"])),
            "inline_policies": {"p": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/Star": "1"}}}]}}
        }),
    );
    role_file(
        "Revocable",
        json!({
            "trust_policy": trust(json!(A), json!("sts:AssumeRole")),
            "inline_policies": {
                "all": allow(json!("orders:*")),
                "revoke": {"Version": "2012-10-17", "Statement": [{
                    "Sid": "RevokeOlderSessions", "Effect": "Deny", "Action": "*", "Resource": "*",
                    "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2027-01-15T08:00:00Z"}}}]}
            }
        }),
    );
    put(
        format!("accounts/{B}/roles/CrossTrust.json"),
        json!({"trust_policy": trust(json!(A), json!("sts:AssumeRole"))}),
    );
    put(
        format!("accounts/{B}/roles/CrossDirect.json"),
        json!({"trust_policy": trust(json!([user(A, "bob"), user(A, "dave")]), json!("sts:AssumeRole"))}),
    );
    f.insert(
        "catalog/orders.json".into(),
        include_str!("../../../examples/org/catalog/orders.json").into(),
    );
    f
}

fn snap() -> &'static Snapshot {
    static S: OnceLock<Snapshot> = OnceLock::new();
    S.get_or_init(|| Snapshot::load_files(&files(), 3).unwrap())
}

fn input(role_name: &str) -> AssumeRoleInput {
    AssumeRoleInput {
        role_arn: role(A, role_name),
        session_name: "s1".into(),
        ..AssumeRoleInput::default()
    }
}

fn as_user(name: &str, i: &AssumeRoleInput) -> Result<Issued, StsError> {
    let arn = user(A, name);
    assume_role(snap(), &StsCaller::User { arn: &arn }, i, now())
}

fn code(r: &Result<Issued, StsError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    }
}

/// Decides `action` on an order for the session of `grant`, as the service would.
fn decide(grant: &Grant, action: &str) -> Decision {
    let session = session_caller(snap(), grant).unwrap();
    let caller = Caller::Session(session.clone());
    let who = snap()
        .resolve(caller.arn(), Some(&session), now())
        .unwrap()
        .unwrap();
    let action = Action::parse(action).unwrap();
    let resource = format!("arn:aws:orders:us-east-1:{A}:order/1");
    let ctx = CallerContext::empty();
    let q = Question {
        action: &action,
        resource: &resource,
        resource_arn: parse_resource(&resource).unwrap(),
        context: CallerView::of(&ctx),
    };
    snap().decide(&who, &q, now(), false).0.outcome.decision
}

// === Trust and identity sides ===

#[test]
fn same_account_trust_of_the_account_needs_the_identity_side() {
    assert_eq!(code(&as_user("alice", &input("AccountTrust"))), "ok");
    let e = as_user("bob", &input("AccountTrust")).unwrap_err();
    assert_eq!(e.code, Code::AccessDenied);
    assert_eq!(
        e.message,
        format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
            user(A, "bob"),
            role(A, "AccountTrust")
        )
    );
}

#[test]
fn same_account_trust_naming_the_user_needs_no_identity_policy() {
    assert_eq!(code(&as_user("bob", &input("DirectTrust"))), "ok");
    // Naming bob trusts nobody else, whatever their identity policies say.
    assert_eq!(
        code(&as_user("alice", &input("DirectTrust"))),
        "AccessDenied"
    );
}

#[test]
fn the_callers_scps_take_part() {
    // ScpBlocked trusts bob by name, as DirectTrust does; an SCP of his account denies.
    assert_eq!(code(&as_user("bob", &input("ScpBlocked"))), "AccessDenied");
}

#[test]
fn cross_account_needs_both_sides() {
    let cross = |who: &str, name: &str| {
        let i = AssumeRoleInput {
            role_arn: role(B, name),
            ..input("x")
        };
        code(&as_user(who, &i))
    };
    // The trust policy delegates to account A: alice's identity allows, bob's does not.
    assert_eq!(cross("alice", "CrossTrust"), "ok");
    assert_eq!(cross("bob", "CrossTrust"), "AccessDenied");
    // Naming the user directly does not spare the identity side across accounts.
    assert_eq!(cross("bob", "CrossDirect"), "AccessDenied");
    assert_eq!(cross("dave", "CrossDirect"), "ok");
    // dave's identity allows only CrossDirect.
    assert_eq!(cross("dave", "CrossTrust"), "AccessDenied");
}

#[test]
fn an_unknown_role_is_denied_as_a_refused_one() {
    let e = as_user("alice", &input("NoSuchRole")).unwrap_err();
    assert_eq!(e.code, Code::AccessDenied);
    assert!(e.message.contains("sts:AssumeRole"), "{e}");
}

#[test]
fn an_anonymous_caller_cannot_assume_a_role() {
    let r = assume_role(snap(), &StsCaller::Anonymous, &input("AccountTrust"), now());
    assert_eq!(code(&r), "MissingAuthenticationToken");
}

// === Request keys in the trust policy ===

#[test]
fn external_id_must_match_the_trust_condition() {
    let with = |id: Option<&str>| {
        let i = AssumeRoleInput {
            external_id: id.map(str::to_owned),
            ..input("External")
        };
        code(&as_user("alice", &i))
    };
    assert_eq!(with(Some("Example987")), "ok");
    assert_eq!(with(Some("Example988")), "AccessDenied");
    assert_eq!(with(None), "AccessDenied");
    assert_eq!(with(Some("x")), "ValidationError");
}

#[test]
fn mfa_in_the_trust_condition_needs_a_verified_code() {
    let with = |mfa: Option<MfaProof>| {
        let i = AssumeRoleInput {
            mfa,
            ..input("Mfa")
        };
        as_user("alice", &i)
    };
    assert_eq!(code(&with(None)), "AccessDenied");
    let proof = MfaProof {
        serial: format!("arn:aws:iam::{A}:mfa/alice"),
        authenticated_at: now() - Duration::from_secs(5),
    };
    let issued = with(Some(proof.clone())).unwrap();
    assert_eq!(issued.grant.mfa_at, Some(NOW - 5));
    // A role session keeps the MFA it was issued with: chained from Chain1 (whose
    // identity may assume any role), the same trust condition holds, and fails without.
    let via_chain1 = |mfa: Option<MfaProof>| {
        let first = as_user(
            "alice",
            &AssumeRoleInput {
                mfa,
                ..input("Chain1")
            },
        )
        .unwrap();
        let r = assume_role(
            snap(),
            &StsCaller::Session(&first.grant),
            &AssumeRoleInput {
                session_name: "s2".into(),
                ..input("Mfa")
            },
            now(),
        );
        code(&r)
    };
    assert_eq!(via_chain1(Some(proof)), "ok");
    assert_eq!(via_chain1(None), "AccessDenied");
    // A user's session from GetSessionToken with MFA passes it.
    let alice = user(A, "alice");
    let proof = MfaProof {
        serial: format!("arn:aws:iam::{A}:mfa/alice"),
        authenticated_at: now(),
    };
    let gst = get_session_token(
        snap(),
        &StsCaller::User { arn: &alice },
        None,
        Some(&proof),
        now(),
    )
    .unwrap();
    let r = assume_role(
        snap(),
        &StsCaller::Session(&gst.grant),
        &input("Mfa"),
        now(),
    );
    assert_eq!(code(&r), "ok");
    let without =
        get_session_token(snap(), &StsCaller::User { arn: &alice }, None, None, now()).unwrap();
    let r = assume_role(
        snap(),
        &StsCaller::Session(&without.grant),
        &input("Mfa"),
        now(),
    );
    assert_eq!(code(&r), "AccessDenied");
}

// === Session tags ===

#[test]
fn tags_need_tag_session_in_the_trust_policy() {
    let tagged = |name: &str| AssumeRoleInput {
        tags: vec![("team".into(), "blue".into())],
        ..input(name)
    };
    assert_eq!(code(&as_user("alice", &tagged("Tagged"))), "ok");
    let e = as_user("alice", &tagged("NoTagSession")).unwrap_err();
    assert_eq!(e.code, Code::AccessDenied);
    assert!(e.message.contains("sts:TagSession"), "{e}");
    // Without tags the same role is assumed.
    assert_eq!(code(&as_user("alice", &input("NoTagSession"))), "ok");
    // Transitive keys alone also pass tags on: TagSession again.
    let transitive = AssumeRoleInput {
        transitive_tag_keys: vec!["team".into()],
        ..input("NoTagSession")
    };
    assert_eq!(code(&as_user("alice", &transitive)), "AccessDenied");
}

#[test]
fn a_session_tag_overrides_the_role_tag_in_principal_tag() {
    // The role is tagged team=red; its policy allows only team=blue.
    let plain = as_user("alice", &input("Tagged")).unwrap();
    assert_eq!(
        decide(&plain.grant, "orders:GetOrder"),
        Decision::ImplicitDeny
    );
    let i = AssumeRoleInput {
        tags: vec![("TEAM".into(), "blue".into())],
        ..input("Tagged")
    };
    let tagged = as_user("alice", &i).unwrap();
    assert_eq!(decide(&tagged.grant, "orders:GetOrder"), Decision::Allow);
    assert!(tagged.packed_policy_percent.is_some());
    assert_eq!(plain.packed_policy_percent, None);
}

#[test]
fn tag_limits_and_duplicates_are_refused() {
    let with = |tags: Vec<(String, String)>| {
        code(&as_user(
            "alice",
            &AssumeRoleInput {
                tags,
                ..input("Tagged")
            },
        ))
    };
    let t = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        with(vec![t("a", "1"), t("A", "2")]),
        "InvalidParameterValue"
    );
    assert_eq!(with(vec![t(&"k".repeat(129), "v")]), "ValidationError");
    assert_eq!(with(vec![t("k", &"v".repeat(257))]), "ValidationError");
    assert_eq!(with(vec![t("k", "no*star")]), "ValidationError");
    let many = (0..51).map(|i| t(&format!("k{i}"), "v")).collect();
    assert_eq!(with(many), "ValidationError");
    // 50 tags of the largest size exceed the packed budget, as in AWS.
    let big = (0..50)
        .map(|i| t(&format!("{i:0>128}"), &"v".repeat(256)))
        .collect();
    let r = as_user(
        "alice",
        &AssumeRoleInput {
            tags: big,
            ..input("Tagged")
        },
    )
    .unwrap_err();
    assert_eq!(r.code, Code::PackedPolicyTooLarge);
    assert!(r.message.starts_with("Packed policy consumes "), "{r}");
}

// === Role chaining ===

fn chain1() -> Issued {
    let i = AssumeRoleInput {
        tags: vec![
            ("Star".into(), "1".into()),
            ("Heart".into(), "1".into()),
            ("Moon".into(), "1".into()),
        ],
        transitive_tag_keys: vec!["Star".into(), "Heart".into()],
        source_identity: Some("alice".into()),
        duration: Some(7_200),
        ..input("Chain1")
    };
    as_user("alice", &i).unwrap()
}

#[test]
fn a_user_may_assume_up_to_the_roles_maximum() {
    let g = chain1().grant;
    assert_eq!(g.expires_at - g.issued_at, 7_200);
    assert!(matches!(g.subject, Subject::Role { chained: false, .. }));
    let too_long = AssumeRoleInput {
        duration: Some(3_601),
        ..input("AccountTrust")
    };
    let e = as_user("alice", &too_long).unwrap_err();
    assert_eq!(
        e.message,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );
    let short = AssumeRoleInput {
        duration: Some(899),
        ..input("AccountTrust")
    };
    assert_eq!(
        as_user("alice", &short).unwrap_err().message,
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
    );
}

#[test]
fn a_chained_session_lasts_at_most_one_hour() {
    let first = chain1();
    let caller = StsCaller::Session(&first.grant);
    let long = AssumeRoleInput {
        duration: Some(3_601),
        session_name: "s2".into(),
        ..input("Chain2")
    };
    let e = assume_role(snap(), &caller, &long, now()).unwrap_err();
    assert_eq!(
        e.message,
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
    );
    let ok = assume_role(
        snap(),
        &caller,
        &AssumeRoleInput {
            duration: None,
            ..long
        },
        now(),
    )
    .unwrap();
    assert_eq!(ok.grant.expires_at - ok.grant.issued_at, 3_600);
    assert!(matches!(
        ok.grant.subject,
        Subject::Role { chained: true, .. }
    ));
}

#[test]
fn chaining_carries_transitive_tags_and_the_source_identity() {
    let first = chain1();
    let second = assume_role(
        snap(),
        &StsCaller::Session(&first.grant),
        &AssumeRoleInput {
            session_name: "s2".into(),
            ..input("Chain2")
        },
        now(),
    )
    .unwrap();
    let g = &second.grant;
    // Star and Heart were transitive, Moon was not.
    assert_eq!(
        g.tags,
        vec![("Star".into(), "1".into()), ("Heart".into(), "1".into())]
    );
    assert_eq!(g.transitive_tag_keys, vec!["Star", "Heart"]);
    assert_eq!(g.source_identity.as_deref(), Some("alice"));
    // The inherited Star=1 overrides Chain2's own Star=3 tag.
    assert_eq!(decide(g, "orders:GetOrder"), Decision::Allow);
    // A third hop keeps them again.
    let third = assume_role(
        snap(),
        &StsCaller::Session(&first.grant),
        &AssumeRoleInput {
            session_name: "s3".into(),
            ..input("Chain1")
        },
        now(),
    )
    .unwrap();
    assert_eq!(third.grant.source_identity.as_deref(), Some("alice"));
}

#[test]
fn an_inherited_transitive_tag_cannot_be_changed() {
    let first = chain1();
    let caller = StsCaller::Session(&first.grant);
    let change = AssumeRoleInput {
        tags: vec![("heart".into(), "3".into())],
        session_name: "s2".into(),
        ..input("Chain2")
    };
    let e = assume_role(snap(), &caller, &change, now()).unwrap_err();
    assert_eq!(e.code, Code::InvalidParameterValue);
    // Passing the same value changes nothing and is accepted.
    let same = AssumeRoleInput {
        tags: vec![("Heart".into(), "1".into())],
        ..change
    };
    let g = assume_role(snap(), &caller, &same, now()).unwrap().grant;
    assert_eq!(g.tags.len(), 2);
}

#[test]
fn the_source_identity_cannot_change_once_set() {
    let first = chain1();
    let caller = StsCaller::Session(&first.grant);
    let other = AssumeRoleInput {
        source_identity: Some("mallory".into()),
        session_name: "s2".into(),
        ..input("Chain1")
    };
    let e = assume_role(snap(), &caller, &other, now()).unwrap_err();
    assert_eq!(e.code, Code::InvalidParameterValue);
}

#[test]
fn setting_a_source_identity_needs_set_source_identity() {
    // AccountTrust's trust policy allows only sts:AssumeRole.
    let i = AssumeRoleInput {
        source_identity: Some("alice".into()),
        ..input("AccountTrust")
    };
    let e = as_user("alice", &i).unwrap_err();
    assert!(e.message.contains("sts:SetSourceIdentity"), "{e}");
    let bad = AssumeRoleInput {
        source_identity: Some("aws:me".into()),
        ..input("Chain1")
    };
    assert_eq!(code(&as_user("alice", &bad)), "ValidationError");
}

// === Session policies ===

#[test]
fn a_session_policy_narrows_the_session() {
    let full = as_user("alice", &input("AccountTrust")).unwrap();
    assert_eq!(decide(&full.grant, "orders:CreateOrder"), Decision::Allow);
    let inline = AssumeRoleInput {
        policy: Some(allow(json!("orders:GetOrder")).to_string()),
        ..input("AccountTrust")
    };
    let narrow = as_user("alice", &inline).unwrap();
    assert_eq!(decide(&narrow.grant, "orders:GetOrder"), Decision::Allow);
    assert_eq!(
        decide(&narrow.grant, "orders:CreateOrder"),
        Decision::ImplicitDeny
    );
    let managed = AssumeRoleInput {
        policy_arns: vec![format!("arn:aws:iam::{A}:policy/ReadOnly")],
        ..input("AccountTrust")
    };
    let narrow = as_user("alice", &managed).unwrap();
    assert_eq!(decide(&narrow.grant, "orders:GetOrder"), Decision::Allow);
    assert_eq!(
        decide(&narrow.grant, "orders:CreateOrder"),
        Decision::ImplicitDeny
    );
}

#[test]
fn a_managed_session_policy_the_snapshot_lacks_caps_to_nothing() {
    let mut g = as_user("alice", &input("AccountTrust")).unwrap().grant;
    g.policy_arns = vec![format!("arn:aws:iam::{A}:policy/Gone")];
    assert_eq!(decide(&g, "orders:GetOrder"), Decision::ImplicitDeny);
    // Even next to an inline policy that allows.
    g.policy = Some(allow(json!("orders:*")).to_string());
    assert_eq!(decide(&g, "orders:GetOrder"), Decision::ImplicitDeny);
}

#[test]
fn session_policies_are_validated_at_issue() {
    let with = |policy: Option<String>, arns: Vec<String>| {
        code(&as_user(
            "alice",
            &AssumeRoleInput {
                policy,
                policy_arns: arns,
                ..input("AccountTrust")
            },
        ))
    };
    assert_eq!(with(Some("{".into()), vec![]), "MalformedPolicyDocument");
    let with_principal = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "orders:*", "Resource": "*"}]});
    assert_eq!(
        with(Some(with_principal.to_string()), vec![]),
        "MalformedPolicyDocument"
    );
    assert_eq!(with(Some("x".repeat(2_049)), vec![]), "ValidationError");
    assert_eq!(
        with(None, vec![format!("arn:aws:iam::{A}:policy/Gone")]),
        "InvalidParameterValue"
    );
    let eleven = (0..11)
        .map(|_| format!("arn:aws:iam::{A}:policy/ReadOnly"))
        .collect();
    assert_eq!(with(None, eleven), "ValidationError");
}

#[test]
fn session_names_follow_aws_pattern() {
    let with = |name: &str| {
        code(&as_user(
            "alice",
            &AssumeRoleInput {
                session_name: name.into(),
                ..input("AccountTrust")
            },
        ))
    };
    assert_eq!(with("a.b@c=d,e+f_g-h"), "ok");
    assert_eq!(with("a"), "ValidationError");
    assert_eq!(with(&"a".repeat(65)), "ValidationError");
    assert_eq!(with("has space"), "ValidationError");
}

// === Revocation ===

/// The revocation example of the module's documentation: sessions issued before the
/// moment are denied, later ones allowed.
#[test]
fn revocation_by_token_issue_time() {
    let at = |t: u64| {
        assume_role(
            snap(),
            &StsCaller::User {
                arn: &user(A, "alice"),
            },
            &input("Revocable"),
            UNIX_EPOCH + Duration::from_secs(t),
        )
        .unwrap()
        .grant
    };
    let old = at(NOW - 60);
    let new = at(NOW + 1);
    let d = decide(&old, "orders:GetOrder");
    assert_eq!(d, Decision::ExplicitDeny);
    assert_eq!(decide(&new, "orders:GetOrder"), Decision::Allow);
}

// === GetSessionToken and GetCallerIdentity ===

#[test]
fn get_session_token_is_for_users_only() {
    let alice = user(A, "alice");
    let caller = StsCaller::User { arn: &alice };
    let g = get_session_token(snap(), &caller, None, None, now())
        .unwrap()
        .grant;
    assert_eq!(g.expires_at - g.issued_at, 43_200);
    assert_eq!(
        g.subject,
        Subject::User {
            user_arn: alice.clone()
        }
    );
    assert!(g.access_key_id.starts_with("ASIA") && g.access_key_id.len() == 20);
    let e = get_session_token(snap(), &StsCaller::Session(&g), None, None, now()).unwrap_err();
    assert_eq!(e.code, Code::AccessDenied);
    for (d, ok) in [(900, true), (129_600, true), (899, false), (129_601, false)] {
        let r = get_session_token(snap(), &caller, Some(d), None, now());
        assert_eq!(r.is_ok(), ok, "{d}");
    }
    let root = format!("arn:aws:iam::{A}:root");
    let r = get_session_token(
        snap(),
        &StsCaller::User { arn: &root },
        Some(7_200),
        None,
        now(),
    );
    assert_eq!(r.unwrap_err().code, Code::ValidationError);
}

#[test]
fn a_users_session_decides_as_the_user_with_session_keys() {
    let alice = user(A, "alice");
    let g = get_session_token(snap(), &StsCaller::User { arn: &alice }, None, None, now())
        .unwrap()
        .grant;
    assert_eq!(decide(&g, "orders:CreateOrder"), Decision::Allow);
    let session = session_caller(snap(), &g).unwrap();
    let who = snap()
        .resolve(&alice, Some(&session), now())
        .unwrap()
        .expect("a user's session resolves as the user");
    assert_eq!(
        who.cache_identity(),
        crate::cache::Identity::Session(&g.access_key_id)
    );
    // bob has no policy: his session can do nothing either.
    let bob = user(A, "bob");
    let g = get_session_token(snap(), &StsCaller::User { arn: &bob }, None, None, now())
        .unwrap()
        .grant;
    assert_eq!(decide(&g, "orders:GetOrder"), Decision::ImplicitDeny);
}

#[test]
fn caller_identity_names_the_user_or_the_session() {
    let alice = user(A, "alice");
    let id = caller_identity(snap(), &StsCaller::User { arn: &alice }).unwrap();
    assert_eq!(id.account, A);
    assert_eq!(id.arn, alice);
    assert!(id.user_id.starts_with("AIDA"));
    let issued = as_user("alice", &input("AccountTrust")).unwrap();
    let id = caller_identity(snap(), &StsCaller::Session(&issued.grant)).unwrap();
    assert_eq!(
        id.arn,
        format!("arn:aws:sts::{A}:assumed-role/AccountTrust/s1")
    );
    assert!(id.user_id.starts_with("AROA") && id.user_id.ends_with(":s1"));
    assert_eq!(Some(id.user_id), issued.assumed_role_id);
    assert!(caller_identity(snap(), &StsCaller::Anonymous).is_err());
}

// === The session cache ===

#[test]
fn session_callers_are_cached_per_grant_and_revision() {
    let cache = SessionCallers::new(16);
    let g = as_user("alice", &input("AccountTrust")).unwrap().grant;
    let a = cache.get(snap(), &g).unwrap();
    let b = cache.get(snap(), &g).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(cache.len(), 1);
    // The same key id with other contents is never served the cached session.
    let mut forged = g.clone();
    forged.policy = Some(allow(json!("orders:GetOrder")).to_string());
    let c = cache.get(snap(), &forged).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert!(c.policies.is_some());
    // Another revision compiles again.
    let other = Snapshot::load_files(&files(), 4).unwrap();
    let d = cache.get(&other, &g).unwrap();
    assert!(!Arc::ptr_eq(&a, &d));
}

#[test]
fn an_oversized_grant_is_refused() {
    let mut g = as_user("alice", &input("AccountTrust")).unwrap().grant;
    g.policy_arns = vec![String::new(); 11];
    assert_eq!(
        session_caller(snap(), &g).unwrap_err().code,
        Code::InvalidClientTokenId
    );
}

// === AssumeRoleWithWebIdentity ===

#[test]
fn a_web_identity_session_carries_the_tokens_keys_duration_and_policies() {
    const ISSUER: &str = "https://issuer.test.invalid";
    let provider = format!("arn:aws:iam::{A}:oidc-provider/issuer.test.invalid");
    let key =
        crate::oidc::mint::SigningKey::from_pem(include_bytes!("../../oidc/testdata/ed25519.pem"))
            .unwrap();
    let mut f = files();
    f.insert(
        format!("accounts/{A}/oidc-providers/test.json"),
        json!({"url": ISSUER, "client_ids": ["app"], "jwks": key.public_jwks()}).to_string(),
    );
    f.insert(
        format!("accounts/{A}/roles/Web.json"),
        json!({
            "max_session_duration": 7200,
            "trust_policy": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"issuer.test.invalid:sub": "alice"}}}]},
            "inline_policies": {"p": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "orders:*", "Resource": "*",
                "Condition": {"StringEquals": {"issuer.test.invalid:sub": "alice"}}}]}}
        })
        .to_string(),
    );
    let s = Snapshot::load_files(&f, 9).unwrap();
    let claims = |sub: &str| {
        let serde_json::Value::Object(m) = json!({"iss": ISSUER, "sub": sub, "aud": "app",
            "iat": NOW - 10, "exp": NOW + 600})
        else {
            unreachable!()
        };
        crate::oidc::Claims::from_json(m).unwrap()
    };
    let (alice, mallory) = (claims("alice"), claims("mallory"));
    let role_arn = role(A, "Web");
    let policy = allow(json!("orders:GetOrder")).to_string();
    let web = |claims: &crate::oidc::Claims, duration: Option<u32>| {
        assume_role_with_web_identity(
            &s,
            &WebIdentityInput {
                provider_arn: &provider,
                role_arn: &role_arn,
                session_name: "web-1",
                claims,
                skew: Duration::from_secs(30),
                duration,
                policy: Some(&policy),
                policy_arns: &[],
            },
            now(),
        )
    };
    assert_eq!(code(&web(&mallory, None)), "AccessDenied");
    assert_eq!(code(&web(&alice, Some(7_201))), "ValidationError");
    let g = web(&alice, Some(7_200)).unwrap().grant;
    // The role's duration, not the token's ten minutes.
    assert_eq!(g.expires_at - g.issued_at, 7_200);
    let w = g.web_identity.as_ref().unwrap();
    assert!(
        w.keys
            .iter()
            .any(|(k, v)| k == "issuer.test.invalid:sub" && v == &["alice".to_owned()])
    );
    // Its requests see the token's keys, within the session policy.
    let session = session_caller(&s, &g).unwrap();
    let arn = g.arn();
    let who = s.resolve(&arn, Some(&session), now()).unwrap().unwrap();
    let ask = |action: &str| {
        let action = Action::parse(action).unwrap();
        let resource = format!("arn:aws:orders:us-east-1:{A}:order/1");
        let ctx = CallerContext::empty();
        let q = Question {
            action: &action,
            resource: &resource,
            resource_arn: parse_resource(&resource).unwrap(),
            context: CallerView::of(&ctx),
        };
        s.decide(&who, &q, now(), false).0.outcome.decision
    };
    assert_eq!(ask("orders:GetOrder"), Decision::Allow);
    assert_eq!(ask("orders:CreateOrder"), Decision::ImplicitDeny);
}

//! A principal's policies keep the bundle's order (inline, attached, then the groups'), and
//! so do the resource policies a resource matches, so which statement a decision names
//! does not depend on where a policy sits in memory or in the snapshot's indexes.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::collections::BTreeMap;
use std::time::SystemTime;

use warden::context::CallerContext;
use warden::eval::{Decision, Explanation};
use warden::policy::PolicyKind;
use warden::snapshot::{Authorization, Snapshot};

/// User `u` of account 111111111111 asks for `iam:GetUser` on `resource`, with no
/// context, explained.
fn get_user(s: &Snapshot, resource: &str) -> (Authorization, Option<Explanation>) {
    get_user_as(s, "u", resource)
}

/// [`get_user`] asked by the account's user `user`.
fn get_user_as(s: &Snapshot, user: &str, resource: &str) -> (Authorization, Option<Explanation>) {
    s.explain(
        &format!("arn:aws:iam::111111111111:user/{user}"),
        "iam:GetUser",
        resource,
        &CallerContext::empty(),
        SystemTime::UNIX_EPOCH,
    )
    .unwrap()
}

/// A bundle of one standalone account, 111111111111: an organization whose management
/// account it is, so no SCP or RCP governs it.
fn standalone() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "organization.json".to_owned(),
        r#"{"id": "o-exampleorg1", "management_account": "111111111111",
            "root": {"id": "r-root", "accounts": [{"id": "111111111111"}]}}"#
            .to_owned(),
    )])
}

fn allow_all() -> String {
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}"#.to_owned()
}

#[test]
fn a_set_lists_policies_in_bundle_order_and_the_first_allow_decides() {
    let acct = "111111111111";
    let mut files = standalone();
    // Names chosen so that neither alphabetical nor file order is the attachment order.
    for name in ["Zeta", "Alpha", "Mid", "Shared"] {
        files.insert(format!("accounts/{acct}/policies/{name}.json"), allow_all());
    }
    files.insert(
        format!("accounts/{acct}/groups/team.json"),
        r#"{"managed_policies":["Shared","Alpha"]}"#.to_owned(),
    );
    files.insert(
        format!("accounts/{acct}/users/u.json"),
        format!(
            r#"{{"groups":["team"],"managed_policies":["Zeta","Shared","Mid"],"inline_policies":{{"own":{}}}}}"#,
            allow_all()
        ),
    );
    let s = Snapshot::load_files(&files, 1).unwrap();
    let (auth, explanation) = get_user(&s, "*");
    let identity = explanation
        .unwrap()
        .layers
        .into_iter()
        .find(|l| l.kind == PolicyKind::Identity)
        .unwrap();
    let order: Vec<String> = identity
        .statements
        .iter()
        .map(|st| st.policy.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["own", "Zeta", "Shared", "Mid", "Alpha"]);
    let named: Vec<String> = auth
        .outcome
        .statements
        .iter()
        .map(|m| m.policy.to_string())
        .collect();
    assert_eq!(named, ["accounts/111111111111/users/u/inline/own"]);
}

#[test]
fn principals_with_the_same_policies_in_two_orders_each_keep_their_own() {
    // One set per order: the first Allow a decision names is the principal's own first,
    // whichever principal the compile reached first.
    let acct = "111111111111";
    let mut files = standalone();
    for name in ["First", "Second"] {
        files.insert(format!("accounts/{acct}/policies/{name}.json"), allow_all());
    }
    files.insert(
        format!("accounts/{acct}/users/u.json"),
        r#"{"managed_policies":["First","Second"]}"#.to_owned(),
    );
    files.insert(
        format!("accounts/{acct}/users/v.json"),
        r#"{"managed_policies":["Second","First"]}"#.to_owned(),
    );
    let s = Snapshot::load_files(&files, 1).unwrap();
    let named = |user: &str| -> Vec<String> {
        let (auth, _) = get_user_as(&s, user, "*");
        assert_eq!(auth.outcome.decision, Decision::Allow);
        auth.outcome
            .statements
            .iter()
            .map(|m| m.policy.rsplit('/').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(named("u"), ["First"]);
    assert_eq!(named("v"), ["Second"]);
}

/// A resource policy whose one statement, `sid`, allows `iam:GetUser` to user `u`.
fn resource_policy(arn: &str, sid: &str) -> String {
    resource_statement(arn, sid, "Allow")
}

/// A resource policy whose one statement, `sid`, has `effect` on `iam:GetUser` for user `u`.
fn resource_statement(arn: &str, sid: &str, effect: &str) -> String {
    format!(
        r#"{{"arn":"{arn}","policy":{{"Version":"2012-10-17","Statement":[{{"Sid":"{sid}","Effect":"{effect}","Principal":{{"AWS":"arn:aws:iam::111111111111:user/u"}},"Action":"iam:GetUser","Resource":"*"}}]}}}}"#
    )
}

#[test]
fn resource_patterns_are_found_by_their_head_and_kept_in_bundle_order() {
    let acct = "111111111111";
    let mut files = standalone();
    for (name, arn) in [
        // A wildcard in the service: tried for every resource.
        ("AAnyService", "arn:aws:*::111111111111:user/team/*"),
        // The request's own head.
        ("BSameHead", "arn:aws:iam::111111111111:user/*"),
        // Another region's head: never tried for this resource.
        ("COtherHead", "arn:aws:iam:us-east-1:111111111111:user/*"),
        // The request's head, another path.
        ("DOtherPath", "arn:aws:iam::111111111111:user/ops/*"),
        // The resource itself.
        ("EExact", "arn:aws:iam::111111111111:user/team/bob"),
        // A wildcard in the region, after the exact entry in the bundle.
        ("FAnyRegion", "arn:aws:iam:*:111111111111:user/team/b*"),
    ] {
        files.insert(
            format!("accounts/{acct}/resources/{name}.json"),
            resource_policy(arn, name),
        );
    }
    files.insert(format!("accounts/{acct}/users/u.json"), "{}".to_owned());
    let s = Snapshot::load_files(&files, 1).unwrap();
    let resource_layer = |resource: &str| -> Vec<String> {
        let (auth, explanation) = get_user(&s, resource);
        let layer = explanation
            .unwrap()
            .layers
            .into_iter()
            .find(|l| l.kind == PolicyKind::Resource);
        let names: Vec<String> = layer
            .map(|l| l.statements)
            .unwrap_or_default()
            .iter()
            .map(|st| st.sid.as_deref().unwrap().to_owned())
            .collect();
        assert_eq!(
            auth.outcome.decision == Decision::Allow,
            !names.is_empty(),
            "{resource}: {names:?}"
        );
        names
    };
    // The exact ARN's entry first, then the patterns in bundle order.
    assert_eq!(
        resource_layer("arn:aws:iam::111111111111:user/team/bob"),
        ["EExact", "AAnyService", "BSameHead", "FAnyRegion"]
    );
    assert_eq!(
        resource_layer("arn:aws:iam::111111111111:user/ops/eve"),
        ["BSameHead", "DOtherPath"]
    );
    assert_eq!(
        resource_layer("arn:aws:iam:us-east-1:111111111111:user/team/bea"),
        ["COtherHead", "FAnyRegion"]
    );
    assert!(resource_layer("arn:aws:iam::111111111111:group/team").is_empty());
    assert!(resource_layer("*").is_empty());
}

#[test]
fn a_resource_matched_by_several_policies_is_decided_by_all_of_them() {
    let acct = "111111111111";
    let mut files = standalone();
    for (name, arn, effect) in [
        (
            "AllowTeam",
            "arn:aws:iam::111111111111:user/team/*",
            "Allow",
        ),
        ("DenyBob", "arn:aws:iam::111111111111:user/team/bob", "Deny"),
        ("DenyB", "arn:aws:iam::111111111111:user/team/b*", "Deny"),
    ] {
        files.insert(
            format!("accounts/{acct}/resources/{name}.json"),
            resource_statement(arn, name, effect),
        );
    }
    files.insert(format!("accounts/{acct}/users/u.json"), "{}".to_owned());
    let s = Snapshot::load_files(&files, 1).unwrap();
    let decide = |resource: &str| {
        let outcome = get_user(&s, resource).0.outcome;
        let sids: Vec<String> = outcome
            .statements
            .iter()
            .map(|m| m.sid.as_deref().unwrap().to_owned())
            .collect();
        (outcome.decision, sids)
    };
    // The exact ARN's deny, then the patterns' in bundle order; the allow decides nothing.
    assert_eq!(
        decide("arn:aws:iam::111111111111:user/team/bob"),
        (
            Decision::ExplicitDeny,
            vec!["DenyBob".into(), "DenyB".into()]
        )
    );
    assert_eq!(
        decide("arn:aws:iam::111111111111:user/team/bea"),
        (Decision::ExplicitDeny, vec!["DenyB".into()])
    );
    // Only the allowing pattern: the resource policy grants within the account.
    assert_eq!(
        decide("arn:aws:iam::111111111111:user/team/ann"),
        (Decision::Allow, vec!["AllowTeam".into()])
    );
    assert_eq!(
        decide("arn:aws:iam::111111111111:user/ops/ann"),
        (Decision::ImplicitDeny, vec![])
    );
}

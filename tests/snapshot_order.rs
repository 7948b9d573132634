//! A principal's policies keep the bundle's order (inline, attached, then the groups'), so
//! which statement a decision names does not depend on where a policy sits in memory.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::collections::BTreeMap;
use std::time::SystemTime;

use warden::context::Context;
use warden::policy::PolicyKind;
use warden::snapshot::{Query, Snapshot};

fn allow_all() -> String {
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}"#.to_owned()
}

#[test]
fn a_set_lists_policies_in_bundle_order_and_the_first_allow_decides() {
    let acct = "111111111111";
    let mut files = BTreeMap::new();
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
    let q = Query {
        principal: "arn:aws:iam::111111111111:user/u",
        action: "iam:GetUser",
        resource: "*",
        context: &Context::new(),
        now: SystemTime::UNIX_EPOCH,
    };
    let (auth, explanation) = s.explain(&q);
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

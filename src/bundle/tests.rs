//! Tests of bundle loading: every validation finding, with its file, JSON path and
//! line:column.

use std::collections::BTreeMap;

use super::*;

const ACCT: &str = "111122223333";

/// A small valid bundle: an organization, one service, one account with a user, a group,
/// a role, a customer managed policy and a resource policy.
fn base() -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        f.insert(k.to_owned(), v.to_owned());
    };
    put(
        "organization.json",
        r#"{"id": "o-abcdefghij", "management_account": "999988887777",
 "root": {"id": "r-root", "accounts": [{"id": "999988887777"}],
  "units": [{"id": "ou-root-work", "name": "Work", "accounts": [{"id": "111122223333"}]}]}}"#,
    );
    put(
        "catalog/orders.json",
        r#"{"prefix": "orders", "categories": ["application"],
 "resource_types": {"order": {"arn": "arn:${Partition}:orders:${Region}:${Account}:order/${Id}"}},
 "condition_keys": ["orders:Amount"],
 "actions": {"GetOrder": {"access": "Read", "resources": ["order"]},
             "ListOrders": {"access": "List"},
             "DeleteOrder": {"access": "Write", "resources": ["order"]}}}"#,
    );
    put(
        &format!("accounts/{ACCT}/policies/Readers.json"),
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}"#,
    );
    put(
        &format!("accounts/{ACCT}/groups/team.json"),
        r#"{"managed_policies": ["Readers"]}"#,
    );
    put(
        &format!("accounts/{ACCT}/users/alice.json"),
        r#"{"path": "/eng/", "tags": {"team": "a"}, "groups": ["team"]}"#,
    );
    put(
        &format!("accounts/{ACCT}/roles/app.json"),
        r#"{"trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"}]}}"#,
    );
    put(
        &format!("accounts/{ACCT}/resources/orders.json"),
        r#"{"arn": "arn:aws:orders:us-east-1:111122223333:order/*", "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "orders:GetOrder"}]}}"#,
    );
    f
}

fn with(overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut f = base();
    for (k, v) in overrides {
        if v.is_empty() {
            f.remove(*k);
        } else {
            f.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    f
}

fn findings(files: &BTreeMap<String, String>) -> Vec<BundleFinding> {
    match load_files(files) {
        Ok(b) => b.warnings,
        Err(e) => e.findings,
    }
}

/// Asserts that loading `overrides` over the base bundle reports exactly this finding
/// (among possibly others), at this place.
#[track_caller]
fn check(overrides: &[(&str, &str)], file: &str, code: &str, path: &str, line: u32, column: u32) {
    let all = findings(&with(overrides));
    let found = all
        .iter()
        .find(|f| f.finding.code == code && f.file == file);
    let Some(f) = found else {
        panic!("no `{code}` in `{file}`; findings: {all:#?}");
    };
    assert_eq!(f.finding.path, path, "{f}");
    assert_eq!(
        (f.finding.pos.line, f.finding.pos.column),
        (line, column),
        "{f}"
    );
}

fn user_file() -> String {
    format!("accounts/{ACCT}/users/alice.json")
}

#[test]
fn the_base_bundle_loads_without_findings() {
    let b = load_files(&base()).unwrap();
    assert!(b.warnings.is_empty(), "{:#?}", b.warnings);
    let a = &b.accounts[ACCT];
    assert_eq!(a.users[0].arn, "arn:aws:iam::111122223333:user/eng/alice");
    assert_eq!(a.users[0].groups, vec!["team"]);
    assert_eq!(
        a.groups[0].managed,
        vec!["arn:aws:iam::111122223333:policy/Readers"]
    );
    assert!(
        b.managed
            .contains_key("arn:aws:iam::aws:policy/ReadOnlyAccess")
    );
}

#[test]
fn malformed_json_names_line_and_column() {
    let u = user_file();
    check(
        &[(&u, "{\n  \"path\": \"/eng/\",\n}")],
        &u,
        "invalid-json",
        "$",
        3,
        1,
    );
}

#[test]
fn unknown_key_in_an_identity_file() {
    let u = user_file();
    check(
        &[(&u, r#"{"path": "/eng/", "grups": ["team"]}"#)],
        &u,
        "unknown-key",
        "$.grups",
        1,
        19,
    );
}

#[test]
fn names_and_paths_are_checked() {
    let bad = format!("accounts/{ACCT}/users/al ice.json");
    check(&[(&bad, "{}")], &bad, "invalid-name", "$", 0, 0);
    let u = user_file();
    check(
        &[(&u, r#"{"path": "eng"}"#)],
        &u,
        "invalid-path",
        "$.path",
        1,
        10,
    );
}

#[test]
fn a_group_reference_must_resolve() {
    let u = user_file();
    check(
        &[(&u, r#"{"groups": ["team", "nope"]}"#)],
        &u,
        "unknown-group",
        "$.groups[1]",
        1,
        21,
    );
}

#[test]
fn attached_policies_and_boundaries_must_resolve() {
    let u = user_file();
    check(
        &[(&u, r#"{"managed_policies": ["Missing"]}"#)],
        &u,
        "unknown-policy",
        "$.managed_policies[0]",
        1,
        23,
    );
    check(
        &[(&u, r#"{"permissions_boundary": "Missing"}"#)],
        &u,
        "unknown-policy",
        "$.permissions_boundary",
        1,
        26,
    );
    check(
        &[(&u, r#"{"managed_policies": ["Readers", "Readers"]}"#)],
        &u,
        "duplicate-attachment",
        "$.managed_policies[1]",
        1,
        34,
    );
}

#[test]
fn quotas_on_groups_and_attachments() {
    let u = user_file();
    check(
        &[
            ("quotas.json", r#"{"groups_per_user": 1}"#),
            (&u, r#"{"groups": ["team", "team"]}"#),
        ],
        &u,
        "too-many-groups",
        "$.groups",
        1,
        1,
    );
    check(
        &[
            ("quotas.json", r#"{"managed_policies_per_user": 1}"#),
            (&u, r#"{"managed_policies": ["Readers", "ReadOnlyAccess"]}"#),
        ],
        &u,
        "too-many-attachments",
        "$.managed_policies",
        1,
        1,
    );
    check(
        &[("quotas.json", r#"{"groups_per_user": 99}"#)],
        "quotas.json",
        "invalid-number",
        "$.groups_per_user",
        1,
        21,
    );
}

#[test]
fn inline_policies_share_a_size_budget() {
    let u = user_file();
    let big = format!(
        r#"{{"inline_policies": {{"a": {{"Version": "2012-10-17", "Statement": [{{"Sid": "{}", "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}}]}}}}}}"#,
        "S".repeat(2_100)
    );
    check(
        &[(&u, &big)],
        &u,
        "inline-too-large",
        "$.inline_policies",
        1,
        21,
    );
}

#[test]
fn policy_findings_are_placed_inside_the_file() {
    let r = format!("accounts/{ACCT}/roles/app.json");
    check(
        &[(
            &r,
            "{\"trust_policy\": {\"Version\": \"2012-10-17\", \"Statement\": [\n  {\"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"111122223333\"}, \"Action\": \"sts:AssumeRole\", \"Resource\": \"*\"}]}}",
        )],
        &r,
        "trust-resource",
        "$.trust_policy.Statement[0].Resource",
        2,
        101,
    );
    check(
        &[(&r, r#"{"path": "/"}"#)],
        &r,
        "missing-trust-policy",
        "$",
        1,
        1,
    );
}

#[test]
fn actions_are_checked_against_the_catalog() {
    let p = format!("accounts/{ACCT}/policies/Readers.json");
    check(
        &[(
            &p,
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["orders:GetOrder", "orders:Fly"], "Resource": "*"}]}"#,
        )],
        &p,
        "unknown-action",
        "$.Statement[0].Action[1]",
        1,
        91,
    );
    check(
        &[(
            &p,
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ships:Sail", "Resource": "*"}]}"#,
        )],
        &p,
        "unknown-action",
        "$.Statement[0].Action",
        1,
        71,
    );
    check(
        &[(
            &p,
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:Fly*", "Resource": "*"}]}"#,
        )],
        &p,
        "action-matches-nothing",
        "$.Statement[0].Action",
        1,
        71,
    );
}

#[test]
fn unknown_condition_keys_are_warnings() {
    let p = format!("accounts/{ACCT}/policies/Readers.json");
    let doc = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*", "Condition": {"StringEquals": {"orders:Colour": "red", "orders:Amount": "1", "aws:PrincipalTag/x": "y"}}}]}"#;
    let all = findings(&with(&[(&p, doc)]));
    let warnings: Vec<&BundleFinding> = all
        .iter()
        .filter(|f| f.finding.code == "unknown-condition-key")
        .collect();
    assert_eq!(warnings.len(), 1, "{all:#?}");
    assert_eq!(warnings[0].finding.severity, Severity::Warning);
    assert_eq!(
        warnings[0].finding.path,
        "$.Statement[0].Condition.StringEquals.orders:Colour"
    );
    // A warning does not stop the bundle from loading.
    assert!(load_files(&with(&[(&p, doc)])).is_ok());
}

#[test]
fn names_are_unique_regardless_of_case() {
    let other = format!("accounts/{ACCT}/users/ALICE.json");
    let all = findings(&with(&[(&other, "{}")]));
    assert!(
        all.iter().any(|f| f.finding.code == "duplicate-name"),
        "{all:#?}"
    );
}

#[test]
fn tags_are_checked() {
    let u = user_file();
    check(
        &[(&u, r#"{"tags": {"team": "a", "TEAM": "b"}}"#)],
        &u,
        "duplicate-tag",
        "$.tags.TEAM",
        1,
        24,
    );
    check(
        &[(&u, r#"{"tags": {"team": 1}}"#)],
        &u,
        "wrong-type",
        "$.tags.team",
        1,
        19,
    );
}

#[test]
fn organization_references_are_checked() {
    let org = |root: &str| {
        format!(r#"{{"id": "o-abcdefghij", "management_account": "999988887777", "root": {root}}}"#)
    };
    check(
        &[(
            "organization.json",
            &org(
                r#"{"id": "r-1", "scps": ["Nope"], "accounts": [{"id": "999988887777"}, {"id": "111122223333"}]}"#,
            ),
        )],
        "organization.json",
        "unknown-policy",
        "$.root.scps",
        0,
        0,
    );
    check(
        &[(
            "organization.json",
            &org(r#"{"id": "r-1", "accounts": [{"id": "111122223333"}]}"#),
        )],
        "organization.json",
        "unknown-account",
        "$.management_account",
        0,
        0,
    );
    check(
        &[(
            "organization.json",
            &org(r#"{"id": "r-1", "scps": [], "accounts": [{"id": "999988887777"}]}"#),
        )],
        "organization.json",
        "no-scp",
        "$.root.scps",
        1,
        70,
    );
    check(
        &[(
            "organization.json",
            r#"{"id": "org1", "management_account": "999988887777", "root": {"id": "r"}}"#,
        )],
        "organization.json",
        "invalid-org-id",
        "$.id",
        1,
        8,
    );
}

#[test]
fn an_account_outside_the_organization_is_a_warning() {
    let org = r#"{"id": "o-abcdefghij", "management_account": "999988887777", "root": {"id": "r-1", "accounts": [{"id": "999988887777"}]}}"#;
    let all = findings(&with(&[("organization.json", org)]));
    let f = all
        .iter()
        .find(|f| f.finding.code == "account-outside-org")
        .unwrap();
    assert_eq!(f.finding.severity, Severity::Warning);
}

#[test]
fn resource_policies_belong_to_their_account() {
    let r = format!("accounts/{ACCT}/resources/orders.json");
    check(
        &[(
            &r,
            r#"{"arn": "arn:aws:orders:us-east-1:444455556666:order/1", "policy": {}}"#,
        )],
        &r,
        "wrong-account",
        "$.arn",
        1,
        9,
    );
    check(
        &[(&r, r#"{"arn": "order/1", "policy": {}}"#)],
        &r,
        "invalid-arn",
        "$.arn",
        1,
        9,
    );
    check(
        &[(
            &r,
            r#"{"arn": "arn:aws:orders:us-east-1:111122223333:order/1"}"#,
        )],
        &r,
        "missing-key",
        "$",
        1,
        1,
    );
}

#[test]
fn catalog_files_are_checked() {
    check(
        &[(
            "catalog/ships.json",
            r#"{"prefix": "ships", "actions": {"Sail": {"access": "Steer"}}}"#,
        )],
        "catalog/ships.json",
        "invalid-access-level",
        "$.actions.Sail.access",
        1,
        52,
    );
    check(
        &[(
            "catalog/ships.json",
            r#"{"prefix": "ships", "actions": {"Sail": {"access": "Write", "resources": ["boat"]}}}"#,
        )],
        "catalog/ships.json",
        "unknown-resource-type",
        "$.actions.Sail.resources[0]",
        1,
        75,
    );
    // A format reverse queries cannot read as the pattern of its ARNs (an unclosed
    // `${`, too few parts) is refused where it is written.
    for arn in ["arn:${Partition}:ships:${Region", "arn:aws:ships"] {
        let text = format!(
            r#"{{"prefix": "ships", "resource_types": {{"boat": {{"arn": "{arn}"}}}}, "actions": {{}}}}"#
        );
        check(
            &[("catalog/ships.json", &text)],
            "catalog/ships.json",
            "invalid-arn-format",
            "$.resource_types.boat.arn",
            1,
            48,
        );
    }
    check(
        &[("catalog/iam.json", r#"{"prefix": "iam", "actions": {}}"#)],
        "catalog/iam.json",
        "duplicate-service",
        "$.prefix",
        1,
        12,
    );
}

#[test]
fn files_outside_the_layout_are_errors() {
    check(
        &[("notes.txt", "hello")],
        "notes.txt",
        "unexpected-file",
        "$",
        0,
        0,
    );
    check(
        &[("accounts/12/users/x.json", "{}")],
        "accounts/12/users/x.json",
        "invalid-account",
        "$",
        0,
        0,
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let u = user_file();
    let p = format!("accounts/{ACCT}/policies/Readers.json");
    let err = load_files(&with(&[
        (&u, r#"{"groups": ["nope"]}"#),
        (&p, r#"{"Statement": []"#),
    ]))
    .unwrap_err();
    let codes: Vec<&str> = err.findings.iter().map(|f| f.finding.code).collect();
    assert!(codes.contains(&"unknown-group"), "{codes:?}");
    assert!(codes.contains(&"invalid-json"), "{codes:?}");
    let text = err.to_string();
    assert!(
        text.contains(
            "accounts/111122223333/users/alice.json:1:13: error[unknown-group] $.groups[0]"
        ),
        "{text}"
    );
}

#[test]
fn the_partition_check_names_the_partition() {
    assert!(super::is_partition(super::PARTITION));
    for other in ["aws-cn", "aw", "AWS", ""] {
        assert!(!super::is_partition(other), "{other}");
    }
}

#[test]
fn a_bundle_without_organization_json_is_refused() {
    // Without the file the bundle would load with no SCPs or RCPs: every organization deny
    // lifted by a file lost in a copy.
    let all = findings(&with(&[("organization.json", "")]));
    let missing: Vec<_> = all
        .iter()
        .filter(|f| f.finding.code == "missing-organization")
        .collect();
    assert_eq!(missing.len(), 1, "{all:#?}");
    assert_eq!(missing[0].file, "organization.json");
    assert_eq!(missing[0].finding.severity, Severity::Error);
    assert!(
        missing[0]
            .finding
            .message
            .contains("a standalone account is an organization with one account"),
        "{}",
        missing[0]
    );
    // An emptied directory is no bundle either.
    let err = load_files(&BTreeMap::<String, String>::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bundle has 1 error(s)\n  organization.json:file: error[missing-organization] $: a bundle \
         needs `organization.json`; a standalone account is an organization with one account, \
         its management account (see the README's bundle layout)"
    );
}

/// The `json` block that follows `marker` in the README.
fn readme_block(marker: &str) -> &'static str {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let after = &readme[readme.find(marker).expect("the marker is in the README")..];
    let start = after.find("```json\n").expect("a json block follows") + "```json\n".len();
    let len = after[start..].find("```").expect("the block ends");
    &after[start..start + len]
}

#[test]
fn the_minimal_organization_of_the_readme_loads() {
    let minimal = readme_block("The smallest `organization.json`");
    let mut files = BTreeMap::new();
    files.insert("organization.json".to_owned(), minimal.to_owned());
    files.insert(
        "accounts/111111111111/users/alice.json".to_owned(),
        "{}".to_owned(),
    );
    let b = load_files(&files).unwrap_or_else(|e| panic!("{e}"));
    assert!(b.warnings.is_empty(), "{:#?}", b.warnings);
    let org = b.organization.unwrap();
    assert_eq!(org.management_account, "111111111111");
    assert_eq!(org.root.accounts.len(), 1);
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_json() {
    let u = user_file();
    let bom = format!(
        "\u{feff}{}",
        r#"{"path": "/eng/", "tags": {"team": "a"}, "groups": ["team"]}"#
    );
    let b = load_files(&with(&[(&u, &bom), ("quotas.json", "\u{feff}{}")])).unwrap();
    assert_eq!(b.accounts[ACCT].users[0].path, "/eng/");
    // Positions count from the first character after the mark, as an editor shows them;
    // the unknown group is found by parsing the file a second time, which strips it too.
    check(
        &[(&u, "\u{feff}{\"groups\": [\"nope\"]}")],
        &u,
        "unknown-group",
        "$.groups[0]",
        1,
        13,
    );
    check(
        &[(&u, "\u{feff}{\"path\": 1}")],
        &u,
        "wrong-type",
        "$.path",
        1,
        10,
    );
}

#[test]
fn findings_about_a_whole_file_say_file_instead_of_a_position() {
    let bad = format!("accounts/{ACCT}/users/al ice.json");
    let err = load_files(&with(&[(&bad, "{}")])).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("\n  {bad}:file: error[invalid-name] $: `al ice`")),
        "{text}"
    );
    assert!(!text.contains("0:0"), "{text}");
    // A finding inside the file keeps its line and column.
    let u = user_file();
    let err = load_files(&with(&[(&u, "{\"path\": 1}")])).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{u}:1:10: error[wrong-type] $.path")),
        "{err}"
    );
}

/// A listener document for the base bundle, with `route` as its one route.
fn routes_doc(route: &str) -> String {
    format!(
        r#"{{"account": "{ACCT}", "region": "us-east-1",
 "principals": {{"mtls": [{{"spiffe": "spiffe://td/sa/{{sa}}", "role": "arn:aws:iam::{ACCT}:role/{{sa}}", "session": "s-{{sa}}"}}]}},
 "routes": [{route}]}}"#
    )
}

#[test]
fn a_listener_document_loads_into_the_bundle_and_the_snapshot() {
    let route = r#"{"name": "get", "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"}"#;
    let files = with(&[("routes/edge.json", &routes_doc(route))]);
    let b = load_files(&files).unwrap();
    assert_eq!(b.listeners.keys().collect::<Vec<_>>(), ["edge"]);
    let s = crate::snapshot::Snapshot::compile(&b, 1);
    let l = s.listener("edge").unwrap();
    assert_eq!(l.route_names().collect::<Vec<_>>(), ["get"]);
    assert!(s.listener("default").is_none());
    // A bundle without routes has no listener.
    assert!(load_files(&base()).unwrap().listeners.is_empty());
}

#[test]
fn a_bad_listener_document_is_a_located_finding() {
    let bad_action =
        r#"{"name": "get", "path": "/orders/{id}", "action": "orders:GetOrdr", "resource": "*"}"#;
    let bad_placeholder = r#"{"name": "get", "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{order}"}"#;
    let bad_key = r#"{"name": "get", "path": "/orders", "action": "orders:ListOrders", "resource": "*", "context": {"aws:SecureTransport": {"header": "x-tls"}}}"#;
    let f = "routes/default.json";
    // (document, file, code, JSON path, line, column)
    let cases: Vec<(String, &str, &str, &str, u32, u32)> = vec![
        (
            routes_doc(bad_action),
            f,
            "unknown-action",
            "$.routes[0].action",
            3,
            63,
        ),
        (
            routes_doc(bad_placeholder),
            f,
            "unknown-placeholder",
            "$.routes[0].resource",
            3,
            94,
        ),
        (
            routes_doc(bad_key),
            f,
            "server-filled-key",
            "$.routes[0].context.aws:SecureTransport",
            3,
            108,
        ),
        (
            routes_doc(bad_action).replace("\"us-east-1\"", "\"us-east-1\", \"routes\": []"),
            f,
            "duplicate-key",
            "$.routes",
            3,
            2,
        ),
        (
            "{\n \"account\": 1,\n}".into(),
            f,
            "invalid-json",
            "$",
            3,
            1,
        ),
        (
            routes_doc(bad_action).replace(ACCT, "123456789012"),
            f,
            "unknown-account",
            "$.account",
            1,
            13,
        ),
    ];
    for (text, file, code, path, line, column) in cases {
        check(&[(file, &text)], file, code, path, line, column);
    }
    for file in ["routes/a b.json", "routes/x/y.json", "routes/edge.yaml"] {
        check(&[(file, "{}")], file, "unexpected-file", "$", 0, 0);
    }
}

#[test]
fn a_customer_policy_cannot_take_a_built_in_policy_s_name() {
    let admin = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
    let file = format!("accounts/{ACCT}/policies/PowerUserAccess.json");
    check(
        &[
            (file.as_str(), admin),
            (
                &format!("accounts/{ACCT}/groups/team.json"),
                r#"{"managed_policies": ["PowerUserAccess"]}"#,
            ),
        ],
        &file,
        "reserved-name",
        "$",
        0,
        0,
    );
}

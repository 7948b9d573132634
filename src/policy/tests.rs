//! Unit tests of policy validation, written from the reference (§1 grammar, §1.5 the
//! elements each kind accepts, §1.7 validation): every finding with its code, JSON path
//! and line:column.
//!
//! Documents are laid out one element per line so positions can be read off the text: the
//! first statement object of an array opens at 2:16 and its members start at column 4.

use super::*;
use crate::context::Context;
use crate::request::{Principal, Request};

/// Parses `text` as a `kind` policy and asserts its findings are exactly `expected`, each
/// written `severity[code] path line:column`, in any order; a policy compiles exactly when
/// no finding is an error.
fn check(kind: PolicyKind, text: &str, expected: &[&str]) -> Parsed {
    let parsed = parse_text(text, kind, "test");
    let mut found: Vec<String> = parsed
        .findings
        .iter()
        .map(|f| {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!("{sev}[{}] {} {}", f.code, f.path, f.pos)
        })
        .collect();
    found.sort();
    let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(
        found, want,
        "{kind} policy:\n{text}\n{:#?}",
        parsed.findings
    );
    assert_eq!(
        parsed.policy.is_some(),
        parsed.errors().next().is_none(),
        "a policy compiles exactly when it has no error"
    );
    parsed
}

/// The message of the only finding with `code`.
fn message(parsed: &Parsed, code: &str) -> String {
    let hits: Vec<&Finding> = parsed.findings.iter().filter(|f| f.code == code).collect();
    assert_eq!(
        hits.len(),
        1,
        "one `{code}` finding in {:#?}",
        parsed.findings
    );
    hits[0].message.clone()
}

// === Effect (§1.3, §1.6) ===

#[test]
fn effect_must_be_allow_or_deny() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Permit",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    let parsed = check(
        PolicyKind::Identity,
        text,
        &["error[invalid-effect] $.Statement[0].Effect 3:14"],
    );
    assert!(message(&parsed, "invalid-effect").contains("`Permit`"));
}

#[test]
fn effect_is_case_sensitive() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "allow",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[invalid-effect] $.Statement[0].Effect 3:14"],
    );
}

#[test]
fn effect_is_required() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[missing-effect] $.Statement[0] 2:16"],
    );
}

// === Action / NotAction (§1.3) ===

#[test]
fn action_or_not_action_is_required() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Resource": "*"}]}"#;
    for kind in PolicyKind::ALL {
        let expected: &[&str] = match kind {
            PolicyKind::Identity | PolicyKind::Boundary | PolicyKind::Session | PolicyKind::Scp => {
                &["error[missing-action] $.Statement[0] 2:16"]
            }
            // These kinds have their own complaints about this statement too.
            PolicyKind::Resource => &[
                "error[missing-action] $.Statement[0] 2:16",
                "error[missing-principal] $.Statement[0] 2:16",
            ],
            PolicyKind::Trust => &[
                "error[missing-action] $.Statement[0] 2:16",
                "error[trust-resource] $.Statement[0].Resource 4:16",
                "error[missing-principal] $.Statement[0] 2:16",
            ],
            PolicyKind::Rcp => &[
                "error[missing-action] $.Statement[0] 2:16",
                "error[rcp-allow] $.Statement[0].Effect 3:14",
                "error[missing-principal] $.Statement[0] 2:16",
            ],
        };
        check(kind, text, expected);
    }
}

#[test]
fn action_and_not_action_are_exclusive() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "NotAction": "s3:PutObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[exclusive-elements] $.Statement[0].NotAction 5:17"],
    );
}

#[test]
fn action_needs_exactly_one_colon() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": ["s3GetObject",
              "s3:Get:Object",
              "s3:GetObject",
              "s3: GetObject",
              ":GetObject",
              "s3:"],
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "error[invalid-action] $.Statement[0].Action[0] 4:15",
            "error[invalid-action] $.Statement[0].Action[1] 5:15",
            "error[invalid-action] $.Statement[0].Action[3] 7:15",
            "error[invalid-action] $.Statement[0].Action[4] 8:15",
            "error[invalid-action] $.Statement[0].Action[5] 9:15",
        ],
    );
}

#[test]
fn action_must_be_a_string_or_array_of_strings() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": ["s3:GetObject", 7],
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[wrong-type] $.Statement[0].Action[1] 4:31"],
    );
}

#[test]
fn wildcard_in_service_prefix_and_empty_arrays_are_warnings() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3*:GetObject",
   "Resource": []}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "warning[wildcard-service] $.Statement[0].Action 4:14",
            "warning[empty-array] $.Statement[0].Resource 5:16",
        ],
    );
}

// === Resource / NotResource (§1.3, §1.5) ===

#[test]
fn resource_is_required_in_identity_boundary_session_scp_and_rcp_policies() {
    let identity = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject"}]}"#;
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Boundary,
        PolicyKind::Session,
        PolicyKind::Scp,
    ] {
        check(
            kind,
            identity,
            &["error[missing-resource] $.Statement[0] 2:16"],
        );
    }
    let rcp = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Deny",
   "Principal": "*",
   "Action": "s3:GetObject"}]}"#;
    check(
        PolicyKind::Rcp,
        rcp,
        &["error[missing-resource] $.Statement[0] 2:16"],
    );
}

#[test]
fn resource_is_optional_in_resource_policies() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": {"AWS": "111122223333"},
   "Action": "s3:GetObject"}]}"#;
    let parsed = check(PolicyKind::Resource, text, &[]);
    assert_eq!(parsed.policy.unwrap().statements[0].resources, None);
}

#[test]
fn resource_and_not_resource_are_exclusive() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "NotResource": "arn:aws:s3:::b/*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[exclusive-elements] $.Statement[0].NotResource 6:19"],
    );
}

#[test]
fn resource_is_forbidden_in_trust_policies() {
    for (element, col) in [("Resource", 16), ("NotResource", 19)] {
        let text = format!(
            r#"{{"Version": "2012-10-17",
 "Statement": [{{
   "Effect": "Allow",
   "Principal": {{"Service": "ec2.amazonaws.com"}},
   "Action": "sts:AssumeRole",
   "{element}": "*"}}]}}"#
        );
        check(
            PolicyKind::Trust,
            &text,
            &[&format!(
                "error[trust-resource] $.Statement[0].{element} 6:{col}"
            )],
        );
    }
}

#[test]
fn resource_must_be_star_or_an_arn() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": ["bucket/*", "arn:aws:s3:::bucket/*"]}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[invalid-resource] $.Statement[0].Resource[0] 5:17"],
    );
}

#[test]
fn variables_are_allowed_only_in_the_resource_part_of_an_arn() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": ["arn:aws:s3:::home/${aws:username}/*",
                "arn:aws:s3:${aws:RequestedRegion}::b"]}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[invalid-resource] $.Statement[0].Resource[1] 6:17"],
    );
}

#[test]
fn variables_in_a_2008_policy_are_literal_text_with_a_warning() {
    let text = r#"{"Version": "2008-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "arn:aws:s3:::home/${aws:username}/*"}]}"#;
    let parsed = check(
        PolicyKind::Identity,
        text,
        &["warning[literal-variable] $.Statement[0].Resource 5:16"],
    );
    let policy = parsed.policy.unwrap();
    let resources = policy.statements[0].resources.as_ref().unwrap();
    let arn = |s| crate::arn::Arn::parse(s);
    let mut ctx = Context::new();
    ctx.insert(
        "aws:username",
        crate::context::ContextValue::Single("alice".into()),
    );
    let literal = arn("arn:aws:s3:::home/${aws:username}/x");
    let substituted = arn("arn:aws:s3:::home/alice/x");
    assert_eq!(
        resources.patterns[0].matches(literal.as_ref(), &ctx),
        Some(true)
    );
    assert_eq!(
        resources.patterns[0].matches(substituted.as_ref(), &ctx),
        Some(false)
    );
}

// === Principal / NotPrincipal (§1.4, §1.5) ===

#[test]
fn principal_is_forbidden_in_identity_boundary_session_and_scp_policies() {
    for element in ["Principal", "NotPrincipal"] {
        let text = format!(
            r#"{{"Version": "2012-10-17",
 "Statement": [{{
   "Effect": "Deny",
   "{element}": {{"AWS": "111122223333"}},
   "Action": "s3:GetObject",
   "Resource": "*"}}]}}"#
        );
        // The value opens after `   "NAME": `.
        let col = element.len() + 8;
        for kind in [
            PolicyKind::Identity,
            PolicyKind::Boundary,
            PolicyKind::Session,
            PolicyKind::Scp,
        ] {
            check(
                kind,
                &text,
                &[&format!(
                    "error[principal-not-allowed] $.Statement[0].{element} 4:{col}"
                )],
            );
        }
    }
}

#[test]
fn principal_is_required_in_resource_and_trust_policies() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "sts:AssumeRole"}]}"#;
    for kind in [PolicyKind::Resource, PolicyKind::Trust] {
        check(
            kind,
            text,
            &["error[missing-principal] $.Statement[0] 2:16"],
        );
    }
}

#[test]
fn principal_and_not_principal_are_exclusive() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Deny",
   "Principal": "*",
   "NotPrincipal": {"AWS": "111122223333"},
   "Action": "s3:GetObject"}]}"#;
    check(
        PolicyKind::Resource,
        text,
        &["error[exclusive-elements] $.Statement[0].NotPrincipal 5:20"],
    );
}

#[test]
fn not_principal_is_forbidden_in_trust_and_rcp_policies() {
    let trust = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Deny",
   "NotPrincipal": {"AWS": "111122223333"},
   "Action": "sts:AssumeRole"}]}"#;
    check(
        PolicyKind::Trust,
        trust,
        &["error[principal-not-allowed] $.Statement[0].NotPrincipal 4:20"],
    );
    let rcp = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Deny",
   "NotPrincipal": {"AWS": "111122223333"},
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Rcp,
        rcp,
        &[
            "error[principal-not-allowed] $.Statement[0].NotPrincipal 4:20",
            "error[missing-principal] $.Statement[0] 2:16",
        ],
    );
}

#[test]
fn not_principal_is_allowed_only_with_deny() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "NotPrincipal": {"AWS": "111122223333"},
   "Action": "s3:GetObject"}]}"#;
    let parsed = check(
        PolicyKind::Resource,
        text,
        &["error[allow-not-principal] $.Statement[0].NotPrincipal 4:20"],
    );
    assert_eq!(
        message(&parsed, "allow-not-principal"),
        "`NotPrincipal` is allowed only with `\"Effect\": \"Deny\"`"
    );
    let deny = text.replace("\"Allow\"", "\"Deny\"");
    check(PolicyKind::Resource, &deny, &[]);
    // Whatever it lists, `*` included, and in any statement of the policy.
    let second = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Deny",
   "NotPrincipal": {"AWS": "111122223333"},
   "Action": "s3:GetObject"},
  {
   "Effect": "Allow",
   "NotPrincipal": "*",
   "Action": "s3:GetObject"}]}"#;
    check(
        PolicyKind::Resource,
        second,
        &["error[allow-not-principal] $.Statement[1].NotPrincipal 8:20"],
    );
}

#[test]
fn principal_forms_of_every_kind_are_read() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": {
     "AWS": ["*",
             "111122223333",
             "arn:aws:iam::111122223333:root",
             "arn:aws:iam::111122223333:user/path/alice",
             "arn:aws:iam::111122223333:role/path/app",
             "arn:aws:sts::111122223333:assumed-role/app/s1",
             "arn:aws:sts::111122223333:federated-user/bob",
             "AIDAJQABLZS4A3QDU576Q"],
     "Service": "ec2.amazonaws.com",
     "Federated": ["accounts.google.com",
                   "arn:aws:iam::111122223333:saml-provider/corp",
                   "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"],
     "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
   "Action": "s3:GetObject"}]}"#;
    let parsed = check(PolicyKind::Resource, text, &[]);
    let policy = parsed.policy.unwrap();
    let entries = &policy.statements[0].principals.as_ref().unwrap().entries;
    assert_eq!(
        entries,
        &vec![
            PrincipalEntry::Wildcard,
            PrincipalEntry::Account("111122223333".into()),
            PrincipalEntry::Account("111122223333".into()),
            PrincipalEntry::User("arn:aws:iam::111122223333:user/path/alice".into()),
            PrincipalEntry::Role {
                partition: "aws".into(),
                account: "111122223333".into(),
                name: "app".into(),
            },
            PrincipalEntry::Session("arn:aws:sts::111122223333:assumed-role/app/s1".into()),
            PrincipalEntry::Session("arn:aws:sts::111122223333:federated-user/bob".into()),
            PrincipalEntry::UniqueId("AIDAJQABLZS4A3QDU576Q".into()),
            PrincipalEntry::Service("ec2.amazonaws.com".into()),
            PrincipalEntry::Federated("accounts.google.com".into()),
            PrincipalEntry::Federated("arn:aws:iam::111122223333:saml-provider/corp".into()),
            PrincipalEntry::Federated(
                "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
                    .into()
            ),
            PrincipalEntry::Canonical(
                "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be".into()
            ),
        ]
    );
}

#[test]
fn partial_wildcards_in_principals_are_refused() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": {
     "AWS": ["arn:aws:iam::111122223333:user/*",
             "arn:aws:sts::111122223333:assumed-role/app/*",
             "arn:aws:iam::*:root"],
     "Service": "*.amazonaws.com"},
   "Action": "s3:GetObject"}]}"#;
    let parsed = check(
        PolicyKind::Resource,
        text,
        &[
            "error[invalid-principal] $.Statement[0].Principal.AWS[0] 5:14",
            "error[invalid-principal] $.Statement[0].Principal.AWS[1] 6:14",
            "error[invalid-principal] $.Statement[0].Principal.AWS[2] 7:14",
            "error[invalid-principal] $.Statement[0].Principal.Service 8:17",
        ],
    );
    assert!(
        parsed.findings[0].message.contains("partial wildcard"),
        "{}",
        parsed.findings[0].message
    );
}

#[test]
fn groups_are_never_principals() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": {"AWS": "arn:aws:iam::111122223333:group/admins"},
   "Action": "s3:GetObject"}]}"#;
    let parsed = check(
        PolicyKind::Resource,
        text,
        &["error[invalid-principal] $.Statement[0].Principal.AWS 4:25"],
    );
    assert!(message(&parsed, "invalid-principal").contains("group"));
}

#[test]
fn principal_string_other_than_star_is_refused() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": "111122223333",
   "Action": "s3:GetObject"}]}"#;
    check(
        PolicyKind::Resource,
        text,
        &["error[invalid-principal] $.Statement[0].Principal 4:17"],
    );
}

#[test]
fn unknown_principal_keys_are_errors() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": {"aws": "111122223333"},
   "Action": "s3:GetObject"}]}"#;
    let parsed = check(
        PolicyKind::Resource,
        text,
        &["error[unknown-key] $.Statement[0].Principal.aws 4:18"],
    );
    assert!(message(&parsed, "unknown-key").contains("did you mean `AWS`"));
}

#[test]
fn empty_principal_object_is_a_warning() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": {},
   "Action": "s3:GetObject"}]}"#;
    check(
        PolicyKind::Resource,
        text,
        &["warning[empty-principal] $.Statement[0].Principal 4:17"],
    );
}

// === Resource control policies (§1.5) ===

#[test]
fn rcp_statements_may_only_deny() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": "*",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Rcp,
        text,
        &["error[rcp-allow] $.Statement[0].Effect 3:14"],
    );
}

#[test]
fn rcp_cannot_use_not_action() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Deny",
   "Principal": "*",
   "NotAction": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Rcp,
        text,
        &["error[rcp-not-action] $.Statement[0].NotAction 5:17"],
    );
}

#[test]
fn rcp_cannot_use_the_bare_star_action() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Deny",
   "Principal": "*",
   "Action": ["s3:*", "*"],
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Rcp,
        text,
        &["error[rcp-star-action] $.Statement[0].Action[1] 5:23"],
    );
}

#[test]
fn rcp_principal_must_be_star() {
    for principal in [r#"{"AWS": "*"}"#, r#"{"AWS": "111122223333"}"#] {
        let text = format!(
            r#"{{"Version": "2012-10-17",
 "Statement": [{{
   "Effect": "Deny",
   "Principal": {principal},
   "Action": "s3:GetObject",
   "Resource": "*"}}]}}"#
        );
        check(
            PolicyKind::Rcp,
            &text,
            &["error[rcp-principal] $.Statement[0].Principal 4:17"],
        );
    }
}

#[test]
fn rcp_must_carry_version_2012_10_17() {
    let body = r#"
 "Statement": [{
   "Effect": "Deny",
   "Principal": "*",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Rcp,
        &format!("{{{}", body.trim_start_matches('\n')),
        &["error[missing-version] $ 1:1"],
    );
    check(
        PolicyKind::Rcp,
        &format!("{{\"Version\": \"2008-10-17\",{body}"),
        &["error[invalid-version] $.Version 1:13"],
    );
    check(
        PolicyKind::Rcp,
        &format!("{{\"Version\": \"2012-10-17\",{body}"),
        &[],
    );
}

// === Trust policies (§1.5) ===

#[test]
fn trust_policy_actions_are_the_sts_assume_family() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Principal": {"AWS": "111122223333"},
   "Action": ["sts:AssumeRole", "sts:TagSession", "sts:Assume*", "s3:GetObject"]}]}"#;
    check(
        PolicyKind::Trust,
        text,
        &["error[invalid-trust-action] $.Statement[0].Action[3] 5:66"],
    );
}

// === Unknown and duplicate keys (§1.1, §1.3) ===

#[test]
fn unknown_top_level_keys_are_errors() {
    let text = r#"{"Version": "2012-10-17",
 "Statment": [],
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[unknown-key] $.Statment 2:2"],
    );
}

#[test]
fn unknown_statement_keys_are_errors_and_keys_are_case_sensitive() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "action": "s3:GetObject",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Comment": "x"}]}"#;
    let parsed = check(
        PolicyKind::Identity,
        text,
        &[
            "error[unknown-key] $.Statement[0].action 4:4",
            "error[unknown-key] $.Statement[0].Comment 7:4",
        ],
    );
    let hint = &parsed.findings[0].message;
    assert!(hint.contains("did you mean `Action`"), "{hint}");
}

#[test]
fn duplicate_keys_are_errors() {
    let text = r#"{"Version": "2012-10-17",
 "Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Effect": "Deny"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "error[duplicate-key] $.Version 2:2",
            "error[duplicate-key] $.Statement[0].Effect 7:4",
        ],
    );
}

#[test]
fn duplicate_condition_keys_are_errors_even_when_they_differ_by_case() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {
     "StringEquals": {
       "aws:PrincipalTag/team": "a",
       "aws:principaltag/TEAM": "b",
       "aws:PrincipalTag/team": "c"}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "error[duplicate-key] $.Statement[0].Condition.StringEquals.aws:principaltag/TEAM 9:8",
            "error[duplicate-key] $.Statement[0].Condition.StringEquals.aws:PrincipalTag/team 10:8",
        ],
    );
}

#[test]
fn duplicate_operators_are_errors() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {
     "StringEquals": {"aws:username": "a"},
     "StringEquals": {"aws:username": "b"}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[duplicate-key] $.Statement[0].Condition.StringEquals 8:6"],
    );
}

// === Sid (§1.3) ===

#[test]
fn sids_must_be_unique_within_a_policy() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Sid": "Read",
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*"}, {
   "Sid": "Read",
   "Effect": "Deny",
   "Action": "s3:PutObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[duplicate-sid] $.Statement[1].Sid 7:11"],
    );
}

#[test]
fn identity_policy_sids_hold_only_ascii_letters_and_digits() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Sid": "read objects",
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[invalid-sid] $.Statement[0].Sid 3:11"],
    );
    // Other services allow spaces and punctuation in resource-policy Sids.
    let resource = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Sid": "read objects",
   "Effect": "Allow",
   "Principal": "*",
   "Action": "s3:GetObject"}]}"#;
    check(PolicyKind::Resource, resource, &[]);
}

// === Version (§1.1, §1.2) ===

#[test]
fn version_must_be_one_of_the_two_dates() {
    let text = r#"{"Version": "2024-01-01",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    let parsed = check(
        PolicyKind::Identity,
        text,
        &["error[invalid-version] $.Version 1:13"],
    );
    assert!(message(&parsed, "invalid-version").contains("`2024-01-01`"));
}

#[test]
fn missing_version_is_a_warning() {
    let text = r#"{
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["warning[missing-version] $ 1:1"],
    );
}

// === Statement shape (§1.1) ===

#[test]
fn statement_may_be_a_single_object_or_an_array() {
    let single = r#"{"Version": "2012-10-17",
 "Statement": {
   "Effect": "allow",
   "Action": "s3:GetObject",
   "Resource": "*"}}"#;
    check(
        PolicyKind::Identity,
        single,
        &["error[invalid-effect] $.Statement.Effect 3:14"],
    );
    let array = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*"}, {
   "Effect": "allow",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    check(
        PolicyKind::Identity,
        array,
        &["error[invalid-effect] $.Statement[1].Effect 6:14"],
    );
    let ok = single.replace("\"allow\"", "\"Allow\"");
    let parsed = check(PolicyKind::Identity, &ok, &[]);
    assert_eq!(parsed.policy.unwrap().statements.len(), 1);
}

#[test]
fn statement_is_required_and_must_be_an_object_or_array() {
    check(
        PolicyKind::Identity,
        r#"{"Version": "2012-10-17"}"#,
        &["error[missing-statement] $ 1:1"],
    );
    check(
        PolicyKind::Identity,
        r#"{"Version": "2012-10-17", "Statement": "Allow"}"#,
        &["error[wrong-type] $.Statement 1:40"],
    );
    check(
        PolicyKind::Identity,
        r#"{"Version": "2012-10-17", "Statement": [7]}"#,
        &["error[wrong-type] $.Statement[0] 1:41"],
    );
    let empty = check(
        PolicyKind::Identity,
        r#"{"Version": "2012-10-17", "Statement": []}"#,
        &[],
    );
    assert!(empty.policy.unwrap().statements.is_empty());
}

#[test]
fn a_document_must_be_a_json_object() {
    check(PolicyKind::Identity, "[1, 2]", &["error[wrong-type] $ 1:1"]);
    check(
        PolicyKind::Identity,
        "{\"Version\": \"2012-10-17\",\n \"Statement\": [}",
        &["error[invalid-json] $ 2:16"],
    );
}

// === Size (§8.3) ===

#[test]
fn policies_larger_than_the_kind_quota_are_refused() {
    // Each resource adds `"arn:aws:s3:::bucket-NNNN/*",` (27 characters) without white
    // space; white space, however much, is not counted.
    let doc = |n: usize| {
        let resources: Vec<String> = (0..n)
            .map(|i| format!("\"arn:aws:s3:::bucket-{i:04}/*\""))
            .collect();
        format!(
            "{{\"Version\": \"2012-10-17\",\n \"Statement\": [{{\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\",\n   \"Resource\": [{}]}}]}}",
            resources.join(",\n                  ")
        )
    };
    let size = |text: &str| compact_size(&json::parse(text).unwrap());
    let under = (1..)
        .map(doc)
        .take_while(|t| size(t) <= 2_048)
        .last()
        .unwrap();
    let over = (1..).map(doc).find(|t| size(t) > 2_048).unwrap();
    assert!(under.len() > 2_048, "white space must not count");
    check(PolicyKind::Session, &under, &[]);
    let parsed = check(
        PolicyKind::Session,
        &over,
        &["error[policy-too-large] $ 1:1"],
    );
    assert!(message(&parsed, "policy-too-large").contains("2048"));
    // The same document fits an identity policy's larger quota.
    check(PolicyKind::Identity, &over, &[]);
}

// === Conditions (§1.7, §4) ===

#[test]
fn unknown_condition_operators_are_errors() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {
     "StringEqual": {"aws:username": "alice"},
     "NullIfExists": {"aws:username": "true"},
     "ForSomeValues:StringLike": {"aws:TagKeys": "a*"},
     "ForAllValues:StringLike": {"aws:TagKeys": "a*"}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "error[invalid-operator] $.Statement[0].Condition.StringEqual 7:6",
            "error[invalid-operator] $.Statement[0].Condition.NullIfExists 8:6",
            "error[invalid-operator] $.Statement[0].Condition.ForSomeValues:StringLike 9:6",
        ],
    );
}

#[test]
fn condition_operator_block_must_be_an_object() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {"StringEquals": ["aws:username", "alice"]}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["error[wrong-type] $.Statement[0].Condition.StringEquals 6:34"],
    );
}

#[test]
fn condition_values_of_the_wrong_type_are_errors_at_the_value() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {
     "NumericLessThan": {"s3:max-keys": ["10", "ten"]},
     "DateGreaterThan": {"aws:CurrentTime": "next week"},
     "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "10.0.0.0/40"]},
     "BinaryEquals": {"test:Blob": "%%%"},
     "Bool": {"aws:SecureTransport": "yes"},
     "Null": {"aws:TokenIssueTime": "maybe"}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "error[invalid-condition-value] $.Statement[0].Condition.NumericLessThan.s3:max-keys[1] 7:48",
            "error[invalid-condition-value] $.Statement[0].Condition.DateGreaterThan.aws:CurrentTime 8:45",
            "error[invalid-condition-value] $.Statement[0].Condition.IpAddress.aws:SourceIp[1] 9:51",
            "error[invalid-condition-value] $.Statement[0].Condition.BinaryEquals.test:Blob 10:36",
            "error[invalid-condition-value] $.Statement[0].Condition.Bool.aws:SecureTransport 11:38",
            "error[invalid-condition-value] $.Statement[0].Condition.Null.aws:TokenIssueTime 12:37",
        ],
    );
}

#[test]
fn variables_are_refused_in_numeric_values() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {"NumericLessThan": {"s3:max-keys": "${aws:PrincipalTag/limit}"}}}]}"#;
    let parsed = check(
        PolicyKind::Identity,
        text,
        &[
            "error[invalid-condition-value] $.Statement[0].Condition.NumericLessThan.s3:max-keys 6:53",
        ],
    );
    assert!(message(&parsed, "invalid-condition-value").contains("policy variables"));
}

#[test]
fn malformed_variables_in_condition_values_are_errors() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {"StringEquals": {"aws:username": ["${aws:username", "${}"]}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "error[invalid-condition-value] $.Statement[0].Condition.StringEquals.aws:username[0] 6:52",
        ],
    );
}

#[test]
fn numbers_and_booleans_are_condition_values_read_as_text() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:ListBucket",
   "Resource": "*",
   "Condition": {
     "NumericLessThanEquals": {"s3:max-keys": 10},
     "Bool": {"aws:SecureTransport": true},
     "StringEquals": {"test:Version": [1.50, false]}}}]}"#;
    let parsed = check(PolicyKind::Identity, text, &[]);
    let policy = parsed.policy.unwrap();
    let stmt = &policy.statements[0];
    let ctx = |max_keys: &str, secure: &str, version: &str| {
        let mut c = Context::new();
        let one = |v: &str| crate::context::ContextValue::Single(v.into());
        c.insert("s3:max-keys", one(max_keys));
        c.insert("aws:SecureTransport", one(secure));
        c.insert("test:Version", one(version));
        c
    };
    let all = |c: &Context| stmt.conditions.iter().all(|cond| cond.holds(c));
    assert!(all(&ctx("10", "true", "1.50")));
    assert!(all(&ctx("3", "true", "false")));
    assert!(!all(&ctx("11", "true", "1.50")));
    assert!(!all(&ctx("10", "false", "1.50")));
    // The number is compared as written: `1.50` is not `1.5` to a string operator.
    assert!(!all(&ctx("10", "true", "1.5")));
}

#[test]
fn condition_value_lists_hold_only_scalars() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {"StringEquals": {"aws:username": ["a", {"b": 1}], "aws:userid": null}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &[
            "error[wrong-type] $.Statement[0].Condition.StringEquals.aws:username[1] 6:57",
            "error[wrong-type] $.Statement[0].Condition.StringEquals.aws:userid 6:82",
        ],
    );
}

#[test]
fn null_with_a_set_operator_is_a_warning() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {"ForAllValues:Null": {"aws:TagKeys": "false"}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["warning[null-with-set] $.Statement[0].Condition.ForAllValues:Null 6:18"],
    );
}

#[test]
fn empty_condition_value_list_is_a_warning() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "*",
   "Condition": {"StringEquals": {"aws:username": []}}}]}"#;
    check(
        PolicyKind::Identity,
        text,
        &["warning[empty-array] $.Statement[0].Condition.StringEquals.aws:username 6:51"],
    );
}

// === Compiled form (§2.1, §2.4) ===

#[test]
fn compiled_actions_match_case_insensitively_with_wildcards() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": ["IAM:listaccesskeys", "s3:Get*", "s3:?utObject", "ec2:*Instances"],
   "Resource": "*"}]}"#;
    let policy = check(PolicyKind::Identity, text, &[]).policy.unwrap();
    let actions = &policy.statements[0].actions;
    let matches = |a: &str| {
        let lower = a.to_ascii_lowercase();
        let (svc, name) = lower.split_once(':').unwrap();
        actions.matches(svc, name)
    };
    assert!(matches("iam:ListAccessKeys"));
    assert!(matches("S3:GETOBJECT"));
    assert!(matches("s3:GetBucketPolicy"));
    assert!(matches("s3:PutObject"));
    assert!(!matches("s3:PutObjectAcl"));
    assert!(matches("ec2:RunInstances"));
    assert!(!matches("ec2:RunInstance"));
    assert!(!matches("iam:ListAccessKey"));
    assert!(!matches("s3x:GetObject"));
}

#[test]
fn statement_applies_only_when_action_resource_and_conditions_all_match() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "Allow",
   "Action": "s3:GetObject",
   "Resource": "arn:aws:s3:::corp/home/${aws:username}/*",
   "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}"#;
    let policy = check(PolicyKind::Identity, text, &[]).policy.unwrap();
    let stmt = &policy.statements[0];
    let alice = Principal::from_arn("arn:aws:iam::111122223333:user/alice").unwrap();
    let applies = |action: &str, resource: &str, secure: Option<&str>| {
        let mut ctx = Context::new();
        alice.fill_context_defaults(&mut ctx);
        if let Some(s) = secure {
            ctx.insert(
                "aws:SecureTransport",
                crate::context::ContextValue::Single(s.into()),
            );
        }
        let action = crate::request::Action::parse(action).unwrap();
        let req = Request::new(&alice, &action, resource, "111122223333", &ctx);
        crate::eval::applies(stmt, &req)
    };
    let own = "arn:aws:s3:::corp/home/alice/a.txt";
    assert!(applies("s3:GetObject", own, Some("true")));
    assert!(!applies("s3:PutObject", own, Some("true")));
    assert!(!applies(
        "s3:GetObject",
        "arn:aws:s3:::corp/home/bob/a.txt",
        Some("true")
    ));
    assert!(!applies("s3:GetObject", own, Some("false")));
    assert!(!applies("s3:GetObject", own, None));
}

#[test]
fn findings_display_place_code_path_and_message() {
    let text = r#"{"Version": "2012-10-17",
 "Statement": [{
   "Effect": "allow",
   "Action": "s3:GetObject",
   "Resource": "*"}]}"#;
    let parsed = check(
        PolicyKind::Identity,
        text,
        &["error[invalid-effect] $.Statement[0].Effect 3:14"],
    );
    assert_eq!(
        parsed.findings[0].to_string(),
        "3:14: error[invalid-effect] $.Statement[0].Effect: `Effect` must be `Allow` or `Deny` (case-sensitive), found `allow`"
    );
}

// === compact size ===

mod size {
    use super::compact_size;
    use crate::json;

    /// The size AWS counts is the compact serialization's length; `compact_size` counts it
    /// without serializing, so it must agree with serializing for every kind of value.
    #[test]
    fn compact_size_counts_the_compact_serialization() {
        let docs = [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            "{ \"a\" : [ 1 , 2.50 , -0.5e3 , 1E400 , true , false , null ] , \"b\" : { } , \"c\" : [ ] }",
            r#"{"esc":"q\" b\\ s\/ \b\f\n\r\t \u0001 \u001f \u007f é 😀 \u00e9"}"#,
            r#"{"dup":1,"x":"y","dup":"longer value","dup":[1,2]}"#,
            r#"[]"#,
            &format!(
                "{{{}\"k3\":\"last\"}}",
                (0..40)
                    .map(|i| format!("\"k{}\":{i},", i % 7))
                    .collect::<String>()
            ),
            r#""just a string""#,
        ];
        for text in docs {
            let node = json::parse(text).unwrap();
            assert_eq!(
                compact_size(&node),
                node.to_serde().to_string().chars().count(),
                "{text}"
            );
        }
    }
}

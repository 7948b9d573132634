//! Built-in managed policies, read-only, in the spirit of AWS's job-function policies and
//! defined over the service catalog (its access levels and service categories), so they
//! cover the bundle's own services.

use serde_json::{Value, json};

use super::catalog::{AccessLevel, Catalog};
use crate::json;
use crate::policy::{self, Policy, PolicyKind};

/// The names of the built-in policies and their ARNs' suffixes.
const BUILTINS: &[(&str, &str)] = &[
    ("AdministratorAccess", "AdministratorAccess"),
    ("PowerUserAccess", "PowerUserAccess"),
    ("ReadOnlyAccess", "ReadOnlyAccess"),
    ("ViewOnlyAccess", "job-function/ViewOnlyAccess"),
    ("SecurityAudit", "SecurityAudit"),
    (
        "DatabaseAdministrator",
        "job-function/DatabaseAdministrator",
    ),
    ("NetworkAdministrator", "job-function/NetworkAdministrator"),
];

/// The ARN of a built-in policy named `name`.
pub fn arn_of(name: &str) -> Option<String> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, suffix)| format!("arn:aws:iam::aws:policy/{suffix}"))
}

/// A built-in policy and the document it was compiled from.
#[derive(Debug, Clone)]
pub struct Builtin {
    pub policy: Policy,
    pub document: String,
}

/// The AWS-managed SCP attached to every node when SCPs are enabled.
pub fn full_aws_access() -> Builtin {
    compile(
        "FullAWSAccess",
        PolicyKind::Scp,
        json!([{"Sid": "FullAWSAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}]),
    )
}

/// Selects catalog actions by service prefix, service categories, access level and name.
type ActionFilter<'a> = &'a dyn Fn(&str, &[String], AccessLevel, &str) -> bool;

/// Every built-in managed policy, generated from the catalog.
pub fn policies(catalog: &Catalog) -> Vec<Builtin> {
    let actions_where = |f: ActionFilter<'_>| -> Vec<String> {
        catalog
            .actions()
            .filter(|(s, a)| f(&s.prefix, &s.categories, a.access, &a.name))
            .map(|(s, a)| format!("{}:{}", s.prefix, a.name))
            .collect()
    };
    let in_category = |cats: &[String], c: &str| cats.iter().any(|x| x == c);
    let allow = |sid: &str, actions: Vec<String>| json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": "*"});
    let mut out = Vec::new();
    let mut add = |name: &str, statements: Vec<Value>| {
        if let Some(arn) = arn_of(name) {
            // A statement with no action would match nothing: leave it out.
            let statements: Vec<Value> = statements
                .into_iter()
                .filter(|s| {
                    s.get("Action")
                        .is_none_or(|a| a.as_array().is_none_or(|l| !l.is_empty()))
                })
                .collect();
            out.push(compile(
                &arn,
                PolicyKind::Identity,
                Value::Array(statements),
            ));
        }
    };
    add(
        "AdministratorAccess",
        vec![
            json!({"Sid": "AdministratorAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}),
        ],
    );
    let power_extra = actions_where(&|p, _, _, n| {
        matches!(
            (p, n),
            (
                "iam",
                "CreateServiceLinkedRole" | "DeleteServiceLinkedRole" | "ListRoles"
            ) | (
                "organizations",
                "DescribeOrganization" | "DescribeEffectivePolicy"
            )
        )
    });
    add(
        "PowerUserAccess",
        vec![
            // `warden:*` writes the bundle's policies: privilege management, as `iam:*` is.
            json!({"Sid": "PowerUserAccess", "Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*", "warden:*"], "Resource": "*"}),
            allow("PowerUserIdentityReads", power_extra),
        ],
    );
    let read_only = actions_where(&|_, _, a, _| matches!(a, AccessLevel::List | AccessLevel::Read));
    add("ReadOnlyAccess", vec![allow("ReadOnlyAccess", read_only)]);
    let view_only = actions_where(&|_, _, a, n| {
        a == AccessLevel::List
            || (a == AccessLevel::Read
                && ["Describe", "View", "Lookup"]
                    .iter()
                    .any(|p| n.starts_with(p)))
    });
    add("ViewOnlyAccess", vec![allow("ViewOnlyAccess", view_only)]);
    let audit = actions_where(&|_, cats, a, _| {
        a == AccessLevel::List || (a == AccessLevel::Read && in_category(cats, "security"))
    });
    add("SecurityAudit", vec![allow("SecurityAudit", audit)]);
    let dba = actions_where(&|_, cats, a, _| {
        in_category(cats, "database") || (in_category(cats, "monitoring") && a <= AccessLevel::Read)
    });
    add(
        "DatabaseAdministrator",
        vec![allow("DatabaseAdministrator", dba)],
    );
    let net = actions_where(&|_, cats, a, _| {
        in_category(cats, "network") || (in_category(cats, "monitoring") && a <= AccessLevel::Read)
    });
    add(
        "NetworkAdministrator",
        vec![allow("NetworkAdministrator", net)],
    );
    out
}

/// Compiles a generated document. Generated text is valid by construction; should it
/// ever not be, the policy compiles to no statement (grants nothing: fail closed).
fn compile(id: &str, kind: PolicyKind, statements: Value) -> Builtin {
    let document = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    let parsed = json::parse(&document)
        .ok()
        .and_then(|node| policy::parse_node_with(&node, kind, id, None).policy);
    let policy = parsed.unwrap_or_else(|| Policy {
        id: id.into(),
        kind,
        statements: Vec::new().into(),
    });
    Builtin { policy, document }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_compiles_with_statements() {
        let catalog = Catalog::builtin();
        let ps = policies(&catalog);
        assert_eq!(ps.len(), BUILTINS.len());
        for Builtin {
            policy: p,
            document,
        } in &ps
        {
            assert!(document.contains(r#""Version":"2012-10-17""#), "{document}");
            // The built-in catalog has no database or network service: those two are empty.
            let empty =
                p.id.ends_with("DatabaseAdministrator") || p.id.ends_with("NetworkAdministrator");
            assert_eq!(p.statements.is_empty(), empty, "{}", p.id);
        }
        assert!(!full_aws_access().policy.statements.is_empty());
    }

    #[test]
    fn arns_follow_aws_naming() {
        assert_eq!(
            arn_of("ViewOnlyAccess").as_deref(),
            Some("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess")
        );
        assert_eq!(arn_of("Nope"), None);
    }
}

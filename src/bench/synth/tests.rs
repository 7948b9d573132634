//! Tests of the synthetic organization generator: sizes, validity, and the mix of decisions.

use std::time::SystemTime;

use super::*;
use crate::bundle;
use crate::context::CallerContext;
use crate::eval::Decision;
use crate::snapshot::Snapshot;

fn org(statements: usize, requests: usize) -> Org {
    generate(Spec {
        statements,
        requests,
        seed: 7,
    })
    .unwrap()
}

/// Counts the statements of every policy document in the files, trust policies included.
fn statements_in_files(files: &BTreeMap<String, String>) -> usize {
    fn count(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Object(m) => {
                let here = m
                    .get("Statement")
                    .and_then(|s| s.as_array())
                    .map_or(0, Vec::len);
                here + m
                    .iter()
                    .filter(|(k, _)| *k != "Statement")
                    .map(|(_, v)| count(v))
                    .sum::<usize>()
            }
            serde_json::Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    files
        .iter()
        .filter(|(f, _)| f.starts_with("accounts/"))
        .map(|(_, text)| count(&serde_json::from_str(text).unwrap()))
        .sum()
}

#[test]
fn sizes_are_exact_and_bundles_load_without_warnings() {
    for n in [1, 2, 3, 10, 37, 1_000, 10_001] {
        let o = org(n, 10);
        assert_eq!(o.statements, n, "model count for {n}");
        assert_eq!(statements_in_files(&o.files), n, "file count for {n}");
        let b = bundle::load_files(&o.files).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert!(b.warnings.is_empty(), "{n}: {:?}", b.warnings);
        let roles = o
            .identities
            .iter()
            .filter(|i| i.kind == IdentityKind::Role)
            .count();
        assert_eq!(o.identity_statements() + roles, n);
    }
}

#[test]
fn the_same_spec_yields_the_same_organization() {
    let a = org(1_000, 50);
    let b = org(1_000, 50);
    assert_eq!(a.files, b.files);
    assert_eq!(a.requests, b.requests);
    let c = generate(Spec {
        statements: 1_000,
        requests: 50,
        seed: 8,
    })
    .unwrap();
    assert_ne!(a.files, c.files);
}

#[test]
fn statements_mix_conditions_wildcards_and_denies() {
    let o = org(10_000, 0);
    let all: Vec<&SynthStatement> = o.policies.iter().flat_map(|p| &p.statements).collect();
    let share = |f: &dyn Fn(&SynthStatement) -> bool| {
        all.iter().filter(|s| f(s)).count() as f64 / all.len() as f64
    };
    let conditions = share(&|s| !s.conditions.is_empty());
    assert!(
        (0.28..0.39).contains(&conditions),
        "conditions {conditions}"
    );
    let deny = share(&|s| s.effect == SynthEffect::Deny);
    assert!((0.08..0.12).contains(&deny), "deny {deny}");
    assert!(share(&|s| s.actions.iter().any(|a| a.ends_with(":*"))) > 0.03);
    assert!(share(&|s| s.actions.iter().any(|a| a.ends_with("Get*"))) > 0.03);
    assert!(share(&|s| s.actions.iter().any(|a| !a.contains('*'))) > 0.3);
    assert!(share(&|s| s.resources.iter().any(|r| r == "*")) > 0.1);
    assert!(share(&|s| s.resources.iter().any(|r| r.ends_with("/*"))) > 0.2);
    for op in [
        SynthOperator::StringEquals,
        SynthOperator::StringLike,
        SynthOperator::NumericLessThan,
        SynthOperator::IpAddress,
        SynthOperator::Bool,
    ] {
        assert!(
            all.iter()
                .flat_map(|s| &s.conditions)
                .any(|c| c.operator == op),
            "{op:?}"
        );
    }
}

#[test]
fn requests_get_a_realistic_mix_of_decisions() {
    let o = org(1_000, 2_000);
    assert_eq!(o.requests.len(), 2_000);
    let snap = Snapshot::load_files(&o.files, 1).unwrap();
    let mut counts = std::collections::HashMap::new();
    for r in &o.requests {
        let ctx = CallerContext::screen(r.context_keys(), |k| panic!("{r}: `{k}` is the server's"));
        let a = snap
            .ask(
                &r.principal,
                &r.action,
                &r.resource,
                &ctx,
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_ne!(
            a.outcome.reason,
            crate::eval::Reason::UnknownPrincipal,
            "{r}"
        );
        *counts.entry(a.outcome.decision).or_insert(0usize) += 1;
    }
    let share = |d: Decision| counts.get(&d).copied().unwrap_or(0) as f64 / 2_000.0;
    assert!(share(Decision::Allow) > 0.25, "{counts:?}");
    assert!(share(Decision::ExplicitDeny) > 0.03, "{counts:?}");
    assert!(share(Decision::ImplicitDeny) > 0.25, "{counts:?}");
}

#[test]
fn resource_tags_follow_the_arn() {
    let tags = resource_tags("arn:aws:orders:us-east-1:100000000001:order/team-3/order-7");
    assert_eq!(
        tags.first(),
        Some(&("owner".to_owned(), "team-3".to_owned()))
    );
    assert_eq!(tags.len(), 2);
    assert!(resource_tags("*").is_empty());
}

#[test]
fn an_empty_spec_is_refused() {
    assert_eq!(
        generate(Spec {
            statements: 0,
            requests: 1,
            seed: 1
        })
        .unwrap_err(),
        SynthError::NoStatements
    );
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use super::space;
use crate::arn::{Arn, ArnPattern, ShortArn};
use crate::context::Context;
use crate::matcher::{Pattern, glob_tokens};

/// A predicate on a witness value.
type Pred<'a> = Box<dyn Fn(&String) -> bool + 'a>;

/// The vectors "which predicate holds" of `values`.
fn vectors<T>(values: &[T], preds: &[&dyn Fn(&T) -> bool]) -> BTreeSet<Vec<bool>> {
    values
        .iter()
        .map(|v| preds.iter().map(|p| p(v)).collect())
        .collect()
}

/// Every string over `alphabet` up to `len` characters.
fn all_strings(alphabet: &[char], len: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..len {
        let mut next = Vec::new();
        for s in &frontier {
            for c in alphabet {
                next.push(format!("{s}{c}"));
            }
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    out
}

/// The witnesses of `patterns` realise exactly the vectors brute force finds.
fn check_strings(patterns: &[&str]) {
    let tokens: Vec<_> = patterns.iter().map(|p| glob_tokens(p).collect()).collect();
    let w = space::strings(&tokens, &[], space::MAX_STATES);
    assert!(w.complete, "{patterns:?}");
    let compiled: Vec<Pattern> = patterns.iter().map(|p| Pattern::new(p)).collect();
    let preds: Vec<Pred<'_>> = compiled
        .iter()
        .map(|p| Box::new(move |s: &String| p.matches(s)) as Pred<'_>)
        .collect();
    let refs: Vec<&dyn Fn(&String) -> bool> = preds.iter().map(|b| &**b).collect();
    let found = vectors(&w.values, &refs);
    let brute = vectors(&all_strings(&['a', 'b', '/', 'x'], 6), &refs);
    assert_eq!(found, brute, "{patterns:?}: witnesses {:?}", w.values);
    // One witness per vector, no more.
    assert_eq!(found.len(), w.values.len(), "{patterns:?}");
}

#[test]
fn one_witness_per_realisable_vector_of_wildcard_patterns() {
    check_strings(&["a*"]);
    check_strings(&["a*", "*b", "a?b"]);
    check_strings(&["a", "a*", "*a*", "?", "??*"]);
    check_strings(&["*a*b*", "*b*a*", "ab", "ba"]);
    check_strings(&["a/*", "a/b/*", "*/b"]);
    // No pattern: one region, every string.
    check_strings(&[]);
}

#[test]
fn two_wildcard_patterns_intersect_exactly_when_some_string_matches_both() {
    let patterns = [
        "", "a", "b", "ab", "ba", "*", "?", "a*", "*a", "*a*", "a?b", "??", "*b*a*", "a*b", "b*a",
        "?*?", "a/*", "*/b", "x", "ab*ba",
    ];
    let strings = all_strings(&['a', 'b', '/', 'x'], 5);
    for p in patterns {
        for q in patterns {
            let (pp, qq) = (Pattern::new(p), Pattern::new(q));
            let brute = strings.iter().any(|s| pp.matches(s) && qq.matches(s));
            let a: Vec<_> = glob_tokens(p).collect();
            let b: Vec<_> = glob_tokens(q).collect();
            assert_eq!(space::intersects(&a, &b), brute, "{p:?} and {q:?}");
        }
    }
}

#[test]
fn an_exploration_past_its_bound_is_incomplete() {
    let tokens: Vec<_> = ["*a?????", "*b?????", "*ab*ba*"]
        .iter()
        .map(|p| glob_tokens(p).collect())
        .collect();
    let w = space::strings(&tokens, &[], 50);
    assert!(!w.complete);
    let w = space::strings(&tokens, &[], space::MAX_STATES);
    assert!(w.complete);
}

#[test]
fn arn_witnesses_cover_each_segment_alone() {
    let texts = [
        "arn:aws:orders:*:1:order/*",
        "arn:aws:orders:us-*:*:*",
        "arn:aws:*:*:1:*/x",
        // A wildcard stays inside its segment: `s*` does not reach past the service.
        "arn:aws:s*:::x",
        "arn:aws:orders:us-east-1:1:order/a:b",
    ];
    let patterns: Vec<ArnPattern> = texts
        .iter()
        .map(|t| ArnPattern::new(t, false, ShortArn::Pad).unwrap())
        .collect();
    let segments: Vec<_> = patterns
        .iter()
        .map(|p| space::segments(p).unwrap())
        .collect();
    let w = space::arns(&segments, space::MAX_STATES, 100_000);
    assert!(w.complete);
    let ctx = Context::new();
    let matches = |p: &ArnPattern, s: &String| {
        Arn::parse(s).is_some_and(|a| p.matches(Some(&a), &ctx) == Some(true))
    };
    let preds: Vec<Pred<'_>> = patterns
        .iter()
        .map(|p| Box::new(move |s: &String| matches(p, s)) as Pred<'_>)
        .collect();
    let refs: Vec<&dyn Fn(&String) -> bool> = preds.iter().map(|b| &**b).collect();
    for v in &w.values {
        let a = Arn::parse(v).unwrap_or_else(|| panic!("`{v}` is not an ARN"));
        assert_eq!((a.partition, &v[..8]), ("aws", "arn:aws:"));
    }
    let found = vectors(&w.values, &refs);
    let mut brute_arns = Vec::new();
    for service in ["orders", "s3", "s", "x", ""] {
        for region in ["", "us-", "us-east-1", "x"] {
            for account in ["", "1", "x"] {
                for resource in ["", "x", "/x", "order/", "order/x", "order/a:b", "a:b/x"] {
                    brute_arns.push(format!("arn:aws:{service}:{region}:{account}:{resource}"));
                }
            }
        }
    }
    let brute = vectors(&brute_arns, &refs);
    assert!(
        brute.is_subset(&found),
        "missing {:?}",
        brute.difference(&found).collect::<Vec<_>>()
    );
}

#[test]
fn number_witnesses_fall_in_every_interval() {
    let thresholds = [1.0, 2.5, -3.0];
    let w = space::numbers(&thresholds);
    assert!(w.complete);
    assert!(w.values.contains(&"x".to_owned()));
    let parse = |s: &String| crate::condition::parse_number(s);
    let mut preds: Vec<Pred<'_>> = Vec::new();
    for t in thresholds {
        preds.push(Box::new(move |s: &String| parse(s).is_some_and(|x| x < t)));
        preds.push(Box::new(move |s: &String| parse(s).is_some_and(|x| x == t)));
        preds.push(Box::new(move |s: &String| parse(s).is_some()));
    }
    let refs: Vec<&dyn Fn(&String) -> bool> = preds.iter().map(|b| &**b).collect();
    let grid: Vec<String> = (-20..=20)
        .map(|i| format!("{}", f64::from(i) / 4.0))
        .chain(["x".to_owned()])
        .collect();
    assert!(vectors(&grid, &refs).is_subset(&vectors(&w.values, &refs)));
}

#[test]
fn date_witnesses_fall_on_each_side_of_every_breakpoint() {
    let t = crate::condition::parse_date("2026-01-15T12:00:00Z").unwrap();
    let w = space::dates(&[t]);
    let ms: Vec<i64> = w
        .values
        .iter()
        .filter_map(|v| crate::condition::parse_date(v))
        .collect();
    assert!(
        ms.contains(&(t - 1)) && ms.contains(&t) && ms.contains(&(t + 1)),
        "{:?}",
        w.values
    );
    assert!(w.values.contains(&"x".to_owned()));
}

#[test]
fn address_witnesses_start_every_range_and_follow_its_end() {
    let nets: Vec<ipnet::IpNet> = ["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let w = space::addresses(&nets);
    let addrs: Vec<std::net::IpAddr> = w.values.iter().filter_map(|v| v.parse().ok()).collect();
    let vec_of = |a: &std::net::IpAddr| nets.iter().map(|n| n.contains(a)).collect::<Vec<bool>>();
    let found: BTreeSet<Vec<bool>> = addrs.iter().map(vec_of).collect();
    for probe in [
        "9.255.255.255",
        "10.0.0.1",
        "10.1.2.3",
        "10.2.0.0",
        "11.0.0.0",
        "2001:db8::1",
        "::1",
    ] {
        let a: std::net::IpAddr = probe.parse().unwrap();
        assert!(found.contains(&vec_of(&a)), "{probe}");
    }
    assert!(w.values.contains(&"x".to_owned()));
}

#[test]
fn an_operator_is_named_as_it_is_written() {
    for name in [
        "StringEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "NumericLessThanEquals",
        "NumericNotEquals",
        "DateGreaterThan",
        "DateNotEquals",
        "Bool",
        "BinaryEquals",
        "NotIpAddress",
        "ArnNotLike",
        "Null",
        "ForAnyValue:StringLike",
        "ForAllValues:StringEqualsIfExists",
    ] {
        let op = crate::condition::Operator::parse(name).unwrap();
        assert_eq!(super::model::operator_name(&op), name);
    }
}

/// The UNKNOWNs of one statement read as a bundle reads it (only caller keys vary).
fn bundle_unknowns(statement: &str) -> Vec<String> {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#);
    let p = crate::policy::parse_text(&text, crate::policy::PolicyKind::Identity, "p")
        .policy
        .unwrap();
    let mut atoms = super::model::Atoms::default();
    let varies = |k: &str| crate::keys::caller_supplies(k);
    for s in p.statements.iter() {
        atoms.add_statement(s, "here", &varies);
    }
    atoms.unknowns.iter().map(|u| u.feature.clone()).collect()
}

#[test]
fn in_a_bundle_what_a_principal_fixes_is_decided_and_what_it_does_not_is_unknown() {
    // The principal's account against the resource's: both enumerated.
    let same_account = r#"{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"StringEquals":{"aws:ResourceAccount":"${aws:PrincipalAccount}"}}}"#;
    assert!(bundle_unknowns(same_account).is_empty());
    // A caller's key against a variable: not modelled.
    let caller = r#"{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"StringEquals":{"aws:SourceAccount":"${aws:PrincipalAccount}"}}}"#;
    assert_eq!(
        bundle_unknowns(caller),
        ["`StringEquals` with a policy variable (`${aws:principalaccount}`)"]
    );
    // A session's name, which the comparison fixes, and the time.
    let userid = r#"{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"StringLike":{"aws:userid":"AROA*:alice"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}"#;
    assert_eq!(
        bundle_unknowns(userid),
        [
            "`DateLessThan` on `aws:currenttime`, which the server fills with the time",
            "`StringLike` on `aws:userid`, which holds a role session's name",
        ]
    );
    // A variable in `Resource`.
    let home = r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${aws:username}/*"}"#;
    assert_eq!(bundle_unknowns(home), ["a policy variable in `Resource`"]);
}

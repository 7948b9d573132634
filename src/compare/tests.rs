#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use super::model::{self, KeyRole};
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
    // As `compare_bundles` reads keys, with one web identity provider (`idp.example`).
    let role = |k: &str| {
        if k == "aws:federatedprovider" || k.starts_with("idp.example:") {
            KeyRole::WebIdentity
        } else if super::model::is_session_key(k) {
            KeyRole::Session
        } else if crate::keys::caller_supplies(k) {
            KeyRole::Caller
        } else {
            KeyRole::Server
        }
    };
    for s in p.statements.iter() {
        atoms.add_statement(s, "here", &role);
    }
    atoms.session_space(space::MAX_STATES);
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

#[test]
fn in_a_bundle_session_facts_are_decided_and_web_identity_keys_are_unknown() {
    // MFA, its age, the issue time, the source identity and a session tag: dimensions of
    // their own, compared as their values are.
    let session = r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
        "Bool":{"aws:MultiFactorAuthPresent":"true"},
        "NumericLessThan":{"aws:MultiFactorAuthAge":"3600"},
        "DateGreaterThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"},
        "StringLike":{"aws:SourceIdentity":"ops-*","aws:PrincipalTag/team":"a*"}}}"#;
    assert!(
        bundle_unknowns(session).is_empty(),
        "{:?}",
        bundle_unknowns(session)
    );
    // MFA's presence has two values and absence, all tried: any operator is decided.
    let present = r#"{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"ForAnyValue:StringEqualsIgnoreCase":{"aws:MultiFactorAuthPresent":"TRUE"}}}"#;
    assert!(bundle_unknowns(present).is_empty());
    // A session's value compared as another type than it has: not modelled.
    let age_text = r#"{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"StringLike":{"aws:MultiFactorAuthAge":"1*"}}}"#;
    assert_eq!(
        bundle_unknowns(age_text),
        ["`StringLike` on `aws:multifactorauthage`, a session's value, compared as string"]
    );
    // A session tag in a policy variable can differ per session.
    let variable = r#"{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"StringEquals":{"aws:PrincipalAccount":"${aws:PrincipalTag/account}"}}}"#;
    assert_eq!(
        bundle_unknowns(variable),
        ["`StringEquals` with a policy variable (`${aws:principaltag/account}`)"]
    );
    // A web identity token's key: UNKNOWN where an IAM principal's request reads it...
    let web = r#"{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"StringEquals":{"idp.example:sub":"ci","aws:FederatedProvider":"x"}}}"#;
    assert_eq!(
        bundle_unknowns(web),
        [
            "`StringEquals` on `aws:federatedprovider`, a web identity session's key, which a bundle comparison does not model",
            "`StringEquals` on `idp.example:sub`, a web identity session's key, which a bundle comparison does not model",
        ]
    );
    // ...and not in a statement that grants to the provider alone, which applies to no
    // IAM principal.
    let trust = r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/idp.example"},
        "Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"idp.example:aud":"x"}}}"#;
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{trust}]}}"#);
    let p = crate::policy::parse_text(&text, crate::policy::PolicyKind::Trust, "p")
        .policy
        .unwrap();
    let mut atoms = model::Atoms::default();
    for s in p.statements.iter() {
        atoms.add_statement(s, "here", &|k: &str| {
            if k.starts_with("idp.example:") {
                KeyRole::WebIdentity
            } else {
                KeyRole::Caller
            }
        });
    }
    assert!(atoms.unknowns.is_empty(), "{:?}", atoms.unknowns);
}

#[test]
fn strings_of_a_least_length_realise_every_vector_long_strings_do() {
    for patterns in [&["a*"][..], &["ab", "a?", "*b"], &[], &["a", "?"]] {
        let tokens: Vec<_> = patterns.iter().map(|p| glob_tokens(p).collect()).collect();
        let w = space::strings_from(&tokens, &[], 2, space::MAX_STATES);
        assert!(w.complete);
        assert!(w.values.iter().all(|v| v.chars().count() >= 2), "{w:?}");
        let compiled: Vec<Pattern> = patterns.iter().map(|p| Pattern::new(p)).collect();
        let preds: Vec<Pred<'_>> = compiled
            .iter()
            .map(|p| Box::new(move |s: &String| p.matches(s)) as Pred<'_>)
            .collect();
        let refs: Vec<&dyn Fn(&String) -> bool> = preds.iter().map(|b| &**b).collect();
        let long: Vec<String> = all_strings(&['a', 'b', 'x'], 5)
            .into_iter()
            .filter(|s| s.len() >= 2)
            .collect();
        assert_eq!(
            vectors(&w.values, &refs),
            vectors(&long, &refs),
            "{patterns:?}: {:?}",
            w.values
        );
    }
}

/// The region of `x` among sorted breakpoints: below, at or between them.
fn region(points: &[i64], x: i64) -> Vec<std::cmp::Ordering> {
    points.iter().map(|p| x.cmp(p)).collect()
}

#[test]
fn session_ages_and_issue_times_take_the_largest_of_every_region_a_session_can_be_in() {
    // Ages: whole seconds in 0..=oldest; brute force over every one.
    let oldest = 60u64;
    for (points, lifetime) in [
        (vec![10.0], 30),
        (vec![0.0, 10.5, 20.0, 59.0], 5),
        (vec![-3.0, 100.0], 30),
        (vec![], 30),
    ] {
        let w = model::age_witnesses(&points, lifetime, oldest);
        let ints: Vec<i64> = points.iter().map(|p: &f64| (p * 2.0) as i64).collect();
        let reg = |a: u64| region(&ints, a as i64 * 2);
        let found: BTreeSet<_> = w.iter().map(|a| reg(*a)).collect();
        let brute: BTreeSet<_> = (0..=oldest).map(reg).collect();
        assert_eq!(found, brute, "{points:?}: {w:?}");
        for a in &w {
            // The largest of its region, or at least the lifetime when unbounded above.
            let next_same = (*a + 1..=oldest).any(|b| reg(b) == reg(*a));
            assert!(!next_same || *a >= lifetime, "{points:?}: {a}");
        }
    }
    // Issue times: whole seconds in the window; instants in ms.
    let (earliest, latest) = (100i64, 130i64);
    for points in [
        vec![110_000i64],
        vec![110_500, 111_000, 129_999],
        vec![50_000, 200_000],
        vec![],
    ] {
        let w = model::issue_witnesses(&points, earliest, latest);
        let reg = |s: i64| region(&points, s * 1000);
        let found: BTreeSet<_> = w.iter().map(|s| reg(*s)).collect();
        let brute: BTreeSet<_> = (earliest..=latest).map(reg).collect();
        assert_eq!(found, brute, "{points:?}: {w:?}");
        for s in &w {
            assert!((earliest..=latest).contains(s));
            assert!(
                !(*s + 1..=latest).any(|t| reg(t) == reg(*s)),
                "{points:?}: {s} is not the latest of its region"
            );
        }
    }
}

/// The session space of one statement with `conditions`.
fn session_space(conditions: &str) -> model::SessionSpace {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{conditions}}}]}}"#
    );
    let p = crate::policy::parse_text(&text, crate::policy::PolicyKind::Identity, "p")
        .policy
        .unwrap();
    let mut atoms = model::Atoms::default();
    for s in p.statements.iter() {
        atoms.add_statement(s, "here", &|k: &str| {
            if model::is_session_key(k) {
                KeyRole::Session
            } else {
                KeyRole::Caller
            }
        });
    }
    atoms.session_space(space::MAX_STATES)
}

#[test]
fn a_session_is_issued_within_its_lifetime() {
    use std::time::{Duration, UNIX_EPOCH};
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    // Issued more than 5,000 s ago (2027-01-15T06:36:40Z): a session of a role that lasts
    // 12 hours may be, one of a role that lasts an hour may not.
    let space = session_space(r#"{"DateLessThan":{"aws:TokenIssueTime":"2027-01-15T06:36:40Z"}}"#);
    let old = |lifetime: u64| {
        space
            .sessions(true, lifetime, now)
            .iter()
            .any(|f| f.issued_at < 1_800_000_000 - 5_000)
    };
    assert!(old(43_200));
    assert!(!old(3_600));
    assert!(
        space
            .sessions(true, 3_600, now)
            .iter()
            .all(|f| f.issued_at > 1_800_000_000 - 3_600)
    );
}

#[test]
fn witness_sessions_are_ones_a_server_could_hold() {
    use std::time::{Duration, UNIX_EPOCH};
    let now = UNIX_EPOCH + Duration::from_millis(1_800_000_000_500);
    let now_s = 1_800_000_000i64;
    // MFA within 300 s, a session issued 1,000 s ago or earlier, a source identity and a
    // tag: no session issued before its MFA, none with a tag or identity STS refuses.
    let space = session_space(
        r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"300"},
        "DateLessThanEquals":{"aws:TokenIssueTime":"2027-01-15T07:43:20Z"},
        "StringEquals":{"aws:SourceIdentity":"a","aws:PrincipalTag/team":"bad#value"}}"#,
    );
    assert!(space.read);
    let roles = space.sessions(true, 43_200, now);
    let users = space.sessions(false, model::USER_SESSION_LIFETIME, now);

    // 2027-01-15T07:43:20Z is 1,000 s before now.
    let cutoff = now_s - 1_000;
    for f in roles.iter().chain(&users) {
        assert!(f.issued_at <= now_s);
        if let Some(age) = f.mfa_age {
            assert!(age as i64 >= now_s - f.issued_at, "{f:?}");
        }
        assert!(f.source_identity.as_ref().is_none_or(|s| s.len() >= 2));
        assert!(f.tags.iter().all(|(_, v)| v != "bad#value"));
    }
    // A recent MFA in a session issued before the cutoff: no session has it.
    assert!(
        !roles
            .iter()
            .any(|f| f.mfa_age.is_some_and(|a| a < 300) && f.issued_at <= cutoff)
    );
    // Each other pair of regions is tried: MFA within 300 s in a recent session, and an
    // older MFA in an older one.
    assert!(
        roles
            .iter()
            .any(|f| f.mfa_age.is_some_and(|a| a < 300) && f.issued_at > cutoff)
    );
    assert!(
        roles
            .iter()
            .any(|f| f.mfa_age.is_some_and(|a| a >= 300) && f.issued_at <= cutoff)
    );
    // A user's session carries no tags and no source identity.
    assert!(
        users
            .iter()
            .all(|f| f.tags.is_empty() && f.source_identity.is_none())
    );
    assert!(roles.iter().any(|f| !f.tags.is_empty()));
    assert!(roles.iter().any(|f| f.source_identity.is_some()));
}

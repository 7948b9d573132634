#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

fn parse_ok(text: &str) -> Suite {
    let mut budget = MAX_CHECKS;
    parse("s.json", text, &mut budget).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The errors of a suite that must not parse, each as `file:line:column: message`.
fn errors(text: &str) -> Vec<String> {
    let mut budget = MAX_CHECKS;
    match parse("s.json", text, &mut budget) {
        Ok(s) => panic!("parsed: {s:?}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn checks(t: &Test) -> &[Check] {
    match &t.body {
        Body::Checks(c) => c,
        Body::WhoCan(_) | Body::Assume(_) => panic!("not a test of checks"),
    }
}

const P: &str = "arn:aws:iam::111111111111:user/a";

#[test]
fn a_matrix_expands_to_every_cell_and_except_overrides_the_cells_it_selects() {
    let s = parse_ok(&format!(
        r#"{{"tests": [{{"name": "m", "principals": ["{P}", "arn:aws:iam::111111111111:user/b"],
            "actions": ["orders:GetOrder", "orders:DeleteOrder"], "resources": "*",
            "context": {{"aws:SourceIp": "10.0.0.1", "aws:TagKeys": ["x", "y"]}},
            "expect": "Allow",
            "except": [{{"principals": ["{P}"], "actions": ["orders:DeleteOrder"], "expect": "ExplicitDeny",
                         "reason": "explicit_deny", "statements": "scp level 0 X Sid Y"}}]}}]}}"#
    ));
    let c = checks(&s.tests[0]);
    assert_eq!(c.len(), 4);
    let denied: Vec<_> = c
        .iter()
        .filter(|c| c.expect.decision == Expected::ExplicitDeny)
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].principal.value, P);
    assert_eq!(denied[0].action.value, "orders:DeleteOrder");
    assert_eq!(denied[0].expect.reason, Some(Reason::ExplicitDeny));
    assert_eq!(denied[0].expect.statements[0].value, "scp level 0 X Sid Y");
    assert_eq!(c[0].context.len(), 2);
    assert_eq!(
        c[0].action.pos,
        Pos {
            line: 2,
            column: 25
        }
    );
}

#[test]
fn the_list_form_merges_the_tests_context_under_each_requests() {
    let s = parse_ok(&format!(
        r#"{{"tests": [{{"name": "l", "context": {{"aws:SourceIp": "1.1.1.1", "k": "v"}}, "requests": [
            {{"principal": "{P}", "action": "a:b", "resource": "*", "context": {{"AWS:SOURCEIP": "2.2.2.2"}},
              "expect": "Deny"}}]}}]}}"#
    ));
    let c = &checks(&s.tests[0])[0];
    assert_eq!(c.expect.decision, Expected::Deny);
    assert_eq!(
        c.context.get("aws:sourceip"),
        Some(&ContextValue::Single("2.2.2.2".into()))
    );
    assert_eq!(c.context.len(), 2);
}

#[test]
fn deny_admits_either_deny_and_nothing_else() {
    assert!(Expected::Deny.admits(Decision::ExplicitDeny));
    assert!(Expected::Deny.admits(Decision::ImplicitDeny));
    assert!(!Expected::Deny.admits(Decision::Allow));
    assert!(!Expected::ImplicitDeny.admits(Decision::ExplicitDeny));
    assert!(!Expected::Allow.admits(Decision::ImplicitDeny));
}

#[test]
fn a_who_can_test_is_parsed_with_its_complete_set() {
    let s = parse_ok(
        r#"{"tests": [{"name": "w", "who_can": {"action": "orders:DeleteOrder",
            "resource": "arn:aws:orders:us-east-1:1:order/1", "principals": []}}]}"#,
    );
    match &s.tests[0].body {
        Body::WhoCan(w) => {
            assert!(w.principals.is_empty());
            assert_eq!(w.action.value, "orders:DeleteOrder");
        }
        Body::Checks(_) | Body::Assume(_) => panic!("not a who_can test"),
    }
    assert_eq!(s.tests[0].checks(), 1, "a who_can test is one check");
}

#[test]
fn errors_name_their_line_and_column() {
    let check = |text: &str, want: &str| {
        let e = errors(text);
        assert!(e.iter().any(|e| e.contains(want)), "{want:?} not in {e:#?}");
    };
    check(r#"{"tests": ["#, "s.json:1:12: invalid JSON");
    check(
        r#"{"tests": [], "extra": 1}"#,
        "s.json:1:15: unknown field `extra` in the suite",
    );
    let cell = |extra: &str| {
        format!(
            "{{\"tests\": [\n  {{\"name\": \"t\", \"principals\": \"{P}\", \"actions\": \"a:b\", \"resources\": \"*\", {extra}}}]}}"
        )
    };
    check(
        &cell(r#""expect": "Permit""#),
        "s.json:2:113: unknown decision `Permit`",
    );
    check(
        &cell(r#""expect": "Allow", "expekt": 1"#),
        "s.json:2:122: unknown field `expekt` in a test",
    );
    check(
        &cell(r#""expect": "Allow", "reason": "nope""#),
        "unknown reason `nope`",
    );
    check(
        &cell(r#""expect": "Allow", "reason": "explicit_deny""#),
        "the reason `explicit_deny` belongs to `ExplicitDeny`, not to the expected `Allow`",
    );
    check(
        &cell(r#""expect": "Allow", "context": {"k": true}"#),
        "must be a string or a list of strings, not a boolean",
    );
    check(
        &cell(r#""expect": "Allow", "context": {"k": "a", "K": "b"}"#),
        "the context key `K` is given twice",
    );
    check(
        &cell(r#""description": "no expectation""#),
        "s.json:2:3: missing `expect`",
    );
    check(
        &cell(r#""expect": "Allow", "except": [{"actions": "x:y", "expect": "Deny"}]"#),
        "this `except` entry selects no cell",
    );
    check(
        &cell(
            r#""expect": "Allow", "except": [{"actions": "a:b", "expect": "Deny"}, {"resources": "*", "expect": "Deny"}]"#,
        ),
        "is also selected by the `except` entry at 2:",
    );
    check(
        r#"{"tests": [{"name": "t", "requests": [], "principals": ["x"]}]}"#,
        "a test is one of",
    );
    check(
        &format!(
            r#"{{"tests": [{{"name": "t", "requests": [{{"principal": "{P}", "action": "a:b", "resource": "*", "expect": "Allow"}}]}},
                {{"name": "t", "requests": [{{"principal": "{P}", "action": "a:b", "resource": "*", "expect": "Allow"}}]}}]}}"#
        ),
        "a second test named `t` (the first is at 1:12)",
    );
    check(
        r#"{"tests": [{"name": "t", "requests": [{"action": "a:b", "resource": "*", "expect": "Allow"}]}]}"#,
        "a request needs `principal`",
    );
}

#[test]
fn a_matrix_larger_than_the_budget_is_refused_before_it_is_built() {
    let many: Vec<String> = (0..1000).map(|i| format!("\"p{i}\"")).collect();
    let list = many.join(",");
    let text = format!(
        r#"{{"tests": [{{"name": "huge", "principals": [{list}], "actions": [{list}], "resources": [{list}], "expect": "Allow"}}]}}"#
    );
    let mut budget = MAX_CHECKS;
    let e = parse("s.json", &text, &mut budget).unwrap_err();
    assert!(
        e[0].message.contains("expands to 1000000000 checks"),
        "{e:?}"
    );
    assert_eq!(budget, MAX_CHECKS, "nothing was spent");
    // What one file spends, the next cannot.
    let mut budget = 3;
    let small = format!(
        r#"{{"tests": [{{"name": "m", "principals": ["{P}", "{P}"], "actions": "a:b", "resources": "*", "expect": "Allow"}}]}}"#
    );
    parse("a.json", &small, &mut budget).unwrap();
    assert_eq!(budget, 1);
    assert!(parse("b.json", &small, &mut budget).is_err());
}

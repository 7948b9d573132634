//! Unit tests of condition operators, written from the reference (§4 conditions, §5
//! policy variables): one table per rule, each row an operator, its policy values, the
//! request's value for the key and whether the condition holds.

use super::*;
use crate::context::Context;

/// The condition key the tables test, unless a row names another.
const KEY: &str = "test:Key";

fn one(v: &str) -> Option<ContextValue> {
    Some(ContextValue::Single(v.into()))
}

fn many(vs: &[&str]) -> Option<ContextValue> {
    Some(ContextValue::Multi(
        vs.iter().map(|v| (*v).into()).collect(),
    ))
}

/// A context holding `entries` (keys in any case).
fn context(entries: &[(&str, Option<ContextValue>)]) -> Context {
    let mut ctx = Context::new();
    for (k, v) in entries {
        if let Some(v) = v {
            ctx.insert(k, v.clone());
        }
    }
    ctx
}

/// Compiles `op` over `key` with `values` in a `2012-10-17` policy and evaluates it.
fn holds(op: &str, key: &str, values: &[&str], ctx: &Context) -> bool {
    let op = Operator::parse(op).unwrap_or_else(|e| panic!("operator `{op}`: {e}"));
    let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    let cond = Condition::new(op, key, &values, true)
        .unwrap_or_else(|(i, e)| panic!("value {i} of {values:?}: {e}"));
    cond.holds(ctx)
}

/// One row: `op` with `values` against the request value of [`KEY`] (`None`: missing).
fn check(op: &str, values: &[&str], request: Option<ContextValue>, expected: bool) {
    let ctx = context(&[(KEY, request.clone())]);
    assert_eq!(
        holds(op, KEY, values, &ctx),
        expected,
        "`{op}` {values:?} against {request:?}"
    );
}

// === String operators (§4.2) ===

#[test]
fn string_equals_is_exact_and_case_sensitive() {
    check("StringEquals", &["prod"], one("prod"), true);
    check("StringEquals", &["prod"], one("Prod"), false);
    check("StringEquals", &["prod"], one("prod "), false);
    check("StringEquals", &["prod"], one(""), false);
    check("StringEquals", &[""], one(""), true);
    // Several values under a positive operator: OR.
    check("StringEquals", &["dev", "prod"], one("prod"), true);
    check("StringEquals", &["dev", "prod"], one("test"), false);
}

#[test]
fn string_equals_reads_wildcards_literally() {
    check("StringEquals", &["prod-*"], one("prod-eu"), false);
    check("StringEquals", &["prod-*"], one("prod-*"), true);
    check("StringEquals", &["pr?d"], one("prod"), false);
}

#[test]
fn string_not_equals_is_true_only_when_no_value_matches() {
    check("StringNotEquals", &["prod"], one("dev"), true);
    check("StringNotEquals", &["prod"], one("prod"), false);
    check("StringNotEquals", &["prod"], one("PROD"), true);
    // NOR over several values.
    check("StringNotEquals", &["dev", "prod"], one("dev"), false);
    check("StringNotEquals", &["dev", "prod"], one("prod"), false);
    check("StringNotEquals", &["dev", "prod"], one("test"), true);
}

#[test]
fn ignore_case_operators_fold_case_on_both_sides() {
    check("StringEqualsIgnoreCase", &["Prod"], one("PROD"), true);
    check("StringEqualsIgnoreCase", &["prod"], one("Prod"), true);
    check("StringEqualsIgnoreCase", &["prod"], one("prod2"), false);
    check("StringEqualsIgnoreCase", &["ÉTÉ"], one("été"), true);
    check("StringNotEqualsIgnoreCase", &["Prod"], one("pROD"), false);
    check(
        "StringNotEqualsIgnoreCase",
        &["dev", "prod"],
        one("DEV"),
        false,
    );
    check(
        "StringNotEqualsIgnoreCase",
        &["dev", "prod"],
        one("test"),
        true,
    );
}

/// Found by the `matchers` fuzz target: the policy's side was lowercased with
/// `str::to_lowercase` (a final `Σ` becomes `ς`) and the request's a character at a time
/// (`Σ` becomes `σ`), so `ΑΣ` did not equal itself and `ας` equalled `ΑΣ`.
#[test]
fn ignore_case_folds_both_sides_alike_even_a_final_sigma() {
    check("StringEqualsIgnoreCase", &["ΑΣ"], one("ΑΣ"), true);
    check("StringEqualsIgnoreCase", &["ΑΣ"], one("ασ"), true);
    check(
        "StringEqualsIgnoreCase",
        &["ΟΔΥΣΣΕΥΣ"],
        one("οδυσσευσ"),
        true,
    );
    check("StringEqualsIgnoreCase", &["ας"], one("ΑΣ"), false);
    check("StringNotEqualsIgnoreCase", &["ΑΣ"], one("ΑΣ"), false);
    check(
        "ForAllValues:StringNotEqualsIgnoreCaseIfExists",
        &["ΑΣΑΣ"],
        many(&["ΑΣΑΣ", "ΑΣΑΣ"]),
        false,
    );
    // The same through a policy variable: `${test:Team}` resolves to `ΑΣ`.
    let ctx = context(&[(KEY, one("ΑΣ")), ("test:Team", one("ΑΣ"))]);
    assert!(holds(
        "StringEqualsIgnoreCase",
        KEY,
        &["${test:Team}"],
        &ctx
    ));
}

#[test]
fn string_like_globs_case_sensitively() {
    check("StringLike", &["home/*"], one("home/alice/x"), true);
    check("StringLike", &["home/*"], one("Home/alice"), false);
    check("StringLike", &["home/*"], one("home/"), true);
    check("StringLike", &["?at"], one("cat"), true);
    check("StringLike", &["?at"], one("at"), false);
    check("StringLike", &["*"], one(""), true);
    check("StringLike", &["a", "b*"], one("bee"), true);
    check("StringLike", &["a", "b*"], one("cee"), false);
}

#[test]
fn string_like_star_crosses_colons_where_arn_like_does_not() {
    // The reference's example (§4.2): the first `*` of StringLike eats colons.
    let pattern = "arn:aws:svc:*:111122223333:finance/*";
    let value = "arn:aws:svc:us-east-2:999999999999:store/abc:111122223333:finance/doc.txt";
    check("StringLike", &[pattern], one(value), true);
    check("ArnLike", &[pattern], one(value), false);
}

#[test]
fn string_not_like_is_true_only_when_no_pattern_matches() {
    check("StringNotLike", &["key1*"], one("key2"), true);
    check("StringNotLike", &["key1*"], one("key1-a"), false);
    check("StringNotLike", &["a*", "b*"], one("bee"), false);
    check("StringNotLike", &["a*", "b*"], one("cee"), true);
}

// === Numeric operators ===

#[test]
fn numeric_operators_compare_integers_and_decimals() {
    let rows = [
        ("NumericEquals", "10", "10", true),
        ("NumericEquals", "10", "10.0", true),
        ("NumericEquals", "1.50", "1.5", true),
        ("NumericEquals", "10", "11", false),
        ("NumericEquals", "-3", "-3", true),
        ("NumericNotEquals", "10", "11", true),
        ("NumericNotEquals", "10", "10", false),
        ("NumericLessThan", "10", "9.99", true),
        ("NumericLessThan", "10", "10", false),
        ("NumericLessThanEquals", "10", "10", true),
        ("NumericLessThanEquals", "10", "10.5", false),
        ("NumericGreaterThan", "3600", "3601", true),
        ("NumericGreaterThan", "3600", "3600", false),
        ("NumericGreaterThanEquals", "3600", "3600", true),
        ("NumericGreaterThanEquals", "3600", "-3600", false),
        // Numbers compare by value, not as text.
        ("NumericLessThan", "100", "20", true),
    ];
    for (op, policy, request, expected) in rows {
        check(op, &[policy], one(request), expected);
    }
}

#[test]
fn numeric_not_equals_is_nor_over_values() {
    check("NumericNotEquals", &["1", "2"], one("2"), false);
    check("NumericNotEquals", &["1", "2"], one("3"), true);
    check("NumericEquals", &["1", "2"], one("2"), true);
}

// === Date operators ===

#[test]
fn date_operators_accept_iso8601_and_epoch_seconds() {
    // 2026-01-15T12:00:00Z is 1768478400 seconds after the epoch.
    let rows = [
        (
            "DateEquals",
            "2026-01-15T12:00:00Z",
            "2026-01-15T12:00:00Z",
            true,
        ),
        ("DateEquals", "2026-01-15T12:00:00Z", "1768478400", true),
        ("DateEquals", "1768478400", "2026-01-15T12:00:00Z", true),
        (
            "DateEquals",
            "2026-01-15T12:00:00Z",
            "2026-01-15T13:00:00+01:00",
            true,
        ),
        (
            "DateEquals",
            "2026-01-15T12:00:00Z",
            "2026-01-15T12:00:00.000Z",
            true,
        ),
        (
            "DateEquals",
            "2026-01-15T12:00:00Z",
            "2026-01-15T12:00:01Z",
            false,
        ),
        ("DateEquals", "2026-01-15", "2026-01-15T00:00:00Z", true),
        (
            "DateNotEquals",
            "2026-01-15T12:00:00Z",
            "2026-01-15T12:00:01Z",
            true,
        ),
        ("DateNotEquals", "2026-01-15T12:00:00Z", "1768478400", false),
        (
            "DateLessThan",
            "2026-01-15T12:00:00Z",
            "2026-01-15T11:59:59Z",
            true,
        ),
        (
            "DateLessThan",
            "2026-01-15T12:00:00Z",
            "2026-01-15T12:00:00Z",
            false,
        ),
        ("DateLessThan", "2026-01-15T12:00:00Z", "1768478399", true),
        (
            "DateLessThanEquals",
            "2026-01-15T12:00:00Z",
            "1768478400",
            true,
        ),
        (
            "DateLessThanEquals",
            "2026-01-15T12:00:00Z",
            "1768478401",
            false,
        ),
        (
            "DateGreaterThan",
            "2026-01-15",
            "2026-01-15T00:00:01Z",
            true,
        ),
        (
            "DateGreaterThan",
            "2026-01-15",
            "2025-12-31T23:59:59Z",
            false,
        ),
        ("DateGreaterThanEquals", "2026-01-15", "2026-01-15", true),
        ("DateGreaterThanEquals", "2026-01-15", "2026-01-14", false),
    ];
    for (op, policy, request, expected) in rows {
        check(op, &[policy], one(request), expected);
    }
}

#[test]
fn date_not_equals_is_nor_over_values() {
    let values = ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"];
    check("DateNotEquals", &values, one("2026-02-01T00:00:00Z"), false);
    check("DateNotEquals", &values, one("2026-03-01T00:00:00Z"), true);
}

// === Bool and BinaryEquals ===

#[test]
fn bool_compares_true_and_false() {
    check("Bool", &["true"], one("true"), true);
    check("Bool", &["true"], one("false"), false);
    check("Bool", &["false"], one("false"), true);
    check("Bool", &["false"], one("true"), false);
    check("Bool", &["true"], one("TRUE"), true);
}

#[test]
fn binary_equals_compares_decoded_bytes() {
    // `aGVsbG8=` is `hello`; `aGVsbHA=` is `hellp`.
    check("BinaryEquals", &["aGVsbG8="], one("aGVsbG8="), true);
    check("BinaryEquals", &["aGVsbG8="], one("aGVsbHA="), false);
    check(
        "BinaryEquals",
        &["aGVsbHA=", "aGVsbG8="],
        one("aGVsbG8="),
        true,
    );
}

// === IP address operators ===

#[test]
fn ip_address_matches_ipv4_and_ipv6_cidr_ranges() {
    let rows = [
        ("10.0.0.0/8", "10.1.2.3", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("203.0.113.0/24", "203.0.113.255", true),
        ("203.0.113.0/24", "203.0.114.0", false),
        ("0.0.0.0/0", "198.51.100.7", true),
        ("2001:db8::/32", "2001:db8::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("2001:DB8:1234::/48", "2001:db8:1234:ffff::1", true),
    ];
    for (cidr, ip, expected) in rows {
        check("IpAddress", &[cidr], one(ip), expected);
        check("NotIpAddress", &[cidr], one(ip), !expected);
    }
}

#[test]
fn ip_address_bare_address_is_a_single_host() {
    check("IpAddress", &["203.0.113.5"], one("203.0.113.5"), true);
    check("IpAddress", &["203.0.113.5"], one("203.0.113.6"), false);
    check("IpAddress", &["2001:db8::5"], one("2001:db8::5"), true);
    check("IpAddress", &["2001:db8::5"], one("2001:db8::6"), false);
}

#[test]
fn ipv4_request_never_matches_an_ipv6_range_and_vice_versa() {
    check("IpAddress", &["::/0"], one("10.0.0.1"), false);
    check("IpAddress", &["0.0.0.0/0"], one("2001:db8::1"), false);
    check("NotIpAddress", &["::/0"], one("10.0.0.1"), true);
    check("NotIpAddress", &["0.0.0.0/0"], one("2001:db8::1"), true);
}

#[test]
fn not_ip_address_is_nor_over_ranges() {
    let ranges = ["10.0.0.0/8", "192.0.2.0/24"];
    check("NotIpAddress", &ranges, one("192.0.2.9"), false);
    check("NotIpAddress", &ranges, one("10.9.9.9"), false);
    check("NotIpAddress", &ranges, one("198.51.100.1"), true);
    check("IpAddress", &ranges, one("192.0.2.9"), true);
}

// === ARN operators ===

#[test]
fn arn_equals_and_arn_like_match_each_part_on_its_own() {
    let role = "arn:aws:iam::111122223333:role/app";
    for op in ["ArnEquals", "ArnLike"] {
        check(op, &[role], one(role), true);
        check(op, &["arn:aws:iam::111122223333:role/*"], one(role), true);
        check(op, &["arn:aws:iam::*:role/app"], one(role), true);
        check(
            op,
            &["arn:aws:iam::111122223333:role/App"],
            one(role),
            false,
        );
        check(op, &["arn:aws:iam::111122223333:role/a?p"], one(role), true);
        // A wildcard in the account part cannot reach into the resource part.
        check(
            op,
            &["arn:aws:iam::*"],
            one("arn:aws:iam::111122223333:role/app"),
            false,
        );
        // The resource part's `*` spans `/` and `:`.
        check(
            op,
            &["arn:aws:logs:*:*:log-group:g:*"],
            one("arn:aws:logs:us-east-1:111122223333:log-group:g:log-stream:s"),
            true,
        );
    }
}

#[test]
fn arn_operators_do_not_match_a_value_that_is_not_an_arn() {
    check("ArnLike", &["*"], one("not-an-arn"), false);
    check("ArnEquals", &["arn:aws:s3:::b"], one("arn:aws:s3"), false);
}

#[test]
fn arn_not_equals_and_arn_not_like_are_nor_over_values() {
    let values = [
        "arn:aws:iam::111122223333:role/a",
        "arn:aws:iam::111122223333:role/b*",
    ];
    for op in ["ArnNotEquals", "ArnNotLike"] {
        check(op, &values, one("arn:aws:iam::111122223333:role/a"), false);
        check(
            op,
            &values,
            one("arn:aws:iam::111122223333:role/bee"),
            false,
        );
        check(op, &values, one("arn:aws:iam::111122223333:role/c"), true);
    }
}

// === Null (§4.5) ===

#[test]
fn null_tests_presence_only() {
    check("Null", &["true"], None, true);
    check("Null", &["true"], one("anything"), false);
    check("Null", &["false"], None, false);
    check("Null", &["false"], one("anything"), true);
    // A key present with an empty string is present.
    check("Null", &["false"], one(""), true);
    check("Null", &["true"], one(""), false);
}

// === Missing keys (§4.3) ===

#[test]
fn missing_key_fails_positive_operators() {
    let rows: [(&str, &str); 12] = [
        ("StringEquals", "x"),
        ("StringEqualsIgnoreCase", "x"),
        ("StringLike", "*"),
        ("NumericEquals", "1"),
        ("NumericLessThan", "1"),
        ("DateEquals", "2026-01-01"),
        ("DateGreaterThan", "2026-01-01"),
        ("Bool", "false"),
        ("BinaryEquals", "aGVsbG8="),
        ("IpAddress", "0.0.0.0/0"),
        ("ArnEquals", "arn:aws:iam::111122223333:root"),
        ("ArnLike", "arn:*:*:*:*:*"),
    ];
    for (op, value) in rows {
        check(op, &[value], None, false);
    }
}

#[test]
fn missing_key_satisfies_negated_operators() {
    let rows: [(&str, &str); 8] = [
        ("StringNotEquals", "o-123"),
        ("StringNotLike", "*"),
        ("StringNotEqualsIgnoreCase", "x"),
        ("NumericNotEquals", "1"),
        ("DateNotEquals", "2026-01-01"),
        ("NotIpAddress", "0.0.0.0/0"),
        ("ArnNotEquals", "arn:aws:iam::111122223333:root"),
        ("ArnNotLike", "arn:*:*:*:*:*"),
    ];
    for (op, value) in rows {
        check(op, &[value], None, true);
    }
}

#[test]
fn missing_key_with_set_operators_is_vacuous_for_all_values_and_false_for_any_value() {
    check("ForAllValues:StringEquals", &["a"], None, true);
    check("ForAllValues:StringNotEquals", &["a"], None, true);
    check("ForAnyValue:StringEquals", &["a"], None, false);
    check("ForAnyValue:StringNotEquals", &["a"], None, false);
}

// === ...IfExists (§4.4) ===

#[test]
fn if_exists_is_true_when_the_key_is_missing() {
    let rows: [(&str, &str); 8] = [
        ("StringEqualsIfExists", "x"),
        ("StringLikeIfExists", "t3.*"),
        ("StringNotEqualsIfExists", "x"),
        ("NumericLessThanIfExists", "1"),
        ("DateLessThanIfExists", "2026-01-01"),
        ("BoolIfExists", "false"),
        ("IpAddressIfExists", "10.0.0.0/8"),
        ("ArnLikeIfExists", "arn:aws:iam::*:role/x"),
    ];
    for (op, value) in rows {
        check(op, &[value], None, true);
    }
}

#[test]
fn if_exists_evaluates_normally_when_the_key_is_present() {
    check("StringLikeIfExists", &["t3.*"], one("t3.micro"), true);
    check("StringLikeIfExists", &["t3.*"], one("m5.large"), false);
    check("StringNotEqualsIfExists", &["x"], one("x"), false);
    check("StringNotEqualsIfExists", &["x"], one("y"), true);
    check("NumericLessThanIfExists", &["10"], one("20"), false);
    check("BoolIfExists", &["false"], one("false"), true);
    check("BoolIfExists", &["false"], one("true"), false);
    check("IpAddressIfExists", &["10.0.0.0/8"], one("11.0.0.1"), false);
    check(
        "ForAnyValue:StringEqualsIfExists",
        &["a"],
        many(&["b", "a"]),
        true,
    );
}

#[test]
fn if_exists_with_a_set_operator_is_true_when_the_key_is_missing() {
    // §4.3: "any operator with IfExists" is true on a missing key; the set prefix does not
    // change that (the pseudo-code of §4.7 leaves `IfExists` out of the set branches).
    check("ForAnyValue:StringEqualsIfExists", &["a"], None, true);
    check("ForAnyValue:StringEqualsIfExists", &["a"], many(&[]), true);
    check("ForAnyValue:StringEquals", &["a"], many(&[]), false);
}

#[test]
fn if_exists_with_no_values_is_true_only_when_the_key_is_missing() {
    check("StringEqualsIfExists", &[], None, true);
    check("StringEqualsIfExists", &[], one("x"), false);
}

// === Empty value lists (§4.1) ===

#[test]
fn empty_value_list_fails_positive_and_satisfies_negated_operators() {
    check("StringEquals", &[], one("x"), false);
    check("StringLike", &[], one("x"), false);
    check("StringNotEquals", &[], one("x"), true);
    check("NotIpAddress", &[], one("10.0.0.1"), true);
}

// === Set operators (§4.6) ===

#[test]
fn set_operators_follow_the_reference_truth_table() {
    // The table of §4.6, policy values `["a", "b"]`: request values, then
    // ForAllValues:StringEquals, ForAnyValue:StringEquals, ForAllValues:StringNotEquals,
    // ForAnyValue:StringNotEquals.
    let rows: [(Option<ContextValue>, [bool; 4]); 5] = [
        (None, [true, false, true, false]),
        (many(&[]), [true, false, true, false]),
        (many(&["a"]), [true, true, false, false]),
        (many(&["a", "c"]), [false, true, false, true]),
        (many(&["c", "d"]), [false, false, true, true]),
    ];
    let ops = [
        "ForAllValues:StringEquals",
        "ForAnyValue:StringEquals",
        "ForAllValues:StringNotEquals",
        "ForAnyValue:StringNotEquals",
    ];
    for (request, expected) in rows {
        for (op, want) in ops.iter().zip(expected) {
            check(op, &["a", "b"], request.clone(), want);
        }
    }
}

#[test]
fn set_operators_apply_every_base_operator_per_value() {
    check(
        "ForAllValues:StringLike",
        &["env*", "owner"],
        many(&["env-x", "owner"]),
        true,
    );
    check(
        "ForAllValues:StringLike",
        &["env*"],
        many(&["env-x", "team"]),
        false,
    );
    check(
        "ForAnyValue:StringLike",
        &["env*"],
        many(&["team", "env-x"]),
        true,
    );
    check(
        "ForAllValues:StringNotLike",
        &["key1*"],
        many(&["key2", "key3"]),
        true,
    );
    check(
        "ForAllValues:StringNotLike",
        &["key1*"],
        many(&["key2", "key1a"]),
        false,
    );
    check(
        "ForAnyValue:IpAddress",
        &["10.0.0.0/8"],
        many(&["192.0.2.1", "10.0.0.1"]),
        true,
    );
    check(
        "ForAllValues:NumericLessThan",
        &["5"],
        many(&["1", "4", "6"]),
        false,
    );
    check(
        "ForAllValues:StringEqualsIgnoreCase",
        &["a", "b"],
        many(&["A", "B"]),
        true,
    );
}

#[test]
fn set_operator_on_a_single_valued_key_treats_it_as_a_one_element_set() {
    check("ForAllValues:StringEquals", &["a"], one("a"), true);
    check("ForAllValues:StringEquals", &["a"], one("b"), false);
    check("ForAnyValue:StringEquals", &["a"], one("a"), true);
    check("ForAnyValue:StringEquals", &["a"], one("b"), false);
}

#[test]
fn set_operators_treat_an_empty_string_key_as_a_value() {
    // AWS calls an empty string a "null data set" (§4.5) but does not define what set
    // operators do with it; warden treats it as one empty value.
    check("ForAnyValue:StringEquals", &[""], one(""), true);
    check("ForAllValues:StringEquals", &["a"], one(""), false);
}

#[test]
fn plain_operator_on_a_multi_valued_key_matches_nothing() {
    // §4.6: iam-simulate's reading, positive and negated operators alike.
    check("StringEquals", &["a", "b"], many(&["a", "b"]), false);
    check("StringLike", &["*"], many(&["a", "b"]), false);
    check("StringNotEquals", &["x"], many(&["a", "b"]), false);
    check("StringNotLike", &["x"], many(&["a", "b"]), false);
}

#[test]
fn one_element_list_behaves_as_a_single_value() {
    check("StringEquals", &["a"], many(&["a"]), true);
    check("StringNotEquals", &["a"], many(&["a"]), false);
    check("StringNotEquals", &["a"], many(&["b"]), true);
}

// === Key names (§1.6) ===

#[test]
fn condition_key_names_are_case_insensitive() {
    let ctx = context(&[
        ("aws:ResourceTag/Owner", one("alice")),
        ("AWS:SOURCEIP", one("10.1.1.1")),
    ]);
    assert!(holds(
        "StringEquals",
        "aws:resourcetag/owner",
        &["alice"],
        &ctx
    ));
    assert!(holds(
        "StringEquals",
        "AWS:RESOURCETAG/OWNER",
        &["alice"],
        &ctx
    ));
    assert!(holds(
        "StringEquals",
        "aws:ResourceTag/owner",
        &["alice"],
        &ctx
    ));
    assert!(holds("IpAddress", "aws:SourceIp", &["10.0.0.0/8"], &ctx));
    // The values stay case-sensitive.
    assert!(!holds(
        "StringEquals",
        "aws:ResourceTag/Owner",
        &["Alice"],
        &ctx
    ));
}

// === Operator names (§4.1, §4.2) ===

#[test]
fn operator_names_parse_set_prefix_base_and_if_exists_case_insensitively() {
    let rows = [
        ("StringEquals", None, Base::StringEquals, false, false),
        ("stringnotequals", None, Base::StringEquals, true, false),
        ("NotIpAddress", None, Base::IpAddress, true, false),
        ("ArnNotLikeIfExists", None, Base::Arn, true, true),
        (
            "ForAllValues:StringLike",
            Some(SetOp::ForAllValues),
            Base::StringLike,
            false,
            false,
        ),
        (
            "forAnyValue:NumericLessThanEqualsIfExists",
            Some(SetOp::ForAnyValue),
            Base::Numeric(Cmp::Le),
            false,
            true,
        ),
        ("DateNotEquals", None, Base::Date(Cmp::Eq), true, false),
        ("Null", None, Base::Null, false, false),
    ];
    for (name, set, base, negated, if_exists) in rows {
        assert_eq!(
            Operator::parse(name),
            Ok(Operator {
                set,
                base,
                negated,
                if_exists
            }),
            "{name}"
        );
    }
}

#[test]
fn bad_operator_names_are_refused() {
    for name in [
        "StringEqual",
        "NullIfExists",
        "ForSomeValues:StringEquals",
        "ForAllValues:",
        "StringEqualsIfExistsIfExists",
        "",
    ] {
        assert!(Operator::parse(name).is_err(), "{name}");
    }
}

// === Policy variables in condition values (§5) ===

fn alice() -> Context {
    context(&[
        ("aws:username", one("alice")),
        ("aws:PrincipalTag/team", one("blue")),
        ("aws:PrincipalTag/star", one("*")),
        ("aws:TagKeys", many(&["a", "b"])),
        (
            "aws:PrincipalArn",
            one("arn:aws:iam::111122223333:user/alice"),
        ),
        ("s3:prefix", one("home/alice/docs")),
        ("test:Star", one("a*b")),
        ("test:Team", one("blue")),
        ("test:Arn", one("arn:aws:iam::111122223333:user/alice")),
    ])
}

fn check_with(op: &str, key: &str, values: &[&str], expected: bool) {
    assert_eq!(
        holds(op, key, values, &alice()),
        expected,
        "`{op}` `{key}` {values:?}"
    );
}

#[test]
fn variables_in_condition_values_are_substituted() {
    check_with(
        "StringEquals",
        "test:Team",
        &["${aws:PrincipalTag/team}"],
        true,
    );
    check_with(
        "StringEquals",
        "test:Team",
        &["${AWS:PRINCIPALTAG/TEAM}"],
        true,
    );
    check_with("StringLike", "s3:prefix", &["home/${aws:username}/*"], true);
    check_with(
        "StringLike",
        "s3:prefix",
        &["home/${aws:PrincipalTag/team}/*"],
        false,
    );
    check_with(
        "StringEqualsIgnoreCase",
        "test:Team",
        &["${aws:username}"],
        false,
    );
    check_with(
        "StringNotEquals",
        "test:Team",
        &["${aws:PrincipalTag/team}"],
        false,
    );
    check_with(
        "ArnEquals",
        "test:Arn",
        &["arn:aws:iam::111122223333:user/${aws:username}"],
        true,
    );
    check_with(
        "ArnLike",
        "test:Arn",
        &["arn:aws:iam::*:user/${aws:username}"],
        true,
    );
}

#[test]
fn variable_defaults_apply_when_the_key_is_missing() {
    check_with(
        "StringEquals",
        "test:Team",
        &["${aws:PrincipalTag/missing, 'blue'}"],
        true,
    );
    check_with(
        "StringEquals",
        "test:Team",
        &["${aws:PrincipalTag/missing, 'red'}"],
        false,
    );
    // A present key wins over the default.
    check_with(
        "StringEquals",
        "test:Team",
        &["${aws:PrincipalTag/team, 'red'}"],
        true,
    );
}

#[test]
fn escape_variables_are_literal_characters() {
    // `${*}` is a literal asterisk, so StringLike can match a value containing one.
    check_with("StringLike", "test:Star", &["a${*}b"], true);
    check_with("StringLike", "test:Team", &["b${*}"], false);
    check_with("StringLike", "test:Team", &["b${?}ue"], false);
    check_with("StringEquals", "test:Star", &["a${*}b"], true);
    let ctx = context(&[(KEY, one("cost$?"))]);
    assert!(holds("StringEquals", KEY, &["cost${$}${?}"], &ctx));
    assert!(holds("StringLike", KEY, &["*${$}${?}"], &ctx));
}

#[test]
fn substituted_values_are_literal_not_wildcards() {
    // The tag's value is `*`: substituted, it matches only a literal `*`.
    check_with(
        "StringLike",
        "test:Team",
        &["${aws:PrincipalTag/star}"],
        false,
    );
    check_with(
        "StringLike",
        "test:Star",
        &["a${aws:PrincipalTag/star}b"],
        true,
    );
}

#[test]
fn unresolvable_variable_fails_positive_and_satisfies_negated_operators() {
    for value in ["${aws:PrincipalTag/missing}", "${aws:TagKeys}"] {
        check_with("StringEquals", "test:Team", &[value], false);
        check_with("StringLike", "test:Team", &[value], false);
        check_with("StringEqualsIgnoreCase", "test:Team", &[value], false);
        check_with("StringNotEquals", "test:Team", &[value], true);
        check_with("StringNotLike", "test:Team", &[value], true);
        check_with("ArnLike", "test:Arn", &[value], false);
        check_with("ArnNotLike", "test:Arn", &[value], true);
    }
    // An unresolvable value never blocks another value of the same key.
    check_with(
        "StringEquals",
        "test:Team",
        &["${aws:PrincipalTag/missing}", "blue"],
        true,
    );
    check_with(
        "StringNotEquals",
        "test:Team",
        &["${aws:PrincipalTag/missing}", "blue"],
        false,
    );
}

#[test]
fn variables_are_literal_text_without_version_2012_10_17() {
    let op = Operator::parse("StringEquals").unwrap();
    let cond = Condition::new(op, KEY, &["${aws:username}".to_owned()], false).unwrap();
    let literal = context(&[
        (KEY, one("${aws:username}")),
        ("aws:username", one("alice")),
    ]);
    let substituted = context(&[(KEY, one("alice")), ("aws:username", one("alice"))]);
    assert!(cond.holds(&literal));
    assert!(!cond.holds(&substituted));
}

#[test]
fn variables_are_refused_in_numeric_date_ip_binary_and_null_values() {
    for op in [
        "NumericEquals",
        "DateEquals",
        "IpAddress",
        "BinaryEquals",
        "Null",
    ] {
        let op_parsed = Operator::parse(op).unwrap();
        let err = Condition::new(op_parsed, KEY, &["${aws:EpochTime}".to_owned()], true);
        assert!(err.is_err(), "{op}");
    }
}

// === Request values of the wrong type (§4.2) ===

#[test]
fn request_value_of_the_wrong_type_fails_positive_operators() {
    let rows = [
        ("NumericEquals", "1", "one"),
        ("NumericLessThan", "10", "5 "),
        ("NumericGreaterThan", "10", ""),
        ("DateLessThan", "2026-01-01", "yesterday"),
        ("DateEquals", "2026-01-01", "2026-13-01"),
        ("Bool", "true", "yes"),
        ("Bool", "false", "0"),
        ("BinaryEquals", "aGVsbG8=", "not base64!"),
        ("IpAddress", "0.0.0.0/0", "localhost"),
        ("IpAddress", "0.0.0.0/0", "10.0.0.256"),
        ("ArnLike", "*", "user/alice"),
    ];
    for (op, policy, request) in rows {
        check(op, &[policy], one(request), false);
    }
}

#[test]
fn request_value_of_the_wrong_type_satisfies_negated_operators() {
    // §4.7: a negated operator is the positive comparison negated after the OR, and a value
    // that cannot be compared is "not equal".
    check("NumericNotEquals", &["1"], one("one"), true);
    check("DateNotEquals", &["2026-01-01"], one("soon"), true);
    check("NotIpAddress", &["10.0.0.0/8"], one("localhost"), true);
    check("ArnNotLike", &["arn:*:*:*:*:*"], one("user/alice"), true);
}

// === Policy values compiled once ===

#[test]
fn policy_values_that_are_not_of_the_operator_type_are_refused() {
    let rows = [
        ("NumericEquals", "ten"),
        ("NumericEquals", "1e3"),
        ("NumericEquals", ".5"),
        ("DateEquals", "tomorrow"),
        ("DateEquals", "2026-02-30"),
        ("Bool", "yes"),
        ("BinaryEquals", "not base64!"),
        ("IpAddress", "10.0.0.0/33"),
        ("IpAddress", "10.0.0"),
        ("NotIpAddress", "2001:db8::/129"),
        ("Null", "maybe"),
        ("ArnLike", "role/x"),
    ];
    for (op, value) in rows {
        let parsed = Operator::parse(op).unwrap();
        assert!(
            Condition::new(parsed, KEY, &[value.to_owned()], true).is_err(),
            "`{op}` should refuse `{value}`"
        );
    }
}

//! Tests of listener documents (findings with file, JSON path and line:column), routing
//! (specificity, normalisation refusals, escaping), request-derived context and
//! `context_extensions`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::*;
use crate::bundle::read::BundleFinding;
use crate::policy::Severity;

/// A request without headers.
const NO_HEADERS: &[(&str, &str)] = &[];

const ACCT: &str = "111122223333";
const FILE: &str = "routes/default.json";

/// A small bundle: an organization with one account, the `orders` service, a role.
fn bundle_files(routes: &str) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        f.insert(k.to_owned(), v.to_owned());
    };
    put(
        "organization.json",
        r#"{"id": "o-abcdefghij", "management_account": "999988887777",
 "root": {"id": "r-root", "accounts": [{"id": "999988887777"}, {"id": "111122223333"}]}}"#,
    );
    put(
        "catalog/orders.json",
        r#"{"prefix": "orders", "categories": ["application"],
 "resource_types": {"order": {"arn": "arn:${Partition}:orders:${Region}:${Account}:order/${Id}"}},
 "condition_keys": ["orders:Amount", "orders:Currency"],
 "actions": {"GetOrder": {"access": "Read", "resources": ["order"]},
             "ListOrders": {"access": "List"},
             "CreateOrder": {"access": "Write", "resources": ["order"]},
             "DeleteOrder": {"access": "Write", "resources": ["order"]}}}"#,
    );
    put(
        &format!("accounts/{ACCT}/roles/app.json"),
        r#"{"path": "/svc/", "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"}]}}"#,
    );
    put(FILE, routes);
    f
}

const PRINCIPALS: &str = r#"{"oidc": {"provider": "arn:aws:iam::111122223333:oidc-provider/auth.example.com",
   "role": "arn:aws:iam::111122223333:role/svc/app"}}"#;

/// A listener document with these routes (JSON objects).
fn doc(routes: &[&str]) -> String {
    format!(
        "{{\"account\": \"{ACCT}\", \"region\": \"us-east-1\",\n \"principals\": {PRINCIPALS},\n \"routes\": [\n{}\n]}}",
        routes.join(",\n")
    )
}

fn findings(text: &str) -> Vec<BundleFinding> {
    match crate::bundle::load_files(&bundle_files(text)) {
        Ok(b) => b.warnings,
        Err(e) => e.findings,
    }
}

#[track_caller]
fn listener(text: &str) -> Arc<Listener> {
    match crate::bundle::load_files(&bundle_files(text)) {
        Ok(b) => match b.listeners.get("default") {
            Some(l) => l.clone(),
            None => panic!("no listener"),
        },
        Err(e) => panic!("{e}"),
    }
}

/// The 1-based line and column (in characters) where `marker` first appears in `text`
/// from byte `from` on.
fn position_of(text: &str, from: usize, marker: &str) -> (u32, u32) {
    let at = from
        + text[from..]
            .find(marker)
            .unwrap_or_else(|| panic!("no `{marker}`"));
    let before = &text[..at];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() as u32 + 1;
    (line, col)
}

/// Asserts that `text` yields a finding with this code and JSON path, placed where
/// `marker` starts (within the routes list for a route's finding), in the routes file.
#[track_caller]
fn check_finding(text: &str, code: &str, path: &str, marker: &str) {
    let all = findings(text);
    let Some(f) = all
        .iter()
        .find(|f| f.finding.code == code && f.file == FILE && f.finding.path == path)
    else {
        panic!("no `{code}` at `{path}`; findings: {all:#?}");
    };
    let from = match path.starts_with("$.routes[") {
        true => text.find("\"routes\"").unwrap_or(0),
        false => 0,
    };
    let (line, column) = position_of(text, from, marker);
    assert_eq!(
        (f.finding.pos.line, f.finding.pos.column),
        (line, column),
        "{f}"
    );
}

const GET_ORDER: &str = r#"{"name": "get-order", "methods": ["GET"], "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"}"#;

#[test]
fn a_valid_listener_loads_with_its_settings() {
    let text = format!(
        r#"{{"account": "{ACCT}", "region": "eu-west-1", "unmatched": "allow", "dry_run": true,
 "principals": {{"oidc": {{"provider": "arn:aws:iam::111122223333:oidc-provider/auth.example.com/tenant",
      "role_claim": "https://warden.dev/role", "session_claim": "email", "skew_seconds": 5, "from_metadata": true}},
   "mtls": [{{"spiffe": "spiffe://cluster.local/ns/{{ns}}/sa/{{sa}}", "role": "arn:aws:iam::111122223333:role/svc/{{sa}}", "session": "{{ns}}.{{sa}}"}}],
   "trusted_header": {{"name": "x-principal"}}}},
 "source_ip": {{"trusted_hops": 2}},
 "upstream_headers": {{"principal": "x-who", "decision_id": null}},
 "metadata": ["route", "decision", "dry_run"],
 "routes": [{GET_ORDER}]}}"#
    );
    let l = listener(&text);
    assert!(findings(&text).is_empty(), "{:#?}", findings(&text));
    assert_eq!(l.name(), "default");
    assert_eq!((l.account(), l.region()), (ACCT, "eu-west-1"));
    assert!(l.unmatched_allows());
    assert!(l.dry_run());
    assert_eq!(l.trusted_hops(), 2);
    assert_eq!(
        l.upstream_headers(),
        &UpstreamHeaders {
            principal: Some("x-who".into()),
            decision_id: None
        }
    );
    let m = l.metadata();
    assert_eq!(
        MetadataFields::NAMED
            .iter()
            .filter(|(_, f)| m.has(*f))
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        ["decision", "route", "dry_run"]
    );
    let p = l.principals();
    assert_eq!(
        p.oidc,
        Some(OidcSource {
            provider: "arn:aws:iam::111122223333:oidc-provider/auth.example.com/tenant".into(),
            role: None,
            role_claim: Some("https://warden.dev/role".into()),
            session_claim: "email".into(),
            skew_seconds: 5,
            from_metadata: true,
        })
    );
    assert_eq!(p.mtls.len(), 1);
    assert_eq!(
        p.trusted_header,
        Some(TrustedHeader {
            name: "x-principal".into()
        })
    );
    // Defaults.
    let l = listener(&doc(&[GET_ORDER]));
    assert!(!l.unmatched_allows() && !l.dry_run());
    assert_eq!(l.trusted_hops(), 0);
    assert_eq!(l.upstream_headers(), &UpstreamHeaders::default());
    assert_eq!(l.metadata(), MetadataFields::default());
    for name in ["decision", "reason", "revision", "decision_id"] {
        assert!(
            l.metadata().has(MetadataFields::named(name).unwrap()),
            "{name}"
        );
    }
    for name in [
        "principal",
        "action",
        "resource",
        "listener",
        "route",
        "dry_run",
    ] {
        assert!(
            !l.metadata().has(MetadataFields::named(name).unwrap()),
            "{name}"
        );
    }
    // An empty list: no metadata at all.
    let l = listener(&doc(&[GET_ORDER]).replacen('{', "{\"metadata\": [], ", 1));
    assert!(l.metadata().is_empty());
    let o = l.principals().oidc.as_ref().unwrap();
    assert_eq!((o.session_claim.as_str(), o.skew_seconds), ("sub", 60));
    assert_eq!(l.route_names().collect::<Vec<_>>(), ["get-order"]);
}

#[test]
fn credential_sources_load_with_their_settings() {
    let text = doc(&[GET_ORDER]).replacen(
        PRINCIPALS,
        r#"{"sigv4": {"presigned": true}, "session_token_header": {"name": "x-warden-session-token"},
   "trusted_header": {"name": "x-principal"}}"#,
        1,
    );
    assert!(findings(&text).is_empty(), "{:#?}", findings(&text));
    let l = listener(&text);
    let p = l.principals();
    assert_eq!(p.sigv4, Some(Sigv4Source { presigned: true }));
    assert_eq!(
        p.session_token,
        Some(SessionTokenHeader {
            name: "x-warden-session-token".into()
        })
    );
    assert!(p.oidc.is_none() && p.mtls.is_empty());
    // `sigv4` alone is a principal source; presigned URLs are off unless asked for.
    let text = doc(&[GET_ORDER]).replacen(PRINCIPALS, r#"{"sigv4": {}}"#, 1);
    assert!(findings(&text).is_empty(), "{:#?}", findings(&text));
    let l = listener(&text);
    assert_eq!(l.principals().sigv4, Some(Sigv4Source { presigned: false }));
    assert!(l.principals().session_token.is_none());
}

#[test]
fn a_bad_credential_source_is_a_located_finding() {
    let with = |principals: &str| doc(&[GET_ORDER]).replacen(PRINCIPALS, principals, 1);
    let cases = [
        (
            with(r#"{"sigv4": {"regions": ["us-east-1"]}}"#),
            "unknown-key",
            "$.principals.sigv4.regions",
            "\"regions\"",
        ),
        (
            with(r#"{"sigv4": {"presigned": "yes"}}"#),
            "wrong-type",
            "$.principals.sigv4.presigned",
            "\"yes\"",
        ),
        (
            with(r#"{"sigv4": true}"#),
            "wrong-type",
            "$.principals.sigv4",
            "true}",
        ),
        (
            with(r#"{"session_token_header": {"name": "X-Token"}}"#),
            "invalid-header-name",
            "$.principals.session_token_header.name",
            "\"X-Token\"",
        ),
        (
            with(r#"{"session_token_header": {"name": "x token"}}"#),
            "invalid-header-name",
            "$.principals.session_token_header.name",
            "\"x token\"",
        ),
        (
            with(r#"{"session_token_header": {"header": "x-t"}}"#),
            "unknown-key",
            "$.principals.session_token_header.header",
            "\"header\"",
        ),
        (
            with(r#"{"session_token_header": {}}"#),
            "missing-key",
            "$.principals.session_token_header",
            "{}}",
        ),
        (
            with(r#"{"session_token_header": "x-warden-session-token"}"#),
            "wrong-type",
            "$.principals.session_token_header",
            "\"x-warden-session-token\"",
        ),
        (
            with(r#"{"session_token_header": {"name": "x-amz-security-token"}}"#),
            "reserved-header",
            "$.principals.session_token_header.name",
            "\"x-amz-security-token\"",
        ),
        (
            with(r#"{"session_token_header": {"name": "authorization"}}"#),
            "reserved-header",
            "$.principals.session_token_header.name",
            "\"authorization\"",
        ),
        (
            with(r#"{"trusted_header": {"name": "x-p"}, "session_token_header": {"name": "x-p"}}"#),
            "duplicate-header",
            "$.principals.session_token_header.name",
            "\"x-p\"}}",
        ),
        (
            with(r#"{"sigv4s": {}}"#),
            "unknown-key",
            "$.principals.sigv4s",
            "\"sigv4s\"",
        ),
    ];
    for (text, code, path, marker) in cases {
        check_finding(&text, code, path, marker);
    }
}

/// One bad route each: (route, code, JSON path, where the finding points).
#[test]
fn a_bad_route_is_a_located_finding() {
    let r = |fields: &str| {
        format!(
            r#"{{"name": "r", "path": "/orders/{{id}}", "action": "orders:GetOrder", {fields}}}"#
        )
    };
    let arn = r#""resource": "arn:aws:orders:{region}:{account}:order/{id}""#;
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            r(r#""resource": "arn:aws:orders:{region}:{account}:order/{oid}""#),
            "unknown-placeholder",
            "$.routes[0].resource",
            "\"arn:aws",
        ),
        (
            r(r#""resource": "arn:aws:orders:{id}:{account}:order/x""#),
            "parameter-in-arn-head",
            "$.routes[0].resource",
            "\"arn:aws",
        ),
        (
            r(r#""resource": "arn:aws:orders:{region}:{account}:order/*""#),
            "wildcard-in-template",
            "$.routes[0].resource",
            "\"arn:aws",
        ),
        (
            r(r#""resource": "*""#),
            "resource-needs-arn",
            "$.routes[0].resource",
            "\"*\"",
        ),
        (
            r(r#""resource": "orders/{id}""#),
            "invalid-resource-template",
            "$.routes[0].resource",
            "\"orders/",
        ),
        (
            r(r#""resource": "arn:aws-cn:orders:{region}:{account}:order/{id}""#),
            "invalid-resource-template",
            "$.routes[0].resource",
            "\"arn:aws",
        ),
        (
            r(r#""resource": "arn:aws:orders:{region}:{account}:order/{id""#),
            "invalid-resource-template",
            "$.routes[0].resource",
            "\"arn:aws",
        ),
        (
            r#"{"name": "r", "path": "/orders", "action": "orders:ListOrders", "resource": "arn:aws:orders:{region}:{account}:order/x"}"#.into(),
            "resource-must-be-star",
            "$.routes[0].resource",
            "\"arn:aws",
        ),
        (
            r#"{"name": "r", "path": "/orders", "action": "orders:GetOrdr", "resource": "*"}"#
                .into(),
            "unknown-action",
            "$.routes[0].action",
            "\"orders:GetOrdr",
        ),
        (
            r#"{"name": "r", "path": "/orders", "action": "orders:*", "resource": "*"}"#.into(),
            "unknown-action",
            "$.routes[0].action",
            "\"orders:*",
        ),
        (
            r#"{"name": "r", "path": "/orders/{id}/{id}", "action": "orders:GetOrder", "resource": "*"}"#.into(),
            "duplicate-parameter",
            "$.routes[0].path",
            "\"/orders",
        ),
        (
            r#"{"name": "r", "path": "/orders/{rest...}/x", "action": "orders:GetOrder", "resource": "*"}"#.into(),
            "invalid-path-template",
            "$.routes[0].path",
            "\"/orders",
        ),
        (
            r#"{"name": "r", "path": "/orders/x{id}", "action": "orders:GetOrder", "resource": "*"}"#.into(),
            "invalid-path-template",
            "$.routes[0].path",
            "\"/orders",
        ),
        (
            r#"{"name": "r", "path": "/orders/", "action": "orders:GetOrder", "resource": "*"}"#
                .into(),
            "invalid-path-template",
            "$.routes[0].path",
            "\"/orders",
        ),
        (
            r#"{"name": "r", "path": "orders", "action": "orders:GetOrder", "resource": "*"}"#
                .into(),
            "invalid-path-template",
            "$.routes[0].path",
            "\"orders\"",
        ),
        (
            r#"{"name": "r", "path": "/a/../b", "action": "orders:GetOrder", "resource": "*"}"#
                .into(),
            "invalid-path-template",
            "$.routes[0].path",
            "\"/a",
        ),
        (
            r#"{"name": "r", "path": "/{account}", "action": "orders:GetOrder", "resource": "*"}"#
                .into(),
            "reserved-parameter",
            "$.routes[0].path",
            "\"/{account}",
        ),
        (
            format!(
                r#"{{"name": "r", "path": "/{}", "action": "orders:ListOrders", "resource": "*"}}"#,
                "a".repeat(1100)
            ),
            "template-too-long",
            "$.routes[0].path",
            "\"/aaa",
        ),
        (
            r(&format!(r#"{arn}, "host": "api.example.com:8080""#)),
            "invalid-host",
            "$.routes[0].host",
            "\"api.example",
        ),
        (
            r(&format!(r#"{arn}, "methods": ["get"]"#)),
            "invalid-method",
            "$.routes[0].methods[0]",
            "\"get\"",
        ),
        (
            r(&format!(r#"{arn}, "methods": ["GET", "GET"]"#)),
            "duplicate-method",
            "$.routes[0].methods[1]",
            "\"GET\"]",
        ),
        (
            r(&format!(r#"{arn}, "methods": []"#)),
            "invalid-method",
            "$.routes[0].methods",
            "[]",
        ),
        (
            r(&format!(r#"{arn}, "dry_run": "yes""#)),
            "wrong-type",
            "$.routes[0].dry_run",
            "\"yes\"",
        ),
        (
            r(&format!(r#"{arn}, "colour": "red""#)),
            "unknown-key",
            "$.routes[0].colour",
            "\"colour\"",
        ),
        (
            r(&format!(r#"{arn}, "name": "again""#)),
            "duplicate-key",
            "$.routes[0].name",
            "\"name\": \"again",
        ),
        (
            r(&format!(r#"{arn}, "role": "arn:aws:iam::111122223333:role/app""#)),
            "unknown-role",
            "$.routes[0].role",
            "\"arn:aws:iam::111122223333:role/app\"",
        ),
        (
            r(&format!(r#"{arn}, "role": "arn:aws:iam::111122223333:user/app""#)),
            "invalid-role-arn",
            "$.routes[0].role",
            "\"arn:aws:iam::111122223333:user",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"aws:SourceIp": {{"header": "x-forwarded-for"}}}}"#
            )),
            "server-filled-key",
            "$.routes[0].context.aws:SourceIp",
            "\"aws:SourceIp",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"aws:userAgent": {{"header": "x-ua"}}}}"#
            )),
            "server-filled-key",
            "$.routes[0].context.aws:userAgent",
            "\"aws:userAgent",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"aws:PrincipalTag/team": {{"header": "x-team"}}}}"#
            )),
            "server-owned-key",
            "$.routes[0].context.aws:PrincipalTag/team",
            "\"aws:PrincipalTag",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"aws:MultiFactorAuthPresent": {{"query": "mfa"}}}}"#
            )),
            "server-owned-key",
            "$.routes[0].context.aws:MultiFactorAuthPresent",
            "\"aws:MultiFactorAuthPresent",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"orders:Amount": {{"header": "authorization"}}}}"#
            )),
            "secret-header",
            "$.routes[0].context.orders:Amount.header",
            "\"authorization",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"orders:Amount": {{"header": "x-a", "query": "a"}}}}"#
            )),
            "invalid-context-source",
            "$.routes[0].context.orders:Amount",
            "{\"header\": \"x-a\"",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"orders:Amount": {{"header": "X-Amount"}}}}"#
            )),
            "invalid-header-name",
            "$.routes[0].context.orders:Amount.header",
            "\"X-Amount",
        ),
        (
            r(&format!(
                r#"{arn}, "context": {{"orders:Amount": {{"query": "a"}}, "ORDERS:amount": {{"query": "b"}}}}"#
            )),
            "duplicate-key",
            "$.routes[0].context.ORDERS:amount",
            "\"ORDERS:amount",
        ),
        (
            r(&format!(r#"{arn}, "context": {{"amount": {{"query": "a"}}}}"#)),
            "invalid-key",
            "$.routes[0].context.amount",
            "\"amount\"",
        ),
        (
            r(&format!(r#"{arn}, "context": {{"orders:Colour": {{"query": "c"}}}}"#)),
            "unknown-condition-key",
            "$.routes[0].context.orders:Colour",
            "\"orders:Colour",
        ),
        (
            r#"{"name": "r", "path": "/orders"}"#.into(),
            "missing-key",
            "$.routes[0]",
            "{\"name\": \"r\"",
        ),
    ];
    for (route, code, path, marker) in cases {
        check_finding(&doc(&[&route]), code, path, marker);
    }
}

/// One bad top-level field each: (document, code, JSON path, where the finding points).
#[test]
fn a_bad_listener_field_is_a_located_finding() {
    let with = |from: &str, to: &str| {
        let d = doc(&[GET_ORDER]);
        assert!(d.contains(from), "{from}");
        d.replacen(from, to, 1)
    };
    let cases = [
        (
            with("\"111122223333\"", "\"444455556666\""),
            "unknown-account",
            "$.account",
            "\"444455556666\"",
        ),
        (
            with("\"111122223333\"", "\"12345\""),
            "invalid-account",
            "$.account",
            "\"12345\"",
        ),
        (
            with("\"us-east-1\"", "\"US East\""),
            "invalid-region",
            "$.region",
            "\"US East\"",
        ),
        (
            with("\"region\"", "\"unmatched\": \"maybe\", \"region\""),
            "invalid-value",
            "$.unmatched",
            "\"maybe\"",
        ),
        (
            with(PRINCIPALS, "{}"),
            "no-principal-source",
            "$.principals",
            "{}",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"oidc": {"provider": "arn:aws:iam::111122223333:saml-provider/x", "role": "arn:aws:iam::111122223333:role/svc/app"}}"#,
            ),
            "invalid-provider-arn",
            "$.principals.oidc.provider",
            "\"arn:aws:iam::111122223333:saml",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"oidc": {"provider": "arn:aws:iam::111122223333:oidc-provider/x"}}"#,
            ),
            "missing-role",
            "$.principals.oidc",
            "{\"provider\"",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"oidc": {"provider": "arn:aws:iam::111122223333:oidc-provider/x", "role": "arn:aws:iam::111122223333:role/app"}}"#,
            ),
            "unknown-role",
            "$.principals.oidc.role",
            "\"arn:aws:iam::111122223333:role/app\"",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"oidc": {"provider": "arn:aws:iam::111122223333:oidc-provider/x", "role_claim": "r", "skew_seconds": 3600}}"#,
            ),
            "invalid-number",
            "$.principals.oidc.skew_seconds",
            "3600",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"mtls": [{"spiffe": "spiffe://td/ns/{ns}", "role": "arn:aws:iam::111122223333:role/{sa}", "session": "{ns}"}]}"#,
            ),
            "unknown-placeholder",
            "$.principals.mtls[0].role",
            "\"arn:aws:iam::111122223333:role/{sa}",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"mtls": [{"spiffe": "spiffe://td/ns-{ns}", "role": "arn:aws:iam::111122223333:role/svc/app", "session": "s1"}]}"#,
            ),
            "invalid-spiffe-pattern",
            "$.principals.mtls[0].spiffe",
            "\"spiffe://",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"mtls": [{"spiffe": "spiffe://td/sa/{sa}", "role": "arn:aws:iam::111122223333:role/nope", "session": "s-{sa}"}]}"#,
            ),
            "unknown-role",
            "$.principals.mtls[0].role",
            "\"arn:aws:iam::111122223333:role/nope",
        ),
        (
            with(
                PRINCIPALS,
                r#"{"mtls": [{"spiffe": "spiffe://td/sa/{sa}", "role": "arn:aws:iam::111122223333:role/{sa}", "session": "a b {sa}"}]}"#,
            ),
            "invalid-session-name",
            "$.principals.mtls[0].session",
            "\"a b",
        ),
        (
            with(PRINCIPALS, r#"{"trusted_header": {"name": "X-Who"}}"#),
            "invalid-header-name",
            "$.principals.trusted_header.name",
            "\"X-Who",
        ),
        (
            with(PRINCIPALS, r#"{"trusted_header": {}}"#),
            "missing-key",
            "$.principals.trusted_header",
            "{}}",
        ),
        (
            with(PRINCIPALS, r#"{"trusted_header": {"name": "x-p"}}"#).replacen(
                "\"get-order\", ",
                "\"get-order\", \"role\": \"arn:aws:iam::111122223333:role/svc/app\", ",
                1,
            ),
            "role-without-oidc",
            "$.routes[0].role",
            "\"arn:aws:iam::111122223333:role/svc/app\"",
        ),
        (
            with(
                "\"region\"",
                "\"source_ip\": {\"trusted_hops\": 99}, \"region\"",
            ),
            "invalid-number",
            "$.source_ip.trusted_hops",
            "99",
        ),
        (
            with(
                "\"region\"",
                "\"upstream_headers\": {\"principal\": \"X\"}, \"region\"",
            ),
            "invalid-header-name",
            "$.upstream_headers.principal",
            "\"X\"",
        ),
        (
            with(
                "\"region\"",
                "\"metadata\": [\"decision\", \"who\"], \"region\"",
            ),
            "unknown-field",
            "$.metadata[1]",
            "\"who\"",
        ),
        (
            with(
                "\"region\"",
                "\"metadata\": [\"route\", \"route\"], \"region\"",
            ),
            "duplicate-field",
            "$.metadata[1]",
            "\"route\"], \"region",
        ),
        (
            with(
                "\"region\"",
                &format!("\"metadata\": [{}], \"region\"", ["\"x\""; 11].join(", ")),
            ),
            "too-many-fields",
            "$.metadata",
            "[\"x\", \"x\"",
        ),
        (
            with("\"region\"", "\"metadata\": [7], \"region\""),
            "wrong-type",
            "$.metadata[0]",
            "7]",
        ),
        (
            with("\"region\"", "\"metadata\": \"all\", \"region\""),
            "wrong-type",
            "$.metadata",
            "\"all\", \"region",
        ),
        (
            with("\"region\"", "\"routez\": [], \"region\""),
            "unknown-key",
            "$.routez",
            "\"routez\"",
        ),
        (
            with("\"region\"", "\"account\": \"111122223333\", \"region\""),
            "duplicate-key",
            "$.account",
            "\"account\": \"111122223333\", \"region",
        ),
        (
            with(
                "\"region\": \"us-east-1\",",
                "\"region\": \"us-east-1\", \"principals\": {},",
            ),
            "duplicate-key",
            "$.principals",
            "\"principals\": {\"oidc\"",
        ),
        (
            format!("{{\"account\": \"{ACCT}\", \"principals\": {PRINCIPALS}}}"),
            "missing-key",
            "$",
            "{\"account\"",
        ),
    ];
    for (text, code, path, marker) in cases {
        check_finding(&text, code, path, marker);
    }
}

#[test]
fn duplicate_and_ambiguous_routes_are_refused() {
    let get_a = r#"{"name": "a", "methods": ["GET", "PUT"], "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"}"#;
    // Same shape (parameter names do not matter), same host, GET in common.
    let get_b = r#"{"name": "b", "methods": ["GET"], "path": "/orders/{oid}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{oid}"}"#;
    let text = doc(&[get_a, get_b]);
    check_finding(&text, "ambiguous-routes", "$.routes[1]", "{\"name\": \"b\"");
    // Both without methods.
    let any_a = r#"{"name": "a", "path": "/x", "action": "orders:ListOrders", "resource": "*"}"#;
    let any_b = r#"{"name": "b", "path": "/x", "action": "orders:ListOrders", "resource": "*"}"#;
    check_finding(
        &doc(&[any_a, any_b]),
        "ambiguous-routes",
        "$.routes[1]",
        "{\"name\": \"b\"",
    );
    // The same name twice.
    let dup = r#"{"name": "a", "path": "/y", "action": "orders:ListOrders", "resource": "*"}"#;
    check_finding(
        &doc(&[any_a, dup]),
        "duplicate-route",
        "$.routes[1].name",
        "{\"name\": \"a\", \"path\": \"/y\"",
    );
    // These do not tie: other methods, another host, a method list against any.
    for other in [
        r#"{"name": "b", "methods": ["DELETE"], "path": "/orders/{oid}", "action": "orders:DeleteOrder", "resource": "arn:aws:orders:{region}:{account}:order/{oid}"}"#,
        r#"{"name": "b", "host": "api.example.com", "methods": ["GET"], "path": "/orders/{oid}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{oid}"}"#,
        r#"{"name": "b", "path": "/orders/{oid}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{oid}"}"#,
    ] {
        let all = findings(&doc(&[get_a, other]));
        assert!(all.is_empty(), "{all:#?}");
    }
}

#[test]
fn too_many_routes_are_refused() {
    let routes: Vec<String> = (0..=load::MAX_ROUTES)
        .map(|i| {
            format!(
                r#"{{"name": "r{i}", "path": "/r{i}", "action": "orders:ListOrders", "resource": "*"}}"#
            )
        })
        .collect();
    let refs: Vec<&str> = routes.iter().map(String::as_str).collect();
    check_finding(&doc(&refs), "too-many-routes", "$.routes", "[\n{");
    // The limit itself is fine.
    let refs = refs.get(1..).unwrap();
    assert_eq!(listener(&doc(refs)).route_names().count(), load::MAX_ROUTES);
}

/// The routes the matching tests use, each distinct in one respect.
const ROUTES: &[&str] = &[
    r#"{"name": "get-order", "methods": ["GET"], "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"}"#,
    r#"{"name": "special", "methods": ["GET"], "path": "/orders/special", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/the-special-one"}"#,
    r#"{"name": "list", "methods": ["GET"], "path": "/orders", "action": "orders:ListOrders", "resource": "*"}"#,
    r#"{"name": "delete", "methods": ["DELETE"], "path": "/orders/{id}", "action": "orders:DeleteOrder", "resource": "arn:aws:orders:{region}:{account}:order/{id}"}"#,
    r#"{"name": "files", "path": "/files/{rest...}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/files/{rest}"}"#,
    r#"{"name": "readme", "path": "/files/{dir}/README", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/readme/{dir}"}"#,
    r#"{"name": "api-exact", "host": "api.example.com", "methods": ["GET"], "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/exact/{id}"}"#,
    r#"{"name": "api-wild", "host": "*.example.com", "methods": ["GET"], "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/wild/{id}"}"#,
    r#"{"name": "api-wilder", "host": "*.eu.example.com", "methods": ["GET"], "path": "/orders/{id}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/wilder/{id}"}"#,
    r#"{"name": "root", "path": "/", "action": "orders:ListOrders", "resource": "*"}"#,
    r#"{"name": "two", "methods": ["GET"], "path": "/a/{x}/{y}", "action": "orders:GetOrder", "resource": "arn:aws:orders:{region}:{account}:order/{y}/{x}"}"#,
    r#"{"name": "anywhere", "path": "/{anything...}", "action": "orders:ListOrders", "resource": "*"}"#,
    r#"{"name": "cross", "methods": ["POST"], "path": "/shared/{id}", "action": "orders:CreateOrder", "resource": "arn:aws:orders:us-west-2:999988887777:order/shared/{id}"}"#,
];

fn no_extensions() -> HashMap<String, String> {
    HashMap::new()
}

/// What routing a request gave: `route resource`, `unmatched`, or the refusal's code.
fn outcome(l: &Listener, method: &str, host: &str, path: &str) -> String {
    let ext = no_extensions();
    let req = HttpRequest {
        host,
        method,
        path,
        headers: NO_HEADERS,
        extensions: &ext,
    };
    match l.route(&req) {
        Ok(Some(r)) => format!("{} {}", r.route, r.resource),
        Ok(None) => "unmatched".to_owned(),
        Err(e) => e.code.to_owned(),
    }
}

const O: &str = "arn:aws:orders:us-east-1:111122223333:order/";

#[test]
fn the_most_specific_route_wins_whatever_the_order() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("GET", "h", "/orders/42", "get-order {O}42"),
        ("GET", "h", "/orders/special", "special {O}the-special-one"),
        ("GET", "h", "/orders", "list *"),
        ("GET", "h", "/orders/", "list *"),
        ("GET", "h", "/orders/42/", "get-order {O}42"),
        ("DELETE", "h", "/orders/42", "delete {O}42"),
        // No route for the method at this path: the catch-all takes it.
        ("PUT", "h", "/orders/42", "anywhere *"),
        ("GET", "h", "/files/a", "files {O}files/a"),
        ("GET", "h", "/files/a/b/c.txt", "files {O}files/a/b/c.txt"),
        ("GET", "h", "/files/docs/README", "readme {O}readme/docs"),
        // `{rest...}` takes one segment or more: `/files` alone is the catch-all's.
        ("GET", "h", "/files", "anywhere *"),
        ("GET", "h", "/files/", "anywhere *"),
        // Hosts: exact, then the longest suffix, then any; ports and case ignored.
        (
            "GET",
            "api.example.com",
            "/orders/1",
            "api-exact {O}exact/1",
        ),
        (
            "GET",
            "API.Example.COM:8443",
            "/orders/1",
            "api-exact {O}exact/1",
        ),
        (
            "GET",
            "api.example.com.",
            "/orders/1",
            "api-exact {O}exact/1",
        ),
        ("GET", "x.example.com", "/orders/1", "api-wild {O}wild/1"),
        ("GET", "a.b.example.com", "/orders/1", "api-wild {O}wild/1"),
        (
            "GET",
            "x.eu.example.com:80",
            "/orders/1",
            "api-wilder {O}wilder/1",
        ),
        ("GET", "example.com", "/orders/1", "get-order {O}1"),
        ("GET", "badexample.com", "/orders/1", "get-order {O}1"),
        ("GET", "[::1]:8080", "/orders/1", "get-order {O}1"),
        ("GET", "h", "/", "root *"),
        ("GET", "h", "/a/1/2", "two {O}2/1"),
        ("GET", "h", "/a/1", "anywhere *"),
        (
            "POST",
            "h",
            "/shared/9",
            "cross arn:aws:orders:us-west-2:999988887777:order/shared/9",
        ),
        // Decoded before entering a template or meeting a literal.
        ("GET", "h", "/orders/a%20b", "get-order {O}a b"),
        (
            "GET",
            "h",
            "/orders/%73pecial",
            "special {O}the-special-one",
        ),
        ("GET", "h", "/orders/caf%C3%A9", "get-order {O}café"),
        ("GET", "h", "/orders/42?x=1&y=%2F", "get-order {O}42"),
        // The method is case-sensitive, as HTTP's is.
        ("get", "h", "/orders/42", "anywhere *"),
    ];
    let forward = listener(&doc(ROUTES));
    let mut reversed_routes = ROUTES.to_vec();
    reversed_routes.reverse();
    let reversed = listener(&doc(&reversed_routes));
    for (method, host, path, want) in cases {
        let want = want.replace("{O}", O);
        for l in [&forward, &reversed] {
            assert_eq!(
                outcome(l, method, host, path),
                want,
                "{method} {host} {path}"
            );
        }
    }
    // Without the catch-all, what matches nothing is unmatched.
    let l = listener(&doc(ROUTES.get(..ROUTES.len() - 2).unwrap()));
    for (method, path) in [
        ("PUT", "/orders/42"),
        ("GET", "/nothing"),
        ("GET", "/files"),
    ] {
        assert_eq!(
            outcome(&l, method, "h", path),
            "unmatched",
            "{method} {path}"
        );
    }
}

#[test]
fn paths_warden_cannot_decide_are_refused() {
    let l = listener(&doc(ROUTES));
    let long = format!("/orders/{}", "a".repeat(MAX_PATH_BYTES));
    let deep = "/x".repeat(MAX_SEGMENTS + 1);
    let cases: &[(&str, &str)] = &[
        ("orders/1", "path_not_absolute"),
        ("", "path_not_absolute"),
        ("*", "path_not_absolute"),
        ("http://h/orders/1", "path_not_absolute"),
        ("/orders/a%2Fb", "encoded_slash"),
        ("/orders/a%2fb", "encoded_slash"),
        ("/orders/a%5Cb", "encoded_slash"),
        ("/orders/a%5cb", "encoded_slash"),
        ("/orders/a\\b", "backslash"),
        ("/orders/../admin", "dot_segment"),
        ("/orders/./1", "dot_segment"),
        ("/orders/..", "dot_segment"),
        ("/orders/%2e%2E", "dot_segment"),
        ("/orders/%2e", "dot_segment"),
        // Servlet containers drop `;` parameters: decided on `secret;x`, served as `secret`.
        ("/orders/secret;x", "path_parameter"),
        ("/orders/secret;jsessionid=1", "path_parameter"),
        ("/orders/secret%3Bx", "path_parameter"),
        ("/orders/secret%3bx", "path_parameter"),
        ("/orders;x/42", "path_parameter"),
        ("/orders/..;/admin", "dot_segment"),
        ("/orders//1", "empty_segment"),
        ("//orders", "empty_segment"),
        ("/orders//", "empty_segment"),
        ("/orders/a\u{0}b", "control_character"),
        ("/orders/a\tb", "control_character"),
        ("/orders/a%00b", "control_character"),
        ("/orders/a%7Fb", "control_character"),
        ("/orders/a%0ab", "control_character"),
        ("/orders/a%zzb", "invalid_percent_encoding"),
        ("/orders/a%4", "invalid_percent_encoding"),
        ("/orders/a%", "invalid_percent_encoding"),
        ("/orders/%C3", "invalid_percent_encoding"),
        ("/orders/%FF", "invalid_percent_encoding"),
        ("/orders/a b", "invalid_character"),
        ("/orders/a#b", "invalid_character"),
        ("/orders/café", "invalid_character"),
        (&long, "path_too_long"),
        (&deep, "path_too_long"),
        // A value that would read as a wildcard or a policy variable in the ARN.
        ("/orders/*", "wildcard_in_value"),
        ("/orders/a%2Ab", "wildcard_in_value"),
        ("/orders/a%3Fb", "wildcard_in_value"),
        ("/files/a/*/b", "wildcard_in_value"),
        ("/orders/$%7Baws:username%7D", "variable_in_value"),
        ("/orders/a{b", "variable_in_value"),
        ("/orders/a}b", "variable_in_value"),
        ("/orders/$x", "variable_in_value"),
    ];
    for (path, code) in cases {
        assert_eq!(outcome(&l, "GET", "h", path), *code, "{path:?}");
    }
    // A parameter that does not reach the resource is not checked: `*` in a segment only
    // matters where it lands in an ARN.
    assert_eq!(outcome(&l, "GET", "h", "/nothing/*"), "anywhere *");
    // A rendered resource over the request limit.
    let big = format!("/files/{}", vec!["a".repeat(200); 12].join("/"));
    assert_eq!(outcome(&l, "GET", "h", &big), "value_too_long");
}

/// Headers of a request, or `context_extensions` pairs.
type Headers<'a> = Vec<(&'a str, &'a str)>;
type Pairs<'a> = [(&'a str, &'a str)];
type Entries<'a> = Vec<(&'a str, ContextValue)>;

#[test]
fn context_comes_from_headers_and_query_parameters() {
    let route = r#"{"name": "create", "methods": ["POST"], "path": "/orders/{id}", "action": "orders:CreateOrder",
        "resource": "arn:aws:orders:{region}:{account}:order/{id}",
        "context": {"aws:RequestTag/team": {"header": "x-team"}, "orders:Currency": {"query": "currency"},
                    "orders:Amount": {"claim": "amount"}, "aws:TagKeys": {"query": "tag", "list": true},
                    "aws:RequestTag/labels": {"header": "x-labels", "list": true}},
        "dry_run": true, "role": "arn:aws:iam::111122223333:role/svc/app"}"#;
    let l = listener(&doc(&[route, GET_ORDER]));
    let ext = no_extensions();
    let run = |path: &str, headers: &[(&str, &str)]| {
        let req = HttpRequest {
            host: "h",
            method: "POST",
            path,
            headers,
            extensions: &ext,
        };
        l.route(&req)
    };
    let single = |s: &str| ContextValue::Single(s.to_owned());
    let multi = |v: &[&str]| ContextValue::Multi(v.iter().map(|s| (*s).to_owned()).collect());
    let cases: Vec<(&str, Headers, Entries)> = vec![
        (
            "/orders/1?currency=EUR&tag=a&tag=b+c&other=x",
            vec![("x-team", "blue"), ("x-other", "y"), ("x-labels", "a, b")],
            vec![
                ("aws:requesttag/labels", multi(&["a", "b"])),
                ("aws:requesttag/team", single("blue")),
                ("aws:tagkeys", multi(&["a", "b c"])),
                ("orders:currency", single("EUR")),
            ],
        ),
        (
            "/orders/1?currency=%E2%82%AC",
            vec![("x-labels", "a"), ("x-labels", "b,,c,")],
            vec![
                ("aws:requesttag/labels", multi(&["a", "b", "c"])),
                ("orders:currency", single("€")),
            ],
        ),
        // Absent header and parameter: absent keys; an empty value is a value.
        ("/orders/1", vec![], vec![]),
        (
            "/orders/1?currency=&tag",
            vec![],
            // A list is a list even of one value.
            vec![
                ("aws:tagkeys", multi(&[""])),
                ("orders:currency", single("")),
            ],
        ),
    ];
    for (path, headers, want) in cases {
        let r = run(path, &headers).unwrap().unwrap();
        let got: Vec<(&str, ContextValue)> =
            r.context.iter().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(got, want, "{path}");
        assert_eq!(
            r.claim_keys,
            [("orders:Amount".to_owned(), "amount".to_owned())]
        );
        assert_eq!(r.role, Some("arn:aws:iam::111122223333:role/svc/app"));
        assert!(r.dry_run);
        assert_eq!(r.action, "orders:CreateOrder");
    }
    // A route without its own `dry_run` or `role` takes the listener's.
    let r = l
        .route(&HttpRequest {
            host: "h",
            method: "GET",
            path: "/orders/1",
            headers: NO_HEADERS,
            extensions: &ext,
        })
        .unwrap()
        .unwrap();
    assert!(!r.dry_run && r.role.is_none() && r.context.is_empty());
    // Values warden refuses.
    let long = "v".repeat(MAX_VALUE_BYTES + 1);
    let many: Vec<(&str, &str)> = (0..=MAX_VALUES).map(|_| ("x-labels", "a")).collect();
    let many_query = format!("/orders/1?{}", vec!["tag=a"; MAX_VALUES + 1].join("&"));
    let refusals: Vec<(String, Headers, &str)> = vec![
        (
            "/orders/1?currency=%zz".into(),
            vec![],
            "invalid_percent_encoding",
        ),
        (
            "/orders/1?currency=a%00".into(),
            vec![],
            "control_character",
        ),
        (
            format!("/orders/1?currency={long}"),
            vec![],
            "value_too_long",
        ),
        (
            "/orders/1".into(),
            vec![("x-team", long.as_str())],
            "value_too_long",
        ),
        ("/orders/1".into(), many, "too_many_values"),
        (many_query, vec![], "too_many_values"),
        // One value for a key that is not a list: a repeated parameter or header (which
        // Envoy joins with `,`) would let the upstream read one value and the policy
        // another.
        (
            "/orders/1?currency=EUR&cur%72ency=USD".into(),
            vec![],
            "ambiguous_value",
        ),
        (
            "/orders/1".into(),
            vec![("x-team", "a"), ("x-team", "b")],
            "ambiguous_value",
        ),
        (
            "/orders/1".into(),
            vec![("x-team", "a,b")],
            "ambiguous_value",
        ),
    ];
    for (path, headers, code) in refusals {
        assert_eq!(run(&path, &headers).unwrap_err().code, code, "{path}");
    }
}

#[test]
fn context_extensions_name_the_question() {
    let text = doc(&[GET_ORDER]).replacen("\"region\"", "\"dry_run\": true, \"region\"", 1);
    let l = listener(&text);
    let ask = |pairs: &[(&str, &str)], path: &str| {
        let ext: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let req = HttpRequest {
            host: "h",
            method: "GET",
            path,
            headers: NO_HEADERS,
            extensions: &ext,
        };
        match l.route(&req) {
            Ok(Some(r)) => format!("{} {} {} {}", r.route, r.action, r.resource, r.dry_run),
            Ok(None) => "unmatched".into(),
            Err(e) => e.code.into(),
        }
    };
    let cases: &[(&Pairs, &str, &str)] = &[
        (
            &[
                ("warden.action", "orders:getorder"),
                (
                    "warden.resource",
                    "arn:aws:orders:{region}:{account}:order/x",
                ),
            ],
            "/anything",
            "context_extensions orders:GetOrder arn:aws:orders:us-east-1:111122223333:order/x true",
        ),
        (
            &[
                ("warden.action", "orders:ListOrders"),
                ("warden.dry_run", "false"),
            ],
            "/orders/1",
            "context_extensions orders:ListOrders * false",
        ),
        (
            &[
                ("warden.action", "orders:ListOrders"),
                ("warden.resource", "*"),
            ],
            "/",
            "context_extensions orders:ListOrders * true",
        ),
        // Envoy's own keys do not matter; the routes list decides.
        (
            &[("warden.listener", "default"), ("route", "x")],
            "/orders/1",
            "get-order orders:GetOrder arn:aws:orders:us-east-1:111122223333:order/1 true",
        ),
        (&[("warden.action", "orders:Nope")], "/", "unknown_action"),
        (&[("warden.action", "orders:*")], "/", "unknown_action"),
        (&[("warden.action", "")], "/", "unknown_action"),
        (
            &[("warden.action", "orders:GetOrder")],
            "/",
            "missing_resource",
        ),
        (
            &[
                ("warden.action", "orders:GetOrder"),
                ("warden.resource", "*"),
            ],
            "/",
            "invalid_resource",
        ),
        (
            &[
                ("warden.action", "orders:ListOrders"),
                (
                    "warden.resource",
                    "arn:aws:orders:{region}:{account}:order/x",
                ),
            ],
            "/",
            "invalid_resource",
        ),
        (
            &[
                ("warden.action", "orders:GetOrder"),
                (
                    "warden.resource",
                    "arn:aws:orders:{region}:{account}:order/{id}",
                ),
            ],
            "/",
            "invalid_resource",
        ),
        (
            &[
                ("warden.action", "orders:GetOrder"),
                (
                    "warden.resource",
                    "arn:aws:orders:{region}:{account}:order/*",
                ),
            ],
            "/",
            "invalid_resource",
        ),
        (
            &[
                ("warden.action", "orders:GetOrder"),
                ("warden.resource", "order/x"),
            ],
            "/",
            "invalid_resource",
        ),
        (
            &[
                ("warden.action", "orders:ListOrders"),
                ("warden.dry_run", "yes"),
            ],
            "/",
            "invalid_extension",
        ),
        (
            &[("warden.resource", "*")],
            "/orders/1",
            "invalid_extension",
        ),
        (
            &[("warden.dry_run", "true")],
            "/orders/1",
            "invalid_extension",
        ),
        // The path is checked in this mode too.
        (
            &[("warden.action", "orders:ListOrders")],
            "/a/../b",
            "dot_segment",
        ),
    ];
    for (pairs, path, want) in cases {
        assert_eq!(ask(pairs, path), *want, "{pairs:?}");
    }
}

#[test]
fn mtls_rules_map_a_spiffe_id_to_a_role_session() {
    let rule = MtlsRule {
        spiffe: "spiffe://cluster.local/ns/{ns}/sa/{sa}".into(),
        role: "arn:aws:iam::111122223333:role/svc/{sa}".into(),
        session: "{ns}.{sa}".into(),
    };
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        (
            "spiffe://cluster.local/ns/prod/sa/app",
            Some(("arn:aws:iam::111122223333:role/svc/app", "prod.app")),
        ),
        ("spiffe://cluster.local/ns/prod/sa/app/extra", None),
        ("spiffe://cluster.local/ns/prod/sa", None),
        ("spiffe://other.domain/ns/prod/sa/app", None),
        ("spiffe://cluster.local/ns/prod/sa/a*", None),
        ("spiffe://cluster.local/ns/prod/sa/a:b", None),
        ("spiffe://cluster.local/ns//sa/app", None),
        ("spiffe://cluster.local/NS/prod/sa/app", None),
    ];
    for (id, want) in cases {
        let got = rule.resolve(id);
        let got = got.as_ref().map(|m| (m.role.as_str(), m.session.as_str()));
        assert_eq!(got, *want, "{id}");
    }
}

#[test]
fn mtls_templates_fill_every_placeholder_and_copy_the_rest() {
    let rule = MtlsRule {
        spiffe: "spiffe://cluster.local/ns/{ns}/sa/{sa}".into(),
        role: "arn:aws:iam::111122223333:role/{ns}/{sa}-{sa}".into(),
        session: "{sa}{unknown}.{ns".into(),
    };
    let got = rule
        .resolve("spiffe://cluster.local/ns/prod/sa/app")
        .map(|m| (m.role, m.session));
    assert_eq!(
        got,
        Some((
            "arn:aws:iam::111122223333:role/prod/app-app".to_owned(),
            "app{unknown}.{ns".to_owned()
        ))
    );
}

#[test]
fn host_without_port_keeps_the_host() {
    for (authority, host) in [
        ("example.com", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:443", "[::1]"),
        ("[::1]", "[::1]"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("", ""),
        ("a:b", "a:b"),
    ] {
        assert_eq!(host_without_port(authority), host, "{authority}");
    }
}

#[test]
fn the_example_listener_loads_and_routes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    let snapshot = crate::snapshot::Snapshot::load_dir(&dir, 1).unwrap();
    assert!(snapshot.listener("nope").is_none());
    let l = snapshot.listener("default").unwrap();
    let o = "arn:aws:orders:us-east-1:333333333333:order/";
    let cases = [
        (
            "GET",
            "/orders/7",
            format!("get-order orders:GetOrder {o}7 false"),
        ),
        (
            "PUT",
            "/orders/7",
            format!("update-order orders:UpdateOrder {o}7 false"),
        ),
        (
            "DELETE",
            "/orders/7",
            format!("delete-order orders:DeleteOrder {o}7 false"),
        ),
        (
            "POST",
            "/orders/7",
            format!("create-order orders:CreateOrder {o}7 false"),
        ),
        (
            "GET",
            "/orders?currency=EUR",
            "list-orders orders:ListOrders * false".into(),
        ),
        (
            "POST",
            "/orders/7/refund",
            format!("refund-order orders:RefundOrder {o}7 true"),
        ),
        (
            "GET",
            "/orders/7/history/2026/01",
            format!("order-history orders:DescribeOrderHistory {o}7/history/2026/01 false"),
        ),
    ];
    let ext = HashMap::new();
    for (method, path, want) in cases {
        let r = l
            .route(&HttpRequest {
                host: "orders.local:8080",
                method,
                path,
                headers: &[("x-team", "blue")],
                extensions: &ext,
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            format!("{} {} {} {}", r.route, r.action, r.resource, r.dry_run),
            want
        );
    }
    let p = l.principals();
    assert!(p.oidc.is_some() && p.trusted_header.is_none());
    let m = p
        .mtls
        .first()
        .unwrap()
        .resolve("spiffe://cluster.local/ns/shop/sa/app-runtime");
    assert_eq!(
        m.map(|m| m.role),
        Some("arn:aws:iam::333333333333:role/service/app-runtime".to_owned())
    );
}

#[test]
fn warnings_do_not_stop_a_listener() {
    let route = r#"{"name": "r", "path": "/x/{id}", "action": "orders:GetOrder", "resource": "arn:aws:files:{region}:{account}:file/{id}"}"#;
    let text = doc(&[route]);
    let all = findings(&text);
    let [f] = all.as_slice() else {
        panic!("{all:#?}");
    };
    assert_eq!(
        (f.finding.code, f.finding.severity),
        ("resource-service-mismatch", Severity::Warning)
    );
    assert_eq!(
        outcome(&listener(&text), "GET", "h", "/x/1"),
        "r arn:aws:files:us-east-1:111122223333:file/1"
    );
}

#[test]
fn a_resource_tag_taken_from_the_request_is_a_warning() {
    let route = r#"{"name": "r", "path": "/orders/{id}", "action": "orders:GetOrder",
        "resource": "arn:aws:orders:{region}:{account}:order/{id}",
        "context": {"aws:ResourceTag/owner": {"header": "x-owner"}}}"#;
    let text = doc(&[route]);
    let all = findings(&text);
    let [f] = all.as_slice() else {
        panic!("{all:#?}");
    };
    assert_eq!(
        (f.finding.code, f.finding.severity, f.finding.path.as_str()),
        (
            "client-controlled-resource-key",
            Severity::Warning,
            "$.routes[0].context.aws:ResourceTag/owner"
        )
    );
}

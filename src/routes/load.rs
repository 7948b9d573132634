//! Reading `routes/LISTENER.json` into a [`Listener`]: every field checked against the
//! bundle (catalog, organization, roles) with findings that name the file, the JSON path and
//! the line:column; templates compiled once, here.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::bundle::catalog::Catalog;
use crate::bundle::read::FileReader;
use crate::json::{Node, Pos, Value};
use crate::policy::child;

use super::template::{self, Segment};
use super::{
    HostPattern, KnownActions, Listener, MetadataFields, MtlsRule, OidcSource, PrincipalSources,
    Route, SessionTokenHeader, Sigv4Source, Source, Trie, TrustedHeader, UpstreamHeaders,
};

/// Routes in one listener, at most.
pub const MAX_ROUTES: usize = 1000;
/// Context keys one route takes from a request, at most.
pub const MAX_CONTEXT_KEYS: usize = 32;
/// mTLS rules in one listener, at most.
pub const MAX_MTLS_RULES: usize = 64;
/// `x-forwarded-for` hops a listener may trust, at most.
pub const MAX_TRUSTED_HOPS: u64 = 16;

/// The keys the `Check` face fills from the connection and the clock: a header mapped into
/// one would let a client forge it.
pub const SERVER_FILLED: [&str; 5] = [
    "aws:sourceip",
    "aws:securetransport",
    "aws:useragent",
    "aws:currenttime",
    "aws:epochtime",
];

/// Headers that carry credentials: never copied into a context (and so into the decision
/// log).
const SECRET_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Headers a session token may not be taken from alone: `authorization` carries the other
/// sources' credentials, and `x-amz-security-token` is the token of a signed request, which
/// without its signature proves nothing (a listener that took it alone would turn every
/// signed request it sees into a bearer credential).
const NOT_SESSION_TOKEN_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-amz-security-token",
];

/// The principal sources a listener may declare, in the order the face tries them.
const PRINCIPAL_SOURCES: [&str; 5] = [
    "sigv4",
    "oidc",
    "session_token_header",
    "mtls",
    "trusted_header",
];

/// What checking a listener needs from the rest of the bundle.
pub struct LoadContext<'a> {
    pub catalog: &'a Catalog,
    /// The catalog's actions, shared by every listener of the bundle.
    pub actions: &'a Arc<KnownActions>,
    /// The organization's accounts; `None` when the organization did not load (its
    /// findings say why).
    pub org_accounts: Option<&'a BTreeSet<String>>,
    /// Whether the bundle has a role of this ARN (with its path).
    pub role_exists: &'a dyn Fn(&str) -> bool,
}

/// A listener's name: what Envoy's `warden.listener` says, and the file's stem.
pub fn valid_listener_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `text` is a role ARN: `arn:aws:iam::ACCT:role/[PATH/]NAME`.
fn valid_role_arn(text: &str) -> bool {
    let Some(arn) = crate::arn::Arn::parse(text) else {
        return false;
    };
    let Some(rest) = arn.resource.strip_prefix("role/") else {
        return false;
    };
    crate::bundle::is_partition(arn.partition)
        && arn.service == "iam"
        && arn.region.is_empty()
        && is_account_id(arn.account)
        && !rest.is_empty()
        && !rest.ends_with('/')
        && rest.split('/').all(|p| {
            !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        })
}

/// Reads one listener document; `None` when it is too broken to compile (its findings say
/// why). The bundle fails on any error, so a listener returned with errors is never served.
pub fn read_listener(
    r: &mut FileReader<'_>,
    name: &str,
    node: &Node,
    cx: &LoadContext<'_>,
) -> Option<Listener> {
    r.object(
        node,
        "$",
        &[
            "account",
            "region",
            "unmatched",
            "dry_run",
            "principals",
            "source_ip",
            "upstream_headers",
            "metadata",
            "routes",
        ],
    )?;
    let account = match r.string(node, "$", "account") {
        Some((a, pos)) => {
            if !is_account_id(&a) {
                r.error(
                    "invalid-account",
                    "$.account",
                    pos,
                    format!("`{a}` is not a 12-digit account id"),
                );
            } else if cx.org_accounts.is_some_and(|accts| !accts.contains(&a)) {
                r.error(
                    "unknown-account",
                    "$.account",
                    pos,
                    format!("`{a}` is not an account of the organization"),
                );
            }
            a
        }
        None => {
            missing(
                r,
                "$",
                node.pos,
                "account",
                "the account `{account}` stands for",
            );
            String::new()
        }
    };
    let region = match r.string(node, "$", "region") {
        Some((reg, pos)) => {
            if reg.is_empty()
                || reg.len() > 32
                || !reg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                r.error(
                    "invalid-region",
                    "$.region",
                    pos,
                    format!("`{reg}` is not a region (lowercase letters, digits and `-`)"),
                );
            }
            reg
        }
        None => {
            missing(
                r,
                "$",
                node.pos,
                "region",
                "the region `{region}` stands for",
            );
            String::new()
        }
    };
    let unmatched_allows = match r.string(node, "$", "unmatched") {
        None => false,
        Some((u, _)) if u == "deny" => false,
        Some((u, _)) if u == "allow" => true,
        Some((u, pos)) => {
            r.error(
                "invalid-value",
                "$.unmatched",
                pos,
                format!("`unmatched` is `deny` or `allow`, not `{u}`"),
            );
            false
        }
    };
    let dry_run = boolean(r, node, "$", "dry_run").unwrap_or(false);
    let principals = match node.get("principals") {
        Some(p) => principals(r, p, cx),
        None => {
            missing(r, "$", node.pos, "principals", "who may be asking");
            PrincipalSources::default()
        }
    };
    let trusted_hops = match node.get("source_ip") {
        Some(s) if r.object(s, "$.source_ip", &["trusted_hops"]).is_some() => {
            r.number(s, "$.source_ip", "trusted_hops", 0..=MAX_TRUSTED_HOPS)
                .unwrap_or(0) as usize
        }
        _ => 0,
    };
    let upstream_headers = match node.get("upstream_headers") {
        Some(u) => upstream_headers(r, u),
        None => UpstreamHeaders::default(),
    };
    let metadata = match node.get("metadata") {
        Some(m) => metadata(r, m),
        None => MetadataFields::default(),
    };
    let routes = match node.get("routes") {
        None => Vec::new(),
        Some(n) => match &n.value {
            Value::Array(items) => {
                if items.len() > MAX_ROUTES {
                    r.error(
                        "too-many-routes",
                        "$.routes",
                        n.pos,
                        format!(
                            "{} routes; a listener has at most {MAX_ROUTES}",
                            items.len()
                        ),
                    );
                    return None;
                }
                let env = RouteEnv {
                    account: &account,
                    region: &region,
                    has_oidc: principals.oidc.is_some(),
                    cx,
                };
                let routes: Vec<(Route, Pos)> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        route(r, item, &format!("$.routes[{i}]"), &env).map(|x| (x, item.pos))
                    })
                    .collect();
                check_routes(r, &routes);
                routes.into_iter().map(|(x, _)| x).collect()
            }
            _ => {
                r.error(
                    "wrong-type",
                    "$.routes",
                    n.pos,
                    format!("`routes` must be an array, found {}", n.kind()),
                );
                Vec::new()
            }
        },
    };
    let trie = Trie::build(&routes);
    let reads_query = routes.iter().any(|x| {
        x.context
            .iter()
            .any(|(_, s)| matches!(s, Source::Query(..)))
    });
    Some(Listener {
        name: name.to_owned(),
        account,
        region,
        unmatched_allows,
        dry_run,
        principals,
        trusted_hops,
        upstream_headers,
        metadata,
        routes,
        trie,
        reads_query,
        actions: cx.actions.clone(),
    })
}

fn missing(r: &mut FileReader<'_>, path: &str, pos: Pos, key: &str, what: &str) {
    r.error("missing-key", path, pos, format!("needs `{key}`: {what}"));
}

/// An optional boolean member.
fn boolean(r: &mut FileReader<'_>, node: &Node, path: &str, key: &str) -> Option<bool> {
    let n = node.get(key)?;
    match n.value {
        Value::Bool(b) => Some(b),
        _ => {
            r.error(
                "wrong-type",
                &child(path, key),
                n.pos,
                format!("`{key}` must be true or false, found {}", n.kind()),
            );
            None
        }
    }
}

/// A required string member; a finding when it is missing.
fn required(
    r: &mut FileReader<'_>,
    node: &Node,
    path: &str,
    key: &str,
    what: &str,
) -> Option<(String, Pos)> {
    let s = r.string(node, path, key);
    if s.is_none() && node.get(key).is_none() {
        missing(r, path, node.pos, key, what);
    }
    s
}

/// A header name member: lower-case token characters.
fn header_name(r: &mut FileReader<'_>, node: &Node, path: &str, key: &str) -> Option<String> {
    let (h, pos) = r.string(node, path, key)?;
    if !valid_header_name(&h) {
        r.error(
            "invalid-header-name",
            &child(path, key),
            pos,
            format!("`{h}` is not a lower-case header name"),
        );
        return None;
    }
    Some(h)
}

/// A role ARN that must exist in the bundle.
fn fixed_role(
    r: &mut FileReader<'_>,
    node: &Node,
    path: &str,
    key: &str,
    cx: &LoadContext<'_>,
) -> Option<String> {
    let (role, pos) = r.string(node, path, key)?;
    let at = child(path, key);
    if !valid_role_arn(&role) {
        r.error(
            "invalid-role-arn",
            &at,
            pos,
            format!("`{role}` is not a role ARN (`arn:aws:iam::ACCOUNT:role/[PATH/]NAME`)"),
        );
        return None;
    }
    if !(cx.role_exists)(&role) {
        r.error(
            "unknown-role",
            &at,
            pos,
            format!("the bundle has no role `{role}` (a role's ARN includes its path)"),
        );
        return None;
    }
    Some(role)
}

fn principals(r: &mut FileReader<'_>, node: &Node, cx: &LoadContext<'_>) -> PrincipalSources {
    let path = "$.principals";
    let mut out = PrincipalSources::default();
    if r.object(node, path, &PRINCIPAL_SOURCES).is_none() {
        return out;
    }
    if let Some(s) = node.get("sigv4") {
        let spath = "$.principals.sigv4";
        if r.object(s, spath, &["presigned"]).is_some() {
            out.sigv4 = Some(Sigv4Source {
                presigned: boolean(r, s, spath, "presigned").unwrap_or(false),
            });
        }
    }
    if let Some(t) = node.get("session_token_header") {
        out.session_token = session_token_header(r, t);
    }
    if let Some(o) = node.get("oidc") {
        out.oidc = oidc(r, o, cx);
    }
    if let Some(m) = node.get("mtls") {
        let mpath = "$.principals.mtls";
        match &m.value {
            Value::Array(items) if items.len() > MAX_MTLS_RULES => r.error(
                "too-many-rules",
                mpath,
                m.pos,
                format!("{} mTLS rules; at most {MAX_MTLS_RULES}", items.len()),
            ),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(rule) = mtls_rule(r, item, &format!("{mpath}[{i}]"), cx) {
                        out.mtls.push(rule);
                    }
                }
            }
            _ => r.error(
                "wrong-type",
                mpath,
                m.pos,
                format!("`mtls` must be an array of rules, found {}", m.kind()),
            ),
        }
    }
    if let Some(t) = node.get("trusted_header") {
        let tpath = "$.principals.trusted_header";
        if r.object(t, tpath, &["name"]).is_some() {
            match header_name(r, t, tpath, "name") {
                Some(name) => out.trusted_header = Some(TrustedHeader { name }),
                None if t.get("name").is_none() => missing(
                    r,
                    tpath,
                    t.pos,
                    "name",
                    "the header that names the principal",
                ),
                None => {}
            }
        }
    }
    if let (Some(token), Some(trusted)) = (&out.session_token, &out.trusted_header)
        && token.name == trusted.name
    {
        r.error(
            "duplicate-header",
            "$.principals.session_token_header.name",
            node.get("session_token_header")
                .and_then(|t| t.get("name"))
                .map_or(node.pos, |n| n.pos),
            format!(
                "`{}` is already the trusted header that names the principal",
                token.name
            ),
        );
    }
    let declared = PRINCIPAL_SOURCES.iter().any(|k| node.get(k).is_some());
    if !declared {
        r.error(
            "no-principal-source",
            path,
            node.pos,
            "a listener needs at least one principal source: `sigv4`, `oidc`, \
             `session_token_header`, `mtls` or `trusted_header`",
        );
    }
    out
}

/// `session_token_header`: `{"name": HEADER}`, a bearer session token (opt-in).
fn session_token_header(r: &mut FileReader<'_>, node: &Node) -> Option<SessionTokenHeader> {
    let path = "$.principals.session_token_header";
    r.object(node, path, &["name"])?;
    let Some(name) = header_name(r, node, path, "name") else {
        if node.get("name").is_none() {
            missing(
                r,
                path,
                node.pos,
                "name",
                "the header that carries the session token",
            );
        }
        return None;
    };
    if NOT_SESSION_TOKEN_HEADERS.contains(&name.as_str()) {
        r.error(
            "reserved-header",
            &child(path, "name"),
            node.get("name").map_or(node.pos, |n| n.pos),
            format!(
                "`{name}` cannot carry a session token alone: `authorization` and cookies carry \
                 other credentials, and `x-amz-security-token` belongs to a signed request \
                 (declare `sigv4`); name a header of your own, such as `x-warden-session-token`"
            ),
        );
        return None;
    }
    Some(SessionTokenHeader { name })
}

fn oidc(r: &mut FileReader<'_>, node: &Node, cx: &LoadContext<'_>) -> Option<OidcSource> {
    let path = "$.principals.oidc";
    r.object(
        node,
        path,
        &[
            "provider",
            "role",
            "role_claim",
            "session_claim",
            "skew_seconds",
            "from_metadata",
        ],
    )?;
    let provider = match required(r, node, path, "provider", "the OIDC provider's ARN") {
        Some((p, pos)) => {
            let ok = crate::arn::Arn::parse(&p).is_some_and(|a| {
                crate::bundle::is_partition(a.partition)
                    && a.service == "iam"
                    && a.region.is_empty()
                    && is_account_id(a.account)
                    && a.resource
                        .strip_prefix("oidc-provider/")
                        .is_some_and(|h| !h.is_empty() && !h.contains(['*', '?', ' ']))
            });
            if !ok {
                r.error(
                    "invalid-provider-arn",
                    &format!("{path}.provider"),
                    pos,
                    format!(
                        "`{p}` is not an OIDC provider ARN (`arn:aws:iam::ACCOUNT:oidc-provider/HOST[/PATH]`)"
                    ),
                );
            }
            p
        }
        None => String::new(),
    };
    let role = fixed_role(r, node, path, "role", cx);
    let role_claim = claim_name(r, node, path, "role_claim");
    if node.get("role").is_none() && node.get("role_claim").is_none() {
        r.error(
            "missing-role",
            path,
            node.pos,
            "`oidc` needs a `role` to assume, or a `role_claim` naming it",
        );
    }
    let session_claim = claim_name(r, node, path, "session_claim").unwrap_or_else(|| "sub".into());
    let skew_seconds = r.number(node, path, "skew_seconds", 0..=600).unwrap_or(60);
    let from_metadata = boolean(r, node, path, "from_metadata").unwrap_or(false);
    Some(OidcSource {
        provider,
        role,
        role_claim,
        session_claim,
        skew_seconds,
        from_metadata,
    })
}

fn claim_name(r: &mut FileReader<'_>, node: &Node, path: &str, key: &str) -> Option<String> {
    let (c, pos) = r.string(node, path, key)?;
    if c.is_empty() || c.len() > 256 {
        r.error(
            "invalid-claim",
            &child(path, key),
            pos,
            "a claim name has 1 to 256 bytes",
        );
        return None;
    }
    Some(c)
}

/// Placeholders (`{name}`) of a template, or `Err` with a message for an unbalanced brace.
fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        let after = rest.get(open + 1..).unwrap_or("");
        if rest.get(open..).is_some_and(|s| s.starts_with('}')) {
            return Err(format!("`{text}` has a `}}` without its `{{`"));
        }
        let Some(close) = after.find('}') else {
            return Err(format!("`{text}` has a `{{` without its `}}`"));
        };
        let name = after.get(..close).unwrap_or("");
        if name.is_empty() || name.contains('{') {
            return Err(format!("`{text}` has an empty or nested placeholder"));
        }
        out.push(name);
        rest = after.get(close + 1..).unwrap_or("");
    }
    Ok(out)
}

fn mtls_rule(
    r: &mut FileReader<'_>,
    node: &Node,
    path: &str,
    cx: &LoadContext<'_>,
) -> Option<MtlsRule> {
    r.object(node, path, &["spiffe", "role", "session"])?;
    let (spiffe, spos) = required(r, node, path, "spiffe", "the SPIFFE id pattern")?;
    let (role, rpos) = required(r, node, path, "role", "the role's ARN")?;
    let (session, sespos) = required(r, node, path, "session", "the session name")?;
    // The pattern: `spiffe://DOMAIN/SEG/...`, placeholders whole segments of the path.
    let mut names: Vec<&str> = Vec::new();
    let spiffe_ok = match spiffe.strip_prefix("spiffe://") {
        Some(rest) => {
            let mut parts = rest.split('/');
            let domain = parts.next().unwrap_or("");
            let domain_ok = !domain.is_empty()
                && domain.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
                });
            let mut ok = domain_ok;
            let mut segments = 0;
            for seg in parts {
                segments += 1;
                match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(n) if super::template::is_param_name(n) && !names.contains(&n) => {
                        names.push(n)
                    }
                    Some(_) => ok = false,
                    None => {
                        ok &= !seg.is_empty()
                            && seg.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
                            })
                    }
                }
            }
            ok && segments > 0
        }
        None => false,
    };
    if !spiffe_ok {
        r.error(
            "invalid-spiffe-pattern",
            &format!("{path}.spiffe"),
            spos,
            format!(
                "`{spiffe}` is not a SPIFFE id pattern (`spiffe://DOMAIN/PATH`, placeholders `{{name}}` whole, distinct path segments)"
            ),
        );
        return None;
    }
    let mut ok = true;
    for (key, text, pos) in [("role", &role, rpos), ("session", &session, sespos)] {
        let at = format!("{path}.{key}");
        match placeholders(text) {
            Err(m) => {
                r.error("invalid-template", &at, pos, m);
                ok = false;
            }
            Ok(used) => {
                for u in used.iter().filter(|u| !names.contains(u)) {
                    r.error(
                        "unknown-placeholder",
                        &at,
                        pos,
                        format!(
                            "`{{{u}}}` in `{text}` does not appear in the SPIFFE pattern `{spiffe}`"
                        ),
                    );
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return None;
    }
    // Checked with every placeholder standing for a valid name.
    let mut sample_role = role.clone();
    let mut sample_session = session.clone();
    for n in &names {
        sample_role = sample_role.replace(&format!("{{{n}}}"), "x");
        sample_session = sample_session.replace(&format!("{{{n}}}"), "x");
    }
    if !valid_role_arn(&sample_role) {
        r.error(
            "invalid-role-arn",
            &format!("{path}.role"),
            rpos,
            format!("`{role}` is not a role ARN (`arn:aws:iam::ACCOUNT:role/[PATH/]NAME`)"),
        );
        return None;
    }
    if sample_role == role && !(cx.role_exists)(&role) {
        r.error(
            "unknown-role",
            &format!("{path}.role"),
            rpos,
            format!("the bundle has no role `{role}` (a role's ARN includes its path)"),
        );
        return None;
    }
    if sample_session.len() < 2
        || sample_session.len() > 64
        || !sample_session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        r.error(
            "invalid-session-name",
            &format!("{path}.session"),
            sespos,
            format!(
                "`{session}`: a session name has 2 to 64 letters, digits or `+=,.@_-` besides its placeholders"
            ),
        );
        return None;
    }
    Some(MtlsRule {
        spiffe,
        role,
        session,
    })
}

fn upstream_headers(r: &mut FileReader<'_>, node: &Node) -> UpstreamHeaders {
    let path = "$.upstream_headers";
    let mut out = UpstreamHeaders::default();
    if r.object(node, path, &["principal", "decision_id"])
        .is_none()
    {
        return out;
    }
    for (key, slot) in [
        ("principal", &mut out.principal),
        ("decision_id", &mut out.decision_id),
    ] {
        match node.get(key) {
            None => {}
            Some(n) if n.value == Value::Null => *slot = None,
            Some(_) => {
                if let Some(h) = header_name(r, node, path, key) {
                    *slot = Some(h);
                }
            }
        }
    }
    out
}

/// `"metadata"`: the answer's fields Envoy is given, each named once.
fn metadata(r: &mut FileReader<'_>, node: &Node) -> MetadataFields {
    let path = "$.metadata";
    let Value::Array(items) = &node.value else {
        r.error(
            "wrong-type",
            path,
            node.pos,
            format!(
                "`metadata` must be an array of field names, found {}",
                node.kind()
            ),
        );
        return MetadataFields::default();
    };
    // Each field at most once: a longer list is refused whole, before any name is read.
    if items.len() > MetadataFields::NAMED.len() {
        r.error(
            "too-many-fields",
            path,
            node.pos,
            format!(
                "{} fields; there are {}, each listed at most once",
                items.len(),
                MetadataFields::NAMED.len()
            ),
        );
        return MetadataFields::default();
    }
    let mut fields = MetadataFields::NONE;
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Value::String(name) = &item.value else {
            r.error(
                "wrong-type",
                &at,
                item.pos,
                format!("a field name is a string, found {}", item.kind()),
            );
            continue;
        };
        match MetadataFields::named(name) {
            Some(field) if fields.has(field) => r.error(
                "duplicate-field",
                &at,
                item.pos,
                format!("`{name}` is listed twice"),
            ),
            Some(field) => fields = fields.with(field),
            None => {
                let known: Vec<&str> = MetadataFields::NAMED.iter().map(|(n, _)| *n).collect();
                r.error(
                    "unknown-field",
                    &at,
                    item.pos,
                    format!(
                        "`{name}` is not a field of the answer: one of {}",
                        known.join(", ")
                    ),
                );
            }
        }
    }
    fields
}

/// What reading one route needs.
struct RouteEnv<'a> {
    account: &'a str,
    region: &'a str,
    has_oidc: bool,
    cx: &'a LoadContext<'a>,
}

fn route(r: &mut FileReader<'_>, node: &Node, path: &str, env: &RouteEnv<'_>) -> Option<Route> {
    r.object(
        node,
        path,
        &[
            "name", "host", "methods", "path", "action", "resource", "context", "dry_run", "role",
        ],
    )?;
    let at = |key: &str| format!("{path}.{key}");
    let (name, npos) = required(r, node, path, "name", "the route's name")?;
    if !valid_listener_name(&name) {
        r.error(
            "invalid-name",
            &at("name"),
            npos,
            format!("`{name}`: a route name has 1 to 64 letters, digits or `._-`"),
        );
    }
    let host = match r.string(node, path, "host") {
        None => HostPattern::Any,
        Some((h, pos)) => host_pattern(&h).unwrap_or_else(|| {
            r.error(
                "invalid-host",
                &at("host"),
                pos,
                format!("`{h}` is not a host pattern: `*`, `HOST` or `*.SUFFIX`, without a port"),
            );
            HostPattern::Any
        }),
    };
    let methods = match node.get("methods") {
        None => None,
        Some(_) => {
            let list = r.strings(node, path, "methods");
            let mut ms: Vec<Box<str>> = Vec::new();
            for (m, pos, mpath) in list {
                if m.is_empty() || m.len() > 32 || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                    r.error(
                        "invalid-method",
                        &mpath,
                        pos,
                        format!("`{m}` is not an HTTP method in capitals (`GET`)"),
                    );
                } else if ms.iter().any(|x| **x == *m) {
                    r.error(
                        "duplicate-method",
                        &mpath,
                        pos,
                        format!("`{m}` is listed twice"),
                    );
                } else {
                    ms.push(m.into());
                }
            }
            if ms.is_empty() {
                r.error(
                    "invalid-method",
                    &at("methods"),
                    node.get("methods").map_or(node.pos, |n| n.pos),
                    "`methods` lists at least one method; leave it out for any method",
                );
            }
            Some(ms.into_boxed_slice())
        }
    };
    let (ptext, ppos) = required(r, node, path, "path", "the path template")?;
    let template = match template::parse_path(&ptext) {
        Ok(t) => t,
        Err((code, m)) => {
            r.error(code, &at("path"), ppos, m);
            return None;
        }
    };
    let (atext, apos) = required(r, node, path, "action", "the action it asks")?;
    let Some((service, action)) = env.cx.catalog.action(&atext) else {
        r.error(
            "unknown-action",
            &at("action"),
            apos,
            format!("`{atext}` is not an action of the catalog"),
        );
        return None;
    };
    let (rtext, rpos) = required(r, node, path, "resource", "the resource ARN template")?;
    let resource = match template::parse_resource(&rtext, env.account, env.region, &template.params)
    {
        Ok(t) => t,
        Err((code, m)) => {
            r.error(code, &at("resource"), rpos, m);
            return None;
        }
    };
    let has_types = !action.resource_types.is_empty();
    let canonical = format!("{}:{}", service.prefix, action.name);
    if resource.is_star() == has_types {
        let code = if has_types {
            "resource-needs-arn"
        } else {
            "resource-must-be-star"
        };
        r.error(
            code,
            &at("resource"),
            rpos,
            super::star_message(&canonical, has_types),
        );
        return None;
    }
    if has_types {
        let services: Vec<&str> = action
            .resource_types
            .iter()
            .filter_map(|t| service.resource_types.get(t))
            .filter_map(|f| f.split(':').nth(2))
            .collect();
        if !services.is_empty() && !services.contains(&resource.service()) {
            r.warn(
                "resource-service-mismatch",
                &at("resource"),
                rpos,
                format!(
                    "`{rtext}` is a resource of service `{}`; `{canonical}` acts on resources of `{}`",
                    resource.service(),
                    services.join("`, `")
                ),
            );
        }
    }
    let (context, claim_keys) = match node.get("context") {
        Some(c) => context(r, c, &at("context"), env.cx.catalog),
        None => (Vec::new(), Vec::new()),
    };
    let dry_run = boolean(r, node, path, "dry_run");
    let role = fixed_role(r, node, path, "role", env.cx);
    if role.is_some() && !env.has_oidc {
        r.error(
            "role-without-oidc",
            &at("role"),
            node.get("role").map_or(node.pos, |n| n.pos),
            "a route's `role` is the role an OIDC token assumes, and the listener has no `oidc`",
        );
    }
    Some(Route {
        name: name.into(),
        host,
        methods,
        segments: template.segments,
        action: canonical.into(),
        resource,
        context,
        claim_keys,
        role: role.map(Into::into),
        dry_run,
    })
}

fn host_pattern(h: &str) -> Option<HostPattern> {
    if h == "*" {
        return Some(HostPattern::Any);
    }
    let (wild, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h),
    };
    let ipv6 = !wild
        && name.starts_with('[')
        && name.ends_with(']')
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'[' | b']' | b':' | b'.'));
    let hostname = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !(ipv6 || hostname) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    Some(if wild {
        HostPattern::Suffix(format!(".{lower}").into())
    } else {
        HostPattern::Exact(lower.into())
    })
}

/// A route's context keys from the request, and its `(key, claim)` pairs.
type ContextSources = (Vec<(Box<str>, Source)>, Vec<(String, String)>);

/// A route's `context`: keys from headers and query parameters, and keys from claims.
fn context(r: &mut FileReader<'_>, node: &Node, path: &str, catalog: &Catalog) -> ContextSources {
    let mut sources = Vec::new();
    let mut claims = Vec::new();
    let Some(members) = r.object(node, path, &[]) else {
        return (sources, claims);
    };
    if members.len() > MAX_CONTEXT_KEYS {
        r.error(
            "too-many-keys",
            path,
            node.pos,
            format!(
                "{} context keys; a route takes at most {MAX_CONTEXT_KEYS}",
                members.len()
            ),
        );
        return (sources, claims);
    }
    let mut seen: Vec<String> = Vec::new();
    for m in members {
        let kpath = child(path, &m.key);
        let key = m.key.as_str();
        let lower = key.to_ascii_lowercase();
        let well_formed = key.len() <= crate::service::MAX_KEY_BYTES
            && key
                .split_once(':')
                .is_some_and(|(p, n)| !p.is_empty() && !n.is_empty())
            && !key.chars().any(|c| c.is_control() || c == ' ');
        if !well_formed {
            r.error(
                "invalid-key",
                &kpath,
                m.key_pos,
                format!("`{key}` is not a condition key (`prefix:Name`)"),
            );
            continue;
        }
        if seen.contains(&lower) {
            r.error(
                "duplicate-key",
                &kpath,
                m.key_pos,
                format!("`{key}` is set twice (condition keys ignore case)"),
            );
            continue;
        }
        seen.push(lower.clone());
        if SERVER_FILLED.contains(&lower.as_str()) {
            r.error(
                "server-filled-key",
                &kpath,
                m.key_pos,
                format!(
                    "`{key}` is filled by the server from the connection or the clock; taking it from the request would let a client forge it"
                ),
            );
            continue;
        }
        if !crate::keys::caller_supplies(&lower) {
            r.error(
                "server-owned-key",
                &kpath,
                m.key_pos,
                format!("`{key}` is a key the server owns; a request may not supply it"),
            );
            continue;
        }
        if lower.starts_with("aws:resourcetag/") {
            // The client writes what a route takes from the request; a resource's tags
            // belong to the resource (declare them in `resources/`, where they replace a
            // request's).
            r.warn(
                "client-controlled-resource-key",
                &kpath,
                m.key_pos,
                format!(
                    "`{key}` taken from the request: the client chooses the resource's tags; \
                     declare them with the resource in the bundle instead"
                ),
            );
        }
        if !catalog.knows_key(key) {
            r.warn(
                "unknown-condition-key",
                &kpath,
                m.key_pos,
                format!("`{key}` is neither a global key nor a key the catalog declares"),
            );
        }
        let v = &m.value;
        if r.object(v, &kpath, &["header", "query", "claim", "list"])
            .is_none()
        {
            continue;
        }
        let list = boolean(r, v, &kpath, "list").unwrap_or(false);
        let given: Vec<&str> = ["header", "query", "claim"]
            .into_iter()
            .filter(|k| v.get(k).is_some())
            .collect();
        let [from] = given.as_slice() else {
            r.error(
                "invalid-context-source",
                &kpath,
                v.pos,
                "a context key takes exactly one of `header`, `query` or `claim`",
            );
            continue;
        };
        match *from {
            "header" => {
                let Some(h) = header_name(r, v, &kpath, "header") else {
                    continue;
                };
                if SECRET_HEADERS.contains(&h.as_str()) {
                    r.error(
                        "secret-header",
                        &format!("{kpath}.header"),
                        v.get("header").map_or(v.pos, |n| n.pos),
                        format!("`{h}` carries credentials; it is never copied into a context"),
                    );
                    continue;
                }
                sources.push((key.into(), Source::Header(h.into(), list)));
            }
            "query" => {
                let Some((q, pos)) = r.string(v, &kpath, "query") else {
                    continue;
                };
                if q.is_empty() || q.len() > 256 {
                    r.error(
                        "invalid-query-name",
                        &format!("{kpath}.query"),
                        pos,
                        "a query parameter's name has 1 to 256 bytes",
                    );
                    continue;
                }
                sources.push((key.into(), Source::Query(q.into(), list)));
            }
            _ => {
                if let Some(c) = claim_name(r, v, &kpath, "claim") {
                    claims.push((key.to_owned(), c));
                }
            }
        }
    }
    (sources, claims)
}

/// Duplicate names, and routes that would tie for some request.
fn check_routes(r: &mut FileReader<'_>, routes: &[(Route, Pos)]) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut shapes: HashMap<(&[Segment], &HostPattern), Vec<usize>> = HashMap::new();
    for (i, (route, pos)) in routes.iter().enumerate() {
        if let Some(first) = names.insert(&route.name, i) {
            names.insert(&route.name, first);
            r.error(
                "duplicate-route",
                &format!("$.routes[{i}].name"),
                *pos,
                format!("a route named `{}` comes earlier", route.name),
            );
        }
        let same = shapes.entry((&route.segments, &route.host)).or_default();
        for &j in same.iter() {
            let Some((other, _)) = routes.get(j) else {
                continue;
            };
            let overlap = match (&route.methods, &other.methods) {
                (None, None) => true,
                (Some(a), Some(b)) => a.iter().any(|m| b.contains(m)),
                _ => false,
            };
            if overlap {
                r.error(
                    "ambiguous-routes",
                    &format!("$.routes[{i}]"),
                    *pos,
                    format!(
                        "`{}` and `{}` match the same requests (same host, path shape and a method in common)",
                        other.name, route.name
                    ),
                );
            }
        }
        same.push(i);
    }
}

/// Every account of the organization.
pub fn org_accounts(org: &crate::bundle::Organization) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![&org.root];
    while let Some(u) = stack.pop() {
        out.extend(u.accounts.iter().map(|a| a.id.clone()));
        stack.extend(u.units.iter());
    }
    out
}

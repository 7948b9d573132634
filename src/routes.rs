//! From an HTTP request (as Envoy's ext_authz `Check` reports it) to an IAM question: a
//! listener's routes (`routes/LISTENER.json` in the bundle) map host, method and path to an
//! action, a resource ARN and request-derived context keys, and name who may be asking
//! ([`PrincipalSources`]). Everything is checked and compiled when the bundle loads
//! ([`load`]); a request only walks a segment trie and renders one string.
//!
//! **Path normalisation.** warden assumes Envoy runs with `normalize_path: true` and
//! `merge_slashes: true` (RFC 3986 normalisation before routing, so the upstream sees the
//! path warden decided on) and refuses, with a [`Refusal`], what it cannot decide safely
//! whatever Envoy did: a path that does not start with `/` (`path_not_absolute`), a
//! percent-encoded `/` or `\` (`%2F`, `%5C`, any case: `encoded_slash`) or a raw `\`
//! (`backslash`), a `.` or `..` segment, also encoded (`%2e`) or before a `;` (Tomcat's
//! `..;`) (`dot_segment`), a `;` path parameter, raw or `%3B`, which servlet containers
//! drop before routing (`path_parameter`), an empty segment (`//`: `empty_segment`), a control character,
//! raw or encoded (`control_character`), a raw space, `#` or non-ASCII byte
//! (`invalid_character`), a bad escape or one that decodes to invalid UTF-8
//! (`invalid_percent_encoding`), and a path over [`MAX_PATH_BYTES`] (`path_too_long`).
//! These apply to every request of a listener, routed or not. Other escapes are decoded
//! before a segment is compared with a literal or enters a template. One trailing slash is
//! ignored (`/orders/` is routed as `/orders`), so that it cannot dodge a route. Literal
//! segments compare case-sensitively, as Envoy's route matching does by default.
//!
//! **Values in ARNs.** A value placed into a resource (a path parameter) holding `*` or `?`
//! is refused (`wildcard_in_value`), and one holding `$`, `{` or `}` too
//! (`variable_in_value`): the engine matches a request's resource literally, so such a
//! value would not widen warden's own decision, but the upstream may give it a meaning,
//! and refusing is simpler than an escape nobody else reads. Parameters may fill only the
//! resource part of an ARN (checked at load), so no value can move a colon.
//!
//! **The query string** is split off; a context key may take a parameter's value, decoded
//! (`+` is a space, as in forms). A key takes one value unless its route says `"list":
//! true`: a repeated parameter or header (Envoy joins a repeated header with `,`) is
//! refused (`ambiguous_value`), since the upstream reads one of the values while a list
//! would turn a plain condition off; a list takes every value, a header's split at `,`.
//! A missing header or parameter leaves its key out of the context.
//!
//! **Matching.** Host: exact, `*`, or `*.suffix` (one label or more before the suffix),
//! compared case-insensitively without the port. Method: a list, or any. Path: the most
//! specific template wins regardless of the routes' order, segment by segment from the
//! left: a literal beats a parameter beats `{rest...}`; then the host (exact, then the
//! longest suffix, then `*`), then a route that lists methods. Two routes that would tie
//! are refused at load (`ambiguous-routes`).
//!
//! **`context_extensions`.** Envoy's per-route `check_settings.context_extensions` may name
//! the question instead of the routes list:
//! - `warden.listener`: the listener (read by the `Check` face; absent: `default`);
//! - `warden.action`: the action (`orders:GetOrder`), checked against the catalog on each
//!   request (`unknown_action`);
//! - `warden.resource`: a resource template using `{account}` and `{region}` only, checked
//!   like a route's (`invalid_resource`); absent: `*`, for an action without resource types
//!   only (`missing_resource` otherwise);
//! - `warden.dry_run`: `true` or `false` (`invalid_extension` otherwise; absent: the
//!   listener's default).
//!
//! `warden.resource` or `warden.dry_run` without `warden.action` is `invalid_extension`.
//! Such a request has no request-derived context keys.

pub mod load;
pub mod template;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::context::{Context, ContextValue};
use template::{ResourceTemplate, Segment};

pub use load::read_listener;

/// Bytes in a request's `:path` (with its query), at most.
pub const MAX_PATH_BYTES: usize = 8192;
/// Bytes in one context value taken from a request, at most.
pub const MAX_VALUE_BYTES: usize = crate::service::MAX_VALUE_BYTES;
/// Values of one context key taken from a request (a repeated header or parameter).
pub const MAX_VALUES: usize = 64;
/// Segments in a request's path, at most.
pub const MAX_SEGMENTS: usize = 256;

/// The `context_extensions` keys warden reads.
pub const EXT_LISTENER: &str = "warden.listener";
pub const EXT_ACTION: &str = "warden.action";
pub const EXT_RESOURCE: &str = "warden.resource";
pub const EXT_DRY_RUN: &str = "warden.dry_run";
/// The route name a [`Routed`] from `context_extensions` carries.
pub const EXTENSIONS_ROUTE: &str = "context_extensions";

/// A header of an [`HttpRequest`]: its name (lower case) and value, borrowed as the face
/// holds them, so that a request is routed without a list of its headers made for it.
pub trait Header {
    fn name(&self) -> &str;
    fn value(&self) -> &str;
}

impl Header for (&str, &str) {
    fn name(&self) -> &str {
        self.0
    }
    fn value(&self) -> &str {
        self.1
    }
}

impl Header for (Cow<'_, str>, Cow<'_, str>) {
    fn name(&self) -> &str {
        &self.0
    }
    fn value(&self) -> &str {
        &self.1
    }
}

/// An HTTP request as the `Check` face reports it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a, H = (&'a str, &'a str)> {
    /// `:authority` as sent (may carry a port).
    pub host: &'a str,
    pub method: &'a str,
    /// As Envoy sent it, with the query string.
    pub path: &'a str,
    /// Lower-case names; a repeated header appears once per value.
    pub headers: &'a [H],
    /// Envoy's `context_extensions` for the route.
    pub extensions: &'a HashMap<String, String>,
}

/// Why warden refuses to decide a request: a stable code (a metric label) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// Where a request is routed: the question to ask, and what the face still fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed<'l> {
    /// The route's name, or [`EXTENSIONS_ROUTE`].
    pub route: &'l str,
    /// As the catalog spells it (`orders:GetOrder`).
    pub action: &'l str,
    /// An ARN, or `*` for an action without resource types.
    pub resource: String,
    /// From headers and query parameters.
    pub context: Context,
    /// `(context key, claim name)`: the face fills them once the token is verified.
    pub claim_keys: &'l [(String, String)],
    /// A per-route role for OIDC, overriding the listener's.
    pub role: Option<&'l str>,
    pub dry_run: bool,
}

/// Who may be asking, in the order the face tries them (`sigv4`, `oidc`,
/// `session_token_header`, `mtls`, `trusted_header`): plain data, checked at load. The
/// first source the request carries credentials for decides who it is; credentials that
/// do not verify are refused, never passed on to a weaker source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalSources {
    pub sigv4: Option<Sigv4Source>,
    pub oidc: Option<OidcSource>,
    pub session_token: Option<SessionTokenHeader>,
    pub mtls: Vec<MtlsRule>,
    pub trusted_header: Option<TrustedHeader>,
}

/// A request its sender signed with AWS Signature Version 4 (an AWS SDK's
/// `Authorization: AWS4-HMAC-SHA256 ...`), with a user's access key or a session's
/// credentials: the service verifies the signature and decides as the user or the session.
/// The signature must be scoped to the service of the route's action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sigv4Source {
    /// Also presigned query strings (`?X-Amz-Signature=...`); off by default: a presigned
    /// URL is a credential that travels in links and logs.
    pub presigned: bool,
}

/// A session token issued by warden's STS, alone in a header: a bearer credential (whoever
/// holds the token is the session), for a listener behind trusted hops only (opt-in).
/// The header is removed before the request goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTokenHeader {
    /// Lower-case; never `authorization`, `x-amz-security-token` nor a cookie.
    pub name: String,
}

/// A bearer token from an OIDC provider, taken as `AssumeRoleWithWebIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSource {
    /// `arn:aws:iam::ACCT:oidc-provider/HOST[/PATH]` (syntax checked; whether the bundle
    /// declares it is checked where providers are loaded).
    pub provider: String,
    /// The role to assume: an existing role's ARN. A route's `role` overrides it.
    pub role: Option<String>,
    /// A claim naming the role's ARN; when the token carries it, it wins over `role`.
    pub role_claim: Option<String>,
    /// The claim the session is named from (default `sub`).
    pub session_claim: String,
    /// Clock skew allowed for `exp` and `nbf` (default 60, at most 600).
    pub skew_seconds: u64,
    /// Claims from Envoy `jwt_authn`'s `metadata_context` instead of a token.
    pub from_metadata: bool,
}

/// An mTLS rule: a SPIFFE id pattern whose `{name}` placeholders (whole path segments)
/// fill the role ARN and the session name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsRule {
    /// `spiffe://TRUST-DOMAIN/...`, placeholders in the path only.
    pub spiffe: String,
    /// `arn:aws:iam::ACCT:role/...`; its placeholders all appear in `spiffe`.
    pub role: String,
    /// The session name template; its placeholders all appear in `spiffe`.
    pub session: String,
}

/// The role and session name an mTLS rule gives a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsMatch {
    pub role: String,
    pub session: String,
}

impl MtlsRule {
    /// The role and session for `spiffe_id` when the rule matches it. A captured segment
    /// must be 1 to 64 IAM name characters (`[A-Za-z0-9+=,.@_-]`), so it can fill a role
    /// name and a session name and nothing else.
    pub fn resolve(&self, spiffe_id: &str) -> Option<MtlsMatch> {
        let mut captured: SmallVec<[(&str, &str); 4]> = SmallVec::new();
        let mut pattern = self.spiffe.split('/');
        let mut id = spiffe_id.split('/');
        loop {
            match (pattern.next(), id.next()) {
                (None, None) => break,
                (Some(p), Some(v)) => match p.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        let ok = !v.is_empty()
                            && v.len() <= 64
                            && v.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
                        if !ok {
                            return None;
                        }
                        captured.push((name, v));
                    }
                    None if p == v => {}
                    None => return None,
                },
                _ => return None,
            }
        }
        // One pass over the template: each `{name}` captured is replaced by its value
        // (values hold no braces); anything else is copied.
        let fill = |template: &str| {
            let mut out = String::with_capacity(template.len() + 32);
            let mut rest = template;
            while let Some(open) = rest.find('{') {
                let (before, from) = rest.split_at(open);
                out.push_str(before);
                let found = from.find('}').and_then(|close| {
                    let name = from.get(1..close)?;
                    captured
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| (close, *v))
                });
                match found {
                    Some((close, value)) => {
                        out.push_str(value);
                        rest = from.get(close + 1..).unwrap_or("");
                    }
                    None => {
                        out.push('{');
                        rest = from.get(1..).unwrap_or("");
                    }
                }
            }
            out.push_str(rest);
            out
        };
        Some(MtlsMatch {
            role: fill(&self.role),
            session: fill(&self.session),
        })
    }
}

/// A header an upstream authenticator sets to the principal's ARN (opt-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedHeader {
    /// Lower-case.
    pub name: String,
}

/// Headers added to an allowed request for the upstream; `None`: not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHeaders {
    /// Default `x-warden-principal-arn`.
    pub principal: Option<String>,
    /// Default `x-warden-decision-id`.
    pub decision_id: Option<String>,
}

impl Default for UpstreamHeaders {
    fn default() -> UpstreamHeaders {
        UpstreamHeaders {
            principal: Some("x-warden-principal-arn".to_owned()),
            decision_id: Some("x-warden-decision-id".to_owned()),
        }
    }
}

/// The fields of a Check's answer that Envoy is given as `dynamic_metadata` (for its access
/// log), chosen per listener (`"metadata"`). Each is written into every answer, so a field
/// no access log reads costs bytes on each request for nothing: by default the decision,
/// its reason, the revision and the decision id (which finds the whole record in the
/// decision log); the principal, action, resource, listener, route and dry-run flag when
/// listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataFields(u16);

impl MetadataFields {
    pub const DECISION: MetadataFields = MetadataFields(1);
    pub const REASON: MetadataFields = MetadataFields(1 << 1);
    pub const REVISION: MetadataFields = MetadataFields(1 << 2);
    pub const DECISION_ID: MetadataFields = MetadataFields(1 << 3);
    pub const PRINCIPAL: MetadataFields = MetadataFields(1 << 4);
    pub const ACTION: MetadataFields = MetadataFields(1 << 5);
    pub const RESOURCE: MetadataFields = MetadataFields(1 << 6);
    pub const LISTENER: MetadataFields = MetadataFields(1 << 7);
    pub const ROUTE: MetadataFields = MetadataFields(1 << 8);
    pub const DRY_RUN: MetadataFields = MetadataFields(1 << 9);

    /// Each field by its name in the answer (and in `"metadata"`), in the order written.
    pub const NAMED: [(&'static str, MetadataFields); 10] = [
        ("decision", MetadataFields::DECISION),
        ("reason", MetadataFields::REASON),
        ("revision", MetadataFields::REVISION),
        ("decision_id", MetadataFields::DECISION_ID),
        ("principal", MetadataFields::PRINCIPAL),
        ("action", MetadataFields::ACTION),
        ("resource", MetadataFields::RESOURCE),
        ("listener", MetadataFields::LISTENER),
        ("route", MetadataFields::ROUTE),
        ("dry_run", MetadataFields::DRY_RUN),
    ];

    /// No field: no `dynamic_metadata` at all.
    pub const NONE: MetadataFields = MetadataFields(0);
    /// Every field.
    pub const ALL: MetadataFields = MetadataFields((1 << 10) - 1);

    /// The field named `name`.
    pub fn named(name: &str) -> Option<MetadataFields> {
        MetadataFields::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// Whether every field of `other` is one of these.
    #[inline]
    pub const fn has(self, other: MetadataFields) -> bool {
        self.0 & other.0 == other.0
    }

    /// These fields and those of `other`.
    pub const fn with(self, other: MetadataFields) -> MetadataFields {
        MetadataFields(self.0 | other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl Default for MetadataFields {
    fn default() -> MetadataFields {
        MetadataFields::DECISION
            .with(MetadataFields::REASON)
            .with(MetadataFields::REVISION)
            .with(MetadataFields::DECISION_ID)
    }
}

/// Every action of the catalog, by lowercase name: what `context_extensions` may name.
#[derive(Debug, Default)]
pub struct KnownActions {
    by_lower: FxHashMap<Box<str>, KnownAction>,
}

#[derive(Debug)]
struct KnownAction {
    /// As the catalog spells it: `orders:GetOrder`.
    name: Box<str>,
    has_resource_types: bool,
}

impl KnownActions {
    pub fn of(catalog: &crate::bundle::catalog::Catalog) -> KnownActions {
        KnownActions {
            by_lower: catalog
                .actions()
                .map(|(s, a)| {
                    let name: Box<str> = format!("{}:{}", s.prefix, a.name).into();
                    (
                        name.to_ascii_lowercase().into(),
                        KnownAction {
                            name,
                            has_resource_types: !a.resource_types.is_empty(),
                        },
                    )
                })
                .collect(),
        }
    }

    fn get(&self, action: &str) -> Option<&KnownAction> {
        self.by_lower.get(action.to_ascii_lowercase().as_str())
    }
}

/// A host pattern, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    Any,
    Exact(Box<str>),
    /// `.example.com` for `*.example.com`.
    Suffix(Box<str>),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Suffix(s) => {
                host.len() > s.len()
                    && host
                        .get(host.len() - s.len()..)
                        .is_some_and(|t| t.eq_ignore_ascii_case(s))
            }
        }
    }

    /// Precedence among routes of one path: exact, then the longest suffix, then any.
    fn rank(&self) -> (u8, usize) {
        match self {
            HostPattern::Exact(_) => (2, 0),
            HostPattern::Suffix(s) => (1, s.len()),
            HostPattern::Any => (0, 0),
        }
    }
}

/// Where a context value comes from, and whether it may be a list (`"list": true`).
/// A key that is not a list takes exactly one value: a repeated parameter or header could
/// otherwise turn a condition off (a plain operator matches nothing on a list) while the
/// upstream reads one of the values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A header, lower-case. Envoy joins a repeated header's values with `,`, so a list is
    /// split there, and a single value may not hold one.
    Header(Box<str>, bool),
    /// A query parameter (decoded name).
    Query(Box<str>, bool),
}

/// One compiled route.
#[derive(Debug)]
struct Route {
    name: Box<str>,
    host: HostPattern,
    /// `None`: any method.
    methods: Option<Box<[Box<str>]>>,
    /// The path's segments (for the ambiguity check and tests).
    segments: Vec<Segment>,
    action: Box<str>,
    resource: ResourceTemplate,
    context: Vec<(Box<str>, Source)>,
    claim_keys: Vec<(String, String)>,
    role: Option<Box<str>>,
    dry_run: Option<bool>,
}

impl Route {
    fn accepts(&self, host: &str, method: &str) -> bool {
        self.host.matches(host)
            && self
                .methods
                .as_ref()
                .is_none_or(|ms| ms.iter().any(|m| **m == *method))
    }
}

/// A node of the path trie: one per distinct prefix of segments.
#[derive(Debug, Default)]
struct Node {
    /// Sorted by text, for a binary search.
    literals: Vec<(Box<str>, u32)>,
    param: Option<u32>,
    /// Routes whose `{rest...}` starts here, best first.
    rest: Vec<u32>,
    /// Routes whose path ends here, best first.
    end: Vec<u32>,
}

/// A listener's routes, compiled: a trie of path segments whose nodes hold routes.
#[derive(Debug, Default)]
struct Trie {
    /// `nodes[0]` is the root.
    nodes: Vec<Node>,
}

/// A segment range `[start, end)` of the request's path: one parameter's value.
type Capture = (usize, usize);

impl Trie {
    fn build(routes: &[Route]) -> Trie {
        let mut t = Trie {
            nodes: vec![Node::default()],
        };
        for (i, r) in routes.iter().enumerate() {
            let mut at = 0usize;
            for seg in &r.segments {
                match seg {
                    Segment::Lit(text) => {
                        let next = t.nodes.len() as u32;
                        let Some(node) = t.nodes.get_mut(at) else {
                            break;
                        };
                        match node.literals.binary_search_by(|(l, _)| (**l).cmp(text)) {
                            Ok(k) => at = node.literals.get(k).map_or(0, |l| l.1 as usize),
                            Err(k) => {
                                node.literals.insert(k, (text.clone(), next));
                                t.nodes.push(Node::default());
                                at = next as usize;
                            }
                        }
                    }
                    Segment::Param => {
                        let next = t.nodes.len() as u32;
                        let Some(node) = t.nodes.get_mut(at) else {
                            break;
                        };
                        match node.param {
                            Some(p) => at = p as usize,
                            None => {
                                node.param = Some(next);
                                t.nodes.push(Node::default());
                                at = next as usize;
                            }
                        }
                    }
                    Segment::Rest => {}
                }
            }
            if let Some(node) = t.nodes.get_mut(at) {
                if matches!(r.segments.last(), Some(Segment::Rest)) {
                    node.rest.push(i as u32);
                } else {
                    node.end.push(i as u32);
                }
            }
        }
        // Best first: the host's precedence, then a route that lists methods; the name only
        // makes the order total (routes that could tie were refused at load).
        let key = |i: &u32| {
            let r = routes.get(*i as usize);
            (
                std::cmp::Reverse(r.map(|r| r.host.rank())),
                r.is_some_and(|r| r.methods.is_none()),
                r.map(|r| r.name.clone()),
            )
        };
        for n in &mut t.nodes {
            n.rest.sort_by_key(key);
            n.end.sort_by_key(key);
        }
        t
    }

    /// The most specific route accepting the request, with its captures (in the order of
    /// the route's parameters). Each node is visited at most once.
    fn find(
        &self,
        routes: &[Route],
        at: usize,
        depth: usize,
        segs: &[Cow<'_, str>],
        accept: &dyn Fn(&Route) -> bool,
        caps: &mut SmallVec<[Capture; 8]>,
    ) -> Option<u32> {
        let node = self.nodes.get(at)?;
        let pick = |list: &[u32]| {
            list.iter()
                .copied()
                .find(|i| routes.get(*i as usize).is_some_and(accept))
        };
        let Some(seg) = segs.get(depth) else {
            return pick(&node.end);
        };
        if let Ok(k) = node
            .literals
            .binary_search_by(|(l, _)| (**l).cmp(seg.as_ref()))
            && let Some((_, next)) = node.literals.get(k)
            && let Some(found) = self.find(routes, *next as usize, depth + 1, segs, accept, caps)
        {
            return Some(found);
        }
        if let Some(next) = node.param {
            caps.push((depth, depth + 1));
            if let Some(found) = self.find(routes, next as usize, depth + 1, segs, accept, caps) {
                return Some(found);
            }
            caps.pop();
        }
        let found = pick(&node.rest)?;
        caps.push((depth, segs.len()));
        Some(found)
    }
}

/// A listener: its routes and who may be asking, compiled from `routes/NAME.json`.
#[derive(Debug)]
pub struct Listener {
    name: String,
    account: String,
    region: String,
    unmatched_allows: bool,
    dry_run: bool,
    principals: PrincipalSources,
    trusted_hops: usize,
    upstream_headers: UpstreamHeaders,
    metadata: MetadataFields,
    routes: Vec<Route>,
    trie: Trie,
    /// Whether some route reads the query string.
    reads_query: bool,
    actions: Arc<KnownActions>,
}

impl Listener {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `{account}` in templates.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `{region}` in templates.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Whether a request no route matches is allowed (`"unmatched": "allow"`).
    pub fn unmatched_allows(&self) -> bool {
        self.unmatched_allows
    }

    /// The listener-wide dry-run default.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    pub fn principals(&self) -> &PrincipalSources {
        &self.principals
    }

    /// `x-forwarded-for` hops trusted for `aws:SourceIp`.
    pub fn trusted_hops(&self) -> usize {
        self.trusted_hops
    }

    pub fn upstream_headers(&self) -> &UpstreamHeaders {
        &self.upstream_headers
    }

    /// The answer's fields given to Envoy as `dynamic_metadata`.
    pub fn metadata(&self) -> MetadataFields {
        self.metadata
    }

    /// The routes' names, in the document's order.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| &*r.name)
    }

    /// The route a request takes, its action, resource and request-derived context;
    /// `Ok(None)` when no route matches (the face applies `unmatched`); `Err` for a request
    /// warden refuses to decide (see the module's header).
    pub fn route<'l, H: Header>(
        &'l self,
        req: &HttpRequest<'_, H>,
    ) -> Result<Option<Routed<'l>>, Refusal> {
        if req.path.len() > MAX_PATH_BYTES {
            return Err(Refusal::new(
                "path_too_long",
                format!(
                    "the path has {} bytes; at most {MAX_PATH_BYTES}",
                    req.path.len()
                ),
            ));
        }
        // By byte (`?` is ASCII): `split_once` set up a char searcher on every request.
        let (path, query) = match memchr::memchr(b'?', req.path.as_bytes()) {
            Some(i) => (req.path.get(..i).unwrap_or_default(), req.path.get(i + 1..)),
            None => (req.path, None),
        };
        let segs = split_path(path)?;
        if let Some(action) = req.extensions.get(EXT_ACTION) {
            return self.by_extensions(action, req.extensions).map(Some);
        }
        for key in [EXT_RESOURCE, EXT_DRY_RUN] {
            if req.extensions.contains_key(key) {
                return Err(Refusal::new(
                    "invalid_extension",
                    format!("`{key}` is set without `{EXT_ACTION}`"),
                ));
            }
        }
        let host = host_without_port(req.host);
        let accept = |r: &Route| r.accepts(host, req.method);
        let mut caps: SmallVec<[Capture; 8]> = SmallVec::new();
        let Some(i) = self
            .trie
            .find(&self.routes, 0, 0, &segs, &accept, &mut caps)
        else {
            return Ok(None);
        };
        // Neither can fail (the trie is built from these routes and captures these
        // segments); if one did, the request is refused, never treated as unmatched, which
        // a listener may allow.
        let internal = || Refusal::new("internal", "the routes and the request disagree");
        let route = self.routes.get(i as usize).ok_or_else(internal)?;
        let values: SmallVec<[Cow<'_, str>; 8]> = caps
            .iter()
            .map(|&(start, end)| match segs.get(start..end) {
                Some([one]) => Ok(Cow::Borrowed(one.as_ref())),
                Some(many) => Ok(Cow::Owned(many.join("/"))),
                None => Err(internal()),
            })
            .collect::<Result<_, _>>()?;
        let resource = route.resource.render(&values)?;
        let context = if route.context.is_empty() {
            Context::new()
        } else {
            let query = if self.reads_query {
                parse_query(query.unwrap_or(""))?
            } else {
                Vec::new()
            };
            request_context(&route.context, req.headers, &query)?
        };
        Ok(Some(Routed {
            route: &route.name,
            action: &route.action,
            resource,
            context,
            claim_keys: &route.claim_keys,
            role: route.role.as_deref(),
            dry_run: route.dry_run.unwrap_or(self.dry_run),
        }))
    }

    /// The question named by `context_extensions`.
    fn by_extensions<'l>(
        &'l self,
        action: &str,
        ext: &HashMap<String, String>,
    ) -> Result<Routed<'l>, Refusal> {
        let Some(known) = self.actions.get(action) else {
            return Err(Refusal::new(
                "unknown_action",
                format!("`{EXT_ACTION}` names `{action}`, which the catalog does not know"),
            ));
        };
        let resource = match ext.get(EXT_RESOURCE) {
            Some(text) => {
                let t = template::parse_resource(text, &self.account, &self.region, &[])
                    .map_err(|(_, m)| Refusal::new("invalid_resource", m))?;
                if t.is_star() == known.has_resource_types {
                    return Err(Refusal::new(
                        "invalid_resource",
                        star_message(&known.name, known.has_resource_types),
                    ));
                }
                t.render(&[])?
            }
            None if !known.has_resource_types => "*".to_owned(),
            None => {
                return Err(Refusal::new(
                    "missing_resource",
                    format!(
                        "`{}` acts on a resource; set `{EXT_RESOURCE}` beside `{EXT_ACTION}`",
                        known.name
                    ),
                ));
            }
        };
        let dry_run = match ext.get(EXT_DRY_RUN).map(String::as_str) {
            None => self.dry_run,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(Refusal::new(
                    "invalid_extension",
                    format!("`{EXT_DRY_RUN}` is `{other}`; expected `true` or `false`"),
                ));
            }
        };
        Ok(Routed {
            route: EXTENSIONS_ROUTE,
            action: &known.name,
            resource,
            context: Context::new(),
            claim_keys: &[],
            role: None,
            dry_run,
        })
    }
}

/// What is wrong with a resource `*` for an action with resource types, or an ARN for one
/// without.
fn star_message(action: &str, has_resource_types: bool) -> String {
    if has_resource_types {
        format!("`{action}` acts on a resource: name it with an ARN, not `*`")
    } else {
        format!("`{action}` has no resource types: its resource is `*`")
    }
}

/// `:authority` without its port (and one trailing dot).
fn host_without_port(host: &str) -> &str {
    let h = if host.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        match host.find(']') {
            Some(end) => host.get(..=end).unwrap_or(host),
            None => host,
        }
    } else {
        // By byte, as the path's `?`.
        match memchr::memrchr(b':', host.as_bytes()) {
            Some(i)
                if host
                    .get(i + 1..)
                    .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit())) =>
            {
                host.get(..i).unwrap_or(host)
            }
            _ => host,
        }
    };
    h.strip_suffix('.').unwrap_or(h)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s` (and `+` as a space when `plus`), borrowing when there is nothing to
/// decode; a decoded control character or invalid UTF-8 is refused.
fn decode(s: &str, plus: bool) -> Result<Cow<'_, str>, Refusal> {
    if !s.bytes().any(|b| b == b'%' || (plus && b == b'+')) {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let v = match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => h * 16 + l,
                    _ => {
                        return Err(Refusal::new(
                            "invalid_percent_encoding",
                            "a `%` not followed by two hexadecimal digits",
                        ));
                    }
                };
                if v < 0x20 || v == 0x7f {
                    return Err(Refusal::new(
                        "control_character",
                        format!("an encoded control character (`%{v:02X}`)"),
                    ));
                }
                out.push(v);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| {
        Refusal::new(
            "invalid_percent_encoding",
            "escapes that do not decode to UTF-8",
        )
    })
}

/// The path's segments, decoded, or what makes it undecidable (see the module's header).
fn split_path(path: &str) -> Result<SmallVec<[Cow<'_, str>; 8]>, Refusal> {
    let Some(body) = path.strip_prefix('/') else {
        return Err(Refusal::new(
            "path_not_absolute",
            "the path does not start with `/`",
        ));
    };
    let bytes = body.as_bytes();
    // Whether a segment may hold a `;`, sent or percent-encoded (`%3B`): most paths have
    // none, and skip the searches per segment.
    let mut semicolon = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b';' => semicolon = true,
            0x00..=0x1f | 0x7f => {
                return Err(Refusal::new(
                    "control_character",
                    "a control character in the path",
                ));
            }
            b'\\' => {
                return Err(Refusal::new(
                    "backslash",
                    "a `\\` in the path, which some servers read as `/`",
                ));
            }
            b' ' | b'#' | 0x80..=0xff => {
                return Err(Refusal::new(
                    "invalid_character",
                    "a space, `#` or non-ASCII byte in the path (they must be percent-encoded)",
                ));
            }
            b'%' => {
                semicolon = true;
                let (h, l) = (bytes.get(i + 1).copied(), bytes.get(i + 2).copied());
                if h == Some(b'2') && matches!(l, Some(b'f' | b'F'))
                    || h == Some(b'5') && matches!(l, Some(b'c' | b'C'))
                {
                    return Err(Refusal::new(
                        "encoded_slash",
                        "an encoded `/` or `\\` (`%2F`, `%5C`) in the path",
                    ));
                }
            }
            _ => {}
        }
    }
    let mut segs: SmallVec<[Cow<'_, str>; 8]> = SmallVec::new();
    if body.is_empty() {
        return Ok(segs);
    }
    let body = body.strip_suffix('/').unwrap_or(body);
    // Split on `/` by bytes: `str::split` with a `char` pattern costs a searcher per segment.
    let mut rest = Some(body);
    while let Some(left) = rest {
        let raw = match left.bytes().position(|b| b == b'/') {
            Some(slash) => {
                let (raw, tail) = left.split_at(slash);
                rest = tail.get(1..);
                raw
            }
            None => {
                rest = None;
                left
            }
        };
        if segs.len() == MAX_SEGMENTS {
            return Err(Refusal::new(
                "path_too_long",
                format!("the path has more than {MAX_SEGMENTS} segments"),
            ));
        }
        if raw.is_empty() {
            return Err(Refusal::new(
                "empty_segment",
                "an empty segment (`//`) in the path",
            ));
        }
        let seg = decode(raw, false)?;
        let before_params = if semicolon {
            seg.split(';').next().unwrap_or("")
        } else {
            &seg
        };
        if before_params == "." || before_params == ".." {
            return Err(Refusal::new(
                "dot_segment",
                "a `.` or `..` segment in the path",
            ));
        }
        // Servlet containers (Tomcat, Jetty, Spring) drop a segment's `;` parameters, so
        // `/orders/secret;x` would be decided on `order/secret;x` and served as
        // `/orders/secret`, and `/orders;x/42` would miss its route.
        if semicolon && seg.contains(';') {
            return Err(Refusal::new(
                "path_parameter",
                "a `;` (path parameter) in the path, which some servers drop before routing",
            ));
        }
        segs.push(seg);
    }
    Ok(segs)
}

/// The query's parameters, decoded (only when some route reads one).
fn parse_query(query: &str) -> Result<Vec<(Cow<'_, str>, &str)>, Refusal> {
    // Values are decoded only when a key takes them.
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(name, true)?, value));
    }
    Ok(out)
}

fn too_long(n: usize) -> Refusal {
    Refusal::new(
        "value_too_long",
        format!("a value for the context has {n} bytes; at most {MAX_VALUE_BYTES}"),
    )
}

/// A route's context keys from the request's headers and query.
fn request_context(
    sources: &[(Box<str>, Source)],
    headers: &[impl Header],
    query: &[(Cow<'_, str>, &str)],
) -> Result<Context, Refusal> {
    let mut entries: Vec<(String, ContextValue)> = Vec::with_capacity(sources.len());
    for (key, source) in sources {
        let mut values: SmallVec<[String; 1]> = SmallVec::new();
        let mut add = |v: Cow<'_, str>| {
            if values.len() == MAX_VALUES {
                return Err(Refusal::new(
                    "too_many_values",
                    format!("more than {MAX_VALUES} values for `{key}`"),
                ));
            }
            if v.len() > MAX_VALUE_BYTES {
                return Err(too_long(v.len()));
            }
            values.push(v.into_owned());
            Ok(())
        };
        let list = match source {
            Source::Header(name, list) => {
                for v in headers
                    .iter()
                    .filter(|h| h.name() == &**name)
                    .map(Header::value)
                {
                    if *list {
                        // Empty items (`a,,b`, `a,`) are dropped, as header parsers do.
                        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                            add(Cow::Borrowed(part))?;
                        }
                    } else {
                        add(Cow::Borrowed(v))?;
                    }
                }
                *list
            }
            Source::Query(name, list) => {
                for (_, v) in query.iter().filter(|(n, _)| *n == **name) {
                    if v.len() > MAX_VALUE_BYTES * 3 {
                        return Err(too_long(v.len()));
                    }
                    add(decode(v, true)?)?;
                }
                *list
            }
        };
        let ambiguous = |why: &str| {
            Refusal::new(
                "ambiguous_value",
                format!("`{key}` takes one value, and the request {why}"),
            )
        };
        let value = match (values.len(), list) {
            (0, _) => continue,
            (1, false)
                if matches!(source, Source::Header(..))
                    && values.iter().any(|v| v.contains(',')) =>
            {
                return Err(ambiguous("repeats its header (or its value holds a `,`)"));
            }
            (1, false) => ContextValue::Single(values.into_iter().next().unwrap_or_default()),
            (_, false) => return Err(ambiguous("repeats it")),
            (_, true) => ContextValue::Multi(values.into_vec()),
        };
        entries.push((key.to_string(), value));
    }
    // Keys are unique regardless of case (checked at load).
    Context::from_entries(entries)
        .map_err(|k| Refusal::new("invalid_context", format!("`{k}` is set twice")))
}

#[cfg(test)]
mod tests;

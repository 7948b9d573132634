//! Envoy's ext_authz, as a face of the one request pipeline: an HTTP request that Envoy
//! asks about becomes an IAM question (the listener's routes give the action, resource and
//! context; the listener's principal sources give the caller), the service decides it, and
//! the decision becomes Envoy's answer (OK with headers for the upstream, or 401/403 with a
//! small JSON body). Knows nothing of protobuf: `grpc::check` converts.
//!
//! In order, for each request:
//! 1. admission (the service's concurrency limit), then decoding (a request that does not
//!    decode is a 403 deny), then the serving snapshot: overload or no snapshot is a 503
//!    deny, never a gRPC error that `failure_mode_allow` could pass;
//! 2. the listener (`warden.listener` in the route's `context_extensions`, else `default`);
//! 3. the route: action, resource and request-derived context, or a refusal (a path warden
//!    cannot decide safely), or no route (denied unless the listener allows unmatched);
//! 4. the caller, from the listener's sources in order: a SigV4-signed request (an AWS
//!    SDK's `Authorization: AWS4-HMAC-SHA256 ...`, with a user's access key or a session's
//!    credentials), an OIDC bearer token (verified, then AssumeRoleWithWebIdentity into a
//!    role session), a session token alone in a named header (opt-in, for trusted hops), an
//!    mTLS peer (SPIFFE id mapped to a role session), a trusted header (opt-in). None → 401,
//!    never an allow. Signed requests and session tokens are presented to the service,
//!    which verifies them (a signature answers only for its service's actions) at the
//!    snapshot that decides; credentials that do not verify → 401 (`credentials_refused`);
//! 5. the server's own keys: `aws:SourceIp` (the peer, or an `x-forwarded-for` entry behind
//!    the listener's trusted hops), `aws:SecureTransport`, `aws:UserAgent`; the time keys
//!    come from the snapshot as for every face;
//! 6. the service decides at the snapshot the route was read from; a route or listener in
//!    dry-run lets a deny through, logged and counted.
//!
//! Every deny before the engine is recorded in the decision log and counted by reason
//! ([`REFUSALS`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smallvec::SmallVec;

use crate::caller::{Caller, Presented, Session, SignedRequest};
use crate::context::{Context, ContextValue};
use crate::eval::Decision;
use crate::oidc::{Claims, Verifier};
use crate::routes::{
    HttpRequest, Listener, MetadataFields, OidcSource, PrincipalSources, Routed, Sigv4Source,
};
use crate::service::{Item, Request, RequestError, Service, Shape};
use crate::snapshot::Snapshot;
use crate::telemetry::Face;

/// Every reason a Check request is denied before evaluation, as a stable code (the label of
/// `warden_check_refusals_total`). Route refusals and token errors keep their own codes.
pub const REFUSALS: &[&str] = &[
    // The request as a whole.
    "malformed_request",
    "unknown_listener",
    "no_route",
    "no_principal",
    // The service's own (`RequestError::code`).
    "invalid",
    "session_expired",
    "overloaded",
    "no_snapshot",
    "revision_behind",
    // The path and the route (`routes::Refusal`).
    "path_not_absolute",
    "encoded_slash",
    "backslash",
    "dot_segment",
    "path_parameter",
    "empty_segment",
    "control_character",
    "invalid_character",
    "invalid_percent_encoding",
    "path_too_long",
    "wildcard_in_value",
    "variable_in_value",
    "value_too_long",
    "too_many_values",
    "ambiguous_value",
    "unknown_action",
    "invalid_resource",
    "missing_resource",
    "invalid_extension",
    "invalid_context",
    "internal",
    // The caller.
    "token_malformed",
    "token_too_large",
    "token_unsupported_alg",
    "token_unknown_kid",
    "token_bad_signature",
    "token_wrong_issuer",
    "token_wrong_audience",
    "token_expired",
    "token_not_yet_valid",
    "token_unknown_provider",
    "token_no_keys",
    "no_role",
    "bad_session_name",
    "web_identity_denied",
    // A signature or a session token that does not verify (`RequestError::Unauthenticated`:
    // malformed, wrong signature, expired, unknown key, scoped to another service).
    "credentials_refused",
    "other",
];

/// Header entries one request may carry, at most (Envoy's own default is 100).
pub const MAX_HEADERS: usize = 256;
/// Route `context_extensions` entries one request may carry, at most (a route sets a few:
/// `warden.listener`, `warden.action`, ...).
pub const MAX_EXTENSIONS: usize = 64;
/// Bytes in a request's path (with its query), at most.
pub const MAX_PATH_BYTES: usize = 8192;
/// The listener a request names when its route sets none.
pub const DEFAULT_LISTENER: &str = "default";
/// The `context_extensions` key that names the listener.
pub const LISTENER_EXTENSION: &str = "warden.listener";

/// An HTTP request as Envoy reports it, converted from its `CheckRequest`: its text is
/// borrowed from the request's bytes where it can be (`'a`), so that reading a request
/// copies only what it must (a header name not in lower case, repeated headers joined).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpCheck<'a> {
    pub method: Cow<'a, str>,
    /// `:authority`.
    pub host: Cow<'a, str>,
    /// With the query string, as Envoy sent it (after its own normalisation).
    pub path: Cow<'a, str>,
    /// `http` or `https`, as the downstream connection was.
    pub scheme: Cow<'a, str>,
    /// Lower-case names; a header sent several times is one entry, its values joined by
    /// `,` (Envoy's `headers` encoding; `header_map` is joined the same way, so both
    /// encodings decide alike).
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The downstream peer's address.
    pub peer: Option<IpAddr>,
    /// The peer certificate's URI SAN (SPIFFE id) when the downstream used mTLS.
    pub peer_principal: Cow<'a, str>,
    /// The route's `context_extensions`.
    pub extensions: HashMap<String, String>,
    /// The claims Envoy's `jwt_authn` filter verified, from `metadata_context` (read only
    /// when the listener opts in).
    pub jwt_claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The request's body when it is known: as Envoy sent it (`with_request_body`, whole),
    /// or empty when the request declares none. `None`: not seen (a signed request then
    /// verifies only with a declared `x-amz-content-sha256`).
    pub body: Option<prost::bytes::Bytes>,
}

impl HttpCheck<'_> {
    /// The value of a header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| &**v)
    }
}

/// What Envoy is told. Its text is borrowed (`'v`) from what decided it (the snapshot's
/// listener and route, the caller, the decision) while the answer is written
/// ([`Checker::check_with`]); [`Verdict::into_owned`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'v> {
    /// Whether the request goes on to the upstream (an allow, or a deny in dry-run).
    pub allowed: bool,
    /// The HTTP status of a denied request: 401 without a principal, 403 for a deny, 503
    /// when warden cannot decide (overload, no snapshot).
    pub status: u16,
    /// Headers for the upstream (allowed) or for the client (denied).
    pub headers: SmallVec<[(Cow<'v, str>, Cow<'v, str>); 2]>,
    /// Headers removed from the request before it goes upstream, so a client cannot send
    /// the ones warden sets.
    pub remove: SmallVec<[Cow<'v, str>; 2]>,
    /// The body of a denied response (JSON).
    pub body: String,
    /// For Envoy's dynamic metadata (its access log).
    pub record: Record<'v>,
}

impl Verdict<'_> {
    /// The verdict with its text copied, for a caller that keeps it.
    pub fn into_owned(self) -> Verdict<'static> {
        let owned = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Verdict {
            allowed: self.allowed,
            status: self.status,
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (owned(k), owned(v)))
                .collect(),
            remove: self.remove.into_iter().map(owned).collect(),
            body: self.body,
            record: self.record.into_owned(),
        }
    }
}

/// What a Check decided, for Envoy's dynamic metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record<'v> {
    pub decision: Decision,
    /// The engine's reason code, or a [`REFUSALS`] code.
    pub reason: Cow<'v, str>,
    pub revision: u64,
    pub decision_id: Cow<'v, str>,
    pub principal: Cow<'v, str>,
    pub action: Cow<'v, str>,
    pub resource: Cow<'v, str>,
    pub listener: Cow<'v, str>,
    pub route: Cow<'v, str>,
    pub dry_run: bool,
    /// Which of these fields Envoy is given (the listener's `"metadata"`; the default
    /// when no listener was found).
    pub fields: MetadataFields,
}

impl Record<'_> {
    /// The record with its text copied.
    pub fn into_owned(self) -> Record<'static> {
        let owned = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Record {
            decision: self.decision,
            reason: owned(self.reason),
            revision: self.revision,
            decision_id: owned(self.decision_id),
            principal: owned(self.principal),
            action: owned(self.action),
            resource: owned(self.resource),
            listener: owned(self.listener),
            route: owned(self.route),
            dry_run: self.dry_run,
            fields: self.fields,
        }
    }
}

/// The Check face: routes, identifies, asks the service.
pub struct Checker {
    service: Arc<Service>,
    verifier: Arc<Verifier>,
    /// Role sessions a token was given, so that its next requests skip the trust policy:
    /// found by a keyed hash, confirmed by every input of the decision ([`Given::gave`]).
    /// A session whose trust decision reads the time is never kept.
    sessions: quick_cache::sync::Cache<u64, Arc<Given>>,
    /// The role session ARN an mTLS peer's SPIFFE id maps to, by listener and revision
    /// (the rules are matched once per peer, not per request); confirmed like `sessions`.
    peers: quick_cache::sync::Cache<u64, Arc<Peer>>,
    /// The key of `sessions`' and `peers`' hashes: foldhash with a random seed.
    hasher: quick_cache::DefaultHashBuilder,
}

/// An mTLS peer's role session, as a listener's rules mapped it at a revision.
struct Peer {
    revision: u64,
    listener: Box<str>,
    spiffe: Box<str>,
    arn: String,
}

/// Role sessions kept for their tokens, at most.
pub const SESSION_CACHE_ENTRIES: usize = 10_000;

/// A role session a token was given, with everything its trust decision read.
struct Given {
    revision: u64,
    provider: Box<str>,
    role: Box<str>,
    session_name: Box<str>,
    skew: Duration,
    claims: [u8; 32],
    session: Arc<Session>,
}

impl Given {
    fn gave(
        &self,
        (revision, provider, role): (u64, &str, &str),
        name: &str,
        skew: Duration,
        claims: &Claims,
    ) -> bool {
        self.revision == revision
            && self.claims == *claims.digest()
            && *self.provider == *provider
            && *self.role == *role
            && *self.session_name == *name
            && self.skew == skew
    }
}

/// Where a request stands once it has a route, for the deny it may still become.
struct Ask<'l> {
    listener: &'l Listener,
    routed: Option<Routed<'l>>,
    revision: u64,
}

impl Checker {
    pub fn new(service: Arc<Service>, verifier: Arc<Verifier>) -> Checker {
        Checker {
            service,
            verifier,
            sessions: quick_cache::sync::Cache::new(SESSION_CACHE_ENTRIES),
            peers: quick_cache::sync::Cache::new(SESSION_CACHE_ENTRIES),
            hasher: quick_cache::DefaultHashBuilder::default(),
        }
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Decides one HTTP request, which `decode` reads from the face's wire format once the
    /// request is admitted (so refused work costs nothing). Never an error: what cannot be
    /// decoded or decided is denied. The verdict, with its text copied.
    pub async fn check<'a>(
        &self,
        decode: impl FnOnce() -> Result<HttpCheck<'a>, String>,
    ) -> Verdict<'static> {
        self.check_with(decode, |v| v.into_owned()).await
    }

    /// [`Checker::check`], with the verdict handed to `answer` (a face writes its answer
    /// from it) while its text is still borrowed from what decided it.
    pub async fn check_with<'a, R>(
        &self,
        decode: impl FnOnce() -> Result<HttpCheck<'a>, String>,
        answer: impl FnOnce(Verdict<'_>) -> R,
    ) -> R {
        let admitted = match self.service.admit() {
            Ok(a) => a,
            Err(e) => return answer(self.unavailable(&e)),
        };
        let http = match decode() {
            Ok(http) => http,
            Err(message) => {
                tracing::debug!(message, "malformed check request");
                return answer(self.refuse("malformed_request", 403));
            }
        };
        let http = &http;
        let snapshot = match self.service.snapshot(0).await {
            Ok(s) => s,
            Err(e) => return answer(self.unavailable(&e)),
        };
        if let Err(code) = bounded(http) {
            return answer(self.refuse(code, 403));
        }
        let name = http
            .extensions
            .get(LISTENER_EXTENSION)
            .map_or(DEFAULT_LISTENER, String::as_str);
        let Some(listener) = snapshot.listener(name) else {
            return answer(self.refuse("unknown_listener", 403));
        };
        let request = HttpRequest {
            host: &http.host,
            method: &http.method,
            path: &http.path,
            headers: &http.headers,
            extensions: &http.extensions,
        };
        let routed = match listener.route(&request) {
            Ok(r) => r,
            Err(refusal) => {
                let ask = Ask {
                    listener,
                    routed: None,
                    revision: snapshot.revision(),
                };
                return answer(self.deny_before(&ask, None, refusal.code, 403));
            }
        };
        let ask = Ask {
            listener,
            routed,
            revision: snapshot.revision(),
        };
        let Some(routed) = &ask.routed else {
            if listener.unmatched_allows() {
                return answer(self.pass_unmatched(&ask));
            }
            return answer(self.deny_before(&ask, None, "no_route", 403));
        };
        let now = SystemTime::now();
        let (caller, claims) = match self.identify(&snapshot, &ask, routed, http, now).await {
            Ok(found) => found,
            Err((code, status)) => return answer(self.deny_before(&ask, None, code, status)),
        };
        let mut context = routed.context.clone();
        if let Some(claims) = &claims {
            for (key, claim) in routed.claim_keys {
                if let Some(value) = claims.get(claim).and_then(claim_value) {
                    context.insert(key, value);
                }
            }
        }
        // The server's keys alone are added in key order: sorted with nothing to sort.
        let alone = context.is_empty();
        server_keys(http, listener.trusted_hops(), &mut context);
        debug_assert!(!alone || context.iter().map(|(k, _)| k).is_sorted());
        let request = Request {
            caller: caller.clone(),
            context: if alone {
                context
            } else {
                in_key_order(context)
            },
            items: vec![Item {
                action: routed.action.to_owned(),
                resource: routed.resource.clone(),
                context: Context::new(),
            }],
            min_revision: 0,
            explain: false,
            shape: Shape::One,
            face: Face::Check,
            snapshot: Some(snapshot.clone()),
        };
        match self.service.decide_admitted(&admitted, request).await {
            Ok(decided) => {
                // Presented credentials: the caller is who they proved to be.
                let caller = decided.verified.unwrap_or(caller);
                let revision = decided.revision;
                let Some(decided) = decided.decisions.into_iter().next() else {
                    return answer(self.deny_before(&ask, Some(&caller), "other", 403));
                };
                let record = Record {
                    decision: decided.outcome.decision,
                    reason: Cow::Borrowed(decided.outcome.reason.as_str()),
                    revision,
                    decision_id: Cow::Borrowed(&decided.decision_id),
                    principal: Cow::Borrowed(caller.arn()),
                    action: Cow::Borrowed(routed.action),
                    resource: Cow::Borrowed(&routed.resource),
                    listener: Cow::Borrowed(listener.name()),
                    route: Cow::Borrowed(routed.route),
                    dry_run: routed.dry_run,
                    fields: listener.metadata(),
                };
                if decided.outcome.decision == Decision::Allow {
                    answer(self.allow(listener, Some(&caller), record))
                } else {
                    answer(self.deny(&ask, Some(&caller), record, 403))
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "check request refused by the service");
                let (code, status) = match e {
                    RequestError::SessionExpired { .. } => (e.code(), 401),
                    RequestError::Unauthenticated { .. } => ("credentials_refused", 401),
                    _ => (e.code(), 403),
                };
                answer(self.deny_before(&ask, Some(&caller), code, status))
            }
        }
    }

    /// The caller, from the listener's sources in order, with the verified claims when it
    /// came from a token. `Err` is a refusal code and its status.
    async fn identify(
        &self,
        snapshot: &Arc<Snapshot>,
        ask: &Ask<'_>,
        routed: &Routed<'_>,
        http: &HttpCheck<'_>,
        now: SystemTime,
    ) -> Result<(Caller, Option<Arc<Claims>>), (&'static str, u16)> {
        let PrincipalSources {
            sigv4,
            oidc,
            session_token,
            mtls,
            trusted_header,
        } = ask.listener.principals();
        if let Some(sigv4) = sigv4
            && let Some(signed) = signed_request(sigv4, http)?
        {
            return Ok((Caller::Presented(Arc::new(Presented::Signed(signed))), None));
        }
        if let Some(oidc) = oidc
            && let Some(found) = self.web_identity(snapshot, oidc, routed, http, now).await?
        {
            return Ok(found);
        }
        if let Some(header) = session_token
            && let Some(token) = http.header(&header.name)
            && !token.is_empty()
        {
            let token = Presented::SessionToken(token.to_owned());
            return Ok((Caller::Presented(Arc::new(token)), None));
        }
        if !http.peer_principal.is_empty() && !mtls.is_empty() {
            let (revision, listener) = (snapshot.revision(), ask.listener.name());
            let slot = self.slot(&(revision, listener, &http.peer_principal));
            if let Some(p) = self.peers.get(&slot)
                && p.revision == revision
                && *p.listener == *listener
                && *p.spiffe == *http.peer_principal
            {
                return Ok((Caller::Asserted(p.arn.clone()), None));
            }
            if let Some(found) = mtls.iter().find_map(|r| r.resolve(&http.peer_principal)) {
                let arn =
                    session_arn(&found.role, &found.session).ok_or(("bad_session_name", 403))?;
                let peer = Peer {
                    revision,
                    listener: listener.into(),
                    spiffe: (*http.peer_principal).into(),
                    arn: arn.clone(),
                };
                self.peers.insert(slot, Arc::new(peer));
                return Ok((Caller::Asserted(arn), None));
            }
        }
        if let Some(header) = trusted_header
            && let Some(value) = http.header(&header.name)
            && !value.is_empty()
        {
            return Ok((Caller::Asserted(value.to_owned()), None));
        }
        Err(("no_principal", 401))
    }

    /// Where `key` sits in the caches of this face (a hash keyed per process).
    fn slot(&self, key: &impl std::hash::Hash) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// A bearer token (or the claims `jwt_authn` verified) made a role session; `None`
    /// when the request carries no token, so the next source is tried. A token that does
    /// not verify is refused: it does not fall through to weaker sources.
    async fn web_identity(
        &self,
        snapshot: &Arc<Snapshot>,
        oidc: &OidcSource,
        routed: &Routed<'_>,
        http: &HttpCheck<'_>,
        now: SystemTime,
    ) -> Result<Option<(Caller, Option<Arc<Claims>>)>, (&'static str, u16)> {
        let skew = Duration::from_secs(oidc.skew_seconds);
        let claims = if oidc.from_metadata {
            // Envoy's `jwt_authn` verified the signature; the times, issuer and audience are
            // checked here all the same, against the provider the listener names.
            let Some(map) = &http.jwt_claims else {
                return Ok(None);
            };
            let claims = Claims::from_json(map.clone()).map_err(|e| (token_code(e.code), 401))?;
            claims
                .check_time(skew, now)
                .map_err(|e| (token_code(e.code), 401))?;
            Arc::new(claims)
        } else {
            let Some(value) = http.header("authorization") else {
                return Ok(None);
            };
            let token = bearer(value).ok_or(("token_malformed", 401))?;
            self.verifier
                .verify(snapshot, &oidc.provider, token, skew, now)
                .await
                .map_err(|e| (token_code(e.code), 401))?
        };
        // The token's claim names the role when the listener says which claim; else the
        // route's role, else the listener's.
        let claimed = oidc.role_claim.as_deref().and_then(|c| claims.get(c));
        // Borrowed: copied only into a new session's cache entry.
        let role: &str = match (claimed, routed.role.or(oidc.role.as_deref())) {
            (Some(serde_json::Value::String(role)), _) => role,
            (Some(_), _) | (None, None) => return Err(("no_role", 403)),
            (None, Some(role)) => role,
        };
        // `sub` (the usual session claim) is read as the claims hold it, without a lookup
        // in the map of every claim; it is the map's `sub` when that is a string.
        let session_name: Cow<'_, str> = match claims.subject() {
            Some(sub) if oidc.session_claim == "sub" => Cow::Borrowed(sub),
            _ => match claims.get(&oidc.session_claim) {
                Some(serde_json::Value::String(s)) => Cow::Borrowed(s),
                Some(serde_json::Value::Number(n)) => Cow::Owned(n.to_string()),
                _ => return Err(("bad_session_name", 403)),
            },
        };
        let at = (snapshot.revision(), oidc.provider.as_str(), role);
        let slot = self.slot(&(at, &*session_name, skew, claims.digest()));
        if let Some(given) = self.sessions.get(&slot)
            && given.gave(at, &session_name, skew, &claims)
        {
            return Ok(Some((Caller::Session(given.session.clone()), Some(claims))));
        }
        let session = snapshot
            .assume_role_with_web_identity(
                &oidc.provider,
                role,
                &session_name,
                &claims,
                (now, skew),
            )
            .map_err(|e| {
                tracing::debug!(error = %e.message, role, "web identity refused");
                let code = match e.code {
                    "unknown_role" => "no_role",
                    "invalid_session_name" => "bad_session_name",
                    "expired" => "token_expired",
                    "unknown_provider" => "token_unknown_provider",
                    "wrong_issuer" => "token_wrong_issuer",
                    "wrong_audience" => "token_wrong_audience",
                    _ => "web_identity_denied",
                };
                let status = if code.starts_with("token_") { 401 } else { 403 };
                (code, status)
            })?;
        // INVARIANT (cache never outlives a condition): a trust decision that reads the
        // time is made again for every request.
        if !snapshot.web_identity_reads_the_time(role) {
            self.sessions.insert(
                slot,
                Arc::new(Given {
                    revision: at.0,
                    provider: oidc.provider.as_str().into(),
                    role: role.into(),
                    session_name: (*session_name).into(),
                    skew,
                    claims: *claims.digest(),
                    session: session.clone(),
                }),
            );
        }
        Ok(Some((Caller::Session(session), Some(claims))))
    }

    /// Overload or no snapshot: warden cannot decide, so the request is denied (503) — an
    /// answer, not a gRPC error, so that `failure_mode_allow` cannot pass it.
    fn unavailable(&self, e: &RequestError) -> Verdict<'static> {
        self.refuse(e.code(), 503)
    }

    /// A deny with no listener to consult (no dry-run, no headers of its own).
    fn refuse(&self, code: &'static str, status: u16) -> Verdict<'static> {
        self.service.telemetry().metrics.check_refused(code);
        let decision_id = self.service.refused(
            Face::Check,
            &Caller::Asserted(String::new()),
            ("", ""),
            0,
            code,
        );
        let record = Record {
            decision: Decision::ImplicitDeny,
            reason: Cow::Borrowed(code),
            decision_id: Cow::Owned(decision_id),
            ..Record::default()
        };
        denied(record, status)
    }

    /// A deny decided before the engine: recorded and counted, and let through in dry-run.
    fn deny_before<'v>(
        &self,
        ask: &'v Ask<'_>,
        caller: Option<&'v Caller>,
        code: &'static str,
        status: u16,
    ) -> Verdict<'v> {
        self.service.telemetry().metrics.check_refused(code);
        let nobody = Caller::Asserted(String::new());
        let (action, resource, route) = match &ask.routed {
            Some(r) => (r.action, r.resource.as_str(), r.route),
            None => ("", "", ""),
        };
        let decision_id = self.service.refused(
            Face::Check,
            caller.unwrap_or(&nobody),
            (action, resource),
            ask.revision,
            code,
        );
        let caller = caller.filter(|c| !c.arn().is_empty());
        let record = Record {
            decision: Decision::ImplicitDeny,
            reason: Cow::Borrowed(code),
            revision: ask.revision,
            decision_id: Cow::Owned(decision_id),
            principal: Cow::Borrowed(caller.map_or("", Caller::arn)),
            action: Cow::Borrowed(action),
            resource: Cow::Borrowed(resource),
            listener: Cow::Borrowed(ask.listener.name()),
            route: Cow::Borrowed(route),
            dry_run: dry_run(ask),
            fields: ask.listener.metadata(),
        };
        self.deny(ask, caller, record, status)
    }

    /// A deny, or — in dry-run — the request let through with what would have happened
    /// (and the principal, when one was established).
    fn deny<'v>(
        &self,
        ask: &'v Ask<'_>,
        caller: Option<&'v Caller>,
        record: Record<'v>,
        status: u16,
    ) -> Verdict<'v> {
        if dry_run(ask) {
            self.service.telemetry().metrics.check_dry_run.increment(1);
            let mut record = record;
            record.dry_run = true;
            return self.allow(ask.listener, caller, record);
        }
        denied(record, status)
    }

    /// A request no route matched, on a listener that lets those through.
    fn pass_unmatched<'v>(&self, ask: &'v Ask<'_>) -> Verdict<'v> {
        let decision_id = self.service.refused(
            Face::Check,
            &Caller::Asserted(String::new()),
            ("", ""),
            ask.revision,
            "unmatched_allowed",
        );
        let record = Record {
            decision: Decision::Allow,
            reason: Cow::Borrowed("unmatched_allowed"),
            revision: ask.revision,
            decision_id: Cow::Owned(decision_id),
            listener: Cow::Borrowed(ask.listener.name()),
            fields: ask.listener.metadata(),
            ..Record::default()
        };
        self.allow(ask.listener, None, record)
    }

    /// OK, with the listener's headers for the upstream: the principal (removed when there
    /// is none, so a client cannot send its own) and the decision id.
    fn allow<'v>(
        &self,
        listener: &'v Listener,
        caller: Option<&'v Caller>,
        record: Record<'v>,
    ) -> Verdict<'v> {
        let names = listener.upstream_headers();
        let mut headers = SmallVec::new();
        let mut remove = SmallVec::new();
        if let Some(name) = &names.principal {
            // A caller whose credentials the service verified is not named here (the
            // service does not hand its verified caller back): no header, and the client's
            // own removed, rather than an empty or a forged one.
            match caller.map(Caller::arn).filter(|arn| !arn.is_empty()) {
                Some(arn) => headers.push((Cow::Borrowed(name.as_str()), Cow::Borrowed(arn))),
                None => remove.push(Cow::Borrowed(name.as_str())),
            }
        }
        // A bearer session token is warden's to read: the upstream never sees it.
        if let Some(token) = &listener.principals().session_token {
            remove.push(Cow::Borrowed(token.name.as_str()));
        }
        if let Some(name) = &names.decision_id {
            headers.push((Cow::Borrowed(name.as_str()), record.decision_id.clone()));
        }
        Verdict {
            allowed: true,
            status: 200,
            headers,
            remove,
            body: String::new(),
            record,
        }
    }
}

/// The ARN of a session of `role` (`arn:aws:iam::ACCT:role/PATH/NAME`) named `session`
/// (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`); `None` when the session name is not
/// one AWS allows (`[\w+=,.@-]{2,64}`) or the role is not a role ARN.
pub fn session_arn(role: &str, session: &str) -> Option<String> {
    let valid = (2..=64).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    let mut parts = role.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
    (valid && !name.is_empty())
        .then(|| format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session}"))
}

/// Dry-run is the route's, or the listener's when no route was taken.
fn dry_run(ask: &Ask<'_>) -> bool {
    match &ask.routed {
        Some(r) => r.dry_run,
        None => ask.listener.dry_run(),
    }
}

/// A denied answer: the status, and a small JSON body (decision, reason, decision id).
fn denied(record: Record<'_>, status: u16) -> Verdict<'_> {
    let body = serde_json::json!({
        "decision": record.decision.as_str(),
        "reason": record.reason,
        "decision_id": record.decision_id,
    })
    .to_string();
    let mut headers: SmallVec<[(Cow<'_, str>, Cow<'_, str>); 2]> = SmallVec::new();
    headers.push((
        Cow::Borrowed("content-type"),
        Cow::Borrowed("application/json"),
    ));
    if status == 401 {
        let error = if record.reason.starts_with("token_") {
            r#"Bearer error="invalid_token""#
        } else if record.reason == "credentials_refused" {
            "AWS4-HMAC-SHA256"
        } else {
            "Bearer"
        };
        headers.push((Cow::Borrowed("www-authenticate"), Cow::Borrowed(error)));
    }
    Verdict {
        allowed: false,
        status,
        headers,
        remove: SmallVec::new(),
        body,
        record,
    }
}

/// Counts and sizes, before anything that grows with them.
fn bounded(http: &HttpCheck<'_>) -> Result<(), &'static str> {
    if http.headers.len() > MAX_HEADERS || http.path.len() > MAX_PATH_BYTES {
        return Err("malformed_request");
    }
    Ok(())
}

/// The request as its sender signed it, when it carries a SigV4 signature the listener
/// accepts: the `Authorization: AWS4-HMAC-SHA256 ...` header form, and the presigned query
/// form when the listener allows it. `Ok(None)`: no signature, so the next source is tried.
/// What is read here is only a claim (no crypto): the service verifies it. A signature too
/// malformed to read is refused here, as the service would.
fn signed_request(
    source: &Sigv4Source,
    http: &HttpCheck<'_>,
) -> Result<Option<SignedRequest>, (&'static str, u16)> {
    let header_form = http
        .header("authorization")
        .is_some_and(|v| v.starts_with("AWS4-"));
    if !header_form && !source.presigned {
        return Ok(None);
    }
    let has_host = http.header("host").is_some() || http.header(":authority").is_some();
    let mut headers: Vec<(String, String)> = http
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !has_host && !http.host.is_empty() {
        headers.push((":authority".to_owned(), http.host.to_string()));
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = crate::sigv4::HttpRequest {
        method: &http.method,
        target: &http.path,
        headers: &pairs,
        payload: crate::sigv4::Payload::Unknown,
    };
    match crate::sigv4::parse(&request) {
        Ok(None) => return Ok(None),
        Ok(Some(_)) => {}
        Err(e) => {
            tracing::debug!(error = %e.message, "signature refused");
            return Err(("credentials_refused", 401));
        }
    }
    drop(pairs);
    Ok(Some(SignedRequest {
        method: http.method.to_string(),
        target: http.path.to_string(),
        headers,
        body: http.body.clone(),
    }))
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme case-insensitively).
fn bearer(value: &str) -> Option<&str> {
    let space = memchr::memchr(b' ', value.as_bytes())?;
    let (scheme, token) = (value.get(..space)?, value.get(space + 1..)?);
    let token = token.trim_start_matches(' ');
    // Bytes, not chars: both are ASCII, and a token is scanned on every request.
    let plain = memchr::memchr2(b' ', b',', token.as_bytes()).is_none();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && plain).then_some(token)
}

/// The refusal code of a token error (`token_` and the verifier's code).
fn token_code(code: &str) -> &'static str {
    REFUSALS
        .iter()
        .find(|r| r.strip_prefix("token_") == Some(code))
        .copied()
        .unwrap_or("token_malformed")
}

/// A claim as a context value: a string, a number or a boolean as text, a list of those as
/// a list; anything else (an object) is not a value.
fn claim_value(claim: &serde_json::Value) -> Option<ContextValue> {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match claim {
        Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<String>>>()
            .map(ContextValue::Multi),
        other => scalar(other).map(ContextValue::Single),
    }
}

/// The context sorted by key, as a face's decoder hands it over (`Context::from_entries`).
/// The service caches a decision only for a context it kept as sent, in order; the keys
/// added here one by one (the route's, the claims', then `aws:SourceIp`,
/// `aws:SecureTransport`, `aws:UserAgent`) are not, so without this no Check was ever
/// answered from the cache.
fn in_key_order(context: Context) -> Context {
    if context.iter().map(|(k, _)| k).is_sorted() {
        return context;
    }
    let entries = context
        .iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    // The keys are distinct (`Context::insert` replaces), so this does not fail; if it
    // did, the context as built is still right, only not cached.
    Context::from_entries(entries).unwrap_or(context)
}

/// The keys the server fills from the request: `aws:SourceIp`, `aws:SecureTransport`,
/// `aws:UserAgent`. A route cannot map a header into them (the routes document refuses it).
fn server_keys(http: &HttpCheck<'_>, trusted_hops: usize, context: &mut Context) {
    // Added in key order, so that a context that had none before stays sorted (see
    // `in_key_order`); named in lower case, as a context holds them. Room for exactly the
    // keys added.
    let secure = http.scheme.eq_ignore_ascii_case("https");
    let ip = source_ip(http, trusted_hops);
    let agent = http.header("user-agent");
    context.reserve(1 + usize::from(ip.is_some()) + usize::from(agent.is_some()));
    context.insert_lowercase(
        "aws:securetransport",
        ContextValue::Single(if secure { "true" } else { "false" }.to_owned()),
    );
    if let Some(ip) = ip {
        context.insert_lowercase("aws:sourceip", ContextValue::Single(ip_text(ip)));
    }
    if let Some(agent) = agent {
        context.insert_lowercase("aws:useragent", ContextValue::Single(agent.to_owned()));
    }
}

/// An address as `Display` writes it; an IPv4 one (most peers) without the formatter's
/// machinery, which cost a Check more than a thousand instructions.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// The client's address: with no trusted hops, the peer; with N, the Nth `x-forwarded-for`
/// entry from the right (each trusted proxy appends the address it saw). When the header has
/// fewer entries than that, or the entry is not an address, the request did not come through
/// the trusted proxies as declared, and the peer — a fact, not a claim — is used.
pub fn source_ip(http: &HttpCheck<'_>, trusted_hops: usize) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return http.peer;
    }
    let forwarded = http.header("x-forwarded-for").unwrap_or_default();
    let entries: Vec<&str> = forwarded.split(',').map(str::trim).collect();
    entries
        .len()
        .checked_sub(trusted_hops)
        .and_then(|i| entries.get(i))
        .and_then(|e| e.parse().ok())
        .or(http.peer)
}

#[cfg(test)]
mod tests;

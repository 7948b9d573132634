//! The decision flow of AWS IAM (reference §3): pure, synchronous, and unable to fail.
//!
//! Explicit deny anywhere wins; then the RCP and SCP gates; then the resource-based policy
//! and identity paths, with permissions boundaries and session policies capping what the
//! principal's side grants. The outcome names the statements that decided it.

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::compile::PolicySet;
use crate::policy::principal::PrincipalMatch;
use crate::policy::{Effect, Policy, PolicyKind, Statement};
use crate::request::{PrincipalKind, Request};

/// What a request is answered with; by default, nothing allows it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    #[default]
    ImplicitDeny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the decision came out as it did: a stable code (`snake_case` of the variant), usable
/// as a metric label. The list, the codes and each reason's decision derive from this enum,
/// so a new reason cannot be left out of the metrics.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    /// A `Deny` statement applied somewhere.
    ExplicitDeny,
    /// `sts:GetCallerIdentity` needs no permission.
    CallerIdentity,
    /// The identity policies allowed, within any boundary and session policy.
    IdentityAllow,
    /// The resource policy named the caller itself (or `*`).
    ResourcePolicyDirect,
    /// The resource policy named the caller's role (or parent user), within the caps.
    ResourcePolicyRole,
    /// The account's root user acts in its own account.
    RootUser,
    /// Cross-account: both the principal's side and the resource policy allowed.
    CrossAccountAllow,
    /// An organization level had no SCP statement allowing the action.
    ScpNoAllow,
    /// No identity policy (nor resource policy) allowed the request.
    NoIdentityAllow,
    /// The permissions boundary does not allow the action.
    BoundaryNoAllow,
    /// The session policy does not allow the action.
    SessionPolicyNoAllow,
    /// A federated-user session without a session policy has no identity permissions.
    FederatedSessionNoPolicy,
    /// Cross-account: the resource policy does not grant the caller or its account.
    CrossAccountNoResourceAllow,
    /// Cross-account: the principal's own account does not allow.
    CrossAccountNoIdentityAllow,
    /// The service needs the resource policy to trust the caller (role trust, KMS keys).
    ResourcePolicyRequired,
    /// Anonymous and service callers need a resource-policy grant.
    NoResourceAllow,
    /// The principal is not known to the snapshot.
    UnknownPrincipal,
    /// The snapshot is inconsistent (an index entry names no statement): the request is
    /// denied rather than decided without the statement, and the server logs it.
    InternalError,
}

impl Reason {
    /// Every reason, in declaration order (metric label sets are built from it).
    pub fn all() -> impl Iterator<Item = Reason> {
        <Reason as strum::IntoEnumIterator>::iter()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The decision a reason belongs to.
    pub fn decision(self) -> Decision {
        match self {
            Reason::ExplicitDeny => Decision::ExplicitDeny,
            Reason::CallerIdentity
            | Reason::IdentityAllow
            | Reason::ResourcePolicyDirect
            | Reason::ResourcePolicyRole
            | Reason::RootUser
            | Reason::CrossAccountAllow => Decision::Allow,
            Reason::ScpNoAllow
            | Reason::NoIdentityAllow
            | Reason::BoundaryNoAllow
            | Reason::SessionPolicyNoAllow
            | Reason::FederatedSessionNoPolicy
            | Reason::CrossAccountNoResourceAllow
            | Reason::CrossAccountNoIdentityAllow
            | Reason::ResourcePolicyRequired
            | Reason::NoResourceAllow
            | Reason::UnknownPrincipal
            | Reason::InternalError => Decision::ImplicitDeny,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub kind: PolicyKind,
    /// The organization level of an SCP or RCP (0 = root); `None` for other layers.
    pub level: Option<usize>,
    pub policy: Arc<str>,
    /// The statement's position in its policy.
    pub index: usize,
    pub sid: Option<Arc<str>>,
    pub effect: Effect,
}

impl fmt::Display for Matched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(level) = self.level {
            write!(f, " level {level}")?;
        }
        write!(f, " {}", self.policy)?;
        match &self.sid {
            Some(sid) => write!(f, " Sid {sid}"),
            None => write!(f, " Statement[{}]", self.index),
        }
    }
}

/// A decision with its reason and the statements that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub reason: Reason,
    /// The layer whose deny (explicit, or missing allow) decided; `None` for an Allow.
    pub denied_by: Option<PolicyKind>,
    pub statements: Vec<Matched>,
}

impl Outcome {
    fn allow(reason: Reason, statements: Vec<Matched>) -> Outcome {
        Outcome {
            decision: Decision::Allow,
            reason,
            denied_by: None,
            statements,
        }
    }

    fn implicit(reason: Reason, layer: PolicyKind) -> Outcome {
        Outcome {
            decision: Decision::ImplicitDeny,
            reason,
            denied_by: Some(layer),
            statements: Vec::new(),
        }
    }

    /// The outcome when a layer could not be read (see [`Reason::InternalError`]).
    fn internal_error(layer: PolicyKind) -> Outcome {
        Outcome::implicit(Reason::InternalError, layer)
    }

    /// The outcome for a principal the snapshot does not know.
    pub fn unknown_principal() -> Outcome {
        Outcome {
            decision: Decision::ImplicitDeny,
            reason: Reason::UnknownPrincipal,
            denied_by: Some(PolicyKind::Identity),
            statements: Vec::new(),
        }
    }
}

/// Every policy that applies to one request, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Policies<'a> {
    /// The principal's identity policies (for a session: its role's).
    pub identity: &'a PolicySet,
    /// The target's resource-based policies, empty when it has none: usually one; several
    /// when its exact ARN and ARN patterns each have one. They form one layer, read in
    /// this order.
    pub resource: &'a [Arc<PolicySet>],
    pub boundary: Option<&'a PolicySet>,
    pub session: Option<&'a PolicySet>,
    /// SCP levels from the root down to the principal's account; empty when the account
    /// is not governed (no organization, the management account, a service caller).
    pub scps: &'a [Arc<PolicySet>],
    /// RCP levels on the resource's side. The full-access RCP is implied at every level,
    /// so these act only through `Deny`.
    pub rcps: &'a [Arc<PolicySet>],
    /// Whether the service needs the resource policy to trust the caller even in the same
    /// account (role trust policies, KMS key policies).
    pub resource_policy_required: bool,
}

/// What one layer's statements said.
#[derive(Default)]
struct Scan<'p> {
    allow: Option<Hit<'p>>,
    /// The strongest principal match of an allowing resource-policy statement.
    allow_match: Option<PrincipalMatch>,
    denies: Vec<Hit<'p>>,
    /// An index entry named no statement: the layer cannot be decided, and the request is
    /// denied (fail closed) rather than decided without it.
    broken: bool,
}

#[derive(Clone, Copy)]
struct Hit<'p> {
    kind: PolicyKind,
    policy: &'p Policy,
    statement: &'p Statement,
}

impl Hit<'_> {
    fn matched(&self) -> Matched {
        self.matched_at(None)
    }

    /// The statement, at this organization level.
    fn matched_at(&self, level: Option<usize>) -> Matched {
        Matched {
            kind: self.kind,
            level,
            policy: self.policy.id.clone(),
            index: self.statement.index,
            sid: self.statement.sid.clone(),
            effect: self.statement.effect,
        }
    }
}

/// Decides one request. Pure: no I/O, no failure; allocation only for the outcome.
pub fn evaluate(req: &Request<'_>, policies: &Policies<'_>) -> Outcome {
    let principal = req.principal;
    if req.action() == "sts:getcalleridentity" && principal.is_authenticated() {
        return Outcome::allow(Reason::CallerIdentity, Vec::new());
    }
    let has_boundary = policies.boundary.is_some();
    let id = scan(req, policies.identity, PolicyKind::Identity, has_boundary);
    let pb = policies
        .boundary
        .map(|s| scan(req, s, PolicyKind::Boundary, has_boundary));
    let sp = policies
        .session
        .map(|s| scan(req, s, PolicyKind::Session, has_boundary));
    let rbp = (!policies.resource.is_empty()).then(|| {
        let mut out = Scan::default();
        for set in policies.resource {
            scan_into(req, set, PolicyKind::Resource, has_boundary, &mut out);
        }
        out
    });

    // INVARIANT (fail closed): a layer whose index names a statement that is not there is
    // not decided without it; the whole request is denied.
    let broken = |s: &Option<Scan<'_>>| s.as_ref().is_some_and(|s| s.broken);
    if id.broken || broken(&pb) || broken(&sp) || broken(&rbp) {
        let layer = [
            (id.broken, PolicyKind::Identity),
            (broken(&pb), PolicyKind::Boundary),
            (broken(&sp), PolicyKind::Session),
        ]
        .into_iter()
        .find_map(|(b, kind)| b.then_some(kind))
        .unwrap_or(PolicyKind::Resource);
        return Outcome::internal_error(layer);
    }

    // Step 1: an explicit deny anywhere wins. The organization levels are scanned in turn
    // without keeping each level's scan (no allocation per request): their denies follow
    // the other layers' in the same order, and each SCP level's allow goes straight to the
    // statements an Allow names.
    let mut denies: Vec<Matched> = Vec::new();
    for layer in [Some(&id), pb.as_ref(), sp.as_ref(), rbp.as_ref()]
        .into_iter()
        .flatten()
    {
        denies.extend(layer.denies.iter().map(Hit::matched));
    }
    // Each SCP level's allowing statement, kept as a reference until an Allow needs it:
    // a deny allocates nothing for it.
    let mut scp_allows: SmallVec<[Hit<'_>; 8]> = SmallVec::new();
    let mut scp_without_allow = false;
    for (i, set) in policies.scps.iter().enumerate() {
        let level = scan(req, set, PolicyKind::Scp, has_boundary);
        if level.broken {
            return Outcome::internal_error(PolicyKind::Scp);
        }
        denies.extend(level.denies.iter().map(|h| h.matched_at(Some(i))));
        match &level.allow {
            Some(hit) if !scp_without_allow => scp_allows.push(*hit),
            Some(_) => {}
            None => scp_without_allow = true,
        }
    }
    for (i, set) in policies.rcps.iter().enumerate() {
        let level = scan(req, set, PolicyKind::Rcp, has_boundary);
        if level.broken {
            return Outcome::internal_error(PolicyKind::Rcp);
        }
        denies.extend(level.denies.iter().map(|h| h.matched_at(Some(i))));
    }
    if let Some(first) = denies.first() {
        return Outcome {
            decision: Decision::ExplicitDeny,
            reason: Reason::ExplicitDeny,
            denied_by: Some(first.kind),
            statements: denies,
        };
    }

    // Steps 2 and 3: organization gates. RCP levels always allow (full-access RCP).
    if scp_without_allow {
        return Outcome::implicit(Reason::ScpNoAllow, PolicyKind::Scp);
    }

    let rbp_match = rbp
        .as_ref()
        .and_then(|s| s.allow_match)
        .unwrap_or(PrincipalMatch::NoMatch);
    let rbp_hit = rbp.as_ref().and_then(|s| s.allow);
    // The statements an Allow names: every SCP level's (the allows were kept one per
    // level, from the root down), then the deciding layers'.
    let granted = |hits: &[Option<Hit<'_>>]| -> Vec<Matched> {
        let mut out = Vec::with_capacity(scp_allows.len() + hits.len());
        out.extend(
            scp_allows
                .iter()
                .enumerate()
                .map(|(level, h)| h.matched_at(Some(level))),
        );
        out.extend(hits.iter().flatten().map(Hit::matched));
        out
    };

    // Step 4: callers that are not IAM principals.
    match &principal.kind {
        PrincipalKind::Anonymous
        | PrincipalKind::Service { .. }
        | PrincipalKind::WebIdentity { .. } => {
            return if rbp_match == PrincipalMatch::Direct {
                Outcome::allow(Reason::ResourcePolicyDirect, granted(&[rbp_hit]))
            } else {
                Outcome::implicit(Reason::NoResourceAllow, PolicyKind::Resource)
            };
        }
        PrincipalKind::Root if req.same_account() && !policies.resource_policy_required => {
            return Outcome::allow(Reason::RootUser, granted(&[]));
        }
        _ => {}
    }

    let is_root = matches!(principal.kind, PrincipalKind::Root);
    let id_ok = id.allow.is_some() || is_root;
    let pb_ok = pb.as_ref().is_none_or(|s| s.allow.is_some());
    let sp_ok = match &sp {
        Some(s) => s.allow.is_some(),
        None => !matches!(principal.kind, PrincipalKind::FederatedUser { .. }),
    };
    let caps = [
        pb.as_ref().and_then(|s| s.allow),
        sp.as_ref().and_then(|s| s.allow),
    ];
    // Why the principal's side fails, in AWS's documented order. A same-account grant to
    // the caller's role (or parent user) needs no identity allow, so only its caps can fail.
    let role_grant = matches!(rbp_match, PrincipalMatch::Role | PrincipalMatch::ParentUser);
    let side_failure = |identity_needed: bool| {
        if identity_needed && !id_ok {
            (Reason::NoIdentityAllow, PolicyKind::Identity)
        } else if !pb_ok {
            (Reason::BoundaryNoAllow, PolicyKind::Boundary)
        } else if sp.is_none() {
            (Reason::FederatedSessionNoPolicy, PolicyKind::Session)
        } else {
            (Reason::SessionPolicyNoAllow, PolicyKind::Session)
        }
    };

    if req.same_account() {
        // (i) Grants to the calling user or session itself are not capped by an implicit
        // deny in identity, boundary or session policies.
        if rbp_match == PrincipalMatch::Direct {
            return Outcome::allow(Reason::ResourcePolicyDirect, granted(&[rbp_hit]));
        }
        // (ii) Grants to the role behind a session (or the user behind a federated
        // session) need no identity allow, but the boundary and session policy still cap.
        if role_grant && pb_ok && sp_ok {
            return Outcome::allow(
                Reason::ResourcePolicyRole,
                granted(&[rbp_hit, caps[0], caps[1]]),
            );
        }
        // (iii) The identity path.
        if id_ok && pb_ok && sp_ok {
            if policies.resource_policy_required {
                return if rbp_match == PrincipalMatch::Account {
                    Outcome::allow(
                        Reason::IdentityAllow,
                        granted(&[id.allow, rbp_hit, caps[0], caps[1]]),
                    )
                } else {
                    Outcome::implicit(Reason::ResourcePolicyRequired, PolicyKind::Resource)
                };
            }
            return Outcome::allow(
                Reason::IdentityAllow,
                granted(&[id.allow, caps[0], caps[1]]),
            );
        }
        let (reason, layer) = side_failure(!role_grant);
        return Outcome::implicit(reason, layer);
    }

    // Cross account: the principal's side and the resource's side must both allow.
    if rbp_match == PrincipalMatch::NoMatch {
        return Outcome::implicit(Reason::CrossAccountNoResourceAllow, PolicyKind::Resource);
    }
    if !(id_ok && pb_ok && sp_ok) {
        let (reason, layer) = side_failure(true);
        let reason = if reason == Reason::NoIdentityAllow {
            Reason::CrossAccountNoIdentityAllow
        } else {
            reason
        };
        return Outcome::implicit(reason, layer);
    }
    Outcome::allow(
        Reason::CrossAccountAllow,
        granted(&[id.allow, rbp_hit, caps[0], caps[1]]),
    )
}

/// Evaluates a layer's candidate statements: every deny (any may decide), and allows only
/// until one is found (for a resource policy, until a direct grant is found).
fn scan<'p>(
    req: &Request<'_>,
    set: &'p PolicySet,
    kind: PolicyKind,
    has_boundary: bool,
) -> Scan<'p> {
    let mut out = Scan::default();
    scan_into(req, set, kind, has_boundary, &mut out);
    out
}

/// [`scan`] adding to `out`, so that the sets of one layer (a resource's several resource
/// policies) are scanned in turn as one: every deny, in set order, and the first of the
/// strongest allows.
fn scan_into<'p>(
    req: &Request<'_>,
    set: &'p PolicySet,
    kind: PolicyKind,
    has_boundary: bool,
    out: &mut Scan<'p>,
) {
    // Known in advance: a set that allows everything and denies nothing (`FullAWSAccess`
    // alone), and an RCP level without a deny (its allows decide nothing).
    if kind != PolicyKind::Resource {
        if let Some((policy, statement)) = set.allows_everything() {
            if kind != PolicyKind::Rcp {
                out.allow = Some(Hit {
                    kind,
                    policy,
                    statement,
                });
                out.allow_match = Some(PrincipalMatch::Direct);
            }
            return;
        }
        if kind == PolicyKind::Rcp && !set.has_deny() {
            return;
        }
    }
    set.for_candidates(req.action, |candidate| {
        // Decided from the index entry alone, without loading the statement.
        let allow = candidate.effect == Effect::Allow;
        if allow && out.allow_match == Some(PrincipalMatch::Direct) {
            return true;
        }
        if allow && kind != PolicyKind::Resource && out.allow.is_some() {
            return true;
        }
        // The full-access RCP is implied at every level: an RCP's allow decides nothing.
        if allow && kind == PolicyKind::Rcp {
            return true;
        }
        let Some(statement) = candidate.statement() else {
            out.broken = true;
            return false;
        };
        let principal_match = match &statement.principals {
            None => PrincipalMatch::Direct,
            // AWS quirk (reference §2.3): a resource-policy `Deny` with `NotPrincipal`
            // always applies to a user or role that has a permissions boundary.
            Some(p) if p.negated && !allow && has_boundary => PrincipalMatch::Direct,
            Some(p) => p.classify(req.principal),
        };
        if principal_match == PrincipalMatch::NoMatch
            || !(candidate.action_matched || action_matches(statement, req))
            || !applies_to_resource_and_context(statement, req)
        {
            return true;
        }
        let Some(policy) = candidate.policy() else {
            out.broken = true;
            return false;
        };
        let hit = Hit {
            kind,
            policy,
            statement,
        };
        if allow {
            if out.allow_match.is_none_or(|m| principal_match > m) {
                out.allow = Some(hit);
                out.allow_match = Some(principal_match);
            }
        } else {
            out.denies.push(hit);
        }
        true
    });
}

/// Whether a statement's action, resource and conditions match (the principal part is
/// classified separately).
pub fn applies(s: &Statement, req: &Request<'_>) -> bool {
    action_matches(s, req) && applies_to_resource_and_context(s, req)
}

fn action_matches(s: &Statement, req: &Request<'_>) -> bool {
    let (service, name) = req.action_parts();
    s.actions.matches(service, name)
}

fn applies_to_resource_and_context(s: &Statement, req: &Request<'_>) -> bool {
    resource_matches(s, req) && s.conditions.iter().all(|c| c.holds(req.context))
}

/// Whether a statement's `Resource`/`NotResource` covers the request's resource (absent:
/// the resource the policy is attached to).
fn resource_matches(s: &Statement, req: &Request<'_>) -> bool {
    let Some(resources) = &s.resources else {
        return true;
    };
    let arn = req.resource_arn();
    let hit = if req.resource == "*" && !resources.negated {
        // An action without resource-level permissions is authorized against `*`,
        // which only the literal `*` pattern grants.
        resources.patterns.contains(&crate::arn::ArnPattern::Any)
    } else {
        resources
            .patterns
            .iter()
            .any(|p| p.matches(arn, req.context) == Some(true))
    };
    hit != resources.negated
}

/// What one statement did in an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementExplanation {
    pub policy: Arc<str>,
    pub index: usize,
    pub sid: Option<Arc<str>>,
    pub effect: Effect,
    /// Whether the statement applied to the request.
    pub matched: bool,
    /// The first element that did not match, when it did not.
    pub mismatch: Option<Mismatch>,
}

/// The element of a statement that did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Action,
    Resource,
    Principal,
    /// A condition on this (lowercase) key did not hold.
    Condition {
        key: Box<str>,
    },
}

impl Mismatch {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mismatch::Action => "action",
            Mismatch::Resource => "resource",
            Mismatch::Principal => "principal",
            Mismatch::Condition { .. } => "condition",
        }
    }
}

/// What a layer said as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerResult {
    /// A statement denied.
    Deny,
    /// A statement allowed and none denied.
    Allow,
    /// No statement applied.
    NoMatch,
}

impl LayerResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerResult::Deny => "Deny",
            LayerResult::Allow => "Allow",
            LayerResult::NoMatch => "NoMatch",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerExplanation {
    pub kind: PolicyKind,
    /// The organization level (0 = root) for SCP and RCP layers.
    pub level: Option<usize>,
    pub result: LayerResult,
    pub statements: Vec<StatementExplanation>,
}

/// Every layer and every statement of a request, as the IAM policy simulator shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub layers: Vec<LayerExplanation>,
}

/// Explains a request: evaluates every statement of every layer, without short-cuts.
/// Slower than [`evaluate`]; meant for people, not for the hot path.
pub fn explain(req: &Request<'_>, policies: &Policies<'_>) -> Explanation {
    let has_boundary = policies.boundary.is_some();
    let mut layers = Vec::new();
    // One layer of one or more sets (a resource's several resource policies).
    let mut add = |kind: PolicyKind, level: Option<usize>, sets: &[&PolicySet]| {
        let mut statements = Vec::new();
        for p in sets.iter().flat_map(|set| set.policies()) {
            for s in p.statements.iter() {
                let mismatch = first_mismatch(s, req, has_boundary);
                statements.push(StatementExplanation {
                    policy: p.id.clone(),
                    index: s.index,
                    sid: s.sid.clone(),
                    effect: s.effect,
                    matched: mismatch.is_none(),
                    mismatch,
                });
            }
        }
        let result = if statements
            .iter()
            .any(|s| s.matched && s.effect == Effect::Deny)
        {
            LayerResult::Deny
        } else if statements.iter().any(|s| s.matched) {
            LayerResult::Allow
        } else {
            LayerResult::NoMatch
        };
        layers.push(LayerExplanation {
            kind,
            level,
            result,
            statements,
        });
    };
    for (i, s) in policies.rcps.iter().enumerate() {
        add(PolicyKind::Rcp, Some(i), &[s]);
    }
    for (i, s) in policies.scps.iter().enumerate() {
        add(PolicyKind::Scp, Some(i), &[s]);
    }
    if !policies.resource.is_empty() {
        let sets: Vec<&PolicySet> = policies.resource.iter().map(|s| &**s).collect();
        add(PolicyKind::Resource, None, &sets);
    }
    add(PolicyKind::Identity, None, &[policies.identity]);
    if let Some(s) = policies.boundary {
        add(PolicyKind::Boundary, None, &[s]);
    }
    if let Some(s) = policies.session {
        add(PolicyKind::Session, None, &[s]);
    }
    Explanation { layers }
}

fn first_mismatch(s: &Statement, req: &Request<'_>, has_boundary: bool) -> Option<Mismatch> {
    let (service, name) = req.action_parts();
    if !s.actions.matches(service, name) {
        return Some(Mismatch::Action);
    }
    if let Some(p) = &s.principals {
        let quirk = p.negated && s.effect == Effect::Deny && has_boundary;
        if !quirk && p.classify(req.principal) == PrincipalMatch::NoMatch {
            return Some(Mismatch::Principal);
        }
    }
    if !resource_matches(s, req) {
        return Some(Mismatch::Resource);
    }
    s.conditions
        .iter()
        .find(|c| !c.holds(req.context))
        .map(|c| Mismatch::Condition {
            key: c.key.as_str().into(),
        })
}

/// Whether an action needs the target's resource policy to trust the caller even within
/// one account: assuming a role, and passing session tags or a source identity into its
/// session (its trust policy decides `sts:TagSession` and `sts:SetSourceIdentity` as it
/// does `sts:AssumeRole`), and KMS keys (their key policy).
pub fn resource_policy_required(action: &str) -> bool {
    // Compared in place: lowercasing a copy was an allocation on every request.
    let starts = |prefix: &str| {
        action
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    starts("sts:assumerole")
        || starts("kms:")
        || action.eq_ignore_ascii_case("sts:tagsession")
        || action.eq_ignore_ascii_case("sts:setsourceidentity")
}

#[cfg(test)]
mod tests;

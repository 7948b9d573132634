//! Comparison of two policies (of one kind) or two bundles: per action (and, for bundles,
//! per principal), whether NEW allows the same requests as OLD, fewer, more, or neither,
//! decided by the real engine on a finite set of witness requests.
//!
//! For each catalog action only the statements whose `Action`/`NotAction` can match it
//! matter; their resource patterns and conditions split the request space into regions
//! the engine cannot tell apart ([`model`], [`space`]). Deciding one witness request per
//! combination of regions on both sides is then a proof; where a feature was not modelled
//! exactly (policy variables, `...IgnoreCase`, set operators, a bound) a difference found
//! is still definite, but "no new access" becomes UNKNOWN naming the feature.
//!
//! Comparing bundles, a principal that may hold a verified session (a role session, a
//! user's `GetSessionToken` session) is also asked as real sessions
//! ([`crate::caller::Session`]): the facts a session carries (MFA and its age, the issue
//! time, the source identity, session tags) are dimensions of their own
//! ([`model::SessionSpace`]), and a web identity token's keys are UNKNOWN.

pub mod model;
pub mod space;

use std::sync::Arc;
use std::time::SystemTime;

use crate::bundle::Bundle;
use crate::caller::Session;
use crate::compile::PolicySet;
use crate::context::{CallerContext, Context, ContextValue};
use crate::eval::{self, Decision, Policies};
use crate::policy::{Policy, PolicyKind, PrincipalEntry, Statement};
use crate::request::{Action, Principal, PrincipalKind, Request};
use crate::snapshot::Snapshot;
use model::{Atoms, KeyRole, SessionSpace, operator_name};
pub use model::{SessionFacts, Unknown};

/// How NEW's allowed requests relate to OLD's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Equivalent,
    /// NEW allows a strict subset of what OLD allows.
    Narrower,
    /// NEW allows a strict superset.
    Broader,
    Incomparable,
    /// No difference was found but not every region was decided, or a difference was
    /// found in one direction and the other is not proven.
    Unknown,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Equivalent => "equivalent",
            Relation::Narrower => "narrower",
            Relation::Broader => "broader",
            Relation::Incomparable => "incomparable",
            Relation::Unknown => "unknown",
        }
    }
}

/// One concrete request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// The context keys present, in order; an empty list is a key holding no value.
    pub context: Vec<(String, Vec<String>)>,
    /// The verified session the principal holds; `None`: the principal asserted, as
    /// `warden authorize` asserts it without session flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionFacts>,
}

impl Probe {
    pub fn context(&self) -> Context {
        let mut ctx = Context::new();
        for (k, vs) in &self.context {
            let v = match vs.as_slice() {
                [one] => ContextValue::Single(one.clone()),
                _ => ContextValue::Multi(vs.clone()),
            };
            ctx.insert(k, v);
        }
        ctx
    }
}

/// A request one side allows and the other does not, as the engine decided it on each.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counterexample {
    pub request: Probe,
    #[serde(serialize_with = "decision")]
    pub old: Decision,
    #[serde(serialize_with = "decision")]
    pub new: Decision,
}

fn decision<S: serde::Serializer>(d: &Decision, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

/// The comparison of one action (for one principal, comparing bundles).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Compared {
    /// `None` when comparing policies.
    pub principal: Option<String>,
    pub action: String,
    pub relation: Relation,
    /// A request NEW allows and OLD does not.
    pub new_access: Option<Counterexample>,
    /// A request OLD allows and NEW does not.
    pub lost_access: Option<Counterexample>,
    /// Whether every region was decided exactly.
    pub complete: bool,
}

/// Bounds of the procedure; beyond them the answer is UNKNOWN, never a guess.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Product states of one pattern exploration.
    pub max_states: usize,
    /// Witness requests per action (resources × context combinations).
    pub max_requests: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_states: space::MAX_STATES,
            max_requests: 200_000,
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub compared: Vec<Compared>,
    /// What could not be decided exactly, wherever it was read.
    pub unknowns: Vec<Unknown>,
    /// Requests decided (each on both sides).
    pub requests: u64,
}

/// What is compared besides the two sides: the resources (all, when `None`), what OLD is
/// read as, and the bounds.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub resources: Option<&'a [String]>,
    pub baseline: Baseline,
    pub limits: Limits,
}

/// What OLD is compared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// OLD as given.
    Old,
    /// A side that allows nothing (`--check access-not-granted`).
    Nothing,
}

/// The answer of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
}

impl Report {
    /// NEW grants nothing OLD does not: PASS only when proven.
    pub fn no_new_access(&self) -> Verdict {
        if self.compared.iter().any(|c| c.new_access.is_some()) {
            Verdict::Fail
        } else if self.compared.iter().all(|c| c.complete) {
            Verdict::Pass
        } else {
            Verdict::Unknown
        }
    }

    /// The first request NEW allows that OLD does not.
    pub fn first_new_access(&self) -> Option<&Counterexample> {
        self.compared.iter().find_map(|c| c.new_access.as_ref())
    }
}

/// One side of a comparison: decides a probe.
trait Side {
    fn decide(
        &self,
        principal: &str,
        session: Option<&Session>,
        action: &Action,
        resource: &str,
        ctx: &Context,
    ) -> Decision;

    /// Decides the probes of one principal, session, action and resource over each of
    /// `contexts`, in order, into `out` (a bundle resolves the caller once for them).
    fn decide_each(
        &self,
        (principal, session): (&str, Option<&Session>),
        action: &Action,
        resource: &str,
        contexts: &[Context],
        out: &mut Vec<Decision>,
    ) {
        out.clear();
        out.extend(
            contexts
                .iter()
                .map(|ctx| self.decide(principal, session, action, resource, ctx)),
        );
    }
}

// === impl policies ===

/// A policy of one kind, decided as that layer alone decides, through the engine: the
/// other layers allow everything (identity `*`), and a resource or trust policy is read
/// for a principal of another account, where it must grant by itself.
pub struct PolicySide {
    kind: PolicyKind,
    identity: PolicySet,
    layer: Arc<PolicySet>,
    allow_all: PolicySet,
    /// The last principal decided for, parsed, with the keys that follow from it: a
    /// comparison decides many requests for one principal in a row.
    last: std::cell::RefCell<Option<(String, Principal<'static>, Context)>>,
}

/// The account a policy-mode principal lives in, and the other one a resource is in.
pub const PRINCIPAL_ACCOUNT: &str = "111122223333";
pub const OTHER_ACCOUNT: &str = "444455556666";

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

impl PolicySide {
    pub fn new(kind: PolicyKind, policy: Arc<Policy>) -> PolicySide {
        // Compiled once per process: the property test builds tens of thousands of sides.
        static ALLOW: std::sync::OnceLock<Option<Arc<Policy>>> = std::sync::OnceLock::new();
        let allow_all = ALLOW
            .get_or_init(|| {
                crate::policy::parse_text(ALLOW_ALL, PolicyKind::Identity, "allow-all")
                    .policy
                    .map(Arc::new)
            })
            .as_ref()
            .map_or_else(
                || PolicySet::new(Vec::new()),
                |p| PolicySet::new(vec![p.clone()]),
            );
        let layer = Arc::new(PolicySet::new(vec![policy.clone()]));
        PolicySide {
            kind,
            identity: PolicySet::new(vec![policy]),
            layer,
            allow_all,
            last: std::cell::RefCell::new(None),
        }
    }

    /// The account the resource is in for a principal of `account`.
    pub fn resource_account(kind: PolicyKind, account: &str) -> &'static str {
        match kind {
            PolicyKind::Resource | PolicyKind::Trust if account == OTHER_ACCOUNT => {
                PRINCIPAL_ACCOUNT
            }
            PolicyKind::Resource | PolicyKind::Trust => OTHER_ACCOUNT,
            _ => PRINCIPAL_ACCOUNT,
        }
    }

    fn decide_principal(
        &self,
        p: &Principal<'_>,
        defaults: &Context,
        action: &Action,
        resource: &str,
        ctx: &Context,
    ) -> Decision {
        let layered = Layered { ctx, defaults };
        let account = PolicySide::resource_account(self.kind, &p.account);
        let req = Request::new(p, action, resource, account, &layered);
        let layer = std::slice::from_ref(&self.layer);
        let policies = Policies {
            identity: if self.kind == PolicyKind::Identity {
                &self.identity
            } else {
                &self.allow_all
            },
            resource: match self.kind {
                PolicyKind::Resource | PolicyKind::Trust => layer,
                _ => &[],
            },
            boundary: (self.kind == PolicyKind::Boundary).then_some(&*self.layer),
            session: (self.kind == PolicyKind::Session).then_some(&*self.layer),
            scps: if self.kind == PolicyKind::Scp {
                layer
            } else {
                &[]
            },
            rcps: if self.kind == PolicyKind::Rcp {
                layer
            } else {
                &[]
            },
            resource_policy_required: eval::resource_policy_required(action.as_str()),
        };
        eval::evaluate(&req, &policies).decision
    }
}

/// A request's context over the keys that follow from its principal, as a case fills
/// them (`Principal::fill_context_defaults`: the context's own value wins), without
/// copying the context for each request.
#[derive(Debug)]
struct Layered<'a> {
    ctx: &'a Context,
    defaults: &'a Context,
}

impl crate::context::Lookup for Layered<'_> {
    fn get(&self, lower_key: &str) -> Option<&ContextValue> {
        self.ctx
            .get(lower_key)
            .or_else(|| self.defaults.get(lower_key))
    }
}

impl PolicySide {
    /// Decides one request as the comparison does (for tests and brute force).
    pub fn decide(
        &self,
        principal: &str,
        action: &Action,
        resource: &str,
        ctx: &Context,
    ) -> Decision {
        let mut last = self.last.borrow_mut();
        if last.as_ref().is_none_or(|(text, _, _)| text != principal) {
            *last = principal_of(principal).map(|p| {
                let mut defaults = Context::new();
                p.fill_context_defaults(&mut defaults);
                (principal.to_owned(), p.into_owned(), defaults)
            });
        }
        match &*last {
            Some((_, p, defaults)) => self.decide_principal(p, defaults, action, resource, ctx),
            None => Decision::ImplicitDeny,
        }
    }
}

impl Side for PolicySide {
    fn decide(
        &self,
        principal: &str,
        session: Option<&Session>,
        action: &Action,
        resource: &str,
        ctx: &Context,
    ) -> Decision {
        // A policy's comparison tries no session (its keys are the context's): one
        // here would be a bug, denied rather than decided without it.
        if session.is_some() {
            return Decision::ImplicitDeny;
        }
        PolicySide::decide(self, principal, action, resource, ctx)
    }
}

/// A principal of policy mode from its text: an ARN, `anonymous`, or `service:NAME`.
pub fn principal_of(text: &str) -> Option<Principal<'_>> {
    use std::borrow::Cow;
    if text == "anonymous" {
        return Some(Principal {
            arn: Cow::Borrowed(""),
            partition: Cow::Borrowed(crate::bundle::PARTITION),
            account: Cow::Borrowed(""),
            kind: PrincipalKind::Anonymous,
            unique_id: None,
        });
    }
    if let Some(name) = text.strip_prefix("service:") {
        return Some(Principal {
            arn: Cow::Borrowed(name),
            partition: Cow::Borrowed(crate::bundle::PARTITION),
            account: Cow::Borrowed(""),
            kind: PrincipalKind::Service {
                name: Cow::Borrowed(name),
            },
            unique_id: None,
        });
    }
    if let Some(provider) = text.strip_prefix("federated:") {
        return Some(Principal {
            arn: Cow::Borrowed(provider),
            partition: Cow::Borrowed(crate::bundle::PARTITION),
            account: Cow::Borrowed(""),
            kind: PrincipalKind::WebIdentity {
                provider: Cow::Borrowed(provider),
            },
            unique_id: None,
        });
    }
    Principal::from_arn(text).ok()
}

/// The principals a policy mode comparison tries: for identity-side kinds one user; for
/// resource and trust policies one per region of the `Principal` elements (each named
/// principal, a fresh user, root and role session in each named account, and outside).
fn policy_principals(kind: PolicyKind, policies: &[&Policy], atoms: &mut Atoms) -> Vec<String> {
    let user = |acct: &str, name: &str| format!("arn:aws:iam::{acct}:user/{name}");
    if !matches!(kind, PolicyKind::Resource | PolicyKind::Trust) {
        return vec![user(PRINCIPAL_ACCOUNT, "compare")];
    }
    let mut out: Vec<String> = Vec::new();
    let account = |out: &mut Vec<String>, a: &str| {
        out.push(user(a, "compare"));
        out.push(format!("arn:aws:iam::{a}:root"));
        out.push(format!("arn:aws:sts::{a}:assumed-role/compare/compare"));
        out.push(format!("arn:aws:sts::{a}:federated-user/compare"));
    };
    account(&mut out, PRINCIPAL_ACCOUNT);
    out.push("anonymous".into());
    for p in policies {
        for s in p.statements.iter() {
            let Some(set) = &s.principals else { continue };
            for e in &set.entries {
                match e {
                    PrincipalEntry::Wildcard | PrincipalEntry::Canonical(_) => {}
                    PrincipalEntry::Account(a) => account(&mut out, a),
                    PrincipalEntry::User(arn) | PrincipalEntry::Session(arn) => {
                        out.push(arn.to_string());
                        if let Some(a) = arn.split(':').nth(4) {
                            account(&mut out, a);
                        }
                    }
                    PrincipalEntry::Role {
                        account: a, name, ..
                    } => {
                        out.push(format!("arn:aws:sts::{a}:assumed-role/{name}/compare"));
                        account(&mut out, a);
                    }
                    PrincipalEntry::Service(name) => out.push(format!("service:{name}")),
                    PrincipalEntry::Federated(name) => out.push(format!("federated:{name}")),
                    PrincipalEntry::UniqueId(id) => atoms.unknown(
                        &format!("{} Statement[{}] ({})", p.id, s.index, s.pos),
                        &format!("a principal named by unique id (`{id}`)"),
                    ),
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Whether a statement can take part in deciding `action`.
fn relevant(s: &Statement, action: &Action) -> bool {
    s.actions.matches(action.service(), action.name())
}

/// Compares two policies of `kind` over every action of `actions` (`service:Name`).
/// `place(is_new, statement)` names a statement for an UNKNOWN.
/// With `baseline` [`Baseline::Nothing`], OLD is read as allowing nothing (NEW's
/// statements alone are explored).
pub fn compare_policies(
    kind: PolicyKind,
    old: Arc<Policy>,
    new: Arc<Policy>,
    actions: &[String],
    scope: Scope<'_>,
    place: &dyn Fn(bool, &Statement) -> String,
) -> Report {
    let Scope {
        resources,
        baseline,
        limits,
    } = scope;
    let old_policy = PolicySide::new(kind, old.clone());
    let old_side: &dyn Side = match baseline {
        Baseline::Old => &old_policy,
        Baseline::Nothing => &Nothing,
    };
    let new_side = PolicySide::new(kind, new.clone());
    let mut report = Report::default();
    let mut unknowns = std::collections::BTreeSet::new();
    for text in actions {
        let Ok(action) = Action::parse(text) else {
            continue;
        };
        let mut atoms = Atoms::default();
        let mut any = false;
        for (is_new, p) in [(false, &old), (true, &new)] {
            if !is_new && baseline == Baseline::Nothing {
                continue;
            }
            for s in p.statements.iter().filter(|s| relevant(s, &action)) {
                any = true;
                atoms.add_statement(s, &place(is_new, s), &|_| KeyRole::Caller);
            }
        }
        if !any {
            // Neither side has a statement for the action: both deny every request.
            report.compared.push(Compared {
                principal: None,
                action: text.clone(),
                relation: Relation::Equivalent,
                new_access: None,
                lost_access: None,
                complete: true,
            });
            continue;
        }
        let principals = policy_principals(kind, &[&old, &new], &mut atoms);
        let mut w = Witnessed::of(&mut atoms, limits);
        if let Some(rs) = resources {
            w.set_resources(rs);
        }
        for principal in &principals {
            let c = compare_witnessed(
                (old_side, &new_side),
                (principal, false, 0),
                text,
                &action,
                &w,
                &mut report.requests,
            );
            if kind == PolicyKind::Resource || kind == PolicyKind::Trust {
                report.compared.push(Compared {
                    principal: Some(principal.clone()),
                    ..c
                });
            } else {
                report.compared.push(c);
            }
        }
        unknowns.extend(atoms.unknowns);
    }
    report.unknowns = unknowns.into_iter().collect();
    report
}

/// The witness requests of one action: resources, per-key values and the session facts
/// read.
pub struct Witnessed {
    resources: Vec<String>,
    keys: Vec<(String, Vec<Option<ContextValue>>)>,
    /// Turned into sessions per principal ([`SessionSpace::sessions`]).
    session: SessionSpace,
    /// When the sessions' facts are decided (their MFA ages count to it).
    now: SystemTime,
    /// Combinations beyond the bound are not decided.
    total: usize,
    limit: usize,
    complete: bool,
}

impl Witnessed {
    fn of(atoms: &mut Atoms, limits: Limits) -> Witnessed {
        let resources = atoms.resource_witnesses(limits.max_states, limits.max_requests);
        Witnessed::with_resources(atoms, resources, limits)
    }

    /// With resource witnesses already found (from a superset of the statements: a finer
    /// partition is still a proof).
    fn with_resources(atoms: &mut Atoms, resources: Vec<String>, limits: Limits) -> Witnessed {
        let keys = atoms.key_witnesses(limits.max_states, limits.max_requests);
        let session = atoms.session_space(limits.max_states);
        let total = keys
            .iter()
            .map(|(_, vs)| vs.len())
            .fold(resources.len(), usize::saturating_mul);
        if total > limits.max_requests {
            atoms.unknown(
                "-",
                &format!(
                    "{total} witness requests for one action exceed the bound ({})",
                    limits.max_requests
                ),
            );
        }
        Witnessed {
            resources,
            keys,
            session,
            now: SystemTime::UNIX_EPOCH,
            total,
            limit: limits.max_requests,
            complete: atoms.unknowns.is_empty(),
        }
    }

    /// Replaces the explored resources with a given list (`--resource`).
    fn set_resources(&mut self, resources: &[String]) {
        self.resources = resources.to_vec();
        self.total = self
            .keys
            .iter()
            .map(|(_, vs)| vs.len())
            .fold(self.resources.len(), usize::saturating_mul);
    }

    /// The number of context combinations.
    fn context_count(&self) -> usize {
        self.keys
            .iter()
            .map(|(_, vs)| vs.len().max(1))
            .fold(1, usize::saturating_mul)
    }

    /// The `c`-th context combination, as (key, values) pairs.
    fn context_pairs(&self, mut c: usize) -> Vec<(String, Vec<String>)> {
        let mut context = Vec::new();
        for (k, vs) in &self.keys {
            let n = vs.len().max(1);
            if let Some(Some(v)) = vs.get(c % n) {
                context.push((k.clone(), v.values().to_vec()));
            }
            c /= n;
        }
        context
    }

    /// The first `n` context combinations, built once for every resource and principal.
    fn contexts(&self, n: usize) -> Vec<Context> {
        (0..n)
            .map(|c| {
                let mut ctx = Context::new();
                let mut c = c;
                for (k, vs) in &self.keys {
                    let m = vs.len().max(1);
                    if let Some(Some(v)) = vs.get(c % m) {
                        ctx.insert(k, v.clone());
                    }
                    c /= m;
                }
                ctx
            })
            .collect()
    }
}

/// A session policy that allows nothing (`NotAction: *` matches no action): the session
/// dimension's capped sessions carry it (see [`compare_bundles`]).
pub const CAPPING_SESSION_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"*","Resource":"*"}]}"#;

/// [`CAPPING_SESSION_POLICY`], parsed once.
fn capping_policy() -> Option<Arc<Policy>> {
    static CAPPING: std::sync::OnceLock<Option<Arc<Policy>>> = std::sync::OnceLock::new();
    CAPPING
        .get_or_init(|| {
            crate::policy::parse_text(CAPPING_SESSION_POLICY, PolicyKind::Session, "session")
                .policy
                .map(Arc::new)
        })
        .clone()
}

impl SessionFacts {
    /// The session these facts describe, for `principal`, as a server would hold it: MFA
    /// authenticated `mfa_age` whole seconds before `now` (so its age at `now` is
    /// `mfa_age`), issued at `issued_at`, never expired (the comparison's issue times are
    /// within a session's lifetime).
    pub fn session(&self, principal: &str, now: SystemTime) -> Session {
        use std::time::{Duration, UNIX_EPOCH};
        let secs = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let capping = self.capped.then(capping_policy);
        Session {
            id: "compare".to_owned(),
            arn: principal.to_owned(),
            policies: capping.as_ref().map(|p| {
                // A policy that does not parse caps to nothing too: the same decision.
                Arc::new(PolicySet::new(p.iter().cloned().collect()))
            }),
            policy_arns: Vec::new(),
            inline_policy: capping.map(|p| match p {
                Some(p) => crate::caller::InlinePolicy::Parsed(p),
                None => crate::caller::InlinePolicy::Refused,
            }),
            tags: self.tags.clone(),
            source_identity: self.source_identity.clone(),
            issued_at: secs(u64::try_from(self.issued_at).unwrap_or(0)),
            expires_at: secs(u64::from(u32::MAX)),
            mfa_at: self.mfa_age.map(|a| secs(now_s.saturating_sub(a))),
            web_identity: None,
        }
    }

    /// `aws:TokenIssueTime` as RFC 3339 (`--issued-at`).
    pub fn issued_at_text(&self) -> String {
        chrono::DateTime::from_timestamp(self.issued_at, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    }
}

/// Whether a principal may hold a verified session, and whether as a role session: a
/// role session, or a user (`GetSessionToken`). An account root may not.
fn holds_session(principal: &str) -> Option<bool> {
    let arn = crate::arn::Arn::parse(principal)?;
    if arn.service == "sts" && arn.resource.starts_with("assumed-role/") {
        Some(true)
    } else if arn.service == "iam" && arn.resource.starts_with("user/") {
        Some(false)
    } else {
        None
    }
}

/// Compares one action for one principal over every witness. `named`: a resource or
/// trust policy names the principal (a role session) itself, so its sessions capped by a
/// session policy are tried too; `lifetime`: the longest its sessions last.
fn compare_witnessed(
    (old, new): (&dyn Side, &dyn Side),
    (principal, named, lifetime): (&str, bool, u64),
    text: &str,
    action: &Action,
    w: &Witnessed,
    requests: &mut u64,
) -> Compared {
    let mut new_access: Option<Counterexample> = None;
    let mut lost_access: Option<Counterexample> = None;
    // The principal asserted (no session), then each witness session it may hold.
    let mut facts: Vec<Option<SessionFacts>> = vec![None];
    if let Some(role) = holds_session(principal)
        && (w.session.read || (named && role))
    {
        for f in w.session.sessions(role, lifetime, w.now) {
            if named && role {
                facts.push(Some(SessionFacts {
                    capped: true,
                    ..f.clone()
                }));
            }
            let bare = f.mfa_age.is_none() && f.source_identity.is_none() && f.tags.is_empty();
            if w.session.read && !(bare && w.session.bare_is_asserted()) {
                facts.push(Some(f));
            }
        }
    }
    let sessions: Vec<Option<Session>> = facts
        .iter()
        .map(|f| f.as_ref().map(|f| f.session(principal, w.now)))
        .collect();
    let per_resource = w.context_count();
    let contexts = w.contexts(per_resource.min(w.limit));
    let total = w.total.saturating_mul(facts.len());
    let probe = |r: &str, f: &Option<SessionFacts>, c: usize| Probe {
        principal: principal.to_owned(),
        action: text.to_owned(),
        resource: r.to_owned(),
        context: w.context_pairs(c),
        session: f.clone(),
    };
    let mut i = 0usize;
    let (mut olds, mut news) = (Vec::new(), Vec::new());
    'all: for resource in &w.resources {
        for (f, session) in facts.iter().zip(&sessions) {
            if i >= w.limit {
                break 'all;
            }
            let batch = contexts
                .get(..(w.limit - i).min(contexts.len()))
                .unwrap_or(&[]);
            let who = (principal, session.as_ref());
            old.decide_each(who, action, resource, batch, &mut olds);
            new.decide_each(who, action, resource, batch, &mut news);
            *requests += batch.len() as u64;
            i += batch.len();
            for (c, (&a, &b)) in olds.iter().zip(&news).enumerate() {
                let (ao, bo) = (a == Decision::Allow, b == Decision::Allow);
                if bo && !ao && new_access.is_none() {
                    new_access = Some(Counterexample {
                        request: probe(resource, f, c),
                        old: a,
                        new: b,
                    });
                } else if ao && !bo && lost_access.is_none() {
                    lost_access = Some(Counterexample {
                        request: probe(resource, f, c),
                        old: a,
                        new: b,
                    });
                }
                if new_access.is_some() && lost_access.is_some() {
                    break 'all;
                }
            }
        }
    }
    let complete = w.complete && total <= w.limit;
    let relation = match (&new_access, &lost_access) {
        (Some(_), Some(_)) => Relation::Incomparable,
        (Some(_), None) if complete => Relation::Broader,
        (None, Some(_)) if complete => Relation::Narrower,
        (None, None) if complete => Relation::Equivalent,
        _ => Relation::Unknown,
    };
    Compared {
        principal: None,
        action: text.to_owned(),
        relation,
        new_access,
        lost_access,
        complete,
    }
}

// === impl bundles ===

/// The side that allows nothing: the baseline of `--check access-not-granted`, where
/// any request NEW allows is a counterexample.
struct Nothing;

impl Side for Nothing {
    fn decide(&self, _: &str, _: Option<&Session>, _: &Action, _: &str, _: &Context) -> Decision {
        Decision::ImplicitDeny
    }
}

/// A bundle's snapshot, asked as `warden authorize` asks it (the caller's context
/// screened to the keys a caller may supply, a session given by its flags); a refused
/// request is a deny.
pub struct BundleSide<'a> {
    pub snapshot: &'a Snapshot,
    pub now: SystemTime,
}

impl Side for BundleSide<'_> {
    fn decide(
        &self,
        principal: &str,
        session: Option<&Session>,
        action: &Action,
        resource: &str,
        ctx: &Context,
    ) -> Decision {
        let context = self.screen(ctx);
        match self.snapshot.ask_as(
            principal,
            session,
            action.as_str(),
            resource,
            &context,
            self.now,
        ) {
            Ok(a) => a.outcome.decision,
            // A request the bundle refuses (an action its catalog lacks) is not allowed.
            Err(_) => Decision::ImplicitDeny,
        }
    }

    /// As [`BundleSide::decide`] per context, the caller resolved and the action and
    /// resource read once.
    fn decide_each(
        &self,
        (principal, session): (&str, Option<&Session>),
        action: &Action,
        resource: &str,
        contexts: &[Context],
        out: &mut Vec<Decision>,
    ) {
        out.clear();
        let snapshot = self.snapshot;
        let who = snapshot
            .check_action(action, action.as_str())
            .and_then(|()| crate::request::parse_resource(resource))
            .and_then(|arn| Ok((arn, snapshot.resolve(principal, session, self.now)?)));
        let (resource_arn, who) = match who {
            Ok((arn, Some(who))) => (arn, who),
            // Refused, or a principal the bundle does not hold: not allowed.
            Ok((_, None)) | Err(_) => {
                out.resize(contexts.len(), Decision::ImplicitDeny);
                return;
            }
        };
        for ctx in contexts {
            let context = self.screen(ctx);
            let q = crate::snapshot::Question {
                action,
                resource,
                resource_arn,
                context: crate::context::CallerView::of(&context),
            };
            out.push(
                snapshot
                    .decide(&who, &q, self.now, false)
                    .0
                    .outcome
                    .decision,
            );
        }
    }
}

impl BundleSide<'_> {
    /// The caller's context as the service screens it: the keys a caller may supply,
    /// without the snapshot's web identity token keys.
    fn screen(&self, ctx: &Context) -> CallerContext {
        CallerContext::screen_with(
            ctx.clone(),
            |k| self.snapshot.is_web_identity_key(k),
            |_| {},
        )
    }
}

/// Every policy of a bundle with a name for messages.
pub fn bundle_policies(b: &Bundle) -> Vec<(String, Arc<Policy>)> {
    let mut out: Vec<(String, Arc<Policy>)> = Vec::new();
    for a in b.accounts.values() {
        for u in &a.users {
            out.extend(
                u.inline
                    .iter()
                    .map(|p| (format!("{} inline {}", u.arn, p.id), p.clone())),
            );
        }
        for g in &a.groups {
            out.extend(
                g.inline
                    .iter()
                    .map(|p| (format!("{} inline {}", g.arn, p.id), p.clone())),
            );
        }
        for r in &a.roles {
            out.push((format!("{} trust policy", r.arn), r.trust.clone()));
            out.extend(
                r.inline
                    .iter()
                    .map(|p| (format!("{} inline {}", r.arn, p.id), p.clone())),
            );
        }
        for r in &a.resources {
            out.push((format!("resource policy of {}", r.arn), r.policy.clone()));
        }
    }
    for (arn, p) in &b.managed {
        out.push((format!("managed policy {arn:?}"), p.clone()));
    }
    for (name, p) in &b.scps {
        out.push((format!("SCP {name}"), p.clone()));
    }
    for (name, p) in &b.rcps {
        out.push((format!("RCP {name}"), p.clone()));
    }
    out
}

/// The principals of a bundle: users, a session (`compare`) of each role, account roots,
/// and every role session a resource or trust policy names.
pub fn bundle_principals(b: &Bundle) -> Vec<String> {
    let mut out = Vec::new();
    for (_, p) in bundle_policies(b) {
        for s in p.statements.iter() {
            for e in s.principals.iter().flat_map(|set| &set.entries) {
                if let PrincipalEntry::Session(arn) = e {
                    out.push(arn.to_string());
                }
            }
        }
    }
    for a in b.accounts.values() {
        out.push(format!("arn:aws:iam::{}:root", a.id));
        out.extend(a.users.iter().map(|u| u.arn.clone()));
        out.extend(
            a.roles
                .iter()
                .map(|r| format!("arn:aws:sts::{}:assumed-role/{}/compare", a.id, r.name)),
        );
    }
    out
}

/// The policies that take part in a principal's decisions whatever the resource: its
/// identity policies, boundary and SCPs (gathered by the snapshot as a request would).
fn own_policies(snapshot: &Snapshot, principal: &str, now: SystemTime) -> Vec<Arc<Policy>> {
    let Ok(Some(who)) = snapshot.resolve(principal, None, now) else {
        return Vec::new();
    };
    let Ok(action) = Action::parse("warden:Compare") else {
        return Vec::new();
    };
    let empty = CallerContext::empty();
    let q = crate::snapshot::Question {
        action: &action,
        resource: "*",
        resource_arn: None,
        context: crate::context::CallerView::of(&empty),
    };
    let g = snapshot.gather(&who, &q, now);
    let mut out = g.identity;
    out.extend(g.boundary.into_iter().flatten());
    out.extend(g.session.into_iter().flatten());
    out.extend(g.scps.into_iter().flatten());
    out
}

/// Compares two bundles per principal of either and per action of either catalog.
/// `only` restricts the actions (`--check access-not-granted`); `scope.resources`
/// replaces the explored resources when given.
///
/// The regions of one principal's requests come from the statements that can decide
/// them: its own identity policies, boundary and SCPs on each side, every resource and
/// trust policy and RCP of either bundle, and what the server derives from a resource
/// (its account, the bindings of resource policies, the roles for `sts:` actions).
pub fn compare_bundles(
    old: (&Bundle, &Snapshot),
    new: (&Bundle, &Snapshot),
    only: Option<&[String]>,
    scope: Scope<'_>,
    now: SystemTime,
) -> Report {
    let Scope {
        resources,
        baseline,
        limits,
    } = scope;
    let mut actions: Vec<String> = Vec::new();
    for b in [old.0, new.0] {
        for (s, a) in b.catalog.actions() {
            actions.push(format!("{}:{}", s.prefix, a.name));
        }
    }
    if let Some(only) = only {
        actions = only.to_vec();
    }
    let mut seen = std::collections::BTreeSet::new();
    actions.retain(|a| seen.insert(a.to_ascii_lowercase()));
    let mut principals = bundle_principals(old.0);
    principals.extend(bundle_principals(new.0));
    let mut seen = std::collections::BTreeSet::new();
    principals.retain(|p| seen.insert(p.clone()));

    let with_old = baseline == Baseline::Old;
    // Policies every principal's requests may read: resource and trust policies, RCPs.
    let shared_of = |b: &Bundle| -> Vec<(String, Arc<Policy>)> {
        bundle_policies(b)
            .into_iter()
            .filter(|(_, p)| {
                matches!(
                    p.kind,
                    PolicyKind::Resource | PolicyKind::Trust | PolicyKind::Rcp
                )
            })
            .collect()
    };
    let mut shared: Vec<(&str, String, Arc<Policy>)> = Vec::new();
    if with_old {
        shared.extend(shared_of(old.0).into_iter().map(|(n, p)| ("old", n, p)));
    }
    shared.extend(shared_of(new.0).into_iter().map(|(n, p)| ("new", n, p)));
    let own: Vec<Vec<(&str, Arc<Policy>)>> = principals
        .iter()
        .map(|p| {
            let mut v: Vec<(&str, Arc<Policy>)> = Vec::new();
            if with_old {
                v.extend(own_policies(old.1, p, now).into_iter().map(|x| ("old", x)));
            }
            v.extend(own_policies(new.1, p, now).into_iter().map(|x| ("new", x)));
            v
        })
        .collect();

    let old_bundle = BundleSide {
        snapshot: old.1,
        now,
    };
    let old_side: &dyn Side = match baseline {
        Baseline::Old => &old_bundle,
        Baseline::Nothing => &Nothing,
    };
    let new_side = BundleSide {
        snapshot: new.1,
        now,
    };
    let mut report = Report::default();
    let mut unknowns = std::collections::BTreeSet::new();
    // A web identity session's token keys are the server's for its requests (and
    // dropped from a caller's context); other session facts are a dimension of their own.
    let web = |k: &str| {
        k == "aws:federatedprovider" || old.1.is_web_identity_key(k) || new.1.is_web_identity_key(k)
    };
    let role = |k: &str| {
        if web(k) {
            KeyRole::WebIdentity
        } else if model::is_session_key(k) {
            KeyRole::Session
        } else if crate::keys::caller_supplies(k) {
            KeyRole::Caller
        } else {
            KeyRole::Server
        }
    };
    let varies = &role;
    // Session policies. A session policy only intersects: the engine's identity and
    // role paths need its Allow (`sp_ok`) and its Deny denies, so with a session policy
    // P, Allow_P(B, r) = Allow(B, r) ∧ (Direct_B(r) ∨ P allows r) ∧ ¬(P denies r), where
    // Direct_B(r) is a grant of B's resource or trust policy to the calling session's own
    // ARN, which no session policy caps (eval: "(i) grants to the calling user or session
    // itself"). If NEW gave some P-session new access while sessions without a policy
    // gained none, OLD allows r without a policy, so OLD's grant was capped and NEW's is
    // Direct: NEW grants r to the session's ARN and OLD does not. Then the session policy
    // that allows nothing (`CAPPING_SESSION_POLICY`) shows it too: trying it, for the
    // role sessions some Allow statement names by ARN (the only ones with a Direct
    // path), decides every session policy. It adds no region: it reads no key and
    // matches no action. Users' sessions carry no session policy (`GetSessionToken`).
    let mut named = std::collections::BTreeSet::new();
    for b in [old.0, new.0] {
        for (_, p) in bundle_policies(b) {
            for s in p.statements.iter() {
                if s.effect != crate::policy::Effect::Allow {
                    continue;
                }
                for e in s.principals.iter().flat_map(|set| &set.entries) {
                    if let PrincipalEntry::Session(arn) = e {
                        named.insert(arn.to_string());
                    }
                }
            }
        }
    }
    let grants = |p: &Policy, s: &Statement| {
        s.effect == crate::policy::Effect::Allow
            && matches!(
                p.kind,
                PolicyKind::Identity | PolicyKind::Resource | PolicyKind::Trust
            )
    };
    for text in &actions {
        let Ok(action) = Action::parse(text) else {
            continue;
        };
        let mut base = Atoms::default();
        let mut shared_grants = false;
        for (side, name, p) in &shared {
            for s in p.statements.iter().filter(|s| relevant(s, &action)) {
                shared_grants |= grants(p, s);
                let place = format!("{side}: {name} Statement[{}] ({})", s.index, s.pos);
                base.add_statement(s, &place, varies);
            }
        }
        add_server_regions(&mut base, [old.0, new.0], action.service() == "sts");
        // The resource regions of every principal's statements at once, explored once.
        let mut all = base.clone();
        let mut added = std::collections::HashSet::new();
        for (side, policy) in own.iter().flatten() {
            if !added.insert(Arc::as_ptr(policy) as usize) {
                continue;
            }
            for s in policy.statements.iter().filter(|s| relevant(s, &action)) {
                let place = format!("{side}: {} Statement[{}] ({})", policy.id, s.index, s.pos);
                all.add_statement(s, &place, varies);
            }
        }
        let resource_witnesses = all.resource_witnesses(limits.max_states, limits.max_requests);
        let bounds: Vec<Unknown> = all
            .unknowns
            .iter()
            .filter(|u| u.place == "-")
            .cloned()
            .collect();
        let resources_complete = bounds.is_empty();
        unknowns.extend(bounds);
        // Principals with the same own policies share their witnesses.
        let mut by_policies: std::collections::HashMap<Vec<usize>, std::rc::Rc<Witnessed>> =
            std::collections::HashMap::new();
        for (p, own) in principals.iter().zip(&own) {
            let own_grants = own.iter().any(|(_, policy)| {
                policy
                    .statements
                    .iter()
                    .any(|s| relevant(s, &action) && grants(policy, s))
            });
            // No statement that grants, on either side, to a principal that is not an
            // account's root (which acts in its own account without one): both sides
            // deny every request, as the engine's default deny.
            if !own_grants
                && !shared_grants
                && !p.ends_with(":root")
                && action.as_str() != "sts:getcalleridentity"
            {
                report.compared.push(Compared {
                    principal: Some(p.clone()),
                    action: text.clone(),
                    relation: Relation::Equivalent,
                    new_access: None,
                    lost_access: None,
                    complete: true,
                });
                continue;
            }
            let key: Vec<usize> = own
                .iter()
                .map(|(side, policy)| Arc::as_ptr(policy) as usize ^ usize::from(*side == "new"))
                .collect();
            let w = match by_policies.get(&key) {
                Some(w) => w.clone(),
                None => {
                    let mut atoms = base.clone();
                    for (side, policy) in own {
                        for s in policy.statements.iter().filter(|s| relevant(s, &action)) {
                            let place =
                                format!("{side}: {} Statement[{}] ({})", policy.id, s.index, s.pos);
                            atoms.add_statement(s, &place, varies);
                        }
                    }
                    let mut w =
                        Witnessed::with_resources(&mut atoms, resource_witnesses.clone(), limits);
                    if let Some(rs) = resources {
                        w.set_resources(rs);
                    }
                    w.now = now;
                    w.complete &= resources_complete;
                    unknowns.extend(atoms.unknowns);
                    let w = std::rc::Rc::new(w);
                    by_policies.insert(key, w.clone());
                    w
                }
            };
            let mut c = compare_witnessed(
                (old_side, &new_side),
                (p, named.contains(p), session_lifetime([old.0, new.0], p)),
                text,
                &action,
                &w,
                &mut report.requests,
            );
            if w.complete && !c.complete {
                // The principal's witness sessions took its requests past the bound.
                unknowns.insert(Unknown {
                    place: "-".to_owned(),
                    feature: format!(
                        "the witness requests of `{text}` for `{p}`, its sessions included, exceed the bound ({})",
                        limits.max_requests
                    ),
                });
            }
            c.principal = Some(p.clone());
            report.compared.push(c);
        }
    }
    report.unknowns = unknowns.into_iter().collect();
    report
}

/// The longest a session of `principal` lasts in either bundle: a role session its role's
/// `max_session_duration` (the longer of the two bundles'), a user's session
/// `GetSessionToken`'s maximum. A session issued earlier has expired, and is not tried.
fn session_lifetime(bundles: [&Bundle; 2], principal: &str) -> u64 {
    let Some(arn) = crate::arn::Arn::parse(principal) else {
        return 0;
    };
    let Some(role) = arn
        .resource
        .strip_prefix("assumed-role/")
        .and_then(|r| r.split('/').next())
    else {
        return model::USER_SESSION_LIFETIME;
    };
    bundles
        .iter()
        .filter_map(|b| b.accounts.get(arn.account))
        .flat_map(|a| a.roles.iter().filter(|r| r.name == role))
        .map(|r| r.max_session_duration)
        .max()
        .unwrap_or(0)
}

/// What the server derives from a resource or a named account: each account's
/// resources, the bindings of resource policies and (for `sts:` actions) the roles are
/// regions of their own, and an account named in a caller's key is one of its values.
fn add_server_regions(atoms: &mut Atoms, bundles: [&Bundle; 2], assume: bool) {
    use crate::arn::{ArnPattern, ShortArn};
    use crate::matcher::Token;
    for b in bundles {
        for a in b.accounts.values() {
            let mut in_account: [Vec<Token>; 6] = std::array::from_fn(|_| vec![Token::Star]);
            in_account[4] = a.id.chars().map(Token::Lit).collect();
            atoms.add_resource_segments(in_account);
            for k in crate::context::ACCOUNT_KEYS {
                atoms.add_text(k, &a.id);
            }
            for r in a.resources.iter().filter(|_| !assume) {
                if let Ok(p) = ArnPattern::new(&r.arn, false, ShortArn::Pad) {
                    atoms.add_resource(&p, &format!("resource policy of {}", r.arn));
                }
            }
            for r in a.roles.iter().filter(|_| assume) {
                // A session ARN omits the role's path; a request may name either.
                let short = format!("arn:aws:iam::{}:role/{}", a.id, r.name);
                for arn in [&r.arn, &short] {
                    if let Ok(p) = ArnPattern::new(arn, false, ShortArn::Pad) {
                        atoms.add_resource(&p, &format!("role {}", r.arn));
                    }
                }
            }
        }
    }
}

// === impl grants ===

/// A statement of a resource or trust policy that grants beyond a line a check draws.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// The policy's name and the statement's place.
    pub place: String,
    /// What it grants to whom.
    pub finding: String,
    /// False when the statement may stay within the line through conditions this check
    /// does not decide (then the verdict is UNKNOWN, not FAIL).
    pub definite: bool,
}

/// Keys only the server fills, from the caller's verified identity: a condition that
/// requires one of them to hold a value refuses anonymous callers.
const PRINCIPAL_KEYS: &[&str] = &[
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "aws:username",
];

/// Whether a condition requires a server-owned key about the caller to hold one of its
/// values: positive, without `IfExists`, without `ForAllValues` (true on an absent key).
fn requires(c: &crate::condition::Condition, keys: &[&str]) -> bool {
    use crate::condition::{Base, SetOp};
    let key = c.key.as_str();
    let named = keys.contains(&key) || (keys.len() > 2 && key.starts_with("aws:principaltag/"));
    named
        && !c.op.negated
        && !c.op.if_exists
        && c.op.base != Base::Null
        && c.op.set != Some(SetOp::ForAllValues)
}

/// Allow statements of resource and trust policies whose `Principal` is everyone
/// (`*`) with no condition that requires the caller's identity: public access.
pub fn public_grants(policies: &[(String, Arc<Policy>)]) -> Vec<Grant> {
    let mut out = Vec::new();
    for (place, s, set) in principal_allows(policies) {
        let everyone = !set.negated && set.entries.contains(&PrincipalEntry::Wildcard);
        if everyone && !s.conditions.iter().any(|c| requires(c, PRINCIPAL_KEYS)) {
            out.push(Grant {
                place,
                finding: "grants `Principal: *` (anonymous callers included) with no condition on the caller's identity".into(),
                definite: true,
            });
        }
    }
    out
}

/// The Allow statements of resource and trust policies that name principals, each with
/// its place (`POLICY Statement[I] (line:column)`): what the public and cross-organization
/// checks read.
fn principal_allows(
    policies: &[(String, Arc<Policy>)],
) -> impl Iterator<
    Item = (
        String,
        &crate::policy::Statement,
        &crate::policy::principal::PrincipalSet,
    ),
> {
    policies
        .iter()
        .filter(|(_, p)| matches!(p.kind, PolicyKind::Resource | PolicyKind::Trust))
        .flat_map(|(name, p)| p.statements.iter().map(move |s| (name, s)))
        .filter(|(_, s)| s.effect == crate::policy::Effect::Allow)
        .filter_map(|(name, s)| {
            let set = s.principals.as_ref()?;
            Some((format!("{name} Statement[{}] ({})", s.index, s.pos), s, set))
        })
}

/// Allow statements of resource and trust policies that reach principals outside the
/// organization: an account (or a principal of one) not in `members`, or everyone
/// without a condition requiring `aws:PrincipalOrgID`/`aws:PrincipalOrgPaths` (definite
/// when no condition requires the caller's identity at all; otherwise undecided).
pub fn cross_org_grants(
    policies: &[(String, Arc<Policy>)],
    members: &std::collections::BTreeSet<String>,
) -> Vec<Grant> {
    let mut out = Vec::new();
    for (place, s, set) in principal_allows(policies) {
        if set.negated {
            continue;
        }
        let org = s
            .conditions
            .iter()
            .any(|c| requires(c, &["aws:principalorgid", "aws:principalorgpaths"]));
        for e in &set.entries {
            let account: Option<String> = match e {
                PrincipalEntry::Account(a) => Some(a.to_string()),
                PrincipalEntry::User(arn) | PrincipalEntry::Session(arn) => {
                    arn.split(':').nth(4).map(str::to_owned)
                }
                PrincipalEntry::Role { account, .. } => Some(account.to_string()),
                PrincipalEntry::Wildcard if !org => {
                    let restricted = s.conditions.iter().any(|c| requires(c, PRINCIPAL_KEYS));
                    out.push(Grant {
                            place: place.clone(),
                            finding: "grants `Principal: *` without a condition requiring `aws:PrincipalOrgID`".into(),
                            definite: !restricted,
                        });
                    None
                }
                _ => None,
            };
            if let Some(a) = account
                && !members.contains(&a)
                && !org
            {
                out.push(Grant {
                    place: place.clone(),
                    finding: format!("grants account `{a}`, which is outside the organization"),
                    definite: true,
                });
            }
        }
    }
    out
}

/// Names an operator for messages (re-exported for the CLI).
pub fn operator(op: &crate::condition::Operator) -> String {
    operator_name(op)
}

#[cfg(test)]
mod tests;

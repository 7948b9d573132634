//! Running suites: every check decided by the service exactly as `Authorize` decides it
//! (the same validation, the same snapshot, `warden authorize`'s offline face), compared
//! with its expectation; and statement coverage, with why each uncovered statement never
//! decided.
//!
//! Coverage counts a statement when it decided at least one check: it is among the
//! outcome's deciding statements (an Allow's, or every deny of an ExplicitDeny). Each
//! check's explanation (`eval::explain`) says what every other statement of its layers did:
//! a statement that matched but did not decide was shadowed by a deny or redundant beside
//! another allow; one whose action, principal and resource matched but whose condition did
//! not hold is closer than one that never was a candidate. Statements are found by a hash
//! of their policy's identity and index, so coverage is linear in the explanations' size.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Assume, AssumeBy, Body, Check, Suite, SuiteError, Test, WhoCan};
use crate::bundle::{Bundle, OrgUnit};
use crate::caller::Caller;
use crate::eval::{Decision, Explanation, Mismatch, Outcome};
use crate::json::Pos;
use crate::policy::{Effect, Policy, PolicyKind};
use crate::reverse;
use crate::service::{Item, Request, RequestError, Service, Shape};

/// Where a statement is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A bundle file (relative to the bundle root) and the statement's line and column.
    File { file: Arc<str>, pos: Pos },
    /// A built-in policy, generated from the catalog: it has no file.
    BuiltIn,
}

/// One statement of the bundle, as coverage names it.
#[derive(Debug, Clone)]
pub struct StatementInfo {
    pub kind: PolicyKind,
    pub policy: Arc<str>,
    pub index: usize,
    pub sid: Option<Arc<str>>,
    pub effect: Effect,
    pub place: Place,
}

impl StatementInfo {
    /// `file:line:column` or `built-in`.
    pub fn place(&self) -> String {
        match &self.place {
            Place::File { file, pos } => format!("{file}:{pos}"),
            Place::BuiltIn => "built-in".to_owned(),
        }
    }

    /// The statement as decisions name it (without an organization level).
    pub fn name(&self) -> String {
        match &self.sid {
            Some(sid) => format!("{} {} Sid {sid}", self.kind, self.policy),
            None => format!("{} {} Statement[{}]", self.kind, self.policy, self.index),
        }
    }
}

/// A statement's identity: its policy's id allocation (every policy of a bundle has its
/// own, and a decision's statements share it) and its index in the policy.
type Key = (usize, usize);

fn key(policy_id: &Arc<str>, index: usize) -> Key {
    (Arc::as_ptr(policy_id).cast::<u8>() as usize, index)
}

/// Every statement coverage counts: the bundle's policies (identity, group, role,
/// boundary, resource, trust, SCP, RCP), and the built-in policies only where attached.
#[derive(Debug, Default)]
pub struct Universe {
    pub statements: Vec<StatementInfo>,
    by_key: FxHashMap<Key, usize>,
}

impl Universe {
    /// The statements of `b`, in file order (built-ins last). Places come from the
    /// bundle's `places` ([`crate::bundle::load_files_with_places`]).
    pub fn of(b: &Bundle) -> Universe {
        let mut attached: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
        for a in b.accounts.values() {
            for u in &a.users {
                attached.extend(u.managed.iter().chain(&u.boundary).map(String::as_str));
            }
            for g in &a.groups {
                attached.extend(g.managed.iter().map(String::as_str));
            }
            for r in &a.roles {
                attached.extend(r.managed.iter().chain(&r.boundary).map(String::as_str));
            }
        }
        let mut org_attached: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
        if let Some(org) = &b.organization {
            fn walk<'a>(u: &'a OrgUnit, out: &mut rustc_hash::FxHashSet<&'a str>) {
                out.extend(u.scps.iter().chain(&u.rcps).map(String::as_str));
                for a in &u.accounts {
                    out.extend(a.scps.iter().chain(&a.rcps).map(String::as_str));
                }
                for c in &u.units {
                    walk(c, out);
                }
            }
            walk(&org.root, &mut org_attached);
        }
        let mut policies: Vec<&Arc<Policy>> = Vec::new();
        for (name, p) in b.scps.iter().chain(&b.rcps) {
            if b.places.of(p).is_some() || org_attached.contains(name.as_str()) {
                policies.push(p);
            }
        }
        for (arn, p) in &b.managed {
            if b.places.of(p).is_some() || attached.contains(arn.as_str()) {
                policies.push(p);
            }
        }
        for a in b.accounts.values() {
            policies.extend(a.users.iter().flat_map(|u| &u.inline));
            policies.extend(a.groups.iter().flat_map(|g| &g.inline));
            for r in &a.roles {
                policies.push(&r.trust);
                policies.extend(&r.inline);
            }
            policies.extend(a.resources.iter().map(|r| &r.policy));
        }
        let mut statements: Vec<StatementInfo> = policies
            .into_iter()
            .flat_map(|p| {
                let place = b.places.of(p).map(Arc::<str>::from);
                p.statements.iter().map(move |s| StatementInfo {
                    kind: p.kind,
                    policy: p.id.clone(),
                    index: s.index,
                    sid: s.sid.clone(),
                    effect: s.effect,
                    place: match &place {
                        Some(file) => Place::File {
                            file: file.clone(),
                            pos: s.pos,
                        },
                        None => Place::BuiltIn,
                    },
                })
            })
            .collect();
        statements.sort_by(|a, b| match (&a.place, &b.place) {
            (Place::File { file: f, pos: p }, Place::File { file: g, pos: q }) => {
                (f, p.line, p.column).cmp(&(g, q.line, q.column))
            }
            (Place::File { .. }, Place::BuiltIn) => std::cmp::Ordering::Less,
            (Place::BuiltIn, Place::File { .. }) => std::cmp::Ordering::Greater,
            (Place::BuiltIn, Place::BuiltIn) => (&a.policy, a.index).cmp(&(&b.policy, b.index)),
        });
        let by_key = statements
            .iter()
            .enumerate()
            .map(|(i, s)| (key(&s.policy, s.index), i))
            .collect();
        Universe { statements, by_key }
    }

    fn find(&self, policy: &Arc<str>, index: usize) -> Option<usize> {
        self.by_key.get(&key(policy, index)).copied()
    }
}

/// Why a statement never decided a check, from the closest it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uncovered {
    /// No check's action, principal and resource all matched it.
    NeverCandidate,
    /// Its action, principal and resource matched `requests` checks, but its condition
    /// (on `key`, in the first) never held.
    ConditionNeverHeld { key: Box<str>, requests: u32 },
    /// It matched `requests` checks, and a deny decided each of them (an explicit deny,
    /// or another layer that did not allow).
    Shadowed { requests: u32 },
    /// It matched `requests` checks that another statement of its layer decided (the first
    /// allow found; an RCP's allow never decides).
    Redundant { requests: u32 },
}

impl Uncovered {
    pub fn code(&self) -> &'static str {
        match self {
            Uncovered::NeverCandidate => "never_candidate",
            Uncovered::ConditionNeverHeld { .. } => "condition_never_held",
            Uncovered::Shadowed { .. } => "shadowed_by_deny",
            Uncovered::Redundant { .. } => "redundant",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Uncovered::NeverCandidate => {
                "never a candidate: no check's action, principal and resource all matched it"
                    .to_owned()
            }
            Uncovered::ConditionNeverHeld { key, requests } => format!(
                "its condition never held: {requests} check(s) matched its action, principal and resource, but the condition on `{key}` did not hold"
            ),
            Uncovered::Shadowed { requests } => format!(
                "always shadowed by a deny: it matched {requests} check(s), each decided by a deny"
            ),
            Uncovered::Redundant { requests } => format!(
                "redundant: it matched {requests} check(s), each decided by another statement of its layer"
            ),
        }
    }
}

/// What the checks did to one statement so far.
#[derive(Debug, Clone, Default)]
struct Tally {
    decided: u32,
    condition: u32,
    condition_key: Option<Box<str>>,
    shadowed: u32,
    redundant: u32,
}

/// Coverage of a universe by the checks run.
#[derive(Debug)]
pub struct Coverage {
    pub universe: Universe,
    tallies: Vec<Tally>,
}

impl Coverage {
    pub fn new(universe: Universe) -> Coverage {
        let tallies = vec![Tally::default(); universe.statements.len()];
        Coverage { universe, tallies }
    }

    /// Counts one decided check.
    fn record(&mut self, outcome: &Outcome, explanation: Option<&Explanation>) {
        let mut decided_here: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
        for m in &outcome.statements {
            if let Some(i) = self.universe.find(&m.policy, m.index) {
                if let Some(t) = self.tallies.get_mut(i) {
                    t.decided += 1;
                }
                decided_here.push(i);
            }
        }
        let Some(explanation) = explanation else {
            return;
        };
        for s in explanation.layers.iter().flat_map(|l| &l.statements) {
            let Some(i) = self.universe.find(&s.policy, s.index) else {
                continue;
            };
            if decided_here.contains(&i) {
                continue;
            }
            let Some(t) = self.tallies.get_mut(i) else {
                continue;
            };
            if s.matched {
                if outcome.decision == Decision::Allow {
                    t.redundant += 1;
                } else {
                    t.shadowed += 1;
                }
            } else if let Some(Mismatch::Condition { key }) = &s.mismatch {
                t.condition += 1;
                if t.condition_key.is_none() {
                    t.condition_key = Some(key.clone());
                }
            }
        }
    }

    /// Statements counted.
    pub fn total(&self) -> usize {
        self.universe.statements.len()
    }

    /// Statements that decided at least one check.
    pub fn covered(&self) -> usize {
        self.tallies.iter().filter(|t| t.decided > 0).count()
    }

    /// Covered statements in percent (100 for a bundle without statements).
    pub fn percent(&self) -> f64 {
        if self.total() == 0 {
            return 100.0;
        }
        self.covered() as f64 * 100.0 / self.total() as f64
    }

    /// Every statement with how many checks it decided, or why it decided none.
    pub fn statements(&self) -> impl Iterator<Item = (&StatementInfo, Result<u32, Uncovered>)> {
        self.universe
            .statements
            .iter()
            .zip(&self.tallies)
            .map(|(s, t)| {
                let why = if t.decided > 0 {
                    Ok(t.decided)
                } else if t.shadowed > 0 {
                    Err(Uncovered::Shadowed {
                        requests: t.shadowed,
                    })
                } else if t.redundant > 0 {
                    Err(Uncovered::Redundant {
                        requests: t.redundant,
                    })
                } else if let Some(key) = &t.condition_key {
                    Err(Uncovered::ConditionNeverHeld {
                        key: key.clone(),
                        requests: t.condition,
                    })
                } else {
                    Err(Uncovered::NeverCandidate)
                };
                (s, why)
            })
    }
}

/// A check whose decision was not the expected one.
#[derive(Debug, Clone)]
pub struct Failure {
    pub check: Check,
    pub actual: Arc<Outcome>,
    /// Expected statements that were not among the deciding ones.
    pub missing_statements: Vec<String>,
}

/// A `who_can` test whose answer was not the expected set.
#[derive(Debug, Clone)]
pub struct WhoCanFailure {
    pub action: String,
    pub resource: String,
    /// Principals allowed that the test does not list, each with why (`reason`, and the
    /// deciding statements).
    pub unexpected: Vec<(String, String)>,
    /// Principals the test lists that are not allowed.
    pub missing: Vec<String>,
}

/// An `assume` test whose answer was not the expected one.
#[derive(Debug, Clone)]
pub struct AssumeFailure {
    /// Who asked to become which role.
    pub asked: String,
    pub expected: &'static str,
    /// `Allow`, or `Deny` with why.
    pub actual: String,
}

/// What one test came to.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub file: String,
    pub name: String,
    pub pos: Pos,
    pub checks: usize,
    pub passed: usize,
    pub failures: Vec<Failure>,
    pub who_can_failures: Vec<WhoCanFailure>,
    pub assume_failures: Vec<AssumeFailure>,
    /// Checks the service refused (and `who_can` queries it refused): errors, not failures.
    pub errors: Vec<SuiteError>,
}

/// Runs `tests` (with the file each is in) against `service`, counting coverage.
pub async fn run(
    service: &Service,
    tests: &[(&Suite, &Test)],
    coverage: &mut Coverage,
) -> Vec<TestResult> {
    let mut out = Vec::with_capacity(tests.len());
    for (suite, test) in tests {
        let mut result = TestResult {
            file: suite.file.clone(),
            name: test.name.clone(),
            pos: test.pos,
            checks: test.checks(),
            passed: 0,
            failures: Vec::new(),
            who_can_failures: Vec::new(),
            assume_failures: Vec::new(),
            errors: Vec::new(),
        };
        match &test.body {
            Body::WhoCan(w) => match who_can(service, w) {
                Ok(None) => result.passed += 1,
                Ok(Some(failure)) => result.who_can_failures.push(failure),
                Err(e) => result.errors.push(who_can_refused(&suite.file, test, w, e)),
            },
            Body::Assume(a) => match assume(service, a) {
                Ok(None) => result.passed += 1,
                Ok(Some(failure)) => result.assume_failures.push(failure),
                Err((pos, message)) => result.errors.push(SuiteError {
                    file: suite.file.clone(),
                    pos: Some(pos),
                    message: format!("test `{}`: {message}", test.name),
                }),
            },
            Body::Checks(checks) => {
                for check in checks {
                    match decide(service, check).await {
                        Ok((outcome, explanation)) => {
                            coverage.record(&outcome, explanation.as_ref());
                            let missing = missing_statements(check, &outcome);
                            let expect = &check.expect;
                            if expect.decision.admits(outcome.decision)
                                && expect.reason.is_none_or(|r| r == outcome.reason)
                                && missing.is_empty()
                            {
                                result.passed += 1;
                            } else {
                                result.failures.push(Failure {
                                    check: check.clone(),
                                    actual: outcome,
                                    missing_statements: missing,
                                });
                            }
                        }
                        Err(e) => result.errors.push(refused(&suite.file, test, check, e)),
                    }
                }
            }
        }
        out.push(result);
    }
    out
}

/// The expected statements that are not among the outcome's deciding statements.
fn missing_statements(check: &Check, outcome: &Outcome) -> Vec<String> {
    if check.expect.statements.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = outcome.statements.iter().map(ToString::to_string).collect();
    check
        .expect
        .statements
        .iter()
        .filter(|s| !names.contains(&s.value))
        .map(|s| s.value.clone())
        .collect()
}

/// One check through the service, as `Authorize` is decided offline (`warden authorize`).
async fn decide(
    service: &Service,
    check: &Check,
) -> Result<(Arc<Outcome>, Option<Explanation>), RequestError> {
    let request = Request {
        caller: Caller::Asserted(check.principal.value.clone()),
        context: check.context.clone(),
        items: vec![Item {
            action: check.action.value.clone(),
            resource: check.resource.value.clone(),
            context: crate::context::Context::new(),
        }],
        min_revision: 0,
        explain: true,
        shape: Shape::One,
        face: crate::telemetry::Face::Offline,
        snapshot: None,
    };
    let answer = service.handle(|_| Ok(request)).await?;
    let decided = answer
        .decisions
        .into_iter()
        .next()
        .ok_or_else(|| RequestError::invalid("items", "the service answered no decision"))?;
    Ok((decided.outcome, decided.explanation))
}

/// A `who_can` test: the reverse query's whole answer (every page, at the serving snapshot,
/// the context screened as `Authorize` screens it) against the expected set. `Ok(None)`
/// when they are equal. Who may become a role is not part of the answer compared.
fn who_can(service: &Service, w: &WhoCan) -> Result<Option<WhoCanFailure>, RequestError> {
    let snapshot = service
        .current()
        .ok_or_else(|| RequestError::invalid("bundle", "no snapshot is loaded"))?;
    let context = service.screen_caller_context(&snapshot, w.context.clone())?;
    let query = reverse::Query::WhoCan {
        action: w.action.value.clone(),
        resource: w.resource.value.clone(),
        session_name: reverse::DEFAULT_SESSION.to_owned(),
        assume_with_mfa: false,
    };
    let limits = reverse::Limits {
        chain_depth: 0,
        ..reverse::Limits::default()
    };
    let items = reverse::answer_all(
        &snapshot,
        &query,
        &context,
        None,
        &limits,
        std::time::SystemTime::now(),
    )?
    .items;
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for item in items {
        if let reverse::Item::Principal(p) = item {
            let why: Vec<&str> = p.statements.iter().map(|b| b.statement.as_str()).collect();
            let name = p.role.unwrap_or(p.principal);
            found.insert(name, format!("{}; decided by {}", p.reason, why.join("; ")));
        }
    }
    let expected: BTreeSet<&str> = w.principals.iter().map(|p| p.value.as_str()).collect();
    let unexpected: Vec<(String, String)> = found
        .iter()
        .filter(|(name, _)| !expected.contains(name.as_str()))
        .map(|(n, why)| (n.clone(), why.clone()))
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|name| !found.contains_key(**name))
        .map(|n| (*n).to_owned())
        .collect();
    Ok(
        (!unexpected.is_empty() || !missing.is_empty()).then(|| WhoCanFailure {
            action: w.action.value.clone(),
            resource: w.resource.value.clone(),
            unexpected,
            missing,
        }),
    )
}

/// An `assume` test, decided as warden's STS decides it: `AssumeRole` for a principal
/// (the trust policy, the caller's own policies, SCPs and RCPs; `sts::assume::may_assume`),
/// for a service principal (`Snapshot::service_may_assume`), or
/// `AssumeRoleWithWebIdentity` with the stated claims. `Ok(None)` when it answered as
/// expected. A role, principal or provider the bundle does not hold is a Deny that says
/// so, as `Authorize` denies an unknown principal; claims that are not a token's are an
/// error (with where).
fn assume(service: &Service, a: &Assume) -> Result<Option<AssumeFailure>, (Pos, String)> {
    let snapshot = service
        .current()
        .ok_or_else(|| (a.pos, "no snapshot is loaded".to_owned()))?;
    let now = std::time::SystemTime::now();
    let role = a.role.value.as_str();
    let is_role = snapshot
        .entity(role)
        .is_some_and(|e| e.unique_id.starts_with("AROA"));
    let (asked, actual) = match &a.by {
        AssumeBy::Principal { arn, mfa } => {
            let with = if *mfa { " with MFA" } else { "" };
            let known = matches!(snapshot.resolve(&arn.value, None, now), Ok(Some(_)));
            let actual = if !is_role {
                Err(format!("no role `{role}` in the bundle"))
            } else if !known {
                Err(format!("no principal `{}` in the bundle", arn.value))
            } else if crate::sts::assume::may_assume(
                &snapshot,
                &arn.value,
                role,
                &a.session_name,
                *mfa,
                now,
            ) {
                Ok(())
            } else {
                Err("refused".to_owned())
            };
            (format!("`{}`{with} assumes `{role}`", arn.value), actual)
        }
        AssumeBy::Service(name) => (
            format!("the service `{}` assumes `{role}`", name.value),
            snapshot.service_may_assume(&name.value, role, &a.session_name, now),
        ),
        AssumeBy::WebIdentity { provider, claims } => {
            let mut claims = claims.clone();
            let secs = now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            claims
                .entry("exp")
                .or_insert_with(|| serde_json::Value::from(secs + 3600));
            claims
                .entry("iat")
                .or_insert_with(|| serde_json::Value::from(secs));
            let claims = crate::oidc::Claims::from_json(claims)
                .map_err(|e| (provider.pos, format!("the token's claims: {e}")))?;
            let answer = snapshot.assume_role_with_web_identity(
                &provider.value,
                role,
                &a.session_name,
                &claims,
                (now, std::time::Duration::ZERO),
            );
            (
                format!("a token of `{}` assumes `{role}`", provider.value),
                answer
                    .map(|_| ())
                    .map_err(|d| format!("{}: {}", d.code, d.message)),
            )
        }
    };
    let expected = if a.allow { "Allow" } else { "Deny" };
    Ok(match (a.allow, actual) {
        (true, Ok(())) | (false, Err(_)) => None,
        (true, Err(why)) => Some(AssumeFailure {
            asked,
            expected,
            actual: format!("Deny ({why})"),
        }),
        (false, Ok(())) => Some(AssumeFailure {
            asked,
            expected,
            actual: "Allow".to_owned(),
        }),
    })
}

/// A refused `who_can` query as a located error.
fn who_can_refused(file: &str, test: &Test, w: &WhoCan, e: RequestError) -> SuiteError {
    let pos = match &e {
        RequestError::Invalid { field, .. } if field == "action" => w.action.pos,
        RequestError::Invalid { field, .. } if field == "resource" => w.resource.pos,
        _ => w.pos,
    };
    SuiteError {
        file: file.to_owned(),
        pos: Some(pos),
        message: format!(
            "test `{}`: who can `{}` on `{}` is refused: {e}",
            test.name, w.action.value, w.resource.value
        ),
    }
}

/// A refused check as a located error: at the field the service names.
fn refused(file: &str, test: &Test, check: &Check, e: RequestError) -> SuiteError {
    let pos = match &e {
        RequestError::Invalid { field, .. } => match field.as_str() {
            "principal" | "caller" => check.principal.pos,
            "action" => check.action.pos,
            "resource" => check.resource.pos,
            _ => check.at,
        },
        _ => check.at,
    };
    SuiteError {
        file: file.to_owned(),
        pos: Some(pos),
        message: format!(
            "test `{}`: the service refuses `{}` `{}` `{}`: {e}",
            test.name, check.principal.value, check.action.value, check.resource.value
        ),
    }
}

/// Tests grouped by file, for reports that list them in order.
pub fn by_file(results: &[TestResult]) -> BTreeMap<&str, Vec<&TestResult>> {
    let mut out: BTreeMap<&str, Vec<&TestResult>> = BTreeMap::new();
    for r in results {
        out.entry(r.file.as_str()).or_default().push(r);
    }
    out
}

//! Compiled policy sets: the policies of one evaluation layer (a principal's identity
//! policies, a boundary, a session policy, a resource policy, one organization level),
//! with their statements indexed by action so a request touches only candidates.
//!
//! Index: a statement goes, for each service its `Action` names, under that service's
//! exact actions when it names only exact ones there, and under the service otherwise;
//! the rest (`NotAction`, `*`, a wildcard service) are always candidates. For any one
//! action a statement is in one bucket at most, so a request never sees it twice.
//!
//! Layout: a snapshot holds one set per distinct combination of policies (tens of thousands
//! in a large organization), so an index is flat: every bucket's entries back to back in
//! one vector, and the buckets sorted by key (the hash of the lowercase action or service)
//! in a vector beside it. A bucket holds its key, its range of entries and its text
//! together, so that finding one is a cache line or two: in a large snapshot each separate
//! load is a miss. An entry carries what a scan needs before it looks at the statement
//! itself (its effect; whether the bucket already matched the action), since every
//! statement a request reaches is a miss or several. The text (inline up to 23 bytes, as
//! most actions are) is compared with the request's action once, so an action crafted to
//! collide with another's hash reaches no statement it would not match.
//! `benches/authorize.rs` measures the bytes per statement this costs; `benches/
//! authorize_misses.rs` counts the misses.

use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use smol_str::SmolStr;

use crate::arn::ArnPattern;
use crate::matcher::Pattern;
use crate::policy::{ActionPattern, Effect, Policy, PolicyKind, Statement};
use crate::request::Action;

/// Below this many statements a linear scan beats hashing the action.
const INDEX_THRESHOLD: usize = 4;

/// A statement's place: policy index, statement index.
type StmtId = (u32, u32);

/// A candidate statement in an index: its place, and what a scan can decide without
/// loading it.
///
/// Eight bytes: a large snapshot holds tens of millions of entries (a statement is in
/// every set that holds its policy), so the two flags ride in the policy index's top bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The policy's index in the set, with [`ALLOW`] and [`ACTION_MATCHED`].
    policy: u32,
    statement: u32,
}

/// The statement's effect is `Allow`.
const ALLOW: u32 = 1 << 31;
/// The statement names the bucket's action, or every action of the bucket's service
/// (`service:*`): a request that reaches the entry through that bucket matches its
/// `Action`.
const ACTION_MATCHED: u32 = 1 << 30;
/// A set holds fewer policies than this (each takes a pointer: that would be 8 GiB).
const POLICY_MASK: u32 = ACTION_MATCHED - 1;

impl Entry {
    fn new((pi, si): StmtId, effect: Effect, action_matched: bool) -> Entry {
        let mut policy = pi & POLICY_MASK;
        if effect == Effect::Allow {
            policy |= ALLOW;
        }
        if action_matched {
            policy |= ACTION_MATCHED;
        }
        Entry {
            policy,
            statement: si,
        }
    }
}

/// A statement that may match a request, as [`PolicySet::for_candidates`] offers it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'s> {
    set: &'s PolicySet,
    policy: u32,
    statement: u32,
    /// The statement's effect, known without loading it.
    pub effect: Effect,
    /// Whether the index has already matched the request's action against the statement's
    /// `Action`; when `false` the caller must match it.
    pub action_matched: bool,
}

impl<'s> Candidate<'s> {
    /// The statement (loading it: in a large snapshot, a cache miss).
    pub fn statement(&self) -> Option<&'s Statement> {
        self.set
            .statements
            .get(self.policy as usize)?
            .get(self.statement as usize)
    }

    /// The statement's policy, which a decision names (another load: ask only for a
    /// statement that matched).
    pub fn policy(&self) -> Option<&'s Policy> {
        self.set.policies.get(self.policy as usize).map(|p| &**p)
    }
}

/// The policies of one layer, compiled and indexed. Immutable once built.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
    /// Each policy's statements, reached without loading the policy.
    statements: Box<[Arc<[Statement]>]>,
    index: Option<Index>,
    /// Whether a statement reads a key whose value changes with time (`aws:CurrentTime`,
    /// `aws:EpochTime`, `aws:MultiFactorAuthAge`; see `keys`), as a condition key or a
    /// policy variable: a decision that used this set may change with no change of policy,
    /// so it is never cached.
    time_dependent: bool,
    /// Whether any statement is a `Deny`.
    has_deny: bool,
    /// When the set's one `Allow` statement grants every action on every resource without
    /// a condition and no statement denies (an organization level with only
    /// `FullAWSAccess`), that statement: evaluating the set is then known in advance.
    allows_everything: Option<StmtId>,
}

#[derive(Debug, Clone, Default)]
struct Index {
    /// The buckets' entries, each bucket a range, in (policy, statement) order.
    ids: Box<[Entry]>,
    /// Exact actions' buckets.
    exact: Bucketed,
    /// Services' buckets.
    by_service: Bucketed,
    /// The statements that are candidates for every action.
    always: Span,
}

/// A range of `Index::ids`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

/// Buckets sorted by (key, text), so texts whose hashes collide sit side by side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bucketed(Box<[Bucket]>);

/// One action's or service's statements: 40 bytes, so a lookup that lands on its key has
/// the range and the text in the same cache line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bucket {
    /// The hash of `text`.
    key: u64,
    span: Span,
    /// The lowercase action or service.
    text: SmolStr,
}

/// The texts of index buckets (actions, services), shared by every set compiled with the
/// same `Texts`: a snapshot's sets keep one copy of each text too long to sit inline.
#[derive(Debug, Default)]
pub struct Texts(rustc_hash::FxHashSet<SmolStr>);

impl Texts {
    fn intern(&mut self, text: &str) -> SmolStr {
        if let Some(t) = self.0.get(text) {
            return t.clone();
        }
        let t = SmolStr::new(text);
        if t.is_heap_allocated() {
            self.0.insert(t.clone());
        }
        t
    }
}

/// The hash an index files a lowercase action or service under; a request's action
/// computes it once (`request::Action`) for every set it is looked up in.
pub fn key(text: &str) -> u64 {
    FxBuildHasher.hash_one(text)
}

/// A set of texts found by their [`key`] with the indexes' interpolation search: the
/// catalog's actions, which every request's action is checked against, with the key the
/// action computed once.
#[derive(Debug, Clone, Default)]
pub struct TextSet(Box<[(u64, SmolStr)]>);

impl TextSet {
    pub fn new(texts: impl IntoIterator<Item = String>) -> TextSet {
        let mut all: Vec<(u64, SmolStr)> = texts
            .into_iter()
            .map(|t| (key(&t), SmolStr::new(t)))
            .collect();
        all.sort_unstable();
        all.dedup();
        TextSet(all.into_boxed_slice())
    }

    /// Whether `text`, whose [`key`] is `k`, is in the set.
    pub fn contains(&self, k: u64, text: &str) -> bool {
        let first = lower_bound(&self.0, k, |e| e.0);
        self.0
            .get(first..)
            .unwrap_or_default()
            .iter()
            .take_while(|e| e.0 == k)
            .any(|e| e.1 == text)
    }
}

impl Index {
    fn ids(&self, span: Span) -> &[Entry] {
        let start = span.start as usize;
        self.ids
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// The bucket of `text`.
    #[cfg(test)]
    fn find(buckets: &Bucketed, text: &str) -> Option<Span> {
        Index::find_keyed(buckets, key(text), text)
    }

    fn find_keyed(buckets: &Bucketed, k: u64, text: &str) -> Option<Span> {
        let first = lower_bound(&buckets.0, k, |b| b.key);
        buckets
            .0
            .get(first..)?
            .iter()
            .take_while(|b| b.key == k)
            .find(|b| b.text == text)
            .map(|b| b.span)
    }
}

/// How far [`lower_bound`] steps from its guess before it falls back to a binary search.
const NEAR: usize = 8;

/// The first position in `items`, sorted by `key`, whose key is `k` or more.
///
/// The keys are hashes, spread evenly over `u64`, so `k`'s place is about `k / 2^64` of the
/// way along: a lookup starts there and steps to it, touching a cache line or two where a
/// binary search over a few hundred keys touches five or six, each a miss in a large
/// snapshot. Keys bunched together (a crafted policy) cost a binary search more, no worse.
fn lower_bound<T>(items: &[T], k: u64, key: impl Fn(&T) -> u64) -> usize {
    let n = items.len();
    // Below n, since k < 2^64.
    let guess = ((u128::from(k) * n as u128) >> 64) as usize;
    let (before, after) = items.split_at(guess.min(n));
    let below = |b: &T| key(b) < k;
    if after.first().is_some_and(below) {
        // The answer is past the guess.
        let rest = after.get(1..).unwrap_or_default();
        let (near, far) = rest.split_at(rest.len().min(NEAR));
        match near.iter().position(|b| !below(b)) {
            Some(i) => guess + 1 + i,
            None => guess + 1 + near.len() + far.partition_point(below),
        }
    } else {
        // The answer is at the guess or before it.
        let (far, near) = before.split_at(before.len().saturating_sub(NEAR));
        match near.iter().rposition(below) {
            Some(i) => far.len() + i + 1,
            None => far.partition_point(below),
        }
    }
}

impl PolicySet {
    pub fn new(policies: Vec<Arc<Policy>>) -> PolicySet {
        PolicySet::with_texts(policies, &mut Texts::default())
    }

    /// A set whose index shares its bucket texts with the other sets built with `texts`.
    pub fn with_texts(policies: Vec<Arc<Policy>>, texts: &mut Texts) -> PolicySet {
        let total: usize = policies.iter().map(|p| p.statements.len()).sum();
        let index = (total > INDEX_THRESHOLD).then(|| Index::build(&policies, texts));
        // The registry says which keys the clock changes; a key read as a condition key or
        // as a policy variable (in a condition value or a `Resource`) counts alike.
        let time_dependent = policies
            .iter()
            .flat_map(|p| p.statements.iter())
            .flat_map(Statement::keys_read)
            .any(crate::keys::varies_with_time);
        let statements = || {
            policies.iter().enumerate().flat_map(|(pi, p)| {
                p.statements
                    .iter()
                    .enumerate()
                    .map(move |(si, s)| ((pi as u32, si as u32), s))
            })
        };
        let has_deny = statements().any(|(_, s)| s.effect == Effect::Deny);
        let mut allows = statements().filter(|(_, s)| s.effect == Effect::Allow);
        let allows_everything = match (allows.next(), allows.next()) {
            (Some((id, s)), None) if !has_deny && grants_everything(s) => Some(id),
            _ => None,
        };
        PolicySet {
            statements: policies.iter().map(|p| p.statements.clone()).collect(),
            policies,
            index,
            time_dependent,
            has_deny,
            allows_everything,
        }
    }

    pub fn has_deny(&self) -> bool {
        self.has_deny
    }

    /// The set's only statement that matters, when it allows every request and nothing
    /// denies (see the field). Principals are not looked at: such a statement has none.
    pub fn allows_everything(&self) -> Option<(&Policy, &Statement)> {
        let (pi, si) = self.allows_everything?;
        let p = self.policies.get(pi as usize)?;
        Some((p, p.statements.get(si as usize)?))
    }

    pub fn time_dependent(&self) -> bool {
        self.time_dependent
    }

    pub fn policies(&self) -> &[Arc<Policy>] {
        &self.policies
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    pub fn statement_count(&self) -> usize {
        self.policies.iter().map(|p| p.statements.len()).sum()
    }

    /// The kind of the set's policies (the first one's; a set holds one kind).
    pub fn kind(&self) -> Option<PolicyKind> {
        self.policies.first().map(|p| p.kind)
    }

    /// Calls `f` with every statement that may match `action`, until `f` returns `false`.
    pub fn for_candidates<'s>(&'s self, action: &Action, mut f: impl FnMut(Candidate<'s>) -> bool) {
        let Some(index) = &self.index else {
            for (pi, p) in self.policies.iter().enumerate() {
                for (si, s) in p.statements.iter().enumerate() {
                    let c = Candidate {
                        set: self,
                        policy: pi as u32,
                        statement: si as u32,
                        effect: s.effect,
                        action_matched: false,
                    };
                    if !f(c) {
                        return;
                    }
                }
            }
            return;
        };
        let candidate = |e: &Entry| Candidate {
            set: self,
            policy: e.policy & POLICY_MASK,
            statement: e.statement,
            effect: if e.policy & ALLOW != 0 {
                Effect::Allow
            } else {
                Effect::Deny
            },
            action_matched: e.policy & ACTION_MATCHED != 0,
        };
        let (action_key, service_key) = action.keys();
        let spans = [
            Index::find_keyed(&index.exact, action_key, action.as_str()),
            Index::find_keyed(&index.by_service, service_key, action.service()),
            Some(index.always),
        ];
        for span in spans.into_iter().flatten() {
            for e in index.ids(span) {
                if !f(candidate(e)) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
impl PolicySet {
    /// The same set with its statements gone from under its index: what an inconsistent
    /// snapshot would look like, for the tests that show it is denied.
    pub(crate) fn with_statements_lost(&self) -> PolicySet {
        let mut s = self.clone();
        s.statements = s.statements.iter().map(|_| Arc::from([])).collect();
        s
    }
}

/// Where one statement goes in an index, unless it is a candidate for every action.
#[derive(Default)]
struct Placement {
    /// `service:name` buckets; a request reaching the statement through one matches its
    /// `Action`.
    exact: Vec<Box<str>>,
    /// Service buckets, each with whether the statement names every action of the service
    /// (`service:*`), which a request reaching it through that bucket then matches.
    services: Vec<(Box<str>, bool)>,
}

impl Index {
    fn build(policies: &[Arc<Policy>], texts: &mut Texts) -> Index {
        // (key, text, place, action matched) for every bucket a statement goes under.
        let mut exact: Vec<(u64, Box<str>, StmtId, bool)> = Vec::new();
        let mut by_service: Vec<(u64, Box<str>, StmtId, bool)> = Vec::new();
        let mut always: Vec<Entry> = Vec::new();
        for (pi, p) in policies.iter().enumerate() {
            for (si, s) in p.statements.iter().enumerate() {
                let id = (pi as u32, si as u32);
                let Some(place) = placement(s) else {
                    always.push(Entry::new(id, s.effect, false));
                    continue;
                };
                exact.extend(place.exact.into_iter().map(|a| (key(&a), a, id, true)));
                by_service.extend(
                    place
                        .services
                        .into_iter()
                        .map(|(svc, any)| (key(&svc), svc, id, any)),
                );
            }
        }
        let mut ids: Vec<Entry> = Vec::with_capacity(exact.len() + by_service.len() + always.len());
        let mut flatten = |mut placed: Vec<(u64, Box<str>, StmtId, bool)>| {
            // Sorted by key and text, then by statement: each bucket keeps the documents'
            // order, and a statement listed twice under one action or service once.
            placed.sort_unstable();
            placed.dedup();
            let mut buckets: Vec<Bucket> = Vec::new();
            for (k, text, id, matched) in placed {
                let Some(s) = policies
                    .get(id.0 as usize)
                    .and_then(|p| p.statements.get(id.1 as usize))
                else {
                    continue;
                };
                match buckets.last_mut() {
                    Some(b) if b.key == k && b.text == *text => b.span.len += 1,
                    _ => buckets.push(Bucket {
                        key: k,
                        span: Span {
                            start: ids.len() as u32,
                            len: 1,
                        },
                        text: texts.intern(&text),
                    }),
                }
                ids.push(Entry::new(id, s.effect, matched));
            }
            Bucketed(buckets.into_boxed_slice())
        };
        let exact = flatten(exact);
        let by_service = flatten(by_service);
        let always_span = Span {
            start: ids.len() as u32,
            len: always.len() as u32,
        };
        ids.extend(always);
        Index {
            ids: ids.into_boxed_slice(),
            exact,
            by_service,
            always: always_span,
        }
    }
}

/// `"Effect": "Allow", "Action": "*", "Resource": "*"` with no principal and no condition.
fn grants_everything(s: &Statement) -> bool {
    s.effect == Effect::Allow
        && !s.actions.negated
        && s.actions.patterns.contains(&ActionPattern::Any)
        && s.resources
            .as_ref()
            .is_some_and(|r| !r.negated && r.patterns.contains(&ArnPattern::Any))
        && s.principals.is_none()
        && s.conditions.is_empty()
}

/// Sorts a statement's `Action` by service. For each service it names: under its exact
/// actions when it names only exact ones there, else under the service (matched already
/// when one of them is `service:*`). So for any one action a statement sits in one bucket
/// at most. A `NotAction`, a `*`, or a wildcard in a service makes it always a candidate
/// (`None`).
fn placement(s: &Statement) -> Option<Placement> {
    if s.actions.negated {
        return None;
    }
    // Per service: its exact names, and whether a wildcard name (and `*` itself) occurs.
    let mut by_service: Vec<(&str, Vec<&str>, bool, bool)> = Vec::new();
    for p in &s.actions.patterns {
        let ActionPattern::Parts {
            service: Pattern::Exact(svc),
            name,
        } = p
        else {
            return None;
        };
        let i = match by_service.iter().position(|(s, ..)| *s == &**svc) {
            Some(i) => i,
            None => {
                by_service.push((svc, Vec::new(), false, false));
                by_service.len() - 1
            }
        };
        let Some((_, names, wild, any)) = by_service.get_mut(i) else {
            continue;
        };
        match name {
            Pattern::Exact(n) => names.push(n),
            Pattern::Any => {
                *wild = true;
                *any = true;
            }
            _ => *wild = true,
        }
    }
    let mut out = Placement::default();
    for (svc, names, wild, any) in by_service {
        if wild {
            out.services.push((svc.into(), any));
        } else {
            for n in names {
                let a: Box<str> = format!("{svc}:{n}").into();
                if !out.exact.contains(&a) {
                    out.exact.push(a);
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_text;

    fn set(statements: &[&str]) -> PolicySet {
        let body = statements.join(",");
        let text = format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#);
        let policy = parse_text(&text, PolicyKind::Identity, "p").policy.unwrap();
        PolicySet::new(vec![Arc::new(policy)])
    }

    fn candidates(s: &PolicySet, action: &str) -> Vec<usize> {
        let action = Action::parse(action).unwrap();
        let mut out = Vec::new();
        s.for_candidates(&action, |c| {
            out.push(c.statement().unwrap().index);
            true
        });
        out.sort();
        out
    }

    #[test]
    fn index_returns_exact_service_and_always_candidates_once() {
        let mut stmts = vec![
            r#"{"Effect":"Allow","Action":["a:x","a:X"],"Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":["a:Get*","b:y"],"Resource":"*"}"#,
            r#"{"Effect":"Allow","NotAction":"c:*","Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":"?:x","Resource":"*"}"#,
        ];
        let filler = r#"{"Effect":"Allow","Action":"z:z","Resource":"*"}"#;
        stmts.extend(std::iter::repeat_n(filler, INDEX_THRESHOLD));
        let s = set(&stmts);
        assert!(s.index.is_some());
        assert_eq!(candidates(&s, "a:x"), vec![0, 1, 2, 3, 4]);
        // Statement 1 is under service `a` (a wildcard there) but under the exact `b:y`.
        assert_eq!(candidates(&s, "a:q"), vec![1, 2, 3, 4]);
        assert_eq!(candidates(&s, "b:y"), vec![1, 2, 3, 4]);
        assert_eq!(candidates(&s, "b:q"), vec![2, 3, 4]);
        assert_eq!(candidates(&s, "q:q"), vec![2, 3, 4]);
    }

    #[test]
    fn a_text_set_finds_its_texts_by_key_and_compares_them() {
        let set = TextSet::new(["orders:getorder".to_owned(), "s3:getobject".to_owned()]);
        assert!(set.contains(key("orders:getorder"), "orders:getorder"));
        assert!(set.contains(key("s3:getobject"), "s3:getobject"));
        assert!(!set.contains(key("orders:getorders"), "orders:getorders"));
        // A key that collides finds nothing without its text.
        assert!(!set.contains(key("orders:getorder"), "forged:action"));
    }

    #[test]
    fn a_lone_allow_of_everything_is_known_in_advance() {
        let all = r#"{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}"#;
        let s = set(&[all]);
        let (_, st) = s.allows_everything().unwrap();
        assert_eq!(st.sid.as_deref(), Some("All"));
        assert!(!s.has_deny());
        // Anything else in the set, or any narrowing of the statement, turns it off.
        for other in [
            vec![all, r#"{"Effect":"Deny","Action":"a:x","Resource":"*"}"#],
            vec![all, r#"{"Effect":"Allow","Action":"a:x","Resource":"*"}"#],
            vec![r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b"}"#],
            vec![r#"{"Effect":"Allow","NotAction":"a:*","Resource":"*"}"#],
            vec![r#"{"Effect":"Allow","Action":"*","NotResource":"*"}"#],
            vec![
                r#"{"Effect":"Allow","Action":["*"],"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}"#,
            ],
        ] {
            assert!(set(&other).allows_everything().is_none(), "{other:?}");
        }
        assert!(set(&[r#"{"Effect":"Deny","Action":"a:x","Resource":"*"}"#]).has_deny());
    }

    #[test]
    fn reading_the_clock_anywhere_makes_a_set_time_dependent() {
        for (statement, dependent) in [
            // As a condition key.
            (
                r#"{"Effect":"Allow","Action":"a:x","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}"#,
                true,
            ),
            (
                r#"{"Effect":"Allow","Action":"a:x","Resource":"*","Condition":{"NumericLessThan":{"AWS:MultiFactorAuthAge":"300"}}}"#,
                true,
            ),
            // As a policy variable in a condition value.
            (
                r#"{"Effect":"Allow","Action":"a:x","Resource":"*","Condition":{"StringLike":{"a:until":"${aws:EpochTime}*"}}}"#,
                true,
            ),
            (
                r#"{"Effect":"Allow","Action":"a:x","Resource":"*","Condition":{"StringEquals":{"a:day":"${aws:CurrentTime}"}}}"#,
                true,
            ),
            (
                r#"{"Effect":"Allow","Action":"a:x","Resource":"*","Condition":{"ArnLike":{"a:src":"arn:aws:a:::${aws:epochtime}"}}}"#,
                true,
            ),
            // As a policy variable in `Resource` and `NotResource`.
            (
                r#"{"Effect":"Allow","Action":"a:x","Resource":"arn:aws:a:::t/${aws:EpochTime}"}"#,
                true,
            ),
            (
                r#"{"Effect":"Deny","Action":"a:x","NotResource":"arn:aws:a:::t/${aws:CurrentTime}"}"#,
                true,
            ),
            // Keys the clock does not change.
            (
                r#"{"Effect":"Allow","Action":"a:x","Resource":"arn:aws:a:::u/${aws:username}","Condition":{"DateGreaterThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"}}}"#,
                false,
            ),
        ] {
            assert_eq!(set(&[statement]).time_dependent(), dependent, "{statement}");
        }
    }

    #[test]
    fn exact_buckets_match_the_action_and_carry_the_effect() {
        let mut stmts = vec![
            r#"{"Effect":"Deny","Action":["a:x","b:y"],"Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":["a:x","a:Get*"],"Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":["a:Get*","a:*","b:y"],"Resource":"*"}"#,
        ];
        let filler = r#"{"Effect":"Allow","Action":"z:z","Resource":"*"}"#;
        stmts.extend(std::iter::repeat_n(filler, INDEX_THRESHOLD));
        let s = set(&stmts);
        let mut seen = Vec::new();
        s.for_candidates(&Action::parse("a:x").unwrap(), |c| {
            let st = c.statement().unwrap();
            assert_eq!(c.effect, st.effect);
            seen.push((st.index, c.action_matched));
            true
        });
        // The deny is reached through its exact bucket, the allows through their service's:
        // the first must still be matched (`a:Get*` does not name `a:x`), the second names
        // every action of `a`.
        assert_eq!(seen, vec![(0, true), (1, false), (2, true)]);
    }

    #[test]
    fn a_colliding_hash_finds_only_its_own_text() {
        let bucket = |key, text: &str, start| Bucket {
            key,
            span: Span { start, len: 1 },
            text: text.into(),
        };
        let buckets = Bucketed(
            vec![
                bucket(7, "a:x", 0),
                bucket(7, "iam:createuser", 1),
                bucket(9, "b:y", 2),
            ]
            .into(),
        );
        // Two texts under one key, as if their hashes collided.
        let find = |k: u64, text: &str| Index::find_keyed(&buckets, k, text).map(|s| s.start);
        assert_eq!(find(7, "iam:createuser"), Some(1));
        assert_eq!(find(7, "a:x"), Some(0));
        assert_eq!(find(7, "forged:action"), None);
        assert_eq!(
            Index::find(&buckets, "b:y"),
            None,
            "b:y's real hash is not 9"
        );
    }

    #[test]
    fn lower_bound_agrees_with_a_binary_search() {
        // Even keys, bunched keys, and every key around them.
        let mut rng = oorandom::Rand64::new(7);
        for n in [0usize, 1, 2, 9, 17, 100, 1000] {
            let spread: Vec<u64> = {
                let mut v: Vec<u64> = (0..n).map(|_| rng.rand_u64()).collect();
                v.sort_unstable();
                v
            };
            let bunched: Vec<u64> = (0..n as u64).map(|i| u64::MAX / 2 + i / 3).collect();
            for keys in [spread, bunched] {
                let probes = keys
                    .iter()
                    .flat_map(|&k| [k.wrapping_sub(1), k, k.wrapping_add(1)])
                    .chain([0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX]);
                for k in probes {
                    assert_eq!(
                        lower_bound(&keys, k, |&b| b),
                        keys.partition_point(|&b| b < k),
                        "{n} keys, probe {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn small_sets_are_scanned() {
        let s = set(&[r#"{"Effect":"Allow","Action":"a:x","Resource":"*"}"#]);
        assert!(s.index.is_none());
        assert_eq!(candidates(&s, "b:y"), vec![0]);
    }
}

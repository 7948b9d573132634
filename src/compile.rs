//! Compiled policy sets: the policies of one evaluation layer (a principal's identity
//! policies, a boundary, a session policy, a resource policy, one organization level),
//! with their statements indexed by action so a request touches only candidates.
//!
//! Index: a statement whose every `Action` is exact goes under each exact action; one
//! whose patterns all name a literal service goes under each service; the rest
//! (`NotAction`, `*`, a wildcard service) are always candidates. A statement lands in one
//! kind of bucket only, so a request never sees it twice.
//!
//! Layout: a snapshot holds one set per distinct combination of policies (tens of thousands
//! in a large organization), so an index is flat: every bucket's entries back to back in
//! one vector, and the keys (hashes of the lowercase action or service) in a sorted vector
//! beside it. An entry carries what a scan needs before it looks at the statement itself
//! (its effect; whether the bucket already matched the action), since in a large snapshot
//! every statement a request reaches is a cache miss or several. A bucket keeps its text
//! too: a request's action is compared with it once, so an action crafted to collide with
//! another's hash reaches no statement it would not match. `benches/authorize.rs` measures
//! the bytes per statement this costs.

use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::arn::ArnPattern;
use crate::matcher::Pattern;
use crate::policy::{ActionPattern, Effect, Policy, PolicyKind, Statement};

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
/// Every action pattern of the statement is exact and one of them is the bucket's action:
/// a request that reaches the entry through that bucket matches its `Action`.
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
    /// Whether a condition tests the time (`aws:CurrentTime`, `aws:EpochTime`): a decision
    /// that used this set may change with no change of policy, so it is never cached.
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

/// Buckets: the hashes of their lowercase actions or services, sorted, in an array of
/// their own (a binary search touches few cache lines); beside them each bucket's text and
/// entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bucketed {
    keys: Box<[u64]>,
    spans: Box<[(Arc<str>, Span)]>,
}

/// The texts of index buckets (actions, services), shared by every set compiled with the
/// same `Texts`: a snapshot's sets keep one copy of each.
#[derive(Debug, Default)]
pub struct Texts(rustc_hash::FxHashSet<Arc<str>>);

impl Texts {
    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(t) = self.0.get(text) {
            return t.clone();
        }
        let t: Arc<str> = text.into();
        self.0.insert(t.clone());
        t
    }
}

fn key(text: &str) -> u64 {
    FxBuildHasher.hash_one(text)
}

impl Index {
    fn ids(&self, span: Span) -> &[Entry] {
        let start = span.start as usize;
        self.ids
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// The bucket of `text`. Buckets are sorted by (key, text), so texts whose hashes
    /// collide sit side by side.
    fn find(buckets: &Bucketed, text: &str) -> Option<Span> {
        Index::find_keyed(buckets, key(text), text)
    }

    fn find_keyed(buckets: &Bucketed, k: u64, text: &str) -> Option<Span> {
        let first = buckets.keys.partition_point(|&b| b < k);
        let same = buckets
            .keys
            .get(first..)?
            .iter()
            .take_while(|&&b| b == k)
            .count();
        buckets
            .spans
            .get(first..first + same)?
            .iter()
            .find(|(t, _)| &**t == text)
            .map(|(_, span)| *span)
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
        let time_dependent = policies
            .iter()
            .flat_map(|p| p.statements.iter())
            .flat_map(|s| &s.conditions)
            .any(|c| {
                matches!(
                    &*c.key,
                    "aws:currenttime"
                        | "aws:epochtime"
                        | "aws:tokenissuetime"
                        | "aws:multifactorauthage"
                )
            });
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

    /// Calls `f` with every statement that may match the lowercase action `action`
    /// (`service:name`), until `f` returns `false`.
    pub fn for_candidates<'s>(
        &'s self,
        action: &str,
        service: &str,
        mut f: impl FnMut(Candidate<'s>) -> bool,
    ) {
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
        let spans = [
            Index::find(&index.exact, action),
            Index::find(&index.by_service, service),
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

enum Bucket {
    Exact(Vec<Box<str>>),
    Service(Vec<Box<str>>),
    Always,
}

impl Index {
    fn build(policies: &[Arc<Policy>], texts: &mut Texts) -> Index {
        // (key, text, place) for every bucket a statement goes under.
        let mut exact: Vec<(u64, Box<str>, StmtId)> = Vec::new();
        let mut by_service: Vec<(u64, Box<str>, StmtId)> = Vec::new();
        let mut always: Vec<Entry> = Vec::new();
        for (pi, p) in policies.iter().enumerate() {
            for (si, s) in p.statements.iter().enumerate() {
                let id = (pi as u32, si as u32);
                match bucket(s) {
                    Bucket::Exact(actions) => {
                        exact.extend(actions.into_iter().map(|a| (key(&a), a, id)));
                    }
                    Bucket::Service(services) => {
                        by_service.extend(services.into_iter().map(|svc| (key(&svc), svc, id)));
                    }
                    Bucket::Always => always.push(Entry::new(id, s.effect, false)),
                }
            }
        }
        let mut ids: Vec<Entry> = Vec::with_capacity(exact.len() + by_service.len() + always.len());
        let mut flatten = |mut placed: Vec<(u64, Box<str>, StmtId)>, matched: bool| {
            // Sorted by key and text, then by statement: each bucket keeps the documents'
            // order, and a statement listed twice under one action or service once.
            placed.sort_unstable();
            placed.dedup();
            let mut keys: Vec<u64> = Vec::new();
            let mut spans: Vec<(Arc<str>, Span)> = Vec::new();
            for (k, text, id) in placed {
                let Some(s) = policies
                    .get(id.0 as usize)
                    .and_then(|p| p.statements.get(id.1 as usize))
                else {
                    continue;
                };
                match (keys.last(), spans.last_mut()) {
                    (Some(&lk), Some((lt, span))) if lk == k && **lt == *text => span.len += 1,
                    _ => {
                        keys.push(k);
                        spans.push((
                            texts.intern(&text),
                            Span {
                                start: ids.len() as u32,
                                len: 1,
                            },
                        ));
                    }
                }
                ids.push(Entry::new(id, s.effect, matched));
            }
            Bucketed {
                keys: keys.into_boxed_slice(),
                spans: spans.into_boxed_slice(),
            }
        };
        let exact = flatten(exact, true);
        let by_service = flatten(by_service, false);
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

fn bucket(s: &Statement) -> Bucket {
    if s.actions.negated {
        return Bucket::Always;
    }
    let mut exact = Vec::new();
    let mut services = Vec::new();
    let mut all_exact = true;
    for p in &s.actions.patterns {
        match p {
            ActionPattern::Parts {
                service: Pattern::Exact(svc),
                name,
            } => {
                if !services.contains(svc) {
                    services.push(svc.clone());
                }
                match name {
                    Pattern::Exact(n) => {
                        let a: Box<str> = format!("{svc}:{n}").into();
                        if !exact.contains(&a) {
                            exact.push(a);
                        }
                    }
                    _ => all_exact = false,
                }
            }
            _ => return Bucket::Always,
        }
    }
    if all_exact {
        Bucket::Exact(exact)
    } else {
        Bucket::Service(services)
    }
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
        let service = action.split(':').next().unwrap();
        let mut out = Vec::new();
        s.for_candidates(action, service, |c| {
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
        assert_eq!(candidates(&s, "b:q"), vec![1, 2, 3, 4]);
        assert_eq!(candidates(&s, "q:q"), vec![2, 3, 4]);
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
    fn exact_buckets_match_the_action_and_carry_the_effect() {
        let mut stmts = vec![
            r#"{"Effect":"Deny","Action":["a:x","b:y"],"Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":["a:x","a:Get*"],"Resource":"*"}"#,
        ];
        let filler = r#"{"Effect":"Allow","Action":"z:z","Resource":"*"}"#;
        stmts.extend(std::iter::repeat_n(filler, INDEX_THRESHOLD));
        let s = set(&stmts);
        let mut seen = Vec::new();
        s.for_candidates("a:x", "a", |c| {
            let st = c.statement().unwrap();
            assert_eq!(c.effect, st.effect);
            seen.push((st.index, c.action_matched));
            true
        });
        // The deny is reached through its exact bucket, the allow through its service's.
        assert_eq!(seen, vec![(0, true), (1, false)]);
    }

    #[test]
    fn a_colliding_hash_finds_only_its_own_text() {
        let span = |start| Span { start, len: 1 };
        let buckets = Bucketed {
            keys: vec![7, 7, 9].into(),
            spans: vec![
                ("a:x".into(), span(0)),
                ("iam:createuser".into(), span(1)),
                ("b:y".into(), span(2)),
            ]
            .into(),
        };
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
    fn small_sets_are_scanned() {
        let s = set(&[r#"{"Effect":"Allow","Action":"a:x","Resource":"*"}"#]);
        assert!(s.index.is_none());
        assert_eq!(candidates(&s, "b:y"), vec![0]);
    }
}

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
//! in a large organization), so an index is flat: every bucket's statements back to back in
//! one vector, and the keys (hashes of the lowercase action or service) in a sorted vector
//! beside it. A hash collision only adds candidates, which evaluation checks in full anyway.
//! `benches/authorize.rs` measures the bytes per statement this costs.

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

/// The policies of one layer, compiled and indexed. Immutable once built.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
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
    /// The buckets' statements, each bucket a range, in (policy, statement) order.
    ids: Box<[StmtId]>,
    /// Exact actions' buckets, sorted by key.
    exact: Box<[Bucketed]>,
    /// Services' buckets, sorted by key.
    by_service: Box<[Bucketed]>,
    /// The statements that are candidates for every action.
    always: Span,
}

/// A range of `Index::ids`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

/// A bucket: the hash of its lowercase action or service, and its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucketed {
    key: u64,
    span: Span,
}

fn key(text: &str) -> u64 {
    FxBuildHasher.hash_one(text)
}

impl Index {
    fn ids(&self, span: Span) -> &[StmtId] {
        let start = span.start as usize;
        self.ids
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    fn find(buckets: &[Bucketed], text: &str) -> Option<Span> {
        let k = key(text);
        buckets
            .binary_search_by_key(&k, |b| b.key)
            .ok()
            .and_then(|i| buckets.get(i))
            .map(|b| b.span)
    }
}

impl PolicySet {
    pub fn new(policies: Vec<Arc<Policy>>) -> PolicySet {
        let total: usize = policies.iter().map(|p| p.statements.len()).sum();
        let index = (total > INDEX_THRESHOLD).then(|| Index::build(&policies));
        let time_dependent = policies
            .iter()
            .flat_map(|p| &p.statements)
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
        mut f: impl FnMut(&'s Policy, &'s Statement) -> bool,
    ) {
        let Some(index) = &self.index else {
            for p in &self.policies {
                for s in &p.statements {
                    if !f(p, s) {
                        return;
                    }
                }
            }
            return;
        };
        let spans = [
            Index::find(&index.exact, action),
            Index::find(&index.by_service, service),
            Some(index.always),
        ];
        for span in spans.into_iter().flatten() {
            for &(pi, si) in index.ids(span) {
                let Some(p) = self.policies.get(pi as usize) else {
                    continue;
                };
                let Some(s) = p.statements.get(si as usize) else {
                    continue;
                };
                if !f(p, s) {
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
    fn build(policies: &[Arc<Policy>]) -> Index {
        let mut exact: Vec<(u64, StmtId)> = Vec::new();
        let mut by_service: Vec<(u64, StmtId)> = Vec::new();
        let mut always: Vec<StmtId> = Vec::new();
        for (pi, p) in policies.iter().enumerate() {
            for (si, s) in p.statements.iter().enumerate() {
                let id = (pi as u32, si as u32);
                match bucket(s) {
                    Bucket::Exact(actions) => {
                        exact.extend(actions.iter().map(|a| (key(a), id)));
                    }
                    Bucket::Service(services) => {
                        by_service.extend(services.iter().map(|svc| (key(svc), id)));
                    }
                    Bucket::Always => always.push(id),
                }
            }
        }
        let mut ids: Vec<StmtId> =
            Vec::with_capacity(exact.len() + by_service.len() + always.len());
        let mut flatten = |mut pairs: Vec<(u64, StmtId)>| -> Box<[Bucketed]> {
            // Sorted by key, then by statement: each bucket keeps the documents' order, and a
            // statement listed twice under one key (or under two keys that collide) once.
            pairs.sort_unstable();
            pairs.dedup();
            let mut buckets: Vec<Bucketed> = Vec::new();
            for (k, id) in pairs {
                match buckets.last_mut() {
                    Some(b) if b.key == k => b.span.len += 1,
                    _ => buckets.push(Bucketed {
                        key: k,
                        span: Span {
                            start: ids.len() as u32,
                            len: 1,
                        },
                    }),
                }
                ids.push(id);
            }
            buckets.into_boxed_slice()
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
        s.for_candidates(action, service, |_, st| {
            out.push(st.index);
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
    fn small_sets_are_scanned() {
        let s = set(&[r#"{"Effect":"Allow","Action":"a:x","Resource":"*"}"#]);
        assert!(s.index.is_none());
        assert_eq!(candidates(&s, "b:y"), vec![0]);
    }
}

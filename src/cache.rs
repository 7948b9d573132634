//! The decision cache: a bounded concurrent map from a question (whose: the resolved
//! identity; which action, which resource, with which context, as the request wrote them),
//! at one snapshot revision, to its outcome.
//!
//! **The revision and the identity are part of the key**, so an entry can never answer for
//! another snapshot or another session; a decision that reads the time is never stored, so
//! none outlives its conditions.
//! quick_cache was measured against a size-bounded dashmap (`benches/cache.rs`) and kept.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use metrics::Counter;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Equivalent, Lifecycle, UnitWeighter};

use crate::context::{Context, ContextValue};
use crate::eval::Outcome;

/// Whose decision it is: the resolved identity, not the text a caller sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity<'a> {
    /// A principal that carries nothing beyond what the snapshot knows of it (an asserted
    /// ARN): its ARN names it.
    Principal(&'a str),
    /// A verified session, by its id: it carries its own policies, tags and MFA.
    Session(&'a str),
}

/// The owned form of [`Identity`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedIdentity {
    Principal(Box<str>),
    Session(Box<str>),
}

impl Identity<'_> {
    fn to_owned(self) -> OwnedIdentity {
        match self {
            Identity::Principal(a) => OwnedIdentity::Principal(a.into()),
            Identity::Session(id) => OwnedIdentity::Session(id.into()),
        }
    }

    fn borrowed(owned: &OwnedIdentity) -> Identity<'_> {
        match owned {
            OwnedIdentity::Principal(a) => Identity::Principal(a),
            OwnedIdentity::Session(id) => Identity::Session(id),
        }
    }
}

/// A question as the cache keys it: the request as it came (its action and resource as
/// written, its shared and own contexts as they were sent), borrowed from it. Keyed so, a
/// hit needs no parsing, screening or resolution; only a request that passed them is ever
/// stored, so a hit was valid.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    pub revision: u64,
    pub identity: Identity<'a>,
    pub action: &'a str,
    pub resource: &'a str,
    /// The request's shared context and the item's own, each as sent: kept apart, so that
    /// no two different pairs can read as one sequence.
    pub shared: &'a Context,
    pub own: &'a Context,
}

type Entries = Box<[(Box<str>, ContextValue)]>;

/// The owned key of a cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    revision: u64,
    identity: OwnedIdentity,
    action: Box<str>,
    resource: Box<str>,
    shared: Entries,
    own: Entries,
}

fn hash_context<'c, H: Hasher>(
    state: &mut H,
    len: usize,
    context: impl Iterator<Item = (&'c str, &'c ContextValue)>,
) {
    state.write_usize(len);
    for (k, v) in context {
        k.hash(state);
        match v {
            ContextValue::Single(s) => {
                state.write_u8(0);
                s.hash(state);
            }
            ContextValue::Multi(list) => {
                state.write_u8(1);
                list.hash(state);
            }
        }
    }
}

fn entries(c: &Entries) -> impl Iterator<Item = (&str, &ContextValue)> {
    c.iter().map(|(k, v)| (&**k, v))
}

fn same(a: &Context, b: &Entries) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((k1, v1), (k2, v2))| k1 == &**k2 && v1 == v2)
}

// The owned and borrowed keys must hash alike: both feed the same fields in one order.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.revision.hash(state);
        Identity::borrowed(&self.identity).hash(state);
        self.action.hash(state);
        self.resource.hash(state);
        hash_context(state, self.shared.len(), entries(&self.shared));
        hash_context(state, self.own.len(), entries(&self.own));
    }
}

impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.revision.hash(state);
        self.identity.hash(state);
        self.action.hash(state);
        self.resource.hash(state);
        hash_context(state, self.shared.len(), self.shared.iter());
        hash_context(state, self.own.len(), self.own.iter());
    }
}

impl Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.revision == key.revision
            && self.identity == Identity::borrowed(&key.identity)
            && self.action == &*key.action
            && self.resource == &*key.resource
            && same(self.shared, &key.shared)
            && same(self.own, &key.own)
    }
}

impl Lookup<'_> {
    /// The owned key of this lookup.
    pub fn to_key(self) -> Key {
        let owned =
            |c: &Context| -> Entries { c.iter().map(|(k, v)| (Box::from(k), v.clone())).collect() };
        Key {
            revision: self.revision,
            identity: self.identity.to_owned(),
            action: self.action.into(),
            resource: self.resource.into(),
            shared: owned(self.shared),
            own: owned(self.own),
        }
    }
}

/// Counts evictions of a full cache.
#[derive(Clone)]
struct CountEvictions(Counter);

impl Lifecycle<Key, Arc<Outcome>> for CountEvictions {
    type RequestState = ();
    fn on_evict(&self, _: &mut (), _: Key, _: Arc<Outcome>) {
        self.0.increment(1);
    }
}

/// Counters the cache reports to.
#[derive(Clone)]
pub struct CacheCounters {
    pub hits: Counter,
    pub misses: Counter,
    pub evictions: Counter,
}

impl Default for CacheCounters {
    /// Counters that count nowhere.
    fn default() -> CacheCounters {
        CacheCounters {
            hits: Counter::noop(),
            misses: Counter::noop(),
            evictions: Counter::noop(),
        }
    }
}

/// A bounded cache of decisions.
pub struct DecisionCache {
    entries: Cache<Key, Arc<Outcome>, UnitWeighter, DefaultHashBuilder, CountEvictions>,
    hits: Counter,
    misses: Counter,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions (at least one).
    pub fn new(capacity: usize, counters: CacheCounters) -> DecisionCache {
        let capacity = capacity.max(1);
        DecisionCache {
            entries: Cache::with(
                capacity,
                capacity as u64,
                UnitWeighter,
                DefaultHashBuilder::default(),
                CountEvictions(counters.evictions),
            ),
            hits: counters.hits,
            misses: counters.misses,
        }
    }

    /// The cached outcome of a request, counting the hit or miss.
    pub fn get(&self, lookup: &Lookup<'_>) -> Option<Arc<Outcome>> {
        let found = self.entries.get(lookup);
        match found {
            Some(_) => self.hits.increment(1),
            None => self.misses.increment(1),
        }
        found
    }

    /// Stores an outcome. The caller must not store a time-dependent decision.
    pub fn insert(&self, lookup: &Lookup<'_>, outcome: Arc<Outcome>) {
        self.entries.insert(lookup.to_key(), outcome);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Decision, Reason};

    fn outcome(decision: Decision) -> Arc<Outcome> {
        Arc::new(Outcome {
            decision,
            reason: Reason::IdentityAllow,
            denied_by: None,
            statements: Vec::new(),
        })
    }

    const ALICE: Identity<'static> = Identity::Principal("arn:aws:iam::111122223333:user/alice");
    static NONE: Context = Context::new();

    fn lookup<'a>(revision: u64, ctx: &'a Context) -> Lookup<'a> {
        Lookup {
            revision,
            identity: ALICE,
            action: "s3:GetObject",
            resource: "arn:aws:s3:::bucket/key",
            shared: ctx,
            own: &NONE,
        }
    }

    fn context(pairs: &[(&str, ContextValue)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.insert(k, v.clone());
        }
        c
    }

    fn one(s: &str) -> ContextValue {
        ContextValue::Single(s.into())
    }

    #[test]
    fn an_entry_answers_only_its_own_revision_identity_and_question() {
        let cache = DecisionCache::new(16, CacheCounters::default());
        let ctx = context(&[("aws:SourceVpc", one("vpc-1"))]);
        cache.insert(&lookup(1, &ctx), outcome(Decision::Allow));
        assert!(cache.get(&lookup(1, &ctx)).is_some());
        assert!(cache.get(&lookup(2, &ctx)).is_none(), "another revision");
        let other = context(&[("aws:SourceVpc", one("vpc-2"))]);
        assert!(cache.get(&lookup(1, &other)).is_none(), "another value");
        let list = context(&[("aws:SourceVpc", ContextValue::Multi(vec!["vpc-1".into()]))]);
        assert!(
            cache.get(&lookup(1, &list)).is_none(),
            "a list is not a string"
        );
        assert!(cache.get(&lookup(1, &NONE)).is_none(), "no context");
        let more = context(&[
            ("aws:SourceVpc", one("vpc-1")),
            ("aws:SourceIp", one("10.0.0.1")),
        ]);
        assert!(cache.get(&lookup(1, &more)).is_none(), "an extra key");
        let moved = Lookup {
            shared: &NONE,
            own: &ctx,
            ..lookup(1, &ctx)
        };
        assert!(cache.get(&moved).is_none(), "the item's own context");
        let spelled = Lookup {
            action: "s3:getobject",
            ..lookup(1, &ctx)
        };
        assert!(cache.get(&spelled).is_none(), "the action as written");
        // Two sessions with one ARN are two identities, and neither is the ARN.
        cache.insert(
            &Lookup {
                identity: Identity::Session("ASIA1"),
                ..lookup(1, &ctx)
            },
            outcome(Decision::ImplicitDeny),
        );
        for identity in [Identity::Session("ASIA2"), Identity::Principal("ASIA1")] {
            let l = Lookup {
                identity,
                ..lookup(1, &ctx)
            };
            assert!(cache.get(&l).is_none(), "{identity:?}");
        }
    }

    #[test]
    fn owned_and_borrowed_keys_hash_alike() {
        use std::hash::BuildHasher;
        let b = DefaultHashBuilder::default();
        let ctx = context(&[
            (
                "aws:TagKeys",
                ContextValue::Multi(vec!["a".into(), "b".into()]),
            ),
            ("s3:prefix", one("home/")),
        ]);
        let l = Lookup {
            own: &ctx,
            ..lookup(7, &ctx)
        };
        assert_eq!(b.hash_one(l), b.hash_one(l.to_key()));
        assert!(l.equivalent(&l.to_key()));
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = DecisionCache::new(8, CacheCounters::default());
        for revision in 0..100 {
            cache.insert(&lookup(revision, &NONE), outcome(Decision::ImplicitDeny));
        }
        assert!(cache.len() <= 8, "{} entries", cache.len());
    }
}

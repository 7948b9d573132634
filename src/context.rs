//! The request context: condition keys and their values, looked up case-insensitively.
//!
//! Keys are stored lowercased once when the context is built, so evaluation compares
//! without allocating. A key holds one value or a list (`aws:TagKeys`); a one-element list
//! behaves as a single value wherever AWS says so.

use smol_str::SmolStr;

/// A context value: one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Single(String),
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values as a slice, one element for a single value.
    pub fn values(&self) -> &[String] {
        match self {
            ContextValue::Single(s) => std::slice::from_ref(s),
            ContextValue::Multi(v) => v,
        }
    }

    /// The one value of a single-valued key (or a one-element list); `None` for a list of
    /// any other length.
    pub fn single(&self) -> Option<&str> {
        match self {
            ContextValue::Single(s) => Some(s),
            ContextValue::Multi(v) if v.len() == 1 => v.first().map(String::as_str),
            ContextValue::Multi(_) => None,
        }
    }
}

/// Where evaluation reads condition keys: a [`Context`], or the layers a served request is
/// made of (the server's keys over the caller's, see `snapshot`), read without copying them.
pub trait Lookup: std::fmt::Debug {
    /// The value of a key; `lower_key` must already be lowercase.
    fn get(&self, lower_key: &str) -> Option<&ContextValue>;
}

impl Lookup for Context {
    fn get(&self, lower_key: &str) -> Option<&ContextValue> {
        Context::get(self, lower_key)
    }
}

/// Condition keys of one request. Small (a dozen keys), so vectors beat a hash map.
///
/// A snapshot keeps thousands of these (each identity's and account's server-owned keys),
/// and a request reads several that are not in cache, mostly for a key that is not there.
/// So the keys sit apart from their values, and a one-word filter of the keys held answers
/// most such lookups without loading either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// One bit per key held (see [`filter_bit`]); a clear bit means the key is absent.
    filter: u64,
    /// Lowercase; a key of up to 23 bytes (`aws:principaltag/team`) sits in the vector
    /// itself, so a lookup compares keys without a load per key.
    keys: Vec<SmolStr>,
    /// `values[i]` is the value of `keys[i]`.
    values: Vec<ContextValue>,
}

/// A key in lower case; one that fits in a `SmolStr` (23 bytes) is lowered on the stack,
/// without the heap string `to_ascii_lowercase` makes.
fn lowercase(key: &str) -> SmolStr {
    let mut buf = [0u8; 23];
    match buf.get_mut(..key.len()) {
        Some(short) => {
            short.copy_from_slice(key.as_bytes());
            short.make_ascii_lowercase();
            // ASCII case changes keep UTF-8 valid; were it not so, the heap's way.
            std::str::from_utf8(short)
                .map_or_else(|_| SmolStr::new(key.to_ascii_lowercase()), SmolStr::new)
        }
        None => SmolStr::new(key.to_ascii_lowercase()),
    }
}

/// A key's bit in [`Context::filter`], from its length and two of its bytes: cheap, and
/// different for the keys a context usually holds together.
#[inline]
fn filter_bit(lower_key: &str) -> u64 {
    let b = lower_key.as_bytes();
    let len = b.len();
    let last = b.last().copied().unwrap_or(0);
    let mid = b.get(len / 2).copied().unwrap_or(0);
    let h = (len as u32)
        .wrapping_mul(31)
        .wrapping_add(u32::from(last).wrapping_mul(7))
        .wrapping_add(u32::from(mid));
    1 << (h & 63)
}

impl Context {
    pub const fn new() -> Context {
        Context {
            filter: 0,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Reads `key=value` pairs (the CLI's `--context`); a repeated key makes a list.
    pub fn from_pairs(pairs: &[String]) -> Result<Context, String> {
        let mut order: Vec<(String, Vec<String>)> = Vec::new();
        for pair in pairs {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!("context entry `{pair}` is not `key=value`"));
            };
            if k.is_empty() {
                return Err(format!("context entry `{pair}` has an empty key"));
            }
            match order
                .iter_mut()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
            {
                Some((_, vs)) => vs.push(v.to_owned()),
                None => order.push((k.to_owned(), vec![v.to_owned()])),
            }
        }
        let mut ctx = Context::new();
        for (k, vs) in order {
            let value = match <[String; 1]>::try_from(vs) {
                Ok([one]) => ContextValue::Single(one),
                Err(many) => ContextValue::Multi(many),
            };
            ctx.insert(&k, value);
        }
        Ok(ctx)
    }

    /// A context of `entries` (keys in any case), sorted by key; `Err` with a key given
    /// twice (case-insensitively). A sort rather than a lookup per key: a caller's context
    /// is checked in `n log n` whatever it holds.
    pub fn from_entries<K: AsRef<str>>(entries: Vec<(K, ContextValue)>) -> Result<Context, String> {
        if entries.is_empty() {
            // Most requests carry no context.
            return Ok(Context::new());
        }
        let mut lowered: Vec<(SmolStr, K, ContextValue)> = entries
            .into_iter()
            .map(|(k, v)| (lowercase(k.as_ref()), k, v))
            .collect();
        lowered.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = lowered
            .windows(2)
            .find(|w| w.first().map(|a| &a.0) == w.get(1).map(|b| &b.0))
        {
            return Err(w
                .get(1)
                .map(|b| b.1.as_ref().to_owned())
                .unwrap_or_default());
        }
        let mut ctx = Context::new();
        ctx.keys.reserve_exact(lowered.len());
        ctx.values.reserve_exact(lowered.len());
        for (lower, _, value) in lowered {
            ctx.filter |= filter_bit(&lower);
            ctx.keys.push(lower);
            ctx.values.push(value);
        }
        Ok(ctx)
    }

    /// Looks a key up; `key` must already be lowercase (compiled policies store it so).
    pub fn get(&self, lower_key: &str) -> Option<&ContextValue> {
        if self.filter & filter_bit(lower_key) == 0 {
            return None;
        }
        let i = self.keys.iter().position(|k| *k == *lower_key)?;
        self.values.get(i)
    }

    /// Sets a key (any case), replacing a value it had.
    pub fn insert(&mut self, key: &str, value: ContextValue) {
        let lower = key.to_ascii_lowercase();
        match self.keys.iter().position(|k| *k == *lower) {
            Some(i) => {
                if let Some(slot) = self.values.get_mut(i) {
                    *slot = value;
                }
            }
            None => {
                self.filter |= filter_bit(&lower);
                self.keys.push(lower.into());
                self.values.push(value);
            }
        }
    }

    /// [`Context::insert`] of a key the server names, already in lower case (`aws:sourceip`):
    /// held without a copy. A key not in lower case is lowered as `insert` lowers it.
    /// Inlined always (a plain `#[inline]` was not taken: 190 instructions a call), so
    /// that for a literal key the case test and the key's filter bit are worked out when
    /// compiling.
    #[inline(always)]
    pub fn insert_lowercase(&mut self, key: &'static str, value: ContextValue) {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.insert(key, value);
        }
        match self.keys.iter().position(|k| k == key) {
            Some(i) => {
                if let Some(slot) = self.values.get_mut(i) {
                    *slot = value;
                }
            }
            None => {
                self.filter |= filter_bit(key);
                self.keys.push(SmolStr::new_static(key));
                self.values.push(value);
            }
        }
    }

    /// Room for `more` keys without growing. A context that holds none and has no room
    /// (most Checks' before the server's keys) is given exactly that room, without the
    /// growth policy's work.
    pub fn reserve(&mut self, more: usize) {
        if self.keys.capacity() == 0 && self.values.capacity() == 0 {
            self.keys = Vec::with_capacity(more);
            self.values = Vec::with_capacity(more);
            return;
        }
        self.keys.reserve(more);
        self.values.reserve(more);
    }

    /// Sets a key only when the context has no value for it yet.
    pub fn insert_default(&mut self, key: &str, value: ContextValue) {
        if self.get(&key.to_ascii_lowercase()).is_none() {
            self.insert(key, value);
        }
    }

    /// Removes a key (any case).
    pub fn remove(&mut self, key: &str) {
        let lower = key.to_ascii_lowercase();
        self.retain(|k| k != lower);
    }

    /// Keeps only the keys (lowercase) for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let entries = std::mem::take(&mut self.keys)
            .into_iter()
            .zip(std::mem::take(&mut self.values));
        let mut kept = Context::new();
        for (k, v) in entries {
            if keep(&k) {
                kept.filter |= filter_bit(&k);
                kept.keys.push(k);
                kept.values.push(v);
            }
        }
        *self = kept;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.keys.iter().map(|k| &**k).zip(&self.values)
    }

    /// Drops spare capacity: for a context kept for the life of a snapshot.
    pub fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.values.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

// === impl CallerContext ===

/// A caller's context once the keys it may not supply are gone (see [`crate::keys`]):
/// only request attributes and services' own keys remain, sorted by key so that equal
/// contexts iterate alike (the decision cache compares them in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerContext {
    context: Context,
    /// Whether it names an account whose organization the server adds
    /// (`aws:VpceAccount`, `aws:SourceAccount`): known here, so that a request naming none
    /// looks for neither.
    names_accounts: bool,
    /// Whether it is the context as the caller sent it: nothing dropped, nothing reordered.
    as_sent: bool,
}

/// The caller's keys that name an account whose organization keys the server fills.
pub const ACCOUNT_KEYS: [&str; 2] = ["aws:vpceaccount", "aws:sourceaccount"];

impl CallerContext {
    pub const fn empty() -> CallerContext {
        CallerContext {
            context: Context::new(),
            names_accounts: false,
            as_sent: true,
        }
    }

    /// Keeps the keys a caller may supply and calls `dropped` with each other key
    /// (lowercase).
    pub fn screen(context: Context, dropped: impl FnMut(&str)) -> CallerContext {
        CallerContext::screen_with(context, |_| false, dropped)
    }

    /// [`CallerContext::screen`], also dropping the keys `owned` claims for the server
    /// beyond the registry's (a snapshot's OIDC token keys, `HOST:sub`).
    pub fn screen_with(
        mut context: Context,
        owned: impl Fn(&str) -> bool,
        mut dropped: impl FnMut(&str),
    ) -> CallerContext {
        // Rebuilt only when something is dropped or out of order: a face's decoder hands
        // over a sorted context (`Context::from_entries`), and callers rarely send a key
        // the server owns, so most contexts are kept as they come.
        let foreign = |k: &SmolStr| !crate::keys::caller_supplies(k) || owned(k);
        let mut as_sent = true;
        if context.keys.iter().any(foreign) {
            as_sent = false;
            context.retain(|k| {
                let keep = crate::keys::caller_supplies(k) && !owned(k);
                if !keep {
                    dropped(k);
                }
                keep
            });
        }
        if !context.keys.is_sorted() {
            as_sent = false;
            let Context {
                filter,
                keys,
                values,
            } = context;
            let mut entries: Vec<(SmolStr, ContextValue)> = keys.into_iter().zip(values).collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let (keys, values) = entries.into_iter().unzip();
            context = Context {
                filter,
                keys,
                values,
            };
        }
        let names_accounts = context
            .keys
            .iter()
            .any(|k| ACCOUNT_KEYS.contains(&k.as_str()));
        CallerContext {
            context,
            names_accounts,
            as_sent,
        }
    }

    /// Whether this is the context exactly as the caller sent it (nothing dropped,
    /// nothing reordered): then [`CallerContext::as_context`] stands for what was sent.
    pub fn is_as_sent(&self) -> bool {
        self.as_sent
    }

    pub fn as_context(&self) -> &Context {
        &self.context
    }

    pub fn get(&self, lower_key: &str) -> Option<&ContextValue> {
        self.context.get(lower_key)
    }

    /// The entries, sorted by (lowercase) key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.context.iter()
    }

    pub fn len(&self) -> usize {
        self.context.len()
    }

    pub fn is_empty(&self) -> bool {
        self.context.is_empty()
    }
}

/// What one item of a request was asked with: its own keys over the request's shared ones
/// (a batch shares one context among its items without copying it into each).
#[derive(Debug, Clone, Copy)]
pub struct CallerView<'a> {
    pub own: &'a CallerContext,
    pub shared: &'a CallerContext,
}

static EMPTY: CallerContext = CallerContext::empty();

impl<'a> CallerView<'a> {
    /// A view of one context.
    pub fn of(context: &'a CallerContext) -> CallerView<'a> {
        CallerView {
            own: context,
            shared: &EMPTY,
        }
    }

    pub fn get(&self, lower_key: &str) -> Option<&'a ContextValue> {
        self.own
            .get(lower_key)
            .or_else(|| self.shared.get(lower_key))
    }

    /// Every key the item sees, once, sorted by key (an own key hides the shared one).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a ContextValue)> {
        let mut own = self.own.iter().peekable();
        let mut shared = self.shared.iter().peekable();
        std::iter::from_fn(move || match (own.peek(), shared.peek()) {
            (Some(o), Some(s)) if s.0 < o.0 => shared.next(),
            (Some(o), Some(s)) if s.0 == o.0 => {
                shared.next();
                own.next()
            }
            (Some(_), _) => own.next(),
            (None, _) => shared.next(),
        })
    }

    /// How many keys [`CallerView::iter`] yields.
    pub fn len(&self) -> usize {
        let overridden = self
            .own
            .iter()
            .filter(|(k, _)| self.shared.get(k).is_some())
            .count();
        self.own.len() + self.shared.len() - overridden
    }

    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.shared.is_empty()
    }

    /// Whether a key of [`ACCOUNT_KEYS`] is among them.
    pub fn names_accounts(&self) -> bool {
        self.own.names_accounts || self.shared.names_accounts
    }
}

impl Lookup for CallerView<'_> {
    fn get(&self, lower_key: &str) -> Option<&ContextValue> {
        CallerView::get(self, lower_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_named_in_lower_case_is_held_as_insert_holds_it() {
        let single = |v: &str| ContextValue::Single(v.into());
        let (mut a, mut b) = (Context::new(), Context::new());
        a.reserve(3);
        for (k, v) in [
            ("aws:sourceip", "10.0.0.1"),
            ("aws:SecureTransport", "true"),
        ] {
            a.insert_lowercase(k, single(v));
            b.insert(k, single(v));
        }
        // Replaced, not added twice, whichever way the key came in.
        a.insert("AWS:SourceIp", single("10.0.0.2"));
        a.insert_lowercase("aws:securetransport", single("false"));
        b.insert("aws:sourceip", single("10.0.0.2"));
        b.insert("aws:securetransport", single("false"));
        assert_eq!(a, b);
        assert_eq!(a.get("aws:securetransport"), Some(&single("false")));
        assert_eq!(a.iter().count(), 2);
    }

    #[test]
    fn a_caller_context_holds_only_what_a_caller_may_supply() {
        let mut c = Context::new();
        for (k, v) in [
            ("aws:SourceIp", "10.0.0.1"),
            ("AWS:PrincipalIsAwsService", "true"),
            ("aws:principaltag/Team", "admins"),
            ("aws:MultiFactorAuthPresent", "true"),
            ("aws:NotYetAKey", "x"),
            ("orders:Amount", "3"),
        ] {
            c.insert(k, ContextValue::Single(v.into()));
        }
        let mut dropped = Vec::new();
        let screened = CallerContext::screen(c, |k| dropped.push(k.to_owned()));
        let kept: Vec<&str> = screened.iter().map(|(k, _)| k).collect();
        assert_eq!(kept, ["aws:sourceip", "orders:amount"]);
        assert_eq!(
            dropped,
            [
                "aws:principalisawsservice",
                "aws:principaltag/team",
                "aws:multifactorauthpresent",
                "aws:notyetakey"
            ]
        );
        assert!(screened.get("aws:principalisawsservice").is_none());
    }

    #[test]
    fn a_view_merges_own_keys_over_shared_ones_in_order() {
        let screened = |pairs: &[(&str, &str)]| {
            let mut c = Context::new();
            for (k, v) in pairs {
                c.insert(k, ContextValue::Single((*v).into()));
            }
            CallerContext::screen(c, |_| {})
        };
        let shared = screened(&[("b:x", "shared"), ("a:x", "1"), ("d:x", "4")]);
        let own = screened(&[("c:x", "3"), ("b:x", "own")]);
        let view = CallerView {
            own: &own,
            shared: &shared,
        };
        let all: Vec<(&str, &str)> = view.iter().map(|(k, v)| (k, v.single().unwrap())).collect();
        assert_eq!(
            all,
            [("a:x", "1"), ("b:x", "own"), ("c:x", "3"), ("d:x", "4")]
        );
        assert_eq!(view.len(), 4);
        assert_eq!(view.get("b:x").and_then(ContextValue::single), Some("own"));
        assert_eq!(CallerView::of(&shared).len(), 3);
    }

    #[test]
    fn keys_are_case_insensitive() {
        let mut c = Context::new();
        c.insert("aws:ResourceTag/Owner", ContextValue::Single("a".into()));
        assert!(c.get("aws:resourcetag/owner").is_some());
        c.insert("AWS:RESOURCETAG/OWNER", ContextValue::Single("b".into()));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.get("aws:resourcetag/owner")
                .and_then(ContextValue::single),
            Some("b")
        );
    }

    #[test]
    fn every_key_held_is_found_and_no_other() {
        // Keys that share a filter bit with a held key still miss by comparison.
        let mut c = Context::new();
        let held: Vec<String> = (0..40).map(|i| format!("svc:key{i}")).collect();
        for k in &held {
            c.insert(k, ContextValue::Single(k.clone()));
        }
        for k in &held {
            assert_eq!(c.get(k).and_then(ContextValue::single), Some(k.as_str()));
        }
        for i in 40..200 {
            assert_eq!(c.get(&format!("svc:key{i}")), None);
        }
        c.remove("SVC:KEY3");
        c.retain(|k| k != "svc:key4");
        assert_eq!(c.len(), 38);
        assert_eq!(c.get("svc:key3"), None);
        assert_eq!(c.get("svc:key4"), None);
        assert!(c.get("svc:key5").is_some());
        let empty = Context::new();
        assert_eq!(empty.get(""), None);
        assert_eq!(empty.get("svc:key5"), None);
    }

    #[test]
    fn insert_default_keeps_a_given_value() {
        let mut c = Context::new();
        c.insert("aws:username", ContextValue::Single("given".into()));
        c.insert_default("aws:UserName", ContextValue::Single("derived".into()));
        assert_eq!(
            c.get("aws:username").and_then(ContextValue::single),
            Some("given")
        );
    }

    #[test]
    fn one_element_list_is_a_single_value() {
        assert_eq!(ContextValue::Multi(vec!["x".into()]).single(), Some("x"));
        assert_eq!(
            ContextValue::Multi(vec!["x".into(), "y".into()]).single(),
            None
        );
    }

    #[test]
    fn a_key_is_lowered_alike_on_the_stack_and_on_the_heap() {
        for key in [
            "",
            "aws:SourceIp",
            "AWS:PRINCIPALTAG/TEAM12", // 23 bytes: the longest on the stack
            "aws:PrincipalTag/Team123", // 24: on the heap
            "svc:Clé",                 // not ASCII: only ASCII letters change
            "svc:KEY-ÉTÉ-AVEC-ACCENTS-ET-PLUS",
        ] {
            assert_eq!(lowercase(key), key.to_ascii_lowercase(), "{key}");
        }
        let ctx = Context::from_entries(vec![("AWS:SourceIp", ContextValue::Single("1".into()))])
            .unwrap();
        assert!(ctx.get("aws:sourceip").is_some());
        assert_eq!(
            Context::from_entries(vec![
                ("a:K", ContextValue::Single("1".into())),
                ("A:k", ContextValue::Single("2".into())),
            ])
            .unwrap_err()
            .to_ascii_lowercase(),
            "a:k"
        );
    }
}

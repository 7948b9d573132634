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

/// Condition keys of one request. Small (a dozen keys), so a vector beats a hash map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Keys lowercase; a key of up to 23 bytes (`aws:principaltag/team`) sits in the entry
    /// itself, so a lookup compares keys without a load per key.
    entries: Vec<(SmolStr, ContextValue)>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
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

    /// Looks a key up; `key` must already be lowercase (compiled policies store it so).
    pub fn get(&self, lower_key: &str) -> Option<&ContextValue> {
        self.entries
            .iter()
            .find(|(k, _)| **k == *lower_key)
            .map(|(_, v)| v)
    }

    /// Sets a key (any case), replacing a value it had.
    pub fn insert(&mut self, key: &str, value: ContextValue) {
        let lower = key.to_ascii_lowercase();
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| **k == *lower) {
            slot.1 = value;
        } else {
            self.entries.push((lower.into(), value));
        }
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
        self.entries.retain(|(k, _)| **k != *lower);
    }

    /// Keeps only the keys (lowercase) for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|(k, _)| keep(k));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// Drops spare capacity: for a context kept for the life of a snapshot.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
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
}

//! SigV4 signing keys: derived from a secret for one day, region and service (five
//! HMAC-SHA256 computations), and a bounded cache of them so a repeated caller pays for
//! the derivation once a day.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ring::hmac;
use subtle::ConstantTimeEq;

use super::canonical::{self, Hashing, Scope};

/// A derived SigV4 key (`kSigning`): HMAC chain of the secret over the scope's date,
/// region, service and `aws4_request`. Valid for that scope only. Kept as an HMAC key
/// whose inner and outer pads are computed once, when it is derived, so a signature
/// verified with it costs the string to sign's blocks only.
#[derive(Clone)]
pub struct SigningKey {
    bytes: [u8; 32],
    hmac: hmac::Key,
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    tag_bytes(&hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        message,
    ))
}

/// An HMAC-SHA-256 tag's 32 bytes.
fn tag_bytes(tag: &hmac::Tag) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(tag.as_ref()) {
        *o = *b;
    }
    out
}

impl SigningKey {
    /// `kSigning` for `secret` in scope `date/region/service/aws4_request`, as AWS derives
    /// it: `kDate = HMAC("AWS4" + secret, date)`, then region, service, `aws4_request`.
    pub fn derive(secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
        let mut k_secret = Vec::with_capacity(4 + secret.len());
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret.as_bytes());
        let k_date = hmac_sha256(&k_secret, date.as_bytes());
        let k_region = hmac_sha256(&k_date, region.as_bytes());
        let k_service = hmac_sha256(&k_region, service.as_bytes());
        let bytes = hmac_sha256(&k_service, canonical::TERMINATOR.as_bytes());
        SigningKey {
            bytes,
            hmac: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        }
    }

    /// The signature of `string_to_sign`.
    pub(super) fn sign(&self, string_to_sign: &str) -> [u8; 32] {
        tag_bytes(&hmac::sign(&self.hmac, string_to_sign.as_bytes()))
    }

    /// The signature of the string to sign for a canonical request whose SHA-256 is
    /// `request_hash`, the string to sign fed to the HMAC as it is written.
    pub(super) fn sign_request(
        &self,
        amz_date: &str,
        scope: &Scope<'_>,
        request_hash: &[u8],
    ) -> [u8; 32] {
        let mut sts = Hashing::new(hmac::Context::with_key(&self.hmac));
        canonical::write_string_to_sign(&mut sts, amz_date, scope, request_hash);
        tag_bytes(&sts.into_inner().sign())
    }

    /// The key's bytes (for tests against AWS's published derivation example).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl fmt::Debug for SigningKey {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// A bounded cache of derived keys, by access key id and scope. Each entry keeps the secret
/// its key was derived from, compared in constant time on a hit: a secret that changes
/// under the same access key id (a rotated one) never reuses the key derived from another,
/// and gets its own, which replaces the old.
///
/// The secrets kept are copies of what the caller passes (the secrets store's), as long as
/// their entry stays: no more exposed than the store they come from.
pub struct SigningKeys {
    cache: quick_cache::sync::Cache<ScopeKey, Arc<Derived>>,
}

/// A cache entry: the key and the secret it was derived from.
struct Derived {
    secret: Box<[u8]>,
    key: SigningKey,
}

/// What a cached key is found by: access key id, date, region, service, each its own field
/// (no two tuples are the same key).
#[derive(PartialEq, Eq)]
struct ScopeKey {
    access_key_id: Box<str>,
    date: Box<str>,
    region: Box<str>,
    service: Box<str>,
}

/// [`ScopeKey`] borrowed, to look one up without allocating.
struct ScopeRef<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl ScopeRef<'_> {
    fn fields(&self) -> [&str; 4] {
        [self.access_key_id, self.date, self.region, self.service]
    }
}

impl ScopeKey {
    fn fields(&self) -> [&str; 4] {
        [&self.access_key_id, &self.date, &self.region, &self.service]
    }
}

// A key and its borrowed form hash the same: the same four `str`s in the same order.
impl Hash for ScopeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

impl Hash for ScopeRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

impl quick_cache::Equivalent<ScopeKey> for ScopeRef<'_> {
    fn equivalent(&self, key: &ScopeKey) -> bool {
        self.fields() == key.fields()
    }
}

impl SigningKeys {
    /// A cache of at most `capacity` keys (one per caller and day, region and service).
    pub fn new(capacity: usize) -> SigningKeys {
        SigningKeys {
            cache: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// The key for `secret` in this scope: the cached one when it was derived from this
    /// very secret, else derived (and cached in place of the other).
    pub fn get(
        &self,
        access_key_id: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        let scope = ScopeRef {
            access_key_id,
            date,
            region,
            service,
        };
        if let Some(d) = self.cache.get(&scope)
            && bool::from(d.secret.ct_eq(secret.as_bytes()))
        {
            return d.key.clone();
        }
        let key = SigningKey::derive(secret, date, region, service);
        self.cache.insert(
            ScopeKey {
                access_key_id: access_key_id.into(),
                date: date.into(),
                region: region.into(),
                service: service.into(),
            },
            Arc::new(Derived {
                secret: secret.as_bytes().into(),
                key: key.clone(),
            }),
        );
        key
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("len", &self.cache.len())
            .finish_non_exhaustive()
    }
}

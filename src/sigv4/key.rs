//! SigV4 signing keys: derived from a secret for one day, region and service (five
//! HMAC-SHA256 computations), and a bounded cache of them so a repeated caller pays for
//! the derivation once a day.

use std::fmt;

use ring::hmac;

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
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message);
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
        let tag = hmac::sign(&self.hmac, string_to_sign.as_bytes());
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(tag.as_ref()) {
            *o = *b;
        }
        out
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
        let tag = sts.into_inner().sign();
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(tag.as_ref()) {
            *o = *b;
        }
        out
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

/// A bounded cache of derived keys, by access key id, a fingerprint of the secret, and the
/// scope. The fingerprint is part of the key so that a secret that changes under the same
/// access key id (a rotated or forged one) never reuses the key derived from another.
pub struct SigningKeys {
    /// Fingerprint of (access key id, secret, date, region, service) → derived key.
    cache: quick_cache::sync::Cache<[u8; 32], SigningKey>,
    /// Keys the fingerprints: random per process, so the fingerprints kept in memory are
    /// no offline-checkable hash of any secret.
    fingerprint: hmac::Key,
}

impl SigningKeys {
    /// A cache of at most `capacity` keys (one per caller and day, region and service).
    pub fn new(capacity: usize) -> SigningKeys {
        let rng = ring::rand::SystemRandom::new();
        // Without an RNG the fingerprint is still collision-resistant (HMAC under a fixed
        // key): only the offline-guessing protection is lost, never correctness.
        let fingerprint = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, b"warden sigv4 key cache"));
        SigningKeys {
            cache: quick_cache::sync::Cache::new(capacity.max(1)),
            fingerprint,
        }
    }

    /// The key for `secret` in this scope, derived on a miss.
    pub fn get(
        &self,
        access_key_id: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        let mut ctx = hmac::Context::with_key(&self.fingerprint);
        // Each field length-prefixed: no two tuples feed the same bytes.
        for field in [access_key_id, secret, date, region, service] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        let tag = ctx.sign();
        let mut id = [0u8; 32];
        for (o, b) in id.iter_mut().zip(tag.as_ref()) {
            *o = *b;
        }
        if let Some(key) = self.cache.get(&id) {
            return key;
        }
        let key = SigningKey::derive(secret, date, region, service);
        self.cache.insert(id, key.clone());
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

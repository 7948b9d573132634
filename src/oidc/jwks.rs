//! JSON Web Key Sets (RFC 7517): read, checked key by key, into the keys a token may name.
//! Only signature keys of the three accepted kinds are kept: RSA (RS256, at least 2048
//! bits), EC P-256 (ES256) and OKP Ed25519 (EdDSA). Each key is tried once when read, so a
//! key that cannot verify anything is refused here, not at the first request.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Keys in one set, at most.
pub const MAX_KEYS: usize = 100;
/// Characters in a `kid`, at most.
pub const MAX_KID_CHARS: usize = 256;

/// One verification key.
pub struct Key {
    pub kid: String,
    /// The one algorithm this key verifies; a token's header must name it.
    pub alg: Algorithm,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A checked key set, by `kid`.
#[derive(Debug)]
pub struct KeySet {
    keys: BTreeMap<String, Key>,
    /// SHA-256 of every key (kid, algorithm, public material), in `kid` order: equal for
    /// equal sets, whatever their JSON looked like. A cached token holds only while its
    /// set's generation is unchanged, so a key removed (or replaced) in a refresh makes
    /// every token it verified verify again.
    generation: [u8; 32],
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }

    pub fn generation(&self) -> &[u8; 32] {
        &self.generation
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// What is wrong with a set, and where: `key` is the index in `keys`, `field` the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Option<usize>,
    pub field: Option<&'static str>,
    pub message: String,
}

impl Problem {
    /// `$.keys[2].x`, relative to the set.
    pub fn path(&self) -> String {
        let mut p = String::from("$");
        if let Some(i) = self.key {
            p.push_str(&format!(".keys[{i}]"));
        }
        if let Some(f) = self.field {
            p.push('.');
            p.push_str(f);
        }
        p
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path(), self.message)
    }
}

/// How strictly a set is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bundle's inline set: every key must be usable; anything else is an error.
    Strict,
    /// A fetched set (an identity provider's): keys of other kinds or uses (encryption
    /// keys, other curves) are skipped; at least one must be usable, and `kid`s unique.
    Lenient,
}

/// Reads a key set.
pub fn parse(value: &Value, mode: Mode) -> Result<KeySet, Vec<Problem>> {
    let mut problems = Vec::new();
    let at = |key: Option<usize>, field: Option<&'static str>, message: String| Problem {
        key,
        field,
        message,
    };
    let Some(obj) = value.as_object() else {
        return Err(vec![at(
            None,
            None,
            "a key set is an object `{\"keys\": [...]}`".into(),
        )]);
    };
    let Some(list) = obj.get("keys").and_then(Value::as_array) else {
        return Err(vec![at(
            None,
            Some("keys"),
            "a key set needs a `keys` list".into(),
        )]);
    };
    if list.len() > MAX_KEYS {
        return Err(vec![at(
            None,
            Some("keys"),
            format!("{} keys; at most {MAX_KEYS}", list.len()),
        )]);
    }
    let mut keys: BTreeMap<String, Key> = BTreeMap::new();
    for (i, k) in list.iter().enumerate() {
        match key(k) {
            Ok(key) => {
                if keys.contains_key(&key.kid) {
                    problems.push(at(
                        Some(i),
                        Some("kid"),
                        format!("`{}` names two keys", key.kid),
                    ));
                } else {
                    keys.insert(key.kid.clone(), key);
                }
            }
            Err(Skip::Unsupported(field, message)) if mode == Mode::Lenient => {
                let _ = (field, message);
            }
            Err(Skip::Unsupported(field, message) | Skip::Broken(field, message)) => {
                problems.push(at(Some(i), field, message));
            }
        }
    }
    if keys.is_empty() && problems.is_empty() {
        problems.push(at(
            None,
            Some("keys"),
            "no usable signature key (RSA, EC P-256 or Ed25519, with a `kid`)".into(),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut h = Sha256::new();
    for k in keys.values() {
        h.update((k.kid.len() as u64).to_be_bytes());
        h.update(k.kid.as_bytes());
        h.update(alg_name(k.alg).as_bytes());
        let material = key_material(&k.decoding);
        h.update((material.len() as u64).to_be_bytes());
        h.update(&material);
    }
    Ok(KeySet {
        keys,
        generation: h.finalize().into(),
    })
}

/// Why a key was not kept: `Unsupported` keys are skipped in a fetched set, `Broken` ones
/// never are.
enum Skip {
    Unsupported(Option<&'static str>, String),
    Broken(Option<&'static str>, String),
}

/// The name of an accepted algorithm, as a header writes it.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

fn key_material(k: &DecodingKey) -> Vec<u8> {
    match k.kind() {
        jsonwebtoken::DecodingKeyKind::SecretOrDer(b) => b.clone(),
        jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, e } => {
            let mut v = n.clone();
            v.push(b'.');
            v.extend_from_slice(e);
            v
        }
    }
}

/// Members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn key(k: &Value) -> Result<Key, Skip> {
    use Skip::{Broken, Unsupported};
    let Some(obj) = k.as_object() else {
        return Err(Broken(None, "a key is an object".into()));
    };
    let text = |name: &'static str| -> Result<Option<&str>, Skip> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Broken(Some(name), format!("`{name}` must be a string"))),
        }
    };
    let kty = text("kty")?.ok_or_else(|| Broken(Some("kty"), "a key needs a `kty`".into()))?;
    if let Some(u) = text("use")?
        && u != "sig"
    {
        return Err(Unsupported(
            Some("use"),
            format!("`use` is `{u}`; only signature keys (`sig`) verify tokens"),
        ));
    }
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
        return Err(Broken(
            Some(m),
            format!(
                "`{m}` is private (or symmetric) key material: a key set publishes public keys only"
            ),
        ));
    }
    let alg_given = text("alg")?;
    let (alg, decoding) = match kty {
        "RSA" => {
            let n = b64(obj, "n")?;
            let e = b64(obj, "e")?;
            if n.len() < 256 || n.len() > 1024 {
                return Err(Broken(
                    Some("n"),
                    format!(
                        "an RSA modulus of {} bits; 2048 to 8192 are accepted",
                        n.len() * 8
                    ),
                ));
            }
            if e.is_empty() || e.len() > 8 {
                return Err(Broken(Some("e"), "an RSA exponent of 1 to 8 bytes".into()));
            }
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_raw_components(&n, &e),
            )
        }
        "EC" => {
            let crv = text("crv")?.unwrap_or("");
            if crv != "P-256" {
                return Err(Unsupported(
                    Some("crv"),
                    format!("curve `{crv}`; only `P-256` (ES256) is accepted"),
                ));
            }
            let (x, y) = (b64(obj, "x")?, b64(obj, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(Broken(
                    Some("x"),
                    "a P-256 key has 32-byte `x` and `y`".into(),
                ));
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(4u8);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            (Algorithm::ES256, DecodingKey::from_ec_der(&sec1))
        }
        "OKP" => {
            let crv = text("crv")?.unwrap_or("");
            if crv != "Ed25519" {
                return Err(Unsupported(
                    Some("crv"),
                    format!("curve `{crv}`; only `Ed25519` (EdDSA) is accepted"),
                ));
            }
            let x = b64(obj, "x")?;
            if x.len() != 32 {
                return Err(Broken(Some("x"), "an Ed25519 key has a 32-byte `x`".into()));
            }
            (Algorithm::EdDSA, DecodingKey::from_ed_der(&x))
        }
        "oct" => {
            return Err(Unsupported(
                Some("kty"),
                "a symmetric (`oct`) key: warden verifies with public keys only".into(),
            ));
        }
        other => {
            return Err(Unsupported(
                Some("kty"),
                format!("`kty` `{other}`; `RSA`, `EC` (P-256) and `OKP` (Ed25519) are accepted"),
            ));
        }
    };
    // `Ed25519` is RFC 9864's name for EdDSA over Ed25519.
    if let Some(a) = alg_given
        && a != alg_name(alg)
        && !(alg == Algorithm::EdDSA && a == "Ed25519")
    {
        return Err(Unsupported(
            Some("alg"),
            format!(
                "`alg` `{a}` for a `{kty}` key; warden accepts `{}` for it",
                alg_name(alg)
            ),
        ));
    }
    let kid = match text("kid")? {
        Some(k) if !k.is_empty() && k.chars().count() <= MAX_KID_CHARS => k.to_owned(),
        Some(_) => {
            return Err(Broken(
                Some("kid"),
                format!("a `kid` has 1 to {MAX_KID_CHARS} characters"),
            ));
        }
        None => {
            return Err(Unsupported(
                Some("kid"),
                "a key needs a `kid`: tokens name their key by it".into(),
            ));
        }
    };
    // Tried once: a key the backend cannot build (an RSA modulus it refuses, a point off
    // the curve) is refused now. A well-formed key fails this probe's signature only.
    match jsonwebtoken::crypto::verify("AA", b"probe", &decoding, alg) {
        Ok(_) => {}
        Err(e) => {
            return Err(Broken(None, format!("unusable key material: {e}")));
        }
    }
    Ok(Key { kid, alg, decoding })
}

fn b64(obj: &serde_json::Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Skip> {
    let s = match obj.get(name) {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(Skip::Broken(
                Some(name),
                format!("`{name}` must be a string"),
            ));
        }
        None => return Err(Skip::Broken(Some(name), format!("the key needs `{name}`"))),
    };
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| Skip::Broken(Some(name), format!("`{name}` is not base64url")))
}

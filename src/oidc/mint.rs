//! Minting tokens, for the demo walk-through (`warden token`) and tests: a private key
//! read from PEM (Ed25519, EC P-256 or RSA), its public JWK, and tokens signed with it.
//! The key id is the public key's RFC 7638 thumbprint, so a key file and the JWKS made
//! from it always pair up.

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// How a PEM key of one kind is read.
type ReadPem = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;

/// A private key that signs tokens.
pub struct SigningKey {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
    /// The public key as a JWK, with `kid`, `alg` and `use`.
    jwk: Value,
}

impl SigningKey {
    /// Reads a PKCS#8 (or PKCS#1 RSA) PEM private key.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, String> {
        let tries: [(Algorithm, ReadPem); 3] = [
            (Algorithm::EdDSA, EncodingKey::from_ed_pem),
            (Algorithm::ES256, EncodingKey::from_ec_pem),
            (Algorithm::RS256, EncodingKey::from_rsa_pem),
        ];
        for (alg, read) in tries {
            let Ok(key) = read(pem) else { continue };
            let Ok(jwk) = Jwk::from_encoding_key(&key, alg) else {
                continue;
            };
            let kid = thumbprint(&jwk)?;
            let mut public = serde_json::to_value(&jwk).map_err(|e| e.to_string())?;
            if let Some(obj) = public.as_object_mut() {
                obj.insert("kid".into(), Value::String(kid.clone()));
                obj.insert("use".into(), Value::String("sig".into()));
                obj.insert(
                    "alg".into(),
                    Value::String(super::jwks::alg_name(alg).into()),
                );
            }
            return Ok(SigningKey {
                key,
                alg,
                kid,
                jwk: public,
            });
        }
        Err("not an Ed25519, EC P-256 or RSA private key in PEM".to_owned())
    }

    /// The same key under another `kid` (tests: a token signed by one key that names
    /// another's id).
    pub fn with_kid(mut self, kid: &str) -> SigningKey {
        self.kid = kid.to_owned();
        if let Some(obj) = self.jwk.as_object_mut() {
            obj.insert("kid".into(), Value::String(kid.to_owned()));
        }
        self
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// A key set of this key alone: `{"keys": [JWK]}`.
    pub fn public_jwks(&self) -> Value {
        serde_json::json!({ "keys": [self.jwk.clone()] })
    }

    /// Signs `claims` (a JSON object) with this key and its `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| e.to_string())
    }
}

/// RFC 7638's thumbprint (SHA-256, base64url); the crate computes it for every kind but
/// Ed25519, whose members (`crv`, `kty`, `x`) are written here in the RFC's order.
fn thumbprint(jwk: &Jwk) -> Result<String, String> {
    use base64::Engine;
    use sha2::Digest;
    if let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) = &jwk.algorithm {
        let text = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, p.x);
        let digest = sha2::Sha256::digest(text.as_bytes());
        return Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest));
    }
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| e.to_string())
}

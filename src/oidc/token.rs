//! One compact JWS token taken apart (RFC 7515/7519) before any key is touched: its size,
//! its three base64url parts, its header's algorithm and key id; then its signature checked
//! with the one key its `kid` names, and its claims read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::TokenError;
use super::jwks::Key;

/// Bytes in a token, at most: ID tokens are a few hundred bytes to a few KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Audiences in one token, at most.
pub const MAX_AUDIENCES: usize = 100;

/// A token's parts, split and its header read; nothing verified yet.
#[derive(Debug)]
pub(crate) struct Parsed<'t> {
    pub alg: Algorithm,
    pub kid: String,
    /// `HEADER.PAYLOAD`, what the signature covers.
    pub signing_input: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
}

fn malformed(message: impl Into<String>) -> TokenError {
    TokenError::new("malformed", message)
}

/// Splits a token and reads its header, refusing before any work what cannot be verified.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::new(
            "too_large",
            format!(
                "a token of {} bytes; at most {MAX_TOKEN_BYTES}",
                token.len()
            ),
        ));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a token has three base64url parts separated by `.`",
        ));
    };
    let b64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !(b64url(header) && b64url(payload) && b64url(signature)) {
        return Err(malformed(
            "a token has three non-empty base64url parts (no padding)",
        ));
    }
    let signed_len = header.len() + 1 + payload.len();
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
        .map_err(|_| malformed("the header is not a JSON object"))?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(malformed("the header has no `alg`")),
    };
    let alg = match alg {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            return Err(TokenError::new(
                "unsupported_alg",
                format!(
                    "algorithm `{}` is refused; accepted: RS256, ES256, EdDSA",
                    shorten(other)
                ),
            ));
        }
    };
    // RFC 7515 §4.1.11: an extension the verifier does not understand must be refused.
    if header.contains_key("crit") {
        return Err(malformed(
            "the header has `crit` extensions, which warden does not understand",
        ));
    }
    let kid = match header.get("kid") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => {
            return Err(TokenError::new(
                "unknown_kid",
                "the header names no key (`kid`)",
            ));
        }
    };
    let signing_input = token
        .get(..signed_len)
        .ok_or_else(|| malformed("a token has three parts"))?;
    Ok(Parsed {
        alg,
        kid,
        signing_input,
        payload,
        signature,
    })
}

/// Checks the signature with `key`, which must be for the header's algorithm.
pub(crate) fn verify_signature(parsed: &Parsed<'_>, key: &Key) -> Result<(), TokenError> {
    let bad = |m: String| TokenError::new("bad_signature", m);
    if key.alg != parsed.alg {
        return Err(bad(format!(
            "the token says {} but key `{}` is for {}",
            super::jwks::alg_name(parsed.alg),
            shorten(&key.kid),
            super::jwks::alg_name(key.alg)
        )));
    }
    match jsonwebtoken::crypto::verify(
        parsed.signature,
        parsed.signing_input.as_bytes(),
        &key.decoding,
        key.alg,
    ) {
        Ok(true) => Ok(()),
        _ => Err(bad(format!(
            "the signature does not verify with key `{}`",
            shorten(&key.kid)
        ))),
    }
}

/// The claims of a token whose signature verified.
pub(crate) fn claims(parsed: &Parsed<'_>, token: &str) -> Result<Claims, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(parsed.payload)
        .map_err(|_| malformed("the payload is not base64url"))?;
    let map: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| malformed("the payload is not a JSON object"))?;
    Claims::read(map, Sha256::digest(token.as_bytes()).into())
}

/// A token's claims, checked for shape: `iss`, `aud`, `exp` present and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    issuer: String,
    subject: Option<String>,
    audiences: Vec<String>,
    /// `azp`, the party the token was issued to, when present.
    authorized_party: Option<String>,
    expiry: SystemTime,
    not_before: Option<SystemTime>,
    issued_at: Option<SystemTime>,
    all: Map<String, Value>,
    /// SHA-256 of the token (or, for claims given as JSON, of their canonical text): what
    /// makes a web-identity session's id unique to the token behind it.
    digest: [u8; 32],
}

impl Claims {
    /// Claims another verifier checked (Envoy's `jwt_authn` metadata): read for shape only.
    /// The provider's issuer and audiences are still checked against them
    /// ([`super::OidcProvider::check_claims`]), and their times at each use.
    pub fn from_json(map: Map<String, Value>) -> Result<Claims, TokenError> {
        let text = serde_json::to_vec(&map).unwrap_or_default();
        if text.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::new(
                "too_large",
                format!("claims of {} bytes; at most {MAX_TOKEN_BYTES}", text.len()),
            ));
        }
        let mut h = Sha256::new();
        h.update(b"claims:");
        h.update(&text);
        Claims::read(map, h.finalize().into())
    }

    fn read(all: Map<String, Value>, digest: [u8; 32]) -> Result<Claims, TokenError> {
        let issuer = match all.get("iss") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(malformed("`iss` must be a string")),
            None => return Err(TokenError::new("wrong_issuer", "the token has no `iss`")),
        };
        let subject = match all.get("sub") {
            Some(Value::String(s)) => Some(s.clone()),
            None => None,
            Some(_) => return Err(malformed("`sub` must be a string")),
        };
        let audiences = match all.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) if items.len() <= MAX_AUDIENCES => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("`aud` must be a string or a list of strings"))?,
            Some(Value::Array(_)) => {
                return Err(malformed(format!(
                    "`aud` lists more than {MAX_AUDIENCES} audiences"
                )));
            }
            Some(_) => return Err(malformed("`aud` must be a string or a list of strings")),
            None => return Err(TokenError::new("wrong_audience", "the token has no `aud`")),
        };
        let authorized_party = match all.get("azp") {
            Some(Value::String(s)) => Some(s.clone()),
            None => None,
            Some(_) => return Err(malformed("`azp` must be a string")),
        };
        let expiry = match all.get("exp") {
            Some(v) => numeric_date(v, "exp")?,
            None => return Err(malformed("the token has no `exp`; warden requires one")),
        };
        let not_before = all.get("nbf").map(|v| numeric_date(v, "nbf")).transpose()?;
        let issued_at = all.get("iat").map(|v| numeric_date(v, "iat")).transpose()?;
        Ok(Claims {
            issuer,
            subject,
            audiences,
            authorized_party,
            expiry,
            not_before,
            issued_at,
            all,
            digest,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    pub fn authorized_party(&self) -> Option<&str> {
        self.authorized_party.as_deref()
    }

    pub fn expiry(&self) -> SystemTime {
        self.expiry
    }

    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before
    }

    pub fn issued_at(&self) -> Option<SystemTime> {
        self.issued_at
    }

    /// One claim, as JSON.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.all.get(name)
    }

    /// Every claim.
    pub fn all(&self) -> &Map<String, Value> {
        &self.all
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The time claims at `now`, each allowed `skew` of clock difference: `exp` passed is
    /// `expired`; `nbf` ahead, or `iat` ahead (a token issued in the future), is
    /// `not_yet_valid`.
    pub fn check_time(&self, skew: Duration, now: SystemTime) -> Result<(), TokenError> {
        if now >= self.expiry + skew {
            return Err(TokenError::new(
                "expired",
                format!("the token expired at {}", unix(self.expiry)),
            ));
        }
        if let Some(nbf) = self.not_before
            && now + skew < nbf
        {
            return Err(TokenError::new(
                "not_yet_valid",
                format!("the token is valid from {}", unix(nbf)),
            ));
        }
        if let Some(iat) = self.issued_at
            && now + skew < iat
        {
            return Err(TokenError::new(
                "not_yet_valid",
                format!(
                    "the token says it was issued at {}, in the future",
                    unix(iat)
                ),
            ));
        }
        Ok(())
    }
}

/// Seconds since the epoch, for messages.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The latest time a claim may name: the year 9999, far beyond any token and within what
/// `SystemTime` holds everywhere.
const MAX_SECONDS: f64 = 253_402_300_799.0;

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional.
fn numeric_date(v: &Value, name: &str) -> Result<SystemTime, TokenError> {
    let secs = v
        .as_f64()
        .filter(|s| s.is_finite() && (0.0..=MAX_SECONDS).contains(s))
        .ok_or_else(|| malformed(format!("`{name}` must be a date in seconds since 1970")))?;
    Ok(UNIX_EPOCH + Duration::from_secs_f64(secs))
}

/// A value from a token, cut for an error message.
fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

//! Session tokens: a [`Grant`] sealed with XChaCha20-Poly1305 under a key of the ring, and
//! the session's secret access key derived from the token, so any holder of the ring
//! verifies a session offline and no table of sessions is kept anywhere.
//!
//! A token is `v1.<key id>.<base64url(nonce (24 bytes) || ciphertext)>` (no padding), the
//! ciphertext being the JSON of the grant; `v1.<key id>` is the AEAD's associated data, so
//! neither the version nor the key id can be changed without the token failing to open.
//! The session's secret is the first 40 characters of
//! `base64(HMAC-SHA256(session subkey, access key id || nonce))`.
//!
//! Refusals are AWS's: `ExpiredToken` for an expired session, `InvalidClientTokenId` for
//! everything else (too long, malformed, an unknown or retired key, altered), each with a
//! message that says which.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead as _, Payload};
use ring::hmac;

use super::error::{Code, StsError};
use super::grant::Grant;
use super::keyring::{KeyRing, RingKey, is_key_id, random_bytes};

/// The longest session token accepted (checked before anything else is done with it) or
/// sealed: a grant with its session policy and tags fits well within it.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The token format this module writes and reads.
pub const VERSION: &str = "v1";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The length of a secret access key, as AWS's.
pub const SECRET_LEN: usize = 40;

/// AWS's message for a token that is not valid.
pub const INVALID: &str = "The security token included in the request is invalid";
/// AWS's message for an expired token.
pub const EXPIRED: &str = "The security token included in the request is expired";

/// A sealed session: what `Credentials` of an STS answer carry besides the access key id
/// and expiration (both in the grant).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSession {
    pub session_token: String,
    pub secret_access_key: String,
}

impl fmt::Debug for SealedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSession")
            .field("session_token", &redacted(&self.session_token))
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// An opened session token: the grant, and the session's secret access key to verify the
/// request's signature with.
#[derive(Clone, PartialEq, Eq)]
pub struct Opened {
    pub grant: Grant,
    pub secret_access_key: String,
    /// The id of the ring key that sealed the token.
    pub key_id: String,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("grant", &self.grant)
            .field("secret_access_key", &"<redacted>")
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// A token shown in logs: its version and key id, never the sealed part.
fn redacted(token: &str) -> String {
    let mut parts = token.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(v), Some(k)) => format!("{v}.{k}.<redacted>"),
        _ => "<redacted>".into(),
    }
}

fn invalid(why: impl fmt::Display) -> StsError {
    StsError::new(Code::InvalidClientTokenId, format!("{INVALID}: {why}"))
}

/// Seals `grant` with the ring's sealing key (the newest not retired) and derives the
/// session's secret. Refused with `InternalFailure` when no key seals (every key retired)
/// or the random number generator fails, and with `PackedPolicyTooLarge` when the token
/// would be longer than [`MAX_TOKEN_LEN`].
pub fn seal(ring: &KeyRing, grant: &Grant) -> Result<SealedSession, StsError> {
    let key = ring.sealing_key().ok_or_else(|| {
        StsError::new(
            Code::InternalFailure,
            "no key of the key ring seals: every key is retired",
        )
    })?;
    let plain = serde_json::to_vec(grant)
        .map_err(|e| StsError::new(Code::InternalFailure, format!("cannot encode: {e}")))?;
    let nonce = random_bytes::<NONCE_LEN>()
        .map_err(|e| StsError::new(Code::InternalFailure, e.to_string()))?;
    let head = format!("{VERSION}.{}", key.id());
    let sealed = key
        .token_cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: head.as_bytes(),
            },
        )
        .map_err(|_| StsError::new(Code::InternalFailure, "the token cannot be sealed"))?;
    let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&sealed);
    let session_token = format!(
        "{head}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body)
    );
    if session_token.len() > MAX_TOKEN_LEN {
        return Err(StsError::new(
            Code::PackedPolicyTooLarge,
            format!(
                "the session policies and tags do not fit in a session token ({} bytes sealed, at most {MAX_TOKEN_LEN})",
                session_token.len()
            ),
        ));
    }
    Ok(SealedSession {
        secret_access_key: session_secret(key, &grant.access_key_id, &nonce),
        session_token,
    })
}

/// Opens a session token at `now`: its grant and the session's secret. Refused, in this
/// order: longer than [`MAX_TOKEN_LEN`], not `v1.<key id>.<base64url>`, a key the ring does
/// not hold, a retired key, altered in any byte (`InvalidClientTokenId`, the message says
/// which); expired at `now` (`ExpiredToken`).
///
/// The caller compares the grant's access key id with the one the request was signed
/// with ([`open_for`] does both).
pub fn open(ring: &KeyRing, session_token: &str, now: SystemTime) -> Result<Opened, StsError> {
    if session_token.len() > MAX_TOKEN_LEN {
        return Err(invalid(format_args!(
            "longer than {MAX_TOKEN_LEN} characters"
        )));
    }
    let mut parts = session_token.splitn(3, '.');
    let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a warden session token"));
    };
    if version != VERSION {
        return Err(invalid("not a warden session token of a known version"));
    }
    if !is_key_id(key_id) {
        return Err(invalid(
            "not a warden session token (its key id is malformed)",
        ));
    }
    let key = match ring.find(key_id) {
        None => {
            return Err(invalid(format_args!(
                "sealed with key `{key_id}`, which the key ring does not hold"
            )));
        }
        Some(k) if k.is_retired() => {
            return Err(invalid(format_args!(
                "sealed with key `{key_id}`, which is retired"
            )));
        }
        Some(k) => k,
    };
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.as_bytes())
        .map_err(|_| invalid("not a warden session token (bad encoding)"))?;
    let (Some(nonce), Some(sealed)) = (body.get(..NONCE_LEN), body.get(NONCE_LEN..)) else {
        return Err(invalid("not a warden session token (too short)"));
    };
    if sealed.len() < TAG_LEN {
        return Err(invalid("not a warden session token (too short)"));
    }
    let head_len = VERSION.len() + 1 + key_id.len();
    let head = session_token.get(..head_len).unwrap_or_default();
    let plain = key
        .token_cipher()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: head.as_bytes(),
            },
        )
        .map_err(|_| invalid("it does not verify (altered, or sealed by another key ring)"))?;
    let grant: Grant = serde_json::from_slice(&plain)
        .map_err(|_| invalid("its contents are not a session this server reads"))?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now >= grant.expires_at {
        return Err(StsError::new(Code::ExpiredToken, EXPIRED));
    }
    Ok(Opened {
        secret_access_key: session_secret(key, &grant.access_key_id, nonce),
        grant,
        key_id: key_id.to_owned(),
    })
}

/// [`open`], and the grant's access key id must be `access_key_id` (the one the request
/// was signed with): another session's token is refused as `InvalidClientTokenId`.
pub fn open_for(
    ring: &KeyRing,
    session_token: &str,
    access_key_id: &str,
    now: SystemTime,
) -> Result<Opened, StsError> {
    let opened = open(ring, session_token, now)?;
    if opened.grant.access_key_id != access_key_id {
        return Err(invalid(format_args!(
            "it belongs to another access key than `{access_key_id}`"
        )));
    }
    Ok(opened)
}

/// The session's secret access key: 40 characters of base64, as AWS's.
fn session_secret(key: &RingKey, access_key_id: &str, nonce: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key.session_secret_key());
    ctx.update(access_key_id.as_bytes());
    ctx.update(nonce);
    let mut text = base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref());
    text.truncate(SECRET_LEN);
    text
}

/// The 32 characters of an AWS access key id after its four-letter prefix.
const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Which kind of access key id to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyIdKind {
    /// `ASIA…`: temporary credentials (a session).
    Session,
    /// `AKIA…`: a user's long-term access key.
    LongTerm,
}

/// A fresh random access key id: the kind's prefix and 16 characters of `A-Z2-7`, 20 in
/// all, as AWS's (80 random bits).
pub fn new_access_key_id(kind: KeyIdKind) -> Result<String, StsError> {
    let bytes =
        random_bytes::<16>().map_err(|e| StsError::new(Code::InternalFailure, e.to_string()))?;
    let mut id = String::with_capacity(20);
    id.push_str(match kind {
        KeyIdKind::Session => "ASIA",
        KeyIdKind::LongTerm => "AKIA",
    });
    // 256 is a multiple of 32: the low five bits of a random byte are uniform.
    id.extend(bytes.iter().map(|b| {
        char::from(
            ID_ALPHABET
                .get(usize::from(b & 31))
                .copied()
                .unwrap_or(b'A'),
        )
    }));
    Ok(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use std::time::Duration;

    use super::*;
    use crate::sts::grant::Subject;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn grant() -> Grant {
        Grant {
            access_key_id: new_access_key_id(KeyIdKind::Session).unwrap(),
            subject: Subject::Role {
                role_arn: "arn:aws:iam::111122223333:role/R".into(),
                session_name: "s1".into(),
                chained: false,
            },
            issued_at: 1000,
            expires_at: 4600,
            mfa_at: None,
            policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            policy_arns: vec![],
            tags: vec![("team".into(), "a".into())],
            transitive_tag_keys: vec![],
            source_identity: None,
            web_identity: None,
        }
    }

    #[track_caller]
    fn refused(ring: &KeyRing, token: &str, now: u64, code: Code, says: &str) {
        let e = open(ring, token, at(now)).unwrap_err();
        assert_eq!(e.code, code, "{e}");
        assert!(e.message.contains(says), "{e}");
    }

    #[test]
    fn a_sealed_grant_opens_with_the_same_secret() {
        let ring = KeyRing::generate().unwrap();
        let g = grant();
        let sealed = seal(&ring, &g).unwrap();
        assert_eq!(sealed.secret_access_key.len(), SECRET_LEN);
        assert!(sealed.session_token.starts_with("v1.k"));
        let opened = open(&ring, &sealed.session_token, at(1000)).unwrap();
        assert_eq!(opened.grant, g);
        assert_eq!(opened.secret_access_key, sealed.secret_access_key);
        let again = open_for(&ring, &sealed.session_token, &g.access_key_id, at(4599)).unwrap();
        assert_eq!(again.secret_access_key, sealed.secret_access_key);
        // Two seals of one grant: other tokens, other secrets.
        let other = seal(&ring, &g).unwrap();
        assert_ne!(other.session_token, sealed.session_token);
        assert_ne!(other.secret_access_key, sealed.secret_access_key);
    }

    #[test]
    fn another_sessions_token_is_refused() {
        let ring = KeyRing::generate().unwrap();
        let sealed = seal(&ring, &grant()).unwrap();
        let e = open_for(&ring, &sealed.session_token, "ASIAOTHER", at(1000)).unwrap_err();
        assert_eq!(e.code, Code::InvalidClientTokenId);
        assert!(e.message.contains("another access key"), "{e}");
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let ring = KeyRing::generate().unwrap();
        let sealed = seal(&ring, &grant()).unwrap();
        refused(
            &ring,
            &sealed.session_token,
            4600,
            Code::ExpiredToken,
            "is expired",
        );
        refused(
            &ring,
            &sealed.session_token,
            99_999,
            Code::ExpiredToken,
            "is expired",
        );
    }

    #[test]
    fn a_changed_byte_anywhere_is_refused() {
        let ring = KeyRing::generate().unwrap();
        let token = seal(&ring, &grant()).unwrap().session_token;
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'x', b'.', b'-', b'7'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[i] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                let e = open(&ring, &changed, at(1000)).unwrap_err();
                assert_eq!(e.code, Code::InvalidClientTokenId, "byte {i}: {e}");
            }
        }
        // Cut short, or with more after it.
        for cut in [0, 3, 20, token.len() - 1] {
            assert!(
                open(&ring, &token[..cut], at(1000)).is_err(),
                "cut at {cut}"
            );
        }
        assert!(open(&ring, &format!("{token}A"), at(1000)).is_err());
        refused(
            &ring,
            &format!("{token}A"),
            1000,
            Code::InvalidClientTokenId,
            "",
        );
    }

    #[test]
    fn malformed_and_oversized_tokens_say_why() {
        let ring = KeyRing::generate().unwrap();
        let id = ring.sealing_key().unwrap().id().to_owned();
        refused(
            &ring,
            "",
            0,
            Code::InvalidClientTokenId,
            "not a warden session token",
        );
        refused(
            &ring,
            "FwoGZXIvYXdzEJr",
            0,
            Code::InvalidClientTokenId,
            "not a warden",
        );
        refused(
            &ring,
            "v2.k.AAAA",
            0,
            Code::InvalidClientTokenId,
            "known version",
        );
        refused(
            &ring,
            "v1.k/1.AAAA",
            0,
            Code::InvalidClientTokenId,
            "key id is malformed",
        );
        refused(
            &ring,
            &format!("v1.{id}.!!!!"),
            0,
            Code::InvalidClientTokenId,
            "bad encoding",
        );
        refused(
            &ring,
            &format!("v1.{id}.AAAA"),
            0,
            Code::InvalidClientTokenId,
            "too short",
        );
        let huge = format!("v1.{id}.{}", "A".repeat(MAX_TOKEN_LEN));
        refused(
            &ring,
            &huge,
            0,
            Code::InvalidClientTokenId,
            "longer than 16384",
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_and_seals_with_the_new_key() {
        let mut ring = KeyRing::generate().unwrap();
        let old_id = ring.sealing_key().unwrap().id().to_owned();
        let old = seal(&ring, &grant()).unwrap();
        let new_id = ring.rotate().unwrap().to_owned();
        let new = seal(&ring, &grant()).unwrap();
        assert!(new.session_token.starts_with(&format!("v1.{new_id}.")));
        let opened = open(&ring, &old.session_token, at(1000)).unwrap();
        assert_eq!(opened.key_id, old_id);
        assert_eq!(opened.secret_access_key, old.secret_access_key);
        assert_eq!(
            open(&ring, &new.session_token, at(1000)).unwrap().key_id,
            new_id
        );
        // Retired: the old key's tokens no longer open; the new key's still do.
        ring.retire(&old_id).unwrap();
        refused(
            &ring,
            &old.session_token,
            1000,
            Code::InvalidClientTokenId,
            "is retired",
        );
        assert!(open(&ring, &new.session_token, at(1000)).is_ok());
    }

    #[test]
    fn a_token_of_another_ring_is_refused() {
        let ring = KeyRing::generate().unwrap();
        let other = KeyRing::generate().unwrap();
        let token = seal(&other, &grant()).unwrap().session_token;
        refused(
            &ring,
            &token,
            1000,
            Code::InvalidClientTokenId,
            "does not hold",
        );
        // The same key id with another secret: the AEAD refuses it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.json");
        other.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut forged: serde_json::Value = serde_json::from_str(&text).unwrap();
        forged["keys"][0]["secret"] = base64::engine::general_purpose::STANDARD
            .encode([9u8; 32])
            .into();
        std::fs::write(&path, forged.to_string()).unwrap();
        let forged = KeyRing::load(&path).unwrap();
        refused(
            &forged,
            &token,
            1000,
            Code::InvalidClientTokenId,
            "does not verify",
        );
    }

    #[test]
    fn access_key_ids_look_like_aws_ones() {
        for (kind, prefix) in [(KeyIdKind::Session, "ASIA"), (KeyIdKind::LongTerm, "AKIA")] {
            let id = new_access_key_id(kind).unwrap();
            assert_eq!(id.len(), 20);
            assert!(id.starts_with(prefix));
            assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)), "{id}");
            assert_ne!(id, new_access_key_id(kind).unwrap());
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let ring = KeyRing::generate().unwrap();
        let sealed = seal(&ring, &grant()).unwrap();
        let text = format!("{sealed:?}");
        assert!(!text.contains(&sealed.secret_access_key), "{text}");
        assert!(!text.contains(&sealed.session_token), "{text}");
        let opened = open(&ring, &sealed.session_token, at(1000)).unwrap();
        assert!(!format!("{opened:?}").contains(&sealed.secret_access_key));
    }

    #[test]
    fn an_oversized_grant_is_refused_at_seal() {
        let ring = KeyRing::generate().unwrap();
        let mut g = grant();
        g.policy = Some("x".repeat(MAX_TOKEN_LEN));
        assert_eq!(
            seal(&ring, &g).unwrap_err().code,
            Code::PackedPolicyTooLarge
        );
    }
}

//! The cursor of a reverse query's page: opaque to callers (unpadded URL-safe base64 of a
//! small versioned struct), checked on use. It names the snapshot revision the answer
//! was made at, a digest of the query (kind, fields, context) and the position in the
//! query's universe; a cursor of another query, of a revision no longer served, or that
//! does not decode is refused with the reason, never answered from elsewhere.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::service::RequestError;

/// The layout's version, the first byte.
const VERSION: u8 = 1;
/// Bytes in the digest of a query.
const DIGEST: usize = 16;
/// Version, kind, revision, digest, position.
const LEN: usize = 1 + 1 + 8 + DIGEST + 8;
/// Characters of an encoded cursor, at most (checked before decoding).
const MAX_TEXT: usize = 64;

/// A decoded cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The query's kind (1 WhoCan, 2 WhatCan, 3 CanAny).
    pub kind: u8,
    pub revision: u64,
    pub digest: [u8; DIGEST],
    pub position: u64,
}

/// The digest of a query's canonical bytes.
pub fn digest(canonical: &[u8]) -> [u8; DIGEST] {
    let full = Sha256::digest(canonical);
    let mut out = [0u8; DIGEST];
    for (o, b) in out.iter_mut().zip(full.iter()) {
        *o = *b;
    }
    out
}

fn malformed() -> RequestError {
    RequestError::invalid(
        "cursor",
        "not a cursor of this server (it does not decode); start again without one",
    )
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(LEN);
        bytes.push(VERSION);
        bytes.push(self.kind);
        bytes.extend_from_slice(&self.revision.to_be_bytes());
        bytes.extend_from_slice(&self.digest);
        bytes.extend_from_slice(&self.position.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a cursor's text; `Err` when it is not one (too long, not base64, another
    /// length or version).
    pub fn decode(text: &str) -> Result<Cursor, RequestError> {
        if text.len() > MAX_TEXT {
            return Err(malformed());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(|_| malformed())?;
        if bytes.len() != LEN || bytes.first() != Some(&VERSION) {
            return Err(malformed());
        }
        let word = |at: usize| -> Result<u64, RequestError> {
            let b: [u8; 8] = bytes
                .get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(malformed)?;
            Ok(u64::from_be_bytes(b))
        };
        let mut digest = [0u8; DIGEST];
        for (d, b) in digest
            .iter_mut()
            .zip(bytes.get(10..10 + DIGEST).ok_or_else(malformed)?)
        {
            *d = *b;
        }
        Ok(Cursor {
            kind: bytes.get(1).copied().ok_or_else(malformed)?,
            revision: word(2)?,
            digest,
            position: word(10 + DIGEST)?,
        })
    }

    /// The position to resume at, when the cursor is this query's (`digest`) at the
    /// serving `revision`.
    pub fn position_for(
        &self,
        revision: u64,
        digest: &[u8; DIGEST],
    ) -> Result<usize, RequestError> {
        if self.revision != revision {
            return Err(RequestError::StaleCursor {
                cursor: self.revision,
                serving: revision,
            });
        }
        if &self.digest != digest {
            return Err(RequestError::invalid(
                "cursor",
                "the cursor belongs to another query (its action, resource, principal, session name or context differ)",
            ));
        }
        usize::try_from(self.position).map_err(|_| malformed())
    }
}

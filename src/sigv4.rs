//! AWS Signature Version 4, verified. [`parse`] reads what a signed request claims (access
//! key id, credential scope, time, security token) without any crypto and with a limit on
//! every length, so the caller can look up the secret; [`Signed::verify`] then hashes the
//! canonical request as AWS builds it for every service but S3 (as it is written: the text
//! is never built), derives nothing itself (the [`SigningKey`] comes from the caller,
//! usually through [`SigningKeys`]) and compares signatures in constant time. Both forms:
//! the `Authorization` header (5 minutes of clock skew) and presigned query strings
//! (`X-Amz-Expires` honoured). Errors carry AWS's codes and messages. [`sign_headers`] and
//! [`presign`] sign as botocore does, for tests, benches and the load generator.
//!
//! Why not the `aws-sigv4` crate: it signs. Verifying needs the caller's own signed-header
//! list and canonical form taken from the request as received, AWS's error messages, and a
//! constant-time comparison.

mod canonical;
mod key;
mod sign;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smallvec::SmallVec;
use subtle::ConstantTimeEq;

use crate::sts::StsError;
use crate::sts::error::Code;
use canonical::{ALGORITHM, EMPTY_SHA256, Scope, Sink as _, TERMINATOR, UNSIGNED_PAYLOAD};
pub use key::{SigningKey, SigningKeys};
pub use sign::{Signer, presign, sign_headers};

/// Bytes in the `Authorization` header, at most (the SDKs' are 200 to 600).
pub const MAX_AUTHORIZATION_BYTES: usize = 4 * 1024;
/// Bytes in the request target of a signed request, at most: a presigned URL carries a
/// session token.
pub const MAX_TARGET_BYTES: usize = 16 * 1024;
/// Query parameters of a signed request, at most.
pub const MAX_QUERY_PARAMS: usize = 100;
/// Names in `SignedHeaders`, at most.
pub const MAX_SIGNED_HEADERS: usize = 64;
/// Headers in a request whose signature is verified, at most.
pub const MAX_HEADERS: usize = 256;
/// Bytes of all signed headers' values together, at most.
pub const MAX_SIGNED_HEADER_BYTES: usize = 32 * 1024;
/// Bytes of a security token as received, at most.
pub const MAX_SECURITY_TOKEN_BYTES: usize = 12 * 1024;
/// Bytes of a body hashed to verify a signature, at most (STS bodies are under 10 KiB; a
/// larger body can be declared with `x-amz-content-sha256`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How far the time of a request signed in its `Authorization` header may be from the
/// server's, either way (AWS: five minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// The longest `X-Amz-Expires` of a presigned request: a week, as AWS.
pub const MAX_PRESIGNED_EXPIRES: Duration = Duration::from_secs(7 * 24 * 3600);

/// AWS's message when the signature does not match.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// An HTTP request as received, before anything is trusted.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The request target as received: path plus raw query (`/`, `/?X-Amz-Algorithm=...`).
    pub target: &'a str,
    /// Headers as received, any case, repeated names allowed (joined with `,` as SigV4
    /// says). `host` may be HTTP/2's `:authority`.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: Payload<'a>,
}

/// What the verifier knows of the body.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The body itself (hashed, at most [`MAX_BODY_BYTES`]).
    Bytes(&'a [u8]),
    /// The hex SHA-256 the caller declared (`x-amz-content-sha256`), body not seen.
    Declared(&'a str),
    /// Nothing known (Envoy's `Check` without the body): only a presigned request, or one
    /// declaring `x-amz-content-sha256`, can verify.
    Unknown,
}

/// What a signed request claims, read without any crypto: enough to find the secret.
/// Nothing in it is authenticated until [`Signed::verify`] succeeds.
#[derive(Clone)]
pub struct Signed<'a> {
    pub access_key_id: &'a str,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// `X-Amz-Security-Token` (header or query): a session's credentials. Percent-decoded
    /// when it came in a query, hence the `Cow`.
    pub security_token: Option<Cow<'a, str>>,
    /// `X-Amz-Date`.
    pub signed_at: SystemTime,
    /// `X-Amz-Expires` of a presigned request; `None` for the `Authorization` header form.
    pub presigned_expires: Option<Duration>,
    /// `X-Amz-Date` as written, part of the string to sign.
    amz_date: &'a str,
    /// Lower case, sorted, `host` among them.
    signed_headers: SmallVec<[&'a str; 8]>,
    signature: [u8; 32],
}

fn incomplete(message: impl Into<String>) -> StsError {
    StsError::new(Code::IncompleteSignature, message)
}

fn mismatch(message: impl Into<String>) -> StsError {
    StsError::new(Code::SignatureDoesNotMatch, message)
}

/// AWS's answer to a request that carries no credentials where they are required.
pub fn missing_authentication() -> StsError {
    StsError::new(
        Code::MissingAuthenticationToken,
        "Request is missing Authentication Token",
    )
}

/// `s` cut to 64 characters for a message.
fn shorten(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((end, _)) => Cow::Owned(format!("{}...", s.get(..end).unwrap_or_default())),
        None => Cow::Borrowed(s),
    }
}

fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// The query parameters that make a request presigned.
const QUERY_AUTH: [&str; 4] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
];

fn pair(p: &str) -> (&str, &str) {
    p.split_once('=').unwrap_or((p, ""))
}

/// The one header `name`; an error if the request repeats it.
fn single_header<'a>(
    headers: &[(&'a str, &'a str)],
    name: &str,
) -> Result<Option<&'a str>, StsError> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v);
    match (values.next(), values.next()) {
        (v, None) => Ok(v),
        _ => Err(incomplete(format!(
            "the request has more than one '{name}' header"
        ))),
    }
}

/// The one query parameter `name` (raw, still percent-encoded); an error if repeated.
fn single_param<'a>(query: &'a str, name: &str) -> Result<Option<&'a str>, StsError> {
    let mut values = query
        .split('&')
        .map(pair)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    match (values.next(), values.next()) {
        (v, None) => Ok(v),
        _ => Err(incomplete(format!(
            "AWS query-string parameters must include '{name}' at most once"
        ))),
    }
}

/// Splits `s` on `sep` written plainly or percent-encoded (`%2F` for `/`: a presigned
/// query's values arrive encoded once); `None` past `max` parts.
fn split_sep(s: &str, sep: u8, max: usize) -> Option<SmallVec<[&str; 8]>> {
    let encoded = [
        char::from_digit(u32::from(sep >> 4), 16)?.to_ascii_uppercase(),
        char::from_digit(u32::from(sep & 0x0f), 16)?.to_ascii_uppercase(),
    ];
    let bytes = s.as_bytes();
    let mut parts = SmallVec::new();
    let (mut start, mut i) = (0, 0);
    while let Some(&b) = bytes.get(i) {
        let width = if b == sep {
            1
        } else if b == b'%'
            && bytes.get(i + 1).map(|c| c.to_ascii_uppercase()) == Some(encoded[0] as u8)
            && bytes.get(i + 2).map(|c| c.to_ascii_uppercase()) == Some(encoded[1] as u8)
        {
            3
        } else {
            i += 1;
            continue;
        };
        if parts.len() == max {
            return None;
        }
        parts.push(s.get(start..i)?);
        i += width;
        start = i;
    }
    if parts.len() == max {
        return None;
    }
    parts.push(s.get(start..)?);
    Some(parts)
}

/// `X-Amz-Date` (`YYYYMMDD'T'HHMMSS'Z'`) as a time; `None` unless exactly that.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(4..6)?, num(6..8)?)?;
    let secs = date
        .and_hms_opt(num(9..11)?, num(11..13)?, num(13..15)?)?
        .and_utc()
        .timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Seconds since the epoch as `X-Amz-Date` writes them.
fn amz(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the two forms give before their common checks, all as received.
struct Raw<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
    amz_date: &'a str,
    expires: Option<&'a str>,
}

/// Reads a request's SigV4 claims; `Ok(None)` when it carries none (no `Authorization:
/// AWS4-...` header, no `X-Amz-*` signing parameters), so other credentials (a bearer
/// token) pass through. No crypto; every length checked before it is read.
pub fn parse<'a>(req: &HttpRequest<'a>) -> Result<Option<Signed<'a>>, StsError> {
    let (path, query) = split_target(req.target);
    let header_form = req
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("authorization") && v.starts_with("AWS4-"));
    let query_form = query.split('&').any(|p| QUERY_AUTH.contains(&pair(p).0));
    match (header_form, query_form) {
        (false, false) => return Ok(None),
        (true, true) => {
            return Err(incomplete(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified",
            ));
        }
        _ => {}
    }
    if req.target.len() > MAX_TARGET_BYTES {
        return Err(incomplete(format!(
            "a signed request's target has {} bytes; at most {MAX_TARGET_BYTES}",
            req.target.len()
        )));
    }
    let params = query.split('&').filter(|p| !p.is_empty()).count();
    if params > MAX_QUERY_PARAMS {
        return Err(incomplete(format!(
            "a signed request has {params} query parameters; at most {MAX_QUERY_PARAMS}"
        )));
    }
    if !path.starts_with('/') {
        return Err(incomplete(format!(
            "the request target `{}` does not start with `/`",
            shorten(req.target)
        )));
    }
    let raw = if header_form {
        from_authorization(req)?
    } else {
        from_query(query)?
    };
    finish(req, query, raw).map(Some)
}

/// The `Authorization` header's `Credential`, `SignedHeaders` and `Signature`, and
/// `X-Amz-Date`.
fn from_authorization<'a>(req: &HttpRequest<'a>) -> Result<Raw<'a>, StsError> {
    let Some(auth) = single_header(req.headers, "authorization")? else {
        return Err(incomplete("the request has no Authorization header"));
    };
    if auth.len() > MAX_AUTHORIZATION_BYTES {
        return Err(incomplete(format!(
            "the Authorization header has {} bytes; at most {MAX_AUTHORIZATION_BYTES}",
            auth.len()
        )));
    }
    let rest = match auth.strip_prefix(ALGORITHM) {
        Some(rest) if rest.starts_with(' ') => rest,
        _ => {
            let algorithm = auth.split(' ').next().unwrap_or_default();
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{}'",
                shorten(algorithm)
            )));
        }
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches(' ');
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{auth}'."
            )));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(incomplete(format!(
                "Authorization header has more than one '{name}' parameter. Authorization={auth}"
            )));
        }
    }
    let amz_date = single_header(req.headers, "x-amz-date")?;
    let mut missing = String::new();
    for (absent, message) in [
        (
            credential.is_none(),
            "Authorization header requires 'Credential' parameter. ",
        ),
        (
            signature.is_none(),
            "Authorization header requires 'Signature' parameter. ",
        ),
        (
            signed_headers.is_none(),
            "Authorization header requires 'SignedHeaders' parameter. ",
        ),
        (
            amz_date.is_none(),
            // AWS also takes a `Date` header; the SDKs all send `X-Amz-Date`.
            "Authorization header requires existence of a 'X-Amz-Date' header. ",
        ),
    ] {
        if absent {
            missing.push_str(message);
        }
    }
    match (credential, signed_headers, signature, amz_date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) => Ok(Raw {
            credential,
            signed_headers,
            signature,
            amz_date,
            expires: None,
        }),
        _ => Err(incomplete(format!("{missing}Authorization={auth}"))),
    }
}

/// A presigned request's `X-Amz-*` parameters, still percent-encoded.
fn from_query(query: &str) -> Result<Raw<'_>, StsError> {
    let algorithm = single_param(query, "X-Amz-Algorithm")?;
    let credential = single_param(query, "X-Amz-Credential")?;
    let amz_date = single_param(query, "X-Amz-Date")?;
    let expires = single_param(query, "X-Amz-Expires")?;
    let signed_headers = single_param(query, "X-Amz-SignedHeaders")?;
    let signature = single_param(query, "X-Amz-Signature")?;
    let mut missing = String::new();
    for (name, value) in [
        ("X-Amz-Algorithm", algorithm),
        ("X-Amz-Credential", credential),
        ("X-Amz-Signature", signature),
        ("X-Amz-SignedHeaders", signed_headers),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", expires),
    ] {
        if value.is_none() {
            missing.push_str(&format!(
                "AWS query-string parameters must include '{name}'. "
            ));
        }
    }
    match (
        algorithm,
        credential,
        signed_headers,
        signature,
        amz_date,
        expires,
    ) {
        (
            Some(ALGORITHM),
            Some(credential),
            Some(signed_headers),
            Some(signature),
            Some(amz_date),
            Some(expires),
        ) => Ok(Raw {
            credential,
            signed_headers,
            signature,
            amz_date,
            expires: Some(expires),
        }),
        (Some(algorithm), ..) if missing.is_empty() => Err(incomplete(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}', not '{}'",
            shorten(algorithm)
        ))),
        _ => Err(incomplete(format!(
            "{missing}Re-examine the query-string parameters."
        ))),
    }
}

/// The checks both forms share: credential scope, date, signature, signed headers, expiry
/// and security token.
fn finish<'a>(req: &HttpRequest<'a>, query: &'a str, raw: Raw<'a>) -> Result<Signed<'a>, StsError> {
    let parts = split_sep(raw.credential, b'/', 5)
        .filter(|p| p.len() == 5)
        .ok_or_else(|| {
            incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
                shorten(raw.credential)
            ))
        })?;
    let [access_key_id, date, region, service, terminator] =
        [0, 1, 2, 3, 4].map(|i| parts.get(i).copied().unwrap_or_default());
    if access_key_id.is_empty()
        || access_key_id.len() > 128
        || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(incomplete(format!(
            "the access key id in the Credential must be 1 to 128 letters and digits, not '{}'",
            shorten(access_key_id)
        )));
    }
    for (what, value) in [("region", region), ("service", service)] {
        if value.is_empty()
            || value.len() > 64
            || !value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(incomplete(format!(
                "the Credential's {what} must be 1 to 64 lower-case letters, digits and `-`, not '{}'",
                shorten(value)
            )));
        }
    }
    if terminator != TERMINATOR {
        return Err(mismatch(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            shorten(terminator)
        )));
    }
    let signed_at = parse_amz_date(raw.amz_date).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            shorten(raw.amz_date)
        ))
    })?;
    if raw.amz_date.get(..8) != Some(date) {
        return Err(mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            shorten(date),
            raw.amz_date.get(..8).unwrap_or_default(),
            raw.amz_date
        )));
    }
    let mut signature = [0u8; 32];
    let sig = raw.signature.as_bytes();
    if sig.len() != 64
        || !sig
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(incomplete(format!(
            "Signature must be 64 lower-case hexadecimal characters, not '{}'",
            shorten(raw.signature)
        )));
    }
    for (out, pair) in signature.iter_mut().zip(sig.chunks_exact(2)) {
        let digit = |c: Option<&u8>| c.and_then(|c| char::from(*c).to_digit(16)).unwrap_or(0) as u8;
        *out = digit(pair.first()) << 4 | digit(pair.get(1));
    }
    let signed_headers =
        split_sep(raw.signed_headers, b';', MAX_SIGNED_HEADERS).ok_or_else(|| {
            incomplete(format!(
                "SignedHeaders names more than {MAX_SIGNED_HEADERS} headers"
            ))
        })?;
    for name in &signed_headers {
        if name.is_empty()
            || !name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            })
        {
            return Err(incomplete(format!(
                "SignedHeaders must be lower-case header names separated by ';', got '{}'",
                shorten(raw.signed_headers)
            )));
        }
    }
    if !signed_headers.windows(2).all(|w| w.first() < w.get(1)) {
        return Err(incomplete(format!(
            "SignedHeaders must be sorted and name each header once, got '{}'",
            shorten(raw.signed_headers)
        )));
    }
    if !signed_headers.contains(&"host") {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    for name in &signed_headers {
        if canonical::header_values(req.headers, name).next().is_none() {
            return Err(incomplete(format!(
                "'{name}' is named as a SignedHeader, but it does not exist in the HTTP request."
            )));
        }
    }
    let presigned_expires = match raw.expires {
        None => None,
        Some(e) => {
            let secs = (e.len() <= 7 && e.bytes().all(|b| b.is_ascii_digit()))
                .then(|| e.parse::<u64>().ok())
                .flatten()
                .filter(|s| (1..=MAX_PRESIGNED_EXPIRES.as_secs()).contains(s))
                .ok_or_else(|| {
                    incomplete(format!(
                        "X-Amz-Expires must be between 1 and {} seconds (a week), not '{}'",
                        MAX_PRESIGNED_EXPIRES.as_secs(),
                        shorten(e)
                    ))
                })?;
            Some(Duration::from_secs(secs))
        }
    };
    let header_token = single_header(req.headers, "x-amz-security-token")?;
    let query_token = single_param(query, "X-Amz-Security-Token")?;
    for token in [header_token, query_token].into_iter().flatten() {
        if token.len() > MAX_SECURITY_TOKEN_BYTES {
            return Err(incomplete(format!(
                "the security token has {} bytes; at most {MAX_SECURITY_TOKEN_BYTES}",
                token.len()
            )));
        }
    }
    if header_token.is_some() && !signed_headers.contains(&"x-amz-security-token") {
        return Err(incomplete(
            "'x-amz-security-token' must be a 'SignedHeader' when the request carries it as a header.",
        ));
    }
    let query_token = query_token.map(|t| match canonical::percent_decode(t) {
        Cow::Borrowed(_) => Ok(Cow::Borrowed(t)),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| incomplete("X-Amz-Security-Token is not UTF-8 once decoded")),
    });
    let security_token = match (header_token, query_token.transpose()?) {
        (Some(h), Some(q)) if h != q => {
            return Err(incomplete(
                "the request carries two different security tokens (header and query)",
            ));
        }
        (Some(h), _) => Some(Cow::Borrowed(h)),
        (None, q) => q,
    };
    Ok(Signed {
        access_key_id,
        date,
        region,
        service,
        security_token,
        signed_at,
        presigned_expires,
        amz_date: raw.amz_date,
        signed_headers,
        signature,
    })
}

// === impl Signed ===

impl std::fmt::Debug for Signed<'_> {
    /// The security token is a credential: its length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("access_key_id", &self.access_key_id)
            .field("scope", &(self.date, self.region, self.service))
            .field(
                "security_token",
                &self
                    .security_token
                    .as_ref()
                    .map(|t| format!("<{} bytes>", t.len())),
            )
            .field("amz_date", &self.amz_date)
            .field("presigned_expires", &self.presigned_expires)
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

impl Signed<'_> {
    /// Checks the request's time against `now`, then its signature with `key` (derived
    /// from the secret of [`Signed::access_key_id`] for this scope). `req` must be the
    /// request [`parse`] read. The signature is compared in constant time.
    pub fn verify(
        &self,
        req: &HttpRequest<'_>,
        key: &SigningKey,
        now: SystemTime,
    ) -> Result<(), StsError> {
        self.check_time(now)?;
        if req.headers.len() > MAX_HEADERS {
            return Err(incomplete(format!(
                "a signed request has {} headers; at most {MAX_HEADERS}",
                req.headers.len()
            )));
        }
        let signed_bytes: usize = self
            .signed_headers
            .iter()
            .flat_map(|n| canonical::header_values(req.headers, n))
            .map(str::len)
            .sum();
        if signed_bytes > MAX_SIGNED_HEADER_BYTES {
            return Err(incomplete(format!(
                "the signed headers' values have {signed_bytes} bytes; at most {MAX_SIGNED_HEADER_BYTES}"
            )));
        }
        let hashes = self.payload_hashes(req)?;
        let (path, query) = split_target(req.target);
        // The canonical request is hashed as it is written, never built.
        let mut head = canonical::request_hasher();
        canonical::write_request_head(
            &mut head,
            req.method,
            path,
            query,
            self.presigned_expires.is_some(),
            &self.signed_headers,
            req.headers,
        );
        let scope = Scope {
            date: self.date,
            region: self.region,
            service: self.service,
        };
        // Every candidate computed and compared, whichever matches.
        let mut matched = subtle::Choice::from(0);
        for hash in &hashes {
            let mut request = head.clone();
            request.push_str(hash);
            let request_hash = request.into_inner().finish();
            matched |= key
                .sign_request(self.amz_date, &scope, request_hash.as_ref())
                .ct_eq(&self.signature);
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(mismatch(SIGNATURE_MISMATCH))
        }
    }

    /// The header form within [`MAX_SKEW`] of `now`; a presigned request not signed
    /// further ahead than that, nor past its `X-Amz-Expires`.
    fn check_time(&self, now: SystemTime) -> Result<(), StsError> {
        let (now, signed) = (unix(now), unix(self.signed_at));
        let skew = i64::try_from(MAX_SKEW.as_secs()).unwrap_or(i64::MAX);
        if signed > now.saturating_add(skew) {
            return Err(mismatch(format!(
                "Signature not yet current: {} is still later than {} ({} + 5 min.)",
                self.amz_date,
                amz(now.saturating_add(skew)),
                amz(now)
            )));
        }
        match self.presigned_expires {
            None if signed < now.saturating_sub(skew) => Err(mismatch(format!(
                "Signature expired: {} is now earlier than {} ({} - 5 min.)",
                self.amz_date,
                amz(now.saturating_sub(skew)),
                amz(now)
            ))),
            Some(expires) => {
                let until = signed.saturating_add(i64::try_from(expires.as_secs()).unwrap_or(0));
                if now > until {
                    Err(StsError::new(
                        Code::RequestExpired,
                        format!(
                            "Request has expired: X-Amz-Date {} plus X-Amz-Expires {} s is {}, earlier than now ({})",
                            self.amz_date,
                            expires.as_secs(),
                            amz(until),
                            amz(now)
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// The payload hashes the signature may have been computed with: the request's
    /// `x-amz-content-sha256` when it has one (checked against the body when known); else
    /// the body's hash; a presigned request also `UNSIGNED-PAYLOAD` (botocore's) beside
    /// the body's (or the empty body's) hash (the other SDKs').
    fn payload_hashes<'r>(
        &self,
        req: &HttpRequest<'r>,
    ) -> Result<SmallVec<[Cow<'r, str>; 2]>, StsError> {
        if let Payload::Bytes(body) = req.payload
            && body.len() > MAX_BODY_BYTES
        {
            return Err(incomplete(format!(
                "a signed request's body has {} bytes; at most {MAX_BODY_BYTES} are hashed",
                body.len()
            )));
        }
        if let Payload::Declared(d) = req.payload
            && !is_hex64(d)
            && d != UNSIGNED_PAYLOAD
        {
            return Err(incomplete(format!(
                "the declared payload hash must be a hex SHA-256, not '{}'",
                shorten(d)
            )));
        }
        let body: Option<Cow<'r, str>> = match req.payload {
            // An empty body (a GET's) has a known hash.
            Payload::Bytes([]) => Some(Cow::Borrowed(EMPTY_SHA256)),
            Payload::Bytes(b) => Some(Cow::Owned(canonical::sha256_hex(b))),
            Payload::Declared(d) => Some(Cow::Borrowed(d)),
            Payload::Unknown => None,
        };
        // A body warden reads is always part of the signature: `UNSIGNED-PAYLOAD` would let
        // whoever captured the request (a presigned URL, a logged request) send it again
        // within its validity with another body, such as other STS parameters.
        let has_body = matches!(req.payload, Payload::Bytes(b) if !b.is_empty());
        if let Some(declared) = single_header(req.headers, "x-amz-content-sha256")? {
            if declared == UNSIGNED_PAYLOAD {
                if has_body {
                    return Err(mismatch(
                        "UNSIGNED-PAYLOAD does not sign this request's body; sign the body's SHA-256.",
                    ));
                }
                return Ok(smallvec::smallvec![Cow::Borrowed(declared)]);
            }
            if !is_hex64(declared) {
                return Err(incomplete(format!(
                    "x-amz-content-sha256 must be {UNSIGNED_PAYLOAD} or a hex SHA-256, not '{}'",
                    shorten(declared)
                )));
            }
            if let Some(body) = &body
                && !body.eq_ignore_ascii_case(declared)
            {
                return Err(mismatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
            return Ok(smallvec::smallvec![Cow::Borrowed(declared)]);
        }
        match (self.presigned_expires, body) {
            (Some(_), Some(body)) if has_body => Ok(smallvec::smallvec![body]),
            (Some(_), body) => Ok(smallvec::smallvec![
                Cow::Borrowed(UNSIGNED_PAYLOAD),
                body.unwrap_or(Cow::Borrowed(EMPTY_SHA256)),
            ]),
            (None, Some(body)) => Ok(smallvec::smallvec![body]),
            (None, None) => Err(mismatch(
                "the request's body was not seen and it declares no x-amz-content-sha256: its signature cannot be checked",
            )),
        }
    }

    /// AWS's checks of the credential scope against what this endpoint serves: one of
    /// `regions`, and `service`.
    pub fn check_scope(&self, regions: &[&str], service: &str) -> Result<(), StsError> {
        if !regions.contains(&self.region) {
            return Err(mismatch(format!(
                "Credential should be scoped to a valid region, not '{}'.",
                self.region
            )));
        }
        if self.service != service {
            return Err(mismatch(format!(
                "Credential should be scoped to correct service: '{service}'."
            )));
        }
        Ok(())
    }

    /// The canonical requests the signature may have been computed over, as text, one per
    /// payload hash [`Signed::verify`] tries (two for a presigned request without
    /// `x-amz-content-sha256`): for debugging and benches. [`Signed::verify`] checks the
    /// same, hashed as it is written, never built.
    pub fn canonical_requests(&self, req: &HttpRequest<'_>) -> Result<Vec<String>, StsError> {
        let (path, query) = split_target(req.target);
        let head = canonical::canonical_request_head(
            req.method,
            path,
            query,
            self.presigned_expires.is_some(),
            &self.signed_headers,
            req.headers,
        );
        Ok(self
            .payload_hashes(req)?
            .iter()
            .map(|hash| format!("{head}{hash}"))
            .collect())
    }

    /// The string to sign of `canonical_request` in this request's time and scope.
    pub fn string_to_sign(&self, canonical_request: &str) -> String {
        let scope = Scope {
            date: self.date,
            region: self.region,
            service: self.service,
        };
        canonical::string_to_sign(self.amz_date, &scope, canonical_request, "")
    }

    /// The names in `SignedHeaders`, lower case and sorted.
    pub fn signed_headers(&self) -> &[&str] {
        &self.signed_headers
    }
}

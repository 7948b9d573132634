//! Signing as botocore signs, for tests, benches and the load generator: the
//! `Authorization` header form (`SigV4Auth`) and presigned query strings
//! (`SigV4QueryAuth`). The canonical request is the verifier's own, and the boto3
//! fixtures check it.

use std::time::{Duration, SystemTime};

use super::canonical::{self, ALGORITHM, Scope, UNSIGNED_PAYLOAD};
use super::{HttpRequest, Payload, SigningKey, amz, split_target, unix};

/// The credentials and scope to sign with.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// A session's token, sent as `X-Amz-Security-Token`.
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

/// Headers botocore never signs (`SIGNED_HEADERS_BLACKLIST`), and what signing replaces.
const UNSIGNED: [&str; 7] = [
    "expect",
    "transfer-encoding",
    "user-agent",
    "x-amzn-trace-id",
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
];

/// The lower-case, sorted, distinct names botocore signs among `headers`.
fn names_to_sign(headers: &[(&str, &str)], extra: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !UNSIGNED.contains(&n.as_str()))
        .chain(extra.iter().map(|n| n.to_string()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn signature(signer: &Signer<'_>, amz_date: &str, head: &str, payload_hash: &str) -> String {
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = Scope {
        date,
        region: signer.region,
        service: signer.service,
    };
    let key = SigningKey::derive(
        signer.secret_access_key,
        date,
        signer.region,
        signer.service,
    );
    let string_to_sign = canonical::string_to_sign(amz_date, &scope, head, payload_hash);
    canonical::hex(&key.sign(&string_to_sign))
}

fn credential(signer: &Signer<'_>, amz_date: &str) -> String {
    let mut out = format!("{}/", signer.access_key_id);
    Scope {
        date: amz_date.get(..8).unwrap_or_default(),
        region: signer.region,
        service: signer.service,
    }
    .write(&mut out);
    out
}

/// Signs `req` in the `Authorization` header form at time `at`, as botocore does: every
/// header but `User-Agent`, `Expect`, `Transfer-Encoding` and `X-Amzn-Trace-Id` signed,
/// with `X-Amz-Date` and `X-Amz-Security-Token` added (`req.headers` must hold `Host`);
/// the payload hash of `Payload::Bytes` computed, `Unknown` signed as `UNSIGNED-PAYLOAD`;
/// no `x-amz-content-sha256` header (STS requests carry none). Returns the headers to add:
/// `X-Amz-Date`, `X-Amz-Security-Token` (with a session token), `Authorization`.
pub fn sign_headers(
    req: &HttpRequest<'_>,
    signer: &Signer<'_>,
    at: SystemTime,
) -> Vec<(String, String)> {
    let amz_date = amz(unix(at));
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| {
            !["authorization", "x-amz-date", "x-amz-security-token"]
                .iter()
                .any(|u| n.eq_ignore_ascii_case(u))
        })
        .copied()
        .collect();
    headers.push(("X-Amz-Date", &amz_date));
    let mut extra = vec!["x-amz-date"];
    if let Some(token) = signer.session_token {
        headers.push(("X-Amz-Security-Token", token));
        extra.push("x-amz-security-token");
    }
    let names = names_to_sign(req.headers, &extra);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (path, query) = split_target(req.target);
    let head = canonical::canonical_request_head(req.method, path, query, false, &names, &headers);
    let payload_hash = match req.payload {
        Payload::Bytes(body) => canonical::sha256_hex(body),
        Payload::Declared(hash) => hash.to_string(),
        Payload::Unknown => UNSIGNED_PAYLOAD.to_string(),
    };
    let signature = signature(signer, &amz_date, &head, &payload_hash);
    let authorization = format!(
        "{ALGORITHM} Credential={}, SignedHeaders={}, Signature={signature}",
        credential(signer, &amz_date),
        names.join(";")
    );
    let mut out = vec![("X-Amz-Date".to_string(), amz_date.clone())];
    if let Some(token) = signer.session_token {
        out.push(("X-Amz-Security-Token".to_string(), token.to_string()));
    }
    out.push(("Authorization".to_string(), authorization));
    out
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    canonical::uri_encode(&mut out, value.as_bytes(), false);
    out
}

/// Presigns `req` at time `at` for `expires` (whole seconds, 1 s to a week), as botocore's
/// `generate_presigned_url` does: the target's own query (kept as written, which must be
/// URI-encoded already) followed by `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Security-Token` and `X-Amz-Signature`;
/// the headers botocore signs (`Host` at least, and not the form `Content-Type`) signed;
/// the payload `UNSIGNED-PAYLOAD`. Returns the new target.
pub fn presign(
    req: &HttpRequest<'_>,
    signer: &Signer<'_>,
    at: SystemTime,
    expires: Duration,
) -> String {
    let amz_date = amz(unix(at));
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, v)| {
            // botocore drops the content type it would add itself.
            !(n.eq_ignore_ascii_case("content-type")
                && *v == "application/x-www-form-urlencoded; charset=utf-8")
        })
        .copied()
        .collect();
    let names = names_to_sign(&headers, &[]);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (path, query) = split_target(req.target);
    let mut params = vec![
        ("X-Amz-Algorithm", ALGORITHM.to_string()),
        ("X-Amz-Credential", credential(signer, &amz_date)),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", expires.as_secs().to_string()),
        ("X-Amz-SignedHeaders", names.join(";")),
    ];
    if let Some(token) = signer.session_token {
        params.push(("X-Amz-Security-Token", token.to_string()));
    }
    let mut new_query = String::from(query);
    for (name, value) in &params {
        if !new_query.is_empty() {
            new_query.push('&');
        }
        new_query.push_str(name);
        new_query.push('=');
        new_query.push_str(&encode(value));
    }
    let head =
        canonical::canonical_request_head(req.method, path, &new_query, true, &names, &headers);
    let signature = signature(signer, &amz_date, &head, UNSIGNED_PAYLOAD);
    format!("{path}?{new_query}&X-Amz-Signature={signature}")
}

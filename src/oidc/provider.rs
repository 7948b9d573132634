//! An OIDC identity provider as IAM models one (`arn:aws:iam::ACCT:oidc-provider/HOST[/PATH]`):
//! its issuer URL, the client ids (audiences) it may issue tokens for, and where its
//! verification keys come from. Built by the bundle loader, which checks every field.

use std::path::PathBuf;
use std::sync::Arc;

use super::TokenError;
use super::jwks::KeySet;
use super::token::Claims;

/// Client ids of one provider, at most (IAM's quota).
pub const MAX_CLIENT_IDS: usize = 100;
/// Characters in a client id or a provider URL, at most (IAM's limit).
pub const MAX_URL_CHARS: usize = 255;

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// In the bundle, checked when it loaded.
    Inline(Arc<KeySet>),
    /// A file on the server's disk, read (and re-read) by the verifier.
    File(PathBuf),
    /// `https://...` (or `http://` to a loopback address), fetched by the verifier.
    Uri(String),
}

impl KeySource {
    /// How a remote source is named, for logs and to notice that a new bundle moved it.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Inline(_) => "inline".to_owned(),
            KeySource::File(p) => format!("file {}", p.display()),
            KeySource::Uri(u) => format!("uri {u}"),
        }
    }
}

/// An OIDC provider of the bundle.
#[derive(Debug, Clone)]
pub struct OidcProvider {
    arn: String,
    account: String,
    url: String,
    /// `HOST[/PATH]`, lowercase: the prefix of the condition keys of its tokens
    /// (`HOST:sub`, `HOST:aud`).
    key_prefix: String,
    client_ids: Vec<String>,
    keys: KeySource,
}

impl OidcProvider {
    /// A provider of `account` whose `url` passed [`check_url`].
    pub fn new(
        account: &str,
        url: &str,
        client_ids: Vec<String>,
        keys: KeySource,
    ) -> Result<OidcProvider, String> {
        let host_path = check_url(url)?;
        Ok(OidcProvider {
            arn: format!(
                "arn:{}:iam::{account}:oidc-provider/{host_path}",
                crate::bundle::PARTITION
            ),
            account: account.to_owned(),
            url: url.to_owned(),
            key_prefix: host_path.to_ascii_lowercase(),
            client_ids,
            keys,
        })
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// The issuer URL: a token's `iss` must equal it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `HOST[/PATH]`, lowercase: the prefix of its tokens' condition keys.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    pub fn client_ids(&self) -> &[String] {
        &self.client_ids
    }

    pub fn keys(&self) -> &KeySource {
        &self.keys
    }

    /// The audience a token was accepted for: one of its `aud` that is a client id,
    /// preferring its `azp` (the party it was issued to) when that is one of them. `None`
    /// when the token is for none of the client ids.
    pub fn accepted_audience<'c>(&self, claims: &'c Claims) -> Option<&'c str> {
        let accepted = |a: &str| {
            self.client_ids.iter().any(|c| c == a) && claims.audiences().iter().any(|x| x == a)
        };
        if let Some(azp) = claims.authorized_party()
            && accepted(azp)
        {
            return Some(azp);
        }
        claims
            .audiences()
            .iter()
            .map(String::as_str)
            .find(|a| accepted(a))
    }

    /// Checks that `claims` are this provider's, for one of its client ids: `iss` equals
    /// the URL; an `aud` (or `azp`) is a client id.
    pub fn check_claims(&self, claims: &Claims) -> Result<(), TokenError> {
        if claims.issuer() != self.url {
            return Err(TokenError::new(
                "wrong_issuer",
                format!(
                    "the token's issuer is not `{}`, the provider's URL",
                    self.url
                ),
            ));
        }
        if self.accepted_audience(claims).is_none() {
            return Err(TokenError::new(
                "wrong_audience",
                format!("the token is for none of the client ids of `{}`", self.arn),
            ));
        }
        Ok(())
    }
}

/// Checks an issuer URL (`https://HOST[/PATH]`, no port, query, fragment or user) and
/// returns `HOST[/PATH]`. The host is a lowercase DNS name, as IAM keeps it; the path's
/// characters are those of a plain URL path, so the key prefix holds no `:`.
pub fn check_url(url: &str) -> Result<&str, String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "a provider URL has at most {MAX_URL_CHARS} characters"
        ));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("`{url}` does not start with `https://`"));
    };
    if let Some(c) = rest.chars().find(|c| matches!(c, '?' | '#' | '@' | ':')) {
        let what = match c {
            '?' => "a query",
            '#' => "a fragment",
            '@' => "user information",
            _ => "a port",
        };
        return Err(format!(
            "`{url}` has {what}; a provider URL is `https://HOST[/PATH]`"
        ));
    }
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !valid_host(host) {
        return Err(format!(
            "`{host}` is not a lowercase host name (letters, digits, `-`, labels separated by `.`)"
        ));
    }
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !path.contains("//")
        && !path.split('/').any(|s| s == "." || s == "..");
    if !path_ok {
        return Err(format!(
            "`{path}`: a provider URL's path has letters, digits, `-._~` and single `/`s, and no `.` or `..` segment"
        ));
    }
    Ok(rest)
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Checks a `jwks_uri`: `https://` to any host, or `http://` to a loopback address only
/// (`127.0.0.1`, `[::1]`, `localhost`), for tests and a local key server.
pub fn check_jwks_uri(uri: &str) -> Result<(), String> {
    if uri.len() > 2048 {
        return Err("a `jwks_uri` has at most 2048 characters".to_owned());
    }
    let parsed: http::Uri = uri.parse().map_err(|_| format!("`{uri}` is not a URL"))?;
    let host = parsed.host().unwrap_or("");
    if host.is_empty() {
        return Err(format!("`{uri}` names no host"));
    }
    if parsed.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!("`{uri}` has user information"));
    }
    match parsed.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "`{uri}`: keys are fetched over `https://`; `http://` only from a loopback address"
        )),
        _ => Err(format!("`{uri}` is not an `https://` URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

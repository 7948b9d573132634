//! What a verified token becomes: the condition keys of web identity federation
//! (`HOST:sub`, `HOST:aud`, ...), a role session's name, and why an
//! `AssumeRoleWithWebIdentity` was refused.

use crate::context::{Context, ContextValue};
use crate::eval::Outcome;

use super::provider::OidcProvider;
use super::token::Claims;

/// The keys a web-identity session carries into its requests, and its provider.
#[derive(Debug, Clone)]
pub struct WebIdentity {
    pub provider_arn: String,
    /// `HOST:sub`, `HOST:aud`, `HOST:oaud`, `HOST:amr` (those the token has) and
    /// `aws:FederatedProvider`. The service drops any caller-supplied key with a provider's
    /// prefix, so only these reach a policy.
    pub keys: Context,
}

/// The condition keys of a token of `provider` (AWS's web identity keys for an OIDC
/// provider):
/// - `HOST:sub`: the subject;
/// - `HOST:aud`: the audience (client id) the token was accepted for, its `azp` when that
///   is one;
/// - `HOST:oaud`: when the token has an `azp`, its `aud` values (AWS's "other audience");
/// - `HOST:amr`: the authentication methods, when the token lists them;
/// - `aws:FederatedProvider`: the provider's ARN.
pub fn web_identity_keys(provider: &OidcProvider, claims: &Claims) -> Context {
    let prefix = provider.key_prefix();
    let mut keys = Context::new();
    let single = |s: &str| ContextValue::Single(s.to_owned());
    if let Some(sub) = claims.subject() {
        keys.insert(&format!("{prefix}:sub"), single(sub));
    }
    if let Some(aud) = provider.accepted_audience(claims) {
        keys.insert(&format!("{prefix}:aud"), single(aud));
    }
    if claims.authorized_party().is_some() {
        keys.insert(
            &format!("{prefix}:oaud"),
            ContextValue::Multi(claims.audiences().to_vec()),
        );
    }
    let amr = match claims.get("amr") {
        Some(serde_json::Value::String(s)) => Some(vec![s.clone()]),
        Some(serde_json::Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    };
    if let Some(amr) = amr.filter(|a: &Vec<String>| !a.is_empty()) {
        keys.insert(&format!("{prefix}:amr"), ContextValue::Multi(amr));
    }
    keys.insert("aws:FederatedProvider", single(provider.arn()));
    keys
}

/// Checks a role session name as AWS does (`[\w+=,.@-]{2,64}`). Nothing is replaced: two
/// subjects that differ only in a refused character must not share a session name.
pub fn check_session_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(2..=64).contains(&len) {
        return Err(format!(
            "a role session name has 2 to 64 characters; `{}` has {len}",
            name.chars().take(80).collect::<String>()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c)))
    {
        return Err(format!(
            "`{name}` is not a role session name: `{}` is not allowed (letters, digits and `_+=,.@-` are)",
            c.escape_default()
        ));
    }
    Ok(())
}

/// Why `AssumeRoleWithWebIdentity` did not give a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WebIdentityDenied {
    /// `denied` (the trust policy did not allow: see `outcome`), `unknown_provider`,
    /// `unknown_role`, `invalid_session_name`, `expired`, or a token error's code
    /// (`wrong_issuer`, `wrong_audience`) for claims that are not the provider's.
    pub code: &'static str,
    pub message: String,
    /// The trust policy's decision, for `denied`: its reason code answers the face's 403.
    pub outcome: Option<Outcome>,
}

impl WebIdentityDenied {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> WebIdentityDenied {
        WebIdentityDenied {
            code,
            message: message.into(),
            outcome: None,
        }
    }
}

//! The AWS STS query API's requests: `Action=AssumeRole&Version=2011-06-15&RoleArn=...` as
//! a form body (or a GET query string) read into a typed [`Call`]. Limits come first (the
//! body's size, the count of parameters), then the action and version, then each
//! parameter against the constraints of AWS's service model, reported as AWS reports them
//! (`1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy
//! constraint: ...`). The gRPC face builds the same typed calls and validates them here too.

use std::borrow::Cow;

use super::error::{Code, StsError};

/// The one API version STS has.
pub const VERSION: &str = "2011-06-15";

/// How much of a request the parser reads at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest form body (or query string) read; beyond it nothing is decoded.
    pub max_body_bytes: usize,
    /// The most parameters a request may carry, known or not (`X-Amz-*` included):
    /// 50 tags (two parameters each), 50 transitive keys, 10 policy ARNs and the scalars
    /// fit with room to spare.
    pub max_params: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // A 20 000-character web identity token or a session policy, percent-encoded
            // (up to three bytes a character), fits.
            max_body_bytes: 64 << 10,
            max_params: 256,
        }
    }
}

/// An STS call, its parameters as AWS names them (in snake case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    AssumeRole(AssumeRole),
    AssumeRoleWithWebIdentity(AssumeRoleWithWebIdentity),
    GetSessionToken(GetSessionToken),
    GetCallerIdentity,
}

/// `AssumeRole`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub role_session_name: String,
    /// `PolicyArns.member.N.arn`, in N's order.
    pub policy_arns: Vec<String>,
    pub policy: Option<String>,
    pub duration_seconds: Option<u32>,
    /// `Tags.member.N.Key` / `Tags.member.N.Value`, in N's order.
    pub tags: Vec<(String, String)>,
    /// `TransitiveTagKeys.member.N`, in N's order.
    pub transitive_tag_keys: Vec<String>,
    pub external_id: Option<String>,
    pub serial_number: Option<String>,
    pub token_code: Option<String>,
    pub source_identity: Option<String>,
}

/// `AssumeRoleWithWebIdentity`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssumeRoleWithWebIdentity {
    pub role_arn: String,
    pub role_session_name: String,
    pub web_identity_token: String,
    pub provider_id: Option<String>,
    pub policy_arns: Vec<String>,
    pub policy: Option<String>,
    pub duration_seconds: Option<u32>,
}

/// `GetSessionToken`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetSessionToken {
    pub duration_seconds: Option<u32>,
    pub serial_number: Option<String>,
    pub token_code: Option<String>,
}

impl Call {
    /// The `Action` name.
    pub fn action(&self) -> &'static str {
        match self {
            Call::AssumeRole(_) => "AssumeRole",
            Call::AssumeRoleWithWebIdentity(_) => "AssumeRoleWithWebIdentity",
            Call::GetSessionToken(_) => "GetSessionToken",
            Call::GetCallerIdentity => "GetCallerIdentity",
        }
    }

    /// Checks every parameter against AWS's constraints; all failures in one
    /// `ValidationError`, as AWS reports them.
    pub fn validate(&self) -> Result<(), StsError> {
        let mut v = Violations::default();
        match self {
            Call::AssumeRole(c) => {
                v.arn("roleArn", Some(&c.role_arn));
                v.session_name("roleSessionName", Some(&c.role_session_name));
                v.policy_arns(&c.policy_arns);
                if let Some(p) = &c.policy {
                    v.policy(p, None);
                }
                v.duration(c.duration_seconds, ROLE_DURATION);
                v.tags(&c.tags);
                v.transitive(&c.transitive_tag_keys);
                v.text("externalId", c.external_id.as_deref(), 2, 1224, |ch| {
                    word(ch) || "+=,.@:/-".contains(ch)
                });
                v.text("serialNumber", c.serial_number.as_deref(), 9, 256, serial);
                v.token_code(c.token_code.as_deref());
                v.session_name("sourceIdentity", c.source_identity.as_deref());
            }
            Call::AssumeRoleWithWebIdentity(c) => {
                v.arn("roleArn", Some(&c.role_arn));
                v.session_name("roleSessionName", Some(&c.role_session_name));
                v.secret("webIdentityToken", &c.web_identity_token, 4, 20_000);
                v.text("providerId", c.provider_id.as_deref(), 4, 2048, |_| true);
                v.policy_arns(&c.policy_arns);
                if let Some(p) = &c.policy {
                    v.policy(p, Some(2048));
                }
                v.duration(c.duration_seconds, ROLE_DURATION);
            }
            Call::GetSessionToken(c) => {
                v.duration(c.duration_seconds, SESSION_DURATION);
                v.text("serialNumber", c.serial_number.as_deref(), 9, 256, serial);
                v.token_code(c.token_code.as_deref());
            }
            Call::GetCallerIdentity => {}
        }
        v.finish()
    }
}

/// Reads a query API request: the parameters of `query` (the request target's query
/// string, without `?`) and of a form `body`, counted together under `limits`; the call,
/// validated. Parameters the action does not take are ignored, as AWS ignores them (the
/// `X-Amz-*` of a presigned request among them); a parameter given twice is refused.
pub fn parse(query: &str, body: &[u8], limits: &Limits) -> Result<Call, StsError> {
    let size = query.len().saturating_add(body.len());
    if size > limits.max_body_bytes {
        return Err(StsError::validation(format!(
            "the request's parameters take {size} bytes, more than the limit of {}",
            limits.max_body_bytes
        )));
    }
    let mut params = Params::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes())
        .chain(form_urlencoded::parse(body))
        .filter(|(name, _)| !name.is_empty())
    {
        if params.0.len() >= limits.max_params {
            return Err(StsError::validation(format!(
                "the request has more than {} parameters",
                limits.max_params
            )));
        }
        if params.0.iter().any(|(n, _)| *n == name) {
            return Err(StsError::new(
                Code::InvalidParameterValue,
                format!("the parameter `{name}` is given more than once"),
            ));
        }
        params.0.push((name, value));
    }
    let call = params.call()?;
    call.validate()?;
    Ok(call)
}

/// The decoded parameters, in order. A linear search is fine: at most `max_params`.
#[derive(Default)]
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    fn call(&self) -> Result<Call, StsError> {
        let Some(action) = self.get("Action") else {
            return Err(StsError::new(Code::InvalidAction, "Missing Action"));
        };
        // AWS names a missing version this way in the same message.
        let version = self.get("Version").unwrap_or("NO_VERSION_SPECIFIED");
        let unknown = || {
            StsError::new(
                Code::InvalidAction,
                format!("Could not find operation {action} for version {version}"),
            )
        };
        if version != VERSION {
            return Err(unknown());
        }
        let mut v = Violations::default();
        let call = match action {
            "AssumeRole" => Call::AssumeRole(AssumeRole {
                role_arn: self.required(&mut v, "RoleArn", "roleArn"),
                role_session_name: self.required(&mut v, "RoleSessionName", "roleSessionName"),
                policy_arns: self.policy_arns(&mut v),
                policy: self.string("Policy"),
                duration_seconds: self.integer(&mut v, "DurationSeconds", "durationSeconds"),
                tags: self.tags(&mut v),
                transitive_tag_keys: self.list(&mut v, "TransitiveTagKeys", "transitiveTagKeys"),
                external_id: self.string("ExternalId"),
                serial_number: self.string("SerialNumber"),
                token_code: self.string("TokenCode"),
                source_identity: self.string("SourceIdentity"),
            }),
            "AssumeRoleWithWebIdentity" => {
                Call::AssumeRoleWithWebIdentity(AssumeRoleWithWebIdentity {
                    role_arn: self.required(&mut v, "RoleArn", "roleArn"),
                    role_session_name: self.required(&mut v, "RoleSessionName", "roleSessionName"),
                    web_identity_token: self.required(
                        &mut v,
                        "WebIdentityToken",
                        "webIdentityToken",
                    ),
                    provider_id: self.string("ProviderId"),
                    policy_arns: self.policy_arns(&mut v),
                    policy: self.string("Policy"),
                    duration_seconds: self.integer(&mut v, "DurationSeconds", "durationSeconds"),
                })
            }
            "GetSessionToken" => Call::GetSessionToken(GetSessionToken {
                duration_seconds: self.integer(&mut v, "DurationSeconds", "durationSeconds"),
                serial_number: self.string("SerialNumber"),
                token_code: self.string("TokenCode"),
            }),
            "GetCallerIdentity" => Call::GetCallerIdentity,
            _ => return Err(unknown()),
        };
        v.finish()?;
        Ok(call)
    }

    fn required(&self, v: &mut Violations, name: &str, member: &str) -> String {
        match self.get(name) {
            Some(value) => value.to_owned(),
            None => {
                v.push(format!(
                    "Value null at '{member}' failed to satisfy constraint: Member must not be null"
                ));
                String::new()
            }
        }
    }

    fn integer(&self, v: &mut Violations, name: &str, member: &str) -> Option<u32> {
        let text = self.get(name)?;
        // Digits only: `+5`, ` 5` and `5.0` are not AWS integers either. Out of the
        // range of u32 is out of every duration's range.
        let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            Some(text.parse::<u32>().unwrap_or(u32::MAX))
        } else {
            None
        };
        if parsed.is_none() {
            v.push(format!(
                "Value '{}' at '{member}' failed to satisfy constraint: Member must be an integer",
                shown(text)
            ));
        }
        parsed
    }

    /// The members `PREFIX.member.N` (N from 1, consecutive, as the SDKs number them), in
    /// N's order; `suffix` is appended to each name (`.arn`, `.Key`).
    fn members<'s>(&'s self, prefix: &str, suffix: &str) -> Vec<(u32, &'s str)> {
        let mut found: Vec<(u32, &str)> = self
            .0
            .iter()
            .filter_map(|(name, value)| {
                let index = name
                    .strip_prefix(prefix)?
                    .strip_prefix(".member.")?
                    .strip_suffix(suffix)?;
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((index.parse::<u32>().ok()?, value.as_ref()))
            })
            .collect();
        found.sort_unstable_by_key(|(i, _)| *i);
        found
    }

    /// Members must be numbered 1, 2, 3, ...: a gap or a zero would silently drop one.
    fn check_numbering(v: &mut Violations, member: &str, indexes: &[u32]) {
        if indexes
            .iter()
            .zip(1u32..)
            .any(|(index, expected)| *index != expected)
        {
            v.push(format!(
                "Value at '{member}' failed to satisfy constraint: Member must be numbered \
                 from 1 without gaps"
            ));
        }
    }

    fn list(&self, v: &mut Violations, prefix: &str, member: &str) -> Vec<String> {
        let found = self.members(prefix, "");
        let indexes: Vec<u32> = found.iter().map(|(i, _)| *i).collect();
        Self::check_numbering(v, member, &indexes);
        found.into_iter().map(|(_, s)| s.to_owned()).collect()
    }

    fn policy_arns(&self, v: &mut Violations) -> Vec<String> {
        let found = self.members("PolicyArns", ".arn");
        let indexes: Vec<u32> = found.iter().map(|(i, _)| *i).collect();
        Self::check_numbering(v, "policyArns", &indexes);
        found.into_iter().map(|(_, s)| s.to_owned()).collect()
    }

    fn tags(&self, v: &mut Violations) -> Vec<(String, String)> {
        let keys = self.members("Tags", ".Key");
        let values = self.members("Tags", ".Value");
        let indexes: Vec<u32> = keys.iter().map(|(i, _)| *i).collect();
        Self::check_numbering(v, "tags", &indexes);
        for (i, _) in &values {
            if !keys.iter().any(|(k, _)| k == i) {
                v.push(format!(
                    "Value null at 'tags.{i}.member.key' failed to satisfy constraint: \
                     Member must not be null"
                ));
            }
        }
        keys.into_iter()
            .map(|(i, key)| {
                let value = match values.iter().find(|(j, _)| *j == i) {
                    Some((_, value)) => (*value).to_owned(),
                    None => {
                        v.push(format!(
                            "Value null at 'tags.{i}.member.value' failed to satisfy \
                             constraint: Member must not be null"
                        ));
                        String::new()
                    }
                };
                (key.to_owned(), value)
            })
            .collect()
    }
}

// === constraints ===

/// `roleDurationSecondsType`.
const ROLE_DURATION: (u32, u32) = (900, 43_200);
/// `durationSecondsType` (GetSessionToken).
const SESSION_DURATION: (u32, u32) = (900, 129_600);

/// The constraint failures of one request, reported together as AWS does.
#[derive(Default)]
struct Violations(Vec<String>);

/// Java's `\w` (AWS's patterns are Java regular expressions): ASCII letters, digits, `_`.
fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn serial(c: char) -> bool {
    word(c) || "+=/:,.@-".contains(c)
}

/// `\p{Z}`: the space, line and paragraph separators.
fn separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, with Rust's alphabetic standing in for `\p{L}`.
fn tag_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || separator(c) || "_.:/=+-@".contains(c)
}

/// `arnType`'s characters.
fn arn_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// `sessionPolicyDocumentType`'s characters.
fn policy_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}')
}

/// A length as AWS counts it: UTF-16 code units (Java's `String.length`).
fn length(s: &str) -> usize {
    s.encode_utf16().count()
}

/// A value as quoted in a message: the text, its first 256 characters for a long one.
fn shown(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(256) {
        Some((end, _)) => Cow::Owned(format!("{}...", s.get(..end).unwrap_or_default())),
        None => Cow::Borrowed(s),
    }
}

impl Violations {
    fn push(&mut self, message: String) {
        self.0.push(message);
    }

    fn fail(&mut self, member: &str, value: Option<&str>, constraint: &str) {
        let value = match value {
            Some(value) => format!("Value '{}' at", shown(value)),
            None => "Value at".to_owned(),
        };
        self.push(format!(
            "{value} '{member}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Length and pattern of an optional string; `None` passes.
    fn text(
        &mut self,
        member: &str,
        value: Option<&str>,
        min: usize,
        max: usize,
        allowed: impl Fn(char) -> bool,
    ) {
        let Some(value) = value else {
            return;
        };
        let n = length(value);
        if n < min {
            self.fail(
                member,
                Some(value),
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.fail(
                member,
                Some(value),
                &format!("Member must have length less than or equal to {max}"),
            );
        }
        if !value.chars().all(allowed) {
            self.fail(
                member,
                Some(value),
                &format!(
                    "Member must satisfy regular expression pattern: {}",
                    pattern(member)
                ),
            );
        }
    }

    fn arn(&mut self, member: &str, value: Option<&str>) {
        self.text(member, value, 20, 2048, arn_char);
    }

    fn session_name(&mut self, member: &str, value: Option<&str>) {
        self.text(member, value, 2, 64, |c| word(c) || "+=,.@-".contains(c));
    }

    /// A sensitive string: its value is never quoted back.
    fn secret(&mut self, member: &str, value: &str, min: usize, max: usize) {
        let n = length(value);
        if n < min {
            self.fail(
                member,
                None,
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.fail(
                member,
                None,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    fn policy(&mut self, value: &str, max: Option<usize>) {
        self.text(
            "policy",
            Some(value),
            1,
            max.unwrap_or(usize::MAX),
            policy_char,
        );
    }

    fn policy_arns(&mut self, arns: &[String]) {
        for (i, arn) in (1..).zip(arns) {
            self.arn(&format!("policyArns.{i}.member.arn"), Some(arn));
        }
    }

    fn duration(&mut self, value: Option<u32>, (min, max): (u32, u32)) {
        let Some(value) = value else {
            return;
        };
        let shown = if value == u32::MAX {
            "a number too large".to_owned()
        } else {
            value.to_string()
        };
        if value < min {
            self.push(format!(
                "Value '{shown}' at 'durationSeconds' failed to satisfy constraint: Member \
                 must have value greater than or equal to {min}"
            ));
        } else if value > max {
            self.push(format!(
                "Value '{shown}' at 'durationSeconds' failed to satisfy constraint: Member \
                 must have value less than or equal to {max}"
            ));
        }
    }

    fn tags(&mut self, tags: &[(String, String)]) {
        if tags.len() > 50 {
            self.fail(
                "tags",
                None,
                "Member must have length less than or equal to 50",
            );
        }
        for (i, (key, value)) in (1..).zip(tags) {
            self.text(&format!("tags.{i}.member.key"), Some(key), 1, 128, tag_char);
            self.text(
                &format!("tags.{i}.member.value"),
                Some(value),
                0,
                256,
                tag_char,
            );
        }
    }

    fn transitive(&mut self, keys: &[String]) {
        if keys.len() > 50 {
            self.fail(
                "transitiveTagKeys",
                None,
                "Member must have length less than or equal to 50",
            );
        }
        for key in keys {
            self.text("transitiveTagKeys", Some(key), 1, 128, tag_char);
        }
    }

    fn token_code(&mut self, value: Option<&str>) {
        self.text("tokenCode", value, 6, 6, |c| c.is_ascii_digit());
    }

    fn finish(self) -> Result<(), StsError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(StsError::validation(format!(
                "1 validation error detected: {}",
                self.0.join("; ")
            ))),
            n => Err(StsError::validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

/// The pattern of a member as the service model writes it, for messages.
fn pattern(member: &str) -> &'static str {
    let last = member.rsplit('.').next().unwrap_or(member);
    match last {
        "roleArn" | "arn" => {
            r"[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+"
        }
        "roleSessionName" | "sourceIdentity" => r"[\w+=,.@-]*",
        "externalId" => r"[\w+=,.@:\/-]*",
        "serialNumber" => r"[\w+=/:,.@-]*",
        "tokenCode" => r"[\d]*",
        "key" | "transitiveTagKeys" => r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+",
        "value" => r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*",
        "policy" => r"[\u0009\u000A\u000D\u0020-\u00FF]+",
        _ => ".*",
    }
}

#[cfg(test)]
mod tests;

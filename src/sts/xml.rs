//! The AWS STS query API's answers: each result in its `<ActionResponse
//! xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><ActionResult>` wrapper with the
//! members of AWS's service model, `<ResponseMetadata><RequestId>`, and errors as AWS's
//! `<ErrorResponse>`. Text is escaped, and characters XML cannot carry are replaced, so
//! that a hostile value echoed in a message cannot break the document. Also the typed
//! results both faces render ([`CallResult`]), and request ids.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::error::StsError;

/// The namespace of every STS document.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Temporary credentials, as every issuing call returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

/// The assumed-role session: `AROA…:SESSION` and its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRoleUser {
    pub assumed_role_id: String,
    pub arn: String,
}

/// What a call answers, to be rendered by a face.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    AssumeRole {
        credentials: Credentials,
        assumed_role_user: AssumedRoleUser,
        /// Percent of AWS's packed-size limit the session policies and tags take; AWS
        /// returns it only when any were passed.
        packed_policy_size: Option<u32>,
        source_identity: Option<String>,
    },
    AssumeRoleWithWebIdentity {
        credentials: Credentials,
        /// The token's `sub`.
        subject_from_web_identity_token: String,
        assumed_role_user: AssumedRoleUser,
        packed_policy_size: Option<u32>,
        /// The issuer (`iss`) of the token.
        provider: String,
        /// The token's audience (`aud`) the provider matched.
        audience: String,
        source_identity: Option<String>,
    },
    GetSessionToken {
        credentials: Credentials,
    },
    GetCallerIdentity {
        /// `AIDA…` for a user, `AROA…:SESSION` for a role session.
        user_id: String,
        account: String,
        arn: String,
    },
}

impl CallResult {
    /// The action this answers.
    pub fn action(&self) -> &'static str {
        match self {
            CallResult::AssumeRole { .. } => "AssumeRole",
            CallResult::AssumeRoleWithWebIdentity { .. } => "AssumeRoleWithWebIdentity",
            CallResult::GetSessionToken { .. } => "GetSessionToken",
            CallResult::GetCallerIdentity { .. } => "GetCallerIdentity",
        }
    }
}

/// A fresh request id in AWS's form (a random UUID, `c6104cbe-af31-41e0-8154-cbc7ccf896c7`).
pub fn request_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system RNG does not fail on the platforms warden runs on; should it, the id is
    // still unique enough from the clock, and ids are not secrets.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// A time as AWS writes it in STS answers and container credentials:
/// `2019-11-09T13:34:41Z`.
pub fn timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The answer document of `result`.
pub fn response(result: &CallResult, request_id: &str) -> String {
    let action = result.action();
    let mut x = Xml::default();
    x.open_ns(&format!("{action}Response"));
    x.open(&format!("{action}Result"));
    match result {
        CallResult::AssumeRole {
            credentials,
            assumed_role_user,
            packed_policy_size,
            source_identity,
        } => {
            x.credentials(credentials);
            x.assumed_role_user(assumed_role_user);
            if let Some(size) = packed_policy_size {
                x.leaf("PackedPolicySize", &size.to_string());
            }
            if let Some(s) = source_identity {
                x.leaf("SourceIdentity", s);
            }
        }
        CallResult::AssumeRoleWithWebIdentity {
            credentials,
            subject_from_web_identity_token,
            assumed_role_user,
            packed_policy_size,
            provider,
            audience,
            source_identity,
        } => {
            x.credentials(credentials);
            x.leaf(
                "SubjectFromWebIdentityToken",
                subject_from_web_identity_token,
            );
            x.assumed_role_user(assumed_role_user);
            if let Some(size) = packed_policy_size {
                x.leaf("PackedPolicySize", &size.to_string());
            }
            x.leaf("Provider", provider);
            x.leaf("Audience", audience);
            if let Some(s) = source_identity {
                x.leaf("SourceIdentity", s);
            }
        }
        CallResult::GetSessionToken { credentials } => x.credentials(credentials),
        CallResult::GetCallerIdentity {
            user_id,
            account,
            arn,
        } => {
            x.leaf("UserId", user_id);
            x.leaf("Account", account);
            x.leaf("Arn", arn);
        }
    }
    x.close(&format!("{action}Result"));
    x.open("ResponseMetadata");
    x.leaf("RequestId", request_id);
    x.close("ResponseMetadata");
    x.close(&format!("{action}Response"));
    x.out
}

/// AWS's `ErrorResponse` for `error`.
pub fn error_response(error: &StsError, request_id: &str) -> String {
    let mut x = Xml::default();
    x.open_ns("ErrorResponse");
    x.open("Error");
    x.leaf("Type", error.code.fault());
    x.leaf("Code", error.code.as_str());
    x.leaf("Message", &error.message);
    x.close("Error");
    x.leaf("RequestId", request_id);
    x.close("ErrorResponse");
    x.out
}

/// Writes an indented document as AWS does (two spaces a level, a declaration-less root).
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open_ns(&mut self, name: &str) {
        let _ = writeln!(self.out, "<{name} xmlns=\"{NAMESPACE}\">");
        self.depth += 1;
    }

    fn open(&mut self, name: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        let _ = writeln!(self.out, "</{name}>");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        let _ = write!(self.out, "<{name}>");
        escape_into(&mut self.out, text);
        let _ = writeln!(self.out, "</{name}>");
    }

    fn credentials(&mut self, c: &Credentials) {
        self.open("Credentials");
        self.leaf("AccessKeyId", &c.access_key_id);
        self.leaf("SecretAccessKey", &c.secret_access_key);
        self.leaf("SessionToken", &c.session_token);
        self.leaf("Expiration", &timestamp(c.expiration));
        self.close("Credentials");
    }

    fn assumed_role_user(&mut self, u: &AssumedRoleUser) {
        self.open("AssumedRoleUser");
        self.leaf("AssumedRoleId", &u.assumed_role_id);
        self.leaf("Arn", &u.arn);
        self.close("AssumedRoleUser");
    }
}

/// Appends `text` as XML character data: markup characters escaped, `\r` kept as a
/// reference (a parser would turn a literal one into `\n`), and characters XML 1.0 cannot
/// carry at all (most controls, U+FFFE, U+FFFF) replaced by U+FFFD.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;

//! What a session's credentials carry. A [`Grant`] is fixed when the session is issued
//! and sealed whole into its session token ([`crate::sts::token`]); a sidecar that opens the
//! token needs nothing else to verify the session and decide its requests: the session
//! policies are carried as issued (the inline text, the managed ARNs resolved against the
//! deciding snapshot), the tags, source identity and times as facts.

use serde::{Deserialize, Serialize};

/// Everything a session's credentials say. Field names are short: they are sealed into
/// every token, and tokens travel in every signed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `ASIA` + 16 characters, unique per issued session.
    #[serde(rename = "k")]
    pub access_key_id: String,
    #[serde(rename = "s")]
    pub subject: Subject,
    /// Seconds since the epoch: `aws:TokenIssueTime`.
    #[serde(rename = "i")]
    pub issued_at: u64,
    /// Seconds since the epoch; at and after it the credentials are refused (`ExpiredToken`).
    #[serde(rename = "e")]
    pub expires_at: u64,
    /// Seconds since the epoch when the MFA the session was issued with was authenticated
    /// (kept through role chaining, as AWS keeps `aws:MultiFactorAuthPresent`); `None`
    /// without MFA.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub mfa_at: Option<u64>,
    /// The inline session policy, as validated at issue (minified JSON).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Managed policy ARNs passed as session policies (at most 10).
    #[serde(rename = "pa", default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    /// Session tags (key, value), in the order given; a key at most once
    /// (case-insensitively). Transitive tags of the session that assumed this one come
    /// first.
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The keys of `tags` that pass on to a session this one assumes (role chaining).
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// `aws:SourceIdentity`, set once and kept through chaining.
    #[serde(rename = "si", default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// For a session from `AssumeRoleWithWebIdentity`: its provider and the token's keys.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<WebIdentityGrant>,
}

/// Whose session it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// A role session: `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`.
    #[serde(rename = "r")]
    Role {
        /// The role's ARN with its path, `arn:aws:iam::ACCT:role/PATH/NAME`.
        #[serde(rename = "a")]
        role_arn: String,
        #[serde(rename = "n")]
        session_name: String,
        /// Assumed with a role session's credentials (role chaining): such a session lasts
        /// at most one hour, and so does any session it assumes.
        #[serde(rename = "c", default, skip_serializing_if = "std::ops::Not::not")]
        chained: bool,
    },
    /// A user's temporary credentials (`GetSessionToken`): they act as the user.
    #[serde(rename = "u")]
    User {
        #[serde(rename = "a")]
        user_arn: String,
    },
}

/// The web identity facts of a session: the provider and the token's condition keys
/// (`HOST:sub`, `HOST:aud`, ..., `aws:FederatedProvider`), one or more values each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebIdentityGrant {
    #[serde(rename = "p")]
    pub provider_arn: String,
    #[serde(rename = "k")]
    pub keys: Vec<(String, Vec<String>)>,
}

impl Grant {
    /// The ARN the session acts as: the assumed-role ARN for a role session, the user's
    /// for a user's.
    pub fn arn(&self) -> String {
        match &self.subject {
            Subject::Role {
                role_arn,
                session_name,
                ..
            } => assumed_role_arn(role_arn, session_name),
            Subject::User { user_arn } => user_arn.clone(),
        }
    }
}

/// `arn:aws:sts::ACCT:assumed-role/NAME/SESSION` for a role `arn:aws:iam::ACCT:role/PATH/NAME`
/// (the path is not part of an assumed-role ARN).
pub fn assumed_role_arn(role_arn: &str, session_name: &str) -> String {
    let mut parts = role_arn.splitn(6, ':');
    let partition = parts.nth(1).unwrap_or("aws");
    let account = parts.nth(2).unwrap_or_default();
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn assumed_role_arn_drops_the_path() {
        assert_eq!(
            assumed_role_arn("arn:aws:iam::111122223333:role/team/ci/Deployer", "ci-42"),
            "arn:aws:sts::111122223333:assumed-role/Deployer/ci-42"
        );
    }

    #[test]
    fn a_grant_round_trips_through_json() {
        let g = Grant {
            access_key_id: "ASIAEXAMPLE0000001".into(),
            subject: Subject::Role {
                role_arn: "arn:aws:iam::111122223333:role/R".into(),
                session_name: "s1".into(),
                chained: true,
            },
            issued_at: 1,
            expires_at: 901,
            mfa_at: Some(1),
            policy: Some("{}".into()),
            policy_arns: vec!["arn:aws:iam::111122223333:policy/P".into()],
            tags: vec![("team".into(), "a".into())],
            transitive_tag_keys: vec!["team".into()],
            source_identity: Some("alice".into()),
            web_identity: None,
        };
        let text = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Grant>(&text).unwrap(), g);
    }
}

//! Who is asking: how a request's principal was established. A face turns what it was
//! given (an ARN a trusted service asserts; later a session token, a signature, an OIDC
//! token or a client certificate) into a [`Caller`]; the snapshot resolves the caller to
//! its principal, policies and server-owned keys; nothing else in the pipeline depends on
//! how the caller was established.

use std::sync::Arc;
use std::time::SystemTime;

use crate::compile::PolicySet;

/// How the principal of a request was established.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A principal ARN (an IAM user, a role session or an account root) asserted by a
    /// caller the server trusts to name it: a service asking on behalf of its own user.
    /// A role session named this way carries no session facts (no session policy, no
    /// session tags, no MFA): only the role's own.
    Asserted(String),
    /// An IAM user whose long-term access key (`AKIA...`) the server verified: it decides
    /// as the user, with no session keys (AWS gives long-term keys no
    /// `aws:MultiFactorAuthPresent` nor `aws:TokenIssueTime`).
    AccessKey {
        /// The user's ARN.
        user_arn: String,
        access_key_id: String,
    },
    /// A session whose credentials the server verified (a role session, or a user's from
    /// `GetSessionToken`), with what it carries.
    Session(Arc<Session>),
    /// Credentials a caller presented that are not verified yet (a session token, a
    /// SigV4-signed request). The service verifies them against the deciding snapshot
    /// ([`crate::service::Authenticator`]) before anything reads the caller, and decides
    /// as what they prove; nothing is ever decided for a caller still `Presented`.
    Presented(Arc<Presented>),
}

/// Credentials as a face received them.
#[derive(Clone)]
pub enum Presented {
    /// A session token issued by warden's STS, presented alone (a trusted service
    /// forwarding its caller's token).
    SessionToken(String),
    /// An HTTP request its sender signed with SigV4, with a long-term access key or a
    /// session's credentials.
    Signed(SignedRequest),
}

/// An HTTP request as it was signed: what SigV4 covers.
#[derive(Clone, Default)]
pub struct SignedRequest {
    pub method: String,
    /// The path with its raw query, as sent.
    pub target: String,
    /// Headers as sent, any case; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body, when the face has it (`None`: only a declared payload hash can verify).
    pub body: Option<prost::bytes::Bytes>,
}

impl std::fmt::Debug for Presented {
    /// Credentials are never written out: a session token is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presented::SessionToken(_) => f.write_str("SessionToken(..)"),
            Presented::Signed(r) => f
                .debug_struct("Signed")
                .field("method", &r.method)
                .field("target", &r.target)
                .finish_non_exhaustive(),
        }
    }
}

impl std::fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// The principal's ARN as the caller presents it (a session ARN for a role session).
    pub fn arn(&self) -> &str {
        match self {
            Caller::Asserted(arn) => arn,
            Caller::AccessKey { user_arn, .. } => user_arn,
            Caller::Session(s) => &s.arn,
            Caller::Presented(_) => "",
        }
    }

    /// How it was established, for logs and the decision log.
    pub fn how(&self) -> &'static str {
        match self {
            Caller::Asserted(_) => "asserted",
            Caller::AccessKey { .. } => "access_key",
            Caller::Session(_) => "session",
            Caller::Presented(_) => "presented",
        }
    }
}

/// A verified session (a role session, or a user's temporary credentials): what its
/// credentials say, fixed when they were issued.
#[derive(Debug, Clone)]
pub struct Session {
    /// Unique per issued session (AWS's `ASIA...` access key id). The decision cache keys a
    /// session's decisions by it: two sessions of one role with different session policies
    /// never share a decision, so an id must never name two sessions.
    pub id: String,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`; a user's ARN for a user's
    /// session.
    pub arn: String,
    /// The session policies (the inline policy and the managed ones named at issue),
    /// compiled; `None` when none was passed, so the role's permissions are not capped.
    pub policies: Option<Arc<PolicySet>>,
    /// The managed policy ARNs passed as session policies at issue, as named (the decision
    /// log records them, so that a replay looks them up in another bundle).
    pub policy_arns: Vec<String>,
    /// The inline session policy passed at issue; `None` without one. Kept for the shadow
    /// bundle, which builds the session's policies with its own managed policies.
    pub inline_policy: Option<InlinePolicy>,
    /// Session tags; each overrides the role's tag of the same key (case-insensitively) in
    /// `aws:PrincipalTag/*`.
    pub tags: Vec<(String, String)>,
    /// `aws:SourceIdentity`, kept through role chaining.
    pub source_identity: Option<String>,
    /// `aws:TokenIssueTime`.
    pub issued_at: SystemTime,
    /// After this the session is refused, whatever its policies say.
    pub expires_at: SystemTime,
    /// When the MFA that the session was issued with was authenticated; `None` without MFA
    /// (`aws:MultiFactorAuthPresent` is then `false`, and `aws:MultiFactorAuthAge` absent).
    pub mfa_at: Option<SystemTime>,
    /// For a session from `AssumeRoleWithWebIdentity`: its provider and the token's
    /// condition keys (`HOST:sub`, `HOST:aud`, ..., `aws:FederatedProvider`), which its
    /// requests see as server-owned keys.
    pub web_identity: Option<Arc<crate::oidc::WebIdentity>>,
}

/// A session's inline session policy, as its credentials carried it.
#[derive(Debug, Clone)]
pub enum InlinePolicy {
    Parsed(Arc<crate::policy::Policy>),
    /// It no longer parses (a token of an older server): the session is capped to nothing.
    Refused,
}

impl Session {
    /// The same session as a server serving `snapshot` would build it from the same
    /// credentials: its managed session policies looked up there, its inline policy kept.
    /// For what another bundle would decide (the shadow bundle, a replay).
    ///
    /// INVARIANT (fail closed): as when credentials are opened, a managed policy ARN the
    /// snapshot does not hold, or an inline policy that no longer parses, caps the session
    /// to nothing, never to the role's whole permissions.
    pub fn for_snapshot(&self, snapshot: &crate::snapshot::Snapshot) -> Session {
        let policies = self.policies.as_ref().map(|_| {
            let mut set = Vec::with_capacity(1 + self.policy_arns.len());
            let mut complete = true;
            match &self.inline_policy {
                Some(InlinePolicy::Parsed(p)) => set.push(p.clone()),
                Some(InlinePolicy::Refused) => complete = false,
                None => {}
            }
            for arn in &self.policy_arns {
                match snapshot.managed_policy(arn) {
                    Some(p) => set.push(p.clone()),
                    None => complete = false,
                }
            }
            if !complete {
                set.clear();
            }
            Arc::new(PolicySet::new(set))
        });
        Session {
            policies,
            ..self.clone()
        }
    }
}

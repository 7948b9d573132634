//! What STS decides against a snapshot: `AssumeRole`, `AssumeRoleWithWebIdentity`,
//! `GetSessionToken` and `GetCallerIdentity`, each giving a [`Grant`] (or an identity) or
//! AWS's error; and [`session_caller`], which turns an opened grant back into the
//! [`Session`] the decision path reads, its session policies compiled.
//!
//! `AssumeRole` is decided through the same path as any request ([`Snapshot::decide`]):
//! the role's trust policy is the resource policy of `sts:AssumeRole` (and of
//! `sts:TagSession`, `sts:SetSourceIdentity`) on the role, so the caller's identity
//! policies, boundary, session policies and SCPs take part exactly as AWS's evaluation
//! logic says, same account or cross account.
//!
//! **Revoking a role's sessions** is done as in AWS: attach to the role a policy that
//! denies every request of a session issued before a moment. Sessions issued earlier are
//! refused at once (the deny reads `aws:TokenIssueTime`, which the server fills from the
//! token, never from a caller); new sessions work.
//!
//! ```json
//! {
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Sid": "RevokeOlderSessions",
//!     "Effect": "Deny",
//!     "Action": "*",
//!     "Resource": "*",
//!     "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-05-01T12:00:00Z"}}
//!   }]
//! }
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::caller::{InlinePolicy, Session};
use crate::compile::PolicySet;
use crate::context::{CallerContext, CallerView, Context, ContextValue};
use crate::eval::Decision;
use crate::policy::{self, Policy, PolicyKind};
use crate::request::{Action, parse_resource};
use crate::snapshot::{Question, Snapshot};

use super::error::{Code, StsError};
use super::grant::{Grant, Subject, WebIdentityGrant, assumed_role_arn};

/// Shortest session AWS issues, in seconds.
pub const MIN_DURATION: u32 = 900;
/// `AssumeRole`'s default session, and the longest a chained role session may last.
pub const ROLE_DEFAULT_DURATION: u32 = 3_600;
/// `DurationSeconds`' largest value in AWS's model for the `AssumeRole*` calls.
pub const ROLE_MAX_DURATION: u32 = 43_200;
/// `GetSessionToken`'s default and longest sessions (an account's root: one hour).
pub const USER_DEFAULT_DURATION: u32 = 43_200;
pub const USER_MAX_DURATION: u32 = 129_600;
/// Characters of the inline session policy (AWS's model for `Policy`).
pub const MAX_POLICY_CHARS: usize = 2_048;
/// Managed policy ARNs passed as session policies.
pub const MAX_POLICY_ARNS: usize = 10;
/// Session tags (inherited transitive ones included), and their sizes in characters.
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY: usize = 128;
pub const MAX_TAG_VALUE: usize = 256;
/// The budget the session policies and tags are packed into, in bytes: warden does not
/// compress as AWS does; it counts the minified inline policy, the managed ARNs and the
/// tags' keys and values, and reports the share of this budget as `PackedPolicySize`.
pub const PACKED_BUDGET: usize = 4_096;

/// An MFA device's code, verified by the face (the TOTP check and its replay guard are
/// [`crate::sts::totp`]'s and the secrets store's); here only the fact is used. The
/// device must be the caller's: the face checks that its owner is the calling user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaProof {
    /// `arn:aws:iam::ACCT:mfa/NAME`.
    pub serial: String,
    /// When the code was verified: the session's `aws:MultiFactorAuthAge` counts from it.
    pub authenticated_at: SystemTime,
}

/// An `AssumeRole` call's parameters, as the face read them (AWS's names in comments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssumeRoleInput {
    /// `RoleArn`.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// `DurationSeconds`.
    pub duration: Option<u32>,
    /// `Policy`: the inline session policy's text.
    pub policy: Option<String>,
    /// `PolicyArns.member.N.arn`.
    pub policy_arns: Vec<String>,
    /// `Tags.member.N.Key` / `.Value`.
    pub tags: Vec<(String, String)>,
    /// `TransitiveTagKeys.member.N`.
    pub transitive_tag_keys: Vec<String>,
    /// `ExternalId`.
    pub external_id: Option<String>,
    /// `SourceIdentity`.
    pub source_identity: Option<String>,
    /// `SerialNumber` + `TokenCode`, verified.
    pub mfa: Option<MfaProof>,
}

/// `AssumeRoleWithWebIdentity`'s parameters once the face verified the token's signature
/// and times ([`crate::oidc::Verifier::verify`]).
#[derive(Debug, Clone, Copy)]
pub struct WebIdentityInput<'a> {
    /// The bundle's provider that issued the token.
    pub provider_arn: &'a str,
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub claims: &'a crate::oidc::Claims,
    /// The clock skew the verifier allowed.
    pub skew: Duration,
    pub duration: Option<u32>,
    pub policy: Option<&'a str>,
    pub policy_arns: &'a [String],
}

/// A session issued: the grant to seal into its token, and what AWS's answer adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub grant: Grant,
    /// `PackedPolicySize`: the share (percent) of the packed budget the session policies
    /// and tags use; `None` when none was passed.
    pub packed_policy_percent: Option<u32>,
    /// `AssumedRoleUser.AssumedRoleId`: `AROA...:SESSION` for a role session.
    pub assumed_role_id: Option<String>,
}

/// The caller of an STS call, as the face authenticated it.
#[derive(Debug, Clone, Copy)]
pub enum StsCaller<'a> {
    /// An IAM user (or an account's root) signing with a long-term access key.
    User { arn: &'a str },
    /// Temporary credentials: the grant their session token carries, opened.
    Session(&'a Grant),
    /// No credentials (only `AssumeRoleWithWebIdentity` needs none).
    Anonymous,
    /// An AWS service principal (`ecs-tasks.amazonaws.com`): the sidecar itself, assuming
    /// its workload's role for the container credentials endpoint. Only the role's trust
    /// policy (and its account's RCPs) decides; it passes no tags, policies or MFA.
    Service { name: &'a str },
}

/// `GetCallerIdentity`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    /// The user's ARN, or the assumed-role ARN of a role session.
    pub arn: String,
    /// `AIDA...` for a user, `AROA...:SESSION` for a role session, the account id for root.
    pub user_id: String,
}

// === AssumeRole ===

/// `AssumeRole`: the trust policy of the role must allow the caller, and the caller's
/// own side (identity policies, boundary, session policies, SCPs) must allow
/// `sts:AssumeRole` on the role, unless the trust policy names the caller's user or role
/// ARN in the same account; cross account, both sides always. Passing tags or transitive
/// keys also needs `sts:TagSession`, and a source identity `sts:SetSourceIdentity`,
/// decided the same way. The trust policy sees the caller's own keys (tags, MFA, source
/// identity) and the request's: `sts:RoleSessionName`, `sts:ExternalId`,
/// `sts:TransitiveTagKeys`, `sts:SourceIdentity`, `aws:RequestTag/*`, `aws:TagKeys`.
pub fn assume_role(
    snapshot: &Snapshot,
    caller: &StsCaller<'_>,
    input: &AssumeRoleInput,
    now: SystemTime,
) -> Result<Issued, StsError> {
    // The request's shape first, as AWS validates it before any authorization.
    check_len("roleArn", &input.role_arn, 20, 2_048)?;
    check_session_name(&input.session_name)?;
    if let Some(d) = input.duration {
        check_range("durationSeconds", d, MIN_DURATION, ROLE_MAX_DURATION)?;
    }
    if let Some(id) = &input.external_id {
        check_len("externalId", id, 2, 1_224)?;
        check_pattern("externalId", id, "[\\w+=,.@:\\/-]*", |c| {
            c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)
        })?;
    }
    if let Some(si) = &input.source_identity {
        check_source_identity(si)?;
    }
    let policies = SessionPolicies::check(snapshot, input.policy.as_deref(), &input.policy_arns)?;
    check_tags(&input.tags, &input.transitive_tag_keys)?;

    // Who asks.
    let (caller_arn, parent, chained) = match caller {
        StsCaller::Anonymous => {
            return Err(StsError::new(
                Code::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ));
        }
        StsCaller::User { arn } => (arn.to_string(), None, false),
        StsCaller::Session(g) => {
            let chained = matches!(g.subject, Subject::Role { .. });
            (g.arn(), Some(*g), chained)
        }
        StsCaller::Service { name } => (name.to_string(), None, false),
    };
    let denied = |action: &str| {
        StsError::denied(format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {}",
            input.role_arn
        ))
    };
    let role = snapshot
        .entity(&input.role_arn)
        .filter(|e| e.unique_id.starts_with("AROA"))
        .ok_or_else(|| denied("sts:AssumeRole"))?;

    // How long: the role's maximum, or one hour for a chained session.
    let duration = input.duration.unwrap_or(ROLE_DEFAULT_DURATION);
    if chained && duration > ROLE_DEFAULT_DURATION {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if u64::from(duration) > role.max_session_duration {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }

    // Tags: the caller's transitive tags first, unchangeable; then the request's.
    let (inherited, inherited_keys) = match parent {
        Some(g) => transitive_of(g),
        None => (Vec::new(), Vec::new()),
    };
    let mut tags = inherited.clone();
    for (k, v) in &input.tags {
        match tags.iter().find(|(ik, _)| ik.eq_ignore_ascii_case(k)) {
            Some((ik, iv)) if iv != v => {
                return Err(StsError::new(
                    Code::InvalidParameterValue,
                    format!(
                        "the session tag `{ik}` is transitive from the calling session and cannot be changed"
                    ),
                ));
            }
            Some(_) => {}
            None => tags.push((k.clone(), v.clone())),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(StsError::validation(format!(
            "a session has at most {MAX_TAGS} tags; with the transitive tags of the calling session it would have {}",
            tags.len()
        )));
    }
    let mut transitive_keys = inherited_keys;
    for k in &input.transitive_tag_keys {
        // Only a key of a tag passed in this call: a dangling key would name nothing.
        let Some((tk, _)) = input.tags.iter().find(|(t, _)| t.eq_ignore_ascii_case(k)) else {
            continue;
        };
        if !transitive_keys.iter().any(|t| t.eq_ignore_ascii_case(tk)) {
            transitive_keys.push(tk.clone());
        }
    }

    // Source identity: set once, kept through chaining.
    let parent_si = parent.and_then(|g| g.source_identity.clone());
    if let (Some(old), Some(new)) = (&parent_si, &input.source_identity)
        && old != new
    {
        return Err(StsError::new(
            Code::InvalidParameterValue,
            format!(
                "the source identity of the calling session is `{old}`; it cannot be changed to `{new}`"
            ),
        ));
    }
    let source_identity = parent_si.or_else(|| input.source_identity.clone());

    // The request's keys, as the trust and identity policies see them.
    let mut keys = Context::new();
    let single = |s: &str| ContextValue::Single(s.to_owned());
    keys.insert("sts:RoleSessionName", single(&input.session_name));
    if let Some(id) = &input.external_id {
        keys.insert("sts:ExternalId", single(id));
    }
    if let Some(si) = &input.source_identity {
        keys.insert("sts:SourceIdentity", single(si));
    }
    if !input.transitive_tag_keys.is_empty() {
        keys.insert(
            "sts:TransitiveTagKeys",
            ContextValue::Multi(input.transitive_tag_keys.clone()),
        );
    }
    if !input.tags.is_empty() {
        for (k, v) in &input.tags {
            keys.insert(&format!("aws:RequestTag/{k}"), single(v));
        }
        keys.insert(
            "aws:TagKeys",
            ContextValue::Multi(input.tags.iter().map(|(k, _)| k.clone()).collect()),
        );
    }
    let context = CallerContext::screen(keys, |_| {});

    // The decision: a service principal's by the trust policy alone; any other caller's
    // through the path every request takes.
    if let StsCaller::Service { name } = caller {
        if !input.tags.is_empty()
            || !input.transitive_tag_keys.is_empty()
            || input.source_identity.is_some()
            || input.mfa.is_some()
        {
            return Err(StsError::validation(
                "a service principal's session takes no tags, source identity or MFA",
            ));
        }
        snapshot
            .service_may_assume(name, &input.role_arn, &input.session_name, now)
            .map_err(|m| {
                tracing::debug!(role = input.role_arn, "{m}");
                denied("sts:AssumeRole")
            })?;
    } else {
        authorize_assume(snapshot, &caller_arn, parent, input, &context, now).map_err(denied)?;
    }

    let packed = packed_percent(&policies, &tags)?;
    let issued_at = secs(now);
    let mfa_at = input
        .mfa
        .as_ref()
        .map(|m| secs(m.authenticated_at))
        .or_else(|| parent.and_then(|g| g.mfa_at));
    let grant = Grant {
        access_key_id: new_access_key_id()?,
        subject: Subject::Role {
            role_arn: role.arn.to_owned(),
            session_name: input.session_name.clone(),
            chained,
        },
        issued_at,
        expires_at: issued_at + u64::from(duration),
        mfa_at,
        policy: policies.minified,
        policy_arns: input.policy_arns.clone(),
        tags,
        transitive_tag_keys: transitive_keys,
        source_identity,
        web_identity: None,
    };
    Ok(Issued {
        grant,
        packed_policy_percent: packed,
        assumed_role_id: Some(format!("{}:{}", role.unique_id, input.session_name)),
    })
}

/// The caller's side and the trust policy, through the path every request takes:
/// `sts:AssumeRole` on the role, and `sts:TagSession` / `sts:SetSourceIdentity` when the
/// call uses them. `Err` names the first action not allowed.
fn authorize_assume(
    snapshot: &Snapshot,
    caller_arn: &str,
    parent: Option<&Grant>,
    input: &AssumeRoleInput,
    context: &CallerContext,
    now: SystemTime,
) -> Result<(), &'static str> {
    let caller_session = match parent {
        Some(g) => Some(session_caller(snapshot, g).map_err(|_| "sts:AssumeRole")?),
        None => None,
    };
    let mut who = snapshot
        .resolve(caller_arn, caller_session.as_deref(), now)
        .map_err(|_| "sts:AssumeRole")?
        .ok_or("sts:AssumeRole")?;
    if let Some(m) = &input.mfa {
        // The MFA presented with this call, over any the calling session carries.
        who.insert_own_key(
            "aws:MultiFactorAuthPresent",
            ContextValue::Single("true".into()),
        );
        let age = now
            .duration_since(m.authenticated_at)
            .map_or(0, |d| d.as_secs());
        who.insert_own_key(
            "aws:MultiFactorAuthAge",
            ContextValue::Single(age.to_string()),
        );
    }
    let resource_arn = parse_resource(&input.role_arn).map_err(|_| "sts:AssumeRole")?;
    let mut actions = vec!["sts:AssumeRole"];
    if !input.tags.is_empty() || !input.transitive_tag_keys.is_empty() {
        actions.push("sts:TagSession");
    }
    if input.source_identity.is_some() {
        actions.push("sts:SetSourceIdentity");
    }
    for name in actions {
        let action = Action::parse(name).map_err(|_| name)?;
        let q = Question {
            action: &action,
            resource: &input.role_arn,
            resource_arn,
            context: CallerView::of(context),
        };
        let (auth, _) = snapshot.decide(&who, &q, now, false);
        if auth.outcome.decision != Decision::Allow {
            return Err(name);
        }
    }

    Ok(())
}

/// Whether `caller_arn` (a user, an account's root, or a role session, asserted as the
/// request path asserts it: no tags) may call `AssumeRole` on `role_arn` with the session
/// name `session_name` and nothing else, presenting an MFA code just verified when `mfa`
/// is set: the decision [`assume_role`] makes, by the same [`authorize_assume`], for
/// reverse queries (who may become a role).
pub fn may_assume(
    snapshot: &Snapshot,
    caller_arn: &str,
    role_arn: &str,
    session_name: &str,
    mfa: bool,
    now: SystemTime,
) -> bool {
    let input = AssumeRoleInput {
        role_arn: role_arn.to_owned(),
        session_name: session_name.to_owned(),
        mfa: mfa.then(|| MfaProof {
            serial: String::new(),
            authenticated_at: now,
        }),
        ..AssumeRoleInput::default()
    };
    let mut keys = Context::new();
    keys.insert(
        "sts:RoleSessionName",
        ContextValue::Single(session_name.to_owned()),
    );
    let context = CallerContext::screen(keys, |_| {});
    snapshot
        .entity(role_arn)
        .is_some_and(|e| e.unique_id.starts_with("AROA"))
        && authorize_assume(snapshot, caller_arn, None, &input, &context, now).is_ok()
}

/// The tags of `g` that pass on to a session it assumes, and their keys.
fn transitive_of(g: &Grant) -> (Vec<(String, String)>, Vec<String>) {
    let tags: Vec<(String, String)> = g
        .tags
        .iter()
        .filter(|(k, _)| {
            g.transitive_tag_keys
                .iter()
                .any(|t| t.eq_ignore_ascii_case(k))
        })
        .cloned()
        .collect();
    let keys = tags.iter().map(|(k, _)| k.clone()).collect();
    (tags, keys)
}

// === AssumeRoleWithWebIdentity ===

/// `AssumeRoleWithWebIdentity`: the role's trust policy decides for the provider as a
/// `Federated` principal with the token's keys ([`Snapshot::assume_role_with_web_identity`]);
/// the session lasts `DurationSeconds` (default one hour, at most the role's maximum),
/// carries the token's keys and the session policies passed.
pub fn assume_role_with_web_identity(
    snapshot: &Snapshot,
    input: &WebIdentityInput<'_>,
    now: SystemTime,
) -> Result<Issued, StsError> {
    check_len("roleArn", input.role_arn, 20, 2_048)?;
    check_session_name(input.session_name)?;
    if let Some(d) = input.duration {
        check_range("durationSeconds", d, MIN_DURATION, ROLE_MAX_DURATION)?;
    }
    let policies = SessionPolicies::check(snapshot, input.policy, input.policy_arns)?;
    let session = snapshot
        .assume_role_with_web_identity(
            input.provider_arn,
            input.role_arn,
            input.session_name,
            input.claims,
            (now, input.skew),
        )
        .map_err(|e| match e.code {
            "denied" | "unknown_role" => StsError::denied(format!(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity ({})",
                e.message
            )),
            "expired" => StsError::new(Code::ExpiredToken, "Token is expired"),
            "invalid_session_name" => StsError::validation(e.message),
            "unknown_provider" => StsError::new(Code::InvalidIdentityToken, e.message),
            _ => StsError::new(Code::InvalidIdentityToken, e.message),
        })?;
    let role = snapshot.entity(input.role_arn).ok_or_else(|| {
        StsError::denied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
    })?;
    let duration = input.duration.unwrap_or(ROLE_DEFAULT_DURATION);
    if u64::from(duration) > role.max_session_duration {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    let packed = packed_percent(&policies, &[])?;
    let web_identity = session.web_identity.as_ref().map(|w| WebIdentityGrant {
        provider_arn: w.provider_arn.clone(),
        keys: w
            .keys
            .iter()
            .map(|(k, v)| (k.to_owned(), v.values().to_vec()))
            .collect(),
    });
    let issued_at = secs(now);
    Ok(Issued {
        grant: Grant {
            access_key_id: new_access_key_id()?,
            subject: Subject::Role {
                role_arn: role.arn.to_owned(),
                session_name: input.session_name.to_owned(),
                chained: false,
            },
            issued_at,
            expires_at: issued_at + u64::from(duration),
            mfa_at: None,
            policy: policies.minified,
            policy_arns: input.policy_arns.to_vec(),
            tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            web_identity,
        },
        packed_policy_percent: packed,
        assumed_role_id: Some(format!("{}:{}", role.unique_id, input.session_name)),
    })
}

// === GetSessionToken and GetCallerIdentity ===

/// `GetSessionToken`: a user's temporary credentials, acting as the user (optionally
/// with MFA). AWS requires no permission for it; only long-term credentials may call it
/// (a session's are refused), for 900 s to 36 h (an account's root: at most one hour).
pub fn get_session_token(
    snapshot: &Snapshot,
    caller: &StsCaller<'_>,
    duration: Option<u32>,
    mfa: Option<&MfaProof>,
    now: SystemTime,
) -> Result<Issued, StsError> {
    let arn = match caller {
        StsCaller::User { arn } => *arn,
        StsCaller::Session(_) => {
            return Err(StsError::denied(
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        StsCaller::Service { .. } => {
            return Err(StsError::denied(
                "GetSessionToken is for IAM users' long-term credentials",
            ));
        }
        StsCaller::Anonymous => {
            return Err(StsError::new(
                Code::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ));
        }
    };
    if let Some(d) = duration {
        check_range("durationSeconds", d, MIN_DURATION, USER_MAX_DURATION)?;
    }
    let root = arn.ends_with(":root");
    let duration = match (duration, root) {
        (Some(d), true) if d > ROLE_DEFAULT_DURATION => {
            return Err(StsError::validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for the root user.",
            ));
        }
        (Some(d), _) => d,
        (None, true) => ROLE_DEFAULT_DURATION,
        (None, false) => USER_DEFAULT_DURATION,
    };
    if !root
        && snapshot
            .entity(arn)
            .is_none_or(|e| !e.unique_id.starts_with("AIDA"))
    {
        return Err(StsError::denied(format!(
            "User: {arn} is not authorized to perform: sts:GetSessionToken"
        )));
    }
    let issued_at = secs(now);
    Ok(Issued {
        grant: Grant {
            access_key_id: new_access_key_id()?,
            subject: Subject::User {
                user_arn: arn.to_owned(),
            },
            issued_at,
            expires_at: issued_at + u64::from(duration),
            mfa_at: mfa.map(|m| secs(m.authenticated_at)),
            policy: None,
            policy_arns: Vec::new(),
            tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            web_identity: None,
        },
        packed_policy_percent: None,
        assumed_role_id: None,
    })
}

/// `GetCallerIdentity`: who the credentials are. Needs no permission; refused only
/// without credentials.
pub fn caller_identity(
    snapshot: &Snapshot,
    caller: &StsCaller<'_>,
) -> Result<CallerIdentity, StsError> {
    let account_of = |arn: &str| arn.split(':').nth(4).unwrap_or_default().to_owned();
    let id_of = |arn: &str| {
        snapshot
            .entity(arn)
            .map(|e| e.unique_id.to_owned())
            .unwrap_or_else(|| account_of(arn))
    };
    match caller {
        StsCaller::Anonymous | StsCaller::Service { .. } => Err(StsError::new(
            Code::MissingAuthenticationToken,
            "Request is missing Authentication Token",
        )),
        StsCaller::User { arn } => Ok(CallerIdentity {
            account: account_of(arn),
            arn: (*arn).to_owned(),
            user_id: id_of(arn),
        }),
        StsCaller::Session(g) => {
            let (arn, user_id) = match &g.subject {
                Subject::User { user_arn } => (user_arn.clone(), id_of(user_arn)),
                Subject::Role {
                    role_arn,
                    session_name,
                    ..
                } => (
                    assumed_role_arn(role_arn, session_name),
                    format!("{}:{session_name}", id_of(role_arn)),
                ),
            };
            Ok(CallerIdentity {
                account: account_of(&arn),
                arn,
                user_id,
            })
        }
    }
}

// === Sessions as callers ===

/// An opened grant as a decision caller: its session policies compiled (the inline text,
/// and the managed ARNs looked up in `snapshot`) and its facts as a [`Session`], whose id
/// is the grant's access key id.
///
/// INVARIANT (fail closed): session policies only ever narrow. A managed ARN the snapshot
/// no longer holds, or an inline policy that no longer compiles, caps the session to
/// nothing (an empty session policy set), never to the role's whole permissions.
pub fn session_caller(snapshot: &Snapshot, grant: &Grant) -> Result<Arc<Session>, StsError> {
    // Sealed by the server, but a token of an older or other server is still input.
    let oversized = grant
        .policy
        .as_ref()
        .is_some_and(|p| p.len() > MAX_POLICY_CHARS * 4)
        || grant.policy_arns.len() > MAX_POLICY_ARNS
        || grant.tags.len() > MAX_TAGS
        || grant.transitive_tag_keys.len() > MAX_TAGS;
    if oversized {
        return Err(StsError::new(
            Code::InvalidClientTokenId,
            "The security token included in the request is invalid",
        ));
    }
    let mut inline_policy = None;
    let policies = if grant.policy.is_none() && grant.policy_arns.is_empty() {
        None
    } else {
        let mut set: Vec<Arc<Policy>> = Vec::with_capacity(1 + grant.policy_arns.len());
        let mut complete = true;
        if let Some(text) = &grant.policy {
            match policy::parse_text(text, PolicyKind::Session, "session-policy").policy {
                Some(p) => {
                    let p = Arc::new(p);
                    inline_policy = Some(InlinePolicy::Parsed(p.clone()));
                    set.push(p);
                }
                None => {
                    inline_policy = Some(InlinePolicy::Refused);
                    complete = false;
                }
            }
        }
        for arn in &grant.policy_arns {
            match snapshot.managed_policy(arn) {
                Some(p) => set.push(p.clone()),
                None => complete = false,
            }
        }
        if !complete {
            tracing::warn!(
                access_key_id = %grant.access_key_id,
                "a session policy of the session is not in the snapshot: the session is capped to nothing"
            );
            set.clear();
        }
        Some(Arc::new(PolicySet::new(set)))
    };
    let web_identity = grant.web_identity.as_ref().map(|w| {
        let mut keys = Context::new();
        for (k, v) in &w.keys {
            keys.insert(k, web_identity_value(k, v));
        }
        Arc::new(crate::oidc::WebIdentity {
            provider_arn: w.provider_arn.clone(),
            keys,
        })
    });
    Ok(Arc::new(Session {
        id: grant.access_key_id.clone(),
        arn: grant.arn(),
        policies,
        policy_arns: grant.policy_arns.clone(),
        inline_policy,
        tags: grant.tags.clone(),
        source_identity: grant.source_identity.clone(),
        issued_at: UNIX_EPOCH + Duration::from_secs(grant.issued_at),
        expires_at: UNIX_EPOCH + Duration::from_secs(grant.expires_at),
        mfa_at: grant.mfa_at.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        web_identity,
    }))
}

/// A web identity key's value as [`crate::oidc::web_identity_keys`] made it: `HOST:oaud`
/// and `HOST:amr` are multi-valued, every other key single-valued (a grant keeps the
/// values only, and a condition reads a one-value list differently from a single value).
fn web_identity_value(key: &str, values: &[String]) -> ContextValue {
    let multi = key.ends_with(":oaud") || key.ends_with(":amr");
    match values {
        [one] if !multi => ContextValue::Single(one.clone()),
        _ => ContextValue::Multi(values.to_vec()),
    }
}

/// [`session_caller`] with a bounded cache by access key id and snapshot revision:
/// compiling a session's policies per request would cost more than deciding it.
pub struct SessionCallers {
    /// By (access key id, snapshot revision): the grant a session was built from, kept
    /// so that a hit serves only that very grant, and the session.
    cache: quick_cache::sync::Cache<SessionKey, (Arc<Grant>, Arc<Session>)>,
}

/// An access key id and a snapshot revision.
type SessionKey = (Box<str>, u64);

impl SessionCallers {
    pub fn new(capacity: usize) -> SessionCallers {
        SessionCallers {
            cache: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// The session of `grant` under `snapshot`, compiled once per revision. A cached
    /// entry serves only the very grant it was built from.
    pub fn get(&self, snapshot: &Snapshot, grant: &Grant) -> Result<Arc<Session>, StsError> {
        let key = (
            Box::<str>::from(grant.access_key_id.as_str()),
            snapshot.revision(),
        );
        if let Some((g, s)) = self.cache.get(&key)
            && *g == *grant
        {
            return Ok(s);
        }
        let session = session_caller(snapshot, grant)?;
        self.cache
            .insert(key, (Arc::new(grant.clone()), session.clone()));
        Ok(session)
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

// === Validation ===

/// An inline session policy as STS checks it (`Policy` of `AssumeRole*`): at most
/// [`MAX_POLICY_CHARS`] characters, a valid session policy; the parsed policy.
pub fn session_policy(t: &str) -> Result<policy::Policy, StsError> {
    // Counted before anything is parsed: every input is hostile.
    let chars = t.chars().count();
    if chars == 0 || chars > MAX_POLICY_CHARS {
        return Err(StsError::validation(format!(
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length {}",
            if chars == 0 {
                "greater than or equal to 1".to_owned()
            } else {
                format!("less than or equal to {MAX_POLICY_CHARS}")
            }
        )));
    }
    let parsed = policy::parse_text(t, PolicyKind::Session, "session-policy");
    if let Some(f) = parsed.errors().next() {
        return Err(StsError::new(
            Code::MalformedPolicyDocument,
            format!("the session policy is not valid: {f}"),
        ));
    }
    parsed.policy.ok_or_else(|| {
        StsError::new(
            Code::MalformedPolicyDocument,
            "the session policy is not valid",
        )
    })
}

/// The session policies of a call, checked: the inline text compiled as AWS validates an
/// identity policy, and the managed ARNs found in the snapshot.
struct SessionPolicies {
    /// The inline policy, minified.
    minified: Option<String>,
    arns_len: usize,
}

impl SessionPolicies {
    fn check(
        snapshot: &Snapshot,
        text: Option<&str>,
        arns: &[String],
    ) -> Result<SessionPolicies, StsError> {
        if arns.len() > MAX_POLICY_ARNS {
            return Err(StsError::validation(format!(
                "1 validation error detected: Value '[...]' at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to {MAX_POLICY_ARNS}"
            )));
        }
        for arn in arns {
            check_len("policyArns.member.arn", arn, 20, 2_048)?;
            if snapshot.managed_policy(arn).is_none() {
                return Err(StsError::new(
                    Code::InvalidParameterValue,
                    format!("the managed policy `{arn}` does not exist"),
                ));
            }
        }
        let minified = match text {
            None => None,
            Some(t) => {
                session_policy(t)?;
                let value: serde_json::Value = serde_json::from_str(t)
                    .map_err(|e| StsError::new(Code::MalformedPolicyDocument, format!("{e}")))?;
                Some(value.to_string())
            }
        };
        Ok(SessionPolicies {
            minified,
            arns_len: arns.iter().map(String::len).sum(),
        })
    }
}

/// `PackedPolicySize` of the session policies and tags, refused above 100 % as AWS
/// refuses it (`PackedPolicyTooLarge`); `None` when nothing was passed.
fn packed_percent(p: &SessionPolicies, tags: &[(String, String)]) -> Result<Option<u32>, StsError> {
    let bytes = p.minified.as_ref().map_or(0, String::len)
        + p.arns_len
        + tags.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if p.minified.is_none() && p.arns_len == 0 && tags.is_empty() {
        return Ok(None);
    }
    let percent = bytes.saturating_mul(100).div_ceil(PACKED_BUDGET);
    let percent = u32::try_from(percent).unwrap_or(u32::MAX);
    if percent > 100 {
        return Err(StsError::new(
            Code::PackedPolicyTooLarge,
            format!(
                "Packed policy consumes {percent}% of allotted space, please use smaller policy."
            ),
        ));
    }
    Ok(Some(percent))
}

/// AWS's validation message for one parameter.
fn constraint(field: &str, value: &str, what: &str) -> StsError {
    let shown: String = value.chars().take(128).collect();
    StsError::validation(format!(
        "1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: {what}"
    ))
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), StsError> {
    let n = value.chars().count();
    if n < min {
        return Err(constraint(
            field,
            value,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(constraint(
            field,
            value,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

fn check_pattern(
    field: &str,
    value: &str,
    pattern: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), StsError> {
    if value.chars().all(allowed) {
        Ok(())
    } else {
        Err(constraint(
            field,
            value,
            &format!("Member must satisfy regular expression pattern: {pattern}"),
        ))
    }
}

fn check_range(field: &str, value: u32, min: u32, max: u32) -> Result<(), StsError> {
    let shown = value.to_string();
    if value < min {
        return Err(constraint(
            field,
            &shown,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(constraint(
            field,
            &shown,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A character of a role session name or a source identity (`[\w+=,.@-]`).
pub fn session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// `RoleSessionName`: `[\w+=,.@-]{2,64}`.
fn check_session_name(name: &str) -> Result<(), StsError> {
    check_len("roleSessionName", name, 2, 64)?;
    check_pattern("roleSessionName", name, "[\\w+=,.@-]*", session_name_char)
}

/// `SourceIdentity`: `[\w+=,.@-]{2,64}`, and not starting with `aws:` (AWS reserves it).
pub fn check_source_identity(si: &str) -> Result<(), StsError> {
    check_len("sourceIdentity", si, 2, 64)?;
    check_pattern("sourceIdentity", si, "[\\w+=,.@-]*", session_name_char)?;
    if si
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case("aws:"))
    {
        return Err(StsError::validation(
            "the source identity cannot start with `aws:`",
        ));
    }
    Ok(())
}

/// A character of a tag key or value as IAM and STS allow them (`[\p{L}\p{Z}\p{N}_.:/=+\-@]`).
pub fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// Tag keys and values as IAM and STS allow them (`[\p{L}\p{Z}\p{N}_.:/=+\-@]`), a key at
/// most once (case-insensitively), and the transitive keys' count.
pub fn check_tags(tags: &[(String, String)], transitive: &[String]) -> Result<(), StsError> {
    const PATTERN: &str = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*";
    if tags.len() > MAX_TAGS {
        return Err(constraint(
            "tags",
            "[...]",
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    if transitive.len() > MAX_TAGS {
        return Err(constraint(
            "transitiveTagKeys",
            "[...]",
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        check_len("tags.member.key", k, 1, MAX_TAG_KEY)?;
        check_pattern("tags.member.key", k, PATTERN, tag_char)?;
        check_len("tags.member.value", v, 0, MAX_TAG_VALUE)?;
        check_pattern("tags.member.value", v, PATTERN, tag_char)?;
        if tags
            .iter()
            .take(i)
            .any(|(other, _)| other.eq_ignore_ascii_case(k))
        {
            return Err(StsError::new(
                Code::InvalidParameterValue,
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    for k in transitive {
        check_len("transitiveTagKeys.member", k, 1, MAX_TAG_KEY)?;
        check_pattern("transitiveTagKeys.member", k, PATTERN, tag_char)?;
    }
    Ok(())
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A temporary access key id: `ASIA` and 16 characters of AWS's alphabet (`A-Z2-7`), from
/// the system's secure random source; an id must never name two sessions, so a random
/// source that fails refuses the call rather than falling back to a guessable one.
// The key ring's module may offer the same (`token::new_access_key_id`); this one keeps
// the issuing path free of it.
fn new_access_key_id() -> Result<String, StsError> {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StsError::new(Code::InternalFailure, "no random source"))?;
    let mut id = String::with_capacity(20);
    id.push_str("ASIA");
    for b in bytes {
        let c = ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'A');
        id.push(char::from(c));
    }
    Ok(id)
}

#[cfg(test)]
mod tests;

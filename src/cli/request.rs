//! What `warden authorize` and `warden check` share: the flags of one request, and how a
//! decision is printed (for people, or as JSON with `--json`). Both print the same
//! response, so an offline answer and a server's read alike. The session flags are
//! `warden authorize`'s alone: a server decides only sessions whose credentials it
//! verified, and `warden check` has no way to assert one.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use warden::caller::{InlinePolicy, Session};
use warden::context::Context;
use warden::grpc::pb;

/// The flags of one request.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The principal's ARN: an IAM user (`arn:aws:iam::ACCOUNT:user/NAME`), a role session
    /// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) or an account root.
    #[arg(long)]
    pub principal: String,
    /// `service:Action`, e.g. `orders:GetOrder`.
    #[arg(long)]
    pub action: String,
    /// The resource's ARN, or `*`.
    #[arg(long)]
    pub resource: String,
    /// A context entry `key=value`; repeat a key for a list (`aws:TagKeys=a --context aws:TagKeys=b`).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Show every layer and statement, matched or not.
    #[arg(long)]
    pub explain: bool,
    /// Print the response as JSON.
    #[arg(long)]
    pub json: bool,
}

impl RequestArgs {
    /// The context the flags give.
    pub fn context(&self) -> anyhow::Result<Context> {
        Context::from_pairs(&self.context).map_err(anyhow::Error::msg)
    }
}

/// A verified session given offline (`warden authorize` only): the facts its credentials
/// would carry, checked as warden's STS checks them when it issues a session. Any of
/// them makes the caller a session; without them the principal is asserted, with none.
#[derive(Debug, Default, clap::Args)]
pub struct SessionArgs {
    /// Decide as a session whose MFA was authenticated SECONDS ago
    /// (`aws:MultiFactorAuthPresent` true, `aws:MultiFactorAuthAge` SECONDS).
    // A negative number is read as the flag's value, and refused naming it.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub mfa_age: Option<u64>,
    /// A session tag `key=value` (`aws:PrincipalTag/key`, over the principal's own tag);
    /// repeat for more. A role session's only.
    #[arg(
        long = "session-tag",
        value_name = "KEY=VALUE",
        allow_hyphen_values = true
    )]
    pub session_tags: Vec<String>,
    /// The session's source identity (`aws:SourceIdentity`). A role session's only.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub source_identity: Option<String>,
    /// When the session was issued (`aws:TokenIssueTime`), e.g. `2026-12-01T22:18:15Z`
    /// [default: now].
    #[arg(long, value_name = "RFC3339")]
    pub issued_at: Option<String>,
    /// An inline session policy (JSON) the session was issued with; it caps what the
    /// role's policies allow. A role session's only.
    #[arg(long, value_name = "JSON")]
    pub session_policy: Option<String>,
}

impl SessionArgs {
    /// Whether any session flag is given.
    pub fn given(&self) -> bool {
        self.mfa_age.is_some()
            || !self.session_tags.is_empty()
            || self.source_identity.is_some()
            || self.issued_at.is_some()
            || self.session_policy.is_some()
    }

    /// The flags that are given, by name, for messages.
    fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (given, name) in [
            (self.mfa_age.is_some(), "--mfa-age"),
            (!self.session_tags.is_empty(), "--session-tag"),
            (self.source_identity.is_some(), "--source-identity"),
            (self.issued_at.is_some(), "--issued-at"),
            (self.session_policy.is_some(), "--session-policy"),
        ] {
            if given {
                out.push(name);
            }
        }
        out
    }

    /// The session the flags give `principal` at `now` (`None` without any), validated
    /// as STS validates what it puts in a session: tags (at most 50, keys and values of
    /// IAM's characters and lengths, no key twice), the source identity's name, the
    /// session policy's length and grammar. A user's session (`GetSessionToken`) carries
    /// MFA and its issue time only.
    pub fn session(&self, principal: &str, now: SystemTime) -> anyhow::Result<Option<Session>> {
        use warden::sts::assume;
        if !self.given() {
            return Ok(None);
        }
        let flags = self.names().join("`, `");
        let role = match warden::arn::Arn::parse(principal) {
            Some(a) if a.service == "sts" && a.resource.starts_with("assumed-role/") => true,
            Some(a) if a.service == "iam" && a.resource.starts_with("user/") => false,
            _ => {
                bail!("`{flags}`: only a user or a role session holds a session, not `{principal}`")
            }
        };
        if !role {
            for (given, name) in [
                (!self.session_tags.is_empty(), "--session-tag"),
                (self.source_identity.is_some(), "--source-identity"),
                (self.session_policy.is_some(), "--session-policy"),
            ] {
                if given {
                    bail!(
                        "`{name}`: a user's session (`GetSessionToken`) carries MFA and its issue time only"
                    );
                }
            }
        }
        let mut tags = Vec::with_capacity(self.session_tags.len());
        for t in &self.session_tags {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| anyhow!("`--session-tag`: expected `KEY=VALUE`, got `{t}`"))?;
            tags.push((k.to_owned(), v.to_owned()));
        }
        assume::check_tags(&tags, &[]).map_err(|e| anyhow!("`--session-tag`: {}", e.message))?;
        if let Some(si) = &self.source_identity {
            assume::check_source_identity(si)
                .map_err(|e| anyhow!("`--source-identity`: {}", e.message))?;
        }
        let inline = self
            .session_policy
            .as_deref()
            .map(|text| {
                assume::session_policy(text)
                    .map(Arc::new)
                    .map_err(|e| anyhow!("`--session-policy`: {}", e.message))
            })
            .transpose()?;
        let issued_at = match &self.issued_at {
            None => now,
            Some(text) => {
                let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
                    anyhow!(
                        "`--issued-at`: `{text}` is not an RFC 3339 time (e.g. `2026-12-01T22:18:15Z`)"
                    )
                })?;
                let t = SystemTime::from(t);
                if t > now {
                    bail!("`--issued-at`: `{text}` is in the future");
                }
                t
            }
        };
        let mfa_at = match self.mfa_age {
            None => None,
            Some(age) => Some(
                now.checked_sub(Duration::from_secs(age))
                    .filter(|t| *t >= UNIX_EPOCH)
                    .ok_or_else(|| anyhow!("`--mfa-age`: {age} seconds ago is before 1970"))?,
            ),
        };
        Ok(Some(Session {
            id: "offline".to_owned(),
            arn: principal.to_owned(),
            policies: inline
                .as_ref()
                .map(|p| Arc::new(warden::compile::PolicySet::new(vec![p.clone()]))),
            policy_arns: Vec::new(),
            inline_policy: inline.map(InlinePolicy::Parsed),
            tags,
            source_identity: self.source_identity.clone(),
            issued_at,
            // An offline session asks what its facts decide, whenever it was issued.
            expires_at: UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)),
            mfa_at,
            web_identity: None,
        }))
    }
}

/// Prints a response and returns the exit status: 0 for Allow, 1 for a deny. A closed
/// standard output ends the command quietly.
pub fn print(response: &pb::AuthorizeResponse, json: bool) -> anyhow::Result<ExitCode> {
    let text = if json {
        format!("{}\n", response_json(response))
    } else {
        describe(response)
    };
    super::write_stdout(text.as_bytes())?;
    Ok(if response.decision() == pb::Decision::Allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn decision_name(d: pb::Decision) -> &'static str {
    match d {
        pb::Decision::Allow => "Allow",
        pb::Decision::ExplicitDeny => "ExplicitDeny",
        pb::Decision::ImplicitDeny => "ImplicitDeny",
        pb::Decision::Unspecified => "Unspecified",
    }
}

fn statement_line(s: &pb::Statement) -> String {
    let place = if s.sid.is_empty() {
        format!("Statement[{}]", s.index)
    } else {
        format!("Sid {}", s.sid)
    };
    let level = s.level.map(|l| format!(" level {l}")).unwrap_or_default();
    format!("{}{level} {} {place}", s.kind, s.policy)
}

/// A response for people: the decision, its reason, the deciding statements, and the
/// explanation when there is one.
fn describe(r: &pb::AuthorizeResponse) -> String {
    use std::fmt::Write;
    let mut out = format!("{} ({})", decision_name(r.decision()), r.reason);
    let _ = write!(
        out,
        " at revision {}, decision {}",
        r.revision, r.decision_id
    );
    out.push('\n');
    if !r.denied_by.is_empty() {
        let _ = writeln!(out, "  decided by: {}", r.denied_by);
    }
    for s in &r.statements {
        let _ = writeln!(out, "  {}: {}", effect_name(s.effect()), statement_line(s));
    }
    if let Some(e) = &r.explanation {
        for layer in &e.layers {
            let level = layer
                .level
                .map(|l| format!(" level {l}"))
                .unwrap_or_default();
            let result = match layer.result() {
                pb::LayerResult::LayerAllow => "Allow",
                pb::LayerResult::LayerDeny => "Deny",
                pb::LayerResult::LayerNoMatch => "NoMatch",
                pb::LayerResult::Unspecified => "Unspecified",
            };
            let _ = writeln!(out, "{}{level}: {result}", layer.kind);
            for s in &layer.statements {
                let place = if s.sid.is_empty() {
                    format!("Statement[{}]", s.index)
                } else {
                    format!("Sid {}", s.sid)
                };
                let why = match s.mismatch() {
                    _ if s.matched => "matched".to_owned(),
                    pb::Mismatch::Action => "action does not match".to_owned(),
                    pb::Mismatch::Resource => "resource does not match".to_owned(),
                    pb::Mismatch::Principal => "principal does not match".to_owned(),
                    pb::Mismatch::Condition => {
                        format!("condition on `{}` does not hold", s.condition_key)
                    }
                    pb::Mismatch::Unspecified => "did not match".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "  {} {} {place}: {why}",
                    effect_name(s.effect()),
                    s.policy
                );
            }
        }
    }
    out
}

fn effect_name(e: pb::Effect) -> &'static str {
    match e {
        pb::Effect::Allow => "Allow",
        pb::Effect::Deny => "Deny",
        pb::Effect::Unspecified => "Unspecified",
    }
}

/// A response as JSON, with enum values by name.
fn response_json(r: &pb::AuthorizeResponse) -> serde_json::Value {
    use serde_json::json;
    let statements: Vec<_> = r
        .statements
        .iter()
        .map(|s| {
            json!({"kind": s.kind, "level": s.level, "policy": s.policy, "index": s.index,
                   "sid": s.sid, "effect": effect_name(s.effect())})
        })
        .collect();
    let explanation = r.explanation.as_ref().map(|e| {
        e.layers
            .iter()
            .map(|l| {
                let statements: Vec<_> = l
                    .statements
                    .iter()
                    .map(|s| {
                        json!({"policy": s.policy, "index": s.index, "sid": s.sid,
                               "effect": effect_name(s.effect()), "matched": s.matched,
                               "mismatch": s.mismatch().as_str_name(),
                               "condition_key": s.condition_key})
                    })
                    .collect();
                json!({"kind": l.kind, "level": l.level,
                       "result": l.result().as_str_name(), "statements": statements})
            })
            .collect::<Vec<_>>()
    });
    json!({
        "decision": decision_name(r.decision()),
        "reason": r.reason,
        "denied_by": r.denied_by,
        "statements": statements,
        "revision": r.revision,
        "decision_id": r.decision_id,
        "explanation": explanation,
    })
}

//! What `warden authorize` and `warden check` share: the flags of one request, and how a
//! decision is printed (for people, or as JSON with `--json`). Both print the same
//! response, so an offline answer and a server's read alike.

use std::process::ExitCode;

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

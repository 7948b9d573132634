//! Evaluation cases: a request with every policy that applies given inline, as in
//! `tests/conformance/*.jsonl` and the input of `warden eval` (a "custom policy
//! simulation" that needs no identity store).

use std::sync::Arc;

use crate::compile::PolicySet;
use crate::context::{Context, ContextValue};
use crate::eval::{self, Decision, Outcome, Policies};
use crate::json::{self, Node, Value};
use crate::policy::{self, PolicyKind, Severity};
use crate::request::{Action, Principal, Request};

/// A case, read and compiled.
#[derive(Debug)]
pub struct Case {
    pub id: Option<String>,
    pub principal: Principal<'static>,
    pub action: Action,
    pub resource: String,
    pub resource_account: String,
    pub context: Context,
    pub identity: PolicySet,
    pub resource_policy: Option<Arc<PolicySet>>,
    pub boundary: Option<PolicySet>,
    pub session: Option<PolicySet>,
    pub scps: Vec<Arc<PolicySet>>,
    pub rcps: Vec<Arc<PolicySet>>,
    pub expect: Option<Decision>,
}

/// A case that could not be read; `id` when it was readable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CaseError {
    pub id: Option<String>,
    /// Whether the case carried an `expect`: a refused case then disagrees with it.
    pub expected: bool,
    pub message: String,
}

const CASE_KEYS: &[&str] = &[
    "id",
    "request",
    "identity_policies",
    "resource_policy",
    "permission_boundary",
    "session_policy",
    "scps",
    "rcps",
    "expect",
];

impl Case {
    /// Reads one JSON line.
    pub fn parse(line: &str) -> Result<Case, CaseError> {
        let node = json::parse(line).map_err(|e| CaseError {
            id: None,
            expected: false,
            message: format!("{}: invalid JSON: {}", e.pos, e.message),
        })?;
        let id = node.get("id").and_then(Node::as_str).map(str::to_owned);
        let expected = node.get("expect").is_some();
        let fail = |message: String| CaseError {
            id: id.clone(),
            expected,
            message,
        };
        let members = node.as_object().ok_or_else(|| {
            fail(format!(
                "a case must be a JSON object, found {}",
                node.kind()
            ))
        })?;
        for m in members {
            if !CASE_KEYS.contains(&m.key.as_str()) {
                return Err(fail(format!("{}: unknown case key `{}`", m.key_pos, m.key)));
            }
        }
        let req = node
            .get("request")
            .ok_or_else(|| fail("the case has no `request`".into()))?;
        let field = |name: &str| -> Result<&str, CaseError> {
            let n = req
                .get(name)
                .ok_or_else(|| fail(format!("`request.{name}` is missing")))?;
            n.as_str().ok_or_else(|| {
                fail(format!(
                    "{}: `request.{name}` must be a string, found {}",
                    n.pos,
                    n.kind()
                ))
            })
        };
        let principal = Principal::from_arn(field("principal")?)
            .map_err(|e| fail(format!("`request.principal`: {e}")))?
            .into_owned();
        let action = Action::parse_checked(field("action")?)
            .map_err(|e| fail(format!("`request.action`: {e}")))?;
        let resource = field("resource")?.to_owned();
        let resource_account = match req.get("resource_account") {
            Some(_) => field("resource_account")?.to_owned(),
            None => crate::arn::Arn::parse(&resource)
                .map(|a| a.account)
                .filter(|a| !a.is_empty())
                .unwrap_or(&principal.account)
                .to_owned(),
        };
        let mut context = match req.get("context") {
            None
            | Some(Node {
                value: Value::Null, ..
            }) => Context::new(),
            Some(c) => read_context(c).map_err(|m| fail(format!("`request.context`: {m}")))?,
        };
        principal.fill_context_defaults(&mut context);

        let one = |name: &str, kind: PolicyKind| -> Result<Option<PolicySet>, CaseError> {
            match node.get(name) {
                None
                | Some(Node {
                    value: Value::Null, ..
                }) => Ok(None),
                Some(n) => Ok(Some(PolicySet::new(vec![
                    compile(n, kind, name).map_err(&fail)?,
                ]))),
            }
        };
        let list = |name: &str, kind: PolicyKind| -> Result<PolicySet, CaseError> {
            let items = array(&node, name).map_err(&fail)?;
            let policies = items
                .iter()
                .enumerate()
                .map(|(i, n)| compile(n, kind, &format!("{name}[{i}]")))
                .collect::<Result<Vec<_>, String>>()
                .map_err(&fail)?;
            Ok(PolicySet::new(policies))
        };
        let levels = |name: &str, kind: PolicyKind| -> Result<Vec<Arc<PolicySet>>, CaseError> {
            let items = array(&node, name).map_err(&fail)?;
            items
                .iter()
                .enumerate()
                .map(|(level, n)| {
                    let Value::Array(ps) = &n.value else {
                        return Err(fail(format!(
                            "{}: `{name}[{level}]` must be an array of policies, found {}",
                            n.pos,
                            n.kind()
                        )));
                    };
                    let policies = ps
                        .iter()
                        .enumerate()
                        .map(|(i, p)| compile(p, kind, &format!("{name}[{level}][{i}]")))
                        .collect::<Result<Vec<_>, String>>()
                        .map_err(&fail)?;
                    Ok(Arc::new(PolicySet::new(policies)))
                })
                .collect()
        };
        let expect = match node.get("expect") {
            None
            | Some(Node {
                value: Value::Null, ..
            }) => None,
            Some(n) => Some(match n.as_str() {
                Some("Allow") => Decision::Allow,
                Some("ExplicitDeny") => Decision::ExplicitDeny,
                Some("ImplicitDeny") => Decision::ImplicitDeny,
                _ => {
                    return Err(fail(format!(
                        "{}: `expect` must be `Allow`, `ExplicitDeny` or `ImplicitDeny`",
                        n.pos
                    )));
                }
            }),
        };
        Ok(Case {
            identity: list("identity_policies", PolicyKind::Identity)?,
            resource_policy: one("resource_policy", PolicyKind::Resource)?.map(Arc::new),
            boundary: one("permission_boundary", PolicyKind::Boundary)?,
            session: one("session_policy", PolicyKind::Session)?,
            scps: levels("scps", PolicyKind::Scp)?,
            rcps: levels("rcps", PolicyKind::Rcp)?,
            id,
            principal,
            action,
            resource,
            resource_account,
            context,
            expect,
        })
    }

    /// The request of the case, ready to evaluate.
    pub fn request(&self) -> Request<'_> {
        Request::new(
            &self.principal,
            &self.action,
            &self.resource,
            &self.resource_account,
            &self.context,
        )
    }

    pub fn policies(&self) -> Policies<'_> {
        Policies {
            identity: &self.identity,
            resource: self.resource_policy.as_slice(),
            boundary: self.boundary.as_ref(),
            session: self.session.as_ref(),
            scps: &self.scps,
            rcps: &self.rcps,
            resource_policy_required: eval::resource_policy_required(self.action.as_str()),
        }
    }

    pub fn evaluate(&self) -> Outcome {
        eval::evaluate(&self.request(), &self.policies())
    }
}

fn array<'n>(node: &'n Node, name: &str) -> Result<&'n [Node], String> {
    match node.get(name) {
        None
        | Some(Node {
            value: Value::Null, ..
        }) => Ok(&[]),
        Some(Node {
            value: Value::Array(items),
            ..
        }) => Ok(items),
        Some(n) => Err(format!(
            "{}: `{name}` must be an array, found {}",
            n.pos,
            n.kind()
        )),
    }
}

fn compile(node: &Node, kind: PolicyKind, name: &str) -> Result<Arc<policy::Policy>, String> {
    let parsed = policy::parse_node(node, kind, name);
    match parsed.policy {
        Some(p) => Ok(Arc::new(p)),
        None => {
            let errors: Vec<String> = parsed
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| format!("{}: {f}", name))
                .collect();
            Err(errors.join("; "))
        }
    }
}

/// Reads a context object: each key maps to a string or a list of strings (numbers and
/// booleans are taken as their text).
pub fn read_context(node: &Node) -> Result<Context, String> {
    let members = node
        .as_object()
        .ok_or_else(|| format!("{}: expected an object, found {}", node.pos, node.kind()))?;
    let scalar = |n: &Node| -> Option<String> {
        match &n.value {
            Value::String(s) | Value::Number(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let mut ctx = Context::new();
    for m in members {
        let value = match &m.value.value {
            Value::Array(items) => ContextValue::Multi(
                items
                    .iter()
                    .map(|i| {
                        scalar(i).ok_or_else(|| {
                            format!(
                                "{}: `{}` must hold strings, found {}",
                                i.pos,
                                m.key,
                                i.kind()
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => ContextValue::Single(scalar(&m.value).ok_or_else(|| {
                format!(
                    "{}: `{}` must be a string or a list of strings, found {}",
                    m.value.pos,
                    m.key,
                    m.value.kind()
                )
            })?),
        };
        ctx.insert(&m.key, value);
    }
    Ok(ctx)
}

//! `warden authorize`: answers one request offline against a bundle, through the same
//! request pipeline as the server (the same validation, the same decision), and prints it
//! as `warden check` prints a server's answer; or, with `--case`, writes the request out as
//! a self-contained evaluation case (every policy it reads, inline) for `warden eval`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use serde_json::value::RawValue;
use warden::bundle::{self, Sources};
use warden::caller::Caller;
use warden::context::{CallerContext, CallerView, Context, ContextValue};
use warden::policy::Policy;
use warden::request::{Action, parse_resource};
use warden::service::{Item, Limits, Request, Service, ServiceConfig, Shape};
use warden::snapshot::{Question, Snapshot};

use super::request::{self, RequestArgs, SessionArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle directory [default: examples/org, from the working directory or the
    /// source tree the binary was built from].
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    request: RequestArgs,
    #[command(flatten)]
    session: SessionArgs,
    /// Write the request as a self-contained evaluation case (one JSON line: the request
    /// with every key it is evaluated with, and every policy it reads) instead of deciding.
    #[arg(long, conflicts_with_all = ["explain", "json"])]
    case: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = args.bundle.unwrap_or_else(super::default_bundle);
    let files = bundle::read_dir_within(&dir, super::validate::READ_LIMIT).map_err(|e| {
        // A missing directory's message names it already: no second line saying so.
        if e.is_about_the_bundle() {
            anyhow::Error::new(e)
        } else {
            anyhow::Error::new(e).context(format!("cannot load the bundle `{}`", dir.display()))
        }
    })?;
    let loaded = if args.case {
        bundle::load_files_with_sources(&files)
    } else {
        bundle::load_files(&files)
    }
    .with_context(|| format!("cannot load the bundle `{}`", dir.display()))?;
    let snapshot = Snapshot::compile(&loaded, 1);
    let now = std::time::SystemTime::now();
    let session = args
        .session
        .session(&args.request.principal, now)?
        .map(Arc::new);
    let case = args
        .case
        .then(|| {
            let session = session
                .as_deref()
                .map(|s| (s, args.session.session_policy.as_deref()));
            case(&snapshot, &loaded.sources, &args.request, session, now)
        })
        .transpose()?;
    let service = Service::serving(
        snapshot,
        ServiceConfig {
            cache_size: 0,
            limits: Limits::default(),
        },
    );
    let RequestArgs {
        principal,
        action,
        resource,
        explain,
        json,
        ..
    } = &args.request;
    let request = Request {
        caller: match session {
            Some(s) => Caller::Session(s),
            None => Caller::Asserted(principal.clone()),
        },
        context: args.request.context()?,
        items: vec![Item {
            action: action.clone(),
            resource: resource.clone(),
            context: Context::new(),
        }],
        min_revision: 0,
        explain: *explain,
        shape: Shape::One,
        face: warden::telemetry::Face::Offline,
        snapshot: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    // Checked as the server checks it, even when only the case is written.
    let answer = runtime
        .block_on(service.handle(|_| Ok(request)))
        .map_err(|e| anyhow!("the request is refused: {e}"))?;
    if let Some(case) = case {
        super::write_stdout(format!("{case}\n").as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let revision = answer.revision;
    let decided = answer
        .decisions
        .into_iter()
        .next()
        .context("the service answered no decision")?;
    request::print(&warden::grpc::response(decided, revision), *json)
}

/// A self-contained case, in the shape of `tests/conformance/` (see its README). Policies
/// are written as their bundle's text (`RawValue`), so numbers keep the digits they had.
#[derive(serde::Serialize)]
struct Case {
    id: String,
    request: CaseRequest,
    identity_policies: Vec<Box<RawValue>>,
    resource_policy: Option<Box<RawValue>>,
    permission_boundary: Option<Box<RawValue>>,
    session_policy: Option<Box<RawValue>>,
    scps: Vec<Vec<Box<RawValue>>>,
    rcps: Vec<Vec<Box<RawValue>>>,
}

#[derive(serde::Serialize)]
struct CaseRequest {
    principal: String,
    action: String,
    resource: String,
    resource_account: String,
    /// Every key the request is evaluated with, the server's written in.
    context: BTreeMap<String, Value>,
}

/// The request as a self-contained case (with a session, the keys it carries written in,
/// and its session policy as the case's).
fn case(
    snapshot: &Snapshot,
    sources: &Sources,
    r: &RequestArgs,
    session: Option<(&warden::caller::Session, Option<&str>)>,
    now: std::time::SystemTime,
) -> anyhow::Result<String> {
    let (session, session_policy) = session.map_or((None, None), |(s, p)| (Some(s), p));
    let refused = |e: String| anyhow!("the request is refused: {e}");
    let action = Action::parse(&r.action).map_err(refused)?;
    snapshot.check_action(&action, &r.action).map_err(refused)?;
    let context = CallerContext::screen(r.context()?, |_| {});
    let question = Question {
        action: &action,
        resource: &r.resource,
        resource_arn: parse_resource(&r.resource).map_err(refused)?,
        context: CallerView::of(&context),
    };
    let who = snapshot
        .resolve(&r.principal, session, now)
        .map_err(refused)?
        .ok_or_else(|| {
            anyhow!(
                "the principal `{}` is not in the bundle: a case needs its policies",
                r.principal
            )
        })?;
    let g = snapshot.gather(&who, &question, now);
    let text = |p: &Arc<Policy>| -> anyhow::Result<&str> {
        sources
            .of(p)
            .ok_or_else(|| anyhow!("no text kept for the policy `{}`", p.id))
    };
    let raw = |s: String| RawValue::from_string(s).context("a policy's text");
    let list = |ps: &[Arc<Policy>]| -> anyhow::Result<Vec<Box<RawValue>>> {
        ps.iter().map(|p| raw(text(p)?.to_owned())).collect()
    };
    // A case holds one document per layer where a bundle may hold several (a resource's
    // exact and pattern policies): their statements, together, are the same layer.
    let one = |ps: Option<&[Arc<Policy>]>| -> anyhow::Result<Option<Box<RawValue>>> {
        let Some(ps) = ps.filter(|ps| !ps.is_empty()) else {
            return Ok(None);
        };
        if let [p] = ps {
            return raw(text(p)?.to_owned()).map(Some);
        }
        let mut version: Option<Option<String>> = None;
        let mut statements = Vec::new();
        for p in ps {
            let doc =
                warden::json::parse(text(p)?).map_err(|e| anyhow!("{}: {}", p.id, e.message))?;
            let v = doc.get("Version").map(warden::json::Node::to_json);
            if version.get_or_insert_with(|| v.clone()) != &v {
                bail!(
                    "the layer's policies differ in `Version`: one case document cannot hold them"
                );
            }
            if let Some(n) = doc.get("Statement") {
                match &n.value {
                    warden::json::Value::Array(items) => {
                        statements.extend(items.iter().map(warden::json::Node::to_json));
                    }
                    _ => statements.push(n.to_json()),
                }
            }
        }
        let version = version
            .flatten()
            .map(|v| format!(r#""Version":{v},"#))
            .unwrap_or_default();
        raw(format!(
            r#"{{{version}"Statement":[{}]}}"#,
            statements.join(",")
        ))
        .map(Some)
    };
    let levels = |levels: &[Vec<Arc<Policy>>]| -> anyhow::Result<Vec<Vec<Box<RawValue>>>> {
        levels.iter().map(|l| list(l)).collect()
    };
    let context = g
        .context
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ContextValue::Single(s) => Value::String(s.clone()),
                ContextValue::Multi(l) => l.iter().cloned().map(Value::String).collect(),
            };
            (k.to_owned(), v)
        })
        .collect();
    let case = Case {
        id: format!("{} {} {}", r.principal, r.action, r.resource),
        request: CaseRequest {
            principal: r.principal.clone(),
            action: r.action.clone(),
            resource: r.resource.clone(),
            resource_account: g.resource_account.to_owned(),
            context,
        },
        identity_policies: list(&g.identity)?,
        resource_policy: one(Some(&g.resource))?,
        permission_boundary: one(g.boundary.as_deref())?,
        // A session policy given as a flag has no text in the bundle: the flag's is it.
        session_policy: match session_policy {
            Some(text) => Some(raw(text.to_owned())?),
            None => one(g.session.as_deref())?,
        },
        scps: levels(&g.scps)?,
        rcps: levels(&g.rcps)?,
    };
    Ok(serde_json::to_string(&case)?)
}

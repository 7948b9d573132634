//! `warden who-can`, `warden what-can`, `warden can-any`: reverse queries offline against a
//! bundle, answered by [`warden::reverse`] (the same resolve and decide as `Authorize`),
//! the caller's context screened as the service screens it. A page at a time with
//! `--page-size` and `--cursor`, or every page with `--all`; human output or `--json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use warden::bundle;
use warden::context::Context;
use warden::reverse::{self, Answer, Item, PageRequest, Query};
use warden::service::{Limits, Service, ServiceConfig};
use warden::snapshot::Snapshot;

/// What every reverse query takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The bundle directory [default: examples/org, from the working directory or the
    /// source tree the binary was built from].
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// A caller context entry `key=value` (screened as `Authorize` screens it: keys the
    /// server owns are dropped); repeat a key for a list.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Items in a page [default: 100, at most 1000].
    #[arg(long, value_name = "N")]
    page_size: Option<usize>,
    /// Continue after the page that printed this cursor.
    #[arg(long, value_name = "CURSOR", conflicts_with = "all")]
    cursor: Option<String>,
    /// Every page, one after the other (the whole answer).
    #[arg(long)]
    all: bool,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct WhoCanArgs {
    /// The action (`service:Action`).
    #[arg(long)]
    action: String,
    /// The resource ARN (or `*`).
    #[arg(long)]
    resource: String,
    /// The session name roles are asked under (a trust or identity condition on
    /// `sts:RoleSessionName` or `aws:userid` can differ per session).
    #[arg(long, default_value = reverse::DEFAULT_SESSION)]
    session_name: String,
    /// Ask who may become each role with an MFA code presented to `AssumeRole` (trust
    /// policies often require one; without it an asserted caller has none).
    #[arg(long)]
    assume_with_mfa: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct WhatCanArgs {
    /// The principal: a user's ARN, a role session's, an account's root.
    #[arg(long)]
    principal: String,
    /// Only actions allowed on this resource (every catalog action is asked).
    #[arg(long)]
    resource: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct CanAnyArgs {
    /// The principal: a user's ARN, a role session's, an account's root.
    #[arg(long)]
    principal: String,
    /// The resource type, `service:type` (`orders:order`).
    #[arg(long = "type", value_name = "SERVICE:TYPE")]
    resource_type: String,
    #[command(flatten)]
    common: Common,
}

pub fn who_can(args: WhoCanArgs) -> anyhow::Result<ExitCode> {
    run(
        Query::WhoCan {
            action: args.action,
            resource: args.resource,
            session_name: args.session_name,
            assume_with_mfa: args.assume_with_mfa,
        },
        args.common,
    )
}

pub fn what_can(args: WhatCanArgs) -> anyhow::Result<ExitCode> {
    run(
        Query::WhatCan {
            principal: args.principal,
            resource: args.resource,
        },
        args.common,
    )
}

pub fn can_any(args: CanAnyArgs) -> anyhow::Result<ExitCode> {
    run(
        Query::CanAny {
            principal: args.principal,
            resource_type: args.resource_type,
        },
        args.common,
    )
}

fn run(query: Query, args: Common) -> anyhow::Result<ExitCode> {
    let dir = args.bundle.unwrap_or_else(super::default_bundle);
    let files = bundle::read_dir_within(&dir, super::validate::READ_LIMIT)
        .with_context(|| format!("cannot load the bundle `{}`", dir.display()))?;
    let loaded = bundle::load_files(&files)
        .with_context(|| format!("cannot load the bundle `{}`", dir.display()))?;
    let service = Service::serving(
        Snapshot::compile(&loaded, 1),
        ServiceConfig {
            cache_size: 0,
            limits: Limits::default(),
        },
    );
    let snapshot = service
        .current()
        .ok_or_else(|| anyhow::anyhow!("no snapshot"))?;
    let context = Context::from_pairs(&args.context).map_err(anyhow::Error::msg)?;
    let context = service.screen_caller_context(&snapshot, context)?;
    let limits = reverse::Limits::default();
    let now = SystemTime::now();
    let answer = if args.all {
        reverse::answer_all(&snapshot, &query, &context, args.page_size, &limits, now)?
    } else {
        let page = PageRequest {
            size: args.page_size,
            cursor: args.cursor,
        };
        reverse::answer(&snapshot, &query, &context, &page, &limits, now)?
    };
    let mut out = if args.json {
        let mut s = serde_json::to_string_pretty(&answer)?;
        s.push('\n');
        s
    } else {
        human(&answer)
    };
    if out.is_empty() {
        out.push('\n');
    }
    super::write_stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The answer for people: each item with its explanation, grouped as the answer is
/// ordered, then whether it is complete.
fn human(a: &Answer) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut group = String::new();
    for item in &a.items {
        match item {
            Item::Principal(p) => {
                let _ = writeln!(out, "{} ({}, {})", p.principal, p.kind, p.reason);
                for b in &p.statements {
                    let _ = writeln!(out, "  {}: {} [{}]", b.effect, b.statement, b.via);
                }
                for path in &p.assumable_by {
                    let _ = writeln!(
                        out,
                        "  may be assumed by {} via {}",
                        path.principal,
                        path.through.join(" -> ")
                    );
                }
            }
            Item::Action(x) => {
                let g = format!("{} {}", x.service, x.access);
                if g != group {
                    let _ = writeln!(out, "{g}:");
                    group = g;
                }
                let _ = writeln!(out, "  {} ({}, exact: {})", x.action, x.reason, x.exact);
                for b in &x.statements {
                    let _ = writeln!(out, "    {}: {} [{}]", b.effect, b.statement, b.via);
                }
                for p in &x.patterns {
                    let _ = writeln!(
                        out,
                        "    pattern {} from {}: witness {} is {} ({})",
                        p.pattern, p.from, p.witness, p.decision, p.reason
                    );
                }
                if x.more_patterns {
                    let _ = writeln!(out, "    (more patterns than listed)");
                }
                for d in &x.narrowed_by {
                    let _ = writeln!(out, "    narrowed by Deny: {d}");
                }
            }
            Item::Witness(w) => {
                let _ = writeln!(
                    out,
                    "{} on {} ({}, {})",
                    w.action, w.resource, w.access, w.reason
                );
                for b in &w.statements {
                    let _ = writeln!(out, "  {}: {} [{}]", b.effect, b.statement, b.via);
                }
            }
        }
    }
    if a.items.is_empty() {
        out.push_str("(no items)\n");
    }
    for u in &a.undecided {
        let _ = writeln!(out, "undecided: {}: {}", u.action, u.why);
    }
    match &a.next_cursor {
        Some(c) => {
            let _ = writeln!(
                out,
                "incomplete at revision {}: continue with --cursor {c}",
                a.revision
            );
        }
        None => {
            let _ = writeln!(out, "complete at revision {}", a.revision);
        }
    }
    out
}

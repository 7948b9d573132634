//! `warden authorize`: answers one request offline against a bundle, with its reasons.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use warden::context::Context;
use warden::eval::Decision;
use warden::snapshot::{Query, Snapshot};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle directory.
    #[arg(long, default_value = "examples/org")]
    bundle: PathBuf,
    /// The principal's ARN: an IAM user or a role session.
    #[arg(long)]
    principal: String,
    #[arg(long)]
    action: String,
    #[arg(long)]
    resource: String,
    /// A context entry `key=value`; repeat a key for a list (`aws:TagKeys=a --context aws:TagKeys=b`).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Show every layer and statement, matched or not.
    #[arg(long)]
    explain: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let snapshot = Snapshot::load_dir(&args.bundle, 1)
        .with_context(|| format!("cannot load the bundle `{}`", args.bundle.display()))?;
    let context = Context::from_pairs(&args.context).map_err(anyhow::Error::msg)?;
    let query = Query {
        principal: &args.principal,
        action: &args.action,
        resource: &args.resource,
        context: &context,
        now: SystemTime::now(),
    };
    let (auth, explanation) = if args.explain {
        snapshot.explain(&query)
    } else {
        (snapshot.authorize(&query), None)
    };
    // Written to a buffer and then out at once, so a closed pipe (`| head`) is an error
    // like any other rather than a panic.
    let mut out = String::new();
    macro_rules! outln {
        ($dst:expr, $($arg:tt)*) => {{
            use std::fmt::Write as _;
            let _ = writeln!($dst, $($arg)*);
        }};
    }
    let o = &auth.outcome;
    outln!(out, "{} ({})", o.decision, o.reason);
    if let Some(layer) = o.denied_by {
        outln!(out, "  decided by: {layer}");
    }
    for m in &o.statements {
        outln!(out, "  {:?}: {m}", m.effect);
    }
    if let Some(e) = explanation {
        for layer in &e.layers {
            let level = layer
                .level
                .map(|l| format!(" level {l}"))
                .unwrap_or_default();
            outln!(out, "{}{level}: {}", layer.kind, layer.result.as_str());
            for s in &layer.statements {
                let place = s.sid.as_deref().map_or_else(
                    || format!("Statement[{}]", s.index),
                    |sid| format!("Sid {sid}"),
                );
                let verdict = match &s.mismatch {
                    None => "matched".to_owned(),
                    Some(warden::eval::Mismatch::Condition { key }) => {
                        format!("condition on `{key}` does not hold")
                    }
                    Some(m) => format!("{} does not match", m.as_str()),
                };
                outln!(out, "  {:?} {} {place}: {verdict}", s.effect, s.policy);
            }
        }
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes())?;
    Ok(match o.decision {
        Decision::Allow => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

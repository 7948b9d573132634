//! `warden authorize`: answers one request offline against a bundle, through the same
//! request pipeline as the server (the same validation, the same decision), and prints it
//! as `warden check` prints a server's answer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use warden::caller::Caller;
use warden::context::Context;
use warden::service::{Item, Limits, Request, Service, ServiceConfig, Shape};
use warden::snapshot::Snapshot;
use warden::source::Published;
use warden::telemetry::Telemetry;

use super::request::{self, RequestArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle directory [default: examples/org, from the working directory or the
    /// source tree the binary was built from].
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    request: RequestArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bundle = args.bundle.unwrap_or_else(super::default_bundle);
    let snapshot = Snapshot::load_dir(&bundle, 1)
        .with_context(|| format!("cannot load the bundle `{}`", bundle.display()))?;
    let published = Arc::new(Published::new());
    let telemetry = Arc::new(Telemetry::new());
    published.publish(snapshot, &telemetry.metrics);
    let service = Service::new(
        published,
        telemetry,
        None,
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
        caller: Caller::Asserted(principal.clone()),
        context: args.request.context()?,
        items: vec![Item {
            action: action.clone(),
            resource: resource.clone(),
            context: Context::new(),
        }],
        min_revision: 0,
        explain: *explain,
        shape: Shape::One,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let answer = runtime
        .block_on(service.handle(|_| Ok(request)))
        .map_err(|e| anyhow::anyhow!("the request is refused: {e}"))?;
    let revision = answer.revision;
    let decided = answer
        .decisions
        .into_iter()
        .next()
        .context("the service answered no decision")?;
    request::print(&warden::grpc::response(decided, revision), *json)
}

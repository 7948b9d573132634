//! `warden check`: asks a running server one question and prints the decision. The exit
//! status is 0 for Allow, 1 for a deny, 2 for an error, so scripts can branch on it.

use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use warden::grpc::client;

use super::request::{self, RequestArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: `HOST:PORT`, `http://HOST:PORT` or `unix:/PATH`.
    #[arg(long, env = "WARDEN_ADDR", default_value = "127.0.0.1:50051")]
    addr: String,
    #[command(flatten)]
    request: RequestArgs,
    /// Decide only at this snapshot revision or later.
    #[arg(long, default_value_t = 0)]
    min_revision: u64,
    /// Give up after this long.
    #[arg(long, default_value = "5s")]
    timeout: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let timeout = super::serve::parse_duration("timeout", &args.timeout)?;
    let r = &args.request;
    let mut pb_request = client::authorize_request(
        &r.principal,
        &r.action,
        &r.resource,
        &r.context()?,
        r.explain,
    );
    pb_request.min_revision = args.min_revision;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let response = runtime.block_on(async {
        let channel = client::connect(&args.addr, timeout).await?;
        client::authorize(channel, pb_request, timeout)
            .await
            .map_err(|s| anyhow!("the server refused: {:?}: {}", s.code(), s.message()))
    })?;
    request::print(&response, r.json)
}

//! `warden check`: asks a running server one question and prints the decision. The exit
//! status is 0 for Allow, 1 for a deny, 2 for an error, so scripts can branch on it.

use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use warden::grpc::client;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: `HOST:PORT`, `http://HOST:PORT` or `unix:/PATH`.
    #[arg(long, env = "WARDEN_ADDR", default_value = "127.0.0.1:50051")]
    addr: String,
    /// The principal's ARN: an IAM user or a role session.
    #[arg(long)]
    principal: String,
    #[arg(long)]
    action: String,
    #[arg(long)]
    resource: String,
    /// A context entry `key=value`; repeat a key for a list.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Ask for every layer and statement, matched or not.
    #[arg(long)]
    explain: bool,
    /// Decide only at this snapshot revision or later.
    #[arg(long, default_value_t = 0)]
    min_revision: u64,
    /// Print the response as JSON.
    #[arg(long)]
    json: bool,
    /// Give up after this long.
    #[arg(long, default_value = "5s")]
    timeout: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let timeout = super::serve::parse_duration("timeout", &args.timeout)?;
    let context = warden::context::Context::from_pairs(&args.context).map_err(|e| anyhow!(e))?;
    let mut request = client::authorize_request(
        &args.principal,
        &args.action,
        &args.resource,
        &context,
        args.explain,
    );
    request.min_revision = args.min_revision;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let response = runtime.block_on(async {
        let channel = client::connect(&args.addr, timeout).await?;
        client::authorize(channel, request, timeout)
            .await
            .map_err(|s| anyhow!("the server refused: {:?}: {}", s.code(), s.message()))
    })?;
    if args.json {
        println!("{}", client::response_json(&response));
    } else {
        print!("{}", client::describe(&response));
    }
    Ok(if client::is_allow(&response) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! `warden admin`: a client of a fleet sidecar's admin API (`warden.v1.Admin`): put,
//! delete, get and list the bundle's documents, authenticated with the bootstrap token or a
//! session token. A refusal prints the server's message (every finding of an invalid
//! write, with its place) and exits 2.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::Subcommand;
use warden::grpc::client;
use warden::grpc::pb;
use warden::grpc::pb::admin_client::AdminClient;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: `HOST:PORT`, `http://HOST:PORT` or `unix:/PATH`.
    #[arg(
        long,
        env = "WARDEN_ADDR",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    addr: String,
    /// A file holding the bootstrap token (sent as `authorization: Bearer ...`).
    #[arg(
        long,
        env = "WARDEN_ADMIN_TOKEN_FILE",
        value_name = "FILE",
        global = true
    )]
    token_file: Option<PathBuf>,
    /// A session token from warden's STS (`warden.v1.Sts/GetSessionToken`, AssumeRole).
    #[arg(
        long,
        env = "WARDEN_SESSION_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        global = true
    )]
    session_token: Option<String>,
    /// Give up after this long.
    #[arg(long, default_value = "10s", global = true)]
    timeout: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or replace the document at PATH with FILE's text.
    Put {
        path: String,
        file: PathBuf,
        /// Compare-and-swap: only if the bundle has not changed after this revision.
        #[arg(long, value_name = "N")]
        expected_revision: Option<i64>,
    },
    /// Remove the document at PATH.
    Delete {
        path: String,
        #[arg(long, value_name = "N")]
        expected_revision: Option<i64>,
    },
    /// Print the document at PATH.
    Get {
        path: String,
        #[arg(long, value_name = "N")]
        revision: Option<i64>,
    },
    /// Print every document's path.
    List {
        #[arg(long, value_name = "N")]
        revision: Option<i64>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let timeout = super::serve::parse_duration("timeout", &args.timeout)?;
    let token = match &args.token_file {
        Some(file) => Some(
            warden::bundle::dir::read_file(file)
                .map_err(|e| anyhow!("token-file `{}`: {}", file.display(), e.message))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let credentials = args.session_token.clone().map(|t| pb::AdminCredentials {
        session_token: t,
        signed_request: None,
    });
    let token = token.as_deref();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let channel = client::connect(&args.addr, timeout).await?;
        let mut admin = AdminClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(16 << 20);
        let refused =
            |s: tonic::Status| anyhow!("the server refused: {:?}: {}", s.code(), s.message());
        match args.command {
            Command::Put {
                path,
                file,
                expected_revision,
            } => {
                let text = warden::bundle::dir::read_file(&file)
                    .map_err(|e| anyhow!("`{}`: {}", file.display(), e.message))?;
                let change = pb::Change {
                    path,
                    op: Some(pb::change::Op::Put(text)),
                };
                let request = with_metadata(
                    write(credentials, change, expected_revision),
                    token,
                    timeout,
                );
                let r = admin.write(request).await.map_err(refused)?;
                println!("{}", r.into_inner().revision);
            }
            Command::Delete {
                path,
                expected_revision,
            } => {
                let change = pb::Change {
                    path,
                    op: Some(pb::change::Op::Delete(true)),
                };
                let request = with_metadata(
                    write(credentials, change, expected_revision),
                    token,
                    timeout,
                );
                let r = admin.write(request).await.map_err(refused)?;
                println!("{}", r.into_inner().revision);
            }
            Command::Get { path, revision } => {
                let r = admin
                    .get(with_metadata(
                        pb::GetRequest {
                            credentials,
                            paths: vec![path],
                            revision: revision.unwrap_or(0),
                        },
                        token,
                        timeout,
                    ))
                    .await
                    .map_err(refused)?
                    .into_inner();
                eprintln!("revision {}", r.revision);
                for d in r.documents {
                    super::write_stdout(d.text.as_bytes())?;
                }
            }
            Command::List { revision } => {
                let r = admin
                    .list(with_metadata(
                        pb::ListRequest {
                            credentials,
                            revision: revision.unwrap_or(0),
                        },
                        token,
                        timeout,
                    ))
                    .await
                    .map_err(refused)?
                    .into_inner();
                eprintln!("revision {}", r.revision);
                let mut out = String::new();
                for p in r.paths {
                    out.push_str(&p);
                    out.push('\n');
                }
                super::write_stdout(out.as_bytes())?;
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The request with its deadline and, when given, the bootstrap token.
fn with_metadata<T>(message: T, token: Option<&str>, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(timeout);
    if let Some(t) = token
        && let Ok(value) = format!("Bearer {t}").parse()
    {
        r.metadata_mut().insert("authorization", value);
    }
    r
}

fn write(
    credentials: Option<pb::AdminCredentials>,
    change: pb::Change,
    expected_revision: Option<i64>,
) -> pb::WriteRequest {
    pb::WriteRequest {
        credentials,
        changes: vec![change],
        expected_revision: expected_revision.unwrap_or(0),
    }
}

//! Command-line interface: argument parsing and the subcommands. `anyhow` lives here and
//! in `main` only; the library returns typed errors.

mod admin;
mod authorize;
mod check;
mod compare;
mod credentials;
mod eval;
mod fleet;
mod loadgen;
mod replay;
mod request;
mod reverse;
mod serve;
mod synth;
mod test;
mod token;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "AWS-IAM-style authorization for your own services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate self-contained cases (JSON Lines) and print one decision per line.
    Eval(eval::Args),
    /// Validate policy documents or a whole bundle and print every finding with its place.
    Validate(validate::Args),
    /// Answer one request offline against a bundle, with its reasons.
    Authorize(authorize::Args),
    /// Compare two policies or two bundles: new access, with counterexamples, or a proof.
    Compare(compare::Args),
    /// Run the decision service: gRPC Authorizer, health, reflection, admin HTTP.
    Serve(serve::Args),
    /// Decide a decision log again against a candidate bundle and list what would change.
    Replay(replay::Args),
    /// Ask a running server one question and print the decision.
    Check(check::Args),
    /// Drive a running server with Authorize requests and print a latency summary.
    #[command(alias = "load")]
    Loadgen(loadgen::Args),
    /// Write a synthetic organization (and requests) for benchmarks.
    Synth(synth::Args),
    /// Mint a signed OIDC token (JWT) for the demo walk-through; DEMO ONLY.
    Token(token::Args),
    /// Run test suites against a bundle: expected decisions and statement coverage.
    Test(test::Args),
    /// Manage the key ring that seals session tokens and the secrets store.
    Keyring(credentials::KeyringArgs),
    /// Manage users' access keys in the secrets store.
    Keys(credentials::KeysArgs),
    /// Manage users' virtual MFA devices in the secrets store.
    Mfa(credentials::MfaArgs),
    /// Validate a bundle directory and write it to etcd as one transaction (fleet mode).
    Push(fleet::PushArgs),
    /// Write the bundle etcd holds into a new or empty directory (fleet mode).
    Pull(fleet::PullArgs),
    /// Put, delete, get and list the bundle's documents through a sidecar's admin API.
    Admin(admin::Args),
    /// Every principal allowed an action on a resource, explained (offline, paged).
    WhoCan(reverse::WhoCanArgs),
    /// The catalog actions a principal is allowed, on a resource or anywhere (paged).
    WhatCan(reverse::WhatCanArgs),
    /// Whether a principal may do any action to some resource of a type, with witnesses.
    CanAny(reverse::CanAnyArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Authorize(args) => authorize::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Check(args) => check::run(args),
        Command::Loadgen(args) => loadgen::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Token(args) => token::run(args),
        Command::Test(args) => test::run(args),
        Command::Keyring(args) => credentials::keyring(args),
        Command::Keys(args) => credentials::keys(args),
        Command::Mfa(args) => credentials::mfa(args),
        Command::Push(args) => fleet::push(args),
        Command::Pull(args) => fleet::pull(args),
        Command::Admin(args) => admin::run(args),
        Command::WhoCan(args) => reverse::who_can(args),
        Command::WhatCan(args) => reverse::what_can(args),
        Command::CanAny(args) => reverse::can_any(args),
    };
    match result {
        Ok(code) => code,
        // A reader that stops early (`warden eval ... | head -1`) closes standard output:
        // that ends the output, and is no error of the command's.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "warden: {}",
                warden::error::join(e.chain().map(ToString::to_string))
            );
            ExitCode::from(2)
        }
    }
}

/// The bundle when none is named: `examples/org` in the working directory, else in the
/// source tree the binary was built from (`cargo run` and `cargo install --path .` from a
/// checkout), else the relative path, which then fails to load with its name.
pub fn default_bundle() -> std::path::PathBuf {
    let here = std::path::PathBuf::from("examples/org");
    if here.is_dir() {
        return here;
    }
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    if built.is_dir() { built } else { here }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

/// Writes to standard output at once; a closed pipe is an error the caller returns (and
/// `main` ends quietly on), not a panic as `print!` would make it.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

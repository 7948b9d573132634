//! Command-line interface: argument parsing and the subcommands. `anyhow` lives here and
//! in `main` only; the library returns typed errors.

mod authorize;
mod check;
mod eval;
mod loadgen;
mod serve;
mod synth;
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate self-contained cases (JSON Lines) and print one decision per line.
    Eval(eval::Args),
    /// Validate policy documents or a whole bundle and print every finding with its place.
    Validate(validate::Args),
    /// Answer one request offline against a bundle, with its reasons.
    Authorize(authorize::Args),
    /// Run the decision service: gRPC Authorizer, health, reflection, admin HTTP.
    Serve(serve::Args),
    /// Ask a running server one question and print the decision.
    Check(check::Args),
    /// Drive a running server with Authorize requests and print a latency summary.
    #[command(alias = "load")]
    Loadgen(loadgen::Args),
    /// Write a synthetic organization (and requests) for benchmarks.
    Synth(synth::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Authorize(args) => authorize::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::Loadgen(args) => loadgen::run(args),
        Command::Synth(args) => synth::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! `warden synth`: writes a synthetic organization (a bundle directory) and, optionally,
//! requests against it as JSON Lines, for benchmarks and load tests.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use warden::bench::synth::{self, Spec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Statements in the bundle, trust policies included.
    #[arg(long)]
    statements: usize,
    /// The directory to write the bundle to; it must not exist yet or be empty.
    #[arg(long)]
    out: PathBuf,
    /// Also write requests (`{"principal","action","resource","context"}` per line) here.
    #[arg(long)]
    requests_out: Option<PathBuf>,
    /// How many requests to write with `--requests-out`.
    #[arg(long, default_value_t = 1_000)]
    requests: usize,
    /// The same seed always yields the same organization.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.out.exists()
        && std::fs::read_dir(&args.out)
            .with_context(|| format!("cannot read `{}`", args.out.display()))?
            .next()
            .is_some()
    {
        bail!(
            "`{}` is not empty: synth writes a whole bundle into a new directory",
            args.out.display()
        );
    }
    let org = synth::generate(Spec {
        statements: args.statements,
        requests: if args.requests_out.is_some() {
            args.requests
        } else {
            0
        },
        seed: args.seed,
    })?;
    for (rel, text) in &org.files {
        let path = args.out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        std::fs::write(&path, text)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if let Some(path) = &args.requests_out {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?,
        );
        for r in &org.requests {
            writeln!(out, "{r}").with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        out.flush()
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    println!(
        "wrote {} statements in {} files ({} users and roles, {} groups) to {}",
        org.statements,
        org.files.len(),
        org.identities.len(),
        org.groups.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

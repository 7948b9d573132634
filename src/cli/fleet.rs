//! `warden push` and `warden pull`: a bundle directory written to etcd as one validated
//! transaction, and etcd's bundle written out to a directory. They talk to etcd directly,
//! so whoever may write etcd's prefix bypasses the admin API's authorization (SECURITY.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use warden::etcd::{Etcd, Layout};
use warden::fleet::store::{self, StoreError};

/// How long reading the bundle directory may take.
const READ_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Parser)]
pub struct PushArgs {
    /// The bundle directory.
    dir: PathBuf,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Compare-and-swap: write only if the bundle in etcd has not changed after this
    /// revision.
    #[arg(long, value_name = "N")]
    expected_revision: Option<i64>,
}

#[derive(Debug, Parser)]
pub struct PullArgs {
    /// A new or empty directory to write the bundle into.
    dir: PathBuf,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Read the bundle as it was at this etcd revision [default: now].
    #[arg(long, value_name = "N")]
    revision: Option<i64>,
}

#[derive(Debug, clap::Args)]
struct EtcdArgs {
    /// The etcd endpoints, comma-separated (`http://127.0.0.1:2379`).
    #[arg(long, env = "WARDEN_ETCD", value_name = "URLS")]
    etcd: String,
    /// The etcd key prefix of the fleet's state [default: /warden/].
    #[arg(long, env = "WARDEN_ETCD_PREFIX", value_name = "PREFIX")]
    etcd_prefix: Option<String>,
}

impl EtcdArgs {
    fn open(&self) -> anyhow::Result<(Etcd, Layout)> {
        let endpoints: Vec<String> = self
            .etcd
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        let etcd = Etcd::new(&endpoints).map_err(|e| anyhow!("etcd: {e}"))?;
        let layout = Layout::new(
            self.etcd_prefix
                .as_deref()
                .unwrap_or(Layout::DEFAULT_PREFIX),
        )
        .map_err(|e| anyhow!("etcd-prefix: {e}"))?;
        Ok((etcd, layout))
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Validates the directory's bundle and writes it: exit 0 and the revision on standard
/// output; 1 when the bundle does not load (every finding on standard error, nothing
/// written); an error otherwise.
pub fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    // The etcd client's connections are spawned on the runtime.
    let _entered = runtime.enter();
    let (etcd, layout) = args.etcd.open()?;
    if let Some(e) = args.expected_revision
        && e <= 0
    {
        bail!("expected-revision: `{e}` is no revision");
    }
    let files = match warden::bundle::read_dir_within(&args.dir, READ_LIMIT) {
        Ok(files) => files,
        Err(e) => return Ok(refused(&args.dir, &e)),
    };
    let count = files.len();
    let marker = format!("{{\"pushed\":{count}}}");
    let pushed = runtime.block_on(store::push(
        &etcd,
        &layout,
        &files,
        args.expected_revision,
        &marker,
    ));
    match pushed {
        Ok(revision) => {
            eprintln!(
                "pushed {count} file(s) to `{}` at revision {revision}",
                layout.bundle()
            );
            super::write_stdout(format!("{revision}\n").as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(StoreError::Invalid(e)) => Ok(refused(&args.dir, &e)),
        Err(e) => Err(anyhow!("push: {e}")),
    }
}

/// Every finding of a bundle that did not load, on standard error: exit 1.
fn refused(dir: &Path, e: &warden::bundle::BundleError) -> ExitCode {
    for f in &e.findings {
        if f.file.is_empty() {
            eprintln!("{f}");
        } else {
            eprintln!("{}/{f}", dir.display());
        }
    }
    eprintln!("the bundle was not pushed: nothing was written");
    ExitCode::from(1)
}

/// Writes etcd's bundle into a new or empty directory: the revision on standard output.
pub fn pull(args: PullArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    let _entered = runtime.enter();
    let (etcd, layout) = args.etcd.open()?;
    if let Some(r) = args.revision
        && r <= 0
    {
        bail!("revision: `{r}` is no revision");
    }
    match std::fs::read_dir(&args.dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("`{}` is not empty", args.dir.display());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&args.dir)
                .with_context(|| format!("cannot create `{}`", args.dir.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", args.dir.display())),
    }
    let read = runtime
        .block_on(store::pull(&etcd, &layout, args.revision))
        .map_err(|e| anyhow!("pull: {e}"))?;
    // Only the layout's documents are written (what a sidecar could load), and nothing is
    // written when etcd holds anything else: a key such as `accounts/A/.git/config` would
    // otherwise become a file an operator's tools read in the pulled directory.
    for path in read.files.keys() {
        warden::fleet::access::access(path, warden::fleet::access::Verb::Get, None).map_err(
            |why| anyhow!("pull: etcd holds `{path}`, which is no document of a bundle ({why}): nothing was written"),
        )?;
    }
    for (path, text) in &read.files {
        // INVARIANT (paths stay inside): `etcd::relative` refused every key that is not a
        // relative path of plain components before it became a file's path.
        let file = args.dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .with_context(|| format!("cannot write `{}`", file.display()))?;
    }
    eprintln!(
        "pulled {} file(s) from `{}` at revision {}",
        read.files.len(),
        layout.bundle(),
        read.revision
    );
    super::write_stdout(format!("{}\n", read.revision).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

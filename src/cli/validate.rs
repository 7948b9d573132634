//! `warden validate --kind KIND FILE...`: every finding with file, JSON path and
//! line:column; a non-zero exit when any document has an error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use warden::json::Pos;
use warden::policy::{self, Finding, PolicyKind, Severity};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind of policy the files hold; without it, each argument is a bundle directory.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<PolicyKind>,
    /// Policy documents (JSON), or bundle directories when `--kind` is absent.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn parse_kind(s: &str) -> Result<PolicyKind, String> {
    PolicyKind::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.as_str()).collect();
        format!(
            "unknown policy kind `{s}`; expected one of {}",
            names.join(", ")
        )
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(kind) = args.kind else {
        return bundles(&args.files);
    };
    let mut errors = 0usize;
    let mut warnings = 0usize;
    let mut out = String::new();
    for path in &args.files {
        let shown = path.display();
        // The bundle's own file reader: regular files only, bounded, never blocking.
        let text = match warden::bundle::dir::read_file(path) {
            Ok(t) => t,
            Err(problem) => {
                let f = Finding {
                    severity: Severity::Error,
                    code: problem.code,
                    path: "$".into(),
                    pos: Pos::default(),
                    message: problem.message,
                };
                out.push_str(&format!("{shown}:{f}\n"));
                errors += 1;
                continue;
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let parsed = policy::parse_text(text, kind, &shown.to_string());
        for f in &parsed.findings {
            match f.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            out.push_str(&format!("{shown}:{f}\n"));
        }
    }
    super::write_stdout(out.as_bytes())?;
    let files = args.files.len();
    eprintln!("{files} file(s) checked: {errors} error(s), {warnings} warning(s)");
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// How long `warden validate` waits for a bundle's files: far beyond any healthy read, so
/// that only a hung file system (a stale network mount) reaches it.
pub const READ_LIMIT: Duration = Duration::from_secs(30);

/// Validates bundle directories: every finding, with the file inside the bundle.
fn bundles(dirs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    if let Some(file) = dirs.iter().find(|d| d.is_file()) {
        anyhow::bail!(
            "`{}` is not a bundle directory; for a policy file, name its kind with `--kind`",
            file.display()
        );
    }
    let mut errors = 0usize;
    let mut warnings = 0usize;
    let mut out = String::new();
    for dir in dirs {
        let loaded = warden::bundle::read_dir_within(dir, READ_LIMIT)
            .and_then(|files| warden::bundle::load_files(&files));
        let findings = match loaded {
            Ok(b) => b.warnings,
            // No bundle to report on (missing, not a directory, not read in time): one
            // line, which names the directory.
            Err(e) if e.is_about_the_bundle() => anyhow::bail!("{e}"),
            Err(e) => e.findings,
        };
        for f in &findings {
            match f.finding.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            let dir = dir.display().to_string();
            let dir = dir.trim_end_matches('/');
            // A finding about the bundle as a whole (too many files) has no file to name.
            if f.file.is_empty() {
                out.push_str(&format!("{dir}: {f}\n"));
            } else {
                out.push_str(&format!("{dir}/{f}\n"));
            }
        }
    }
    super::write_stdout(out.as_bytes())?;
    eprintln!(
        "{} bundle(s) checked: {errors} error(s), {warnings} warning(s)",
        dirs.len()
    );
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

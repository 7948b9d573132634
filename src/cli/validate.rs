//! `warden validate --kind KIND FILE...`: every finding with file, JSON path and
//! line:column; a non-zero exit when any document has an error.

use std::path::PathBuf;
use std::process::ExitCode;

use warden::policy::{self, PolicyKind, Severity};

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
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => {
                    out.push_str(&format!(
                        "{shown}: error[invalid-encoding] $: the file is not UTF-8\n"
                    ));
                    errors += 1;
                    continue;
                }
            },
            Err(e) => {
                out.push_str(&format!(
                    "{shown}: error[unreadable] $: cannot read the file: {e}\n"
                ));
                errors += 1;
                continue;
            }
        };
        let parsed = policy::parse_text(&text, kind, &shown.to_string());
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

/// Validates bundle directories: every finding, with the file inside the bundle.
fn bundles(dirs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    if let Some(file) = dirs.iter().find(|d| !d.is_dir()) {
        anyhow::bail!(
            "`{}` is not a bundle directory; for a policy file, name its kind with `--kind`",
            file.display()
        );
    }
    let mut errors = 0usize;
    let mut warnings = 0usize;
    let mut out = String::new();
    for dir in dirs {
        let findings = match warden::bundle::load_dir(dir) {
            Ok(b) => b.warnings,
            Err(e) => e.findings,
        };
        for f in &findings {
            match f.finding.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            out.push_str(&format!(
                "{}/{f}\n",
                dir.display().to_string().trim_end_matches('/')
            ));
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

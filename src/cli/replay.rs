//! `warden replay --log FILE [--bundle DIR] [--baseline DIR]`: decides a decision log again
//! against a candidate bundle and lists the decisions that would change, by principal,
//! action and reason. Exit status: 0 when nothing changed and every record was replayed,
//! 1 when a decision or reason changed, 3 when nothing changed but some lines were bad or
//! some records not replayable, 2 on an error.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use warden::replay::{self, Against, Config, Tally};
use warden::snapshot::Snapshot;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The decision log (JSON Lines, as `warden serve --decision-log` writes it).
    #[arg(long, value_name = "FILE")]
    log: PathBuf,
    /// The candidate bundle directory [default: examples/org].
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Compare with the records decided again against this bundle, instead of with the
    /// decisions the log holds.
    #[arg(long, value_name = "DIR")]
    baseline: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Bytes in one log line, at most; a longer line is skipped and reported.
    #[arg(long, value_name = "BYTES", default_value_t = replay::MAX_LINE_BYTES)]
    max_line_bytes: usize,
    /// Threads deciding records [default: one per core].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

fn load(dir: &Path) -> anyhow::Result<Snapshot> {
    let files = warden::bundle::read_dir_within(dir, super::validate::READ_LIMIT)
        .with_context(|| format!("cannot read the bundle `{}`", dir.display()))?;
    Snapshot::load_files(&files, 1)
        .with_context(|| format!("cannot load the bundle `{}`", dir.display()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = args.bundle.clone().unwrap_or_else(super::default_bundle);
    let candidate = load(&dir)?;
    let baseline = args.baseline.as_deref().map(load).transpose()?;
    let against = match &baseline {
        Some(b) => Against::Baseline(b),
        None => Against::Logged,
    };
    let file = File::open(&args.log)
        .with_context(|| format!("cannot open the decision log `{}`", args.log.display()))?;
    let mut config = Config {
        max_line_bytes: args.max_line_bytes,
        ..Config::default()
    };
    if let Some(jobs) = args.jobs {
        config.jobs = jobs.max(1);
    }
    let started = std::time::Instant::now();
    let tally = replay::replay(
        &mut BufReader::with_capacity(1 << 16, file),
        &candidate,
        &against,
        &config,
    )
    .with_context(|| format!("cannot read the decision log `{}`", args.log.display()))?;
    let elapsed = started.elapsed();
    let compared = match &args.baseline {
        Some(b) => format!("the baseline `{}`", b.display()),
        None => "the logged decisions".to_owned(),
    };
    let text = if args.json {
        format!("{}\n", report_json(&tally, &dir, &compared))
    } else {
        report(&tally, &dir, &compared, elapsed)
    };
    super::write_stdout(text.as_bytes())?;
    Ok(if tally.changed > 0 {
        ExitCode::from(1)
    } else if tally.skipped() > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// The report for people.
fn report(t: &Tally, candidate: &Path, compared: &str, elapsed: std::time::Duration) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replayed {} of {} records against `{}`, compared with {compared}, in {:.2}s",
        t.replayed,
        t.lines,
        candidate.display(),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  {} unchanged, {} changed ({} decisions flipped, {} reasons only)",
        t.unchanged,
        t.changed,
        t.flipped,
        t.changed - t.flipped
    );
    if t.check_on_logged_route > 0 {
        let _ = writeln!(
            out,
            "  {} Check records decided on their logged route (the candidate's listeners are not applied)",
            t.check_on_logged_route
        );
    }
    let not_replayable: u64 = t.not_replayable.values().sum();
    if not_replayable > 0 {
        let _ = writeln!(out, "not replayable: {not_replayable}");
        for (why, n) in &t.not_replayable {
            let _ = writeln!(out, "  {n}  {} ({})", why.describe(), why.as_str());
        }
    }
    if t.bad_lines > 0 {
        let _ = writeln!(out, "bad lines: {} (skipped)", t.bad_lines);
        for (line, message) in &t.bad {
            let _ = writeln!(out, "  line {line}: {message}");
        }
        if t.bad_lines > t.bad.len() as u64 {
            let _ = writeln!(out, "  ... and {} more", t.bad_lines - t.bad.len() as u64);
        }
    }
    if !t.groups.is_empty() {
        let _ = writeln!(out, "changes, by principal, action and reason:");
        for (key, group) in t.groups_sorted() {
            let _ = writeln!(
                out,
                "  {}  {}  {}  {} -> {}",
                group.count, key.principal, key.action, key.from, key.to
            );
            for e in &group.examples {
                let refusal = e
                    .refusal
                    .as_deref()
                    .map(|r| format!(" (refused: {r})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "      line {} decision {} on {}{refusal}",
                    e.line, e.decision_id, e.resource
                );
            }
        }
    }
    out
}

fn report_json(t: &Tally, candidate: &Path, compared: &str) -> serde_json::Value {
    let changes: Vec<_> = t
        .groups_sorted()
        .into_iter()
        .map(|(key, group)| {
            json!({
                "principal": key.principal,
                "action": key.action,
                "from": {"decision": key.from.decision, "reason": key.from.reason},
                "to": {"decision": key.to.decision, "reason": key.to.reason},
                "count": group.count,
                "examples": group.examples.iter().map(|e| json!({
                    "line": e.line,
                    "decision_id": e.decision_id,
                    "resource": e.resource,
                    "refusal": e.refusal,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let not_replayable: serde_json::Map<String, serde_json::Value> = t
        .not_replayable
        .iter()
        .map(|(why, n)| (why.as_str().to_owned(), json!(n)))
        .collect();
    json!({
        "candidate": candidate.display().to_string(),
        "compared_with": compared,
        "lines": t.lines,
        "replayed": t.replayed,
        "unchanged": t.unchanged,
        "changed": t.changed,
        "flipped": t.flipped,
        "check_on_logged_route": t.check_on_logged_route,
        "not_replayable": not_replayable,
        "bad_lines": {
            "count": t.bad_lines,
            "first": t.bad.iter().map(|(line, error)| json!({"line": line, "error": error})).collect::<Vec<_>>(),
        },
        "changes": changes,
    })
}

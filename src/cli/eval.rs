//! `warden eval [FILE]`: one case per line in, one decision per line out.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use warden::case::Case;
use warden::eval::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON Lines file of cases; standard input when absent.
    file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?,
        )),
        None => Box::new(BufReader::new(io::stdin().lock())),
    };
    let name = args
        .file
        .as_ref()
        .map_or_else(|| "<stdin>".to_owned(), |p| p.display().to_string());
    let stdout = io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    let mut disagreements = 0usize;
    for (n, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {} of `{name}`", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        match Case::parse(&line) {
            Ok(case) => {
                let outcome = case.evaluate();
                if let Some(expect) = case.expect
                    && expect != outcome.decision
                {
                    {
                        disagreements += 1;
                        eprintln!(
                            "{name}:{}: case `{}`: expected {expect}, decided {} ({})",
                            n + 1,
                            case.id.as_deref().unwrap_or("?"),
                            outcome.decision,
                            outcome.reason
                        );
                    }
                }
                serde_json::to_writer(&mut out, &answer(case.id.as_deref(), &outcome))?;
            }
            Err(e) => {
                // A line that carried `expect` but could not be decided disagrees too.
                if e.expected {
                    disagreements += 1;
                }
                eprintln!("{name}:{}: {}", n + 1, e.message);
                let refusal = Refusal {
                    id: e.id.as_deref(),
                    error: &e.message,
                };
                serde_json::to_writer(&mut out, &refusal)?;
            }
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if disagreements > 0 {
        eprintln!("{disagreements} case(s) disagree with `expect`");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// One answer line. A struct, not a `json!` map, so the field order is fixed whatever
/// features `serde_json` is built with.
#[derive(serde::Serialize)]
struct Answer<'a> {
    id: Option<&'a str>,
    decision: &'static str,
    reason: &'static str,
    denied_by: Option<&'static str>,
    statements: Vec<StatementAnswer<'a>>,
}

#[derive(serde::Serialize)]
struct StatementAnswer<'a> {
    kind: &'static str,
    /// The organization level of an SCP or RCP statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<usize>,
    policy: &'a str,
    index: usize,
    sid: Option<&'a str>,
    effect: &'static str,
}

/// The line for a case that could not be read.
#[derive(serde::Serialize)]
struct Refusal<'a> {
    id: Option<&'a str>,
    error: &'a str,
}

fn answer<'a>(id: Option<&'a str>, o: &'a Outcome) -> Answer<'a> {
    Answer {
        id,
        decision: o.decision.as_str(),
        reason: o.reason.as_str(),
        denied_by: o.denied_by.map(|k| k.as_str()),
        statements: o
            .statements
            .iter()
            .map(|m| StatementAnswer {
                kind: m.kind.as_str(),
                level: m.level,
                policy: &m.policy,
                index: m.index,
                sid: m.sid.as_deref(),
                effect: match m.effect {
                    warden::policy::Effect::Allow => "Allow",
                    warden::policy::Effect::Deny => "Deny",
                },
            })
            .collect(),
    }
}

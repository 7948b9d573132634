//! `warden eval [FILE]`: one case per line in, one decision per line out.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
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
        let answer = match Case::parse(&line) {
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
                decision_json(case.id.as_deref(), &outcome)
            }
            Err(e) => {
                // A line that carried `expect` but could not be decided disagrees too.
                if e.expected {
                    disagreements += 1;
                }
                eprintln!("{name}:{}: {}", n + 1, e.message);
                json!({"id": e.id, "error": e.message})
            }
        };
        serde_json::to_writer(&mut out, &answer)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if disagreements > 0 {
        eprintln!("{disagreements} case(s) disagree with `expect`");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn decision_json(id: Option<&str>, o: &Outcome) -> serde_json::Value {
    let statements: Vec<serde_json::Value> = o
        .statements
        .iter()
        .map(|m| {
            json!({
                "kind": m.kind.as_str(),
                "policy": &*m.policy,
                "index": m.index,
                "sid": m.sid.as_deref(),
                "effect": format!("{:?}", m.effect),
            })
        })
        .collect();
    json!({
        "id": id,
        "decision": o.decision.as_str(),
        "reason": o.reason.as_str(),
        "denied_by": o.denied_by.map(|k| k.as_str()),
        "statements": statements,
    })
}

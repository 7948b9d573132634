//! `warden test`: runs test suites against a bundle, offline, and reports failures and
//! statement coverage. Suites live beside the bundle, in `BUNDLE.tests/` (a sibling
//! directory, so the bundle loader and `warden push` never see them), or as named.
//!
//! Exit status: 0 when every check passed (and coverage reached `--threshold`), 1 when a
//! check failed or coverage is below the threshold, 2 on an error (a suite unreadable or
//! invalid, the bundle invalid, a request or a `who_can` query the service refuses).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::{Value, json};
use warden::service::{Limits, Service, ServiceConfig};
use warden::snapshot::Snapshot;
use warden::suite::run::{Coverage, TestResult, Universe};
use warden::suite::{self, Check, Suite, SuiteError, Test};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 every check passed and coverage reached the threshold; \
1 a check failed or coverage is below the threshold; 2 an error (a suite unreadable or \
invalid, the bundle invalid, a request or a `who_can` query the service refuses)."
)]
pub struct Args {
    /// The bundle directory [default: examples/org, from the working directory or the
    /// source tree the binary was built from].
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Suite files (`.json`) or directories of them [default: the bundle's suites, the
    /// sibling directory `BUNDLE.tests`].
    suites: Vec<PathBuf>,
    /// Run only the tests whose name contains this text (case-sensitive).
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Fail (exit 1) when statement coverage is below this percentage.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    threshold: Option<f64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also list passing tests, covered statements and the time to load and to test.
    #[arg(long, short)]
    verbose: bool,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a percentage from 0 to 100")),
    }
}

/// The suites of a bundle when none are named: the sibling directory `BUNDLE.tests`.
pub fn default_suites(bundle: &Path) -> anyhow::Result<PathBuf> {
    let named = match bundle.file_name() {
        Some(_) => bundle.to_path_buf(),
        None => bundle
            .canonicalize()
            .with_context(|| format!("cannot find the bundle `{}`", bundle.display()))?,
    }
    .to_path_buf();
    let Some(name) = named.file_name() else {
        anyhow::bail!(
            "the bundle `{}` has no name to find its suites by: name the suite files",
            bundle.display()
        );
    };
    let mut dir = name.to_os_string();
    dir.push(".tests");
    Ok(named.with_file_name(dir))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bundle_dir = args.bundle.clone().unwrap_or_else(super::default_bundle);
    let suites_paths = if args.suites.is_empty() {
        vec![default_suites(&bundle_dir)?]
    } else {
        args.suites.clone()
    };

    // The suites first: a typo in one is reported without waiting for a large bundle.
    let (suites, errors) = read_suites(&suites_paths);
    if !errors.is_empty() {
        return report_errors_only(&args, &errors);
    }
    let selected: Vec<(&Suite, &Test)> = suites
        .iter()
        .flat_map(|s| s.tests.iter().map(move |t| (s, t)))
        .filter(|(_, t)| args.filter.as_deref().is_none_or(|f| t.name.contains(f)))
        .collect();
    if selected.is_empty() {
        let why = match &args.filter {
            Some(f) => format!("`--filter {f}` selects no test"),
            None => "the suites hold no test".to_owned(),
        };
        anyhow::bail!("{why}: nothing was checked");
    }

    let started = Instant::now();
    let files =
        warden::bundle::read_dir_within(&bundle_dir, super::validate::READ_LIMIT).map_err(|e| {
            if e.is_about_the_bundle() {
                anyhow::Error::new(e)
            } else {
                anyhow::Error::new(e)
                    .context(format!("cannot load the bundle `{}`", bundle_dir.display()))
            }
        })?;
    let loaded = warden::bundle::load_files_with_places(&files)
        .with_context(|| format!("cannot load the bundle `{}`", bundle_dir.display()))?;
    let universe = Universe::of(&loaded);
    let snapshot = Snapshot::compile(&loaded, 1);
    drop(files);
    let service = Service::serving(
        snapshot,
        ServiceConfig {
            cache_size: 0,
            limits: Limits::default(),
        },
    );
    let load_time = started.elapsed();

    let started = Instant::now();
    let mut coverage = Coverage::new(universe);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let results = runtime.block_on(suite::run::run(&service, &selected, &mut coverage));
    let test_time = started.elapsed();

    let checks: usize = results.iter().map(|r| r.checks).sum();
    let passed: usize = results.iter().map(|r| r.passed).sum();
    let failed: usize = results
        .iter()
        .map(|r| r.failures.len() + r.who_can_failures.len() + r.assume_failures.len())
        .sum();
    let errors: usize = results.iter().map(|r| r.errors.len()).sum();
    let percent = coverage.percent();
    let below = args.threshold.is_some_and(|t| percent < t);
    let code: u8 = if errors > 0 {
        2
    } else if failed > 0 || below {
        1
    } else {
        0
    };
    let summary = Summary {
        tests: results.len(),
        checks,
        passed,
        failed,
        errors,
        percent,
        below,
        code,
        load_ms: load_time.as_secs_f64() * 1e3,
        test_ms: test_time.as_secs_f64() * 1e3,
    };
    let text = if args.json {
        format!("{}\n", report_json(&args, &results, &coverage, &summary))
    } else {
        report_text(&args, &results, &coverage, &summary)
    };
    super::write_stdout(text.as_bytes())?;
    Ok(ExitCode::from(code))
}

struct Summary {
    tests: usize,
    checks: usize,
    passed: usize,
    failed: usize,
    errors: usize,
    percent: f64,
    below: bool,
    code: u8,
    load_ms: f64,
    test_ms: f64,
}

/// Every suite under `paths`: a file as given, a directory's `.json` files (read as a
/// bundle is: regular files only, bounded, hidden entries skipped). Any other file in a
/// directory is an error, so that a suite named `x.JSON` is not silently left out.
fn read_suites(paths: &[PathBuf]) -> (Vec<Suite>, Vec<SuiteError>) {
    let mut suites = Vec::new();
    let mut errors = Vec::new();
    let mut budget = suite::MAX_CHECKS;
    let mut parse =
        |shown: String, text: &str, suites: &mut Vec<Suite>, errors: &mut Vec<SuiteError>| {
            match suite::parse(&shown, text, &mut budget) {
                Ok(s) => suites.push(s),
                Err(e) => errors.extend(e),
            }
        };
    let whole = |file: String, message: String| SuiteError {
        file,
        pos: None,
        message,
    };
    for path in paths {
        let shown = path.display().to_string();
        if path.is_dir() {
            match warden::bundle::read_dir_within(path, super::validate::READ_LIMIT) {
                Ok(files) => {
                    if files.is_empty() {
                        errors.push(whole(shown.clone(), "the directory holds no suite".into()));
                    }
                    for (rel, text) in &files {
                        let file = path.join(rel).display().to_string();
                        if !rel.ends_with(".json") {
                            errors.push(whole(
                                file,
                                "not a suite: a suites directory holds `.json` suite files only (hidden files are skipped)".into(),
                            ));
                            continue;
                        }
                        parse(file, text, &mut suites, &mut errors);
                    }
                }
                Err(e) => {
                    for f in e.findings {
                        let file = if f.file.is_empty() {
                            shown.clone()
                        } else {
                            path.join(&f.file).display().to_string()
                        };
                        errors.push(whole(file, f.finding.message));
                    }
                }
            }
        } else {
            match warden::bundle::dir::read_file(path) {
                Ok(text) => parse(shown, &text, &mut suites, &mut errors),
                Err(problem) if !path.exists() => errors.push(whole(
                    shown,
                    format!("no such suite file or directory ({})", problem.message),
                )),
                Err(problem) => errors.push(whole(shown, problem.message)),
            }
        }
    }
    (suites, errors)
}

/// The report when the suites could not be read: their errors, exit 2.
fn report_errors_only(args: &Args, errors: &[SuiteError]) -> anyhow::Result<ExitCode> {
    let text = if args.json {
        let list: Vec<Value> = errors.iter().map(error_json).collect();
        format!(
            "{}\n",
            json!({"errors": list, "summary": {"errors": errors.len(), "exit": 2}})
        )
    } else {
        let mut out = String::new();
        for e in errors {
            let _ = writeln!(out, "error: {e}");
        }
        let _ = writeln!(
            out,
            "warden test: {} error(s) in the suites; nothing was run",
            errors.len()
        );
        out
    };
    super::write_stdout(text.as_bytes())?;
    Ok(ExitCode::from(2))
}

fn context_text(c: &Check) -> String {
    if c.context.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = c
        .context
        .iter()
        .map(|(k, v)| format!("{k}={}", v.values().join(",")))
        .collect();
    format!(" context {}", entries.join(" "))
}

fn expected_text(c: &Check) -> String {
    let e = &c.expect;
    let mut out = e.decision.as_str().to_owned();
    if let Some(r) = e.reason {
        let _ = write!(out, " ({r})");
    }
    if !e.statements.is_empty() {
        let names: Vec<&str> = e.statements.iter().map(|s| s.value.as_str()).collect();
        let _ = write!(out, " decided by {}", names.join("; "));
    }
    out
}

fn report_text(args: &Args, results: &[TestResult], coverage: &Coverage, s: &Summary) -> String {
    let mut out = String::new();
    for r in results {
        let place = format!("{}:{}", r.file, r.pos);
        if r.failures.is_empty()
            && r.who_can_failures.is_empty()
            && r.assume_failures.is_empty()
            && r.errors.is_empty()
        {
            if args.verbose {
                let _ = writeln!(out, "PASS  {place} `{}` ({} checks)", r.name, r.checks);
            }
            continue;
        }
        for f in &r.failures {
            let c = &f.check;
            let _ = writeln!(out, "FAIL  {place} `{}`", r.name);
            let _ = writeln!(
                out,
                "      request at {}:{}: principal `{}` action `{}` resource `{}`{}",
                r.file,
                c.at,
                c.principal.value,
                c.action.value,
                c.resource.value,
                context_text(c)
            );
            let _ = writeln!(out, "      expected: {}", expected_text(c));
            let statements: Vec<String> = f
                .actual
                .statements
                .iter()
                .map(ToString::to_string)
                .collect();
            let by = if statements.is_empty() {
                String::new()
            } else {
                format!(" decided by {}", statements.join("; "))
            };
            let _ = writeln!(
                out,
                "      actual:   {} ({}){by}",
                f.actual.decision, f.actual.reason
            );
            if !f.missing_statements.is_empty() {
                let _ = writeln!(
                    out,
                    "      not among the deciding statements: {}",
                    f.missing_statements.join("; ")
                );
            }
        }
        for f in &r.who_can_failures {
            let _ = writeln!(out, "FAIL  {place} `{}`", r.name);
            let _ = writeln!(
                out,
                "      who can `{}` on `{}` is not the expected set",
                f.action, f.resource
            );
            for (name, why) in &f.unexpected {
                let _ = writeln!(out, "      allowed, not expected: `{name}` ({why})");
            }
            for name in &f.missing {
                let _ = writeln!(out, "      expected, not allowed: `{name}`");
            }
        }
        for f in &r.assume_failures {
            let _ = writeln!(out, "FAIL  {place} `{}`", r.name);
            let _ = writeln!(out, "      {}", f.asked);
            let _ = writeln!(out, "      expected: {}", f.expected);
            let _ = writeln!(out, "      actual:   {}", f.actual);
        }
        for e in &r.errors {
            let _ = writeln!(out, "ERROR {e}");
        }
    }
    let _ = writeln!(
        out,
        "coverage: {} of {} statements decided a check ({:.1}%)",
        coverage.covered(),
        coverage.total(),
        s.percent
    );
    for (st, why) in coverage.statements() {
        match why {
            Err(why) => {
                let _ = writeln!(
                    out,
                    "  uncovered {} {}: {}",
                    st.place(),
                    st.name(),
                    why.describe()
                );
            }
            Ok(n) if args.verbose => {
                let _ = writeln!(
                    out,
                    "  covered   {} {}: decided {n} check(s)",
                    st.place(),
                    st.name()
                );
            }
            Ok(_) => {}
        }
    }
    if args.verbose {
        let _ = writeln!(
            out,
            "time: loaded the bundle in {:.1} ms ({} statements counted); decided {} checks in {:.1} ms",
            s.load_ms,
            coverage.total(),
            s.checks,
            s.test_ms
        );
    }
    let threshold = match args.threshold {
        Some(t) if s.below => format!(", below the threshold of {t}%"),
        Some(t) => format!(" (threshold {t}%)"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "warden test: {} tests, {} checks: {} passed, {} failed, {} errors; coverage {:.1}%{threshold}",
        s.tests, s.checks, s.passed, s.failed, s.errors, s.percent
    );
    out
}

fn error_json(e: &SuiteError) -> Value {
    json!({
        "file": e.file,
        "line": e.pos.map(|p| p.line),
        "column": e.pos.map(|p| p.column),
        "message": e.message,
    })
}

fn report_json(args: &Args, results: &[TestResult], coverage: &Coverage, s: &Summary) -> Value {
    let tests: Vec<Value> = results
        .iter()
        .map(|r| {
            let failures: Vec<Value> = r
                .failures
                .iter()
                .map(|f| {
                    let c = &f.check;
                    let context: serde_json::Map<String, Value> = c
                        .context
                        .iter()
                        .map(|(k, v)| (k.to_owned(), json!(v.values())))
                        .collect();
                    json!({
                        "line": c.at.line,
                        "column": c.at.column,
                        "principal": c.principal.value,
                        "action": c.action.value,
                        "resource": c.resource.value,
                        "context": context,
                        "expected": {
                            "decision": c.expect.decision.as_str(),
                            "reason": c.expect.reason.map(|r| r.as_str()),
                            "statements": c.expect.statements.iter().map(|s| s.value.as_str()).collect::<Vec<_>>(),
                        },
                        "actual": {
                            "decision": f.actual.decision.as_str(),
                            "reason": f.actual.reason.as_str(),
                            "statements": f.actual.statements.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        },
                        "missing_statements": f.missing_statements,
                    })
                })
                .collect();
            json!({
                "file": r.file,
                "line": r.pos.line,
                "column": r.pos.column,
                "name": r.name,
                "checks": r.checks,
                "passed": r.passed,
                "failures": failures,
                "who_can_failures": r.who_can_failures.iter().map(|f| json!({
                    "action": f.action,
                    "resource": f.resource,
                    "unexpected": f.unexpected.iter().map(|(p, why)| json!({"principal": p, "why": why})).collect::<Vec<_>>(),
                    "missing": f.missing,
                })).collect::<Vec<_>>(),
                "assume_failures": r.assume_failures.iter().map(|f| json!({
                    "asked": f.asked,
                    "expected": f.expected,
                    "actual": f.actual,
                })).collect::<Vec<_>>(),
                "errors": r.errors.iter().map(error_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let statements: Vec<Value> = coverage
        .statements()
        .filter(|(_, why)| args.verbose || why.is_err())
        .map(|(st, why)| {
            let (file, line, column) = match &st.place {
                warden::suite::run::Place::File { file, pos } => {
                    (Some(file.to_string()), Some(pos.line), Some(pos.column))
                }
                warden::suite::run::Place::BuiltIn => (None, None, None),
            };
            let mut v = json!({
                "file": file,
                "line": line,
                "column": column,
                "kind": st.kind.as_str(),
                "policy": &*st.policy,
                "index": st.index,
                "sid": st.sid.as_deref(),
                "effect": match st.effect {
                    warden::policy::Effect::Allow => "Allow",
                    warden::policy::Effect::Deny => "Deny",
                },
                "name": st.name(),
            });
            if let Some(obj) = v.as_object_mut() {
                match why {
                    Ok(n) => {
                        obj.insert("decided".into(), json!(n));
                    }
                    Err(u) => {
                        obj.insert("uncovered".into(), json!(u.code()));
                        obj.insert("why".into(), json!(u.describe()));
                    }
                }
            }
            v
        })
        .collect();
    let key = if args.verbose {
        "statements"
    } else {
        "uncovered"
    };
    json!({
        "tests": tests,
        "coverage": {
            "statements": coverage.total(),
            "covered": coverage.covered(),
            "percent": s.percent,
            "threshold": args.threshold,
            "below_threshold": s.below,
            key: statements,
        },
        "summary": {
            "tests": s.tests,
            "checks": s.checks,
            "passed": s.passed,
            "failed": s.failed,
            "errors": s.errors,
            "exit": s.code,
            "load_ms": s.load_ms,
            "test_ms": s.test_ms,
        },
    })
}

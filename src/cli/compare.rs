//! `warden compare OLD NEW`: two policy files (of one `--kind`) or two bundle directories,
//! per action (and principal): equivalent, narrower, broader or incomparable; with
//! `--check`, one Access-Analyzer-style check. Every counterexample is decided again from
//! its printed form before it is shown, with the command lines that reproduce it.
//! Exit: 0 PASS (no new access, proven), 1 a counterexample or finding, 3 UNKNOWN,
//! 2 an error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context as _, anyhow, bail};
use warden::bundle::{self, Bundle};
use warden::case::Case;
use warden::compare::{
    self, Baseline, Counterexample, Grant, Limits, Relation, Report, Unknown, Verdict,
};
use warden::context::{CallerContext, Context};
use warden::eval::Decision;
use warden::policy::{self, Policy, PolicyKind, Severity};
use warden::snapshot::Snapshot;

use super::request::SessionArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The old policy file, or bundle directory.
    old: PathBuf,
    /// The new policy file, or bundle directory.
    new: PathBuf,
    /// The kind of the two policy files (identity, resource, trust, boundary, scp, rcp,
    /// session).
    #[arg(long, value_parser = parse_kind, default_value = "identity")]
    kind: PolicyKind,
    /// The bundle whose catalog gives the actions compared for two policy files
    /// [default: examples/org].
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// One check instead of the whole relation report.
    #[arg(long, value_enum)]
    check: Option<Check>,
    /// With `--check access-not-granted`: an action NEW must not allow (repeat).
    #[arg(long = "action", value_name = "ACTION")]
    actions: Vec<String>,
    /// With `--check access-not-granted`: only these resources (repeat); every resource
    /// when absent.
    #[arg(long = "resource", value_name = "ARN")]
    resources: Vec<String>,
    /// Witness requests decided per action (and principal) at most; beyond, UNKNOWN.
    #[arg(long, default_value_t = Limits::default().max_requests)]
    max_requests: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Check {
    /// NEW allows nothing OLD does not (PASS only when proven).
    NoNewAccess,
    /// NEW allows none of `--action` (on `--resource`, when given).
    AccessNotGranted,
    /// No resource or trust policy of NEW grants anonymous callers or `*`.
    NoPublicAccess,
    /// No resource or trust policy of NEW grants a principal outside the organization.
    NoCrossOrgAccess,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Check::NoNewAccess => "no-new-access",
            Check::AccessNotGranted => "access-not-granted",
            Check::NoPublicAccess => "no-public-access",
            Check::NoCrossOrgAccess => "no-cross-org-access",
        }
    }
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

/// What is compared: two policies or two bundles, loaded. Built once per run: the size
/// of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    Policies {
        old: (Arc<Policy>, String),
        new: (Arc<Policy>, String),
        catalog: Bundle,
    },
    Bundles {
        old: (Bundle, Snapshot),
        new: (Bundle, Snapshot),
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.check == Some(Check::AccessNotGranted) && args.actions.is_empty() {
        bail!("`--check access-not-granted` needs at least one `--action`");
    }
    if args.check != Some(Check::AccessNotGranted)
        && (!args.actions.is_empty() || !args.resources.is_empty())
    {
        bail!("`--action` and `--resource` go with `--check access-not-granted`");
    }
    // A resource that is not one would be refused by every side: "not granted" for a typo.
    for r in &args.resources {
        warden::request::parse_resource(r).map_err(|e| anyhow!("`--resource`: {e}"))?;
    }
    let loaded = match (args.old.is_dir(), args.new.is_dir()) {
        (true, true) => Loaded::Bundles {
            old: load_bundle(&args.old)?,
            new: load_bundle(&args.new)?,
        },
        (false, false) => {
            let dir = args.bundle.clone().unwrap_or_else(super::default_bundle);
            Loaded::Policies {
                old: load_policy(&args.old, args.kind)?,
                new: load_policy(&args.new, args.kind)?,
                catalog: load_bundle(&dir)?.0,
            }
        }
        _ => bail!(
            "`{}` and `{}` must both be policy files or both bundle directories",
            args.old.display(),
            args.new.display()
        ),
    };
    let limits = Limits {
        max_requests: args.max_requests.max(1),
        ..Limits::default()
    };
    match args.check {
        Some(c @ (Check::NoPublicAccess | Check::NoCrossOrgAccess)) => grants(&args, &loaded, c),
        _ => relation(&args, &loaded, limits),
    }
}

fn load_bundle(dir: &Path) -> anyhow::Result<(Bundle, Snapshot)> {
    let files = bundle::read_dir_within(dir, super::validate::READ_LIMIT).map_err(|e| {
        if e.is_about_the_bundle() {
            anyhow::Error::new(e)
        } else {
            anyhow::Error::new(e).context(format!("cannot load the bundle `{}`", dir.display()))
        }
    })?;
    let b = bundle::load_files(&files)
        .with_context(|| format!("cannot load the bundle `{}`", dir.display()))?;
    let s = Snapshot::compile(&b, 1);
    Ok((b, s))
}

/// Reads and validates a policy file; every error finding is reported with its place.
fn load_policy(path: &Path, kind: PolicyKind) -> anyhow::Result<(Arc<Policy>, String)> {
    let shown = path.display().to_string();
    let text = bundle::dir::read_file(path)
        .map_err(|p| anyhow!("cannot read `{shown}`: {}", p.message))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
    let parsed = policy::parse_text(&text, kind, &shown);
    let errors: Vec<String> = parsed
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{shown}:{f}"))
        .collect();
    match parsed.policy {
        Some(p) if errors.is_empty() => Ok((Arc::new(p), text)),
        _ => bail!(
            "`{shown}` is not a valid {} policy:\n{}",
            kind.as_str(),
            errors.join("\n")
        ),
    }
}

/// The relation report, `--check no-new-access` and `--check access-not-granted`.
fn relation(args: &Args, loaded: &Loaded, limits: Limits) -> anyhow::Result<ExitCode> {
    let baseline = if args.check == Some(Check::AccessNotGranted) {
        Baseline::Nothing
    } else {
        Baseline::Old
    };
    let scope = compare::Scope {
        resources: (!args.resources.is_empty()).then_some(args.resources.as_slice()),
        baseline,
        limits,
    };
    let report = match loaded {
        Loaded::Policies { old, new, catalog } => {
            let actions: Vec<String> = if args.actions.is_empty() {
                catalog
                    .catalog
                    .actions()
                    .map(|(s, a)| format!("{}:{}", s.prefix, a.name))
                    .collect()
            } else {
                for a in &args.actions {
                    catalog
                        .catalog
                        .action(a)
                        .with_context(|| format!("`{a}` is not an action of the catalog"))?;
                }
                args.actions.clone()
            };
            let place = |is_new: bool, s: &policy::Statement| {
                let file = if is_new { &args.new } else { &args.old };
                format!("{}:{}", file.display(), s.pos)
            };
            compare::compare_policies(
                args.kind,
                old.0.clone(),
                new.0.clone(),
                &actions,
                scope,
                &place,
            )
        }
        Loaded::Bundles { old, new } => {
            for a in &args.actions {
                if new.0.catalog.action(a).is_none() && old.0.catalog.action(a).is_none() {
                    bail!("`{a}` is not an action of either bundle's catalog");
                }
            }
            compare::compare_bundles(
                (&old.0, &old.1),
                (&new.0, &new.1),
                (!args.actions.is_empty()).then_some(args.actions.as_slice()),
                scope,
                SystemTime::now(),
            )
        }
    };
    // Every counterexample is decided again from the form it is printed in.
    let mut shown: Vec<Shown> = Vec::new();
    let mut unknowns: Vec<Unknown> = report.unknowns.clone();
    for c in report.compared.iter() {
        for (kind, cx) in [
            ("new access", &c.new_access),
            ("lost access", &c.lost_access),
        ] {
            let Some(cx) = cx else { continue };
            if kind == "lost access" && args.check.is_some() {
                continue;
            }
            match reproduce(args, loaded, cx) {
                Ok(commands) => shown.push(Shown {
                    kind,
                    counterexample: cx.clone(),
                    commands,
                }),
                Err(e) => unknowns.push(Unknown {
                    place: "-".into(),
                    feature: format!(
                        "a counterexample did not reproduce from its printed form: {e}"
                    ),
                }),
            }
            if args.check.is_some() {
                break;
            }
        }
    }
    let verified_new = shown.iter().any(|s| s.kind == "new access");
    let verdict = if verified_new {
        Verdict::Fail
    } else if unknowns.is_empty() && report.compared.iter().all(|c| c.complete) {
        Verdict::Pass
    } else {
        Verdict::Unknown
    };
    let out = if args.json {
        json_report(args, &report, &shown, &unknowns, verdict)?
    } else {
        text_report(args, &report, &shown, &unknowns, verdict)
    };
    super::write_stdout(out.as_bytes())?;
    Ok(exit(verdict))
}

fn exit(v: Verdict) -> ExitCode {
    match v {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
        Verdict::Unknown => ExitCode::from(3),
    }
}

/// A counterexample with the command lines that reproduce it (OLD's, then NEW's).
#[derive(serde::Serialize)]
struct Shown {
    kind: &'static str,
    counterexample: Counterexample,
    commands: Vec<String>,
}

/// Quotes a word for a POSIX shell when it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Decides the counterexample again from its printed form on each side and returns the
/// command lines; `Err` when a side decides otherwise or the form cannot say it.
fn reproduce(args: &Args, loaded: &Loaded, cx: &Counterexample) -> anyhow::Result<Vec<String>> {
    let r = &cx.request;
    match loaded {
        Loaded::Bundles { old, new } => {
            let mut pairs: Vec<String> = Vec::new();
            for (k, vs) in &r.context {
                if vs.is_empty() {
                    bail!(
                        "the context key `{k}` holds an empty list, which `--context` cannot write"
                    );
                }
                pairs.extend(vs.iter().map(|v| format!("{k}={v}")));
            }
            let ctx = Context::from_pairs(&pairs).map_err(anyhow::Error::msg)?;
            // The session's flags, read back as `warden authorize` reads them: the session
            // decided below is the one the printed lines give.
            let session_words = r.session.as_ref().map(session_flags).unwrap_or_default();
            let now = SystemTime::now();
            let session = {
                #[derive(clap::Parser)]
                struct Flags {
                    #[command(flatten)]
                    session: SessionArgs,
                }
                let words = std::iter::once("authorize".to_owned()).chain(session_words.clone());
                let flags = <Flags as clap::Parser>::try_parse_from(words)
                    .map_err(|e| anyhow!("the session's flags do not parse: {e}"))?;
                flags.session.session(&r.principal, now)?
            };
            if session.is_some() != r.session.is_some() {
                bail!("the session's flags give no session");
            }
            let mut commands = Vec::new();
            let sides = [
                (
                    &args.old,
                    &old.1,
                    cx.old,
                    args.check == Some(Check::AccessNotGranted),
                ),
                (&args.new, &new.1, cx.new, false),
            ];
            for (dir, snapshot, expected, skip) in sides {
                if skip {
                    continue;
                }
                // Screened as the service screens it (`warden authorize`): a snapshot's
                // web identity token keys are the server's.
                let context = CallerContext::screen_with(
                    ctx.clone(),
                    |k| snapshot.is_web_identity_key(k),
                    |_| {},
                );
                let got = snapshot
                    .ask_as(
                        &r.principal,
                        session.as_ref(),
                        &r.action,
                        &r.resource,
                        &context,
                        now,
                    )
                    .map_or(Decision::ImplicitDeny, |a| a.outcome.decision);
                if got != expected {
                    bail!(
                        "`{}` decides {got} where the comparison found {expected}",
                        dir.display()
                    );
                }
                let mut words = vec![
                    "warden".to_owned(),
                    "authorize".into(),
                    "--bundle".into(),
                    quote(&dir.display().to_string()),
                    "--principal".into(),
                    quote(&r.principal),
                    "--action".into(),
                    quote(&r.action),
                    "--resource".into(),
                    quote(&r.resource),
                ];
                for p in &pairs {
                    words.push("--context".into());
                    words.push(quote(p));
                }
                words.extend(session_words.iter().map(|w| quote(w)));
                commands.push(words.join(" "));
            }
            Ok(commands)
        }
        Loaded::Policies { old, new, .. } => {
            let mut commands = Vec::new();
            let sides = [
                (&old.1, cx.old, args.check == Some(Check::AccessNotGranted)),
                (&new.1, cx.new, false),
            ];
            for (text, expected, skip) in sides {
                if skip {
                    continue;
                }
                let Some(line) = case_line(args.kind, text, cx, expected)? else {
                    // A principal a case cannot name (anonymous, a service): decided in
                    // process by the same engine, with no command line to print.
                    continue;
                };
                let case = Case::parse(&line).map_err(|e| anyhow!("{e}"))?;
                let got = case.evaluate().decision;
                if got != expected {
                    bail!("the case decides {got} where the comparison found {expected}");
                }
                commands.push(format!("printf '%s\\n' {} | warden eval", quote(&line)));
            }
            Ok(commands)
        }
    }
}

/// `warden authorize`'s flags for a witness session, unquoted.
fn session_flags(f: &compare::SessionFacts) -> Vec<String> {
    let mut out = vec!["--issued-at".to_owned(), f.issued_at_text()];
    if let Some(age) = f.mfa_age {
        out.extend(["--mfa-age".to_owned(), age.to_string()]);
    }
    if let Some(si) = &f.source_identity {
        out.extend(["--source-identity".to_owned(), si.clone()]);
    }
    for (k, v) in &f.tags {
        out.extend(["--session-tag".to_owned(), format!("{k}={v}")]);
    }
    if f.capped {
        out.extend([
            "--session-policy".to_owned(),
            compare::CAPPING_SESSION_POLICY.to_owned(),
        ]);
    }
    out
}

/// The counterexample as a `warden eval` case: the policy in its layer, the others
/// allowing everything, and the resource in the account the comparison used.
fn case_line(
    kind: PolicyKind,
    text: &str,
    cx: &Counterexample,
    expected: Decision,
) -> anyhow::Result<Option<String>> {
    use serde_json::{Map, Value, json};
    let r = &cx.request;
    let Some(principal) = compare::principal_of(&r.principal) else {
        return Ok(None);
    };
    if !principal.arn.starts_with("arn:") {
        return Ok(None);
    }
    let policy: Value = serde_json::from_str(text).context("the policy is not JSON")?;
    let allow_all = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]});
    let mut context = Map::new();
    for (k, vs) in &r.context {
        let v = match vs.as_slice() {
            [one] => Value::String(one.clone()),
            _ => Value::Array(vs.iter().cloned().map(Value::String).collect()),
        };
        context.insert(k.clone(), v);
    }
    let mut case = Map::new();
    case.insert("id".into(), json!("compare"));
    case.insert(
        "request".into(),
        json!({
            "principal": r.principal,
            "action": r.action,
            "resource": r.resource,
            "resource_account": compare::PolicySide::resource_account(kind, &principal.account),
            "context": context,
        }),
    );
    let layer = match kind {
        PolicyKind::Identity => "identity_policies",
        PolicyKind::Resource | PolicyKind::Trust => "resource_policy",
        PolicyKind::Boundary => "permission_boundary",
        PolicyKind::Session => "session_policy",
        PolicyKind::Scp => "scps",
        PolicyKind::Rcp => "rcps",
    };
    if kind != PolicyKind::Identity {
        case.insert("identity_policies".into(), json!([allow_all]));
    }
    let value = match kind {
        PolicyKind::Identity => json!([policy]),
        PolicyKind::Scp | PolicyKind::Rcp => json!([[policy]]),
        _ => policy,
    };
    case.insert(layer.into(), value);
    case.insert("expect".into(), json!(expected.as_str()));
    Ok(Some(serde_json::to_string(&Value::Object(case))?))
}

/// A witness session for people: ` (a session: MFA 3599 s ago, issued ...)`.
fn session_text(f: &compare::SessionFacts) -> String {
    let mut parts = Vec::new();
    match f.mfa_age {
        Some(age) => parts.push(format!("MFA {age} s ago")),
        None => parts.push("no MFA".to_owned()),
    }
    parts.push(format!("issued {}", f.issued_at_text()));
    if let Some(si) = &f.source_identity {
        parts.push(format!("source identity {si}"));
    }
    for (k, v) in &f.tags {
        parts.push(format!("tag {k}={v}"));
    }
    if f.capped {
        parts.push("a session policy that allows nothing".to_owned());
    }
    format!(" (a session: {})", parts.join(", "))
}

fn context_text(c: &[(String, Vec<String>)]) -> String {
    if c.is_empty() {
        return "no context".into();
    }
    let parts: Vec<String> = c
        .iter()
        .map(|(k, vs)| match vs.as_slice() {
            [one] => format!("{k}={one}"),
            _ => format!("{k}=[{}]", vs.join(", ")),
        })
        .collect();
    format!("context {}", parts.join(" "))
}

fn text_report(
    args: &Args,
    report: &Report,
    shown: &[Shown],
    unknowns: &[Unknown],
    verdict: Verdict,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut counts = [0usize; 5];
    for c in &report.compared {
        let i = match c.relation {
            Relation::Equivalent => 0,
            Relation::Narrower => 1,
            Relation::Broader => 2,
            Relation::Incomparable => 3,
            Relation::Unknown => 4,
        };
        if let Some(n) = counts.get_mut(i) {
            *n += 1;
        }
        if args.check.is_none() && c.relation != Relation::Equivalent {
            let who = c
                .principal
                .as_ref()
                .map(|p| format!("{p} "))
                .unwrap_or_default();
            let _ = writeln!(out, "{who}{}: {}", c.action, c.relation.as_str());
        }
    }
    for s in shown {
        let r = &s.counterexample.request;
        let _ = writeln!(
            out,
            "{}: {} by {}{} on {} with {}: OLD {}, NEW {}",
            s.kind,
            r.action,
            r.principal,
            r.session.as_ref().map_or_else(String::new, session_text),
            r.resource,
            context_text(&r.context),
            s.counterexample.old,
            s.counterexample.new
        );
        for c in &s.commands {
            let _ = writeln!(out, "  {c}");
        }
    }
    for u in unknowns {
        let _ = writeln!(out, "undecided: {}: {}", u.place, u.feature);
    }
    let [eq, narrower, broader, incomparable, unknown] = counts;
    let _ = writeln!(
        out,
        "{eq} equivalent, {narrower} narrower, {broader} broader, {incomparable} incomparable, {unknown} unknown ({} requests decided on each side)",
        report.requests
    );
    let name = args.check.map_or("no-new-access", Check::as_str);
    let _ = writeln!(
        out,
        "{name}: {}",
        match verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Unknown => "UNKNOWN",
        }
    );
    out
}

fn json_report(
    args: &Args,
    report: &Report,
    shown: &[Shown],
    unknowns: &[Unknown],
    verdict: Verdict,
) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        check: &'static str,
        verdict: Verdict,
        /// Every comparison whose relation is not `equivalent`.
        compared: Vec<&'a compare::Compared>,
        equivalent: usize,
        counterexamples: &'a [Shown],
        unknowns: &'a [Unknown],
        requests: u64,
    }
    let out = Out {
        check: args.check.map_or("no-new-access", Check::as_str),
        verdict,
        compared: report
            .compared
            .iter()
            .filter(|c| c.relation != Relation::Equivalent)
            .collect(),
        equivalent: report
            .compared
            .iter()
            .filter(|c| c.relation == Relation::Equivalent)
            .count(),
        counterexamples: shown,
        unknowns,
        requests: report.requests,
    };
    Ok(format!("{}\n", serde_json::to_string(&out)?))
}

/// `--check no-public-access` and `--check no-cross-org-access`: NEW's resource and
/// trust policies, statement by statement.
fn grants(args: &Args, loaded: &Loaded, check: Check) -> anyhow::Result<ExitCode> {
    let (policies, members): (Vec<(String, Arc<Policy>)>, BTreeSet<String>) = match loaded {
        Loaded::Policies { new, catalog, .. } => {
            if !matches!(args.kind, PolicyKind::Resource | PolicyKind::Trust) {
                bail!(
                    "`--check {}` reads resource and trust policies, not {} policies",
                    check.as_str(),
                    args.kind.as_str()
                );
            }
            (
                vec![(args.new.display().to_string(), new.0.clone())],
                members(catalog),
            )
        }
        Loaded::Bundles { new, .. } => (compare::bundle_policies(&new.0), members(&new.0)),
    };
    let found: Vec<Grant> = match check {
        Check::NoPublicAccess => compare::public_grants(&policies),
        _ => compare::cross_org_grants(&policies, &members),
    };
    let verdict = if found.iter().any(|g| g.definite) {
        Verdict::Fail
    } else if found.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Unknown
    };
    let out = if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            check: &'static str,
            verdict: Verdict,
            findings: &'a [Grant],
        }
        format!(
            "{}\n",
            serde_json::to_string(&Out {
                check: check.as_str(),
                verdict,
                findings: &found,
            })?
        )
    } else {
        let mut out = String::new();
        for g in &found {
            let what = if g.definite { "" } else { " (undecided)" };
            out.push_str(&format!("{}: {}{what}\n", g.place, g.finding));
        }
        let v = match verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Unknown => "UNKNOWN",
        };
        out.push_str(&format!("{}: {v}\n", check.as_str()));
        out
    };
    super::write_stdout(out.as_bytes())?;
    Ok(exit(verdict))
}

/// The organization's accounts; without an organization, the bundle's accounts.
fn members(b: &Bundle) -> BTreeSet<String> {
    fn walk(u: &bundle::OrgUnit, out: &mut BTreeSet<String>) {
        out.extend(u.accounts.iter().map(|a| a.id.clone()));
        for child in &u.units {
            walk(child, out);
        }
    }
    let mut out = BTreeSet::new();
    match &b.organization {
        Some(o) => {
            out.insert(o.management_account.clone());
            walk(&o.root, &mut out);
        }
        None => out.extend(b.accounts.keys().cloned()),
    }
    out
}

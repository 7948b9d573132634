//! `warden loadgen`: drives Authorize or Envoy's Check (`--face check`) on a running server
//! with a set concurrency, number of connections, count or duration and optional rate, and
//! prints a ghz-style summary. `--baseline` then runs the same load against a
//! constant-answer server it starts itself in a process of its own (as the server under
//! test runs in its own), so the cost of deciding shows as a ratio measured in the same run.
//! `--serve-baseline-at ADDR` runs that server alone: Envoy's constant ext_authz server.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use serde::Deserialize;
use warden::bench::baseline::{self, Answers, Baseline};
use warden::bench::loadgen::{Plan, Report};
use warden::grpc::client::{self, HttpAsk, Prepared};
use warden::grpc::pb::AuthorizeRequest;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: `HOST:PORT`, `http://HOST:PORT` or `unix:/PATH`.
    #[arg(long, env = "WARDEN_ADDR", default_value = "127.0.0.1:50051")]
    addr: String,
    /// Requests in flight at once.
    #[arg(short = 'c', long, default_value_t = 50)]
    concurrency: usize,
    /// HTTP/2 connections the requests share.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Requests to send in all.
    #[arg(short = 'n', long)]
    total: Option<u64>,
    /// Or send for this long (`10s`); default 10s when neither is given.
    #[arg(short = 'z', long)]
    duration: Option<String>,
    /// Requests per second over all workers; unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// JSON Lines of requests to cycle through: {"principal", "action", "resource",
    /// "context": {"key": "value" | ["v1", "v2"]}}.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// The principal, when there is no data file.
    #[arg(
        long,
        default_value = "arn:aws:iam::333333333333:user/engineering/alice"
    )]
    principal: String,
    #[arg(long, default_value = "orders:GetOrder")]
    action: String,
    #[arg(long, default_value = "arn:aws:orders:us-east-1:333333333333:order/42")]
    resource: String,
    /// A context entry `key=value`; repeat a key for a list.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// The face to drive: `authorize` (`warden.v1.Authorizer/Authorize`) or `check`
    /// (Envoy's `envoy.service.auth.v3.Authorization/Check`).
    #[arg(long, value_parser = ["authorize", "check"], default_value = "authorize")]
    face: String,
    /// Check: the HTTP method of the request Envoy asks about.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Check: its path, with the query string.
    #[arg(long, default_value = "/orders/42")]
    path: String,
    /// Check: its host (`:authority`).
    #[arg(long, default_value = "orders.example.com")]
    host: String,
    /// Check: a request header `name=value` (repeat for more).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Check: the listener (`warden.listener` context extension); none means `default`.
    #[arg(long)]
    listener: Option<String>,
    /// Check: the peer certificate's URI SAN (SPIFFE id), for an mTLS principal.
    #[arg(long, value_name = "URI")]
    peer_principal: Option<String>,
    /// Also load a constant-answer server started in this process, and compare.
    #[arg(long)]
    baseline: bool,
    /// Serve the constant-answer server (Authorize and Check, both allowing) at this
    /// address until interrupted: the ext_authz server to put Envoy in front of, to measure
    /// what deciding costs through Envoy.
    #[arg(long, value_name = "ADDR")]
    serve_baseline_at: Option<SocketAddr>,
    /// Run target and baseline this many times, alternating, and report the median.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The server's process id: report the CPU time it spent per request (Linux), a
    /// figure that other processes on the machine disturb less than throughput.
    #[arg(long, value_name = "PID")]
    target_pid: Option<u32>,
    /// Internal: serve as the baseline, answering with this (base64 protobuf) response.
    #[arg(long, hide = true, value_name = "ANSWER")]
    serve_baseline: Option<String>,
    /// Worker threads of the generator's runtime (default: one per CPU). On a machine it
    /// shares with the server, fewer threads than CPUs between the two keeps either from
    /// waiting for the other's time slice.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Worker threads of the baseline server (match the server under test).
    #[arg(long, default_value_t = 2)]
    baseline_workers: usize,
    /// Output format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    format: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    principal: String,
    action: String,
    resource: String,
    #[serde(default)]
    context: std::collections::BTreeMap<String, OneOrMany>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The prepared requests of one face.
#[derive(Clone)]
enum Load {
    Authorize(Arc<[AuthorizeRequest]>),
    Check(Arc<[CheckRequest]>),
}

fn load(args: &Args) -> anyhow::Result<Load> {
    if args.face != "check" {
        return Ok(Load::Authorize(requests(args)?.into()));
    }
    if args.data.is_some() {
        bail!("`--data` holds Authorize requests; describe the Check request with its flags");
    }
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                .ok_or_else(|| anyhow!("`--header {h}`: expected NAME=VALUE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ask = HttpAsk {
        method: args.method.clone(),
        host: args.host.clone(),
        path: args.path.clone(),
        headers,
        extensions: args
            .listener
            .iter()
            .map(|l| ("warden.listener".to_owned(), l.clone()))
            .collect(),
        peer: "127.0.0.1".to_owned(),
        peer_principal: args.peer_principal.clone().unwrap_or_default(),
    };
    Ok(Load::Check(vec![client::check_request(&ask)].into()))
}

fn requests(args: &Args) -> anyhow::Result<Vec<AuthorizeRequest>> {
    use warden::context::{Context, ContextValue};
    let Some(path) = &args.data else {
        let context =
            warden::context::Context::from_pairs(&args.context).map_err(|e| anyhow!(e))?;
        return Ok(vec![client::authorize_request(
            &args.principal,
            &args.action,
            &args.resource,
            &context,
            false,
        )]);
    };
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read `{}`", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a request", path.display(), n + 1))?;
        let mut context = Context::new();
        for (k, v) in l.context {
            let v = match v {
                OneOrMany::One(s) => ContextValue::Single(s),
                OneOrMany::Many(v) => ContextValue::Multi(v),
            };
            context.insert(&k, v);
        }
        out.push(client::authorize_request(
            &l.principal,
            &l.action,
            &l.resource,
            &context,
            false,
        ));
    }
    if out.is_empty() {
        bail!("`{}` holds no request", path.display());
    }
    Ok(out)
}

async fn drive(addr: &str, args: &Args, plan: Plan, load: Load) -> anyhow::Result<Report> {
    let timeout = std::time::Duration::from_secs(5);
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(client::connect(addr, timeout).await?);
    }
    let first = channels
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("no connection to `{addr}`"))?;
    // Encoded once: the generator sends bytes.
    let (path, encoded) = match &load {
        Load::Authorize(r) => (client::AUTHORIZE_PATH, client::encoded(r)),
        Load::Check(r) => (client::CHECK_PATH, client::encoded(r)),
    };
    let report = warden::bench::loadgen::run(plan, |w| {
        let channel = channels
            .get(w % channels.len())
            .cloned()
            .unwrap_or_else(|| first.clone());
        Prepared::new(channel, path, encoded.clone())
    })
    .await
    .context("cannot start the load generator")?;
    Ok(report)
}

/// CPU time (user + system) a process has used, from `/proc/PID/stat`; `None` off Linux.
fn cpu_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI Rust targets.
    Some(std::time::Duration::from_millis((user + system) * 10))
}

/// Runs `f` and returns the CPU microseconds `pid` spent per request in it.
fn with_cpu(
    pid: Option<u32>,
    f: impl FnOnce() -> anyhow::Result<Report>,
) -> anyhow::Result<(Report, Option<f64>)> {
    let before = pid.and_then(cpu_time);
    let report = f()?;
    let after = pid.and_then(cpu_time);
    let per_request = match (before, after) {
        (Some(b), Some(a)) if report.count > 0 => {
            Some(a.saturating_sub(b).as_secs_f64() * 1e6 / report.count as f64)
        }
        _ => None,
    };
    Ok((report, per_request))
}

/// The baseline server in a child process; dropping it ends the child.
struct BaselineProcess {
    child: std::process::Child,
    addr: String,
}

impl BaselineProcess {
    fn spawn(answers: &Answers, workers: usize) -> anyhow::Result<Self> {
        use base64::Engine as _;
        use std::process::{Command, Stdio};
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(baseline::encode_answers(answers));
        let exe = std::env::current_exe().context("cannot find the warden binary")?;
        let mut child = Command::new(exe)
            .args(["load", "--baseline-workers", &workers.to_string()])
            .args(["--serve-baseline", &encoded])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the baseline server")?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            bail!("the baseline server did not start: {line:?}");
        };
        Ok(BaselineProcess {
            addr: addr.to_owned(),
            child,
        })
    }
}

impl Drop for BaselineProcess {
    fn drop(&mut self) {
        // Closing its standard input tells the child to stop; a kill makes sure.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--serve-baseline-at`: the constant-answer server alone, until SIGINT or SIGTERM.
fn serve_baseline_at(addr: SocketAddr, workers: usize) -> anyhow::Result<ExitCode> {
    let server = Baseline::start(workers, Answers::allow(), addr)
        .with_context(|| format!("cannot start the baseline server on `{addr}`"))?;
    println!("listening {}", server.addr());
    std::io::Write::flush(&mut std::io::stdout())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    drop(server);
    Ok(ExitCode::SUCCESS)
}

/// The child side of `--baseline`: serve until standard input closes.
fn serve_baseline(encoded: &str, workers: usize) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .context("the baseline answer is not base64")?;
    let answers =
        baseline::decode_answers(&bytes).context("the baseline answer does not decode")?;
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let server =
        Baseline::start(workers, answers, any).context("cannot start the baseline server")?;
    println!("listening {}", server.addr());
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
    drop(server);
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(encoded) = &args.serve_baseline {
        return serve_baseline(encoded, args.baseline_workers);
    }
    if let Some(addr) = args.serve_baseline_at {
        return serve_baseline_at(addr, args.baseline_workers);
    }
    let duration = match (&args.duration, args.total) {
        (Some(d), _) => Some(super::serve::parse_duration("duration", d)?),
        (None, None) => Some(std::time::Duration::from_secs(10)),
        (None, Some(_)) => None,
    };
    let plan = Plan {
        concurrency: args.concurrency.max(1),
        total: args.total,
        duration,
        rate: args.rate,
    };
    let load = load(&args)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let baseline = if args.baseline {
        // The baseline sends back what the server answered, so both runs move the same bytes.
        let answers = runtime.block_on(async {
            let channel = client::connect(&args.addr, std::time::Duration::from_secs(5)).await?;
            let timeout = std::time::Duration::from_secs(5);
            let refused =
                |s: tonic::Status| anyhow!("the server refused: {:?}: {}", s.code(), s.message());
            let mut answers = Answers::allow();
            match &load {
                Load::Authorize(r) => {
                    let first = r.first().cloned().unwrap_or_default();
                    answers.authorize = client::authorize(channel, first, timeout)
                        .await
                        .map_err(refused)?;
                }
                Load::Check(r) => {
                    let first = r.first().cloned().unwrap_or_default();
                    answers.check = client::check(channel, first, timeout)
                        .await
                        .map_err(refused)?;
                }
            }
            anyhow::Ok(answers)
        })?;
        Some(BaselineProcess::spawn(&answers, args.baseline_workers)?)
    } else {
        None
    };
    // Say up front how long this takes: rounds of both servers add up (5 rounds of the
    // default 10 s against the baseline is 100 s).
    let runs = args.rounds.max(1) * if baseline.is_some() { 2 } else { 1 };
    let against = if baseline.is_some() {
        "warden and the no-op baseline, alternating"
    } else {
        "warden"
    };
    match duration {
        Some(d) => eprintln!(
            "loadgen: {runs} run(s) of {d:?} against {against}: about {:?}",
            d * u32::try_from(runs).unwrap_or(u32::MAX)
        ),
        None => eprintln!(
            "loadgen: {runs} run(s) of {} requests against {against}",
            args.total.unwrap_or_default()
        ),
    }
    // Rounds alternate target and baseline, so a machine whose load drifts (other
    // processes) weighs on both alike; the median round is reported.
    let mut rounds: Vec<(Report, Option<Report>)> = Vec::new();
    let (mut target_cpu, mut base_cpu) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds.max(1) {
        let (target, cpu) = with_cpu(args.target_pid, || {
            runtime.block_on(drive(&args.addr, &args, plan, load.clone()))
        })?;
        target_cpu.extend(cpu);
        let base = match &baseline {
            Some(server) => {
                let (report, cpu) = with_cpu(Some(server.child.id()), || {
                    runtime.block_on(drive(&server.addr, &args, plan, load.clone()))
                })?;
                base_cpu.extend(cpu);
                Some(report)
            }
            None => None,
        };
        rounds.push((target, base));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let (target_cpu, base_cpu) = (median(target_cpu), median(base_cpu));
    let ratio_of = |(t, b): &(Report, Option<Report>)| {
        b.as_ref().filter(|b| b.rps > 0.0).map(|b| t.rps / b.rps)
    };
    let mut ratios: Vec<f64> = rounds.iter().filter_map(ratio_of).collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios.get(ratios.len() / 2).copied();
    // The round whose target throughput is the median.
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|a, b| {
        let rps = |i: &usize| rounds.get(*i).map_or(0.0, |r| r.0.rps);
        rps(a).total_cmp(&rps(b))
    });
    let median = order.get(order.len() / 2).copied().unwrap_or(0);
    let Some((target, base)) = rounds.get(median) else {
        bail!("no round ran");
    };
    if args.format == "json" {
        let per_round: Vec<_> = rounds
            .iter()
            .map(|r| {
                serde_json::json!({
                    "target_rps": r.0.rps,
                    "baseline_rps": r.1.as_ref().map(|b| b.rps),
                    "throughput_vs_baseline": ratio_of(r),
                })
            })
            .collect();
        let out = serde_json::json!({
            "target": target,
            "baseline": base,
            "throughput_vs_baseline": ratio,
            "rounds": per_round,
            "target_cpu_us_per_request": target_cpu,
            "baseline_cpu_us_per_request": base_cpu,
        });
        println!("{out}");
    } else {
        print!(
            "{}",
            target.summary(&match load {
                Load::Authorize(_) => format!("warden.v1.Authorizer/Authorize on {}", args.addr),
                Load::Check(_) =>
                    format!("envoy.service.auth.v3.Authorization/Check on {}", args.addr),
            })
        );
        if let Some(b) = base {
            println!();
            print!(
                "{}",
                b.summary("baseline: constant-answer server, same requests")
            );
        }
        if rounds.len() > 1 {
            println!("\nRounds (target rps / baseline rps):");
            for r in &rounds {
                let b =
                    r.1.as_ref()
                        .map_or_else(|| "-".to_owned(), |b| format!("{:.0}", b.rps));
                println!("  {:.0} / {b}", r.0.rps);
            }
        }
        if let Some(t) = target_cpu {
            println!("\nServer CPU per request: {t:.1} µs (median round)");
        }
        if let Some(b) = base_cpu {
            println!("Baseline CPU per request: {b:.1} µs (median round)");
        }
        if let Some(r) = ratio {
            println!(
                "\nThroughput vs baseline: {:.1} % (median of {} rounds)",
                r * 100.0,
                ratios.len()
            );
        }
    }
    Ok(if target.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

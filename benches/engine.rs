//! Engine benchmarks on the conformance corpus: compiling cases and policy documents, and
//! evaluating compiled cases, both over the whole corpus and case by case (median and p99
//! across cases, the figures issue 2 sets targets for). Figures go in `BENCHMARKS.md`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use criterion::{Criterion, Throughput};
use warden::case::Case;
use warden::policy::{PolicyKind, parse_text};

const CORPUS: &str = "tests/conformance/generated.jsonl";

/// A batch of evaluations of one case runs at least this long, so the clock's resolution
/// and the cost of reading it vanish in the per-evaluation figure.
const MIN_BATCH: Duration = Duration::from_micros(50);
/// Cases in the cache-resident slice of the corpus: at about 11 KiB per compiled case
/// these fit in a 512 KiB L2, where the whole corpus (33 MB) does not fit in any cache.
const HOT_CASES: usize = 16;
/// Batches timed per case; the case's figure is their median, which shrugs off a batch
/// hit by another process on a shared machine.
const BATCHES: usize = 5;

fn main() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let cases = lines
        .iter()
        .enumerate()
        .map(|(n, l)| Case::parse(l).map_err(|e| anyhow::anyhow!("{CORPUS}:{}: {e}", n + 1)))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then criterion
    // only checks that each benchmark runs, so the distribution is skipped too, as it is
    // under `--profile-time` (running one benchmark under a profiler).
    let args: Vec<String> = std::env::args().collect();
    let benchmarking =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time");
    let picks = if benchmarking {
        let figures = distribution(&cases);
        report(&figures);
        figures.picks()
    } else {
        Picks::default()
    };

    let mut c = Criterion::default().configure_from_args();
    bench_compile(&mut c, &lines);
    bench_evaluate(&mut c, &cases, &picks);
    c.final_summary();
    Ok(())
}

fn bench_compile(c: &mut Criterion, lines: &[&str]) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(20);
    g.throughput(Throughput::Elements(lines.len() as u64));
    // Parse + validate + compile every case: the JSON line, each policy, the context.
    g.bench_function("corpus", |b| {
        b.iter(|| {
            for l in lines {
                let _ = black_box(Case::parse(black_box(l)));
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    for (name, kind, doc) in documents() {
        g.bench_function(format!("policy/{name}"), |b| {
            b.iter(|| black_box(parse_text(black_box(&doc), kind, "bench")))
        });
    }
    g.finish();
}

fn bench_evaluate(c: &mut Criterion, cases: &[Case], picks: &Picks) {
    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(cases.len() as u64));
    g.bench_function("corpus", |b| {
        b.iter(|| {
            for case in cases {
                black_box(black_box(case).evaluate());
            }
        })
    });
    // The same loop over a slice of the corpus small enough to stay in cache: the gap
    // to `corpus` is memory traffic, not evaluation work.
    let few = cases.get(..HOT_CASES).unwrap_or(cases);
    g.throughput(Throughput::Elements(few.len() as u64));
    g.bench_function(format!("corpus_first_{}", few.len()), |b| {
        b.iter(|| {
            for case in few {
                black_box(black_box(case).evaluate());
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    for (label, index) in &picks.cases {
        let Some(case) = cases.get(*index) else {
            continue;
        };
        let id = case.id.as_deref().unwrap_or("?");
        g.bench_function(format!("case/{label}/{id}"), |b| {
            b.iter(|| black_box(black_box(case).evaluate()))
        });
    }
    g.finish();
}

/// Policy documents of the shapes the corpus and real accounts hold, from one statement to
/// a policy large enough to be indexed when gathered into a set.
fn documents() -> Vec<(&'static str, PolicyKind, String)> {
    let minimal = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}"#;
    let conditions = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Own","Effect":"Allow","Action":["orders:Get*","orders:List*"],
         "Resource":"arn:aws:orders:us-east-1:111111111111:order/${aws:username}/*",
         "Condition":{"StringEquals":{"aws:PrincipalTag/team":"${aws:ResourceTag/team}"},
                      "NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}},
        {"Effect":"Deny","Action":"orders:Delete*","Resource":"*",
         "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},
                      "DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}},
        {"Effect":"Allow","Action":"orders:CreateOrder","Resource":"*",
         "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["env","owner"]},
                      "BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}}]}"#;
    let resource = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":["111111111111","arn:aws:iam::222222222222:role/Deployer"]},
         "Action":"files:*","Resource":["arn:aws:files:::home/public/*"]},
        {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111111111111:user/alice"},
         "Action":"files:Delete*","Resource":"arn:aws:files:::home/*",
         "Condition":{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111111111111:role/Admin*"}}}]}"#;
    let statements: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"Sid":"S{i}","Effect":"Allow","Action":["svc{}:Get*","svc{}:Put{i}"],"Resource":"arn:aws:svc{}:us-east-1:111111111111:thing/{i}/*"}}"#,
                i % 10,
                i % 10,
                i % 10
            )
        })
        .collect();
    let large = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    vec![
        ("minimal", PolicyKind::Identity, minimal.to_owned()),
        ("conditions", PolicyKind::Identity, conditions.to_owned()),
        ("resource", PolicyKind::Resource, resource.to_owned()),
        ("large_100_statements", PolicyKind::Identity, large),
    ]
}

/// Nanoseconds per evaluation of each case, in corpus order.
struct Figures {
    per_case: Vec<f64>,
}

#[derive(Default)]
struct Picks {
    /// The cases to bench alone with criterion: label and corpus index.
    cases: Vec<(&'static str, usize)>,
}

/// Times every case alone: batches of repeated evaluations, the median batch per case.
fn distribution(cases: &[Case]) -> Figures {
    let per_case = cases
        .iter()
        .map(|case| {
            let mut n: u32 = 1;
            loop {
                let t = time(case, n);
                if t >= MIN_BATCH || n >= 1 << 20 {
                    break;
                }
                n *= 2;
            }
            let mut batches: Vec<f64> = (0..BATCHES)
                .map(|_| time(case, n).as_nanos() as f64 / f64::from(n))
                .collect();
            batches.sort_by(f64::total_cmp);
            batches.get(BATCHES / 2).copied().unwrap_or(f64::NAN)
        })
        .collect();
    Figures { per_case }
}

fn time(case: &Case, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(black_box(case).evaluate());
    }
    start.elapsed()
}

impl Figures {
    fn sorted(&self) -> Vec<(f64, usize)> {
        let mut v: Vec<(f64, usize)> = self.per_case.iter().copied().zip(0..).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    /// The case at quantile `q` of the per-case figures (nearest rank).
    fn quantile(&self, q: f64) -> (f64, usize) {
        let v = self.sorted();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        v.get(rank).copied().unwrap_or((f64::NAN, 0))
    }

    fn picks(&self) -> Picks {
        Picks {
            cases: vec![
                ("median", self.quantile(0.5).1),
                ("p99", self.quantile(0.99).1),
                ("max", self.quantile(1.0).1),
            ],
        }
    }
}

fn report(f: &Figures) {
    let n = f.per_case.len();
    let mean = f.per_case.iter().sum::<f64>() / n.max(1) as f64;
    println!(
        "evaluate/distribution: {n} cases, each timed alone ({BATCHES} batches of >= {} µs, median batch)",
        MIN_BATCH.as_micros()
    );
    for (label, q) in [
        ("min", 0.0),
        ("p50 (median)", 0.5),
        ("p90", 0.9),
        ("p99", 0.99),
        ("max", 1.0),
    ] {
        let (ns, i) = f.quantile(q);
        println!("  {label:<13} {ns:>9.1} ns   (case #{i})");
    }
    println!("  {:<13} {mean:>9.1} ns", "mean");
}

//! Reverse queries on the 100k-statement synthetic organization: `WhoCan` p50 and p99 over
//! random queries (the synthetic requests' action, resource and context), the whole
//! answer (every page of 1,000), without and with who may become each role; `WhatCan` for
//! one principal over the whole catalog, on a resource and without one; `CanAny`. Figures
//! go in `BENCHMARKS.md` ("Issue 17: reverse queries").
//!
//! `WARDEN_BENCH_STATEMENTS` changes the organization's size (default 100,000).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use warden::bench::synth::{self, Spec};
use warden::bundle;
use warden::context::{CallerContext, Context, ContextValue};
use warden::reverse::{self, Limits, Query};
use warden::snapshot::Snapshot;

/// Queries timed for the distribution.
const QUERIES: usize = 200;
/// Queries timed with who may become each role.
const CHAINED: usize = 3;

fn main() -> anyhow::Result<()> {
    let statements = std::env::var("WARDEN_BENCH_STATEMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let org = synth::generate(Spec {
        statements,
        requests: QUERIES,
        seed: 17,
    })?;
    let loaded = bundle::load_files(&org.files)?;
    let snapshot = Snapshot::compile(&loaded, 1);
    let now = SystemTime::now();
    let users = snapshot.user_arns().count();
    let roles = snapshot.role_names().count();
    let accounts = snapshot.account_ids().count();
    println!(
        "organization: {statements} statements, {users} users, {roles} roles, {accounts} accounts, {} catalog actions",
        snapshot.catalog().actions().count()
    );
    let context = |pairs: &[(String, String)]| {
        let mut ctx = Context::new();
        for (k, v) in pairs {
            ctx.insert(k, ContextValue::Single(v.clone()));
        }
        CallerContext::screen(ctx, |_| {})
    };
    let who_can = |r: &synth::SynthRequest| Query::WhoCan {
        action: r.action.clone(),
        resource: r.resource.clone(),
        session_name: reverse::DEFAULT_SESSION.into(),
        assume_with_mfa: false,
    };
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    if benchmarking {
        for (label, limits) in [
            (
                "WhoCan, whole answer, without who may become roles",
                Limits {
                    chain_depth: 0,
                    ..Limits::default()
                },
            ),
            (
                "WhoCan, whole answer, with who may become roles (depth 3)",
                Limits::default(),
            ),
        ] {
            let mut times = Vec::new();
            let mut found = 0;
            // Who may become each role asks every principal per role reached: a few
            // queries show its cost.
            let queries = if limits.chain_depth == 0 {
                org.requests.len()
            } else {
                CHAINED
            };
            for r in org.requests.iter().take(queries) {
                let ctx = context(&r.context);
                let started = Instant::now();
                let items =
                    reverse::answer_all(&snapshot, &who_can(r), &ctx, Some(1_000), &limits, now)?
                        .items;
                times.push(started.elapsed());
                found += items.len();
            }
            report(label, &mut times, found);
        }
        for (label, resource) in [
            (
                "WhatCan, one principal, every catalog action on a resource",
                org.requests.first().map(|r| r.resource.clone()),
            ),
            (
                "WhatCan, one principal, every catalog action anywhere",
                None,
            ),
        ] {
            let mut times = Vec::new();
            let mut found = 0;
            let mut undecided = 0;
            for r in org.requests.iter().take(50) {
                let q = Query::WhatCan {
                    principal: r.principal.clone(),
                    resource: resource.clone().map(|_| r.resource.clone()),
                };
                let started = Instant::now();
                let a = reverse::answer_all(
                    &snapshot,
                    &q,
                    &context(&[]),
                    Some(1_000),
                    &Limits::default(),
                    now,
                )?;
                times.push(started.elapsed());
                found += a.items.len();
                undecided += a.undecided.len();
            }
            report(label, &mut times, found);
            println!("  undecided actions in all: {undecided}");
        }
        // CanAny: each request's principal, on the first resource type of its action.
        let mut times = Vec::new();
        let mut found = 0;
        let mut undecided = 0;
        for r in org.requests.iter().take(50) {
            let (service, name) = r.action.split_once(':').unwrap_or_default();
            let Some(t) = snapshot.catalog().actions().find_map(|(s, a)| {
                (s.prefix == service && a.name == name)
                    .then(|| a.resource_types.first().map(|t| format!("{service}:{t}")))
                    .flatten()
            }) else {
                continue;
            };
            let q = Query::CanAny {
                principal: r.principal.clone(),
                resource_type: t,
            };
            let started = Instant::now();
            let a = reverse::answer_all(
                &snapshot,
                &q,
                &context(&[]),
                Some(1_000),
                &Limits::default(),
                now,
            )?;
            times.push(started.elapsed());
            found += a.items.len();
            undecided += a.undecided.len();
        }
        report(
            "CanAny, one principal, the first resource type of an action",
            &mut times,
            found,
        );
        println!("  undecided actions in all: {undecided}");
    }

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("reverse");
    g.sample_size(10);
    if let Some(r) = org.requests.first() {
        let ctx = context(&r.context);
        let q = who_can(r);
        let no_chain = Limits {
            chain_depth: 0,
            ..Limits::default()
        };
        g.bench_function("who_can_first_page", |b| {
            b.iter(|| {
                reverse::answer(
                    &snapshot,
                    black_box(&q),
                    &ctx,
                    &reverse::PageRequest::default(),
                    &no_chain,
                    now,
                )
            });
        });
        let what = Query::WhatCan {
            principal: r.principal.clone(),
            resource: None,
        };
        g.bench_function("what_can_anywhere", |b| {
            b.iter(|| {
                reverse::answer_all(
                    &snapshot,
                    black_box(&what),
                    &ctx,
                    Some(1_000),
                    &Limits::default(),
                    now,
                )
            });
        });
    }
    g.finish();
    c.final_summary();
    Ok(())
}

fn report(label: &str, times: &mut [Duration], found: usize) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).copied().unwrap_or_default()
    };
    println!(
        "{label}: {} queries, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {found} items",
        times.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
}

//! Authorization on synthetic organizations of 10, 1,000 and 100,000 statements, side by side
//! with Cedar (`cedar-policy`) on equivalent policies in the same run: load and compile time,
//! bytes per statement, per-request p50/p99 of both engines, and a check that both decide
//! alike on a sample. Writes `target/bench-summary/authorize.json`.
//!
//! `WARDEN_BENCH_SIZES=10,1000` limits the sizes; criterion's own arguments filter its groups.
//! `WARDEN_BENCH_SAMPLE=N` checks agreement on N requests instead of 1,000 (at 100,000
//! statements Cedar takes about 0.35 s a request, so the full check takes six minutes).
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark stops loudly on anything unexpected"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use cap::Cap;
use cedar_policy::{
    Authorizer, Context as CedarContext, Decision as CedarDecision, Entities, Entity, EntityId,
    EntityTypeName, EntityUid, PolicySet, Request as CedarRequest, RestrictedExpression,
};
use criterion::Criterion;
use serde_json::json;
use warden::bench::synth::{
    self, Holder, IdentityKind, Org, Spec, SynthCondition, SynthEffect, SynthOperator,
    SynthRequest, SynthStatement,
};
use warden::bundle;
use warden::context::CallerContext;
use warden::eval::Decision;
use warden::snapshot::Snapshot;

// Counts live heap bytes, so that the snapshot's footprint can be read before and after.
// (Without `cap`'s `stats` feature: each allocation then costs one atomic add, not three,
// which both engines' timings include.)
#[global_allocator]
static ALLOC: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

const SIZES: &[usize] = &[10, 1_000, 100_000];
/// Requests generated per size; the latency loop runs over all of them.
const REQUESTS: usize = 10_000;
/// Requests on which both engines must decide alike.
const SAMPLE: usize = 1_000;

fn main() {
    let sizes: Vec<usize> = match std::env::var("WARDEN_BENCH_SIZES") {
        Ok(s) => s
            .split(',')
            .map(|x| {
                x.trim()
                    .replace('_', "")
                    .parse()
                    .expect("WARDEN_BENCH_SIZES: numbers")
            })
            .collect(),
        Err(_) => SIZES.to_vec(),
    };
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let timer = timer_overhead();
    let mut rows = Vec::new();
    for n in sizes {
        rows.push(size(&mut criterion, n));
    }
    criterion.final_summary();
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").to_owned());
    let dir = std::path::Path::new(&target).join("bench-summary");
    std::fs::create_dir_all(&dir).expect("create target/bench-summary");
    let summary = json!({
        "bench": "authorize",
        "timer_overhead_ns": timer,
        "sizes": rows,
    });
    let path = dir.join("authorize.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).expect("json"))
        .expect("write the summary");
    println!("summary written to {}", path.display());
}

/// Benchmarks one size and returns its summary row.
fn size(c: &mut Criterion, n: usize) -> serde_json::Value {
    let org = synth::generate(Spec {
        statements: n,
        requests: REQUESTS,
        seed: 1,
    })
    .expect("generate");
    println!(
        "\n== {n} statements: {} identities, {} groups, {} policies, {} requests",
        org.identities.len(),
        org.groups.len(),
        org.policies.len(),
        org.requests.len()
    );

    // Load and compile, measuring what the snapshot keeps once the bundle is dropped.
    let before = ALLOC.allocated();
    let t = Instant::now();
    let b = bundle::load_files(&org.files).expect("the synthetic bundle loads");
    let load = t.elapsed();
    let t = Instant::now();
    let snapshot = Snapshot::compile(&b, 1);
    let mut compile = t.elapsed();
    drop(b);
    let snapshot_bytes = ALLOC.allocated().saturating_sub(before);
    // Load and compile again for steadier times (the first run also warms the allocator).
    let mut load_best = load;
    for _ in 0..2 {
        let t = Instant::now();
        let b = bundle::load_files(&org.files).expect("the synthetic bundle loads");
        load_best = load_best.min(t.elapsed());
        let t = Instant::now();
        let s = Snapshot::compile(&b, 1);
        compile = compile.min(t.elapsed());
        drop(s);
    }
    let bytes_per_statement = snapshot_bytes as f64 / n as f64;
    // The part that does not grow with the statements: the snapshot of the same bundle
    // without its accounts' identities and policies (catalog, built-in policies,
    // organization, SCPs and RCPs).
    let fixed: BTreeMap<String, String> = org
        .files
        .iter()
        .filter(|(path, _)| !path.starts_with("accounts/"))
        .map(|(path, text)| (path.clone(), text.clone()))
        .collect();
    let before = ALLOC.allocated();
    let fixed_snapshot = Snapshot::compile(
        &bundle::load_files(&fixed).expect("the bundle without accounts loads"),
        1,
    );
    let fixed_bytes = ALLOC.allocated().saturating_sub(before);
    drop(fixed_snapshot);
    let beyond_fixed = snapshot_bytes.saturating_sub(fixed_bytes) as f64 / n as f64;
    println!(
        "load {:.1} ms, compile {:.1} ms, snapshot {} bytes = {bytes_per_statement:.0} bytes per statement \
         ({fixed_bytes} bytes fixed, {beyond_fixed:.0} bytes per statement beyond them)",
        ms(load_best),
        ms(compile),
        snapshot_bytes,
    );

    // The requests as warden receives them.
    let contexts: Vec<CallerContext> = org
        .requests
        .iter()
        .map(|r| CallerContext::screen(r.context_keys(), |_| {}))
        .collect();
    let now = SystemTime::now();
    let warden_ask = |r: &SynthRequest, context: &CallerContext| {
        snapshot
            .ask(&r.principal, &r.action, &r.resource, context, now)
            .expect("a synthetic request is well formed")
            .outcome
            .decision
    };
    let warden_decide = |i: usize| warden_ask(&org.requests[i], &contexts[i]);

    // The same organization in Cedar.
    let t = Instant::now();
    let cedar = CedarOrg::new(&org);
    let cedar_build = t.elapsed();
    println!(
        "cedar: {} policies, {} entities, built in {:.1} ms",
        cedar.policies.policies().count(),
        cedar.entity_count,
        ms(cedar_build)
    );
    let authorizer = Authorizer::new();
    let cedar_decide =
        |i: usize| authorizer.is_authorized(&cedar.requests[i], &cedar.policies, &cedar.entities);

    // Both engines must decide alike on the sample.
    let sample = std::env::var("WARDEN_BENCH_SAMPLE")
        .map_or(SAMPLE, |s| {
            s.parse().expect("WARDEN_BENCH_SAMPLE: a number")
        })
        .min(org.requests.len());
    let mut mismatches = Vec::new();
    let mut decisions: BTreeMap<&str, usize> = BTreeMap::new();
    let mut cedar_errors = 0usize;
    for i in 0..sample {
        let w = warden_decide(i);
        let resp = cedar_decide(i);
        cedar_errors += resp.diagnostics().errors().count();
        *decisions.entry(w.as_str()).or_default() += 1;
        let cedar_allows = resp.decision() == CedarDecision::Allow;
        if (w == Decision::Allow) != cedar_allows {
            mismatches.push(format!(
                "request {i} {}: warden {w}, cedar {:?} (reasons {:?})",
                org.requests[i],
                resp.decision(),
                resp.diagnostics().reason().collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "warden and cedar disagree on {} of {sample} requests at {n} statements:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        cedar_errors, 0,
        "cedar policies raised evaluation errors: the translation is incomplete"
    );
    println!("agreement: {sample}/{sample}; warden decisions {decisions:?}");

    // Per-request latency: every request timed on its own, as a server meets it: just
    // decoded into fresh memory (copied here before the clock starts), against a snapshot
    // that is as cold as the request mix leaves it. Then the same requests read in place
    // from the array of 10,000, whose strings are cold in the cache as well.
    let mut warden_ns = Vec::with_capacity(org.requests.len() * 3);
    let mut warden_cold_ns = Vec::with_capacity(org.requests.len() * 3);
    for _ in 0..3 {
        for (r, context) in org.requests.iter().zip(&contexts) {
            let (r, context) = (r.clone(), context.clone());
            let t = Instant::now();
            black_box(warden_ask(black_box(&r), black_box(&context)));
            warden_ns.push(t.elapsed().as_nanos() as u64);
        }
        for i in 0..org.requests.len() {
            let t = Instant::now();
            black_box(warden_decide(black_box(i)));
            warden_cold_ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    // Cedar scans every policy per request: time as many requests as fit in about 10 s.
    let probe = Instant::now();
    for i in 0..20.min(org.requests.len()) {
        black_box(cedar_decide(i));
    }
    let per = probe.elapsed() / 20;
    let cedar_count = ((Duration::from_secs(10).as_nanos() / per.as_nanos().max(1)) as usize)
        .clamp(100, org.requests.len() * 3);
    let mut cedar_ns = Vec::with_capacity(cedar_count);
    for k in 0..cedar_count {
        let request = cedar.requests[k % org.requests.len()].clone();
        let t = Instant::now();
        black_box(authorizer.is_authorized(black_box(&request), &cedar.policies, &cedar.entities));
        cedar_ns.push(t.elapsed().as_nanos() as u64);
    }
    let (wp50, wp99) = percentiles(&mut warden_ns);
    let (wc50, wc99) = percentiles(&mut warden_cold_ns);
    let (cp50, cp99) = percentiles(&mut cedar_ns);
    println!(
        "warden p50 {wp50} ns, p99 {wp99} ns ({} timings; requests read in place: p50 {wc50} ns, p99 {wc99} ns); cedar p50 {cp50} ns, p99 {cp99} ns ({} timings)",
        warden_ns.len(),
        cedar_ns.len()
    );

    // The headline, with criterion's statistics.
    let mut group = c.benchmark_group(format!("authorize/{n}"));
    let len = org.requests.len();
    let mut i = 0usize;
    group.bench_function("warden", |b| {
        b.iter(|| {
            i = (i + 1) % len;
            warden_decide(i)
        })
    });
    if per > Duration::from_millis(1) {
        group.sample_size(10);
    }
    let mut i = 0usize;
    group.bench_function("cedar", |b| {
        b.iter(|| {
            i = (i + 1) % len;
            cedar_decide(i).decision()
        })
    });
    group.finish();

    json!({
        "statements": n,
        "identity_statements": org.identity_statements(),
        "cedar_policies": cedar.policies.policies().count(),
        "identities": org.identities.len(),
        "groups": org.groups.len(),
        "policies": org.policies.len(),
        "requests": org.requests.len(),
        "sample": sample,
        "agreement": sample - mismatches.len(),
        "decisions": decisions,
        "warden_p50_ns": wp50,
        "warden_p99_ns": wp99,
        "warden_timings": warden_ns.len(),
        "warden_in_place_p50_ns": wc50,
        "warden_in_place_p99_ns": wc99,
        "cedar_p50_ns": cp50,
        "cedar_p99_ns": cp99,
        "cedar_timings": cedar_ns.len(),
        "load_ms": ms(load_best),
        "compile_ms": ms(compile),
        "snapshot_bytes": snapshot_bytes,
        "bytes_per_statement": bytes_per_statement.round(),
        "fixed_bytes": fixed_bytes,
        "bytes_per_statement_beyond_fixed": beyond_fixed.round(),
        "cedar_build_ms": ms(cedar_build),
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn percentiles(ns: &mut [u64]) -> (u64, u64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// The median cost of reading the clock twice, which every per-request timing includes.
fn timer_overhead() -> u64 {
    let mut ns: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    percentiles(&mut ns).0
}

// === impl CedarOrg ===

/// The synthetic organization translated to Cedar: one policy per identity-policy statement.
///
/// - Principals: `User` and `Role` entities (a role session acts as its `Role`), members of
///   their `Group`s and of a `ManagedPolicy` entity per attached customer managed policy, so
///   a managed policy's statement is `principal in ManagedPolicy::"ARN"`.
/// - `Allow` is `permit`, `Deny` is `forbid`. Wildcard actions are expanded over the catalog.
/// - `Resource` patterns become `resource == Resource::"ARN"` or `resource.arn like "..."`.
/// - IAM grants nothing across accounts without a resource-based policy (there is none
///   here), so every `permit` also requires the resource to be in the principal's account;
///   `forbid` applies in any account, as an explicit deny does.
/// - Principal tags are the entity's tags, resource tags the resource entity's; other
///   condition keys are typed context attributes under their lowercase IAM names.
struct CedarOrg {
    policies: PolicySet,
    entities: Entities,
    entity_count: usize,
    requests: Vec<CedarRequest>,
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(kind).expect("entity type"),
        EntityId::new(id),
    )
}

/// A Cedar string literal.
fn lit(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl CedarOrg {
    fn new(org: &Org) -> CedarOrg {
        let actions: Vec<String> = org.catalog_actions().collect();
        let mut text = String::new();
        for p in &org.policies {
            let principal = match &p.holder {
                Holder::Managed(arn) => format!("principal in ManagedPolicy::{}", lit(arn)),
                Holder::User(arn) => format!("principal == User::{}", lit(arn)),
                Holder::Group(arn) => format!("principal in Group::{}", lit(arn)),
                Holder::Role(arn) => format!("principal == Role::{}", lit(arn)),
            };
            for s in p.statements.iter() {
                if let Some(policy) = statement(&principal, s, &actions) {
                    text.push_str(&policy);
                }
            }
        }
        let policies = PolicySet::from_str(&text).unwrap_or_else(|e| {
            panic!("cedar rejected the translated policies: {e:?}");
        });

        let tags = |list: &[(String, String)]| -> Vec<(String, RestrictedExpression)> {
            list.iter()
                .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())))
                .collect()
        };
        let mut entities = Vec::new();
        let managed: BTreeSet<&String> = org
            .policies
            .iter()
            .filter_map(|p| match &p.holder {
                Holder::Managed(arn) => Some(arn),
                _ => None,
            })
            .collect();
        for arn in managed {
            entities.push(Entity::new_no_attrs(
                uid("ManagedPolicy", arn),
                Default::default(),
            ));
        }
        for g in &org.groups {
            let parents = g.managed.iter().map(|m| uid("ManagedPolicy", m)).collect();
            entities.push(Entity::new_no_attrs(uid("Group", &g.arn), parents));
        }
        for id in &org.identities {
            let kind = match id.kind {
                IdentityKind::User => "User",
                IdentityKind::Role => "Role",
            };
            let parents: Vec<EntityUid> = id
                .groups
                .iter()
                .map(|g| uid("Group", g))
                .chain(id.managed.iter().map(|m| uid("ManagedPolicy", m)))
                .collect();
            let attrs = [(
                "account".to_owned(),
                RestrictedExpression::new_string(id.account.clone()),
            )];
            entities.push(
                Entity::new_with_tags(uid(kind, &id.arn), attrs, parents, tags(&id.tags))
                    .expect("principal entity"),
            );
        }
        let resources: BTreeSet<&String> = org.requests.iter().map(|r| &r.resource).collect();
        for r in resources {
            let mut attrs = vec![(
                "arn".to_owned(),
                RestrictedExpression::new_string(r.clone()),
            )];
            if let Some(account) = r.split(':').nth(4) {
                attrs.push((
                    "account".to_owned(),
                    RestrictedExpression::new_string(account.to_owned()),
                ));
            }
            entities.push(
                Entity::new_with_tags(
                    uid("Resource", r),
                    attrs,
                    [],
                    tags(&synth::resource_tags(r)),
                )
                .expect("resource entity"),
            );
        }
        let entity_count = entities.len();
        let entities = Entities::from_entities(entities, None).expect("entities");

        let requests = org
            .requests
            .iter()
            .map(|r| {
                let id = &org.identities[r.identity];
                let principal = match id.kind {
                    IdentityKind::User => uid("User", &id.arn),
                    IdentityKind::Role => uid("Role", &id.arn),
                };
                let context = CedarContext::from_pairs(
                    r.context
                        .iter()
                        .filter(|(k, _)| !k.starts_with("aws:ResourceTag/"))
                        .map(|(k, v)| (k.to_ascii_lowercase(), context_value(k, v))),
                )
                .expect("context");
                CedarRequest::new(
                    principal,
                    uid("Action", &r.action),
                    uid("Resource", &r.resource),
                    context,
                    None,
                )
                .expect("request")
            })
            .collect();
        CedarOrg {
            policies,
            entities,
            entity_count,
            requests,
        }
    }
}

/// A caller's context value, typed as the policies compare it.
fn context_value(key: &str, value: &str) -> RestrictedExpression {
    match key {
        "aws:SourceIp" => RestrictedExpression::new_ip(value),
        "aws:SecureTransport" => RestrictedExpression::new_bool(value == "true"),
        k if k.ends_with(":Amount") => {
            RestrictedExpression::new_long(value.parse().expect("an integer amount"))
        }
        _ => RestrictedExpression::new_string(value.to_owned()),
    }
}

/// Whether a catalog action matches an IAM action pattern (`svc:Name`, `svc:Get*`, `svc:*`),
/// ignoring case as IAM does. Written apart from warden's matcher so that the two
/// translations do not share a mistake.
fn action_matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    match p.strip_suffix('*') {
        Some(prefix) => a.starts_with(prefix),
        None => p == a,
    }
}

fn statement(principal: &str, s: &SynthStatement, catalog: &[String]) -> Option<String> {
    let actions: Vec<String> = catalog
        .iter()
        .filter(|a| s.actions.iter().any(|p| action_matches(p, a)))
        .map(|a| format!("Action::{}", lit(a)))
        .collect();
    if actions.is_empty() {
        return None;
    }
    let mut when: Vec<String> = Vec::new();
    if !s.resources.iter().any(|r| r == "*") {
        let alternatives: Vec<String> = s
            .resources
            .iter()
            .map(|r| {
                if r.contains('*') {
                    format!("resource.arn like {}", lit(r))
                } else {
                    format!("resource == Resource::{}", lit(r))
                }
            })
            .collect();
        when.push(format!("({})", alternatives.join(" || ")));
    }
    for c in &s.conditions {
        when.push(condition(c));
    }
    let effect = match s.effect {
        SynthEffect::Allow => {
            when.push(
                "(!(resource has account) || resource.account == principal.account)".to_owned(),
            );
            "permit"
        }
        SynthEffect::Deny => "forbid",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "{effect}({principal}, action in [{}], resource)",
        actions.join(", ")
    );
    if !when.is_empty() {
        let _ = write!(out, " when {{ {} }}", when.join(" && "));
    }
    out.push_str(";\n");
    Some(out)
}

fn condition(c: &SynthCondition) -> String {
    let any = |f: &dyn Fn(&str) -> String| -> String {
        let parts: Vec<String> = c.values.iter().map(|v| f(v)).collect();
        format!("({})", parts.join(" || "))
    };
    let tag = |entity: &str, name: &str| {
        let cmp = match c.operator {
            SynthOperator::StringLike => "like",
            _ => "==",
        };
        let n = lit(name);
        format!(
            "({entity}.hasTag({n}) && {})",
            any(&|v| format!("{entity}.getTag({n}) {cmp} {}", lit(v)))
        )
    };
    if let Some(name) = c.key.strip_prefix("aws:PrincipalTag/") {
        return tag("principal", name);
    }
    if let Some(name) = c.key.strip_prefix("aws:ResourceTag/") {
        return tag("resource", name);
    }
    let key = lit(&c.key.to_ascii_lowercase());
    let test = match c.operator {
        SynthOperator::NumericLessThan => any(&|v| format!("context[{key}] < {v}")),
        SynthOperator::IpAddress => any(&|v| format!("context[{key}].isInRange(ip({}))", lit(v))),
        SynthOperator::Bool => any(&|v| format!("context[{key}] == {v}")),
        SynthOperator::StringEquals => any(&|v| format!("context[{key}] == {}", lit(v))),
        SynthOperator::StringLike => any(&|v| format!("context[{key}] like {}", lit(v))),
    };
    format!("(context has {key} && {test})")
}

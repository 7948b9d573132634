//! Reverse queries against brute force: on the 1k and 10k synthetic organizations, random
//! `WhoCan` and `WhatCan`-with-a-resource queries, each answered in small pages, compared
//! with `Snapshot::ask` for every principal (users, role sessions, account roots) or every
//! catalog action. 10,000 queries in all; 0 differences.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::time::SystemTime;

use warden::bench::synth::{self, IdentityKind, Org, Spec};
use warden::bundle;
use warden::context::{CallerContext, Context, ContextValue};
use warden::eval::Decision;
use warden::reverse::{self, Item, Limits, Query};
use warden::snapshot::Snapshot;

/// Statements, queries, and one `WhoCan` in how many queries (the rest `WhatCan`): 10,000
/// queries in all. A `WhoCan` on the 10k organization asks all its ~2,150 principals twice
/// (the answer and the brute force), about 0.2 s in a debug build, so there one query in
/// twelve is a `WhoCan` (250) and the whole test stays near two minutes on 2 cores.
const QUERIES: [(usize, usize, usize); 2] = [(1_000, 7_000, 2), (10_000, 3_000, 12)];

fn org(statements: usize) -> (Org, Snapshot) {
    let org = synth::generate(Spec {
        statements,
        requests: 2_000,
        seed: 17,
    })
    .unwrap();
    let loaded = bundle::load_files(&org.files).unwrap();
    let snapshot = Snapshot::compile(&loaded, 1);
    (org, snapshot)
}

/// Every principal the organization's model holds, as `WhoCan` asks them: users, each
/// role as the default session, each account's root.
fn principals(org: &Org) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for id in &org.identities {
        match id.kind {
            IdentityKind::User => out.insert(id.arn.clone()),
            IdentityKind::Role => out.insert(format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                id.account,
                id.name,
                reverse::DEFAULT_SESSION
            )),
        };
        out.insert(format!("arn:aws:iam::{}:root", id.account));
    }
    // The roots of the organization's accounts, those without identities too: every run
    // of twelve digits in its files' names and in `organization.json`.
    let org_text = org
        .files
        .get("organization.json")
        .cloned()
        .unwrap_or_default();
    for text in org.files.keys().chain([&org_text]) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            if run == 12 {
                out.insert(format!("arn:aws:iam::{}:root", &text[i..i + 12]));
            }
            i += run.max(1);
        }
    }
    out.into_iter().collect()
}

fn screened(pairs: &[(String, String)]) -> CallerContext {
    let mut ctx = Context::new();
    for (k, v) in pairs {
        ctx.insert(k, ContextValue::Single(v.clone()));
    }
    CallerContext::screen(ctx, |_| {})
}

#[test]
fn reverse_queries_equal_brute_force_on_synthetic_organizations() {
    let now = SystemTime::now();
    // Who may become a role is another question (trust policies); left out here.
    let limits = Limits {
        chain_depth: 0,
        budget: 400,
        ..Limits::default()
    };
    let mut total = 0;
    let mut allowed_seen = 0;
    for (statements, queries, who_every) in QUERIES {
        let started = std::time::Instant::now();
        let (org, snapshot) = org(statements);
        eprintln!("{statements}: loaded in {:?}", started.elapsed());
        let started = std::time::Instant::now();
        let everyone = principals(&org);
        // Every action of the snapshot's catalog: the synthetic services' and the built-in
        // ones (`sts`, `warden`).
        let actions: Vec<String> = snapshot
            .catalog()
            .actions()
            .map(|(s, a)| format!("{}:{}", s.prefix, a.name))
            .collect();
        assert!(actions.len() > org.catalog_actions().count());
        let mut rng = oorandom::Rand64::new(u128::from(statements as u64));
        let mut pick = |n: usize| rng.rand_range(0..n as u64) as usize;
        for i in 0..queries {
            let r = &org.requests[pick(org.requests.len())];
            let context = screened(&r.context);
            let size = Some(1 + pick(60));
            if i % who_every == 0 {
                // WhoCan: the request's action half the time, any catalog action else.
                let action = if pick(2) == 0 {
                    r.action.clone()
                } else {
                    actions[pick(actions.len())].clone()
                };
                let q = Query::WhoCan {
                    action: action.clone(),
                    resource: r.resource.clone(),
                    session_name: reverse::DEFAULT_SESSION.into(),
                    assume_with_mfa: false,
                };
                let got: BTreeSet<String> =
                    reverse::answer_all(&snapshot, &q, &context, size, &limits, now)
                        .unwrap()
                        .items
                        .into_iter()
                        .map(|i| match i {
                            Item::Principal(p) => p.principal,
                            other => panic!("{other:?}"),
                        })
                        .collect();
                let want: BTreeSet<String> = everyone
                    .iter()
                    .filter(|p| {
                        snapshot
                            .ask(p, &action, &r.resource, &context, now)
                            .unwrap()
                            .outcome
                            .decision
                            == Decision::Allow
                    })
                    .cloned()
                    .collect();
                assert_eq!(got, want, "{statements}: WhoCan {action} on {}", r.resource);
                allowed_seen += want.len();
            } else {
                let principal = everyone[pick(everyone.len())].clone();
                let q = Query::WhatCan {
                    principal: principal.clone(),
                    resource: Some(r.resource.clone()),
                };
                let got: BTreeSet<String> =
                    reverse::answer_all(&snapshot, &q, &context, size, &limits, now)
                        .unwrap()
                        .items
                        .into_iter()
                        .map(|i| match i {
                            Item::Action(a) => a.action,
                            other => panic!("{other:?}"),
                        })
                        .collect();
                let want: BTreeSet<String> = actions
                    .iter()
                    .filter(|a| {
                        snapshot
                            .ask(&principal, a, &r.resource, &context, now)
                            .unwrap()
                            .outcome
                            .decision
                            == Decision::Allow
                    })
                    .cloned()
                    .collect();
                assert_eq!(
                    got, want,
                    "{statements}: WhatCan {principal} on {}",
                    r.resource
                );
                allowed_seen += want.len();
            }
            total += 1;
        }
        eprintln!(
            "{statements}: {queries} queries against {} principals in {:?}",
            everyone.len(),
            started.elapsed()
        );
    }
    assert_eq!(total, 10_000);
    // The comparison is not vacuous: the answers held allowed principals and actions.
    assert!(allowed_seen > 1_000, "{allowed_seen}");
}

//! `WhatCan` without a resource and `CanAny` against brute force: on the 1k and 10k
//! synthetic organizations, random principals (with a request's context) are asked what
//! they can do anywhere and whether they can do anything to a resource type; every action
//! `Snapshot::ask` allows on some resource of a bounded space (every `Resource` pattern of
//! the bundle filled in several ways, in every account, and the organization's request
//! resources) must be in the answer or said undecided, and every action in the answer
//! must be allowed on the resource the answer names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde_json::Value;
use warden::arn::{Arn, ArnPattern};
use warden::bench::synth::{self, IdentityKind, Org, Spec};
use warden::bundle;
use warden::context::{CallerContext, Context, ContextValue};
use warden::eval::Decision;
use warden::reverse::{self, Item, Limits, Query};
use warden::snapshot::Snapshot;

/// A `WhatCan` query's answer is checked for this many random catalog actions (a
/// `CanAny` query's for every action of its type).
const SAMPLE: usize = 25;
/// A `WhatCan` answer is also checked on this many random request resources of any
/// service for each action.
const OTHERS: usize = 20;
/// Statements and queries of each kind (`WhatCan` anywhere, `CanAny`): 1,200 in all,
/// about 35 s in a debug build.
const QUERIES: [(usize, usize); 2] = [(1_000, 500), (10_000, 100)];

fn screened(pairs: &[(String, String)]) -> CallerContext {
    let mut ctx = Context::new();
    for (k, v) in pairs {
        ctx.insert(k, ContextValue::Single(v.clone()));
    }
    CallerContext::screen(ctx, |_| {})
}

/// Every `Resource`/`NotResource` text and every resource policy's binding in the bundle.
fn patterns(org: &Org) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "Resource" || k == "NotResource" || k == "arn" {
                        match v {
                            Value::String(s) => {
                                out.insert(s.clone());
                            }
                            Value::Array(a) => {
                                out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_owned)))
                            }
                            _ => {}
                        }
                    }
                    walk(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for text in org.files.values() {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            walk(&v, &mut out);
        }
    }
    out.retain(|p| p.starts_with("arn:"));
    out
}

/// Concrete ARNs inside a pattern: each wildcard of the first five parts filled with a
/// value of that part, each of the resource part with several fills; variables with the
/// principal's name or a fill.
fn fill(pattern: &str, accounts: &[String], name: &str) -> Vec<String> {
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    if parts.len() < 6 {
        return Vec::new();
    }
    let mut heads: Vec<String> = vec![String::from("arn")];
    let options: [Vec<String>; 4] = [
        vec!["aws".into()],
        vec![parts[2].replace(['*', '?'], "")],
        vec!["us-east-1".into(), "eu-west-1".into(), String::new()],
        accounts.to_vec(),
    ];
    for (i, opts) in options.iter().enumerate() {
        let part = parts[i + 1];
        let values: Vec<String> = if part.contains(['*', '?']) {
            opts.clone()
        } else {
            vec![part.to_owned()]
        };
        heads = heads
            .iter()
            .flat_map(|h| values.iter().map(move |v| format!("{h}:{v}")))
            .collect();
    }
    let mut tails = BTreeSet::new();
    let mut resource = parts[5].to_owned();
    while let Some(start) = resource.find("${") {
        let end = resource[start..]
            .find('}')
            .map_or(resource.len(), |e| start + e + 1);
        resource.replace_range(start..end, name);
    }
    for f in ["", "a", "x/y", "9"] {
        tails.insert(resource.replace('*', f).replace('?', "q"));
    }
    heads
        .iter()
        .flat_map(|h| tails.iter().map(move |t| format!("{h}:{t}")))
        .collect()
}

fn principals(org: &Org) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for id in &org.identities {
        match id.kind {
            IdentityKind::User => out.push((id.arn.clone(), id.name.clone())),
            IdentityKind::Role => out.push((
                format!(
                    "arn:aws:sts::{}:assumed-role/{}/{}",
                    id.account,
                    id.name,
                    reverse::DEFAULT_SESSION
                ),
                id.name.clone(),
            )),
        }
    }
    out.push((
        format!("arn:aws:iam::{}:root", org.identities[0].account),
        "root".into(),
    ));
    out
}

#[test]
fn what_can_anywhere_and_can_any_miss_no_allowed_action() {
    let now = SystemTime::now();
    let limits = Limits {
        chain_depth: 0,
        ..Limits::default()
    };
    let mut found = 0;
    let mut checked = 0usize;
    let mut undecided = 0usize;
    for (statements, queries) in QUERIES {
        let org = synth::generate(Spec {
            statements,
            requests: 2_000,
            seed: 23,
        })
        .unwrap();
        let loaded = bundle::load_files(&org.files).unwrap();
        let snapshot = Snapshot::compile(&loaded, 1);
        let started = std::time::Instant::now();
        let everyone = principals(&org);
        let mut accounts: Vec<String> = snapshot.account_ids().map(str::to_owned).collect();
        accounts.sort();
        accounts.push("999999999999".into());
        accounts.push(String::new());
        let patterns = patterns(&org);
        // Each catalog action with the patterns of its resource types (none: `*`).
        let mut types: BTreeMap<String, Vec<ArnPattern>> = BTreeMap::new();
        let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (s, a) in snapshot.catalog().actions() {
            let name = format!("{}:{}", s.prefix, a.name);
            let ts: Vec<ArnPattern> = a
                .resource_types
                .iter()
                .map(|t| reverse::format_pattern(&s.resource_types[t]).unwrap())
                .collect();
            for t in &a.resource_types {
                by_type
                    .entry(format!("{}:{t}", s.prefix))
                    .or_default()
                    .push(name.clone());
            }
            types.insert(name, ts);
        }
        let type_names: Vec<String> = by_type.keys().cloned().collect();
        let mut rng = oorandom::Rand64::new(u128::from(statements as u64) + 5);
        let mut pick = |n: usize| rng.rand_range(0..n as u64) as usize;
        let no_keys = Context::new();
        for i in 0..queries * 2 {
            let r = &org.requests[pick(org.requests.len())];
            let context = screened(&r.context);
            let (principal, name) = everyone[pick(everyone.len())].clone();
            let (query, universe): (Query, Vec<String>) = if i % 2 == 0 {
                let all: Vec<&String> = types.keys().collect();
                (
                    Query::WhatCan {
                        principal: principal.clone(),
                        resource: None,
                    },
                    (0..SAMPLE).map(|_| all[pick(all.len())].clone()).collect(),
                )
            } else {
                let t = type_names[pick(type_names.len())].clone();
                let actions = by_type[&t].clone();
                (
                    Query::CanAny {
                        principal: principal.clone(),
                        resource_type: t,
                    },
                    actions,
                )
            };
            let answer = reverse::answer_all(&snapshot, &query, &context, None, &limits, now)
                .unwrap_or_else(|e| panic!("{query:?}: {e:?}"));
            let mut got: BTreeMap<String, String> = BTreeMap::new();
            for item in answer.items {
                let (action, resource) = match item {
                    Item::Action(a) => {
                        let w = a
                            .patterns
                            .iter()
                            .find(|p| p.decision == "Allow")
                            .map(|p| p.witness.clone())
                            .expect("an allowed pattern");
                        (a.action, w)
                    }
                    Item::Witness(w) => (w.action, w.resource),
                    other => panic!("{other:?}"),
                };
                got.insert(action, resource);
            }
            let undecided_here: BTreeSet<String> =
                answer.undecided.iter().map(|u| u.action.clone()).collect();
            undecided += undecided_here.len();
            // Every item is allowed on the resource it names.
            for (action, resource) in &got {
                let d = snapshot
                    .ask(&principal, action, resource, &context, now)
                    .unwrap()
                    .outcome
                    .decision;
                assert_eq!(d, Decision::Allow, "{principal} {action} on {resource}");
            }
            found += got.len();
            // Every action allowed somewhere in the bounded space is in the answer.
            let service_resources: Vec<&str> =
                org.requests.iter().map(|r| r.resource.as_str()).collect();
            // `WhatCan` without a resource answers for every resource a request may name
            // (`*`, ARNs of other types and services too); `CanAny` for the type's.
            let what_can = i % 2 == 0;
            for action in &universe {
                let ts = &types[action];
                let service = action.split(':').next().unwrap();
                let mut space: BTreeSet<String> = BTreeSet::new();
                for p in &patterns {
                    if p.split(':')
                        .nth(2)
                        .is_some_and(|s| s == service || s.contains('*'))
                    {
                        space.extend(fill(p, &accounts, &name));
                    }
                }
                space.extend(
                    service_resources
                        .iter()
                        .filter(|r| r.split(':').nth(2) == Some(service))
                        .map(|r| (*r).to_owned()),
                );
                if what_can {
                    space.insert("*".into());
                    for _ in 0..OTHERS {
                        space.insert(service_resources[pick(service_resources.len())].to_owned());
                    }
                } else {
                    space.retain(|r| {
                        let arn = Arn::parse(r);
                        ts.iter()
                            .any(|t| t.matches(arn.as_ref(), &no_keys) == Some(true))
                    });
                }
                for resource in &space {
                    checked += 1;
                    let Ok(a) = snapshot.ask(&principal, action, resource, &context, now) else {
                        continue;
                    };
                    if a.outcome.decision == Decision::Allow {
                        assert!(
                            got.contains_key(action) || undecided_here.contains(action),
                            "{statements}: {query:?} misses {action}, allowed on {resource}"
                        );
                        break;
                    }
                }
            }
        }
        eprintln!(
            "{statements}: {} queries in {:?}",
            queries * 2,
            started.elapsed()
        );
    }
    eprintln!("{found} actions found, {checked} requests decided, {undecided} undecided");
    assert!(found > 200, "{found}");
    assert_eq!(undecided, 0);
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The comparison's soundness against brute force: random pairs of small identity
//! policies over a small catalog, pattern alphabet, condition keys and operators. Every
//! "no new access" (PASS) is checked against every request of a bounded space decided by
//! the engine; every counterexample is decided again (in process and as a `warden eval`
//! case); every "equivalent" has no difference in either direction.
//!
//! `WARDEN_COMPARE_PAIRS` sets the number of pairs (default 10,000); `WARDEN_COMPARE_SEED`
//! the seed.

use std::sync::Arc;

use warden::compare::{self, Baseline, Limits, PolicySide, Relation, Scope, Verdict};
use warden::context::{Context, ContextValue};
use warden::eval::Decision;
use warden::policy::{self, Policy, PolicyKind};
use warden::request::Action;

const ACTIONS: [&str; 2] = ["svc:Get", "svc:Put"];
const PRINCIPAL: &str = "arn:aws:iam::111122223333:user/compare";

struct Gen(oorandom::Rand64);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0.rand_range(0..n)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A pattern over `a`, `b`, `*`, `?` of length 0 to 3.
    fn pattern(&mut self) -> String {
        let len = self.below(4);
        (0..len)
            .map(|_| self.pick(&["a", "b", "*", "?", "a", "b"]))
            .collect()
    }
    fn literal(&mut self) -> String {
        let len = self.below(3);
        (0..len).map(|_| self.pick(&["a", "b"])).collect()
    }
    fn resource(&mut self) -> String {
        if self.chance(10) {
            return "*".into();
        }
        let account = self.pick(&["1", "2", "*", "?"]);
        format!("arn:aws:svc:r:{account}:{}", self.pattern())
    }
    fn list(&mut self, mut f: impl FnMut(&mut Gen) -> String) -> String {
        let n = 1 + self.below(2);
        let items: Vec<String> = (0..n).map(|_| format!("\"{}\"", f(self))).collect();
        format!("[{}]", items.join(","))
    }
    fn condition(&mut self) -> String {
        let (op, key, value): (&str, &str, String) = match self.below(12) {
            0 => ("StringEquals", "svc:K", self.list(Gen::literal)),
            1 => ("StringNotEquals", "svc:K", self.list(Gen::literal)),
            2 => ("StringLike", "svc:K", self.list(Gen::pattern)),
            3 => ("StringNotLike", "svc:K", self.list(Gen::pattern)),
            4 => ("StringLikeIfExists", "svc:K", self.list(Gen::pattern)),
            5 => (
                "NumericLessThan",
                "svc:N",
                self.list(|g| g.below(3).to_string()),
            ),
            6 => (
                "NumericGreaterThanEquals",
                "svc:N",
                self.list(|g| g.below(3).to_string()),
            ),
            7 => (
                "NumericNotEquals",
                "svc:N",
                self.list(|g| g.below(3).to_string()),
            ),
            8 => (
                "Null",
                self.pick(&["svc:K", "svc:N"]),
                format!("\"{}\"", self.pick(&["true", "false"])),
            ),
            9 => (
                "Bool",
                "svc:B",
                format!("\"{}\"", self.pick(&["true", "false"])),
            ),
            10 => ("StringEqualsIgnoreCase", "svc:K", self.list(Gen::literal)),
            _ => ("ForAnyValue:StringLike", "svc:K", self.list(Gen::pattern)),
        };
        format!("\"{op}\":{{\"{key}\":{value}}}")
    }
    fn statement(&mut self) -> String {
        let effect = if self.chance(70) { "Allow" } else { "Deny" };
        let action_key = if self.chance(15) {
            "NotAction"
        } else {
            "Action"
        };
        let action = self.list(|g| {
            g.pick(&["svc:Get", "svc:Put", "svc:*", "svc:G*", "*"])
                .to_owned()
        });
        let resource_key = if self.chance(15) {
            "NotResource"
        } else {
            "Resource"
        };
        let resource = self.list(Gen::resource);
        let condition = match self.below(3) {
            0 => String::new(),
            1 => format!(",\"Condition\":{{{}}}", self.condition()),
            _ => {
                let (a, b) = (self.condition(), self.condition());
                // Two operators of one name would be a duplicate key.
                if a.split(':').next() == b.split(':').next() {
                    format!(",\"Condition\":{{{a}}}")
                } else {
                    format!(",\"Condition\":{{{a},{b}}}")
                }
            }
        };
        format!(
            "{{\"Effect\":\"{effect}\",\"{action_key}\":{action},\"{resource_key}\":{resource}{condition}}}"
        )
    }
    fn policy(&mut self) -> Vec<String> {
        let n = 1 + self.below(3);
        (0..n).map(|_| self.statement()).collect()
    }
    /// One small change: a statement added, removed or replaced.
    fn mutate(&mut self, mut statements: Vec<String>) -> Vec<String> {
        match self.below(4) {
            0 => statements.push(self.statement()),
            1 if statements.len() > 1 => {
                let i = self.below(statements.len() as u64) as usize;
                statements.remove(i);
            }
            2 => return self.policy(),
            _ => {
                let i = self.below(statements.len() as u64) as usize;
                statements[i] = self.statement();
            }
        }
        statements
    }
}

fn text(statements: &[String]) -> String {
    format!(
        "{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}",
        statements.join(",")
    )
}

fn compile(text: &str) -> Option<Arc<Policy>> {
    policy::parse_text(text, PolicyKind::Identity, "p")
        .policy
        .map(Arc::new)
}

/// Every request of the bounded space: each action, `*` and every ARN with account `1`,
/// `2` or `x` and a resource part of up to two characters of `a`, `b`; every context
/// of a few values per key (each region of the generated operators' values, and absent).
/// A key no condition of either policy reads cannot change a decision, so it stays
/// absent when `reads(key)` is false: the same space, decided with fewer requests.
fn brute_space(reads: &dyn Fn(&str) -> bool) -> Vec<(String, Action, String, Context)> {
    let mut parts = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..2 {
        let mut next = Vec::new();
        for p in &frontier {
            for c in ["a", "b"] {
                next.push(format!("{p}{c}"));
            }
        }
        parts.extend(next.iter().cloned());
        frontier = next;
    }
    let mut resources = vec!["*".to_owned()];
    for account in ["1", "2", "x"] {
        for p in &parts {
            resources.push(format!("arn:aws:svc:r:{account}:{p}"));
        }
    }
    let single = |s: &str| Some(ContextValue::Single(s.to_owned()));
    let ks = vec![
        None,
        single(""),
        single("a"),
        single("b"),
        single("ab"),
        single("A"),
        Some(ContextValue::Multi(vec!["a".into(), "b".into()])),
    ];
    let ns = vec![
        None,
        single("-1"),
        single("0"),
        single("0.5"),
        single("1"),
        single("1.5"),
        single("2"),
        single("3"),
        single("x"),
    ];
    let bs = vec![None, single("true"), single("false")];
    let only = |key: &str, vs: Vec<Option<ContextValue>>| if reads(key) { vs } else { vec![None] };
    let (ks, ns, bs) = (only("svc:K", ks), only("svc:N", ns), only("svc:B", bs));
    let mut out = Vec::new();
    for action in ACTIONS {
        for r in &resources {
            for k in &ks {
                for n in &ns {
                    for b in &bs {
                        let mut ctx = Context::new();
                        for (key, v) in [("svc:K", k), ("svc:N", n), ("svc:B", b)] {
                            if let Some(v) = v {
                                ctx.insert(key, v.clone());
                            }
                        }
                        out.push((
                            action.to_owned(),
                            Action::parse(action).unwrap(),
                            r.clone(),
                            ctx,
                        ));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn no_false_no_new_access_against_brute_force() {
    let pairs: u64 = std::env::var("WARDEN_COMPARE_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed: u128 = std::env::var("WARDEN_COMPARE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(17);
    let mut g = Gen(oorandom::Rand64::new(seed));
    let mut brute_requests = 0usize;
    let mut compare_time = std::time::Duration::ZERO;
    let actions: Vec<String> = ACTIONS.iter().map(|a| a.to_string()).collect();
    let (mut pass, mut fail, mut unknown, mut equivalent, mut brute_checked) = (0, 0, 0, 0, 0);
    for i in 0..pairs {
        let old_statements = g.policy();
        let new_statements = if g.chance(80) {
            g.mutate(old_statements.clone())
        } else {
            g.policy()
        };
        let (old_text, new_text) = (text(&old_statements), text(&new_statements));
        let (Some(old), Some(new)) = (compile(&old_text), compile(&new_text)) else {
            panic!("pair {i}: a generated policy does not compile:\n{old_text}\n{new_text}");
        };
        let t0 = std::time::Instant::now();
        let report = compare::compare_policies(
            PolicyKind::Identity,
            old.clone(),
            new.clone(),
            &actions,
            Scope {
                resources: None,
                baseline: Baseline::Old,
                limits: Limits::default(),
            },
            &|_, s| format!("{}", s.pos),
        );
        compare_time += t0.elapsed();
        let old_side = PolicySide::new(PolicyKind::Identity, old);
        let new_side = PolicySide::new(PolicyKind::Identity, new);
        let decide = |side: &PolicySide, action: &str, resource: &str, ctx: &Context| {
            side.decide(PRINCIPAL, &Action::parse(action).unwrap(), resource, ctx)
        };
        // Every counterexample reproduces, in process and as a `warden eval` case.
        for c in &report.compared {
            for (cx, new_allows) in [(&c.new_access, true), (&c.lost_access, false)] {
                let Some(cx) = cx else { continue };
                let r = &cx.request;
                let ctx = r.context();
                let a = decide(&old_side, &r.action, &r.resource, &ctx);
                let b = decide(&new_side, &r.action, &r.resource, &ctx);
                assert_eq!(
                    (a, b),
                    (cx.old, cx.new),
                    "pair {i}: {r:?}\n{old_text}\n{new_text}"
                );
                assert_eq!(b == Decision::Allow, new_allows, "pair {i}");
                assert_eq!(a == Decision::Allow, !new_allows, "pair {i}");
            }
        }
        let verdict = report.no_new_access();
        let equivalent_claimed = report
            .compared
            .iter()
            .filter(|c| c.relation == Relation::Equivalent)
            .map(|c| c.action.clone())
            .collect::<Vec<_>>();
        match verdict {
            Verdict::Pass => pass += 1,
            Verdict::Fail => fail += 1,
            Verdict::Unknown => unknown += 1,
        }
        equivalent += equivalent_claimed.len();
        if verdict != Verdict::Pass && equivalent_claimed.is_empty() {
            continue;
        }
        brute_checked += 1;
        let reads = |key: &str| old_text.contains(key) || new_text.contains(key);
        let space = brute_space(&reads);
        brute_requests += space.len();
        for (action, parsed, resource, ctx) in &space {
            let claimed = equivalent_claimed.iter().any(|e| e == action);
            if verdict != Verdict::Pass && !claimed {
                continue;
            }
            let a = old_side.decide(PRINCIPAL, parsed, resource, ctx);
            let b = new_side.decide(PRINCIPAL, parsed, resource, ctx);
            let (ao, bo) = (a == Decision::Allow, b == Decision::Allow);
            if verdict == Verdict::Pass {
                assert!(
                    ao || !bo,
                    "pair {i}: PASS (no new access) but NEW allows {action} on {resource} with {ctx:?}\nOLD {old_text}\nNEW {new_text}"
                );
            }
            if claimed {
                assert_eq!(
                    ao, bo,
                    "pair {i}: {action} equivalent but {resource} with {ctx:?} differs\nOLD {old_text}\nNEW {new_text}"
                );
            }
        }
    }
    eprintln!(
        "{pairs} pairs: {pass} PASS, {fail} FAIL, {unknown} UNKNOWN; {equivalent} equivalent actions; {brute_checked} pairs checked by brute force, {brute_requests} requests decided on both sides; comparison {compare_time:?}"
    );
    // The property is not vacuous: proofs and counterexamples both occur often.
    assert!(pass * 10 > pairs, "too few proofs: {pass}");
    assert!(fail * 10 > pairs, "too few counterexamples: {fail}");
}

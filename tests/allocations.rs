//! How many heap allocations one `Snapshot::ask` makes: the request path is meant to
//! allocate little beyond its outcome (see the identity-store section of `BENCHMARKS.md`).
//! Allocation counts are deterministic, unlike time, so a change that
//! adds work to every request fails here.
//!
//! The counting allocator (`stats_alloc`) is this test binary's global allocator. It counts
//! every thread's allocations, so the binary holds this one test and nothing runs beside it.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::alloc::System;
use std::path::Path;
use std::time::SystemTime;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use warden::context::{CallerContext, Context, ContextValue};
use warden::eval::Decision;
use warden::snapshot::Snapshot;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const DEV: &str = "333333333333";
const PROD: &str = "555555555555";

/// Allocations of one `ask`, after a first call has warmed the per-thread clock.
fn count(snapshot: &Snapshot, principal: &str, action: &str, resource: &str) -> (Decision, u64) {
    let mut context = Context::new();
    context.insert("aws:SourceIp", ContextValue::Single("10.0.0.1".into()));
    let context = CallerContext::screen(context, |_| {});
    let now = SystemTime::now();
    let ask = || {
        snapshot
            .ask(principal, action, resource, &context, now)
            .unwrap()
    };
    drop(ask());
    let region = Region::new(GLOBAL);
    let authorization = ask();
    let change = region.change();
    let made = (change.allocations + change.reallocations) as u64;
    (authorization.outcome.decision, made)
}

#[test]
fn a_request_allocates_only_its_outcome_and_a_session_id() {
    let snapshot = Snapshot::load_dir(Path::new("examples/org"), 1).unwrap();
    let order = format!("arn:aws:orders:us-east-1:{DEV}:order/1");
    let cases = [
        // A user: the outcome's list of deciding statements, nothing else.
        (
            format!("arn:aws:iam::{DEV}:user/engineering/alice"),
            "orders:GetOrder",
            order.clone(),
            Decision::Allow,
            1,
        ),
        // A denied request names no statement: nothing at all.
        (
            format!("arn:aws:iam::{DEV}:user/engineering/alice"),
            "iam:CreateUser",
            "*".to_owned(),
            Decision::ImplicitDeny,
            0,
        ),
        // A role session adds its `aws:userid` (`AROA...:SESSION`), held twice: in the
        // principal and as the context value; and the principal itself, boxed so that the
        // resolved principal a user's request moves about stays small.
        (
            format!("arn:aws:sts::{PROD}:assumed-role/Developer/alice"),
            "orders:GetOrder",
            format!("arn:aws:orders:us-east-1:{PROD}:order/1"),
            Decision::Allow,
            4,
        ),
    ];
    for (principal, action, resource, decision, expected) in cases {
        let (got, made) = count(&snapshot, &principal, action, &resource);
        assert_eq!(got, decision, "{principal} {action} {resource}");
        assert_eq!(
            made, expected,
            "{principal} {action} {resource}: allocations of one ask"
        );
    }
}

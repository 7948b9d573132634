//! A driver for valgrind's cache simulation: authorizes the 10,000 synthetic requests of
//! `benches/authorize.rs` once each, every request copied into fresh memory first as that
//! bench times it, with `ask` as the one function to count. Wall-clock time on a shared VM
//! moves by half between runs of the same code; simulated cache misses and instructions do
//! not, so they show what a change to the snapshot's layout is worth (BENCHMARKS.md):
//!
//! ```text
//! cargo bench --bench authorize_misses --no-run
//! valgrind --tool=callgrind --cache-sim=yes --LL=524288,8,64 \
//!     --toggle-collect='authorize_misses::ask' target/release/deps/authorize_misses-HASH 100000
//! ```
//!
//! With no size it runs 10, 1,000 and 100,000 statements in turn.
//!
//! `--LL=524288,8,64` makes the simulated last level this machine's per-core L2 (512 KiB),
//! so `DLmr` counts the loads that leave the core. Divide the totals by 10,000.
#![allow(
    clippy::expect_used,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

use std::hint::black_box;
use std::time::SystemTime;

use warden::bench::synth::{self, Spec, SynthRequest};
use warden::bundle;
use warden::context::CallerContext;
use warden::eval::Decision;
use warden::snapshot::{Authorization, Snapshot};

fn main() {
    // `cargo bench` passes `--bench` and any filter: only numbers are sizes.
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10, 1_000, 100_000];
    }
    for statements in sizes {
        run(statements);
    }
}

fn run(statements: usize) {
    let org = synth::generate(Spec {
        statements,
        requests: 10_000,
        seed: 1,
    })
    .expect("generate");
    let snapshot = Snapshot::compile(
        &bundle::load_files(&org.files).expect("the bundle loads"),
        1,
    );
    // Screened as the service screens a caller's context before it asks the snapshot.
    let contexts: Vec<CallerContext> = org
        .requests
        .iter()
        .map(|r| CallerContext::screen(r.context_keys(), |_| {}))
        .collect();
    let now = SystemTime::now();
    let mut allows = 0usize;
    for (r, context) in org.requests.iter().zip(&contexts) {
        let (r, context) = (black_box(r.clone()), black_box(context.clone()));
        if ask(&snapshot, &r, &context, now).outcome.decision == Decision::Allow {
            allows += 1;
        }
    }
    println!(
        "{statements} statements: {allows} of {} requests allowed",
        org.requests.len()
    );
}

/// The function valgrind counts: what the snapshot does for a request (its principal,
/// action and resource parsed, the principal resolved, the question decided).
#[inline(never)]
fn ask(
    snapshot: &Snapshot,
    r: &SynthRequest,
    context: &CallerContext,
    now: SystemTime,
) -> Authorization {
    snapshot
        .ask(&r.principal, &r.action, &r.resource, context, now)
        .expect("a synthetic request is well formed")
}

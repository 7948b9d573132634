//! Benchmark tools, not part of warden's API: the synthetic organizations the benches and
//! `warden synth` generate, the load generator behind `warden loadgen`, and the no-op
//! server it measures against. They live in the crate so that the binary and the benches
//! share them; nothing outside benchmarking depends on them.

pub mod baseline;
pub mod loadgen;
pub mod synth;

//! warden: AWS-IAM-style authorization for your own services.
//!
//! The crate reads as the data flow, from a document on disk to a decision:
//! - [`json`] reads JSON keeping line:column and duplicate keys;
//! - [`policy`] validates a document for its kind and compiles it, using [`matcher`]
//!   (wildcard patterns), [`arn`] (ARN patterns) and [`condition`] (operators, variables);
//! - [`compile`] gathers the policies of one layer into an indexed [`compile::PolicySet`];
//! - [`request`] and [`context`] describe what is asked;
//! - [`eval`] decides: pure, synchronous, cannot fail;
//! - [`bundle`] loads an organization, its identities and catalog from files, and
//!   [`snapshot`] compiles it into the immutable state that answers requests;
//! - [`source`] loads bundles off the request path and publishes snapshots;
//! - [`service`] is the one request path every face shares, with the decision [`cache`];
//! - [`grpc`] (the only module that knows protobuf) and [`http`] (admin) serve it, wired
//!   by [`server`], observed through [`telemetry`], and driven by [`load`];
//! - [`case`] reads the self-contained evaluation cases of `warden eval`;
//! - [`synth`] generates synthetic organizations and requests for the benchmarks.

pub mod arn;
pub mod bundle;
pub mod cache;
pub mod case;
pub mod compile;
pub mod condition;
pub mod context;
pub mod eval;
pub mod grpc;
pub mod http;
pub mod json;
pub mod load;
pub mod matcher;
pub mod policy;
pub mod request;
pub mod server;
pub mod service;
pub mod snapshot;
pub mod source;
pub mod synth;
pub mod telemetry;

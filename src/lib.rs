//! warden: AWS-IAM-style authorization for your own services.
//!
//! The crate reads as the data flow, from a document on disk to a decision:
//! - [`json`] reads JSON keeping line:column and duplicate keys;
//! - [`policy`] validates a document for its kind and compiles it, using [`matcher`]
//!   (wildcard patterns), [`arn`] (ARN patterns) and [`condition`] (operators, variables);
//! - [`compile`] gathers the policies of one layer into an indexed [`compile::PolicySet`];
//! - [`request`] and [`context`] describe what is asked; [`routes`] maps an HTTP request
//!   (Envoy's `Check`) to one;
//! - [`eval`] decides: pure, synchronous, cannot fail;
//! - [`bundle`] loads an organization, its identities and catalog from files, and
//!   [`snapshot`] compiles it into the immutable state that answers requests;
//! - [`source`] loads bundles off the request path and publishes snapshots;
//! - [`etcd`] reaches a fleet's etcd; [`fleet`] writes the bundle there (the admin API's
//!   domain, `warden push` and `warden pull`), validated whole and authorized first;
//! - [`service`] is the one request path every face shares, with the decision [`cache`];
//! - [`grpc`] (the only module that knows protobuf) and [`admin`] (the admin port) serve
//!   it, wired by [`server`] and observed through [`telemetry`];
//! - [`oidc`] verifies OIDC tokens of the bundle's identity providers and keeps their
//!   key sets fresh; a verified token becomes a role session;
//! - [`reverse`] answers reverse queries (who can, what can, can any), paged, through
//!   the same resolve and decide as every request;
//! - [`case`] reads the self-contained evaluation cases of `warden eval`;
//! - [`replay`] decides the decision log again against a candidate bundle (`warden
//!   replay`), and [`shadow`] decides live traffic against one beside the serving bundle;
//! - [`compare`] compares two policies or bundles, with counterexamples (`warden compare`);
//! - [`suite`] reads and runs the test suites of `warden test`, with statement coverage;
//! - [`bench`] holds the benchmark tools (synthetic organizations, the load generator, the
//!   no-op server), outside the API.

pub mod admin;
pub mod arn;
pub mod bench;
pub mod bundle;
pub mod cache;
pub mod caller;
pub mod case;
pub mod compare;
pub mod compile;
pub mod condition;
pub mod context;
pub mod digest;
pub mod error;
pub mod etcd;
pub mod eval;
pub mod ext_authz;
pub mod fleet;
pub mod grpc;
pub mod json;
pub mod keys;
pub mod matcher;
pub mod oidc;
pub mod policy;
pub mod replay;
pub mod request;
pub mod reverse;
pub mod routes;
pub mod server;
pub mod service;
pub mod shadow;
pub mod sigv4;
pub mod snapshot;
pub mod source;
pub mod sts;
pub mod suite;
pub mod telemetry;

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
//! - [`case`] reads the self-contained evaluation cases of `warden eval`;
//! - [`synth`] generates synthetic organizations and requests for the benchmarks.

pub mod arn;
pub mod bundle;
pub mod case;
pub mod compile;
pub mod condition;
pub mod context;
pub mod eval;
pub mod json;
pub mod matcher;
pub mod policy;
pub mod request;
pub mod snapshot;
pub mod synth;

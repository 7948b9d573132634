//! warden: AWS-IAM-style authorization for your own services.
//!
//! The crate reads as the data flow, from a document on disk to a decision:
//! - [`json`] reads JSON keeping line:column and duplicate keys;
//! - [`policy`] validates a document for its kind and compiles it, using [`matcher`]
//!   (wildcard patterns), [`arn`] (ARN patterns) and [`condition`] (operators, variables);
//! - [`compile`] gathers the policies of one layer into an indexed [`compile::PolicySet`];
//! - [`request`] and [`context`] describe what is asked;
//! - [`eval`] decides: pure, synchronous, cannot fail;
//! - [`case`] reads the self-contained evaluation cases of `warden eval`.

pub mod arn;
pub mod case;
pub mod compile;
pub mod condition;
pub mod context;
pub mod eval;
pub mod json;
pub mod matcher;
pub mod policy;
pub mod request;

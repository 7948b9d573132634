//! Roles and temporary credentials: AWS STS as warden serves it.
//!
//! - [`grant`] is what a session's credentials carry (its role or user, session policies,
//!   tags, source identity, MFA, times), sealed into the session token;
//! - [`keyring`] holds the AEAD keys that seal tokens and the secrets store; [`token`]
//!   seals and opens a [`grant::Grant`] and derives the session's secret from it, so a
//!   sidecar verifies credentials offline and keeps no table of sessions;
//! - [`secrets`] is the store of users' access keys and MFA devices, kept apart from the
//!   bundle and encrypted at rest; [`totp`] checks RFC 6238 codes;
//! - [`assume`] decides `AssumeRole`, `AssumeRoleWithWebIdentity` and `GetSessionToken`
//!   against a snapshot, and turns an opened grant back into a [`crate::caller::Session`];
//! - [`query`] and [`xml`] speak the AWS STS query API (form bodies in, XML out), served by
//!   [`http`] on its own listener with the container credentials endpoint ([`container`]).
//!
//! SigV4 verification of callers is [`crate::sigv4`]'s.

pub mod assume;
pub mod authority;
pub mod container;
pub mod error;
pub mod grant;
pub mod http;
pub mod keyring;
pub mod query;
pub mod secrets;
pub mod token;
pub mod totp;
pub mod xml;

pub use error::StsError;
pub use grant::{Grant, Subject};

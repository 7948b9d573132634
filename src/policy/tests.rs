//! Unit tests of policy validation.

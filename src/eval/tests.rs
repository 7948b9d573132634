//! Unit tests of the decision flow.

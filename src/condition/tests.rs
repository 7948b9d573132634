//! Unit tests of condition operators, written from the reference (§4).

//! Tests of bundle loading and validation findings.

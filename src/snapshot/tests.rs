//! Tests of the snapshot: principal resolution, server-owned context, the example organization.

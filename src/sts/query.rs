//! (issue 15: being built)

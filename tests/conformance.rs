//! The conformance corpus (`tests/conformance/*.jsonl`): every case must parse and the
//! engine must agree with its `expect` on every one of them.

use std::path::Path;

use warden::case::Case;

/// Cases each file holds; a line count that changes must change here too, so a truncated
/// or emptied file cannot pass unnoticed.
const FILES: &[(&str, usize)] = &[("generated.jsonl", 2_993), ("aws-docs.jsonl", 30)];

#[test]
fn engine_agrees_with_every_conformance_case() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut failures = Vec::new();
    let mut total = 0usize;
    for &(file, expected_cases) in FILES {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("cannot read `{file}`: {e}"));
        let mut cases = 0usize;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            cases += 1;
            let case = match Case::parse(line) {
                Ok(case) => case,
                Err(e) => {
                    failures.push(format!(
                        "{file}:{}: case `{}` does not parse: {}",
                        n + 1,
                        e.id.as_deref().unwrap_or("?"),
                        e.message
                    ));
                    continue;
                }
            };
            let Some(expect) = case.expect else {
                failures.push(format!("{file}:{}: case has no `expect`", n + 1));
                continue;
            };
            let outcome = case.evaluate();
            if outcome.decision != expect {
                failures.push(format!(
                    "{file}:{}: case `{}`: expected {expect}, decided {} (reason {})",
                    n + 1,
                    case.id.as_deref().unwrap_or("?"),
                    outcome.decision,
                    outcome.reason
                ));
            }
        }
        assert_eq!(
            cases, expected_cases,
            "`{file}` should hold {expected_cases} cases"
        );
        total += cases;
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} conformance cases failed (listed above)",
        failures.len()
    );
}

//! The real `warden` binary: `eval` on the corpus, on standard input and on broken lines
//! (`tests/conformance/README.md`), and `validate` on good and bad documents under
//! `tests/fixtures/policies/`, with the exact output lines and exit codes.

// clippy allows these in `#[test]` functions but not in a test crate's helpers; here a
// panic is a failed test, which is what we want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs `warden ARGS` from the crate root, feeding `stdin` when given.
fn warden(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the warden binary starts");
    if let Some(input) = stdin {
        // Written from a thread so a large input cannot dead-lock against a full stdout.
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_owned();
        std::thread::spawn(move || pipe.write_all(input.as_bytes()).unwrap());
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts the exit code, showing both streams when it differs.
#[track_caller]
fn check_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

fn corpus(file: &str) -> String {
    let path = format!("{}/tests/conformance/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap()
}

/// The JSON objects `warden eval` printed, one per line.
fn answers(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .collect()
}

/// Asserts one answer per case, in order, with the case's id and its expected decision.
#[track_caller]
fn check_answers_match_expect(input: &str, answers: &[Value]) {
    let cases: Vec<Value> = input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!cases.is_empty(), "the input holds cases");
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    for (case, answer) in cases.iter().zip(answers) {
        assert_eq!(answer["id"], case["id"], "{answer}");
        assert_eq!(answer["decision"], case["expect"], "{answer}");
        assert!(answer.get("error").is_none(), "{answer}");
    }
}

// === warden eval ===

#[test]
fn eval_answers_every_corpus_case_in_order_and_exits_zero() {
    for file in ["aws-docs.jsonl", "generated.jsonl"] {
        let path = format!("tests/conformance/{file}");
        let out = warden(&["eval", &path], None);
        check_exit(&out, 0);
        assert_eq!(stderr(&out), "", "no disagreement is reported");
        check_answers_match_expect(&corpus(file), &answers(&out));
    }
}

#[test]
fn eval_reads_standard_input_when_no_file_is_given() {
    let input = corpus("aws-docs.jsonl");
    let out = warden(&["eval"], Some(&input));
    check_exit(&out, 0);
    check_answers_match_expect(&input, &answers(&out));
}

#[test]
fn eval_answers_carry_the_reason_layer_and_deciding_statements() {
    let first = corpus("aws-docs.jsonl").lines().next().unwrap().to_owned();
    let out = warden(&["eval"], Some(&first));
    check_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        concat!(
            r#"{"id":"rp-user-same","decision":"Allow","reason":"resource_policy_direct","denied_by":null,"#,
            r#""statements":[{"kind":"resource","policy":"resource_policy","index":0,"sid":null,"effect":"Allow"}]}"#,
            "\n"
        )
    );
}

/// A case of the corpus with its id replaced and `edit` applied.
fn variant(line: usize, id: &str, edit: impl FnOnce(&mut Value)) -> String {
    let text = corpus("aws-docs.jsonl");
    let mut case: Value = serde_json::from_str(text.lines().nth(line).unwrap()).unwrap();
    case["id"] = Value::String(id.into());
    edit(&mut case);
    serde_json::to_string(&case).unwrap()
}

#[test]
fn eval_answers_broken_lines_with_an_error_and_goes_on() {
    let docs = corpus("aws-docs.jsonl");
    let mut lines = docs.lines();
    let good = lines.next().unwrap();
    let other = lines.nth(2).unwrap();
    let bad_policy = variant(0, "bad-policy", |c| {
        c.as_object_mut().unwrap().remove("expect");
        c["resource_policy"]["Statement"][0]["Effect"] = "allow".into();
    });
    let wrong_expect = variant(0, "wrong-expect", |c| c["expect"] = "ExplicitDeny".into());
    let input = [
        good,
        r#"{"id": "broken", "request": "#,
        "not json",
        &bad_policy,
        r#"{"id": "no-request"}"#,
        "",
        &wrong_expect,
        other,
    ]
    .join("\n");
    let out = warden(&["eval"], Some(&input));
    check_exit(&out, 1);
    let a = answers(&out);
    assert_eq!(a.len(), 7, "one answer per non-blank line: {a:#?}");

    assert_eq!(
        (&a[0]["id"], &a[0]["decision"]),
        (&"rp-user-same".into(), &"Allow".into())
    );
    for unreadable in &a[1..3] {
        assert_eq!(unreadable["id"], Value::Null, "{unreadable}");
        assert!(
            unreadable["error"]
                .as_str()
                .unwrap()
                .contains("invalid JSON"),
            "{unreadable}"
        );
        assert!(unreadable.get("decision").is_none());
    }
    assert_eq!(a[3]["id"], "bad-policy");
    assert!(a[3].get("decision").is_none());
    let error = a[3]["error"].as_str().unwrap();
    assert!(
        error.starts_with("resource_policy: 1:")
            && error.contains("error[invalid-effect] $.Statement[0].Effect")
            && error.contains("found `allow`"),
        "{error}"
    );
    assert_eq!(a[4]["id"], "no-request");
    assert_eq!(a[4]["error"], "the case has no `request`");
    assert_eq!(
        (&a[5]["id"], &a[5]["decision"]),
        (&"wrong-expect".into(), &"Allow".into())
    );
    assert_eq!(
        (&a[6]["id"], &a[6]["decision"]),
        (&"cross-id-only".into(), &"ImplicitDeny".into())
    );

    let err = stderr(&out);
    assert!(
        err.contains("<stdin>:7: case `wrong-expect`: expected ExplicitDeny, decided Allow"),
        "{err}"
    );
    assert!(err.contains("<stdin>:4: resource_policy: 1:"), "{err}");
    assert!(err.ends_with("1 case(s) disagree with `expect`\n"), "{err}");
}

#[test]
fn eval_exits_zero_when_no_case_disagrees_even_with_broken_lines() {
    let bad_policy = variant(0, "bad-policy", |c| {
        c.as_object_mut().unwrap().remove("expect");
        c["resource_policy"]["Statement"][0]["Effect"] = "allow".into();
    });
    let good = variant(1, "good", |_| {});
    let input = format!("not json\n{bad_policy}\n{good}\n");
    let out = warden(&["eval"], Some(&input));
    check_exit(&out, 0);
    let a = answers(&out);
    assert_eq!(a.len(), 3);
    assert!(a[0].get("error").is_some() && a[1].get("error").is_some());
    assert_eq!(a[2]["decision"], "Allow");
}

#[test]
fn eval_counts_a_case_with_expect_that_cannot_be_decided_as_a_disagreement() {
    // warden's reading of the README: a case that carries `expect` and is refused did not
    // agree with it, so a conformance run cannot pass by refusing cases.
    let refused = variant(0, "refused", |c| {
        c["resource_policy"]["Statement"][0]["Effect"] = "allow".into();
    });
    let out = warden(&["eval"], Some(&refused));
    check_exit(&out, 1);
    assert_eq!(answers(&out)[0]["id"], "refused");
}

#[test]
fn eval_of_a_missing_file_is_a_usage_error() {
    let out = warden(&["eval", "tests/conformance/missing.jsonl"], None);
    check_exit(&out, 2);
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("cannot open `tests/conformance/missing.jsonl`"),
        "{}",
        stderr(&out)
    );
}

// === warden validate ===

const FIXTURES: &str = "tests/fixtures/policies";

fn validate(kind: &str, files: &[&str]) -> Output {
    let paths: Vec<String> = files.iter().map(|f| format!("{FIXTURES}/{f}")).collect();
    let mut args = vec!["validate", "--kind", kind];
    args.extend(paths.iter().map(String::as_str));
    warden(&args, None)
}

#[test]
fn validate_good_documents_prints_no_finding_and_exits_zero() {
    for (kind, file) in [("identity", "identity-ok.json"), ("rcp", "rcp-ok.json")] {
        let out = validate(kind, &[file]);
        check_exit(&out, 0);
        assert_eq!(stdout(&out), "");
        assert_eq!(
            stderr(&out),
            "1 file(s) checked: 0 error(s), 0 warning(s)\n"
        );
    }
}

#[test]
fn validate_prints_every_finding_with_file_line_column_code_and_path() {
    let out = validate("identity", &["identity-bad.json"]);
    check_exit(&out, 1);
    let f = "tests/fixtures/policies/identity-bad.json";
    let expected = [
        format!(
            "{f}:5:14: error[invalid-sid] $.Statement[0].Sid: `Sid` `Read Orders` may hold only ASCII letters and digits in an identity policy"
        ),
        format!(
            "{f}:6:17: error[invalid-effect] $.Statement[0].Effect: `Effect` must be `Allow` or `Deny` (case-sensitive), found `allow`"
        ),
        format!(
            "{f}:12:17: error[invalid-action] $.Statement[1].Action: `orders:Get:Order` is not an action: it has more than one `:`"
        ),
        format!(
            "{f}:13:20: error[principal-not-allowed] $.Statement[1].Principal: an identity policy cannot name a `Principal`: it applies to the principal it is attached to"
        ),
        format!(
            "{f}:15:58: error[invalid-condition-value] $.Statement[1].Condition.NumericLessThan.orders:Amount: `ten` is not a number"
        ),
    ];
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        stderr(&out),
        "1 file(s) checked: 5 error(s), 0 warning(s)\n"
    );
}

#[test]
fn validate_exits_zero_on_warnings_only() {
    let out = validate("identity", &["identity-no-version.json"]);
    check_exit(&out, 0);
    let f = "tests/fixtures/policies/identity-no-version.json";
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            format!(
                "{f}:1:1: warning[missing-version] $: no `Version`: policy variables are read as literal text; write `\"Version\": \"2012-10-17\"`"
            ),
            format!(
                "{f}:5:17: warning[literal-variable] $.Statement.Resource: `arn:aws:orders:*:*:order/${{aws:username}}`: without `\"Version\": \"2012-10-17\"` the `${{...}}` is literal text"
            ),
        ]
    );
    assert_eq!(
        stderr(&out),
        "1 file(s) checked: 0 error(s), 2 warning(s)\n"
    );
}

#[test]
fn validate_applies_the_rules_of_the_kind_given() {
    // A valid identity policy is not a valid resource-based policy: it names no principal.
    let out = validate("resource", &["identity-ok.json"]);
    check_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        "tests/fixtures/policies/identity-ok.json:4:5: error[missing-principal] $.Statement[0]: a resource policy statement needs a `Principal`\n"
    );
    let out = validate("trust", &["trust-bad.json"]);
    check_exit(&out, 1);
    let f = "tests/fixtures/policies/trust-bad.json";
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            format!(
                "{f}:8:19: error[trust-resource] $.Statement[0].Resource: a role trust policy cannot have `Resource`: it always applies to the role"
            ),
            format!(
                "{f}:6:23: error[principal-not-allowed] $.Statement[0].NotPrincipal: a trust policy cannot use `NotPrincipal`"
            ),
        ]
    );
}

#[test]
fn validate_reports_invalid_json_where_it_stops() {
    let out = validate("identity", &["truncated.json"]);
    check_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        "tests/fixtures/policies/truncated.json:3:1: error[invalid-json] $: unexpected end of input, expected a JSON value\n"
    );
}

#[test]
fn validate_checks_every_file_and_fails_if_any_has_an_error() {
    let out = validate(
        "identity",
        &[
            "identity-ok.json",
            "truncated.json",
            "identity-no-version.json",
        ],
    );
    check_exit(&out, 1);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("tests/fixtures/policies/truncated.json:3:1: error[invalid-json]")
    );
    assert!(lines[1].starts_with("tests/fixtures/policies/identity-no-version.json:1:1: warning"));
    assert_eq!(
        stderr(&out),
        "3 file(s) checked: 1 error(s), 2 warning(s)\n"
    );
}

#[test]
fn validate_reports_an_unreadable_file_as_an_error() {
    let out = validate("identity", &["missing.json"]);
    check_exit(&out, 1);
    assert!(
        stdout(&out).starts_with(
            "tests/fixtures/policies/missing.json:file: error[unreadable] $: cannot open the file:"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn validate_usage_problems_exit_with_two() {
    let out = validate("admin", &["identity-ok.json"]);
    check_exit(&out, 2);
    assert!(
        stderr(&out).contains("unknown policy kind `admin`; expected one of identity, resource, trust, boundary, session, scp, rcp"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    // No file, and no kind.
    check_exit(&warden(&["validate", "--kind", "identity"], None), 2);
    check_exit(
        &warden(
            &["validate", "tests/fixtures/policies/identity-ok.json"],
            None,
        ),
        2,
    );
    check_exit(&warden(&["frobnicate"], None), 2);
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // `warden eval ... | head -1`: standard output closes after one line.
    for args in [
        &["eval", "tests/conformance/generated.jsonl"][..],
        &[
            "validate",
            "--kind",
            "identity",
            "tests/fixtures/policies/identity-bad.json",
        ][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut first,
        )
        .unwrap();
        assert!(!first.is_empty());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(2), "{args:?}: {err}");
    }
}

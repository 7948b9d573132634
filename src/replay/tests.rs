use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::caller::Caller;
use crate::eval::Outcome;
use crate::telemetry::{DecisionRecord, Face, RecordedContext};

const BOB: &str = "arn:aws:iam::333333333333:user/engineering/bob";
const CAROL: &str = "arn:aws:iam::333333333333:user/engineering/carol";
const DEVELOPER: &str = "arn:aws:sts::555555555555:assumed-role/Developer/alice";
const ORDER: &str = "arn:aws:orders:us-east-1:333333333333:order/42";
const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/7";
const READER: &str = "arn:aws:iam::333333333333:policy/ReportsReader";

fn example() -> BTreeMap<String, String> {
    crate::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")).unwrap()
}

/// The example, with carol allowed to read orders before `until` only, and bob's
/// `ReportsReader` reading orders (no longer listing them) unless `orders:Channel` is
/// `web`.
fn candidate(until: &str) -> Snapshot {
    let mut files = example();
    files.insert(
        "accounts/333333333333/policies/OfficeHours.json".into(),
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*", "Condition": {{"DateLessThan": {{"aws:CurrentTime": "{until}"}}}}}}]}}"#
        ),
    );
    files.insert(
        "accounts/333333333333/users/carol.json".into(),
        r#"{"path": "/engineering/", "managed_policies": ["OfficeHours"]}"#.into(),
    );
    files.insert(
        "accounts/333333333333/policies/ReportsReader.json".into(),
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"},
            {"Effect": "Deny", "Action": "orders:GetOrder", "Resource": "*",
             "Condition": {"StringEquals": {"orders:Channel": "web"}}}]}"#
            .into(),
    );
    Snapshot::load_files(&files, 2).unwrap()
}

fn base() -> Snapshot {
    Snapshot::load_files(&example(), 1).unwrap()
}

fn at(text: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
}

/// A record as the service writes it, of the decision `snapshot` makes.
fn record(
    snapshot: &Snapshot,
    caller: &Caller,
    (action, resource): (&str, &str),
    context: &[(&str, &str)],
    now: SystemTime,
) -> String {
    let mut ctx = Context::new();
    for (k, v) in context {
        ctx.insert(k, ContextValue::Single((*v).to_owned()));
    }
    let screened = CallerContext::screen(ctx, |_| {});
    let session = match caller {
        Caller::Session(s) => Some(s.for_snapshot(snapshot)),
        _ => None,
    };
    let action_parsed = Action::parse(action).unwrap();
    let question = Question {
        action: &action_parsed,
        resource,
        resource_arn: parse_resource(resource).unwrap(),
        context: CallerView::of(&screened),
    };
    let outcome = match snapshot
        .resolve(caller.arn(), session.as_ref(), now)
        .unwrap()
    {
        Some(who) => snapshot.decide(&who, &question, now, false).0.outcome,
        None => Outcome::unknown_principal(),
    };
    let r = DecisionRecord::new(
        Face::Authorize,
        "id",
        1,
        caller,
        (action, resource),
        &outcome,
        false,
    )
    .at(now)
    .with_context(RecordedContext::copy(screened.iter(), RECORD_CONTEXT_BYTES));
    serde_json::to_string(&r).unwrap()
}

fn run(log: &str, candidate: &Snapshot, against: &Against<'_>) -> Tally {
    let config = Config {
        jobs: 2,
        ..Config::default()
    };
    replay(&mut log.as_bytes(), candidate, against, &config).unwrap()
}

fn asserted(arn: &str) -> Caller {
    Caller::Asserted(arn.to_owned())
}

#[test]
fn a_record_the_service_writes_replays_and_its_changes_are_grouped() {
    let base = base();
    let now = at("2026-01-01T00:00:00Z");
    let lines = [
        record(
            &base,
            &asserted(BOB),
            ("orders:GetOrder", ORDER),
            &[("orders:Channel", "web")],
            now,
        ),
        record(
            &base,
            &asserted(BOB),
            ("orders:GetOrder", ORDER),
            &[("orders:Channel", "app")],
            now,
        ),
        record(
            &base,
            &asserted(BOB),
            ("orders:ListOrders", ORDER),
            &[],
            now,
        ),
        record(
            &base,
            &asserted(CAROL),
            ("orders:GetOrder", ORDER),
            &[],
            now,
        ),
    ]
    .join("\n");
    let t = run(&lines, &candidate("2030-01-01T00:00:00Z"), &Against::Logged);
    assert_eq!((t.lines, t.replayed, t.bad_lines), (4, 4, 0), "{:?}", t.bad);
    assert_eq!((t.unchanged, t.changed, t.flipped), (1, 3, 3));
    let by = |principal: &str, action: &str| -> Vec<(String, u64)> {
        t.groups
            .iter()
            .filter(|(k, _)| k.principal == principal && k.action == action)
            .map(|(k, g)| (format!("{} -> {}", k.from, k.to), g.count))
            .collect()
    };
    assert_eq!(
        by(BOB, "orders:GetOrder"),
        [(
            "Allow (identity_allow) -> ExplicitDeny (explicit_deny)".to_owned(),
            1
        )]
    );
    assert_eq!(
        by(BOB, "orders:ListOrders"),
        [(
            "Allow (identity_allow) -> ImplicitDeny (no_identity_allow)".to_owned(),
            1
        )]
    );
    assert_eq!(
        by(CAROL, "orders:GetOrder"),
        [(
            "ImplicitDeny (no_identity_allow) -> Allow (identity_allow)".to_owned(),
            1
        )]
    );
    // Compared with the example re-decided, nothing changed from the log.
    let same = run(&lines, &base, &Against::Baseline(&base));
    assert_eq!((same.replayed, same.changed), (4, 0));
}

#[test]
fn a_record_is_decided_at_its_own_time() {
    let cand = candidate("2026-06-01T00:00:00Z");
    let before = record(
        &cand,
        &asserted(CAROL),
        ("orders:GetOrder", ORDER),
        &[],
        at("2026-01-01T00:00:00Z"),
    );
    let after = record(
        &cand,
        &asserted(CAROL),
        ("orders:GetOrder", ORDER),
        &[],
        at("2026-07-01T00:00:00Z"),
    );
    assert!(before.contains(r#""decision":"Allow""#), "{before}");
    assert!(after.contains(r#""decision":"ImplicitDeny""#), "{after}");
    let t = run(&format!("{before}\n{after}\n"), &cand, &Against::Logged);
    assert_eq!((t.replayed, t.unchanged, t.changed), (2, 2, 0));
}

fn developer_session(policy_arns: Vec<String>, inline: bool) -> Caller {
    let parsed = crate::policy::parse_text(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        crate::policy::PolicyKind::Session,
        "session-policy",
    )
    .policy
    .unwrap();
    Caller::Session(Arc::new(Session {
        id: "ASIAEXAMPLE".to_owned(),
        arn: DEVELOPER.to_owned(),
        policies: Some(Arc::new(crate::compile::PolicySet::new(Vec::new()))),
        policy_arns,
        inline_policy: inline.then(|| crate::caller::InlinePolicy::Parsed(Arc::new(parsed))),
        tags: vec![("team".to_owned(), "orders".to_owned())],
        source_identity: Some("alice".to_owned()),
        issued_at: at("2026-01-01T00:00:00Z"),
        expires_at: at("2026-01-01T01:00:00Z"),
        mfa_at: Some(at("2026-01-01T00:00:00Z")),
        web_identity: None,
    }))
}

#[test]
fn a_session_replays_with_its_managed_session_policies_looked_up_in_the_candidate() {
    let base = base();
    let now = at("2026-01-01T00:10:00Z");
    let session = developer_session(vec![READER.to_owned()], false);
    let line = record(&base, &session, ("orders:ListOrders", PROD_ORDER), &[], now);
    assert!(
        line.contains(r#""policy_arns":["arn:aws:iam::333333333333:policy/ReportsReader"]"#),
        "{line}"
    );
    assert!(line.contains(r#""tags":[["team","orders"]]"#), "{line}");
    assert!(line.contains(r#""decision":"Allow""#), "{line}");
    let same = run(&line, &base, &Against::Logged);
    assert_eq!((same.replayed, same.changed), (1, 0));
    // The candidate's ReportsReader no longer lists orders: the session policy caps it.
    let t = run(&line, &candidate("2030-01-01T00:00:00Z"), &Against::Logged);
    assert_eq!((t.replayed, t.changed), (1, 1));
    let (key, _) = t.groups.iter().next().unwrap();
    assert_eq!(key.to.decision, "ImplicitDeny");
}

#[test]
fn what_cannot_be_replayed_is_counted_by_why_never_decided() {
    let base = base();
    let now = at("2026-01-01T00:10:00Z");
    let inline = record(
        &base,
        &developer_session(Vec::new(), true),
        ("orders:GetOrder", ORDER),
        &[],
        now,
    );
    assert!(
        inline.contains(r#""not_replayable":"inline_session_policy""#),
        "{inline}"
    );
    let old = r#"{"ts_ms":1,"face":"Authorize","decision_id":"x","revision":1,"principal":"arn:aws:iam::333333333333:user/engineering/bob","caller":"asserted","action":"orders:GetOrder","resource":"*","decision":"Allow","reason":"identity_allow","statements":[],"cached":false}"#;
    let refused = r#"{"ts_ms":1,"face":"Check","decision_id":"x","revision":1,"principal":"","caller":"presented","action":"","resource":"","decision":"ImplicitDeny","reason":"no_route","statements":[],"cached":false,"not_replayable":"refused_before_evaluation"}"#;
    let t = run(
        &format!("{inline}\n{old}\n{refused}\n"),
        &base,
        &Against::Logged,
    );
    assert_eq!((t.lines, t.replayed, t.bad_lines), (3, 0, 0));
    let counts: Vec<(&str, u64)> = t
        .not_replayable
        .iter()
        .map(|(w, n)| (w.as_str(), *n))
        .collect();
    assert_eq!(
        counts,
        [
            ("no_context", 1),
            ("inline_session_policy", 1),
            ("refused_before_evaluation", 1)
        ]
    );
    assert_eq!(NotReplayable::NoContext.describe(), "no context recorded");
}

#[test]
fn hostile_lines_are_refused_with_their_line_numbers_and_the_rest_replayed() {
    let base = base();
    let good = record(
        &base,
        &asserted(BOB),
        ("orders:GetOrder", ORDER),
        &[],
        at("2026-01-01T00:00:00Z"),
    );
    let with = |field: &str| {
        good.replacen(
            r#""cached":false"#,
            &format!(r#""cached":false,{field}"#),
            1,
        )
    };
    let many_keys: Vec<String> = (0..65).map(|i| format!(r#""orders:k{i}":"v""#)).collect();
    let big_values: Vec<String> = (0..5)
        .map(|i| format!(r#""orders:k{i}":"{}""#, "v".repeat(4000)))
        .collect();
    let lines = [
        good.clone(),           // 1
        "x".repeat(300),        // 2: too long
        "{not json".to_owned(), // 3
        with(r#""extra":1"#),   // 4: unknown field
        good.replacen(
            r#""context":{}"#,
            &format!(r#""context":{{{}}}"#, many_keys.join(",")),
            1,
        ), // 5
        good.replacen(
            r#""context":{}"#,
            &format!(r#""context":{{{}}}"#, big_values.join(",")),
            1,
        ), // 6
        good.replacen(
            r#""context":{}"#,
            r#""context":{"orders:a":"1","ORDERS:A":"2"}"#,
            1,
        ), // 7
        good.replacen(r#""decision":"Allow""#, r#""decision":"Maybe""#, 1), // 8
        with(r#""not_replayable":"because""#), // 9
        String::new(),          // blank: skipped
        good.clone(),           // 11
    ]
    .join("\n");
    let config = Config {
        max_line_bytes: 25_000,
        jobs: 2,
        ..Config::default()
    };
    let long = lines.replacen(&"x".repeat(300), &"x".repeat(30_000), 1);
    let t = replay(&mut long.as_bytes(), &base, &Against::Logged, &config).unwrap();
    let numbers: Vec<u64> = t.bad.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [2, 3, 4, 5, 6, 7, 8, 9], "{:#?}", t.bad);
    assert_eq!((t.lines, t.replayed, t.bad_lines), (10, 2, 8));
    let message = |n: u64| t.bad.iter().find(|(l, _)| *l == n).unwrap().1.clone();
    assert!(
        message(2).contains("longer than the limit of 25000"),
        "{}",
        message(2)
    );
    assert!(
        message(4).contains("unknown field `extra`"),
        "{}",
        message(4)
    );
    assert!(message(5).contains("65 keys"), "{}", message(5));
    assert!(message(6).contains("16384 bytes"), "{}", message(6));
    assert!(message(7).contains("given twice"), "{}", message(7));
    assert!(message(9).contains("unknown code"), "{}", message(9));
}

#[test]
fn many_records_on_several_threads_tally_as_on_one() {
    let base = base();
    let cand = candidate("2030-01-01T00:00:00Z");
    let now = at("2026-01-01T00:00:00Z");
    let kinds = [
        record(
            &base,
            &asserted(BOB),
            ("orders:GetOrder", ORDER),
            &[("orders:Channel", "web")],
            now,
        ),
        record(
            &base,
            &asserted(BOB),
            ("orders:ListOrders", ORDER),
            &[],
            now,
        ),
        record(
            &base,
            &asserted(CAROL),
            ("orders:GetOrder", ORDER),
            &[],
            now,
        ),
        "bad".to_owned(),
    ];
    let log: Vec<&str> = (0..10_000)
        .map(|i| kinds[i % kinds.len()].as_str())
        .collect();
    let log = log.join("\n");
    let one = replay(
        &mut log.as_bytes(),
        &cand,
        &Against::Logged,
        &Config {
            jobs: 1,
            ..Config::default()
        },
    )
    .unwrap();
    let two = replay(
        &mut log.as_bytes(),
        &cand,
        &Against::Logged,
        &Config {
            jobs: 3,
            ..Config::default()
        },
    )
    .unwrap();
    assert_eq!(
        (one.replayed, one.changed, one.bad_lines),
        (7_500, 7_500, 2_500)
    );
    assert_eq!(
        (two.replayed, two.changed, two.bad_lines),
        (7_500, 7_500, 2_500)
    );
    let groups = |t: &Tally| -> Vec<(GroupKey, u64, Vec<u64>)> {
        t.groups_sorted()
            .into_iter()
            .map(|(k, g)| {
                (
                    k.clone(),
                    g.count,
                    g.examples.iter().map(|e| e.line).collect(),
                )
            })
            .collect()
    };
    assert_eq!(groups(&one), groups(&two));
    assert_eq!(one.bad, two.bad);
    assert_eq!(groups(&one)[0].2, [1, 5, 9]);
}

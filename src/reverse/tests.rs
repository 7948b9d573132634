#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use super::*;
use crate::context::Context;

const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/1";
const SHARED_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/shared/7";

fn example() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
        Snapshot::load_dir(&dir, 7).unwrap()
    })
}

fn no_context() -> CallerContext {
    CallerContext::screen(Context::new(), |_| {})
}

fn who_can(action: &str, resource: &str, mfa: bool) -> Query {
    Query::WhoCan {
        action: action.into(),
        resource: resource.into(),
        session_name: DEFAULT_SESSION.into(),
        assume_with_mfa: mfa,
    }
}

fn all(snapshot: &Snapshot, q: &Query, size: Option<usize>, limits: &Limits) -> Vec<Item> {
    answer_all(snapshot, q, &no_context(), size, limits, SystemTime::now())
        .unwrap()
        .items
}

fn principals(items: &[Item]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| match i {
            Item::Principal(p) => p.principal.clone(),
            other => panic!("not a principal: {other:?}"),
        })
        .collect()
}

fn page(q: &Query, cursor: Option<String>) -> Result<Answer, RequestError> {
    answer(
        example(),
        q,
        &no_context(),
        &PageRequest {
            size: Some(2),
            cursor,
        },
        &Limits::default(),
        SystemTime::now(),
    )
}

#[test]
fn only_break_glass_deletes_production_orders() {
    let items = all(
        example(),
        &who_can("orders:DeleteOrder", PROD_ORDER, true),
        None,
        &Limits::default(),
    );
    assert_eq!(
        principals(&items),
        BTreeSet::from([
            "arn:aws:sts::555555555555:assumed-role/BreakGlass/warden-who-can".to_owned()
        ])
    );
    let Item::Principal(p) = &items[0] else {
        unreachable!()
    };
    assert_eq!(
        p.role.as_deref(),
        Some("arn:aws:iam::555555555555:role/BreakGlass")
    );
    assert_eq!(p.reason, "identity_allow");
    assert!(
        p.statements
            .iter()
            .any(|b| b.statement.contains("AdministratorAccess") && b.via == "role"),
        "{p:?}"
    );
    // Who may become BreakGlass: its trust policy names the security account and asks
    // for MFA. The account's root may (a root needs no identity allow); erin's policy
    // allows only Auditor; nobody without MFA.
    let by: Vec<(&str, &[String])> = p
        .assumable_by
        .iter()
        .map(|a| (a.principal.as_str(), a.through.as_slice()))
        .collect();
    assert_eq!(
        by,
        vec![(
            "arn:aws:iam::222222222222:root",
            &["arn:aws:iam::555555555555:role/BreakGlass".to_owned()][..]
        )]
    );
    let without_mfa = all(
        example(),
        &who_can("orders:DeleteOrder", PROD_ORDER, false),
        None,
        &Limits::default(),
    );
    let Item::Principal(p) = &without_mfa[0] else {
        unreachable!()
    };
    assert!(p.assumable_by.is_empty(), "{p:?}");
}

#[test]
fn shared_orders_are_read_across_accounts_as_documented() {
    let items = all(
        example(),
        &who_can("orders:GetOrder", SHARED_ORDER, false),
        None,
        &Limits::default(),
    );
    assert_eq!(
        principals(&items),
        BTreeSet::from(
            [
                // Through the resource policy that trusts the dev account.
                "arn:aws:iam::333333333333:root",
                "arn:aws:iam::333333333333:user/engineering/alice",
                "arn:aws:iam::333333333333:user/engineering/bob",
                "arn:aws:sts::333333333333:assumed-role/app-runtime/warden-who-can",
                // Prod's own principals that read everything.
                "arn:aws:iam::555555555555:root",
                "arn:aws:iam::555555555555:user/admin",
                "arn:aws:sts::555555555555:assumed-role/Auditor/warden-who-can",
                "arn:aws:sts::555555555555:assumed-role/BreakGlass/warden-who-can",
                "arn:aws:sts::555555555555:assumed-role/Developer/warden-who-can",
            ]
            .map(String::from)
        )
    );
    let cross: Vec<&PrincipalItem> = items
        .iter()
        .filter_map(|i| match i {
            Item::Principal(p) if p.principal.contains("333333333333") => Some(p),
            _ => None,
        })
        .collect();
    for p in cross {
        assert_eq!(p.reason, "cross_account_allow", "{p:?}");
        assert!(
            p.statements
                .iter()
                .any(|b| b.via == "resource policy" && b.statement.contains("ReportingReadsShared")),
            "{p:?}"
        );
    }
    // bob's read comes through his own attachment, alice's through her group.
    let via = |who: &str| -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Principal(p) if p.principal.ends_with(who) => Some(
                    p.statements
                        .iter()
                        .map(|b| b.via.clone())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    };
    assert!(via("user/engineering/alice").contains(&"group Developers".to_owned()));
    assert!(via("user/engineering/bob").contains(&"user".to_owned()));
}

#[test]
fn every_item_is_what_ask_decides() {
    let now = SystemTime::now();
    let snapshot = example();
    for q in [
        who_can("orders:GetOrder", SHARED_ORDER, false),
        who_can("orders:DeleteOrder", PROD_ORDER, false),
        who_can(
            "db:Query",
            "arn:aws:db:us-east-1:333333333333:database/main",
            false,
        ),
        who_can(
            "sts:AssumeRole",
            "arn:aws:iam::555555555555:role/Developer",
            false,
        ),
    ] {
        let Query::WhoCan {
            action, resource, ..
        } = &q
        else {
            unreachable!()
        };
        let got = principals(&all(snapshot, &q, None, &Limits::default()));
        let mut want = BTreeSet::new();
        for s in subjects(snapshot, DEFAULT_SESSION) {
            let a = snapshot
                .ask(&s.arn, action, resource, &no_context(), now)
                .unwrap();
            if a.outcome.decision == Decision::Allow {
                want.insert(s.arn);
            }
        }
        assert_eq!(got, want, "{q:?}");
    }
}

#[test]
fn pages_together_are_the_unlimited_answer() {
    let tiny = Limits {
        budget: 1,
        ..Limits::default()
    };
    let queries = [
        who_can("orders:GetOrder", SHARED_ORDER, true),
        Query::WhatCan {
            principal: "arn:aws:iam::333333333333:user/engineering/alice".into(),
            resource: None,
        },
        Query::WhatCan {
            principal: "arn:aws:iam::555555555555:user/admin".into(),
            resource: Some(PROD_ORDER.into()),
        },
        Query::CanAny {
            principal: "arn:aws:iam::333333333333:user/engineering/bob".into(),
            resource_type: "orders:order".into(),
        },
    ];
    for q in &queries {
        let whole = all(example(), q, Some(1_000), &Limits::default());
        assert!(!whole.is_empty(), "{q:?}");
        for (size, limits) in [
            (Some(1), Limits::default()),
            (Some(3), Limits::default()),
            (None, tiny),
        ] {
            assert_eq!(all(example(), q, size, &limits), whole, "{q:?} {size:?}");
        }
        // The one-page answer says it is complete and has no cursor.
        let one = answer(
            example(),
            q,
            &no_context(),
            &PageRequest {
                size: Some(1_000),
                cursor: None,
            },
            &Limits::default(),
            SystemTime::now(),
        )
        .unwrap();
        assert!(one.complete && one.next_cursor.is_none());
    }
    // A page that stops early says so.
    let first = page(&queries[0], None).unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(!first.complete && first.next_cursor.is_some());
}

#[test]
fn a_cursor_of_another_revision_is_refused() {
    let q = who_can("orders:GetOrder", SHARED_ORDER, false);
    let first = page(&q, None).unwrap();
    let cursor = first.next_cursor.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    let newer = Snapshot::load_dir(&dir, 8).unwrap();
    let e = answer(
        &newer,
        &q,
        &no_context(),
        &PageRequest {
            size: Some(2),
            cursor: Some(cursor),
        },
        &Limits::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        RequestError::StaleCursor {
            cursor: 7,
            serving: 8
        }
    );
    assert!(e.to_string().contains("revision 7"), "{e}");
}

#[test]
fn a_cursor_of_another_query_or_garbage_is_refused() {
    let q = who_can("orders:GetOrder", SHARED_ORDER, false);
    let cursor = page(&q, None).unwrap().next_cursor.unwrap();
    let other = who_can("orders:GetOrder", PROD_ORDER, false);
    let e = page(&other, Some(cursor.clone())).unwrap_err();
    assert!(e.to_string().contains("another query"), "{e}");
    // The same query with another context is another query.
    let mut ctx = Context::new();
    ctx.insert(
        "aws:SourceIp",
        crate::context::ContextValue::Single("10.0.0.1".into()),
    );
    let screened = CallerContext::screen(ctx, |_| {});
    let e = answer(
        example(),
        &q,
        &screened,
        &PageRequest {
            size: Some(2),
            cursor: Some(cursor.clone()),
        },
        &Limits::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("another query"), "{e}");
    for garbage in [
        "",
        "x",
        "!!!!",
        &"A".repeat(5_000),
        &cursor[1..],
        &format!("{cursor}AA"),
    ] {
        let e = page(&q, Some(garbage.to_owned())).unwrap_err();
        assert!(e.to_string().starts_with("cursor: "), "{garbage}: {e}");
    }
    // A well-formed cursor whose position lies past the answer (forged) is refused.
    let mut forged = Cursor::decode(&cursor).unwrap();
    forged.position = 1_000_000;
    let e = page(&q, Some(forged.encode())).unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
    // Every byte flipped in turn: refused or a page of this very query, never a panic.
    let bytes = cursor.as_bytes().to_vec();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        if let Ok(a) = page(&q, Some(String::from_utf8(b).unwrap())) {
            assert_eq!(a.revision, 7);
        }
    }
}

#[test]
fn what_can_on_a_resource_is_every_allowed_catalog_action() {
    let now = SystemTime::now();
    let principal = "arn:aws:iam::333333333333:user/engineering/alice";
    let resource = "arn:aws:orders:us-east-1:333333333333:order/9";
    let q = Query::WhatCan {
        principal: principal.into(),
        resource: Some(resource.into()),
    };
    let got: BTreeSet<String> = all(example(), &q, None, &Limits::default())
        .into_iter()
        .map(|i| match i {
            Item::Action(a) => {
                assert_eq!(a.exact, "decision");
                a.action
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let mut want = BTreeSet::new();
    for (s, a) in example().catalog().actions() {
        let name = format!("{}:{}", s.prefix, a.name);
        if example()
            .ask(principal, &name, resource, &no_context(), now)
            .unwrap()
            .outcome
            .decision
            == Decision::Allow
        {
            want.insert(name);
        }
    }
    assert!(want.contains("orders:DeleteOrder"));
    assert!(!want.contains("iam:CreateUser"));
    assert_eq!(got, want);
}

#[test]
fn what_can_anywhere_lists_patterns_with_witnesses_and_narrowing_denies() {
    let q = Query::WhatCan {
        principal: "arn:aws:iam::555555555555:user/admin".into(),
        resource: None,
    };
    let items = all(example(), &q, None, &Limits::default());
    let find = |name: &str| {
        items.iter().find_map(|i| match i {
            Item::Action(a) if a.action == name => Some(a.clone()),
            _ => None,
        })
    };
    let get = find("orders:GetOrder").expect("admin reads orders");
    assert_eq!(get.exact, "witness");
    assert!(get.patterns.iter().any(|p| p.decision == "Allow"));
    // DeleteOrder is denied by the production SCP on every witness: not in the answer.
    assert!(find("orders:DeleteOrder").is_none(), "{items:?}");
    // An action the SCP narrows but allows somewhere names the deny.
    let narrowed: Vec<&ActionItem> = items
        .iter()
        .filter_map(|i| match i {
            Item::Action(a) if !a.narrowed_by.is_empty() => Some(a),
            _ => None,
        })
        .collect();
    for a in narrowed {
        assert!(
            a.narrowed_by.iter().all(|d| d.starts_with("scp ")
                || d.starts_with("identity ")
                || d.starts_with("boundary ")),
            "{a:?}"
        );
    }
}

#[test]
fn can_any_finds_a_witness_and_refuses_an_unknown_type() {
    let q = Query::CanAny {
        principal: "arn:aws:iam::333333333333:user/engineering/carol".into(),
        resource_type: "orders:order".into(),
    };
    assert!(
        all(example(), &q, None, &Limits::default()).is_empty(),
        "carol has no policy"
    );
    let q = Query::CanAny {
        principal: "arn:aws:iam::333333333333:user/engineering/bob".into(),
        resource_type: "orders:order".into(),
    };
    let items = all(example(), &q, None, &Limits::default());
    let now = SystemTime::now();
    for i in &items {
        let Item::Witness(w) = i else { panic!("{i:?}") };
        let a = example()
            .ask(
                "arn:aws:iam::333333333333:user/engineering/bob",
                &w.action,
                &w.resource,
                &no_context(),
                now,
            )
            .unwrap();
        assert_eq!(a.outcome.decision, Decision::Allow, "{w:?}");
    }
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Item::Witness(w) if w.action == "orders:GetOrder"))
    );
    let bad = Query::CanAny {
        principal: "arn:aws:iam::333333333333:user/engineering/bob".into(),
        resource_type: "orders:nothing".into(),
    };
    let e = page(&bad, None).unwrap_err();
    assert!(e.to_string().contains("not a resource type"), "{e}");
}

#[test]
fn malformed_queries_are_refused_naming_the_field() {
    for (q, field) in [
        (who_can("orders:Nope", PROD_ORDER, false), "action"),
        (who_can("orders:GetOrder", "not-an-arn", false), "resource"),
        (
            Query::WhoCan {
                action: "orders:GetOrder".into(),
                resource: PROD_ORDER.into(),
                session_name: "a b".into(),
                assume_with_mfa: false,
            },
            "session_name",
        ),
        (
            Query::WhatCan {
                principal: "arn:aws:iam::999999999999:user/nobody".into(),
                resource: None,
            },
            "principal",
        ),
    ] {
        let e = page(&q, None).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
    }
    let e = answer(
        example(),
        &who_can("orders:GetOrder", PROD_ORDER, false),
        &no_context(),
        &PageRequest {
            size: Some(1_001),
            cursor: None,
        },
        &Limits::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("page_size: "), "{e}");
}

#[test]
fn pages_decided_on_every_core_are_the_unlimited_answer() {
    // Without who may become roles, `WhoCan` decides windows of subjects on every core:
    // a synthetic organization has enough subjects for several windows and threads, and
    // any page size or budget must still give the one-page answer, in order.
    let org = crate::bench::synth::generate(crate::bench::synth::Spec {
        statements: 1_000,
        requests: 20,
        seed: 5,
    })
    .unwrap();
    let snapshot = Snapshot::load_files(&org.files, 1).unwrap();
    let flat = Limits {
        chain_depth: 0,
        ..Limits::default()
    };
    let mut nonempty = 0;
    for r in org.requests.iter().take(8) {
        let q = Query::WhoCan {
            action: r.action.clone(),
            resource: r.resource.clone(),
            session_name: DEFAULT_SESSION.into(),
            assume_with_mfa: false,
        };
        let whole = all(&snapshot, &q, Some(1_000), &flat);
        nonempty += usize::from(!whole.is_empty());
        for (size, budget) in [(Some(1), 50_000), (Some(7), 50_000), (None, 5), (None, 300)] {
            let limits = Limits { budget, ..flat };
            assert_eq!(
                all(&snapshot, &q, size, &limits),
                whole,
                "{q:?} {size:?} {budget}"
            );
        }
    }
    assert!(nonempty > 0, "every query's answer was empty");
}

/// The example organization with one more user of 333333333333, `dave`, whose managed
/// policy `policy` is.
fn example_with_dave(policy: &str) -> Snapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    let mut files = crate::bundle::read_dir(&dir).unwrap();
    files.insert(
        "accounts/333333333333/policies/DavePolicy.json".into(),
        policy.into(),
    );
    files.insert(
        "accounts/333333333333/users/dave.json".into(),
        r#"{"path": "/engineering/", "managed_policies": ["DavePolicy"]}"#.into(),
    );
    Snapshot::load_files(&files, 1).unwrap()
}

const DAVE: &str = "arn:aws:iam::333333333333:user/engineering/dave";

fn allowed_anywhere(snapshot: &Snapshot, q: &Query) -> BTreeMap<String, String> {
    let a = answer_all(
        snapshot,
        q,
        &no_context(),
        None,
        &Limits::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert!(a.undecided.is_empty(), "{:?}", a.undecided);
    let mut out = BTreeMap::new();
    for i in a.items {
        let (action, resource) = match i {
            Item::Action(x) => {
                let w = x.patterns.iter().find(|p| p.decision == "Allow").unwrap();
                (x.action, w.witness.clone())
            }
            Item::Witness(w) => (w.action, w.resource),
            other => panic!("{other:?}"),
        };
        let principal = match q {
            Query::WhatCan { principal, .. } | Query::CanAny { principal, .. } => principal,
            Query::WhoCan { .. } => unreachable!(),
        };
        let d = snapshot
            .ask(
                principal,
                &action,
                &resource,
                &no_context(),
                SystemTime::now(),
            )
            .unwrap()
            .outcome
            .decision;
        assert_eq!(d, Decision::Allow, "{action} on {resource}");
        out.insert(action, resource);
    }
    out
}

#[test]
fn an_action_allowed_only_where_no_witness_lands_is_found() {
    // Orders anywhere but in us-east-1 (the region a witness was built in), and none whose
    // id starts with `w` (as `warden-witness` does): every witness of the allowing
    // pattern was denied, so `CanAny` and `WhatCan` answered that dave reads no order.
    let snapshot = example_with_dave(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:orders:*:333333333333:order/*"},
            {"Effect": "Deny", "Action": "orders:*",
             "Resource": ["arn:aws:orders:us-east-1:*:*", "arn:aws:orders:*:*:order/w*"]}
        ]}"#,
    );
    let can_any = Query::CanAny {
        principal: DAVE.into(),
        resource_type: "orders:order".into(),
    };
    let found = allowed_anywhere(&snapshot, &can_any);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["orders:GetOrder"],
        "{found:?}"
    );
    let what_can = Query::WhatCan {
        principal: DAVE.into(),
        resource: None,
    };
    let found = allowed_anywhere(&snapshot, &what_can);
    assert!(found.contains_key("orders:GetOrder"), "{found:?}");
    assert!(!found.contains_key("orders:DeleteOrder"), "{found:?}");

    // Denied in every region: proven allowed nowhere, and not undecided.
    let snapshot = example_with_dave(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:orders:*:333333333333:order/*"},
            {"Effect": "Deny", "Action": "orders:*", "Resource": "arn:aws:orders:*:*:order/*"}
        ]}"#,
    );
    assert!(allowed_anywhere(&snapshot, &can_any).is_empty());
}

#[test]
fn a_role_of_another_account_is_found_through_its_trust_policy() {
    // alice may assume 555555555555's Developer role (its trust policy names her account):
    // the witness in her own account was a role that does not exist, so `WhatCan` and
    // `CanAny` left `sts:AssumeRole` out.
    let alice = "arn:aws:iam::333333333333:user/engineering/alice";
    let found = allowed_anywhere(
        example(),
        &Query::CanAny {
            principal: alice.into(),
            resource_type: "sts:role".into(),
        },
    );
    assert_eq!(
        found.get("sts:AssumeRole").map(String::as_str),
        Some("arn:aws:iam::555555555555:role/Developer"),
        "{found:?}"
    );
    let found = allowed_anywhere(
        example(),
        &Query::WhatCan {
            principal: alice.into(),
            resource: None,
        },
    );
    assert!(found.contains_key("sts:AssumeRole"), "{found:?}");
}

#[test]
fn the_resource_account_a_condition_names_is_a_region() {
    // dave may read orders only of 555555555555, whose shared orders' resource policy
    // grants his account: the one allowed region is there, and the search must not stop
    // at his own account's orders, where the condition fails.
    let snapshot = example_with_dave(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceAccount": "555555555555"}}}
        ]}"#,
    );
    let found = allowed_anywhere(
        &snapshot,
        &Query::CanAny {
            principal: DAVE.into(),
            resource_type: "orders:order".into(),
        },
    );
    let resource = found
        .get("orders:GetOrder")
        .expect("the shared orders of 555555555555");
    assert!(
        resource.contains(":555555555555:order/shared/"),
        "{resource}"
    );
}

#[test]
fn a_resource_part_read_from_the_resource_itself_is_undecided_not_denied() {
    // Which orders dave may read depends on each order's own tag: no split of the ARNs
    // tells them apart, so the answer says undecided and why instead of "no".
    let snapshot = example_with_dave(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:orders:*:333333333333:order/${aws:ResourceTag/owner}"}
        ]}"#,
    );
    let a = answer_all(
        &snapshot,
        &Query::CanAny {
            principal: DAVE.into(),
            resource_type: "orders:order".into(),
        },
        &no_context(),
        None,
        &Limits::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert!(a.items.is_empty(), "{:?}", a.items);
    let u = a
        .undecided
        .iter()
        .find(|u| u.action == "orders:GetOrder")
        .unwrap_or_else(|| panic!("{:?}", a.undecided));
    assert!(u.why.contains("DavePolicy"), "{}", u.why);
    assert!(u.why.contains("reads the resource's own keys"), "{}", u.why);
}

/// `WhatCan` without a resource for dave under `policy`: each allowed action and the
/// resource its answer names (checked Allow by `ask`).
fn what_dave_can(policy: &str) -> BTreeMap<String, String> {
    allowed_anywhere(
        &example_with_dave(policy),
        &Query::WhatCan {
            principal: DAVE.into(),
            resource: None,
        },
    )
}

#[test]
fn an_action_without_resource_types_allowed_on_an_arn_is_found() {
    // ListOrders has no resource-level permissions, so a service asks it on `*`; a caller
    // may still name an ARN, and Authorize decides it: allowed there, so it is listed.
    let found = what_dave_can(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:ListOrders",
             "Resource": "arn:aws:orders:*:333333333333:order/*"}
        ]}"#,
    );
    let resource = found
        .get("orders:ListOrders")
        .expect("ListOrders on an order");
    assert!(resource.starts_with("arn:aws:orders:"), "{resource}");
}

#[test]
fn an_action_allowed_only_on_the_resource_star_is_found() {
    // Every ARN is denied; `*` itself is a resource a request may name.
    let found = what_dave_can(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"},
            {"Effect": "Deny", "Action": "orders:GetOrder", "Resource": "arn:*:*:*:*:*"}
        ]}"#,
    );
    assert_eq!(found.get("orders:GetOrder").map(String::as_str), Some("*"));
}

#[test]
fn an_action_allowed_only_on_an_arn_of_another_type_is_found() {
    // GetOrder on a database ARN is no order, but Authorize decides it: allowed on the
    // databases whose name does not start with `warden-` (as a witness's does).
    let found = what_dave_can(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:db:*:333333333333:database/*"},
            {"Effect": "Deny", "Action": "orders:GetOrder",
             "Resource": "arn:aws:db:*:*:database/warden-*"}
        ]}"#,
    );
    let resource = found
        .get("orders:GetOrder")
        .expect("GetOrder on a database");
    assert!(resource.starts_with("arn:aws:db:"), "{resource}");
    // CanAny asks about orders only: none.
    let snapshot = example_with_dave(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:db:*:333333333333:database/*"}
        ]}"#,
    );
    let found = allowed_anywhere(
        &snapshot,
        &Query::CanAny {
            principal: DAVE.into(),
            resource_type: "orders:order".into(),
        },
    );
    assert!(found.is_empty(), "{found:?}");
}

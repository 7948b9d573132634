//! Incremental loading (`snapshot::Loader`): after every edit of a random sequence (put,
//! modify, delete of policies, users, roles, groups, resource policies, SCPs and their
//! attachments, quotas and the catalog, and documents that do not load), the snapshot the
//! loader builds from the previous load's work decides every request exactly as
//! `Snapshot::load_files` of the same files does, with the same digest and statement
//! count, or fails with the very same findings. Then the dependencies, one by one: quotas,
//! the catalog, the organization and a name an attachment resolves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use warden::context::{CallerContext, Context};
use warden::eval::Decision;
use warden::snapshot::{Loader, Snapshot};

type Files = BTreeMap<String, String>;

const DEV: &str = "accounts/333333333333";

fn example() -> Files {
    warden::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")).unwrap()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A small deterministic generator (xorshift64*), so that a failing sequence is replayed
/// from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const ACTIONS: &[&str] = &[
    "orders:GetOrder",
    "orders:ListOrders",
    "orders:*",
    "files:GetFile",
    "db:*",
    "*",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:orders:us-east-1:333333333333:order/42",
    "arn:aws:orders:us-east-1:333333333333:order/*",
    "arn:aws:files:us-east-1:555555555555:file/report",
];

/// The requests asked after every edit: every principal either snapshot knows (users, and
/// a session of every role), for these actions on these resources.
const ASKED: &[&str] = &[
    "orders:GetOrder",
    "orders:ListOrders",
    "orders:CancelOrder",
    "files:GetFile",
    "db:Query",
    "sts:AssumeRole",
];
const ON: &[&str] = &[
    "arn:aws:orders:us-east-1:333333333333:order/42",
    "arn:aws:files:us-east-1:555555555555:file/report",
    "arn:aws:iam::555555555555:role/Auditor",
    "*",
];

fn policy_text(rng: &mut Rng) -> String {
    let statements: Vec<serde_json::Value> = (0..1 + rng.below(3))
        .map(|i| {
            serde_json::json!({
                "Sid": format!("S{i}"),
                "Effect": if rng.below(3) == 0 { "Deny" } else { "Allow" },
                "Action": *rng.pick(ACTIONS),
                "Resource": *rng.pick(RESOURCES),
            })
        })
        .collect();
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    // Sometimes the same document written another way: a new text, the same policy.
    if rng.below(4) == 0 {
        serde_json::to_string_pretty(&doc).unwrap()
    } else {
        doc.to_string()
    }
}

/// Names of generated managed policies (some never written: an attachment to one is an
/// `unknown-policy` finding until it is).
const POLICIES: &[&str] = &["Gen0", "Gen1", "Gen2", "Gen3", "ReportsReader"];

/// Built-in managed policies, attached by name.
const BUILTINS: &[&str] = &["ReadOnlyAccess", "PowerUserAccess", "AdministratorAccess"];

fn identity_text(rng: &mut Rng, role: bool) -> String {
    let managed: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(POLICIES)).collect();
    let mut doc = serde_json::json!({ "managed_policies": managed });
    if rng.below(2) == 0 {
        doc["inline_policies"] = serde_json::json!({
            "Inline": serde_json::from_str::<serde_json::Value>(&policy_text(rng)).unwrap()
        });
    }
    if rng.below(4) == 0 {
        doc["permissions_boundary"] = serde_json::json!(*rng.pick(POLICIES));
    }
    if role {
        doc["trust_policy"] = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"AWS": "arn:aws:iam::333333333333:root"}}]
        });
    } else if rng.below(2) == 0 {
        doc["groups"] = serde_json::json!(["Developers"]);
    }
    doc.to_string()
}

/// One random edit of `files`.
fn edit(rng: &mut Rng, files: &mut Files) -> String {
    let n = rng.below(5);
    match rng.below(16) {
        0 | 1 => {
            let path = format!("{DEV}/policies/Gen{n}.json");
            files.insert(path.clone(), policy_text(rng));
            format!("put {path}")
        }
        2 => {
            let path = format!("{DEV}/policies/Gen{n}.json");
            files.remove(&path);
            format!("delete {path}")
        }
        3 => {
            let path = format!("{DEV}/users/gen{n}.json");
            files.insert(path.clone(), identity_text(rng, false));
            format!("put {path}")
        }
        4 => {
            let path = format!("{DEV}/users/gen{n}.json");
            files.remove(&path);
            format!("delete {path}")
        }
        5 => {
            let path = format!("{DEV}/roles/gen{n}.json");
            files.insert(path.clone(), identity_text(rng, true));
            format!("put {path}")
        }
        6 => {
            let path = format!("{DEV}/groups/Developers.json");
            let managed: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(POLICIES)).collect();
            files.insert(
                path.clone(),
                serde_json::json!({ "managed_policies": managed }).to_string(),
            );
            format!("put {path}")
        }
        7 => {
            let path = format!("scps/Gen{n}.json");
            files.insert(path.clone(), policy_text(rng));
            format!("put {path}")
        }
        8 => {
            // Attach (or detach) SCPs on the root of the organization.
            let mut org: serde_json::Value =
                serde_json::from_str(&files["organization.json"]).unwrap();
            let mut scps = vec![serde_json::json!("FullAWSAccess")];
            for _ in 0..rng.below(3) {
                scps.push(serde_json::json!(format!("Gen{}", rng.below(5))));
            }
            scps.dedup();
            org["root"]["scps"] = serde_json::Value::Array(scps);
            files.insert("organization.json".to_owned(), org.to_string());
            "attach SCPs to the root".to_owned()
        }
        9 => {
            let quotas = match rng.below(3) {
                0 => None,
                1 => Some(r#"{"managed_policies_per_user": 1}"#),
                _ => Some(r#"{"managed_policy_chars": 120}"#),
            };
            match quotas {
                Some(q) => files.insert("quotas.json".to_owned(), q.to_owned()),
                None => files.remove("quotas.json"),
            };
            format!("quotas {quotas:?}")
        }
        10 => {
            // The catalog gains or loses an action that generated policies may name.
            let mut orders: serde_json::Value =
                serde_json::from_str(&files["catalog/orders.json"]).unwrap();
            let actions = orders["actions"].as_object_mut().unwrap();
            let added = if actions.contains_key("CancelOrder") {
                actions.remove("CancelOrder");
                false
            } else {
                actions.insert(
                    "CancelOrder".to_owned(),
                    serde_json::json!({"access": "Write", "resources": ["order"]}),
                );
                true
            };
            files.insert("catalog/orders.json".to_owned(), orders.to_string());
            format!("catalog: CancelOrder added {added}")
        }
        11 => {
            let path = format!("{DEV}/resources/gen{n}.json");
            let doc = serde_json::json!({
                "arn": "arn:aws:orders:us-east-1:333333333333:order/*",
                "policy": {"Version": "2012-10-17", "Statement": [{
                    "Effect": if rng.below(2) == 0 { "Deny" } else { "Allow" },
                    "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
                    "Action": *rng.pick(ACTIONS), "Resource": "*"}]}
            });
            files.insert(path.clone(), doc.to_string());
            format!("put {path}")
        }
        12 => {
            // A document that does not load: invalid JSON, or a policy the grammar
            // refuses.
            let path = format!("{DEV}/policies/Gen{n}.json");
            let text = if rng.below(2) == 0 {
                "{\"Version\": ".to_owned()
            } else {
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#
                    .to_owned()
            };
            files.insert(path.clone(), text);
            format!("broken {path}")
        }
        14 | 15 => {
            // Users of two other accounts attach built-in policies, which every account
            // shares: the same policies in another order share a set across accounts.
            let acct = if rng.below(2) == 0 {
                "222222222222"
            } else {
                "111111111111"
            };
            let path = format!("accounts/{acct}/users/gen{}.json", n % 2);
            if rng.below(4) == 0 {
                files.remove(&path);
                return format!("delete {path}");
            }
            let managed: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(BUILTINS)).collect();
            let mut managed = managed;
            managed.dedup();
            files.insert(
                path.clone(),
                serde_json::json!({ "managed_policies": managed }).to_string(),
            );
            format!("put {path}")
        }
        _ => {
            // Cross-account: a user of another account attaches a generated policy by ARN.
            let path = "accounts/555555555555/users/dana.json".to_owned();
            let doc = serde_json::json!({"managed_policies": [
                format!("arn:aws:iam::333333333333:policy/Gen{n}")
            ]});
            files.insert(path.clone(), doc.to_string());
            format!("put {path}")
        }
    }
}

/// Every decision `s` makes on the asked requests, principals from `users` and `roles`.
fn decisions(s: &Snapshot, principals: &[String]) -> Vec<String> {
    let context = CallerContext::screen(Context::new(), |_| {});
    let mut out = Vec::new();
    for p in principals {
        for a in ASKED {
            for r in ON {
                let answer = s.ask(p, a, r, &context, now());
                out.push(format!("{p} {a} {r}: {answer:?}"));
            }
        }
    }
    out
}

fn principals(s: &Snapshot) -> Vec<String> {
    let mut all: Vec<String> = s.user_arns().map(str::to_owned).collect();
    all.extend(
        s.role_names()
            .map(|(acct, name, _)| format!("arn:aws:sts::{acct}:assumed-role/{name}/test")),
    );
    all.sort();
    all
}

/// The incremental snapshot agrees with a whole load of the same files.
fn agree(loader: &mut Loader, files: &Files, revision: u64, step: &str) {
    agree_with(loader, files, files, revision, step);
}

/// The incremental snapshot of `given` (the same files as `files`, maybe shared) agrees
/// with a whole load of `files`.
fn agree_with<T: warden::bundle::Text>(
    loader: &mut Loader,
    files: &Files,
    given: &BTreeMap<String, T>,
    revision: u64,
    step: &str,
) {
    let whole = Snapshot::load_files(files, revision);
    let incremental = loader.load(given, revision);
    match (whole, incremental) {
        (Ok(whole), Ok(incremental)) => {
            assert_eq!(whole.digest(), incremental.digest(), "{step}");
            assert_eq!(
                whole.statement_count(),
                incremental.statement_count(),
                "{step}"
            );
            let who = principals(&whole);
            assert_eq!(who, principals(&incremental), "{step}");
            let (whole, incremental) = (decisions(&whole, &who), decisions(&incremental, &who));
            if let Some((w, i)) = whole.iter().zip(&incremental).find(|(w, i)| w != i) {
                panic!("{step}: a whole load decides\n  {w}\nthe incremental one\n  {i}");
            }
        }
        (Err(whole), Err(incremental)) => assert_eq!(whole, incremental, "{step}"),
        (whole, incremental) => panic!(
            "{step}: a whole load gave {:?}, the incremental one {:?}",
            whole.map(|s| s.digest().to_string()),
            incremental.map(|s| s.digest().to_string())
        ),
    }
}

#[test]
fn random_edits_load_incrementally_exactly_as_a_whole_load() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut files = example();
        let mut loader = Loader::default();
        agree(&mut loader, &files, 1, "the example");
        let mut done = Vec::new();
        for step in 0..40u64 {
            // One to three edits per load, as a batch of watch events would be.
            for _ in 0..1 + rng.below(3) {
                done.push(edit(&mut rng, &mut files));
            }
            agree(
                &mut loader,
                &files,
                step + 2,
                &format!("seed {seed}, after {done:?}"),
            );
        }
    }
}

type Shared = BTreeMap<String, Arc<str>>;

/// `shared` made to hold `files`' texts as an etcd source would: an unchanged text stays
/// the same allocation; a changed one is a new allocation, or (one time in three) an
/// earlier allocation of the same text, also one from before the path was deleted; one
/// load in eight every text is a new allocation (a resync reads everything again).
fn follow(rng: &mut Rng, files: &Files, shared: &mut Shared, earlier: &mut Vec<Arc<str>>) {
    if rng.below(8) == 0 {
        earlier.extend(shared.values().cloned());
        *shared = warden::bundle::share(files.clone());
        return;
    }
    shared.retain(|path, text| {
        let keep = files.contains_key(path);
        if !keep {
            earlier.push(text.clone());
        }
        keep
    });
    for (path, text) in files {
        if shared.get(path).is_some_and(|t| **t == **text) {
            continue;
        }
        let again = earlier.iter().find(|t| ***t == **text).cloned();
        let new = match again {
            Some(t) if rng.below(3) == 0 => t,
            _ => Arc::from(text.as_str()),
        };
        if let Some(old) = shared.insert(path.clone(), new) {
            earlier.push(old);
        }
    }
}

#[test]
fn random_edits_of_shared_texts_load_exactly_as_a_whole_load() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let mut files = example();
        let mut shared = warden::bundle::share(files.clone());
        let mut earlier = Vec::new();
        let mut loader = Loader::default();
        agree_with(&mut loader, &files, &shared, 1, "the example");
        let mut done = Vec::new();
        for step in 0..40u64 {
            for _ in 0..1 + rng.below(3) {
                done.push(edit(&mut rng, &mut files));
            }
            follow(&mut rng, &files, &mut shared, &mut earlier);
            let step_name = format!("seed {seed}, after {done:?}");
            agree_with(&mut loader, &files, &shared, step + 2, &step_name);
            // A path, deleted and added again with its very text in a new allocation.
            if step % 10 == 9 {
                let path = shared.keys().nth(rng.below(shared.len())).cloned().unwrap();
                let text = shared.remove(&path).unwrap();
                let mut without = files.clone();
                without.remove(&path);
                agree_with(&mut loader, &without, &shared, step + 2, &step_name);
                shared.insert(path, Arc::from(&*text));
                agree_with(&mut loader, &files, &shared, step + 2, &step_name);
            }
        }
    }
}

#[test]
fn an_unchanged_shared_text_is_reused_and_a_changed_one_loaded() {
    let files = example();
    let mut shared = warden::bundle::share(files.clone());
    let mut loader = Loader::default();
    loader.load(&shared, 1).unwrap();
    // The same allocations: every document reused.
    let (s, reused) = loader.load_counted(&shared, 2);
    assert_eq!(reused.documents.loaded, 0);
    let digest = s.unwrap().digest().clone();
    // A text rewritten in place is a new allocation: loaded again, whatever the old one.
    let path = format!("{DEV}/policies/ReportsReader.json");
    let denied = shared[&path].replace("\"Allow\"", "\"Deny\"");
    assert_ne!(*denied, *shared[&path]);
    shared.insert(path.clone(), Arc::from(denied.as_str()));
    let (s, reused) = loader.load_counted(&shared, 3);
    assert_eq!(reused.documents.loaded, 1);
    let s = s.unwrap();
    assert_ne!(s.digest(), &digest);
    let mut owned = files.clone();
    owned.insert(path, denied);
    assert_eq!(
        s.digest(),
        Snapshot::load_files(&owned, 3).unwrap().digest()
    );
}

/// Loads `files` with `loader` and decides one request.
fn decide(loader: &mut Loader, files: &Files, principal: &str, action: &str) -> Decision {
    let s = loader.load(files, 1).unwrap();
    let context = CallerContext::screen(Context::new(), |_| {});
    s.ask(
        principal,
        action,
        "arn:aws:orders:us-east-1:333333333333:order/42",
        &context,
        now(),
    )
    .unwrap()
    .outcome
    .decision
}

const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";

#[test]
fn one_changed_document_is_the_only_one_loaded_again() {
    let mut files = example();
    let mut loader = Loader::default();
    let (first, counted) = loader.load_counted(&files, 1);
    first.unwrap();
    assert_eq!(counted.documents.documents, 0);
    files.insert(
        format!("{DEV}/policies/ReportsReader.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"orders:ListOrders","Resource":"*"}]}"#
            .to_owned(),
    );
    let (second, counted) = loader.load_counted(&files, 2);
    second.unwrap();
    assert_eq!(counted.documents.loaded, 1, "{counted:?}");
    assert!(counted.documents.documents > 10, "{counted:?}");
    // Only the sets that hold the changed policy are compiled again, and only the
    // identities that hold those sets are built again.
    assert!(
        counted.sets > 0 && counted.compiled < counted.sets,
        "{counted:?}"
    );
    assert!(counted.identities > 5, "{counted:?}");
    // Nothing changed: nothing loaded, nothing compiled.
    let (third, counted) = loader.load_counted(&files, 3);
    third.unwrap();
    assert_eq!(
        (counted.documents.loaded, counted.compiled),
        (0, 0),
        "{counted:?}"
    );
}

#[test]
fn a_policy_turned_to_deny_denies_at_once() {
    // The same length of text, one word changed: a stale result would still allow.
    let mut files = example();
    let path = format!("{DEV}/policies/Gen0.json");
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}]}"#;
    files.insert(path.clone(), allow.to_owned());
    files.insert(
        format!("{DEV}/users/gen.json"),
        r#"{"managed_policies":["Gen0"]}"#.to_owned(),
    );
    let gen_user = "arn:aws:iam::333333333333:user/gen";
    let mut loader = Loader::default();
    assert_eq!(
        decide(&mut loader, &files, gen_user, "orders:GetOrder"),
        Decision::Allow
    );
    let deny = allow.replace("\"Allow\"", "\"Deny\" ");
    assert_eq!(deny.len(), allow.len());
    files.insert(path, deny);
    assert_eq!(
        decide(&mut loader, &files, gen_user, "orders:GetOrder"),
        Decision::ExplicitDeny
    );
}

#[test]
fn quotas_load_every_document_again() {
    let mut files = example();
    files.insert(
        format!("{DEV}/users/gen.json"),
        r#"{"managed_policies":["ReportsReader","AppBoundary"]}"#.to_owned(),
    );
    let mut loader = Loader::default();
    loader.load(&files, 1).unwrap();
    // The user's document is unchanged, but it now has one attachment too many.
    files.insert(
        "quotas.json".to_owned(),
        r#"{"managed_policies_per_user": 1}"#.to_owned(),
    );
    let e = loader.load(&files, 2).unwrap_err();
    assert_eq!(Err(e), Snapshot::load_files(&files, 2).map(|_| ()));
    let e = loader.load(&files, 2).unwrap_err().to_string();
    assert!(
        e.contains("too-many-attachments") && e.contains("users/gen.json"),
        "{e}"
    );
    // And back.
    files.remove("quotas.json");
    loader.load(&files, 3).unwrap();
}

#[test]
fn the_catalog_loads_every_document_again() {
    let mut files = example();
    files.insert(
        format!("{DEV}/policies/Gen0.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"orders:CancelOrder","Resource":"*"}]}"#
            .to_owned(),
    );
    let mut loader = Loader::default();
    let e = loader.load(&files, 1).unwrap_err().to_string();
    assert!(e.contains("unknown-action"), "{e}");
    // The policy is unchanged; the catalog now knows its action.
    let mut orders: serde_json::Value =
        serde_json::from_str(&files["catalog/orders.json"]).unwrap();
    orders["actions"]["CancelOrder"] = serde_json::json!({"access": "Write"});
    files.insert("catalog/orders.json".to_owned(), orders.to_string());
    loader.load(&files, 2).unwrap();
    // And forgets it again.
    files.insert(
        "catalog/orders.json".to_owned(),
        example()["catalog/orders.json"].clone(),
    );
    let e = loader.load(&files, 3).unwrap_err().to_string();
    assert!(e.contains("unknown-action"), "{e}");
}

#[test]
fn an_scp_attached_in_the_organization_denies_unchanged_identities() {
    let mut files = example();
    let mut loader = Loader::default();
    assert_eq!(
        decide(&mut loader, &files, ALICE, "orders:GetOrder"),
        Decision::Allow
    );
    files.insert(
        "scps/NoOrders.json".to_owned(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"orders:*","Resource":"*"}]}"#
            .to_owned(),
    );
    // Written, not attached: nothing changes.
    assert_eq!(
        decide(&mut loader, &files, ALICE, "orders:GetOrder"),
        Decision::Allow
    );
    let mut org: serde_json::Value = serde_json::from_str(&files["organization.json"]).unwrap();
    org["root"]["scps"] = serde_json::json!(["FullAWSAccess", "NoOrders"]);
    files.insert("organization.json".to_owned(), org.to_string());
    assert_eq!(
        decide(&mut loader, &files, ALICE, "orders:GetOrder"),
        Decision::ExplicitDeny
    );
}

#[test]
fn an_attachment_is_resolved_again_when_the_policy_it_names_comes_or_goes() {
    let mut files = example();
    let user = format!("{DEV}/users/gen.json");
    files.insert(user, r#"{"managed_policies":["Gen0"]}"#.to_owned());
    let mut loader = Loader::default();
    let e = loader.load(&files, 1).unwrap_err().to_string();
    assert!(e.contains("unknown-policy"), "{e}");
    // The user's document is unchanged; the name it attaches now resolves.
    let policy = format!("{DEV}/policies/Gen0.json");
    files.insert(
        policy.clone(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}]}"#
            .to_owned(),
    );
    assert_eq!(
        decide(
            &mut loader,
            &files,
            "arn:aws:iam::333333333333:user/gen",
            "orders:GetOrder"
        ),
        Decision::Allow
    );
    files.remove(&policy);
    let e = loader.load(&files, 2).unwrap_err().to_string();
    assert!(e.contains("unknown-policy"), "{e}");
}

#[test]
fn a_set_keeps_its_principals_order_with_or_without_another_order() {
    // Two users with the same policies in two orders, each with a set in its own order:
    // the statements an Allow names follow it, with the other user or without.
    let mut files = example();
    let allow = |sid: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{sid}","Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}}]}}"#
        )
    };
    files.insert(format!("{DEV}/policies/P.json"), allow("P"));
    files.insert(format!("{DEV}/policies/Q.json"), allow("Q"));
    files.insert(
        format!("{DEV}/users/a.json"),
        r#"{"managed_policies":["P","Q"]}"#.to_owned(),
    );
    files.insert(
        format!("{DEV}/users/b.json"),
        r#"{"managed_policies":["Q","P"]}"#.to_owned(),
    );
    let mut loader = Loader::default();
    agree(&mut loader, &files, 1, "both users");
    files.remove(&format!("{DEV}/users/a.json"));
    agree(&mut loader, &files, 2, "the second user alone");
}

#[test]
fn an_unchanged_account_is_taken_whole_and_a_changed_one_compiled_again() {
    let mut files = example();
    let mut loader = Loader::default();
    let (first, counted) = loader.load_counted(&files, 1);
    first.unwrap();
    assert_eq!(counted.accounts, 0, "{counted:?}");
    // A user of one account written: the four others are taken whole.
    files.insert(
        format!("{DEV}/users/gen.json"),
        r#"{"managed_policies":["ReportsReader"]}"#.to_owned(),
    );
    let (second, counted) = loader.load_counted(&files, 2);
    second.unwrap();
    assert_eq!(counted.accounts, 4, "{counted:?}");
    // A policy another account's user attaches by ARN: that account is compiled again.
    files.insert(
        "accounts/555555555555/users/gen.json".to_owned(),
        r#"{"managed_policies":["arn:aws:iam::333333333333:policy/ReportsReader"]}"#.to_owned(),
    );
    agree(
        &mut loader,
        &files,
        3,
        "a user attaching another account's policy",
    );
    files.insert(
        format!("{DEV}/policies/ReportsReader.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"orders:GetOrder","Resource":"*"}]}"#
            .to_owned(),
    );
    let (fourth, counted) = loader.load_counted(&files, 4);
    let fourth = fourth.unwrap();
    assert_eq!(counted.accounts, 3, "{counted:?}");
    let context = CallerContext::screen(Context::new(), |_| {});
    let answer = fourth
        .ask(
            "arn:aws:iam::555555555555:user/gen",
            "orders:GetOrder",
            "arn:aws:orders:us-east-1:333333333333:order/42",
            &context,
            now(),
        )
        .unwrap();
    assert_eq!(answer.outcome.decision, Decision::ExplicitDeny);
    agree(&mut loader, &files, 5, "the attached policy turned to deny");
}

#[test]
fn an_account_that_shared_policies_in_another_order_is_taken_whole_when_the_other_goes() {
    // Users of two accounts attach the same built-in policies in two orders: each has a
    // set of its own, in its own order. Without the first user, the second account is
    // unchanged, and taken whole: its user decides as a whole load has it.
    let mut files = example();
    files.insert(
        "accounts/111111111111/users/a.json".to_owned(),
        r#"{"managed_policies":["ReadOnlyAccess","AdministratorAccess"]}"#.to_owned(),
    );
    files.insert(
        "accounts/222222222222/users/b.json".to_owned(),
        r#"{"managed_policies":["AdministratorAccess","ReadOnlyAccess"]}"#.to_owned(),
    );
    let mut loader = Loader::default();
    agree(&mut loader, &files, 1, "both users");
    files.remove("accounts/111111111111/users/a.json");
    let whole = Snapshot::load_files(&files, 2).unwrap();
    let (incremental, counted) = loader.load_counted(&files, 2);
    let incremental = incremental.unwrap();
    let who = vec!["arn:aws:iam::222222222222:user/b".to_owned()];
    assert_eq!(decisions(&whole, &who), decisions(&incremental, &who));
    assert_eq!(counted.accounts, 4, "{counted:?}");
    assert_eq!(counted.compiled, 0, "{counted:?}");
    agree(&mut loader, &files, 3, "the second user alone");
}

#[test]
fn an_accounts_checks_across_documents_are_found_again_when_they_could_change() {
    let mut files = example();
    let mut loader = Loader::default();
    let user = format!("{DEV}/users/gen.json");
    files.insert(user, r#"{"groups":["Ops"]}"#.to_owned());
    agree(
        &mut loader,
        &files,
        1,
        "a user in a group that is not there",
    );
    let e = loader.load(&files, 1).unwrap_err().to_string();
    assert!(e.contains("unknown-group"), "{e}");
    let group = format!("{DEV}/groups/Ops.json");
    files.insert(group.clone(), "{}".to_owned());
    agree(&mut loader, &files, 2, "the group written");
    loader.load(&files, 2).unwrap();
    files.remove(&group);
    agree(&mut loader, &files, 3, "the group deleted");
    files.insert(group, "{}".to_owned());
    files.insert(format!("{DEV}/users/Gen.json"), "{}".to_owned());
    agree(&mut loader, &files, 4, "two users differing in case");
    let e = loader.load(&files, 4).unwrap_err().to_string();
    assert!(e.contains("duplicate-name"), "{e}");
    // An unrelated write: the same findings, from the previous load's checks.
    files.insert(
        "accounts/555555555555/users/gen.json".to_owned(),
        "{}".to_owned(),
    );
    agree(&mut loader, &files, 5, "an unrelated user written");
    files.remove(&format!("{DEV}/users/Gen.json"));
    agree(&mut loader, &files, 6, "one of the two deleted");
    loader.load(&files, 6).unwrap();
}

/// A write of documents that load again without a finding starts from the last bundle:
/// only they are loaded, and the snapshot decides as a whole load; a path added, a file
/// other than such a document, or a finding is a whole load again.
#[test]
fn a_write_of_documents_alone_starts_from_the_last_bundle() {
    let files = example();
    let mut shared = warden::bundle::share(files.clone());
    let mut owned = files.clone();
    let mut loader = Loader::default();
    let (_, reused) = loader.load_counted(&shared, 1);
    assert!(!reused.documents.patched, "the first load is whole");
    let put = |shared: &mut Shared, owned: &mut Files, path: &str, text: &str| {
        shared.insert(path.to_owned(), Arc::from(text));
        owned.insert(path.to_owned(), text.to_owned());
    };
    // A managed policy and a user rewritten: two documents loaded, the rest kept.
    let policy = format!("{DEV}/policies/ReportsReader.json");
    let denied = files[&policy].replace("\"Allow\"", "\"Deny\"");
    put(&mut shared, &mut owned, &policy, &denied);
    let user = shared
        .keys()
        .find(|p| p.starts_with(&format!("{DEV}/users/")))
        .cloned()
        .unwrap();
    let tagged = files[&user].replace("\"orders\"", "\"patched\"");
    assert_ne!(tagged, files[&user]);
    put(&mut shared, &mut owned, &user, &tagged);
    let (s, reused) = loader.load_counted(&shared, 2);
    assert!(reused.documents.patched, "{reused:?}");
    assert_eq!(reused.documents.loaded, 2);
    drop(s.unwrap());
    agree_with(
        &mut Loader::default(),
        &owned,
        &shared,
        2,
        "after the write",
    );
    // Agreement of the patched loader itself, at the next revision (nothing changed).
    agree_with(
        &mut loader,
        &owned,
        &shared,
        3,
        "patched, then the same files",
    );
    // A user in a group that does not exist (found by the account's checks), then a
    // role moved to another path (its ARN, which listeners name, changed): whole loads.
    let lost = tagged.replace("\"Developers\"", "\"Nobody\"");
    put(&mut shared, &mut owned, &user, &lost);
    let (s, reused) = loader.load_counted(&shared, 3);
    assert!(!reused.documents.patched);
    assert!(s.unwrap_err().to_string().contains("unknown-group"));
    put(&mut shared, &mut owned, &user, &tagged);
    agree_with(&mut loader, &owned, &shared, 3, "the group back");
    let role = shared
        .keys()
        .find(|p| p.starts_with(&format!("{DEV}/roles/")))
        .cloned()
        .unwrap();
    let text = files[&role].to_string();
    let moved = match text.find("\"path\"") {
        Some(_) => text.replacen("\"path\": \"/", "\"path\": \"/moved/", 1),
        None => text.replacen('{', r#"{"path": "/moved/","#, 1),
    };
    assert_ne!(moved, text);
    put(&mut shared, &mut owned, &role, &moved);
    let (_, reused) = loader.load_counted(&shared, 3);
    assert!(!reused.documents.patched, "{role}: {moved}");
    agree_with(&mut loader, &owned, &shared, 3, "a role moved");
    put(&mut shared, &mut owned, &role, &text);
    agree_with(&mut loader, &owned, &shared, 3, "the role back");
    // A document with an error: a whole load, which reports it.
    put(&mut shared, &mut owned, &policy, "{");
    let (s, reused) = loader.load_counted(&shared, 4);
    assert!(!reused.documents.patched);
    assert!(s.is_err());
    // Fixed again: the last load failed, so this one is whole too.
    put(&mut shared, &mut owned, &policy, &denied);
    let (_, reused) = loader.load_counted(&shared, 5);
    assert!(!reused.documents.patched);
    // A path added: whole.
    put(
        &mut shared,
        &mut owned,
        &format!("{DEV}/policies/Added.json"),
        &denied,
    );
    let (s, reused) = loader.load_counted(&shared, 6);
    assert!(!reused.documents.patched);
    s.unwrap();
    let added = warden::bundle::load_files(&owned).unwrap();
    assert!(added.warnings.is_empty(), "{:?}", added.warnings);
    // The organization rewritten (same text, new allocation): still patched, nothing loaded.
    let org = shared["organization.json"].to_string();
    put(&mut shared, &mut owned, "organization.json", &org);
    let (_, reused) = loader.load_counted(&shared, 7);
    assert!(reused.documents.patched);
    assert_eq!(reused.documents.loaded, 0);
    agree_with(
        &mut loader,
        &owned,
        &shared,
        8,
        "the organization's text again",
    );
}

/// A policy with a warning: `orders:Colour` is not a condition key the catalog knows.
const WARNED: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*", "Condition": {"StringEquals": {"orders:Colour": "red"}}}]}"#;

/// Random rewrites of documents that exist (managed policies, users, a group, roles), now
/// and then one that does not load: every load, started from the last bundle or whole,
/// decides as a whole load of the same files, and most start from the last bundle.
#[test]
fn random_rewrites_started_from_the_last_bundle_load_as_a_whole_load() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut files = example();
        for n in 0..4 {
            let known = |text: String| text.replace("files:GetFile", "orders:GetOrder");
            let policy = known(policy_text(&mut rng));
            files.insert(format!("{DEV}/policies/Gen{n}.json"), policy);
            let role = known(identity_text(&mut rng, true));
            files.insert(format!("{DEV}/roles/gen{n}.json"), role);
        }
        // Warnings that stay: a policy with a condition key the catalog does not know.
        files.insert(format!("{DEV}/policies/Warned.json"), WARNED.to_owned());
        let users: Vec<String> = files
            .keys()
            .filter(|p| p.starts_with(&format!("{DEV}/users/")))
            .cloned()
            .collect();
        let mut shared = warden::bundle::share(files.clone());
        let mut loader = Loader::default();
        agree_with(&mut loader, &files, &shared, 1, "the start");
        // The bundle alone, handed back as `snapshot::Loader` does: its warnings are a
        // whole load's, in order.
        let mut bundles = warden::bundle::Incremental::default();
        if let Ok(first) = bundles.load(&shared) {
            assert!(!first.warnings.is_empty());
            bundles.keep(first);
        }
        let (mut patched, mut broken) = (0, None);
        for step in 0..40u64 {
            let mut done = Vec::new();
            if let Some((path, text)) = broken.take() {
                files.insert(path, text);
            }
            for _ in 0..1 + rng.below(3) {
                let n = rng.below(4);
                let (path, text) = match rng.below(5) {
                    0 | 1 => (format!("{DEV}/policies/Gen{n}.json"), policy_text(&mut rng)),
                    2 => (rng.pick(&users).clone(), identity_text(&mut rng, false)),
                    3 => (
                        format!("{DEV}/roles/gen{n}.json"),
                        identity_text(&mut rng, true),
                    ),
                    _ => {
                        let managed: Vec<&str> =
                            (0..rng.below(3)).map(|_| *rng.pick(POLICIES)).collect();
                        let text = serde_json::json!({ "managed_policies": managed });
                        (format!("{DEV}/groups/Developers.json"), text.to_string())
                    }
                };
                done.push(path.clone());
                // Actions the catalog knows: a document that loads, mostly.
                files.insert(path, text.replace("files:GetFile", "orders:GetOrder"));
            }
            // Now and then a policy rewritten with a warning of its own.
            if rng.below(6) == 0 {
                let path = format!("{DEV}/policies/Gen{}.json", rng.below(4));
                files.insert(path.clone(), WARNED.replace("red", &format!("red{step}")));
                done.push(format!("{path} warned"));
            }
            if rng.below(10) == 0 {
                let path = rng.pick(&users).clone();
                broken = Some((path.clone(), files[&path].clone()));
                files.insert(path.clone(), "{".to_owned());
                done.push(format!("{path} broken"));
            }
            for (path, text) in &files {
                if *shared[path] != **text {
                    shared.insert(path.clone(), Arc::from(text.as_str()));
                }
            }
            let whole = Snapshot::load_files(&files, step + 2).is_ok();
            let step_name = format!("seed {seed}, step {step}: {done:?}");
            match (warden::bundle::load_files(&files), bundles.load(&shared)) {
                (Ok(whole), Ok(bundle)) => {
                    assert_eq!(whole.warnings, bundle.warnings, "{step_name}");
                    bundles.keep(bundle);
                }
                (Err(whole), Err(bundle)) => assert_eq!(whole, bundle, "{step_name}"),
                (whole, bundle) => panic!(
                    "{step_name}: {:?} against {:?}",
                    whole.is_ok(),
                    bundle.is_ok()
                ),
            }
            let (_, reused) = loader.load_counted(&shared, step + 2);
            patched += usize::from(reused.documents.patched && whole);
            agree_with(&mut loader, &files, &shared, step + 3, &step_name);
        }
        // Most loads succeed (a policy with `db:*` fails, and a broken user); of them,
        // those after a success start from the last bundle.
        assert!(patched >= 5, "seed {seed}: {patched} loads of 40 patched");
    }
}

/// A policy reached twice (attached, and through a group) counts once: the user's set is
/// another user's with the same policy attached once, its statements counted once.
#[test]
fn a_policy_reached_twice_shares_the_set_of_the_same_policies() {
    let mut files = example();
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Sid":"P","Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}]}"#;
    files.insert(format!("{DEV}/policies/P.json"), allow.to_owned());
    files.insert(
        format!("{DEV}/groups/G.json"),
        r#"{"managed_policies":["P"]}"#.to_owned(),
    );
    files.insert(
        format!("{DEV}/users/y.json"),
        r#"{"managed_policies":["P"]}"#.to_owned(),
    );
    let one = Snapshot::load_files(&files, 1).unwrap().statement_count();
    // x: P directly and through G, which is [P] once.
    files.insert(
        format!("{DEV}/users/x.json"),
        r#"{"managed_policies":["P"],"groups":["G"]}"#.to_owned(),
    );
    let two = Snapshot::load_files(&files, 1).unwrap().statement_count();
    assert_eq!(one, two, "x's policies, each once, are y's: [P]");
}

/// No set stays in the registry once nothing holds it: after every load of a random
/// sequence, the loader holds as many sets as a fresh loader of the same files (sets +
/// compiled = registry).
#[test]
fn the_registry_holds_what_a_fresh_load_holds() {
    for seed in 1..=10u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut files = example();
        let mut shared = warden::bundle::share(files.clone());
        let mut earlier = Vec::new();
        let mut loader = Loader::default();
        loader.load(&shared, 1).unwrap();
        let mut done = Vec::new();
        for step in 0..40u64 {
            for _ in 0..1 + rng.below(3) {
                done.push(edit(&mut rng, &mut files));
            }
            follow(&mut rng, &files, &mut shared, &mut earlier);
            let (s, r) = if step % 3 == 0 {
                loader.load_counted(&files, step + 2)
            } else {
                loader.load_counted(&shared, step + 2)
            };
            let (f, fr) = Loader::default().load_counted(&files, step + 2);
            if let (Ok(s), Ok(f)) = (s, f) {
                assert_eq!(s.statement_count(), f.statement_count());
                assert_eq!(
                    r.sets + r.compiled,
                    fr.compiled,
                    "seed {seed} step {step}: registry {} vs fresh {} after {done:?}",
                    r.sets + r.compiled,
                    fr.compiled
                );
            }
        }
    }
}

/// After a resync (every text a new allocation, the same bytes), the loader lets go of
/// the old allocations: it holds the current bundle's texts only.
#[test]
fn the_loader_lets_go_of_texts_a_resync_replaced() {
    let files = example();
    let first = warden::bundle::share(files.clone());
    let mut loader = Loader::default();
    loader.load(&first, 1).unwrap();
    let org = first["organization.json"].clone();
    let policy = first[&format!("{DEV}/policies/ReportsReader.json")].clone();
    drop(first);
    // A resync: the same files, read again.
    let second = warden::bundle::share(files.clone());
    let (s, reused) = loader.load_counted(&second, 2);
    let s = s.unwrap();
    assert!(reused.documents.patched, "{reused:?}");
    assert_eq!(
        s.digest().as_ref(),
        warden::digest::of_files(&files).as_str()
    );
    assert_eq!(
        (Arc::strong_count(&org), Arc::strong_count(&policy)),
        (1, 1),
        "old allocations still held by the loader"
    );
}

/// The digest is always `digest::of_files`'s through a mix of shared, owned, failed and
/// patched loads.
#[test]
fn the_digest_is_the_whole_digest_through_a_mix_of_loads() {
    for seed in 1..=10u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 3);
        let mut files = example();
        let mut shared = warden::bundle::share(files.clone());
        let mut earlier = Vec::new();
        let mut loader = Loader::default();
        loader.load(&shared, 1).unwrap();
        for step in 0..60u64 {
            for _ in 0..1 + rng.below(2) {
                edit(&mut rng, &mut files);
            }
            follow(&mut rng, &files, &mut shared, &mut earlier);
            let got = match rng.below(5) {
                0 => loader.load(&files, step).map(|s| s.digest().to_string()),
                1 => {
                    // A broken file between.
                    let mut bad = shared.clone();
                    bad.insert(format!("{DEV}/users/zz.json"), Arc::from("{"));
                    assert!(loader.load(&bad, step).is_err());
                    loader.load(&shared, step).map(|s| s.digest().to_string())
                }
                _ => loader.load(&shared, step).map(|s| s.digest().to_string()),
            };
            if let Ok(d) = got {
                assert_eq!(
                    d,
                    warden::digest::of_files(&files),
                    "seed {seed} step {step}"
                );
            }
        }
    }
}

//! Fuzz body `bundle`: a bundle from an arbitrary map of files (`bundle::load_files`),
//! with paths from the bundle's layout (see `bundle`'s module header) and JSON-ish
//! contents. It checks that loading never panics, that a bundle that loads compiles
//! (`Snapshot::compile`), and that the compiled snapshot decides requests of its own
//! principals without panicking and without `internal_error` (an index entry that names
//! no statement, which a loaded bundle must never produce).
//!
//! Input, read with `arbitrary::Unstructured` one byte at a time so that a seed is easy to
//! write from a directory: entries of `[layout] [account] [name] [length: 2 bytes, little
//! endian] [content: that many bytes, UTF-8, lossily]`, where `layout` (modulo 12) picks
//! a path of the layout, `account` and `name` pick from the lists below (modulo their
//! lengths). The last entry for a path wins.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use arbitrary::{Result, Unstructured};
use warden::context::CallerContext;
use warden::eval::Reason;
use warden::snapshot::Snapshot;

pub const ACCOUNTS: &[&str] = &[
    "111111111111",
    "222222222222",
    "333333333333",
    "444444444444",
    "555555555555",
    "12345",
    "",
    "..",
];

pub const NAMES: &[&str] = &[
    "AppBoundary",
    "AssumeAuditor",
    "Auditor",
    "BreakGlass",
    "DenyLeaveOrganization",
    "Developer",
    "Developers",
    "OrdersStayInOrganization",
    "ProtectProductionData",
    "ReportsReader",
    "admin",
    "alice",
    "app-runtime",
    "bob",
    "carol",
    "ci-deployer",
    "dana",
    "db",
    "deploy",
    "erin",
    "files",
    "monitoring",
    "network",
    "orders",
    "shared-orders",
    "FullAWSAccess",
    "x",
    "",
    "a.b",
    "with space",
    "é",
    "ALICE",
];

/// The path of layout entry `layout` for `account` and `name`.
pub fn path(layout: u8, account: &str, name: &str) -> String {
    match layout % 12 {
        0 => "organization.json".to_owned(),
        1 => "quotas.json".to_owned(),
        2 => format!("catalog/{name}.json"),
        3 => format!("scps/{name}.json"),
        4 => format!("rcps/{name}.json"),
        5 => format!("accounts/{account}/account.json"),
        6 => format!("accounts/{account}/policies/{name}.json"),
        7 => format!("accounts/{account}/users/{name}.json"),
        8 => format!("accounts/{account}/groups/{name}.json"),
        9 => format!("accounts/{account}/roles/{name}.json"),
        10 => format!("accounts/{account}/resources/{name}.json"),
        // A path outside the layout.
        _ => format!("{account}/{name}"),
    }
}

/// What an input reached, for a replay to tell that its corpus goes deep.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reached {
    /// The file map loaded as a bundle.
    pub loaded: bool,
    /// Requests the compiled snapshot decided.
    pub decisions: usize,
}

pub fn run(data: &[u8]) -> Reached {
    let mut u = Unstructured::new(data);
    let files = files(&mut u);
    let Ok(bundle) = warden::bundle::load_files(&files) else {
        return Reached::default();
    };
    let mut reached = Reached {
        loaded: true,
        decisions: 0,
    };
    let snapshot = Snapshot::compile(&bundle, 1);
    let _ = snapshot.statement_count();
    // Ask what each principal may do: a few actions, on `*` and on each bound resource.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let mut principals = Vec::new();
    let mut resources = vec!["*".to_owned()];
    for (id, account) in &bundle.accounts {
        principals.push(format!("arn:aws:iam::{id}:root"));
        principals.extend(account.users.iter().map(|u| u.arn.clone()));
        principals.extend(
            account
                .roles
                .iter()
                .map(|r| format!("arn:aws:sts::{id}:assumed-role/{}/s", r.name)),
        );
        resources.extend(account.resources.iter().map(|r| r.arn.replace('*', "x")));
    }
    let actions: Vec<String> = bundle
        .catalog
        .actions()
        .map(|(s, a)| format!("{}:{}", s.prefix, a.name))
        .step_by(7)
        .collect();
    let context = CallerContext::empty();
    for principal in principals.iter().take(8) {
        for action in actions.iter().take(8) {
            for resource in resources.iter().take(4) {
                if let Ok(auth) = snapshot.ask(principal, action, resource, &context, now) {
                    reached.decisions += 1;
                    assert_ne!(
                        auth.outcome.reason,
                        Reason::InternalError,
                        "{principal} {action} {resource}: an index entry names no statement"
                    );
                }
            }
        }
    }
    reached
}

/// The file map an input describes.
pub fn files(u: &mut Unstructured<'_>) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    while let Ok(Some((path, text))) = entry(u) {
        files.insert(path, text);
    }
    files
}

fn entry(u: &mut Unstructured<'_>) -> Result<Option<(String, String)>> {
    if u.is_empty() {
        return Ok(None);
    }
    let layout: u8 = u.arbitrary()?;
    let account = ACCOUNTS[usize::from(u.arbitrary::<u8>()?) % ACCOUNTS.len()];
    let name = NAMES[usize::from(u.arbitrary::<u8>()?) % NAMES.len()];
    let len = u.bytes(2)?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let len = len.min(u.len());
    let text = String::from_utf8_lossy(u.bytes(len)?).into_owned();
    Ok(Some((path(layout, account, name), text)))
}

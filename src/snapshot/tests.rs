//! Tests of the snapshot: the example organization's story end to end, principal
//! resolution, and the context keys the server owns.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::eval::{Decision, Reason};
use crate::policy::PolicyKind;

const DEV: &str = "333333333333";
const STAGING: &str = "444444444444";
const PROD: &str = "555555555555";

fn example() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
        Snapshot::load_dir(&dir, 7).unwrap()
    })
}

const NOW: u64 = 1_780_000_000;

fn screened(ctx: &Context) -> CallerContext {
    CallerContext::screen(ctx.clone(), |_| {})
}

fn ask_with(principal: &str, action: &str, resource: &str, ctx: &Context) -> Authorization {
    example()
        .ask(
            principal,
            action,
            resource,
            &screened(ctx),
            UNIX_EPOCH + Duration::from_secs(NOW),
        )
        .unwrap()
}

/// Calls `f` with the context a request is evaluated with: the server's keys over the
/// caller's.
fn with_keys(
    s: &Snapshot,
    principal: &str,
    resource: &str,
    ctx: &Context,
    now: SystemTime,
    f: impl FnOnce(&dyn Lookup),
) {
    let action = Action::parse("orders:GetOrder").unwrap();
    let caller = screened(ctx);
    let q = Question {
        action: &action,
        resource,
        resource_arn: parse_resource(resource).unwrap(),
        context: CallerView::of(&caller),
    };
    let who = s.resolve(principal, None, now).unwrap().unwrap();
    let target = s.target(&who, &q);
    let time = time_keys(now);
    f(&Keys::new(&who, &target, &time, q.context));
}

fn ask(principal: &str, action: &str, resource: &str) -> Outcome {
    ask_with(principal, action, resource, &Context::new()).outcome
}

#[track_caller]
fn check(principal: &str, action: &str, resource: &str, decision: Decision, reason: Reason) {
    let o = ask(principal, action, resource);
    assert_eq!(
        (o.decision, o.reason),
        (decision, reason),
        "{principal} {action} {resource}: {o:?}"
    );
}

fn order(account: &str, id: &str) -> String {
    format!("arn:aws:orders:us-east-1:{account}:order/{id}")
}

fn session(account: &str, role: &str, name: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{name}")
}

#[test]
fn a_developer_cannot_delete_production_orders() {
    let dev = session(PROD, "Developer", "alice");
    check(
        &dev,
        "orders:DeleteOrder",
        &order(PROD, "1"),
        Decision::ExplicitDeny,
        Reason::ExplicitDeny,
    );
    let o = ask(&dev, "orders:DeleteOrder", &order(PROD, "1"));
    assert_eq!(o.denied_by, Some(PolicyKind::Scp));
    assert_eq!(
        o.statements[0].sid.as_deref(),
        Some("DenyDestructiveActions")
    );
    // ...but may update them, and may delete orders in the dev account.
    check(
        &dev,
        "orders:UpdateOrder",
        &order(PROD, "1"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
    let alice = format!("arn:aws:iam::{DEV}:user/engineering/alice");
    check(
        &alice,
        "orders:DeleteOrder",
        &order(DEV, "1"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
}

#[test]
fn the_break_glass_role_may_delete_production_orders() {
    check(
        &session(PROD, "BreakGlass", "oncall"),
        "orders:DeleteOrder",
        &order(PROD, "1"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
}

#[test]
fn a_dba_manages_databases_but_not_iam() {
    let dana = format!("arn:aws:iam::{PROD}:user/dba/dana");
    let db = format!("arn:aws:db:us-east-1:{PROD}:database/orders");
    check(
        &dana,
        "db:ModifyDatabase",
        &db,
        Decision::Allow,
        Reason::IdentityAllow,
    );
    check(
        &dana,
        "db:CreateSnapshot",
        &db,
        Decision::Allow,
        Reason::IdentityAllow,
    );
    check(
        &dana,
        "iam:CreateUser",
        &format!("arn:aws:iam::{PROD}:user/x"),
        Decision::ImplicitDeny,
        Reason::NoIdentityAllow,
    );
    check(
        &dana,
        "orders:GetOrder",
        &order(PROD, "1"),
        Decision::ImplicitDeny,
        Reason::NoIdentityAllow,
    );
}

#[test]
fn an_auditor_reads_everything_and_writes_nothing() {
    let auditor = session(PROD, "Auditor", "erin");
    check(
        &auditor,
        "orders:GetOrder",
        &order(PROD, "1"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
    check(
        &auditor,
        "db:DescribeDatabase",
        &format!("arn:aws:db:us-east-1:{PROD}:database/x"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
    check(
        &auditor,
        "iam:GetRole",
        &format!("arn:aws:iam::{PROD}:role/Developer"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
    for action in [
        "orders:CreateOrder",
        "db:DeleteDatabase",
        "network:CreateVpc",
        "iam:PutRolePolicy",
    ] {
        let o = ask(&auditor, action, &order(PROD, "1"));
        assert_ne!(o.decision, Decision::Allow, "{action}");
    }
}

#[test]
fn a_ci_role_deploys_only_to_its_account() {
    let ci = session(STAGING, "ci-deployer", "run-42");
    let app = |acct: &str| format!("arn:aws:deploy:us-east-1:{acct}:application/orders");
    check(
        &ci,
        "deploy:CreateDeployment",
        &app(STAGING),
        Decision::Allow,
        Reason::IdentityAllow,
    );
    check(
        &ci,
        "deploy:CreateDeployment",
        &app(PROD),
        Decision::ImplicitDeny,
        Reason::CrossAccountNoResourceAllow,
    );
    check(
        &ci,
        "deploy:CreateDeployment",
        &app(DEV),
        Decision::ImplicitDeny,
        Reason::CrossAccountNoResourceAllow,
    );
}

#[test]
fn cross_account_access_needs_both_sides() {
    let bob = format!("arn:aws:iam::{DEV}:user/engineering/bob");
    let carol = format!("arn:aws:iam::{DEV}:user/engineering/carol");
    let shared = order(PROD, "shared/7");
    // Both sides allow.
    check(
        &bob,
        "orders:GetOrder",
        &shared,
        Decision::Allow,
        Reason::CrossAccountAllow,
    );
    // The resource policy grants the account, but carol's identity does not allow.
    check(
        &carol,
        "orders:GetOrder",
        &shared,
        Decision::ImplicitDeny,
        Reason::CrossAccountNoIdentityAllow,
    );
    // bob's identity allows, but no resource policy covers this order.
    check(
        &bob,
        "orders:GetOrder",
        &order(PROD, "private/7"),
        Decision::ImplicitDeny,
        Reason::CrossAccountNoResourceAllow,
    );
}

#[test]
fn an_scp_deny_holds_even_for_administrator_access() {
    let admin = format!("arn:aws:iam::{PROD}:user/admin");
    check(
        &admin,
        "orders:DeleteOrder",
        &order(PROD, "1"),
        Decision::ExplicitDeny,
        Reason::ExplicitDeny,
    );
    check(
        &admin,
        "orders:CreateOrder",
        &order(PROD, "1"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
}

#[test]
fn a_boundary_caps_a_role() {
    let app = session(DEV, "app-runtime", "i-0abc");
    check(
        &app,
        "orders:GetOrder",
        &order(DEV, "1"),
        Decision::Allow,
        Reason::IdentityAllow,
    );
    check(
        &app,
        "db:DeleteDatabase",
        &format!("arn:aws:db:us-east-1:{DEV}:database/x"),
        Decision::ImplicitDeny,
        Reason::BoundaryNoAllow,
    );
}

#[test]
fn a_trust_policy_decides_who_may_assume_a_role() {
    // Developer trusts the dev account: its users may assume it.
    let alice = format!("arn:aws:iam::{DEV}:user/engineering/alice");
    let developer_role = format!("arn:aws:iam::{PROD}:role/Developer");
    let o = ask(&alice, "sts:AssumeRole", &developer_role);
    assert_eq!(o.decision, Decision::Allow, "{o:?}");
    // Auditor trusts the security account, with MFA: an asserted ARN carries none (the
    // caller's own `aws:MultiFactorAuthPresent` is the server's key, and dropped).
    let erin = "arn:aws:iam::222222222222:user/audit/erin";
    let auditor_role = format!("arn:aws:iam::{PROD}:role/Auditor");
    let mut mfa = Context::new();
    mfa.insert(
        "aws:MultiFactorAuthPresent",
        ContextValue::Single("true".into()),
    );
    let o = ask_with(erin, "sts:AssumeRole", &auditor_role, &mfa).outcome;
    assert_eq!(o.reason, Reason::CrossAccountNoResourceAllow, "{o:?}");
    // The dev account is trusted by Developer, not by Auditor.
    let o = ask_with(&alice, "sts:AssumeRole", &auditor_role, &mfa).outcome;
    assert_eq!(o.decision, Decision::ImplicitDeny, "{o:?}");
}

#[test]
fn an_unknown_principal_is_an_implicit_deny_that_says_so() {
    for p in [
        format!("arn:aws:iam::{DEV}:user/engineering/mallory"),
        format!("arn:aws:iam::{DEV}:user/alice"), // the path is part of the ARN
        session(DEV, "NoSuchRole", "x"),
        format!("arn:aws:iam::{DEV}:root").replace(DEV, "999999999999"),
    ] {
        let o = ask(&p, "orders:GetOrder", &order(DEV, "1"));
        assert_eq!(
            (o.decision, o.reason),
            (Decision::ImplicitDeny, Reason::UnknownPrincipal),
            "{p}"
        );
    }
    // Not a principal ARN at all: malformed, which the service refuses before it asks.
    let malformed = example().ask(
        "not-an-arn",
        "orders:GetOrder",
        &order(DEV, "1"),
        &CallerContext::empty(),
        UNIX_EPOCH,
    );
    assert!(malformed.is_err());
}

#[test]
fn server_owned_context_cannot_be_forged() {
    // The SCP lets only BreakGlass delete production orders, testing aws:PrincipalArn: a
    // caller claiming to be BreakGlass in its context is still denied.
    let mut forged = Context::new();
    forged.insert(
        "aws:PrincipalArn",
        ContextValue::Single(format!("arn:aws:iam::{PROD}:role/BreakGlass")),
    );
    forged.insert("aws:PrincipalOrgID", ContextValue::Single("o-evil".into()));
    let o = ask_with(
        &session(PROD, "Developer", "alice"),
        "orders:DeleteOrder",
        &order(PROD, "1"),
        &forged,
    )
    .outcome;
    assert_eq!(o.decision, Decision::ExplicitDeny);
}

#[test]
fn server_fills_the_keys_it_owns() {
    let s = example();
    let mut ctx = Context::new();
    ctx.insert(
        "aws:PrincipalTag/team",
        ContextValue::Single("forged".into()),
    );
    ctx.insert("aws:SourceIp", ContextValue::Single("10.0.0.1".into()));
    let alice = format!("arn:aws:iam::{DEV}:user/engineering/alice");
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    with_keys(s, &alice, &order(PROD, "shared/1"), &ctx, now, |keys| {
        let get = |k: &str| keys.get(k).map(|v| v.values().to_vec());
        let one = |v: &str| Some(vec![v.to_owned()]);
        assert_eq!(
            get("aws:principalarn"),
            one(&format!("arn:aws:iam::{DEV}:user/engineering/alice"))
        );
        assert_eq!(get("aws:principalaccount"), one(DEV));
        assert_eq!(get("aws:username"), one("alice"));
        assert_eq!(get("aws:principaltype"), one("User"));
        assert_eq!(get("aws:principaltag/team"), one("orders"));
        assert_eq!(get("aws:principalorgid"), one("o-a1b2c3d4e5"));
        assert_eq!(
            get("aws:principalorgpaths"),
            one("o-a1b2c3d4e5/r-a1b2/ou-a1b2-workloads/ou-a1b2-nonprod/")
        );
        assert_eq!(get("aws:resourceaccount"), one(PROD));
        assert_eq!(
            get("aws:resourceorgpaths"),
            one("o-a1b2c3d4e5/r-a1b2/ou-a1b2-workloads/ou-a1b2-prod/")
        );
        assert_eq!(get("aws:resourcetag/owner"), one("team-orders"));
        assert_eq!(get("aws:currenttime"), one("2026-05-28T20:26:40Z"));
        assert_eq!(get("aws:epochtime"), one("1780000000"));
        assert_eq!(
            get("aws:sourceip"),
            one("10.0.0.1"),
            "keys the server does not own pass through"
        );
        let uid = get("aws:userid").unwrap().remove(0);
        assert!(uid.starts_with("AIDA") && uid.len() == 21, "{uid}");
        assert_eq!(get("aws:principalisawsservice"), one("false"));
        assert_eq!(get("aws:viaawsservice"), one("false"));
        assert_eq!(
            get("aws:multifactorauthpresent"),
            None,
            "an asserted ARN has no MFA"
        );
    });
}

#[test]
fn a_role_session_resolves_to_its_role() {
    let s = example();
    let ctx = Context::new();
    let principal = session(DEV, "app-runtime", "i-0abc");
    with_keys(s, &principal, &order(DEV, "1"), &ctx, UNIX_EPOCH, |keys| {
        let get = |k: &str| {
            keys.get(k)
                .and_then(ContextValue::single)
                .map(str::to_owned)
        };
        assert_eq!(
            get("aws:principalarn").as_deref(),
            Some("arn:aws:iam::333333333333:role/service/app-runtime")
        );
        assert_eq!(get("aws:principaltype").as_deref(), Some("AssumedRole"));
        assert_eq!(get("aws:username"), None);
        assert_eq!(get("aws:principaltag/app").as_deref(), Some("orders-api"));
        let uid = get("aws:userid").unwrap();
        assert!(uid.starts_with("AROA") && uid.ends_with(":i-0abc"), "{uid}");
    });
}

#[test]
fn unique_ids_are_stable_and_distinct() {
    let a = unique_id("AIDA", "arn:aws:iam::1:user/a");
    assert_eq!(a, unique_id("AIDA", "arn:aws:iam::1:user/a"));
    assert_ne!(a, unique_id("AIDA", "arn:aws:iam::1:user/b"));
}

#[test]
fn the_management_account_is_exempt_from_scps() {
    let s = example();
    assert!(s.accounts.get("111111111111").unwrap().scps.is_empty());
    assert_eq!(
        s.accounts.get(PROD).unwrap().scps.len(),
        4,
        "root, Workloads, Prod, account"
    );
    assert_eq!(s.revision(), 7);
}

#[test]
fn time_conditions_mark_a_decision_time_dependent() {
    let files =
        crate::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"))
            .unwrap();
    let mut files = files;
    files.insert(
        "accounts/333333333333/policies/OfficeHours.json".into(),
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}]}"#.into(),
    );
    files.insert(
        "accounts/333333333333/users/carol.json".into(),
        r#"{"path": "/engineering/", "managed_policies": ["OfficeHours"]}"#.into(),
    );
    let s = Snapshot::load_files(&files, 1).unwrap();
    let ctx = Context::new();
    let at = |secs: u64| {
        s.ask(
            "arn:aws:iam::333333333333:user/engineering/carol",
            "orders:GetOrder",
            &order(DEV, "1"),
            &screened(&ctx),
            UNIX_EPOCH + Duration::from_secs(secs),
        )
        .unwrap()
    };
    let before = at(1_800_000_000);
    assert_eq!(before.outcome.decision, Decision::Allow);
    assert!(before.time_dependent);
    assert_eq!(
        at(1_900_000_000).outcome.decision,
        Decision::ImplicitDeny,
        "after 2030 the condition no longer holds"
    );
    assert!(
        !ask_with(
            &format!("arn:aws:iam::{PROD}:user/admin"),
            "orders:GetOrder",
            &order(PROD, "1"),
            &ctx
        )
        .time_dependent
    );
}

#[test]
fn the_organization_of_an_account_a_caller_names_is_the_servers_to_say() {
    let s = example();
    let alice = format!("arn:aws:iam::{DEV}:user/engineering/alice");
    let mut ctx = Context::new();
    ctx.insert("aws:VpceAccount", ContextValue::Single(PROD.into()));
    ctx.insert(
        "aws:SourceAccount",
        ContextValue::Single("999999999999".into()),
    );
    ctx.insert("aws:VpceOrgID", ContextValue::Single("o-forged".into()));
    ctx.insert("aws:SourceOrgID", ContextValue::Single("o-forged".into()));
    with_keys(s, &alice, &order(DEV, "1"), &ctx, UNIX_EPOCH, |keys| {
        let get = |k: &str| keys.get(k).map(|v| v.values().to_vec());
        assert_eq!(get("aws:vpceaccount"), Some(vec![PROD.to_owned()]));
        assert_eq!(get("aws:vpceorgid"), Some(vec!["o-a1b2c3d4e5".to_owned()]));
        assert_eq!(
            get("aws:vpceorgpaths"),
            Some(vec![
                "o-a1b2c3d4e5/r-a1b2/ou-a1b2-workloads/ou-a1b2-prod/".to_owned()
            ])
        );
        // An account outside the organization has none; the caller's claim is dropped.
        assert_eq!(get("aws:sourceorgid"), None);
    });
}

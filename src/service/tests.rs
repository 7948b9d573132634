//! The request pipeline, driven as a face drives it: the example organization (and
//! variations of it) published, requests handed over whole, a clock the tests control.
//! Each defect found by hostile testing has its test here, named for what now holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::caller::Session;
use crate::compile::PolicySet;
use crate::context::ContextValue;
use crate::eval::Decision;
use crate::policy::{PolicyKind, parse_text};

const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
const ERIN: &str = "arn:aws:iam::222222222222:user/audit/erin";
const DEVELOPER: &str = "arn:aws:sts::555555555555:assumed-role/Developer/s1";
const ORDER: &str = "arn:aws:orders:us-east-1:333333333333:order/42";
const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/1";
const START: u64 = 1_800_000_000;

/// A clock the test sets.
struct TestClock(Mutex<SystemTime>);

impl TestClock {
    fn at(secs: u64) -> Arc<TestClock> {
        Arc::new(TestClock(Mutex::new(
            UNIX_EPOCH + Duration::from_secs(secs),
        )))
    }

    fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

fn example_files() -> BTreeMap<String, String> {
    crate::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")).unwrap()
}

/// A service over the example organization with `changes` to its files, at revision 1,
/// with a cache, reading `clock`.
fn service_with(changes: &[(&str, &str)], clock: Arc<TestClock>) -> Service {
    let mut files = example_files();
    for (path, text) in changes {
        files.insert((*path).to_owned(), (*text).to_owned());
    }
    let published = Arc::new(Published::new());
    let telemetry = Arc::new(Telemetry::new());
    published.publish(Snapshot::load_files(&files, 1).unwrap(), &telemetry.metrics);
    Service::new(
        published,
        telemetry,
        None,
        ServiceConfig {
            cache_size: 1000,
            limits: Limits::default(),
        },
    )
    .with_clock(clock)
}

fn example() -> Service {
    service_with(&[], TestClock::at(START))
}

fn request(principal: &str, action: &str, resource: &str, context: &[(&str, &str)]) -> Request {
    let mut ctx = Context::new();
    for (k, v) in context {
        ctx.insert(k, ContextValue::Single((*v).to_owned()));
    }
    Request {
        caller: Caller::Asserted(principal.to_owned()),
        context: ctx,
        items: vec![Item {
            action: action.to_owned(),
            resource: resource.to_owned(),
            context: Context::new(),
        }],
        min_revision: 0,
        explain: false,
        shape: Shape::One,
        face: crate::telemetry::Face::Authorize,
        snapshot: None,
    }
}

fn answer(s: &Service, r: Request) -> Result<Answer, RequestError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(s.handle(|_| Ok(r)))
}

/// The one item's outcome, as `Decision reason`.
#[track_caller]
fn decide(s: &Service, r: Request) -> String {
    let a = answer(s, r).unwrap();
    let [d] = a.decisions.as_slice() else {
        panic!("{} decisions", a.decisions.len())
    };
    format!("{} {}", d.outcome.decision, d.outcome.reason)
}

#[track_caller]
fn refused(s: &Service, r: Request) -> (String, String) {
    match answer(s, r) {
        Err(RequestError::Invalid { field, message }) => (field, message),
        other => panic!("{other:?}"),
    }
}

// === context forgery ===

/// The standard data-perimeter RCP: resources of the Workloads OU only for principals of
/// the organization, unless an AWS service calls.
const PERIMETER: &str = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Perimeter",
    "Effect": "Deny", "Principal": "*", "Action": "orders:*", "Resource": "*",
    "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"},
                  "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}]}"#;

/// An account outside the organization whose user may read every order, and the
/// perimeter RCP in place of the example's.
fn outsider_setup() -> Service {
    service_with(
        &[
            ("rcps/OrdersStayInOrganization.json", PERIMETER),
            (
                "accounts/999999999999/account.json",
                r#"{"name": "outside"}"#,
            ),
            (
                "accounts/999999999999/users/mallory.json",
                r#"{"inline_policies": {"all": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "orders:*", "Resource": "*"}]}}}"#,
            ),
            (
                "accounts/333333333333/resources/open.json",
                r#"{"arn": "arn:aws:orders:us-east-1:333333333333:order/open/*", "policy": {
                    "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": "*", "Action": "orders:GetOrder"}]}}"#,
            ),
        ],
        TestClock::at(START),
    )
}

#[test]
fn a_forged_service_flag_does_not_pass_the_data_perimeter() {
    let s = outsider_setup();
    let mallory = "arn:aws:iam::999999999999:user/mallory";
    let open = "arn:aws:orders:us-east-1:333333333333:order/open/1";
    assert_eq!(
        decide(&s, request(mallory, "orders:GetOrder", open, &[])),
        "ExplicitDeny explicit_deny"
    );
    // Every spelling of the key: it is the server's, so the caller's value is dropped.
    for key in [
        "aws:PrincipalIsAWSService",
        "aws:principalisawsservice",
        "AWS:PRINCIPALISAWSSERVICE",
        "Aws:PrincipalIsAwsService",
    ] {
        assert_eq!(
            decide(
                &s,
                request(mallory, "orders:GetOrder", open, &[(key, "true")])
            ),
            "ExplicitDeny explicit_deny",
            "{key}"
        );
    }
    // Nor does a forged organization id.
    assert_eq!(
        decide(
            &s,
            request(
                mallory,
                "orders:GetOrder",
                open,
                &[("aws:PrincipalOrgID", "o-a1b2c3d4e5")]
            )
        ),
        "ExplicitDeny explicit_deny"
    );
    let dropped = s.telemetry().render();
    assert!(
        dropped.contains(r#"warden_context_keys_dropped_total{key="aws:PrincipalIsAWSService"} 4"#),
        "{dropped}"
    );
}

#[test]
fn a_forged_mfa_flag_does_not_satisfy_a_trust_policy() {
    let s = example();
    let auditor = "arn:aws:iam::555555555555:role/Auditor";
    for context in [
        &[][..],
        &[("aws:MultiFactorAuthPresent", "true")][..],
        &[("aws:multifactorauthpresent", "true")][..],
        &[("aws:MultiFactorAuthAge", "1")][..],
    ] {
        assert_eq!(
            decide(&s, request(ERIN, "sts:AssumeRole", auditor, context)),
            "ImplicitDeny cross_account_no_resource_allow",
            "{context:?}"
        );
    }
}

#[test]
fn keys_that_are_request_attributes_still_reach_conditions() {
    let s = service_with(
        &[(
            "accounts/333333333333/users/carol.json",
            r#"{"path": "/engineering/", "inline_policies": {"vpc": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1", "orders:Currency": "EUR"}}}]}}}"#,
        )],
        TestClock::at(START),
    );
    let carol = "arn:aws:iam::333333333333:user/engineering/carol";
    let ctx = [("aws:SourceVpc", "vpc-1"), ("orders:Currency", "EUR")];
    assert_eq!(
        decide(&s, request(carol, "orders:GetOrder", ORDER, &ctx)),
        "Allow identity_allow"
    );
    assert_eq!(
        decide(&s, request(carol, "orders:GetOrder", ORDER, &ctx[..1])),
        "ImplicitDeny no_identity_allow"
    );
}

// === validation ===

#[test]
fn a_request_names_one_action_the_catalog_knows() {
    let s = example();
    // A developer in production may not delete orders (an SCP); no wildcard walks around it.
    assert_eq!(
        decide(
            &s,
            request(DEVELOPER, "orders:DeleteOrder", PROD_ORDER, &[])
        ),
        "ExplicitDeny explicit_deny"
    );
    for action in [
        "orders:Delete*",
        "orders:Delete?rder",
        "orders:*",
        "*:*",
        "*",
    ] {
        let (field, message) = refused(&s, request(DEVELOPER, action, PROD_ORDER, &[]));
        assert_eq!(field, "action", "{action}");
        assert!(message.contains("wildcard"), "{action}: {message}");
    }
    for (action, why) in [
        (
            "nosvc:GetOrder",
            "not an action of the catalog (no such service)",
        ),
        ("orders:GetOrdr", "not an action of the catalog"),
        ("GetOrder", "is not `service:Action`"),
        ("orders:Get Order", "is not `service:Action`"),
    ] {
        let (field, message) = refused(&s, request(ALICE, action, ORDER, &[]));
        assert_eq!(field, "action", "{action}");
        assert!(message.contains(why), "{action}: {message}");
    }
    // Any case of a known action is that action.
    assert_eq!(
        decide(&s, request(ALICE, "ORDERS:getorder", ORDER, &[])),
        decide(&s, request(ALICE, "orders:GetOrder", ORDER, &[]))
    );
}

#[test]
fn principals_and_resources_are_in_the_bundles_partition() {
    let s = example();
    let break_glass = "arn:zzz:sts::555555555555:assumed-role/BreakGlass/x";
    let (field, message) = refused(
        &s,
        request(break_glass, "orders:DeleteOrder", PROD_ORDER, &[]),
    );
    assert_eq!(field, "principal");
    assert!(message.contains("partition `zzz`"), "{message}");
    let (field, message) = refused(
        &s,
        request(
            ALICE,
            "orders:GetOrder",
            "arn:zzz:orders:us-east-1:333333333333:order/42",
            &[],
        ),
    );
    assert_eq!(field, "resource");
    assert!(message.contains("partition `zzz`"), "{message}");
    for bad in ["order/42", "", "arn:aws:orders"] {
        let (field, _) = refused(&s, request(ALICE, "orders:GetOrder", bad, &[]));
        assert_eq!(field, "resource", "{bad}");
    }
    for bad in [
        "alice",
        "arn:aws:iam::1:user/a",
        "arn:aws:iam::333333333333:group/g",
    ] {
        let (field, _) = refused(&s, request(bad, "orders:GetOrder", ORDER, &[]));
        assert_eq!(field, "principal", "{bad}");
    }
}

#[test]
fn a_resource_without_an_account_is_cross_account_unless_the_bundle_says_whose() {
    // `files` resources are S3-style: no account in the ARN.
    let s = service_with(
        &[
            (
                "accounts/333333333333/users/carol.json",
                r#"{"path": "/engineering/", "inline_policies": {"files": {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "files:GetObject", "Resource": "*"}]}}}"#,
            ),
            (
                "accounts/333333333333/resources/reports.json",
                r#"{"arn": "arn:aws:files:::reports/*", "policy": {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "files:DeleteObject"}]}}"#,
            ),
        ],
        TestClock::at(START),
    );
    let carol = "arn:aws:iam::333333333333:user/engineering/carol";
    // The bundle files `reports/*` under carol's own account: same account, her identity
    // policy suffices.
    assert_eq!(
        decide(
            &s,
            request(carol, "files:GetObject", "arn:aws:files:::reports/q1", &[])
        ),
        "Allow identity_allow"
    );
    // A resource nobody declares belongs to no account: decided as cross-account, so only
    // a resource policy could grant it.
    assert_eq!(
        decide(
            &s,
            request(carol, "files:GetObject", "arn:aws:files:::elsewhere/x", &[])
        ),
        "ImplicitDeny cross_account_no_resource_allow"
    );
}

#[test]
fn every_bound_is_checked_with_its_field() {
    let s = example();
    let mut big = request(ALICE, "orders:GetOrder", ORDER, &[]);
    for i in 0..65 {
        big.context
            .insert(&format!("k:{i}"), ContextValue::Single("v".into()));
    }
    assert_eq!(refused(&s, big).0, "context");
    let mut batch = request(ALICE, "orders:GetOrder", ORDER, &[]);
    batch.shape = Shape::Batch;
    let item = batch.items[0].clone();
    batch.items = vec![item.clone(); BATCH_MAX + 1];
    assert_eq!(refused(&s, batch.clone()).0, "items");
    batch.items.clear();
    assert_eq!(refused(&s, batch.clone()).0, "items");
    // Shared and own keys count together, a key in both once.
    for i in 0..40 {
        batch
            .context
            .insert(&format!("k:{i}"), ContextValue::Single("v".into()));
    }
    let mut own = item.clone();
    for i in 30..64 {
        own.context
            .insert(&format!("k:{i}"), ContextValue::Single("v".into()));
    }
    batch.items = vec![item.clone(), own.clone()];
    assert!(answer(&s, batch.clone()).is_ok(), "64 distinct keys");
    own.context.insert("k:64", ContextValue::Single("v".into()));
    batch.items = vec![item, own];
    let (field, message) = refused(&s, batch);
    assert_eq!(field, "items[1].context");
    assert!(message.contains("65 keys"), "{message}");
}

// === batches ===

#[test]
fn a_batch_item_sees_its_own_keys_over_the_shared_ones() {
    let s = service_with(
        &[(
            "accounts/333333333333/users/carol.json",
            r#"{"path": "/engineering/", "inline_policies": {"eur": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
                "Condition": {"StringEquals": {"orders:Currency": "EUR"}}}]}}}"#,
        )],
        TestClock::at(START),
    );
    let carol = "arn:aws:iam::333333333333:user/engineering/carol";
    let mut r = request(
        carol,
        "orders:GetOrder",
        ORDER,
        &[("orders:Currency", "EUR")],
    );
    r.shape = Shape::Batch;
    let mut usd = r.items[0].clone();
    usd.context
        .insert("orders:currency", ContextValue::Single("USD".into()));
    r.items.push(usd);
    let a = answer(&s, r.clone()).unwrap();
    let got: Vec<Decision> = a.decisions.iter().map(|d| d.outcome.decision).collect();
    assert_eq!(got, [Decision::Allow, Decision::ImplicitDeny]);
    // Asked again, both come from the cache, each under its own context.
    let a = answer(&s, r).unwrap();
    let got: Vec<(Decision, bool)> = a
        .decisions
        .iter()
        .map(|d| (d.outcome.decision, d.cached))
        .collect();
    assert_eq!(
        got,
        [(Decision::Allow, true), (Decision::ImplicitDeny, true)]
    );
}

// === the cache and the clock ===

#[test]
fn a_time_variable_keeps_a_decision_out_of_the_cache() {
    // Orders whose id is the current minute's epoch prefix: a grant that changes with time.
    let clock = TestClock::at(START);
    let s = service_with(
        &[(
            "accounts/333333333333/users/carol.json",
            r#"{"path": "/engineering/", "inline_policies": {"now": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder",
                "Resource": "arn:aws:orders:*:333333333333:order/${aws:EpochTime}"}]}}}"#,
        )],
        clock.clone(),
    );
    let carol = "arn:aws:iam::333333333333:user/engineering/carol";
    let now_order = format!("arn:aws:orders:us-east-1:333333333333:order/{START}");
    let r = || request(carol, "orders:GetOrder", &now_order, &[]);
    assert_eq!(decide(&s, r()), "Allow identity_allow");
    clock.advance(Duration::from_secs(1));
    assert_eq!(decide(&s, r()), "ImplicitDeny no_identity_allow");
}

/// Carol's policies in the property test below: some read the clock (as a key, as
/// variables), some do not; `variant` changes one grant, for the snapshots it swaps in.
fn clock_policies(variant: u32) -> String {
    let create = if variant.is_multiple_of(2) {
        "Allow"
    } else {
        "Deny"
    };
    format!(
        r#"{{"path": "/engineering/", "inline_policies": {{"t": {{"Version": "2012-10-17",
            "Statement": [
            {{"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:orders:*:333333333333:order/${{aws:EpochTime}}"}},
            {{"Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*",
             "Condition": {{"DateLessThan": {{"aws:CurrentTime": "2027-01-15T08:00:05Z"}}}}}},
            {{"Effect": "Allow", "Action": "orders:UpdateOrder", "Resource": "*",
             "Condition": {{"StringLike": {{"orders:Currency": "${{aws:EpochTime}}*"}}}}}},
            {{"Effect": "Allow", "Action": "orders:DescribeOrderHistory", "Resource": "*"}},
            {{"Effect": "{create}", "Action": "orders:CreateOrder", "Resource": "*"}}]}}}}}}"#
    )
}

#[test]
fn a_cached_decision_always_equals_a_fresh_one() {
    // Random requests, the time moving on at random and new snapshots swapped in now and
    // then: whatever the service answers, from its cache or not, the serving snapshot
    // decides alike at that moment.
    let clock = TestClock::at(START);
    let carol_file = "accounts/333333333333/users/carol.json";
    let s = service_with(&[(carol_file, &clock_policies(0))], clock.clone());
    let principals = [
        "arn:aws:iam::333333333333:user/engineering/carol",
        ALICE,
        DEVELOPER,
    ];
    let actions = [
        "orders:GetOrder",
        "orders:ListOrders",
        "orders:UpdateOrder",
        "orders:CreateOrder",
        "orders:DescribeOrderHistory",
    ];
    let mut rng = oorandom::Rand32::new(3);
    let (mut hits, mut revision) = (0, 1);
    for _ in 0..3000 {
        if rng.rand_range(0..4) == 0 {
            clock.advance(Duration::from_secs(u64::from(rng.rand_range(0..3))));
        }
        if rng.rand_range(0..500) == 0 {
            revision += 1;
            let mut files = example_files();
            files.insert(carol_file.into(), clock_policies(revision));
            let next = Snapshot::load_files(&files, revision.into()).unwrap();
            s.published.publish(next, &s.telemetry().metrics);
        }
        let now = clock.now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let id = secs - u64::from(rng.rand_range(0..2));
        let principal = principals[rng.rand_range(0..3) as usize];
        let action = actions[rng.rand_range(0..5) as usize];
        let resource = format!("arn:aws:orders:us-east-1:333333333333:order/{id}");
        let currency = format!("{}", secs - u64::from(rng.rand_range(0..2)));
        let context = [("orders:Currency", currency.as_str())];
        let a = answer(&s, request(principal, action, &resource, &context)).unwrap();
        let d = &a.decisions[0];
        hits += usize::from(d.cached);
        let snapshot = s.published.current().unwrap();
        assert_eq!(a.revision, snapshot.revision());
        let screened = CallerContext::screen(
            request(principal, action, &resource, &context).context,
            |_| {},
        );
        let fresh = snapshot
            .ask(principal, action, &resource, &screened, now)
            .unwrap();
        assert_eq!(
            *d.outcome, fresh.outcome,
            "{principal} {action} {resource} at {secs}"
        );
    }
    assert!(revision > 2, "{revision}");
    assert!(hits > 100, "the cache answered {hits} times");
}

// === sessions ===

fn session_policy(statements: &str) -> Arc<PolicySet> {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    let p = parse_text(&text, PolicyKind::Session, "session")
        .policy
        .unwrap();
    Arc::new(PolicySet::new(vec![Arc::new(p)]))
}

fn session(id: &str, policies: Option<Arc<PolicySet>>) -> Session {
    Session {
        id: id.to_owned(),
        arn: DEVELOPER.to_owned(),
        policies,
        policy_arns: Vec::new(),
        inline_policy: None,
        tags: Vec::new(),
        source_identity: None,
        issued_at: UNIX_EPOCH + Duration::from_secs(START - 60),
        expires_at: UNIX_EPOCH + Duration::from_secs(START + 3600),
        mfa_at: None,
        web_identity: None,
    }
}

fn as_session(r: Request, s: Session) -> Request {
    Request {
        caller: Caller::Session(Arc::new(s)),
        ..r
    }
}

#[test]
fn two_sessions_with_one_arn_never_share_a_decision() {
    let s = example();
    let update = "orders:UpdateOrder";
    let asserted = request(DEVELOPER, update, PROD_ORDER, &[]);
    assert_eq!(decide(&s, asserted.clone()), "Allow identity_allow");
    // A session whose policy allows reads only is capped; one without a session policy is
    // not; each is its own cache entry, and neither takes the asserted ARN's.
    let reads = session(
        "ASIAREADS",
        Some(session_policy(
            r#"{"Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}"#,
        )),
    );
    let open = session("ASIAOPEN", None);
    for _ in 0..2 {
        assert_eq!(
            decide(&s, as_session(asserted.clone(), reads.clone())),
            "ImplicitDeny session_policy_no_allow"
        );
        assert_eq!(
            decide(&s, as_session(asserted.clone(), open.clone())),
            "Allow identity_allow"
        );
    }
}

#[test]
fn a_session_carries_its_tags_mfa_and_issue_time() {
    let s = service_with(
        &[(
            "accounts/555555555555/roles/Developer.json",
            r#"{"tags": {"team": "orders"}, "trust_policy": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "333333333333"},
                "Action": "sts:AssumeRole"}]},
                "inline_policies": {"p": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:PrincipalTag/team": "payments",
                                                "aws:SourceIdentity": "alice"},
                               "Bool": {"aws:MultiFactorAuthPresent": "true"},
                               "NumericLessThan": {"aws:MultiFactorAuthAge": "300"},
                               "DateGreaterThan": {"aws:TokenIssueTime": "2027-01-01T00:00:00Z"}}}]}}}"#,
        )],
        TestClock::at(START),
    );
    let r = request(DEVELOPER, "orders:GetOrder", PROD_ORDER, &[]);
    let mut good = session("ASIA1", None);
    good.tags = vec![("Team".into(), "payments".into())];
    good.mfa_at = Some(UNIX_EPOCH + Duration::from_secs(START - 100));
    good.source_identity = Some("alice".into());
    assert_eq!(
        decide(&s, as_session(r.clone(), good.clone())),
        "Allow identity_allow"
    );
    // Each fact, changed, takes the allow away.
    let mut untagged = good.clone();
    untagged.id = "ASIA2".into();
    untagged.tags.clear();
    let mut no_mfa = good.clone();
    no_mfa.id = "ASIA3".into();
    no_mfa.mfa_at = None;
    let mut old_mfa = good.clone();
    old_mfa.id = "ASIA4".into();
    old_mfa.mfa_at = Some(UNIX_EPOCH + Duration::from_secs(START - 400));
    let mut other_source = good.clone();
    other_source.id = "ASIA5".into();
    other_source.source_identity = Some("bob".into());
    for changed in [untagged, no_mfa, old_mfa, other_source] {
        let id = changed.id.clone();
        assert_eq!(
            decide(&s, as_session(r.clone(), changed)),
            "ImplicitDeny no_identity_allow",
            "{id}"
        );
    }
    // The asserted ARN carries none of them.
    assert_eq!(decide(&s, r), "ImplicitDeny no_identity_allow");
}

#[test]
fn an_expired_session_is_refused() {
    let s = example();
    let mut old = session("ASIAOLD", None);
    old.expires_at = UNIX_EPOCH + Duration::from_secs(START);
    let r = as_session(request(DEVELOPER, "orders:GetOrder", PROD_ORDER, &[]), old);
    assert_eq!(
        answer(&s, r).unwrap_err(),
        RequestError::SessionExpired {
            id: "ASIAOLD".into()
        }
    );
}

// === the snapshot, admission ===

#[test]
fn admission_sheds_beyond_the_limit() {
    let s = Service::new(
        Arc::new(Published::new()),
        Arc::new(Telemetry::new()),
        None,
        ServiceConfig {
            cache_size: 0,
            limits: Limits {
                max_concurrency: 2,
                ..Limits::default()
            },
        },
    );
    let a = s.admit().unwrap();
    let _b = s.admit().unwrap();
    assert_eq!(s.admit().err(), Some(RequestError::Overloaded { limit: 2 }));
    drop(a);
    assert!(s.admit().is_ok());
    // A refused request is never decoded.
    let _c = s.admit().unwrap();
    let mut decoded = false;
    let r = answer_with(&s, |_| {
        decoded = true;
        Err(RequestError::NoSnapshot)
    });
    assert_eq!(r.unwrap_err(), RequestError::Overloaded { limit: 2 });
    assert!(!decoded);
}

fn answer_with(
    s: &Service,
    decode: impl FnOnce(&Limits) -> Result<Request, RequestError>,
) -> Result<Answer, RequestError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(s.handle(decode))
}

#[test]
fn no_snapshot_is_an_error_not_a_decision() {
    let s = Service::new(
        Arc::new(Published::new()),
        Arc::new(Telemetry::new()),
        None,
        ServiceConfig {
            cache_size: 0,
            limits: Limits::default(),
        },
    );
    assert_eq!(
        answer(&s, request(ALICE, "orders:GetOrder", ORDER, &[])).unwrap_err(),
        RequestError::NoSnapshot
    );
}

#[tokio::test(start_paused = true)]
async fn a_revision_that_does_not_come_fails_the_precondition() {
    let s = example();
    let mut r = request(ALICE, "orders:GetOrder", ORDER, &[]);
    r.min_revision = 2;
    assert_eq!(
        s.handle(|_| Ok(r)).await.unwrap_err(),
        RequestError::RevisionBehind {
            wanted: 2,
            serving: 1
        }
    );
}

#[test]
fn decision_ids_are_unique() {
    let ids = DecisionIds::new();
    let a = ids.next();
    assert_ne!(a, ids.next());
    assert_eq!(a, format!("{:016x}{:016x}", ids.prefix, 1));
}

/// Verifies presented credentials the way a test wants: a token names its caller
/// (`asserted:ARN`, `session:ID`), `bad` fails, `echo` returns the presented caller
/// itself (a broken authenticator), and a signed request is Alice's, scoped to `orders`.
struct TestAuthenticator;

impl Authenticator for TestAuthenticator {
    fn authenticate(
        &self,
        _snapshot: &Snapshot,
        presented: &Presented,
        _now: SystemTime,
    ) -> Result<Verified, crate::sts::StsError> {
        use crate::sts::error::Code;
        match presented {
            Presented::SessionToken(t) if t == "bad" => Err(crate::sts::StsError::new(
                Code::InvalidClientTokenId,
                "The security token included in the request is invalid.",
            )),
            Presented::SessionToken(t) if t == "echo" => Ok(Verified {
                caller: Caller::Presented(Arc::new(presented.clone())),
                scope_service: None,
            }),
            Presented::SessionToken(t) => Ok(Verified {
                caller: Caller::Asserted(t.strip_prefix("asserted:").unwrap_or(t).to_owned()),
                scope_service: None,
            }),
            Presented::Signed(_) => Ok(Verified {
                caller: Caller::Asserted(ALICE.to_owned()),
                scope_service: Some("orders".to_owned()),
            }),
        }
    }
}

fn presenting(presented: Presented, action: &str, resource: &str) -> Request {
    Request {
        caller: Caller::Presented(Arc::new(presented)),
        ..request("", action, resource, &[])
    }
}

#[test]
fn presented_credentials_are_verified_before_anything_reads_the_caller() {
    let token = |t: &str| Presented::SessionToken(t.to_owned());
    // Without an authenticator, presented credentials are refused, never decided.
    let plain = example();
    let e = answer(
        &plain,
        presenting(
            token(&format!("asserted:{ALICE}")),
            "orders:GetOrder",
            ORDER,
        ),
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            RequestError::Unauthenticated {
                code: "InvalidClientTokenId",
                ..
            }
        ),
        "{e}"
    );
    let s = example().with_authenticator(Arc::new(TestAuthenticator));
    // A verified caller is decided as what it proved, exactly as when named.
    let named = decide(&s, request(ALICE, "orders:GetOrder", ORDER, &[]));
    let verified = decide(
        &s,
        presenting(
            token(&format!("asserted:{ALICE}")),
            "orders:GetOrder",
            ORDER,
        ),
    );
    assert_eq!(verified, named);
    // Credentials that do not verify are UNAUTHENTICATED with AWS's code.
    let e = answer(&s, presenting(token("bad"), "orders:GetOrder", ORDER)).unwrap_err();
    assert!(
        matches!(
            &e,
            RequestError::Unauthenticated {
                code: "InvalidClientTokenId",
                ..
            }
        ),
        "{e}"
    );
    // An authenticator that hands back an unverified caller does not get it decided.
    let e = answer(&s, presenting(token("echo"), "orders:GetOrder", ORDER)).unwrap_err();
    assert!(matches!(&e, RequestError::Unauthenticated { .. }), "{e}");
    // A signature scoped to `orders` answers for orders' actions only.
    let signed = || Presented::Signed(crate::caller::SignedRequest::default());
    assert_eq!(
        decide(&s, presenting(signed(), "orders:GetOrder", ORDER)),
        named
    );
    let e = answer(
        &s,
        presenting(
            signed(),
            "db:DescribeDatabase",
            "arn:aws:db:us-east-1:333333333333:database/main",
        ),
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            RequestError::Unauthenticated {
                code: "SignatureDoesNotMatch",
                ..
            }
        ),
        "{e}"
    );
}

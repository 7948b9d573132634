//! Unit tests of the decision flow, written from the reference (§3.3 algorithm, §3.4
//! resource-policy grants, §3.5 cross-account, §3.6 exceptions, §3.7 worked examples).
//!
//! Each test gathers policies with [`Setup`], evaluates one request and checks the
//! decision, the reason code, the layer that denied and the statements that decided.

use std::sync::Arc;

use super::*;
use crate::context::{Context, ContextValue};
use crate::policy::parse_text;
use crate::request::Principal;

const A: &str = "111111111111";
const B: &str = "222222222222";
const ALICE: &str = "arn:aws:iam::111111111111:user/alice";
const BOB_B: &str = "arn:aws:iam::222222222222:user/bob";
const ROLE: &str = "arn:aws:iam::111111111111:role/app";
const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/app/s1";
const OTHER_SESSION: &str = "arn:aws:sts::111111111111:assumed-role/app/s2";
const FED_ALICE: &str = "arn:aws:sts::111111111111:federated-user/alice";
const ROOT: &str = "arn:aws:iam::111111111111:root";
const ROOT_B: &str = "arn:aws:iam::222222222222:root";
/// A resource in account A.
const ORDER: &str = "arn:aws:orders:us-east-1:111111111111:order/1";

/// The policies of one request, as statement lists (JSON, comma-separated).
#[derive(Default, Clone)]
struct Setup {
    identity: Vec<String>,
    resource: Option<String>,
    boundary: Option<String>,
    session: Option<String>,
    scps: Vec<Vec<String>>,
    rcps: Vec<Vec<String>>,
    context: Vec<(&'static str, ContextValue)>,
}

fn compile(kind: PolicyKind, id: &str, statements: &str) -> Arc<Policy> {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    let parsed = parse_text(&text, kind, id);
    let errors: Vec<String> = parsed.errors().map(ToString::to_string).collect();
    Arc::new(
        parsed
            .policy
            .unwrap_or_else(|| panic!("{kind} policy {text}: {errors:?}")),
    )
}

impl Setup {
    fn identity(mut self, statements: &str) -> Setup {
        self.identity.push(statements.to_owned());
        self
    }
    fn resource(mut self, statements: &str) -> Setup {
        self.resource = Some(statements.to_owned());
        self
    }
    fn boundary(mut self, statements: &str) -> Setup {
        self.boundary = Some(statements.to_owned());
        self
    }
    fn session(mut self, statements: &str) -> Setup {
        self.session = Some(statements.to_owned());
        self
    }
    /// One SCP level holding one policy per entry (no entry: an empty level).
    fn scp_level(mut self, policies: &[&str]) -> Setup {
        self.scps
            .push(policies.iter().map(|p| (*p).to_owned()).collect());
        self
    }
    fn rcp_level(mut self, policies: &[&str]) -> Setup {
        self.rcps
            .push(policies.iter().map(|p| (*p).to_owned()).collect());
        self
    }
    fn context(mut self, key: &'static str, value: &str) -> Setup {
        self.context.push((key, ContextValue::Single(value.into())));
        self
    }

    /// Evaluates `action` on `resource` (owned by the account in its ARN) for the caller
    /// with this ARN.
    fn eval(&self, caller: &str, action: &str, resource: &str) -> Outcome {
        let principal = Principal::from_arn(caller).unwrap();
        let account = crate::arn::Arn::parse(resource)
            .map(|a| a.account.to_owned())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| principal.account.to_string());
        self.eval_as(&principal, action, resource, &account)
    }

    fn eval_as(
        &self,
        principal: &Principal,
        action: &str,
        resource: &str,
        resource_account: &str,
    ) -> Outcome {
        let mut ctx = Context::new();
        for (k, v) in &self.context {
            ctx.insert(k, v.clone());
        }
        principal.fill_context_defaults(&mut ctx);
        let set = |kind, id: &str, s: &Option<String>| {
            s.as_ref()
                .map(|s| PolicySet::new(vec![compile(kind, id, s)]))
        };
        let identity = PolicySet::new(
            self.identity
                .iter()
                .enumerate()
                .map(|(i, s)| compile(PolicyKind::Identity, &format!("identity[{i}]"), s))
                .collect(),
        );
        let levels = |kind: PolicyKind, levels: &[Vec<String>]| -> Vec<Arc<PolicySet>> {
            levels
                .iter()
                .enumerate()
                .map(|(l, ps)| {
                    Arc::new(PolicySet::new(
                        ps.iter()
                            .enumerate()
                            .map(|(i, s)| compile(kind, &format!("{kind}[{l}][{i}]"), s))
                            .collect(),
                    ))
                })
                .collect()
        };
        let resource_policy = set(PolicyKind::Resource, "resource", &self.resource).map(Arc::new);
        let boundary = set(PolicyKind::Boundary, "boundary", &self.boundary);
        let session = set(PolicyKind::Session, "session", &self.session);
        let scps = levels(PolicyKind::Scp, &self.scps);
        let rcps = levels(PolicyKind::Rcp, &self.rcps);
        let policies = Policies {
            identity: &identity,
            resource: resource_policy.as_slice(),
            boundary: boundary.as_ref(),
            session: session.as_ref(),
            scps: &scps,
            rcps: &rcps,
            resource_policy_required: resource_policy_required(action),
        };
        let action = crate::request::Action::parse(action).unwrap();
        let req = Request::new(principal, &action, resource, resource_account, &ctx);
        evaluate(&req, &policies)
    }
}

fn setup() -> Setup {
    Setup::default()
}

/// Asserts an outcome: `summary` is `Decision reason layer` (`-` for no layer), and
/// `statements` the deciding statements as `kind policy Sid X` or `kind policy Statement[i]`.
#[track_caller]
fn check(outcome: &Outcome, summary: &str, statements: &[&str]) {
    let got = format!(
        "{} {} {}",
        outcome.decision,
        outcome.reason,
        outcome.denied_by.map_or("-", PolicyKind::as_str)
    );
    let got_statements: Vec<String> = outcome.statements.iter().map(ToString::to_string).collect();
    assert_eq!(
        (got.as_str(), got_statements.clone()),
        (
            summary,
            statements
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>()
        ),
        "outcome {outcome:#?}"
    );
}

/// A caller that is not an IAM principal (§3.3 step 4).
fn caller<'a>(kind: PrincipalKind<'a>, arn: &'a str, account: &'a str) -> Principal<'a> {
    Principal {
        arn: arn.into(),
        partition: "aws".into(),
        account: account.into(),
        kind,
        unique_id: None,
    }
}

fn anonymous() -> Principal<'static> {
    caller(PrincipalKind::Anonymous, "", "")
}

fn service(name: &str) -> Principal<'_> {
    caller(PrincipalKind::Service { name: name.into() }, name, "")
}

// Statements used throughout.
const ALLOW_ORDERS: &str =
    r#"{"Sid":"Orders","Effect":"Allow","Action":"orders:*","Resource":"*"}"#;
const ALLOW_ALL: &str = r#"{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}"#;
const DENY_ORDERS: &str =
    r#"{"Sid":"NoOrders","Effect":"Deny","Action":"orders:*","Resource":"*"}"#;

fn rbp_allow(principal: &str) -> String {
    format!(
        r#"{{"Sid":"Grant","Effect":"Allow","Principal":{principal},"Action":"orders:GetOrder","Resource":"*"}}"#
    )
}

// === Step 1: explicit deny wins (§3.3, §3.7 example 1) ===

#[test]
fn explicit_deny_in_any_layer_wins_over_every_allow() {
    let all_allow = setup()
        .identity(ALLOW_ORDERS)
        .resource(&rbp_allow(
            r#"{"AWS":"arn:aws:iam::111111111111:user/alice"}"#,
        ))
        .boundary(ALLOW_ALL)
        .scp_level(&[ALLOW_ALL]);
    check(
        &all_allow.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &[
            "scp level 0 scp[0][0] Sid All",
            "resource resource Sid Grant",
        ],
    );
    let rcp_deny =
        r#"{"Sid":"NoOrders","Effect":"Deny","Principal":"*","Action":"orders:*","Resource":"*"}"#;
    let rbp_deny =
        r#"{"Sid":"NoOrders","Effect":"Deny","Principal":"*","Action":"orders:*","Resource":"*"}"#;
    let cases = [
        (
            all_allow.clone().identity(DENY_ORDERS),
            "identity identity[1] Sid NoOrders",
            "identity",
        ),
        (
            all_allow
                .clone()
                .boundary(&format!("{ALLOW_ALL},{DENY_ORDERS}")),
            "boundary boundary Sid NoOrders",
            "boundary",
        ),
        (
            all_allow
                .clone()
                .resource(&format!("{},{rbp_deny}", rbp_allow(r#""*""#))),
            "resource resource Sid NoOrders",
            "resource",
        ),
        (
            all_allow.clone().scp_level(&[ALLOW_ALL, DENY_ORDERS]),
            "scp level 1 scp[1][1] Sid NoOrders",
            "scp",
        ),
        (
            all_allow.clone().rcp_level(&[rcp_deny]),
            "rcp level 0 rcp[0][0] Sid NoOrders",
            "rcp",
        ),
    ];
    for (s, statement, layer) in cases {
        check(
            &s.eval(ALICE, "orders:GetOrder", ORDER),
            &format!("ExplicitDeny explicit_deny {layer}"),
            &[statement],
        );
    }
    let with_session = setup()
        .identity(ALLOW_ORDERS)
        .session(&format!("{ALLOW_ALL},{DENY_ORDERS}"));
    check(
        &with_session.eval(SESSION, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny session",
        &["session session Sid NoOrders"],
    );
}

#[test]
fn explicit_deny_lists_every_applicable_deny_statement() {
    let s = setup()
        .identity(&format!(
            r#"{ALLOW_ORDERS},{DENY_ORDERS},{{"Effect":"Deny","Action":"orders:Get*","Resource":"*"}},{{"Effect":"Deny","Action":"orders:Put*","Resource":"*"}}"#
        ))
        .scp_level(&[&format!("{ALLOW_ALL},{DENY_ORDERS}")]);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny identity",
        &[
            "identity identity[0] Sid NoOrders",
            "identity identity[0] Statement[2]",
            "scp level 0 scp[0][0] Sid NoOrders",
        ],
    );
}

#[test]
fn worked_example_1_bucket_policy_deny_beats_identity_allow() {
    let s = setup()
        .identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::*"}"#)
        .resource(r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}"#);
    check(
        &s.eval_as(
            &Principal::from_arn(ALICE).unwrap(),
            "s3:PutObject",
            "arn:aws:s3:::logs-bkt/x",
            A,
        ),
        "ExplicitDeny explicit_deny resource",
        &["resource resource Statement[0]"],
    );
}

#[test]
fn deny_naming_an_account_denies_every_principal_of_that_account() {
    let s = setup().identity(ALLOW_ORDERS).resource(&format!(
        r#"{},{{"Effect":"Deny","Principal":{{"AWS":"{A}"}},"Action":"orders:*","Resource":"*"}}"#,
        rbp_allow(r#""*""#)
    ));
    for caller in [ALICE, SESSION, ROOT] {
        check(
            &s.eval(caller, "orders:GetOrder", ORDER),
            "ExplicitDeny explicit_deny resource",
            &["resource resource Statement[1]"],
        );
    }
}

#[test]
fn deny_naming_a_role_applies_to_its_sessions() {
    let s = setup().identity(ALLOW_ORDERS).resource(&format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"{ROLE}"}},"Action":"orders:*","Resource":"*"}}"#
    ));
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny resource",
        &["resource resource Statement[0]"],
    );
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
}

#[test]
fn deny_with_a_negated_condition_applies_when_the_key_is_missing() {
    // §4.3: `Deny` + `StringNotEquals aws:PrincipalOrgID` also denies a caller without it.
    let s = setup().identity(&format!(
        r#"{ALLOW_ORDERS},{{"Sid":"OrgOnly","Effect":"Deny","Action":"*","Resource":"*","Condition":{{"StringNotEquals":{{"aws:PrincipalOrgID":"o-123"}}}}}}"#
    ));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny identity",
        &["identity identity[0] Sid OrgOnly"],
    );
    check(
        &s.clone()
            .context("aws:PrincipalOrgID", "o-123")
            .eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
}

// === Identity path (§3.3 step 5a iii) ===

#[test]
fn no_applicable_allow_is_an_implicit_deny() {
    check(
        &setup().eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    let other_action =
        setup().identity(r#"{"Effect":"Allow","Action":"orders:PutOrder","Resource":"*"}"#);
    check(
        &other_action.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn identity_allow_suffices_in_the_same_account() {
    check(
        &setup()
            .identity(ALLOW_ORDERS)
            .eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
}

#[test]
fn allows_combine_across_statements_and_policies_in_any_order() {
    let s = setup()
        .identity(r#"{"Effect":"Allow","Action":"orders:PutOrder","Resource":"*"}"#)
        .identity(r#"{"Effect":"Allow","Action":"files:Get*","Resource":"*"},{"Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}"#);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[1] Statement[1]"],
    );
    check(
        &s.eval(ALICE, "orders:PutOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Statement[0]"],
    );
}

#[test]
fn actions_match_case_insensitively_in_the_request() {
    let s = setup().identity(r#"{"Effect":"Allow","Action":"Orders:getorder","Resource":"*"}"#);
    check(
        &s.eval(ALICE, "ORDERS:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Statement[0]"],
    );
}

#[test]
fn resources_match_case_sensitively() {
    let s = setup().identity(
        r#"{"Effect":"Allow","Action":"orders:*","Resource":"arn:aws:orders:*:*:Order/*"}"#,
    );
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

// === NotAction / NotResource (§2.1, §2.2) ===

#[test]
fn not_action_allows_every_other_action_of_every_service() {
    let s = setup().identity(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Statement[0]"],
    );
    check(
        &s.eval(ALICE, "iam:CreateUser", "arn:aws:iam::111111111111:user/x"),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn deny_with_not_action_denies_everything_else() {
    let s = setup().identity(&format!(
        r#"{ALLOW_ALL},{{"Effect":"Deny","NotAction":["orders:Get*","files:*"],"Resource":"*"}}"#
    ));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid All"],
    );
    check(
        &s.eval(ALICE, "orders:PutOrder", ORDER),
        "ExplicitDeny explicit_deny identity",
        &["identity identity[0] Statement[1]"],
    );
}

#[test]
fn not_resource_matches_every_resource_not_listed() {
    let s = setup().identity(&format!(
        r#"{ALLOW_ORDERS},{{"Effect":"Deny","Action":"orders:*","NotResource":"arn:aws:orders:*:*:order/public-*"}}"#
    ));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny identity",
        &["identity identity[0] Statement[1]"],
    );
    check(
        &s.eval(
            ALICE,
            "orders:GetOrder",
            "arn:aws:orders:us-east-1:111111111111:order/public-7",
        ),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
    let allow = setup().identity(
        r#"{"Effect":"Allow","Action":"orders:*","NotResource":"arn:aws:orders:*:*:order/secret-*"}"#,
    );
    check(
        &allow.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Statement[0]"],
    );
    check(
        &allow.eval(
            ALICE,
            "orders:GetOrder",
            "arn:aws:orders:us-east-1:111111111111:order/secret-1",
        ),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn unresolvable_variable_in_not_resource_makes_not_resource_match() {
    // §2.2: the entry "does not match", so NotResource matches.
    let s = setup().identity(&format!(
        r#"{ALLOW_ORDERS},{{"Effect":"Deny","Action":"orders:*","NotResource":"arn:aws:orders:*:*:order/${{aws:username}}-*"}}"#
    ));
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny identity",
        &["identity identity[0] Statement[1]"],
    );
    check(
        &s.eval(
            ALICE,
            "orders:GetOrder",
            "arn:aws:orders:us-east-1:111111111111:order/alice-1",
        ),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
}

#[test]
fn resource_variables_resolve_from_the_request_context() {
    // §5: per-user prefix; a role session has no `aws:username`, so nothing matches.
    let s = setup().identity(
        r#"{"Effect":"Allow","Action":"files:GetFile","Resource":"arn:aws:files:::home/${aws:username}/*"}"#,
    );
    let own = "arn:aws:files:::home/alice/a.txt";
    let principal = Principal::from_arn(ALICE).unwrap();
    check(
        &s.eval_as(&principal, "files:GetFile", own, A),
        "Allow identity_allow -",
        &["identity identity[0] Statement[0]"],
    );
    check(
        &s.eval_as(
            &principal,
            "files:GetFile",
            "arn:aws:files:::home/bob/a.txt",
            A,
        ),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    let session = Principal::from_arn(SESSION).unwrap();
    check(
        &s.eval_as(&session, "files:GetFile", "arn:aws:files:::home//a.txt", A),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

// === Wildcard-only actions (§2.2) ===

#[test]
fn action_without_resource_level_permissions_needs_resource_star() {
    let specific = setup().identity(
        r#"{"Effect":"Allow","Action":"orders:ListOrders","Resource":"arn:aws:orders:us-east-1:111111111111:*"}"#,
    );
    check(
        &specific.eval(ALICE, "orders:ListOrders", "*"),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    let all_arns = setup()
        .identity(r#"{"Effect":"Allow","Action":"orders:ListOrders","Resource":"arn:*:*:*:*:*"}"#);
    check(
        &all_arns.eval(ALICE, "orders:ListOrders", "*"),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    let star = setup().identity(
        r#"{"Effect":"Allow","Action":"orders:ListOrders","Resource":["arn:aws:orders:::x","*"]}"#,
    );
    check(
        &star.eval(ALICE, "orders:ListOrders", "*"),
        "Allow identity_allow -",
        &["identity identity[0] Statement[0]"],
    );
}

// === Organization policies (§3.2, §3.7 example 6) ===

#[test]
fn scp_every_level_must_allow() {
    // Worked example 6: root and account allow everything, the OU only `s3:*`.
    let s = setup()
        .identity(r#"{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*"}"#)
        .scp_level(&[ALLOW_ALL])
        .scp_level(&[r#"{"Sid":"S3","Effect":"Allow","Action":"s3:*","Resource":"*"}"#])
        .scp_level(&[ALLOW_ALL]);
    check(
        &s.eval(ALICE, "ec2:RunInstances", "*"),
        "ImplicitDeny scp_no_allow scp",
        &[],
    );
    let ok = setup()
        .identity(r#"{"Sid":"Run","Effect":"Allow","Action":"ec2:RunInstances","Resource":"*"}"#)
        .scp_level(&[ALLOW_ALL])
        .scp_level(&[r#"{"Sid":"Ec2","Effect":"Allow","Action":"ec2:*","Resource":"*"}"#])
        .scp_level(&[ALLOW_ALL]);
    check(
        &ok.eval(ALICE, "ec2:RunInstances", "*"),
        "Allow identity_allow -",
        &[
            "scp level 0 scp[0][0] Sid All",
            "scp level 1 scp[1][0] Sid Ec2",
            "scp level 2 scp[2][0] Sid All",
            "identity identity[0] Sid Run",
        ],
    );
}

#[test]
fn scp_allows_are_not_unioned_across_levels() {
    let s = setup()
        .identity(ALLOW_ALL)
        .scp_level(&[r#"{"Effect":"Allow","Action":"orders:*","Resource":"*"}"#])
        .scp_level(&[r#"{"Effect":"Allow","Action":"files:*","Resource":"*"}"#]);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny scp_no_allow scp",
        &[],
    );
}

#[test]
fn scp_level_with_no_policy_denies() {
    let s = setup()
        .identity(ALLOW_ORDERS)
        .scp_level(&[ALLOW_ALL])
        .scp_level(&[]);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny scp_no_allow scp",
        &[],
    );
}

#[test]
fn scp_deny_at_any_level_is_explicit() {
    let s = setup()
        .identity(ALLOW_ORDERS)
        .scp_level(&[ALLOW_ALL])
        .scp_level(&[ALLOW_ALL, DENY_ORDERS]);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny scp",
        &["scp level 1 scp[1][1] Sid NoOrders"],
    );
}

#[test]
fn scp_never_grants() {
    let s = setup().scp_level(&[ALLOW_ALL]);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn no_scp_levels_means_no_organization_gate() {
    check(
        &setup()
            .identity(ALLOW_ORDERS)
            .eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
}

#[test]
fn scp_with_conditions_gates_by_context() {
    let s = setup()
        .identity(ALLOW_ORDERS)
        .scp_level(&[r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}"#]);
    check(
        &s.clone().context("aws:RequestedRegion", "us-east-1").eval(
            ALICE,
            "orders:GetOrder",
            ORDER,
        ),
        "Allow identity_allow -",
        &[
            "scp level 0 scp[0][0] Statement[0]",
            "identity identity[0] Sid Orders",
        ],
    );
    check(
        &s.context("aws:RequestedRegion", "eu-west-1")
            .eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny scp_no_allow scp",
        &[],
    );
}

#[test]
fn rcp_deny_is_explicit_and_rcps_never_need_an_allow() {
    // The full-access RCP is implied at every level: a level of deny-only RCPs that do not
    // apply leaves the request alone.
    let rcp = r#"{"Sid":"NoPut","Effect":"Deny","Principal":"*","Action":"orders:PutOrder","Resource":"*"}"#;
    let s = setup()
        .identity(ALLOW_ORDERS)
        .rcp_level(&[rcp])
        .rcp_level(&[]);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
    check(
        &s.eval(ALICE, "orders:PutOrder", ORDER),
        "ExplicitDeny explicit_deny rcp",
        &["rcp level 0 rcp[0][0] Sid NoPut"],
    );
}

#[test]
fn rcp_applies_to_callers_from_other_accounts() {
    let rcp = r#"{"Sid":"External","Effect":"Deny","Principal":"*","Action":"orders:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"111111111111"}}}"#;
    let s = setup()
        .identity(ALLOW_ORDERS)
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{B}"}}"#)))
        .rcp_level(&[rcp]);
    check(
        &s.eval(BOB_B, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny rcp",
        &["rcp level 0 rcp[0][0] Sid External"],
    );
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
}

// === Resource-based policies, same account (§3.3 step 5a, §3.4) ===

#[test]
fn resource_policy_naming_the_user_grants_without_identity_policy() {
    let s = setup().resource(&rbp_allow(&format!(r#"{{"AWS":"{ALICE}"}}"#)));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
    // Another user of the account is not named.
    check(
        &s.eval(
            "arn:aws:iam::111111111111:user/carol",
            "orders:GetOrder",
            ORDER,
        ),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn resource_policy_naming_the_role_grants_its_sessions() {
    let s = setup().resource(&rbp_allow(&format!(r#"{{"AWS":"{ROLE}"}}"#)));
    for session in [SESSION, OTHER_SESSION] {
        check(
            &s.eval(session, "orders:GetOrder", ORDER),
            "Allow resource_policy_role -",
            &["resource resource Sid Grant"],
        );
    }
    check(
        &s.eval(
            "arn:aws:sts::111111111111:assumed-role/other/s1",
            "orders:GetOrder",
            ORDER,
        ),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn resource_policy_naming_a_session_grants_only_that_session() {
    let s = setup().resource(&rbp_allow(&format!(r#"{{"AWS":"{SESSION}"}}"#)));
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
    check(
        &s.eval(OTHER_SESSION, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn resource_policy_naming_the_account_only_delegates() {
    // Worked example 4, with the account written both ways.
    for principal in [
        format!(r#"{{"AWS":"{A}"}}"#),
        format!(r#"{{"AWS":"{ROOT}"}}"#),
    ] {
        let s = setup().resource(&rbp_allow(&principal));
        check(
            &s.eval(ALICE, "orders:GetOrder", ORDER),
            "ImplicitDeny no_identity_allow identity",
            &[],
        );
        check(
            &s.clone()
                .identity(ALLOW_ORDERS)
                .eval(ALICE, "orders:GetOrder", ORDER),
            "Allow identity_allow -",
            &["identity identity[0] Sid Orders"],
        );
    }
}

#[test]
fn resource_policy_naming_everyone_grants_every_caller() {
    let s = setup().resource(&rbp_allow(r#""*""#));
    for caller in [ALICE, SESSION, FED_ALICE, BOB_B] {
        let outcome = s.eval(caller, "orders:GetOrder", ORDER);
        if caller == BOB_B {
            // Cross-account: the principal's own account must allow too (§3.5).
            check(
                &outcome,
                "ImplicitDeny cross_account_no_identity_allow identity",
                &[],
            );
        } else {
            check(
                &outcome,
                "Allow resource_policy_direct -",
                &["resource resource Sid Grant"],
            );
        }
    }
    let aws_star = setup().resource(&rbp_allow(r#"{"AWS":"*"}"#));
    check(
        &aws_star.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn resource_policy_statement_must_match_action_and_resource() {
    let s = setup().resource(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"orders:GetOrder","Resource":"arn:aws:orders:us-east-1:111111111111:order/2"}}"#
    ));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    check(
        &s.eval(
            ALICE,
            "orders:PutOrder",
            "arn:aws:orders:us-east-1:111111111111:order/2",
        ),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn resource_policy_without_resource_covers_its_resource() {
    let s = setup().resource(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"orders:GetOrder"}}"#
    ));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Statement[0]"],
    );
}

#[test]
fn the_most_direct_resource_policy_grant_decides() {
    // An account grant and a user grant both apply: the user grant is not capped.
    let s = setup()
        .resource(&format!(
            r#"{{"Sid":"Account","Effect":"Allow","Principal":{{"AWS":"{A}"}},"Action":"orders:*","Resource":"*"}},{}"#,
            rbp_allow(&format!(r#"{{"AWS":"{ALICE}"}}"#))
        ))
        .boundary(r#"{"Effect":"Allow","Action":"files:*","Resource":"*"}"#);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

// === Permissions boundaries (§3.4, §3.7 examples 2 and 3) ===

const BOUNDARY_FILES: &str =
    r#"{"Sid":"FilesOnly","Effect":"Allow","Action":"files:*","Resource":"*"}"#;

#[test]
fn boundary_caps_identity_policies() {
    let s = setup().identity(ALLOW_ALL).boundary(BOUNDARY_FILES);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny boundary_no_allow boundary",
        &[],
    );
    check(
        &s.eval(ALICE, "files:GetFile", "arn:aws:files:::f"),
        "Allow identity_allow -",
        &[
            "identity identity[0] Sid All",
            "boundary boundary Sid FilesOnly",
        ],
    );
}

#[test]
fn boundary_never_grants() {
    let s = setup().boundary(ALLOW_ALL);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn worked_example_2_user_arn_grant_is_not_capped_by_the_boundary() {
    let s = setup()
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{ALICE}"}}"#)))
        .boundary(r#"{"Effect":"Allow","Action":"ec2:*","Resource":"*"}"#);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn worked_example_3_role_arn_grant_is_capped_but_session_arn_grant_is_not() {
    let boundary = r#"{"Effect":"Allow","Action":"ec2:*","Resource":"*"}"#;
    let role = setup()
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{ROLE}"}}"#)))
        .boundary(boundary);
    check(
        &role.eval(SESSION, "orders:GetOrder", ORDER),
        "ImplicitDeny boundary_no_allow boundary",
        &[],
    );
    let session = setup()
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{SESSION}"}}"#)))
        .boundary(boundary);
    check(
        &session.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn role_arn_grant_within_the_boundary_needs_no_identity_allow() {
    let s = setup()
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{ROLE}"}}"#)))
        .boundary(ALLOW_ORDERS);
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow resource_policy_role -",
        &[
            "resource resource Sid Grant",
            "boundary boundary Sid Orders",
        ],
    );
}

#[test]
fn wildcard_grant_is_not_capped_by_boundary_or_session_policy() {
    let s = setup()
        .resource(&rbp_allow(r#""*""#))
        .boundary(BOUNDARY_FILES)
        .session(BOUNDARY_FILES);
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn account_grant_is_capped_by_the_boundary() {
    let s = setup()
        .identity(ALLOW_ORDERS)
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{A}"}}"#)))
        .boundary(BOUNDARY_FILES);
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny boundary_no_allow boundary",
        &[],
    );
}

// === Session policies (§3.4, §7.4) ===

#[test]
fn session_policy_caps_identity_policies() {
    let s = setup().identity(ALLOW_ALL).session(BOUNDARY_FILES);
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "ImplicitDeny session_policy_no_allow session",
        &[],
    );
    check(
        &s.eval(SESSION, "files:GetFile", "arn:aws:files:::f"),
        "Allow identity_allow -",
        &[
            "identity identity[0] Sid All",
            "session session Sid FilesOnly",
        ],
    );
}

#[test]
fn session_policy_never_grants() {
    check(
        &setup()
            .session(ALLOW_ALL)
            .eval(SESSION, "orders:GetOrder", ORDER),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn permissions_are_the_intersection_of_identity_boundary_and_session_policy() {
    let s = setup()
        .identity(r#"{"Sid":"I","Effect":"Allow","Action":["orders:*","files:*"],"Resource":"*"}"#)
        .boundary(r#"{"Sid":"B","Effect":"Allow","Action":["orders:*","db:*"],"Resource":"*"}"#)
        .session(r#"{"Sid":"S","Effect":"Allow","Action":["orders:Get*","files:*","db:*"],"Resource":"*"}"#);
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &[
            "identity identity[0] Sid I",
            "boundary boundary Sid B",
            "session session Sid S",
        ],
    );
    check(
        &s.eval(SESSION, "orders:PutOrder", ORDER),
        "ImplicitDeny session_policy_no_allow session",
        &[],
    );
    check(
        &s.eval(SESSION, "files:GetFile", "arn:aws:files:::f"),
        "ImplicitDeny boundary_no_allow boundary",
        &[],
    );
    check(
        &s.eval(SESSION, "db:Query", "arn:aws:db:::t"),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
}

#[test]
fn role_arn_grant_is_capped_by_the_session_policy_but_session_arn_grant_is_not() {
    let role = setup()
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{ROLE}"}}"#)))
        .session(BOUNDARY_FILES);
    check(
        &role.eval(SESSION, "orders:GetOrder", ORDER),
        "ImplicitDeny session_policy_no_allow session",
        &[],
    );
    let session = setup()
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{SESSION}"}}"#)))
        .session(BOUNDARY_FILES);
    check(
        &session.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn federated_user_session_without_session_policy_has_no_identity_permissions() {
    let s = setup().identity(ALLOW_ORDERS);
    check(
        &s.eval(FED_ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny federated_session_no_policy session",
        &[],
    );
    check(
        &s.clone()
            .session(ALLOW_ORDERS)
            .eval(FED_ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &[
            "identity identity[0] Sid Orders",
            "session session Sid Orders",
        ],
    );
}

#[test]
fn federated_session_arn_grant_is_direct() {
    let s = setup().resource(&rbp_allow(&format!(r#"{{"AWS":"{FED_ALICE}"}}"#)));
    check(
        &s.eval(FED_ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn parent_user_grant_reaches_its_federated_session_within_the_session_policy() {
    let s = setup().resource(&rbp_allow(&format!(r#"{{"AWS":"{ALICE}"}}"#)));
    check(
        &s.clone()
            .session(ALLOW_ORDERS)
            .eval(FED_ALICE, "orders:GetOrder", ORDER),
        "Allow resource_policy_role -",
        &["resource resource Sid Grant", "session session Sid Orders"],
    );
    check(
        &s.session(BOUNDARY_FILES)
            .eval(FED_ALICE, "orders:GetOrder", ORDER),
        "ImplicitDeny session_policy_no_allow session",
        &[],
    );
}

// === Cross account (§3.5, §3.7 example 5) ===

#[test]
fn worked_example_5_cross_account_needs_both_sides() {
    let grant = rbp_allow(&format!(r#"{{"AWS":"{B}"}}"#));
    let both = setup().identity(ALLOW_ORDERS).resource(&grant);
    check(
        &both.eval(BOB_B, "orders:GetOrder", ORDER),
        "Allow cross_account_allow -",
        &[
            "identity identity[0] Sid Orders",
            "resource resource Sid Grant",
        ],
    );
    check(
        &setup()
            .resource(&grant)
            .eval(BOB_B, "orders:GetOrder", ORDER),
        "ImplicitDeny cross_account_no_identity_allow identity",
        &[],
    );
    check(
        &setup()
            .identity(ALLOW_ORDERS)
            .eval(BOB_B, "orders:GetOrder", ORDER),
        "ImplicitDeny cross_account_no_resource_allow resource",
        &[],
    );
}

#[test]
fn cross_account_direct_grant_still_needs_the_identity_allow() {
    let grant = rbp_allow(&format!(r#"{{"AWS":"{BOB_B}"}}"#));
    check(
        &setup()
            .resource(&grant)
            .eval(BOB_B, "orders:GetOrder", ORDER),
        "ImplicitDeny cross_account_no_identity_allow identity",
        &[],
    );
    check(
        &setup()
            .identity(ALLOW_ORDERS)
            .resource(&grant)
            .eval(BOB_B, "orders:GetOrder", ORDER),
        "Allow cross_account_allow -",
        &[
            "identity identity[0] Sid Orders",
            "resource resource Sid Grant",
        ],
    );
}

#[test]
fn cross_account_grant_to_a_role_or_session_reaches_the_session() {
    let session_b = "arn:aws:sts::222222222222:assumed-role/ops/s9";
    for principal in [
        r#"{"AWS":"arn:aws:iam::222222222222:role/ops"}"#,
        r#"{"AWS":"arn:aws:sts::222222222222:assumed-role/ops/s9"}"#,
    ] {
        let s = setup()
            .identity(ALLOW_ORDERS)
            .resource(&rbp_allow(principal));
        check(
            &s.eval(session_b, "orders:GetOrder", ORDER),
            "Allow cross_account_allow -",
            &[
                "identity identity[0] Sid Orders",
                "resource resource Sid Grant",
            ],
        );
        check(
            &s.eval(
                "arn:aws:sts::222222222222:assumed-role/dev/s9",
                "orders:GetOrder",
                ORDER,
            ),
            "ImplicitDeny cross_account_no_resource_allow resource",
            &[],
        );
    }
}

#[test]
fn cross_account_principal_side_is_capped_by_boundary_and_scps() {
    let base = setup()
        .identity(ALLOW_ORDERS)
        .resource(&rbp_allow(&format!(r#"{{"AWS":"{B}"}}"#)));
    check(
        &base
            .clone()
            .boundary(BOUNDARY_FILES)
            .eval(BOB_B, "orders:GetOrder", ORDER),
        "ImplicitDeny boundary_no_allow boundary",
        &[],
    );
    check(
        &base
            .scp_level(&[BOUNDARY_FILES])
            .eval(BOB_B, "orders:GetOrder", ORDER),
        "ImplicitDeny scp_no_allow scp",
        &[],
    );
}

#[test]
fn account_grant_to_another_account_does_not_reach_this_one() {
    let s = setup()
        .identity(ALLOW_ORDERS)
        .resource(&rbp_allow(r#"{"AWS":"333333333333"}"#));
    check(
        &s.eval(BOB_B, "orders:GetOrder", ORDER),
        "ImplicitDeny cross_account_no_resource_allow resource",
        &[],
    );
}

#[test]
fn same_account_is_decided_by_the_resource_account() {
    // The resource's ARN names account A, but the request says B owns it.
    let s = setup().identity(ALLOW_ORDERS);
    check(
        &s.eval_as(
            &Principal::from_arn(ALICE).unwrap(),
            "orders:GetOrder",
            ORDER,
            B,
        ),
        "ImplicitDeny cross_account_no_resource_allow resource",
        &[],
    );
}

#[test]
fn cross_account_deny_on_either_side_wins() {
    let base = setup()
        .identity(ALLOW_ORDERS)
        .resource(&format!(
            r#"{},{{"Sid":"NoBob","Effect":"Deny","Principal":{{"AWS":"{BOB_B}"}},"Action":"*","Resource":"*"}}"#,
            rbp_allow(&format!(r#"{{"AWS":"{B}"}}"#))
        ));
    check(
        &base.eval(BOB_B, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny resource",
        &["resource resource Sid NoBob"],
    );
}

// === NotPrincipal (§2.3) ===

#[test]
fn not_principal_deny_applies_to_every_caller_not_listed() {
    // §1.4: Alice is exempt when she and her account are listed.
    let s = setup().identity(ALLOW_ORDERS).resource(&format!(
        r#"{{"Sid":"OnlyAlice","Effect":"Deny","NotPrincipal":{{"AWS":["{ALICE}","{A}"]}},"Action":"orders:*","Resource":"*"}}"#
    ));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
    check(
        &s.eval(
            "arn:aws:iam::111111111111:user/carol",
            "orders:GetOrder",
            ORDER,
        ),
        "ExplicitDeny explicit_deny resource",
        &["resource resource Sid OnlyAlice"],
    );
}

#[test]
fn not_principal_listing_only_a_session_denies_it_through_its_role_and_account() {
    // §1.4: exempting a session needs the session, role and account ARNs; the role alone
    // exempts none of its sessions, the account alone none of its principals.
    let deny = |listed: &[&str]| {
        let listed: Vec<String> = listed.iter().map(|e| format!(r#""{e}""#)).collect();
        setup().identity(ALLOW_ORDERS).resource(&format!(
            r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":[{}]}},"Action":"orders:*","Resource":"*"}}"#,
            listed.join(",")
        ))
    };
    for listed in [
        &[SESSION][..],
        &[ROLE],
        &[A],
        &[SESSION, ROLE],
        &[SESSION, A],
        &[ROLE, A],
    ] {
        check(
            &deny(listed).eval(SESSION, "orders:GetOrder", ORDER),
            "ExplicitDeny explicit_deny resource",
            &["resource resource Statement[0]"],
        );
    }
    let all = deny(&[SESSION, ROLE, A]);
    check(
        &all.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
    check(
        &all.eval(OTHER_SESSION, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny resource",
        &["resource resource Statement[0]"],
    );
}

#[test]
fn not_principal_deny_always_applies_to_a_caller_with_a_boundary() {
    // The documented quirk (§2.3): whatever NotPrincipal lists.
    let s = setup()
        .identity(ALLOW_ORDERS)
        .resource(&format!(
            r#"{{"Sid":"Quirk","Effect":"Deny","NotPrincipal":{{"AWS":["{ALICE}","{A}"]}},"Action":"orders:*","Resource":"*"}}"#
        ));
    check(
        &s.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
    check(
        &s.boundary(ALLOW_ALL).eval(ALICE, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny resource",
        &["resource resource Sid Quirk"],
    );
}

// === Special callers (§3.3 step 4, §3.6) ===

#[test]
fn get_caller_identity_needs_no_permission_and_cannot_be_denied() {
    let s = setup()
        .identity(r#"{"Effect":"Deny","Action":"*","Resource":"*"}"#)
        .scp_level(&[]);
    for action in ["sts:GetCallerIdentity", "STS:getcalleridentity"] {
        check(&s.eval(ALICE, action, "*"), "Allow caller_identity -", &[]);
    }
    check(
        &s.eval(FED_ALICE, "sts:GetCallerIdentity", "*"),
        "Allow caller_identity -",
        &[],
    );
    // An anonymous caller is not authenticated: nothing to report.
    check(
        &setup().eval_as(&anonymous(), "sts:GetCallerIdentity", "*", A),
        "ImplicitDeny no_resource_allow resource",
        &[],
    );
}

#[test]
fn root_user_has_full_access_in_its_own_account() {
    check(
        &setup().eval(ROOT, "orders:GetOrder", ORDER),
        "Allow root_user -",
        &[],
    );
}

#[test]
fn root_user_is_still_bound_by_explicit_denies_and_scps() {
    let deny = setup()
        .resource(r#"{"Sid":"NoOne","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}"#);
    check(
        &deny.eval(ROOT, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny resource",
        &["resource resource Sid NoOne"],
    );
    check(
        &setup()
            .scp_level(&[BOUNDARY_FILES])
            .eval(ROOT, "orders:GetOrder", ORDER),
        "ImplicitDeny scp_no_allow scp",
        &[],
    );
}

#[test]
fn root_user_of_another_account_needs_the_resource_policy() {
    check(
        &setup().eval(ROOT_B, "orders:GetOrder", ORDER),
        "ImplicitDeny cross_account_no_resource_allow resource",
        &[],
    );
    let s = setup().resource(&rbp_allow(&format!(r#"{{"AWS":"{B}"}}"#)));
    check(
        &s.eval(ROOT_B, "orders:GetOrder", ORDER),
        "Allow cross_account_allow -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn kms_key_policy_must_allow_even_the_root_user() {
    // §3.6: nobody has access unless the key policy allows it.
    let key = "arn:aws:kms:us-east-1:111111111111:key/k1";
    let root = Principal::from_arn(ROOT).unwrap();
    check(
        &setup().eval_as(&root, "kms:Decrypt", key, A),
        "ImplicitDeny resource_policy_required resource",
        &[],
    );
    let key_policy = setup().resource(&format!(
        r#"{{"Sid":"EnableIam","Effect":"Allow","Principal":{{"AWS":"{ROOT}"}},"Action":"kms:*","Resource":"*"}}"#
    ));
    check(
        &key_policy.eval_as(&root, "kms:Decrypt", key, A),
        "Allow identity_allow -",
        &["resource resource Sid EnableIam"],
    );
    // An IAM user needs the identity allow and the key policy's account statement.
    check(
        &key_policy.eval(ALICE, "kms:Decrypt", key),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    let kms = r#"{"Sid":"Kms","Effect":"Allow","Action":"kms:*","Resource":"*"}"#;
    check(
        &key_policy
            .clone()
            .identity(kms)
            .eval(ALICE, "kms:Decrypt", key),
        "Allow identity_allow -",
        &[
            "identity identity[0] Sid Kms",
            "resource resource Sid EnableIam",
        ],
    );
    check(
        &setup().identity(kms).eval(ALICE, "kms:Decrypt", key),
        "ImplicitDeny resource_policy_required resource",
        &[],
    );
}

#[test]
fn role_trust_policy_must_trust_the_caller_even_in_the_same_account() {
    // §3.6: naming the account needs the caller's identity allow; naming the caller does not.
    let assume = r#"{"Sid":"Assume","Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#;
    check(
        &setup().identity(assume).eval(ALICE, "sts:AssumeRole", ROLE),
        "ImplicitDeny resource_policy_required resource",
        &[],
    );
    let trust_account = setup().resource(&format!(
        r#"{{"Sid":"Trust","Effect":"Allow","Principal":{{"AWS":"{A}"}},"Action":"sts:AssumeRole"}}"#
    ));
    check(
        &trust_account.eval(ALICE, "sts:AssumeRole", ROLE),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    check(
        &trust_account
            .identity(assume)
            .eval(ALICE, "sts:AssumeRole", ROLE),
        "Allow identity_allow -",
        &[
            "identity identity[0] Sid Assume",
            "resource resource Sid Trust",
        ],
    );
    let trust_alice = setup().resource(&format!(
        r#"{{"Sid":"Trust","Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"sts:AssumeRole"}}"#
    ));
    check(
        &trust_alice.eval(ALICE, "sts:AssumeRole", ROLE),
        "Allow resource_policy_direct -",
        &["resource resource Sid Trust"],
    );
}

#[test]
fn anonymous_callers_need_a_wildcard_resource_policy_grant() {
    let anon = anonymous();
    check(
        &setup()
            .identity(ALLOW_ALL)
            .eval_as(&anon, "orders:GetOrder", ORDER, A),
        "ImplicitDeny no_resource_allow resource",
        &[],
    );
    check(
        &setup()
            .resource(&rbp_allow(r#""*""#))
            .eval_as(&anon, "orders:GetOrder", ORDER, A),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
    check(
        &setup()
            .resource(&rbp_allow(&format!(r#"{{"AWS":"{A}"}}"#)))
            .eval_as(&anon, "orders:GetOrder", ORDER, A),
        "ImplicitDeny no_resource_allow resource",
        &[],
    );
}

#[test]
fn anonymous_callers_are_bound_by_rcps_and_negated_conditions() {
    let anon = anonymous();
    let public = setup().resource(&rbp_allow(r#""*""#));
    check(
        &public
            .clone()
            .rcp_level(&[r#"{"Sid":"OrgOnly","Effect":"Deny","Principal":"*","Action":"orders:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-123"}}}"#])
            .eval_as(&anon, "orders:GetOrder", ORDER, A),
        "ExplicitDeny explicit_deny rcp",
        &["rcp level 0 rcp[0][0] Sid OrgOnly"],
    );
    // SCPs govern the caller's account; an anonymous caller has none (the caller's
    // gatherer passes no levels), so only the resource side decides.
    check(
        &public.eval_as(&anon, "orders:GetOrder", ORDER, A),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
}

#[test]
fn service_callers_need_a_resource_policy_grant_naming_the_service() {
    let ec2 = service("ec2.amazonaws.com");
    let grant = setup().resource(&rbp_allow(r#"{"Service":"ec2.amazonaws.com"}"#));
    check(
        &grant.eval_as(&ec2, "orders:GetOrder", ORDER, A),
        "Allow resource_policy_direct -",
        &["resource resource Sid Grant"],
    );
    check(
        &grant.eval_as(
            &service("lambda.amazonaws.com"),
            "orders:GetOrder",
            ORDER,
            A,
        ),
        "ImplicitDeny no_resource_allow resource",
        &[],
    );
    check(
        &setup()
            .identity(ALLOW_ALL)
            .resource(&rbp_allow(&format!(r#"{{"AWS":"{A}"}}"#)))
            .eval_as(&ec2, "orders:GetOrder", ORDER, A),
        "ImplicitDeny no_resource_allow resource",
        &[],
    );
}

#[test]
fn web_identity_callers_need_a_trust_policy_naming_their_provider() {
    let google = caller(
        PrincipalKind::WebIdentity {
            provider: "accounts.google.com".into(),
        },
        "accounts.google.com",
        "",
    );
    let trust = setup().resource(
        r#"{"Sid":"Google","Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"app-1"}}}"#,
    );
    check(
        &trust
            .clone()
            .context("accounts.google.com:aud", "app-1")
            .eval_as(&google, "sts:AssumeRoleWithWebIdentity", ROLE, A),
        "Allow resource_policy_direct -",
        &["resource resource Sid Google"],
    );
    check(
        &trust.context("accounts.google.com:aud", "app-2").eval_as(
            &google,
            "sts:AssumeRoleWithWebIdentity",
            ROLE,
            A,
        ),
        "ImplicitDeny no_resource_allow resource",
        &[],
    );
}

// === Conditions in the flow (§4) ===

#[test]
fn if_exists_guard_denies_long_term_keys_while_plain_bool_lets_them_through() {
    // §6 `aws:MultiFactorAuthPresent`: absent for long-term access keys.
    let if_exists = setup().identity(&format!(
        r#"{ALLOW_ORDERS},{{"Sid":"Mfa","Effect":"Deny","Action":"*","Resource":"*","Condition":{{"BoolIfExists":{{"aws:MultiFactorAuthPresent":"false"}}}}}}"#
    ));
    check(
        &if_exists.eval(ALICE, "orders:GetOrder", ORDER),
        "ExplicitDeny explicit_deny identity",
        &["identity identity[0] Sid Mfa"],
    );
    check(
        &if_exists
            .clone()
            .context("aws:MultiFactorAuthPresent", "true")
            .eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
    let plain = setup().identity(&format!(
        r#"{ALLOW_ORDERS},{{"Sid":"Mfa","Effect":"Deny","Action":"*","Resource":"*","Condition":{{"Bool":{{"aws:MultiFactorAuthPresent":"false"}}}}}}"#
    ));
    check(
        &plain.eval(ALICE, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Orders"],
    );
}

#[test]
fn principal_context_keys_are_derived_from_the_caller() {
    // §6: `aws:PrincipalArn` of a role session is the role ARN; `aws:username` is absent.
    let s = setup().identity(&format!(
        r#"{{"Sid":"Role","Effect":"Allow","Action":"orders:*","Resource":"*","Condition":{{"ArnEquals":{{"aws:PrincipalArn":"{ROLE}"}}}}}},{{"Sid":"User","Effect":"Allow","Action":"files:*","Resource":"*","Condition":{{"StringEquals":{{"aws:username":"alice"}}}}}}"#
    ));
    check(
        &s.eval(SESSION, "orders:GetOrder", ORDER),
        "Allow identity_allow -",
        &["identity identity[0] Sid Role"],
    );
    check(
        &s.eval(SESSION, "files:GetFile", "arn:aws:files:::f"),
        "ImplicitDeny no_identity_allow identity",
        &[],
    );
    check(
        &s.eval(ALICE, "files:GetFile", "arn:aws:files:::f"),
        "Allow identity_allow -",
        &["identity identity[0] Sid User"],
    );
}

// === Fail closed ===

#[test]
fn a_statement_the_index_cannot_find_denies_the_request() {
    // An RCP level only denies (the full-access RCP is implied): skipping its lost deny
    // would allow.
    let rcp_deny =
        r#"{"Effect":"Deny","Principal":"*","Action":"orders:DeleteOrder","Resource":"*"}"#;
    let identity_allow = r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#;
    let principal = Principal::from_arn(ALICE).unwrap();
    let ctx = Context::new();
    let delete = crate::request::Action::parse("orders:DeleteOrder").unwrap();
    let req = Request::new(&principal, &delete, ORDER, A, &ctx);
    let allow = PolicySet::new(vec![compile(PolicyKind::Identity, "id", identity_allow)]);
    // Small (scanned) and large (indexed) sets alike.
    for statements in [1, 8] {
        let padded = |first: &str| {
            std::iter::once(first)
                .chain(std::iter::repeat_n(
                    r#"{"Effect":"Deny","Principal":"*","Action":"x:y","Resource":"*"}"#,
                    statements - 1,
                ))
                .collect::<Vec<_>>()
                .join(",")
        };
        let rcp = PolicySet::new(vec![compile(PolicyKind::Rcp, "rcp", &padded(rcp_deny))]);
        let intact = [Arc::new(rcp.clone())];
        let lost = [Arc::new(rcp.with_statements_lost())];
        let policies = Policies {
            identity: &allow,
            resource: &[],
            boundary: None,
            session: None,
            scps: &[],
            rcps: &intact,
            resource_policy_required: false,
        };
        check(
            &evaluate(&req, &policies),
            "ExplicitDeny explicit_deny rcp",
            &["rcp level 0 rcp Statement[0]"],
        );
        let policies = Policies {
            rcps: &lost,
            ..policies
        };
        check(
            &evaluate(&req, &policies),
            "ImplicitDeny internal_error rcp",
            &[],
        );
        let narrower = r#"{"Effect":"Allow","Action":"orders:*","Resource":"*"}"#;
        let identity = PolicySet::new(vec![compile(PolicyKind::Identity, "id", narrower)]);
        let policies = Policies {
            identity: &identity.with_statements_lost(),
            rcps: &[],
            ..policies
        };
        check(
            &evaluate(&req, &policies),
            "ImplicitDeny internal_error identity",
            &[],
        );
    }
}

// === Reason codes ===

#[test]
fn reason_codes_are_stable_snake_case_labels() {
    let mut seen = std::collections::HashSet::new();
    for r in Reason::all() {
        let s = r.as_str();
        assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        assert!(seen.insert(s), "{s} used twice");
        assert_eq!(r.to_string(), s);
    }
    assert_eq!(
        Outcome::unknown_principal().denied_by,
        Some(PolicyKind::Identity)
    );
    // The codes that are part of the API, pinned.
    for (r, code) in [
        (Reason::ScpNoAllow, "scp_no_allow"),
        (
            Reason::CrossAccountNoResourceAllow,
            "cross_account_no_resource_allow",
        ),
        (Reason::UnknownPrincipal, "unknown_principal"),
        (Reason::InternalError, "internal_error"),
    ] {
        assert_eq!(r.as_str(), code);
    }
}

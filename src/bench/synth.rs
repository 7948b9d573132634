//! Synthetic organizations for benchmarks: a bundle with a chosen number of statements spread
//! over accounts, customer managed policies, groups, users and roles of several services, and
//! requests against it with a realistic mix of decisions. The model is kept beside the files so
//! that another engine (the Cedar comparison in `benches/authorize.rs`) can be given the same
//! policies.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use crate::context::{Context, ContextValue};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Statements in the bundle, all of them: identity policies (customer managed and inline)
    /// and the roles' trust policies.
    pub statements: usize,
    pub requests: usize,
    pub seed: u64,
}

/// A synthetic service: a resource noun and the catalog's usual verbs around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthService {
    pub prefix: &'static str,
    /// The resource type (`order`), also the first segment of a resource's name.
    pub noun: &'static str,
    /// Action names as the catalog spells them, with their access level.
    pub actions: Vec<(String, &'static str)>,
}

/// The services every synthetic organization has, by prefix and resource noun.
const SERVICES: &[(&str, &str)] = &[
    ("orders", "order"),
    ("billing", "invoice"),
    ("inventory", "item"),
    ("reports", "report"),
    ("media", "asset"),
    ("messaging", "queue"),
    ("search", "index"),
    ("ledger", "entry"),
    ("shipping", "shipment"),
    ("analytics", "dataset"),
];

/// The region of every synthetic resource.
pub const REGION: &str = "us-east-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthEffect {
    Allow,
    Deny,
}

/// The condition operators the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SynthOperator {
    StringEquals,
    StringLike,
    NumericLessThan,
    IpAddress,
    Bool,
}

impl SynthOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            SynthOperator::StringEquals => "StringEquals",
            SynthOperator::StringLike => "StringLike",
            SynthOperator::NumericLessThan => "NumericLessThan",
            SynthOperator::IpAddress => "IpAddress",
            SynthOperator::Bool => "Bool",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthCondition {
    pub operator: SynthOperator,
    /// As written in the policy (`aws:PrincipalTag/team`).
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthStatement {
    pub effect: SynthEffect,
    /// `svc:Name`, `svc:Get*` or `svc:*`.
    pub actions: Vec<String>,
    /// An exact ARN, an ARN ending in `/*`, or `*`.
    pub resources: Vec<String>,
    /// Under different keys; all must hold.
    pub conditions: Vec<SynthCondition>,
}

/// Who holds a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A customer managed policy, by ARN; identities and groups attach it.
    Managed(String),
    /// An inline policy of the user, group or role with this ARN.
    User(String),
    Group(String),
    Role(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPolicy {
    pub holder: Holder,
    pub statements: Vec<SynthStatement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    User,
    Role,
}

/// A user or a role: the principals of the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthIdentity {
    pub kind: IdentityKind,
    pub account: String,
    pub name: String,
    pub arn: String,
    pub tags: Vec<(String, String)>,
    /// Group ARNs (users only).
    pub groups: Vec<String>,
    /// Attached customer managed policy ARNs.
    pub managed: Vec<String>,
    /// Indexes into [`Org::policies`] of the policies that apply: inline, attached and the
    /// groups'.
    pub effective: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthGroup {
    pub account: String,
    pub name: String,
    pub arn: String,
    pub managed: Vec<String>,
}

/// One request, as a caller sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthRequest {
    /// Index into [`Org::identities`].
    pub identity: usize,
    /// The user ARN, or a session ARN of the role.
    pub principal: String,
    pub action: String,
    /// An ARN, or `*` for an action without resource-level permissions.
    pub resource: String,
    /// Caller-supplied keys, single values, as written (`aws:SourceIp`).
    pub context: Vec<(String, String)>,
}

/// A generated organization: its bundle files and the model they were written from.
#[derive(Debug, Clone)]
pub struct Org {
    /// `relative path -> text`, for [`crate::bundle::load_files`].
    pub files: BTreeMap<String, String>,
    pub services: Vec<SynthService>,
    /// Every identity policy, managed and inline.
    pub policies: Vec<SynthPolicy>,
    pub groups: Vec<SynthGroup>,
    pub identities: Vec<SynthIdentity>,
    pub requests: Vec<SynthRequest>,
    /// Statements written, trust policies included: the spec's count.
    pub statements: usize,
}

impl Org {
    /// Statements of the identity policies (the total less the trust policies').
    pub fn identity_statements(&self) -> usize {
        self.policies.iter().map(|p| p.statements.len()).sum()
    }

    /// Every catalog action, as `prefix:Name`.
    pub fn catalog_actions(&self) -> impl Iterator<Item = String> + '_ {
        self.services.iter().flat_map(|s| {
            s.actions
                .iter()
                .map(move |(a, _)| format!("{}:{a}", s.prefix))
        })
    }
}

/// The tags a synthetic resource carries, a function of its ARN so that every request for it
/// agrees: `owner` (the team segment of its name) and `project`.
pub fn resource_tags(resource: &str) -> Vec<(String, String)> {
    let Some(name) = resource.splitn(6, ':').nth(5) else {
        return Vec::new();
    };
    let mut parts = name.split('/');
    let (Some(_noun), Some(team), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Vec::new();
    };
    let project = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31) ^ u32::from(b))
        % 8;
    vec![
        ("owner".to_owned(), team.to_owned()),
        ("project".to_owned(), format!("proj-{project}")),
    ]
}

/// Why a spec cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    #[error("an organization needs at least 1 statement")]
    NoStatements,
    #[error("{0} statements is more than the generator's limit of 10,000,000")]
    TooMany(usize),
}

/// Generates an organization. The same spec always yields the same organization.
pub fn generate(spec: Spec) -> Result<Org, SynthError> {
    if spec.statements == 0 {
        return Err(SynthError::NoStatements);
    }
    if spec.statements > 10_000_000 {
        return Err(SynthError::TooMany(spec.statements));
    }
    let mut g = Gen {
        rng: oorandom::Rand64::new(u128::from(spec.seed)),
        services: services(),
        policies: Vec::new(),
        groups: Vec::new(),
        identities: Vec::new(),
        accounts: Vec::new(),
        written: 0,
    };
    // Small organizations fit one account; larger ones spread over accounts of about 4,000
    // statements, as a company's teams spread over dev and prod accounts.
    let accounts = if spec.statements < 100 {
        1
    } else {
        (spec.statements / 4_000).clamp(2, 25)
    };
    for i in 0..accounts {
        let budget = spec.statements / accounts + usize::from(i < spec.statements % accounts);
        g.account(i, budget);
    }
    g.resolve_effective();
    let requests = (0..spec.requests).filter_map(|_| g.request()).collect();
    let files = g.files();
    Ok(Org {
        files,
        services: g.services,
        policies: g.policies,
        groups: g.groups,
        identities: g.identities,
        requests,
        statements: g.written,
    })
}

fn services() -> Vec<SynthService> {
    SERVICES
        .iter()
        .map(|&(prefix, noun)| {
            let n = capitalize(noun);
            let actions = [
                (format!("List{n}s"), "List"),
                (format!("Get{n}"), "Read"),
                (format!("Get{n}History"), "Read"),
                (format!("Describe{n}"), "Read"),
                (format!("Create{n}"), "Write"),
                (format!("Update{n}"), "Write"),
                (format!("Update{n}Status"), "Write"),
                (format!("Delete{n}"), "Write"),
                (format!("Tag{n}"), "Tagging"),
                (format!("Untag{n}"), "Tagging"),
                (format!("Get{n}Policy"), "Read"),
                (format!("Put{n}Policy"), "Permissions management"),
            ];
            SynthService {
                prefix,
                noun,
                actions: actions.into(),
            }
        })
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// One account of the organization as it is being generated.
#[derive(Debug, Clone)]
struct AccountGen {
    id: String,
    env: &'static str,
    /// Managed policy ARNs by team.
    managed: Vec<Vec<String>>,
    /// Group indexes (into `Gen::groups`) by team.
    groups: Vec<Vec<usize>>,
}

struct Gen {
    rng: oorandom::Rand64,
    services: Vec<SynthService>,
    policies: Vec<SynthPolicy>,
    groups: Vec<SynthGroup>,
    identities: Vec<SynthIdentity>,
    accounts: Vec<AccountGen>,
    written: usize,
}

/// The account that manages the organization: exempt from SCPs, holds no identity.
const MANAGEMENT_ACCOUNT: &str = "100000000000";
const ORG_ID: &str = "o-synth00001";

fn account_id(i: usize) -> String {
    format!("{:012}", 100_000_000_001 + i)
}

impl Gen {
    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        self.rng.rand_range(0..n.max(1) as u64) as usize
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.rng.rand_float() < p
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    #[expect(
        clippy::indexing_slicing,
        reason = "every caller passes a non-empty slice built in this module; `below` stays under its length"
    )]
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn service(&mut self) -> usize {
        self.below(self.services.len())
    }

    /// Generates one account's policies and identities, writing exactly `budget` statements.
    fn account(&mut self, index: usize, budget: usize) {
        let id = account_id(index);
        let teams = (budget / 200).max(1);
        let mut acct = AccountGen {
            id,
            env: if index.is_multiple_of(2) {
                "dev"
            } else {
                "prod"
            },
            managed: vec![Vec::new(); teams],
            groups: vec![Vec::new(); teams],
        };
        let mut left = budget;

        // Customer managed policies: about 45% of the statements, shared by many identities.
        let mut managed_left = budget * 45 / 100;
        let mut n = 0;
        while managed_left > 0 || (n == 0 && left >= 3) {
            let want = self.between(3, 8).min(managed_left.max(3));
            let count = take(want, &mut left);
            if count == 0 {
                break;
            }
            managed_left = managed_left.saturating_sub(count);
            let team = n % teams;
            let arn = format!(
                "arn:aws:iam::{}:policy/team-{team}-{}-{n}",
                acct.id,
                self.services
                    .get(n % self.services.len())
                    .map_or("any", |s| s.prefix)
            );
            let statements = (0..count)
                .map(|_| self.statement(&acct, team, Size::Managed))
                .collect();
            self.push_policy(Holder::Managed(arn.clone()), statements);
            if let Some(list) = acct.managed.get_mut(team) {
                list.push(arn);
            }
            n += 1;
        }

        // Groups: two per team, a little inline policy each and a few managed attachments.
        for team in 0..teams {
            for g in 0..2 {
                let name = format!(
                    "team-{team}-{}",
                    if g == 0 { "developers" } else { "operators" }
                );
                let arn = format!("arn:aws:iam::{}:group/teams/{name}", acct.id);
                let managed = self.attachments(&acct, team, 1, 3);
                let count = take(self.between(0, 2), &mut left);
                if count > 0 {
                    let statements = (0..count)
                        .map(|_| self.statement(&acct, team, Size::Inline))
                        .collect();
                    self.push_policy(Holder::Group(arn.clone()), statements);
                }
                if let Some(list) = acct.groups.get_mut(team) {
                    list.push(self.groups.len());
                }
                self.groups.push(SynthGroup {
                    account: acct.id.clone(),
                    name,
                    arn,
                    managed,
                });
            }
        }

        // Users and roles until the budget is spent.
        let mut serial = 0usize;
        while left > 0 {
            serial += 1;
            let team = self.below(teams);
            let tags = vec![
                ("team".to_owned(), format!("team-{team}")),
                ("env".to_owned(), acct.env.to_owned()),
            ];
            if left >= 2 && self.chance(0.4) {
                // A role: its trust policy is one statement, its inline policy at least one.
                let count = self.between(1, 5).min(left - 1);
                left -= count + 1;
                self.written += 1;
                let name = format!("svc-{team}-{serial}");
                let arn = format!("arn:aws:iam::{}:role/service/{name}", acct.id);
                let managed = self.attachments(&acct, team, 1, 3);
                let statements = (0..count)
                    .map(|_| self.statement(&acct, team, Size::Inline))
                    .collect();
                self.push_policy(Holder::Role(arn.clone()), statements);
                self.identities.push(SynthIdentity {
                    kind: IdentityKind::Role,
                    account: acct.id.clone(),
                    name,
                    arn,
                    tags,
                    groups: Vec::new(),
                    managed,
                    effective: Vec::new(),
                });
            } else {
                let want = if left == 1 { 1 } else { self.between(0, 3) };
                let count = take(want, &mut left);
                let name = format!("dev-{team}-{serial}");
                let arn = format!("arn:aws:iam::{}:user/engineering/{name}", acct.id);
                let mut groups = Vec::new();
                for _ in 0..self.between(1, 2) {
                    let pool = acct.groups.get(team).cloned().unwrap_or_default();
                    if pool.is_empty() {
                        break;
                    }
                    let gi = *self.pick(&pool);
                    if let Some(g) = self.groups.get(gi)
                        && !groups.contains(&g.arn)
                    {
                        groups.push(g.arn.clone());
                    }
                }
                let managed = self.attachments(&acct, team, 0, 2);
                if count > 0 {
                    let statements = (0..count)
                        .map(|_| self.statement(&acct, team, Size::Inline))
                        .collect();
                    self.push_policy(Holder::User(arn.clone()), statements);
                }
                self.identities.push(SynthIdentity {
                    kind: IdentityKind::User,
                    account: acct.id.clone(),
                    name,
                    arn,
                    tags,
                    groups,
                    managed,
                    effective: Vec::new(),
                });
            }
        }
        self.accounts.push(acct);
    }

    fn push_policy(&mut self, holder: Holder, statements: Vec<SynthStatement>) {
        self.written += statements.len();
        self.policies.push(SynthPolicy { holder, statements });
    }

    /// Between `lo` and `hi` distinct managed policies, mostly of the team's own.
    fn attachments(&mut self, acct: &AccountGen, team: usize, lo: usize, hi: usize) -> Vec<String> {
        let mut out = Vec::new();
        let all: Vec<&String> = acct.managed.iter().flatten().collect();
        if all.is_empty() {
            return out;
        }
        for _ in 0..self.between(lo, hi) {
            let own = acct.managed.get(team).filter(|l| !l.is_empty());
            let arn = match own {
                Some(list) if self.chance(0.75) => self.pick(list).clone(),
                _ => (*self.pick(&all)).clone(),
            };
            if !out.contains(&arn) {
                out.push(arn);
            }
        }
        out
    }

    /// One statement of a policy owned by `team` of `acct`.
    fn statement(&mut self, acct: &AccountGen, team: usize, size: Size) -> SynthStatement {
        let deny = self.chance(0.1);
        let effect = if deny {
            SynthEffect::Deny
        } else {
            SynthEffect::Allow
        };
        let svc = self.service();
        let mut services = vec![svc];
        if size == Size::Managed && self.chance(0.15) {
            let other = self.service();
            if other != svc {
                services.push(other);
            }
        }
        let mut actions = Vec::new();
        for &s in &services {
            let Some(service) = self.services.get(s).cloned() else {
                continue;
            };
            let n = if deny { 1 } else { self.between(1, 3) };
            for _ in 0..n {
                let roll = self.below(100);
                let a = if deny {
                    match roll {
                        0..50 => format!("{}:Delete*", service.prefix),
                        50..80 => format!("{}:{}", service.prefix, self.pick(&service.actions).0),
                        _ => format!("{}:Put*", service.prefix),
                    }
                } else {
                    match roll {
                        0..50 => format!("{}:{}", service.prefix, self.pick(&service.actions).0),
                        50..85 => {
                            let verb = *self.pick(&["Get", "List", "Describe", "Update"]);
                            format!("{}:{verb}*", service.prefix)
                        }
                        _ => format!("{}:*", service.prefix),
                    }
                };
                if !actions.contains(&a) {
                    actions.push(a);
                }
            }
        }
        let mut resources = Vec::new();
        let n = if size == Size::Managed {
            self.between(1, 2)
        } else {
            1
        };
        for _ in 0..n {
            let pick = self.below(services.len());
            let Some((prefix, noun)) = services
                .get(pick)
                .and_then(|&s| self.services.get(s))
                .map(|s| (s.prefix, s.noun))
            else {
                continue;
            };
            let base = format!("arn:aws:{prefix}:{REGION}:{}:{noun}", acct.id);
            let roll = self.below(100);
            let r = match roll {
                0..30 => format!("{base}/team-{team}/{noun}-{}", self.below(RESOURCE_IDS)),
                30..70 => format!("{base}/team-{team}/*"),
                70..80 => format!("{base}/*"),
                _ => "*".to_owned(),
            };
            if !resources.contains(&r) {
                resources.push(r);
            }
        }
        let mut conditions: Vec<SynthCondition> = Vec::new();
        if self.chance(1.0 / 3.0) {
            let n = if size == Size::Managed && self.chance(0.3) {
                2
            } else {
                1
            };
            let prefix = self
                .services
                .get(svc)
                .map_or("orders", |s| s.prefix)
                .to_owned();
            while conditions.len() < n {
                let c = self.condition(acct, team, &prefix);
                if !conditions.iter().any(|x| x.key == c.key) {
                    conditions.push(c);
                }
            }
        }
        SynthStatement {
            effect,
            actions,
            resources,
            conditions,
        }
    }

    fn condition(&mut self, acct: &AccountGen, team: usize, prefix: &str) -> SynthCondition {
        let (operator, key, value) = match self.below(7) {
            0 => (
                SynthOperator::StringEquals,
                "aws:PrincipalTag/team".to_owned(),
                format!("team-{team}"),
            ),
            1 => (
                SynthOperator::StringEquals,
                "aws:PrincipalTag/env".to_owned(),
                (if self.chance(0.7) { acct.env } else { "prod" }).to_owned(),
            ),
            2 => (
                SynthOperator::StringLike,
                "aws:ResourceTag/owner".to_owned(),
                if self.chance(0.5) {
                    format!("team-{team}")
                } else {
                    "team-*".to_owned()
                },
            ),
            3 => (
                SynthOperator::StringEquals,
                "aws:ResourceTag/project".to_owned(),
                format!("proj-{}", self.below(8)),
            ),
            4 => (
                SynthOperator::NumericLessThan,
                format!("{prefix}:Amount"),
                (500 * self.between(1, 3)).to_string(),
            ),
            5 => (
                SynthOperator::IpAddress,
                "aws:SourceIp".to_owned(),
                if self.chance(0.6) {
                    "10.0.0.0/8".to_owned()
                } else {
                    format!("192.168.{}.0/24", team % 256)
                },
            ),
            _ => (
                SynthOperator::Bool,
                "aws:SecureTransport".to_owned(),
                "true".to_owned(),
            ),
        };
        SynthCondition {
            operator,
            key,
            values: vec![value],
        }
    }

    /// Fills each identity's effective policies: inline, attached, and its groups'.
    fn resolve_effective(&mut self) {
        let mut by_holder: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in self.policies.iter().enumerate() {
            let key = match &p.holder {
                Holder::Managed(a) | Holder::User(a) | Holder::Group(a) | Holder::Role(a) => a,
            };
            by_holder.entry(key.as_str()).or_default().push(i);
        }
        let group_managed: BTreeMap<&str, &[String]> = self
            .groups
            .iter()
            .map(|g| (g.arn.as_str(), g.managed.as_slice()))
            .collect();
        let mut all = Vec::with_capacity(self.identities.len());
        for id in &self.identities {
            let mut holders: Vec<&str> = vec![id.arn.as_str()];
            holders.extend(id.managed.iter().map(String::as_str));
            for g in &id.groups {
                holders.push(g);
                holders.extend(
                    group_managed
                        .get(g.as_str())
                        .copied()
                        .unwrap_or_default()
                        .iter()
                        .map(String::as_str),
                );
            }
            let mut effective: Vec<usize> = holders
                .iter()
                .filter_map(|h| by_holder.get(h))
                .flatten()
                .copied()
                .collect();
            effective.sort_unstable();
            effective.dedup();
            all.push(effective);
        }
        for (id, effective) in self.identities.iter_mut().zip(all) {
            id.effective = effective;
        }
    }

    /// A request of one identity: mostly aimed at one of its statements (so that many are
    /// allowed, or denied by a `Deny`), the rest at anything in the organization.
    fn request(&mut self) -> Option<SynthRequest> {
        if self.identities.is_empty() {
            return None;
        }
        let identity = self.below(self.identities.len());
        let id = self.identities.get(identity)?.clone();
        let principal = match id.kind {
            IdentityKind::User => id.arn.clone(),
            IdentityKind::Role => format!(
                "arn:aws:sts::{}:assumed-role/{}/session-{}",
                id.account,
                id.name,
                self.below(4)
            ),
        };
        let team = id
            .tags
            .first()
            .and_then(|(_, v)| v.strip_prefix("team-"))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0usize);
        let aimed = if !id.effective.is_empty() && self.chance(0.7) {
            let pi = *self.pick(&id.effective);
            let count = self.policies.get(pi)?.statements.len();
            let si = self.below(count);
            Some(self.policies.get(pi)?.statements.get(si)?.clone())
        } else {
            None
        };
        let (svc, action) = match &aimed {
            Some(s) => {
                let pattern = self.pick(&s.actions).clone();
                let (prefix, name) = pattern.split_once(':')?;
                let si = self.services.iter().position(|x| x.prefix == prefix)?;
                let service = self.services.get(si)?.clone();
                let pattern = crate::matcher::Pattern::new(&name.to_ascii_lowercase());
                let matching: Vec<&String> = service
                    .actions
                    .iter()
                    .map(|(a, _)| a)
                    .filter(|a| pattern.matches(&a.to_ascii_lowercase()))
                    .collect();
                if matching.is_empty() {
                    return None;
                }
                (si, (*self.pick(&matching)).clone())
            }
            None => {
                let si = self.service();
                let service = self.services.get(si)?.clone();
                (si, self.pick(&service.actions).0.clone())
            }
        };
        let service = self.services.get(svc)?.clone();
        let list_action = service
            .actions
            .iter()
            .any(|(a, level)| *a == action && *level == "List");
        let account = if self.chance(0.05) {
            let other = self.below(self.accounts.len());
            self.accounts
                .get(other)
                .map_or(id.account.clone(), |a| a.id.clone())
        } else {
            id.account.clone()
        };
        let resource = if list_action {
            "*".to_owned()
        } else {
            let pattern = aimed
                .as_ref()
                .map(|s| self.pick(&s.resources).clone())
                .unwrap_or_else(|| "*".to_owned());
            let noun = service.noun;
            let base = format!("arn:aws:{}:{REGION}:{account}:{noun}", service.prefix);
            let id_num = self.below(RESOURCE_IDS);
            if pattern.starts_with(&base) && !pattern.contains('*') {
                pattern
            } else if pattern.starts_with(&format!("{base}/team-")) {
                format!("{}/{noun}-{id_num}", pattern.trim_end_matches("/*"))
            } else {
                // `*`, the whole noun, another service's or account's resource: one of the
                // team's resources, sometimes another team's.
                let t = if self.chance(0.7) {
                    team
                } else {
                    self.below(8)
                };
                format!("{base}/team-{t}/{noun}-{id_num}")
            }
        };
        let mut context = Vec::new();
        // Most requests meet the aimed statement's conditions; some miss them.
        let meet = self.chance(0.8);
        let wants = |key: &str| {
            aimed.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.key == key)
                    .and_then(|c| c.values.first().cloned())
            })
        };
        let ip = match wants("aws:SourceIp") {
            Some(range) if meet => match range.strip_suffix(".0/24") {
                Some(net) => format!("{net}.{}", self.between(1, 254)),
                None => format!(
                    "10.{}.{}.{}",
                    self.below(256),
                    self.below(256),
                    self.between(1, 254)
                ),
            },
            _ => match self.below(100) {
                0..60 => format!(
                    "10.{}.{}.{}",
                    self.below(256),
                    self.below(256),
                    self.between(1, 254)
                ),
                60..85 => format!("192.168.{}.{}", self.below(16), self.between(1, 254)),
                _ => format!("203.0.113.{}", self.between(1, 254)),
            },
        };
        context.push(("aws:SourceIp".to_owned(), ip));
        let secure = match wants("aws:SecureTransport") {
            Some(_) if meet => true,
            _ => self.chance(0.85),
        };
        context.push(("aws:SecureTransport".to_owned(), secure.to_string()));
        let amount_key = format!("{}:Amount", service.prefix);
        let amount = match wants(&amount_key).and_then(|v| v.parse::<usize>().ok()) {
            Some(limit) if meet => self.below(limit),
            _ => self.below(2_000),
        };
        if self.chance(0.9) {
            context.push((amount_key, amount.to_string()));
        }
        for (k, v) in resource_tags(&resource) {
            context.push((format!("aws:ResourceTag/{k}"), v));
        }
        Some(SynthRequest {
            identity,
            principal,
            action: format!("{}:{action}", service.prefix),
            resource,
            context,
        })
    }

    /// Writes the bundle: catalog, organization, and every account's files.
    fn files(&self) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        for s in &self.services {
            let actions: Map<String, Value> = s
                .actions
                .iter()
                .map(|(name, access)| {
                    let v = if *access == "List" {
                        json!({"access": access})
                    } else {
                        json!({"access": access, "resources": [s.noun]})
                    };
                    (name.clone(), v)
                })
                .collect();
            let doc = json!({
                "prefix": s.prefix,
                "name": format!("Synthetic {} service", s.prefix),
                "categories": ["application"],
                "resource_types": {
                    s.noun: {"arn": format!("arn:${{Partition}}:{}:${{Region}}:${{Account}}:{}/${{Name}}", s.prefix, s.noun)}
                },
                "condition_keys": [format!("{}:Amount", s.prefix)],
                "actions": actions,
            });
            files.insert(format!("catalog/{}.json", s.prefix), doc.to_string());
        }
        let (dev, prod): (Vec<&AccountGen>, Vec<&AccountGen>) =
            self.accounts.iter().partition(|a| a.env == "dev");
        let ids = |list: &[&AccountGen]| -> Vec<Value> {
            list.iter().map(|a| json!({"id": a.id})).collect()
        };
        let org = json!({
            "id": ORG_ID,
            "management_account": MANAGEMENT_ACCOUNT,
            "root": {
                "id": "r-synth",
                "name": "Root",
                "accounts": [{"id": MANAGEMENT_ACCOUNT}],
                "units": [
                    {"id": "ou-synth-dev", "name": "Dev", "accounts": ids(&dev)},
                    {"id": "ou-synth-prod", "name": "Prod", "accounts": ids(&prod)},
                ],
            },
        });
        files.insert("organization.json".into(), org.to_string());

        let mut inline: BTreeMap<&str, Vec<&SynthStatement>> = BTreeMap::new();
        for p in &self.policies {
            match &p.holder {
                Holder::Managed(arn) => {
                    if let Some((acct, name)) = split_iam_arn(arn, "policy/") {
                        files.insert(
                            format!("accounts/{acct}/policies/{name}.json"),
                            document(p.statements.iter()).to_string(),
                        );
                    }
                }
                Holder::User(a) | Holder::Group(a) | Holder::Role(a) => {
                    inline.entry(a).or_default().extend(&p.statements);
                }
            }
        }
        let inline_of = |arn: &str| -> Value {
            match inline.get(arn) {
                Some(s) => json!({"main": document(s.iter().copied())}),
                None => json!({}),
            }
        };
        let managed_names = |list: &[String]| -> Vec<String> {
            list.iter()
                .filter_map(|a| a.rsplit('/').next().map(str::to_owned))
                .collect()
        };
        for g in &self.groups {
            let doc = json!({
                "path": "/teams/",
                "managed_policies": managed_names(&g.managed),
                "inline_policies": inline_of(&g.arn),
            });
            files.insert(
                format!("accounts/{}/groups/{}.json", g.account, g.name),
                doc.to_string(),
            );
        }
        for id in &self.identities {
            let tags: Map<String, Value> = id
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let (dir, doc) = match id.kind {
                IdentityKind::User => (
                    "users",
                    json!({
                        "path": "/engineering/",
                        "tags": tags,
                        "groups": id.groups.iter().filter_map(|g| g.rsplit('/').next()).collect::<Vec<_>>(),
                        "managed_policies": managed_names(&id.managed),
                        "inline_policies": inline_of(&id.arn),
                    }),
                ),
                IdentityKind::Role => (
                    "roles",
                    json!({
                        "path": "/service/",
                        "tags": tags,
                        "trust_policy": {
                            "Version": "2012-10-17",
                            "Statement": [{
                                "Effect": "Allow",
                                "Principal": {"Service": "compute.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }],
                        },
                        "managed_policies": managed_names(&id.managed),
                        "inline_policies": inline_of(&id.arn),
                    }),
                ),
            };
            files.insert(
                format!("accounts/{}/{dir}/{}.json", id.account, id.name),
                doc.to_string(),
            );
        }
        files
    }
}

/// Takes up to `want` statements from what is `left` of a budget.
fn take(want: usize, left: &mut usize) -> usize {
    let n = want.min(*left);
    *left -= n;
    n
}

/// How many resources of one noun a team has.
const RESOURCE_IDS: usize = 50;

/// The size class of a statement: managed policies hold larger ones than the inline quotas
/// (2,048 characters for a user's) allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    Managed,
    Inline,
}

/// `arn:aws:iam::ACCT:KIND/.../NAME` -> (`ACCT`, `NAME`).
fn split_iam_arn<'a>(arn: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (acct, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix(kind)?;
    Some((acct, path.rsplit('/').next()?))
}

/// An IAM policy document of these statements.
fn document<'a>(statements: impl Iterator<Item = &'a SynthStatement>) -> Value {
    let list: Vec<Value> = statements.map(statement_json).collect();
    json!({"Version": "2012-10-17", "Statement": list})
}

fn statement_json(s: &SynthStatement) -> Value {
    let mut out = Map::new();
    out.insert(
        "Effect".into(),
        json!(match s.effect {
            SynthEffect::Allow => "Allow",
            SynthEffect::Deny => "Deny",
        }),
    );
    out.insert("Action".into(), json!(s.actions));
    out.insert("Resource".into(), json!(s.resources));
    if !s.conditions.is_empty() {
        let mut ops: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for c in &s.conditions {
            ops.entry(c.operator.as_str())
                .or_default()
                .insert(c.key.clone(), json!(c.values));
        }
        out.insert(
            "Condition".into(),
            Value::Object(
                ops.into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::Object(v)))
                    .collect(),
            ),
        );
    }
    Value::Object(out)
}

impl SynthRequest {
    /// The caller-supplied keys as warden receives them.
    pub fn context_keys(&self) -> Context {
        let mut ctx = Context::new();
        for (k, v) in &self.context {
            ctx.insert(k, ContextValue::Single(v.clone()));
        }
        ctx
    }
}

impl fmt::Display for SynthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let context: Map<String, Value> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let line = json!({
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "context": context,
        });
        write!(f, "{line}")
    }
}

#[cfg(test)]
mod tests;

//! The snapshot: a bundle compiled into immutable, indexed state with a revision, and the
//! request path that resolves a principal, fills the context keys the server owns, and
//! evaluates.
//!
//! INVARIANT (snapshot immutable): nothing here changes after `Snapshot::compile`; a new
//! bundle makes a new snapshot, published whole by the source.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;

use crate::arn::{Arn, ArnPattern, ShortArn};
use crate::bundle::{self, Bundle, BundleError, OrgUnit, catalog::Catalog};
use crate::compile::PolicySet;
use crate::context::{Context, ContextValue};
use crate::eval::{self, Outcome, Policies};
use crate::policy::Policy;
use crate::request::{Principal, PrincipalKind, Request};

/// One authorization question, as a face of the service receives it.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The ARN of an IAM user, a role session or an account root.
    pub principal: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    /// Caller-supplied keys; a value for a key the server owns is ignored.
    pub context: &'a Context,
    pub now: SystemTime,
}

/// A decision and what the cache needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub outcome: Outcome,
    /// True when a policy that took part tests the time: never cache such a decision.
    pub time_dependent: bool,
}

/// A principal the snapshot knows: a user or a role.
#[derive(Debug)]
struct Identity {
    /// The user ARN, or the role ARN (with its path).
    arn: String,
    account: String,
    /// `AIDA...` or `AROA...`.
    unique_id: String,
    tags: Vec<(String, String)>,
    identity: Arc<PolicySet>,
    boundary: Option<Arc<PolicySet>>,
    /// A role's trust policy: the resource policy of `sts:AssumeRole` on the role.
    trust: Option<Arc<PolicySet>>,
}

/// What the snapshot knows of an account.
#[derive(Debug, Default)]
struct AccountInfo {
    /// SCP levels from the root down; empty when SCPs do not govern the account's
    /// principals (no organization, or the management account).
    scps: Vec<Arc<PolicySet>>,
    /// RCP levels; empty likewise for its resources.
    rcps: Vec<Arc<PolicySet>>,
    /// `o-.../r-.../ou-.../` when the account is in the organization.
    org_path: Option<String>,
}

#[derive(Debug)]
struct ResourceEntry {
    account: String,
    tags: Vec<(String, String)>,
    set: Arc<PolicySet>,
    policy: Arc<Policy>,
}

/// The compiled, indexed, immutable authorization state.
#[derive(Debug)]
pub struct Snapshot {
    revision: u64,
    built_at: SystemTime,
    org_id: Option<String>,
    /// Users by ARN.
    users: FxHashMap<String, Arc<Identity>>,
    /// Roles by `ACCOUNT/name`; a session ARN omits the role's path.
    roles: FxHashMap<String, Arc<Identity>>,
    accounts: FxHashMap<String, AccountInfo>,
    /// Resource policies bound to one exact ARN.
    resources_exact: FxHashMap<String, Vec<Arc<ResourceEntry>>>,
    /// Resource policies bound to an ARN pattern.
    resources_pattern: Vec<(ArnPattern, Arc<ResourceEntry>)>,
    catalog: Catalog,
    empty: PolicySet,
    statements: usize,
}

/// Context keys whose values come from the server, never from the caller.
const OWNED_KEYS: &[&str] = &[
    "aws:principalarn",
    "aws:principalaccount",
    "aws:username",
    "aws:userid",
    "aws:principaltype",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:resourceaccount",
    "aws:resourceorgid",
    "aws:resourceorgpaths",
    "aws:currenttime",
    "aws:epochtime",
];

impl Snapshot {
    /// Loads and compiles a bundle directory.
    pub fn load_dir(dir: &Path, revision: u64) -> Result<Snapshot, BundleError> {
        Ok(Snapshot::compile(&bundle::load_dir(dir)?, revision))
    }

    /// Loads and compiles a bundle held as `relative path -> text`.
    pub fn load_files(
        files: &BTreeMap<String, String>,
        revision: u64,
    ) -> Result<Snapshot, BundleError> {
        Ok(Snapshot::compile(&bundle::load_files(files)?, revision))
    }

    /// Compiles a validated bundle.
    pub fn compile(b: &Bundle, revision: u64) -> Snapshot {
        let mut sets = SetCache::default();
        let managed = |arn: &String| b.managed.get(arn).cloned();

        let mut accounts: FxHashMap<String, AccountInfo> = FxHashMap::default();
        let org_id = b.organization.as_ref().map(|o| o.id.clone());
        if let Some(org) = &b.organization {
            let mut chain = Chain {
                scps: Vec::new(),
                rcps: Vec::new(),
                path: format!("{}/", org.id),
            };
            walk_org(
                &org.root,
                &mut chain,
                b,
                &mut sets,
                &org.management_account,
                &mut accounts,
            );
        }

        let mut users = FxHashMap::default();
        let mut roles = FxHashMap::default();
        let mut resources_exact: FxHashMap<String, Vec<Arc<ResourceEntry>>> = FxHashMap::default();
        let mut resources_pattern = Vec::new();
        for account in b.accounts.values() {
            let mut identity = |arn: &str,
                                id_prefix: &str,
                                tags: &[(String, String)],
                                policies: Vec<Arc<Policy>>,
                                boundary: &Option<String>,
                                trust: Option<&Arc<Policy>>| {
                Arc::new(Identity {
                    arn: arn.to_owned(),
                    account: account.id.clone(),
                    unique_id: unique_id(id_prefix, arn),
                    tags: tags.to_vec(),
                    identity: sets.get(policies),
                    boundary: boundary
                        .as_ref()
                        .and_then(managed)
                        .map(|p| sets.get(vec![p])),
                    trust: trust.map(|t| sets.get(vec![t.clone()])),
                })
            };
            for u in &account.users {
                let mut policies: Vec<Arc<Policy>> = u.inline.clone();
                policies.extend(u.managed.iter().filter_map(managed));
                for g in account.groups.iter().filter(|g| u.groups.contains(&g.name)) {
                    policies.extend(g.inline.iter().cloned());
                    policies.extend(g.managed.iter().filter_map(managed));
                }
                let id = identity(&u.arn, "AIDA", &u.tags, policies, &u.boundary, None);
                users.insert(u.arn.clone(), id);
            }
            for r in &account.roles {
                let mut policies: Vec<Arc<Policy>> = r.inline.clone();
                policies.extend(r.managed.iter().filter_map(managed));
                let id = identity(
                    &r.arn,
                    "AROA",
                    &r.tags,
                    policies,
                    &r.boundary,
                    Some(&r.trust),
                );
                roles.insert(format!("{}/{}", account.id, r.name), id);
            }
            for res in &account.resources {
                let entry = Arc::new(ResourceEntry {
                    account: account.id.clone(),
                    tags: res.tags.clone(),
                    set: sets.get(vec![res.policy.clone()]),
                    policy: res.policy.clone(),
                });
                match ArnPattern::new(&res.arn, false, ShortArn::Never) {
                    Ok(p) if !p.is_exact() => resources_pattern.push((p, entry)),
                    _ => resources_exact
                        .entry(res.arn.clone())
                        .or_default()
                        .push(entry),
                }
            }
        }
        let statements = sets.statements;
        Snapshot {
            revision,
            built_at: SystemTime::now(),
            org_id,
            users,
            roles,
            accounts,
            resources_exact,
            resources_pattern,
            catalog: b.catalog.clone(),
            empty: PolicySet::default(),
            statements,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// When the snapshot was compiled.
    pub fn built_at(&self) -> SystemTime {
        self.built_at
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Statements compiled (each distinct policy set counted once).
    pub fn statement_count(&self) -> usize {
        self.statements
    }

    /// Resolves the principal, fills the context keys the server owns (a caller's value
    /// for any of them is dropped), gathers every applicable policy and evaluates.
    pub fn authorize(&self, q: &Query<'_>) -> Authorization {
        let Some(prepared) = self.prepare(q) else {
            return Authorization {
                outcome: Outcome::unknown_principal(),
                time_dependent: false,
            };
        };
        let request = Request::new(
            &prepared.principal,
            q.action,
            q.resource,
            &prepared.resource_account,
            &prepared.context,
        );
        let outcome = eval::evaluate(&request, &prepared.policies(self));
        Authorization {
            time_dependent: prepared.time_dependent(self),
            outcome,
        }
    }

    /// Like [`Snapshot::authorize`], and reports every layer and statement.
    pub fn explain(&self, q: &Query<'_>) -> (Authorization, Option<eval::Explanation>) {
        let Some(prepared) = self.prepare(q) else {
            return (
                Authorization {
                    outcome: Outcome::unknown_principal(),
                    time_dependent: false,
                },
                None,
            );
        };
        let request = Request::new(
            &prepared.principal,
            q.action,
            q.resource,
            &prepared.resource_account,
            &prepared.context,
        );
        let policies = prepared.policies(self);
        let outcome = eval::evaluate(&request, &policies);
        let explanation = eval::explain(&request, &policies);
        (
            Authorization {
                time_dependent: prepared.time_dependent(self),
                outcome,
            },
            Some(explanation),
        )
    }

    /// Everything a request needs, resolved: `None` for an unknown principal.
    fn prepare(&self, q: &Query<'_>) -> Option<Prepared> {
        let mut principal = Principal::from_arn(q.principal).ok()?;
        let identity = match &principal.kind {
            PrincipalKind::User { .. } => Some(self.users.get(q.principal)?.clone()),
            PrincipalKind::AssumedRole { role_name, .. } => Some(
                self.roles
                    .get(&format!("{}/{role_name}", principal.account))?
                    .clone(),
            ),
            PrincipalKind::Root
                if self.accounts.contains_key(&principal.account)
                    || self.has_account_identities(&principal.account) =>
            {
                None
            }
            _ => return None,
        };
        let mut ctx = q.context.clone();
        ctx.retain(|k| !OWNED_KEYS.contains(&k) && !k.starts_with("aws:principaltag/"));
        let single = |s: &str| ContextValue::Single(s.to_owned());
        match (&mut principal.kind, &identity) {
            (PrincipalKind::User { name }, Some(id)) => {
                principal.unique_id = Some(id.unique_id.clone());
                ctx.insert("aws:username", single(name));
            }
            (
                PrincipalKind::AssumedRole {
                    role_arn,
                    session_name,
                    ..
                },
                Some(id),
            ) => {
                *role_arn = id.arn.clone();
                principal.unique_id = Some(format!("{}:{session_name}", id.unique_id));
            }
            _ => principal.unique_id = Some(principal.account.clone()),
        }
        if let Some(arn) = principal.principal_arn() {
            ctx.insert("aws:PrincipalArn", single(arn));
        }
        ctx.insert("aws:PrincipalAccount", single(&principal.account));
        ctx.insert("aws:PrincipalType", single(principal.kind.type_name()));
        if let Some(uid) = &principal.unique_id {
            ctx.insert("aws:userid", single(uid));
        }
        if let Some(id) = &identity {
            for (k, v) in &id.tags {
                ctx.insert(&format!("aws:PrincipalTag/{k}"), single(v));
            }
        }
        let principal_org = self
            .accounts
            .get(&principal.account)
            .and_then(|a| a.org_path.as_deref());
        if let (Some(org), Some(path)) = (&self.org_id, principal_org) {
            ctx.insert("aws:PrincipalOrgID", single(org));
            ctx.insert(
                "aws:PrincipalOrgPaths",
                ContextValue::Multi(vec![path.to_owned()]),
            );
        }

        // The resource: its policies, its account, its tags.
        let assume_role = eval::resource_policy_required(q.action)
            && q.action.to_ascii_lowercase().starts_with("sts:");
        let mut resource_set: Option<Arc<PolicySet>> = None;
        let mut resource_account: Option<String> = None;
        if assume_role {
            if let Some(role) = self.role_by_arn(q.resource) {
                resource_set = role.trust.clone();
                resource_account = Some(role.account.clone());
            }
        } else {
            let entries = self.resource_entries(q.resource);
            if let Some(first) = entries.first() {
                resource_account = Some(first.account.clone());
                if entries.iter().any(|e| !e.tags.is_empty()) {
                    ctx.retain(|k| !k.starts_with("aws:resourcetag/"));
                    for e in &entries {
                        for (k, v) in &e.tags {
                            ctx.insert(&format!("aws:ResourceTag/{k}"), single(v));
                        }
                    }
                }
                resource_set = Some(if entries.len() == 1 {
                    first.set.clone()
                } else {
                    Arc::new(PolicySet::new(
                        entries.iter().map(|e| e.policy.clone()).collect(),
                    ))
                });
            }
        }
        let resource_account = Arn::parse(q.resource)
            .map(|a| a.account)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .or(resource_account)
            .unwrap_or_else(|| principal.account.clone());
        ctx.insert("aws:ResourceAccount", single(&resource_account));
        let resource_org = self
            .accounts
            .get(&resource_account)
            .and_then(|a| a.org_path.as_deref());
        if let (Some(org), Some(path)) = (&self.org_id, resource_org) {
            ctx.insert("aws:ResourceOrgID", single(org));
            ctx.insert(
                "aws:ResourceOrgPaths",
                ContextValue::Multi(vec![path.to_owned()]),
            );
        }
        let secs = q.now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let now: chrono::DateTime<chrono::Utc> = q.now.into();
        ctx.insert(
            "aws:CurrentTime",
            single(&now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        ctx.insert("aws:EpochTime", single(&secs.to_string()));

        Some(Prepared {
            principal,
            identity,
            resource_set,
            resource_account,
            context: ctx,
            resource_policy_required: eval::resource_policy_required(q.action),
        })
    }

    fn has_account_identities(&self, account: &str) -> bool {
        self.users.values().any(|u| u.account == account)
            || self.roles.values().any(|r| r.account == account)
    }

    fn role_by_arn(&self, arn: &str) -> Option<&Arc<Identity>> {
        let a = Arn::parse(arn)?;
        let name = a.resource.strip_prefix("role/")?.rsplit('/').next()?;
        self.roles
            .get(&format!("{}/{name}", a.account))
            .filter(|r| r.arn == arn)
    }

    fn resource_entries(&self, resource: &str) -> Vec<&Arc<ResourceEntry>> {
        let mut out: Vec<&Arc<ResourceEntry>> = self
            .resources_exact
            .get(resource)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        if !self.resources_pattern.is_empty() {
            let arn = Arn::parse(resource);
            let ctx = Context::new();
            for (p, e) in &self.resources_pattern {
                if p.matches(arn.as_ref(), &ctx) == Some(true) {
                    out.push(e);
                }
            }
        }
        out
    }
}

/// A request resolved against the snapshot.
struct Prepared {
    principal: Principal,
    identity: Option<Arc<Identity>>,
    resource_set: Option<Arc<PolicySet>>,
    resource_account: String,
    context: Context,
    resource_policy_required: bool,
}

impl Prepared {
    fn policies<'s>(&'s self, snap: &'s Snapshot) -> Policies<'s> {
        let no_chain: &[Arc<PolicySet>] = &[];
        Policies {
            identity: self.identity.as_ref().map_or(&snap.empty, |i| &i.identity),
            resource: self.resource_set.as_deref(),
            boundary: self.identity.as_ref().and_then(|i| i.boundary.as_deref()),
            session: None,
            scps: snap
                .accounts
                .get(&self.principal.account)
                .map_or(no_chain, |a| &a.scps),
            rcps: snap
                .accounts
                .get(&self.resource_account)
                .map_or(no_chain, |a| &a.rcps),
            resource_policy_required: self.resource_policy_required,
        }
    }

    fn time_dependent(&self, snap: &Snapshot) -> bool {
        let p = self.policies(snap);
        p.identity.time_dependent()
            || p.resource.is_some_and(PolicySet::time_dependent)
            || p.boundary.is_some_and(PolicySet::time_dependent)
            || p.scps.iter().chain(p.rcps).any(|s| s.time_dependent())
    }
}

/// Shares one compiled set among every principal with the same policies.
#[derive(Default)]
struct SetCache {
    sets: FxHashMap<Vec<usize>, Arc<PolicySet>>,
    statements: usize,
}

impl SetCache {
    fn get(&mut self, mut policies: Vec<Arc<Policy>>) -> Arc<PolicySet> {
        // The same managed policy reached twice (directly and through a group) counts once.
        policies.sort_by_key(|p| Arc::as_ptr(p) as usize);
        policies.dedup_by_key(|p| Arc::as_ptr(p) as usize);
        let key: Vec<usize> = policies.iter().map(|p| Arc::as_ptr(p) as usize).collect();
        if let Some(s) = self.sets.get(&key) {
            return s.clone();
        }
        let set = Arc::new(PolicySet::new(policies));
        self.statements += set.statement_count();
        self.sets.insert(key, set.clone());
        set
    }
}

struct Chain {
    scps: Vec<Arc<PolicySet>>,
    rcps: Vec<Arc<PolicySet>>,
    path: String,
}

fn org_set(
    names: &[String],
    map: &BTreeMap<String, Arc<Policy>>,
    sets: &mut SetCache,
) -> Arc<PolicySet> {
    sets.get(names.iter().filter_map(|n| map.get(n).cloned()).collect())
}

fn walk_org(
    unit: &OrgUnit,
    chain: &mut Chain,
    b: &Bundle,
    sets: &mut SetCache,
    management: &str,
    out: &mut FxHashMap<String, AccountInfo>,
) {
    chain.scps.push(org_set(&unit.scps, &b.scps, sets));
    chain.rcps.push(org_set(&unit.rcps, &b.rcps, sets));
    let saved_len = chain.path.len();
    chain.path.push_str(&unit.id);
    chain.path.push('/');
    for a in &unit.accounts {
        let exempt = a.id == management;
        let mut scps = chain.scps.clone();
        scps.push(org_set(&a.scps, &b.scps, sets));
        let mut rcps = chain.rcps.clone();
        rcps.push(org_set(&a.rcps, &b.rcps, sets));
        out.insert(
            a.id.clone(),
            AccountInfo {
                scps: if exempt { Vec::new() } else { scps },
                rcps: if exempt { Vec::new() } else { rcps },
                org_path: Some(chain.path.clone()),
            },
        );
    }
    for u in &unit.units {
        walk_org(u, chain, b, sets, management, out);
    }
    chain.path.truncate(saved_len);
    chain.scps.pop();
    chain.rcps.pop();
}

/// A stable unique id in AWS's shape (`AIDA` + 17 characters), derived from the ARN so it
/// survives reloads; like AWS's, it changes if the entity is deleted and re-created under
/// another ARN.
fn unique_id(prefix: &str, arn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let fnv = |seed: u64| {
        arn.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let bits =
        (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x8422_2325_cbf2_9ce4));
    let mut out = String::from(prefix);
    for i in 0..17 {
        let idx = ((bits >> (i * 5)) & 31) as usize;
        out.push(char::from(*ALPHABET.get(idx).unwrap_or(&b'A')));
    }
    out
}

#[cfg(test)]
mod tests;

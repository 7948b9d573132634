//! The snapshot: a bundle compiled into immutable, indexed state with a revision, and the
//! two steps of the request path that read it: principal resolution (a caller becomes its
//! principal, policies and the keys the server owns about it) and the decision of one
//! action on one resource (the resource's policies and keys, then evaluation).
//!
//! INVARIANT (snapshot immutable): nothing here changes after `Snapshot::compile`; a new
//! bundle makes a new snapshot, published whole by the source.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use smol_str::SmolStr;

use crate::arn::{Arn, ArnPattern, ShortArn};
use crate::bundle::{self, Bundle, BundleError, OrgUnit, catalog::Catalog};
use crate::cache::Identity as CacheIdentity;
use crate::caller::Session;
use crate::compile::PolicySet;
use crate::context::{ACCOUNT_KEYS, CallerContext, CallerView, Context, ContextValue, Lookup};
use crate::eval::{self, Outcome, Policies};
use crate::policy::{Policy, PolicyKind};
use crate::request::{
    Action, ArnKind, Principal, PrincipalArn, PrincipalKind, Request, parse_principal,
    parse_resource,
};

/// One question about one action on one resource, as the service checked it.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub action: &'a Action,
    /// An ARN, or `*` (an action without resource-level permissions).
    pub resource: &'a str,
    /// `resource` split; `None` for `*`.
    pub resource_arn: Option<Arn<'a>>,
    /// What the caller supplied: only request attributes (see [`crate::keys`]).
    pub context: CallerView<'a>,
}

/// A decision and what the cache needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub outcome: Outcome,
    /// True when a policy that took part reads a key that changes with time: never cache
    /// such a decision.
    pub time_dependent: bool,
}

impl Authorization {
    /// The answer for a caller whose principal the snapshot does not know.
    pub fn unknown_principal() -> Authorization {
        Authorization {
            outcome: Outcome::unknown_principal(),
            time_dependent: false,
        }
    }
}

/// A principal the snapshot knows: a user or a role.
#[derive(Debug)]
struct Identity {
    /// The user ARN, or the role ARN (with its path); shared with the snapshot's map of
    /// users, which a compile rebuilds without copying it.
    arn: Arc<str>,
    /// Inline (twelve digits): a request hashes it to find its account, and should not
    /// load it from elsewhere to do so.
    account: SmolStr,
    /// `AIDA...` or `AROA...`.
    unique_id: String,
    identity: Arc<PolicySet>,
    boundary: Option<Arc<PolicySet>>,
    /// A role's trust policy: the resource policy of `sts:AssumeRole` on the role.
    trust: Option<Arc<PolicySet>>,
    /// The server-owned keys that follow from the principal alone (ARN, account, type,
    /// name, tags, organization; a user's id), built once here rather than per request.
    keys: Context,
    /// A user as a request names it, resolved once; `None` for a role, whose sessions
    /// differ by name.
    principal: Option<Principal<'static>>,
    /// A role's `max_session_duration` in seconds (what `AssumeRole` may grant); 0 for a
    /// user.
    max_session: u64,
    /// Through what each identity policy is attached (policy id, then `user`, `role` or
    /// `group NAME`), for reverse queries to explain an Allow ([`Snapshot::attached_via`]).
    via: Vec<(Arc<str>, SmolStr)>,
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
    /// `aws:ResourceAccount` and the organization keys of a resource in this account.
    resource_keys: Context,
    /// `aws:PrincipalAccount` and the organization keys of a principal of this account.
    principal_keys: Context,
}

#[derive(Debug)]
struct ResourceEntry {
    account: String,
    tags: Vec<(String, String)>,
    set: Arc<PolicySet>,
}

/// The compiled, indexed, immutable authorization state.
#[derive(Debug)]
pub struct Snapshot {
    revision: u64,
    /// The content digest of the bundle it was compiled from ([`crate::digest`]); empty
    /// when compiled from a [`Bundle`] alone.
    digest: Arc<str>,
    built_at: SystemTime,
    /// Users by ARN (each key the identity's own).
    users: FxHashMap<Arc<str>, Arc<Identity>>,
    /// Roles by account, then name; a session ARN omits the role's path.
    roles: FxHashMap<String, Arc<FxHashMap<String, Arc<Identity>>>>,
    accounts: FxHashMap<String, AccountInfo>,
    /// Resource policies bound to one exact ARN.
    resources_exact: FxHashMap<String, Vec<Arc<ResourceEntry>>>,
    /// Resource policies bound to an ARN pattern.
    resources_pattern: ResourcePatterns,
    catalog: Catalog,
    /// Every action the catalog knows, lowercase (`orders:getorder`): a request for any
    /// other is refused, so one hash lookup answers it.
    actions: crate::compile::TextSet,
    /// The organization's id, when the bundle has one.
    org_id: Option<String>,
    /// The organization's management account, when the bundle has one: the admin API's
    /// organization-level documents are its resources.
    management_account: Option<String>,
    /// Envoy listeners by name, compiled when the bundle loaded.
    listeners: FxHashMap<String, Arc<crate::routes::Listener>>,
    /// Managed policies by ARN: the ones a session names as its session policies
    /// ([`Snapshot::managed_policy`]).
    managed: FxHashMap<String, Arc<Policy>>,
    /// OIDC identity providers by ARN.
    oidc_providers: FxHashMap<String, Arc<crate::oidc::OidcProvider>>,
    /// The providers' condition key prefixes (`HOST[/PATH]`, lowercase, without a
    /// trailing `/`): a caller's key with one of them is dropped, since only a verified
    /// token may say `HOST:sub`.
    oidc_prefixes: rustc_hash::FxHashSet<String>,
    empty: PolicySet,
    statements: usize,
}

impl Snapshot {
    /// Loads and compiles a bundle directory.
    pub fn load_dir(dir: &Path, revision: u64) -> Result<Snapshot, BundleError> {
        Snapshot::load_files(&bundle::read_dir(dir)?, revision)
    }

    /// Loads and compiles a bundle held as `relative path -> text`.
    pub fn load_files<T: bundle::Text>(
        files: &BTreeMap<String, T>,
        revision: u64,
    ) -> Result<Snapshot, BundleError> {
        Ok(Snapshot::compile(&bundle::load_files(files)?, revision)
            .with_digest(crate::digest::of_files(files)))
    }

    /// The same snapshot, naming the digest of the files it was compiled from.
    pub fn with_digest(self, digest: String) -> Snapshot {
        Snapshot {
            digest: digest.into(),
            ..self
        }
    }

    /// Compiles a validated bundle.
    pub fn compile(b: &Bundle, revision: u64) -> Snapshot {
        Snapshot::compile_with(b, revision, &mut SetCache::default())
    }

    /// Compiles a validated bundle, its sets from `sets`.
    fn compile_with(b: &Bundle, revision: u64, sets: &mut SetCache) -> Snapshot {
        let mut accounts: FxHashMap<String, AccountInfo> = FxHashMap::default();
        let org_id = b.organization.as_ref().map(|o| o.id.clone());
        // The organization holds the sets of its SCPs and RCPs, taken again each time (a
        // few; from the registry, compiled only when new): what it held before is released
        // once every holder has taken its sets.
        sets.recording = Recording::default();
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
                sets,
                &org.management_account,
                &mut accounts,
            );
        }
        sets.org = std::mem::take(&mut sets.recording).keys;

        // Accounts with identities but outside the organization still get their resource keys.
        for id in b.accounts.keys() {
            accounts.entry(id.clone()).or_default();
        }
        for (id, info) in &mut accounts {
            info.resource_keys = resource_keys(id, org_id.as_deref(), info.org_path.as_deref());
            info.principal_keys =
                principal_account_keys(id, org_id.as_deref(), info.org_path.as_deref());
        }

        // Sized once: 100,000 statements hold some 13,000 users, rehashed at every growth.
        let mut users = FxHashMap::with_capacity_and_hasher(
            b.accounts.values().map(|a| a.users.len()).sum(),
            Default::default(),
        );
        let mut roles: FxHashMap<String, Arc<FxHashMap<String, Arc<Identity>>>> =
            FxHashMap::default();
        let mut resources_exact: FxHashMap<String, Vec<Arc<ResourceEntry>>> = FxHashMap::default();
        let mut resources_pattern = ResourcePatterns::default();
        for account in b.accounts.values() {
            // The previous compile's part of this account when nothing it was made from
            // changed (see `AccountPart`); else the account compiled again.
            let part = match sets.take_part(account, &b.managed) {
                Some(part) => part,
                None => Arc::new(compile_account(account, &b.managed, sets)),
            };
            for (_, identity) in &part.users {
                users.insert(identity.arn.clone(), identity.clone());
            }
            if !part.roles.is_empty() {
                roles.insert(account.id.clone(), part.by_name.clone());
            }
            for (res, entry) in &part.resources {
                match ArnPattern::new(&res.arn, false, ShortArn::Never) {
                    Ok(p) if !p.is_exact() => resources_pattern.push(p, entry.clone()),
                    _ => resources_exact
                        .entry(res.arn.clone())
                        .or_default()
                        .push(entry.clone()),
                }
            }
            sets.identities += part.users.len() + part.roles.len();
            if sets.keep {
                sets.parts.insert(account.id.clone(), part);
            }
        }
        sets.release();
        let oidc_providers: FxHashMap<String, Arc<crate::oidc::OidcProvider>> = b
            .accounts
            .values()
            .flat_map(|a| &a.oidc_providers)
            .map(|p| (p.arn().to_owned(), p.clone()))
            .collect();
        let oidc_prefixes = oidc_providers
            .values()
            .map(|p| p.key_prefix().trim_end_matches('/').to_owned())
            .collect();
        let statements = sets.registry.statements;
        let actions = crate::compile::TextSet::new(
            b.catalog
                .services
                .values()
                .flat_map(|s| s.actions.keys().map(move |a| format!("{}:{a}", s.prefix))),
        );
        Snapshot {
            revision,
            digest: Arc::from(""),
            built_at: SystemTime::now(),
            actions,
            org_id,
            management_account: b
                .organization
                .as_ref()
                .map(|o| o.management_account.clone()),
            listeners: b
                .listeners
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            managed: b
                .managed
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            oidc_providers,
            oidc_prefixes,
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

    /// The content digest of the bundle behind the snapshot (see [`crate::digest`]).
    pub fn digest(&self) -> &Arc<str> {
        &self.digest
    }

    /// When the snapshot was compiled.
    pub fn built_at(&self) -> SystemTime {
        self.built_at
    }

    /// The organization's management account, when the bundle has an organization.
    pub fn management_account(&self) -> Option<&str> {
        self.management_account.as_deref()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The Envoy listener of this name (`routes/NAME.json`), when the bundle has one.
    pub fn listener(&self, name: &str) -> Option<&crate::routes::Listener> {
        self.listeners.get(name).map(|l| &**l)
    }

    /// The managed policy of this ARN (`arn:aws:iam::ACCT:policy/PATH/NAME`, or AWS's
    /// `arn:aws:iam::aws:policy/NAME`), when the bundle has it.
    pub fn managed_policy(&self, arn: &str) -> Option<&Arc<Policy>> {
        self.managed.get(arn)
    }

    /// What the snapshot knows of the user or role of this ARN (a role's ARN with its
    /// path), when it holds it.
    pub fn entity(&self, arn: &str) -> Option<Entity<'_>> {
        let id = match self.users.get(arn) {
            Some(u) => u,
            None => self.role_by_arn(arn, Arn::parse(arn).as_ref())?,
        };
        Some(Entity {
            arn: &id.arn,
            account: &id.account,
            unique_id: &id.unique_id,
            max_session_duration: id.max_session,
        })
    }

    /// The OIDC provider of this ARN (`arn:aws:iam::ACCT:oidc-provider/HOST[/PATH]`).
    pub fn oidc_provider(&self, arn: &str) -> Option<&Arc<crate::oidc::OidcProvider>> {
        self.oidc_providers.get(arn)
    }

    /// Every OIDC provider of the bundle.
    pub fn oidc_providers(&self) -> impl Iterator<Item = &Arc<crate::oidc::OidcProvider>> {
        self.oidc_providers.values()
    }

    /// Whether a (lowercase) condition key is a provider's token key (`HOST:sub`,
    /// `HOST/PATH:aud`): the server's alone, set from a verified token, never a caller's.
    pub fn is_web_identity_key(&self, lower_key: &str) -> bool {
        if self.oidc_prefixes.is_empty() {
            return false;
        }
        lower_key
            .split_once(':')
            .is_some_and(|(prefix, _)| self.oidc_prefixes.contains(prefix.trim_end_matches('/')))
    }

    /// Whether deciding `AssumeRoleWithWebIdentity` into `role_arn` reads the time (its
    /// trust policy's or its account's RCPs' conditions), so that a session it gave may not
    /// be kept for later requests; `true` for a role the snapshot does not hold.
    pub fn web_identity_reads_the_time(&self, role_arn: &str) -> bool {
        let parsed = Arn::parse(role_arn);
        let Some(role) = self.role_by_arn(role_arn, parsed.as_ref()) else {
            return true;
        };
        role.trust.iter().any(|t| t.time_dependent())
            || self
                .accounts
                .get(role.account.as_str())
                .is_some_and(|a| a.rcps.iter().any(|r| r.time_dependent()))
    }

    /// `AssumeRoleWithWebIdentity`: the role's trust policy decides `sts:AssumeRoleWithWebIdentity`
    /// for the provider as a `Federated` (web identity) principal, with the token's keys
    /// (`HOST:sub`, `HOST:aud`, ..., `aws:FederatedProvider`) and `sts:RoleSessionName`.
    /// On Allow, a session `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` whose requests see
    /// the same keys, expiring with the token; its id is unique to the token, role and
    /// session name. The claims must be the provider's (`iss`, `aud`); their signature
    /// and times are the verifier's to check (see [`crate::oidc::Verifier::verify`]). `skew`
    /// is the clock skew the verifier allowed: the session lasts until the token's expiry
    /// plus the skew, so that a token the verifier accepted is not refused here.
    pub fn assume_role_with_web_identity(
        &self,
        provider_arn: &str,
        role_arn: &str,
        session_name: &str,
        claims: &crate::oidc::Claims,
        (now, skew): (SystemTime, std::time::Duration),
    ) -> Result<Arc<Session>, crate::oidc::WebIdentityDenied> {
        use crate::oidc::WebIdentityDenied as Denied;
        let provider = self.oidc_provider(provider_arn).ok_or_else(|| {
            Denied::new(
                "unknown_provider",
                format!("no OIDC provider `{provider_arn}` in the bundle"),
            )
        })?;
        provider
            .check_claims(claims)
            .map_err(|e| Denied::new(e.code, e.message))?;
        let expires_at = claims.expiry() + skew;
        if expires_at <= now {
            return Err(Denied::new("expired", "the token has expired"));
        }
        crate::oidc::check_session_name(session_name)
            .map_err(|m| Denied::new("invalid_session_name", m))?;
        let parsed = Arn::parse(role_arn);
        let role = self.role_by_arn(role_arn, parsed.as_ref()).ok_or_else(|| {
            Denied::new(
                "unknown_role",
                format!("no role `{role_arn}` in the bundle"),
            )
        })?;
        let role_name = role.arn.rsplit('/').next().unwrap_or_default();
        let web_keys = crate::oidc::web_identity_keys(provider, claims);
        let mut keys = web_keys.clone();
        keys.insert(
            "sts:RoleSessionName",
            ContextValue::Single(session_name.to_owned()),
        );
        for (k, v) in time_keys(now).iter() {
            keys.insert(k, v.clone());
        }
        let role_account = self.accounts.get(role.account.as_str());
        if let Some(a) = role_account {
            for (k, v) in a.resource_keys.iter() {
                keys.insert(k, v.clone());
            }
        }
        // A caller from outside AWS: no account, so no SCP; the role's account's RCPs
        // still apply to its resource.
        let principal = Principal {
            arn: Cow::Borrowed(provider_arn),
            partition: Cow::Borrowed(bundle::PARTITION),
            account: Cow::Borrowed(""),
            kind: PrincipalKind::WebIdentity {
                provider: Cow::Borrowed(provider_arn),
            },
            unique_id: None,
        };
        let action = Action::parse("sts:AssumeRoleWithWebIdentity")
            .map_err(|m| Denied::new("internal", m))?;
        let request = Request::with_resource_arn(
            &principal,
            &action,
            &role.arn,
            parsed,
            &role.account,
            &keys,
        );
        let trust = role.trust.as_slice();
        let policies = Policies {
            identity: &self.empty,
            resource: trust,
            boundary: None,
            session: None,
            scps: &[],
            rcps: role_account.map_or(&[][..], |a| &a.rcps),
            resource_policy_required: true,
        };
        let outcome = eval::evaluate(&request, &policies);
        if outcome.decision != eval::Decision::Allow {
            return Err(crate::oidc::WebIdentityDenied {
                code: "denied",
                message: format!(
                    "the trust policy of `{role_arn}` does not allow `{provider_arn}` to assume it ({})",
                    outcome.reason.as_str()
                ),
                outcome: Some(outcome),
            });
        }
        let id = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for part in [
                provider_arn.as_bytes(),
                role.arn.as_bytes(),
                session_name.as_bytes(),
                claims.digest(),
            ] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
            let digest: [u8; 32] = h.finalize().into();
            let mut id = String::with_capacity(4 + 64);
            id.push_str("web:");
            for b in digest {
                id.push_str(&format!("{b:02x}"));
            }
            id
        };
        Ok(Arc::new(Session {
            id,
            arn: format!(
                "arn:{}:sts::{}:assumed-role/{role_name}/{session_name}",
                bundle::PARTITION,
                role.account
            ),
            policies: None,
            policy_arns: Vec::new(),
            inline_policy: None,
            tags: Vec::new(),
            source_identity: None,
            issued_at: claims.issued_at().filter(|t| *t <= now).unwrap_or(now),
            expires_at,
            mfa_at: None,
            web_identity: Some(Arc::new(crate::oidc::WebIdentity {
                provider_arn: provider_arn.to_owned(),
                keys: web_keys,
            })),
        }))
    }

    /// Whether `role_arn`'s trust policy lets the AWS service principal `service` (such as
    /// `ecs-tasks.amazonaws.com`) assume it, as a compute service assumes a workload's role:
    /// `sts:AssumeRole` with `sts:RoleSessionName`, decided by the trust policy and the
    /// role's account's RCPs alone (a service principal has no identity policies or SCPs).
    pub fn service_may_assume(
        &self,
        service: &str,
        role_arn: &str,
        session_name: &str,
        now: SystemTime,
    ) -> Result<(), String> {
        let parsed = Arn::parse(role_arn);
        let role = self
            .role_by_arn(role_arn, parsed.as_ref())
            .ok_or_else(|| format!("no role `{role_arn}` in the bundle"))?;
        let mut keys = Context::new();
        keys.insert(
            "sts:RoleSessionName",
            ContextValue::Single(session_name.to_owned()),
        );
        for (k, v) in time_keys(now).iter() {
            keys.insert(k, v.clone());
        }
        keys.insert(
            "aws:PrincipalIsAWSService",
            ContextValue::Single("true".into()),
        );
        keys.insert(
            "aws:PrincipalServiceName",
            ContextValue::Single(service.to_owned()),
        );
        let role_account = self.accounts.get(role.account.as_str());
        if let Some(a) = role_account {
            for (k, v) in a.resource_keys.iter() {
                keys.insert(k, v.clone());
            }
        }
        let principal = Principal {
            arn: Cow::Borrowed(service),
            partition: Cow::Borrowed(bundle::PARTITION),
            account: Cow::Borrowed(""),
            kind: PrincipalKind::Service {
                name: Cow::Borrowed(service),
            },
            unique_id: None,
        };
        let action = Action::parse("sts:AssumeRole")?;
        let request = Request::with_resource_arn(
            &principal,
            &action,
            &role.arn,
            parsed,
            &role.account,
            &keys,
        );
        let policies = Policies {
            identity: &self.empty,
            resource: role.trust.as_slice(),
            boundary: None,
            session: None,
            scps: &[],
            rcps: role_account.map_or(&[][..], |a| &a.rcps),
            resource_policy_required: true,
        };
        let outcome = eval::evaluate(&request, &policies);
        if outcome.decision == eval::Decision::Allow {
            Ok(())
        } else {
            Err(format!(
                "the trust policy of `{role_arn}` does not allow the service `{service}` to assume it ({})",
                outcome.reason.as_str()
            ))
        }
    }

    /// Every user the snapshot holds, by ARN (in no particular order): what reverse
    /// queries ask about.
    pub fn user_arns(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(|arn| &**arn)
    }

    /// Every role the snapshot holds: its account, its name (what a session ARN names)
    /// and its ARN (with its path), in no particular order.
    pub fn role_names(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.roles.iter().flat_map(|(account, roles)| {
            roles
                .iter()
                .map(move |(name, r)| (account.as_str(), name.as_str(), &*r.arn))
        })
    }

    /// Every account the snapshot knows (in the organization, or holding identities), in
    /// no particular order: their roots are principals a resource policy can name.
    pub fn account_ids(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// Through what the identity policy `policy` reaches the user or role `arn` (its ARN
    /// with the path): `user`, `role`, `group NAME`; empty when it does not.
    pub fn attached_via(&self, arn: &str, policy: &str) -> Vec<&str> {
        let id = self.users.get(arn).or_else(|| {
            let parsed = Arn::parse(arn);
            self.role_by_arn(arn, parsed.as_ref())
        });
        id.map(|id| {
            id.via
                .iter()
                .filter(|(p, _)| &**p == policy)
                .map(|(_, v)| v.as_str())
                .collect()
        })
        .unwrap_or_default()
    }

    /// The policy layers on the principal's side of a resolved caller, named: its
    /// identity policies, its boundary, its session's policies, its account's SCP levels.
    /// Reverse queries read their statements for candidate resource patterns and the
    /// denies that narrow them; decisions are made by [`Snapshot::decide`] alone.
    pub fn principal_layers<'a>(&'a self, who: &Resolved<'a>) -> Vec<(PolicyKind, &'a PolicySet)> {
        let mut out = vec![(
            PolicyKind::Identity,
            who.identity.map_or(&self.empty, |i| &*i.identity),
        )];
        if let Some(b) = who.identity.and_then(|i| i.boundary.as_deref()) {
            out.push((PolicyKind::Boundary, b));
        }
        if let Some(s) = who.session.and_then(|s| s.policies.as_deref()) {
            out.push((PolicyKind::Session, s));
        }
        for scp in who.account_info.map_or(&[][..], |a| &a.scps) {
            out.push((PolicyKind::Scp, scp));
        }
        out
    }

    /// Whether a resource-side policy could take part in deciding `q` (a resource policy
    /// of the resource, or the role's trust policy for `sts:AssumeRole*`), or the action
    /// needs no permission (`sts:GetCallerIdentity`). When not, only an identity policy's
    /// `Allow` (or a root acting in its account) can make [`Snapshot::decide`] answer
    /// Allow: see [`Snapshot::identity_may_allow`].
    pub fn resource_may_grant(&self, q: &Question<'_>) -> bool {
        if q.action.as_str() == "sts:getcalleridentity" {
            return true;
        }
        if eval::resource_policy_required(q.action.as_str()) && q.action.service() == "sts" {
            return self
                .role_by_arn(q.resource, q.resource_arn.as_ref())
                .is_some_and(|r| r.trust.is_some());
        }
        !self
            .resource_entries(q.resource, q.resource_arn.as_ref())
            .is_empty()
    }

    /// Whether the identity policies of the user or role `arn` (with its path) hold an
    /// `Allow` statement that is a candidate for `action` (its index's, before conditions
    /// and resources are read); true for an ARN the snapshot does not hold. When false and
    /// [`Snapshot::resource_may_grant`] is false, `eval::evaluate` has no path to Allow for
    /// the user or the role's session (its identity allow is missing, and every other
    /// Allow path needs a resource policy or a root caller), so reverse queries skip it.
    pub fn identity_may_allow(&self, arn: &str, action: &Action) -> bool {
        let id = self.users.get(arn).or_else(|| {
            let parsed = Arn::parse(arn);
            self.role_by_arn(arn, parsed.as_ref())
        });
        let Some(id) = id else { return true };
        let mut any = false;
        id.identity.for_candidates(action, |c| {
            any = c.effect == crate::policy::Effect::Allow;
            !any
        });
        any
    }

    /// Every resource policy the snapshot holds with the ARN (or ARN pattern) it is bound
    /// to, written out; in no particular order.
    pub fn resource_bindings(&self) -> Vec<(String, &PolicySet)> {
        let mut out: Vec<(String, &PolicySet)> = self
            .resources_exact
            .iter()
            .flat_map(|(arn, v)| v.iter().map(move |e| (arn.clone(), &*e.set)))
            .collect();
        for e in self
            .resources_pattern
            .by_head
            .values()
            .flatten()
            .chain(&self.resources_pattern.any_head)
        {
            out.push((e.pattern.text(), &*e.entry.set));
        }
        out
    }

    /// Everything on the resource side that can tell two resources apart for one
    /// principal: what a reverse query that explores every resource (`WhatCan` without one,
    /// `CanAny`) must split the resource space by. See [`ResourceSide`].
    pub fn resource_side(&self) -> ResourceSide<'_> {
        let mut exact: Vec<(&str, &PolicySet)> = self
            .resources_exact
            .iter()
            .flat_map(|(arn, v)| v.iter().map(move |e| (arn.as_str(), &*e.set)))
            .collect();
        exact.sort_by(|a, b| a.0.cmp(b.0));
        let mut patterns: Vec<(usize, &ArnPattern, &PolicySet)> = self
            .resources_pattern
            .by_head
            .values()
            .flatten()
            .chain(&self.resources_pattern.any_head)
            .map(|e| (e.order, &e.pattern, &*e.entry.set))
            .collect();
        patterns.sort_by_key(|p| p.0);
        let mut roles: Vec<(&str, Option<&PolicySet>)> = self
            .roles
            .values()
            .flat_map(|roles| roles.values().map(|r| (&*r.arn, r.trust.as_deref())))
            .collect();
        roles.sort_by(|a, b| a.0.cmp(b.0));
        let mut accounts: Vec<&str> = self.accounts.keys().map(String::as_str).collect();
        accounts.sort_unstable();
        let mut rcps: Vec<&PolicySet> = Vec::new();
        let mut seen: Vec<usize> = Vec::new();
        for a in &accounts {
            for set in self.accounts.get(*a).map_or(&[][..], |i| &i.rcps) {
                let ptr = Arc::as_ptr(set) as usize;
                if !seen.contains(&ptr) {
                    seen.push(ptr);
                    rcps.push(set);
                }
            }
        }
        ResourceSide {
            exact,
            patterns: patterns.into_iter().map(|(_, p, s)| (p, s)).collect(),
            roles,
            accounts,
            rcps,
        }
    }

    /// Statements compiled (each distinct policy set counted once).
    pub fn statement_count(&self) -> usize {
        self.statements
    }

    /// Checks a request's action (read from `text`) against the catalog: one hash lookup
    /// for a known action; for any other, what is wrong with it.
    pub fn check_action(&self, action: &Action, text: &str) -> Result<(), String> {
        if self.actions.contains(action.keys().0, action.as_str()) {
            return Ok(());
        }
        let mut problem = Action::problem(text);
        if problem.ends_with("of the catalog") && self.catalog.service(action.service()).is_none() {
            problem.push_str(" (no such service)");
        }
        Err(problem)
    }

    /// One request given as text, parsed as the service parses it, resolved and decided:
    /// for tools, tests and benchmarks that hold a snapshot without a service (which also
    /// checks sizes, the catalog and `min_revision`). `Err` names what is malformed.
    pub fn ask(
        &self,
        principal: &str,
        action: &str,
        resource: &str,
        context: &CallerContext,
        now: SystemTime,
    ) -> Result<Authorization, String> {
        self.ask_as(principal, None, action, resource, context, now)
    }

    /// [`Snapshot::ask`] for a caller holding `session` (a verified session's facts, its
    /// policies already built for this snapshot): what `warden authorize` and `warden
    /// compare` decide for a session given offline.
    pub fn ask_as(
        &self,
        principal: &str,
        session: Option<&Session>,
        action: &str,
        resource: &str,
        context: &CallerContext,
        now: SystemTime,
    ) -> Result<Authorization, String> {
        Ok(self
            .ask_text((principal, session), action, resource, context, now, false)?
            .0)
    }

    /// Like [`Snapshot::ask`], with every layer and statement explained (`None` for an
    /// unknown principal).
    pub fn explain(
        &self,
        principal: &str,
        action: &str,
        resource: &str,
        context: &CallerContext,
        now: SystemTime,
    ) -> Result<(Authorization, Option<eval::Explanation>), String> {
        self.ask_text((principal, None), action, resource, context, now, true)
    }

    fn ask_text(
        &self,
        (principal, session): (&str, Option<&Session>),
        action: &str,
        resource: &str,
        context: &CallerContext,
        now: SystemTime,
        explain: bool,
    ) -> Result<(Authorization, Option<eval::Explanation>), String> {
        let parsed = Action::parse(action)?;
        self.check_action(&parsed, action)?;
        let question = Question {
            action: &parsed,
            resource,
            resource_arn: parse_resource(resource)?,
            context: CallerView::of(context),
        };
        Ok(match self.resolve(principal, session, now)? {
            Some(who) => self.decide(&who, &question, now, explain),
            None => (Authorization::unknown_principal(), None),
        })
    }

    /// Principal resolution: the caller's principal (an ARN; with the `session` the
    /// caller's credentials verified, if any), its policies, and the keys the server owns
    /// about it. `Ok(None)` when the snapshot does not know the principal (or the role of a
    /// session); `Err` when the ARN is not a principal's, or not in the bundle's partition.
    ///
    /// A user's keys are built once at compile time; a role session adds its id
    /// (`AROA...:SESSION`), and a verified session its own facts (session tags over the
    /// role's or user's, MFA, issue time, source identity). A user's session
    /// (`GetSessionToken`) resolves as the user with its session's facts.
    pub fn resolve<'a>(
        &'a self,
        principal: &'a str,
        session: Option<&'a Session>,
        now: SystemTime,
    ) -> Result<Option<Resolved<'a>>, String> {
        // A user the snapshot holds is found by its ARN, which is well formed by
        // construction: nothing is parsed (most requests, callgrind). Any other principal
        // is parsed once, here.
        // A user's verified session (`GetSessionToken`) acts as the user, with the
        // session's own keys (issue time, MFA) over the user's.
        if let Some(id) = self.users.get(principal) {
            let Some(p) = id.principal.as_ref() else {
                return Ok(None);
            };
            let mut own_keys = Context::new();
            if let Some(s) = session {
                session_keys(s, now, &mut own_keys);
            }
            return Ok(Some(self.resolved(
                Caller::Known(p),
                Some(id),
                session,
                own_keys,
                None,
                (principal, &id.account),
            )));
        }
        let arn = parse_principal(principal)?;
        Ok(self.resolve_parsed(&arn, session, now))
    }

    /// [`Snapshot::resolve`] for a principal other than a known user, its ARN parsed.
    fn resolve_parsed<'a>(
        &'a self,
        arn: &PrincipalArn<'a>,
        session: Option<&'a Session>,
        now: SystemTime,
    ) -> Option<Resolved<'a>> {
        let mut own_keys = Context::new();
        let mut session_uid: Option<ContextValue> = None;
        let (principal, identity) = match arn.kind {
            ArnKind::AssumedRole {
                role,
                session: name,
            } => {
                // A role session borrows its role's ARN (with the path) from the store.
                let id = self.roles.get(arn.account)?.get(role)?;
                let mut principal = Principal::from_parsed(arn, |_, _, _| Cow::Borrowed(&*id.arn));
                let mut uid = String::with_capacity(id.unique_id.len() + 1 + name.len());
                uid.push_str(&id.unique_id);
                uid.push(':');
                uid.push_str(name);
                session_uid = Some(ContextValue::Single(uid.clone()));
                principal.unique_id = Some(Cow::Owned(uid));
                (Caller::Parsed(Box::new(principal)), Some(&**id))
            }
            ArnKind::Root
                if session.is_none()
                    && (self.accounts.contains_key(arn.account)
                        || self.has_account_identities(arn.account)) =>
            {
                let mut principal = Principal::from_parsed(arn, |_, _, _| Cow::Borrowed(""));
                principal.unique_id = Some(Cow::Borrowed(arn.account));
                own_keys = principal_keys(&principal, &[]);
                (Caller::Parsed(Box::new(principal)), None)
            }
            // A user ARN the snapshot does not know, a verified session that is not a
            // role session, or a caller that is not an IAM principal of the store.
            _ => return None,
        };
        if let Some(s) = session {
            session_keys(s, now, &mut own_keys);
        }
        let account = identity.map_or(arn.account, |id| &id.account);
        Some(self.resolved(
            principal,
            identity,
            session,
            own_keys,
            session_uid,
            (arn.text, account),
        ))
    }

    /// A resolved principal: the parts that follow from its identity and account.
    fn resolved<'a>(
        &'a self,
        principal: Caller<'a>,
        identity: Option<&'a Identity>,
        session: Option<&'a Session>,
        mut own_keys: Context,
        session_uid: Option<ContextValue>,
        (arn, account): (&'a str, &'a str),
    ) -> Resolved<'a> {
        let account_info = self.accounts.get(account);
        // An account the snapshot does not hold: its one key is this principal's own.
        let account_keys = match account_info {
            Some(a) => &a.principal_keys,
            None => {
                for (k, v) in principal_account_keys(account, None, None).iter() {
                    own_keys.insert(k, v.clone());
                }
                &NO_KEYS
            }
        };
        Resolved {
            principal,
            identity,
            session,
            account,
            account_info,
            own_keys,
            session_uid,
            identity_keys: identity.map_or(&NO_KEYS, |id| &id.keys),
            account_keys,
            cache: match session {
                Some(s) => CacheIdentity::Session(&s.id),
                None => CacheIdentity::Principal(arn),
            },
        }
    }

    /// Decides one question for a resolved principal: gathers the resource's policies and
    /// keys, evaluates, and explains every layer and statement when `explain` is set.
    pub fn decide<'a>(
        &'a self,
        who: &Resolved<'a>,
        q: &Question<'a>,
        now: SystemTime,
        explain: bool,
    ) -> (Authorization, Option<eval::Explanation>) {
        let target = self.target(who, q);
        let time = time_keys(now);
        let keys = Keys::new(who, &target, &time, q.context);
        let request = Request::with_resource_arn(
            who.principal(),
            q.action,
            q.resource,
            q.resource_arn,
            target.resource_account,
            &keys,
        );
        let policies = Policies {
            identity: who.identity.map_or(&self.empty, |i| &i.identity),
            resource: target
                .resource_set
                .as_ref()
                .map_or(&[][..], ResourcePolicies::sets),
            boundary: who.identity.and_then(|i| i.boundary.as_deref()),
            session: who.session.and_then(|s| s.policies.as_deref()),
            scps: who.account_info.map_or(&[][..], |a| &a.scps),
            rcps: target.rcps,
            resource_policy_required: target.resource_policy_required,
        };
        let time_dependent = policies.identity.time_dependent()
            || policies.resource.iter().any(|s| s.time_dependent())
            || policies.boundary.is_some_and(PolicySet::time_dependent)
            || policies.session.is_some_and(PolicySet::time_dependent)
            || policies
                .scps
                .iter()
                .chain(policies.rcps)
                .any(|s| s.time_dependent());
        let authorization = Authorization {
            outcome: eval::evaluate(&request, &policies),
            time_dependent,
        };
        (
            authorization,
            explain.then(|| eval::explain(&request, &policies)),
        )
    }

    /// The policies and keys one decision reads, layer by layer: what a self-contained
    /// evaluation case of it holds (`warden authorize --case`, `warden eval`).
    pub fn gather<'a>(
        &'a self,
        who: &Resolved<'a>,
        q: &Question<'a>,
        now: SystemTime,
    ) -> Gathered<'a> {
        let target = self.target(who, q);
        let time = time_keys(now);
        let context = Keys::new(who, &target, &time, q.context).collect();
        let policies = |set: &PolicySet| set.policies().to_vec();
        Gathered {
            resource_account: target.resource_account,
            context,
            identity: who
                .identity
                .map(|i| policies(&i.identity))
                .unwrap_or_default(),
            boundary: who
                .identity
                .and_then(|i| i.boundary.as_deref())
                .map(policies),
            session: who
                .session
                .and_then(|s| s.policies.as_deref())
                .map(policies),
            resource: target
                .resource_set
                .as_ref()
                .map(|r| {
                    r.sets()
                        .iter()
                        .flat_map(|s| s.policies())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            scps: who
                .account_info
                .map(|a| a.scps.iter().map(|s| policies(s)).collect())
                .unwrap_or_default(),
            rcps: target.rcps.iter().map(|s| policies(s)).collect(),
        }
    }

    /// The resource side of a question: its policies, its account, and the keys that
    /// follow from them.
    ///
    /// The resource's account is its ARN's; for an ARN without one (`arn:aws:s3:::bucket`)
    /// the account of the bundle's resource entry for it; with neither, no account, so the
    /// request is decided as cross-account (the safe reading: only a resource policy can
    /// then grant). `*` (an action without resource-level permissions) is the principal's
    /// own account.
    fn target<'a>(&'a self, who: &Resolved<'a>, q: &Question<'a>) -> Target<'a> {
        let single = |s: &str| ContextValue::Single(s.to_owned());
        let mut item_keys = Context::new();
        let resource_policy_required = eval::resource_policy_required(q.action.as_str());
        // `sts:AssumeRole*`, `sts:TagSession` and `sts:SetSourceIdentity` on a role are
        // decided by its trust policy.
        let assume_role = resource_policy_required && q.action.service() == "sts";
        let mut resource_set: Option<ResourcePolicies<'a>> = None;
        let mut entry_account: Option<&'a str> = None;
        let mut resource_tags_owned = false;
        if assume_role {
            if let Some(role) = self.role_by_arn(q.resource, q.resource_arn.as_ref()) {
                resource_set = role.trust.as_ref().map(ResourcePolicies::One);
                entry_account = Some(&role.account);
            }
        } else {
            let entries = self.resource_entries(q.resource, q.resource_arn.as_ref());
            if let Some(first) = entries.first() {
                entry_account = Some(&first.account);
                if entries.iter().any(|e| !e.tags.is_empty()) {
                    resource_tags_owned = true;
                    for e in &entries {
                        for (k, v) in &e.tags {
                            item_keys.insert(&format!("aws:ResourceTag/{k}"), single(v));
                        }
                    }
                }
                resource_set = Some(if entries.len() == 1 {
                    ResourcePolicies::One(&first.set)
                } else {
                    ResourcePolicies::Several(Box::new(
                        entries.iter().map(|e| e.set.clone()).collect(),
                    ))
                });
            }
        }
        let resource_account: &'a str = match &q.resource_arn {
            None => who.account,
            Some(a) if !a.account.is_empty() => a.account,
            Some(_) => entry_account.unwrap_or(""),
        };
        // The organization of accounts a caller names (a VPC endpoint's owner, the source
        // of a service's request) is the server's to say.
        if q.context.names_accounts() {
            self.organization_of_named_accounts(q.context, &mut item_keys);
        }
        // Looked up again only when the resource is not in the principal's own account.
        let resource_account_info = if resource_account == who.account {
            who.account_info
        } else {
            self.accounts.get(resource_account)
        };
        // An account the snapshot does not hold: its one key is this question's own.
        let (account_keys, rcps) = match resource_account_info {
            Some(a) => (&a.resource_keys, a.rcps.as_slice()),
            None => {
                if !resource_account.is_empty() {
                    for (k, v) in resource_keys(resource_account, None, None).iter() {
                        item_keys.insert(k, v.clone());
                    }
                }
                (&NO_KEYS, &[][..])
            }
        };
        Target {
            resource_set,
            resource_account,
            rcps,
            item_keys,
            account_keys,
            resource_tags_owned,
            resource_policy_required,
        }
    }

    /// The organization keys of the accounts a caller names (a VPC endpoint's owner, the
    /// source of a service's request): the server's to say, never the caller's.
    fn organization_of_named_accounts(&self, caller: CallerView<'_>, out: &mut Context) {
        let named = [
            ("aws:VpceOrgID", "aws:VpceOrgPaths"),
            ("aws:SourceOrgID", "aws:SourceOrgPaths"),
        ];
        for (given, (org_id, org_paths)) in ACCOUNT_KEYS.iter().zip(named) {
            let account = caller.get(given).and_then(ContextValue::single);
            if let (Some(org), Some(path)) = (
                self.org_id.as_deref(),
                account.and_then(|a| self.accounts.get(a)?.org_path.as_deref()),
            ) {
                out.insert(org_id, ContextValue::Single(org.to_owned()));
                out.insert(org_paths, ContextValue::Multi(vec![path.to_owned()]));
            }
        }
    }

    fn has_account_identities(&self, account: &str) -> bool {
        self.users.values().any(|u| u.account == account) || self.roles.contains_key(account)
    }

    /// The role whose ARN is `arn` (split beforehand as `parsed`).
    fn role_by_arn(&self, arn: &str, parsed: Option<&Arn<'_>>) -> Option<&Arc<Identity>> {
        let a = parsed?;
        let name = a.resource.strip_prefix("role/")?.rsplit('/').next()?;
        self.roles
            .get(a.account)?
            .get(name)
            .filter(|r| *r.arn == *arn)
    }

    /// The resource-policy entries of `resource` (split beforehand as `arn`): the exact
    /// ARN's, then every pattern's that matches it.
    fn resource_entries(&self, resource: &str, arn: Option<&Arn<'_>>) -> Vec<&Arc<ResourceEntry>> {
        let mut out: Vec<&Arc<ResourceEntry>> = self
            .resources_exact
            .get(resource)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        self.resources_pattern.matching(arn, &mut out);
        out
    }
}

/// Resource policies bound to an ARN pattern, found without trying every pattern: a
/// pattern whose first five parts hold no wildcard (`arn:aws:orders:us-east-1:111122223333`,
/// the usual case) is filed under them, so a request tries only the patterns of its
/// resource's service, region and account, and those with a wildcard there.
#[derive(Debug, Default)]
struct ResourcePatterns {
    by_head: FxHashMap<Box<str>, Vec<PatternEntry>>,
    any_head: Vec<PatternEntry>,
    count: usize,
}

#[derive(Debug)]
struct PatternEntry {
    /// The place in the bundle, so that a resource several patterns match sees their
    /// policies in the bundle's order whichever list each sits in.
    order: usize,
    pattern: ArnPattern,
    entry: Arc<ResourceEntry>,
}

impl ResourcePatterns {
    fn push(&mut self, pattern: ArnPattern, entry: Arc<ResourceEntry>) {
        let head = pattern.exact_head().map(Box::<str>::from);
        let e = PatternEntry {
            order: self.count,
            pattern,
            entry,
        };
        self.count += 1;
        match head {
            Some(h) => self.by_head.entry(h).or_default().push(e),
            None => self.any_head.push(e),
        }
    }

    /// Appends the entries whose pattern matches `arn` (the request's resource split, `None`
    /// when it is not an ARN), in bundle order.
    fn matching<'s>(&'s self, arn: Option<&Arn<'_>>, out: &mut Vec<&'s Arc<ResourceEntry>>) {
        if self.count == 0 {
            return;
        }
        let ctx = Context::new();
        let same_head = arn
            .and_then(|a| self.by_head.get(a.head))
            .map_or(&[][..], Vec::as_slice);
        let mut found: SmallVec<[&PatternEntry; 4]> = same_head
            .iter()
            .chain(&self.any_head)
            .filter(|e| e.pattern.matches(arn, &ctx) == Some(true))
            .collect();
        found.sort_unstable_by_key(|e| e.order);
        out.extend(found.into_iter().map(|e| &e.entry));
    }
}

/// The keys the server owns that follow from a principal itself: its ARN (the role's for a
/// session), type, name, id and tags. Its account's keys are a layer of their own, shared.
fn principal_keys(principal: &Principal, tags: &[(String, String)]) -> Context {
    let single = |s: &str| ContextValue::Single(s.to_owned());
    let mut ctx = Context::new();
    if let PrincipalKind::User { name } = &principal.kind {
        ctx.insert("aws:username", single(name));
    }
    if let Some(arn) = principal.principal_arn() {
        ctx.insert("aws:PrincipalArn", single(arn));
    }
    ctx.insert("aws:PrincipalType", single(principal.kind.type_name()));
    if let Some(uid) = &principal.unique_id {
        ctx.insert("aws:userid", single(uid));
    }
    for (k, v) in tags {
        ctx.insert(&format!("aws:PrincipalTag/{k}"), single(v));
    }
    // Present for every signed request of an IAM principal (reference §6): it is not a
    // service principal, and no service forwards its request (warden has no forward
    // access sessions).
    ctx.insert("aws:PrincipalIsAWSService", single("false"));
    ctx.insert("aws:ViaAWSService", single("false"));
    ctx.shrink_to_fit();
    ctx
}

/// The keys a verified session adds to its role's: its tags (over the role's), MFA, issue
/// time and source identity.
fn session_keys(s: &Session, now: SystemTime, out: &mut Context) {
    let single = |v: String| ContextValue::Single(v);
    for (k, v) in &s.tags {
        out.insert(&format!("aws:PrincipalTag/{k}"), single(v.clone()));
    }
    out.insert("aws:TokenIssueTime", single(format_time(s.issued_at)));
    out.insert(
        "aws:MultiFactorAuthPresent",
        single(s.mfa_at.is_some().to_string()),
    );
    if let Some(at) = s.mfa_at {
        let age = now.duration_since(at).map_or(0, |d| d.as_secs());
        out.insert("aws:MultiFactorAuthAge", single(age.to_string()));
    }
    if let Some(id) = &s.source_identity {
        out.insert("aws:SourceIdentity", single(id.clone()));
    }
    if let Some(w) = &s.web_identity {
        for (k, v) in w.keys.iter() {
            out.insert(k, v.clone());
        }
    }
}

/// A time as AWS writes dates in condition context: `2026-12-01T22:18:15Z`.
fn format_time(t: SystemTime) -> String {
    let utc: chrono::DateTime<chrono::Utc> = t.into();
    utc.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The keys the server owns that follow from the principal's account (`side` =
/// `Principal`) or from the resource's (`side` = `Resource`): `aws:{side}Account`, and
/// `aws:{side}OrgID` / `aws:{side}OrgPaths` when the account is in the organization.
fn account_keys(
    side: &str,
    account: &str,
    org_id: Option<&str>,
    org_path: Option<&str>,
) -> Context {
    let mut ctx = Context::new();
    ctx.insert(
        &format!("aws:{side}Account"),
        ContextValue::Single(account.to_owned()),
    );
    if let (Some(org), Some(path)) = (org_id, org_path) {
        ctx.insert(
            &format!("aws:{side}OrgID"),
            ContextValue::Single(org.to_owned()),
        );
        ctx.insert(
            &format!("aws:{side}OrgPaths"),
            ContextValue::Multi(vec![path.to_owned()]),
        );
    }
    ctx
}

fn principal_account_keys(account: &str, org_id: Option<&str>, org_path: Option<&str>) -> Context {
    account_keys("Principal", account, org_id, org_path)
}

fn resource_keys(account: &str, org_id: Option<&str>, org_path: Option<&str>) -> Context {
    account_keys("Resource", account, org_id, org_path)
}

thread_local! {
    /// `aws:CurrentTime` and `aws:EpochTime` of the last second asked for on this thread:
    /// formatting a time costs more than a whole evaluation, and the values change once a
    /// second.
    static CLOCK: RefCell<Option<(i64, Rc<Context>)>> = const { RefCell::new(None) };
}

/// The time keys of `now`, formatted once per second per thread.
fn time_keys(now: SystemTime) -> Rc<Context> {
    // Keyed by whole seconds since the epoch; a time before the epoch is not cached.
    let second = now
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    if let Some(second) = second {
        let hit = CLOCK.with(|cell| match &*cell.borrow() {
            Some((s, keys)) if *s == second => Some(keys.clone()),
            _ => None,
        });
        if let Some(keys) = hit {
            return keys;
        }
    }
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut ctx = Context::new();
    ctx.insert("aws:CurrentTime", ContextValue::Single(format_time(now)));
    ctx.insert("aws:EpochTime", ContextValue::Single(secs.to_string()));
    let keys = Rc::new(ctx);
    if let Some(second) = second {
        CLOCK.with(|cell| *cell.borrow_mut() = Some((second, keys.clone())));
    }
    keys
}

/// The policies of a request's resource: its one entry's set, or, when several entries
/// match it (an exact ARN and patterns), each entry's compiled set, read in turn as one
/// layer; nothing is compiled for the request.
#[derive(Debug)]
enum ResourcePolicies<'a> {
    One(&'a Arc<PolicySet>),
    /// Boxed, so that [`Prepared`], which is moved about, stays small: a `Vec` or a boxed
    /// slice in place made it a word longer, and every request about 90 instructions
    /// dearer (callgrind, `benches/authorize_misses.rs`), in copies of `Prepared`.
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer: the box keeps `Prepared` a word shorter than the Vec would"
    )]
    Several(Box<Vec<Arc<PolicySet>>>),
}

impl ResourcePolicies<'_> {
    fn sets(&self) -> &[Arc<PolicySet>] {
        match self {
            ResourcePolicies::One(s) => std::slice::from_ref(*s),
            ResourcePolicies::Several(s) => s,
        }
    }
}

/// The server-owned keys of a principal the snapshot does not hold (an account's root),
/// and of a resource in no account.
static NO_KEYS: Context = Context::new();

/// A caller resolved against the snapshot (see [`Snapshot::resolve`]).
#[derive(Debug)]
pub struct Resolved<'a> {
    principal: Caller<'a>,
    identity: Option<&'a Identity>,
    session: Option<&'a Session>,
    /// The principal's account, and what the snapshot knows of it.
    account: &'a str,
    account_info: Option<&'a AccountInfo>,
    /// Server-owned keys of this principal alone, built for the request: an account
    /// root's, or a verified session's (read before the role's, so a session tag wins).
    own_keys: Context,
    /// A role session's `aws:userid` (`AROA...:SESSION`), the one key a session adds.
    session_uid: Option<ContextValue>,
    /// The keys that follow from the identity alone, built at compile time.
    identity_keys: &'a Context,
    /// `aws:PrincipalAccount` and the organization keys of the principal's account.
    account_keys: &'a Context,
    cache: CacheIdentity<'a>,
}

/// A user or role the snapshot holds (see [`Snapshot::entity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity<'a> {
    /// The user's ARN, or the role's with its path.
    pub arn: &'a str,
    pub account: &'a str,
    /// `AIDA...` for a user, `AROA...` for a role.
    pub unique_id: &'a str,
    /// A role's `max_session_duration` in seconds; 0 for a user.
    pub max_session_duration: u64,
}

/// A resolved principal: a user the snapshot holds (borrowed), or one made from a parsed
/// ARN (a role session, an account root). Boxed, so that [`Resolved`], which is moved
/// about, stays small.
#[derive(Debug)]
enum Caller<'a> {
    Known(&'a Principal<'static>),
    Parsed(Box<Principal<'a>>),
}

impl<'a> Resolved<'a> {
    /// Adds a key the server established for this one call, over the principal's own
    /// (the MFA a caller presents with `AssumeRole`): never a caller's key.
    pub(crate) fn insert_own_key(&mut self, key: &str, value: ContextValue) {
        self.own_keys.insert(key, value);
    }

    pub fn principal(&self) -> &Principal<'a> {
        match &self.principal {
            Caller::Known(p) => p,
            Caller::Parsed(p) => p,
        }
    }

    /// What the decision cache keys this principal's decisions by: the principal's ARN,
    /// or a verified session's id (two sessions of one role differ in what they carry).
    pub fn cache_identity(&self) -> CacheIdentity<'a> {
        self.cache
    }
}

/// What the resource side of a decision depends on, besides the resource's ARN matched by
/// statements' patterns (see [`Snapshot::resource_side`]): which resource policies bind
/// (by exact ARN or by pattern), which role an `sts:` action names (by its exact ARN),
/// and the resource's account (its RCPs, its keys, whether the request is cross-account).
#[derive(Debug)]
pub struct ResourceSide<'a> {
    /// Resource policies bound to one ARN, compared as text.
    pub exact: Vec<(&'a str, &'a PolicySet)>,
    /// Resource policies bound to an ARN pattern, in the bundle's order.
    pub patterns: Vec<(&'a ArnPattern, &'a PolicySet)>,
    /// Every role: its ARN and its trust policy, sorted by ARN.
    pub roles: Vec<(&'a str, Option<&'a PolicySet>)>,
    /// Every account the snapshot knows, sorted.
    pub accounts: Vec<&'a str>,
    /// Every account's RCP levels, each set once.
    pub rcps: Vec<&'a PolicySet>,
}

/// What one decision reads (see [`Snapshot::gather`]).
#[derive(Debug)]
pub struct Gathered<'a> {
    /// Empty when the resource belongs to no account.
    pub resource_account: &'a str,
    /// Every key the request is evaluated with: the server's, then the caller's.
    pub context: Context,
    pub identity: Vec<Arc<Policy>>,
    pub boundary: Option<Vec<Arc<Policy>>>,
    pub session: Option<Vec<Arc<Policy>>>,
    /// The resource's policies (a role's trust policy for `sts:AssumeRole`), as one layer.
    pub resource: Vec<Arc<Policy>>,
    /// SCP levels over the principal's account, root first; RCP levels over the resource's.
    pub scps: Vec<Vec<Arc<Policy>>>,
    pub rcps: Vec<Vec<Arc<Policy>>>,
}

/// The resource side of one question (see [`Snapshot::target`]).
struct Target<'a> {
    resource_set: Option<ResourcePolicies<'a>>,
    /// Empty when the resource belongs to no account (see [`Snapshot::target`]).
    resource_account: &'a str,
    /// RCP levels over the resource's account.
    rcps: &'a [Arc<PolicySet>],
    /// Server-owned keys of this question alone: the resource's tags, the organization of
    /// accounts the caller names.
    item_keys: Context,
    /// `aws:ResourceAccount` and the organization keys of the resource's account.
    account_keys: &'a Context,
    /// Whether the resource's own tags replace the caller's `aws:ResourceTag/*`.
    resource_tags_owned: bool,
    resource_policy_required: bool,
}

/// The context a request is evaluated with: the server's layers, then the caller's keys.
/// The caller's context holds only keys a caller may supply (see [`crate::keys`]), except
/// `aws:ResourceTag/*`, which the bundle's own tags of the resource replace.
#[derive(Debug)]
struct Keys<'k> {
    session_uid: Option<&'k ContextValue>,
    layers: [&'k Context; 6],
    caller: CallerView<'k>,
    resource_tags_owned: bool,
}

impl<'k> Keys<'k> {
    fn new(
        who: &'k Resolved<'_>,
        target: &'k Target<'_>,
        time: &'k Context,
        caller: CallerView<'k>,
    ) -> Keys<'k> {
        Keys {
            session_uid: who.session_uid.as_ref(),
            layers: [
                &who.own_keys,
                who.identity_keys,
                who.account_keys,
                &target.item_keys,
                target.account_keys,
                time,
            ],
            caller,
            resource_tags_owned: target.resource_tags_owned,
        }
    }

    /// Every key the request sees, each once, as [`Lookup::get`] would answer it.
    fn collect(&self) -> Context {
        let mut all = Context::new();
        if let Some(uid) = self.session_uid {
            all.insert("aws:userid", uid.clone());
        }
        for layer in self.layers {
            for (k, v) in layer.iter() {
                all.insert_default(k, v.clone());
            }
        }
        for (k, v) in self.caller.iter() {
            if !(self.resource_tags_owned && k.starts_with("aws:resourcetag/")) {
                all.insert_default(k, v.clone());
            }
        }
        all
    }
}

impl Lookup for Keys<'_> {
    fn get(&self, lower_key: &str) -> Option<&ContextValue> {
        if let Some(uid) = self.session_uid
            && lower_key == "aws:userid"
        {
            return Some(uid);
        }
        for layer in self.layers {
            if let Some(v) = layer.get(lower_key) {
                return Some(v);
            }
        }
        if self.resource_tags_owned && lower_key.starts_with("aws:resourcetag/") {
            return None;
        }
        self.caller.get(lower_key)
    }
}

/// Loads bundles one after another, each reusing what the previous load made and is
/// provably unchanged: the documents' results ([`bundle::Incremental`]), each account's
/// compiled part ([`AccountPart`]: its identities and resource policies) and the compiled
/// policy sets whose policies are the very same allocations as before. What it returns is
/// what [`Snapshot::load_files`] returns for the same files (the same decisions, digest
/// and statement count); only the time differs.
///
/// A set is reused when its policies, in the order this compile asks for them, are the
/// same `Arc<Policy>`s as a set of the previous snapshot: a policy is immutable, and a set
/// is a function of its policies in order. Comparing allocations is sound because the
/// loader holds the previous sets and parts (and so their policies, users, groups and
/// roles) until the next compile is done: no new one can be allocated where one of them
/// lives.
#[derive(Default)]
pub struct Loader {
    bundle: bundle::Incremental,
    /// The sets of the last snapshot compiled.
    registry: Registry,
    /// The sets its organization holds.
    org: Vec<Vec<usize>>,
    /// Its accounts' parts, by account id.
    parts: FxHashMap<String, Arc<AccountPart>>,
    /// Each shared file's hash, for the digest.
    digest: crate::digest::Cache,
}

/// What a load by [`Loader`] reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reused {
    pub documents: bundle::Reused,
    /// Compiled sets taken from the previous snapshot.
    pub sets: usize,
    /// Sets compiled.
    pub compiled: usize,
    /// Users and roles taken from the previous snapshot.
    pub identities: usize,
    /// Accounts whose compiled part was taken whole from the previous snapshot.
    pub accounts: usize,
}

impl Loader {
    /// Loads and compiles `files` as [`Snapshot::load_files`] does, reusing the previous
    /// load's work where it is unchanged. A failed load changes nothing the next one
    /// reuses but the documents' results, which depend on their texts only (and the next
    /// load does not start from the last bundle: it loads the files whole). Texts given
    /// as `Arc<str>` ([`bundle::SharedFiles`]) that are the very allocations of the
    /// previous load are known unchanged by address.
    pub fn load<T: bundle::Text>(
        &mut self,
        files: &BTreeMap<String, T>,
        revision: u64,
    ) -> Result<Snapshot, BundleError> {
        self.load_counted(files, revision).0
    }

    /// [`Loader::load`], and how much it reused.
    pub fn load_counted<T: bundle::Text>(
        &mut self,
        files: &BTreeMap<String, T>,
        revision: u64,
    ) -> (Result<Snapshot, BundleError>, Reused) {
        let (bundle, documents) = self.bundle.load_counted(files);
        let mut reused = Reused {
            documents,
            ..Reused::default()
        };
        let bundle = match bundle {
            Ok(b) => b,
            Err(e) => return (Err(e), reused),
        };
        // The digest of a load that started from the last bundle (the same paths, the
        // changed texts known) rehashes their runs alone. The digest cache then holds
        // the bundle the last successful load digested, the very one this load started
        // from.
        let digest = match self.bundle.changed() {
            Some((changed, replaced)) => self.digest.update(files, changed, replaced),
            None => None,
        }
        .unwrap_or_else(|| self.digest.of_files(files));
        let mut sets = SetCache {
            registry: std::mem::take(&mut self.registry),
            previous_org: std::mem::take(&mut self.org),
            previous_parts: std::mem::take(&mut self.parts),
            keep: true,
            ..SetCache::default()
        };
        let snapshot = Snapshot::compile_with(&bundle, revision, &mut sets).with_digest(digest);
        reused.compiled = sets.compiled;
        reused.sets = sets.registry.sets.len() - sets.compiled;
        reused.identities = sets.identities - sets.built;
        reused.accounts = sets.parts_reused;
        // The previous snapshot's parts not reused, and the sets only they held, are freed
        // here, on the loading thread (where the serving snapshot does not hold them too).
        self.registry = sets.registry;
        self.org = sets.org;
        self.parts = sets.parts;
        // For the next load to start from (`bundle::Incremental::keep`).
        self.bundle.keep(bundle);
        (Ok(snapshot), reused)
    }
}

impl Identity {
    /// Whether this identity (of the previous snapshot, built from the same user or role
    /// document) was built in `account` from these very sets, each policy given by the
    /// same source (`via`): then building it again would give the same identity.
    fn built_from(
        &self,
        account: &str,
        identity: &Arc<PolicySet>,
        boundary: Option<&Arc<PolicySet>>,
        trust: Option<&Arc<PolicySet>>,
        via: &[(Arc<str>, SmolStr)],
    ) -> bool {
        *self.account == *account
            && Arc::ptr_eq(&self.identity, identity)
            && same_set(self.boundary.as_ref(), boundary)
            && same_set(self.trust.as_ref(), trust)
            && self.via == via
    }
}

/// Whether two optional sets are the same allocation.
fn same_set(a: Option<&Arc<PolicySet>>, b: Option<&Arc<PolicySet>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Every set compiled, by its policies' allocations in the order its principal lists them
/// (each policy once), with the number of holders that take it: the organization and each
/// account's part. A set's statements depend on its key alone, so principals with the same
/// policies in the same order share one set, and a [`Loader`] keeps the registry from
/// compile to compile: an account's part taken whole takes its sets with it, untouched.
/// A set no holder takes any more leaves the registry when the compile ends.
///
/// The registry holds each set, and so its policies: while a key is in the registry, no
/// other policy can be allocated where one of its policies lives.
#[derive(Default)]
struct Registry {
    sets: FxHashMap<Vec<usize>, Held>,
    /// The statements of the sets held, each set counted once.
    statements: usize,
}

struct Held {
    set: Arc<PolicySet>,
    /// The organization, and the accounts' parts, that take the set.
    holders: usize,
}

/// One compile's sets and accounts' parts; with a [`Loader`], the previous compile's too.
#[derive(Default)]
struct SetCache {
    registry: Registry,
    /// The sets the organization takes, and took in the previous compile ([`Loader`]).
    org: Vec<Vec<usize>>,
    previous_org: Vec<Vec<usize>>,
    /// This compile's accounts' parts, and the previous one's not taken whole (yet).
    parts: FxHashMap<String, Arc<AccountPart>>,
    previous_parts: FxHashMap<String, Arc<AccountPart>>,
    /// The sets the holder being compiled (the organization or an account) takes.
    recording: Recording,
    /// Sets compiled (not found in the registry).
    compiled: usize,
    /// Users and roles in this compile, and how many were built (not taken from the
    /// previous snapshot).
    identities: usize,
    built: usize,
    /// Accounts' parts taken whole.
    parts_reused: usize,
    /// Whether the accounts' parts are kept for the next compile.
    keep: bool,
    texts: crate::compile::Texts,
}

impl SetCache {
    fn get(&mut self, mut policies: Vec<Arc<Policy>>) -> Arc<PolicySet> {
        // The same managed policy reached twice (directly and through a group) counts once,
        // where it is first reached: a set keeps the principal's order (inline, attached,
        // then the groups'), so which statement a decision names does not depend on where
        // the allocator put a policy, nor on which other principals share it.
        let mut seen: Vec<usize> = Vec::with_capacity(policies.len());
        policies.retain(|p| {
            let ptr = Arc::as_ptr(p) as usize;
            let first = !seen.contains(&ptr);
            if first {
                seen.push(ptr);
            }
            first
        });
        // The policies kept, each once, in order: the key.
        let key = seen;
        let Registry { sets, statements } = &mut self.registry;
        let (texts, compiled) = (&mut self.texts, &mut self.compiled);
        let held = sets.entry(key.clone()).or_insert_with(|| {
            *compiled += 1;
            Held {
                set: Arc::new(PolicySet::with_texts(policies, texts)),
                holders: 0,
            }
        });
        // Each holder takes a set once, however many of its principals reach it.
        if self.recording.seen.insert(Arc::as_ptr(&held.set) as usize) {
            if held.holders == 0 {
                *statements += held.set.statement_count();
            }
            held.holders += 1;
            self.recording.keys.push(key);
        }
        held.set.clone()
    }

    /// The previous compile's part of `account`, when compiling the account again would
    /// give the same (see [`AccountPart`]): its sets, which it holds in the registry, are
    /// the ones the same policies give.
    fn take_part(
        &mut self,
        account: &bundle::Account,
        managed: &BTreeMap<bundle::PolicyArn, Arc<Policy>>,
    ) -> Option<Arc<AccountPart>> {
        let part = self.previous_parts.get(&account.id)?;
        let same = same_allocations(&part.users, &account.users)
            && part.groups.len() == account.groups.len()
            && part
                .groups
                .iter()
                .zip(&account.groups)
                .all(|(a, b)| Arc::ptr_eq(a, b))
            && same_allocations(&part.roles, &account.roles)
            && same_allocations(&part.resources, &account.resources)
            && part
                .managed
                .iter()
                .all(|(arn, was)| match (managed.get(arn), was) {
                    (Some(now), Some(was)) => Arc::ptr_eq(now, was),
                    (None, None) => true,
                    _ => false,
                });
        if !same {
            return None;
        }
        // Taken: it keeps holding its sets.
        self.parts_reused += 1;
        self.previous_parts.remove(&account.id)
    }

    /// Once every holder of this compile has taken its sets: the previous organization and
    /// the previous parts not taken whole let go of theirs, and a set no holder takes any
    /// more leaves the registry.
    fn release(&mut self) {
        let org = std::mem::take(&mut self.previous_org);
        let parts = std::mem::take(&mut self.previous_parts);
        let Registry { sets, statements } = &mut self.registry;
        for key in org.iter().chain(parts.values().flat_map(|p| &p.sets)) {
            let unheld = sets.get_mut(key).is_some_and(|held| {
                held.holders = held.holders.saturating_sub(1);
                held.holders == 0
            });
            if unheld && let Some(held) = sets.remove(key) {
                *statements = statements.saturating_sub(held.set.statement_count());
            }
        }
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
                resource_keys: Context::new(),
                principal_keys: Context::new(),
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

/// What a compile made of one account: its users' and roles' identities, its resource
/// policies' entries, and what they were made from. A [`Loader`] keeps each account's part
/// for the next compile, which takes it whole ([`SetCache::take_part`]) when compiling the
/// account again would give the same: its users, groups, roles and resource policies are
/// the same allocations in the same order, and every managed policy they name resolves to
/// the same policy (or to none) as before. Its sets then have the same keys, and the
/// registry one set per key. Sharing a part shares its roles' map between the snapshots.
struct AccountPart {
    users: Vec<(Arc<bundle::User>, Arc<Identity>)>,
    groups: Vec<Arc<bundle::Group>>,
    roles: Vec<(Arc<bundle::Role>, Arc<Identity>)>,
    /// The roles by name, as a snapshot looks them up.
    by_name: Arc<FxHashMap<String, Arc<Identity>>>,
    resources: Vec<(Arc<bundle::ResourcePolicy>, Arc<ResourceEntry>)>,
    /// Each managed policy ARN its users, groups and roles name, and what it resolved to.
    managed: Vec<(bundle::PolicyArn, Option<Arc<Policy>>)>,
    /// The keys of the sets the account's identities and resources take (each once), which
    /// it holds in the registry.
    sets: Vec<Vec<usize>>,
}

/// The sets a holder (the organization, an account) takes, as its compile reaches them.
#[derive(Default)]
struct Recording {
    /// The sets taken, by allocation.
    seen: rustc_hash::FxHashSet<usize>,
    keys: Vec<Vec<usize>>,
}

/// Compiles one account's users, roles and resource policies. An identity of the previous
/// compile's part of the account is reused when built from the same user or role (the
/// same allocation) with the same sets and the same groups' policies.
fn compile_account(
    account: &bundle::Account,
    managed_policies: &BTreeMap<bundle::PolicyArn, Arc<Policy>>,
    sets: &mut SetCache,
) -> AccountPart {
    let managed = |arn: &String| managed_policies.get(arn).cloned();
    let previous = sets.previous_parts.get(&account.id).cloned();
    let previous_users: FxHashMap<&str, &(Arc<bundle::User>, Arc<Identity>)> = previous
        .iter()
        .flat_map(|p| &p.users)
        .map(|e| (e.0.arn.as_str(), e))
        .collect();
    let previous_roles: FxHashMap<&str, &(Arc<bundle::Role>, Arc<Identity>)> = previous
        .iter()
        .flat_map(|p| &p.roles)
        .map(|e| (e.0.arn.as_str(), e))
        .collect();
    sets.recording = Recording::default();
    let mut users = Vec::with_capacity(account.users.len());
    for u in &account.users {
        let mut policies: Vec<Arc<Policy>> = u.inline.clone();
        policies.extend(u.managed.iter().filter_map(managed));
        let mut via: Vec<(Arc<str>, SmolStr)> = policies
            .iter()
            .map(|p| (p.id.clone(), SmolStr::new_static("user")))
            .collect();
        for g in account.groups.iter().filter(|g| u.groups.contains(&g.name)) {
            let before = policies.len();
            policies.extend(g.inline.iter().cloned());
            policies.extend(g.managed.iter().filter_map(managed));
            let group = SmolStr::new(format!("group {}", g.name));
            via.extend(
                policies
                    .iter()
                    .skip(before)
                    .map(|p| (p.id.clone(), group.clone())),
            );
        }
        let identity = sets.get(policies);
        let boundary = u
            .boundary
            .as_ref()
            .and_then(managed)
            .map(|p| sets.get(vec![p]));
        // The previous snapshot's, when built from this very user (the same allocation:
        // the same document, loaded under the same names) with the same sets and the
        // same groups' policies.
        let previous = previous_users.get(u.arn.as_str()).filter(|(user, i)| {
            Arc::ptr_eq(user, u)
                && i.built_from(&account.id, &identity, boundary.as_ref(), None, &via)
        });
        if let Some((_, i)) = previous {
            users.push((u.clone(), i.clone()));
            continue;
        }
        let unique_id = unique_id("AIDA", &u.arn);
        let principal = Principal::from_arn(&u.arn).ok().map(|p| {
            let mut p = p.into_owned();
            p.unique_id = Some(Cow::Owned(unique_id.clone()));
            p
        });
        let keys = principal
            .as_ref()
            .map_or_else(Context::new, |p| principal_keys(p, &u.tags));
        let identity = Identity {
            arn: Arc::from(u.arn.as_str()),
            account: account.id.as_str().into(),
            unique_id,
            identity,
            boundary,
            trust: None,
            keys,
            principal,
            max_session: 0,
            via,
        };
        sets.built += 1;
        users.push((u.clone(), Arc::new(identity)));
    }
    let mut roles = Vec::with_capacity(account.roles.len());
    for r in &account.roles {
        let mut policies: Vec<Arc<Policy>> = r.inline.clone();
        policies.extend(r.managed.iter().filter_map(managed));
        let via: Vec<(Arc<str>, SmolStr)> = policies
            .iter()
            .map(|p| (p.id.clone(), SmolStr::new_static("role")))
            .collect();
        let identity = sets.get(policies);
        let boundary = r
            .boundary
            .as_ref()
            .and_then(managed)
            .map(|p| sets.get(vec![p]));
        let trust = sets.get(vec![r.trust.clone()]);
        // The previous snapshot's, as for a user.
        let previous = previous_roles.get(r.arn.as_str()).filter(|(role, i)| {
            Arc::ptr_eq(role, r)
                && i.built_from(
                    &account.id,
                    &identity,
                    boundary.as_ref(),
                    Some(&trust),
                    &via,
                )
        });
        if let Some((_, i)) = previous {
            roles.push((r.clone(), i.clone()));
            continue;
        }
        // The keys of any session of the role; each session adds its own id.
        let session = Principal {
            arn: Cow::Borrowed(&r.arn),
            partition: Cow::Borrowed(bundle::PARTITION),
            account: Cow::Borrowed(&account.id),
            kind: PrincipalKind::AssumedRole {
                role_name: Cow::Borrowed(&r.name),
                session_name: Cow::Borrowed(""),
                role_arn: Cow::Borrowed(&r.arn),
            },
            unique_id: None,
        };
        let identity = Identity {
            arn: Arc::from(r.arn.as_str()),
            account: account.id.as_str().into(),
            unique_id: unique_id("AROA", &r.arn),
            identity,
            boundary,
            trust: Some(trust),
            keys: principal_keys(&session, &r.tags),
            principal: None,
            max_session: r.max_session_duration,
            via,
        };
        sets.built += 1;
        roles.push((r.clone(), Arc::new(identity)));
    }
    let by_name = roles
        .iter()
        .map(|(r, i)| (r.name.clone(), i.clone()))
        .collect();
    let resources = account
        .resources
        .iter()
        .map(|res| {
            let entry = Arc::new(ResourceEntry {
                account: account.id.clone(),
                tags: res.tags.clone(),
                set: sets.get(vec![res.policy.clone()]),
            });
            (res.clone(), entry)
        })
        .collect();
    // Every managed policy name the account's identities resolve, once each.
    let mut named: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    let mut resolved = Vec::new();
    let names = account
        .users
        .iter()
        .flat_map(|u| u.managed.iter().chain(&u.boundary))
        .chain(account.groups.iter().flat_map(|g| &g.managed))
        .chain(
            account
                .roles
                .iter()
                .flat_map(|r| r.managed.iter().chain(&r.boundary)),
        );
    for name in names {
        if named.insert(name) {
            resolved.push((name.clone(), managed(name)));
        }
    }
    AccountPart {
        users,
        groups: account.groups.clone(),
        roles,
        by_name: Arc::new(by_name),
        resources,
        managed: resolved,
        sets: std::mem::take(&mut sets.recording).keys,
    }
}

/// Whether `a`'s first elements and `b` are the same allocations, in the same order.
fn same_allocations<T, U>(a: &[(Arc<T>, U)], b: &[Arc<T>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((x, _), y)| Arc::ptr_eq(x, y))
}

#[cfg(test)]
mod tests;

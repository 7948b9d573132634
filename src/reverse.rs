//! Reverse queries: who can do an action on a resource (`WhoCan`), what a principal can do
//! (`WhatCan`), and whether it can do anything to a resource type (`CanAny`), each answered
//! by asking [`Snapshot::resolve`] and [`Snapshot::decide`] — the functions `Authorize`
//! uses — for every principal or every catalog action, so an answer is exactly what
//! `Authorize` decides. There is no second evaluator here.
//!
//! Answers are paged and never truncated silently: a query's universe (the snapshot's
//! principals, or the catalog's actions) is walked in one fixed order; a page stops at its
//! size or at a work budget (decisions made), says `complete: false` and carries a cursor
//! (see [`cursor`]) that names the snapshot revision, a digest of the query and the
//! position. Every element of the universe is examined exactly once across the pages and
//! yields at most one item, so all pages together are the unlimited answer.

pub mod cursor;
mod regions;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::SystemTime;

use serde::Serialize;

use crate::arn::{ArnPattern, ShortArn};
use crate::context::{CallerContext, CallerView};
use crate::eval::{Decision, Matched, Outcome};
use crate::policy::{Effect, PolicyKind};
use crate::request::{Action, parse_resource};
use crate::service::RequestError;
use crate::snapshot::{Question, Resolved, Snapshot};
use crate::sts::assume::may_assume;
use crate::sts::grant::assumed_role_arn;

pub use crate::bundle::catalog::format_pattern;
pub use cursor::Cursor;

/// The session name roles are asked under when a query names none.
pub const DEFAULT_SESSION: &str = "warden-who-can";
/// The region a witness ARN is built in where a pattern or a catalog format leaves it
/// open.
pub const WITNESS_REGION: &str = "us-east-1";
/// What a witness ARN holds where a pattern has `*` or a variable.
pub const WITNESS_FILL: &str = "warden-witness";

/// Bounds on a reverse query's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items in a page when the query asks for no size.
    pub default_page: usize,
    /// Items in a page, at most; a larger size is refused.
    pub max_page: usize,
    /// Decisions one page may make before it stops (complete: false, with a cursor).
    pub budget: usize,
    /// Roles in a chain of `AssumeRole` calls followed back from a role in an answer; 0
    /// leaves out who may become the answer's roles (`assumable_by` is then empty).
    pub chain_depth: usize,
    /// Resource patterns one `WhatCan` action item lists, at most; more are said
    /// (`more_patterns`), never dropped silently.
    pub max_patterns: usize,
    /// Product states one split of the resource space may visit (`WhatCan` without a
    /// resource, `CanAny`: see [`regions`]); beyond it the action is undecided, never "no".
    pub max_states: usize,
    /// Regions (witness ARNs) one split may produce, at most; likewise.
    pub max_regions: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            default_page: 100,
            max_page: 1_000,
            budget: 50_000,
            chain_depth: 3,
            max_patterns: 256,
            max_states: crate::compare::space::MAX_STATES,
            max_regions: 20_000,
        }
    }
}

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Every principal of the snapshot allowed `action` on `resource`; roles are asked as
    /// the session `session_name`. Who may become a role is asked with an MFA code
    /// presented to `AssumeRole` when `assume_with_mfa` is set (trust policies often
    /// require it; an asserted caller carries none).
    WhoCan {
        action: String,
        resource: String,
        session_name: String,
        assume_with_mfa: bool,
    },
    /// The catalog actions `principal` is allowed: on `resource`, or (without one) on the
    /// resource patterns of the statements that allow it.
    WhatCan {
        principal: String,
        resource: Option<String>,
    },
    /// Whether `principal` may do any action of `resource_type` (`orders:order`) to some
    /// resource of that type, with witnesses.
    CanAny {
        principal: String,
        resource_type: String,
    },
}

impl Query {
    fn kind(&self) -> u8 {
        match self {
            Query::WhoCan { .. } => 1,
            Query::WhatCan { .. } => 2,
            Query::CanAny { .. } => 3,
        }
    }

    /// The text the cursor's digest is taken over: the query's kind, fields and context.
    fn canonical(&self, context: &CallerContext) -> Vec<u8> {
        let mut out = vec![self.kind()];
        let mut field = |s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        match self {
            Query::WhoCan {
                action,
                resource,
                session_name,
                assume_with_mfa,
            } => {
                field(action);
                field(resource);
                field(session_name);
                field(if *assume_with_mfa { "mfa" } else { "" });
            }
            Query::WhatCan {
                principal,
                resource,
            } => {
                field(principal);
                field(resource.as_deref().unwrap_or("\u{0}none"));
            }
            Query::CanAny {
                principal,
                resource_type,
            } => {
                field(principal);
                field(resource_type);
            }
        }
        let mut pairs: Vec<(String, Vec<String>)> = context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.values().to_vec()))
            .collect();
        pairs.sort();
        for (k, values) in pairs {
            field(&k);
            field(&values.len().to_string());
            for v in values {
                field(&v);
            }
        }
        out
    }
}

/// Which page to answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Items at most; `None` for the default.
    pub size: Option<usize>,
    /// Where the previous page stopped; `None` for the first page.
    pub cursor: Option<String>,
}

/// One page of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// The revision of the snapshot every decision of the page was made at.
    pub revision: u64,
    pub items: Vec<Item>,
    /// True when no item of the answer is left for a later page.
    pub complete: bool,
    /// The next page's cursor; present exactly when `complete` is false.
    pub next_cursor: Option<String>,
    /// Elements of the query's universe (principals or actions) examined by this page.
    pub examined: usize,
    /// Decisions this page made.
    pub decisions: usize,
    /// `WhatCan` without a resource and `CanAny`: the actions of this page found allowed
    /// on no resource without that being proven (a feature the split of the resource
    /// space cannot tell apart, or its bound). Every action examined and absent from both
    /// the items and this list is allowed on no resource at all.
    pub undecided: Vec<Undecided>,
}

/// An action whose "allowed nowhere" could not be proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undecided {
    pub action: String,
    /// What could not be decided, and where it is written.
    pub why: String,
}

/// One item of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Principal(PrincipalItem),
    Action(ActionItem),
    Witness(WitnessItem),
}

/// A principal `WhoCan` found allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalItem {
    /// The principal as it was asked: a user's ARN, a role's session ARN, an account's
    /// root.
    pub principal: String,
    /// `user`, `role` or `root`.
    pub kind: &'static str,
    /// The role's ARN (with its path), for a role.
    pub role: Option<String>,
    /// The decision's reason code (`identity_allow`, `cross_account_allow`, ...).
    pub reason: &'static str,
    pub statements: Vec<Because>,
    /// For a role: who may become it through trust policies, each by its shortest chain
    /// of `AssumeRole` calls (at most [`Limits::chain_depth`] roles long).
    pub assumable_by: Vec<AssumePath>,
}

/// A chain of `AssumeRole` calls that ends at a role of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssumePath {
    /// The principal who starts the chain (a user, a root, or a role's session).
    pub principal: String,
    /// The roles assumed in turn, ending with the answer's role.
    pub through: Vec<String>,
}

/// A catalog action `WhatCan` found allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionItem {
    /// `service:Action`, as the catalog spells it.
    pub action: String,
    pub service: String,
    /// The catalog's access level (`List`, `Read`, `Write`, `Tagging`,
    /// `Permissions management`).
    pub access: &'static str,
    /// What is exact about the item: `decision` (with a resource: the decision on it is
    /// `Authorize`'s) or `witness` (without: the action is allowed on each pattern's
    /// witness ARN, decided as `Authorize` decides; the rest of a pattern is an upper
    /// bound that conditions and `narrowed_by` may cut).
    pub exact: &'static str,
    /// The decision's reason and statements: on the resource, or on the first allowed
    /// witness.
    pub reason: &'static str,
    pub statements: Vec<Because>,
    /// Without a resource: the candidate patterns, each with its witness and decision.
    pub patterns: Vec<PatternItem>,
    /// True when more candidate patterns existed than [`Limits::max_patterns`].
    pub more_patterns: bool,
    /// Deny statements on the principal's side whose `Action` covers the action.
    pub narrowed_by: Vec<String>,
}

/// A resource pattern an allowing statement names, and the witness ARN decided inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatternItem {
    pub pattern: String,
    /// The statement that names it (`identity POLICY Sid X`, `resource ARN Statement[0]`).
    pub from: String,
    pub witness: String,
    pub decision: &'static str,
    pub reason: &'static str,
}

/// An action of a resource type `CanAny` found allowed on a witness resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WitnessItem {
    pub action: String,
    pub access: &'static str,
    pub resource: String,
    pub reason: &'static str,
    pub statements: Vec<Because>,
}

/// A statement that took part in a decision, and through what it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Because {
    /// `Allow` or `Deny`.
    pub effect: &'static str,
    /// As decisions name it: `identity POLICY Sid X`, `scp level 2 POLICY Statement[0]`.
    pub statement: String,
    /// Through what: `user`, `group NAME`, `role`, `resource policy`, `trust policy`,
    /// `permissions boundary`, `session policy`, `scp level N`, `rcp level N`.
    pub via: String,
}

/// Answers one page of a query against `snapshot`. `context` was screened as `Authorize`
/// screens a caller's (see [`crate::service::Service::screen_caller_context`]).
pub fn answer(
    snapshot: &Snapshot,
    query: &Query,
    context: &CallerContext,
    page: &PageRequest,
    limits: &Limits,
    now: SystemTime,
) -> Result<Answer, RequestError> {
    let size = match page.size {
        None | Some(0) => limits.default_page,
        Some(n) if n > limits.max_page => {
            return Err(RequestError::invalid(
                "page_size",
                format!("{n} is more than the maximum of {}", limits.max_page),
            ));
        }
        Some(n) => n,
    };
    let digest = cursor::digest(&query.canonical(context));
    let start = match &page.cursor {
        None => 0,
        Some(text) => Cursor::decode(text)?.position_for(snapshot.revision(), &digest)?,
    };
    let mut walk = Walk {
        snapshot,
        context,
        limits,
        now,
        decisions: 0,
        assumers: HashMap::new(),
        mfa: false,
        side: None,
    };
    let universe_len;
    let mut items = Vec::new();
    let mut undecided = Vec::new();
    let mut position = start;
    match query {
        Query::WhoCan {
            action,
            resource,
            session_name,
            assume_with_mfa,
        } => {
            check_session_name(session_name)?;
            walk.mfa = *assume_with_mfa;
            let (action, resource_arn) = parse_question(snapshot, action, resource)?;
            let subjects = subjects(snapshot, session_name);
            universe_len = subjects.len();
            check_start(start, universe_len)?;
            let resource_may_grant = snapshot.resource_may_grant(&Question {
                action: &action,
                resource,
                resource_arn,
                context: CallerView::of(context),
            });
            let q = Question {
                action: &action,
                resource,
                resource_arn,
                context: CallerView::of(context),
            };
            if limits.chain_depth == 0 {
                // Subjects are independent without who may become roles (no memo shared):
                // a window of them is decided on every core, then taken in order with the
                // same stops as one at a time, so pages and cursors are unchanged; what a
                // window decided past a stop is dropped.
                let mut window = 256;
                'page: while position < subjects.len() {
                    let end = subjects.len().min(position.saturating_add(window));
                    let decided = walk.who_window(
                        subjects.get(position..end).unwrap_or_default(),
                        &q,
                        session_name,
                        resource_may_grant,
                    );
                    for (decisions, item) in decided {
                        if items.len() >= size
                            || (position > start && walk.decisions >= limits.budget)
                        {
                            break 'page;
                        }
                        position += 1;
                        walk.decisions += decisions;
                        if let Some(item) = item {
                            items.push(Item::Principal(item));
                        }
                    }
                    window = window.saturating_mul(2).min(8_192);
                }
            } else {
                while let Some(s) = subjects.get(position) {
                    if items.len() >= size || (position > start && walk.decisions >= limits.budget)
                    {
                        break;
                    }
                    position += 1;
                    if let Some(item) = walk.who(s, &q, session_name, resource_may_grant) {
                        items.push(Item::Principal(item));
                    }
                }
            }
        }
        Query::WhatCan {
            principal,
            resource,
        } => {
            let who = resolve(snapshot, principal, now)?;
            let actions = catalog_actions(snapshot, None);
            universe_len = actions.len();
            check_start(start, universe_len)?;
            let resource = match resource {
                Some(r) => Some((r.as_str(), parse_field("resource", parse_resource(r))?)),
                None => None,
            };
            let candidates = match resource {
                Some(_) => Vec::new(),
                None => walk.candidates(&who),
            };
            while let Some(a) = actions.get(position) {
                if items.len() >= size || (position > start && walk.decisions >= limits.budget) {
                    break;
                }
                position += 1;
                let item = match resource {
                    Some((r, arn)) => walk.action_on(&who, a, r, arn),
                    None => walk.action_anywhere(&who, a, &candidates, &mut undecided),
                };
                if let Some(item) = item {
                    items.push(Item::Action(item));
                }
            }
        }
        Query::CanAny {
            principal,
            resource_type,
        } => {
            let who = resolve(snapshot, principal, now)?;
            let (service, noun) = resource_type.split_once(':').ok_or_else(|| {
                RequestError::invalid(
                    "resource_type",
                    format!("`{resource_type}` is not `service:type`"),
                )
            })?;
            let service = service.to_ascii_lowercase();
            let format = snapshot
                .catalog()
                .service(&service)
                .and_then(|s| s.resource_types.get(noun))
                .ok_or_else(|| {
                    RequestError::invalid(
                        "resource_type",
                        format!("`{resource_type}` is not a resource type of the catalog"),
                    )
                })?
                .clone();
            let actions = catalog_actions(snapshot, Some((&service, noun)));
            universe_len = actions.len();
            check_start(start, universe_len)?;
            let types: Vec<ArnPattern> = format_pattern(&format).into_iter().collect();
            let mut witnesses = vec![format_witness(&format, who.principal().account.as_ref())];
            for c in walk.candidates(&who) {
                if c.witness.split(':').nth(2) == Some(service.as_str())
                    && !witnesses.contains(&c.witness)
                {
                    witnesses.push(c.witness);
                }
            }
            while let Some(a) = actions.get(position) {
                if items.len() >= size || (position > start && walk.decisions >= limits.budget) {
                    break;
                }
                position += 1;
                if let Some(item) = walk.witness(&who, a, &witnesses, &types, &mut undecided) {
                    items.push(Item::Witness(item));
                }
            }
        }
    }
    let complete = position >= universe_len;
    let next_cursor = (!complete).then(|| {
        Cursor {
            kind: query.kind(),
            revision: snapshot.revision(),
            digest,
            position: position as u64,
        }
        .encode()
    });
    Ok(Answer {
        revision: snapshot.revision(),
        items,
        complete,
        next_cursor,
        examined: position - start,
        decisions: walk.decisions,
        undecided,
    })
}

/// Answers every page of a query, one after the other, at one snapshot: the unlimited
/// answer (for the CLI's `--all` and for tests), its pages' items, undecided actions,
/// examined elements and decisions put together.
pub fn answer_all(
    snapshot: &Snapshot,
    query: &Query,
    context: &CallerContext,
    size: Option<usize>,
    limits: &Limits,
    now: SystemTime,
) -> Result<Answer, RequestError> {
    let mut page = PageRequest { size, cursor: None };
    let mut all = Answer {
        revision: snapshot.revision(),
        items: Vec::new(),
        complete: true,
        next_cursor: None,
        examined: 0,
        decisions: 0,
        undecided: Vec::new(),
    };
    loop {
        let a = answer(snapshot, query, context, &page, limits, now)?;
        all.items.extend(a.items);
        all.undecided.extend(a.undecided);
        all.examined += a.examined;
        all.decisions += a.decisions;
        match a.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok(all),
        }
    }
}

/// A cursor's position must lie within its universe (a forged one may not).
fn check_start(start: usize, len: usize) -> Result<(), RequestError> {
    if start > len {
        return Err(RequestError::invalid(
            "cursor",
            "the cursor points past the end of its answer",
        ));
    }
    Ok(())
}

fn parse_field<T>(field: &str, r: Result<T, String>) -> Result<T, RequestError> {
    r.map_err(|m| RequestError::invalid(field, m))
}

/// The action (checked against the catalog) and resource of a `WhoCan`, parsed as the
/// service parses a request's.
fn parse_question<'r>(
    snapshot: &Snapshot,
    action: &str,
    resource: &'r str,
) -> Result<(Action, Option<crate::arn::Arn<'r>>), RequestError> {
    let parsed = parse_field("action", Action::parse(action))?;
    parse_field("action", snapshot.check_action(&parsed, action))?;
    let arn = parse_field("resource", parse_resource(resource))?;
    Ok((parsed, arn))
}

fn resolve<'a>(
    snapshot: &'a Snapshot,
    principal: &'a str,
    now: SystemTime,
) -> Result<Resolved<'a>, RequestError> {
    parse_field("principal", snapshot.resolve(principal, None, now))?.ok_or_else(|| {
        RequestError::invalid(
            "principal",
            format!("`{principal}` is not a principal of the bundle"),
        )
    })
}

/// AWS's rule for `RoleSessionName`: 2 to 64 characters of `[\w+=,.@-]`.
fn check_session_name(name: &str) -> Result<(), RequestError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RequestError::invalid(
            "session_name",
            format!("`{name}` is not a session name (2 to 64 of letters, digits and `_+=,.@-`)"),
        ))
    }
}

/// A principal `WhoCan` asks about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Subject {
    /// The ARN asked: a user's, a role's session, an account's root.
    arn: String,
    kind: &'static str,
    /// A role's ARN; a user's ARN (for what its policies are attached through).
    identity: Option<String>,
}

/// Every principal of the snapshot, in ARN order: users, role sessions named
/// `session_name`, and the roots of the accounts it knows.
fn subjects(snapshot: &Snapshot, session_name: &str) -> Vec<Subject> {
    let mut out: Vec<Subject> = snapshot
        .user_arns()
        .map(|u| Subject {
            arn: u.to_owned(),
            kind: "user",
            identity: Some(u.to_owned()),
        })
        .chain(snapshot.role_names().map(|(_, _, arn)| Subject {
            arn: assumed_role_arn(arn, session_name),
            kind: "role",
            identity: Some(arn.to_owned()),
        }))
        .chain(snapshot.account_ids().map(|a| Subject {
            arn: format!("arn:aws:iam::{a}:root"),
            kind: "root",
            identity: None,
        }))
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.arn == b.arn);
    out
}

/// A catalog action, as the walk over actions holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CatalogAction {
    service: String,
    access: crate::bundle::catalog::AccessLevel,
    /// `service:Action`.
    name: String,
    /// Lowercase name (without the service).
    lower: String,
    resource_types: Vec<String>,
}

/// The catalog's actions (of one service and resource type, when given), ordered by
/// service, access level and name: the order answers are grouped in.
fn catalog_actions(snapshot: &Snapshot, only: Option<(&str, &str)>) -> Vec<CatalogAction> {
    let mut out: Vec<CatalogAction> = snapshot
        .catalog()
        .actions()
        .filter(|(s, a)| {
            only.is_none_or(|(svc, noun)| {
                s.prefix == svc && a.resource_types.iter().any(|t| t == noun)
            })
        })
        .map(|(s, a)| CatalogAction {
            service: s.prefix.clone(),
            access: a.access,
            name: format!("{}:{}", s.prefix, a.name),
            lower: a.name.to_ascii_lowercase(),
            resource_types: a.resource_types.clone(),
        })
        .collect();
    out.sort();
    out
}

fn access_name(a: crate::bundle::catalog::AccessLevel) -> &'static str {
    use crate::bundle::catalog::AccessLevel;
    match a {
        AccessLevel::List => "List",
        AccessLevel::Read => "Read",
        AccessLevel::Write => "Write",
        AccessLevel::Tagging => "Tagging",
        AccessLevel::PermissionsManagement => "Permissions management",
    }
}

/// A witness ARN from a catalog ARN format: the partition `aws`, the region
/// [`WITNESS_REGION`], the principal's account, and [`WITNESS_FILL`] for the rest.
fn format_witness(format: &str, account: &str) -> String {
    crate::bundle::catalog::fill_format(format, |name| match name {
        "Partition" => "aws",
        "Region" => WITNESS_REGION,
        "Account" => account,
        _ => WITNESS_FILL,
    })
    .unwrap_or_else(|| format.to_owned())
}

/// A resource pattern of an allowing statement, and the witness decided for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    pattern: String,
    from: String,
    witness: String,
    /// The statement's `Action`, which decides which actions the candidate is for.
    actions: crate::policy::ActionSet,
    /// `Some(type)` when the witness came from the catalog format of a resource type
    /// (for `Resource: "*"` and `NotResource`): only that type's actions use it.
    for_type: Option<String>,
}

/// One page's walk: the decisions it made, and who may assume each role, found once.
struct Walk<'a> {
    snapshot: &'a Snapshot,
    context: &'a CallerContext,
    limits: &'a Limits,
    now: SystemTime,
    decisions: usize,
    /// Direct assumers of a role (by role ARN): subjects' ARNs and, for a role session,
    /// its role's ARN.
    assumers: HashMap<String, Vec<(String, Option<String>)>>,
    /// Whether `AssumeRole` is asked with an MFA code presented.
    mfa: bool,
    /// The snapshot's resource side, gathered once for every action searched.
    side: Option<crate::snapshot::ResourceSide<'a>>,
}

impl<'a> Walk<'a> {
    fn decide<'w>(&mut self, who: &Resolved<'w>, q: &Question<'w>) -> Outcome
    where
        'a: 'w,
    {
        self.decisions += 1;
        self.snapshot.decide(who, q, self.now, false).0.outcome
    }

    /// [`Walk::who`] for each of `subjects`, split across the available cores (at most
    /// four threads): each subject's decisions made and its item, in order. Only for a
    /// walk that does not follow who may become roles (`chain_depth` 0), whose subjects
    /// share nothing.
    fn who_window(
        &self,
        subjects: &[Subject],
        q: &Question<'_>,
        session: &str,
        resource_may_grant: bool,
    ) -> Vec<(usize, Option<PrincipalItem>)> {
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, 4);
        let per = subjects.len().div_ceil(threads).max(1);
        let run = |part: &[Subject]| {
            let mut walk = Walk {
                snapshot: self.snapshot,
                context: self.context,
                limits: self.limits,
                now: self.now,
                decisions: 0,
                assumers: HashMap::new(),
                mfa: self.mfa,
                side: None,
            };
            part.iter()
                .map(|s| {
                    let before = walk.decisions;
                    let item = walk.who(s, q, session, resource_may_grant);
                    (walk.decisions - before, item)
                })
                .collect::<Vec<_>>()
        };
        if threads == 1 || subjects.len() < 64 {
            return run(subjects);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = subjects
                .chunks(per)
                .map(|part| scope.spawn(move || run(part)))
                .collect();
            handles
                .into_iter()
                // A panic in a part is the caller's panic, never a window cut short.
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// `WhoCan` for one subject. `resource_may_grant` is [`Snapshot::resource_may_grant`]
    /// of the question: when false, a user or role without an identity `Allow` candidate
    /// for the action cannot be allowed (see [`Snapshot::identity_may_allow`]) and is
    /// skipped without a decision; roots are always decided. The brute-force test checks
    /// the skip (`tests/reverse_brute.rs`).
    fn who(
        &mut self,
        s: &Subject,
        q: &Question<'_>,
        session: &str,
        resource_may_grant: bool,
    ) -> Option<PrincipalItem> {
        if !resource_may_grant
            && let Some(identity) = &s.identity
            && !self.snapshot.identity_may_allow(identity, q.action)
        {
            return None;
        }
        let Ok(Some(who)) = self.snapshot.resolve(&s.arn, None, self.now) else {
            return None;
        };
        let outcome = self.decide(&who, q);
        if outcome.decision != Decision::Allow {
            return None;
        }
        let statements = self.because(&outcome, s.identity.as_deref(), q.action);
        let assumable_by = match (s.kind, &s.identity) {
            ("role", Some(role)) if self.limits.chain_depth > 0 => self.assumable_by(role, session),
            _ => Vec::new(),
        };
        Some(PrincipalItem {
            principal: s.arn.clone(),
            kind: s.kind,
            role: (s.kind == "role").then(|| s.identity.clone()).flatten(),
            reason: outcome.reason.as_str(),
            statements,
            assumable_by,
        })
    }

    /// The statements of an outcome, each with what it applies through.
    fn because(&self, o: &Outcome, identity: Option<&str>, action: &Action) -> Vec<Because> {
        o.statements
            .iter()
            .map(|m| Because {
                effect: match m.effect {
                    Effect::Allow => "Allow",
                    Effect::Deny => "Deny",
                },
                statement: m.to_string(),
                via: self.via(m, identity, action),
            })
            .collect()
    }

    fn via(&self, m: &Matched, identity: Option<&str>, action: &Action) -> String {
        let level = m.level.unwrap_or(0);
        match m.kind {
            PolicyKind::Identity => {
                let via = identity
                    .map(|i| self.snapshot.attached_via(i, &m.policy))
                    .unwrap_or_default();
                if via.is_empty() {
                    "identity policy".to_owned()
                } else {
                    via.join(", ")
                }
            }
            PolicyKind::Resource | PolicyKind::Trust if action.service() == "sts" => {
                "trust policy".to_owned()
            }
            PolicyKind::Resource | PolicyKind::Trust => "resource policy".to_owned(),
            PolicyKind::Boundary => "permissions boundary".to_owned(),
            PolicyKind::Session => "session policy".to_owned(),
            PolicyKind::Scp => format!("scp level {level}"),
            PolicyKind::Rcp => format!("rcp level {level}"),
        }
    }

    /// Who may become `role` through trust policies: each subject by its shortest chain of
    /// `AssumeRole` calls (every call decided by [`may_assume`]), at most
    /// [`Limits::chain_depth`] roles long.
    fn assumable_by(&mut self, role: &str, session: &str) -> Vec<AssumePath> {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut seen_roles: HashSet<String> = HashSet::from([role.to_owned()]);
        let mut queue: VecDeque<(String, Vec<String>)> =
            VecDeque::from([(role.to_owned(), vec![role.to_owned()])]);
        while let Some((target, chain)) = queue.pop_front() {
            for (caller, caller_role) in self.direct_assumers(&target, session) {
                if caller_role.as_deref() == Some(role) {
                    continue;
                }
                if found.contains_key(&caller) {
                    continue;
                }
                found.insert(caller.clone(), chain.clone());
                if let Some(r) = caller_role
                    && chain.len() < self.limits.chain_depth
                    && seen_roles.insert(r.clone())
                {
                    let mut longer = vec![r.clone()];
                    longer.extend(chain.iter().cloned());
                    queue.push_back((r, longer));
                }
            }
        }
        found
            .into_iter()
            .map(|(principal, through)| AssumePath { principal, through })
            .collect()
    }

    /// The subjects that may call `AssumeRole` on `role` directly.
    fn direct_assumers(&mut self, role: &str, session: &str) -> Vec<(String, Option<String>)> {
        if let Some(v) = self.assumers.get(role) {
            return v.clone();
        }
        let mut out = Vec::new();
        for s in subjects(self.snapshot, session) {
            self.decisions += 1;
            if may_assume(self.snapshot, &s.arn, role, session, self.mfa, self.now) {
                let r = (s.kind == "role").then(|| s.identity.clone()).flatten();
                out.push((s.arn, r));
            }
        }
        self.assumers.insert(role.to_owned(), out.clone());
        out
    }

    /// `WhatCan` with a resource: the one decision.
    fn action_on(
        &mut self,
        who: &Resolved<'a>,
        a: &CatalogAction,
        resource: &str,
        arn: Option<crate::arn::Arn<'_>>,
    ) -> Option<ActionItem> {
        let action = Action::parse(&a.name).ok()?;
        let q = Question {
            action: &action,
            resource,
            resource_arn: arn,
            context: CallerView::of(self.context),
        };
        let outcome = self.decide(who, &q);
        (outcome.decision == Decision::Allow).then(|| ActionItem {
            action: a.name.clone(),
            service: a.service.clone(),
            access: access_name(a.access),
            exact: "decision",
            reason: outcome.reason.as_str(),
            statements: self.because(&outcome, identity_arn(who), &action),
            patterns: Vec::new(),
            more_patterns: false,
            narrowed_by: Vec::new(),
        })
    }

    /// The resource patterns of every allowing statement that could apply to `who`: its
    /// own layers' (identity, session) and every resource policy's; each with a witness.
    fn candidates(&self, who: &Resolved<'a>) -> Vec<Candidate> {
        let account = who.principal().account.to_string();
        let head = ["arn", "aws", WITNESS_FILL, WITNESS_REGION, account.as_str()];
        let fill = |_: &str| WITNESS_FILL.to_owned();
        let mut out = Vec::new();
        let push_patterns = |out: &mut Vec<Candidate>,
                             from: String,
                             st: &crate::policy::Statement,
                             bound: Option<&str>| {
            let catalog_types = |out: &mut Vec<Candidate>, pattern: String| {
                for svc in self.snapshot.catalog().services.values() {
                    for (noun, format) in &svc.resource_types {
                        out.push(Candidate {
                            pattern: pattern.clone(),
                            from: from.clone(),
                            witness: format_witness(format, &account),
                            actions: st.actions.clone(),
                            for_type: Some(format!("{}:{noun}", svc.prefix)),
                        });
                    }
                }
            };
            match (&st.resources, bound) {
                (Some(set), _) if !set.negated => {
                    for p in &set.patterns {
                        match p.witness(head, WITNESS_FILL, &fill) {
                            Some(w) => out.push(Candidate {
                                pattern: p.text(),
                                from: from.clone(),
                                witness: w,
                                actions: st.actions.clone(),
                                for_type: None,
                            }),
                            None if matches!(p, ArnPattern::Any) => {
                                catalog_types(out, "*".to_owned());
                            }
                            None => {}
                        }
                    }
                }
                (Some(set), _) => {
                    let not: Vec<String> = set.patterns.iter().map(ArnPattern::text).collect();
                    catalog_types(out, format!("NotResource {}", not.join(", ")));
                }
                (None, Some(bound)) => {
                    if let Ok(p) = ArnPattern::new(bound, false, ShortArn::Never)
                        && let Some(w) = p.witness(head, WITNESS_FILL, &fill)
                    {
                        out.push(Candidate {
                            pattern: bound.to_owned(),
                            from,
                            witness: w,
                            actions: st.actions.clone(),
                            for_type: None,
                        });
                    }
                }
                (None, None) => {}
            }
        };
        for (kind, set) in self.snapshot.principal_layers(who) {
            if !matches!(kind, PolicyKind::Identity | PolicyKind::Session) {
                continue;
            }
            for p in set.policies() {
                for st in p.statements.iter().filter(|s| s.effect == Effect::Allow) {
                    push_patterns(&mut out, statement_name(kind, &p.id, st), st, None);
                }
            }
        }
        let mut bindings = self.snapshot.resource_bindings();
        bindings.sort_by(|a, b| a.0.cmp(&b.0));
        for (bound, set) in bindings {
            for p in set.policies() {
                for st in p.statements.iter().filter(|s| s.effect == Effect::Allow) {
                    push_patterns(
                        &mut out,
                        statement_name(PolicyKind::Resource, &bound, st),
                        st,
                        Some(&bound),
                    );
                }
            }
        }
        out
    }

    /// `WhatCan` without a resource: the action's candidate patterns, each witness decided;
    /// when none is allowed, every resource of the action's types, split into the regions
    /// the statements tell apart ([`regions`]), so that an action left out is allowed
    /// nowhere (or is said `undecided`).
    fn action_anywhere(
        &mut self,
        who: &Resolved<'a>,
        a: &CatalogAction,
        candidates: &[Candidate],
        undecided: &mut Vec<Undecided>,
    ) -> Option<ActionItem> {
        let action = Action::parse(&a.name).ok()?;
        let no_resource_level = a.resource_types.is_empty();
        let mut patterns: Vec<PatternItem> = Vec::new();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut more = false;
        let mut first_allow: Option<Outcome> = None;
        for c in candidates {
            if !c.actions.matches(&a.service, &a.lower) {
                continue;
            }
            let witness = if no_resource_level {
                "*".to_owned()
            } else {
                match &c.for_type {
                    Some(t)
                        if !a
                            .resource_types
                            .iter()
                            .any(|r| format!("{}:{r}", a.service) == *t) =>
                    {
                        continue;
                    }
                    _ => c.witness.clone(),
                }
            };
            if !seen.insert((c.pattern.clone(), witness.clone())) {
                continue;
            }
            if patterns.len() >= self.limits.max_patterns {
                more = true;
                break;
            }
            let Ok(arn) = parse_resource(&witness) else {
                continue;
            };
            let q = Question {
                action: &action,
                resource: &witness,
                resource_arn: arn,
                context: CallerView::of(self.context),
            };
            let outcome = self.decide(who, &q);
            patterns.push(PatternItem {
                pattern: c.pattern.clone(),
                from: c.from.clone(),
                witness: witness.clone(),
                decision: outcome.decision.as_str(),
                reason: outcome.reason.as_str(),
            });
            if outcome.decision == Decision::Allow && first_allow.is_none() {
                first_allow = Some(outcome);
            }
        }
        let outcome = match first_allow {
            Some(o) => o,
            None => {
                let types: Vec<ArnPattern> = a
                    .resource_types
                    .iter()
                    .filter_map(|noun| {
                        let svc = self.snapshot.catalog().service(&a.service)?;
                        format_pattern(svc.resource_types.get(noun)?)
                    })
                    .collect();
                if types.len() < a.resource_types.len() {
                    undecided.push(Undecided {
                        action: a.name.clone(),
                        why: "a resource type's ARN format is not an ARN pattern".to_owned(),
                    });
                    return None;
                }
                match self.search(who, &action, &types, true) {
                    regions::Search::Allowed {
                        resource,
                        outcome,
                        region,
                    } => {
                        if patterns.len() >= self.limits.max_patterns {
                            more = true;
                        } else {
                            let (pattern, from) = region.described(&types);
                            patterns.push(PatternItem {
                                pattern,
                                from: from.to_owned(),
                                witness: resource,
                                decision: outcome.decision.as_str(),
                                reason: outcome.reason.as_str(),
                            });
                        }
                        outcome
                    }
                    regions::Search::Denied => return None,
                    regions::Search::Undecided(why) => {
                        undecided.push(Undecided {
                            action: a.name.clone(),
                            why,
                        });
                        return None;
                    }
                }
            }
        };
        let mut narrowed_by = Vec::new();
        for (kind, set) in self.snapshot.principal_layers(who) {
            for p in set.policies() {
                for st in p.statements.iter().filter(|s| s.effect == Effect::Deny) {
                    if st.actions.matches(&a.service, &a.lower) {
                        narrowed_by.push(statement_name(kind, &p.id, st));
                    }
                }
            }
        }
        Some(ActionItem {
            action: a.name.clone(),
            service: a.service.clone(),
            access: access_name(a.access),
            exact: "witness",
            reason: outcome.reason.as_str(),
            statements: self.because(&outcome, identity_arn(who), &action),
            patterns,
            more_patterns: more,
            narrowed_by,
        })
    }

    /// `CanAny` for one action: the first witness decided Allow; when none is, every
    /// resource of the type, split into the regions the statements tell apart
    /// ([`regions`]).
    fn witness(
        &mut self,
        who: &Resolved<'a>,
        a: &CatalogAction,
        witnesses: &[String],
        types: &[ArnPattern],
        undecided: &mut Vec<Undecided>,
    ) -> Option<WitnessItem> {
        let action = Action::parse(&a.name).ok()?;
        for w in witnesses {
            let Ok(arn) = parse_resource(w) else {
                continue;
            };
            let q = Question {
                action: &action,
                resource: w,
                resource_arn: arn,
                context: CallerView::of(self.context),
            };
            let outcome = self.decide(who, &q);
            if outcome.decision == Decision::Allow {
                return Some(WitnessItem {
                    action: a.name.clone(),
                    access: access_name(a.access),
                    resource: w.clone(),
                    reason: outcome.reason.as_str(),
                    statements: self.because(&outcome, identity_arn(who), &action),
                });
            }
        }
        if types.is_empty() {
            undecided.push(Undecided {
                action: a.name.clone(),
                why: "the resource type's ARN format is not an ARN pattern".to_owned(),
            });
            return None;
        }
        match self.search(who, &action, types, false) {
            regions::Search::Allowed {
                resource, outcome, ..
            } => Some(WitnessItem {
                action: a.name.clone(),
                access: access_name(a.access),
                resource,
                reason: outcome.reason.as_str(),
                statements: self.because(&outcome, identity_arn(who), &action),
            }),
            regions::Search::Denied => None,
            regions::Search::Undecided(why) => {
                undecided.push(Undecided {
                    action: a.name.clone(),
                    why,
                });
                None
            }
        }
    }
}

/// The user's or role's ARN behind a resolved principal (for what its policies are
/// attached through).
fn identity_arn<'a>(who: &'a Resolved<'_>) -> Option<&'a str> {
    let p = who.principal();
    match &p.kind {
        crate::request::PrincipalKind::User { .. } => Some(p.arn.as_ref()),
        crate::request::PrincipalKind::AssumedRole { role_arn, .. } => Some(role_arn.as_ref()),
        _ => None,
    }
}

/// A statement named as decisions name it: `identity POLICY Sid X`.
fn statement_name(kind: PolicyKind, policy: &str, st: &crate::policy::Statement) -> String {
    match &st.sid {
        Some(sid) => format!("{kind} {policy} Sid {sid}"),
        None => format!("{kind} {policy} Statement[{}]", st.index),
    }
}

#[cfg(test)]
mod tests;

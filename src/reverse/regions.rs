//! Whether a principal may do an action to *some* resource (of some types): `WhatCan`
//! without a resource and `CanAny`, proven rather than sampled.
//!
//! For one principal, one action and the query's context, a decision depends on the
//! resource only through which statements' `Resource` patterns match its ARN, which
//! resource policy is bound to it, which role it names (`sts:` actions), and its account
//! (its RCPs, its keys, whether the request is cross-account). Each of these is a
//! wildcard pattern over the ARN's segments (an account is a pattern of the account
//! segment), so [`crate::compare::space::arns`] splits the ARNs into the regions they
//! distinguish, with one witness ARN each. Every resource of a region is decided as its
//! witness is, so deciding every witness with [`Snapshot::decide`] answers the question
//! for every resource: an action with no allowed witness is allowed nowhere. When a
//! feature cannot be split exactly (a policy variable that reads the resource's own keys)
//! or the exploration reaches its bound, the answer says so instead of "no".

use crate::arn::ArnPattern;
use crate::compare::model::Atoms;
use crate::compare::space;
use crate::compile::PolicySet;
use crate::context::{ACCOUNT_KEYS, CallerView, ContextValue};
use crate::eval::{self, Decision, Outcome};
use crate::matcher::Token;
use crate::policy::{Effect, PolicyKind, Statement};
use crate::request::{Action, PrincipalKind, parse_resource};
use crate::snapshot::{Question, Resolved, ResourceSide};

use super::{Walk, statement_name};

/// What a search over every resource found.
pub(super) enum Search {
    /// Allowed on `resource` (a witness of its region, in `region`), as `outcome` decides.
    Allowed {
        resource: String,
        outcome: Outcome,
        region: Region,
    },
    /// Allowed on no resource: every region was decided.
    Denied,
    /// No allowed witness, but some region could not be told apart: why.
    Undecided(String),
}

/// Where an allowed witness lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Region {
    /// The resource `*` (as a request for an action without resource-level permissions
    /// names it).
    Star,
    /// An ARN of one of the action's resource types.
    Types,
    /// An ARN of no type of the action, which `Authorize` decides all the same.
    Elsewhere,
}

impl Region {
    /// The pattern a `WhatCan` item lists for a witness found here (the action's `types`),
    /// and where it comes from.
    pub(super) fn described(self, types: &[ArnPattern]) -> (String, &'static str) {
        match self {
            Region::Star => ("*".to_owned(), "the resource `*`"),
            Region::Types => (
                types
                    .iter()
                    .map(ArnPattern::text)
                    .collect::<Vec<_>>()
                    .join(", "),
                "every resource of the action's types, split by every statement that can decide it",
            ),
            Region::Elsewhere => (
                "*".to_owned(),
                "every ARN outside the action's types (which Authorize decides too), split by every statement that can decide it",
            ),
        }
    }
}

/// The segments of an ARN compared as text (a resource policy bound to one ARN).
fn literal(arn: &str) -> Option<[Vec<Token>; 6]> {
    let mut parts = arn.splitn(6, ':');
    let segments: [Vec<Token>; 6] =
        std::array::from_fn(|_| space::literal(parts.next().unwrap_or_default()));
    (arn.split(':').count() >= 6).then_some(segments)
}

impl<'a> Walk<'a> {
    /// Whether `who` may do `action` to some resource matching one of `types` (ARN
    /// patterns of resource types) or, when `everywhere`, to any resource a request can
    /// name: `*` and every ARN, of the action's types first.
    pub(super) fn search(
        &mut self,
        who: &Resolved<'a>,
        action: &Action,
        types: &[ArnPattern],
        everywhere: bool,
    ) -> Search {
        let side = self
            .side
            .take()
            .unwrap_or_else(|| self.snapshot.resource_side());
        let found = self.search_in(&side, who, action, types, everywhere);
        self.side = Some(side);
        found
    }

    fn search_in(
        &mut self,
        side: &ResourceSide<'a>,
        who: &Resolved<'a>,
        action: &Action,
        types: &[ArnPattern],
        everywhere: bool,
    ) -> Search {
        let star = CallerView::of(self.context);
        let decide_on = |walk: &mut Walk<'a>, resource: &str| -> Option<Outcome> {
            let arn = parse_resource(resource).ok()?;
            let q = Question {
                action,
                resource,
                resource_arn: arn,
                context: star,
            };
            Some(walk.decide(who, &q))
        };
        if everywhere
            && let Some(o) = decide_on(self, "*")
            && o.decision == Decision::Allow
        {
            return Search::Allowed {
                resource: "*".to_owned(),
                outcome: o,
                region: Region::Star,
            };
        }
        if types.is_empty() && !everywhere {
            return Search::Denied;
        }
        let relevant = |s: &Statement| s.actions.matches(action.service(), action.name());
        let allows = |set: &PolicySet| {
            set.policies()
                .iter()
                .flat_map(|p| p.statements.iter())
                .any(|s| s.effect == Effect::Allow && relevant(s))
        };
        let assume = eval::resource_policy_required(action.as_str()) && action.service() == "sts";
        let layers = self.snapshot.principal_layers(who);
        // Without an allowing statement on the principal's side or the resource side, only
        // an account's root (acting in its own account) can be allowed.
        let root = matches!(who.principal().kind, PrincipalKind::Root);
        let may_grant = root
            || layers
                .iter()
                .any(|(k, set)| matches!(k, PolicyKind::Identity) && allows(set))
            || side.exact.iter().any(|(_, set)| allows(set))
            || side.patterns.iter().any(|(_, set)| allows(set))
            || (assume && side.roles.iter().any(|(_, t)| t.is_some_and(allows)));
        if !may_grant {
            return Search::Denied;
        }

        let no_context = crate::context::Context::new();
        let of_type = |arn: &str| {
            parse_resource(arn).ok().flatten().is_some_and(|a| {
                types
                    .iter()
                    .any(|t| t.matches(Some(&a), &no_context) == Some(true))
            })
        };
        if assume {
            // A role is assumed through its trust policy, found by its exact ARN: no
            // other resource can be allowed, so the roles are every region.
            for (arn, _) in &side.roles {
                let in_types = of_type(arn);
                if !in_types && !everywhere {
                    continue;
                }
                if let Some(o) = decide_on(self, arn)
                    && o.decision == Decision::Allow
                {
                    return Search::Allowed {
                        resource: (*arn).to_owned(),
                        outcome: o,
                        region: if in_types {
                            Region::Types
                        } else {
                            Region::Elsewhere
                        },
                    };
                }
            }
            return Search::Denied;
        }

        let q = Question {
            action,
            resource: "*",
            resource_arn: None,
            context: star,
        };
        let ctx = self.snapshot.gather(who, &q, self.now).context;
        let mut atoms = Atoms::default();
        let add = |atoms: &mut Atoms, kind: PolicyKind, name: &str, set: &PolicySet| {
            for p in set.policies() {
                for s in p.statements.iter().filter(|s| relevant(s)) {
                    let place = statement_name(kind, if name.is_empty() { &p.id } else { name }, s);
                    atoms.add_statement_for_resource(s, &place, &ctx);
                }
            }
        };
        for (kind, set) in &layers {
            add(&mut atoms, *kind, "", set);
        }
        for set in &side.rcps {
            add(&mut atoms, PolicyKind::Rcp, "", set);
        }
        for (arn, set) in &side.exact {
            if let Some(s) = literal(arn) {
                atoms.add_resource_segments(s);
            }
            add(&mut atoms, PolicyKind::Resource, arn, set);
        }
        for (pattern, set) in &side.patterns {
            if let Some(s) = space::segments(pattern) {
                atoms.add_resource_segments(s);
            }
            add(&mut atoms, PolicyKind::Resource, &pattern.text(), set);
        }
        // The accounts: each known one, the principal's, and those the context names.
        atoms.add_resource_segments(space::only_segment(
            space::ACCOUNT,
            space::literal(who.principal().account.as_ref()),
        ));
        for a in &side.accounts {
            atoms.add_resource_segments(space::only_segment(space::ACCOUNT, space::literal(a)));
        }
        for k in ACCOUNT_KEYS {
            for v in ctx.get(k).map(ContextValue::values).unwrap_or_default() {
                atoms.add_resource_segments(space::only_segment(space::ACCOUNT, space::literal(v)));
            }
        }
        let within: Vec<[Vec<Token>; 6]> = types.iter().filter_map(space::segments).collect();
        if within.len() < types.len() {
            return Search::Undecided(format!(
                "a resource type of {action} has no ARN pattern to split"
            ));
        }
        let mut unknowns: Vec<String> = Vec::new();
        // The action's types first, then (everywhere) each region of services in turn:
        // an ARN is in exactly one, and within it the service part decides nothing more.
        let mut groups: Vec<(Vec<[Vec<Token>; 6]>, bool)> = Vec::new();
        if !within.is_empty() {
            groups.push((within, true));
        }
        if everywhere {
            let services: Vec<Vec<Token>> = {
                let mut seen = std::collections::HashSet::new();
                atoms
                    .resource_segments()
                    .iter()
                    .filter_map(|r| r.get(2).cloned())
                    .filter(|t| seen.insert(t.clone()))
                    .collect()
            };
            let found = space::strings(&services, &[':'], self.limits.max_states);
            if !found.complete {
                unknowns.push(format!(
                    "-: the services' regions exceed the exploration bound ({} states)",
                    self.limits.max_states
                ));
            }
            for w in found.values {
                groups.push((
                    vec![space::only_segment(space::SERVICE, space::literal(&w))],
                    false,
                ));
            }
        }
        for (within, of_types) in groups {
            let mut part = atoms.clone();
            for s in &within {
                part.add_resource_segments(s.clone());
            }
            // Only the patterns some resource of the part can match split it.
            part.keep_resources_within(&within);
            let witnesses =
                part.resource_witnesses(self.limits.max_states, self.limits.max_regions);
            for w in witnesses {
                if w == "*" {
                    continue;
                }
                let in_types = of_type(&w);
                if of_types != in_types {
                    // A types' witness outside them, or an ARN of the types met again
                    // among the services (decided in the first part).
                    continue;
                }
                if let Some(o) = decide_on(self, &w)
                    && o.decision == Decision::Allow
                {
                    return Search::Allowed {
                        resource: w,
                        outcome: o,
                        region: if in_types {
                            Region::Types
                        } else {
                            Region::Elsewhere
                        },
                    };
                }
            }
            unknowns.extend(
                part.unknowns
                    .iter()
                    .map(|u| format!("{}: {}", u.place, u.feature)),
            );
        }
        unknowns.extend(
            atoms
                .unknowns
                .iter()
                .map(|u| format!("{}: {}", u.place, u.feature)),
        );
        unknowns.sort();
        unknowns.dedup();
        if unknowns.is_empty() {
            Search::Denied
        } else {
            Search::Undecided(unknowns.join("; "))
        }
    }
}

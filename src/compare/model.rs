//! What a set of statements can distinguish about one action's requests: the resource
//! patterns and, per context key, the atomic predicates its conditions make, gathered
//! into witness resources and witness context values (see [`super::space`]), with every
//! feature that could not be modelled exactly named where it was written.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::space::{self, Witnesses};
use crate::arn::ArnPattern;
use crate::condition::{Base, Cmp, Condition, Operator, SetOp, ValuesView};
use crate::context::{ContextValue, Lookup};
use crate::matcher::Token;
use crate::policy::Statement;

/// Something the procedure could not decide exactly, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Unknown {
    /// `FILE:line:column` of the statement (or the policy's name and the statement's
    /// place in a bundle), or `-` for a bound of the procedure itself.
    pub place: String,
    /// The condition operator or feature.
    pub feature: String,
}

/// How a comparison reads a condition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// A variable of the request space: a key the caller supplies (comparing two
    /// policies, every key).
    Caller,
    /// A fact of a verified session ([`is_session_key`]): a dimension of its own, tried on
    /// real sessions ([`SessionSpace`]).
    Session,
    /// A web identity session's token key (`HOST:sub`, `aws:FederatedProvider`), which a
    /// bundle comparison does not model: a statement that reads it is UNKNOWN.
    WebIdentity,
    /// Fixed by the principal, the resource or the server.
    Server,
}

/// Whether a lowercase key is a fact a verified session carries and a comparison of
/// bundles varies: MFA, its age, the issue time, the source identity, a session tag.
pub fn is_session_key(lower_key: &str) -> bool {
    matches!(
        lower_key,
        "aws:multifactorauthpresent"
            | "aws:multifactorauthage"
            | "aws:tokenissuetime"
            | "aws:sourceidentity"
    ) || lower_key.starts_with("aws:principaltag/")
}

/// The atomic predicates one context key is read with.
#[derive(Debug, Default, Clone)]
struct KeyAtoms {
    strings: Vec<Vec<Token>>,
    arns: Vec<[Vec<Token>; 6]>,
    numbers: Vec<f64>,
    dates: Vec<i64>,
    ips: Vec<IpNet>,
    /// Values of operators not modelled exactly, tried as they are.
    extra: Vec<String>,
    bools: bool,
    null: bool,
    set_ops: bool,
    /// The families of operators that read it (`string`, `arn`, `number`, ...).
    families: BTreeSet<&'static str>,
    /// Where the key is read first, for an UNKNOWN that concerns the key itself.
    place: String,
}

/// The atoms of one action's relevant statements, on both sides.
#[derive(Debug, Default, Clone)]
pub struct Atoms {
    resources: Vec<[Vec<Token>; 6]>,
    keys: BTreeMap<String, KeyAtoms>,
    /// The session facts read ([`KeyRole::Session`]), by key.
    session: BTreeMap<String, KeyAtoms>,
    pub unknowns: BTreeSet<Unknown>,
}

/// The name an operator is written with, for messages.
pub fn operator_name(op: &Operator) -> String {
    let set = match op.set {
        Some(SetOp::ForAllValues) => "ForAllValues:",
        Some(SetOp::ForAnyValue) => "ForAnyValue:",
        None => "",
    };
    let not = if op.negated { "Not" } else { "" };
    let cmp = |c: Cmp| match c {
        Cmp::Eq => "Equals",
        Cmp::Lt => "LessThan",
        Cmp::Le => "LessThanEquals",
        Cmp::Gt => "GreaterThan",
        Cmp::Ge => "GreaterThanEquals",
    };
    let base = match op.base {
        Base::StringEquals => format!("String{not}Equals"),
        Base::StringEqualsIgnoreCase => format!("String{not}EqualsIgnoreCase"),
        Base::StringLike => format!("String{not}Like"),
        Base::Numeric(c) if op.negated => format!("NumericNot{}", cmp(c)),
        Base::Numeric(c) => format!("Numeric{}", cmp(c)),
        Base::Date(c) if op.negated => format!("DateNot{}", cmp(c)),
        Base::Date(c) => format!("Date{}", cmp(c)),
        Base::Bool => "Bool".into(),
        Base::BinaryEquals => "BinaryEquals".into(),
        Base::IpAddress => format!("{not}IpAddress"),
        Base::Arn => format!("Arn{not}Like"),
        Base::Null => "Null".into(),
    };
    let exists = if op.if_exists { "IfExists" } else { "" };
    format!("{set}{base}{exists}")
}

impl Atoms {
    /// Adds a resource pattern (from `Resource`/`NotResource` or a bundle's resource
    /// binding); `place` names it if it cannot be modelled.
    pub fn add_resource(&mut self, p: &ArnPattern, place: &str) {
        match p {
            ArnPattern::Any | ArnPattern::Never => {}
            ArnPattern::Parts { .. } => match space::segments(p) {
                Some(s) => self.resources.push(s),
                None => {
                    self.unknown(place, "a policy variable in `Resource`");
                }
            },
        }
    }

    /// Adds the segments of an ARN region the server tells apart (an account's resources).
    pub fn add_resource_segments(&mut self, segments: [Vec<Token>; 6]) {
        self.resources.push(segments);
    }

    /// The resource regions added so far (each given by [`space::segments`]).
    pub fn resource_segments(&self) -> &[[Vec<Token>; 6]] {
        &self.resources
    }

    /// Keeps only the resource regions that some ARN of `within` can fall in (each
    /// given by [`space::segments`]), once each: a pattern no resource of `within`
    /// matches splits nothing there, and the exploration grows with every pattern kept.
    pub fn keep_resources_within(&mut self, within: &[[Vec<Token>; 6]]) {
        let mut kept: Vec<[Vec<Token>; 6]> = Vec::new();
        let mut seen: std::collections::HashSet<[Vec<Token>; 6]> = std::collections::HashSet::new();
        for r in std::mem::take(&mut self.resources) {
            let overlaps = within
                .iter()
                .any(|w| r.iter().zip(w.iter()).all(|(a, b)| space::intersects(a, b)));
            if overlaps && seen.insert(r.clone()) {
                kept.push(r);
            }
        }
        self.resources = kept;
    }

    /// Adds an exact text a key already read may be compared with by the server (an
    /// account id whose organization keys it fills).
    pub fn add_text(&mut self, key: &str, text: &str) {
        if let Some(k) = self.keys.get_mut(key) {
            k.strings.push(text.chars().map(Token::Lit).collect());
        }
    }

    pub fn unknown(&mut self, place: &str, feature: &str) {
        self.unknowns.insert(Unknown {
            place: place.to_owned(),
            feature: feature.to_owned(),
        });
    }

    /// Adds a statement's resources and conditions. `role(key)` says how the key is read
    /// (comparing policies, every key is the caller's).
    pub fn add_statement(&mut self, s: &Statement, place: &str, role: &dyn Fn(&str) -> KeyRole) {
        if let Some(r) = &s.resources {
            for p in &r.patterns {
                self.add_resource(p, place);
            }
        }
        // A statement whose `Principal` names only web identity providers and services
        // applies to no IAM principal (the only ones a comparison asks for): the token keys
        // it reads are never read for them.
        let iam = !s.principals.as_ref().is_some_and(|set| {
            !set.negated
                && set.entries.iter().all(|e| {
                    matches!(
                        e,
                        crate::policy::PrincipalEntry::Federated(_)
                            | crate::policy::PrincipalEntry::Service(_)
                    )
                })
        });
        for c in &s.conditions {
            self.add_condition(c, place, role, iam);
        }
    }

    /// Adds a statement for questions whose principal, context and time are fixed and
    /// whose resource alone varies (a reverse query without a resource): its resource
    /// patterns, their policy variables read from `ctx` as a decision reads them, and the
    /// accounts `aws:ResourceAccount` is compared with. Nothing else a condition reads
    /// depends on the resource except through its account or the resource policy bound to
    /// it, which the caller makes regions of their own.
    pub fn add_statement_for_resource(&mut self, s: &Statement, place: &str, ctx: &dyn Lookup) {
        if let Some(r) = &s.resources {
            for p in &r.patterns {
                if p.variables().any(|k| k.starts_with("aws:resource")) {
                    self.unknown(
                        place,
                        "a policy variable in `Resource` that reads the resource's own keys",
                    );
                } else if let Some(segments) = space::segments_in(p, ctx) {
                    self.resources.push(segments);
                }
            }
        }
        for c in &s.conditions {
            let key = c.key.as_str();
            let reads_account = c.keys_read().skip(1).any(|k| k == "aws:resourceaccount");
            let mut accounts: Vec<Vec<Token>> = Vec::new();
            if key == "aws:resourceaccount" {
                match c.values_view() {
                    ValuesView::Text(vs) => {
                        accounts.extend(vs.into_iter().flatten().map(space::literal));
                    }
                    ValuesView::Like(vs) => {
                        accounts.extend(vs.into_iter().flatten().map(|p| p.tokens()));
                    }
                    _ => {}
                }
                for read in c.keys_read().skip(1) {
                    for v in ctx.get(read).map(ContextValue::values).unwrap_or_default() {
                        accounts.push(space::literal(v));
                    }
                }
            } else if reads_account {
                // The resource's account compared with a key the question fixes: each of
                // its values is an account of its own; a pattern around it is not modelled.
                if matches!(c.values_view(), ValuesView::Like(_) | ValuesView::Arn(_)) {
                    let name = operator_name(&c.op);
                    self.unknown(
                        place,
                        &format!(
                            "`{name}` on `{key}` with `${{aws:ResourceAccount}}` in a pattern"
                        ),
                    );
                }
                for v in ctx.get(key).map(ContextValue::values).unwrap_or_default() {
                    accounts.push(space::literal(v));
                }
            }
            for account in accounts {
                self.resources
                    .push(space::only_segment(space::ACCOUNT, account));
            }
        }
    }

    fn add_condition(
        &mut self,
        c: &Condition,
        place: &str,
        role: &dyn Fn(&str) -> KeyRole,
        iam: bool,
    ) {
        let name = operator_name(&c.op);
        let key = c.key.as_str();
        let varies = |k: &str| role(k) == KeyRole::Caller;
        // A variable the server fills about the principal (fixed per principal) compared
        // with a key the server fills too: the predicate depends on the principal and on
        // the resource's account, both of which are enumerated (a bundle's accounts are
        // regions of their own). Anything else with a variable is not modelled.
        let fixed = |k: &str| role(k) == KeyRole::Server && !crate::keys::varies_with_time(k);
        for read in c.keys_read().skip(1) {
            if !(fixed(key) && fixed(read)) {
                self.unknown(
                    place,
                    &format!("`{name}` with a policy variable (`${{{read}}}`)"),
                );
            }
        }
        if !varies(key) && key == "aws:resourceaccount" {
            // The server derives it from the resource's account: each value compared
            // with is a region of the account segment.
            let values: Vec<Vec<Token>> = match c.values_view() {
                ValuesView::Text(vs) => vs
                    .into_iter()
                    .flatten()
                    .map(|t| t.chars().map(Token::Lit).collect())
                    .collect(),
                ValuesView::Like(vs) => vs.into_iter().flatten().map(|p| p.tokens()).collect(),
                _ => Vec::new(),
            };
            for v in values {
                let mut seg: [Vec<Token>; 6] = std::array::from_fn(|_| vec![Token::Star]);
                if let Some(slot) = seg.get_mut(4) {
                    *slot = v;
                }
                self.resources.push(seg);
            }
        }
        match role(key) {
            KeyRole::Session => {
                let unknowns = {
                    let k = self.session.entry(key.to_owned()).or_default();
                    if k.place.is_empty() {
                        k.place = place.to_owned();
                    }
                    let mut unknowns = read_values(k, c, &name, key);
                    if key == "aws:multifactorauthpresent" {
                        // `true`, `false` and absent are all a caller can hold, and all are
                        // tried: whatever operator reads it is decided.
                        unknowns.clear();
                    } else {
                        // The families tried on real sessions' values exactly (`Null`
                        // reads presence, which a sessionless caller and a session without
                        // the fact give).
                        let exact = match key {
                            "aws:multifactorauthage" => "number",
                            "aws:tokenissuetime" => "date",
                            _ => "string",
                        };
                        let other = k
                            .families
                            .iter()
                            .find(|f| **f != exact && **f != "ignorecase" && **f != "binary");
                        if let Some(f) = other {
                            unknowns.push(format!(
                                "`{name}` on `{key}`, a session's value, compared as {f}"
                            ));
                        }
                    }
                    unknowns
                };
                for u in unknowns {
                    self.unknown(place, &u);
                }
                return;
            }
            KeyRole::WebIdentity => {
                if iam {
                    self.unknown(
                        place,
                        &format!(
                            "`{name}` on `{key}`, a web identity session's key, which a bundle comparison does not model"
                        ),
                    );
                }
                return;
            }
            KeyRole::Caller | KeyRole::Server => {}
        }
        if !varies(key) {
            // A role session's id carries its session name, which a bundle comparison
            // fixes (`compare`): a condition on it could hold for another name.
            if key == "aws:userid" {
                self.unknown(
                    place,
                    &format!("`{name}` on `aws:userid`, which holds a role session's name"),
                );
            }
            if crate::keys::varies_with_time(key) {
                self.unknown(
                    place,
                    &format!("`{name}` on `{key}`, which the server fills with the time"),
                );
            }
            return;
        }
        let unknowns = {
            let k = self.keys.entry(key.to_owned()).or_default();
            if k.place.is_empty() {
                k.place = place.to_owned();
            }
            read_values(k, c, &name, key)
        };
        for u in unknowns {
            self.unknown(place, &u);
        }
    }

    /// The witness resources: `*` and one ARN per realisable vector of the patterns.
    pub fn resource_witnesses(
        &mut self,
        max_states: usize,
        max_combinations: usize,
    ) -> Vec<String> {
        let found = space::arns(&self.resources, max_states, max_combinations);
        if !found.complete {
            self.unknown(
                "-",
                &format!(
                    "the resource patterns' regions exceed the exploration bound ({max_states} states, {max_combinations} combinations)"
                ),
            );
        }
        let mut out = vec!["*".to_owned()];
        out.extend(found.values);
        out
    }

    /// The keys that vary and, for each, its witness values (`None`: absent).
    pub fn key_witnesses(
        &mut self,
        max_states: usize,
        max_combinations: usize,
    ) -> Vec<(String, Vec<Option<ContextValue>>)> {
        let mut out = Vec::new();
        let mut unknowns: Vec<(String, String)> = Vec::new();
        for (key, k) in &self.keys {
            let mut singles: Vec<String> = Vec::new();
            let mut complete = true;
            let mut take = |w: Witnesses, singles: &mut Vec<String>| {
                complete &= w.complete;
                singles.extend(w.values);
            };
            if !k.strings.is_empty() || k.families.contains("string") {
                take(space::strings(&k.strings, &[], max_states), &mut singles);
            }
            if !k.arns.is_empty() {
                take(
                    space::arns(&k.arns, max_states, max_combinations),
                    &mut singles,
                );
                singles.push("x".into());
            }
            if k.families.contains("number") {
                take(space::numbers(&k.numbers), &mut singles);
            }
            if k.families.contains("date") {
                take(space::dates(&k.dates), &mut singles);
            }
            if k.families.contains("ip") {
                take(space::addresses(&k.ips), &mut singles);
            }
            if k.bools {
                singles.extend(["true", "false", "x"].map(String::from));
            }
            singles.extend(k.extra.iter().cloned());
            if singles.is_empty() {
                singles.push("x".into());
            }
            let mut seen = BTreeSet::new();
            singles.retain(|s| seen.insert(s.clone()));
            if !complete {
                unknowns.push((
                    k.place.clone(),
                    format!(
                        "the regions of `{key}` exceed the exploration bound ({max_states} states)"
                    ),
                ));
            }
            let families: Vec<&str> = k
                .families
                .iter()
                .copied()
                .filter(|f| *f != "ignorecase" && *f != "binary")
                .collect();
            if families.len() > 1 {
                unknowns.push((
                    k.place.clone(),
                    format!(
                        "`{key}` is compared by operators of different types ({})",
                        families.join(", ")
                    ),
                ));
            }
            let mut values: Vec<Option<ContextValue>> = vec![None];
            values.extend(
                singles
                    .iter()
                    .cloned()
                    .map(|s| Some(ContextValue::Single(s))),
            );
            // Two values: every operator without a set prefix is false on it.
            if let Some(first) = singles.first() {
                values.push(Some(ContextValue::Multi(vec![
                    first.clone(),
                    first.clone(),
                ])));
            }
            if k.null || k.set_ops {
                values.push(Some(ContextValue::Multi(Vec::new())));
            }
            if k.set_ops {
                for a in singles.iter().take(4) {
                    for b in singles.iter().take(4) {
                        if a < b {
                            values.push(Some(ContextValue::Multi(vec![a.clone(), b.clone()])));
                        }
                    }
                }
            }
            out.push((key.clone(), values));
        }
        for (place, feature) in unknowns {
            self.unknown(&place, &feature);
        }
        out
    }
}

/// Records what a condition compares its key with; the features it reads that are not
/// modelled exactly.
fn read_values(k: &mut KeyAtoms, c: &Condition, name: &str, key: &str) -> Vec<String> {
    let mut unknowns: Vec<String> = Vec::new();
    if c.op.set.is_some() {
        k.set_ops = true;
        unknowns.push(format!("`{name}` on `{key}` (a multi-valued key)"));
    }
    match c.values_view() {
        ValuesView::Text(vs) => {
            let fold = c.op.base == Base::StringEqualsIgnoreCase;
            if fold {
                unknowns.push(format!("`{name}` on `{key}`"));
                k.families.insert("ignorecase");
            } else {
                k.families.insert("string");
            }
            for v in vs {
                match v {
                    Some(t) if fold => {
                        k.extra.push(t.to_owned());
                        k.extra.push(t.to_uppercase());
                    }
                    Some(t) => k.strings.push(t.chars().map(Token::Lit).collect()),
                    None => {}
                }
            }
        }
        ValuesView::Like(vs) => {
            k.families.insert("string");
            k.strings
                .extend(vs.into_iter().flatten().map(|p| p.tokens()));
        }
        ValuesView::Arn(vs) => {
            k.families.insert("arn");
            for p in vs.into_iter().flatten() {
                match p {
                    ArnPattern::Never => {}
                    // `*` as an ARN value: every six-part ARN.
                    ArnPattern::Any => k.arns.push(std::array::from_fn(|_| vec![Token::Star])),
                    _ => {
                        if let Some(s) = space::segments(p) {
                            k.arns.push(s);
                        }
                    }
                }
            }
        }
        ValuesView::Number(vs) => {
            k.families.insert("number");
            k.numbers.extend_from_slice(vs);
        }
        ValuesView::Date(vs) => {
            k.families.insert("date");
            k.dates.extend_from_slice(vs);
        }
        ValuesView::Bool(_) => {
            k.families.insert("bool");
            k.bools = true;
        }
        ValuesView::Ip(vs) => {
            k.families.insert("ip");
            k.ips.extend_from_slice(vs);
        }
        ValuesView::Binary(vs) => {
            use base64::Engine as _;
            k.families.insert("binary");
            unknowns.push(format!("`{name}` on `{key}`"));
            k.extra.extend(
                vs.iter()
                    .map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            );
        }
        ValuesView::Null => k.null = true,
    }
    unknowns
}

// === impl sessions ===

/// The session facts one action's statements read, as the regions a real session's values
/// fall in: what [`SessionSpace::sessions`] turns into witness sessions.
#[derive(Debug, Clone, Default)]
pub struct SessionSpace {
    /// Whether any statement reads a session fact.
    pub read: bool,
    /// Whether MFA (its presence or its age) is read.
    mfa: bool,
    /// The numbers `aws:MultiFactorAuthAge` is compared with, when it is read.
    ages: Option<Vec<f64>>,
    /// The instants (ms) `aws:TokenIssueTime` is compared with, when it is read.
    issued: Option<Vec<i64>>,
    /// Witness source identities (each a valid one), when `aws:SourceIdentity` is read.
    source_identity: Option<Vec<String>>,
    /// Per session tag read (its key, as read): witness values, each a valid tag value;
    /// none for a key no session tag may have.
    tags: Vec<(String, Vec<String>)>,
}

/// A session's facts, as `warden authorize`'s session flags give them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionFacts {
    /// Seconds since the session's MFA was authenticated (`--mfa-age`); `None`: no MFA.
    pub mfa_age: Option<u64>,
    /// `aws:TokenIssueTime`, whole seconds since the epoch (`--issued-at`); written as
    /// RFC 3339.
    #[serde(serialize_with = "rfc3339")]
    pub issued_at: i64,
    /// `aws:SourceIdentity` (`--source-identity`).
    pub source_identity: Option<String>,
    /// Session tags (`--session-tag`), each over the principal's own tag of its key.
    pub tags: Vec<(String, String)>,
    /// Whether the session carries a session policy that allows nothing
    /// (`--session-policy`; see `compare::CAPPING_SESSION_POLICY`).
    pub capped: bool,
}

fn rfc3339<S: serde::Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    match chrono::DateTime::from_timestamp(*secs, 0) {
        Some(d) => s.serialize_str(&d.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => s.serialize_i64(*secs),
    }
}

/// The longest a user's session lasts (`GetSessionToken`'s maximum): one issued earlier
/// has expired. A role session lasts at most its role's `max_session_duration`.
pub const USER_SESSION_LIFETIME: u64 = crate::sts::assume::USER_MAX_DURATION as u64;

impl Atoms {
    /// The session facts read, with witness values for the strings (source identity and
    /// session tags: only values STS accepts, each the shortest of its region).
    pub fn session_space(&mut self, max_states: usize) -> SessionSpace {
        use crate::sts::assume::{MAX_TAG_KEY, MAX_TAG_VALUE, session_name_char, tag_char};
        let mut out = SessionSpace::default();
        let mut unknowns: Vec<(String, String)> = Vec::new();
        for (key, k) in &self.session {
            out.read = true;
            let mut strings = |valid: fn(char) -> bool, min: usize, max: usize| {
                let w = session_strings(k, valid, min, max, max_states);
                if !w.complete {
                    unknowns.push((
                        k.place.clone(),
                        format!(
                            "the regions of `{key}` exceed the exploration bound ({max_states} states)"
                        ),
                    ));
                }
                w.values
            };
            match key.as_str() {
                "aws:multifactorauthpresent" => out.mfa = true,
                "aws:multifactorauthage" => {
                    out.mfa = true;
                    out.ages = Some(k.numbers.clone());
                }
                "aws:tokenissuetime" => out.issued = Some(k.dates.clone()),
                "aws:sourceidentity" => {
                    out.source_identity = Some(strings(session_name_char, 2, 64));
                }
                _ => {
                    let name = key.strip_prefix("aws:principaltag/").unwrap_or(key);
                    let n = name.chars().count();
                    let values = if (1..=MAX_TAG_KEY).contains(&n) && name.chars().all(tag_char) {
                        strings(tag_char, 0, MAX_TAG_VALUE)
                    } else {
                        Vec::new()
                    };
                    out.tags.push((name.to_owned(), values));
                }
            }
        }
        for (place, feature) in unknowns {
            self.unknown(&place, &feature);
        }
        out
    }
}

/// One shortest string per region of a session key's string patterns among the strings
/// STS accepts for it (characters `valid`, `min..=max` of them): a region whose shortest
/// such string is longer than `max` holds no session's value.
fn session_strings(
    k: &KeyAtoms,
    valid: fn(char) -> bool,
    min: usize,
    max: usize,
    max_states: usize,
) -> Witnesses {
    let avoid: Vec<char> = k
        .strings
        .iter()
        .flatten()
        .filter_map(|t| match t {
            Token::Lit(c) if !valid(*c) => Some(*c),
            _ => None,
        })
        .collect();
    let mut w = space::strings_from(&k.strings, &avoid, min, max_states);
    // Values of operators not modelled exactly (`...IgnoreCase`), tried as they are.
    w.values.extend(k.extra.iter().cloned());
    w.values.retain(|v| {
        let n = v.chars().count();
        (min..=max).contains(&n) && v.chars().all(valid)
    });
    let mut seen = BTreeSet::new();
    w.values.retain(|v| seen.insert(v.clone()));
    w
}

impl SessionSpace {
    /// Whether a session that carries no MFA, no source identity, no tag and no session
    /// policy decides as the principal asserted: so when nothing reads MFA nor the issue
    /// time, the two keys it adds (`aws:MultiFactorAuthPresent` false and
    /// `aws:TokenIssueTime`).
    pub fn bare_is_asserted(&self) -> bool {
        !self.mfa && self.issued.is_none()
    }

    /// The witness sessions of a principal that may hold one (`role`: a role session,
    /// otherwise a user's `GetSessionToken` session, which carries no tags and no source
    /// identity) and that lasts at most `lifetime` seconds, decided at `now`.
    ///
    /// Each fact's witnesses are values a real session can hold, one in every region of
    /// the fact's predicates that holds one: MFA absent, or present at an age (whole
    /// seconds, `0..=now`); an issue time (whole seconds, within the session's lifetime
    /// before `now`); a valid source identity or none; a valid value or none per session
    /// tag read. Facts are read by conditions one key at a time, so every real session
    /// falls in the product of its facts' regions, and its witness combination is
    /// decided alike. INVARIANT (identity on realisable combinations): the one
    /// constraint between facts, MFA authenticated no later than the session was issued
    /// (`age >= now - issued`), is kept by taking in each region the largest age and the
    /// latest issue time (an age region without an upper end at the lifetime or past it,
    /// which every issue time in the window allows): a combination of witnesses that
    /// breaks it stands for a pair of regions no real session is in, and is dropped;
    /// every other combination is decided as it is. A combination with more than
    /// [`crate::sts::assume::MAX_TAGS`] tags is dropped likewise.
    pub fn sessions(
        &self,
        role: bool,
        lifetime: u64,
        now: std::time::SystemTime,
    ) -> Vec<SessionFacts> {
        let now_s = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let lifetime = lifetime.max(1);
        let latest = i64::try_from(now_s).unwrap_or(i64::MAX);
        let earliest = latest
            .saturating_sub(i64::try_from(lifetime).unwrap_or(i64::MAX))
            .saturating_add(1);
        let issued: Vec<i64> = match &self.issued {
            Some(points) => issue_witnesses(points, earliest, latest),
            None => vec![latest],
        };
        // `Some(None)`: MFA at the session's issue, whatever its age.
        let mut mfa: Vec<Option<Option<u64>>> = vec![None];
        if self.mfa {
            match &self.ages {
                Some(points) => mfa.extend(
                    age_witnesses(points, lifetime, now_s)
                        .into_iter()
                        .map(|a| Some(Some(a))),
                ),
                None => mfa.push(Some(None)),
            }
        }
        let mut identities: Vec<Option<String>> = vec![None];
        let mut tag_sets: Vec<Vec<(String, String)>> = vec![Vec::new()];
        if role {
            identities.extend(self.source_identity.iter().flatten().cloned().map(Some));
            for (name, values) in &self.tags {
                let mut next = Vec::with_capacity(tag_sets.len() * (values.len() + 1));
                for set in &tag_sets {
                    next.push(set.clone());
                    for v in values {
                        let mut with = set.clone();
                        with.push((name.clone(), v.clone()));
                        next.push(with);
                    }
                }
                tag_sets = next;
            }
            tag_sets.retain(|t| t.len() <= crate::sts::assume::MAX_TAGS);
        }
        let mut out = Vec::new();
        for &t in &issued {
            for m in &mfa {
                let mfa_age = match m {
                    None => None,
                    Some(None) => Some(u64::try_from(latest.saturating_sub(t)).unwrap_or(0)),
                    Some(Some(a)) => {
                        if i128::from(*a) < i128::from(latest) - i128::from(t) {
                            continue;
                        }
                        Some(*a)
                    }
                };
                for si in &identities {
                    for tags in &tag_sets {
                        out.push(SessionFacts {
                            mfa_age,
                            issued_at: t,
                            source_identity: si.clone(),
                            tags: tags.clone(),
                            capped: false,
                        });
                    }
                }
            }
        }
        out
    }
}

/// Witness MFA ages for the numbers `aws:MultiFactorAuthAge` is compared with: in each
/// region (below, at and between them) the largest whole number of seconds in
/// `0..=oldest`, a region without an upper end taken at `lifetime` (or past it, when the
/// region starts later).
pub(super) fn age_witnesses(points: &[f64], lifetime: u64, oldest: u64) -> Vec<u64> {
    let mut sorted: Vec<f64> = points.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    // Exact in f64: an age is at most the seconds since the epoch.
    let top = oldest as f64;
    let mut out = BTreeSet::new();
    let mut below = f64::NEG_INFINITY;
    for &v in &sorted {
        let largest_under = if v > top { top } else { v.ceil() - 1.0 };
        if largest_under >= 0.0 && largest_under > below && largest_under < v {
            out.insert(largest_under as u64);
        }
        if (0.0..=top).contains(&v) && v.fract() == 0.0 {
            out.insert(v as u64);
        }
        below = v;
    }
    let from = if below < 0.0 {
        0.0
    } else {
        below.floor() + 1.0
    };
    let last = from.max(lifetime as f64);
    if last <= top {
        out.insert(last as u64);
    }
    out.into_iter().collect()
}

/// Witness issue times (whole seconds in `earliest..=latest`) for the instants (ms)
/// `aws:TokenIssueTime` is compared with: in each region (before, at and between them)
/// the latest such second.
pub(super) fn issue_witnesses(points: &[i64], earliest: i64, latest: i64) -> Vec<i64> {
    let mut sorted = points.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = BTreeSet::new();
    let within = |s: i64| (earliest..=latest).contains(&s);
    let mut below: Option<i64> = None;
    for &v in &sorted {
        let s = v.saturating_sub(1).div_euclid(1000).min(latest);
        if within(s) && below.is_none_or(|b| i128::from(s) * 1000 > i128::from(b)) {
            out.insert(s);
        }
        if v.rem_euclid(1000) == 0 && within(v.div_euclid(1000)) {
            out.insert(v.div_euclid(1000));
        }
        below = Some(v);
    }
    if below.is_none_or(|b| i128::from(latest) * 1000 > i128::from(b)) {
        out.insert(latest);
    }
    out.into_iter().collect()
}

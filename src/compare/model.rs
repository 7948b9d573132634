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

    /// Adds a statement's resources and conditions. `varies(key)` says whether the key is
    /// a variable of the request space (in a bundle, only keys a caller supplies).
    pub fn add_statement(&mut self, s: &Statement, place: &str, varies: &dyn Fn(&str) -> bool) {
        if let Some(r) = &s.resources {
            for p in &r.patterns {
                self.add_resource(p, place);
            }
        }
        for c in &s.conditions {
            self.add_condition(c, place, varies);
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
                    ValuesView::Text(vs) => accounts.extend(
                        vs.into_iter()
                            .flatten()
                            .map(|t| t.chars().map(Token::Lit).collect()),
                    ),
                    ValuesView::Like(vs) => {
                        accounts.extend(vs.into_iter().flatten().map(|p| p.tokens()));
                    }
                    _ => {}
                }
                for read in c.keys_read().skip(1) {
                    for v in ctx.get(read).map(ContextValue::values).unwrap_or_default() {
                        accounts.push(v.chars().map(Token::Lit).collect());
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
                    accounts.push(v.chars().map(Token::Lit).collect());
                }
            }
            for account in accounts {
                let mut segments: [Vec<Token>; 6] = std::array::from_fn(|_| vec![Token::Star]);
                if let Some(slot) = segments.get_mut(4) {
                    *slot = account;
                }
                self.resources.push(segments);
            }
        }
    }

    fn add_condition(&mut self, c: &Condition, place: &str, varies: &dyn Fn(&str) -> bool) {
        let name = operator_name(&c.op);
        let key = c.key.as_str();
        // A variable the server fills about the principal (fixed per principal) compared
        // with a key the server fills too: the predicate depends on the principal and on
        // the resource's account, both of which are enumerated (a bundle's accounts are
        // regions of their own). Anything else with a variable is not modelled.
        let fixed = |k: &str| !varies(k) && !crate::keys::varies_with_time(k);
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
        let mut unknowns: Vec<String> = Vec::new();
        {
            let k = self.keys.entry(key.to_owned()).or_default();
            if k.place.is_empty() {
                k.place = place.to_owned();
            }
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
                            ArnPattern::Any => {
                                k.arns.push(std::array::from_fn(|_| vec![Token::Star]))
                            }
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
        }
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

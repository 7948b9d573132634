//! Condition operators: parsing an operator name, compiling its values once (numbers,
//! dates, CIDRs, base64, patterns and variable templates), and evaluating one condition
//! against a request context without failing.

pub mod variables;

use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;

use crate::arn::{ArnPattern, ShortArn, arn_like};
use crate::context::{ContextValue, Lookup};
use crate::matcher::{Pattern, matches_tokens};
use variables::Template;

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    ForAllValues,
    ForAnyValue,
}

/// The comparison a base operator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    BinaryEquals,
    IpAddress,
    /// `ArnEquals` and `ArnLike` behave the same.
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed operator name: `[SetOp:]Base[IfExists]`, with negation folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub set: Option<SetOp>,
    pub base: Base,
    /// `StringNotEquals`, `NotIpAddress`, ...: the key must match none of the values.
    pub negated: bool,
    pub if_exists: bool,
}

const OPERATORS: &[(&str, Base, bool)] = &[
    ("stringequals", Base::StringEquals, false),
    ("stringnotequals", Base::StringEquals, true),
    (
        "stringequalsignorecase",
        Base::StringEqualsIgnoreCase,
        false,
    ),
    (
        "stringnotequalsignorecase",
        Base::StringEqualsIgnoreCase,
        true,
    ),
    ("stringlike", Base::StringLike, false),
    ("stringnotlike", Base::StringLike, true),
    ("numericequals", Base::Numeric(Cmp::Eq), false),
    ("numericnotequals", Base::Numeric(Cmp::Eq), true),
    ("numericlessthan", Base::Numeric(Cmp::Lt), false),
    ("numericlessthanequals", Base::Numeric(Cmp::Le), false),
    ("numericgreaterthan", Base::Numeric(Cmp::Gt), false),
    ("numericgreaterthanequals", Base::Numeric(Cmp::Ge), false),
    ("dateequals", Base::Date(Cmp::Eq), false),
    ("datenotequals", Base::Date(Cmp::Eq), true),
    ("datelessthan", Base::Date(Cmp::Lt), false),
    ("datelessthanequals", Base::Date(Cmp::Le), false),
    ("dategreaterthan", Base::Date(Cmp::Gt), false),
    ("dategreaterthanequals", Base::Date(Cmp::Ge), false),
    ("bool", Base::Bool, false),
    ("binaryequals", Base::BinaryEquals, false),
    ("ipaddress", Base::IpAddress, false),
    ("notipaddress", Base::IpAddress, true),
    ("arnequals", Base::Arn, false),
    ("arnlike", Base::Arn, false),
    ("arnnotequals", Base::Arn, true),
    ("arnnotlike", Base::Arn, true),
    ("null", Base::Null, false),
];

impl Operator {
    /// Parses an operator name (case-insensitively, as the reference recommends).
    pub fn parse(name: &str) -> Result<Operator, String> {
        let lower = name.to_ascii_lowercase();
        let (set, rest) = match lower.split_once(':') {
            None => (None, lower.as_str()),
            Some(("forallvalues", rest)) => (Some(SetOp::ForAllValues), rest),
            Some(("foranyvalue", rest)) => (Some(SetOp::ForAnyValue), rest),
            Some(_) => {
                return Err(format!(
                    "unknown set operator in `{name}`: expected `ForAllValues:` or `ForAnyValue:`"
                ));
            }
        };
        let (base_name, if_exists) = match rest.strip_suffix("ifexists") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        let &(_, base, negated) = OPERATORS
            .iter()
            .find(|(n, _, _)| *n == base_name)
            .ok_or_else(|| format!("unknown condition operator `{name}`"))?;
        if base == Base::Null && if_exists {
            return Err(format!(
                "`{name}`: `Null` cannot take the `IfExists` suffix"
            ));
        }
        Ok(Operator {
            set,
            base,
            negated,
            if_exists,
        })
    }

    /// Whether values of this operator may hold policy variables.
    fn allows_variables(self) -> bool {
        matches!(
            self.base,
            Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike | Base::Arn
        )
    }
}

/// One compiled condition: an operator, one key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub op: Operator,
    /// Lowercase, as the context stores keys; inline up to 23 bytes
    /// (`aws:principaltag/team`), so reading a condition does not load its key from
    /// elsewhere.
    pub key: smol_str::SmolStr,
    values: Values,
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    Text(Vec<Text>),
    Like(Vec<Like>),
    Number(Vec<f64>),
    Date(Vec<i64>),
    Bool(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<IpNet>),
    Arn(Vec<ArnValue>),
    Null { absent: bool, present: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Text {
    /// Lowercased at compile time for the `IgnoreCase` operators.
    Lit(Box<str>),
    Tpl(Template),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Like {
    Pat(Pattern),
    Tpl(Template),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ArnValue {
    Pat(ArnPattern),
    Tpl(Template),
}

/// A value error: which value (by index) and what is wrong with it.
pub type ValueError = (usize, String);

impl Condition {
    /// The (lowercase) keys the condition reads: its own, and those of the policy
    /// variables in its values.
    pub fn keys_read(&self) -> impl Iterator<Item = &str> {
        let templates: Vec<&Template> = match &self.values {
            Values::Text(vs) => vs
                .iter()
                .filter_map(|v| match v {
                    Text::Tpl(t) => Some(t),
                    Text::Lit(_) => None,
                })
                .collect(),
            Values::Like(vs) => vs
                .iter()
                .filter_map(|v| match v {
                    Like::Tpl(t) => Some(t),
                    Like::Pat(_) => None,
                })
                .collect(),
            Values::Arn(vs) => vs
                .iter()
                .filter_map(|v| match v {
                    ArnValue::Tpl(t) => Some(t),
                    ArnValue::Pat(_) => None,
                })
                .collect(),
            Values::Number(_)
            | Values::Date(_)
            | Values::Bool(_)
            | Values::Binary(_)
            | Values::Ip(_)
            | Values::Null { .. } => Vec::new(),
        };
        std::iter::once(self.key.as_str()).chain(templates.into_iter().flat_map(Template::keys))
    }

    /// Compiles one key's values. `variables` is true for `2012-10-17` policies.
    pub fn new(
        op: Operator,
        key: &str,
        values: &[String],
        variables: bool,
    ) -> Result<Condition, ValueError> {
        let vars = variables && op.allows_variables();
        // Access Analyzer's "Invalid variable for operator": only String and ARN values
        // take variables.
        if variables
            && !op.allows_variables()
            && let Some(i) = values.iter().position(|v| v.contains("${"))
        {
            let v = values.get(i).map_or("", String::as_str);
            return Err((
                i,
                format!("`{v}`: policy variables are not allowed with this operator"),
            ));
        }
        let template = |v: &str| -> Result<Option<Template>, String> {
            if vars { Template::parse(v) } else { Ok(None) }
        };
        let values = match op.base {
            Base::StringEquals | Base::StringEqualsIgnoreCase => {
                let fold = op.base == Base::StringEqualsIgnoreCase;
                let mut out = Vec::with_capacity(values.len());
                for (i, v) in values.iter().enumerate() {
                    out.push(match at(i, template(v))? {
                        Some(t) => Text::Tpl(t),
                        None if fold => Text::Lit(lowercase(v).into()),
                        None => Text::Lit(v.as_str().into()),
                    });
                }
                Values::Text(out)
            }
            Base::StringLike => {
                let mut out = Vec::with_capacity(values.len());
                for (i, v) in values.iter().enumerate() {
                    out.push(match at(i, template(v))? {
                        Some(t) => Like::Tpl(t),
                        None => Like::Pat(Pattern::new(v)),
                    });
                }
                Values::Like(out)
            }
            Base::Arn => {
                let mut out = Vec::with_capacity(values.len());
                for (i, v) in values.iter().enumerate() {
                    out.push(match at(i, template(v))? {
                        Some(t) => ArnValue::Tpl(t),
                        None => ArnValue::Pat(at(i, ArnPattern::new(v, false, ShortArn::Never))?),
                    });
                }
                Values::Arn(out)
            }
            Base::Numeric(_) => Values::Number(parse_all(values, |v| {
                parse_number(v).ok_or_else(|| format!("`{v}` is not a number"))
            })?),
            Base::Date(_) => Values::Date(parse_all(values, |v| {
                parse_date(v).ok_or_else(|| {
                    format!("`{v}` is not a date (ISO 8601, such as `2026-01-15T12:00:00Z`, or epoch seconds)")
                })
            })?),
            Base::Bool => Values::Bool(parse_all(values, |v| {
                parse_bool(v).ok_or_else(|| format!("`{v}` is not `true` or `false`"))
            })?),
            Base::BinaryEquals => Values::Binary(parse_all(values, |v| {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map_err(|_| format!("`{v}` is not base64"))
            })?),
            Base::IpAddress => Values::Ip(parse_all(values, |v| {
                parse_cidr(v).ok_or_else(|| format!("`{v}` is not an IP address or CIDR range"))
            })?),
            Base::Null => {
                let flags = parse_all(values, |v| {
                    parse_bool(v)
                        .ok_or_else(|| format!("`Null` takes `true` or `false`, not `{v}`"))
                })?;
                Values::Null {
                    absent: flags.iter().any(|&b| b),
                    present: flags.iter().any(|&b| !b),
                }
            }
        };
        Ok(Condition {
            op,
            key: key.to_ascii_lowercase().into(),
            values,
        })
    }

    /// Whether the condition holds for the request. Never fails: a value that cannot be
    /// read as the operator's type simply does not match.
    pub fn holds(&self, ctx: &dyn Lookup) -> bool {
        let v = ctx.get(&self.key);
        if let Values::Null { absent, present } = self.values {
            return match v {
                None => absent,
                Some(_) => present,
            };
        }
        let empty = v.is_none_or(|v| v.values().is_empty());
        if empty && self.op.if_exists {
            return true;
        }
        match self.op.set {
            Some(SetOp::ForAllValues) => {
                empty || v.is_some_and(|v| v.values().iter().all(|r| self.one(r, ctx)))
            }
            Some(SetOp::ForAnyValue) => {
                !empty && v.is_some_and(|v| v.values().iter().any(|r| self.one(r, ctx)))
            }
            None => match v {
                None => self.op.negated,
                Some(ContextValue::Multi(xs)) if xs.is_empty() => self.op.negated,
                // A plain operator on a key holding several values matches nothing, negated
                // or not (iam-simulate's reading of AWS, reference §4.6).
                Some(v) => v.single().is_some_and(|r| self.one(r, ctx)),
            },
        }
    }

    /// The base operator applied to one request value and every policy value: OR for a
    /// positive operator, NOR for a negated one.
    fn one(&self, r: &str, ctx: &dyn Lookup) -> bool {
        self.any_value(r, ctx) != self.op.negated
    }

    fn any_value(&self, r: &str, ctx: &dyn Lookup) -> bool {
        match &self.values {
            Values::Text(vs) => {
                let fold = self.op.base == Base::StringEqualsIgnoreCase;
                vs.iter().any(|pv| match pv {
                    Text::Lit(p) if fold => eq_ignore_case(p, r),
                    Text::Lit(p) => **p == *r,
                    Text::Tpl(t) => t.resolve_text(ctx).is_some_and(|p| {
                        if fold {
                            eq_ignore_case(&lowercase(&p), r)
                        } else {
                            p == r
                        }
                    }),
                })
            }
            Values::Like(vs) => vs.iter().any(|pv| match pv {
                Like::Pat(p) => p.matches(r),
                Like::Tpl(t) => t
                    .resolve_tokens(ctx, true)
                    .is_some_and(|toks| matches_tokens(&toks, r)),
            }),
            Values::Arn(vs) => vs.iter().any(|pv| match pv {
                ArnValue::Pat(p) => crate::arn::Arn::parse(r)
                    .is_some_and(|a| p.matches(Some(&a), ctx) == Some(true)),
                ArnValue::Tpl(t) => t
                    .resolve_tokens(ctx, true)
                    .is_some_and(|toks| arn_like(&toks, r)),
            }),
            Values::Number(vs) => {
                let Base::Numeric(cmp) = self.op.base else {
                    return false;
                };
                parse_number(r).is_some_and(|x| vs.iter().any(|&p| compare(cmp, x, p)))
            }
            Values::Date(vs) => {
                let Base::Date(cmp) = self.op.base else {
                    return false;
                };
                parse_date(r).is_some_and(|x| vs.iter().any(|&p| compare(cmp, x, p)))
            }
            Values::Bool(vs) => parse_bool(r).is_some_and(|x| vs.contains(&x)),
            Values::Binary(vs) => {
                let decoded = base64::engine::general_purpose::STANDARD.decode(r).ok();
                vs.iter().any(|p| decoded.as_deref() == Some(p.as_slice()))
            }
            Values::Ip(vs) => r
                .parse::<IpAddr>()
                .ok()
                .or_else(|| {
                    parse_cidr(r)
                        .filter(|n| n.prefix_len() == n.max_prefix_len())
                        .map(|n| n.addr())
                })
                .is_some_and(|ip| vs.iter().any(|n| n.contains(&ip))),
            Values::Null { .. } => false,
        }
    }
}

/// A condition's compiled values, read by tools that reason about every request a
/// condition can distinguish (`compare`). `None` stands for a value with policy variables.
#[derive(Debug, Clone)]
pub enum ValuesView<'a> {
    /// `StringEquals`, `StringEqualsIgnoreCase` (lowercased) and their negations.
    Text(Vec<Option<&'a str>>),
    Like(Vec<Option<&'a Pattern>>),
    Number(&'a [f64]),
    /// Milliseconds since the epoch.
    Date(&'a [i64]),
    Bool(&'a [bool]),
    Binary(&'a [Vec<u8>]),
    Ip(&'a [IpNet]),
    Arn(Vec<Option<&'a ArnPattern>>),
    Null,
}

impl Condition {
    /// The compiled values, for analysis (see [`ValuesView`]).
    pub fn values_view(&self) -> ValuesView<'_> {
        match &self.values {
            Values::Text(vs) => ValuesView::Text(
                vs.iter()
                    .map(|v| match v {
                        Text::Lit(t) => Some(&**t),
                        Text::Tpl(_) => None,
                    })
                    .collect(),
            ),
            Values::Like(vs) => ValuesView::Like(
                vs.iter()
                    .map(|v| match v {
                        Like::Pat(p) => Some(p),
                        Like::Tpl(_) => None,
                    })
                    .collect(),
            ),
            Values::Number(vs) => ValuesView::Number(vs),
            Values::Date(vs) => ValuesView::Date(vs),
            Values::Bool(vs) => ValuesView::Bool(vs),
            Values::Binary(vs) => ValuesView::Binary(vs),
            Values::Ip(vs) => ValuesView::Ip(vs),
            Values::Arn(vs) => ValuesView::Arn(
                vs.iter()
                    .map(|v| match v {
                        ArnValue::Pat(p) => Some(p),
                        ArnValue::Tpl(_) => None,
                    })
                    .collect(),
            ),
            Values::Null { .. } => ValuesView::Null,
        }
    }
}

fn at<T>(i: usize, r: Result<T, String>) -> Result<T, ValueError> {
    r.map_err(|m| (i, m))
}

fn parse_all<T>(
    values: &[String],
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ValueError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| f(v).map_err(|m| (i, m)))
        .collect()
}

fn compare<T: PartialOrd>(cmp: Cmp, x: T, p: T) -> bool {
    match cmp {
        Cmp::Eq => x == p,
        Cmp::Lt => x < p,
        Cmp::Le => x <= p,
        Cmp::Gt => x > p,
        Cmp::Ge => x >= p,
    }
}

/// `text` lowercased a character at a time, as [`eq_ignore_case`] lowercases the request's
/// side: not `str::to_lowercase`, whose final-sigma rule (`Σ` at the end of a word is `ς`,
/// elsewhere `σ`) would make a value unequal to itself.
fn lowercase(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// `p` is already lowercase (by [`lowercase`]); compares without allocating.
fn eq_ignore_case(p: &str, r: &str) -> bool {
    if p.is_ascii() && r.is_ascii() {
        return p.eq_ignore_ascii_case(r);
    }
    p.chars().eq(r.chars().flat_map(char::to_lowercase))
}

/// Integers and decimals, optionally signed: `42`, `-1.5`, `.5` is refused.
pub fn parse_number(s: &str) -> Option<f64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if ok { s.parse().ok() } else { None }
}

/// ISO 8601 date-times (with `Z` or an offset; without one, UTC), dates, and epoch seconds.
/// Returns milliseconds since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && !s.contains("--")
        && let Ok(secs) = s.parse::<i64>()
    {
        return secs.checked_mul(1000);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, f) {
            return Some(dt.timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A CIDR range, or a bare address meaning `/32` (IPv4) or `/128` (IPv6).
fn parse_cidr(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests;

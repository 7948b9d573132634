//! The compiled templates of a listener: path templates (`/orders/{id}`, a trailing
//! `{rest...}`) as segments, resource ARN templates as literal pieces and parameter slots,
//! and the checks a value passes before it enters an ARN.

use std::borrow::Cow;

use super::Refusal;

/// Bytes in a path or resource template, at most.
pub const MAX_TEMPLATE_BYTES: usize = 1024;
/// Segments in a path template, at most.
pub const MAX_TEMPLATE_SEGMENTS: usize = 32;
/// Bytes in a rendered resource, at most (as a request's resource, `service::MAX_NAME_BYTES`).
pub const MAX_RESOURCE_BYTES: usize = crate::service::MAX_NAME_BYTES;

/// The placeholders every resource template may use besides the path's parameters.
const ACCOUNT: &str = "account";
const REGION: &str = "region";

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Compared with the request's decoded segment, exactly.
    Lit(Box<str>),
    /// `{name}`: one whole segment.
    Param,
    /// `{name...}`: the rest of the path, one segment or more (last only).
    Rest,
}

impl Segment {
    /// How specific the segment is: a literal beats a parameter beats the rest.
    pub fn rank(&self) -> u8 {
        match self {
            Segment::Lit(_) => 2,
            Segment::Param => 1,
            Segment::Rest => 0,
        }
    }
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pub segments: Vec<Segment>,
    /// The parameters' names, in the order they appear.
    pub params: Vec<Box<str>>,
}

/// Why a template was refused at load: a finding's code and message.
pub type TemplateError = (&'static str, String);

pub fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// Parses a path template: `/`, or `/`-separated non-empty segments, each a literal or a
/// whole-segment `{name}`, the last possibly `{name...}`.
pub fn parse_path(text: &str) -> Result<PathTemplate, TemplateError> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err((
            "template-too-long",
            format!(
                "a path template has at most {MAX_TEMPLATE_BYTES} bytes, this one {}",
                text.len()
            ),
        ));
    }
    let Some(body) = text.strip_prefix('/') else {
        return Err((
            "invalid-path-template",
            format!("`{text}` does not start with `/`"),
        ));
    };
    let mut t = PathTemplate {
        segments: Vec::new(),
        params: Vec::new(),
    };
    if body.is_empty() {
        return Ok(t);
    }
    if body.ends_with('/') {
        return Err((
            "invalid-path-template",
            format!(
                "`{text}` ends with `/`: a request's trailing slash is ignored, so write the template without it"
            ),
        ));
    }
    let count = body.split('/').count();
    if count > MAX_TEMPLATE_SEGMENTS {
        return Err((
            "template-too-long",
            format!("`{text}` has {count} segments; at most {MAX_TEMPLATE_SEGMENTS}"),
        ));
    }
    for (i, seg) in body.split('/').enumerate() {
        let last = i + 1 == count;
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err((
                "invalid-path-template",
                format!(
                    "`{text}` has an empty, `.` or `..` segment, which no accepted request has"
                ),
            ));
        }
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let (name, rest) = match inner.strip_suffix("...") {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if !is_param_name(name) {
                return Err((
                    "invalid-path-template",
                    format!(
                        "`{seg}` in `{text}`: a parameter is `{{name}}` or `{{name...}}`, its name letters, digits and `_`"
                    ),
                ));
            }
            if rest && !last {
                return Err((
                    "invalid-path-template",
                    format!("`{seg}` in `{text}`: only the last segment may be `{{name...}}`"),
                ));
            }
            if name == ACCOUNT || name == REGION {
                return Err((
                    "reserved-parameter",
                    format!(
                        "`{seg}` in `{text}`: `{{account}}` and `{{region}}` are the listener's, not the path's"
                    ),
                ));
            }
            if t.params.iter().any(|p| **p == *name) {
                return Err((
                    "duplicate-parameter",
                    format!("`{{{name}}}` appears twice in `{text}`"),
                ));
            }
            t.params.push(name.into());
            t.segments
                .push(if rest { Segment::Rest } else { Segment::Param });
            continue;
        }
        if let Some(bad) = seg.chars().find(|c| {
            matches!(c, '{' | '}' | '%' | '\\' | '?' | '#') || c.is_control() || *c == ' '
        }) {
            return Err((
                "invalid-path-template",
                format!(
                    "`{seg}` in `{text}`: `{bad}` may not appear in a literal segment (a parameter fills a whole segment; write literals decoded)"
                ),
            ));
        }
        t.segments.push(Segment::Lit(seg.into()));
    }
    Ok(t)
}

/// A piece of a resource template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Box<str>),
    /// The value of the path's parameter at this index.
    Param(usize),
}

/// A compiled resource template: `*`, or an ARN whose first five parts are constants (the
/// listener's account and region filled in at load) and whose resource part may hold the
/// path's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTemplate {
    /// Empty for `*`.
    pieces: Vec<Piece>,
    /// The ARN's service part (`orders`), empty for `*`.
    service: Box<str>,
    /// Bytes of the literal pieces.
    fixed_len: usize,
}

impl ResourceTemplate {
    pub fn is_star(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The ARN's service part, empty for `*`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Renders with the values of the path's parameters (`values[i]` for parameter `i`);
    /// a value that could act as a wildcard or a policy variable is refused.
    pub fn render(&self, values: &[Cow<'_, str>]) -> Result<String, Refusal> {
        if self.pieces.is_empty() {
            return Ok("*".to_owned());
        }
        let mut len = self.fixed_len;
        for p in &self.pieces {
            if let Piece::Param(i) = p {
                let v = values.get(*i).map_or("", |v| v.as_ref());
                check_value(v)?;
                len += v.len();
            }
        }
        if len > MAX_RESOURCE_BYTES {
            return Err(Refusal::new(
                "value_too_long",
                format!("the resource would have {len} bytes; at most {MAX_RESOURCE_BYTES}"),
            ));
        }
        let mut out = String::with_capacity(len);
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Param(i) => out.push_str(values.get(*i).map_or("", |v| v.as_ref())),
            }
        }
        Ok(out)
    }
}

/// Refuses a value that would change what an ARN means. The engine matches a request's
/// resource literally, so a `*` there would not widen warden's decision; but the upstream
/// may read `*`/`?` as wildcards and `${...}` as a policy variable would read in a pattern,
/// and a decision about a resource named `orders/*` is not one a reader of the log can
/// trust. Refusing is simpler and safer than an escape no one else knows.
pub fn check_value(v: &str) -> Result<(), Refusal> {
    if let Some(c) = v.chars().find(|c| matches!(c, '*' | '?')) {
        return Err(Refusal::new(
            "wildcard_in_value",
            format!("`{c}` in a value for the resource: it would read as a wildcard"),
        ));
    }
    if let Some(c) = v.chars().find(|c| matches!(c, '$' | '{' | '}')) {
        return Err(Refusal::new(
            "variable_in_value",
            format!("`{c}` in a value for the resource: it could read as a policy variable"),
        ));
    }
    Ok(())
}

fn not_an_arn(text: &str) -> TemplateError {
    (
        "invalid-resource-template",
        format!("`{text}` is neither `*` nor an ARN (`arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`)"),
    )
}

/// Parses a resource template: `*`, or `arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE` where
/// `{account}` and `{region}` may appear anywhere and the path's `params` only in RESOURCE.
pub fn parse_resource(
    text: &str,
    account: &str,
    region: &str,
    params: &[Box<str>],
) -> Result<ResourceTemplate, TemplateError> {
    if text == "*" {
        return Ok(ResourceTemplate {
            pieces: Vec::new(),
            service: "".into(),
            fixed_len: 1,
        });
    }
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err((
            "template-too-long",
            format!(
                "a resource template has at most {MAX_TEMPLATE_BYTES} bytes, this one {}",
                text.len()
            ),
        ));
    }
    if !text.starts_with("arn:") {
        return Err(not_an_arn(text));
    }
    // Pieces, with placeholders resolved, and where RESOURCE (after the fifth colon) starts.
    let mut pieces: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let mut colons = 0;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                let Some(end) = rest.find('}') else {
                    return Err((
                        "invalid-resource-template",
                        format!("`{text}` has a `{{` without its `}}`"),
                    ));
                };
                let name = rest.get(1..end).unwrap_or("");
                rest = rest.get(end + 1..).unwrap_or("");
                if name == ACCOUNT {
                    lit.push_str(account);
                } else if name == REGION {
                    lit.push_str(region);
                } else if let Some(i) = params.iter().position(|p| **p == *name) {
                    if colons < 5 {
                        return Err((
                            "parameter-in-arn-head",
                            format!(
                                "`{{{name}}}` in `{text}`: a path parameter may fill only the resource part (after the fifth `:`)"
                            ),
                        ));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit).into()));
                    }
                    pieces.push(Piece::Param(i));
                } else {
                    return Err((
                        "unknown-placeholder",
                        format!(
                            "`{{{name}}}` in `{text}` is neither `{{account}}`, `{{region}}` nor a parameter of the path"
                        ),
                    ));
                }
                continue;
            }
            '}' => {
                return Err((
                    "invalid-resource-template",
                    format!("`{text}` has a `}}` without its `{{`"),
                ));
            }
            '*' | '?' | '$' => {
                return Err((
                    "wildcard-in-template",
                    format!(
                        "`{c}` in `{text}`: a route names one resource; `*` is allowed only as the whole resource"
                    ),
                ));
            }
            c if c.is_control() || c == ' ' => {
                return Err((
                    "invalid-resource-template",
                    format!("`{text}` holds white space or a control character"),
                ));
            }
            ':' => colons += 1,
            _ => {}
        }
        lit.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit.into()));
    }
    // The first five parts are constant: check them as an ARN with an empty resource.
    let head = match pieces.first() {
        Some(Piece::Lit(s)) => s.as_ref(),
        _ => "",
    };
    let Some(arn) = crate::arn::Arn::parse(head) else {
        return Err(not_an_arn(text));
    };
    if !crate::bundle::is_partition(arn.partition) {
        return Err((
            "invalid-resource-template",
            format!(
                "`{text}` is in partition `{}`; the bundle's is `{}`",
                arn.partition,
                crate::bundle::PARTITION
            ),
        ));
    }
    if arn.service.is_empty()
        || !arn
            .service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err((
            "invalid-resource-template",
            format!(
                "`{text}`: the service part `{}` is not a service prefix",
                arn.service
            ),
        ));
    }
    if arn.resource.is_empty() && pieces.len() == 1 {
        return Err((
            "invalid-resource-template",
            format!("`{text}` has an empty resource part"),
        ));
    }
    let fixed_len = pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(s) => s.len(),
            Piece::Param(_) => 0,
        })
        .sum();
    Ok(ResourceTemplate {
        service: arn.service.into(),
        pieces,
        fixed_len,
    })
}

//! IAM policy documents: reading a JSON document, validating it for its kind as AWS does,
//! and compiling it into the immutable form evaluation uses.
//!
//! Every finding names the JSON path and the line and column. A document with an error
//! does not compile: evaluation never sees a policy that could be read two ways.

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::arn::{ArnPattern, ShortArn};
use crate::condition::{Condition, Operator};
use crate::json::{self, Member, Node, Pos, Value};
use crate::matcher::Pattern;

pub mod principal;

pub use principal::{PrincipalEntry, PrincipalSet};

/// The kinds of policy AWS distinguishes; each accepts different elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Identity-based: attached to a user, group or role (managed or inline).
    Identity,
    /// Resource-based: attached to a resource; names principals.
    Resource,
    /// A role's trust policy: who may assume the role.
    Trust,
    /// A permissions boundary: caps identity policies, never grants.
    Boundary,
    /// A session policy passed when assuming a role: caps the session, never grants.
    Session,
    /// A service control policy: caps principals of an organization's accounts.
    Scp,
    /// A resource control policy: caps resources of an organization's accounts.
    Rcp,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 7] = [
        PolicyKind::Identity,
        PolicyKind::Resource,
        PolicyKind::Trust,
        PolicyKind::Boundary,
        PolicyKind::Session,
        PolicyKind::Scp,
        PolicyKind::Rcp,
    ];

    /// The stable name used on the command line, in reasons and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Identity => "identity",
            PolicyKind::Resource => "resource",
            PolicyKind::Trust => "trust",
            PolicyKind::Boundary => "boundary",
            PolicyKind::Session => "session",
            PolicyKind::Scp => "scp",
            PolicyKind::Rcp => "rcp",
        }
    }

    pub fn from_name(name: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Largest document accepted, in characters without white space (AWS's quotas:
    /// managed policy 6,144; session 2,048; SCP and RCP 5,120; trust policy 8,192 at its
    /// raised maximum; S3's bucket-policy 20 KiB for resource policies).
    pub fn max_size(self) -> usize {
        match self {
            PolicyKind::Identity | PolicyKind::Boundary => 6_144,
            PolicyKind::Resource => 20_480,
            PolicyKind::Trust => 8_192,
            PolicyKind::Session => 2_048,
            PolicyKind::Scp | PolicyKind::Rcp => 5_120,
        }
    }

    fn principal_rule(self) -> PrincipalRule {
        match self {
            PolicyKind::Resource => PrincipalRule::Required {
                not_principal: true,
            },
            PolicyKind::Trust => PrincipalRule::Required {
                not_principal: false,
            },
            PolicyKind::Rcp => PrincipalRule::StarOnly,
            _ => PrincipalRule::Forbidden,
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

enum PrincipalRule {
    Forbidden,
    Required { not_principal: bool },
    StarOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One validation finding, placed in its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// A stable code, such as `invalid-effect` or `missing-resource`.
    pub code: &'static str,
    /// JSON path, such as `$.Statement[1].Effect`.
    pub path: String,
    /// Where in the file; `Pos::default()` (line 0) for the file as a whole.
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Line 0 is no line: a finding about the whole file (its name, its encoding, a
        // reference checked after parsing) says `file` where others say `line:column`.
        if self.pos.line == 0 {
            f.write_str("file")?;
        } else {
            write!(f, "{}", self.pos)?;
        }
        write!(f, ": {sev}[{}] {}: {}", self.code, self.path, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A compiled policy. Immutable once built.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Names the policy in decisions: a policy ARN, `user/alice/inline/name`, `identity[0]`.
    pub id: Arc<str>,
    pub kind: PolicyKind,
    /// Shared with the sets that hold the policy, whose indexes reach a statement without
    /// going through the policy (one cache miss fewer in a large snapshot).
    pub statements: Arc<[Statement]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Position in the document's `Statement` list.
    pub index: usize,
    pub sid: Option<Arc<str>>,
    pub effect: Effect,
    pub actions: ActionSet,
    /// `None` where the element is absent: a resource-based policy's statement then covers
    /// the resource it is attached to, and a trust policy's the role.
    pub resources: Option<ResourceSet>,
    pub principals: Option<PrincipalSet>,
    pub conditions: Vec<Condition>,
    pub pos: Pos,
}

/// `Action` or `NotAction`, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSet {
    pub negated: bool,
    pub patterns: Vec<ActionPattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionPattern {
    /// `*`
    Any,
    Parts {
        service: Pattern,
        name: Pattern,
    },
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSet {
    pub negated: bool,
    pub patterns: Vec<ArnPattern>,
}

impl ActionPattern {
    /// `action` must be lowercase, split at its colon.
    pub fn matches(&self, service: &str, name: &str) -> bool {
        match self {
            ActionPattern::Any => true,
            ActionPattern::Parts {
                service: s,
                name: n,
            } => s.matches(service) && n.matches(name),
        }
    }
}

impl Statement {
    /// The (lowercase) condition keys the statement reads: its conditions' keys and the
    /// policy variables in their values and in its `Resource`.
    pub fn keys_read(&self) -> impl Iterator<Item = &str> {
        let resources = self.resources.iter().flat_map(|r| &r.patterns);
        self.conditions
            .iter()
            .flat_map(Condition::keys_read)
            .chain(resources.flat_map(ArnPattern::variables))
    }
}

impl ActionSet {
    pub fn matches(&self, service: &str, name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(service, name)) != self.negated
    }
}

/// The result of reading one document: the policy when it has no error, and every finding.
#[derive(Debug)]
pub struct Parsed {
    pub policy: Option<Policy>,
    pub findings: Vec<Finding>,
}

impl Parsed {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

/// Reads policy text of the given kind.
pub fn parse_text(text: &str, kind: PolicyKind, id: &str) -> Parsed {
    match json::parse(text) {
        Ok(node) => parse_node(&node, kind, id),
        Err(e) => Parsed {
            policy: None,
            findings: vec![Finding {
                severity: Severity::Error,
                code: "invalid-json",
                path: "$".into(),
                pos: e.pos,
                message: e.message,
            }],
        },
    }
}

/// Validates and compiles a document already read as JSON.
pub fn parse_node(node: &Node, kind: PolicyKind, id: &str) -> Parsed {
    parse_node_with(node, kind, id, Some(kind.max_size()))
}

/// Like [`parse_node`] with a size limit of the caller's (a configured quota), or none
/// (`None`, for the built-in managed policies that warden generates).
pub fn parse_node_with(node: &Node, kind: PolicyKind, id: &str, max_size: Option<usize>) -> Parsed {
    let mut cx = Checker {
        kind,
        findings: Vec::new(),
        variables: false,
        max_size,
    };
    let statements = cx.document(node);
    let has_error = cx.findings.iter().any(|f| f.severity == Severity::Error);
    Parsed {
        policy: (!has_error).then(|| Policy {
            id: id.into(),
            kind,
            statements: statements.into(),
        }),
        findings: cx.findings,
    }
}

/// Characters of a document without white space outside strings, as AWS counts size:
/// the length of its compact `serde_json` form, counted without building it (building it
/// was a sixth of `warden eval`'s instructions: callgrind, BENCHMARKS.md).
pub fn compact_size(node: &Node) -> usize {
    match &node.value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        // Numbers are rare in policies; `serde_json` decides how each is written back
        // (`1e3` as `1000.0`), and one it cannot read becomes `null`.
        Value::Number(n) => serde_json::from_str::<serde_json::Value>(n)
            .map_or(4, |v| v.to_string().chars().count()),
        Value::String(s) => string_size(s),
        Value::Array(items) => {
            2 + items.iter().map(compact_size).sum::<usize>() + items.len().saturating_sub(1)
        }
        Value::Object(members) => {
            // Of duplicate keys, `serde_json`'s map keeps the last. A policy's objects are
            // small, where a scan beats hashing; a hash set keeps a hostile one linear.
            let mut seen: FxHashSet<&str> = FxHashSet::default();
            let small = members.len() <= 16;
            let mut size = 2;
            let mut kept = 0usize;
            for (i, m) in members.iter().enumerate().rev() {
                let last = if small {
                    !members.iter().skip(i + 1).any(|later| later.key == m.key)
                } else {
                    seen.insert(&m.key)
                };
                if last {
                    size += string_size(&m.key) + 1 + compact_size(&m.value);
                    kept += 1;
                }
            }
            size + kept.saturating_sub(1)
        }
    }
}

/// Characters of a string written as JSON by `serde_json`, quotes and escapes included.
fn string_size(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\u{8}' | '\t' | '\n' | '\u{c}' | '\r' => 2,
            '\0'..='\u{1f}' => 6,
            _ => 1,
        })
        .sum::<usize>()
}

struct Checker {
    kind: PolicyKind,
    findings: Vec<Finding>,
    /// Whether `${...}` is a variable (Version `2012-10-17`).
    variables: bool,
    max_size: Option<usize>,
}

const TOP_KEYS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

impl Checker {
    fn error(&mut self, code: &'static str, path: &str, pos: Pos, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Error,
            code,
            path: path.to_owned(),
            pos,
            message: message.into(),
        });
    }

    fn warn(&mut self, code: &'static str, path: &str, pos: Pos, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            code,
            path: path.to_owned(),
            pos,
            message: message.into(),
        });
    }

    /// Reports duplicate and unknown keys of an object; returns its members.
    fn object<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: Option<&[&str]>,
    ) -> Option<&'n [Member]> {
        check_object(node, path, known, &mut self.findings)
    }

    fn document(&mut self, node: &Node) -> Vec<Statement> {
        let Some(_) = self.object(node, "$", Some(TOP_KEYS)) else {
            return Vec::new();
        };
        let size = self.max_size.map(|max| (compact_size(node), max));
        if let Some((size, max)) = size
            && size > max
        {
            self.error(
                "policy-too-large",
                "$",
                node.pos,
                format!(
                    "policy has {size} characters without white space; {} policy may have at most {max}",
                    a_kind(self.kind)
                ),
            );
        }
        match node.get("Version") {
            None => {
                if self.kind == PolicyKind::Rcp {
                    self.error(
                        "missing-version",
                        "$",
                        node.pos,
                        "a resource control policy must have `\"Version\": \"2012-10-17\"`",
                    );
                } else {
                    self.warn("missing-version", "$", node.pos, "no `Version`: policy variables are read as literal text; write `\"Version\": \"2012-10-17\"`");
                }
            }
            Some(v) => match v.as_str() {
                Some("2012-10-17") => self.variables = true,
                Some("2008-10-17") if self.kind == PolicyKind::Rcp => {
                    self.error(
                        "invalid-version",
                        "$.Version",
                        v.pos,
                        "a resource control policy must use Version `2012-10-17`",
                    );
                }
                Some("2008-10-17") => {}
                _ => self.error(
                    "invalid-version",
                    "$.Version",
                    v.pos,
                    format!(
                        "`Version` must be `2012-10-17` or `2008-10-17`, found {}",
                        show(v)
                    ),
                ),
            },
        }
        if let Some(idn) = node.get("Id")
            && idn.as_str().is_none()
        {
            {
                self.error(
                    "wrong-type",
                    "$.Id",
                    idn.pos,
                    format!("`Id` must be a string, found {}", idn.kind()),
                );
            }
        }
        let Some(st) = node.get("Statement") else {
            self.error(
                "missing-statement",
                "$",
                node.pos,
                "a policy needs a `Statement`",
            );
            return Vec::new();
        };
        let items: Vec<(String, &Node)> = match &st.value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("$.Statement[{i}]"), n))
                .collect(),
            Value::Object(_) => vec![("$.Statement".to_owned(), st)],
            _ => {
                self.error(
                    "wrong-type",
                    "$.Statement",
                    st.pos,
                    format!(
                        "`Statement` must be an object or an array of objects, found {}",
                        st.kind()
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut sids: Vec<(&str, Pos)> = Vec::new();
        for (index, (path, node)) in items.iter().enumerate() {
            if let Some(sid) = node.get("Sid").and_then(Node::as_str) {
                if sids.iter().any(|(s, _)| *s == sid) {
                    let pos = node.get("Sid").map_or(node.pos, |n| n.pos);
                    self.error(
                        "duplicate-sid",
                        &child(path, "Sid"),
                        pos,
                        format!("`Sid` `{sid}` is used by another statement of this policy"),
                    );
                }
                sids.push((sid, node.pos));
            }
            if let Some(s) = self.statement(node, path, index) {
                out.push(s);
            }
        }
        out
    }

    fn statement(&mut self, node: &Node, path: &str, index: usize) -> Option<Statement> {
        self.object(node, path, Some(STATEMENT_KEYS))?;
        let kind = self.kind;
        let sid = match node.get("Sid") {
            None => None,
            Some(n) => {
                match n.as_str() {
                    Some(s) => {
                        let strict = !matches!(kind, PolicyKind::Resource | PolicyKind::Trust);
                        if strict && !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                            self.error("invalid-sid", &child(path, "Sid"), n.pos, format!("`Sid` `{s}` may hold only ASCII letters and digits in {} policy", a_kind(kind)));
                        }
                        Some(Arc::from(s))
                    }
                    None => {
                        self.error(
                            "wrong-type",
                            &child(path, "Sid"),
                            n.pos,
                            format!("`Sid` must be a string, found {}", n.kind()),
                        );
                        None
                    }
                }
            }
        };
        let effect = match node.get("Effect") {
            None => {
                self.error(
                    "missing-effect",
                    path,
                    node.pos,
                    "a statement needs an `Effect` of `Allow` or `Deny`",
                );
                None
            }
            Some(n) => match n.as_str() {
                Some("Allow") => Some(Effect::Allow),
                Some("Deny") => Some(Effect::Deny),
                _ => {
                    self.error(
                        "invalid-effect",
                        &child(path, "Effect"),
                        n.pos,
                        format!(
                            "`Effect` must be `Allow` or `Deny` (case-sensitive), found {}",
                            show(n)
                        ),
                    );
                    None
                }
            },
        };
        if kind == PolicyKind::Rcp && effect == Some(Effect::Allow) {
            let pos = node.get("Effect").map_or(node.pos, |n| n.pos);
            self.error("rcp-allow", &child(path, "Effect"), pos, "a resource control policy may only `Deny` (the full-access RCP grants everything else)");
        }

        let actions = self.actions(node, path);
        let resources = self.resources(node, path);
        let principals = self.principals(node, path, effect);
        let conditions = match node.get("Condition") {
            None => Vec::new(),
            Some(c) => {
                let mut list = self.conditions(c, &child(path, "Condition"));
                list.shrink_to_fit();
                list
            }
        };
        Some(Statement {
            index,
            sid,
            effect: effect?,
            actions: actions?,
            resources,
            principals,
            conditions,
            pos: node.pos,
        })
    }

    /// Reads a string-or-array element into (value, position) pairs.
    fn strings<'n>(&mut self, node: &'n Node, path: &str) -> Option<Vec<(&'n str, Pos, String)>> {
        match &node.value {
            Value::String(s) => Some(vec![(s.as_str(), node.pos, path.to_owned())]),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let ipath = format!("{path}[{i}]");
                    match item.as_str() {
                        Some(s) => out.push((s, item.pos, ipath)),
                        None => self.error(
                            "wrong-type",
                            &ipath,
                            item.pos,
                            format!("expected a string, found {}", item.kind()),
                        ),
                    }
                }
                if items.is_empty() {
                    self.warn(
                        "empty-array",
                        path,
                        node.pos,
                        "an empty array matches nothing",
                    );
                }
                Some(out)
            }
            _ => {
                self.error(
                    "wrong-type",
                    path,
                    node.pos,
                    format!(
                        "expected a string or an array of strings, found {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    /// Finds which of an exclusive pair is present, reporting both-or-neither.
    fn pair<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        a: &str,
        b: &str,
        required: bool,
    ) -> Option<(&'n Node, bool)> {
        match (node.get(a), node.get(b)) {
            (Some(x), None) => Some((x, false)),
            (None, Some(y)) => Some((y, true)),
            (Some(_), Some(y)) => {
                self.error(
                    "exclusive-elements",
                    &child(path, b),
                    y.pos,
                    format!("a statement may have `{a}` or `{b}`, not both"),
                );
                None
            }
            (None, None) => {
                if required {
                    let code = if a == "Action" {
                        "missing-action"
                    } else {
                        "missing-resource"
                    };
                    self.error(
                        code,
                        path,
                        node.pos,
                        format!(
                            "{} policy statement needs `{a}` or `{b}`",
                            a_kind(self.kind)
                        ),
                    );
                }
                None
            }
        }
    }

    fn actions(&mut self, node: &Node, path: &str) -> Option<ActionSet> {
        let (el, negated) = self.pair(node, path, "Action", "NotAction", true)?;
        let name = if negated { "NotAction" } else { "Action" };
        let epath = child(path, name);
        if negated && self.kind == PolicyKind::Rcp {
            self.error(
                "rcp-not-action",
                &epath,
                el.pos,
                "a resource control policy cannot use `NotAction`",
            );
        }
        let mut patterns = Vec::new();
        for (text, pos, vpath) in self.strings(el, &epath)? {
            match parse_action(text) {
                Ok(p) => {
                    if self.kind == PolicyKind::Rcp && p == ActionPattern::Any {
                        self.error("rcp-star-action", &vpath, pos, "a resource control policy cannot use the bare action `*`; name a service (`s3:*`)");
                    }
                    if self.kind == PolicyKind::Trust && !trust_action(text) {
                        self.error("invalid-trust-action", &vpath, pos, format!("`{text}` is not an action of a role trust policy (`sts:AssumeRole`, `sts:AssumeRoleWithSAML`, `sts:AssumeRoleWithWebIdentity`, `sts:TagSession`, `sts:SetSourceIdentity`, `sts:SetContext`)"));
                    }
                    if text
                        .split_once(':')
                        .is_some_and(|(svc, _)| svc.contains(['*', '?']))
                    {
                        self.warn("wildcard-service", &vpath, pos, format!("`{text}`: a wildcard in the service prefix can match other and future services"));
                    }
                    patterns.push(p);
                }
                Err(m) => self.error("invalid-action", &vpath, pos, m),
            }
        }
        // A compiled policy lives as long as its snapshot: keep no spare capacity.
        patterns.shrink_to_fit();
        Some(ActionSet { negated, patterns })
    }

    fn resources(&mut self, node: &Node, path: &str) -> Option<ResourceSet> {
        let kind = self.kind;
        let required = !matches!(kind, PolicyKind::Resource | PolicyKind::Trust);
        let (el, negated) = self.pair(node, path, "Resource", "NotResource", required)?;
        let name = if negated { "NotResource" } else { "Resource" };
        let epath = child(path, name);
        if kind == PolicyKind::Trust {
            self.error(
                "trust-resource",
                &epath,
                el.pos,
                format!("a role trust policy cannot have `{name}`: it always applies to the role"),
            );
            return None;
        }
        let short = if kind == PolicyKind::Resource {
            ShortArn::Never
        } else {
            ShortArn::Pad
        };
        let mut patterns = Vec::new();
        for (text, pos, vpath) in self.strings(el, &epath)? {
            if !self.variables && text.contains("${") {
                self.warn("literal-variable", &vpath, pos, format!("`{text}`: without `\"Version\": \"2012-10-17\"` the `${{...}}` is literal text"));
            }
            match ArnPattern::new(text, self.variables, short) {
                Ok(p) => patterns.push(p),
                Err(m) => self.error("invalid-resource", &vpath, pos, m),
            }
        }
        patterns.shrink_to_fit();
        Some(ResourceSet { negated, patterns })
    }

    fn principals(
        &mut self,
        node: &Node,
        path: &str,
        effect: Option<Effect>,
    ) -> Option<PrincipalSet> {
        let kind = self.kind;
        let p = node.get("Principal");
        let np = node.get("NotPrincipal");
        match kind.principal_rule() {
            PrincipalRule::Forbidden => {
                for (name, n) in [("Principal", p), ("NotPrincipal", np)] {
                    if let Some(n) = n {
                        self.error("principal-not-allowed", &child(path, name), n.pos, format!("{} policy cannot name a `{name}`: it applies to the principal it is attached to", a_kind(kind)));
                    }
                }
                None
            }
            PrincipalRule::StarOnly => {
                if let Some(n) = np {
                    self.error(
                        "principal-not-allowed",
                        &child(path, "NotPrincipal"),
                        n.pos,
                        "a resource control policy cannot use `NotPrincipal`",
                    );
                }
                match p {
                    Some(n) if n.as_str() == Some("*") => Some(PrincipalSet::everyone()),
                    Some(n) => {
                        self.error("rcp-principal", &child(path, "Principal"), n.pos, format!("a resource control policy must use `\"Principal\": \"*\"`, found {}", show(n)));
                        None
                    }
                    None => {
                        self.error(
                            "missing-principal",
                            path,
                            node.pos,
                            "a resource control policy statement needs `\"Principal\": \"*\"`",
                        );
                        None
                    }
                }
            }
            PrincipalRule::Required { not_principal } => {
                let (el, negated) = self.pair_principal(node, path, p, np)?;
                let name = if negated { "NotPrincipal" } else { "Principal" };
                let epath = child(path, name);
                if negated && !not_principal {
                    self.error(
                        "principal-not-allowed",
                        &epath,
                        el.pos,
                        format!("{} policy cannot use `NotPrincipal`", a_kind(kind)),
                    );
                    return None;
                }
                if negated && effect == Some(Effect::Allow) {
                    self.error(
                        "allow-not-principal",
                        &epath,
                        el.pos,
                        "`NotPrincipal` is allowed only with `\"Effect\": \"Deny\"`",
                    );
                }
                principal::parse(self, el, &epath, negated)
            }
        }
    }

    fn pair_principal<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        p: Option<&'n Node>,
        np: Option<&'n Node>,
    ) -> Option<(&'n Node, bool)> {
        match (p, np) {
            (Some(x), None) => Some((x, false)),
            (None, Some(y)) => Some((y, true)),
            (Some(_), Some(y)) => {
                self.error(
                    "exclusive-elements",
                    &child(path, "NotPrincipal"),
                    y.pos,
                    "a statement may have `Principal` or `NotPrincipal`, not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    "missing-principal",
                    path,
                    node.pos,
                    format!("{} policy statement needs a `Principal`", a_kind(self.kind)),
                );
                None
            }
        }
    }

    fn conditions(&mut self, node: &Node, path: &str) -> Vec<Condition> {
        let mut out = Vec::new();
        let Some(ops) = self.object(node, path, None) else {
            return out;
        };
        for op_member in ops {
            let opath = child(path, &op_member.key);
            let op = match Operator::parse(&op_member.key) {
                Ok(op) => op,
                Err(m) => {
                    self.error("invalid-operator", &opath, op_member.key_pos, m);
                    continue;
                }
            };
            let Some(keys) = self.object(&op_member.value, &opath, None) else {
                continue;
            };
            for (i, key_member) in keys.iter().enumerate() {
                let kpath = child(&opath, &key_member.key);
                // An exact repeat is already reported by `object`; report a key only once.
                let earlier = || keys.iter().take(i);
                if !earlier().any(|k| k.key == key_member.key)
                    && earlier().any(|k| k.key.eq_ignore_ascii_case(&key_member.key))
                {
                    self.error(
                        "duplicate-key",
                        &kpath,
                        key_member.key_pos,
                        format!(
                            "condition key `{}` appears twice under `{}` with different case",
                            key_member.key, op_member.key
                        ),
                    );
                }
                let Some(values) = self.condition_values(&key_member.value, &kpath) else {
                    continue;
                };
                if op.set.is_some() && op.base == crate::condition::Base::Null {
                    self.warn(
                        "null-with-set",
                        &opath,
                        op_member.key_pos,
                        "`Null` with `ForAllValues:`/`ForAnyValue:` is always true or always false",
                    );
                }
                let texts: Vec<String> = values.iter().map(|(v, _)| v.clone()).collect();
                match Condition::new(op, &key_member.key, &texts, self.variables) {
                    Ok(c) => out.push(c),
                    Err((i, m)) => {
                        let (vpath, pos) = match &key_member.value.value {
                            Value::Array(_) => (
                                format!("{kpath}[{i}]"),
                                values.get(i).map_or(key_member.value.pos, |v| v.1),
                            ),
                            _ => (kpath.clone(), key_member.value.pos),
                        };
                        self.error("invalid-condition-value", &vpath, pos, m);
                    }
                }
            }
        }
        out
    }

    /// Condition values: a string, number or boolean, or an array of them.
    fn condition_values(&mut self, node: &Node, path: &str) -> Option<Vec<(String, Pos)>> {
        let scalar = |n: &Node| -> Option<String> {
            match &n.value {
                Value::String(s) => Some(s.clone()),
                Value::Number(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        };
        if let Value::Array(items) = &node.value {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match scalar(item) {
                    Some(s) => out.push((s, item.pos)),
                    None => {
                        self.error(
                            "wrong-type",
                            &format!("{path}[{i}]"),
                            item.pos,
                            format!(
                                "a condition value must be a string, number or boolean, found {}",
                                item.kind()
                            ),
                        );
                        return None;
                    }
                }
            }
            if items.is_empty() {
                self.warn("empty-array", path, node.pos, "an empty value list: a positive operator never matches, a negated one always does");
            }
            return Some(out);
        }
        match scalar(node) {
            Some(s) => Some(vec![(s, node.pos)]),
            None => {
                self.error("wrong-type", path, node.pos, format!("a condition value must be a string, number, boolean or an array of them, found {}", node.kind()));
                None
            }
        }
    }
}

/// Checks that `node` is an object without duplicate keys and, when `known` is given,
/// without keys outside it; pushes a finding for each problem. Shared by the policy reader
/// and the bundle's own files.
pub fn check_object<'n>(
    node: &'n Node,
    path: &str,
    known: Option<&[&str]>,
    findings: &mut Vec<Finding>,
) -> Option<&'n [Member]> {
    let mut error = |code: &'static str, path: String, pos: Pos, message: String| {
        findings.push(Finding {
            severity: Severity::Error,
            code,
            path,
            pos,
            message,
        });
    };
    let Some(members) = node.as_object() else {
        error(
            "wrong-type",
            path.to_owned(),
            node.pos,
            format!("expected an object, found {}", node.kind()),
        );
        return None;
    };
    for (i, m) in members.iter().enumerate() {
        let mpath = child(path, &m.key);
        if members.iter().take(i).any(|o| o.key == m.key) {
            error(
                "duplicate-key",
                mpath,
                m.key_pos,
                format!("duplicate key `{}`", m.key),
            );
            continue;
        }
        let Some(known) = known.filter(|k| !k.contains(&m.key.as_str())) else {
            continue;
        };
        let hint = match known.iter().find(|k| k.eq_ignore_ascii_case(&m.key)) {
            Some(k) => format!(" (did you mean `{k}`? keys are case-sensitive)"),
            None => format!("; expected one of {}", known.join(", ")),
        };
        error(
            "unknown-key",
            mpath,
            m.key_pos,
            format!("unknown key `{}`{hint}", m.key),
        );
    }
    Some(members)
}

/// Parses an action pattern: `*`, or `service:action` with `*`/`?` wildcards.
pub fn parse_action(text: &str) -> Result<ActionPattern, String> {
    if text == "*" {
        return Ok(ActionPattern::Any);
    }
    let Some((svc, name)) = text.split_once(':') else {
        return Err(format!(
            "`{text}` is not an action: expected `service:Action` or `*`"
        ));
    };
    if name.contains(':') {
        return Err(format!(
            "`{text}` is not an action: it has more than one `:`"
        ));
    }
    if svc.is_empty()
        || !svc
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '*' | '?'))
    {
        return Err(format!(
            "`{text}`: the service prefix `{svc}` may hold only letters, digits and `-`"
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '-' | '_'))
    {
        return Err(format!(
            "`{text}`: the action name `{name}` may hold only letters, digits, `*` and `?`"
        ));
    }
    Ok(ActionPattern::Parts {
        service: Pattern::new(&svc.to_ascii_lowercase()),
        name: Pattern::new(&name.to_ascii_lowercase()),
    })
}

fn trust_action(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(("sts", name)) = lower.split_once(':') else {
        return false;
    };
    let known = [
        "assumerole",
        "assumerolewithsaml",
        "assumerolewithwebidentity",
        "tagsession",
        "setsourceidentity",
        "setcontext",
    ];
    let p = Pattern::new(name);
    known.iter().any(|k| p.matches(k))
}

/// `path.key`, or `path["key"]` when the key is not a plain word.
pub fn child(path: &str, key: &str) -> String {
    if key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '/' | '-'))
        && !key.is_empty()
    {
        // Built by hand rather than with `format!`: this runs for every key of every
        // statement.
        let mut out = String::with_capacity(path.len() + 1 + key.len());
        out.push_str(path);
        out.push('.');
        out.push_str(key);
        out
    } else {
        format!("{path}[{}]", serde_json::Value::String(key.to_owned()))
    }
}

/// The kind's name with its article, for messages: `an identity`, `a resource`, `an scp`.
fn a_kind(kind: PolicyKind) -> String {
    let article = match kind {
        PolicyKind::Identity | PolicyKind::Scp | PolicyKind::Rcp => "an",
        _ => "a",
    };
    format!("{article} {kind}")
}

/// A value as it appears in a message.
fn show(n: &Node) -> String {
    match n.as_str() {
        Some(s) => format!("`{s}`"),
        None => n.kind().to_owned(),
    }
}

#[cfg(test)]
mod tests;

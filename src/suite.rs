//! Test suites for a bundle (`warden test`): named tests of requests with the decision a
//! bundle must give, read with every place kept, so that each error names `file:line:column`.
//!
//! The format follows Cerbos's matrix tests and OpenFGA's model tests: a test is a matrix
//! (principals × actions × resources, one expectation, per-cell overrides in `except`) or a
//! list of requests, each with its own expectation; a `who_can` expectation (the whole set
//! of principals who can do an action on a resource, answered by [`crate::reverse`]); or an
//! `assume` check (whether a principal, a service or a web identity may become a role, as
//! warden's STS decides it). `suite/run` decides the checks and measures statement
//! coverage over the request checks' decisions.

pub mod run;

use std::fmt;

use crate::context::{Context, ContextValue};
use crate::eval::{Decision, Reason};
use crate::json::{self, Member, Node, Pos, Value};

/// Checks one run may expand to, at most: counted (matrix products included) before any is
/// built, so a small hostile file cannot ask for a billion requests.
pub const MAX_CHECKS: usize = 1_000_000;

/// An error in a suite: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteError {
    /// The suite file as given (a path, or a directory's path joined with the file).
    pub file: String,
    /// `None` for an error about the file as a whole (unreadable, too large).
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{}:{pos}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The decision a check expects: one of the engine's, or `Deny` for either deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
    Deny,
}

impl Expected {
    const WORDS: [(&'static str, Expected); 4] = [
        ("Allow", Expected::Allow),
        ("ExplicitDeny", Expected::ExplicitDeny),
        ("ImplicitDeny", Expected::ImplicitDeny),
        ("Deny", Expected::Deny),
    ];

    pub fn parse(word: &str) -> Option<Expected> {
        Expected::WORDS
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, e)| *e)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Expected::Allow => "Allow",
            Expected::ExplicitDeny => "ExplicitDeny",
            Expected::ImplicitDeny => "ImplicitDeny",
            Expected::Deny => "Deny",
        }
    }

    /// Whether `decision` is what was expected.
    pub fn admits(self, decision: Decision) -> bool {
        match self {
            Expected::Allow => decision == Decision::Allow,
            Expected::ExplicitDeny => decision == Decision::ExplicitDeny,
            Expected::ImplicitDeny => decision == Decision::ImplicitDeny,
            Expected::Deny => decision != Decision::Allow,
        }
    }
}

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

/// What a check expects of its decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub decision: Expected,
    /// The reason code (`identity_allow`, `explicit_deny`, ...), when given.
    pub reason: Option<Reason>,
    /// Statements that must each be among the deciding ones, named as decisions name them
    /// (`identity arn:aws:iam::aws:policy/PowerUserAccess Statement[0]`,
    /// `scp level 1 ProtectProductionData Sid DenyDestructiveActions`).
    pub statements: Vec<Located<String>>,
    /// Where the expectation was written (its `expect` member).
    pub pos: Pos,
}

/// One request and its expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub principal: Located<String>,
    pub action: Located<String>,
    pub resource: Located<String>,
    /// The test's context with the request's own over it.
    pub context: Context,
    pub expect: std::sync::Arc<Expectation>,
    /// Where the request (or its matrix test) is written.
    pub at: Pos,
}

/// A `who_can` expectation: the complete set of principals who can do `action` on
/// `resource`, answered by the reverse query `WhoCan` ([`crate::reverse`]). Users and
/// account roots are named by their ARNs, roles by their role ARNs (with the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoCan {
    pub action: Located<String>,
    pub resource: Located<String>,
    pub context: Context,
    pub principals: Vec<Located<String>>,
    pub pos: Pos,
}

/// Who asks to become a role in an `assume` test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssumeBy {
    /// A user, an account's root or a role session calling `AssumeRole`, with an MFA code
    /// just verified when `mfa` is set (a trust policy's `aws:MultiFactorAuthPresent`).
    Principal { arn: Located<String>, mfa: bool },
    /// A service principal (`deploy.amazonaws.com`) assuming the role for a workload.
    Service(Located<String>),
    /// `AssumeRoleWithWebIdentity` with a token of `provider` that carries `claims` (as a
    /// verifier would have checked them: the test states them; `exp` defaults to an hour
    /// from the run, `iat` to the run).
    WebIdentity {
        provider: Located<String>,
        claims: serde_json::Map<String, serde_json::Value>,
    },
}

/// An `assume` test: whether a caller may become a role, decided as warden's STS decides
/// it (the trust policy, the caller's own policies, SCPs and RCPs), so that trust policies
/// that `Authorize` never reads — MFA, service and web-identity principals — are tested too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assume {
    pub role: Located<String>,
    pub by: AssumeBy,
    pub session_name: String,
    /// `Allow`, or `Deny` (STS answers allowed or refused, not which deny).
    pub allow: bool,
    pub pos: Pos,
}

/// What a test holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Checks(Vec<Check>),
    WhoCan(WhoCan),
    Assume(Assume),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub name: String,
    pub pos: Pos,
    pub body: Body,
}

impl Test {
    /// How many requests the test decides.
    pub fn checks(&self) -> usize {
        match &self.body {
            Body::Checks(c) => c.len(),
            // The whole answer is one check: it equals the expected set or it fails.
            Body::WhoCan(_) | Body::Assume(_) => 1,
        }
    }
}

/// One suite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    pub file: String,
    /// The suite's own name, when given.
    pub name: Option<String>,
    pub tests: Vec<Test>,
}

/// Parses one suite file's text. `budget` is how many checks the run may still expand to;
/// it is reduced by this file's. Every error found is returned, each with its place.
pub fn parse(file: &str, text: &str, budget: &mut usize) -> Result<Suite, Vec<SuiteError>> {
    let mut p = Parser {
        file,
        errors: Vec::new(),
        budget,
    };
    let suite = p.suite(text);
    match suite {
        Some(s) if p.errors.is_empty() => Ok(s),
        _ => Err(p.errors),
    }
}

struct Parser<'a> {
    file: &'a str,
    errors: Vec<SuiteError>,
    budget: &'a mut usize,
}

/// The members a test may have, by form.
const MATRIX: &[&str] = &["principals", "actions", "resources", "except"];
const EXPECTATION: &[&str] = &["expect", "reason", "statements"];

impl Parser<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SuiteError {
            file: self.file.to_owned(),
            pos: Some(pos),
            message: message.into(),
        });
    }

    fn suite(&mut self, text: &str) -> Option<Suite> {
        let node = match json::parse(text.strip_prefix('\u{feff}').unwrap_or(text)) {
            Ok(n) => n,
            Err(e) => {
                self.error(e.pos, format!("invalid JSON: {}", e.message));
                return None;
            }
        };
        let members = self.object(&node, "the suite", &["suite", "description", "tests"])?;
        let name = members
            .iter()
            .find(|m| m.key == "suite")
            .and_then(|m| self.string(&m.value, "`suite`"))
            .map(|s| s.value);
        let Some(tests) = members.iter().find(|m| m.key == "tests") else {
            self.error(node.pos, "a suite needs `tests`: a list of named tests");
            return None;
        };
        let Value::Array(items) = &tests.value.value else {
            self.error(tests.value.pos, "`tests` must be a list of tests");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut names: Vec<(&str, Pos)> = Vec::new();
        for item in items {
            if let Some(t) = self.test(item) {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == t.name) {
                    let first = *first;
                    self.error(
                        t.pos,
                        format!("a second test named `{}` (the first is at {first})", t.name),
                    );
                }
                out.push(t);
            }
            if let Some(Value::String(n)) = item.get("name").map(|n| &n.value) {
                names.push((n, item.pos));
            }
        }
        Some(Suite {
            file: self.file.to_owned(),
            name,
            tests: out,
        })
    }

    /// An object's members, every key known and none repeated.
    fn object<'n>(&mut self, node: &'n Node, what: &str, known: &[&str]) -> Option<&'n [Member]> {
        let Some(members) = node.as_object() else {
            self.error(
                node.pos,
                format!("{what} must be an object, not {}", node.kind()),
            );
            return None;
        };
        let mut ok = true;
        for (i, m) in members.iter().enumerate() {
            if !known.contains(&m.key.as_str()) {
                self.error(
                    m.key_pos,
                    format!(
                        "unknown field `{}` in {what}; expected {}",
                        m.key,
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                ok = false;
            }
            if members.iter().take(i).any(|e| e.key == m.key) {
                self.error(m.key_pos, format!("`{}` is given twice", m.key));
                ok = false;
            }
        }
        ok.then_some(members)
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<Located<String>> {
        match &node.value {
            Value::String(s) => Some(Located {
                value: s.clone(),
                pos: node.pos,
            }),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, not {}", node.kind()),
                );
                None
            }
        }
    }

    /// A non-empty list of strings (a single string is a list of one).
    fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<Located<String>>> {
        let items = match &node.value {
            Value::String(_) => return self.string(node, what).map(|s| vec![s]),
            Value::Array(items) => items,
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "{what} must be a string or a list of strings, not {}",
                        node.kind()
                    ),
                );
                return None;
            }
        };
        if items.is_empty() {
            self.error(
                node.pos,
                format!("{what} is an empty list: the test would check nothing"),
            );
            return None;
        }
        let out: Vec<Option<Located<String>>> =
            items.iter().map(|n| self.string(n, what)).collect();
        out.into_iter().collect()
    }

    /// A context: keys to a string or a list of strings.
    fn context(&mut self, node: &Node) -> Option<Vec<(Located<String>, ContextValue)>> {
        let Some(members) = node.as_object() else {
            self.error(
                node.pos,
                format!("`context` must be an object of keys, not {}", node.kind()),
            );
            return None;
        };
        let mut out = Vec::with_capacity(members.len());
        let mut ok = true;
        for m in members {
            if m.key.is_empty() {
                self.error(m.key_pos, "a context key cannot be empty");
                ok = false;
                continue;
            }
            if let Some((first, _)) =
                out.iter()
                    .find(|(k, _): &&(Located<String>, ContextValue)| {
                        k.value.eq_ignore_ascii_case(&m.key)
                    })
            {
                self.error(
                    m.key_pos,
                    format!(
                        "the context key `{}` is given twice (keys ignore case; the first is at {})",
                        m.key, first.pos
                    ),
                );
                ok = false;
                continue;
            }
            let value = match &m.value.value {
                Value::String(s) => Some(ContextValue::Single(s.clone())),
                Value::Array(items) => {
                    let values: Option<Vec<String>> = items
                        .iter()
                        .map(|n| n.as_str().map(str::to_owned))
                        .collect();
                    if values.is_none() {
                        self.error(
                            m.value.pos,
                            format!("the context key `{}` must list strings only", m.key),
                        );
                    }
                    values.map(ContextValue::Multi)
                }
                _ => {
                    self.error(
                        m.value.pos,
                        format!(
                            "the context key `{}` must be a string or a list of strings, not {} (write `\"true\"`, `\"42\"`: requests carry text)",
                            m.key,
                            m.value.kind()
                        ),
                    );
                    None
                }
            };
            match value {
                Some(v) => out.push((
                    Located {
                        value: m.key.clone(),
                        pos: m.key_pos,
                    },
                    v,
                )),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The expectation among `members` (`expect`, `reason`, `statements`); `at` is where
    /// to say a missing `expect` is missing.
    fn expectation(&mut self, members: &[Member], at: Pos) -> Option<Expectation> {
        let get = |k: &str| members.iter().find(|m| m.key == k);
        let Some(expect) = get("expect") else {
            self.error(
                at,
                "missing `expect`: `Allow`, `ExplicitDeny`, `ImplicitDeny` or `Deny`",
            );
            return None;
        };
        let word = self.string(&expect.value, "`expect`")?;
        let Some(decision) = Expected::parse(&word.value) else {
            self.error(
                word.pos,
                format!(
                    "unknown decision `{}`; expected `Allow`, `ExplicitDeny`, `ImplicitDeny` or `Deny` (either deny)",
                    word.value
                ),
            );
            return None;
        };
        let reason = match get("reason") {
            None => None,
            Some(m) => {
                let code = self.string(&m.value, "`reason`")?;
                let Some(reason) = Reason::all().find(|r| r.as_str() == code.value) else {
                    self.error(
                        code.pos,
                        format!(
                            "unknown reason `{}`; expected one of {}",
                            code.value,
                            Reason::all()
                                .map(|r| format!("`{r}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    return None;
                };
                let fits = match decision {
                    Expected::Deny => reason.decision() != Decision::Allow,
                    other => other.admits(reason.decision()),
                };
                if !fits {
                    self.error(
                        code.pos,
                        format!(
                            "the reason `{reason}` belongs to `{}`, not to the expected `{}`",
                            reason.decision(),
                            decision.as_str()
                        ),
                    );
                    return None;
                }
                Some(reason)
            }
        };
        let statements = match get("statements") {
            None => Vec::new(),
            Some(m) => self.strings(&m.value, "`statements`")?,
        };
        Some(Expectation {
            decision,
            reason,
            statements,
            pos: expect.value.pos,
        })
    }

    /// Takes `n` checks from the run's budget, or says why not.
    fn spend(&mut self, n: Option<usize>, at: Pos) -> bool {
        match n {
            Some(n) if n <= *self.budget => {
                *self.budget -= n;
                true
            }
            _ => {
                self.error(
                    at,
                    format!(
                        "the test expands to {} checks: a run decides at most {MAX_CHECKS} (split the matrix)",
                        n.map_or_else(|| "too many".to_owned(), |n| n.to_string())
                    ),
                );
                false
            }
        }
    }

    fn test(&mut self, node: &Node) -> Option<Test> {
        let Some(members) = node.as_object() else {
            self.error(
                node.pos,
                format!("a test must be an object, not {}", node.kind()),
            );
            return None;
        };
        let has = |k: &str| members.iter().any(|m| m.key == k);
        let forms = [
            has("principals") || has("actions") || has("resources"),
            has("requests"),
            has("who_can"),
            has("assume"),
        ];
        let known: Vec<&str> = match forms {
            [true, false, false, false] => ["name", "description", "context"]
                .iter()
                .chain(MATRIX)
                .chain(EXPECTATION)
                .copied()
                .collect(),
            [false, true, false, false] => vec!["name", "description", "context", "requests"],
            [false, false, true, false] => vec!["name", "description", "who_can"],
            [false, false, false, true] => vec!["name", "description", "assume", "expect"],
            _ => {
                let all = [
                    "name",
                    "description",
                    "context",
                    "requests",
                    "who_can",
                    "assume",
                ];
                for m in members {
                    let key = m.key.as_str();
                    if !(all.contains(&key) || MATRIX.contains(&key) || EXPECTATION.contains(&key))
                    {
                        self.error(m.key_pos, format!("unknown field `{key}` in a test"));
                    }
                }
                self.error(
                    node.pos,
                    "a test is one of: a matrix (`principals`, `actions`, `resources`, `expect`), a list of `requests`, a `who_can` expectation, or an `assume` check",
                );
                return None;
            }
        };
        let members = self.object(node, "a test", &known)?;
        let get = |k: &str| members.iter().find(|m| m.key == k);
        let name = match get("name") {
            Some(m) => self.string(&m.value, "`name`")?,
            None => {
                self.error(node.pos, "a test needs a `name`");
                return None;
            }
        };
        if name.value.is_empty() {
            self.error(name.pos, "a test's `name` cannot be empty");
            return None;
        }
        if let Some(d) = get("description") {
            self.string(&d.value, "`description`")?;
        }
        let context = match get("context") {
            Some(m) => self.context(&m.value)?,
            None => Vec::new(),
        };
        let body = if let Some(w) = get("who_can") {
            Body::WhoCan(self.who_can(&w.value)?)
        } else if let Some(a) = get("assume") {
            Body::Assume(self.assume(&a.value, get("expect"), node.pos)?)
        } else if let Some(r) = get("requests") {
            Body::Checks(self.requests(&r.value, &context)?)
        } else {
            Body::Checks(self.matrix(members, node.pos, &context)?)
        };
        Some(Test {
            name: name.value,
            pos: node.pos,
            body,
        })
    }

    /// The list form: each request with its own expectation.
    fn requests(
        &mut self,
        node: &Node,
        shared: &[(Located<String>, ContextValue)],
    ) -> Option<Vec<Check>> {
        let Value::Array(items) = &node.value else {
            self.error(
                node.pos,
                format!("`requests` must be a list, not {}", node.kind()),
            );
            return None;
        };
        if items.is_empty() {
            self.error(
                node.pos,
                "`requests` is empty: the test would check nothing",
            );
            return None;
        }
        if !self.spend(Some(items.len()), node.pos) {
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.request(item, shared) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn request(
        &mut self,
        node: &Node,
        shared: &[(Located<String>, ContextValue)],
    ) -> Option<Check> {
        let known = [
            "principal",
            "action",
            "resource",
            "context",
            "expect",
            "reason",
            "statements",
        ];
        let members = self.object(node, "a request", &known)?;
        let mut field = |k: &str| -> Option<Located<String>> {
            match members.iter().find(|m| m.key == k) {
                Some(m) => self.string(&m.value, &format!("`{k}`")),
                None => {
                    self.error(node.pos, format!("a request needs `{k}`"));
                    None
                }
            }
        };
        let (principal, action, resource) =
            (field("principal"), field("action"), field("resource"));
        let own = match members.iter().find(|m| m.key == "context") {
            Some(m) => self.context(&m.value)?,
            None => Vec::new(),
        };
        let expect = self.expectation(members, node.pos)?;
        let context = self.merge(shared, own)?;
        Some(Check {
            principal: principal?,
            action: action?,
            resource: resource?,
            context,
            expect: std::sync::Arc::new(expect),
            at: node.pos,
        })
    }

    /// The matrix form: every principal × action × resource, one expectation, with the
    /// cells an `except` entry selects expecting its own.
    fn matrix(
        &mut self,
        members: &[Member],
        at: Pos,
        shared: &[(Located<String>, ContextValue)],
    ) -> Option<Vec<Check>> {
        let get = |k: &str| members.iter().find(|m| m.key == k);
        let mut axis = |k: &str| -> Option<Vec<Located<String>>> {
            match get(k) {
                Some(m) => self.strings(&m.value, &format!("`{k}`")),
                None => {
                    self.error(at, format!("a matrix test needs `{k}`"));
                    None
                }
            }
        };
        let (principals, actions, resources) =
            (axis("principals"), axis("actions"), axis("resources"));
        let expect = self.expectation(members, at);
        let (principals, actions, resources, expect) = (principals?, actions?, resources?, expect?);
        let cells = principals
            .len()
            .checked_mul(actions.len())
            .and_then(|n| n.checked_mul(resources.len()));
        if !self.spend(cells, at) {
            return None;
        }
        let context = self.merge(shared, Vec::new())?;
        let base = std::sync::Arc::new(expect);
        // Each exception: what it selects, its expectation, and where it stands.
        let mut exceptions: Vec<(Selector, std::sync::Arc<Expectation>, Pos, bool)> = Vec::new();
        if let Some(m) = get("except") {
            let Value::Array(items) = &m.value.value else {
                self.error(m.value.pos, "`except` must be a list of overrides");
                return None;
            };
            for item in items {
                let known = [
                    "principals",
                    "actions",
                    "resources",
                    "expect",
                    "reason",
                    "statements",
                ];
                let Some(ms) = self.object(item, "an `except` entry", &known) else {
                    continue;
                };
                let mut pick = |k: &str| -> Option<Option<Vec<String>>> {
                    match ms.iter().find(|m| m.key == k) {
                        Some(m) => self
                            .strings(&m.value, &format!("`{k}`"))
                            .map(|v| Some(v.into_iter().map(|l| l.value).collect())),
                        None => Some(None),
                    }
                };
                let (p, a, r) = (pick("principals"), pick("actions"), pick("resources"));
                let e = self.expectation(ms, item.pos);
                if let (Some(p), Some(a), Some(r), Some(e)) = (p, a, r, e) {
                    if p.is_none() && a.is_none() && r.is_none() {
                        self.error(
                            item.pos,
                            "an `except` entry selects cells by `principals`, `actions` or `resources`; it has none",
                        );
                        continue;
                    }
                    exceptions.push((
                        Selector {
                            principals: p,
                            actions: a,
                            resources: r,
                        },
                        std::sync::Arc::new(e),
                        item.pos,
                        false,
                    ));
                }
            }
        }
        let mut out = Vec::with_capacity(cells.unwrap_or(0));
        for p in &principals {
            for a in &actions {
                for r in &resources {
                    let mut chosen: Option<usize> = None;
                    for (i, (sel, _, pos, used)) in exceptions.iter_mut().enumerate() {
                        if !sel.selects(&p.value, &a.value, &r.value) {
                            continue;
                        }
                        *used = true;
                        if let Some(first) = chosen {
                            let pos = *pos;
                            let first_pos = exceptions.get(first).map(|e| e.2).unwrap_or(pos);
                            self.error(
                                pos,
                                format!(
                                    "the cell `{}` `{}` `{}` is also selected by the `except` entry at {first_pos}: a cell has one expectation",
                                    p.value, a.value, r.value
                                ),
                            );
                            return None;
                        }
                        chosen = Some(i);
                    }
                    let expect = chosen
                        .and_then(|i| exceptions.get(i))
                        .map_or_else(|| base.clone(), |e| e.1.clone());
                    out.push(Check {
                        principal: p.clone(),
                        action: a.clone(),
                        resource: r.clone(),
                        context: context.clone(),
                        expect,
                        at,
                    });
                }
            }
        }
        for (_, _, pos, used) in &exceptions {
            if !used {
                self.error(
                    *pos,
                    "this `except` entry selects no cell of the matrix (a name not among its `principals`, `actions` or `resources`?)",
                );
            }
        }
        Some(out)
    }

    fn assume(&mut self, node: &Node, expect: Option<&Member>, at: Pos) -> Option<Assume> {
        let known = [
            "role",
            "principal",
            "mfa",
            "service",
            "web_identity",
            "session_name",
        ];
        let members = self.object(node, "`assume`", &known)?;
        let get = |k: &str| members.iter().find(|m| m.key == k);
        let allow = match expect {
            None => {
                self.error(at, "missing `expect`: `Allow` or `Deny`");
                return None;
            }
            Some(m) => {
                let word = self.string(&m.value, "`expect`")?;
                match word.value.as_str() {
                    "Allow" => true,
                    "Deny" => false,
                    other => {
                        self.error(
                            word.pos,
                            format!("`{other}`: an `assume` check expects `Allow` or `Deny`"),
                        );
                        return None;
                    }
                }
            }
        };
        let role = match get("role") {
            Some(m) => self.string(&m.value, "`role`")?,
            None => {
                self.error(node.pos, "`assume` needs the `role`");
                return None;
            }
        };
        let session_name = match get("session_name") {
            Some(m) => self.string(&m.value, "`session_name`")?.value,
            None => "warden-test".to_owned(),
        };
        let mfa = match get("mfa") {
            None => None,
            Some(m) => match m.value.value {
                Value::Bool(b) => Some(b),
                _ => {
                    self.error(
                        m.value.pos,
                        format!("`mfa` must be true or false, not {}", m.value.kind()),
                    );
                    return None;
                }
            },
        };
        let by = match (get("principal"), get("service"), get("web_identity")) {
            (Some(p), None, None) => AssumeBy::Principal {
                arn: self.string(&p.value, "`principal`")?,
                mfa: mfa.unwrap_or(false),
            },
            (None, Some(s), None) if mfa.is_none() => {
                AssumeBy::Service(self.string(&s.value, "`service`")?)
            }
            (None, None, Some(w)) if mfa.is_none() => {
                let inner = self.object(&w.value, "`web_identity`", &["provider", "claims"])?;
                let provider = match inner.iter().find(|m| m.key == "provider") {
                    Some(m) => self.string(&m.value, "`provider`")?,
                    None => {
                        self.error(w.value.pos, "`web_identity` needs the `provider`");
                        return None;
                    }
                };
                let claims = match inner.iter().find(|m| m.key == "claims").map(|m| &m.value) {
                    Some(c) => match c.to_serde() {
                        serde_json::Value::Object(map) => map,
                        _ => {
                            self.error(c.pos, "`claims` must be an object");
                            return None;
                        }
                    },
                    None => {
                        self.error(w.value.pos, "`web_identity` needs the token's `claims`");
                        return None;
                    }
                };
                AssumeBy::WebIdentity { provider, claims }
            }
            _ => {
                self.error(
                    node.pos,
                    "`assume` names exactly one caller: a `principal` (with `mfa`), a `service`, or a `web_identity`",
                );
                return None;
            }
        };
        Some(Assume {
            role,
            by,
            session_name,
            allow,
            pos: node.pos,
        })
    }

    fn who_can(&mut self, node: &Node) -> Option<WhoCan> {
        let known = ["action", "resource", "context", "principals"];
        let members = self.object(node, "`who_can`", &known)?;
        let mut field = |k: &str, what: &str| -> Option<Vec<Located<String>>> {
            match members.iter().find(|m| m.key == k) {
                Some(m) if k == "principals" => match &m.value.value {
                    // The complete set may be empty: nobody can.
                    Value::Array(items) if items.is_empty() => Some(Vec::new()),
                    _ => self.strings(&m.value, what),
                },
                Some(m) => self.string(&m.value, what).map(|s| vec![s]),
                None => {
                    self.error(node.pos, format!("`who_can` needs `{k}`"));
                    None
                }
            }
        };
        let action = field("action", "`action`");
        let resource = field("resource", "`resource`");
        let principals = field("principals", "`principals`");
        let context = match members.iter().find(|m| m.key == "context") {
            Some(m) => self.context(&m.value)?,
            None => Vec::new(),
        };
        let context = self.merge(&[], context)?;
        Some(WhoCan {
            action: action?.into_iter().next()?,
            resource: resource?.into_iter().next()?,
            context,
            principals: principals?,
            pos: node.pos,
        })
    }

    /// A test's context with a request's own over it.
    fn merge(
        &mut self,
        shared: &[(Located<String>, ContextValue)],
        own: Vec<(Located<String>, ContextValue)>,
    ) -> Option<Context> {
        let mut entries: Vec<(String, ContextValue)> = shared
            .iter()
            .filter(|(k, _)| {
                !own.iter()
                    .any(|(o, _)| o.value.eq_ignore_ascii_case(&k.value))
            })
            .map(|(k, v)| (k.value.clone(), v.clone()))
            .collect();
        let at = own.first().or(shared.first()).map(|(k, _)| k.pos);
        entries.extend(own.into_iter().map(|(k, v)| (k.value, v)));
        match Context::from_entries(entries) {
            Ok(c) => Some(c),
            Err(key) => {
                self.error(
                    at.unwrap_or_default(),
                    format!("the context key `{key}` is given twice"),
                );
                None
            }
        }
    }
}

/// Which cells of a matrix an `except` entry selects: every listed axis must match; an
/// axis it does not list matches any.
struct Selector {
    principals: Option<Vec<String>>,
    actions: Option<Vec<String>>,
    resources: Option<Vec<String>>,
}

impl Selector {
    fn selects(&self, principal: &str, action: &str, resource: &str) -> bool {
        let on = |axis: &Option<Vec<String>>, v: &str| {
            axis.as_ref().is_none_or(|a| a.iter().any(|x| x == v))
        };
        on(&self.principals, principal)
            && on(&self.actions, action)
            && on(&self.resources, resource)
    }
}

#[cfg(test)]
mod tests;

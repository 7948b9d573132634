//! Fuzz body `policy`: the JSON reader with positions (`json`) and the policy validator
//! (`policy::parse_text`), for every policy kind. Beyond "no panic" it checks that
//! - `json::parse` accepts what `serde_json` accepts (bar nesting deeper than its limit)
//!   and reads the same value, and that `compact_size` counts `serde_json`'s compact form;
//! - every node, key and finding is placed in the text: a value's position holds the
//!   character that starts it, a key's a `"`, an error's a place inside the text;
//! - a document read back from its own compact JSON (`Node::to_json`) reads the same, and
//!   validates the same: the same findings, the same compiled policy but for positions;
//! - a document that compiles has no error, and one with an error does not compile.
//!
//! Input: one byte choosing the policy kind, then the document's text (UTF-8, lossily).

use warden::json::{self, Node, Pos, Value};
use warden::policy::{self, Finding, Policy, PolicyKind, Severity};

/// What an input reached, for a replay to tell that its corpus goes deep.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reached {
    /// The text is JSON.
    pub json: bool,
    /// The document compiled to a policy.
    pub compiled: bool,
    /// The validator reported an error.
    pub refused: bool,
}

pub fn run(data: &[u8]) -> Reached {
    let Some((&selector, rest)) = data.split_first() else {
        return Reached::default();
    };
    let kind = PolicyKind::ALL[usize::from(selector) % PolicyKind::ALL.len()];
    let text = String::from_utf8_lossy(rest);
    let lines = Lines::new(&text);

    let parsed = json::parse(&text);
    check_against_serde(&text, &parsed);
    match &parsed {
        Ok(node) => {
            check_placed(&lines, node);
            assert_eq!(
                policy::compact_size(node),
                serde_json::to_string(&node.to_serde())
                    .unwrap()
                    .chars()
                    .count(),
                "compact_size of {text:?}"
            );
            let compact = node.to_json();
            let again = json::parse(&compact)
                .unwrap_or_else(|e| panic!("compact form {compact:?} does not read back: {e}"));
            assert_eq!(again.to_json(), compact, "compact form of {text:?}");
            assert_eq!(without_positions(&again), without_positions(node));
        }
        Err(e) => assert!(lines.inside(e.pos), "error at {} outside {text:?}", e.pos),
    }

    let read = policy::parse_text(&text, kind, "fuzz");
    for f in &read.findings {
        assert!(lines.inside(f.pos), "finding {f} outside {text:?}");
        if f.code != "invalid-json" {
            // Every other finding is placed on a value or a key.
            let c = lines.at(f.pos);
            assert!(
                c.is_some_and(|c| "{[\"tfn-0123456789".contains(c)),
                "finding {f} placed on {c:?} in {text:?}"
            );
        }
    }
    let errors = read.errors().count();
    assert_eq!(
        read.policy.is_some(),
        errors == 0,
        "a policy compiles exactly when it has no error: {:?}",
        read.findings
    );
    if let Ok(node) = &parsed {
        // The same document, written compactly, validates alike.
        let compact = node.to_json();
        let again = policy::parse_text(&compact, kind, "fuzz");
        assert_eq!(
            findings(&again.findings),
            findings(&read.findings),
            "findings of {text:?} and of its compact form {compact:?}"
        );
        assert_eq!(
            again.policy.as_ref().map(without_statement_positions),
            read.policy.as_ref().map(without_statement_positions),
            "policy of {text:?} and of its compact form"
        );
        // Without a size limit (the built-in policies), only the size finding may go.
        let unlimited = policy::parse_node_with(node, kind, "fuzz", None);
        let sized: Vec<_> = findings(&read.findings)
            .into_iter()
            .filter(|f| f.1 != "policy-too-large")
            .collect();
        assert_eq!(findings(&unlimited.findings), sized);
    }
    if let Some(p) = &read.policy {
        for s in p.statements.iter() {
            // Reading a statement's keys walks every condition and variable.
            let _ = s.keys_read().count();
        }
    }
    Reached {
        json: parsed.is_ok(),
        compiled: read.policy.is_some(),
        refused: errors > 0,
    }
}

/// `json::parse` and `serde_json` agree on what is JSON and what it means.
fn check_against_serde(text: &str, parsed: &Result<Node, json::SyntaxError>) {
    let serde: Result<serde_json::Value, _> = serde_json::from_str(text);
    match (parsed, serde) {
        (Ok(node), Ok(v)) => assert_eq!(node.to_serde(), v, "value of {text:?}"),
        (Err(e), Ok(_)) => assert!(
            e.message.contains("nesting"),
            "json refuses what serde_json reads: {e} in {text:?}"
        ),
        (Ok(_), Err(e)) => assert!(
            // `serde_json` refuses a number it cannot hold (`1e400`); `json` keeps its text.
            e.to_string().contains("number out of range"),
            "json reads what serde_json refuses ({e}): {text:?}"
        ),
        (Err(_), Err(_)) => {}
    }
}

/// Every value's position holds the character that starts it; every key's a quote.
fn check_placed(lines: &Lines, node: &Node) {
    let c = lines.at(node.pos);
    let ok = match &node.value {
        Value::Null => c == Some('n'),
        Value::Bool(true) => c == Some('t'),
        Value::Bool(false) => c == Some('f'),
        Value::Number(_) => c.is_some_and(|c| c == '-' || c.is_ascii_digit()),
        Value::String(_) => c == Some('"'),
        Value::Array(items) => {
            items.iter().for_each(|n| check_placed(lines, n));
            c == Some('[')
        }
        Value::Object(members) => {
            for m in members {
                assert_eq!(
                    lines.at(m.key_pos),
                    Some('"'),
                    "key `{}` at {}",
                    m.key,
                    m.key_pos
                );
                check_placed(lines, &m.value);
            }
            c == Some('{')
        }
    };
    assert!(ok, "{} at {} starts with {c:?}", node.kind(), node.pos);
}

/// The node with every position zeroed, for comparing two readings of one value.
fn without_positions(node: &Node) -> Node {
    let value = match &node.value {
        Value::Array(items) => Value::Array(items.iter().map(without_positions).collect()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|m| json::Member {
                    key: m.key.clone(),
                    key_pos: Pos::default(),
                    value: without_positions(&m.value),
                })
                .collect(),
        ),
        v => v.clone(),
    };
    Node {
        pos: Pos::default(),
        value,
    }
}

fn without_statement_positions(p: &Policy) -> Policy {
    let statements: Vec<_> = p
        .statements
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.pos = Pos::default();
            s
        })
        .collect();
    Policy {
        statements: statements.into(),
        ..p.clone()
    }
}

/// Findings without their positions.
fn findings(fs: &[Finding]) -> Vec<(Severity, &'static str, String, String)> {
    fs.iter()
        .map(|f| (f.severity, f.code, f.path.clone(), f.message.clone()))
        .collect()
}

/// The text as lines of characters, as `json` counts them: a line ends at `\n`.
struct Lines(Vec<Vec<char>>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(text.split('\n').map(|l| l.chars().collect()).collect())
    }

    /// The character at a 1-based position; `None` past the end of its line.
    fn at(&self, pos: Pos) -> Option<char> {
        let line = self.0.get((pos.line as usize).checked_sub(1)?)?;
        line.get((pos.column as usize).checked_sub(1)?).copied()
    }

    /// Whether the position is in the text or just past the end of one of its lines.
    fn inside(&self, pos: Pos) -> bool {
        let Some(line) = (pos.line as usize)
            .checked_sub(1)
            .and_then(|l| self.0.get(l))
        else {
            return false;
        };
        pos.column >= 1 && pos.column as usize <= line.len() + 1
    }
}

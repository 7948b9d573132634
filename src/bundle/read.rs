//! Reading the bundle's own JSON files (users, roles, the organization...) with findings
//! that name the file, the JSON path and the line:column.

use std::fmt;

use crate::json::{Member, Node, Pos, Value};
use crate::policy::{Finding, Severity};

/// A finding in one file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFinding {
    /// The file, relative to the bundle root, with `/` separators; empty for a finding
    /// about the bundle itself (its directory missing, or not read in time).
    pub file: String,
    pub finding: Finding,
}

impl fmt::Display for BundleFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No file: a finding about the bundle itself, whose message names the directory.
        if self.file.is_empty() {
            let severity = match self.finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            return write!(
                f,
                "{severity}[{}]: {}",
                self.finding.code, self.finding.message
            );
        }
        write!(f, "{}:{}", self.file, self.finding)
    }
}

/// Collects the findings of one file.
pub struct FileReader<'a> {
    pub file: &'a str,
    pub findings: &'a mut Vec<BundleFinding>,
}

impl FileReader<'_> {
    pub fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        path: &str,
        pos: Pos,
        message: impl Into<String>,
    ) {
        self.findings.push(BundleFinding {
            file: self.file.to_owned(),
            finding: Finding {
                severity,
                code,
                path: path.to_owned(),
                pos,
                message: message.into(),
            },
        });
    }

    pub fn error(&mut self, code: &'static str, path: &str, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Error, code, path, pos, message);
    }

    pub fn warn(&mut self, code: &'static str, path: &str, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Warning, code, path, pos, message);
    }

    /// Adds the findings of a policy document found at `path` in this file.
    pub fn policy_findings(&mut self, path: &str, findings: Vec<Finding>) {
        for mut f in findings {
            f.path = format!("{path}{}", f.path.strip_prefix('$').unwrap_or(&f.path));
            self.findings.push(BundleFinding {
                file: self.file.to_owned(),
                finding: f,
            });
        }
    }

    /// An object's members, with duplicate and unknown keys reported (`known` empty:
    /// any key).
    pub fn object<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
    ) -> Option<&'n [Member]> {
        let mut findings = Vec::new();
        let known = (!known.is_empty()).then_some(known);
        let members = crate::policy::check_object(node, path, known, &mut findings);
        self.policy_findings("$", findings);
        members
    }

    /// An optional string member.
    pub fn string(&mut self, node: &Node, path: &str, key: &str) -> Option<(String, Pos)> {
        let n = node.get(key)?;
        match n.as_str() {
            Some(s) => Some((s.to_owned(), n.pos)),
            None => {
                self.error(
                    "wrong-type",
                    &format!("{path}.{key}"),
                    n.pos,
                    format!("`{key}` must be a string, found {}", n.kind()),
                );
                None
            }
        }
    }

    /// An optional list of strings (a single string counts as a one-element list).
    pub fn strings(&mut self, node: &Node, path: &str, key: &str) -> Vec<(String, Pos, String)> {
        let Some(n) = node.get(key) else {
            return Vec::new();
        };
        let kpath = format!("{path}.{key}");
        match &n.value {
            Value::String(s) => vec![(s.clone(), n.pos, kpath)],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let ipath = format!("{kpath}[{i}]");
                    match item.as_str() {
                        Some(s) => Some((s.to_owned(), item.pos, ipath)),
                        None => {
                            self.error(
                                "wrong-type",
                                &ipath,
                                item.pos,
                                format!("expected a string, found {}", item.kind()),
                            );
                            None
                        }
                    }
                })
                .collect(),
            _ => {
                self.error(
                    "wrong-type",
                    &kpath,
                    n.pos,
                    format!("`{key}` must be a list of strings, found {}", n.kind()),
                );
                Vec::new()
            }
        }
    }

    /// An optional whole number within `range`.
    pub fn number(
        &mut self,
        node: &Node,
        path: &str,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        let n = node.get(key)?;
        let kpath = format!("{path}.{key}");
        let parsed = match &n.value {
            Value::Number(s) => s.parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(v) if range.contains(&v) => Some(v),
            _ => {
                self.error(
                    "invalid-number",
                    &kpath,
                    n.pos,
                    format!(
                        "`{key}` must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// Tags: an object of string keys to string values, at most 50, keys 1-128 and values
    /// up to 256 characters, keys unique regardless of case.
    pub fn tags(&mut self, node: &Node, path: &str) -> Vec<(String, String)> {
        let Some(n) = node.get("tags") else {
            return Vec::new();
        };
        let tpath = format!("{path}.tags");
        let Some(members) = self.object(n, &tpath, &[]) else {
            return Vec::new();
        };
        if members.len() > 50 {
            self.error(
                "too-many-tags",
                &tpath,
                n.pos,
                format!("{} tags; at most 50 are allowed", members.len()),
            );
        }
        let mut out: Vec<(String, String)> = Vec::new();
        for m in members {
            let mpath = format!("{tpath}.{}", m.key);
            let Some(v) = m.value.as_str() else {
                self.error(
                    "wrong-type",
                    &mpath,
                    m.value.pos,
                    format!("a tag value must be a string, found {}", m.value.kind()),
                );
                continue;
            };
            if m.key.is_empty() || m.key.chars().count() > 128 || v.chars().count() > 256 {
                self.error(
                    "invalid-tag",
                    &mpath,
                    m.key_pos,
                    "a tag key has 1 to 128 characters and a value at most 256",
                );
            }
            if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(&m.key)) {
                self.error(
                    "duplicate-tag",
                    &mpath,
                    m.key_pos,
                    format!("tag `{}` is set twice (tag keys ignore case)", m.key),
                );
            }
            out.push((m.key.clone(), v.to_owned()));
        }
        out
    }
}

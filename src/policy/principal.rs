//! The `Principal` / `NotPrincipal` element: reading every form AWS accepts and
//! classifying how a caller matches an entry (reference §2.3), which decides how far a
//! resource-policy grant reaches.

use crate::json::{Node, Value};
use crate::request::{Principal, PrincipalKind};

use super::{Checker, child, show};

/// The entries of a `Principal` (or `NotPrincipal`) element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalSet {
    pub negated: bool,
    pub entries: Vec<PrincipalEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalEntry {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Wildcard,
    /// An account id or `arn:PARTITION:iam::ACCT:root`: delegates to the account.
    Account(Box<str>),
    /// `arn:PARTITION:iam::ACCT:user/path/name`.
    User(Box<str>),
    /// `arn:PARTITION:iam::ACCT:role/path/name`: every session of the role.
    Role {
        partition: Box<str>,
        account: Box<str>,
        name: Box<str>,
    },
    /// `arn:PARTITION:sts::ACCT:assumed-role/ROLE/SESSION` or `...:federated-user/NAME`.
    Session(Box<str>),
    /// A unique id (`AIDA...` user, `AROA...` role).
    UniqueId(Box<str>),
    /// `{"Service": "ec2.amazonaws.com"}`.
    Service(Box<str>),
    /// `{"Federated": "accounts.google.com"}` or an OIDC/SAML provider ARN.
    Federated(Box<str>),
    /// `{"CanonicalUser": "..."}`: S3 canonical ids, which warden callers never carry.
    Canonical(Box<str>),
}

/// How a caller matched a principal entry; the order is "how direct", weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PrincipalMatch {
    NoMatch,
    /// The caller's account was named: delegation to the account's own policies.
    Account,
    /// The role behind the calling session was named.
    Role,
    /// The IAM user behind a federated-user session was named.
    ParentUser,
    /// The caller itself (user, session, `*`, service, federated provider) was named.
    Direct,
}

impl PrincipalSet {
    pub fn everyone() -> PrincipalSet {
        PrincipalSet {
            negated: false,
            entries: vec![PrincipalEntry::Wildcard],
        }
    }

    /// The strongest way the caller matches the element. For `NotPrincipal` the element
    /// matches (as `Direct`) when the caller matches none of the entries.
    pub fn classify(&self, p: &Principal) -> PrincipalMatch {
        let best = self
            .entries
            .iter()
            .map(|e| e.classify(p))
            .max()
            .unwrap_or(PrincipalMatch::NoMatch);
        match (self.negated, best) {
            (false, m) => m,
            (true, PrincipalMatch::NoMatch) => PrincipalMatch::Direct,
            (true, _) => PrincipalMatch::NoMatch,
        }
    }
}

impl PrincipalEntry {
    pub fn classify(&self, p: &Principal) -> PrincipalMatch {
        use PrincipalMatch as M;
        let named = |yes: bool, m: PrincipalMatch| if yes { m } else { M::NoMatch };
        match (self, &p.kind) {
            (PrincipalEntry::Wildcard, _) => M::Direct,
            (_, PrincipalKind::Anonymous) => M::NoMatch,
            (PrincipalEntry::Account(_), PrincipalKind::Service { .. }) => M::NoMatch,
            (PrincipalEntry::Account(a), _) => named(**a == *p.account, M::Account),
            (PrincipalEntry::User(arn), PrincipalKind::User { .. }) => {
                named(**arn == *p.arn, M::Direct)
            }
            (PrincipalEntry::User(arn), PrincipalKind::FederatedUser { name }) => {
                // AWS tracks a federated session's parent user; like iam-simulate, we take
                // the user of the same name in the same account.
                let parent = arn.rsplit('/').next() == Some(name.as_str())
                    && arn.split(':').nth(4) == Some(p.account.as_str());
                named(parent, M::ParentUser)
            }
            (
                PrincipalEntry::Role {
                    partition,
                    account,
                    name,
                },
                PrincipalKind::AssumedRole { role_name, .. },
            ) => named(
                **partition == *p.partition
                    && **account == *p.account
                    && name.eq_ignore_ascii_case(role_name),
                M::Role,
            ),
            (
                PrincipalEntry::Session(arn),
                PrincipalKind::AssumedRole { .. } | PrincipalKind::FederatedUser { .. },
            ) => named(**arn == *p.arn, M::Direct),
            (PrincipalEntry::UniqueId(id), _) => match p.unique_id.as_deref() {
                Some(uid) if uid == &**id => M::Direct,
                Some(uid) if uid.split(':').next() == Some(&**id) => M::Role,
                _ => M::NoMatch,
            },
            (PrincipalEntry::Service(s), PrincipalKind::Service { name }) => {
                named(**s == **name, M::Direct)
            }
            (PrincipalEntry::Federated(f), PrincipalKind::WebIdentity { provider }) => {
                named(**f == **provider, M::Direct)
            }
            _ => M::NoMatch,
        }
    }
}

/// Reads a `Principal` element.
pub(super) fn parse(
    cx: &mut Checker,
    node: &Node,
    path: &str,
    negated: bool,
) -> Option<PrincipalSet> {
    if let Some(s) = node.as_str() {
        if s == "*" {
            return Some(PrincipalSet {
                negated,
                entries: vec![PrincipalEntry::Wildcard],
            });
        }
        cx.error(
            "invalid-principal",
            path,
            node.pos,
            format!(
                "`{s}`: a principal is `\"*\"` or an object such as `{{\"AWS\": \"111122223333\"}}`"
            ),
        );
        return None;
    }
    let members = cx.object(
        node,
        path,
        Some(&["AWS", "Service", "Federated", "CanonicalUser"]),
    )?;
    if members.is_empty() {
        cx.warn(
            "empty-principal",
            path,
            node.pos,
            "an empty principal object matches nobody",
        );
    }
    let mut entries = Vec::new();
    let mut ok = true;
    for m in members {
        let kpath = child(path, &m.key);
        let values: Vec<(&str, crate::json::Pos, String)> = match &m.value.value {
            Value::String(s) => vec![(s.as_str(), m.value.pos, kpath.clone())],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let ipath = format!("{kpath}[{i}]");
                    match n.as_str() {
                        Some(s) => Some((s, n.pos, ipath)),
                        None => {
                            cx.error(
                                "wrong-type",
                                &ipath,
                                n.pos,
                                format!("expected a string, found {}", n.kind()),
                            );
                            ok = false;
                            None
                        }
                    }
                })
                .collect(),
            _ => {
                cx.error(
                    "wrong-type",
                    &kpath,
                    m.value.pos,
                    format!(
                        "expected a string or an array of strings, found {}",
                        show(&m.value)
                    ),
                );
                ok = false;
                continue;
            }
        };
        for (text, pos, vpath) in values {
            let entry = match m.key.as_str() {
                "AWS" => aws_entry(text),
                "Service" => service_entry(text),
                "Federated" => federated_entry(text),
                _ => Ok(PrincipalEntry::Canonical(text.into())),
            };
            match entry {
                Ok(e) => entries.push(e),
                Err(msg) => {
                    cx.error("invalid-principal", &vpath, pos, msg);
                    ok = false;
                }
            }
        }
    }
    ok.then_some(PrincipalSet { negated, entries })
}

fn no_partial_wildcard(text: &str) -> Result<(), String> {
    if text.contains(['*', '?']) {
        return Err(format!(
            "`{text}`: a principal cannot use a partial wildcard; use `\"*\"` with an `aws:PrincipalArn` condition"
        ));
    }
    Ok(())
}

fn aws_entry(text: &str) -> Result<PrincipalEntry, String> {
    if text == "*" {
        return Ok(PrincipalEntry::Wildcard);
    }
    no_partial_wildcard(text)?;
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(PrincipalEntry::Account(text.into()));
    }
    if (text.starts_with("AIDA") || text.starts_with("AROA"))
        && text.len() >= 16
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Ok(PrincipalEntry::UniqueId(text.into()));
    }
    let bad = || {
        format!(
            "`{text}` is not an AWS principal: expected `*`, a 12-digit account id, or the ARN of an account root, user, role, assumed-role session or federated user"
        )
    };
    let arn = crate::arn::Arn::parse(text).ok_or_else(bad)?;
    let account_ok = arn.account.len() == 12 && arn.account.bytes().all(|b| b.is_ascii_digit());
    if !account_ok || !arn.region.is_empty() || arn.partition.is_empty() {
        return Err(bad());
    }
    match (arn.service, arn.resource.split_once('/')) {
        ("iam", None) if arn.resource == "root" => Ok(PrincipalEntry::Account(arn.account.into())),
        ("iam", Some(("user", rest))) if !rest.is_empty() && !rest.ends_with('/') => {
            Ok(PrincipalEntry::User(text.into()))
        }
        ("iam", Some(("role", rest))) if !rest.is_empty() && !rest.ends_with('/') => {
            Ok(PrincipalEntry::Role {
                partition: arn.partition.into(),
                account: arn.account.into(),
                name: rest.rsplit('/').next().unwrap_or(rest).into(),
            })
        }
        ("sts", Some(("assumed-role", rest)))
            if rest.split('/').count() == 2 && !rest.split('/').any(str::is_empty) =>
        {
            Ok(PrincipalEntry::Session(text.into()))
        }
        ("sts", Some(("federated-user", rest))) if !rest.is_empty() && !rest.contains('/') => {
            Ok(PrincipalEntry::Session(text.into()))
        }
        ("iam", Some(("group", _))) => {
            Err(format!("`{text}`: an IAM group can never be a principal"))
        }
        _ => Err(bad()),
    }
}

fn service_entry(text: &str) -> Result<PrincipalEntry, String> {
    no_partial_wildcard(text)?;
    let ok = !text.is_empty()
        && text.contains('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    if ok {
        Ok(PrincipalEntry::Service(text.into()))
    } else {
        Err(format!(
            "`{text}` is not a service principal such as `ec2.amazonaws.com`"
        ))
    }
}

fn federated_entry(text: &str) -> Result<PrincipalEntry, String> {
    no_partial_wildcard(text)?;
    let provider_arn = crate::arn::Arn::parse(text).is_some_and(|a| {
        a.service == "iam"
            && (a.resource.starts_with("oidc-provider/")
                || a.resource.starts_with("saml-provider/"))
    });
    let host =
        !text.starts_with("arn:") && text.contains('.') && !text.contains(char::is_whitespace);
    if provider_arn || host {
        Ok(PrincipalEntry::Federated(text.into()))
    } else {
        Err(format!(
            "`{text}` is not an identity provider: expected a host such as `accounts.google.com` or an `oidc-provider/` or `saml-provider/` ARN"
        ))
    }
}

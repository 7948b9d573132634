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
                let parent = arn.rsplit('/').next() == Some(&**name)
                    && arn.split(':').nth(4) == Some(&*p.account);
                named(parent, M::ParentUser)
            }
            (PrincipalEntry::Role { .. }, PrincipalKind::AssumedRole { role_name, .. }) => {
                named(self.is_role(p, role_name), M::Role)
            }
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

    /// Whether this is a role entry for the role of the caller's session, named
    /// `role_name` in its session ARN. The session ARN omits the role's path, so the name
    /// decides; like iam-simulate, case-insensitively.
    fn is_role(&self, p: &Principal, role_name: &str) -> bool {
        match self {
            PrincipalEntry::Role {
                partition,
                account,
                name,
            } => {
                **partition == *p.partition
                    && **account == *p.account
                    && name.eq_ignore_ascii_case(role_name)
            }
            _ => false,
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

#[cfg(test)]
mod tests {
    //! Principal matching, from the reference (§1.4 forms, §2.3 classification).

    use super::*;
    use crate::request::Principal;

    const USER: &str = "arn:aws:iam::111111111111:user/alice";
    const PATH_USER: &str = "arn:aws:iam::111111111111:user/eng/alice";
    const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/app/s1";
    const FED: &str = "arn:aws:sts::111111111111:federated-user/alice";
    const ROOT: &str = "arn:aws:iam::111111111111:root";

    fn caller(arn: &str) -> Principal<'_> {
        Principal::from_arn(arn).unwrap()
    }

    fn other(kind: PrincipalKind<'static>) -> Principal<'static> {
        Principal {
            arn: "".into(),
            partition: "aws".into(),
            account: "".into(),
            kind,
            unique_id: None,
        }
    }

    /// Reads one entry of the element `key` (`AWS`, `Service`, `Federated`) and classifies
    /// the caller against it.
    fn check(key: &str, entry: &str, who: &Principal, expected: PrincipalMatch) {
        let parsed = match key {
            "AWS" => aws_entry(entry),
            "Service" => service_entry(entry),
            "Federated" => federated_entry(entry),
            _ => Ok(PrincipalEntry::Canonical(entry.into())),
        };
        let entry_value = parsed.unwrap_or_else(|e| panic!("{key} `{entry}`: {e}"));
        assert_eq!(
            entry_value.classify(who),
            expected,
            "{key} `{entry}` against {who:?}"
        );
    }

    #[test]
    fn wildcard_matches_everyone_including_anonymous_callers() {
        for who in [
            caller(USER),
            caller(SESSION),
            caller(ROOT),
            other(PrincipalKind::Anonymous),
            other(PrincipalKind::Service {
                name: "ec2.amazonaws.com".into(),
            }),
        ] {
            check("AWS", "*", &who, PrincipalMatch::Direct);
        }
    }

    #[test]
    fn account_id_and_root_arn_delegate_to_every_principal_of_the_account() {
        for entry in ["111111111111", ROOT] {
            for who in [USER, SESSION, FED, ROOT] {
                check("AWS", entry, &caller(who), PrincipalMatch::Account);
            }
            check(
                "AWS",
                entry,
                &caller("arn:aws:iam::222222222222:user/alice"),
                PrincipalMatch::NoMatch,
            );
            check(
                "AWS",
                entry,
                &other(PrincipalKind::Anonymous),
                PrincipalMatch::NoMatch,
            );
            check(
                "AWS",
                entry,
                &other(PrincipalKind::Service {
                    name: "ec2.amazonaws.com".into(),
                }),
                PrincipalMatch::NoMatch,
            );
        }
    }

    #[test]
    fn user_arn_matches_that_user_exactly_and_case_sensitively() {
        check("AWS", USER, &caller(USER), PrincipalMatch::Direct);
        check("AWS", PATH_USER, &caller(PATH_USER), PrincipalMatch::Direct);
        check(
            "AWS",
            "arn:aws:iam::111111111111:user/Alice",
            &caller(USER),
            PrincipalMatch::NoMatch,
        );
        check(
            "AWS",
            "arn:aws:iam::111111111111:user/bob",
            &caller(USER),
            PrincipalMatch::NoMatch,
        );
        check("AWS", USER, &caller(SESSION), PrincipalMatch::NoMatch);
    }

    #[test]
    fn user_arn_matches_its_federated_sessions_as_parent_user() {
        check("AWS", USER, &caller(FED), PrincipalMatch::ParentUser);
        check(
            "AWS",
            USER,
            &caller("arn:aws:sts::111111111111:federated-user/bob"),
            PrincipalMatch::NoMatch,
        );
        check(
            "AWS",
            "arn:aws:iam::222222222222:user/alice",
            &caller(FED),
            PrincipalMatch::NoMatch,
        );
    }

    #[test]
    fn role_arn_matches_every_session_of_the_role() {
        for role in [
            "arn:aws:iam::111111111111:role/app",
            // The session ARN omits the role's path: the name decides.
            "arn:aws:iam::111111111111:role/team/app",
            // iam-simulate compares role names case-insensitively.
            "arn:aws:iam::111111111111:role/APP",
        ] {
            check("AWS", role, &caller(SESSION), PrincipalMatch::Role);
            check(
                "AWS",
                role,
                &caller("arn:aws:sts::111111111111:assumed-role/app/other"),
                PrincipalMatch::Role,
            );
        }
        for (role, who) in [
            ("arn:aws:iam::111111111111:role/app2", SESSION),
            ("arn:aws:iam::222222222222:role/app", SESSION),
            ("arn:aws-cn:iam::111111111111:role/app", SESSION),
            ("arn:aws:iam::111111111111:role/alice", USER),
        ] {
            check("AWS", role, &caller(who), PrincipalMatch::NoMatch);
        }
    }

    #[test]
    fn session_arns_match_only_that_session() {
        check("AWS", SESSION, &caller(SESSION), PrincipalMatch::Direct);
        check(
            "AWS",
            SESSION,
            &caller("arn:aws:sts::111111111111:assumed-role/app/s2"),
            PrincipalMatch::NoMatch,
        );
        check("AWS", FED, &caller(FED), PrincipalMatch::Direct);
        check("AWS", FED, &caller(USER), PrincipalMatch::NoMatch);
    }

    #[test]
    fn unique_ids_match_the_entity_they_name() {
        let mut user = caller(USER);
        user.unique_id = Some("AIDAJQABLZS4A3QDU576Q".into());
        check(
            "AWS",
            "AIDAJQABLZS4A3QDU576Q",
            &user,
            PrincipalMatch::Direct,
        );
        let mut session = caller(SESSION);
        session.unique_id = Some("AROADBQP57FF2AEXAMPLE:s1".into());
        check(
            "AWS",
            "AROADBQP57FF2AEXAMPLE",
            &session,
            PrincipalMatch::Role,
        );
        check(
            "AWS",
            "AIDAJQABLZS4A3QDU576Q",
            &session,
            PrincipalMatch::NoMatch,
        );
        // Without a known unique id nothing matches.
        check(
            "AWS",
            "AIDAJQABLZS4A3QDU576Q",
            &caller(USER),
            PrincipalMatch::NoMatch,
        );
    }

    #[test]
    fn service_and_federated_entries_match_those_callers_only() {
        let ec2 = other(PrincipalKind::Service {
            name: "ec2.amazonaws.com".into(),
        });
        check("Service", "ec2.amazonaws.com", &ec2, PrincipalMatch::Direct);
        check(
            "Service",
            "lambda.amazonaws.com",
            &ec2,
            PrincipalMatch::NoMatch,
        );
        check(
            "Service",
            "ec2.amazonaws.com",
            &caller(USER),
            PrincipalMatch::NoMatch,
        );
        let google = other(PrincipalKind::WebIdentity {
            provider: "accounts.google.com".into(),
        });
        check(
            "Federated",
            "accounts.google.com",
            &google,
            PrincipalMatch::Direct,
        );
        check(
            "Federated",
            "graph.facebook.com",
            &google,
            PrincipalMatch::NoMatch,
        );
        check(
            "CanonicalUser",
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
            &caller(USER),
            PrincipalMatch::NoMatch,
        );
    }

    #[test]
    fn a_set_takes_the_most_direct_match_and_not_principal_inverts_it() {
        let set = |negated: bool| PrincipalSet {
            negated,
            entries: vec![
                aws_entry("111111111111").unwrap(),
                aws_entry("arn:aws:iam::111111111111:role/app").unwrap(),
                aws_entry(USER).unwrap(),
            ],
        };
        assert_eq!(set(false).classify(&caller(USER)), PrincipalMatch::Direct);
        assert_eq!(set(false).classify(&caller(SESSION)), PrincipalMatch::Role);
        assert_eq!(set(false).classify(&caller(ROOT)), PrincipalMatch::Account);
        let outsider = caller("arn:aws:iam::222222222222:user/x");
        assert_eq!(set(false).classify(&outsider), PrincipalMatch::NoMatch);
        // NotPrincipal: any listed match (even through the account) excludes the caller.
        assert_eq!(set(true).classify(&caller(USER)), PrincipalMatch::NoMatch);
        assert_eq!(set(true).classify(&caller(ROOT)), PrincipalMatch::NoMatch);
        assert_eq!(set(true).classify(&outsider), PrincipalMatch::Direct);
        let empty = PrincipalSet {
            negated: false,
            entries: Vec::new(),
        };
        assert_eq!(empty.classify(&caller(USER)), PrincipalMatch::NoMatch);
    }

    #[test]
    fn malformed_aws_principals_are_refused() {
        for bad in [
            "arn:aws:iam::111111111111:user/*",
            "arn:aws:iam::*:root",
            "arn:aws:sts::111111111111:assumed-role/app/*",
            "1111111111",
            "arn:aws:iam::111111111111:group/admins",
            "arn:aws:iam::111111111111:user/",
            "arn:aws:iam:us-east-1:111111111111:user/alice",
            "arn:aws:sts::111111111111:assumed-role/app",
            "arn:aws:sts::111111111111:federated-user/a/b",
            "arn:aws:s3:::bucket",
            "alice",
        ] {
            assert!(aws_entry(bad).is_err(), "`{bad}` should be refused");
        }
        for bad in ["ec2", "*.amazonaws.com", "ec2 .amazonaws.com"] {
            assert!(service_entry(bad).is_err(), "`{bad}` should be refused");
        }
        for bad in ["google", "arn:aws:iam::111111111111:role/x", "*"] {
            assert!(federated_entry(bad).is_err(), "`{bad}` should be refused");
        }
    }
}

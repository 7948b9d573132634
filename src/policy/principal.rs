//! The `Principal` / `NotPrincipal` element: reading every form AWS accepts,
//! classifying how a caller matches an entry (reference §2.3), which decides how far a
//! resource-policy grant reaches, and deciding which callers a `NotPrincipal` exempts
//! (§1.4: by exact identity, not by delegation).

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
    /// An account id or `arn:PARTITION:iam::ACCT:root`: in `Principal` it delegates to the
    /// account; in `NotPrincipal` it names the account principal (its root) only.
    Account(Box<str>),
    /// `arn:PARTITION:iam::ACCT:user/path/name`.
    User(Box<str>),
    /// `arn:PARTITION:iam::ACCT:role/path/name`: in `Principal` every session of the role;
    /// in `NotPrincipal` the role only.
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

    /// How the caller matches the element. For `Principal`, the strongest way it matches
    /// one of the entries. For `NotPrincipal`, `Direct` when the statement applies to the
    /// caller and `NoMatch` when the element exempts it (see [`PrincipalSet::exempts`]).
    pub fn classify(&self, p: &Principal) -> PrincipalMatch {
        if self.negated {
            return if self.exempts(p) {
                PrincipalMatch::NoMatch
            } else {
                PrincipalMatch::Direct
            };
        }
        self.entries
            .iter()
            .map(|e| e.classify(p))
            .max()
            .unwrap_or(PrincipalMatch::NoMatch)
    }

    /// Whether the entries, read as a `NotPrincipal`, exempt the caller (reference §1.4).
    ///
    /// Matching is by exact identity, not by delegation: an account entry names the
    /// account principal (the root), not the account's users and roles; a role entry names
    /// the role, not its sessions. AWS checks a caller's account, then its role (for a role
    /// session), then the caller itself, so a caller is exempt only when each of these is
    /// listed: the root its account; a user its user ARN (or `AIDA...` id) and account; a
    /// federated user its session ARN and account; a role session its session ARN, its role
    /// (ARN or `AROA...` id) and account. `*` exempts every caller and is the only entry
    /// that exempts an anonymous one; a service (or identity-provider) caller is exempt
    /// through its own `Service` (or `Federated`) entry.
    pub fn exempts(&self, p: &Principal) -> bool {
        let (mut caller, mut role, mut account) = (false, false, false);
        for e in &self.entries {
            match e.names(p) {
                Some(Named::Everyone) => return true,
                Some(Named::Caller) => caller = true,
                Some(Named::Role) => role = true,
                Some(Named::Account) => account = true,
                None => {}
            }
        }
        match &p.kind {
            PrincipalKind::Anonymous => false,
            PrincipalKind::Root => account,
            PrincipalKind::User { .. } | PrincipalKind::FederatedUser { .. } => caller && account,
            PrincipalKind::AssumedRole { .. } => caller && role && account,
            PrincipalKind::Service { .. } | PrincipalKind::WebIdentity { .. } => caller,
        }
    }
}

/// Which of a caller's identities a `NotPrincipal` entry names exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    /// `*`: every caller, anonymous ones included.
    Everyone,
    /// The caller itself: its user or session ARN, its user's unique id, its service or
    /// identity provider.
    Caller,
    /// The role behind a role session.
    Role,
    /// The caller's account, whose own principal is the root.
    Account,
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

    /// Which of the caller's identities this entry names exactly, if any (reference §1.4,
    /// for `NotPrincipal`). Unlike [`PrincipalEntry::classify`] nothing reaches by
    /// delegation: an account entry names the caller's account, never the caller (the
    /// root aside, whose identity is the account); a role entry the role, never the
    /// session; a user entry never its federated sessions.
    fn names(&self, p: &Principal) -> Option<Named> {
        let named = |yes: bool, n: Named| yes.then_some(n);
        match (self, &p.kind) {
            (PrincipalEntry::Wildcard, _) => Some(Named::Everyone),
            (
                PrincipalEntry::Account(a),
                PrincipalKind::Root
                | PrincipalKind::User { .. }
                | PrincipalKind::AssumedRole { .. }
                | PrincipalKind::FederatedUser { .. },
            ) => named(**a == *p.account, Named::Account),
            (PrincipalEntry::User(arn), PrincipalKind::User { .. })
            | (
                PrincipalEntry::Session(arn),
                PrincipalKind::AssumedRole { .. } | PrincipalKind::FederatedUser { .. },
            ) => named(**arn == *p.arn, Named::Caller),
            (PrincipalEntry::Role { .. }, PrincipalKind::AssumedRole { role_name, .. }) => {
                named(self.is_role(p, role_name), Named::Role)
            }
            (PrincipalEntry::UniqueId(id), PrincipalKind::User { .. }) => {
                named(p.unique_id.as_deref() == Some(&**id), Named::Caller)
            }
            // A session's unique id is `AROA...:SESSION`; the part before the colon is
            // its role's.
            (PrincipalEntry::UniqueId(id), PrincipalKind::AssumedRole { .. }) => named(
                p.unique_id.as_deref().and_then(|uid| uid.split(':').next()) == Some(&**id),
                Named::Role,
            ),
            (PrincipalEntry::Service(s), PrincipalKind::Service { name }) => {
                named(**s == **name, Named::Caller)
            }
            (PrincipalEntry::Federated(f), PrincipalKind::WebIdentity { provider }) => {
                named(**f == **provider, Named::Caller)
            }
            _ => None,
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
        // NotPrincipal: only an exactly named caller is exempt (§1.4), so the account and
        // the role do not exempt the role's session.
        assert_eq!(set(true).classify(&caller(USER)), PrincipalMatch::NoMatch);
        assert_eq!(set(true).classify(&caller(ROOT)), PrincipalMatch::NoMatch);
        assert_eq!(set(true).classify(&caller(SESSION)), PrincipalMatch::Direct);
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

    /// `NotPrincipal` (reference §1.4): an entry exempts only the identity it names, and a
    /// caller is exempt only when its own ARN, its account and (for a role session) its role
    /// are each listed.
    mod not_principal {
        use super::*;

        // AWS's example: user Bob of 444455556666.
        const BOB: &str = "arn:aws:iam::444455556666:user/Bob";
        const ACCOUNT: &str = "444455556666";
        const ROOT: &str = "arn:aws:iam::444455556666:root";
        const ALICE: &str = "arn:aws:iam::444455556666:user/alice";
        const ROLE: &str = "arn:aws:iam::444455556666:role/app";
        const SESSION: &str = "arn:aws:sts::444455556666:assumed-role/app/s1";
        const OTHER_SESSION: &str = "arn:aws:sts::444455556666:assumed-role/app/s2";
        const FED: &str = "arn:aws:sts::444455556666:federated-user/Bob";
        const BOB_UID: &str = "AIDAJQABLZS4A3QDU576Q";
        const ROLE_UID: &str = "AROADBQP57FF2AEXAMPLE";

        /// Asserts whether `"NotPrincipal"` listing `listed` exempts `who`: the statement
        /// does not apply to an exempt caller (`NoMatch`) and applies to any other
        /// (`Direct`). An entry is an `AWS` value, or else a `Service` name.
        #[track_caller]
        fn check(listed: &[&str], who: &Principal, exempt: bool) {
            let set = PrincipalSet {
                negated: true,
                entries: listed
                    .iter()
                    .map(|e| {
                        aws_entry(e)
                            .or_else(|_| service_entry(e))
                            .unwrap_or_else(|m| panic!("{m}"))
                    })
                    .collect(),
            };
            let expected = if exempt {
                PrincipalMatch::NoMatch
            } else {
                PrincipalMatch::Direct
            };
            assert_eq!(
                set.classify(who),
                expected,
                "NotPrincipal {listed:?} against {who:?}"
            );
        }

        fn with_uid(arn: &'static str, uid: &'static str) -> Principal<'static> {
            let mut p = caller(arn);
            p.unique_id = Some(uid.into());
            p
        }

        #[test]
        fn a_user_and_its_account_exempt_that_user_only() {
            let cases: &[(&[&str], Principal, bool)] = &[
                // AWS's documented example: everyone but Bob is denied.
                (&[BOB, ROOT], caller(BOB), true),
                (&[BOB, ACCOUNT], caller(BOB), true),
                (&[BOB, ROOT], caller(ALICE), false),
                (&[BOB, ROOT], caller(SESSION), false),
                (&[BOB, ROOT], caller(FED), false),
                (
                    &[BOB, ROOT],
                    caller("arn:aws:iam::111111111111:user/Bob"),
                    false,
                ),
                (&[BOB, ROOT], other(PrincipalKind::Anonymous), false),
                // Bob's ARN without the account does not exempt Bob (the safe reading).
                (&[BOB], caller(BOB), false),
                (&[BOB], caller(ALICE), false),
                // Matching stays case-sensitive on the user name.
                (
                    &["arn:aws:iam::444455556666:user/bob", ROOT],
                    caller(BOB),
                    false,
                ),
                // A unique id names the same user as its ARN.
                (&[BOB_UID, ACCOUNT], with_uid(BOB, BOB_UID), true),
                (&[BOB_UID], with_uid(BOB, BOB_UID), false),
                (&[BOB_UID, ACCOUNT], caller(BOB), false),
            ];
            for (listed, who, exempt) in cases {
                check(listed, who, *exempt);
            }
        }

        #[test]
        fn an_account_exempts_its_root_not_its_users_or_sessions() {
            for account in [ACCOUNT, ROOT] {
                let cases: &[(Principal, bool)] = &[
                    (caller(ROOT), true),
                    (caller(BOB), false),
                    (caller(SESSION), false),
                    (caller(FED), false),
                    (caller("arn:aws:iam::111111111111:root"), false),
                ];
                for (who, exempt) in cases {
                    check(&[account], who, *exempt);
                }
            }
        }

        #[test]
        fn a_role_session_needs_its_session_role_and_account_listed() {
            let session = || with_uid(SESSION, "AROADBQP57FF2AEXAMPLE:s1");
            let cases: &[(&[&str], Principal, bool)] = &[
                (&[SESSION, ROLE, ACCOUNT], session(), true),
                (&[SESSION, ROLE, ROOT], session(), true),
                // Each one missing: not exempt.
                (&[ROLE, ACCOUNT], session(), false),
                (&[SESSION, ACCOUNT], session(), false),
                (&[SESSION, ROLE], session(), false),
                (&[SESSION], session(), false),
                (&[ROLE], session(), false),
                // A role exempts the role, not its other sessions.
                (&[SESSION, ROLE, ACCOUNT], caller(OTHER_SESSION), false),
                // The role is named as `Principal` names it: the session ARN omits the path.
                (
                    &[SESSION, "arn:aws:iam::444455556666:role/team/app", ACCOUNT],
                    session(),
                    true,
                ),
                (
                    &[SESSION, "arn:aws:iam::444455556666:role/app2", ACCOUNT],
                    session(),
                    false,
                ),
                // An `AROA` id names the role.
                (&[SESSION, ROLE_UID, ACCOUNT], session(), true),
                (
                    &[SESSION, "AROAOTHERROLEEXAMPLE", ACCOUNT],
                    session(),
                    false,
                ),
            ];
            for (listed, who, exempt) in cases {
                check(listed, who, *exempt);
            }
        }

        #[test]
        fn a_federated_user_needs_its_session_and_account_listed() {
            let cases: &[(&[&str], Principal, bool)] = &[
                (&[FED, ACCOUNT], caller(FED), true),
                (&[FED], caller(FED), false),
                // Its parent user is another identity.
                (&[BOB, ACCOUNT], caller(FED), false),
                (&[FED, ACCOUNT], caller(BOB), false),
            ];
            for (listed, who, exempt) in cases {
                check(listed, who, *exempt);
            }
        }

        #[test]
        fn a_wildcard_exempts_everyone_and_anonymous_callers_only_through_it() {
            let ec2 = || {
                other(PrincipalKind::Service {
                    name: "ec2.amazonaws.com".into(),
                })
            };
            let cases: &[(&[&str], Principal, bool)] = &[
                (&["*"], caller(BOB), true),
                (&["*"], caller(SESSION), true),
                (&["*"], caller(ROOT), true),
                (&["*"], ec2(), true),
                (&["*"], other(PrincipalKind::Anonymous), true),
                (&[BOB, ROOT], other(PrincipalKind::Anonymous), false),
                // A service is exempt through its own entry, never through an account.
                (&["ec2.amazonaws.com"], ec2(), true),
                (&["lambda.amazonaws.com"], ec2(), false),
                (&[ACCOUNT], ec2(), false),
            ];
            for (listed, who, exempt) in cases {
                check(listed, who, *exempt);
            }
        }
    }
}

//! What a request is about: the calling principal, the action, the resource and the
//! context. Built once per request, before evaluation, so evaluation allocates nothing.

use std::borrow::Cow;

use arrayvec::ArrayString;

use crate::arn::Arn;
use crate::context::{Context, ContextValue, Lookup};

/// The caller, as resolved from an ARN (or, in a bundle, from the identity store).
///
/// Its strings borrow where they can (from the ARN a request names, from the snapshot's
/// identity), so that resolving a role session per request allocates only its unique id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal<'a> {
    /// The ARN the caller presents: a user ARN, or a session ARN for a role session.
    pub arn: Cow<'a, str>,
    pub partition: Cow<'a, str>,
    pub account: Cow<'a, str>,
    pub kind: PrincipalKind<'a>,
    /// `AIDA...` for a user, `AROA...:SESSION` for a role session, where known.
    pub unique_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind<'a> {
    User {
        name: Cow<'a, str>,
    },
    AssumedRole {
        role_name: Cow<'a, str>,
        session_name: Cow<'a, str>,
        /// The role's ARN with its path (`aws:PrincipalArn`); a session ARN omits the
        /// path, so without an identity store this is `role/NAME`.
        role_arn: Cow<'a, str>,
    },
    FederatedUser {
        name: Cow<'a, str>,
    },
    /// The account's root user.
    Root,
    /// An AWS service acting with its own identity (`ec2.amazonaws.com`).
    Service {
        name: Cow<'a, str>,
    },
    /// A web-identity or SAML caller presenting a token from this provider.
    WebIdentity {
        provider: Cow<'a, str>,
    },
    Anonymous,
}

impl PrincipalKind<'_> {
    /// The value of `aws:PrincipalType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            PrincipalKind::User { .. } => "User",
            PrincipalKind::AssumedRole { .. } | PrincipalKind::WebIdentity { .. } => "AssumedRole",
            PrincipalKind::FederatedUser { .. } => "FederatedUser",
            PrincipalKind::Root => "Account",
            PrincipalKind::Service { .. } => "Service",
            PrincipalKind::Anonymous => "Anonymous",
        }
    }

    fn into_owned(self) -> PrincipalKind<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        match self {
            PrincipalKind::User { name } => PrincipalKind::User { name: own(name) },
            PrincipalKind::AssumedRole {
                role_name,
                session_name,
                role_arn,
            } => PrincipalKind::AssumedRole {
                role_name: own(role_name),
                session_name: own(session_name),
                role_arn: own(role_arn),
            },
            PrincipalKind::FederatedUser { name } => {
                PrincipalKind::FederatedUser { name: own(name) }
            }
            PrincipalKind::Root => PrincipalKind::Root,
            PrincipalKind::Service { name } => PrincipalKind::Service { name: own(name) },
            PrincipalKind::WebIdentity { provider } => PrincipalKind::WebIdentity {
                provider: own(provider),
            },
            PrincipalKind::Anonymous => PrincipalKind::Anonymous,
        }
    }
}

/// Why a principal ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a principal ARN: expected `arn:aws:iam::ACCOUNT:user/NAME`, `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, `arn:aws:sts::ACCOUNT:federated-user/NAME` or `arn:aws:iam::ACCOUNT:root`"
)]
pub struct BadPrincipal(pub String);

impl<'a> Principal<'a> {
    /// Reads a caller from its ARN, borrowing from it. A role session's role ARN is
    /// `arn:PARTITION:iam::ACCOUNT:role/ROLE` (no path: a session ARN does not carry it).
    pub fn from_arn(text: &'a str) -> Result<Principal<'a>, BadPrincipal> {
        Principal::from_arn_with(text, |partition, account, role| {
            Cow::Owned(format!("arn:{partition}:iam::{account}:role/{role}"))
        })
    }

    /// Like [`Principal::from_arn`], with the role ARN of a role session given by
    /// `role_arn(partition, account, role name)`: an identity store knows the role's path,
    /// and lends its ARN instead of formatting one per request.
    pub fn from_arn_with(
        text: &'a str,
        role_arn: impl FnOnce(&'a str, &'a str, &'a str) -> Cow<'a, str>,
    ) -> Result<Principal<'a>, BadPrincipal> {
        let bad = || BadPrincipal(text.to_owned());
        let arn = Arn::parse(text).ok_or_else(bad)?;
        if arn.account.len() != 12 || !arn.account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let kind = match (arn.service, arn.resource.split_once('/')) {
            ("iam", None) if arn.resource == "root" => PrincipalKind::Root,
            ("iam", Some(("user", rest))) if !rest.is_empty() => PrincipalKind::User {
                name: Cow::Borrowed(rest.rsplit('/').next().unwrap_or(rest)),
            },
            ("sts", Some(("assumed-role", rest))) => {
                let (role, session) = rest.split_once('/').ok_or_else(bad)?;
                if role.is_empty() || session.is_empty() || session.contains('/') {
                    return Err(bad());
                }
                PrincipalKind::AssumedRole {
                    role_name: Cow::Borrowed(role),
                    session_name: Cow::Borrowed(session),
                    role_arn: role_arn(arn.partition, arn.account, role),
                }
            }
            ("sts", Some(("federated-user", name))) if !name.is_empty() => {
                PrincipalKind::FederatedUser {
                    name: Cow::Borrowed(name),
                }
            }
            _ => return Err(bad()),
        };
        Ok(Principal {
            arn: Cow::Borrowed(text),
            partition: Cow::Borrowed(arn.partition),
            account: Cow::Borrowed(arn.account),
            kind,
            unique_id: None,
        })
    }

    /// The same principal, owning its strings.
    pub fn into_owned(self) -> Principal<'static> {
        Principal {
            arn: Cow::Owned(self.arn.into_owned()),
            partition: Cow::Owned(self.partition.into_owned()),
            account: Cow::Owned(self.account.into_owned()),
            kind: self.kind.into_owned(),
            unique_id: self.unique_id.map(|u| Cow::Owned(u.into_owned())),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        !matches!(self.kind, PrincipalKind::Anonymous)
    }

    /// The value of `aws:PrincipalArn`: the role ARN for a role session.
    pub fn principal_arn(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Anonymous
            | PrincipalKind::Service { .. }
            | PrincipalKind::WebIdentity { .. } => None,
            PrincipalKind::AssumedRole { role_arn, .. } => Some(role_arn),
            _ => Some(&self.arn),
        }
    }

    /// Fills the context keys that follow from the principal, keeping any value the
    /// context already has (the conformance cases' rule; the server overwrites instead).
    pub fn fill_context_defaults(&self, ctx: &mut Context) {
        let single = |s: &str| ContextValue::Single(s.to_owned());
        if let Some(arn) = self.principal_arn() {
            ctx.insert_default("aws:PrincipalArn", single(arn));
        }
        if self.is_authenticated() {
            ctx.insert_default("aws:PrincipalAccount", single(&self.account));
        }
        ctx.insert_default("aws:PrincipalType", single(self.kind.type_name()));
        if let PrincipalKind::User { name } = &self.kind {
            ctx.insert_default("aws:username", single(name));
        }
        if let Some(id) = &self.unique_id {
            ctx.insert_default("aws:userid", single(id));
        }
    }
}

/// One authorization request, prepared for evaluation.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: &'a Principal<'a>,
    /// Lowercased once here so that matching does not allocate.
    action: LowerAction,
    colon: Option<usize>,
    pub resource: &'a str,
    resource_arn: Option<Arn<'a>>,
    /// The account that owns the resource.
    pub resource_account: &'a str,
    pub context: &'a dyn Lookup,
}

impl<'a> Request<'a> {
    pub fn new(
        principal: &'a Principal<'a>,
        action: &str,
        resource: &'a str,
        resource_account: &'a str,
        context: &'a dyn Lookup,
    ) -> Request<'a> {
        Request::with_resource_arn(
            principal,
            action,
            resource,
            Arn::parse(resource),
            resource_account,
            context,
        )
    }

    /// Like [`Request::new`] with the resource already split (`Arn::parse(resource)`), for a
    /// caller that parsed it to find the resource's account.
    pub fn with_resource_arn(
        principal: &'a Principal<'a>,
        action: &str,
        resource: &'a str,
        resource_arn: Option<Arn<'a>>,
        resource_account: &'a str,
        context: &'a dyn Lookup,
    ) -> Request<'a> {
        let action = LowerAction::new(action);
        Request {
            principal,
            // A byte scan: `find` sets up a searcher, which costs more than this short string.
            colon: action.as_str().bytes().position(|b| b == b':'),
            action,
            resource,
            resource_arn,
            resource_account,
            context,
        }
    }

    /// The lowercase action.
    pub fn action(&self) -> &str {
        self.action.as_str()
    }

    /// The lowercase action split at its colon (`("", action)` when it has none).
    pub fn action_parts(&self) -> (&str, &str) {
        match self.colon {
            Some(i) => (
                self.action().get(..i).unwrap_or_default(),
                self.action().get(i + 1..).unwrap_or_default(),
            ),
            None => ("", self.action()),
        }
    }

    pub fn resource_arn(&self) -> Option<&Arn<'a>> {
        self.resource_arn.as_ref()
    }

    pub fn same_account(&self) -> bool {
        self.principal.is_authenticated() && self.principal.account == self.resource_account
    }
}

/// Actions up to this long are lowercased on the stack; AWS's longest are about 60.
const INLINE_ACTION: usize = 64;

/// A lowercase copy of the action, inline when it is short (nearly always), so that
/// building a request does not allocate. `arrayvec` rather than a hand-made buffer: its
/// `ArrayString` hands out `&str` without checking the UTF-8 again on every read.
#[derive(Debug, Clone)]
enum LowerAction {
    Inline(ArrayString<INLINE_ACTION>),
    Heap(String),
}

impl LowerAction {
    fn new(action: &str) -> LowerAction {
        match ArrayString::from(action) {
            Ok(mut inline) => {
                inline.make_ascii_lowercase();
                LowerAction::Inline(inline)
            }
            Err(_) => LowerAction::Heap(action.to_ascii_lowercase()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            LowerAction::Inline(s) => s,
            LowerAction::Heap(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_of_every_form() {
        let p = Principal::from_arn("arn:aws:iam::111111111111:user/eng/bob").unwrap();
        assert_eq!(p.kind, PrincipalKind::User { name: "bob".into() });
        assert_eq!(p.account, "111111111111");
        let s = Principal::from_arn("arn:aws:sts::111111111111:assumed-role/Dev/s1").unwrap();
        assert_eq!(
            s.principal_arn(),
            Some("arn:aws:iam::111111111111:role/Dev")
        );
        assert!(Principal::from_arn("arn:aws:iam::111111111111:root").is_ok());
        assert!(Principal::from_arn("arn:aws:sts::111111111111:federated-user/bob").is_ok());
        for bad in [
            "alice",
            "arn:aws:iam::1:user/a",
            "arn:aws:iam::111111111111:group/g",
            "arn:aws:sts::111111111111:assumed-role/Dev",
        ] {
            assert!(Principal::from_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions_are_lowercased_inline_or_on_the_heap() {
        let p = Principal::from_arn("arn:aws:iam::111111111111:user/alice").unwrap();
        let ctx = Context::new();
        let short = Request::new(&p, "Orders:GetOrder", "*", "111111111111", &ctx);
        assert_eq!(short.action(), "orders:getorder");
        assert_eq!(short.action_parts(), ("orders", "getorder"));
        let long_name = format!("Svc:{}", "Ab".repeat(INLINE_ACTION));
        let long = Request::new(&p, &long_name, "*", "111111111111", &ctx);
        assert!(matches!(long.action, LowerAction::Heap(_)));
        assert_eq!(long.action(), long_name.to_ascii_lowercase());
        assert_eq!(long.action_parts().0, "svc");
        let none = Request::new(&p, "NoColon", "*", "111111111111", &ctx);
        assert_eq!(none.action_parts(), ("", "nocolon"));
    }

    #[test]
    fn derived_context_keeps_given_values() {
        let p = Principal::from_arn("arn:aws:iam::111111111111:user/alice").unwrap();
        let mut ctx = Context::new();
        ctx.insert("aws:username", ContextValue::Single("given".into()));
        p.fill_context_defaults(&mut ctx);
        assert_eq!(
            ctx.get("aws:username").and_then(ContextValue::single),
            Some("given")
        );
        assert_eq!(
            ctx.get("aws:principalaccount")
                .and_then(ContextValue::single),
            Some("111111111111")
        );
    }
}

//! What a request is about: the calling principal, the action, the resource and the
//! context. Built once per request, before evaluation, so evaluation allocates nothing.

use crate::arn::Arn;
use crate::context::{Context, ContextValue, Lookup};

/// The caller, as resolved from an ARN (or, in a bundle, from the identity store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The ARN the caller presents: a user ARN, or a session ARN for a role session.
    pub arn: String,
    pub partition: String,
    pub account: String,
    pub kind: PrincipalKind,
    /// `AIDA...` for a user, `AROA...:SESSION` for a role session, where known.
    pub unique_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    User {
        name: String,
    },
    AssumedRole {
        role_name: String,
        session_name: String,
        /// The role's ARN with its path (`aws:PrincipalArn`); a session ARN omits the
        /// path, so without an identity store this is `role/NAME`.
        role_arn: String,
    },
    FederatedUser {
        name: String,
    },
    /// The account's root user.
    Root,
    /// An AWS service acting with its own identity (`ec2.amazonaws.com`).
    Service {
        name: String,
    },
    /// A web-identity or SAML caller presenting a token from this provider.
    WebIdentity {
        provider: String,
    },
    Anonymous,
}

impl PrincipalKind {
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
}

/// Why a principal ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a principal ARN: expected `arn:aws:iam::ACCOUNT:user/NAME`, `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, `arn:aws:sts::ACCOUNT:federated-user/NAME` or `arn:aws:iam::ACCOUNT:root`"
)]
pub struct BadPrincipal(pub String);

impl Principal {
    /// Reads a caller from its ARN.
    pub fn from_arn(text: &str) -> Result<Principal, BadPrincipal> {
        let bad = || BadPrincipal(text.to_owned());
        let arn = Arn::parse(text).ok_or_else(bad)?;
        if arn.account.len() != 12 || !arn.account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let kind = match (arn.service, arn.resource.split_once('/')) {
            ("iam", None) if arn.resource == "root" => PrincipalKind::Root,
            ("iam", Some(("user", rest))) if !rest.is_empty() => PrincipalKind::User {
                name: rest.rsplit('/').next().unwrap_or(rest).to_owned(),
            },
            ("sts", Some(("assumed-role", rest))) => {
                let (role, session) = rest.split_once('/').ok_or_else(bad)?;
                if role.is_empty() || session.is_empty() || session.contains('/') {
                    return Err(bad());
                }
                PrincipalKind::AssumedRole {
                    role_name: role.to_owned(),
                    session_name: session.to_owned(),
                    role_arn: format!("arn:{}:iam::{}:role/{role}", arn.partition, arn.account),
                }
            }
            ("sts", Some(("federated-user", name))) if !name.is_empty() => {
                PrincipalKind::FederatedUser {
                    name: name.to_owned(),
                }
            }
            _ => return Err(bad()),
        };
        Ok(Principal {
            arn: text.to_owned(),
            partition: arn.partition.to_owned(),
            account: arn.account.to_owned(),
            kind,
            unique_id: None,
        })
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
    pub principal: &'a Principal,
    /// Lowercased once here so that matching does not allocate.
    action: String,
    colon: Option<usize>,
    pub resource: &'a str,
    resource_arn: Option<Arn<'a>>,
    /// The account that owns the resource.
    pub resource_account: &'a str,
    pub context: &'a dyn Lookup,
}

impl<'a> Request<'a> {
    pub fn new(
        principal: &'a Principal,
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
        principal: &'a Principal,
        action: &str,
        resource: &'a str,
        resource_arn: Option<Arn<'a>>,
        resource_account: &'a str,
        context: &'a dyn Lookup,
    ) -> Request<'a> {
        let action = action.to_ascii_lowercase();
        Request {
            principal,
            // A byte scan: `find` sets up a searcher, which costs more than this short string.
            colon: action.bytes().position(|b| b == b':'),
            action,
            resource,
            resource_arn,
            resource_account,
            context,
        }
    }

    /// The lowercase action.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The lowercase action split at its colon (`("", action)` when it has none).
    pub fn action_parts(&self) -> (&str, &str) {
        match self.colon {
            Some(i) => (
                self.action.get(..i).unwrap_or_default(),
                self.action.get(i + 1..).unwrap_or_default(),
            ),
            None => ("", &self.action),
        }
    }

    pub fn resource_arn(&self) -> Option<&Arn<'a>> {
        self.resource_arn.as_ref()
    }

    pub fn same_account(&self) -> bool {
        self.principal.is_authenticated() && self.principal.account == self.resource_account
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

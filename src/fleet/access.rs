//! Which action on which resource each bundle document is, for the admin API's
//! authorization: one function, [`access`], from a bundle path to `warden:VERBKIND` on
//! `arn:aws:warden::ACCOUNT:TYPE/NAME`. A path outside the bundle's layout has none and is
//! refused. The built-in `warden` service of the catalog is derived from [`Kind::ALL`].
//!
//! Documents of an account are the account's resources; organization-level documents
//! (`organization.json`, `quotas.json`, `catalog/`, `scps/`, `rcps/`, `routes/`) are the
//! resources of the organization's management account as the serving snapshot names it,
//! or of no account (`arn:aws:warden:::organization`) while it has no organization.

use crate::bundle::PARTITION;

/// What a request does with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Put,
    Delete,
    Get,
}

impl Verb {
    pub const ALL: [Verb; 3] = [Verb::Put, Verb::Delete, Verb::Get];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Put => "Put",
            Verb::Delete => "Delete",
            Verb::Get => "Get",
        }
    }
}

/// A kind of bundle document: the one table the layout, the actions and the resource
/// types derive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Organization,
    Quotas,
    CatalogService,
    Scp,
    Rcp,
    Routes,
    Account,
    Policy,
    User,
    Group,
    Role,
    ResourcePolicy,
    OidcProvider,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Organization,
        Kind::Quotas,
        Kind::CatalogService,
        Kind::Scp,
        Kind::Rcp,
        Kind::Routes,
        Kind::Account,
        Kind::Policy,
        Kind::User,
        Kind::Group,
        Kind::Role,
        Kind::ResourcePolicy,
        Kind::OidcProvider,
    ];

    /// The action's suffix: `warden:Put` + this.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Organization => "Organization",
            Kind::Quotas => "Quotas",
            Kind::CatalogService => "CatalogService",
            Kind::Scp => "Scp",
            Kind::Rcp => "Rcp",
            Kind::Routes => "Routes",
            Kind::Account => "Account",
            Kind::Policy => "Policy",
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::Role => "Role",
            Kind::ResourcePolicy => "ResourcePolicy",
            Kind::OidcProvider => "OidcProvider",
        }
    }

    /// The resource type, which is also the ARN's resource part before the name.
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::Organization => "organization",
            Kind::Quotas => "quotas",
            Kind::CatalogService => "catalog",
            Kind::Scp => "scp",
            Kind::Rcp => "rcp",
            Kind::Routes => "routes",
            Kind::Account => "account",
            Kind::Policy => "policy",
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Role => "role",
            Kind::ResourcePolicy => "resource-policy",
            Kind::OidcProvider => "oidc-provider",
        }
    }

    /// Whether one document of the kind exists per account or organization (no name).
    fn is_single(self) -> bool {
        matches!(self, Kind::Organization | Kind::Quotas | Kind::Account)
    }

    /// The catalog's ARN format of the resource type.
    pub fn arn_format(self) -> String {
        let t = self.resource_type();
        if self.is_single() {
            format!("arn:${{Partition}}:warden::${{Account}}:{t}")
        } else {
            format!("arn:${{Partition}}:warden::${{Account}}:{t}/${{Name}}")
        }
    }
}

/// A document's action and resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub kind: Kind,
    /// `warden:PutPolicy`.
    pub action: String,
    /// `arn:aws:warden::111111111111:policy/Admin`.
    pub resource: String,
}

/// The action `verb` on the document at `path`, whose organization-level documents belong
/// to `management` (the serving snapshot's management account); `Err` says why a path is
/// not a document of the layout.
pub fn access(path: &str, verb: Verb, management: Option<&str>) -> Result<Access, String> {
    crate::etcd::check_path(path)?;
    let parts: Vec<&str> = path.split('/').collect();
    let org = management.unwrap_or("");
    let (kind, account, name) = match parts.as_slice() {
        ["organization.json"] => (Kind::Organization, org, None),
        ["quotas.json"] => (Kind::Quotas, org, None),
        ["catalog", f] => (Kind::CatalogService, org, Some(stem(f)?)),
        ["scps", f] => (Kind::Scp, org, Some(stem(f)?)),
        ["rcps", f] => (Kind::Rcp, org, Some(stem(f)?)),
        ["routes", f] => (Kind::Routes, org, Some(stem(f)?)),
        ["accounts", acct, rest @ ..] => {
            if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{acct}` is not a 12-digit account id"));
            }
            let kind = match rest {
                ["account.json"] => (Kind::Account, None),
                ["policies", f] => (Kind::Policy, Some(stem(f)?)),
                ["users", f] => (Kind::User, Some(stem(f)?)),
                ["groups", f] => (Kind::Group, Some(stem(f)?)),
                ["roles", f] => (Kind::Role, Some(stem(f)?)),
                ["resources", f] => (Kind::ResourcePolicy, Some(stem(f)?)),
                ["oidc-providers", f] => (Kind::OidcProvider, Some(stem(f)?)),
                _ => return Err(unknown()),
            };
            (kind.0, *acct, kind.1)
        }
        _ => return Err(unknown()),
    };
    let t = kind.resource_type();
    let resource = match name {
        Some(name) => format!("arn:{PARTITION}:warden::{account}:{t}/{name}"),
        None => format!("arn:{PARTITION}:warden::{account}:{t}"),
    };
    Ok(Access {
        kind,
        action: format!("warden:{}{}", verb.as_str(), kind.as_str()),
        resource,
    })
}

/// The resource of `warden:ListDocuments`: the whole bundle, a resource of the
/// management account.
pub fn bundle_resource(management: Option<&str>) -> String {
    format!(
        "arn:{PARTITION}:warden::{}:bundle",
        management.unwrap_or("")
    )
}

fn unknown() -> String {
    "not a document of the bundle's layout (`organization.json`, `quotas.json`, \
     `catalog/`, `scps/`, `rcps/`, `routes/` or `accounts/ACCOUNT/...` with `NAME.json`)"
        .to_owned()
}

/// A file's name without `.json`: letters, digits and `+=,.@_-`, 1 to 128 of them, so that
/// the resource's ARN holds no wildcard, separator or variable.
fn stem(file: &str) -> Result<&str, String> {
    let Some(name) = file.strip_suffix(".json") else {
        return Err(format!("`{file}` does not end with `.json`"));
    };
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "`{file}`: a document's name has 1 to 128 letters, digits or `+=,.@_-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, action: &str, resource: &str) {
        let got = access(path, Verb::Put, Some("111111111111"))
            .unwrap_or_else(|e| panic!("`{path}`: {e}"));
        assert_eq!(
            (got.action.as_str(), got.resource.as_str()),
            (action, resource),
            "{path}"
        );
        assert!(
            matches!(crate::request::parse_resource(&got.resource), Ok(Some(_))),
            "{path}"
        );
    }

    #[test]
    fn every_kind_of_document_is_an_action_on_a_resource() {
        for (path, action, resource) in [
            (
                "organization.json",
                "warden:PutOrganization",
                "arn:aws:warden::111111111111:organization",
            ),
            (
                "quotas.json",
                "warden:PutQuotas",
                "arn:aws:warden::111111111111:quotas",
            ),
            (
                "catalog/orders.json",
                "warden:PutCatalogService",
                "arn:aws:warden::111111111111:catalog/orders",
            ),
            (
                "scps/DenyLeave.json",
                "warden:PutScp",
                "arn:aws:warden::111111111111:scp/DenyLeave",
            ),
            (
                "rcps/Stay.json",
                "warden:PutRcp",
                "arn:aws:warden::111111111111:rcp/Stay",
            ),
            (
                "routes/default.json",
                "warden:PutRoutes",
                "arn:aws:warden::111111111111:routes/default",
            ),
            (
                "accounts/555555555555/account.json",
                "warden:PutAccount",
                "arn:aws:warden::555555555555:account",
            ),
            (
                "accounts/555555555555/policies/Admin.json",
                "warden:PutPolicy",
                "arn:aws:warden::555555555555:policy/Admin",
            ),
            (
                "accounts/555555555555/users/dana.json",
                "warden:PutUser",
                "arn:aws:warden::555555555555:user/dana",
            ),
            (
                "accounts/555555555555/groups/Devs.json",
                "warden:PutGroup",
                "arn:aws:warden::555555555555:group/Devs",
            ),
            (
                "accounts/555555555555/roles/Developer.json",
                "warden:PutRole",
                "arn:aws:warden::555555555555:role/Developer",
            ),
            (
                "accounts/555555555555/resources/shared-orders.json",
                "warden:PutResourcePolicy",
                "arn:aws:warden::555555555555:resource-policy/shared-orders",
            ),
            (
                "accounts/555555555555/oidc-providers/demo.json",
                "warden:PutOidcProvider",
                "arn:aws:warden::555555555555:oidc-provider/demo",
            ),
        ] {
            check(path, action, resource);
        }
    }

    #[test]
    fn the_verb_names_the_action_and_no_organization_means_no_account() {
        let a = access("accounts/555555555555/roles/R.json", Verb::Delete, None).unwrap();
        assert_eq!(a.action, "warden:DeleteRole");
        let a = access("scps/X.json", Verb::Get, None).unwrap();
        assert_eq!(
            (a.action.as_str(), a.resource.as_str()),
            ("warden:GetScp", "arn:aws:warden:::scp/X")
        );
        assert_eq!(bundle_resource(None), "arn:aws:warden:::bundle");
        // Resources of no account are still ARNs the service takes.
        for resource in [bundle_resource(None), a.resource] {
            assert!(
                matches!(crate::request::parse_resource(&resource), Ok(Some(_))),
                "{resource}"
            );
        }
    }

    #[test]
    fn paths_outside_the_layout_are_refused() {
        for bad in [
            "",
            "README.md",
            "organization.yaml",
            "../organization.json",
            "accounts/../organization.json",
            "/organization.json",
            "accounts/1234/users/a.json",
            "accounts/555555555555/users/a.txt",
            "accounts/555555555555/users/.json",
            "accounts/555555555555/users/a*.json",
            "accounts/555555555555/users/a:b.json",
            "accounts/555555555555/users/x/a.json",
            "accounts/555555555555/secrets/a.json",
            "accounts/555555555555",
            "catalog/sub/orders.json",
            "scps//X.json",
            "scps/X.json/",
            "scps\\X.json",
        ] {
            assert!(
                access(bad, Verb::Put, Some("111111111111")).is_err(),
                "`{bad}` was accepted"
            );
        }
    }

    #[test]
    fn every_action_is_in_the_builtin_catalog() {
        let catalog = crate::bundle::catalog::Catalog::builtin();
        for kind in Kind::ALL {
            for verb in Verb::ALL {
                let action = format!("warden:{}{}", verb.as_str(), kind.as_str());
                assert!(catalog.action(&action).is_some(), "{action}");
            }
        }
        assert!(catalog.action("warden:ListDocuments").is_some());
    }
}

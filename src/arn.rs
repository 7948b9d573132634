//! ARNs and ARN patterns.
//!
//! An ARN is `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`. In a pattern, wildcards in
//! the first five parts stay inside their part; in RESOURCE (everything after the fifth
//! colon) they may span `/` and `:`. Policy variables are allowed only in RESOURCE.

use crate::condition::variables::Template;
use crate::context::{Context, Lookup};
use crate::matcher::{Pattern, Token, matches_tokens};

/// An ARN split at its first five colons, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    /// The first five parts with their colons: `arn:aws:s3:us-east-1:111122223333`.
    pub head: &'a str,
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits `text`; `None` when it is not `arn:` followed by five more parts.
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        // A plain byte scan: every request parses its resource, and this is cheaper than
        // `splitn`'s searcher on strings this short.
        fn part(s: &str) -> Option<(&str, &str)> {
            let i = s.bytes().position(|b| b == b':')?;
            Some((s.get(..i)?, s.get(i + 1..)?))
        }
        let rest = text.strip_prefix("arn:")?;
        let (partition, rest) = part(rest)?;
        let (service, rest) = part(rest)?;
        let (region, rest) = part(rest)?;
        let (account, resource) = part(rest)?;
        let head = text.get(..text.len() - resource.len() - 1)?;
        Some(Arn {
            head,
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    fn head(&self) -> [&'a str; 5] {
        [
            "arn",
            self.partition,
            self.service,
            self.region,
            self.account,
        ]
    }
}

/// A compiled ARN pattern (the `Resource` element, or a value of an `Arn*` operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArnPattern {
    /// `*`
    Any,
    Parts {
        head: Head,
        tail: Tail,
    },
    /// Matches nothing (a short ARN in a resource-based policy).
    Never,
}

/// The first five parts of an ARN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// No wildcard in any part (the usual case): the parts joined by colons, compared to
    /// the request's in one go. One string instead of five keeps a compiled statement
    /// small and its matching to one memory access.
    Exact(Box<str>),
    /// `arn`, partition, service, region, account.
    Parts(Box<[Pattern; 5]>),
}

impl Head {
    fn new(parts: [Pattern; 5]) -> Head {
        let exact: Option<Vec<&str>> = parts
            .iter()
            .map(|p| match p {
                Pattern::Exact(t) => Some(&**t),
                _ => None,
            })
            .collect();
        match exact {
            Some(texts) => Head::Exact(texts.join(":").into()),
            None => Head::Parts(Box::new(parts)),
        }
    }

    fn is_exact(&self) -> bool {
        match self {
            Head::Exact(_) => true,
            Head::Parts(parts) => parts.iter().all(Pattern::is_exact),
        }
    }

    fn matches(&self, arn: &Arn<'_>) -> bool {
        match self {
            Head::Exact(text) => **text == *arn.head,
            Head::Parts(parts) => parts.iter().zip(arn.head()).all(|(p, s)| p.matches(s)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    Static(Pattern),
    Template(Template),
}

/// How a pattern with fewer than six parts is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortArn {
    /// Missing parts are `*` (identity, boundary, session and organization policies).
    Pad,
    /// The pattern matches nothing (resource-based policies).
    Never,
}

impl ArnPattern {
    /// Compiles a pattern. `variables` says whether `${...}` is interpreted (policy version
    /// `2012-10-17`). Errors are messages for the caller to place.
    pub fn new(text: &str, variables: bool, short: ShortArn) -> Result<ArnPattern, String> {
        if text == "*" {
            return Ok(ArnPattern::Any);
        }
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        // `ARN:...` is accepted (AWS accepts it) but, ARNs being case-sensitive, matches
        // nothing; anything else that is not an ARN is refused.
        if !parts.first().is_some_and(|p| p.eq_ignore_ascii_case("arn")) {
            return Err(format!(
                "`{text}` is neither `*` nor an ARN (`arn:partition:service:region:account:resource`)"
            ));
        }
        // Variables are refused outside the resource part, a short pattern's parts all
        // being outside it, whether the pattern is padded or matches nothing.
        if variables && parts.iter().take(5).any(|p| p.contains("${")) {
            return Err(format!(
                "`{text}`: policy variables are allowed only in the resource part of an ARN"
            ));
        }
        if parts.len() < 6 && short == ShortArn::Never {
            return Ok(ArnPattern::Never);
        }
        let mut head: [Pattern; 5] = std::array::from_fn(|_| Pattern::Any);
        for (slot, part) in head.iter_mut().zip(parts.iter()) {
            *slot = Pattern::new(part);
        }
        let tail_text = parts.get(5).copied().unwrap_or("*");
        let tail = match variables
            .then(|| Template::parse(tail_text))
            .transpose()?
            .flatten()
        {
            Some(t) => Tail::Template(t),
            None => Tail::Static(Pattern::new(tail_text)),
        };
        Ok(ArnPattern::Parts {
            head: Head::new(head),
            tail,
        })
    }

    /// Compiles a pattern from resolved tokens (a condition value after substitution).
    fn from_tokens(tokens: &[Token]) -> Option<ArnPattern> {
        let mut parts: Vec<&[Token]> = Vec::with_capacity(6);
        let mut rest = tokens;
        while parts.len() < 5 {
            let i = rest.iter().position(|t| *t == Token::Lit(':'))?;
            parts.push(rest.get(..i)?);
            rest = rest.get(i + 1..)?;
        }
        parts.push(rest);
        if parts.first().map(|p| p.to_vec())
            != Some(vec![Token::Lit('a'), Token::Lit('r'), Token::Lit('n')])
        {
            return None;
        }
        let mut head: [Pattern; 5] = std::array::from_fn(|_| Pattern::Any);
        for (slot, part) in head.iter_mut().zip(parts.iter()) {
            *slot = Pattern::from_tokens(part.iter().copied());
        }
        let tail = Pattern::from_tokens(parts.get(5)?.iter().copied());
        Some(ArnPattern::Parts {
            head: Head::new(head),
            tail: Tail::Static(tail),
        })
    }

    /// The first five parts, joined as [`Arn::head`] reads them, when none of them holds a
    /// wildcard: a request's resource can match only if its head is this text.
    pub fn exact_head(&self) -> Option<&str> {
        match self {
            ArnPattern::Parts {
                head: Head::Exact(text),
                ..
            } => Some(text),
            _ => None,
        }
    }

    /// The pattern as policy text (`*` for any; an empty string for a pattern that matches
    /// nothing): what a reverse query reports.
    pub fn text(&self) -> String {
        self.render(["*"; 5], "*", '?', &|k| format!("${{{k}}}"))
            .unwrap_or_default()
    }

    /// A resource ARN the pattern matches when its variables read `var`: each `*` of the
    /// first five parts written as that part's `head` filler, each `*` of the resource part
    /// as `star`, each `?` as `x`. `None` for `*` (no ARN to build: the caller picks one)
    /// and for a pattern that matches nothing.
    pub fn witness(
        &self,
        head: [&str; 5],
        star: &str,
        var: &dyn Fn(&str) -> String,
    ) -> Option<String> {
        match self {
            ArnPattern::Any | ArnPattern::Never => None,
            ArnPattern::Parts { .. } => self.render(head, star, 'x', var),
        }
    }

    fn render(
        &self,
        head_fill: [&str; 5],
        star: &str,
        one: char,
        var: &dyn Fn(&str) -> String,
    ) -> Option<String> {
        match self {
            ArnPattern::Any => Some(star.to_owned()),
            ArnPattern::Never => None,
            ArnPattern::Parts { head, tail } => {
                let mut out = match head {
                    Head::Exact(text) => text.to_string(),
                    Head::Parts(parts) => parts
                        .iter()
                        .zip(head_fill)
                        .map(|(p, fill)| p.render(fill, one))
                        .collect::<Vec<_>>()
                        .join(":"),
                };
                out.push(':');
                match tail {
                    Tail::Static(p) => out.push_str(&p.render(star, one)),
                    Tail::Template(t) => out.push_str(&t.render(star, one, var)),
                }
                Some(out)
            }
        }
    }

    /// The (lowercase) keys its policy variables read.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        let template = match self {
            ArnPattern::Parts {
                tail: Tail::Template(t),
                ..
            } => Some(t),
            _ => None,
        };
        template.into_iter().flat_map(Template::keys)
    }

    /// Whether the pattern has no wildcard and no variable.
    pub fn is_exact(&self) -> bool {
        match self {
            ArnPattern::Parts {
                head,
                tail: Tail::Static(t),
            } => head.is_exact() && t.is_exact(),
            _ => false,
        }
    }

    /// Matches a request resource. `arn` is the pre-split resource (`None` when the request
    /// names `*` or something that is not an ARN, which only the `*` pattern matches).
    pub fn matches(&self, arn: Option<&Arn<'_>>, ctx: &dyn Lookup) -> Option<bool> {
        match self {
            ArnPattern::Any => Some(true),
            ArnPattern::Never => Some(false),
            ArnPattern::Parts { head, tail } => {
                let Some(arn) = arn else { return Some(false) };
                if !head.matches(arn) {
                    return Some(false);
                }
                match tail {
                    Tail::Static(p) => Some(p.matches(arn.resource)),
                    Tail::Template(t) => {
                        // Unresolvable variable: `None`, the entry matches no resource.
                        let tokens = t.resolve_tokens(ctx, true)?;
                        Some(matches_tokens(&tokens, arn.resource))
                    }
                }
            }
        }
    }
}

/// An `ArnLike`/`ArnEquals` comparison of a context value against a pattern written with
/// wildcards; both must be six-part ARNs.
pub fn arn_like(pattern_tokens: &[Token], value: &str) -> bool {
    let (Some(p), Some(v)) = (ArnPattern::from_tokens(pattern_tokens), Arn::parse(value)) else {
        return false;
    };
    p.matches(Some(&v), &Context::new()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::glob_tokens;

    fn check(pattern: &str, resource: &str, expected: bool) {
        let p = ArnPattern::new(pattern, true, ShortArn::Pad).unwrap();
        let arn = Arn::parse(resource);
        assert_eq!(
            p.matches(arn.as_ref(), &Context::new()),
            Some(expected),
            "`{pattern}` against `{resource}`"
        );
    }

    #[test]
    fn an_arn_splits_at_its_first_five_colons() {
        let a = Arn::parse("arn:aws:logs:us-east-1:1:log-group:g:*").unwrap();
        assert_eq!(
            [a.partition, a.service, a.region, a.account, a.resource],
            ["aws", "logs", "us-east-1", "1", "log-group:g:*"]
        );
        assert_eq!(Arn::parse("arn:aws:s3:::").unwrap().resource, "");
        for not_arn in [
            "arn",
            "arn:aws:s3::",
            "ARN:aws:s3:::b",
            "urn:a:b:c:d:e",
            "",
            "*",
        ] {
            assert_eq!(Arn::parse(not_arn), None, "{not_arn}");
        }
    }

    #[test]
    fn wildcards_in_the_first_five_parts_stay_in_their_part() {
        check(
            "arn:aws:s3:::reports-*/2024/*",
            "arn:aws:s3:::reports-eu/2024/q1/a.csv",
            true,
        );
        check(
            "arn:aws:s3:::reports-*/2024/*",
            "arn:aws:s3:::reports-eu/2023/a.csv",
            false,
        );
        check(
            "arn:aws:svc:*:111122223333:x",
            "arn:aws:svc:us-east-1:111122223333:x",
            true,
        );
        check("arn:aws:svc:us-*:*:x", "arn:aws:svc:eu-west-1:1:x", false);
    }

    #[test]
    fn wildcards_in_the_resource_part_span_slashes_and_colons() {
        check(
            "arn:aws:logs:*:*:log-group:my-group:*",
            "arn:aws:logs:us-east-1:1:log-group:my-group:log-stream:s",
            true,
        );
        check(
            "arn:aws:s3:::bkt/*/test/*",
            "arn:aws:s3:::bkt//test/obj",
            true,
        );
    }

    #[test]
    fn a_literal_head_is_compared_whole() {
        let p = "arn:aws:svc:us-east-1:111122223333:x/*";
        assert!(matches!(
            ArnPattern::new(p, true, ShortArn::Pad),
            Ok(ArnPattern::Parts {
                head: Head::Exact(_),
                ..
            })
        ));
        check(p, "arn:aws:svc:us-east-1:111122223333:x/1", true);
        check(p, "arn:aws:svc:us-east-1:111122223334:x/1", false);
        check(p, "arn:aws:svc:us-east-11:11122223333:x/1", false);
        check(p, "arn:aws:svc:us-east-1:111122223333", false);
        assert_eq!(Arn::parse("arn:aws:s3:::b/k").unwrap().head, "arn:aws:s3::");
    }

    #[test]
    fn resource_part_is_case_sensitive() {
        check("arn:aws:s3:::Reports/*", "arn:aws:s3:::reports/a", false);
    }

    #[test]
    fn short_patterns_are_padded_with_wildcards() {
        check(
            "arn:aws:orders:*",
            "arn:aws:orders:us-east-1:1:order/1",
            true,
        );
        let p = ArnPattern::new("arn:aws:orders", true, ShortArn::Never).unwrap();
        assert_eq!(p, ArnPattern::Never);
    }

    #[test]
    fn request_that_is_not_an_arn_matches_only_star() {
        check("*", "*", true);
        check("arn:aws:s3:::*", "*", false);
    }

    #[test]
    fn non_arn_patterns_and_variables_in_head_are_errors() {
        assert!(ArnPattern::new("orders/*", true, ShortArn::Pad).is_err());
        assert!(ArnPattern::new("arn:aws:s3:${aws:x}::b", true, ShortArn::Pad).is_err());
        // Version 2008-10-17: `${` is literal text, anywhere.
        assert!(ArnPattern::new("arn:aws:s3:${aws:x}::b", false, ShortArn::Pad).is_ok());
    }

    /// Found by the `matchers` fuzz target: a short pattern with a variable was refused in
    /// an identity policy (padded) but accepted, matching nothing, in a resource policy.
    /// A short pattern has no resource part, so the variable is misplaced in both.
    #[test]
    fn a_variable_in_a_short_pattern_is_an_error_whether_padded_or_not() {
        for short in [ShortArn::Pad, ShortArn::Never] {
            for text in [
                "arn:é:111122223333${*}:aws-cn",
                "arn:aws:s3:${aws:username}",
            ] {
                assert!(
                    ArnPattern::new(text, true, short).is_err(),
                    "{text} {short:?}"
                );
                assert!(
                    ArnPattern::new(text, false, short).is_ok(),
                    "{text} {short:?}"
                );
            }
        }
        // A short pattern without a variable still matches nothing in a resource policy.
        let p = ArnPattern::new("arn:aws:s3:*", true, ShortArn::Never).unwrap();
        assert_eq!(p, ArnPattern::Never);
    }

    #[test]
    fn wildcards_in_partition_service_region_and_account_match_within_the_part() {
        let arn = "arn:aws:codebuild:us-east-1:111122223333:project/p";
        check(
            "arn:*:codebuild:us-east-1:111122223333:project/p",
            arn,
            true,
        );
        // A wildcard in the service part is accepted and matched (reference §2.2).
        check("arn:aws:*code*:us-east-1:111122223333:*", arn, true);
        check("arn:aws:code?uild:us-east-?:111122223333:*", arn, true);
        check("arn:aws:*:*:*:project/p", arn, true);
        check("arn:aws:*:*:*:project/q", arn, false);
        // `*` matches an empty part; an empty part matches only an empty part.
        check("arn:aws:s3:*:*:bucket/k", "arn:aws:s3:::bucket/k", true);
        check(
            "arn:aws:s3:::bucket/k",
            "arn:aws:s3:us-east-1::bucket/k",
            false,
        );
        // A star cannot spill over a colon into the next part.
        check(
            "arn:aws:s3*:111122223333:x",
            "arn:aws:s3:us-east-1:111122223333:x",
            false,
        );
    }

    #[test]
    fn head_parts_are_case_sensitive_as_written() {
        check(
            "arn:aws:Orders:us-east-1:1:order/1",
            "arn:aws:orders:us-east-1:1:order/1",
            false,
        );
    }

    fn check_in(pattern: &str, resource: &str, ctx: &Context, expected: Option<bool>) {
        let p = ArnPattern::new(pattern, true, ShortArn::Pad).unwrap();
        assert_eq!(
            p.matches(Arn::parse(resource).as_ref(), ctx),
            expected,
            "`{pattern}` against `{resource}`"
        );
    }

    #[test]
    fn variables_in_the_resource_part_resolve_from_the_context() {
        use crate::context::ContextValue;
        let mut ctx = Context::new();
        ctx.insert("aws:username", ContextValue::Single("alice".into()));
        ctx.insert("aws:PrincipalTag/team", ContextValue::Single("*".into()));
        let home = "arn:aws:s3:::corp/home/${aws:username}/*";
        check_in(home, "arn:aws:s3:::corp/home/alice/a", &ctx, Some(true));
        check_in(home, "arn:aws:s3:::corp/home/bob/a", &ctx, Some(false));
        // Names are case-insensitive; a default fills a missing key.
        check_in(
            "arn:aws:s3:::corp/home/${AWS:UserName}/*",
            "arn:aws:s3:::corp/home/alice/a",
            &ctx,
            Some(true),
        );
        check_in(
            "arn:aws:s3:::corp/${aws:PrincipalTag/dept, 'shared'}/*",
            "arn:aws:s3:::corp/shared/a",
            &ctx,
            Some(true),
        );
        // A substituted value is literal: a tag value `*` matches only `*`.
        check_in(
            "arn:aws:s3:::corp/${aws:PrincipalTag/team}/a",
            "arn:aws:s3:::corp/x/a",
            &ctx,
            Some(false),
        );
        check_in(
            "arn:aws:s3:::corp/${aws:PrincipalTag/team}/a",
            "arn:aws:s3:::corp/*/a",
            &ctx,
            Some(true),
        );
        // `${*}` is a literal asterisk.
        check_in(
            "arn:aws:s3:::corp/${*}",
            "arn:aws:s3:::corp/x",
            &ctx,
            Some(false),
        );
        check_in(
            "arn:aws:s3:::corp/${*}",
            "arn:aws:s3:::corp/*",
            &ctx,
            Some(true),
        );
    }

    #[test]
    fn unresolvable_variable_matches_no_resource() {
        check_in(
            "arn:aws:s3:::corp/home/${aws:username}/*",
            "arn:aws:s3:::corp/home//a",
            &Context::new(),
            None,
        );
    }

    #[test]
    fn arn_like_differs_from_string_like_on_colons() {
        let toks: Vec<Token> = glob_tokens("arn:aws:svc:*:111122223333:finance/*").collect();
        assert!(!arn_like(
            &toks,
            "arn:aws:svc:us-east-2:999999999999:store/abc:111122223333:finance/doc.txt"
        ));
        assert!(arn_like(
            &toks,
            "arn:aws:svc:us-east-2:111122223333:finance/doc.txt"
        ));
        assert!(!arn_like(&toks, "not-an-arn"));
    }
}

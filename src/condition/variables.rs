//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, and the
//! escapes `${*}`, `${?}`, `${$}`.
//!
//! A template is split once at compile time; at evaluation each variable is looked up in
//! the request context and its value is inserted as literal text, never as wildcards.

use crate::context::Lookup;
use crate::matcher::{Token, glob_tokens};

/// Text with policy variables, split into parts at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// Bytes of policy text, to size the resolved form.
    text_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Policy text: `*` and `?` in it are wildcards where the operator allows them.
    Text(Box<str>),
    /// `${*}`, `${?}` or `${$}`: one literal character.
    Escaped(char),
    /// `${key}` or `${key, 'default'}`; the key is stored lowercase.
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

impl Template {
    /// The template written out: text with each `*` as `star` and `?` as `one`, each
    /// escape as its character, each variable as `var` says (for a witness string, or
    /// `${key}` for people).
    pub fn render(&self, star: &str, one: char, var: &dyn Fn(&str) -> String) -> String {
        let mut out = String::with_capacity(self.text_len);
        for part in &self.parts {
            match part {
                Part::Text(t) => {
                    for c in t.chars() {
                        match c {
                            '*' => out.push_str(star),
                            '?' => out.push(one),
                            c => out.push(c),
                        }
                    }
                }
                Part::Escaped(c) => out.push(*c),
                Part::Var { key, .. } => out.push_str(&var(key)),
            }
        }
        out
    }

    /// The (lowercase) keys its variables read.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { key, .. } => Some(&**key),
            _ => None,
        })
    }

    /// Splits `text` into parts. Returns `Ok(None)` when it has no `${`, so callers keep the
    /// cheaper static form.
    pub fn parse(text: &str) -> Result<Option<Template>, String> {
        if !text.contains("${") {
            return Ok(None);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest.get(..start).unwrap_or_default().into()));
            }
            let after = rest.get(start + 2..).unwrap_or_default();
            let end = after
                .find('}')
                .ok_or_else(|| format!("policy variable in `{text}` has no closing `}}`"))?;
            let body = after.get(..end).unwrap_or_default();
            parts.push(parse_var(body, text)?);
            rest = after.get(end + 1..).unwrap_or_default();
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.into()));
        }
        let text_len = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                _ => 1,
            })
            .sum();
        Ok(Some(Template { parts, text_len }))
    }

    /// Resolves the variables and returns tokens where policy text keeps its wildcards and
    /// substituted values are literal; `None` when a variable cannot be resolved.
    pub fn resolve_tokens(&self, ctx: &dyn Lookup, wildcards: bool) -> Option<Vec<Token>> {
        // Sized for the usual case (ASCII, short values) so the vector rarely grows.
        let mut out = Vec::with_capacity(self.text_len + 32);
        for part in &self.parts {
            match part {
                Part::Text(t) if wildcards => out.extend(glob_tokens(t)),
                Part::Text(t) => out.extend(t.chars().map(Token::Lit)),
                Part::Escaped(c) => out.push(Token::Lit(*c)),
                Part::Var { key, default } => {
                    let value = lookup(ctx, key, default.as_deref())?;
                    out.extend(value.chars().map(Token::Lit));
                }
            }
        }
        Some(out)
    }

    /// Resolves the variables into plain text (for operators without wildcards).
    pub fn resolve_text(&self, ctx: &dyn Lookup) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Escaped(c) => out.push(*c),
                Part::Var { key, default } => out.push_str(lookup(ctx, key, default.as_deref())?),
            }
        }
        Some(out)
    }
}

fn lookup<'c>(ctx: &'c dyn Lookup, key: &str, default: Option<&'c str>) -> Option<&'c str> {
    match ctx.get(key) {
        // Only single-valued keys can be variables; a list makes the variable unresolvable.
        Some(v) => v.single(),
        None => default,
    }
}

fn parse_var(body: &str, whole: &str) -> Result<Part, String> {
    match body {
        "*" => return Ok(Part::Escaped('*')),
        "?" => return Ok(Part::Escaped('?')),
        "$" => return Ok(Part::Escaped('$')),
        "" => return Err(format!("empty policy variable `${{}}` in `{whole}`")),
        _ => {}
    }
    let (key, default) = match body.split_once(',') {
        None => (body, None),
        Some((key, rest)) => {
            let d = rest
                .strip_prefix(' ')
                .and_then(|d| d.strip_prefix('\''))
                .and_then(|d| d.strip_suffix('\''))
                .ok_or_else(|| {
                    format!(
                        "policy variable `${{{body}}}` in `{whole}`: a default is written `, 'value'`"
                    )
                })?;
            (key, Some(d.into()))
        }
    };
    if key.is_empty()
        || key
            .chars()
            .any(|c| c.is_whitespace() || c == '$' || c == '{')
    {
        return Err(format!(
            "policy variable `${{{body}}}` in `{whole}` is not a condition key"
        ));
    }
    Ok(Part::Var {
        key: key.to_ascii_lowercase().into(),
        default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Context, ContextValue};

    fn ctx() -> Context {
        let mut c = Context::new();
        c.insert("aws:username", ContextValue::Single("alice".into()));
        c.insert(
            "aws:TagKeys",
            ContextValue::Multi(vec!["a".into(), "b".into()]),
        );
        c.insert("aws:PrincipalTag/star", ContextValue::Single("*".into()));
        c
    }

    fn resolve(t: &str) -> Option<String> {
        Template::parse(t).unwrap().unwrap().resolve_text(&ctx())
    }

    #[test]
    fn variable_names_are_case_insensitive() {
        assert_eq!(
            resolve("home/${AWS:UserName}/x").as_deref(),
            Some("home/alice/x")
        );
    }

    #[test]
    fn missing_variable_uses_its_default_or_is_unresolvable() {
        assert_eq!(
            resolve("${aws:PrincipalTag/team, 'all'}").as_deref(),
            Some("all")
        );
        assert_eq!(resolve("${aws:PrincipalTag/team}"), None);
    }

    #[test]
    fn multi_valued_keys_cannot_be_variables() {
        assert_eq!(resolve("${aws:TagKeys}"), None);
    }

    #[test]
    fn escapes_are_literal_characters() {
        assert_eq!(resolve("a${*}b${?}c${$}").as_deref(), Some("a*b?c$"));
        let toks = Template::parse("${*}")
            .unwrap()
            .unwrap()
            .resolve_tokens(&ctx(), true);
        assert_eq!(toks, Some(vec![Token::Lit('*')]));
    }

    #[test]
    fn substituted_values_are_literal() {
        let toks = Template::parse("x/${aws:PrincipalTag/star}/*")
            .unwrap()
            .unwrap()
            .resolve_tokens(&ctx(), true)
            .unwrap();
        assert_eq!(toks[2], Token::Lit('*'));
        assert_eq!(toks[4], Token::Star);
    }

    #[test]
    fn malformed_variables_are_errors() {
        assert!(Template::parse("${aws:username").is_err());
        assert!(Template::parse("${}").is_err());
        assert!(Template::parse("${aws:x, default}").is_err());
        assert!(Template::parse("${aws: x}").is_err());
        assert_eq!(Template::parse("no variables").unwrap(), None);
    }
}

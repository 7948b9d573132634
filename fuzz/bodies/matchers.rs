//! Fuzz body `matchers`: the wildcard matcher (`matcher`), ARN patterns (`arn`), action
//! patterns, policy variables and condition operators (`condition`), each checked against
//! a naive reference written here from `shared/reference/iam-semantics.md` (§2.1 actions,
//! §2.2 resources, §4 conditions, §5 variables): a dynamic-programming `*`/`?` matcher, an
//! ARN matcher that splits at the first five colons, and the operators' rules as the
//! reference states them.
//!
//! The generated texts reach the matcher's fast paths: long pieces (over 64 characters, so
//! the bit-parallel search takes several words), many `?`, runs of distinct characters
//! (past the bit-parallel search's mask budget), long inputs (past the greedy token
//! matcher's work bound), characters whose case folds unusually, multi-byte characters,
//! and policy variables resolved against a context built from the input.
//!
//! Input: read with `arbitrary::Unstructured`; the first choice picks the check.

use arbitrary::{Result, Unstructured};
use warden::arn::{Arn, ArnPattern, ShortArn};
use warden::condition::{Condition, Operator};
use warden::context::{Context, ContextValue};
use warden::matcher::{Pattern, Token, glob_tokens, matches_tokens};
use warden::policy::parse_action;
use warden::request::Action;

/// Runs one input; returns how many answers of each check were compared with the
/// reference's (so a replay can tell that its corpus reaches the comparisons).
pub fn run(data: &[u8]) -> Compared {
    COMPARED.set(Compared::default());
    let mut u = Unstructured::new(data);
    // Running out of input ends the case; every check made so far stands.
    let _ = one(&mut u);
    COMPARED.get()
}

/// How many of the engine's answers were compared with the reference's, by check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compared {
    pub glob: usize,
    pub tokens: usize,
    pub action: usize,
    pub arn: usize,
    pub condition: usize,
}

impl std::ops::AddAssign for Compared {
    fn add_assign(&mut self, o: Compared) {
        self.glob += o.glob;
        self.tokens += o.tokens;
        self.action += o.action;
        self.arn += o.arn;
        self.condition += o.condition;
    }
}

thread_local! {
    static COMPARED: std::cell::Cell<Compared> = std::cell::Cell::new(Compared::default());
    static SABOTAGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes the reference answer wrongly (every verdict negated) on this thread, so that a
/// test can show a disagreement is caught; for tests only.
pub fn sabotage_reference(on: bool) {
    SABOTAGED.set(on);
}

/// The engine's answer `got` must be the reference's `want`: panics otherwise, saying
/// `what`.
fn agree(
    check: fn(&mut Compared) -> &mut usize,
    got: bool,
    want: bool,
    what: impl FnOnce() -> String,
) {
    let want = want != SABOTAGED.get();
    let mut c = COMPARED.get();
    *check(&mut c) += 1;
    COMPARED.set(c);
    assert_eq!(
        got,
        want,
        "the engine and the reference disagree: {}",
        what()
    );
}

fn one(u: &mut Unstructured<'_>) -> Result<()> {
    match u.int_in_range(0..=5u8)? {
        0 | 1 => glob(u),
        2 => tokens(u),
        3 => action(u),
        4 => arn(u),
        _ => condition(u),
    }
}

/// Reference work (pattern × input characters) beyond which a case is only run, not
/// compared: the reference is quadratic.
const REFERENCE_BUDGET: usize = 4_000_000;

// === the wildcard matcher ===

fn glob(u: &mut Unstructured<'_>) -> Result<()> {
    let pattern = text(u, CHARS)?;
    let input = input_for(u, &pattern, CHARS)?;
    let compiled = Pattern::new(&pattern);
    let tokens: Vec<Token> = glob_tokens(&pattern).collect();
    assert_eq!(
        compiled,
        Pattern::from_tokens(tokens.iter().copied()),
        "`new` and `from_tokens` classify {pattern:?} alike"
    );
    let got = compiled.matches(&input);
    assert_eq!(
        matches_tokens(&tokens, &input),
        got,
        "token and compiled matchers on {pattern:?} against {input:?}"
    );
    if let Some(want) = reference::glob(&reference::wild(&pattern), &input) {
        agree(
            |c| &mut c.glob,
            got,
            want,
            || format!("{pattern:?} against {input:?}"),
        );
    }
    Ok(())
}

fn tokens(u: &mut Unstructured<'_>) -> Result<()> {
    // `⁎` and `‽` stand for a literal `*` and `?` (from `${*}`, `${?}` or a value).
    let text = text(u, CHARS_WITH_LITERALS)?;
    let tokens: Vec<Token> = text
        .chars()
        .map(|c| match c {
            '*' => Token::Star,
            '?' => Token::One,
            '⁎' => Token::Lit('*'),
            '‽' => Token::Lit('?'),
            c => Token::Lit(c),
        })
        .collect();
    let plain: String = text.replace('⁎', "*").replace('‽', "?");
    let input = input_for(u, &plain, CHARS)?;
    let got = Pattern::from_tokens(tokens.iter().copied()).matches(&input);
    assert_eq!(
        matches_tokens(&tokens, &input),
        got,
        "{tokens:?} against {input:?}"
    );
    let reference: Vec<reference::Tok> = tokens.iter().map(|t| reference::Tok::from(*t)).collect();
    if let Some(want) = reference::glob(&reference, &input) {
        agree(
            |c| &mut c.tokens,
            got,
            want,
            || format!("{tokens:?} against {input:?}"),
        );
    }
    Ok(())
}

// === actions ===

fn action(u: &mut Unstructured<'_>) -> Result<()> {
    let pattern = text(u, ACTION_CHARS)?;
    let request = input_for(u, &pattern, ACTION_CHARS)?;
    let parsed = parse_action(&pattern);
    agree(
        |c| &mut c.action,
        parsed.is_ok(),
        reference::valid_action(&pattern),
        || format!("{pattern:?} read as an action pattern: {parsed:?}"),
    );
    let (Ok(p), Ok(a)) = (parsed, Action::parse(&request)) else {
        return Ok(());
    };
    if let Some(want) = reference::action_matches(&pattern, &request) {
        agree(
            |c| &mut c.action,
            p.matches(a.service(), a.name()),
            want,
            || format!("action {pattern:?} against {request:?}"),
        );
    }
    Ok(())
}

// === ARN patterns ===

fn arn(u: &mut Unstructured<'_>) -> Result<()> {
    let ctx = context(u)?;
    let pattern = arn_text(u)?;
    let resource = if u.arbitrary()? {
        arn_text(u)?
    } else {
        instantiate(u, &pattern, &ctx)?
    };
    let variables: bool = u.arbitrary()?;
    let short = if u.arbitrary()? {
        ShortArn::Pad
    } else {
        ShortArn::Never
    };

    let split = Arn::parse(&resource);
    let want_split = reference::split_arn(&resource);
    assert_eq!(
        split.map(|a| [a.partition, a.service, a.region, a.account, a.resource]),
        want_split.as_ref().map(|p| [p[1], p[2], p[3], p[4], p[5]]),
        "{resource:?} split as an ARN"
    );

    let compiled = ArnPattern::new(&pattern, variables, short);
    let want = reference::resource_matches(&pattern, &resource, &ctx.reference, variables, short);
    match (&compiled, &want) {
        (Err(_), Err(())) => {}
        (Ok(p), Ok(want)) => {
            if let Some(want) = *want {
                // `None` (a variable without a value) matches no resource.
                agree(
                    |c| &mut c.arn,
                    p.matches(split.as_ref(), &ctx.context).unwrap_or(false),
                    want,
                    || {
                        format!(
                            "resource {pattern:?} (variables: {variables}, {short:?}) against \
                             {resource:?} in {:?}",
                            ctx.reference
                        )
                    },
                );
            }
        }
        _ => panic!(
            "resource pattern {pattern:?} (variables: {variables}) compiles as {compiled:?}, \
             the reference says {want:?}"
        ),
    }
    Ok(())
}

// === conditions ===

fn condition(u: &mut Unstructured<'_>) -> Result<()> {
    let name = operator_name(u)?;
    let parsed = Operator::parse(&name);
    let reference_op = reference::operator(&name);
    assert_eq!(
        parsed.is_ok(),
        reference_op.is_some(),
        "operator {name:?}: {parsed:?}"
    );
    let (Ok(op), Some(rop)) = (parsed, reference_op) else {
        return Ok(());
    };
    let domain = rop.base.domain();
    let n = u.int_in_range(0..=4u8)?;
    let mut values = Vec::new();
    for _ in 0..n {
        values.push(value(u, domain)?);
    }
    let mut ctx = context(u)?;
    // The key the condition reads: absent, one value, or a list.
    let key = *u.choose(CONDITION_KEYS)?;
    match u.int_in_range(0..=3u8)? {
        0 => {}
        1 => ctx.insert(key, vec![value(u, domain)?], true),
        _ => {
            let n = u.int_in_range(0..=3u8)?;
            let mut vs = Vec::new();
            for _ in 0..n {
                vs.push(value(u, domain)?);
            }
            ctx.insert(key, vs, false);
        }
    }
    let variables: bool = u.arbitrary()?;
    let compiled = Condition::new(op, key, &values, variables);
    if let Ok(c) = &compiled {
        let _ = c.holds(&ctx.context);
        let _ = c.keys_read().count();
    }
    let want = reference::condition(&rop, key, &values, &ctx.reference, variables);
    match (&compiled, &want) {
        (_, reference::Verdict::Unknown) | (Err(_), reference::Verdict::Refused) => {}
        (Ok(c), reference::Verdict::Holds(want)) => agree(
            |c| &mut c.condition,
            c.holds(&ctx.context),
            *want,
            || {
                format!(
                    "`{name}` on `{key}` with {values:?} (variables: {variables}) in {:?}",
                    ctx.reference
                )
            },
        ),
        _ => panic!(
            "`{name}` with {values:?} (variables: {variables}) compiles as {compiled:?}, the \
             reference says {want:?}"
        ),
    }
    Ok(())
}

fn operator_name(u: &mut Unstructured<'_>) -> Result<String> {
    let set = *u.choose(&[
        "",
        "",
        "ForAllValues:",
        "ForAnyValue:",
        "forallvalues:",
        "ForEachValue:",
        ":",
    ])?;
    let base = *u.choose(reference::OPERATOR_NAMES)?;
    let suffix = *u.choose(&["", "", "IfExists", "ifexists", "IfExist"])?;
    let mut name = format!("{set}{base}{suffix}");
    // Operators are read case-insensitively: flip the case of some letters.
    if u.arbitrary()? {
        let mask: u64 = u.arbitrary()?;
        name = name
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
    }
    Ok(name)
}

/// A value of a condition's domain: usually well formed for the operator, sometimes not.
fn value(u: &mut Unstructured<'_>, domain: reference::Domain) -> Result<String> {
    use reference::Domain;
    let list: &[&str] = match domain {
        Domain::Text => return pieces(u, TEXT_PIECES),
        Domain::Arn => return arn_text(u),
        Domain::Number => &[
            "0",
            "1",
            "-1",
            "1.5",
            "01",
            "+2",
            ".5",
            "1.",
            "1e3",
            "10",
            "2.50",
            "2.5",
            "-0",
            "9007199254740993",
            "9007199254740992",
            "abc",
            "",
            " 1",
            "1.0",
            "0x10",
            "NaN",
            "inf",
            "1${aws:username}",
        ],
        Domain::Date => &[
            "2026-01-15T12:00:00Z",
            "2026-01-15",
            "2026-01-16",
            "1768478400",
            "1768478400000",
            "-1",
            "0",
            "2026-01-15T13:00:00+01:00",
            "2026-01-15T12:00:00-00:30",
            "2026-01-15T12:00",
            "2026-01-15T12:00:00",
            "2026-02-30",
            "2026-13-01",
            "2026-01-15T12:00:00.5Z",
            "x",
            "",
            "1-2",
            "--1",
            "99999999999999999999",
            "9223372036854775807",
            "${aws:CurrentTime}",
        ],
        Domain::Bool => &["true", "false", "TRUE", "False", "yes", "", "1", "${aws:x}"],
        Domain::Ip => &[
            "10.0.0.1",
            "10.0.0.0/8",
            "10.1.2.3/16",
            "10.255.255.255",
            "11.0.0.0",
            "::1",
            "2001:db8::/32",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "10.0.0.1/33",
            "300.0.0.1",
            "10.0.0.0/8 ",
            "0.0.0.0/0",
            "::/0",
            "1.2.3.4/32",
            "1.2.3.4/31",
            "10.0.0.0/08",
            "",
            "${aws:SourceIp}",
        ],
        Domain::Binary => &["", "YQ==", "YWJj", "!!", "YWJj\n", "YWI=", "YWI"],
    };
    let base = *u.choose(list)?;
    // Now and then the value is anything at all.
    if u.ratio(1, 8u8)? {
        return pieces(u, TEXT_PIECES);
    }
    Ok(base.to_owned())
}

// === generated texts ===

/// The characters texts are made of: wildcards, separators, letters whose case folds
/// unusually (`Σ` lowercases to `ς` at the end of a word, `İ` to two characters, `K` is
/// also the Kelvin sign), and multi-byte characters.
const CHARS: &[char] = &[
    'a', 'b', 'c', 'a', 'b', 'A', 'B', '*', '?', '*', '?', ':', '/', '-', '.', '0', 'é', 'É', 'ß',
    'Σ', 'σ', 'ς', 'İ', 'i', 'I', 'K', 'k', '\u{212A}', '😀', ' ', '$', '{', '}',
];
const CHARS_WITH_LITERALS: &[char] = &[
    'a', 'b', 'c', 'a', 'b', 'A', '*', '?', '*', '?', ':', '/', 'é', '😀', '⁎', '‽', '⁎', '‽',
];
const ACTION_CHARS: &[char] = &[
    's', '3', 'S', 'g', 'e', 't', 'G', 'E', 'T', 'o', 'b', 'j', '*', '?', '*', '?', ':', '-', '_',
    'x', 'é', ' ', 'A', 'Z',
];

/// A text from `chars`, in a small language: most bytes are one character; `0xF0..=0xFD`
/// with the next byte is one of 3,584 CJK characters; `0xFE count len` repeats the last
/// `len` characters; `0xFF n n start` appends a run of up to 4,096 distinct characters.
fn text(u: &mut Unstructured<'_>, chars: &[char]) -> Result<String> {
    let ops = u.int_in_range(0..=96u8)?;
    let mut out: Vec<char> = Vec::new();
    for _ in 0..ops {
        let b: u8 = u.arbitrary()?;
        match b {
            0xF0..=0xFD => {
                let low: u8 = u.arbitrary()?;
                out.push(cjk((u32::from(b - 0xF0) << 8) | u32::from(low)));
            }
            0xFE => {
                let count = u.int_in_range(1..=255u8)?;
                let len = usize::from(u.int_in_range(1..=16u8)?).min(out.len());
                let tail: Vec<char> = out[out.len() - len..].to_vec();
                for _ in 0..count {
                    out.extend_from_slice(&tail);
                }
            }
            0xFF => {
                let n = u.int_in_range(1..=4096u16)?;
                let start: u8 = u.arbitrary()?;
                out.extend((0..u32::from(n)).map(|i| cjk(u32::from(start) * 16 + i)));
            }
            b => out.push(chars[usize::from(b) % chars.len()]),
        }
        if out.len() > 20_000 {
            break;
        }
    }
    Ok(out.into_iter().collect())
}

fn cjk(i: u32) -> char {
    char::from_u32(0x4E00 + i % 0x5000).unwrap_or('?')
}

/// An input for `pattern`: unrelated text, or the pattern filled in (each `*` replaced by
/// some text, each `?` by one character) and perhaps changed in one place.
fn input_for(u: &mut Unstructured<'_>, pattern: &str, chars: &[char]) -> Result<String> {
    if u.ratio(1, 3u8)? {
        return text(u, chars);
    }
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '*' => {
                let n = u.int_in_range(0..=3u8)?;
                for _ in 0..n {
                    out.push(*u.choose(chars)?);
                }
                if u.ratio(1, 16u8)? {
                    out.push_str(&text(u, chars)?);
                }
            }
            '?' => out.push(*u.choose(chars)?),
            c => out.push(c),
        }
    }
    if u.ratio(1, 4u8)? && !out.is_empty() {
        let mut cs: Vec<char> = out.chars().collect();
        let i = u.choose_index(cs.len())?;
        match u.int_in_range(0..=2u8)? {
            0 => {
                cs.remove(i);
            }
            1 => cs.insert(i, *u.choose(chars)?),
            _ => cs[i] = *u.choose(chars)?,
        }
        out = cs.into_iter().collect();
    }
    Ok(out)
}

/// Text pieces ARNs and their patterns are made of, variables and their errors included.
const ARN_PIECES: &[&str] = &[
    "arn",
    "arn",
    "ARN",
    "aws",
    "s3",
    ":",
    ":",
    ":",
    ":",
    "::",
    "*",
    "?",
    "/",
    "a",
    "b",
    "é",
    "😀",
    "-",
    "111122223333",
    "${aws:username}",
    "${AWS:UserName}",
    "${aws:userid}",
    "${aws:PrincipalTag/team, 'dflt'}",
    "${aws:principaltag/team, ''}",
    "${test:key}",
    "${*}",
    "${?}",
    "${$}",
    "${",
    "}",
    "${}",
    "${x, bad}",
    "${a b}",
    "$",
    "{",
    "arn:aws:s3:::",
    "arn:aws:iam::111122223333:",
    "arn:aws:",
    "**",
    "Σ",
];
/// Pieces of the first five parts of an ARN (no colon).
const ARN_PART_PIECES: &[&str] = &[
    "aws",
    "aws-cn",
    "s3",
    "iam",
    "us-east-1",
    "111122223333",
    "*",
    "?",
    "a",
    "A",
    "é",
    "",
    "${aws:username}",
    "${*}",
    "Σ",
];

/// Text for an ARN or an ARN pattern: mostly six colon-separated parts (`arn` or a
/// near miss, four parts of `ARN_PART_PIECES`, a resource of `ARN_PIECES`), else any
/// concatenation of `ARN_PIECES`.
fn arn_text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 4u8)? {
        return pieces(u, ARN_PIECES);
    }
    let mut out = (*u.choose(&["arn", "arn", "arn", "ARN", "*", "ar?", ""])?).to_owned();
    // Sometimes a part short (a short ARN), sometimes a part more.
    let parts = *u.choose(&[5u8, 5, 5, 5, 4, 3, 6])?;
    for i in 0..parts {
        out.push(':');
        if i == 4 {
            out.push_str(&pieces(u, ARN_PIECES)?);
        } else {
            for _ in 0..u.int_in_range(0..=2u8)? {
                out.push_str(u.choose(ARN_PART_PIECES)?);
            }
        }
    }
    Ok(out)
}

/// Text pieces of string condition values and context values.
const TEXT_PIECES: &[&str] = &[
    "a",
    "b",
    "ab",
    "A",
    "B",
    "*",
    "?",
    "Σ",
    "σ",
    "ς",
    "ΑΣ",
    "İ",
    "i",
    "I",
    "K",
    "k",
    "\u{212A}",
    "ß",
    "SS",
    "é",
    "É",
    "😀",
    " ",
    ":",
    "/",
    "${aws:username}",
    "${AWS:UserName}",
    "${aws:PrincipalTag/team, 'dflt'}",
    "${test:key}",
    "${*}",
    "${?}",
    "${$}",
    "${",
    "}",
    "${}",
    "${x, bad}",
    "$",
    "{",
    "arn:aws:s3:::b/k",
    "prod",
    "PROD",
];

/// A concatenation of pieces.
fn pieces(u: &mut Unstructured<'_>, list: &[&str]) -> Result<String> {
    let n = u.int_in_range(0..=24u8)?;
    let mut out = String::new();
    for _ in 0..n {
        out.push_str(u.choose(list)?);
    }
    if u.ratio(1, 16u8)? {
        out.push_str(&text(u, CHARS)?);
    }
    Ok(out)
}

/// A resource for an ARN pattern: the pattern with its variables resolved (or not), its
/// wildcards filled in, perhaps changed.
fn instantiate(u: &mut Unstructured<'_>, pattern: &str, ctx: &Ctx) -> Result<String> {
    let mut resolved = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        resolved.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            resolved.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let body = &after[..end];
        let key = body.split(',').next().unwrap_or_default();
        match ctx.reference.get(key) {
            Some(v) if u.arbitrary()? => resolved.push_str(v.first().map_or("", String::as_str)),
            _ => resolved.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    resolved.push_str(rest);
    input_for(u, &resolved, CHARS)
}

// === the context ===

const CONTEXT_KEYS: &[&str] = &[
    "aws:username",
    "AWS:UserName",
    "aws:PrincipalTag/team",
    "aws:principaltag/TEAM",
    "aws:userid",
    "test:key",
    "Test:Key",
    "aws:SourceIp",
];
const CONDITION_KEYS: &[&str] = &[
    "test:Key",
    "aws:username",
    "aws:PrincipalTag/team",
    "TEST:KEY",
];

/// A context and the reference's reading of it.
struct Ctx {
    context: Context,
    reference: reference::Context,
}

impl Ctx {
    fn insert(&mut self, key: &str, values: Vec<String>, single: bool) {
        let value = if single {
            ContextValue::Single(values.first().cloned().unwrap_or_default())
        } else {
            ContextValue::Multi(values.clone())
        };
        self.context.insert(key, value);
        self.reference.insert(key, values, single);
    }
}

fn context(u: &mut Unstructured<'_>) -> Result<Ctx> {
    let mut ctx = Ctx {
        context: Context::new(),
        reference: reference::Context::default(),
    };
    let n = u.int_in_range(0..=4u8)?;
    for _ in 0..n {
        let key = *u.choose(CONTEXT_KEYS)?;
        if u.ratio(3, 4u8)? {
            let v = pieces(u, TEXT_PIECES)?;
            ctx.insert(key, vec![v], true);
        } else {
            let n = u.int_in_range(0..=2u8)?;
            let mut vs = Vec::new();
            for _ in 0..n {
                vs.push(pieces(u, TEXT_PIECES)?);
            }
            ctx.insert(key, vs, false);
        }
    }
    Ok(ctx)
}

/// The reference: each rule as `iam-semantics.md` states it, written for clarity and not
/// for speed, sharing no code with the engine.
mod reference {
    use super::{ShortArn, Token};

    /// A pattern element.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Tok {
        Star,
        One,
        Lit(char),
    }

    impl From<Token> for Tok {
        fn from(t: Token) -> Tok {
            match t {
                Token::Star => Tok::Star,
                Token::One => Tok::One,
                Token::Lit(c) => Tok::Lit(c),
            }
        }
    }

    /// `*` and `?` as wildcards, everything else literal (§2.1: there are no escapes).
    pub fn wild(pattern: &str) -> Vec<Tok> {
        pattern
            .chars()
            .map(|c| match c {
                '*' => Tok::Star,
                '?' => Tok::One,
                c => Tok::Lit(c),
            })
            .collect()
    }

    /// Whether the pattern matches all of `input`: `*` any run of characters, `?` exactly
    /// one, by dynamic programming over characters; `None` past the work budget.
    pub fn glob(pattern: &[Tok], input: &str) -> Option<bool> {
        let s: Vec<char> = input.chars().collect();
        if pattern.len().saturating_mul(s.len() + 1) > super::REFERENCE_BUDGET {
            return None;
        }
        // row[j]: the pattern so far matches the first j characters.
        let mut row = vec![false; s.len() + 1];
        row[0] = true;
        for t in pattern {
            let mut next = vec![false; s.len() + 1];
            for j in 0..=s.len() {
                next[j] = match t {
                    Tok::Star => row[j] || (j > 0 && next[j - 1]),
                    Tok::One => j > 0 && row[j - 1],
                    Tok::Lit(c) => j > 0 && row[j - 1] && s[j - 1] == *c,
                };
            }
            row = next;
        }
        Some(row[s.len()])
    }

    // === actions (§1.3, §2.1) ===

    pub fn valid_action(p: &str) -> bool {
        if p == "*" {
            return true;
        }
        let parts: Vec<&str> = p.split(':').collect();
        let [service, name] = parts.as_slice() else {
            return false;
        };
        !service.is_empty()
            && service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-*?".contains(c))
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_*?".contains(c))
    }

    /// `glob_ci` of the service and of the name, as §2.1's `match_action`.
    pub fn action_matches(pattern: &str, request: &str) -> Option<bool> {
        if pattern == "*" {
            return Some(true);
        }
        let (ps, pn) = pattern.split_once(':')?;
        let (rs, rn) = request.split_once(':')?;
        let lower = |s: &str| s.to_ascii_lowercase();
        Some(glob(&wild(&lower(ps)), &lower(rs))? && glob(&wild(&lower(pn)), &lower(rn))?)
    }

    // === the context and policy variables (§5) ===

    /// Keys and their values, looked up ignoring ASCII case; a later key replaces an
    /// earlier one of the same name.
    #[derive(Debug, Default)]
    pub struct Context(Vec<(String, Vec<String>, bool)>);

    impl Context {
        pub fn insert(&mut self, key: &str, values: Vec<String>, single: bool) {
            match self
                .0
                .iter_mut()
                .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
            {
                Some(entry) => {
                    entry.1 = values;
                    entry.2 = single;
                }
                None => self.0.push((key.to_owned(), values, single)),
            }
        }

        /// The values of a key; a single value is a list of one.
        pub fn get(&self, key: &str) -> Option<&[String]> {
            self.0
                .iter()
                .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v, _)| v.as_slice())
        }

        fn is_list(&self, key: &str) -> bool {
            self.0
                .iter()
                .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
                .is_some_and(|(_, v, single)| !single && v.len() != 1)
        }
    }

    /// A piece of a value with variables.
    #[derive(Debug, Clone)]
    enum Seg {
        Text(char),
        Literal(char),
        Var(String, Option<String>),
    }

    /// Splits policy text at its variables; `Err` for a malformed one (§5: a missing
    /// brace, a default not written `, 'value'`, a space in the name, `${}`).
    fn segments(text: &str) -> Result<Vec<Seg>, ()> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let close = (i + 2..chars.len()).find(|&j| chars[j] == '}').ok_or(())?;
                let body: String = chars[i + 2..close].iter().collect();
                out.push(match body.as_str() {
                    "*" | "?" | "$" => Seg::Literal(body.chars().next().unwrap_or('$')),
                    "" => return Err(()),
                    _ => {
                        let (key, default) = match body.find(',') {
                            None => (body.clone(), None),
                            Some(comma) => {
                                let rest = &body[comma + 1..];
                                if rest.len() >= 3 && rest.starts_with(" '") && rest.ends_with('\'')
                                {
                                    (
                                        body[..comma].to_owned(),
                                        Some(rest[2..rest.len() - 1].to_owned()),
                                    )
                                } else {
                                    return Err(());
                                }
                            }
                        };
                        if key.is_empty()
                            || key
                                .chars()
                                .any(|c| c.is_whitespace() || c == '$' || c == '{')
                        {
                            return Err(());
                        }
                        Seg::Var(key, default)
                    }
                });
                i = close + 1;
            } else {
                out.push(Seg::Text(chars[i]));
                i += 1;
            }
        }
        Ok(out)
    }

    /// A value's characters once resolved, each with whether it came from the policy's
    /// own text (and may be a wildcard or a separator); `None` when a variable has no
    /// value: absent without a default, or a list (§5).
    fn resolve(segs: &[Seg], ctx: &Context) -> Option<Vec<(char, bool)>> {
        let mut out = Vec::new();
        for s in segs {
            match s {
                Seg::Text(c) => out.push((*c, true)),
                Seg::Literal(c) => out.push((*c, false)),
                Seg::Var(key, default) => {
                    let value = match ctx.get(key) {
                        Some(_) if ctx.is_list(key) => return None,
                        Some(vs) => vs.first()?.clone(),
                        None => default.clone()?,
                    };
                    out.extend(value.chars().map(|c| (c, false)));
                }
            }
        }
        Some(out)
    }

    fn tokens(resolved: &[(char, bool)]) -> Vec<Tok> {
        resolved
            .iter()
            .map(|&(c, policy)| match c {
                '*' if policy => Tok::Star,
                '?' if policy => Tok::One,
                c => Tok::Lit(c),
            })
            .collect()
    }

    // === ARNs (§2.2) ===

    /// `arn:` and five more colon-separated parts, the last one the rest of the text.
    pub fn split_arn(text: &str) -> Option<Vec<&str>> {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        (parts.len() == 6 && parts[0] == "arn").then_some(parts)
    }

    /// A `Resource` entry against a request's resource (§2.2 `match_resource`):
    /// `Err` for a pattern that does not compile, `Ok(None)` when the answer depends on
    /// a budget the reference does not spend.
    pub fn resource_matches(
        pattern: &str,
        resource: &str,
        ctx: &Context,
        variables: bool,
        short: ShortArn,
    ) -> Result<Option<bool>, ()> {
        if pattern == "*" {
            return Ok(Some(true));
        }
        let mut parts: Vec<&str> = pattern.splitn(6, ':').collect();
        if !parts[0].eq_ignore_ascii_case("arn") {
            return Err(());
        }
        if variables && parts.iter().take(5).any(|p| p.contains("${")) {
            return Err(());
        }
        let tail = if variables {
            Some(segments(parts.get(5).copied().unwrap_or("*"))?)
        } else {
            None
        };
        if parts.len() < 6 && short == ShortArn::Never {
            return Ok(Some(false));
        }
        while parts.len() < 6 {
            parts.push("*");
        }
        let Some(r) = split_arn(resource) else {
            return Ok(Some(false));
        };
        for i in 0..5 {
            match glob(&wild(parts[i]), r[i]) {
                Some(true) => {}
                Some(false) => return Ok(Some(false)),
                None => return Ok(None),
            }
        }
        let tail = match tail {
            // An entry whose variable has no value matches no resource: the engine
            // answers `None` there, which the caller reads as no match.
            Some(segs) => match resolve(&segs, ctx) {
                Some(resolved) => tokens(&resolved),
                None => return Ok(Some(false)),
            },
            None => wild(parts[5]),
        };
        Ok(glob(&tail, r[5]))
    }

    /// `ArnLike` of a resolved condition value against a request value: both six-part
    /// ARNs, each of the first five parts matched on its own; only the policy's own colons
    /// separate parts (a value substituted for a variable is literal text).
    fn arn_like(value: &[(char, bool)], request: &str) -> Option<bool> {
        let mut parts: Vec<Vec<(char, bool)>> = vec![Vec::new()];
        for &(c, policy) in value {
            if c == ':' && policy && parts.len() < 6 {
                parts.push(Vec::new());
            } else if let Some(last) = parts.last_mut() {
                last.push((c, policy));
            }
        }
        if parts.len() < 6 {
            return Some(false);
        }
        let is_arn = parts[0].iter().map(|(c, _)| *c).eq("arn".chars())
            && parts[0]
                .iter()
                .all(|(c, policy)| !(*policy && (*c == '*' || *c == '?')));
        let Some(r) = split_arn(request) else {
            return Some(false);
        };
        if !is_arn {
            return Some(false);
        }
        for (p, r) in parts.iter().zip(&r) {
            if !glob(&tokens(p), r)? {
                return Some(false);
            }
        }
        Some(true)
    }

    // === conditions (§4) ===

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Base {
        StringEquals,
        StringEqualsIgnoreCase,
        StringLike,
        Numeric(Ord),
        Date(Ord),
        Bool,
        Binary,
        Ip,
        Arn,
        Null,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Ord {
        Eq,
        Lt,
        Le,
        Gt,
        Ge,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Domain {
        Text,
        Arn,
        Number,
        Date,
        Bool,
        Ip,
        Binary,
    }

    impl Base {
        pub fn domain(self) -> Domain {
            match self {
                Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike => {
                    Domain::Text
                }
                Base::Numeric(_) => Domain::Number,
                Base::Date(_) => Domain::Date,
                Base::Bool | Base::Null => Domain::Bool,
                Base::Binary => Domain::Binary,
                Base::Ip => Domain::Ip,
                Base::Arn => Domain::Arn,
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub enum SetOp {
        All,
        Any,
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Op {
        pub set: Option<SetOp>,
        pub base: Base,
        pub negated: bool,
        pub if_exists: bool,
    }

    /// The operator catalogue of §4.2, by name.
    const OPERATORS: &[(&str, Base, bool)] = &[
        ("StringEquals", Base::StringEquals, false),
        ("StringNotEquals", Base::StringEquals, true),
        (
            "StringEqualsIgnoreCase",
            Base::StringEqualsIgnoreCase,
            false,
        ),
        (
            "StringNotEqualsIgnoreCase",
            Base::StringEqualsIgnoreCase,
            true,
        ),
        ("StringLike", Base::StringLike, false),
        ("StringNotLike", Base::StringLike, true),
        ("NumericEquals", Base::Numeric(Ord::Eq), false),
        ("NumericNotEquals", Base::Numeric(Ord::Eq), true),
        ("NumericLessThan", Base::Numeric(Ord::Lt), false),
        ("NumericLessThanEquals", Base::Numeric(Ord::Le), false),
        ("NumericGreaterThan", Base::Numeric(Ord::Gt), false),
        ("NumericGreaterThanEquals", Base::Numeric(Ord::Ge), false),
        ("DateEquals", Base::Date(Ord::Eq), false),
        ("DateNotEquals", Base::Date(Ord::Eq), true),
        ("DateLessThan", Base::Date(Ord::Lt), false),
        ("DateLessThanEquals", Base::Date(Ord::Le), false),
        ("DateGreaterThan", Base::Date(Ord::Gt), false),
        ("DateGreaterThanEquals", Base::Date(Ord::Ge), false),
        ("Bool", Base::Bool, false),
        ("BinaryEquals", Base::Binary, false),
        ("IpAddress", Base::Ip, false),
        ("NotIpAddress", Base::Ip, true),
        ("ArnEquals", Base::Arn, false),
        ("ArnLike", Base::Arn, false),
        ("ArnNotEquals", Base::Arn, true),
        ("ArnNotLike", Base::Arn, true),
        ("Null", Base::Null, false),
    ];

    pub const OPERATOR_NAMES: &[&str] = &[
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Null",
        "StringEqual",
        "Numeric",
        "",
    ];

    /// `[ForAllValues:|ForAnyValue:]Base[IfExists]`, ignoring case (§4.1); `Null` takes no
    /// `IfExists` (§4.4).
    pub fn operator(name: &str) -> Option<Op> {
        let (set, rest) = match name.find(':') {
            None => (None, name),
            Some(i) => {
                let set = match name[..i].to_ascii_lowercase().as_str() {
                    "forallvalues" => SetOp::All,
                    "foranyvalue" => SetOp::Any,
                    _ => return None,
                };
                (Some(set), &name[i + 1..])
            }
        };
        let lower = rest.to_ascii_lowercase();
        let (base, if_exists) = match lower.strip_suffix("ifexists") {
            Some(b) => (b.to_owned(), true),
            None => (lower, false),
        };
        let &(_, base, negated) = OPERATORS
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(&base))?;
        if base == Base::Null && if_exists {
            return None;
        }
        Some(Op {
            set,
            base,
            negated,
            if_exists,
        })
    }

    /// What the reference says of a condition.
    #[derive(Debug)]
    pub enum Verdict {
        /// Its values do not compile.
        Refused,
        Holds(bool),
        /// The reference cannot tell: a date form or an encoding it does not model, or a
        /// match past its budget.
        Unknown,
    }

    /// A condition (§4.7 `cond_one`).
    pub fn condition(
        op: &Op,
        key: &str,
        values: &[String],
        ctx: &Context,
        variables: bool,
    ) -> Verdict {
        match condition_inner(op, key, values, ctx, variables) {
            Err(()) => Verdict::Refused,
            Ok(Some(b)) => Verdict::Holds(b),
            Ok(None) => Verdict::Unknown,
        }
    }

    fn condition_inner(
        op: &Op,
        key: &str,
        values: &[String],
        ctx: &Context,
        variables: bool,
    ) -> Result<Option<bool>, ()> {
        // Base64 is not modelled; a date form the reference does not read cannot be
        // said to compile or not.
        if op.base == Base::Binary
            || (matches!(op.base, Base::Date(_))
                && values.iter().any(|v| matches!(date(v), Date::Unknown)))
        {
            return Ok(None);
        }
        let allows_variables = matches!(
            op.base,
            Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike | Base::Arn
        );
        if variables && !allows_variables && values.iter().any(|v| v.contains("${")) {
            return Err(());
        }
        let vars = variables && allows_variables;
        // Compile: every value must read as the operator's type.
        let mut compiled = Vec::new();
        for v in values {
            compiled.push(compile(op.base, v, vars)?);
        }
        let request = ctx.get(key);
        if op.base == Base::Null {
            let absent = values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            let present = values.iter().any(|v| v.eq_ignore_ascii_case("false"));
            return Ok(Some(if request.is_none() { absent } else { present }));
        }
        let empty = request.is_none_or(|r| r.is_empty());
        if empty && op.if_exists {
            return Ok(Some(true));
        }
        let mut unknown = false;
        let mut base = |r: &str| -> bool {
            let mut hit = false;
            for c in &compiled {
                match compare(op.base, c, r, ctx) {
                    Some(true) => hit = true,
                    Some(false) => {}
                    None => unknown = true,
                }
            }
            hit != op.negated
        };
        let answer = match op.set {
            Some(SetOp::All) => empty || request.is_some_and(|rs| rs.iter().all(|r| base(r))),
            Some(SetOp::Any) => !empty && request.is_some_and(|rs| rs.iter().any(|r| base(r))),
            None => match request {
                None => op.negated,
                Some([]) => op.negated,
                Some([r]) => base(r),
                // A plain operator on a key of several values matches nothing (§4.6).
                Some(_) => false,
            },
        };
        Ok((!unknown).then_some(answer))
    }

    /// A policy value, compiled for its operator.
    #[derive(Debug)]
    enum Value {
        Segs(Vec<Seg>),
        Number(f64),
        Date(Option<i64>),
        Bool(bool),
        Ip(std::net::IpAddr, u8),
        /// Not modelled (base64): the engine is only run.
        Opaque,
        Null,
    }

    fn compile(base: Base, v: &str, vars: bool) -> Result<Value, ()> {
        let segs = |v: &str| -> Result<Vec<Seg>, ()> {
            if vars {
                segments(v)
            } else {
                Ok(v.chars().map(Seg::Text).collect())
            }
        };
        Ok(match base {
            Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike => {
                Value::Segs(segs(v)?)
            }
            Base::Arn => {
                let s = segs(v)?;
                let has_var = s
                    .iter()
                    .any(|s| matches!(s, Seg::Var(..) | Seg::Literal(_)));
                if !has_var
                    && !v
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .eq_ignore_ascii_case("arn")
                    && v != "*"
                {
                    return Err(());
                }
                Value::Segs(s)
            }
            Base::Numeric(_) => Value::Number(number(v).ok_or(())?),
            Base::Date(_) => match date(v) {
                Date::Known(d) => Value::Date(Some(d)),
                Date::Unknown => Value::Date(None),
                Date::Invalid => return Err(()),
            },
            Base::Bool | Base::Null => Value::Bool(boolean(v).ok_or(())?),
            Base::Ip => {
                let (ip, len) = cidr(v).ok_or(())?;
                Value::Ip(ip, len)
            }
            Base::Binary => Value::Opaque,
        })
        .map(|value| {
            if base == Base::Null {
                Value::Null
            } else {
                value
            }
        })
    }

    /// The base comparison of one request value with one policy value; `None` when the
    /// reference cannot tell.
    fn compare(base: Base, policy: &Value, r: &str, ctx: &Context) -> Option<bool> {
        match (base, policy) {
            (Base::StringEquals, Value::Segs(s)) => {
                let Some(p) = resolve(s, ctx) else {
                    return Some(false);
                };
                Some(p.iter().map(|(c, _)| *c).eq(r.chars()))
            }
            (Base::StringEqualsIgnoreCase, Value::Segs(s)) => {
                let Some(p) = resolve(s, ctx) else {
                    return Some(false);
                };
                // Case-insensitive: both sides lowercased a character at a time.
                let lower = |it: &mut dyn Iterator<Item = char>| -> String {
                    it.flat_map(char::to_lowercase).collect()
                };
                Some(lower(&mut p.iter().map(|(c, _)| *c)) == lower(&mut r.chars()))
            }
            (Base::StringLike, Value::Segs(s)) => match resolve(s, ctx) {
                None => Some(false),
                Some(p) => glob(&tokens(&p), r),
            },
            (Base::Arn, Value::Segs(s)) => {
                // The bare `*` (no variable) matches every ARN.
                if s.len() == 1 && matches!(s[0], Seg::Text('*')) {
                    return Some(split_arn(r).is_some());
                }
                match resolve(s, ctx) {
                    None => Some(false),
                    Some(p) => arn_like(&p, r),
                }
            }
            (Base::Numeric(o), Value::Number(p)) => Some(number(r).is_some_and(|x| ord(o, x, *p))),
            (Base::Date(o), Value::Date(p)) => {
                let p = (*p)?;
                match date(r) {
                    Date::Known(x) => Some(ord(o, x, p)),
                    Date::Invalid => Some(false),
                    Date::Unknown => None,
                }
            }
            (Base::Bool, Value::Bool(p)) => Some(boolean(r) == Some(*p)),
            (Base::Ip, Value::Ip(net, len)) => {
                let ip = match r.parse::<std::net::IpAddr>() {
                    Ok(ip) => ip,
                    // A CIDR of a single address names that address.
                    Err(_) => match cidr(r) {
                        Some((ip, l)) if l == if ip.is_ipv4() { 32 } else { 128 } => ip,
                        _ => return Some(false),
                    },
                };
                Some(contains(*net, *len, ip))
            }
            _ => None,
        }
    }

    fn ord<T: PartialOrd>(o: Ord, x: T, p: T) -> bool {
        match o {
            Ord::Eq => x == p,
            Ord::Lt => x < p,
            Ord::Le => x <= p,
            Ord::Gt => x > p,
            Ord::Ge => x >= p,
        }
    }

    /// Integers and decimals, optionally signed (§4.2).
    fn number(s: &str) -> Option<f64> {
        let body = s
            .strip_prefix('-')
            .or_else(|| s.strip_prefix('+'))
            .unwrap_or(s);
        let mut halves = body.split('.');
        let int = halves.next()?;
        let frac = halves.next();
        let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
        if halves.next().is_some() || !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return None;
        }
        s.parse().ok()
    }

    enum Date {
        /// Milliseconds since the epoch.
        Known(i64),
        /// Not a date.
        Invalid,
        /// A form the reference does not model.
        Unknown,
    }

    /// Epoch seconds, `YYYY-MM-DD`, and `YYYY-MM-DDTHH:MM:SS` with `Z` or `±HH:MM`.
    fn date(s: &str) -> Date {
        if !s.chars().any(|c| c.is_ascii_digit()) {
            return Date::Invalid;
        }
        let digits = s.strip_prefix('-').unwrap_or(s);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return match s.parse::<i64>().ok().and_then(|n| n.checked_mul(1000)) {
                Some(ms) => Date::Known(ms),
                None if s.parse::<i64>().is_ok() => Date::Invalid,
                None => Date::Unknown,
            };
        }
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = s.get(r)?;
            t.chars()
                .all(|c| c.is_ascii_digit())
                .then(|| t.parse().ok())?
        };
        let ymd = (|| {
            if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
                return None;
            }
            Some((num(0..4)?, num(5..7)?, num(8..10)?))
        })();
        let Some((y, m, d)) = ymd else {
            return Date::Unknown;
        };
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days_in = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
            return Date::Invalid;
        }
        let days = days_from_civil(y, m, d);
        if b.len() == 10 {
            return Date::Known(days * 86_400_000);
        }
        if b.len() < 19 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return Date::Unknown;
        }
        let (Some(h), Some(mi), Some(sec)) = (num(11..13), num(14..16), num(17..19)) else {
            return Date::Unknown;
        };
        if h > 23 || mi > 59 || sec > 59 {
            return Date::Unknown;
        }
        let offset = match &s[19..] {
            // Without an offset: UTC.
            "" => 0,
            "Z" => 0,
            o if o.len() == 6
                && (o.starts_with('+') || o.starts_with('-'))
                && o.as_bytes()[3] == b':' =>
            {
                let (Some(oh), Some(om)) = (num(20..22), num(23..25)) else {
                    return Date::Unknown;
                };
                if oh > 23 || om > 59 {
                    return Date::Unknown;
                }
                let sign = if o.starts_with('-') { -1 } else { 1 };
                sign * (oh * 3600 + om * 60)
            }
            _ => return Date::Unknown,
        };
        Date::Known(((days * 86_400) + h * 3600 + mi * 60 + sec - offset) * 1000)
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn boolean(s: &str) -> Option<bool> {
        match s.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// An address, or `address/length`; a bare address is `/32` or `/128` (§4.2).
    fn cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
        let (addr, len) = match s.split_once('/') {
            None => (s, None),
            Some((a, l)) => (a, Some(l)),
        };
        let ip: std::net::IpAddr = addr.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) if !l.is_empty() && l.len() <= 3 && l.chars().all(|c| c.is_ascii_digit()) => {
                l.parse::<u8>().ok().filter(|&n| n <= max)?
            }
            Some(_) => return None,
        };
        Some((ip, len))
    }

    fn contains(net: std::net::IpAddr, len: u8, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        match (net, ip) {
            (V4(n), V4(a)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (V6(n), V6(a)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

//! The regions of one variable's value space that a set of atomic predicates distinguish,
//! with one concrete witness value per realisable region.
//!
//! Strings matched by wildcard patterns are regular languages: [`strings`] explores the
//! product of the patterns' automata breadth first over the characters the patterns use
//! plus one fresh character (every other character behaves as that one), recording the
//! shortest witness of each vector "which patterns match". ARNs are matched per segment
//! ([`crate::arn`]), so [`arns`] explores each segment alone and combines the segments.
//! Numbers, dates and addresses are intervals: their witnesses are the breakpoints and a
//! value on each side ([`numbers`], [`dates`], [`addresses`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::arn::{ArnPattern, Head, Tail};
use crate::matcher::{Pattern, Token};

/// Product states one exploration may visit before it gives up (the answer is then
/// incomplete and the caller reports UNKNOWN).
pub const MAX_STATES: usize = 200_000;

/// Witness values for the regions of one variable, and whether they cover every region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witnesses {
    pub values: Vec<String>,
    /// False when a bound stopped the exploration: some region may lack a witness.
    pub complete: bool,
}

/// Characters tried, in order, as the one character no pattern names.
const FRESH: &str = "xzqjkvw0123456789abcdefghilmnoprsuyXZQJKVWABCDEFGHILMNOPRSUY";

/// One shortest string per realisable vector of "which of `patterns` match it". No
/// witness contains a character of `avoid` (an ARN segment holds no `:`).
pub fn strings(patterns: &[Vec<Token>], avoid: &[char], max_states: usize) -> Witnesses {
    strings_from(patterns, avoid, 0, max_states)
}

/// [`strings`] among the strings of at least `min_len` characters (a session's source
/// identity has two): one shortest such string per vector they realise.
pub fn strings_from(
    patterns: &[Vec<Token>],
    avoid: &[char],
    min_len: usize,
    max_states: usize,
) -> Witnesses {
    let mut alphabet: BTreeSet<char> = patterns
        .iter()
        .flatten()
        .filter_map(|t| match t {
            Token::Lit(c) => Some(*c),
            Token::Star | Token::One => None,
        })
        .filter(|c| !avoid.contains(c))
        .collect();
    if let Some(fresh) = FRESH
        .chars()
        .find(|c| !alphabet.contains(c) && !avoid.contains(c))
    {
        alphabet.insert(fresh);
    }
    let nfas: Vec<Nfa<'_>> = patterns.iter().map(|p| Nfa { tokens: p }).collect();
    let start: Vec<Vec<u64>> = nfas.iter().map(Nfa::start).collect();
    // A state is the automata's states and the length so far, counted up to `min_len`:
    // below it, a string that reaches a state seen before may still be the first long
    // enough to realise its vector.
    let mut seen: HashMap<(Vec<Vec<u64>>, usize), ()> = HashMap::new();
    let mut vectors: HashMap<Vec<bool>, ()> = HashMap::new();
    let mut out = Witnesses {
        values: Vec::new(),
        complete: true,
    };
    let mut queue: VecDeque<(Vec<Vec<u64>>, usize, String)> = VecDeque::new();
    seen.insert((start.clone(), 0), ());
    queue.push_back((start, 0, String::new()));
    while let Some((state, len, text)) = queue.pop_front() {
        if len >= min_len {
            let vector: Vec<bool> = nfas.iter().zip(&state).map(|(n, s)| n.accepts(s)).collect();
            if vectors.insert(vector, ()).is_none() {
                out.values.push(text.clone());
            }
        }
        let next_len = (len + 1).min(min_len);
        for &c in &alphabet {
            let next: Vec<Vec<u64>> = nfas.iter().zip(&state).map(|(n, s)| n.step(s, c)).collect();
            let key = (next, next_len);
            if seen.contains_key(&key) {
                continue;
            }
            if seen.len() >= max_states {
                out.complete = false;
                return out;
            }
            let mut t = text.clone();
            t.push(c);
            queue.push_back((key.0.clone(), next_len, t));
            seen.insert(key, ());
        }
    }
    out
}

/// The ARN segment of the service and of the account (0 is `arn`).
pub const SERVICE: usize = 2;
pub const ACCOUNT: usize = 4;

/// A text as the tokens that match it alone.
pub fn literal(text: &str) -> Vec<Token> {
    text.chars().map(Token::Lit).collect()
}

/// The segments of every ARN whose segment `index` matches `tokens`: every other
/// segment `*`.
pub fn only_segment(index: usize, tokens: Vec<Token>) -> [Vec<Token>; 6] {
    let mut segments: [Vec<Token>; 6] = std::array::from_fn(|_| vec![Token::Star]);
    if let Some(slot) = segments.get_mut(index) {
        *slot = tokens;
    }
    segments
}

/// Whether some text matches both `a` and `b` (wildcard token lists): a search over pairs
/// of positions, where a `*` may match nothing or eat the character the other side
/// produces.
pub fn intersects(a: &[Token], b: &[Token]) -> bool {
    let width = b.len() + 1;
    let mut seen = vec![false; (a.len() + 1) * width];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        let Some(slot) = seen.get_mut(i * width + j) else {
            continue;
        };
        if *slot {
            continue;
        }
        *slot = true;
        let (x, y) = (a.get(i), b.get(j));
        if x.is_none() && y.is_none() {
            return true;
        }
        if x == Some(&Token::Star) {
            stack.push((i + 1, j));
            if y.is_some() {
                stack.push((i, j + 1));
            }
        }
        if y == Some(&Token::Star) {
            stack.push((i, j + 1));
            if x.is_some() {
                stack.push((i + 1, j));
            }
        }
        if let (Some(x), Some(y)) = (x, y) {
            let one = match (x, y) {
                (Token::Lit(c), Token::Lit(d)) => c == d,
                (Token::Star, _) | (_, Token::Star) => false,
                _ => true,
            };
            if one {
                stack.push((i + 1, j + 1));
            }
        }
    }
    false
}

/// A pattern's automaton: its states are the positions between tokens.
struct Nfa<'a> {
    tokens: &'a [Token],
}

impl Nfa<'_> {
    fn words(&self) -> usize {
        (self.tokens.len() + 1).div_ceil(64)
    }

    fn start(&self) -> Vec<u64> {
        let mut s = vec![0; self.words()];
        set(&mut s, 0);
        self.close(&mut s);
        s
    }

    /// Adds the positions after every `*` reached (a star matches the empty run).
    fn close(&self, s: &mut [u64]) {
        for (i, t) in self.tokens.iter().enumerate() {
            if *t == Token::Star && get(s, i) {
                set(s, i + 1);
            }
        }
    }

    fn step(&self, s: &[u64], c: char) -> Vec<u64> {
        let mut next = vec![0; self.words()];
        for (i, t) in self.tokens.iter().enumerate() {
            if !get(s, i) {
                continue;
            }
            match t {
                Token::Star => set(&mut next, i),
                Token::One => set(&mut next, i + 1),
                Token::Lit(l) if *l == c => set(&mut next, i + 1),
                Token::Lit(_) => {}
            }
        }
        self.close(&mut next);
        next
    }

    fn accepts(&self, s: &[u64]) -> bool {
        get(s, self.tokens.len())
    }
}

fn set(s: &mut [u64], i: usize) {
    if let Some(w) = s.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

fn get(s: &[u64], i: usize) -> bool {
    s.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// The six segments of an ARN pattern as tokens, as [`ArnPattern::matches`] reads them;
/// `None` for `*`, a pattern that matches nothing, or one with policy variables.
pub fn segments(p: &ArnPattern) -> Option<[Vec<Token>; 6]> {
    let ArnPattern::Parts { head, tail } = p else {
        return None;
    };
    let Tail::Static(tail) = tail else {
        return None;
    };
    let head: [Vec<Token>; 5] = match head {
        Head::Exact(text) => {
            let mut parts = text.split(':').map(|s| s.chars().map(Token::Lit).collect());
            std::array::from_fn(|_| parts.next().unwrap_or_default())
        }
        Head::Parts(parts) => {
            let mut it = parts.iter().map(Pattern::tokens);
            std::array::from_fn(|_| it.next().unwrap_or_default())
        }
    };
    let [a, b, c, d, e] = head;
    Some([a, b, c, d, e, tail.tokens()])
}

/// [`segments`] for a question whose principal and context are fixed (a reverse query):
/// the resource part's policy variables are read from `ctx`, their values literal, as
/// [`ArnPattern::matches`] resolves them. `None` for `*`, a pattern that matches nothing,
/// and one whose variable `ctx` cannot resolve (it matches no resource).
pub fn segments_in(p: &ArnPattern, ctx: &dyn crate::context::Lookup) -> Option<[Vec<Token>; 6]> {
    let ArnPattern::Parts {
        head,
        tail: Tail::Template(t),
    } = p
    else {
        return segments(p);
    };
    let tail = t.resolve_tokens(ctx, true)?;
    let static_head = ArnPattern::Parts {
        head: head.clone(),
        tail: Tail::Static(Pattern::Any),
    };
    let [a, b, c, d, e, _] = segments(&static_head)?;
    Some([a, b, c, d, e, tail])
}

/// Witness ARNs for `patterns` (each given by [`segments`]): one per realisable vector of
/// "which patterns match". A request's ARN always starts `arn:aws:` (the bundle's
/// partition), so the first two segments are fixed and the other four explored alone,
/// then combined, keeping one combination per distinct vector.
pub fn arns(patterns: &[[Vec<Token>; 6]], max_states: usize, max_combinations: usize) -> Witnesses {
    let fixed = ["arn", crate::bundle::PARTITION];
    // Patterns whose fixed segments cannot match take no part.
    let live: Vec<&[Vec<Token>; 6]> = patterns
        .iter()
        .filter(|p| {
            p.iter().zip(fixed).all(|(seg, text)| {
                let toks: Vec<Token> = seg.clone();
                Pattern::from_tokens(toks).matches(text)
            })
        })
        .collect();
    let mut complete = true;
    // Partial combinations: the ARN so far and the vector of patterns still matching.
    let mut partial: Vec<(String, Vec<bool>)> = vec![(fixed.join(":"), vec![true; live.len()])];
    for seg in 2..6 {
        let mut distinct: Vec<Vec<Token>> = Vec::new();
        let mut index: Vec<usize> = Vec::with_capacity(live.len());
        for p in &live {
            let toks = p.get(seg).cloned().unwrap_or_default();
            let at = match distinct.iter().position(|d| *d == toks) {
                Some(i) => i,
                None => {
                    distinct.push(toks);
                    distinct.len() - 1
                }
            };
            index.push(at);
        }
        // The resource part may hold `:`; the first five may not.
        let avoid: &[char] = if seg == 5 { &[] } else { &[':'] };
        let found = strings(&distinct, avoid, max_states);
        complete &= found.complete;
        let compiled: Vec<Pattern> = distinct
            .iter()
            .map(|d| Pattern::from_tokens(d.iter().copied()))
            .collect();
        let mut next: Vec<(String, Vec<bool>)> = Vec::new();
        let mut vectors: HashMap<Vec<bool>, ()> = HashMap::new();
        'outer: for (text, vector) in &partial {
            for w in &found.values {
                let hits: Vec<bool> = compiled.iter().map(|p| p.matches(w)).collect();
                let v: Vec<bool> = vector
                    .iter()
                    .zip(&index)
                    .map(|(&m, &i)| m && hits.get(i).copied().unwrap_or(false))
                    .collect();
                if vectors.insert(v.clone(), ()).is_none() {
                    if next.len() >= max_combinations {
                        complete = false;
                        break 'outer;
                    }
                    next.push((format!("{text}:{w}"), v));
                }
            }
        }
        partial = next;
    }
    Witnesses {
        values: partial.into_iter().map(|(t, _)| t).collect(),
        complete,
    }
}

/// Witness numbers for comparisons against `values`: each value, one between each two,
/// one below and one above.
pub fn numbers(values: &[f64]) -> Witnesses {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let mut out = Vec::new();
    let mut complete = true;
    let push = |x: f64, out: &mut Vec<String>| {
        let text = format!("{x}");
        // The text must read back as the value it stands for.
        if crate::condition::parse_number(&text) == Some(x) {
            out.push(text);
            true
        } else {
            false
        }
    };
    match (sorted.first(), sorted.last()) {
        (Some(&lo), Some(&hi)) => {
            let below = lo - 1.0 - lo.abs();
            let above = hi + 1.0 + hi.abs();
            complete &= below < lo && push(below, &mut out);
            complete &= above > hi && push(above, &mut out);
        }
        _ => {
            push(0.0, &mut out);
        }
    }
    for w in sorted.windows(2) {
        if let [a, b] = w {
            let mid = a / 2.0 + b / 2.0;
            if mid > *a && mid < *b {
                complete &= push(mid, &mut out);
            }
        }
        // Adjacent floats have nothing between them.
    }
    for &v in &sorted {
        complete &= push(v, &mut out);
    }
    out.push("x".into());
    Witnesses {
        values: out,
        complete,
    }
}

/// Witness dates (milliseconds since the epoch, written in RFC 3339) for comparisons
/// against `values`: each, one millisecond on each side, and not a date at all.
pub fn dates(values: &[i64]) -> Witnesses {
    let mut points: BTreeSet<i64> = BTreeSet::new();
    for &v in values {
        points.insert(v);
        points.extend(v.checked_sub(1));
        points.extend(v.checked_add(1));
    }
    if points.is_empty() {
        points.insert(0);
    }
    let mut complete = true;
    let mut out: Vec<String> = Vec::new();
    for ms in points {
        match chrono::DateTime::from_timestamp_millis(ms) {
            Some(d)
                if crate::condition::parse_date(
                    &d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ) == Some(ms) =>
            {
                out.push(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            }
            _ => complete = false,
        }
    }
    out.push("x".into());
    Witnesses {
        values: out,
        complete,
    }
}

/// Witness addresses for membership in `nets`: the start of every range, the address after
/// its end, the lowest address of each family, and something that is not an address.
pub fn addresses(nets: &[IpNet]) -> Witnesses {
    let mut points: BTreeSet<IpAddr> = BTreeSet::new();
    points.insert(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    points.insert(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    for n in nets {
        points.insert(n.network());
        match n.broadcast() {
            IpAddr::V4(b) => {
                if let Some(after) = u32::from(b).checked_add(1) {
                    points.insert(IpAddr::V4(Ipv4Addr::from(after)));
                }
            }
            IpAddr::V6(b) => {
                if let Some(after) = u128::from(b).checked_add(1) {
                    points.insert(IpAddr::V6(Ipv6Addr::from(after)));
                }
            }
        }
    }
    let mut values: Vec<String> = points.into_iter().map(|a| a.to_string()).collect();
    values.push("x".into());
    Witnesses {
        values,
        complete: true,
    }
}

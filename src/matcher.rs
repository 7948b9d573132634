//! Compiled wildcard patterns: `*` matches any run of characters, `?` exactly one.
//!
//! Each pattern is sorted once, when a policy is compiled, into the cheapest way to match it
//! (any / exact / prefix / suffix / contains / general glob), as ripgrep's globset does. The
//! general glob splits on `*` and finds each piece leftmost, which is exact for `*`/`?`
//! patterns and never backtracks: a hostile pattern costs at most O(pattern × input).

use smol_str::SmolStr;

/// One element of a pattern before it is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// A character that matches itself, even if it is `*` or `?` (from `${*}`, `${?}` or a
    /// substituted variable value).
    Lit(char),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Turns pattern text into tokens, reading `*` and `?` as wildcards.
pub fn glob_tokens(text: &str) -> impl Iterator<Item = Token> + '_ {
    text.chars().map(|c| match c {
        '*' => Token::Star,
        '?' => Token::One,
        c => Token::Lit(c),
    })
}

/// Matches resolved tokens against `s` without compiling them first: the form for a
/// pattern built anew for each request (one with policy variables), where compiling cost
/// more than matching (callgrind, BENCHMARKS.md). Greedy with one backtrack point, the
/// last `*`: exact for `*`/`?` patterns, O(pattern × input) at worst, so a long pattern
/// against a long input is compiled and matched piece by piece instead.
pub fn matches_tokens(tokens: &[Token], s: &str) -> bool {
    // Beyond this much work the greedy walk's worst case (pattern × input) matters more
    // than compiling: the compiled pattern searches each piece in one pass.
    if tokens.len().saturating_mul(s.len()) > 1 << 16 {
        return Pattern::from_tokens(tokens.iter().copied()).matches(s);
    }
    let mut p = 0;
    let mut at = 0;
    // After the last `*` seen: the token after it, and where in `s` it may next resume.
    let mut star: Option<(usize, usize)> = None;
    loop {
        let next = s.get(at..).and_then(|rest| rest.chars().next());
        let step = match (tokens.get(p), next) {
            (Some(Token::Star), _) => {
                star = Some((p + 1, at));
                p += 1;
                continue;
            }
            (Some(Token::One), Some(c)) => Some(c),
            (Some(Token::Lit(l)), Some(c)) if *l == c => Some(c),
            (None, None) => return true,
            _ => None,
        };
        match (step, star) {
            (Some(c), _) => {
                p += 1;
                at += c.len_utf8();
            }
            // Mismatch: let the last `*` swallow one more character and retry after it.
            (None, Some((after_star, from))) => {
                let Some(c) = s.get(from..).and_then(|rest| rest.chars().next()) else {
                    return false;
                };
                let resume = from + c.len_utf8();
                star = Some((after_star, resume));
                p = after_star;
                at = resume;
            }
            (None, None) => return false,
        }
    }
}

/// A compiled pattern. Matching is case-sensitive on the text given; callers that want
/// case-insensitive matching (actions) lowercase both sides once.
///
/// The text is a [`SmolStr`]: up to 23 bytes (an action's name, a service, most parts of
/// an ARN) sit inside the pattern itself, so matching a statement in a large snapshot does
/// not take one more cache miss per pattern to reach its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `*`
    Any,
    /// No wildcard.
    Exact(SmolStr),
    /// `abc*`
    Prefix(SmolStr),
    /// `*abc`
    Suffix(SmolStr),
    /// `*abc*`
    Contains(SmolStr),
    /// Anything else.
    Glob(Box<Glob>),
}

/// A general pattern: `first * middle[0] * ... * last`, or just `first` when there was no
/// star. Each piece has a fixed length in characters (`?` counts one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    first: Piece,
    middle: Vec<Piece>,
    /// `None` when the pattern has no `*` at all.
    last: Option<Piece>,
}

/// A run of literal text and `?` with no `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Piece {
    parts: Vec<PiecePart>,
    /// For a middle piece with a `?`: its bit-parallel search (see [`Bitap`]).
    search: Option<Box<Bitap>>,
}

/// The leftmost occurrence of a piece with `?` in it, found in one pass over the input
/// (shift-and, a bit per piece character): trying every position costs input × piece,
/// which a hostile pair makes seconds (`benches/bounds.rs`); this costs input × piece / 64.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bitap {
    /// Characters in the piece.
    len: usize,
    /// Words per mask: `len` bits.
    words: usize,
    /// The positions of `?`: they match any character.
    any: Vec<u64>,
    /// For each character of the piece, sorted, the positions it or a `?` holds.
    masks: Vec<(char, Vec<u64>)>,
}

/// Mask words a [`Bitap`] may hold, at most (512 KiB): beyond, a piece of thousands of
/// characters with hundreds of distinct ones, the search tries each position instead.
const BITAP_WORDS: usize = 1 << 16;

impl Bitap {
    fn new(piece: &Piece) -> Option<Bitap> {
        let chars: Vec<Option<char>> = piece
            .parts
            .iter()
            .flat_map(|p| -> Box<dyn Iterator<Item = Option<char>> + '_> {
                match p {
                    PiecePart::Text(t) => Box::new(t.chars().map(Some)),
                    PiecePart::AnyChars(n) => Box::new(std::iter::repeat_n(None, *n)),
                }
            })
            .collect();
        let len = chars.len();
        let words = len.div_ceil(64);
        let mut distinct: Vec<char> = chars.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if len == 0 || (distinct.len() + 1) * words > BITAP_WORDS {
            return None;
        }
        let set = |mask: &mut Vec<u64>, i: usize| {
            if let Some(w) = mask.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        };
        let mut any = vec![0; words];
        for (i, c) in chars.iter().enumerate() {
            if c.is_none() {
                set(&mut any, i);
            }
        }
        let masks = distinct
            .iter()
            .map(|&d| {
                let mut mask = any.clone();
                for (i, c) in chars.iter().enumerate() {
                    if *c == Some(d) {
                        set(&mut mask, i);
                    }
                }
                (d, mask)
            })
            .collect();
        Some(Bitap {
            len,
            words,
            any,
            masks,
        })
    }

    /// The input after the leftmost occurrence of the piece in `s`.
    fn after<'s>(&self, s: &'s str) -> Option<&'s str> {
        let mut state: smallvec::SmallVec<[u64; 4]> = smallvec::smallvec![0; self.words];
        let last_word = (self.len - 1) / 64;
        let last_bit = 1u64 << ((self.len - 1) % 64);
        for (i, c) in s.char_indices() {
            let mask = match self.masks.binary_search_by(|(d, _)| d.cmp(&c)) {
                Ok(k) => self.masks.get(k).map_or(&self.any, |(_, m)| m),
                Err(_) => &self.any,
            };
            // state = ((state << 1) | 1) & mask, over the words, low bits first.
            let mut carry = 1;
            for (w, m) in state.iter_mut().zip(mask) {
                let next = *w >> 63;
                *w = ((*w << 1) | carry) & m;
                carry = next;
            }
            if state.get(last_word).is_some_and(|w| w & last_bit != 0) {
                return s.get(i + c.len_utf8()..);
            }
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PiecePart {
    Text(Box<str>),
    /// This many `?` in a row.
    AnyChars(usize),
}

impl Piece {
    fn render(&self, one: char, out: &mut String) {
        for part in &self.parts {
            match part {
                PiecePart::Text(t) => out.push_str(t),
                PiecePart::AnyChars(n) => out.extend(std::iter::repeat_n(one, *n)),
            }
        }
    }
}

impl Pattern {
    /// Compiles pattern text where `*` and `?` are wildcards.
    /// The pattern written out with each `*` as `star` and each `?` as `one`: its text
    /// (`"*"`, `'?'`), or, with literal fillers, a string it matches (a witness). A literal
    /// `*` or `?` (from `${*}`) is written as itself.
    pub fn render(&self, star: &str, one: char) -> String {
        match self {
            Pattern::Any => star.to_owned(),
            Pattern::Exact(t) => t.to_string(),
            Pattern::Prefix(t) => format!("{t}{star}"),
            Pattern::Suffix(t) => format!("{star}{t}"),
            Pattern::Contains(t) => format!("{star}{t}{star}"),
            Pattern::Glob(g) => {
                let mut out = String::new();
                g.first.render(one, &mut out);
                for m in &g.middle {
                    out.push_str(star);
                    m.render(one, &mut out);
                }
                if let Some(last) = &g.last {
                    out.push_str(star);
                    last.render(one, &mut out);
                }
                out
            }
        }
    }

    pub fn new(text: &str) -> Pattern {
        // Most pattern text (every part of most ARNs) has no wildcard, or one `*` at an
        // end: classified directly, that is one allocation instead of half a dozen, and
        // it took a third of the instructions off `policy::parse_node` on the corpus
        // (callgrind on `warden eval`, BENCHMARKS.md).
        let plain = |t: &str| !t.contains(['*', '?']);
        if plain(text) {
            return Pattern::Exact(text.into());
        }
        if text == "*" {
            return Pattern::Any;
        }
        if let Some(head) = text.strip_suffix('*')
            && plain(head)
        {
            return Pattern::Prefix(head.into());
        }
        if let Some(tail) = text.strip_prefix('*')
            && plain(tail)
        {
            return Pattern::Suffix(tail.into());
        }
        Pattern::from_tokens(glob_tokens(text))
    }

    /// Compiles a pattern where every character is literal.
    pub fn literal(text: &str) -> Pattern {
        Pattern::Exact(text.into())
    }

    pub fn from_tokens(tokens: impl IntoIterator<Item = Token>) -> Pattern {
        // Split into star-separated pieces, collapsing runs of stars.
        let mut pieces: Vec<Piece> = Vec::new();
        let mut current = PieceBuilder::default();
        let mut prev_star = false;
        for t in tokens {
            match t {
                Token::Star => {
                    if !prev_star {
                        pieces.push(std::mem::take(&mut current).finish());
                    }
                    prev_star = true;
                    continue;
                }
                Token::One => current.push_any(),
                Token::Lit(c) => current.text.push(c),
            }
            prev_star = false;
        }
        pieces.push(current.finish());
        let stars = pieces.len() - 1;
        let plain = |p: &Piece| -> Option<SmolStr> {
            match p.parts.as_slice() {
                [] => Some(SmolStr::default()),
                [PiecePart::Text(t)] => Some(SmolStr::new(t)),
                _ => None,
            }
        };
        match (stars, pieces.as_slice()) {
            (0, [only]) => {
                if let Some(t) = plain(only) {
                    return Pattern::Exact(t);
                }
            }
            (1, [a, b]) => match (plain(a), plain(b)) {
                (Some(a), Some(b)) if a.is_empty() && b.is_empty() => return Pattern::Any,
                (Some(a), Some(b)) if b.is_empty() => return Pattern::Prefix(a),
                (Some(a), Some(b)) if a.is_empty() => return Pattern::Suffix(b),
                _ => {}
            },
            (2, [a, m, b]) if a.parts.is_empty() && b.parts.is_empty() => {
                if let Some(m) = plain(m) {
                    return Pattern::Contains(m);
                }
            }
            _ => {}
        }
        let mut iter = pieces.into_iter();
        let first = iter.next().unwrap_or_default();
        let mut rest: Vec<Piece> = iter.collect();
        let last = rest.pop();
        // Middle pieces are searched for: one with a `?` gets its bit-parallel search.
        for piece in &mut rest {
            if piece
                .parts
                .iter()
                .any(|p| matches!(p, PiecePart::AnyChars(_)))
            {
                piece.search = Bitap::new(piece).map(Box::new);
            }
        }
        Pattern::Glob(Box::new(Glob {
            first,
            middle: rest,
            last,
        }))
    }

    /// The pattern as tokens again (`*`, `?` and literal characters), for tools that
    /// reason about the language a pattern matches (`compare`).
    pub fn tokens(&self) -> Vec<Token> {
        let lits = |t: &str| t.chars().map(Token::Lit).collect::<Vec<_>>();
        match self {
            Pattern::Any => vec![Token::Star],
            Pattern::Exact(t) => lits(t),
            Pattern::Prefix(t) => [lits(t), vec![Token::Star]].concat(),
            Pattern::Suffix(t) => [vec![Token::Star], lits(t)].concat(),
            Pattern::Contains(t) => [vec![Token::Star], lits(t), vec![Token::Star]].concat(),
            Pattern::Glob(g) => {
                let mut out = g.first.tokens();
                for piece in &g.middle {
                    out.push(Token::Star);
                    out.extend(piece.tokens());
                }
                if let Some(last) = &g.last {
                    out.push(Token::Star);
                    out.extend(last.tokens());
                }
                out
            }
        }
    }

    /// Whether the pattern contains no wildcard.
    pub fn is_exact(&self) -> bool {
        matches!(self, Pattern::Exact(_))
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(t) => **t == *s,
            Pattern::Prefix(p) => s.starts_with(&**p),
            Pattern::Suffix(p) => s.ends_with(&**p),
            Pattern::Contains(p) => s.contains(&**p),
            Pattern::Glob(g) => g.matches(s),
        }
    }
}

/// A piece being built: literal text grows in one buffer until a `?` or a `*` closes it,
/// so compiling a pattern costs one allocation per text run, not one per character.
#[derive(Default)]
struct PieceBuilder {
    parts: Vec<PiecePart>,
    text: String,
}

impl PieceBuilder {
    fn flush(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            self.parts.push(PiecePart::Text(text.into_boxed_str()));
        }
    }

    fn push_any(&mut self) {
        self.flush();
        if let Some(PiecePart::AnyChars(n)) = self.parts.last_mut() {
            *n += 1;
        } else {
            self.parts.push(PiecePart::AnyChars(1));
        }
    }

    fn finish(mut self) -> Piece {
        self.flush();
        Piece {
            parts: self.parts,
            search: None,
        }
    }
}

impl Piece {
    fn tokens(&self) -> Vec<Token> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                PiecePart::Text(t) => out.extend(t.chars().map(Token::Lit)),
                PiecePart::AnyChars(n) => out.extend(std::iter::repeat_n(Token::One, *n)),
            }
        }
        out
    }

    /// Length in characters.
    fn char_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                PiecePart::Text(t) => t.chars().count(),
                PiecePart::AnyChars(n) => *n,
            })
            .sum()
    }

    /// Matches the piece at the start of `s`; returns the rest of `s` after it.
    fn match_at<'s>(&self, mut s: &'s str) -> Option<&'s str> {
        for part in &self.parts {
            match part {
                PiecePart::Text(t) => s = s.strip_prefix(&**t)?,
                PiecePart::AnyChars(n) => {
                    let mut it = s.char_indices();
                    for _ in 0..*n {
                        it.next()?;
                    }
                    s = s.get(it.next().map_or(s.len(), |(i, _)| i)..)?;
                }
            }
        }
        Some(s)
    }
}

impl Glob {
    fn matches(&self, s: &str) -> bool {
        let Some(mut rest) = self.first.match_at(s) else {
            return false;
        };
        let Some(last) = &self.last else {
            return rest.is_empty();
        };
        for piece in &self.middle {
            // Leftmost occurrence: taking it never prevents a later piece from matching.
            let found = match (piece.parts.as_slice(), &piece.search) {
                // Plain text: a substring search (two-way), linear in the input, where
                // trying every position costs input × piece for a hostile pair such as
                // `*aaaa…ab*` against `aaaa…` (`benches/bounds.rs`).
                ([PiecePart::Text(t)], _) => rest.find(&**t).and_then(|i| rest.get(i + t.len()..)),
                (_, Some(bitap)) => bitap.after(rest),
                _ => {
                    let mut found = None;
                    for (i, _) in rest.char_indices() {
                        if let Some(after) = rest.get(i..).and_then(|r| piece.match_at(r)) {
                            found = Some(after);
                            break;
                        }
                    }
                    found
                }
            };
            match found {
                Some(after) => rest = after,
                None if piece.parts.is_empty() => {}
                None => return false,
            }
        }
        // The last piece must end the input: it starts `len` characters before the end.
        let len = last.char_len();
        let total = rest.chars().count();
        if total < len {
            return false;
        }
        let start = rest
            .char_indices()
            .nth(total - len)
            .map_or(rest.len(), |(i, _)| i);
        rest.get(start..)
            .and_then(|tail| last.match_at(tail))
            .is_some_and(str::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, input: &str, expected: bool) {
        assert_eq!(
            Pattern::new(pattern).matches(input),
            expected,
            "pattern `{pattern}` against `{input}`"
        );
        let tokens: Vec<Token> = glob_tokens(pattern).collect();
        assert_eq!(
            matches_tokens(&tokens, input),
            expected,
            "tokens of `{pattern}` against `{input}`"
        );
    }

    #[test]
    fn star_matches_any_run_including_empty() {
        check("*", "", true);
        check("*", "anything:at/all", true);
        check("a*", "a", true);
        check("a*", "abc", true);
        check("*c", "abc", true);
        check("a*c", "ac", true);
        check("a*c", "abd", false);
        check("*b*", "abc", true);
        check("*b*", "acd", false);
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        check("?etObject", "GetObject", true);
        check("?etObject", "etObject", false);
        check("a?c", "aéc", true);
        check("a??", "ab", false);
        check("*?", "", false);
        check("*?", "x", true);
    }

    #[test]
    fn general_globs() {
        check("bkt/*/test/*", "bkt/1/2/test/3/x.jpg", true);
        check("bkt/*/test/*", "bkt//test/obj", true);
        check("bkt/*/test/*", "bkt/test/obj", false);
        check("a*b?c*d", "axxbycd", true);
        check("a*b?c*d", "axxbcd", false);
        check("*a*a*a*a*b", &"a".repeat(10_000), false);
        check("x*y", "xy", true);
        check("ab*ba", "aba", false);
    }

    #[test]
    fn patterns_are_classified_once() {
        assert_eq!(Pattern::new("*"), Pattern::Any);
        assert_eq!(Pattern::new("**"), Pattern::Any);
        assert_eq!(Pattern::new("abc"), Pattern::Exact("abc".into()));
        assert_eq!(Pattern::new("ab*"), Pattern::Prefix("ab".into()));
        assert_eq!(Pattern::new("*ab"), Pattern::Suffix("ab".into()));
        assert_eq!(Pattern::new("*ab*"), Pattern::Contains("ab".into()));
        assert!(matches!(Pattern::new("a*b"), Pattern::Glob(_)));
    }

    #[test]
    fn matching_is_case_sensitive_on_the_text_given() {
        // Actions are lowercased on both sides before matching (reference §2.1); resources
        // and condition values are matched as written (§1.6).
        check("getobject", "GetObject", false);
        check("Get*", "getObject", false);
        check("Get*", "GetObject", true);
    }

    #[test]
    fn there_are_no_escapes() {
        check(r"a\*", r"a\bc", true);
        check(r"a\?", r"a\x", true);
        check(r"a\*", "a*", false);
    }

    #[test]
    fn slashes_and_colons_are_ordinary_characters() {
        check("a/*", "a/b/c:d", true);
        check("*:*", "s3:GetObject", true);
        check("*:*", "s3GetObject", false);
        check("?/?", "a//", true);
    }

    #[test]
    fn question_marks_count_characters_not_bytes() {
        check("??", "éé", true);
        check("?", "é", true);
        check("*é?", "aébé", false);
        check("*é?", "aéb", true);
    }

    #[test]
    fn literal_tokens_do_not_act_as_wildcards() {
        let tokens = [Token::Lit('a'), Token::Lit('*')];
        let p = Pattern::from_tokens(tokens);
        assert!(p.matches("a*"));
        assert!(!p.matches("ab"));
        assert!(matches_tokens(&tokens, "a*"));
        assert!(!matches_tokens(&tokens, "ab"));
    }

    /// Long pieces with `?` are found in one pass, and agree with trying every position.
    #[test]
    fn long_pieces_are_searched_in_one_pass_and_agree() {
        let mut rng = oorandom::Rand32::new(5);
        let alphabet = ['a', 'b', 'é'];
        for _ in 0..1000 {
            let mut piece = String::new();
            for _ in 0..rng.rand_range(1..90) {
                piece.push(if rng.rand_range(0..4) == 0 {
                    '?'
                } else {
                    alphabet[rng.rand_range(0..3) as usize]
                });
            }
            let pattern = format!("x*{piece}*y");
            let input: String = std::iter::once('x')
                .chain((0..rng.rand_range(0..900)).map(|_| alphabet[rng.rand_range(0..3) as usize]))
                .chain(std::iter::once('y'))
                .collect();
            let compiled = Pattern::new(&pattern);
            if let Pattern::Glob(g) = &compiled {
                assert!(
                    g.middle
                        .iter()
                        .all(|p| p.search.is_some() || !piece.contains('?'))
                );
            }
            // The reference: the regular-expression reading, by dynamic programming.
            assert_eq!(
                compiled.matches(&input),
                reference(&pattern, &input),
                "`{pattern}` against `{input}`"
            );
            let tokens: Vec<Token> = glob_tokens(&pattern).collect();
            assert_eq!(matches_tokens(&tokens, &input), reference(&pattern, &input));
        }
    }

    /// `*`/`?` matching by dynamic programming over characters: slow and obviously right.
    fn reference(pattern: &str, input: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let s: Vec<char> = input.chars().collect();
        let mut row = vec![false; s.len() + 1];
        row[0] = true;
        for pc in &p {
            let mut next = vec![false; s.len() + 1];
            if *pc == '*' {
                let mut seen = false;
                for j in 0..=s.len() {
                    seen |= row[j];
                    next[j] = seen;
                }
            } else {
                for j in 1..=s.len() {
                    next[j] = row[j - 1] && (*pc == '?' || *pc == s[j - 1]);
                }
            }
            row = next;
        }
        row[s.len()]
    }

    /// The compiled matcher and the token matcher are two readings of one rule; they
    /// must agree on every pattern and input built from a small alphabet.
    #[test]
    fn token_matcher_agrees_with_compiled_patterns() {
        let alphabet = ['a', 'b', 'é', '*', '?'];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        texts.sort();
        texts.dedup();
        let inputs: Vec<&String> = texts.iter().filter(|t| !t.contains(['*', '?'])).collect();
        for pattern in &texts {
            let compiled = Pattern::new(pattern);
            let tokens: Vec<Token> = glob_tokens(pattern).collect();
            // The shortcuts of `new` classify as the general path does.
            assert_eq!(
                compiled,
                Pattern::from_tokens(tokens.iter().copied()),
                "`{pattern}`"
            );
            for input in &inputs {
                assert_eq!(
                    matches_tokens(&tokens, input),
                    compiled.matches(input),
                    "`{pattern}` against `{input}`"
                );
            }
        }
    }
}

//! A small JSON reader that keeps where every value stands (line and column) and keeps
//! every key of an object, duplicates included, in document order.
//!
//! `serde_json` gives neither: it drops positions and silently keeps the last of two equal
//! keys, while IAM's grammar forbids duplicate keys and every finding must name its line and
//! column. Documents are small (a few KiB), so a direct recursive-descent reader is enough.

use std::fmt;

/// Deepest nesting accepted; a policy needs about six levels, so this only stops a hostile
/// document from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// A position in the source text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A JSON value with the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number exactly as written, so `1.50` stays `1.50` when a condition compares text.
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Every member in document order, duplicates kept; each key carries its own position.
    Object(Vec<Member>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A syntax error with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    /// The JSON type name used in messages (`a string`, `an array`, ...).
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.value {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The first member named `key` (exact spelling), for documents already checked for
    /// duplicates.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_object()?
            .iter()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }

    /// The value as compact JSON text, numbers exactly as written and members in document
    /// order (duplicates too).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        let string = |out: &mut String, s: &str| {
            out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
        };
        match &self.value {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(n),
            Value::String(s) => string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(out, &m.key);
                    out.push(':');
                    m.value.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// Converts to a `serde_json::Value` (the last of duplicate keys wins).
    pub fn to_serde(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => items.iter().map(Node::to_serde).collect(),
            Value::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|m| (m.key.clone(), m.value.to_serde()))
                    .collect(),
            ),
        }
    }
}

/// Parses one JSON text; anything but white space after the value is an error.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        src: text.as_bytes(),
        at: 0,
        line: 1,
        column: 0,
        depth: 0,
    };
    p.skip_ws();
    let node = p.value()?;
    p.skip_ws();
    if p.at < p.src.len() {
        return Err(p.error("unexpected text after the end of the JSON value"));
    }
    Ok(node)
}

struct Parser<'a> {
    src: &'a [u8],
    at: usize,
    line: u32,
    /// Characters (not bytes) read on the current line, kept as the reader advances so a
    /// position costs nothing: recounting from the line start made one-line JSONL cases
    /// quadratic (`cargo bench --bench engine`, compile/corpus, see BENCHMARKS.md).
    column: u32,
    depth: usize,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column.saturating_add(1),
        }
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            pos: self.pos(),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        if c == b'\n' {
            self.line += 1;
            self.column = 0;
        } else if (c & 0xC0) != 0x80 {
            // Columns count characters, not bytes, so a message points where an editor
            // does: UTF-8 continuation bytes do not start a character.
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    fn expect_literal(&mut self, word: &str, value: Value, pos: Pos) -> Result<Node, SyntaxError> {
        if self.src.get(self.at..self.at + word.len()) == Some(word.as_bytes()) {
            for _ in 0..word.len() {
                self.bump();
            }
            Ok(Node { pos, value })
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let pos = self.pos();
        match self.peek() {
            None => Err(self.error("unexpected end of input, expected a JSON value")),
            Some(b'{') => self.nested(|p| p.object(pos)),
            Some(b'[') => self.nested(|p| p.array(pos)),
            Some(b'"') => Ok(Node {
                pos,
                value: Value::String(self.string()?),
            }),
            Some(b't') => self.expect_literal("true", Value::Bool(true), pos),
            Some(b'f') => self.expect_literal("false", Value::Bool(false), pos),
            Some(b'n') => self.expect_literal("null", Value::Null, pos),
            Some(b'-' | b'0'..=b'9') => self.number(pos),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Node, SyntaxError>,
    ) -> Result<Node, SyntaxError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn object(&mut self, pos: Pos) -> Result<Node, SyntaxError> {
        self.bump(); // '{'
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Node {
                pos,
                value: Value::Object(members),
            });
        }
        loop {
            self.skip_ws();
            let key_pos = self.pos();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.bump() != Some(b':') {
                return Err(self.error("expected `:` after an object key"));
            }
            self.skip_ws();
            let value = self.value()?;
            members.push(Member {
                key,
                key_pos,
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b'}') => {
                    self.bump();
                    return Ok(Node {
                        pos,
                        value: Value::Object(members),
                    });
                }
                _ => return Err(self.error("expected `,` or `}` in an object")),
            }
        }
    }

    fn array(&mut self, pos: Pos) -> Result<Node, SyntaxError> {
        self.bump(); // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Node {
                pos,
                value: Value::Array(items),
            });
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b']') => {
                    self.bump();
                    return Ok(Node {
                        pos,
                        value: Value::Array(items),
                    });
                }
                _ => return Err(self.error("expected `,` or `]` in an array")),
            }
        }
    }

    fn number(&mut self, pos: Pos) -> Result<Node, SyntaxError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        let int_start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.bump();
        }
        let int_len = self.at - int_start;
        if int_len == 0 || (int_len > 1 && self.src.get(int_start) == Some(&b'0')) {
            return Err(self.error("malformed number"));
        }
        if self.peek() == Some(b'.') {
            self.bump();
            let frac = self.at;
            while let Some(b'0'..=b'9') = self.peek() {
                self.bump();
            }
            if self.at == frac {
                return Err(self.error("malformed number: digits expected after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            let exp = self.at;
            while let Some(b'0'..=b'9') = self.peek() {
                self.bump();
            }
            if self.at == exp {
                return Err(self.error("malformed number: digits expected in the exponent"));
            }
        }
        let text = String::from_utf8_lossy(self.src.get(start..self.at).unwrap_or_default());
        Ok(Node {
            pos,
            value: Value::Number(text.into_owned()),
        })
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.bump(); // opening quote
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            match c {
                b'"' => {
                    self.bump();
                    break;
                }
                b'\\' => {
                    self.bump();
                    let esc = self
                        .bump()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    let ch = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape sequence in a string")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0x00..=0x1F => return Err(self.error("control character inside a string")),
                _ => {
                    // Copy a whole run of plain bytes at once. The run holds no `\n` (a
                    // control character), so only the column moves: by its characters.
                    let rest = self.src.get(self.at..).unwrap_or_default();
                    let len = rest
                        .iter()
                        .position(|&b| matches!(b, b'"' | b'\\' | 0x00..=0x1F))
                        .unwrap_or(rest.len());
                    let run = rest.get(..len).unwrap_or_default();
                    let chars = run.iter().filter(|&&b| (b & 0xC0) != 0x80).count();
                    self.column = self
                        .column
                        .saturating_add(u32::try_from(chars).unwrap_or(u32::MAX));
                    self.at += len;
                    out.extend_from_slice(run);
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not valid UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .bump()
                .and_then(|c| (c as char).to_digit(16))
                .ok_or_else(|| self.error("invalid `\\u` escape"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.bump() != Some(b'\\') || self.bump() != Some(b'u') {
                return Err(self.error("unpaired surrogate in `\\u` escape"));
            }
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.error("unpaired surrogate in `\\u` escape"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid `\\u` escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_values_and_keys() {
        let n = parse("{\n  \"a\": [1, \"x\"],\n  \"b\": true\n}").unwrap();
        let members = n.as_object().unwrap();
        assert_eq!(members[0].key_pos, Pos { line: 2, column: 3 });
        assert_eq!(members[0].value.pos, Pos { line: 2, column: 8 });
        assert_eq!(members[1].value.pos, Pos { line: 3, column: 8 });
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = parse("{\"é😀\": tru}").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 8 });
        let e = parse("[\"é\",\n \"😀\", x]").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 7 });
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let n = parse(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(n.as_object().unwrap().len(), 2);
    }

    #[test]
    fn syntax_errors_name_the_place() {
        let e = parse("{\"a\": [1,]}").unwrap_err();
        assert_eq!(
            e.pos,
            Pos {
                line: 1,
                column: 10
            }
        );
        let e = parse("{\"a\": tru}").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 7 });
        assert!(parse("{} x").is_err());
        assert!(parse("01").is_err());
        assert!(parse("\"\\ud800\"").is_err());
    }

    #[test]
    fn escapes_and_unicode() {
        let n = parse(r#""a\"b\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(n.as_str(), Some("a\"bé😀"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&text).unwrap_err().message.contains("nesting"));
    }
}

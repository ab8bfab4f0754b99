//! A parser for the Python literals negmas writes into its log cells (`repr` of tuples, lists,
//! dicts, sets, `None`, `True`/`False`, ints, floats incl. `inf`/`nan`, strings, `set()`).
//!
//! Two ways to use it: [`parse`] builds a [`Value`] tree that borrows the input's strings, and
//! [`Parser`] walks a cell piece by piece ([`Parser::list`], [`Parser::dict`],
//! [`Parser::skip_value`]) so a caller can pull a few fields out of a large cell without
//! allocating for the rest. Errors carry the byte offset; nothing panics on any input.

use std::borrow::Cow;
use std::fmt;

use crate::error::LogProblem;

/// A parsed Python literal. Strings borrow from the input unless they contain escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// An integer literal beyond i64, as written (digits only, sign kept).
    BigInt(Cow<'a, str>),
    Float(f64),
    Str(Cow<'a, str>),
    Tuple(Vec<Value<'a>>),
    List(Vec<Value<'a>>),
    Set(Vec<Value<'a>>),
    Dict(Vec<(Value<'a>, Value<'a>)>),
}

impl Value<'_> {
    /// The number as `f64` for `Int`, `BigInt` (nearest), `Float` and `Bool`, else `None`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::BigInt(digits) => digits.parse().ok(),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// The items of a tuple, list or set.
    pub fn items(&self) -> Option<&[Self]> {
        match self {
            Value::Tuple(v) | Value::List(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    /// The string of a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Where and why a literal could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Byte offset into the parsed text.
    pub offset: usize,
    /// [`LogProblem::Syntax`] for text that is not a literal; other kinds for values that are
    /// read but impossible (set by the callers that check them).
    pub kind: LogProblem,
    pub reason: String,
}

impl ParseError {
    /// A syntax error at `offset`.
    pub fn syntax(offset: usize, reason: impl Into<String>) -> Self {
        Self {
            offset,
            kind: LogProblem::Syntax,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

pub type Result<T> = std::result::Result<T, ParseError>;

/// Parses one complete literal (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value<'_>> {
    let mut parser = Parser::new(text);
    let value = parser.value()?;
    parser.finish()?;
    Ok(value)
}

/// A cursor over a literal's text.
pub struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

const MAX_DEPTH: usize = 256;

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// The current byte offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// An error at the current offset.
    pub fn error(&self, reason: impl Into<String>) -> ParseError {
        ParseError::syntax(self.pos, reason)
    }

    /// Checks that only whitespace is left.
    pub fn finish(&mut self) -> Result<()> {
        self.ws();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error("unexpected trailing text"))
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next non-space byte, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{}'", byte as char)))
        }
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        match self.bytes.get(self.pos) {
            None => self.error(format!("truncated literal: expected {wanted}")),
            Some(&b) => self.error(format!(
                "expected {wanted}, found '{}'",
                char::from(b).escape_default()
            )),
        }
    }

    /// Parses the next value into a tree.
    pub fn value(&mut self) -> Result<Value<'a>> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value<'a>> {
        if depth > MAX_DEPTH {
            return Err(self.error("literal nested too deeply"));
        }
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let (items, trailing_comma) = self.sequence(b')', depth)?;
                Ok(if items.len() == 1 && !trailing_comma {
                    // `(x)` is just `x`.
                    items.into_iter().next().unwrap_or(Value::None)
                } else {
                    Value::Tuple(items)
                })
            }
            Some(b'[') => {
                self.pos += 1;
                Ok(Value::List(self.sequence(b']', depth)?.0))
            }
            Some(b'{') => {
                self.pos += 1;
                self.brace(depth)
            }
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => self.number(),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.word(depth),
            _ => Err(self.unexpected("a value")),
        }
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<(Vec<Value<'a>>, bool)> {
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            if self.eat(close) {
                return Ok((items, trailing_comma));
            }
            items.push(self.value_at(depth + 1)?);
            trailing_comma = self.eat(b',');
            if !trailing_comma && self.peek() != Some(close) {
                return Err(self.unexpected(&format!("',' or '{}'", close as char)));
            }
        }
    }

    fn brace(&mut self, depth: usize) -> Result<Value<'a>> {
        if self.eat(b'}') {
            return Ok(Value::Dict(Vec::new()));
        }
        let first = self.value_at(depth + 1)?;
        if self.eat(b':') {
            let mut pairs = vec![(first, self.value_at(depth + 1)?)];
            loop {
                if self.eat(b'}') {
                    return Ok(Value::Dict(pairs));
                }
                self.expect(b',')?;
                if self.eat(b'}') {
                    return Ok(Value::Dict(pairs));
                }
                let key = self.value_at(depth + 1)?;
                self.expect(b':')?;
                pairs.push((key, self.value_at(depth + 1)?));
            }
        }
        let mut items = vec![first];
        loop {
            if self.eat(b'}') {
                return Ok(Value::Set(items));
            }
            self.expect(b',')?;
            if self.eat(b'}') {
                return Ok(Value::Set(items));
            }
            items.push(self.value_at(depth + 1)?);
        }
    }

    /// `None`, `True`, `False`, `inf`, `nan`, `set()`, `frozenset(...)`, or a numeric wrapper
    /// like `np.float64(1.5)` (read as the number inside).
    fn word(&mut self, depth: usize) -> Result<Value<'a>> {
        let start = self.pos;
        while let Some(b) = self.bytes.get(self.pos) {
            if b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let word = &self.text[start..self.pos];
        match word {
            "None" => return Ok(Value::None),
            "True" => return Ok(Value::Bool(true)),
            "False" => return Ok(Value::Bool(false)),
            "inf" => return Ok(Value::Float(f64::INFINITY)),
            "nan" => return Ok(Value::Float(f64::NAN)),
            _ => {}
        }
        if !self.eat(b'(') {
            self.pos = start;
            return Err(self.error(format!("unknown name '{word}'")));
        }
        let inner = if self.peek() == Some(b')') {
            None
        } else {
            Some(self.value_at(depth + 1)?)
        };
        self.expect(b')')?;
        match (word, inner) {
            ("set" | "frozenset", None) => Ok(Value::Set(Vec::new())),
            ("set" | "frozenset", Some(v)) => match v {
                Value::Tuple(items) | Value::List(items) | Value::Set(items) => {
                    Ok(Value::Set(items))
                }
                Value::Dict(pairs) => Ok(Value::Set(pairs.into_iter().map(|(k, _)| k).collect())),
                _ => Err(ParseError::syntax(
                    start,
                    format!("{word}() of a non-iterable"),
                )),
            },
            (
                _,
                Some(v @ (Value::Int(_) | Value::BigInt(_) | Value::Float(_) | Value::Bool(_))),
            ) if is_numeric_type(word) => Ok(v),
            _ => Err(ParseError::syntax(
                start,
                format!("unsupported call '{word}(...)'"),
            )),
        }
    }

    fn number(&mut self) -> Result<Value<'a>> {
        let start = self.pos;
        let mut is_float = false;
        if let Some(b'-' | b'+') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        if self.text[self.pos..].starts_with("inf") {
            self.pos += 3;
            let neg = self.bytes[start] == b'-';
            return Ok(Value::Float(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }));
        }
        if self.text[self.pos..].starts_with("nan") {
            self.pos += 3;
            return Ok(Value::Float(f64::NAN));
        }
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'0'..=b'9' | b'_' => {}
                b'.' | b'e' | b'E' => is_float = true,
                b'-' | b'+' if matches!(self.bytes[self.pos - 1], b'e' | b'E') => {}
                _ => break,
            }
            self.pos += 1;
        }
        let digits = &self.text[start..self.pos];
        let clean: Cow<str> = if digits.contains('_') {
            Cow::Owned(digits.replace('_', ""))
        } else {
            Cow::Borrowed(digits)
        };
        let bad = || ParseError::syntax(start, format!("malformed number '{digits}'"));
        if !clean.bytes().any(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if !is_float {
            return match clean.parse::<i64>() {
                Ok(i) => Ok(Value::Int(i)),
                // Only digits (and a sign) here: the literal is an integer beyond i64.
                Err(_)
                    if clean
                        .trim_start_matches(['-', '+'])
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
                {
                    Ok(Value::BigInt(clean))
                }
                Err(_) => Err(bad()),
            };
        }
        clean.parse::<f64>().map(Value::Float).map_err(|_| bad())
    }

    /// Parses a quoted string (single or double quotes, Python escapes).
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.unexpected("a string")),
        };
        let start = self.pos + 1;
        // Fast path: most strings (dict keys, agent ids) are short and have no escapes.
        let rest = &self.bytes[start..];
        if let Some(k) = find2_short(&rest[..rest.len().min(SHORT_STRING)], quote, b'\\') {
            if rest[k] == quote {
                self.pos = start + k + 1;
                return Ok(Cow::Borrowed(&self.text[start..start + k]));
            }
        }
        self.long_string(quote, start)
    }

    /// The rest of [`Parser::string`]: a string of more than [`SHORT_STRING`] bytes or with
    /// escapes, whose text starts at `start`.
    #[inline(never)]
    fn long_string(&mut self, quote: u8, start: usize) -> Result<Cow<'a, str>> {
        match memchr::memchr2(quote, b'\\', &self.bytes[start..]) {
            Some(k) if self.bytes[start + k] == quote => {
                self.pos = start + k + 1;
                return Ok(Cow::Borrowed(&self.text[start..start + k]));
            }
            Some(k) => self.pos = start + k,
            None => self.pos = self.bytes.len(),
        }
        if self.pos >= self.bytes.len() {
            return Err(ParseError::syntax(
                start - 1,
                "truncated literal: unterminated string",
            ));
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(ParseError::syntax(
                    start - 1,
                    "truncated literal: unterminated string",
                ));
            };
            if b == quote {
                self.pos += 1;
                return Ok(Cow::Owned(out));
            }
            if b == b'\\' {
                self.pos += 1;
                self.escape(&mut out)?;
            } else {
                // Copy one whole UTF-8 character.
                let ch_len = utf8_len(b);
                let end = (self.pos + ch_len).min(self.bytes.len());
                out.push_str(self.text.get(self.pos..end).unwrap_or("\u{FFFD}"));
                self.pos = end;
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<()> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.error("truncated literal: unterminated escape"));
        };
        self.pos += 1;
        let simple = match b {
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'0' => Some('\0'),
            b'a' => Some('\u{07}'),
            b'b' => Some('\u{08}'),
            b'f' => Some('\u{0C}'),
            b'v' => Some('\u{0B}'),
            b'\n' => return Ok(()),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(());
        }
        let width = match b {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => {
                // Python keeps unknown escapes verbatim.
                out.push('\\');
                self.pos -= 1;
                return Ok(());
            }
        };
        let hex = self
            .text
            .get(self.pos..self.pos + width)
            .ok_or_else(|| self.error("truncated literal: short escape"))?;
        let code = u32::from_str_radix(hex, 16).map_err(|_| self.error("malformed escape"))?;
        out.push(char::from_u32(code).ok_or_else(|| self.error("escape is not a character"))?);
        self.pos += width;
        Ok(())
    }

    /// Skips the next value without building it.
    pub fn skip_value(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'(' | b'[' | b'{') => {
                let mut closers = [0u8; MAX_DEPTH];
                let mut depth = 0usize;
                loop {
                    match self.bytes.get(self.pos) {
                        None => return Err(self.error("truncated literal: unclosed bracket")),
                        Some(&open @ (b'(' | b'[' | b'{')) => {
                            if depth == MAX_DEPTH {
                                return Err(self.error("literal nested too deeply"));
                            }
                            closers[depth] = match open {
                                b'(' => b')',
                                b'[' => b']',
                                _ => b'}',
                            };
                            depth += 1;
                            self.pos += 1;
                        }
                        Some(&close @ (b')' | b']' | b'}')) => {
                            depth -= 1;
                            if closers[depth] != close {
                                return Err(self.error(format!("mismatched '{}'", close as char)));
                            }
                            self.pos += 1;
                            if depth == 0 {
                                return Ok(());
                            }
                        }
                        Some(b'\'' | b'"') => {
                            self.string()?;
                        }
                        Some(_) => {
                            self.pos += 1;
                            while self.pos < self.bytes.len()
                                && !SPECIAL[self.bytes[self.pos] as usize]
                            {
                                self.pos += 1;
                            }
                        }
                    }
                }
            }
            Some(b'\'' | b'"') => self.string().map(|_| ()),
            Some(b) if TOKEN[b as usize] => {
                // A scalar (number, None, True, ...) or a call like `set()`: skipped unchecked.
                while self.pos < self.bytes.len() && TOKEN[self.bytes[self.pos] as usize] {
                    self.pos += 1;
                }
                if self.bytes.get(self.pos) == Some(&b'(') {
                    self.skip_value()?;
                }
                Ok(())
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    /// Walks a list or tuple, calling `item` once per element with the cursor on it; `item`
    /// must consume exactly one value.
    pub fn list(&mut self, mut item: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        let close = match self.peek() {
            Some(b'[') => b']',
            Some(b'(') => b')',
            _ => return Err(self.unexpected("a list or tuple")),
        };
        self.pos += 1;
        loop {
            if self.eat(close) {
                return Ok(());
            }
            item(self)?;
            if !self.eat(b',') && self.peek() != Some(close) {
                return Err(self.unexpected(&format!("',' or '{}'", close as char)));
            }
        }
    }

    /// Walks a dict with string keys, calling `entry(parser, key)` with the cursor on each
    /// value; `entry` must consume exactly one value.
    pub fn dict(&mut self, mut entry: impl FnMut(&mut Self, &str) -> Result<()>) -> Result<()> {
        self.expect(b'{')?;
        loop {
            if self.eat(b'}') {
                return Ok(());
            }
            let key = self.string()?;
            // negmas writes `'key': value`: the colon right after the key is the common case.
            if self.bytes.get(self.pos) == Some(&b':') {
                self.pos += 1;
            } else {
                self.expect(b':')?;
            }
            entry(self, &key)?;
            if !self.eat(b',') && self.peek() != Some(b'}') {
                return Err(self.unexpected("',' or '}'"));
            }
        }
    }

    /// Reads a tuple of three plain non-negative numbers `(a, b, c)`, the usual shape of an SCML
    /// offer, without building a tree: `a` and `b` integers of at most 18 digits (so they fit
    /// i64), `c` digits with an optional fraction. Anything else (signs, exponents, `nan`, more
    /// digits, other items) leaves the cursor where it was and gives `None`, for [`Parser::value`].
    pub fn plain_triple(&mut self) -> Option<(i64, i64, f64)> {
        let start = self.pos;
        let triple = self.triple();
        if triple.is_none() {
            self.pos = start;
        }
        triple
    }

    fn triple(&mut self) -> Option<(i64, i64, f64)> {
        if !self.eat(b'(') {
            return None;
        }
        let a = self.plain_int()?;
        if !self.eat(b',') {
            return None;
        }
        let b = self.plain_int()?;
        if !self.eat(b',') {
            return None;
        }
        self.ws();
        let start = self.pos;
        let whole = self.digits();
        let c = if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.digits();
            if whole == 0 || matches!(self.bytes.get(self.pos), Some(b'e' | b'E' | b'_')) {
                return None;
            }
            self.text[start..self.pos].parse().ok()?
        } else {
            self.pos = start;
            self.plain_int()? as f64
        };
        self.eat(b')').then_some((a, b, c))
    }

    /// Up to 18 digits not followed by a fraction, exponent or `_`.
    fn plain_int(&mut self) -> Option<i64> {
        self.ws();
        let start = self.pos;
        let n = self.digits();
        if n == 0 || n > 18 || matches!(self.bytes.get(self.pos), Some(b'.' | b'e' | b'E' | b'_')) {
            return None;
        }
        Some(
            self.bytes[start..self.pos]
                .iter()
                .fold(0i64, |v, d| v * 10 + i64::from(d - b'0')),
        )
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Reads `None` if it comes next.
    pub fn none(&mut self) -> bool {
        if self.peek() == Some(b'N') && self.text[self.pos..].starts_with("None") {
            self.pos += 4;
            true
        } else {
            false
        }
    }
}

/// NumPy scalar reprs (`np.float64(1.5)`) and `float(...)`/`int(...)`.
fn is_numeric_type(word: &str) -> bool {
    let name = word.rsplit('.').next().unwrap_or(word);
    matches!(
        name,
        "float" | "int" | "bool_" | "float16" | "float32" | "float64" | "float128" | "longdouble"
    ) || (name.starts_with("int") || name.starts_with("uint"))
        && name
            .trim_start_matches('u')
            .trim_start_matches("int")
            .parse::<u8>()
            .is_ok()
}

/// Bytes of a string looked at by [`find2_short`] before `memchr` takes over.
const SHORT_STRING: usize = 24;

/// The first position of `a` or `b` in a short `hay`, eight bytes per step (SWAR: a byte equal
/// to the pattern becomes zero after the xor, and `(x - 0x01..) & !x & 0x80..` flags the lowest
/// zero byte exactly; flags above it may be false, and only the lowest is used).
#[inline]
fn find2_short(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (pa, pb) = (LO * u64::from(a), LO * u64::from(b));
    let mut words = hay.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let x = u64::from_le_bytes(word.try_into().expect("chunks_exact gives 8 bytes"));
        let (xa, xb) = (x ^ pa, x ^ pb);
        let hits = (xa.wrapping_sub(LO) & !xa | xb.wrapping_sub(LO) & !xb) & HI;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == a || c == b)
        .map(|k| at + k)
}

/// Bytes the bracket skipper must look at.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let specials = *b"()[]{}'\"";
    let mut i = 0;
    while i < specials.len() {
        t[specials[i] as usize] = true;
        i += 1;
    }
    t
};

/// Bytes of a scalar token (numbers, names, dotted names).
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-' || c == b'+';
        b += 1;
    }
    t
};

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value<'_> {
        Value::Str(Cow::Borrowed(text))
    }

    #[test]
    fn scalars() {
        assert_eq!(parse("None").unwrap(), Value::None);
        assert_eq!(parse(" True ").unwrap(), Value::Bool(true));
        assert_eq!(parse("False").unwrap(), Value::Bool(false));
        assert_eq!(parse("-12").unwrap(), Value::Int(-12));
        assert_eq!(parse("1_000").unwrap(), Value::Int(1000));
        assert_eq!(
            parse("0.047619047619047616").unwrap(),
            Value::Float(0.047619047619047616)
        );
        assert_eq!(parse("1e-05").unwrap(), Value::Float(1e-5));
        assert_eq!(parse("-2.5E+3").unwrap(), Value::Float(-2500.0));
        assert_eq!(parse("inf").unwrap(), Value::Float(f64::INFINITY));
        assert_eq!(parse("-inf").unwrap(), Value::Float(f64::NEG_INFINITY));
        assert!(parse("nan").unwrap().as_f64().unwrap().is_nan());
        assert_eq!(
            parse("123456789012345678901234").unwrap(),
            Value::BigInt(Cow::Borrowed("123456789012345678901234"))
        );
        assert_eq!(
            parse("-9223372036854775809").unwrap(),
            Value::BigInt(Cow::Borrowed("-9223372036854775809"))
        );
        assert_eq!(parse("-9223372036854775808").unwrap(), Value::Int(i64::MIN));
        assert_eq!(parse("np.float64(1.5)").unwrap(), Value::Float(1.5));
        assert_eq!(parse("np.int64(3)").unwrap(), Value::Int(3));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(parse("'04Gr@1'").unwrap(), s("04Gr@1"));
        assert_eq!(parse("\"it's\"").unwrap(), s("it's"));
        assert_eq!(
            parse(r"'a\'b\\c\n\x41\u00e9'").unwrap(),
            Value::Str(Cow::Owned("a'b\\c\nAé".into()))
        );
        assert_eq!(
            parse("'héllo \\t'").unwrap(),
            Value::Str(Cow::Owned("héllo \t".into()))
        );
        assert_eq!(
            parse(r"'\d'").unwrap(),
            Value::Str(Cow::Owned("\\d".into()))
        );
    }

    #[test]
    fn containers() {
        assert_eq!(
            parse("(3, 0, 14)").unwrap(),
            Value::Tuple(vec![Value::Int(3), Value::Int(0), Value::Int(14)])
        );
        assert_eq!(parse("()").unwrap(), Value::Tuple(vec![]));
        assert_eq!(parse("(1,)").unwrap(), Value::Tuple(vec![Value::Int(1)]));
        assert_eq!(parse("(1)").unwrap(), Value::Int(1));
        assert_eq!(parse("[]").unwrap(), Value::List(vec![]));
        assert_eq!(
            parse("[1, 'a',]").unwrap(),
            Value::List(vec![Value::Int(1), s("a")])
        );
        assert_eq!(parse("{}").unwrap(), Value::Dict(vec![]));
        assert_eq!(parse("set()").unwrap(), Value::Set(vec![]));
        assert_eq!(
            parse("{1, 2}").unwrap(),
            Value::Set(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(parse("frozenset({'a'})").unwrap(), Value::Set(vec![s("a")]));
        let parsed = parse("{'04Gr@1': [(3, 0, 14)], '01ASS0@0': []}").unwrap();
        assert_eq!(
            parsed,
            Value::Dict(vec![
                (
                    s("04Gr@1"),
                    Value::List(vec![Value::Tuple(vec![
                        Value::Int(3),
                        Value::Int(0),
                        Value::Int(14)
                    ])])
                ),
                (s("01ASS0@0"), Value::List(vec![])),
            ])
        );
        assert_eq!(
            parse("[('01ASS0@0', None)]").unwrap(),
            Value::List(vec![Value::Tuple(vec![s("01ASS0@0"), Value::None])])
        );
    }

    #[test]
    fn malformed_and_truncated_inputs_are_errors_not_panics() {
        let bad = [
            "",
            "(",
            "(1, 2",
            "[1 2]",
            "{'a' 1}",
            "{'a': }",
            "'abc",
            "'ab\\",
            "'\\x4'",
            "Nonsense",
            "foo(1)",
            "set(1)",
            "1.2.3",
            "-",
            ".",
            "(1, 2))",
            "[{'a': (1, 2}]",
            "\u{e9}",
        ];
        for text in bad {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
        let err = parse("[(1, 2), (3, ").unwrap_err();
        assert!(err.reason.contains("truncated"), "{err}");
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
        // Every prefix of a real cell is either an error or (for the full text) a value.
        let cell = "[{'step': 0, 'new_offers': [('a', (1, 2, 3))], 'x': set(), 'y': 'q\\'z'}]";
        for end in 0..cell.len() {
            if cell.is_char_boundary(end) {
                assert!(parse(&cell[..end]).is_err(), "prefix {end} parsed");
            }
        }
        assert!(parse(cell).is_ok());
    }

    #[test]
    fn plain_triples_are_read_directly_or_left_for_the_tree() {
        for (text, expected) in [
            ("(3, 0, 14)", Some((3, 0, 14.0))),
            ("( 3 ,0,  14.25 )", Some((3, 0, 14.25))),
            ("(3, 0, 14.)", Some((3, 0, 14.0))),
            ("(3, 0, -14)", None),
            ("(3, 0, 1e3)", None),
            ("(3.0, 0, 14)", None),
            ("(3, 0, nan)", None),
            ("(3, 0, 14,)", None),
            ("(3, 0)", None),
            ("(1234567890123456789, 0, 1)", None),
            ("(3, 0, 12345678901234567890)", None),
            ("(3, 0, .5)", None),
        ] {
            let mut p = Parser::new(text);
            assert_eq!(p.plain_triple(), expected, "{text}");
            if expected.is_none() {
                assert_eq!(p.offset(), 0, "{text}");
            }
        }
    }

    #[test]
    fn short_finds_match_a_bytewise_search() {
        let hays: [&[u8]; 6] = [
            b"",
            b"'",
            b"abc",
            b"abcdefgh'",
            b"abcdefg\\ij'kl",
            b"\x80\xff'\x00abcdefghijklmn",
        ];
        for hay in hays {
            for start in 0..hay.len().max(1) {
                let h = &hay[start.min(hay.len())..];
                let want = h.iter().position(|&c| c == b'\'' || c == b'\\');
                assert_eq!(find2_short(h, b'\'', b'\\'), want, "{h:?}");
            }
        }
        let long: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        for start in 0..300 {
            let h = &long[start..start + 24];
            let want = h.iter().position(|&c| c == b'"' || c == b'\\');
            assert_eq!(find2_short(h, b'"', b'\\'), want);
        }
    }

    #[test]
    fn walkers_skip_what_they_do_not_need() {
        let cell = "[{'a': {'deep': [1, (2, '3)]')]}, 'step': 4, 'b': \"x}\"}, {'step': 5}]";
        let mut steps = Vec::new();
        let mut p = Parser::new(cell);
        p.list(|p| {
            p.dict(|p, key| {
                if key == "step" {
                    steps.push(p.value()?);
                    Ok(())
                } else {
                    p.skip_value()
                }
            })
        })
        .unwrap();
        p.finish().unwrap();
        assert_eq!(steps, vec![Value::Int(4), Value::Int(5)]);
        let mut p = Parser::new("[{'a': (1, 2}]");
        assert!(p.list(|p| p.dict(|p, _| p.skip_value())).is_err());
    }
}

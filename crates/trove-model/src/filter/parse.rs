//! The text parser: recursive descent straight over the characters (the grammar is in the module documentation of
//! `filter`), so every error knows its column.

use super::{Builtin, CompareOp, Field, Filter, FilterError, FilterValue};

/// Parentheses and `not`s nest at most this deep: a bound on the recursion, far beyond any real filter.
const MAX_DEPTH: usize = 200;

pub(super) fn parse(input: &str) -> Result<Filter, FilterError> {
    let mut p = Parser { input, chars: input.chars().collect(), pos: 0, depth: 0 };
    p.skip_ws();
    if p.at_end() {
        return Ok(Filter::True);
    }
    let filter = p.or(None)?;
    p.skip_ws();
    match p.peek() {
        None => Ok(filter),
        Some(')') => Err(p.error("unmatched ')'")),
        Some(_) => Err(p.error(format!("expected 'and', 'or' or the end of the filter{}", p.found()))),
    }
}

/// A field alone (`temperature`, `sample."T (K)"`, `@created`), as `--sort` takes it.
pub(super) fn parse_field(input: &str) -> Result<Field, FilterError> {
    let mut p = Parser { input, chars: input.chars().collect(), pos: 0, depth: 0 };
    p.skip_ws();
    if !p.at_field() {
        return Err(p.error(format!("expected a key or an @field{}", p.found())));
    }
    let field = p.field()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error(format!("expected the end of the key{}", p.found())));
    }
    Ok(field)
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

impl Parser<'_> {
    // ---- scanning ----

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// The word (letters, digits, `_`, `-`) starting at the current position, possibly empty.
    fn word_len(&self) -> usize {
        self.chars[self.pos..].iter().take_while(|c| is_word_char(**c)).count()
    }

    fn word(&self) -> String {
        self.chars[self.pos..self.pos + self.word_len()].iter().collect()
    }

    /// Whether the next word is the keyword `kw` (case-insensitive, and a whole word: `android` is not `and`).
    fn at_keyword(&self, kw: &str) -> bool {
        self.word().eq_ignore_ascii_case(kw)
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        let hit = self.at_keyword(kw);
        if hit {
            self.pos += kw.chars().count();
        }
        hit
    }

    /// What is at the current position, to end a message: `, found 'word'`, `, found '#'`, or nothing at the end
    /// of the filter (the caret past the last character says it).
    fn found(&self) -> String {
        match self.peek() {
            None => String::new(),
            Some(c) if is_word_char(c) => format!(", found '{}'", self.word()),
            Some(c) => format!(", found '{c}'"),
        }
    }

    fn error(&self, message: impl Into<String>) -> FilterError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> FilterError {
        FilterError::at(self.input, pos + 1, message)
    }

    // ---- filters ----

    /// `after` names the token before this expression, for "expected a condition after '('".
    fn or(&mut self, after: Option<&str>) -> Result<Filter, FilterError> {
        self.chain(after, "or", Self::and, Filter::Or)
    }

    fn and(&mut self, after: Option<&str>) -> Result<Filter, FilterError> {
        self.chain(after, "and", Self::unary, Filter::And)
    }

    /// `operand (keyword operand)*`, one node for the whole run (or the lone operand).
    fn chain(
        &mut self,
        after: Option<&str>,
        keyword: &'static str,
        operand: fn(&mut Self, Option<&str>) -> Result<Filter, FilterError>,
        combine: fn(Vec<Filter>) -> Filter,
    ) -> Result<Filter, FilterError> {
        let mut children = vec![operand(self, after)?];
        loop {
            self.skip_ws();
            if !self.eat_keyword(keyword) {
                break;
            }
            children.push(operand(self, Some(keyword))?);
        }
        Ok(if children.len() == 1 { children.remove(0) } else { combine(children) })
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Filter, FilterError> {
        self.skip_ws();
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("the filter nests too deeply (more than {MAX_DEPTH} levels)")));
        }
        self.depth += 1;
        let result = self.unary_inner(after);
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self, after: Option<&str>) -> Result<Filter, FilterError> {
        if self.eat_keyword("not") {
            return Ok(Filter::Not(Box::new(self.unary(Some("not"))?)));
        }
        if self.peek() == Some('(') {
            return self.group();
        }
        if self.at_keyword("exists") {
            return self.exists();
        }
        // `size(` is the function; `size` alone (`size > 3`) is a key like any other.
        if self.at_keyword("size") && self.next_after_word() == Some('(') {
            return self.size();
        }
        self.condition(after)
    }

    fn group(&mut self) -> Result<Filter, FilterError> {
        let open = self.pos;
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(')') {
            return Err(self.error_at(open, "empty parentheses: expected a condition inside '( )'"));
        }
        let inner = self.or(Some("("))?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.error(format!("expected ')' to close the '(' at column {}{}", open + 1, self.found())));
        }
        Ok(inner)
    }

    fn exists(&mut self) -> Result<Filter, FilterError> {
        self.pos += "exists".len();
        self.skip_ws();
        if !self.eat('(') {
            return Err(self.error(format!("expected '(' after 'exists'{}", self.found())));
        }
        self.skip_ws();
        if !self.at_field() {
            return Err(self.error(format!("expected a key inside 'exists( )'{}", self.found())));
        }
        let field = self.field()?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.error(format!("expected ')' after the key in 'exists('{}", self.found())));
        }
        Ok(Filter::Exists(field))
    }

    /// The first character after the current word and the spaces behind it.
    fn next_after_word(&self) -> Option<char> {
        self.chars[self.pos + self.word_len()..].iter().copied().find(|c| !c.is_whitespace())
    }

    /// `size(field) op n`.
    fn size(&mut self) -> Result<Filter, FilterError> {
        self.pos += "size".len();
        self.skip_ws();
        self.eat('(');
        self.skip_ws();
        if !self.at_field() {
            return Err(self.error(format!("expected a key inside 'size( )'{}", self.found())));
        }
        let field = self.field()?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.error(format!("expected ')' after the key in 'size('{}", self.found())));
        }
        self.skip_ws();
        let Some(op) = self.compare_op()? else {
            return Err(self.error(format!("expected an operator (== != < <= > >=) after 'size(…)'{}", self.found())));
        };
        self.skip_ws();
        let at = self.pos;
        match self.value(&format!("after '{}'", op.symbol()))? {
            FilterValue::Int(n) if n >= 0 => Ok(Filter::Size { field, op, len: n as u64 }),
            FilterValue::UInt(n) => Ok(Filter::Size { field, op, len: n }),
            _ => Err(self.error_at(at, "a size compares with a whole number of elements (0, 1, 2, …)")),
        }
    }

    /// `field op value`, `field ~ pattern`, `field [not] in [list]`.
    fn condition(&mut self, after: Option<&str>) -> Result<Filter, FilterError> {
        // `and`, `or` and `in` cannot start a condition; as keys they must be quoted.
        let keyword = ["and", "or", "in"].iter().any(|kw| self.at_keyword(kw));
        if !self.at_field() || keyword {
            let context = after.map(|a| format!(" after '{a}'")).unwrap_or_default();
            return Err(self.error(format!("expected a condition{context}{}", self.found())));
        }
        let field = self.field()?;
        self.skip_ws();
        let op_pos = self.pos;
        if self.chars[self.pos..].starts_with(&['=', '~']) {
            self.pos += 2;
            self.skip_ws();
            let at = self.pos;
            if !matches!(self.peek(), Some('"' | '\'')) {
                return Err(self.error(format!("expected a quoted regular expression after '=~'{}", self.found())));
            }
            let pattern = self.string()?;
            check_regex(&pattern).map_err(|e| self.error_at(at, e))?;
            return Ok(Filter::Regex { field, pattern });
        }
        if let Some(op) = self.compare_op()? {
            self.skip_ws();
            let at = self.pos;
            let value = self.value(&format!("after '{}'", op.symbol()))?;
            if matches!(value, FilterValue::Json(_)) && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                return Err(
                    self.error_at(at, format!("arrays and objects compare only with == and !=, not '{}'", op.symbol()))
                );
            }
            return Ok(Filter::Compare { field, op, value });
        }
        if self.eat_keyword("contains") {
            return self.contains(field);
        }
        if self.eat('~') {
            self.skip_ws();
            if !matches!(self.peek(), Some('"' | '\'')) {
                return Err(self.error(format!("expected a quoted pattern after '~'{}", self.found())));
            }
            return Ok(Filter::Glob { field, pattern: self.string()? });
        }
        if self.eat_keyword("in") {
            return Ok(Filter::In { field, values: self.list("in")?, negated: false });
        }
        if self.eat_keyword("not") {
            self.skip_ws();
            if !self.eat_keyword("in") {
                return Err(self.error(format!("expected 'in' after 'not'{}", self.found())));
            }
            return Ok(Filter::In { field, values: self.list("not in")?, negated: true });
        }
        // A quoted key shows its own quotes; a bare one gets some.
        let shown = match field.to_string() {
            quoted if quoted.starts_with('"') => quoted,
            bare => format!("'{bare}'"),
        };
        Err(self.error_at(
            op_pos,
            format!("expected an operator (== != < <= > >= ~ in, not in) after the key {shown}{}", self.found()),
        ))
    }

    /// After `contains`: a value, or `(op value [and op value])`.
    fn contains(&mut self, field: Field) -> Result<Filter, FilterError> {
        self.skip_ws();
        let start = self.pos;
        if !self.eat('(') {
            let value = self.value("after 'contains'")?;
            return Ok(Filter::Element { field, conds: vec![(CompareOp::Eq, value)] });
        }
        let mut conds = Vec::new();
        loop {
            self.skip_ws();
            let Some(op) = self.compare_op()? else {
                return Err(
                    self.error(format!("expected an operator (== < <= > >=) in 'contains (…)'{}", self.found()))
                );
            };
            let value = self.value(&format!("after '{}'", op.symbol()))?;
            conds.push((op, value));
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !self.eat_keyword("and") {
                return Err(self.error(format!("expected 'and' or ')' in 'contains (…)'{}", self.found())));
            }
        }
        super::element_conds(&conds).map_err(|e| self.error_at(start, e))?;
        Ok(Filter::Element { field, conds })
    }

    fn compare_op(&mut self) -> Result<Option<CompareOp>, FilterError> {
        let two: String = self.chars[self.pos..].iter().take(2).collect();
        let (op, len) = match two.as_str() {
            "==" => (CompareOp::Eq, 2),
            "!=" => (CompareOp::Ne, 2),
            "<=" => (CompareOp::Le, 2),
            ">=" => (CompareOp::Ge, 2),
            _ => match self.peek() {
                Some('<') => (CompareOp::Lt, 1),
                Some('>') => (CompareOp::Gt, 1),
                Some('=') => return Err(self.error("'=' is not an operator: write '==' to compare")),
                Some('!') => return Err(self.error("'!' is not an operator: write '!=' or 'not'")),
                _ => return Ok(None),
            },
        };
        self.pos += len;
        Ok(Some(op))
    }

    /// `[v, ...]` after `in` or `not in`.
    fn list(&mut self, after: &str) -> Result<Vec<FilterValue>, FilterError> {
        self.skip_ws();
        if !self.eat('[') {
            return Err(self.error(format!("expected a list '[...]' after '{after}'{}", self.found())));
        }
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(']') {
                return Ok(values);
            }
            values.push(self.value("in the list")?);
            self.skip_ws();
            if self.eat(']') {
                return Ok(values);
            }
            if !self.eat(',') {
                return Err(self.error(format!("expected ',' or ']' in the list{}", self.found())));
            }
        }
    }

    // ---- fields ----

    fn at_field(&self) -> bool {
        self.peek().is_some_and(|c| c == '@' || c == '"' || c == '\'' || c.is_alphanumeric() || c == '_')
    }

    fn field(&mut self) -> Result<Field, FilterError> {
        if self.peek() == Some('@') {
            return self.builtin();
        }
        let mut key = String::new();
        loop {
            key.push_str(&self.segment()?);
            if !self.eat('.') {
                return Ok(Field::Meta(key));
            }
            key.push('.');
        }
    }

    fn builtin(&mut self) -> Result<Field, FilterError> {
        let at = self.pos;
        self.pos += 1;
        let name = self.word();
        if name.is_empty() {
            return Err(self.error("expected a built-in name after '@'"));
        }
        self.pos += name.chars().count();
        match Builtin::from_name(&name) {
            Some(b) => Ok(Field::Builtin(b)),
            None => {
                let known: Vec<String> = Builtin::ALL.iter().map(|b| format!("@{}", b.name())).collect();
                Err(self.error_at(at, format!("unknown built-in field '@{name}' (known: {})", known.join(" "))))
            }
        }
    }

    /// One segment of a dotted key: a bare word or a quoted string.
    fn segment(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        if matches!(self.peek(), Some('"' | '\'')) {
            let s = self.string()?;
            if s.is_empty() {
                return Err(self.error_at(start, "a quoted key is empty"));
            }
            return Ok(s);
        }
        // Starting with '-' would read as a negative number elsewhere; a bare key starts with a letter, digit or _.
        if !self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return Err(self.error(format!("expected a key after '.'{}", self.found())));
        }
        let word = self.word();
        self.pos += word.chars().count();
        Ok(word)
    }

    // ---- values ----

    /// A value; `context` completes "expected a value ..." (`after '>='`, `in the list`).
    fn value(&mut self, context: &str) -> Result<FilterValue, FilterError> {
        self.skip_ws();
        match self.peek() {
            Some('[' | '{') => Ok(FilterValue::Json(self.json(context)?)),
            Some('"' | '\'') => Ok(FilterValue::from_text(&self.string()?)),
            Some(c) if c == '-' || c == '.' || c.is_ascii_digit() => self.number(),
            Some(c) if is_word_char(c) => {
                let word = self.word();
                let value = match word.to_ascii_lowercase().as_str() {
                    "true" => FilterValue::Bool(true),
                    "false" => FilterValue::Bool(false),
                    "null" => FilterValue::Null,
                    _ => {
                        let hint = format!(" (strings need quotes: \"{word}\")");
                        return Err(self.error(format!("expected a value {context}, found '{word}'{hint}")));
                    }
                };
                self.pos += word.chars().count();
                Ok(value)
            }
            _ => Err(self.error(format!("expected a value {context}{}", self.found()))),
        }
    }

    /// A number: the longest run that could belong to one is read, then checked, so `1.2.3` is one bad number.
    fn number(&mut self) -> Result<FilterValue, FilterError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while let Some(c) = self.peek() {
            let prev = self.chars[self.pos - 1];
            let sign_of_exponent = matches!(c, '+' | '-') && matches!(prev, 'e' | 'E');
            // Also swallow the '-' and ':' of an unquoted timestamp, to say it needs quotes.
            let date_punctuation = matches!(c, '-' | ':') && prev.is_ascii_digit();
            if !(c.is_alphanumeric() || c == '.' || c == '_' || sign_of_exponent || date_punctuation) {
                break;
            }
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if !is_json_number(&text) {
            let hint = match super::iso::parse_timestamp(&text) {
                Some(_) => format!(" (timestamps need quotes: \"{text}\")"),
                None => String::new(),
            };
            return Err(self.error_at(start, format!("bad number '{text}'{hint}")));
        }
        if !text.contains(['.', 'e', 'E']) {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(FilterValue::Int(n));
            }
            if let Ok(n) = text.parse::<u64>() {
                return Ok(FilterValue::UInt(n));
            }
            return Err(self.error_at(
                start,
                format!("the integer {text} is beyond 64 bits: stored integers never are; write it as a float ({}) to compare approximately", text.parse::<f64>().map_or(String::new(), |x| format!("{x:e}"))),
            ));
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(FilterValue::Float(x)),
            _ => Err(self.error_at(start, format!("number out of range '{text}'"))),
        }
    }

    /// An array `[v, ...]` or object `{"k": v, ...}` literal, as JSON; strings inside stay strings.
    fn json(&mut self, context: &str) -> Result<serde_json::Value, FilterError> {
        use serde_json::Value;
        self.skip_ws();
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("the value nests too deeply (more than {MAX_DEPTH} levels)")));
        }
        let close = match self.peek() {
            Some('[') => ']',
            Some('{') => '}',
            _ => {
                return Ok(match self.value(context)? {
                    FilterValue::Null => Value::Null,
                    FilterValue::Bool(b) => Value::Bool(b),
                    FilterValue::Int(i) => Value::from(i),
                    FilterValue::UInt(u) => Value::from(u),
                    FilterValue::Float(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
                    FilterValue::String(s) => Value::String(s),
                    FilterValue::Time(t) => Value::String(crate::time::rfc3339(t)),
                    FilterValue::Json(j) => j,
                });
            }
        };
        let open = self.pos;
        self.pos += 1;
        self.depth += 1;
        let mut items = Vec::new();
        let mut map = serde_json::Map::new();
        loop {
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            if close == '}' {
                if !matches!(self.peek(), Some('"' | '\'')) {
                    return Err(self.error(format!("expected a quoted key in the object{}", self.found())));
                }
                let key = self.string()?;
                self.skip_ws();
                if !self.eat(':') {
                    return Err(self.error(format!("expected ':' after the key in the object{}", self.found())));
                }
                let value = self.json_item()?;
                map.insert(key, value);
            } else {
                items.push(self.json_item()?);
            }
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            if !self.eat(',') {
                let what = if close == ']' { "array" } else { "object" };
                return Err(self.error(format!(
                    "expected ',' or '{close}' in the {what} opened at column {}{}",
                    open + 1,
                    self.found()
                )));
            }
        }
        self.depth -= 1;
        Ok(if close == ']' { Value::Array(items) } else { Value::Object(map) })
    }

    /// One element of an array or object literal: strings stay text (a timestamp inside is not a time).
    fn json_item(&mut self) -> Result<serde_json::Value, FilterError> {
        self.skip_ws();
        if matches!(self.peek(), Some('"' | '\'')) {
            return Ok(serde_json::Value::String(self.string()?));
        }
        self.json("in the literal")
    }

    /// A quoted string (either quote), with its escapes resolved.
    fn string(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        let quote = self.chars[open];
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(open, "unterminated string: no closing quote"));
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(out),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    /// The character an escape stands for; the backslash is already consumed.
    fn escape(&mut self) -> Result<char, FilterError> {
        let backslash = self.pos - 1;
        let c = self.peek().ok_or_else(|| self.error_at(backslash, "unterminated string: no closing quote"))?;
        self.pos += 1;
        Ok(match c {
            '\\' | '"' | '\'' => c,
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => return self.unicode_escape(backslash),
            c => return Err(self.error_at(backslash, format!("unknown escape '\\{c}' in a string"))),
        })
    }

    /// `\u{HEX}`, after the `u`.
    fn unicode_escape(&mut self, backslash: usize) -> Result<char, FilterError> {
        let bad = |p: &Self| p.error_at(backslash, "bad unicode escape: write '\\u{HEX}' with 1 to 6 hex digits");
        if !self.eat('{') {
            return Err(bad(self));
        }
        let hex: String = self.chars[self.pos..].iter().take_while(|c| c.is_ascii_hexdigit()).collect();
        self.pos += hex.len();
        if hex.is_empty() || hex.len() > 6 || !self.eat('}') {
            return Err(bad(self));
        }
        u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).ok_or_else(|| bad(self))
    }
}

/// Why `pattern` is not a regular expression trove can run, if it is not.
pub(super) fn check_regex(pattern: &str) -> Result<(), String> {
    regex::Regex::new(&super::regex_for(pattern)).map(|_| ()).map_err(|e| {
        let detail = e.to_string();
        let last =
            detail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().trim_start_matches("error: ");
        format!("bad regular expression: {last}")
    })
}

/// `-?digits(.digits)?([eE][+-]?digits)?`, as JSON writes numbers (leading zeros allowed).
fn is_json_number(text: &str) -> bool {
    let digits = |s: &str| -> usize { s.bytes().take_while(u8::is_ascii_digit).count() };
    let mut rest = text.strip_prefix('-').unwrap_or(text);
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    rest = &rest[n..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        rest = &exp[n..];
    }
    rest.is_empty()
}

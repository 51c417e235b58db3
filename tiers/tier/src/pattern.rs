//! Glob patterns over keys, with Redis's rules so that a pattern means the same thing in every
//! tier (Redis evaluates it server-side with `SCAN MATCH`).

use std::fmt;

/// A key pattern with Redis glob rules:
///
/// - `*` matches any run of characters (including none), `?` exactly one character;
/// - `[abc]` one of the listed characters, `[a-z]` a range, `[^a]` or `[!a]` anything but;
/// - `\x` matches `x` literally (so `\*` is a literal star).
///
/// Unlike shell globs, `*` also matches `:` and `/`: `user:*` matches `user:1:profile`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyPattern {
    source: String,
    tokens: Vec<Token>,
    prefix: String,
    shape: Shape,
}

/// What a pattern needs to be matched: a string compare, a prefix compare, or the glob walk.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Shape {
    Literal,
    Prefix,
    Glob,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// A pattern that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `[` without its closing `]`.
    #[error("unclosed character class in pattern {0:?}")]
    UnclosedClass(String),
    /// A pattern ending in a lone `\`.
    #[error("pattern {0:?} ends with an unfinished escape")]
    DanglingEscape(String),
}

impl KeyPattern {
    /// `text` with every character a pattern treats specially (`* ? [ ] \`) backslash-escaped,
    /// so that it matches itself: for building a pattern from a literal prefix.
    ///
    /// ```
    /// use strata_tier::KeyPattern;
    /// let pattern = format!("{}*", KeyPattern::escape("ns[1]:a*b?"));
    /// let pattern = KeyPattern::new(&pattern).unwrap();
    /// assert!(pattern.matches("ns[1]:a*b?:42"));
    /// assert!(!pattern.matches("ns1:aXbY:42"));
    /// ```
    pub fn escape(text: &str) -> String {
        let mut escaped = String::with_capacity(text.len() + 4);
        for c in text.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped
    }

    /// Parses `pattern`.
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => {
                    // Runs of stars match the same as one.
                    if tokens.last() == Some(&Token::AnyRun) {
                        continue;
                    }
                    Token::AnyRun
                }
                '?' => Token::AnyOne,
                '\\' => match chars.next() {
                    Some(escaped) => Token::Literal(escaped),
                    None => return Err(PatternError::DanglingEscape(pattern.to_owned())),
                },
                '[' => {
                    let negated = matches!(chars.peek(), Some('^' | '!'));
                    if negated {
                        chars.next();
                    }
                    let mut items = Vec::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        let low = match c {
                            ']' => {
                                closed = true;
                                break;
                            }
                            '\\' => chars
                                .next()
                                .ok_or_else(|| PatternError::UnclosedClass(pattern.to_owned()))?,
                            c => c,
                        };
                        let mut high = low;
                        if chars.peek() == Some(&'-') {
                            let mut ahead = chars.clone();
                            ahead.next();
                            match ahead.peek() {
                                Some(']') | None => {}
                                Some(_) => {
                                    chars.next();
                                    high = match chars.next() {
                                        Some('\\') => chars.next().ok_or_else(|| {
                                            PatternError::UnclosedClass(pattern.to_owned())
                                        })?,
                                        Some(c) => c,
                                        None => unreachable!("peeked a character"),
                                    };
                                }
                            }
                        }
                        // Redis accepts reversed ranges ([z-a]) as the same range.
                        items.push((low.min(high), low.max(high)));
                    }
                    if !closed {
                        return Err(PatternError::UnclosedClass(pattern.to_owned()));
                    }
                    Token::Class { negated, items }
                }
                c => Token::Literal(c),
            };
            tokens.push(token);
        }
        let prefix = tokens
            .iter()
            .map_while(|token| match token {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        let shape = match tokens.split_last() {
            _ if tokens.iter().all(|t| matches!(t, Token::Literal(_))) => Shape::Literal,
            Some((Token::AnyRun, rest)) if rest.iter().all(|t| matches!(t, Token::Literal(_))) => {
                Shape::Prefix
            }
            _ => Shape::Glob,
        };
        Ok(KeyPattern {
            source: pattern.to_owned(),
            tokens,
            prefix,
            shape,
        })
    }

    /// A pattern that matches every key starting with `prefix` (its glob characters escaped).
    pub fn prefix(prefix: &str) -> Self {
        let mut source = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                source.push('\\');
            }
            source.push(c);
        }
        source.push('*');
        KeyPattern::new(&source).expect("an escaped prefix is a valid pattern")
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The literal characters every matching key starts with (`"user:"` for `user:*`): a tier
    /// with ordered keys scans only that range.
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the pattern is just a literal key (no wildcards).
    pub fn is_literal(&self) -> bool {
        self.shape == Shape::Literal
    }

    /// Whether the pattern is a literal prefix followed by one `*` (`user:*`): every key that
    /// starts with [`literal_prefix`](Self::literal_prefix) matches, and no other.
    pub fn is_prefix(&self) -> bool {
        self.shape == Shape::Prefix
    }

    /// Whether `key` matches the whole pattern. Literal and prefix patterns compare strings
    /// without allocating; others walk the key's characters.
    pub fn matches(&self, key: &str) -> bool {
        match self.shape {
            Shape::Literal => return key == self.prefix,
            Shape::Prefix => return key.starts_with(&self.prefix),
            Shape::Glob if !key.starts_with(&self.prefix) => return false,
            Shape::Glob => {}
        }
        let key: Vec<char> = key.chars().collect();
        let tokens = &self.tokens;
        let (mut t, mut k) = (0, 0);
        // Where to resume if the tokens after the last star fail to match: the star's index and
        // the key position it has consumed up to. One star of backtracking suffices, as in the
        // classic wildcard matcher, because a later star subsumes an earlier one.
        let mut resume: Option<(usize, usize)> = None;
        while k < key.len() {
            let step = match tokens.get(t) {
                Some(Token::AnyRun) => {
                    resume = Some((t, k));
                    t += 1;
                    continue;
                }
                Some(Token::AnyOne) => true,
                Some(Token::Literal(c)) => *c == key[k],
                Some(Token::Class { negated, items }) => {
                    let inside = items.iter().any(|&(lo, hi)| lo <= key[k] && key[k] <= hi);
                    inside != *negated
                }
                None => false,
            };
            if step {
                t += 1;
                k += 1;
            } else if let Some((star, consumed)) = resume {
                resume = Some((star, consumed + 1));
                t = star + 1;
                k = consumed + 1;
            } else {
                return false;
            }
        }
        tokens[t..].iter().all(|token| *token == Token::AnyRun)
    }
}

impl fmt::Debug for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyPattern").field(&self.source).finish()
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for KeyPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyPattern::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, key: &str) -> bool {
        KeyPattern::new(pattern).unwrap().matches(key)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("user:*", "user:1"));
        assert!(matches("user:*", "user:"));
        assert!(matches("user:*", "user:1:profile"));
        assert!(!matches("user:*", "users:1"));
        assert!(!matches("user:*", "xuser:1"));
        assert!(matches("*:profile", "user:1:profile"));
        assert!(matches("a*b*c", "aXXbYYbZc"));
        assert!(!matches("a*b*c", "aXXbYYbZ"));
        assert!(matches("h?llo", "hello"));
        assert!(!matches("h?llo", "hllo"));
        assert!(matches("*", ""));
        assert!(!matches("", "a"));
        assert!(matches("**x", "abx"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[ae]llo", "hillo"));
        assert!(matches("h[^e]llo", "hallo"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("h[!e]llo", "hallo"));
        assert!(matches("id:[0-9]", "id:7"));
        assert!(!matches("id:[0-9]", "id:x"));
        assert!(matches("id:[9-0]", "id:5"));
        assert!(matches("[a-]", "-"));
        assert!(matches("x[\\]]", "x]"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "aXb"));
        assert!(matches("what\\?", "what?"));
    }

    #[test]
    fn unicode_keys_match_by_character() {
        assert!(matches("caf?", "café"));
        assert!(matches("名前:*", "名前:1"));
    }

    #[test]
    fn literal_prefix_stops_at_the_first_wildcard() {
        assert_eq!(KeyPattern::new("user:*").unwrap().literal_prefix(), "user:");
        assert_eq!(KeyPattern::new("us?r:*").unwrap().literal_prefix(), "us");
        assert_eq!(KeyPattern::new("a\\*b*").unwrap().literal_prefix(), "a*b");
        assert_eq!(KeyPattern::new("*").unwrap().literal_prefix(), "");
        assert!(KeyPattern::new("exact").unwrap().is_literal());
    }

    #[test]
    fn prefix_patterns_escape_glob_characters() {
        let pattern = KeyPattern::prefix("a*[b]");
        assert!(pattern.matches("a*[b]tail"));
        assert!(!pattern.matches("aX[b]tail"));
        assert_eq!(pattern.literal_prefix(), "a*[b]");
    }

    #[test]
    fn malformed_patterns_are_typed_errors() {
        assert_eq!(
            KeyPattern::new("a[bc"),
            Err(PatternError::UnclosedClass("a[bc".into()))
        );
        assert_eq!(
            KeyPattern::new("a\\"),
            Err(PatternError::DanglingEscape("a\\".into()))
        );
    }
}

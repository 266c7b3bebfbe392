/// The value of an `X-Trace` header. Printable ASCII only and bounded, because
/// it is copied into log frames, forwarded to the internal tier and written to
/// Kinesis: a control character or a 1 MB header must not get that far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceToken(String);

impl TraceToken {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        ok.then(|| TraceToken(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_printable_tokens() {
        assert_eq!(TraceToken::parse(" abc-123 ").unwrap().as_str(), "abc-123");
        assert!(TraceToken::parse(&"x".repeat(128)).is_some());
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        assert!(TraceToken::parse("").is_none());
        assert!(TraceToken::parse("   ").is_none());
        assert!(TraceToken::parse(&"x".repeat(129)).is_none());
        assert!(TraceToken::parse("a\u{7}b").is_none());
        assert!(TraceToken::parse("é").is_none());
    }
}

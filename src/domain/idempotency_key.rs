/// A client's `Idempotency-Key` together with a fingerprint of the payload it
/// came with, so a retry with the same key and a different payload can be
/// told apart from a genuine retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// Accepts 1..=255 printable ASCII characters (what fits an HTTP header
    /// and a database key without escaping).
    pub fn parse(raw: &str, fingerprint: String) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| (0x21..=0x7e).contains(&b));
        ok.then(|| IdempotencyKey {
            key: raw.to_owned(),
            fingerprint,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// A stable fingerprint of a payload: 64-bit FNV-1a and the length, in hex.
/// Not cryptographic; it only has to tell a retry from a different request
/// by the same client, and it must not change between releases (std's
/// hasher may), since fingerprints are stored.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut len: u64 = 0;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ["ab","c"] and ["a","bc"] differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
        len += part.len() as u64 + 1;
    }
    format!("{h:016x}-{len:x}")
}

/// Whether a fingerprint sent by a peer has the form `fingerprint()` makes.
pub fn is_fingerprint(raw: &str) -> bool {
    raw.len() <= 40 && !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(IdempotencyKey::parse("import-2024-05-01#3", String::new()).is_some());
        for bad in ["", "a b", "é", &"x".repeat(256)] {
            assert!(
                IdempotencyKey::parse(bad, String::new()).is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fingerprints_are_stable_and_separate_parts() {
        assert_eq!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"ab", b"c"]));
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[]), "cbf29ce484222325-0");
        assert!(is_fingerprint(&fingerprint(&[b"x"])));
    }
}

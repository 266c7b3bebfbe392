use std::fmt;

/// A document id: 24 lowercase hexadecimal characters, the MongoDB ObjectId
/// form, on every storage backend (so data can move between backends and ids
/// issued by the old Node services stay valid).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId(String);

impl DocId {
    pub const LEN: usize = 24;

    /// A fresh id: a new ObjectId (timestamp, random, counter), so ids sort
    /// roughly by creation time on every backend.
    pub fn generate() -> Self {
        DocId(bson::oid::ObjectId::new().to_hex())
    }

    /// Accepts 24 hex digits in either case (the old service's ObjectId
    /// parser did) and normalises them to lowercase.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() == Self::LEN && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(DocId(raw.to_ascii_lowercase()))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12 bytes of the ObjectId, for backends that store it natively.
    pub fn to_bytes(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        for (i, chunk) in self.0.as_bytes().chunks(2).enumerate() {
            // Both digits were checked in parse(); a DocId is never built otherwise.
            let hi = (chunk[0] as char).to_digit(16).unwrap_or(0) as u8;
            let lo = (chunk[1] as char).to_digit(16).unwrap_or(0) as u8;
            out[i] = hi << 4 | lo;
        }
        out
    }

    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        DocId(bson::oid::ObjectId::from_bytes(bytes).to_hex())
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_24_hex_and_lowercases() {
        let id = DocId::parse("5F1D7A3B9C0E4A2B8D6F1E3C").expect("valid");
        assert_eq!(id.as_str(), "5f1d7a3b9c0e4a2b8d6f1e3c");
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        for bad in [
            "",
            "abc",
            "5f1d7a3b9c0e4a2b8d6f1e3",
            "5f1d7a3b9c0e4a2b8d6f1e3c0",
            "5f1d7a3b9c0e4a2b8d6f1e3g",
            "5f1d7a3b9c0e4a2b8d6f1é3",
            "../../../../etc/passwd00",
        ] {
            assert!(DocId::parse(bad).is_none(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn generated_ids_parse_and_round_trip_through_bytes() {
        let id = DocId::generate();
        assert_eq!(DocId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(DocId::from_bytes(id.to_bytes()), id);
    }
}

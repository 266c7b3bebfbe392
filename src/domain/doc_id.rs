use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::clock;

/// A document id: 24 lowercase hexadecimal characters, the MongoDB ObjectId
/// form, on every storage backend (so data can move between backends and ids
/// issued by the old Node services stay valid).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId(String);

impl DocId {
    pub const LEN: usize = 24;

    /// A fresh id laid out as a MongoDB ObjectId is: 4 bytes of seconds
    /// since the epoch (big-endian), 5 random bytes drawn once per process,
    /// and a 3-byte big-endian counter that starts at a random value. So
    /// ids sort roughly by creation time on every backend, and the MongoDB
    /// backend stores them as real ObjectIds.
    pub fn generate() -> Self {
        static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let process = PROCESS.get_or_init(rand::random);
        let counter = COUNTER
            .get_or_init(|| AtomicU32::new(rand::random::<u32>()))
            .fetch_add(1, Ordering::Relaxed);
        // Seconds fit 32 bits until 2106, as in every ObjectId.
        let secs = (clock::now_ms() / 1000) as u32;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        bytes[4..9].copy_from_slice(process);
        bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        Self::from_bytes(bytes)
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

    /// The id of 12 ObjectId bytes, as lowercase hex.
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(Self::LEN);
        for b in bytes {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        DocId(hex)
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
        let bytes: [u8; 12] = std::array::from_fn(|i| (i * 21) as u8);
        assert_eq!(
            DocId::from_bytes(bytes).as_str(),
            "00152a3f54697e93a8bdd2e7",
            "lowercase hex, two digits a byte"
        );
    }

    #[test]
    fn generated_ids_have_the_object_id_layout() {
        let before = (clock::now_ms() / 1000) as u32;
        let (a, b) = (DocId::generate().to_bytes(), DocId::generate().to_bytes());
        let after = (clock::now_ms() / 1000) as u32;
        let secs = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
        assert!(
            (before..=after).contains(&secs),
            "{secs} not in {before}..={after}"
        );
        assert_eq!(a[4..9], b[4..9], "the same process part");
        let counter = |x: &[u8; 12]| u32::from_be_bytes([0, x[9], x[10], x[11]]);
        // Other tests in this process may take ids in between.
        let step = counter(&b).wrapping_sub(counter(&a)) & 0xff_ffff;
        assert!((1..1000).contains(&step), "the counter counts up: {step}");
    }
}

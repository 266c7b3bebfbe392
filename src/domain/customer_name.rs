/// A customer's name as the public API accepts it: a JSON string that is not
/// empty or only whitespace. The old service accepted any non-empty string;
/// we refuse a blank one too (nobody is called "   ") and add an upper bound
/// so one request cannot store megabytes under "name". The name is stored
/// as given, not trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName(String);

impl CustomerName {
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, &'static str> {
        if raw.trim().is_empty() {
            Err("customer name missing")
        } else if raw.chars().count() > Self::MAX_CHARS {
            Err("customer name too long")
        } else {
            Ok(CustomerName(raw))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

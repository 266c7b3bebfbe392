use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::doc_id::DocId;

/// A stored document: a JSON object kept as compact JSON text exactly as the
/// client wrote it (key order, number spelling such as `1.0` or integers
/// beyond 2^53, string escapes), minus insignificant whitespace.
///
/// Keeping the text instead of a parsed value is what makes documents
/// round-trip byte for byte on the SQL backends; see docs/storage.md.
#[derive(Clone, PartialEq, Eq)]
pub struct Document(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("_id is assigned by the server")]
    HasId,
}

impl Document {
    /// Parses a request body: it must be one JSON object without a top-level
    /// `_id` (ids are the server's to assign).
    pub fn parse(raw: &[u8]) -> Result<Self, DocumentError> {
        let mut de = serde_json::Deserializer::from_slice(raw);
        let top = TopLevel::deserialize(&mut de).map_err(|_| DocumentError::NotAnObject)?;
        de.end().map_err(|_| DocumentError::NotAnObject)?;
        if top.has_id {
            return Err(DocumentError::HasId);
        }
        // Valid UTF-8 was checked by serde_json while parsing.
        let text = std::str::from_utf8(raw).map_err(|_| DocumentError::NotAnObject)?;
        Ok(Document(minify(text)))
    }

    /// Wraps text a store wrote earlier through `parse()`. Text that is not
    /// braced like an object (a row changed behind cinemo's back) is
    /// refused, so `to_json_with_id` never cuts outside it; the rest is not
    /// parsed again on every read.
    pub fn from_stored(text: String) -> Result<Self, DocumentError> {
        let braced = text.len() >= 2 && text.starts_with('{') && text.ends_with('}');
        if braced {
            Ok(Document(text))
        } else {
            Err(DocumentError::NotAnObject)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The document as the API returns it: `_id` first, then the stored
    /// fields in their original order, as the old MongoDB-backed service did.
    pub fn to_json_with_id(&self, id: &DocId) -> String {
        let inner = self.0[1..self.0.len() - 1].trim();
        let mut out = String::with_capacity(self.0.len() + 36);
        out.push_str("{\"_id\":\"");
        out.push_str(id.as_str());
        out.push('"');
        if !inner.is_empty() {
            out.push(',');
            out.push_str(inner);
        }
        out.push('}');
        out
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Document({} bytes)", self.0.len())
    }
}

/// Removes whitespace outside strings from valid JSON text.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// Walks the top level of a JSON object, validating everything and noting
/// whether it has an `_id` key.
struct TopLevel {
    has_id: bool,
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut has_id = false;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    has_id |= key == "_id";
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(TopLevel { has_id })
            }
        }
        d.deserialize_map(V).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_numbers_and_escapes_but_not_whitespace() {
        let raw = br#" { "b" : 1.0 , "a": 12345678901234567890123, "s": "x \"y\" \u00e9 ", "n": [1, {"k" : null}] } "#;
        let doc = Document::parse(raw).unwrap();
        assert_eq!(
            doc.as_str(),
            r#"{"b":1.0,"a":12345678901234567890123,"s":"x \"y\" \u00e9 ","n":[1,{"k":null}]}"#
        );
    }

    #[test]
    fn rejects_non_objects_and_trailing_garbage() {
        for raw in [
            &b""[..],
            b"[]",
            b"1",
            b"\"x\"",
            b"null",
            b"{",
            b"{} {}",
            b"{\"a\":}",
            b"\xff",
        ] {
            assert_eq!(
                Document::parse(raw),
                Err(DocumentError::NotAnObject),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn stored_text_must_be_braced_like_an_object() {
        assert!(Document::from_stored("{}".into()).is_ok());
        for bad in ["", "{", "}", "[]", "null", " {}", "{} "] {
            assert_eq!(
                Document::from_stored(bad.into()),
                Err(DocumentError::NotAnObject),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_a_client_supplied_id() {
        assert_eq!(
            Document::parse(br#"{"_id":"x"}"#),
            Err(DocumentError::HasId)
        );
        // A nested _id is just data.
        assert!(Document::parse(br#"{"a":{"_id":1}}"#).is_ok());
    }

    #[test]
    fn puts_id_first() {
        let id = DocId::parse("5f1d7a3b9c0e4a2b8d6f1e3c").unwrap();
        let doc = Document::parse(br#"{"name":"Ann","dateCreated":1}"#).unwrap();
        assert_eq!(
            doc.to_json_with_id(&id),
            r#"{"_id":"5f1d7a3b9c0e4a2b8d6f1e3c","name":"Ann","dateCreated":1}"#
        );
        let empty = Document::parse(b"{ }").unwrap();
        assert_eq!(
            empty.to_json_with_id(&id),
            r#"{"_id":"5f1d7a3b9c0e4a2b8d6f1e3c"}"#
        );
    }
}

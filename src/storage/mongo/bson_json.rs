//! JSON text <-> BSON, keeping key order.
//!
//! JSON -> BSON: integers that fit i32 become Int32, those that fit i64
//! Int64 (the old Node driver turned every non-int32 integer into a double;
//! Int64 keeps precision up to 2^63), anything larger or with a fraction or
//! exponent a Double. BSON -> JSON prints numbers the way JavaScript's
//! `JSON.stringify` (the old service's `res.json()`) did: a Double with no
//! fraction as an integer, so `1.0` reads back as `1`.
//!
//! Ids cross here too: a `DocId` is stored as the ObjectId of its 12 bytes.

use std::fmt;

use bson::Bson;
use bson::oid::ObjectId;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::domain::{DocId, Document};
use crate::storage::StoreError;

/// MongoDB's limit on nesting: the client's object is level 1.
const MAX_DEPTH: u32 = 100;

/// Converts one JSON value; an object or array visited at `depth` is at
/// nesting level `depth + 1` (the document is visited at 0).
#[derive(Clone, Copy)]
struct ToBson {
    depth: u32,
}

impl ToBson {
    fn nested<E: serde::de::Error>(self) -> Result<ToBson, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "nested deeper than MongoDB's {MAX_DEPTH} levels"
            )));
        }
        Ok(ToBson {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for ToBson {
    type Value = Bson;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Bson, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ToBson {
    type Value = Bson;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Bson, E> {
        Ok(Bson::Boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Bson, E> {
        Ok(i32::try_from(v).map(Bson::Int32).unwrap_or(Bson::Int64(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Bson, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => i32::try_from(v).map(Bson::Int32).unwrap_or(Bson::Int64(v)),
            Err(_) => Bson::Double(v as f64),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Bson, E> {
        Ok(Bson::Double(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Bson, E> {
        Ok(Bson::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Bson, E> {
        Ok(Bson::String(v))
    }
    fn visit_unit<E>(self) -> Result<Bson, E> {
        Ok(Bson::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bson, A::Error> {
        let inner = self.nested()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Bson::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bson, A::Error> {
        let inner = self.nested()?;
        // bson::Document keeps insertion order; a repeated key keeps its
        // first position and its last value, as JavaScript's JSON.parse.
        let mut out = bson::Document::new();
        while let Some(k) = map.next_key::<String>()? {
            if k.contains('\0') {
                return Err(serde::de::Error::custom(
                    "a key contains a NUL character, which BSON cannot hold",
                ));
            }
            let v = map.next_value_seed(inner)?;
            out.insert(k, v);
        }
        Ok(Bson::Document(out))
    }
}

/// The ObjectId of an id (the same 12 bytes).
pub fn oid(id: &DocId) -> ObjectId {
    ObjectId::from_bytes(id.to_bytes())
}

/// The id of an ObjectId.
pub fn doc_id(oid: &ObjectId) -> DocId {
    DocId::from_bytes(oid.bytes())
}

/// The document to store: `_id` first, then the client's fields. A
/// valid JSON object BSON cannot hold is `StoreError::Rejected` (the
/// SQL backends store the text as sent, so only this one refuses).
pub fn to_bson(id: &DocId, document: &Document) -> Result<bson::Document, StoreError> {
    let mut de = serde_json::Deserializer::from_str(document.as_str());
    // Our own depth limit (100) is below serde_json's (128), which
    // stays as the stack's guard.
    let parsed = (ToBson { depth: 0 }).deserialize(&mut de).map_err(|e| {
        let text = e.to_string();
        // Drop serde's "at line 1 column N": the client sent the
        // document, not a file, and the reason is what it can act on.
        let reason = match text.rfind(" at line ") {
            Some(at) => &text[..at],
            None => &text,
        };
        // `Document::parse` checked the syntax, so an escape that
        // fails now is a lone surrogate (`\ud800`, or `\udc00` that
        // serde_json also calls "leading"): JavaScript keeps one in a
        // string, UTF-8 and so BSON cannot.
        let why = if reason.contains("surrogate") || reason.contains("escape") {
            "a string holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair)"
                .to_owned()
        } else {
            reason.to_owned()
        };
        StoreError::Rejected(why)
    })?;
    let Bson::Document(fields) = parsed else {
        return Err(StoreError::Other(anyhow::anyhow!(
            "a parsed document is not an object"
        )));
    };
    let mut out = bson::Document::new();
    out.insert("_id", oid(id));
    out.extend(fields);
    Ok(out)
}

/// A stored document as JSON text without its `_id` (the API puts it first).
pub fn to_document(stored: &bson::Document) -> Result<Document, StoreError> {
    let mut out = String::with_capacity(128);
    write_doc(&mut out, stored, true);
    Document::from_stored(out).map_err(|e| StoreError::Other(anyhow::anyhow!("{e}")))
}

fn write_doc(out: &mut String, d: &bson::Document, skip_id: bool) {
    out.push('{');
    let mut first = true;
    for (k, v) in d {
        if skip_id && k == "_id" {
            continue;
        }
        // JSON.stringify drops undefined-valued keys.
        if matches!(v, Bson::Undefined) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

fn write_str(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON.stringify escapes for valid
    // UTF-8: quote, backslash and control characters.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn write_value(out: &mut String, v: &Bson) {
    match v {
        Bson::Double(f) => write_f64(out, *f),
        Bson::Int32(i) => out.push_str(&i.to_string()),
        Bson::Int64(i) => out.push_str(&i.to_string()),
        Bson::String(s) => write_str(out, s),
        Bson::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Bson::Null | Bson::Undefined => out.push_str("null"),
        Bson::Document(d) => write_doc(out, d, false),
        Bson::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Bson::ObjectId(o) => write_str(out, &o.to_hex()),
        // Date.prototype.toJSON: ISO 8601 with milliseconds, UTC.
        Bson::DateTime(dt) => match dt.try_to_rfc3339_string() {
            Ok(s) => write_str(out, &s),
            Err(_) => out.push_str("null"),
        },
        // The Node driver's Decimal128.toJSON.
        Bson::Decimal128(d) => {
            out.push_str("{\"$numberDecimal\":");
            write_str(out, &d.to_string());
            out.push('}');
        }
        // Binary, regex, timestamps, ...: the relaxed Extended JSON form.
        other => {
            let ext = other.clone().into_relaxed_extjson();
            out.push_str(&serde_json::to_string(&ext).unwrap_or_else(|_| "null".into()));
        }
    }
}

/// JavaScript's number-to-string for JSON: integers below 1e21 without a
/// fraction, NaN and infinities as null, otherwise the shortest
/// round-tripping form with JavaScript's `e+` exponent spelling.
fn write_f64(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f.fract() == 0.0 && f.abs() < 1e21 {
        out.push_str(&(f as i128).to_string());
    } else {
        let text = serde_json::Number::from_f64(f)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "null".into());
        match text.find('e') {
            Some(at) if !text[at + 1..].starts_with(['-', '+']) => {
                out.push_str(&text[..=at]);
                out.push('+');
                out.push_str(&text[at + 1..]);
            }
            _ => out.push_str(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> String {
        let id = DocId::generate();
        let doc = Document::parse(json.as_bytes()).expect("valid");
        let stored = to_bson(&id, &doc).expect("converts");
        assert_eq!(stored.keys().next().map(String::as_str), Some("_id"));
        to_document(&stored).expect("converts back").into_string()
    }

    #[test]
    fn keeps_order_strings_and_integers() {
        let json = r#"{"z":1,"a":"é \" \\ \n","m":[true,null,{"y":2,"b":3}],"big":9007199254740993,"neg":-2147483649}"#;
        let back = round_trip(json);
        assert_eq!(
            back,
            r#"{"z":1,"a":"é \" \\ \n","m":[true,null,{"y":2,"b":3}],"big":9007199254740993,"neg":-2147483649}"#
        );
    }

    #[test]
    fn documents_the_differences_javascript_had() {
        assert_eq!(
            round_trip(r#"{"f":1.0,"g":1.5,"e":1e2,"s":"\u00e9"}"#),
            r#"{"f":1,"g":1.5,"e":100,"s":"é"}"#
        );
        // Beyond i64: a double, as the old Node service stored it.
        assert_eq!(
            round_trip(r#"{"h":12345678901234567890123}"#),
            r#"{"h":1.2345678901234568e+22}"#
        );
    }

    /// An object `levels` deep: `{"a":{"a":...{}}}`.
    fn nested(levels: usize) -> String {
        format!(
            "{}{}",
            r#"{"a":"#.repeat(levels - 1) + "{}",
            "}".repeat(levels - 1)
        )
    }

    #[test]
    fn valid_json_that_bson_cannot_hold_is_rejected_with_the_reason() {
        let rejected = |json: &str| {
            let doc = Document::parse(json.as_bytes()).expect("valid JSON object");
            match to_bson(&DocId::generate(), &doc) {
                Err(StoreError::Rejected(why)) => why,
                other => panic!("{json}: {other:?}"),
            }
        };
        assert!(rejected(r#"{"k\u0000":1}"#).contains("NUL"));
        assert!(rejected(r#"{"a":[{"b\u0000c":1}]}"#).contains("NUL"));
        assert!(rejected(r#"{"a":1e400}"#).contains("number out of range"));
        for lone in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"x\ud800y"}"#,
        ] {
            let why = rejected(lone);
            assert!(why.contains("lone UTF-16 surrogate"), "{lone}: {why}");
            assert!(!why.contains("line 1"), "{lone}: {why}");
        }
        assert!(!rejected(r#"{"k\u0000":1}"#).contains("column"));
        assert!(rejected(&nested(101)).contains("100 levels"));
        let array_deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(rejected(&array_deep).contains("100 levels"));
        // A NUL in a value is fine; so are 100 levels.
        assert_eq!(round_trip(r#"{"k":"\u0000"}"#), r#"{"k":"\u0000"}"#);
        assert_eq!(round_trip(&nested(100)), nested(100));
    }
}

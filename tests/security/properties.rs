//! Property tests for everything that parses untrusted input: ids, trace
//! tokens, documents, customer names, forwarded-for chains and the
//! environment-variable configuration layer. "Never panics" is implied by
//! each property running to completion.

use std::collections::HashMap;
use std::net::IpAddr;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use cinemo::domain::{CustomerName, DocId, Document, TraceToken};
use cinemo::http::rate_limit::ClientKey;
use cinemo::settings::{self, Sources};
use proptest::prelude::*;

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".*".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::hash_map(".*", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = serde_json::Map<String, serde_json::Value>> {
    prop::collection::hash_map("[^_].*|", json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

proptest! {
    // No failure files: a shrunk counterexample is printed in the test output.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn doc_id_accepts_exactly_24_hex_and_normalises(raw in ".{0,40}|[0-9a-fA-F]{24}") {
        match DocId::parse(&raw) {
            Some(id) => {
                prop_assert!(raw.len() == 24 && raw.bytes().all(|b| b.is_ascii_hexdigit()));
                prop_assert_eq!(id.as_str(), raw.to_ascii_lowercase());
                prop_assert_eq!(DocId::parse(id.as_str()), Some(id.clone()));
                prop_assert_eq!(DocId::from_bytes(id.to_bytes()), id);
            }
            None => prop_assert!(raw.len() != 24 || !raw.bytes().all(|b| b.is_ascii_hexdigit())),
        }
    }

    #[test]
    fn trace_token_is_bounded_printable_and_stable(raw in "\\PC{0,200}|[ -~]{0,140}") {
        if let Some(token) = TraceToken::parse(&raw) {
            let s = token.as_str();
            prop_assert!(!s.is_empty() && s.len() <= TraceToken::MAX_LEN);
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
            prop_assert_eq!(TraceToken::parse(s), Some(token.clone()));
        }
    }

    #[test]
    fn document_parse_never_panics_on_bytes(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Document::parse(&raw);
    }

    #[test]
    fn accepted_documents_round_trip_and_minify_keeps_json_equal(obj in json_object(), pretty in any::<bool>()) {
        let value = serde_json::Value::Object(obj);
        let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
        let doc = Document::parse(text.as_bytes()).expect("a JSON object without _id is accepted");
        // Byte equality with serde_json's compact form: minifying drops
        // only whitespace and keeps every number and escape as written
        // (comparing parsed values would hit serde_json's float rounding).
        prop_assert_eq!(doc.as_str(), serde_json::to_string(&value).unwrap());
        prop_assert_eq!(Document::parse(doc.as_str().as_bytes()).expect("reparse"), doc);
    }

    #[test]
    fn documents_with_a_top_level_id_are_refused(obj in json_object(), id in json_value()) {
        let mut obj = obj;
        obj.insert("_id".into(), id);
        let text = serde_json::to_string(&serde_json::Value::Object(obj)).unwrap();
        prop_assert!(Document::parse(text.as_bytes()).is_err());
    }

    #[test]
    fn customer_name_is_non_empty_and_bounded(raw in "\\PC{0,1100}") {
        let chars = raw.chars().count();
        match CustomerName::parse(raw.clone()) {
            Ok(name) => {
                prop_assert!(chars > 0 && chars <= CustomerName::MAX_CHARS);
                prop_assert_eq!(name.as_str(), raw.as_str());
            }
            Err(_) => prop_assert!(chars == 0 || chars > CustomerName::MAX_CHARS),
        }
    }

    #[test]
    fn forwarded_for_from_untrusted_peer_is_ignored(peer in any::<[u8; 4]>(), xff in "[ -~]{0,200}") {
        let peer = IpAddr::from(peer);
        prop_assume!(!matches!(peer, IpAddr::V4(v4) if v4.octets()[0] == 10));
        let key = ClientKey::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        prop_assert_eq!(key.client_ip(peer, &headers), peer);
    }

    #[test]
    fn forwarded_for_from_trusted_proxy_never_yields_a_proxy_left_of_a_client(
        client in any::<[u8; 4]>(), junk in "[ -~]{0,60}",
    ) {
        let client = IpAddr::from(client);
        prop_assume!(!matches!(client, IpAddr::V4(v4) if v4.octets()[0] == 10));
        let key = ClientKey::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let mut headers = HeaderMap::new();
        // Whatever the client wrote, then what the ALB appended.
        let xff = format!("{}, {client}", junk.replace(',', " "));
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), v);
            prop_assert_eq!(key.client_ip("10.0.3.4".parse().unwrap(), &headers), client);
        }
    }

    #[test]
    fn env_layer_never_panics(vars in prop::collection::hash_map("CINEMO__[A-Za-z_]{0,30}", "\\PC{0,30}", 0..6)) {
        let _ = settings::load(&sources(vars));
    }

    #[test]
    fn env_layer_types_numbers_and_keeps_strings(secs in 1u64..1_000_000, level in "(info|debug|warn|error)") {
        let vars = HashMap::from([
            ("CINEMO__SHUTDOWN__TIMEOUT_SECS".to_owned(), secs.to_string()),
            ("CINEMO__LOG__LEVEL".to_owned(), level.clone()),
        ]);
        let s = settings::load(&sources(vars)).expect("valid settings");
        prop_assert_eq!(s.shutdown.timeout_secs, secs);
        prop_assert_eq!(s.log.level, level);
    }
}

fn sources(vars: HashMap<String, String>) -> Sources {
    Sources {
        config_dir: "/nonexistent/cinemo-config".into(),
        vars,
        ..Sources::default()
    }
}

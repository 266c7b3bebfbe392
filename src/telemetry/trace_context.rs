//! W3C trace context (`traceparent`, version 00) on the request path.
//!
//! The SDK's `TraceContextPropagator` builds the header with `format!` and
//! parses it by splitting into a `Vec` and `from_str_radix`; on every call
//! to the internal tier that was a tenth of what telemetry cost a request.
//! The format is fixed (55 bytes: `00-<32 hex>-<16 hex>-<2 hex>`), so it is
//! written and read here directly. The tests hold both directions to the
//! SDK's propagator.

use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use super::names::TRACEPARENT_HEADER;

pub const TRACESTATE_HEADER: &str = "tracestate";

const LEN: usize = 55;

/// `traceparent` for `sc`, or None when it is not a valid context.
pub fn format(sc: &SpanContext) -> Option<hyper::header::HeaderValue> {
    if !sc.is_valid() {
        return None;
    }
    let mut out = [0u8; LEN];
    out[..3].copy_from_slice(b"00-");
    hex(&sc.trace_id().to_bytes(), &mut out[3..35]);
    out[35] = b'-';
    hex(&sc.span_id().to_bytes(), &mut out[36..52]);
    out[52] = b'-';
    hex(
        &[(sc.trace_flags() & TraceFlags::SAMPLED).to_u8()],
        &mut out[53..55],
    );
    // Lowercase hex and dashes: always a valid header value.
    hyper::header::HeaderValue::from_bytes(&out).ok()
}

fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// The remote span context in a request's `traceparent` (and `tracestate`),
/// or None when there is none or it is invalid. Strict W3C: lowercase hex,
/// exact field lengths, version `ff` and all-zero ids refused; a later
/// version is read by its first four fields.
pub fn extract(headers: &HeaderMap) -> Option<SpanContext> {
    let value = headers.get(TRACEPARENT_HEADER)?.to_str().ok()?;
    let (trace_id, span_id, flags) = parse(value.trim().as_bytes())?;
    let state = headers
        .get(TRACESTATE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceState::from_str(v).ok())
        .unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// The trace id of a valid incoming `traceparent`, as 32 hex characters.
pub fn trace_id_hex(headers: &HeaderMap) -> Option<String> {
    extract(headers).map(|sc| sc.trace_id().to_string())
}

fn parse(b: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    if b.len() < LEN || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let version = unhex(&b[..2])? as u8;
    match version {
        0xff => return None,
        0 if b.len() != LEN => return None,
        // Later versions may append fields, each after a dash.
        _ if b.len() > LEN && b[LEN] != b'-' => return None,
        _ => {}
    }
    let trace_id = TraceId::from(unhex(&b[3..35])?);
    let span_id = SpanId::from(unhex(&b[36..52])? as u64);
    let flags = TraceFlags::new(unhex(&b[53..55])? as u8) & TraceFlags::SAMPLED;
    (trace_id != TraceId::INVALID && span_id != SpanId::INVALID)
        .then_some((trace_id, span_id, flags))
}

/// Lowercase hex digits (at most 32) as a number. Table-driven and
/// branch-free per digit: the ids are random, so a branch on each digit's
/// range mispredicts about every other digit.
fn unhex(digits: &[u8]) -> Option<u128> {
    const BAD: u8 = 0xff;
    const VALUE: [u8; 256] = {
        let mut t = [BAD; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let mut n = 0u128;
    let mut bad = 0u8;
    for d in digits {
        let v = VALUE[usize::from(*d)];
        bad |= v & 0xf0;
        n = n << 4 | u128::from(v & 0x0f);
    }
    (bad == 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use opentelemetry::propagation::{Extractor, TextMapPropagator};
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    fn headers(traceparent: &str, tracestate: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static(TRACEPARENT_HEADER),
            HeaderValue::from_str(traceparent).unwrap(),
        );
        if let Some(state) = tracestate {
            h.insert(
                HeaderName::from_static(TRACESTATE_HEADER),
                HeaderValue::from_str(state).unwrap(),
            );
        }
        h
    }

    struct Headers<'a>(&'a HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }

    /// What the SDK's propagator reads from the same headers.
    fn sdk(h: &HeaderMap) -> Option<SpanContext> {
        let cx = TraceContextPropagator::new().extract(&Headers(h));
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    #[test]
    fn valid_headers_read_as_the_sdk_reads_them() {
        for (tp, ts) in [
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                None,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                Some("foo=bar,k=v"),
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
                None,
            ),
            (
                "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                None,
            ),
            (
                "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-08-XYZxsf09",
                None,
            ),
            (
                " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 ",
                None,
            ),
        ] {
            let h = headers(tp, ts);
            let ours = extract(&h).unwrap_or_else(|| panic!("{tp} refused"));
            assert_eq!(Some(ours.clone()), sdk(&h), "{tp}");
            assert!(ours.is_remote());
        }
    }

    #[test]
    fn invalid_headers_are_refused_like_the_sdk_refuses_them() {
        for tp in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-ab00000000000000000000000000000000-cd00000000000000-01",
            "00-ab000000000000000000000000000000-cd0000000000000000-01",
            "00-ab000000000000000000000000000000-cd00000000000000-0100",
            "qw-00000000000000000000000000000000-0000000000000000-01",
            "00-qw000000000000000000000000000000-cd00000000000000-01",
            "00-ab000000000000000000000000000000-qw00000000000000-01",
            "00-ab000000000000000000000000000000-cd00000000000000-qw",
            "garbage",
            "",
        ] {
            let h = headers(tp, None);
            assert_eq!(extract(&h), None, "{tp:?} accepted");
            assert_eq!(sdk(&h), None, "{tp:?}: the SDK accepts it");
        }
        // Stricter than the SDK, as W3C asks: short fields are not numbers
        // to be zero-padded.
        let short = headers("00-ab-cd-01", None);
        assert_eq!(extract(&short), None);
    }

    #[test]
    fn formatting_matches_the_sdk_and_reads_back() {
        for flags in [TraceFlags::SAMPLED, TraceFlags::default()] {
            let sc = SpanContext::new(
                TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
                SpanId::from(0x00f0_67aa_0ba9_02b7),
                flags,
                false,
                TraceState::default(),
            );
            let ours = format(&sc).unwrap();
            let mut sdk_headers = std::collections::HashMap::new();
            let cx = opentelemetry::Context::new().with_remote_span_context(sc.clone());
            TraceContextPropagator::new().inject_context(&cx, &mut sdk_headers);
            assert_eq!(
                ours.to_str().unwrap(),
                sdk_headers[TRACEPARENT_HEADER],
                "{flags:?}"
            );
            let back = extract(&headers(ours.to_str().unwrap(), None)).unwrap();
            assert_eq!(
                (back.trace_id(), back.span_id(), back.trace_flags()),
                (sc.trace_id(), sc.span_id(), sc.trace_flags())
            );
        }
        assert_eq!(format(&SpanContext::empty_context()), None);
    }

    #[test]
    fn traceparent_gives_its_trace_id_only_when_valid() {
        let ok = headers(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        );
        assert_eq!(
            trace_id_hex(&ok).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "garbage",
        ] {
            assert_eq!(trace_id_hex(&headers(bad, None)), None, "{bad}");
        }
        assert_eq!(trace_id_hex(&HeaderMap::new()), None);
    }
}

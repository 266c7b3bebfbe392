//! Spans, and the latency of calls to dependencies (the internal tier,
//! storage).

use std::time::Instant;

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::instruments;
use crate::telemetry::names::*;
use crate::telemetry::trace_context;

/// Marks a request's context when its caller sent a `traceparent`: the
/// trace is the caller's, so it goes on to the internal tier even when it
/// is not sampled (W3C: a received `traceparent` is passed on).
#[derive(Clone, Copy)]
pub struct CallerTrace;

/// (by `describe`) when the sampler kept it: with the default ratio most
/// spans are not recorded, and building names and attribute lists for them
/// was most of what tracing cost a request.
pub fn start_span(
    parent: &Context,
    kind: SpanKind,
    describe: impl FnOnce(&opentelemetry::trace::SpanRef<'_>),
) -> Context {
    let tracer = &instruments::metrics().tracer;
    let span = tracer
        .span_builder(UNNAMED_SPAN)
        .with_kind(kind)
        .start_with_context(tracer, parent);
    let cx = parent.with_span(span);
    let span = cx.span();
    if span.is_recording() {
        describe(&span);
    }
    cx
}

/// The placeholder name of a span until `start_span` names it.
const UNNAMED_SPAN: &str = "cinemo";

/// A client span and a `cinemo.dependency.duration` measurement for one
/// call to the internal tier or to storage.
pub struct DependencyCall {
    cx: Context,
    /// Whether `cx` holds a span of this call's own (only when sampled).
    own_span: bool,
    peer: &'static str,
    start: Instant,
}

impl DependencyCall {
    /// A child of the current request's span (set by `crate::http::telemetry`);
    /// `name` is only called when the span is sampled. An unsampled request
    /// gets no client span at all: nothing would record it, and the
    /// request's own context carries the "not sampled" decision onwards.
    pub fn start(peer: &'static str, name: impl FnOnce() -> String) -> Self {
        let current = Context::current();
        let sampled = current.span().span_context().is_sampled();
        let cx = if sampled {
            start_span(&current, SpanKind::Client, |span| {
                span.update_name(name());
                span.set_attribute(KeyValue::new(ATTR_PEER, peer));
            })
        } else {
            current
        };
        DependencyCall {
            cx,
            own_span: sampled,
            peer,
            start: Instant::now(),
        }
    }

    /// Adds the W3C headers (`traceparent`, and `tracestate` when there is
    /// one) that make the callee's span a child of this one: when the
    /// trace is sampled, or is the caller's (it came with a `traceparent`).
    /// An unsampled trace this tier started itself is not sent on: the
    /// internal tier starts no traces (`crate::http::telemetry::follower_telemetry`), so without
    /// the header it records nothing, which is what `-00` would have told
    /// it, and nine reads in ten skip writing, compressing, decompressing
    /// and parsing the header (about a third of what tracing cost a read).
    pub fn inject_headers(&self, headers: &mut hyper::header::HeaderMap) {
        let span = self.cx.span();
        let sc = span.span_context();
        if !sc.is_sampled() && self.cx.get::<CallerTrace>().is_none() {
            return;
        }
        if let Some(mut traceparent) = trace_context::format(sc) {
            // A new value on every request: HTTP/2's header compression
            // would only churn its table with it ("never indexed").
            traceparent.set_sensitive(true);
            headers.insert(
                hyper::header::HeaderName::from_static(TRACEPARENT_HEADER),
                traceparent,
            );
            let state = sc.trace_state().header();
            if !state.is_empty()
                && let Ok(state) = hyper::header::HeaderValue::from_str(&state)
            {
                headers.insert(
                    hyper::header::HeaderName::from_static(trace_context::TRACESTATE_HEADER),
                    state,
                );
            }
        }
    }

    /// `outcome`: `success`, `fail` or `timeout`.
    pub fn finish(self, outcome: &'static str) {
        if self.own_span {
            let span = self.cx.span();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(ATTR_OUTCOME, outcome));
                if outcome != OUTCOME_SUCCESS {
                    span.set_status(Status::error(outcome));
                }
            }
            span.end();
        }
        if let Some(histogram) = instruments::metrics().dependency(self.peer, outcome) {
            histogram.record(self.start.elapsed().as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `inject_headers` sends for a request's context.
    fn injected(cx: Context) -> Option<String> {
        let call = DependencyCall {
            cx,
            own_span: false,
            peer: PEER_INTERNAL,
            start: Instant::now(),
        };
        let mut h = hyper::header::HeaderMap::new();
        call.inject_headers(&mut h);
        h.get(TRACEPARENT_HEADER)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn traceparent_goes_on_when_sampled_or_the_callers_only() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let context = |flags| {
            SpanContext::new(
                TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
                SpanId::from(0x00f067aa0ba902b7),
                flags,
                false,
                TraceState::default(),
            )
        };
        let sampled = Context::new().with_remote_span_context(context(TraceFlags::SAMPLED));
        let unsampled = || Context::new().with_remote_span_context(context(TraceFlags::default()));
        assert_eq!(
            injected(sampled).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        // A trace this tier started and did not sample: nothing to follow.
        assert_eq!(injected(unsampled()), None);
        // The caller's trace goes on, sampled or not.
        assert_eq!(
            injected(unsampled().with_value(CallerTrace)).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        );
        // No span at all (export off, no traceparent came in).
        assert_eq!(injected(Context::new()), None);
    }
}

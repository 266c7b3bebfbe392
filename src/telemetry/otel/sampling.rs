//! Which new traces are recorded: decided once, before any span exists.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample};

/// `otlp.trace_sample_ratio` while export is on (the bits of an `f64`);
/// zero, "never", while it is off.
static ROOT_SAMPLE_RATIO: AtomicU64 = AtomicU64::new(0);

/// Whether a new trace started by this tier is to be sampled: decided
/// before any span exists, so that the requests that are not (nine in ten
/// at the default ratio) build no span, context or trace id at all. That
/// took what OpenTelemetry costs a read in the public tier's own code from
/// about 5,300 to 3,100 instructions (docs/performance.md).
pub fn sample_new_trace() -> bool {
    let ratio = f64::from_bits(ROOT_SAMPLE_RATIO.load(Ordering::Relaxed));
    ratio >= 1.0 || (ratio > 0.0 && rand::random::<f64>() < ratio)
}

/// Marks the context a request's new trace starts from when
/// `sample_new_trace` kept it, so that the SDK's sampler agrees instead of
/// drawing again (which would sample at the square of the ratio).
#[derive(Clone, Copy)]
pub struct SampledNewTrace;

/// The root sampler under `ParentBased`: a span marked `SampledNewTrace` is
/// sampled; any other root span (none is started today) gets the ratio.
#[derive(Debug, Clone)]
struct RootSampler {
    ratio: f64,
}

impl ShouldSample for RootSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let sampler = if parent_context.is_some_and(|cx| cx.get::<SampledNewTrace>().is_some()) {
            Sampler::AlwaysOn
        } else {
            Sampler::TraceIdRatioBased(self.ratio)
        };
        sampler.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// The SDK's sampler for `otlp.trace_sample_ratio`, and the ratio
/// `sample_new_trace` decides by from now on.
///
/// Parent-based: the internal tier follows the public tier's decision
/// (carried in `traceparent`), so a trace is whole or absent. The public
/// tier decides for a new trace before it builds a span (`RootSampler`).
pub fn sampler(ratio: f64) -> Sampler {
    ROOT_SAMPLE_RATIO.store(ratio.to_bits(), Ordering::Relaxed);
    Sampler::ParentBased(Box::new(RootSampler { ratio }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_trace_kept_by_the_public_tier_is_sampled_once_not_twice() {
        use opentelemetry_sdk::trace::SamplingDecision;
        let decide = |ratio: f64, cx: &Context| {
            RootSampler { ratio }
                .should_sample(
                    Some(cx),
                    TraceId::from(u128::MAX),
                    "GET",
                    &SpanKind::Server,
                    &[],
                    &[],
                )
                .decision
        };
        let marked = Context::new().with_value(SampledNewTrace);
        // Kept by `sample_new_trace`: the SDK does not draw again, whatever
        // the ratio (a trace id of all ones is never under a ratio below 1).
        assert_eq!(decide(0.0, &marked), SamplingDecision::RecordAndSample);
        assert_eq!(decide(0.5, &marked), SamplingDecision::RecordAndSample);
        // Any other root span gets the configured ratio.
        assert_eq!(decide(0.5, &Context::new()), SamplingDecision::Drop);
        assert_eq!(
            decide(1.0, &Context::new()),
            SamplingDecision::RecordAndSample
        );
    }
}

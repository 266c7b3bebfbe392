//! Every metric and log name cinemo emits, in one place. Alarms, dashboards
//! and the docs depend on these spellings: change them only on purpose.

/// `appId` of frames written by each tier.
pub const APP_ID_PUBLIC: &str = "cinemo-public";
pub const APP_ID_INTERNAL: &str = "cinemo-internal";

/// The contract's six diagnostics counters (Kinesis metric frames).
pub const CREATE_CUSTOMER_ATTEMPT: &str = "createCustomer.attempt";
pub const CREATE_CUSTOMER_SUCCESS: &str = "createCustomer.success";
pub const CREATE_CUSTOMER_FAIL: &str = "createCustomer.fail";
pub const READ_CUSTOMER_ATTEMPT: &str = "readCustomer.attempt";
pub const READ_CUSTOMER_SUCCESS: &str = "readCustomer.success";
pub const READ_CUSTOMER_FAIL: &str = "readCustomer.fail";

/// The request header that switches on log frames for one request.
pub const TRACE_HEADER: &str = "x-trace";

/// The W3C trace context header (`00-<trace id>-<span id>-<flags>`).
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// OpenTelemetry instrumentation scope of every instrument and span.
pub const METER_NAME: &str = "cinemo";

/// OpenTelemetry instruments (docs/interfaces.md, "Kinesis streams and metrics"). The collector's
/// `awsemf` exporter selects them by these names: alarms depend on them.
pub const METRIC_CUSTOMER_CREATE: &str = "cinemo.customer.create";
pub const METRIC_CUSTOMER_READ: &str = "cinemo.customer.read";
pub const METRIC_HTTP_SERVER_DURATION: &str = "http.server.request.duration";
pub const METRIC_DEPENDENCY_DURATION: &str = "cinemo.dependency.duration";
pub const METRIC_KINESIS_RECORDS: &str = "cinemo.kinesis.records";
pub const METRIC_KINESIS_BUFFERED: &str = "cinemo.kinesis.buffered";
/// Failed Kinesis calls and records by error code: the sink's "last error".
pub const METRIC_KINESIS_ERRORS: &str = "cinemo.kinesis.errors";

/// Metric attribute names.
pub const ATTR_OUTCOME: &str = "outcome";
pub const ATTR_PEER: &str = "peer";
pub const ATTR_RESULT: &str = "result";
pub const ATTR_ERROR_TYPE: &str = "error.type";
pub const ATTR_HTTP_ROUTE: &str = "http.route";
pub const ATTR_HTTP_METHOD: &str = "http.request.method";
pub const ATTR_HTTP_STATUS: &str = "http.response.status_code";

/// Attribute values.
pub const OUTCOME_ATTEMPT: &str = "attempt";
pub const OUTCOME_SUCCESS: &str = "success";
pub const OUTCOME_FAIL: &str = "fail";
pub const OUTCOME_TIMEOUT: &str = "timeout";
pub const PEER_INTERNAL: &str = "internal";
pub const PEER_STORAGE: &str = "storage";
pub const RESULT_SENT: &str = "sent";
pub const RESULT_RETRIED: &str = "retried";
pub const RESULT_DROPPED: &str = "dropped";

/// Span attribute carrying the request's `X-Trace` token, so a token from a
/// customer report leads to the OpenTelemetry trace.
pub const SPAN_ATTR_X_TRACE: &str = "cinemo.x_trace";

/// Resource attribute names beyond the semantic conventions' own.
pub const RESOURCE_MODE: &str = "cinemo.mode";

/// Log lines that the test harness and operators wait for or grep.
///
/// Each tier's listener is bound (the line carries `addr`).
pub const LOG_PUBLIC_LISTENING: &str = "public tier listening";
pub const LOG_INTERNAL_LISTENING: &str = "internal tier listening";
/// Every listener of the mode is bound and serving.
pub const LOG_READY: &str = "cinemo is ready";
/// One tier finished its in-flight requests after a stop signal.
pub const LOG_TIER_DRAINED: &str = "tier drained";
/// The Kinesis sink's final counts (target `cinemo::kinesis`).
pub const LOG_KINESIS_SINK_STOPPED: &str = "kinesis sink stopped";
/// A Kinesis write failed (logged when the error changes).
pub const LOG_KINESIS_WRITE_FAILED: &str = "kinesis write failed";
/// A SIGHUP reload of TLS files failed; the old certificates stay.
pub const LOG_TLS_RELOAD_FAILED: &str = "TLS reload failed; keeping the previous certificates";
/// OTLP export stopped working (WARN, once) and works again (INFO).
pub const LOG_OTLP_EXPORT_FAILING: &str =
    "metrics and traces cannot be exported to the OpenTelemetry collector; requests are unaffected";
pub const LOG_OTLP_EXPORT_RESTORED: &str = "metrics and traces are exported again";
/// One line per request (`log.access`), under its own target so a filter
/// can pick it: `log.level = "info,cinemo::access=off"`.
pub const LOG_ACCESS_TARGET: &str = "cinemo::access";
pub const LOG_ACCESS: &str = "request";

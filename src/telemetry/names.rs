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

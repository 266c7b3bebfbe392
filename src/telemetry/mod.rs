//! Logs, diagnostics frames (Kinesis), metrics and traces (OpenTelemetry).

pub mod diagnostics;
pub mod kinesis_sink;
pub mod logging;
pub mod names;
pub mod otel;
pub mod trace_context;

pub use diagnostics::{Diagnostics, Frame};

/// The nice value (Linux) of every thread that exports telemetry: the
/// Kinesis sink and the OpenTelemetry SDK's exporters. Under CPU contention
/// the threads serving requests come first and export takes what they
/// leave. What the Kinesis sink cannot send in time overflows its queue and
/// is counted as dropped (the `<env>-kinesis-dropped` alarm); spans beyond
/// the SDK's queue are dropped by the SDK. Requests never slow down for it.
///
/// The lowest priority there is. At nice 10 the export threads still got
/// about a tenth of a request thread's share of a saturated CPU; the same
/// binary with them at 19 served 11-27% more traced reads in
/// `bench/telemetry.sh` (docs/performance.md). At nice 19 (about 1.5% of a
/// request thread's share) export still runs on a saturated host, and at
/// full speed whenever the CPU is not saturated.
pub const EXPORT_THREAD_NICE: i32 = 19;

/// Lowers the calling thread's scheduling priority (Linux: the nice value is
/// per thread). Best effort: a failure only leaves the default priority.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no
        // memory of ours; with PRIO_PROCESS and a thread id, Linux changes
        // that one thread.
        let rc =
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not lower a telemetry thread's priority"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

//! The CPU priority of the threads that export telemetry.

/// How the threads that export telemetry (the Kinesis sink and the
/// OpenTelemetry SDK's exporters) are scheduled on Linux: `SCHED_IDLE`, the
/// policy for work that should run only when nothing else wants the CPU.
/// Under contention the threads serving requests come first and export
/// takes what they leave. What the Kinesis sink cannot send in time
/// overflows its queue and is counted as dropped (the `<env>-kinesis-dropped`
/// alarm); spans beyond the SDK's queue are dropped by the SDK. Requests
/// never slow down for it.
///
/// Why not only a nice value: at nice 10 the export threads still got about
/// a tenth of a request thread's share of a saturated CPU, and nice 19
/// served 11-27% more traced reads. But a nice-19 thread is not preempted
/// at once when a request thread wakes up on its core: the scheduler lets
/// it finish its slice, and a PutRecords batch (500 frames turned into
/// JSON, signed and sent) is most of a millisecond. At 5,000 traced reads
/// a second the Kinesis sink put about 0.4 ms on the read path's p99; a
/// `SCHED_IDLE` thread gives up the core as soon as a normal thread wants
/// it, which took 0.15-0.25 ms of that back (docs/performance.md). The nice
/// value is set too, for where the policy is refused.
pub const EXPORT_THREAD_NICE: i32 = 19;

/// Puts the calling thread at export priority (`EXPORT_THREAD_NICE`, then
/// `SCHED_IDLE`; both per thread on Linux, and inherited by the threads it
/// starts). Best effort: a failure only leaves the default priority.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid, setpriority and sched_setscheduler take plain
        // integers and a pointer to a local that outlives the call; with
        // PRIO_PROCESS and a thread id, and with pid 0, Linux changes the
        // calling thread only.
        let tid = unsafe { libc::gettid() } as libc::id_t;
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, EXPORT_THREAD_NICE) } != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not lower a telemetry thread's nice value"
            );
        }
        let param = libc::sched_param { sched_priority: 0 };
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not put a telemetry thread under SCHED_IDLE"
            );
        }
    }
}

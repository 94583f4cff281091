import Dispatch

/// Runs a journal actor on its own serial dispatch queue instead of Swift's cooperative pool.
///
/// SQLite calls block (a `full` commit waits for `fsync`). On the cooperative pool, which has one
/// thread per core, that would stall unrelated tasks; a serial queue targets libdispatch's
/// overcommitting pool, so a blocked journal costs one extra thread, not a core's worth of tasks.
///
/// The journal also submits its commits here directly (``submit(after:_:)``), without a Task: a
/// write queued from any thread costs one hop to this queue, not a hop through the cooperative
/// pool first.
final class JournalExecutor: SerialExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async {
            job.runSynchronously(on: self.asUnownedSerialExecutor())
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets `assumeIsolated` accept code submitted with ``submit(after:_:)``: it runs on this
    /// queue, serially with the actor's jobs.
    func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }

    /// Runs `body` on the queue, serially with the actor's jobs, after `delay` (at once if zero).
    func submit(after delay: Duration, _ body: @escaping @Sendable () -> Void) {
        guard delay > .zero else { return queue.async(execute: body) }
        queue.asyncAfter(deadline: .now() + Self.interval(delay), execute: body)
    }

    /// `delay` as a dispatch interval, clamped to a day (never trapping on a huge duration).
    static func interval(_ delay: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = delay.components
        guard seconds < 86_400 else { return .seconds(86_400) }
        return .nanoseconds(Int(max(0, seconds)) * 1_000_000_000 + Int(max(0, attoseconds / 1_000_000_000)))
    }
}

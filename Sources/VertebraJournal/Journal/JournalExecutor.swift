import Dispatch

/// Runs a journal actor on its own serial dispatch queue instead of Swift's cooperative pool.
///
/// SQLite calls block (a `full` commit waits for `fsync`). On the cooperative pool, which has one
/// thread per core, that would stall unrelated tasks; a serial queue targets libdispatch's
/// overcommitting pool, so a blocked journal costs one extra thread, not a core's worth of tasks.
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
}

internal import CSQLite
import Dispatch
import Synchronization

/// Checkpoints the journal's WAL on its own connection and thread, so that no commit waits for
/// a checkpoint (SQLite's autocheckpoint runs inside the COMMIT that crosses the threshold, and
/// its fsyncs were the journal's p99).
///
/// The writer's WAL hook (``Connection/setWALHook(_:)``) reports the WAL size after each
/// commit; past `thresholdPages` a PASSIVE checkpoint is queued (at most one at a time). A
/// PASSIVE checkpoint never blocks the writer. Should the WAL still grow past `hardLimitPages`
/// (checkpoints that never catch up under sustained writes), the writer is asked to checkpoint
/// itself (``writerMustCheckpoint``), which bounds the file.
final class WALCheckpointer: Sendable {
    let thresholdPages: Int32
    var hardLimitPages: Int32 { thresholdPages.multipliedReportingOverflow(by: 8).overflow ? .max : thresholdPages * 8 }
    private let queue = DispatchQueue(label: "vertebra.journal.checkpoint", qos: .utility)
    /// Used only on `queue`.
    private nonisolated(unsafe) let connection: Connection
    private let scheduled = Atomic<Bool>(false)
    private let overdue = Atomic<Bool>(false)
    private let completed = Atomic<Int>(0)

    init(path: String, busyTimeout: Duration, thresholdPages: Int) throws {
        self.thresholdPages = Int32(clamping: max(1, thresholdPages))
        connection = try Connection(path: path, mode: .readWriteExisting, busyTimeout: busyTimeout)
    }

    /// Checkpoints done on the checkpoint thread so far.
    var checkpoints: Int { completed.load(ordering: .relaxed) }

    /// Set when the WAL outgrew the hard limit; the writer clears it by checkpointing.
    var writerMustCheckpoint: Bool { overdue.load(ordering: .acquiring) }

    func writerCheckpointed() { overdue.store(false, ordering: .releasing) }

    /// Called from the writer's WAL hook, inside its commit: never blocks.
    func walGrew(to pages: Int32) {
        if pages >= hardLimitPages { overdue.store(true, ordering: .releasing) }
        guard pages >= thresholdPages,
            scheduled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        queue.async {
            try? self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.completed.add(1, ordering: .relaxed)
            self.scheduled.store(false, ordering: .releasing)
        }
    }

    /// Waits for a checkpoint in progress and closes the connection.
    func close() {
        queue.sync { connection.close() }
    }
}

import CoreMetrics
import Foundation
import Synchronization

/// The exchange journal: the one writer of a journal file (DESIGN §5).
///
/// ## Group commit
/// Any number of tasks call ``write(_:)-swift.method`` concurrently. Their records are queued and
/// committed together in one SQLite transaction: a batch is flushed as soon as the writer is free
/// (everything that arrived during the previous commit goes into the next one), after
/// ``GroupCommit/maxDelay`` if that is set, or at once when ``GroupCommit/maxRecords`` writes are
/// waiting. Each caller resumes only after the transaction holding its records committed with the
/// configured ``Durability``. Each write runs inside its own savepoint, so a write that breaks a
/// journal rule (an illegal transition, a duplicate stanza) fails alone; if the commit itself
/// fails (disk full, I/O error, lock timeout) every write of the batch throws that error and none
/// of them is in the journal.
///
/// ## Why the raw SQLite C API and not GRDB
/// The journal needs exactly one writer connection with its own batching and commit policy; GRDB's
/// `DatabasePool` would put a second serial queue and transaction layer between the batches and
/// SQLite. The C API keeps the dependency graph lean (libsqlite3 only), and every value is still a
/// bound parameter, so nothing is ever escaped by hand.
///
/// ## Threads
/// The actor runs on its own serial dispatch queue (SQLite blocks on `fsync`); the `sqlite3*`
/// handle is owned by a non-`Sendable` object only this actor touches.
public actor ExchangeJournal {
    /// How writes are committed.
    public enum CommitMode: Sendable, Equatable {
        /// Batch writes of concurrent callers into one transaction.
        case group(GroupCommit)
        /// One transaction per write (the benchmark's baseline).
        case perRecord
    }

    /// Group-commit limits.
    public struct GroupCommit: Sendable, Equatable {
        /// Flush at once when this many writes are waiting.
        public var maxRecords: Int
        /// Wait this long after the first queued write for more to arrive. Zero flushes as soon as
        /// the writer is free, which already batches everything that arrived during the last commit.
        public var maxDelay: Duration
        /// How long writes queued without waiting (``ExchangeJournal/writeLater(_:onFailure:)``)
        /// may stay queued when no awaited write comes to carry them: they ride the next awaited
        /// write's transaction, or commit on their own after this delay. Nothing waits for them,
        /// so the delay costs no one latency and saves a commit per lazy write at low load.
        public var lazyDelay: Duration

        public init(maxRecords: Int = 1024, maxDelay: Duration = .zero, lazyDelay: Duration = .milliseconds(5)) {
            self.maxRecords = max(1, maxRecords)
            self.maxDelay = maxDelay
            self.lazyDelay = max(.zero, lazyDelay)
        }
    }

    /// How to open the journal.
    public struct Options: Sendable {
        /// `full` or `normal`; nil keeps what the journal's metadata says (`full` for a new journal).
        public var durability: Durability?
        public var commit: CommitMode
        /// How long to wait for another process's lock before failing with ``JournalError/Code/locked``.
        public var busyTimeout: Duration
        /// Caps the file at this many pages (4 KiB each); writes past it fail with
        /// ``JournalError/Code/diskFull``. Nil means no cap.
        public var maxPageCount: Int?
        /// The clock used for times the records leave unset.
        public var now: @Sendable () -> Date
        /// Create the file when it does not exist (otherwise throw ``JournalError/Code/fileNotFound``).
        public var createIfMissing: Bool
        /// Checkpoint the WAL into the main file once it holds this many pages (4 KiB each); the
        /// WAL file is truncated back to this size after each checkpoint.
        ///
        /// Checkpoints run on their own connection and thread (a PASSIVE checkpoint, which never
        /// blocks the writer), so no commit waits for their `fsync`s; only a WAL past 8 × this
        /// (checkpoints not keeping up) makes the writer checkpoint itself, after a commit.
        public var checkpointPages: Int
        /// For crash tests only: the journal dies after this many commits, as its process would
        /// (see ``SimulatedCrash``). Nil in production.
        public var simulatedCrash: SimulatedCrash?
        /// Where the commit metrics go (`vertebra_journal_commit_duration_seconds`,
        /// `vertebra_journal_commit_writes`): the process's swift-metrics backend unless set.
        public var metrics: any MetricsFactory = MetricsSystem.factory

        public init(
            durability: Durability? = nil, commit: CommitMode = .group(GroupCommit()),
            busyTimeout: Duration = .seconds(5), maxPageCount: Int? = nil,
            now: @escaping @Sendable () -> Date = { Date() }, createIfMissing: Bool = true,
            checkpointPages: Int = 4096
        ) {
            self.checkpointPages = max(1, checkpointPages)
            self.createIfMissing = createIfMissing
            self.durability = durability
            self.commit = commit
            self.busyTimeout = busyTimeout
            self.maxPageCount = maxPageCount
            self.now = now
        }
    }

    /// A process death at a chosen commit, for crash tests: the commit after the first
    /// `afterCommits` fails, `onCrash` runs first (a test cuts the process's network link there,
    /// so nothing more leaves it), and every later write fails too. What was committed stays on
    /// disk for the next process to recover from; what was queued is lost.
    public struct SimulatedCrash: Sendable {
        public var afterCommits: Int
        public var onCrash: @Sendable () -> Void

        public init(afterCommits: Int, onCrash: @escaping @Sendable () -> Void) {
            self.afterCommits = afterCommits
            self.onCrash = onCrash
        }
    }

    /// The journal file.
    public nonisolated let path: String
    /// The durability this writer commits with.
    public nonisolated let durability: Durability
    /// The schema version this build writes.
    public static var schemaVersion: Int { Schema.currentVersion }

    private let executor: JournalExecutor
    private let connection: Connection
    private let checkpointer: WALCheckpointer
    private let options: Options
    private let commitDuration: CoreMetrics.Timer
    private let commitWrites: Recorder
    /// Queued writes and their counters, behind a lock so that ``writeLater(_:onFailure:)`` queues
    /// without a hop to the journal's executor (and keeps its place in the order of writes).
    private let queue = Mutex(WriteQueue())
    /// Transactions committed by writes so far: with group commit, far fewer than writes.
    public private(set) var committedBatches = 0
    /// Writes whose caller waited for the commit (``write(_:)-swift.method``).
    public var awaitedWrites: Int { queue.withLock { $0.awaitedWrites } }
    /// Writes queued without waiting (``writeLater(_:onFailure:)``).
    public var lazyWrites: Int { queue.withLock { $0.lazyWrites } }
    /// Records written so far, awaited or not.
    public var recordsWritten: Int { queue.withLock { $0.recordsWritten } }
    /// Set once a ``SimulatedCrash`` happened.
    public private(set) var hasCrashed = false

    private struct WriteQueue {
        var pending: [PendingWrite] = []
        var closed = false
        /// A flush is queued on the journal's executor.
        var flushScheduled = false
        /// A flush of lazy writes is due after ``GroupCommit/lazyDelay``.
        var lazyFlushScheduled = false
        var awaitedWrites = 0, lazyWrites = 0, recordsWritten = 0

        /// What queueing a write asks of the journal.
        enum Next { case nothing, flushNow, scheduleFlush, scheduleLazyFlush }

        mutating func add(_ write: PendingWrite, limit: Int) -> Next {
            pending.append(write)
            recordsWritten += write.records.count
            let awaited = if case .caller = write.waiter { true } else { false }
            if awaited { awaitedWrites += 1 } else { lazyWrites += 1 }
            if pending.count >= limit { return awaited ? .flushNow : schedule() }
            if awaited { return schedule() }
            guard !flushScheduled, !lazyFlushScheduled else { return .nothing }
            lazyFlushScheduled = true
            return .scheduleLazyFlush
        }

        private mutating func schedule() -> Next {
            guard !flushScheduled else { return .nothing }
            flushScheduled = true
            return .scheduleFlush
        }

        mutating func take() -> [PendingWrite] {
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }

    private struct PendingWrite {
        var records: [JournalRecord]
        var waiter: Waiter

        enum Waiter {
            case caller(CheckedContinuation<[RecordOutcome], any Error>)
            case lazy((@Sendable (any Error) -> Void)?)
        }

        func finish(with result: Result<[RecordOutcome], any Error>) {
            switch (waiter, result) {
            case (.caller(let continuation), _): continuation.resume(with: result)
            case (.lazy(let onFailure?), .failure(let error)): onFailure(error)
            case (.lazy, _): break
            }
        }
    }

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Opens (creating if needed) and migrates the journal at `path`.
    ///
    /// - Throws: ``JournalError`` — `.corrupt`, `.newerSchema`, `.readOnly`, `.locked`, `.cannotOpen`, ...
    public init(path: String, options: Options = Options()) throws {
        self.path = path
        self.options = options
        commitDuration = CoreMetrics.Timer(label: "vertebra_journal_commit_duration_seconds", factory: options.metrics)
        commitWrites = Recorder(label: "vertebra_journal_commit_writes", factory: options.metrics)
        self.executor = JournalExecutor(label: "vertebra.journal")
        if options.createIfMissing { Self.createPrivately(path) }
        let connection = try Connection(
            path: path, mode: options.createIfMissing ? .readWrite : .readWriteExisting,
            busyTimeout: options.busyTimeout)
        Self.makePrivate(path)
        // Without createIfMissing (`vertebra jobs prune`) an empty file is not made a journal.
        if try Schema.check(connection) == 0 && !options.createIfMissing {
            throw JournalError(
                .corrupt, "The file is empty, not a Vertebra journal", path: path,
                remedy: "Point --journal at a journal; one is created by the first coordinator or worker that runs with it")
        }
        let mode = try connection.first("PRAGMA journal_mode = WAL") { $0.text(0) }
        guard mode?.lowercased() == "wal" else {
            throw JournalError(
                .locked, "Cannot switch the journal to WAL mode (it stays '\(mode ?? "?")')", path: path,
                remedy: "Another process may hold the file in another journal mode; stop it and retry")
        }
        try connection.execute("PRAGMA foreign_keys = ON")
        // The schema's CHECKs (state IN (...)) build a temporary b-tree per row written; this
        // connection writes only the raw values of Swift enums, so it skips them (a quarter of
        // the coordinator's SQL time per job). Every other connection, e.g. the sqlite3 shell,
        // is still held to them.
        try connection.execute("PRAGMA ignore_check_constraints = ON")
        // 16 MiB of page cache keeps the hot index pages of a busy journal in memory.
        try connection.execute("PRAGMA cache_size = -16384")
        // Each write of a batch runs in a savepoint, whose undo pages SQLite spills to a
        // temporary file past 64 KiB: megabytes of file writes a second under load, for undo
        // data no crash ever needs (a crash rolls back the whole transaction through the WAL).
        try connection.execute("PRAGMA temp_store = MEMORY")
        // Checkpoints run on their own connection and thread (WALCheckpointer), never inside a
        // commit: SQLite's own autocheckpoint is off.
        try connection.execute("PRAGMA wal_autocheckpoint = 0")
        _ = try connection.first("PRAGMA journal_size_limit = \(options.checkpointPages * 4096)") { $0.int64(0) }
        try Schema.migrate(connection)
        let recorded = try connection.first("SELECT value FROM meta WHERE key = 'durability'") {
            Durability(rawValue: $0.text(0))
        } ?? nil
        let durability = options.durability ?? recorded ?? .full
        try connection.execute("PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
        if let pages = options.maxPageCount {
            _ = try connection.first("PRAGMA max_page_count = \(max(1, pages))") { $0.int(0) }
        }
        if recorded != durability {
            try connection.run(
                "INSERT INTO meta (key, value) VALUES ('durability', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [.text(durability.rawValue)])
        }
        self.durability = durability
        self.connection = connection
        checkpointer = try WALCheckpointer(path: path, busyTimeout: options.busyTimeout, thresholdPages: options.checkpointPages)
        connection.setWALHook(checkpointer)
    }

    /// A new journal is created owner-only (it holds every argument and result); SQLite gives
    /// its -wal and -shm files the same mode.
    private static func createPrivately(_ path: String) {
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    /// A journal of ours made group- or world-readable by an older version is made owner-only.
    private static func makePrivate(_ path: String) {
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard lstat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == getuid(), info.st_mode & 0o077 != 0 else {
                continue
            }
            chmod(file, 0o600)
        }
    }

    // MARK: Writing

    /// Journals `records` atomically and returns once they are committed.
    ///
    /// - Throws: ``JournalError``. Rule violations (`.illegalTransition`, `.duplicateStanza`,
    ///   `.supersededAttempt`, `.unknownJob`, ...) concern this write only; commit failures
    ///   (`.diskFull`, `.ioError`, `.locked`, ...) mean nothing of the batch was journalled.
    @discardableResult
    public nonisolated func write(_ records: [JournalRecord]) async throws -> [RecordOutcome] {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(PendingWrite(records: records, waiter: .caller(continuation)))
        }
    }

    /// Queues `records` for the next commit without waiting for it (DESIGN §5.1: what need not
    /// be durable before anything is sent). Writes keep their order: a later ``write(_:)-swift.method``
    /// commits in the same transaction or after this one; with none to carry them, they commit
    /// after ``GroupCommit/lazyDelay``. `onFailure` hears a rule violation or a failed commit;
    /// nothing else reports them.
    public nonisolated func writeLater(_ records: [JournalRecord], onFailure: (@Sendable (any Error) -> Void)? = nil) {
        enqueue(PendingWrite(records: records, waiter: .lazy(onFailure)))
    }

    /// Queues a write from the caller's thread (no hop to the journal's queue for that) and, when
    /// no commit is due yet, submits one to the journal's queue: a write costs one hop there and
    /// one back, and writes queued while a commit runs go into the next one together.
    private nonisolated func enqueue(_ write: PendingWrite) {
        let next: WriteQueue.Next? = queue.withLock { queue in
            guard !queue.closed else { return nil }
            return queue.add(write, limit: batchLimit)
        }
        guard let next else { return write.finish(with: .failure(closedError)) }
        switch next {
        case .nothing: break
        case .flushNow: executor.submit(after: .zero) { self.assumeIsolated { $0.flush() } }
        case .scheduleFlush: executor.submit(after: flushDelay) { self.assumeIsolated { $0.scheduledFlush() } }
        case .scheduleLazyFlush: executor.submit(after: lazyDelay) { self.assumeIsolated { $0.lazyFlush() } }
        }
    }

    private nonisolated var batchLimit: Int {
        if case .group(let policy) = options.commit { policy.maxRecords } else { 1 }
    }

    private nonisolated var flushDelay: Duration {
        if case .group(let policy) = options.commit { policy.maxDelay } else { .zero }
    }

    private nonisolated var lazyDelay: Duration {
        if case .group(let policy) = options.commit { policy.lazyDelay } else { .zero }
    }

    private nonisolated var closedError: JournalError { JournalError(.closed, "The journal is closed", path: path) }

    /// Journals one record; see ``write(_:)-swift.method``.
    @discardableResult
    public nonisolated func write(_ record: JournalRecord) async throws -> RecordOutcome {
        try await write([record]).first ?? .none
    }

    private func scheduledFlush() {
        queue.withLock { $0.flushScheduled = false }
        flush()
    }

    /// Commits lazy writes that no awaited write carried within the lazy delay.
    private func lazyFlush() {
        queue.withLock { $0.lazyFlushScheduled = false }
        flush()
    }

    /// Commits every queued write (in one transaction with group commit, one each per record
    /// mode) and resumes their callers.
    private func flush() {
        let batch = queue.withLock { $0.take() }
        guard !batch.isEmpty else { return }
        guard connection.isOpen else {
            for write in batch { write.finish(with: .failure(closedError)) }
            return
        }
        if case .perRecord = options.commit {
            for write in batch { commit([write]) }
        } else {
            commit(batch)
        }
        checkpointIfOverdue()
    }

    private func commit(_ batch: [PendingWrite]) {
        let now = options.now()
        let started = ContinuousClock.now
        var results: [Result<[RecordOutcome], any Error>] = []
        results.reserveCapacity(batch.count)
        do {
            try surviveCommit()
            try connection.run("BEGIN IMMEDIATE")
            for write in batch {
                results.append(try applyInSavepoint(write.records, now: now))
            }
            try connection.run("COMMIT")
            committedBatches += 1
        } catch {
            rollback()
            for write in batch { write.finish(with: .failure(error)) }
            return
        }
        let (seconds, attoseconds) = (ContinuousClock.now - started).components
        commitDuration.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        commitWrites.record(batch.count)
        for (write, result) in zip(batch, results) { write.finish(with: result) }
    }

    /// Applies one write inside a savepoint. A rule violation rolls back that write only and is
    /// returned; anything else (the batch can no longer commit) is thrown.
    private func applyInSavepoint(_ records: [JournalRecord], now: Date) throws -> Result<[RecordOutcome], any Error> {
        // A lone record other than openConversation checks every rule before its one modifying
        // statement, and SQLite undoes a failed statement by itself: no savepoint needed.
        if records.count == 1, let record = records.first, !record.modifiesBeforeItsLastCheck {
            do {
                return .success(try connection.apply(records, now: now))
            } catch let error as JournalError where error.code.isConfinedToWrite && !connection.isAutocommit {
                return .failure(error)
            }
        }
        try connection.run("SAVEPOINT write")
        do {
            let outcomes = try connection.apply(records, now: now)
            try connection.run("RELEASE write")
            return .success(outcomes)
        } catch let error as JournalError where error.code.isConfinedToWrite && !connection.isAutocommit {
            try connection.run("ROLLBACK TO write")
            try connection.run("RELEASE write")
            return .failure(error)
        }
    }

    /// The WAL outgrew what the background checkpoints keep up with: checkpoint here, after the
    /// callers were resumed (rare; bounds the file under sustained writes).
    private func checkpointIfOverdue() {
        guard checkpointer.writerMustCheckpoint else { return }
        try? connection.execute("PRAGMA wal_checkpoint(RESTART)")
        checkpointer.writerCheckpointed()
    }

    /// Background WAL checkpoints done so far.
    public var backgroundCheckpoints: Int { checkpointer.checkpoints }

    /// Throws when a ``SimulatedCrash`` is due or happened.
    private func surviveCommit() throws {
        guard let crash = options.simulatedCrash else { return }
        if !hasCrashed, committedBatches >= crash.afterCommits {
            hasCrashed = true
            crash.onCrash()
        }
        if hasCrashed { throw JournalError(.ioError, "simulated crash after \(crash.afterCommits) commits", path: path) }
    }

    private func rollback() {
        if !connection.isAutocommit { try? connection.run("ROLLBACK") }
    }

    // MARK: Retention

    /// Deletes terminal jobs that finished before `cutoff`, with their conversations and stanzas.
    ///
    /// Works in transactions of at most `batchSize` jobs and lets queued writes commit between
    /// them, so the writer is never blocked for long.
    /// - Returns: how many jobs were deleted.
    public func prune(finishedBefore cutoff: Date, batchSize: Int = 200) async throws -> Int {
        var total = 0
        while true {
            guard connection.isOpen else { throw JournalError(.closed, "The journal is closed", path: path) }
            let deleted: Int
            do {
                try connection.run("BEGIN IMMEDIATE")
                try connection.run(
                    """
                    DELETE FROM jobs WHERE token IN (
                        SELECT token FROM jobs
                        WHERE finished IS NOT NULL AND finished < ? AND state IN ('done', 'failed', 'cancelled')
                        LIMIT ?)
                    """, [.time(cutoff), .int(max(1, batchSize))])
                deleted = connection.changes
                try connection.run("COMMIT")
            } catch {
                rollback()
                throw error
            }
            total += deleted
            if deleted < batchSize { return total }
            await Task.yield()
        }
    }

    // MARK: Reading (committed data only)

    /// Commits queued writes first, so that a reader in this process sees its own writes at
    /// once (another process sees them when the writer is next free).
    private func flushQueued() {
        flush()
    }

    /// The job with this token, if any.
    public func job(_ token: String) throws -> Job? { flushQueued(); return try connection.job(token: token) }

    /// The unfinished job holding unique `key`, if any.
    public func unfinishedJob(key: String) throws -> Job? {
        flushQueued()
        return try connection.unfinishedJob(key: key).flatMap { try connection.job(token: $0) }
    }

    /// A job by its token or a unique prefix of it.
    /// - Throws: `.unknownJob`, `.ambiguousJob`, `.invalidArgument`.
    public func job(matching id: String) throws -> Job { flushQueued(); return try connection.job(matching: id) }

    /// Jobs matching `filter`, newest first.
    public func jobs(matching filter: JobFilter) throws -> [Job] { flushQueued(); return try connection.jobs(matching: filter) }

    /// A job (by token or unique prefix) with its conversations and stanzas.
    public func timeline(ofJob id: String) throws -> JobTimeline { flushQueued(); return try connection.timeline(ofJob: id) }

    /// The conversations of a job, oldest first.
    public func conversations(ofJob token: String) throws -> [Conversation] {
        flushQueued()
        return try connection.conversations(ofJob: token)
    }

    /// Stanzas of a conversation in sequence order.
    public func stanzas(ofConversation id: Int64) throws -> [Stanza] { flushQueued(); return try connection.stanzas(ofConversation: id) }

    /// Duplicate suppression: the inbound stanza already recorded for `(peer, iqID)`, whose
    /// ``Stanza/answer`` is what to send again.
    public func inboundStanza(peer: String, iqID: String) throws -> Stanza? {
        flushQueued()
        return try connection.inboundStanza(peer: peer, iqID: iqID)
    }

    /// Duplicate suppression for a repeated `op` token: the performer conversation `peer` already
    /// started for job `token`, and the recorded answer.
    public func opReplay(job token: String, peer: String) throws -> OpReplay? {
        flushQueued()
        return try connection.opReplay(job: token, peer: peer)
    }

    /// Everything a performer checks when an `op` for job `token` arrives from `peer` with
    /// `iqID` (a repeat? an attempt of that job still open here? the job's row?), in one call.
    public func opArrival(peer: String, iqID: String, job token: String) throws -> OpArrival {
        flushQueued()
        let repeated = try connection.inboundStanza(peer: peer, iqID: iqID)
        let earlier = repeated == nil ? try connection.opReplay(job: token, peer: peer) : nil
        let stanzas = try earlier.map { $0.conversation.state == .open ? try connection.stanzas(ofConversation: $0.conversation.id) : [] } ?? []
        return OpArrival(repeated: repeated, earlier: earlier, earlierStanzas: stanzas, job: try connection.job(token: token))
    }

    /// The conversation named `token` (`A:B`), if any.
    public func conversation(token: String) throws -> Conversation? { flushQueued(); return try connection.conversation(token: token) }

    /// Fencing: the conversation `token` (`A:B`) if it is the current attempt of its job.
    /// - Throws: `.supersededAttempt` or `.unknownConversation`.
    @discardableResult
    public func currentAttempt(_ token: String) throws -> Conversation { flushQueued(); return try connection.currentAttempt(token: token) }

    /// Every open, current conversation in `role`, whatever its job's state (recovery of a
    /// conversation whose job ended but whose end was not yet delivered).
    public func openConversations(role: ConversationRole) throws -> [Conversation] {
        flushQueued()
        return try connection.openConversations(role: role)
    }

    /// Crash recovery: every open, current conversation of a non-terminal job, with its
    /// unacknowledged stanzas.
    public func recoverableConversations() throws -> [RecoveryItem] { flushQueued(); return try connection.recoverableConversations() }

    /// Counts per state and operation, and duration percentiles.
    public func statistics() throws -> JournalStatistics { flushQueued(); return try connection.statistics() }

    /// Path, schema version, durability and size.
    public func info() throws -> JournalInfo { flushQueued(); return try connection.info() }

    /// The agent state kept with ``JournalRecord/setMeta(key:value:)`` under keys starting with
    /// `prefix`, by key.
    public func meta(prefix: String) throws -> [String: String] {
        flushQueued()
        let rows = try connection.all(
            "SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) = ?1", [.text(prefix)]
        ) { ($0.text(0), $0.text(1)) }
        return Dictionary(rows, uniquingKeysWith: { _, last in last })
    }

    /// The writer connection's `PRAGMA synchronous` (2 = FULL, 1 = NORMAL), `PRAGMA
    /// wal_autocheckpoint` and `PRAGMA temp_store` (2 = MEMORY), for tests that check the
    /// settings really took effect.
    func writerPragmas() throws -> (synchronous: Int64, walAutocheckpoint: Int64, tempStore: Int64) {
        (try connection.scalarInt("PRAGMA synchronous"), try connection.scalarInt("PRAGMA wal_autocheckpoint"),
         try connection.scalarInt("PRAGMA temp_store"))
    }

    /// Commits anything queued, checkpoints the WAL and closes the file. Later writes throw `.closed`.
    public func close() {
        queue.withLock { $0.closed = true }
        flush()
        checkpointer.close()
        if connection.isOpen { try? connection.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        connection.close()
    }
}

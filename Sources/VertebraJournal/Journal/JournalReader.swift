import Foundation

/// Read-only access to a journal file, for `vertebra jobs` and other inspectors.
///
/// Opens the file read-only, so it never blocks the agent writing to it: WAL mode lets a reader
/// see the last committed state while the writer goes on. A journal made by an older schema is
/// migrated first (briefly opening it for writing); a newer one, an empty file and anything
/// else are refused, and never written.
public actor JournalReader {
    /// The journal file.
    public nonisolated let path: String
    private let connection: Connection

    /// Opens the journal at `path` for reading.
    /// - Throws: ``JournalError``: `.fileNotFound`, `.corrupt`, `.newerSchema`, `.locked`, ...
    public init(path: String, busyTimeout: Duration = .seconds(5)) throws {
        self.path = path
        var connection = try Connection(path: path, mode: .readOnly, busyTimeout: busyTimeout)
        let version = try Schema.check(connection)
        // An empty file is no journal: reading it must not make it one.
        guard version > 0 else {
            throw JournalError(
                .corrupt, "The file is empty, not a Vertebra journal", path: path,
                remedy: "Point --journal at a journal; one is created by the first coordinator or worker that runs with it")
        }
        if version < Schema.currentVersion {
            connection.close()
            let writer = try Connection(path: path, mode: .readWrite, busyTimeout: busyTimeout)
            try writer.execute("PRAGMA journal_mode = WAL")
            try Schema.migrate(writer)
            writer.close()
            connection = try Connection(path: path, mode: .readOnly, busyTimeout: busyTimeout)
            _ = try Schema.check(connection)
        }
        self.connection = connection
    }

    /// A job by its full token or a unique prefix. Throws `.unknownJob` or `.ambiguousJob`.
    public func job(matching id: String) throws -> Job { try connection.job(matching: id) }

    /// Jobs matching `filter`, newest first.
    public func jobs(matching filter: JobFilter) throws -> [Job] { try connection.jobs(matching: filter) }

    /// A job (by token or unique prefix) with its conversations and stanzas.
    public func timeline(ofJob id: String) throws -> JobTimeline { try connection.timeline(ofJob: id) }

    /// Counts per state and operation, and duration percentiles.
    public func statistics() throws -> JournalStatistics { try connection.statistics() }

    /// Path, schema version, durability and size.
    public func info() throws -> JournalInfo { try connection.info() }

    /// Whether a job with exactly this token exists.
    public func contains(job token: String) throws -> Bool { try connection.job(token: token) != nil }

    /// Runs SQLite's `quick_check`; true when the file is consistent.
    public func quickCheck() throws -> Bool {
        try connection.first("PRAGMA quick_check") { $0.text(0) } == "ok"
    }
}

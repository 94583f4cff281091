internal import CSQLite
import Foundation

/// A value bound to a statement parameter. Every value reaches SQLite as a bound parameter, so
/// nothing is ever quoted or escaped by hand.
enum SQLValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    static func optional(_ text: String?) -> SQLValue { text.map(SQLValue.text) ?? .null }
    static func int(_ value: Int) -> SQLValue { .integer(Int64(value)) }
}

/// One SQLite connection (`sqlite3*`) and its prepared statements.
///
/// Not `Sendable` on purpose: an instance is owned by exactly one actor (``ExchangeJournal`` or
/// ``JournalReader``), which is what makes using it without a mutex safe.
final class Connection {
    enum Mode {
        /// Open for reading and writing, creating the file (and its directory) if needed.
        case readWrite
        /// Open an existing file for reading and writing.
        case readWriteExisting
        /// Open an existing file for reading only.
        case readOnly
    }

    let path: String
    private var handle: OpaquePointer?
    private var statements: [String: Statement] = [:]

    init(path: String, mode: Mode, busyTimeout: Duration) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && isDirectory.boolValue {
            throw JournalError(
                .cannotOpen, "The journal path is a directory, not a file", path: path,
                remedy: "Point --journal (or $VERTEBRA_JOURNAL) at a journal file, e.g. \(path)/journal.sqlite")
        }
        var flags = SQLITE_OPEN_NOMUTEX
        switch mode {
        case .readOnly, .readWriteExisting:
            guard exists else {
                throw JournalError(
                    .fileNotFound, "No journal file at this path", path: path,
                    remedy: "Check --journal or $VERTEBRA_JOURNAL; a journal is created by the first agent that runs")
            }
            flags |= mode == .readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        case .readWrite:
            flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
                do {
                    try FileManager.default.createDirectory(
                        atPath: directory, withIntermediateDirectories: true)
                } catch {
                    throw JournalError(
                        .cannotOpen, "Cannot create the journal's directory \(directory)", path: path,
                        remedy: "Create the directory or choose another journal path")
                }
            }
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        handle = db
        guard rc == SQLITE_OK, let db else {
            let error = Connection.error(code: rc, message: db.map { String(cString: sqlite3_errmsg($0)) }, path: path,
                                         what: "Cannot open the journal")
            sqlite3_close_v2(db)
            handle = nil
            throw error
        }
        sqlite3_extended_result_codes(db, 1)
        let milliseconds = busyTimeout.components.seconds * 1000
            + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(db, Int32(clamping: milliseconds))
        if mode != .readOnly, sqlite3_db_readonly(db, "main") == 1 {
            throw JournalError(
                .readOnly, "The journal file is read-only", path: path,
                remedy: "Make the file and its directory writable by this user, or choose another journal path")
        }
        // Reading the schema is the first access to the file: a file that is not SQLite fails here.
        _ = try scalarInt("SELECT count(*) FROM sqlite_schema")
    }

    deinit { close() }

    func close() {
        statements.removeAll()
        if let handle {
            sqlite3_wal_hook(handle, nil, nil)
            sqlite3_close_v2(handle)
        }
        handle = nil
    }

    /// Reports the WAL's size in pages to `checkpointer` after every commit. The caller keeps
    /// `checkpointer` alive while this connection is open.
    func setWALHook(_ checkpointer: WALCheckpointer) {
        guard let handle else { return }
        sqlite3_wal_hook(handle, { context, _, _, pages in
            if let context { Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().walGrew(to: pages) }
            return SQLITE_OK
        }, Unmanaged.passUnretained(checkpointer).toOpaque())
    }

    var isOpen: Bool { handle != nil }

    /// True when no transaction is open (SQLite rolled back or committed).
    var isAutocommit: Bool { handle.map { sqlite3_get_autocommit($0) != 0 } ?? true }

    var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }

    var lastInsertRowID: Int64 { handle.map { sqlite3_last_insert_rowid($0) } ?? 0 }

    // MARK: Executing

    /// Runs one or more statements without parameters (schema, pragmas, transaction control).
    func execute(_ sql: String) throws {
        let db = try open()
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) }
            sqlite3_free(message)
            throw Connection.error(code: rc, message: text, path: path, what: "SQL failed")
        }
    }

    /// Runs one statement with bound parameters and no result rows.
    func run(_ sql: String, _ values: [SQLValue] = []) throws {
        let statement = try prepared(sql)
        defer { statement.reset() }
        try statement.bind(values, connection: self)
        while try statement.step(connection: self) {}
    }

    /// Runs a query, calling `row` for each result row.
    func query(_ sql: String, _ values: [SQLValue] = [], row: (Row) throws -> Void) throws {
        let statement = try prepared(sql)
        defer { statement.reset() }
        try statement.bind(values, connection: self)
        while try statement.step(connection: self) {
            try row(Row(handle: statement.handle))
        }
    }

    /// Runs a query and maps each row.
    func all<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (Row) throws -> T) throws -> [T] {
        var result: [T] = []
        try query(sql, values) { result.append(try map($0)) }
        return result
    }

    /// The first row of a query, mapped, or nil.
    func first<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (Row) throws -> T) throws -> T? {
        let statement = try prepared(sql)
        defer { statement.reset() }
        try statement.bind(values, connection: self)
        guard try statement.step(connection: self) else { return nil }
        return try map(Row(handle: statement.handle))
    }

    func scalarInt(_ sql: String, _ values: [SQLValue] = []) throws -> Int64 {
        try first(sql, values) { $0.int64(0) } ?? 0
    }

    // MARK: Errors

    /// Maps an SQLite result code to a ``JournalError`` with a remedy.
    static func error(code: Int32, message: String?, path: String, what: String) -> JournalError {
        let primary = code & 0xff
        let sqliteMessage = message ?? String(cString: sqlite3_errstr(code))
        func make(_ kind: JournalError.Code, _ text: String, _ remedy: String) -> JournalError {
            JournalError(kind, text, path: path, sqliteCode: code, sqliteMessage: sqliteMessage, remedy: remedy)
        }
        switch primary {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return make(
                .locked, "\(what): the journal is locked by another connection",
                "Another process holds a lock on it; wait for that process to finish or stop it, then retry")
        case SQLITE_CORRUPT, SQLITE_NOTADB:
            return make(
                .corrupt, "\(what): the file is not a usable SQLite journal (damaged, truncated or another kind of file)",
                "Move the file aside (keep it for inspection) and restore a backup or let a new journal be created")
        case SQLITE_READONLY, SQLITE_PERM:
            return make(
                .readOnly, "\(what): the journal cannot be written",
                "Make the file and its directory writable by this user, or choose another journal path")
        case SQLITE_FULL:
            return make(
                .diskFull, "\(what): the disk or the journal's size limit is full",
                "Free disk space or raise the size limit, and prune old jobs with `vertebra jobs prune --older-than 30d`")
        case SQLITE_IOERR:
            return make(
                .ioError, "\(what): the disk reported an I/O error",
                "Check the disk and the file system (dmesg), then retry")
        case SQLITE_CANTOPEN:
            return make(
                .cannotOpen, "\(what): the file cannot be opened",
                "Check that the path is right and its directory exists and is accessible")
        default:
            return make(.sqlite, "\(what)", "This is unexpected; report it with the message above")
        }
    }

    // MARK: Internals

    private func open() throws -> OpaquePointer {
        guard let handle else { throw JournalError(.closed, "The journal connection is closed", path: path) }
        return handle
    }

    private func prepared(_ sql: String) throws -> Statement {
        if let statement = statements[sql] { return statement }
        let db = try open()
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else {
            throw Connection.error(code: rc, message: String(cString: sqlite3_errmsg(db)), path: path,
                                   what: "Cannot prepare a statement")
        }
        let statement = Statement(handle: raw)
        statements[sql] = statement
        return statement
    }

    fileprivate func lastError(_ rc: Int32, what: String) -> JournalError {
        Connection.error(code: rc, message: handle.map { String(cString: sqlite3_errmsg($0)) }, path: path, what: what)
    }
}

/// A prepared statement, finalized when released.
final class Statement {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { sqlite3_finalize(handle) }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    fileprivate func bind(_ values: [SQLValue], connection: Connection) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(handle, index)
            case .integer(let number): rc = sqlite3_bind_int64(handle, index, number)
            case .real(let number): rc = sqlite3_bind_double(handle, index, number)
            case .text(let text):
                let length = Int32(clamping: text.utf8.count)
                rc = text.withCString { vertebra_sqlite_bind_text(handle, index, $0, length) }
            }
            if rc != SQLITE_OK { throw connection.lastError(rc, what: "Cannot bind a parameter") }
        }
    }

    /// Steps once; true when a row is available.
    fileprivate func step(connection: Connection) throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.lastError(rc, what: "Journal statement failed")
        }
    }
}

/// The current row of a statement; valid only inside the row closure.
struct Row {
    fileprivate let handle: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    func text(_ column: Int32) -> String { optionalText(column) ?? "" }

    func optionalText(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
}

import CSQLite
import Foundation
import Testing
@testable import VertebraJournal

/// A directory under the system temp dir, removed when released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vertebra-journal-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// A raw SQLite connection for setting up files by hand (old schemas, locks, counts), independent
/// of the code under test.
final class RawDatabase {
    private var handle: OpaquePointer?

    init(_ path: String) throws {
        guard sqlite3_open(path, &handle) == SQLITE_OK else { throw RawError.open(path) }
    }

    deinit { sqlite3_close_v2(handle) }

    enum RawError: Error { case open(String), sql(String) }

    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &message) != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "?"
            sqlite3_free(message)
            throw RawError.sql(text)
        }
    }

    func integer(_ sql: String) throws -> Int64 {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else {
            throw RawError.sql(String(cString: sqlite3_errmsg(handle)))
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { throw RawError.sql(String(cString: sqlite3_errmsg(handle))) }
        return sqlite3_column_int64(statement, 0)
    }

    func text(_ sql: String) throws -> String? {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else {
            throw RawError.sql(String(cString: sqlite3_errmsg(handle)))
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW, let bytes = sqlite3_column_text(statement, 0) else { return nil }
        return String(cString: bytes)
    }
}

/// A fresh 32-hex job token.
func newToken() -> String {
    UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
}

/// Runs `body` and returns the JournalError it threw, or records an issue if it threw none.
func journalError<T>(
    _ body: () async throws -> T, sourceLocation: SourceLocation = #_sourceLocation
) async -> JournalError? {
    do {
        _ = try await body()
        Issue.record("expected a JournalError, but the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as JournalError {
        return error
    } catch {
        Issue.record("expected a JournalError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension ExchangeJournal {
    /// Creates a job (default: pending) and returns its token.
    @discardableResult
    func makeJob(
        _ token: String = newToken(), operation: String = "/image/resize", state: JobState = .pending,
        created: Date? = nil
    ) async throws -> String {
        try await write(.createJob(NewJob(
            token: token, operation: operation, arguments: "<string name='path'>/tmp/a.png</string>",
            state: state, created: created)))
        return token
    }
}

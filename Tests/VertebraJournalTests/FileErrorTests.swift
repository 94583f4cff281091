import Foundation
import Testing
@testable import VertebraJournal

/// Bad files and bad input give clear errors naming the file, never a crash.
@Suite struct FileErrorTests {
    @Test func aMissingJournalIsReportedWithItsPath() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("absent.sqlite")
        let error = await journalError { try JournalReader(path: path) }
        #expect(error?.code == .fileNotFound)
        #expect(error?.description.contains(path) == true)
        #expect(!FileManager.default.fileExists(atPath: path), "a reader must not create the file")
    }

    @Test func aFileThatIsNotSQLiteIsReportedAsCorruptByReaderAndWriter() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("notes.txt")
        try String(repeating: "this is not a database\n", count: 100).write(toFile: path, atomically: true, encoding: .utf8)
        let readerError = await journalError { try JournalReader(path: path) }
        #expect(readerError?.code == .corrupt)
        #expect(readerError?.description.contains(path) == true)
        #expect(readerError?.remedy != nil)
        let writerError = await journalError { try ExchangeJournal(path: path) }
        #expect(writerError?.code == .corrupt)
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("this is not a database"))
    }

    @Test func aTruncatedJournalIsReportedAsCorrupt() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        let journal = try ExchangeJournal(path: path, options: .init(durability: .normal))
        let arguments = String(repeating: "<string>x</string>", count: 60)
        for _ in 0..<300 {
            try await journal.write(.createJob(NewJob(token: newToken(), operation: "/op", arguments: arguments)))
        }
        await journal.close()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: UInt64(size / 3))
        try handle.close()
        let error = await journalError {
            let reader = try JournalReader(path: path)
            return try await reader.jobs(matching: JobFilter(limit: 1000))
        }
        #expect(error?.code == .corrupt)
        #expect(error?.description.contains(path) == true)
    }

    @Test func aJournalLockedByAnotherWriterFailsTheWriteWithLocked() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        let journal = try ExchangeJournal(path: path, options: .init(busyTimeout: .milliseconds(100)))
        let other = try RawDatabase(path)
        try other.execute("BEGIN IMMEDIATE")
        let error = await journalError { try await journal.makeJob() }
        #expect(error?.code == .locked)
        #expect(error?.remedy?.isEmpty == false)
        try other.execute("ROLLBACK")
        // Once the lock is gone the same journal writes again.
        try await journal.makeJob()
        await journal.close()
    }

    @Test func aJournalHeldExclusivelyByAnotherProcessIsReportedAsLockedToReaders() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        try await ExchangeJournal(path: path).close()
        let other = try RawDatabase(path)
        try other.execute("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        let error = await journalError { try JournalReader(path: path, busyTimeout: .milliseconds(100)) }
        #expect(error?.code == .locked)
        try other.execute("ROLLBACK")
    }

    @Test func aReadOnlyJournalFileIsRefusedForWriting() async throws {
        // Root ignores file permissions, so as root the command runs as `nobody` (setpriv).
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        try await ExchangeJournal(path: path).close()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.url.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: path)
        let output = try await Vertebra.run(
            ["jobs", "prune", "--older-than", "1d", "--journal", path], asUnprivilegedUser: geteuid() == 0)
        #expect(output.status != 0)
        #expect(output.stderr.contains("read-only"), "\(output.stderr)")
        #expect(output.stderr.contains(path))
    }

    @Test func aWriteRefusedAsReadOnlyBySQLiteIsReportedAsReadOnly() async throws {
        // Root cannot be denied by permissions; query_only makes SQLite refuse writes the same way.
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
        try connection.execute("PRAGMA query_only = 1")
        let error = await journalError { try connection.execute("CREATE TABLE t (x)") }
        #expect(error?.code == .readOnly)
        #expect(error?.path == path)
    }

    @Test func anUnknownOrAmbiguousJobIdIsAClearError() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        let journal = try ExchangeJournal(path: path)
        try await journal.makeJob("abc0000000000000000000000000000a")
        try await journal.makeJob("abc0000000000000000000000000000b")
        await journal.close()
        let reader = try JournalReader(path: path)
        #expect(await journalError { try await reader.job(matching: "ffff") }?.code == .unknownJob)
        let ambiguous = await journalError { try await reader.job(matching: "abc") }
        #expect(ambiguous?.code == .ambiguousJob)
        #expect(ambiguous?.message.contains("abc0000000000000000000000000000a") == true)
        #expect(try await reader.job(matching: "abc0000000000000000000000000000b").token.hasSuffix("b"))
        #expect(try await reader.job(matching: "ABC0000000000000000000000000000A").token.hasSuffix("a"))
    }

    @Test func badFilterValuesAreRefused() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        try await ExchangeJournal(path: path).close()
        let reader = try JournalReader(path: path)
        #expect(await journalError { try await reader.jobs(matching: JobFilter(limit: 0)) }?.code == .invalidArgument)
        let state = await journalError { try JobState.parse("finished") }
        #expect(state?.code == .invalidArgument)
        #expect(state?.remedy?.contains("pending, dispatched, running, done, failed, cancelled") == true)
    }
}

/// Journals hold every argument and result: only their owner may read them.
@Suite struct JournalFileModeTests {
    func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : nil
    }

    @Test func aNewJournalAndItsWALAreOwnerOnly() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        let journal = try ExchangeJournal(path: path)
        try await journal.write(.createJob(NewJob(token: "8f14e45fceea167a5a36dedd4bea2543", operation: "/x")))
        #expect(mode(path) == 0o600)
        #expect(mode(path + "-wal") == 0o600)
        await journal.close()
    }

    @Test func anOlderWorldReadableJournalIsMadeOwnerOnly() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        await (try ExchangeJournal(path: path)).close()
        chmod(path, 0o644)
        let journal = try ExchangeJournal(path: path)
        #expect(mode(path) == 0o600)
        await journal.close()
    }
}
